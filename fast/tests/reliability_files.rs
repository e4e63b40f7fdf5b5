//! Checkpoint files (`fast/docs/reliability.md`, "Files: temporaries,
//! permissions, durability"): destination names of any valid length, the
//! permissions a save gives the new file, errors that name their path, and
//! the clean-up of the temporaries that killed saves leave.
//!
//! The temporary files are named `.<hash>.<pid>.<n>.adadelta-tmp`, `<hash>`
//! the 16 hex digits of the FNV-1a hash of the destination's file name
//! (`fast/src/checkpoint/atomic.rs`); [`temporary`] builds such names the
//! way a save of another process would.
//!
//! ```sh
//! cargo test -p adadelta --test reliability_files
//! ```

mod common;

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use adadelta::{CheckpointError, StateDict};

/// A process id that no process has on Linux (one more than
/// `PID_MAX_LIMIT`, 2^22): the writer of a temporary of this pid is dead.
const DEAD_PID: u32 = (1 << 22) + 1;

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The temporary file that process `pid` would use, as its `n`th, to save
/// `dest`.
fn temporary(dest: &Path, pid: u32, n: u64) -> PathBuf {
    let name = dest.file_name().unwrap().as_encoded_bytes();
    dest.with_file_name(format!(".{:016x}.{pid}.{n}.adadelta-tmp", fnv1a(name)))
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A small trained optimizer's state dict.
fn state_dict(seed: u64) -> StateDict {
    common::trained(2, seed).state_dict()
}

#[cfg(unix)]
fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn destination_names_of_245_and_255_characters_save_and_load() {
    let dir = common::temp_dir("files-long");
    for len in [245, 255] {
        let name = "n".repeat(len - 5) + ".json";
        let path = dir.join(&name);
        for seed in [1, 2] {
            let sd = state_dict(seed);
            sd.save(&path)
                .unwrap_or_else(|e| panic!("a {len}-character name: {e}"));
            assert_eq!(StateDict::load(&path).unwrap(), sd);
        }
        fs::remove_file(&path).unwrap();
    }
    assert_eq!(entries(&dir), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_destination_name_of_256_characters_is_an_error_that_names_it() {
    let dir = common::temp_dir("files-toolong");
    let path = dir.join("n".repeat(251) + ".json");
    let err = state_dict(1).save(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err:?}");
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{err}"
    );
    assert_eq!(entries(&dir), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_replaced_checkpoint_keeps_the_permission_bits_of_the_old_file() {
    let dir = common::temp_dir("files-mode");
    for mode in [0o600, 0o640, 0o444, 0o604, 0o700] {
        let path = dir.join(format!("ckpt-{mode:o}.json"));
        state_dict(1).save(&path).unwrap();
        set_mode(&path, mode);
        let sd = state_dict(2);
        sd.save(&path).unwrap();
        assert_eq!(StateDict::load(&path).unwrap(), sd);
        assert_eq!(mode_of(&path), mode, "{mode:o} became {:o}", mode_of(&path));
        // And again: the mode the save gave is kept too.
        state_dict(3).save(&path).unwrap();
        assert_eq!(mode_of(&path), mode);
    }
    assert_eq!(entries(&dir).len(), 5);
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_new_checkpoint_gets_the_default_permissions() {
    let dir = common::temp_dir("files-newmode");
    // What a file created now gets: 0o666 & !umask.
    let probe = dir.join("probe");
    File::create(&probe).unwrap();
    let default = mode_of(&probe);
    fs::remove_file(&probe).unwrap();
    if let Some(umask) = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Umask:").map(str::to_string))
    }) {
        let umask = u32::from_str_radix(umask.trim(), 8).unwrap();
        assert_eq!(default, 0o666 & !umask);
    }
    let path = dir.join("ckpt.json");
    state_dict(1).save(&path).unwrap();
    assert_eq!(mode_of(&path), default, "{:o}", mode_of(&path));
    fs::remove_dir_all(&dir).unwrap();
}

/// What [`Spy`] saw of a temporary file.
#[derive(Debug)]
struct Seen {
    name: String,
    locked: bool,
    #[cfg(unix)]
    mode: u32,
}

/// Looks at the save's temporary file while [`adadelta::save_json`]
/// serialises this value into it.
struct Spy<'a> {
    dir: &'a Path,
    dest: &'a Path,
    seen: RefCell<Vec<Seen>>,
}

impl serde::Serialize for Spy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        for e in fs::read_dir(self.dir).unwrap() {
            let p = e.unwrap().path();
            if p != self.dest {
                let locked = matches!(
                    File::open(&p).unwrap().try_lock(),
                    Err(fs::TryLockError::WouldBlock)
                );
                self.seen.borrow_mut().push(Seen {
                    name: name_of(&p),
                    locked,
                    #[cfg(unix)]
                    mode: mode_of(&p),
                });
            }
        }
        s.serialize_u32(7)
    }
}

#[test]
fn a_temporary_being_written_is_named_for_its_destination_locked_and_as_private_as_the_old_file() {
    let dir = common::temp_dir("files-spy");
    let path = dir.join("c".repeat(250) + ".json");
    adadelta::save_json(&path, &1).unwrap();
    #[cfg(unix)]
    set_mode(&path, 0o600);
    let spy = Spy {
        dir: &dir,
        dest: &path,
        seen: RefCell::new(Vec::new()),
    };
    adadelta::save_json(&path, &spy).unwrap();
    let seen = spy.seen.into_inner();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let tmp = &seen[0];
    // .<FNV-1a of the name>.<pid>.<n>.adadelta-tmp, at most 62 bytes.
    let hash = fnv1a(name_of(&path).as_bytes());
    let prefix = format!(".{hash:016x}.{}.", std::process::id());
    let n = tmp
        .name
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(".adadelta-tmp"));
    assert!(n.is_some_and(|n| n.parse::<u64>().is_ok()), "{tmp:?}");
    assert!(tmp.name.len() <= 62, "{tmp:?}");
    assert!(tmp.locked, "{tmp:?}: not locked by its writer");
    #[cfg(unix)]
    assert_eq!(tmp.mode, 0o600, "{tmp:?}");
    // The save has finished: the temporary is gone, its contents in place.
    assert_eq!(entries(&dir), [name_of(&path)]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "7\n");
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_into_a_missing_directory_is_an_error_that_names_the_path() {
    let dir = common::temp_dir("files-missing");
    let path = dir.join("no/such/dir/ckpt.json");
    let err = state_dict(1).save(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}: ", path.display())), "{text}");
    assert_eq!(err.path(), Some(path.as_path()));
    match &err {
        CheckpointError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{text}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(entries(&dir), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

/// Whether this process can create files in a directory it has made
/// read-only (root can).
#[cfg(unix)]
fn ignores_permissions(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let can = File::create(&probe).is_ok();
    let _ = fs::remove_file(&probe);
    can
}

#[cfg(unix)]
#[test]
fn saving_into_a_read_only_directory_is_an_error_that_names_the_path() {
    let dir = common::temp_dir("files-readonly");
    let ro = dir.join("ro");
    fs::create_dir(&ro).unwrap();
    let old = ro.join("ckpt.json");
    state_dict(1).save(&old).unwrap();
    set_mode(&ro, 0o555);
    // Privileged (root): a file system no one may create files in instead.
    let path = if !ignores_permissions(&ro) {
        old.clone()
    } else if cfg!(target_os = "linux") && Path::new("/sys/kernel").is_dir() {
        PathBuf::from("/sys/kernel/adadelta-ckpt.json")
    } else {
        set_mode(&ro, 0o755);
        fs::remove_dir_all(&dir).unwrap();
        eprintln!("no read-only directory for a privileged process here: not tested");
        return;
    };
    let err = state_dict(2).save(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}: ", path.display())), "{text}");
    assert_eq!(err.path(), Some(path.as_path()));
    match &err {
        CheckpointError::Io { source, .. } => assert_eq!(
            source.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    if path != old {
        assert!(!path.exists());
    }
    assert_eq!(StateDict::load(&old).unwrap(), state_dict(1));
    assert_eq!(entries(&ro), ["ckpt.json"]);
    set_mode(&ro, 0o755);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_save_removes_the_stale_temporaries_of_its_destination() {
    let dir = common::temp_dir("files-stale");
    let path = dir.join("ckpt.json");
    state_dict(1).save(&path).unwrap();
    // What five killed saves leave: temporaries of a dead process, unlocked,
    // one of them empty (killed before its first write) and, as a system
    // without /proc needs to remove that one, two minutes old.
    let stale: Vec<PathBuf> = (0..5).map(|n| temporary(&path, DEAD_PID, n)).collect();
    let two_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    for (i, t) in stale.iter().enumerate() {
        fs::write(t, vec![b'x'; 1000 * i]).unwrap();
        File::options()
            .write(true)
            .open(t)
            .unwrap()
            .set_modified(two_minutes_ago)
            .unwrap();
    }
    #[cfg(unix)]
    set_mode(&stale[1], 0o444);
    assert_eq!(entries(&dir).len(), 6);
    let sd = state_dict(2);
    sd.save(&path).unwrap();
    assert_eq!(entries(&dir), ["ckpt.json"]);
    assert_eq!(StateDict::load(&path).unwrap(), sd);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_temporary_locked_by_a_live_writer_is_not_removed() {
    let dir = common::temp_dir("files-locked");
    let path = dir.join("ckpt.json");
    // A writer of this process (its pid is alive), and one whose pid says
    // dead but which holds the lock (a writer seen from another pid
    // namespace, or whose pid was reused): only the lock protects the second.
    let ours = temporary(&path, std::process::id(), u64::MAX);
    let dead = temporary(&path, DEAD_PID, 0);
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let (ours, dead) = (ours.clone(), dead.clone());
        std::thread::spawn(move || {
            let files: Vec<File> = [ours, dead]
                .iter()
                .map(|t| {
                    let mut f = File::create_new(t).unwrap();
                    f.lock().unwrap();
                    f.write_all(b"half a checkpoint").unwrap();
                    f
                })
                .collect();
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(files);
        })
    };
    locked_rx.recv().unwrap();
    for seed in 1..=3 {
        state_dict(seed).save(&path).unwrap();
        assert!(ours.exists() && dead.exists(), "{:?}", entries(&dir));
    }
    // The writer ends (unlocked): the dead pid's temporary is stale now,
    // this process's is not (it may have created one and not locked it yet).
    release_tx.send(()).unwrap();
    writer.join().unwrap();
    state_dict(4).save(&path).unwrap();
    assert!(!dead.exists(), "{:?}", entries(&dir));
    assert!(ours.exists(), "{:?}", entries(&dir));
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_temporary_of_another_live_process_is_not_removed_even_unlocked() {
    let dir = common::temp_dir("files-liveproc");
    let path = dir.join("ckpt.json");
    // The process that started this test is alive while it runs.
    let parent = std::os::unix::process::parent_id();
    assert!(Path::new(&format!("/proc/{parent}")).exists());
    let live = temporary(&path, parent, 3);
    fs::write(&live, b"being written").unwrap();
    state_dict(1).save(&path).unwrap();
    assert_eq!(fs::read(&live).unwrap(), b"being written");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_of_other_destinations_and_unrelated_files_survive_the_clean_up() {
    let dir = common::temp_dir("files-others");
    let path = dir.join("ckpt.json");
    let other = dir.join("other.json");
    let hash = format!("{:016x}", fnv1a(b"ckpt.json"));
    let upper = hash.to_uppercase();
    let p = DEAD_PID;
    let unrelated = [
        // Another destination's stale temporary, and a name's that starts
        // the same.
        name_of(&temporary(&other, p, 0)),
        name_of(&temporary(&dir.join("ckpt.jso"), p, 0)),
        // Near misses of a temporary of ckpt.json.
        format!(".{hash}.{p}.0.adadelta-tmp~"),
        format!(".{hash}.{p}.0.adadelta-tmp.bak"),
        format!(".{hash}.{p}.adadelta-tmp"),
        format!(".{hash}.{p}.x.adadelta-tmp"),
        format!(".{hash}..0.adadelta-tmp"),
        format!(".{hash}.-1.0.adadelta-tmp"),
        format!(".{hash}.{p}.0.1.adadelta-tmp"),
        format!("{hash}.{p}.0.adadelta-tmp"),
        format!(".{upper}.{p}.0.adadelta-tmp"),
        format!("x.{hash}.{p}.0.adadelta-tmp"),
        // The temporary names of earlier versions, and other files.
        format!(".ckpt.json.tmp.{p}.0"),
        "ckpt.json.bak".to_string(),
        "notes.txt".to_string(),
        ".adadelta-tmp".to_string(),
    ];
    for name in &unrelated {
        fs::write(dir.join(name), name.as_bytes()).unwrap();
    }
    // A directory and a symbolic link named as stale temporaries of ckpt.json.
    let as_dir = temporary(&path, p, 1);
    fs::create_dir(&as_dir).unwrap();
    fs::write(as_dir.join("inside"), b"kept").unwrap();
    #[cfg(unix)]
    let as_link = {
        let link = temporary(&path, p, 2);
        std::os::unix::fs::symlink(dir.join("notes.txt"), &link).unwrap();
        link
    };
    let stale = temporary(&path, p, 3);
    fs::write(&stale, b"stale").unwrap();
    let before = entries(&dir);

    state_dict(1).save(&path).unwrap();
    let mut expected = before.clone();
    expected.retain(|n| *n != name_of(&stale));
    expected.push("ckpt.json".into());
    expected.sort();
    assert_eq!(entries(&dir), expected);
    for name in &unrelated {
        assert_eq!(fs::read_to_string(dir.join(name)).unwrap(), *name);
    }
    assert_eq!(fs::read(as_dir.join("inside")).unwrap(), b"kept");
    #[cfg(unix)]
    assert!(fs::symlink_metadata(&as_link)
        .unwrap()
        .file_type()
        .is_symlink());

    // Saving the other destination removes its own stale temporary only.
    state_dict(2).save(&other).unwrap();
    expected.retain(|n| *n != name_of(&temporary(&other, p, 0)));
    expected.push("other.json".into());
    expected.sort();
    assert_eq!(entries(&dir), expected);
    fs::remove_dir_all(&dir).unwrap();
}

/// A FIFO (no writer), a character device and a directory are refused
/// before they are opened: opening a FIFO without a writer would block
/// forever. Each load runs on a thread given 10 s, so that a hang fails the
/// test instead of stalling it.
#[test]
fn loading_a_fifo_a_device_or_a_directory_is_an_error_not_a_wait() {
    let dir = common::temp_dir("fifo");
    let fifo = dir.join("state.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for path in [fifo.clone(), PathBuf::from("/dev/zero"), dir.clone()] {
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(
                StateDict::<f32>::load(&p)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("loading {} hung", path.display()));
        let e = got.expect_err("not a regular file");
        assert!(
            e.contains("not a regular file") && e.contains(&*path.to_string_lossy()),
            "{e}"
        );
        let e = adadelta::checkpoint::load::<f32>(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
    let _ = fs::remove_dir_all(&dir);
}
