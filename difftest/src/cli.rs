//! What the `report` and `replay` commands share at their edges: arguments
//! that need not be UTF-8, input files that are read only if they are
//! regular files of bounded size, and output whose failure (a full disk, a
//! closed pipe) is an error message and an exit code, never a panic.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

/// The command-line arguments after the program name, as UTF-8 strings, or
/// the message naming the first one that is not UTF-8 (shown lossily, with
/// U+FFFD where its bytes are not UTF-8).
pub fn args() -> Result<Vec<String>, String> {
    args_from(std::env::args_os().skip(1))
}

/// [`args`] over given arguments.
pub fn args_from(raw: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, String> {
    raw.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {:?} is not valid UTF-8", a.to_string_lossy()))
        })
        .collect()
}

/// The path a flag such as `--out` takes: the next argument, unless there
/// is none or it is another flag; else "`flag` needs a path".
pub fn path_after(flag: &str, next: Option<String>) -> Result<String, String> {
    match next {
        Some(p) if !p.starts_with('-') => Ok(p),
        _ => Err(format!("{flag} needs a path")),
    }
}

/// The text of the file at `path`, if it is a regular file (not a FIFO, a
/// device or a directory: checked before opening it, since opening a FIFO
/// without a writer blocks forever) of at most `limit` bytes, in UTF-8.
/// Every error names the path.
pub fn read_text(path: &str, limit: u64) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("{path}: {e}");
    let regular = |m: &std::fs::Metadata| {
        if m.is_file() {
            Ok(())
        } else {
            Err(format!(
                "{path}: not a regular file (a FIFO, a device or a directory is not read)"
            ))
        }
    };
    regular(&std::fs::metadata(path).map_err(fail)?)?;
    let file = std::fs::File::open(path).map_err(fail)?;
    regular(&file.metadata().map_err(fail)?)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{path}: larger than the limit of {limit} bytes for this command"
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("{path}: not UTF-8 text ({e})"))
}

/// Writes `text` to standard output and flushes it; a failure (a full disk,
/// a closed pipe) is the message to print, not a panic.
pub fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))
}

/// Writes `text` to standard error, ignoring a failure: progress and error
/// messages must not turn a closed or full standard error (as in
/// `report 2>&1 | head -1`) into a panic, and have nowhere else to go.
pub fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// An output file checked before a long run: opened for writing (created if
/// missing, not truncated), so that a path that cannot be written fails at
/// once; [`Output::write`] replaces its content at the end.
pub struct Output {
    path: String,
    file: std::fs::File,
}

impl Output {
    /// Opens `path` for writing, or the message naming it.
    pub fn open(path: &str) -> Result<Output, String> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(Path::new(path))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        Ok(Output {
            path: path.to_string(),
            file,
        })
    }

    /// Replaces the file's content with `text`.
    pub fn write(mut self, text: &str) -> Result<(), String> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(text.as_bytes()))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", self.path))
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_non_utf8_argument_is_named_in_the_error() {
        let raw = vec![
            OsString::from("ok"),
            OsString::from_vec(b"\xff.json".to_vec()),
        ];
        assert_eq!(
            args_from(raw),
            Err("argument \"\u{fffd}.json\" is not valid UTF-8".into())
        );
        assert_eq!(
            args_from(vec![OsString::from("a.json")]),
            Ok(vec!["a.json".to_string()])
        );
    }

    #[test]
    fn files_beyond_the_limit_and_non_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("adadelta-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.json");
        std::fs::write(&f, "12345").unwrap();
        let p = f.to_str().unwrap();
        assert_eq!(read_text(p, 5), Ok("12345".into()));
        let e = read_text(p, 4).unwrap_err();
        assert!(e.contains("larger than the limit of 4 bytes"), "{e}");
        let e = read_text(dir.to_str().unwrap(), 100).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(read_text("/dev/zero", 100)
            .unwrap_err()
            .contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
