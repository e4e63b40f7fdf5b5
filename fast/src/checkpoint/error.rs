//! [`CheckpointError`]: why a save or a load failed, and which file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// The longest excerpt of a value that an error message quotes; longer
/// values are cut, with their length and position said instead.
pub(crate) const EXCERPT_CHARS: usize = 80;

/// Why saving or loading a checkpoint failed. Every variant names the file
/// when there is one (`path`); the message starts with it.
///
/// ```
/// let err = adadelta::StateDict::<f32>::from_json_str("{").unwrap_err();
/// assert!(matches!(err, adadelta::CheckpointError::Json { .. }));
/// let err = adadelta::StateDict::<f32>::from_json_str(r#"{"state": {}, "param_groups": [{}]}"#).unwrap_err();
/// assert!(err.to_string().starts_with("invalid state dict: param_groups[0] has no \"lr\""), "{err}");
/// let err = adadelta::StateDict::<f32>::load("/nonexistent/adadelta.json").unwrap_err();
/// assert!(err.to_string().starts_with("/nonexistent/adadelta.json: "), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing failed.
    Io {
        /// The file, when the operation was on a file.
        path: Option<PathBuf>,
        /// What the system said.
        source: io::Error,
    },
    /// The text is not JSON of the expected structure.
    Json {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's error, with its line and column.
        source: serde_json::Error,
    },
    /// The bytes are not a valid file of the format (a torch.save zip or
    /// pickle, a safetensors file): the message says what was found where.
    Format {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What was found, and where.
        message: String,
    },
    /// The content is not a valid state dict, or does not fit the optimizer.
    Invalid {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        source: Error,
    },
    /// The new file is in place at `path` (it was renamed over the old one),
    /// but flushing the directory afterwards failed: whether the rename
    /// survives a power loss is unknown. The old file is gone.
    NotDurable {
        /// The destination, which now holds the new file.
        path: PathBuf,
        /// Why the directory could not be flushed.
        source: io::Error,
    },
}

impl CheckpointError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        CheckpointError::Io {
            path: Some(path.to_path_buf()),
            source,
        }
    }

    /// A format error, not yet tied to a file.
    pub(crate) fn format(message: impl Into<String>) -> Self {
        CheckpointError::Format {
            path: None,
            message: message.into(),
        }
    }

    /// The same error, naming `path` if it named no file yet.
    pub(crate) fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            CheckpointError::Io { path, .. }
            | CheckpointError::Json { path, .. }
            | CheckpointError::Format { path, .. }
            | CheckpointError::Invalid { path, .. } => {
                if path.is_none() {
                    *path = Some(file.to_path_buf());
                }
            }
            CheckpointError::NotDurable { .. } => {}
        }
        self
    }

    /// The file the error is about, if any.
    ///
    /// ```
    /// let err = adadelta::StateDict::<f32>::load("/nonexistent/a.json").unwrap_err();
    /// assert_eq!(err.path(), Some(std::path::Path::new("/nonexistent/a.json")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match self {
            CheckpointError::Io { path, .. }
            | CheckpointError::Json { path, .. }
            | CheckpointError::Format { path, .. }
            | CheckpointError::Invalid { path, .. } => path.as_deref(),
            CheckpointError::NotDurable { path, .. } => Some(path),
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let CheckpointError::NotDurable { path, source } = self {
            return write!(
                f,
                "{}: the new file is in place, but its durability is unknown: \
                 flushing its directory failed: {source}",
                path.display()
            );
        }
        if let Some(p) = self.path() {
            write!(f, "{}: ", p.display())?;
        }
        match self {
            CheckpointError::Io { source, .. } => write!(f, "{source}"),
            CheckpointError::Json { source, .. } => write!(f, "state dict JSON: {source}"),
            CheckpointError::Format { message, .. } => write!(f, "{message}"),
            CheckpointError::Invalid { source, .. } => write!(f, "{source}"),
            CheckpointError::NotDurable { .. } => unreachable!("handled above"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } | CheckpointError::NotDurable { source, .. } => {
                Some(source)
            }
            CheckpointError::Json { source, .. } => Some(source),
            CheckpointError::Format { .. } => None,
            CheckpointError::Invalid { source, .. } => Some(source),
        }
    }
}

impl From<io::Error> for CheckpointError {
    fn from(source: io::Error) -> Self {
        CheckpointError::Io { path: None, source }
    }
}

impl From<serde_json::Error> for CheckpointError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            CheckpointError::Io {
                path: None,
                source: e.into(),
            }
        } else {
            CheckpointError::Json {
                path: None,
                source: e,
            }
        }
    }
}

impl From<Error> for CheckpointError {
    fn from(source: Error) -> Self {
        CheckpointError::Invalid { path: None, source }
    }
}

/// `text`, cut to [`EXCERPT_CHARS`] characters with its full length said,
/// for quoting a value of any size in an error message.
///
/// ```ignore
/// assert_eq!(excerpt("short"), "short");
/// ```
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}... ({} bytes in all)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_keeps_short_text_and_cuts_long_text_at_a_char_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(1000);
        let e = excerpt(&long);
        assert!(e.starts_with(&"é".repeat(EXCERPT_CHARS)));
        assert!(e.ends_with("... (2000 bytes in all)"), "{e}");
    }

    #[test]
    fn an_io_error_names_its_file() {
        let e = CheckpointError::from(io::Error::other("boom")).with_path(Path::new("/a/b.pt"));
        assert_eq!(e.to_string(), "/a/b.pt: boom");
        assert_eq!(e.path(), Some(Path::new("/a/b.pt")));
    }
}
