//! Atomic file writes: a temporary sibling, flushed, renamed over the
//! destination, and the directory flushed; the temporaries that killed
//! saves left behind are removed by the next save of the same destination.
//!
//! [`Durability::Durable`]: `fsync` of the temporary, the rename, `fsync` of
//! the directory (a failure of that last one is
//! [`CheckpointError::NotDurable`]: the new file is in place).
//! [`Durability::NoSync`]: the rename alone. Either way the destination is
//! the old file or the new one, whole, at every moment; a save that fails
//! (or panics) before the rename removes its temporary.
//!
//! # The temporary file
//!
//! Its name is `.<hash>.<pid>.<n>.adadelta-tmp`, in the destination's
//! directory (a rename cannot cross file systems):
//!
//! * `<hash>`: 16 lowercase hex digits, the 64-bit FNV-1a hash of the
//!   destination's file name (its bytes as the OS encodes them). FNV-1a is
//!   fixed, unlike std's randomly seeded hasher, so every process (and every
//!   version of this crate) gives the same name the same prefix;
//! * `<pid>`: the writing process's id, in decimal;
//! * `<n>`: a counter of the process, in decimal; the file is created
//!   exclusively (`create_new`), and a name that is taken is skipped, so no
//!   two writers ever share one.
//!
//! At most 62 bytes, whatever the destination's length: a destination name
//! of any valid length (255 bytes on ext4) can be saved. The leading dot
//! hides it from `ls`.
//!
//! Permissions: when the destination exists, the temporary is created with
//! its permission bits (`mode & 0o777`, lowered by the umask at creation,
//! then set exactly before anything is written), so the new file keeps them
//! and its contents are never more widely readable than the old file's. A
//! new destination gets the default, `0o666 & !umask`. The owner, group,
//! ACLs and extended attributes are not carried over.
//!
//! # Stale temporaries
//!
//! A save killed before its rename leaves its temporary. The next save of
//! the same destination removes, before it creates its own, every
//! temporary of that destination (the same `<hash>` prefix, the
//! `.adadelta-tmp` suffix, decimal `<pid>` and `<n>`; a regular file, not a
//! symbolic link) that no writer can be using:
//!
//! * a writer holds an exclusive lock ([`File::lock`]) on its temporary from
//!   just after creating it until the rename (on unix, where the lock is
//!   advisory and stops no reader, until after it), and a lock dies with
//!   its process: a temporary whose lock can be taken has no writer, or one
//!   that has created it but not locked it yet;
//! * that second case is closed by the process id and the length: a
//!   temporary whose lock was free is removed if `<pid>` is known to be
//!   dead (on Linux: no `/proc/<pid>`), and never if it is this process or
//!   (on Linux) a live one. Where liveness cannot be known (another process,
//!   on a system without `/proc`) it is removed if it holds data (a writer
//!   writes only under its lock), and if empty only once it is a minute old.
//!
//! The clean-up is best effort (a file it cannot open, lock or remove is
//! left) and never makes a save fail; it reads the directory once per save.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{CheckpointError, Durability};

/// The end of every temporary file's name.
const SUFFIX: &str = ".adadelta-tmp";

/// How many taken temporary names a save skips before it gives up.
const MAX_TAKEN: u32 = 1000;

/// The `<n>` of the next temporary name of this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `path` through a temporary sibling and a rename (see the module
/// and [`super::save`]). `write` gets the temporary file.
///
/// Every error names `path`, the destination. If the save fails before the
/// rename, the destination is untouched and the temporary removed (also if
/// `write` panics). If only the directory flush after the rename fails, the
/// error is [`CheckpointError::NotDurable`]: the new file is in place.
pub(crate) fn atomic_write(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut File) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    write_atomically(path, durability, write, &mut flush)
}

/// A flush that a [`Durability::Durable`] save makes.
enum Flush<'a> {
    /// The temporary file's data, before the rename.
    File(&'a File),
    /// The directory's entries (the rename), after it.
    Dir(&'a Path),
}

/// Makes a [`Flush`] for real.
fn flush(what: Flush<'_>) -> io::Result<()> {
    match what {
        Flush::File(file) => file.sync_all(),
        Flush::Dir(dir) => sync_dir(dir),
    }
}

/// [`atomic_write`], with the flushes made by `flush` (the unit tests' seam
/// for failing ones).
fn write_atomically(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut File) -> Result<(), CheckpointError>,
    flush: &mut dyn FnMut(Flush<'_>) -> io::Result<()>,
) -> Result<(), CheckpointError> {
    let name = path.file_name().ok_or_else(|| {
        CheckpointError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = temporary_prefix(name);
    remove_stale(&dir, &prefix);
    let mode = destination_mode(path)?;
    let (tmp, mut file) = create_temporary(path, &dir, &prefix, mode)?;
    let mut guard = RemoveOnDrop(Some(&tmp));
    write(&mut file).map_err(|e| e.with_path(path))?;
    if durability == Durability::Durable {
        flush(Flush::File(&file))
            .map_err(|e| CheckpointError::io(path, step("flushing to disk", &tmp, e)))?;
    }
    // Unix: the lock is kept through the rename (advisory, it stops no
    // reader). Elsewhere it may be mandatory (it would stop readers of the
    // new file): released just before, which leaves an instant in which a
    // clean-up in another process may remove the temporary, and this save
    // then fails at the rename, naming the destination, which is unchanged.
    #[cfg(not(unix))]
    drop(file);
    fs::rename(&tmp, path)
        .map_err(|e| CheckpointError::io(path, step("renaming over it", &tmp, e)))?;
    guard.0 = None;
    #[cfg(unix)]
    drop(file);
    if durability == Durability::NoSync {
        return Ok(());
    }
    // The rename happened: the new file is in place whatever follows.
    flush(Flush::Dir(&dir)).map_err(|source| CheckpointError::NotDurable {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes the temporary file when dropped, unless disarmed (set to
/// `None`) after the rename: a save that fails or panics leaves none.
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.0 {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// `e`, its message preceded by what was being done to which file (its
/// kind kept).
fn step(what: &str, file: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", file.display()))
}

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `.<hash>.`: the start of the temporary names of destination `name`.
fn temporary_prefix(name: &OsStr) -> String {
    format!(".{:016x}.", fnv1a(name.as_encoded_bytes()))
}

/// The `<pid>` of `name` if it is a temporary name of the destination
/// whose [`temporary_prefix`] is `prefix`, else `None`.
fn temporary_pid(name: &str, prefix: &str) -> Option<u32> {
    let (pid, n) = name
        .strip_prefix(prefix)?
        .strip_suffix(SUFFIX)?
        .split_once('.')?;
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !decimal(pid) || !decimal(n) {
        return None;
    }
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// The permission bits the new file gets: the destination's, or `None`
/// (the default) when there is no destination yet or no such bits (not
/// unix).
fn destination_mode(path: &Path) -> Result<Option<u32>, CheckpointError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(meta.permissions().mode() & 0o777)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CheckpointError::io(path, e)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Creates, locks and sets the permissions of a fresh temporary file in
/// `dir` for the destination `path`; returns its path and the file.
fn create_temporary(
    path: &Path,
    dir: &Path,
    prefix: &str,
    mode: Option<u32>,
) -> Result<(PathBuf, File), CheckpointError> {
    let pid = std::process::id();
    let mut taken = 0;
    let (tmp, file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{prefix}{pid}.{n}{SUFFIX}"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        match options.open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && taken < MAX_TAKEN => {
                taken += 1;
            }
            Err(e) => {
                let e = step("creating the temporary file", &tmp, e);
                return Err(CheckpointError::io(path, e));
            }
        }
    };
    // Blocking: a clean-up may hold the lock for an instant (it then finds
    // the file empty and leaves it). A file system without locks still
    // saves; no clean-up can then take a lock, so none removes anything.
    let _ = file.lock();
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode)) {
            let _ = fs::remove_file(&tmp);
            let e = step("setting the permissions of the temporary file", &tmp, e);
            return Err(CheckpointError::io(path, e));
        }
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok((tmp, file))
}

/// Removes the stale temporaries of the destination whose
/// [`temporary_prefix`] is `prefix` from `dir` (see the module).
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.map_while(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| temporary_pid(n, prefix)) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let tmp = entry.path();
        let Ok(file) = File::open(&tmp).or_else(|_| OpenOptions::new().write(true).open(&tmp))
        else {
            continue;
        };
        // The lock is held (the file open) until the file is removed.
        if file.try_lock().is_err() {
            continue;
        }
        let Ok(meta) = file.metadata() else {
            continue;
        };
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
        if is_stale(writer(pid), meta.len(), age) {
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// What is known of the process that wrote a temporary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    /// This process, or (Linux) one that `/proc` shows.
    Alive,
    /// (Linux) no such process.
    Dead,
    /// Not known: another process, on a system without `/proc`.
    Unknown,
}

/// What is known of process `pid`.
fn writer(pid: u32) -> Writer {
    if pid == std::process::id() {
        return Writer::Alive;
    }
    #[cfg(target_os = "linux")]
    if Path::new("/proc/self").exists() {
        return if Path::new(&format!("/proc/{pid}")).exists() {
            Writer::Alive
        } else {
            Writer::Dead
        };
    }
    Writer::Unknown
}

/// How long an empty temporary of a [`Writer::Unknown`] process is left.
const EMPTY_GRACE: Duration = Duration::from_secs(60);

/// Whether a temporary whose lock this process has just taken is stale,
/// given its writer, its length and the time since it was last modified.
///
/// A writer locks its temporary (blocking) before it writes a byte, so a
/// temporary with data whose lock was free has no writer any more. An
/// empty one may be a writer's that has created it and is about to lock it
/// (waiting for this lock): unless that process is known to be dead, it is
/// left until it is [`EMPTY_GRACE`] old.
fn is_stale(writer: Writer, len: u64, age: Option<Duration>) -> bool {
    match writer {
        Writer::Alive => false,
        Writer::Dead => true,
        Writer::Unknown => len > 0 || age.is_some_and(|a| a >= EMPTY_GRACE),
    }
}

/// Flushes a directory entry change (the rename) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("adadelta-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Records the flushes of a save: which, and what the destination held
    /// at that moment; `fail` makes the directory flush fail.
    fn recording<'a>(
        path: &'a Path,
        log: &'a mut Vec<String>,
        fail_dir: bool,
    ) -> impl FnMut(Flush<'_>) -> io::Result<()> + 'a {
        move |what| {
            let held = String::from_utf8(fs::read(path).unwrap_or_default()).unwrap();
            match what {
                Flush::File(_) => log.push(format!("file (destination: {held})")),
                Flush::Dir(_) => log.push(format!("dir (destination: {held})")),
            }
            match what {
                Flush::Dir(_) if fail_dir => Err(io::Error::other("simulated EIO")),
                what => flush(what),
            }
        }
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = temp_dir("fail");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old contents").unwrap();
        let err = atomic_write(&path, Durability::Durable, |f| {
            f.write_all(b"half a new fi")?;
            Err(io::Error::other("simulated crash").into())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: simulated crash", path.display())
        );
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_panicking_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = temp_dir("panic");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old contents").unwrap();
        let result = std::panic::catch_unwind(|| {
            atomic_write(&path, Durability::Durable, |f| {
                f.write_all(b"half a new fi").unwrap();
                panic!("simulated bug in a writer")
            })
        });
        assert!(result.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_successful_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = temp_dir("ok");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        atomic_write(&path, Durability::Durable, |f| Ok(f.write_all(b"new")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_durable_save_flushes_the_file_then_renames_then_flushes_the_directory() {
        let dir = temp_dir("durable");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        let mut log = Vec::new();
        let write = |f: &mut File| Ok(f.write_all(b"new")?);
        write_atomically(
            &path,
            Durability::Durable,
            write,
            &mut recording(&path, &mut log, false),
        )
        .unwrap();
        assert_eq!(log, ["file (destination: old)", "dir (destination: new)"]);
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_nosync_save_flushes_nothing() {
        let dir = temp_dir("nosync");
        let path = dir.join("ckpt.json");
        let mut log = Vec::new();
        let write = |f: &mut File| Ok(f.write_all(b"new")?);
        write_atomically(
            &path,
            Durability::NoSync,
            write,
            &mut recording(&path, &mut log, false),
        )
        .unwrap();
        assert_eq!(log, Vec::<String>::new());
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_directory_flush_after_the_rename_is_not_durable_and_the_new_file_is_in_place() {
        let dir = temp_dir("notdurable");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        let mut log = Vec::new();
        let write = |f: &mut File| Ok(f.write_all(b"new")?);
        let err = write_atomically(
            &path,
            Durability::Durable,
            write,
            &mut recording(&path, &mut log, true),
        )
        .unwrap_err();
        match &err {
            CheckpointError::NotDurable { path: p, source } => {
                assert_eq!(p, &path);
                assert_eq!(source.to_string(), "simulated EIO");
            }
            other => panic!("not NotDurable: {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the new file is in place, but its durability is unknown: \
                 flushing its directory failed: simulated EIO",
                path.display()
            )
        );
        assert_eq!(log, ["file (destination: old)", "dir (destination: new)"]);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_file_flush_keeps_the_old_file_names_the_destination_and_leaves_no_temporary() {
        let dir = temp_dir("filesync");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        let mut fail_file = |what: Flush<'_>| match what {
            Flush::File(_) => Err(io::Error::other("simulated EIO")),
            Flush::Dir(_) => panic!("no rename may happen"),
        };
        let write = |f: &mut File| Ok(f.write_all(b"new")?);
        let err = write_atomically(&path, Durability::Durable, write, &mut fail_file).unwrap_err();
        let text = err.to_string();
        let prefix = format!("{}: flushing to disk {}/.", path.display(), dir.display());
        assert!(text.starts_with(&prefix), "{text}");
        assert!(text.ends_with(".adadelta-tmp: simulated EIO"), "{text}");
        assert_eq!(err.path(), Some(path.as_path()));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_names_the_destination_and_leaves_no_temporary() {
        let dir = temp_dir("rename");
        // A non-empty directory cannot be renamed over.
        let path = dir.join("ckpt.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"x").unwrap();
        let err =
            atomic_write(&path, Durability::Durable, |f| Ok(f.write_all(b"new")?)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: renaming over it ", path.display())),
            "{text}"
        );
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error_that_names_it() {
        let err = atomic_write(Path::new("/"), Durability::Durable, |_| Ok(())).unwrap_err();
        assert_eq!(err.to_string(), "/: not a file path");
    }

    #[test]
    fn a_taken_temporary_name_is_skipped() {
        let dir = temp_dir("taken");
        let path = dir.join("c.json");
        let prefix = temporary_prefix(OsStr::new("c.json"));
        // The next names this process would take (other tests may take some).
        let next = COUNTER.load(Ordering::Relaxed);
        let pid = std::process::id();
        let squatters: Vec<PathBuf> = (next..next + 20)
            .map(|n| dir.join(format!("{prefix}{pid}.{n}{SUFFIX}")))
            .collect();
        for s in &squatters {
            fs::write(s, b"someone else's").unwrap();
        }
        atomic_write(&path, Durability::Durable, |f| Ok(f.write_all(b"x")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
        for s in &squatters {
            assert_eq!(fs::read(s).unwrap(), b"someone else's");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unlocked_temporary_is_stale_if_its_writer_is_dead_or_unknown_with_data_or_old() {
        let old = Some(EMPTY_GRACE);
        let young = Some(EMPTY_GRACE - Duration::from_millis(1));
        for (len, age) in [(0, None), (0, young), (0, old), (1, None), (1 << 40, old)] {
            assert!(!is_stale(Writer::Alive, len, age), "{len} {age:?}");
            assert!(is_stale(Writer::Dead, len, age), "{len} {age:?}");
        }
        // Unknown: data, or an empty file a minute old (not one just
        // created, whose writer may be about to lock it; a modification
        // time in the future gives no age).
        assert!(is_stale(Writer::Unknown, 1, None));
        assert!(is_stale(Writer::Unknown, 1, young));
        assert!(is_stale(Writer::Unknown, 0, old));
        assert!(!is_stale(Writer::Unknown, 0, young));
        assert!(!is_stale(Writer::Unknown, 0, None));
        assert_eq!(writer(std::process::id()), Writer::Alive);
        #[cfg(target_os = "linux")]
        {
            assert_eq!(writer(std::os::unix::process::parent_id()), Writer::Alive);
            assert_eq!(writer((1 << 22) + 1), Writer::Dead);
        }
    }

    #[test]
    fn temporary_names_are_short_fixed_and_recognised_only_for_their_destination() {
        // FNV-1a's published test vectors: the same in every process.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let long = "x".repeat(250) + ".json";
        let prefix = temporary_prefix(OsStr::new(&long));
        assert_eq!(prefix.len(), 18);
        let longest = format!("{prefix}{}.{}{SUFFIX}", u32::MAX, u64::MAX);
        assert_eq!(longest.len(), 62);
        assert_eq!(temporary_pid(&longest, &prefix), Some(u32::MAX));
        assert_eq!(
            temporary_pid(&format!("{prefix}12.0{SUFFIX}"), &prefix),
            Some(12)
        );
        let other = temporary_prefix(OsStr::new("ckpt.json"));
        assert_ne!(other, prefix);
        for name in [
            format!("{other}12.0{SUFFIX}"),
            format!("{prefix}12{SUFFIX}"),
            format!("{prefix}12.0.1{SUFFIX}"),
            format!("{prefix}.0{SUFFIX}"),
            format!("{prefix}12.{SUFFIX}"),
            format!("{prefix}+12.0{SUFFIX}"),
            format!("{prefix}12.x{SUFFIX}"),
            format!("{prefix}99999999999.0{SUFFIX}"),
            format!("{prefix}12.0{SUFFIX}~"),
            format!("{prefix}12.0.tmp"),
            prefix[1..].to_string() + "12.0" + SUFFIX,
        ] {
            assert_eq!(temporary_pid(&name, &prefix), None, "{name}");
        }
    }
}
