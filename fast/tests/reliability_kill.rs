//! Atomic checkpoints under fault injection (`docs/reliability.md`): a
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
//! ```sh
//! cargo test -p adadelta --test reliability_kill -- --nocapture                         # 100 kills
//! ADADELTA_KILL_ROUNDS=1000 cargo test -p adadelta --test reliability_kill -- --nocapture # the long run
//! ```

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    sd.param_groups[0]
        .extra
        .insert("generation".into(), g.into());
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

/// Files in `dir` other than the checkpoint: temporaries of killed saves.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "ckpt.json")
        .collect()
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
                f.with_temporary += u64::from(!temporaries.is_empty());
                f.renamed += u64::from(g != expected_old);
            }
        }
        let killed_in_save = begun.is_some() && begun != done;
        assert!(
            g == expected_old || (killed_in_save && Some(g) == begun),
            "round {round}: the file holds generation {g}; the child had begun {begun:?}, \
             done {done:?}, the file held {last} before"
        );
        assert!(
            temporaries.len() <= 1 && (temporaries.is_empty() || killed_in_save),
            "round {round}: temporary files {temporaries:?} (begun {begun:?}, done {done:?})"
        );
        for t in temporaries {
            std::fs::remove_file(t).unwrap();
        }
        last = g;
    }
    println!("{rounds} SIGKILLs, one save {save:?}, kill delays uniform in [0, {window:?}): {f:?}");
    if rounds >= 40 {
        assert!(
            f.inside_save > 0 && f.with_temporary > 0,
            "no kill landed inside a save: {f:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
