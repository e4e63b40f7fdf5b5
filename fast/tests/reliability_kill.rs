//! Atomic checkpoints under fault injection (`fast/docs/reliability.md`): a
//! child process saves checkpoints back to back and is killed with SIGKILL
//! at a random moment; the checkpoint file must then load, whole, as the
//! last completed save or the one under way, never a mixture and never a
//! torn file.
//!
//! The child is this test binary run again with `ADADELTA_KILL_CHILD` set.
//! It saves generation `g` (every state element and the step counter equal
//! to `g`, the group key `generation` = `g`), printing `begin g` before and
//! `done g` after each `Adadelta::save`. The parent kills it after a random
//! delay, then checks the file against what the child printed.
//!
//! A killed save leaves its temporary file (`.<hash>.<pid>.<n>.adadelta-tmp`,
//! `fast/src/checkpoint/atomic.rs`); the next save of the same destination
//! removes it. The parent never removes one: after every kill the directory
//! must hold the checkpoint and at most one temporary, the last one must be
//! gone as soon as the next child has completed a save, and after the
//! parent's own final save none may be left. A second test kills several
//! children saving to the same file at once: none may remove a temporary
//! another is writing (that save would fail and its child exit before the
//! kill).
//!
//! ```sh
//! cargo test -p adadelta --test reliability_kill -- --nocapture                         # 100 kills, 10 x 3 concurrent
//! ADADELTA_KILL_ROUNDS=1000 cargo test -p adadelta --test reliability_kill -- --nocapture # the long run
//! ADADELTA_KILL_CONCURRENT_ROUNDS=100 cargo test -p adadelta --test reliability_kill concurrent -- --nocapture
//! ```

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adadelta::{Adadelta, GroupSpec, Options, Param, ParamStateDict, StateDict, TensorData};
use common::{env_or, Rng};

const CHILD: &str = "ADADELTA_KILL_CHILD";
const TEST: &str = "a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint";
/// Parameter sizes: about 1 MB of JSON per checkpoint, so that a save
/// (serialising, writing, fsync) takes a few milliseconds and random kills
/// land in every phase of it.
const SIZES: [usize; 3] = [30_000, 20_001, 7];

fn optimizer() -> Adadelta {
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![
                Param::new(vec![0.0; SIZES[0]]),
                Param::with_shape(vec![0.0; SIZES[1]], vec![3, 6667]).unwrap(),
            ]),
            GroupSpec::new(vec![Param::new(vec![0.0; SIZES[2]])]).lr(0.5),
        ],
        Options::default(),
    )
    .unwrap()
}

/// The state dict of generation `g`.
fn generation(opt: &Adadelta, g: u32) -> StateDict {
    let mut sd = opt.state_dict();
    for (i, &n) in SIZES.iter().enumerate() {
        let shape = opt.params()[i].shape().to_vec();
        let t = || TensorData::new(shape.clone(), vec![g as f32; n]).unwrap();
        sd.state.insert(
            i,
            ParamStateDict {
                step: g as f32,
                square_avg: t(),
                acc_delta: t(),
            },
        );
    }
    sd.param_groups[0].extra.insert("generation", u64::from(g));
    sd
}

/// Which generation the file at `path` holds, after checking that it loads
/// into the optimizer and is one generation throughout.
fn generation_of(path: &Path) -> Result<u32, String> {
    let sd = StateDict::load(path).map_err(|e| format!("does not parse: {e}"))?;
    let mut opt = optimizer();
    opt.load_state_dict(sd.clone())
        .map_err(|e| format!("does not load: {e}"))?;
    let g = sd.param_groups[0].extra["generation"]
        .to_value()
        .as_u64()
        .ok_or("no generation")? as u32;
    for (i, s) in &sd.state {
        let whole = s.step == g as f32
            && s.square_avg.data().iter().all(|&x| x == g as f32)
            && s.acc_delta.data().iter().all(|&x| x == g as f32);
        if !whole {
            return Err(format!("parameter {i} is not all generation {g}"));
        }
    }
    if sd.state.len() != SIZES.len() && g != 0 {
        return Err(format!("{} states", sd.state.len()));
    }
    Ok(g)
}

/// The child: save generations `start, start + 1, ...` until killed.
fn child(dir: &Path) {
    let start: u32 = env_or("ADADELTA_KILL_START", 1) as u32;
    let path = dir.join("ckpt.json");
    let mut opt = optimizer();
    let out = std::io::stdout();
    // On a line of its own: libtest has printed the test's name without a
    // newline.
    writeln!(out.lock(), "\nready").unwrap();
    for g in start.. {
        opt.load_state_dict(generation(&opt, g)).unwrap();
        writeln!(out.lock(), "begin {g}").unwrap();
        opt.save(&path).unwrap();
        writeln!(out.lock(), "done {g}").unwrap();
    }
}

/// The 64-bit FNV-1a hash of `bytes` (the temporary names' prefix).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The files in `dir` other than the checkpoint, as (name, writer's pid):
/// each must be a temporary of `ckpt.json`, `.<hash>.<pid>.<n>.adadelta-tmp`.
/// Without `/proc` (not Linux) a save leaves an empty temporary for a
/// minute (its writer may be about to lock it): those are not counted.
fn leftovers(dir: &Path) -> Vec<(String, u32)> {
    let prefix = format!(".{:016x}.", fnv1a(b"ckpt.json"));
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| cfg!(target_os = "linux") || e.metadata().unwrap().len() > 0)
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|name| name != "ckpt.json")
        .map(|name| {
            let pid = name
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".adadelta-tmp"))
                .and_then(|r| r.split_once('.'))
                .and_then(|(pid, n)| Some((pid.parse().ok()?, n.parse::<u64>().ok()?)))
                .unwrap_or_else(|| panic!("{name:?} in the checkpoint's directory"))
                .0;
            (name, pid)
        })
        .collect();
    v.sort();
    v
}

#[derive(Debug, Default)]
struct Figures {
    rounds: u64,
    /// Killed before the first save began.
    idle: u64,
    /// Killed between `begin g` and `done g`.
    inside_save: u64,
    /// ... of which left a temporary file: killed while writing or flushing it.
    with_temporary: u64,
    /// ... of which the file already held the new generation (renamed, not
    /// yet reported).
    renamed: u64,
    /// Killed between two saves.
    between: u64,
    /// Temporaries (left by kills, never removed by this parent) that a
    /// later save removed: the next child's, or the parent's final one.
    removed_by_next_save: u64,
    /// The most found at once.
    most_at_once: usize,
}

#[test]
fn a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let rounds = env_or("ADADELTA_KILL_ROUNDS", 100);
    let dir = common::temp_dir("kill");
    let path = dir.join("ckpt.json");
    // Generation 0, and how long one save takes here.
    let mut opt = optimizer();
    opt.load_state_dict(generation(&opt, 0)).unwrap();
    opt.save(&path).unwrap();
    opt.load_state_dict(generation(&opt, 1)).unwrap();
    let t = Instant::now();
    opt.save(&path).unwrap();
    let save = t.elapsed();
    opt.load_state_dict(generation(&opt, 0)).unwrap();
    opt.save(&path).unwrap();
    let window = save * 3 + Duration::from_millis(1);

    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(env_or("ADADELTA_KILL_SEED", 1));
    let mut f = Figures::default();
    // Temporaries that kills left and no save has removed yet.
    let mut pending: Vec<(String, u32)> = Vec::new();
    let mut last = 0u32; // the generation the file holds
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, &dir)
            .env("ADADELTA_KILL_START", (last + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for the child to be ready, then kill it at a random moment.
        for l in lines.by_ref() {
            if l.unwrap() == "ready" {
                break;
            }
        }
        let delay = window.mul_f64(rng.below(1 << 20) as f64 / (1 << 20) as f64);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child was not killed");
        // What the child had reported before it died.
        let (mut begun, mut done) = (None, None);
        for l in lines {
            let l = l.unwrap();
            if let Some(g) = l.strip_prefix("begin ") {
                begun = Some(g.parse::<u32>().unwrap());
            } else if let Some(g) = l.strip_prefix("done ") {
                done = Some(g.parse::<u32>().unwrap());
            }
        }
        let g = generation_of(&path).unwrap_or_else(|e| {
            panic!(
                "round {round}, killed after {delay:?} (begun {begun:?}, done {done:?}): \
                 the checkpoint {e}"
            )
        });
        let expected_old = done.unwrap_or(last);
        let temporaries = leftovers(&dir);
        f.rounds += 1;
        match begun {
            None => f.idle += 1,
            Some(b) if done == Some(b) => f.between += 1,
            Some(_) => {
                f.inside_save += 1;
                f.with_temporary += u64::from(temporaries.iter().any(|t| t.1 == pid));
                f.renamed += u64::from(g != expected_old);
            }
        }
        let killed_in_save = begun.is_some() && begun != done;
        assert!(
            g == expected_old || (killed_in_save && Some(g) == begun),
            "round {round}: the file holds generation {g}; the child had begun {begun:?}, \
             done {done:?}, the file held {last} before"
        );
        // The killed child's temporary, only if killed in a save; an older
        // one only if this child completed no save (the clean-up is at the
        // start of each save).
        let context = format!("round {round}: {temporaries:?} (begun {begun:?}, done {done:?})");
        assert!(temporaries.len() <= 1, "{context}: more than one temporary");
        for (name, writer) in &temporaries {
            if *writer == pid {
                assert!(killed_in_save, "{context}");
            } else {
                assert!(done.is_none(), "{context}: {name} was not removed");
            }
        }
        let before = pending.len();
        pending.retain(|t| temporaries.contains(t));
        f.removed_by_next_save += (before - pending.len()) as u64;
        pending.extend(temporaries.iter().filter(|t| t.1 == pid).cloned());
        f.most_at_once = f.most_at_once.max(temporaries.len());
        last = g;
    }
    // One more save, in this process: it removes what the last kill left.
    opt.save(&path).unwrap();
    let left = leftovers(&dir);
    assert!(left.is_empty(), "after the final save: {left:?}");
    f.removed_by_next_save += pending.len() as u64;
    assert_eq!(f.removed_by_next_save, f.with_temporary, "{f:?}");
    println!("{rounds} SIGKILLs, one save {save:?}, kill delays uniform in [0, {window:?}): {f:?}");
    if rounds >= 40 {
        assert!(
            f.inside_save > 0 && f.with_temporary > 0,
            "no kill landed inside a save: {f:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A child saving generations into a directory; killed when dropped, so
/// that a failing test leaves no process behind.
struct Saver {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Saver {
    /// Starts a child that saves generations from `start` on into `dir`,
    /// and waits until it is ready.
    fn spawn(dir: &Path, start: u32) -> Saver {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, dir)
            .env("ADADELTA_KILL_START", start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for l in lines.by_ref() {
            if l.unwrap() == "ready" {
                break;
            }
        }
        Saver { child, lines }
    }

    /// Reads the child's output until it has reported `n` more completed
    /// saves; false if its output ended first (it exited).
    fn wait_for_saves(&mut self, n: u64) -> bool {
        let mut done = 0;
        while done < n {
            match self.lines.next() {
                Some(l) => done += u64::from(l.unwrap().starts_with("done ")),
                None => return false,
            }
        }
        true
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn concurrent_savers_in_several_processes_never_remove_each_others_temporaries() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    const SAVERS: u32 = 3;
    const SAVES_BEFORE_KILL: u64 = 3;
    let rounds = env_or("ADADELTA_KILL_CONCURRENT_ROUNDS", 10);
    let dir = common::temp_dir("kill-concurrent");
    let path = dir.join("ckpt.json");
    let mut opt = optimizer();
    opt.load_state_dict(generation(&opt, 0)).unwrap();
    opt.save(&path).unwrap();
    let t = Instant::now();
    opt.save(&path).unwrap();
    // The kill: at a random moment of a few saves (slower when all save).
    let window = t.elapsed() * 2 * SAVERS;
    let mut rng = Rng(env_or("ADADELTA_KILL_SEED", 1));
    let (mut saves, mut left, mut most) = (0u64, 0u64, 0usize);
    let mut last = 0u32; // the generation the file holds
    for round in 0..rounds {
        let start = |i: u32| (round as u32 * SAVERS + i) * 100_000 + 1;
        let mut savers: Vec<Saver> = (0..SAVERS).map(|i| Saver::spawn(&dir, start(i))).collect();
        // Each completes a few saves, all at once (a child whose save
        // failed, its temporary removed by another, exits: its output ends).
        for s in &mut savers {
            let id = s.child.id();
            assert!(
                s.wait_for_saves(SAVES_BEFORE_KILL),
                "round {round}: saver {id} exited by itself"
            );
            saves += SAVES_BEFORE_KILL;
        }
        std::thread::sleep(window.mul_f64(rng.below(1 << 20) as f64 / (1 << 20) as f64));
        let mut pids = Vec::new();
        for s in &mut savers {
            let id = s.child.id();
            assert!(
                s.child.try_wait().unwrap().is_none(),
                "round {round}: saver {id} exited by itself (a save failed)"
            );
            s.child.kill().unwrap(); // SIGKILL
            s.child.wait().unwrap();
            pids.push(id);
            saves += s
                .lines
                .by_ref()
                .map(|l| l.unwrap())
                .filter(|l| l.starts_with("done "))
                .count() as u64;
        }
        drop(savers);
        let g = generation_of(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Whole (checked above), and the last completed rename's: one of
        // this round's savers', or the file as it was.
        assert!(
            g == last || (start(0)..start(SAVERS)).contains(&g),
            "round {round}: generation {g}, {last} before"
        );
        last = g;
        let temporaries = leftovers(&dir);
        assert!(
            temporaries.len() <= SAVERS as usize,
            "round {round}: {temporaries:?}"
        );
        // Each saver completed saves: the older temporaries are gone.
        assert!(
            temporaries.iter().all(|t| pids.contains(&t.1)),
            "round {round}: {temporaries:?} are not this round's ({pids:?})"
        );
        left += temporaries.len() as u64;
        most = most.max(temporaries.len());
    }
    opt.save(&path).unwrap();
    let after = leftovers(&dir);
    assert!(after.is_empty(), "after the final save: {after:?}");
    println!(
        "{rounds} rounds of {SAVERS} concurrent savers killed: {saves} saves completed, \
         {left} temporaries left by the kills (at most {most} at once), none after the final save"
    );
    assert!(saves > 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
