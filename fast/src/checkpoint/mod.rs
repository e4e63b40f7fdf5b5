//! Checkpoints: the optimizer's state dict (and a whole training
//! checkpoint) in files, in three formats, saved atomically and streamed.
//!
//! | [`Format`] | what it is | for |
//! |---|---|---|
//! | [`Format::Torch`] | PyTorch's own `torch.save` zip format ([`torch`]) | moving checkpoints to and from PyTorch, no Python needed |
//! | [`Format::Safetensors`] | the `safetensors` format ([`safetensors`](mod@safetensors)) | the Rust ecosystem's tensor files |
//! | [`Format::Json`] | bit-exact JSON ([`json`]) | small checkpoints people read |
//!
//! Every save streams from the live state ([`StateDictRef`]): nothing is
//! copied first. Every load reads the tensors straight into the buffers
//! that become the optimizer's state, checks everything, and only then
//! replaces the optimizer's state ([`Adadelta::load`](crate::Adadelta::load)).
//! A load tells the format from the file's first bytes, so any of the three
//! loads through the same call.
//!
//! Saves are atomic: a temporary sibling is written, flushed, renamed over
//! the destination and the directory flushed ([`SaveOptions`]).
//!
//! ```
//! use adadelta::{Adadelta, Param};
//! use adadelta::checkpoint::{Format, SaveOptions};
//! let dir = std::env::temp_dir();
//! let mut opt = Adadelta::new(vec![Param::new(vec![1.0, 2.0])], Default::default())?;
//! opt.params_mut()[0].set_grad(vec![0.5, -0.5])?;
//! opt.step()?;
//! for name in ["doc-ckpt.pt", "doc-ckpt.safetensors", "doc-ckpt.json"] {
//!     let path = dir.join(format!("{}-{name}", std::process::id()));
//!     opt.save(&path)?; // the format from the extension
//!     let mut resumed = Adadelta::new(vec![Param::new(vec![1.0, 2.0])], Default::default())?;
//!     resumed.load(&path)?; // the format from the content
//!     assert_eq!(resumed.state_dict(), opt.state_dict());
//!     std::fs::remove_file(&path)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod error;
pub mod json;
pub mod safetensors;
mod stored;
pub mod torch;
mod view;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;

pub(crate) use atomic::atomic_write;
pub(crate) use error::excerpt;
pub use error::CheckpointError;
pub use stored::Stored;
pub use view::{ParamStateRef, StateDictRef, TensorRef};

use crate::optimizer::StateDict;

/// A checkpoint file format.
///
/// ```
/// use adadelta::checkpoint::Format;
/// assert_eq!(Format::from_path("run/opt.json"), Format::Json);
/// assert_eq!(Format::from_path("run/opt.safetensors"), Format::Safetensors);
/// assert_eq!(Format::from_path("run/checkpoint.pt"), Format::Torch);
/// assert_eq!(Format::detect(b"PK\x03\x04"), Some(Format::Torch));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// PyTorch's `torch.save` format: a zip of a pickle and raw tensor data.
    Torch,
    /// A safetensors file: the tensors, and `param_groups` in the metadata.
    Safetensors,
    /// This crate's bit-exact JSON.
    Json,
}

impl Format {
    /// The format a file name asks for: `.json` is JSON, `.safetensors` is
    /// safetensors, anything else (`.pt`, `.pth`, `.ckpt`, no extension) is
    /// PyTorch's, as `torch.save` writes any name.
    pub fn from_path(path: impl AsRef<Path>) -> Format {
        match path.as_ref().extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            Some(e) if e.eq_ignore_ascii_case("safetensors") => Format::Safetensors,
            _ => Format::Torch,
        }
    }

    /// The format of a file from its first bytes (up to 9 are looked at), or
    /// `None` when they are none of the three.
    pub fn detect(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"PK") {
            return Some(Format::Torch);
        }
        if head.len() >= 9 && head[8] == b'{' {
            return Some(Format::Safetensors);
        }
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Some(Format::Json),
            _ => None,
        }
    }
}

/// Whether a save waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// The file is flushed to disk before the rename, and the directory
    /// after it: once the save returns, a power loss keeps the new file.
    #[default]
    Durable,
    /// No flush: the save is still atomic against a crash of the process
    /// (the old file or the new one, never a mix), but a power loss may
    /// lose the new file. Faster.
    NoSync,
}

/// How [`save`] writes.
///
/// ```
/// use adadelta::checkpoint::{Durability, Format, SaveOptions};
/// let o = SaveOptions::default();
/// assert_eq!((o.format, o.durability), (None, Durability::Durable));
/// let o = SaveOptions::new(Format::Safetensors).durability(Durability::NoSync);
/// assert_eq!(o.format, Some(Format::Safetensors));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SaveOptions {
    /// The format; `None` takes it from the file name ([`Format::from_path`]).
    pub format: Option<Format>,
    /// Whether to wait for the disk.
    pub durability: Durability,
}

impl SaveOptions {
    /// Saving in `format`, durably.
    pub fn new(format: Format) -> Self {
        SaveOptions {
            format: Some(format),
            durability: Durability::Durable,
        }
    }

    /// The same, with `durability`.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// Writes `sd` to `path` atomically, in the format of `options`. `T` is the
/// state's element type (`f32`, `f64`, `half::bf16` or `half::f16`),
/// recorded as the running averages' dtype in every format; the step
/// counters are float32, as PyTorch keeps them (so a float64, bfloat16 or
/// float16 state dict in the `torch.save` format is what
/// `torch.save(opt.state_dict())` writes for a `torch.optim.Adadelta` of
/// that dtype).
///
/// ```
/// use adadelta::checkpoint::{self, Format, SaveOptions};
/// use adadelta::{Adadelta, Param};
/// let path = std::env::temp_dir().join(format!("adadelta-doc-cksave-{}", std::process::id()));
/// let sd = adadelta::StateDict::<f32>::default();
/// checkpoint::save(&path, &sd.as_ref(), &SaveOptions::new(Format::Safetensors))?;
/// assert_eq!(checkpoint::load::<f32>(&path)?, sd);
///
/// let mut opt = Adadelta::new(vec![Param::from_vec(vec![1.0_f64, -2.0])], Default::default())?;
/// opt.params_mut()[0].set_grad(vec![0.5, 0.25])?;
/// opt.step()?;
/// checkpoint::save(&path, &opt.state_dict_ref(), &SaveOptions::new(Format::Torch))?;
/// assert_eq!(checkpoint::load::<f64>(&path)?, opt.state_dict());
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save<T: Stored>(
    path: impl AsRef<Path>,
    sd: &StateDictRef<'_, T>,
    options: &SaveOptions,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let format = options.format.unwrap_or_else(|| Format::from_path(path));
    atomic_write(path, options.durability, |file| match format {
        Format::Json => json::write(sd, file),
        Format::Torch => torch::write_state_dict(file, sd, &torch::archive_name(path)),
        Format::Safetensors => safetensors::write(file, sd),
    })
}

/// Reads a state dict from `path`, in whichever of the three formats it is,
/// with running averages of the element type `T` (`f32`, `f64`,
/// `half::bf16` or `half::f16`); a file whose averages have another dtype
/// is refused, naming both dtypes and the tensor.
///
/// ```
/// let err = adadelta::checkpoint::load::<f32>("/nonexistent/x.pt").unwrap_err();
/// assert!(err.to_string().starts_with("/nonexistent/x.pt: "), "{err}");
/// ```
///
/// ```
/// use adadelta::checkpoint::{self, Format, SaveOptions};
/// use adadelta::half::{bf16, f16};
/// use adadelta::{Adadelta, Param};
/// let path = std::env::temp_dir().join(format!("adadelta-doc-ckload-{}.safetensors", std::process::id()));
/// let mut opt = Adadelta::new(vec![Param::from_vec(vec![bf16::from_f32(1.0); 3])], Default::default())?;
/// opt.params_mut()[0].set_grad(vec![bf16::from_f32(0.5); 3])?;
/// opt.step()?;
/// opt.save(&path)?;
/// assert_eq!(checkpoint::load::<bf16>(&path)?, opt.state_dict());
/// let err = checkpoint::load::<f16>(&path).unwrap_err().to_string();
/// assert!(err.contains("has dtype BF16; expected F16"), "{err}");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load<T: Stored>(path: impl AsRef<Path>) -> Result<StateDict<T>, CheckpointError> {
    let path = path.as_ref();
    load_inner(path).map_err(|e| e.with_path(path))
}

fn load_inner<T: Stored>(path: &Path) -> Result<StateDict<T>, CheckpointError> {
    let mut file = open(path)?;
    match sniff(&mut file)? {
        Format::Json => json::read(file),
        Format::Torch => torch::read_state_dict(file),
        Format::Safetensors => safetensors::read(file),
    }
}

/// Opens `path` for reading; a FIFO, a directory or a device is refused
/// before it is opened (opening a FIFO with no writer blocks forever), and
/// again on the opened file (in case the path was replaced in between).
pub(crate) fn open(path: &Path) -> Result<File, CheckpointError> {
    let meta = std::fs::metadata(path).map_err(|e| CheckpointError::io(path, e))?;
    if !meta.is_file() {
        return Err(CheckpointError::format("not a regular file").with_path(path));
    }
    let file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    let meta = file.metadata().map_err(|e| CheckpointError::io(path, e))?;
    if !meta.is_file() {
        return Err(CheckpointError::format("not a regular file").with_path(path));
    }
    Ok(file)
}

/// The format of `file` from its first bytes; the file is left at its start.
fn sniff(file: &mut File) -> Result<Format, CheckpointError> {
    use std::io::{Seek, SeekFrom};
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let head = &head[..n];
    if let Some(f) = Format::detect(head) {
        return Ok(f);
    }
    if torch::is_legacy(head) {
        return Err(torch::legacy_error());
    }
    Err(CheckpointError::format(format!(
        "not a checkpoint: the file starts with {head:02x?}, which is neither a zip \
         (torch.save), a safetensors header nor JSON"
    )))
}

/// [`save_json`](crate::save_json): any value as JSON, atomically.
pub(crate) fn save_json_value<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<(), CheckpointError> {
    atomic_write(path, Durability::Durable, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut w, value)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(())
    })
}

/// [`load_json`](crate::load_json): any value from JSON.
pub(crate) fn load_json_value<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<T, CheckpointError> {
    let file = open(path)?;
    serde_json::from_reader(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| CheckpointError::from(e).with_path(path))
}
