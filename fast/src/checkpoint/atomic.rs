//! Atomic file writes: a temporary sibling, flushed, renamed over the
//! destination, and the directory flushed.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{CheckpointError, Durability};

/// Writes `path` through a temporary sibling and a rename (see
/// [`super::save`]). `write` gets the temporary file.
pub(crate) fn atomic_write(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut File) -> Result<(), CheckpointError>,
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
    // A fresh temporary name: the process id and a counter, created with
    // create_new so that two writers never share one.
    let mut n = 0u32;
    let (tmp, mut file) = loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp.{}.{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
            Err(e) => return Err(CheckpointError::io(&tmp, e)),
        }
    };
    let result = (|| {
        write(&mut file).map_err(|e| e.with_path(&tmp))?;
        if durability == Durability::Durable {
            file.sync_all().map_err(|e| CheckpointError::io(&tmp, e))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(|e| CheckpointError::io(path, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if durability == Durability::NoSync {
        return Ok(());
    }
    // The rename happened: the new file is in place whatever follows.
    sync_dir(&dir).map_err(|source| CheckpointError::NotDurable {
        path: path.to_path_buf(),
        source,
    })
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
        let d =
            std::env::temp_dir().join(format!("adadelta-statedict-{tag}-{}", std::process::id()));
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

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = temp_dir("fail");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old contents").unwrap();
        let err = atomic_write(&path, Durability::Durable, |f| {
            f.write_all(b"half a new fi")?;
            Err(io::Error::other("simulated crash").into())
        })
        .unwrap_err();
        assert!(err.to_string().ends_with("simulated crash"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn successful_write_replaces_and_leaves_no_temporary() {
        let dir = temp_dir("ok");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        atomic_write(&path, Durability::Durable, |f| Ok(f.write_all(b"new")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_taken_temporary_name_is_skipped() {
        let dir = temp_dir("taken");
        let path = dir.join("c.json");
        let squatter = dir.join(format!(".c.json.tmp.{}.0", std::process::id()));
        fs::write(&squatter, b"someone else's").unwrap();
        atomic_write(&path, Durability::Durable, |f| Ok(f.write_all(b"x")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
        assert_eq!(fs::read(&squatter).unwrap(), b"someone else's");
        fs::remove_dir_all(&dir).unwrap();
    }
}
