//! PyTorch's own `torch.save` format, read and written in Rust: no Python,
//! no libtorch.
//!
//! A `torch.save` file is a zip archive (through the `zip` crate) whose
//! records sit under one folder, `<name>/`, stored uncompressed:
//!
//! | record | holds |
//! |---|---|
//! | `data.pkl` | the saved object, pickled (protocol 2) |
//! | `data/<key>` | one storage's raw little-endian elements, aligned to 64 bytes |
//! | `.format_version`, `.storage_alignment`, `byteorder`, `version` | `1`, `64`, `little`, `3` |
//! | `.data/serialization_id` | an identifier of the file |
//!
//! A tensor in the pickle is `torch._utils._rebuild_tensor_v2(storage,
//! offset, size, stride, requires_grad, hooks)`, its storage a persistent id
//! `('storage', torch.FloatStorage, key, location, numel)` (the storage
//! class names the dtype: `torch.DoubleStorage` for float64).
//!
//! **The pickle subset is this crate's own.** No published crate reads and
//! writes this format safely: a general unpickler executes code, and the
//! format is simple enough to check completely. The reader accepts only
//! what `torch.load(weights_only=True)` accepts, and of that only what
//! state dicts and training checkpoints use: the opcodes of protocol 2 that
//! build data (no others, as `weights_only` has none), and four kinds of
//! global: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter`, and torch's storage classes. Nothing
//! is executed. Anything else is an error that names it and its byte
//! position in `data.pkl`.
//!
//! **Bounds on a hostile file.** `data.pkl` is read only up to 64 MiB; it
//! may make at most 4,000,000 values (about 120 bytes each), and the tree
//! they form, shared references expanded, may take at most 256 MiB and nest
//! at most 200 deep, which is checked before the tree is built. Every
//! tensor must lie inside its storage (a view of more elements than its
//! storage, an expanded tensor, is refused), every storage record must have
//! exactly its declared size, and every record's CRC-32 is checked. So a
//! load takes the file's own size in tensor memory (more only when tensors
//! share a storage: each is read into its own buffer) plus at most about
//! 800 MiB, and a hostile file gives an error, never a panic or a hang.
//!
//! **Dtypes.** float32, float64, bfloat16 and float16 tensors are read and
//! written, each as its element type ([`Stored`]: `f32`, `f64`,
//! `half::bf16`, `half::f16`); a written tree may mix them
//! ([`AnyTensorRef`]). An optimizer state dict of `f64` is written as
//! `torch.save(opt.state_dict())` writes a float64 `torch.optim.Adadelta`'s:
//! `step` a 0-dim float32 tensor, `square_avg` and `acc_delta` float64
//! (`DoubleStorage`); of `bf16` or `f16` likewise, the averages in
//! `BFloat16Storage` or `HalfStorage`. A
//! read names the element type (`state_dict_at::<f64>`,
//! `tensors_at::<f32>`, [`checkpoint::load::<f64>`](crate::checkpoint::load)):
//! a tensor of another dtype is refused, naming both dtypes and the
//! tensor. A `step` of float64 (what PyTorch saves under
//! `torch.set_default_dtype(torch.float64)`) or a plain number (PyTorch
//! before 1.12) is rounded to float32, as `torch.tensor(step,
//! dtype=torch.float32)` rounds it; a `step` of any other dtype is refused.
//! Tensors of other dtypes are read as [`TensorInfo`]s, which name their
//! dtype, but their elements are not read. The legacy pre-zip `torch.save`
//! format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`) is
//! recognised and refused with a message.
//!
//! ```
//! use adadelta::checkpoint::torch::{self, TorchFile, Value};
//! use adadelta::{Adadelta, Param};
//! let path = std::env::temp_dir().join(format!("adadelta-doc-torch-{}.pt", std::process::id()));
//! let mut opt = Adadelta::new(vec![Param::new(vec![1.0, 2.0])], Default::default())?;
//! opt.params_mut()[0].set_grad(vec![0.5, 0.5])?;
//! opt.step()?;
//! let weights = [1.0_f32, 2.0];
//! // A training checkpoint, as `torch.save({"model": ..., "optimizer": ..., "epoch": 3})` writes it.
//! let sd = opt.state_dict_ref();
//! let ckpt = Value::dict([
//!     ("model", torch::tensors_value([("w", adadelta::checkpoint::TensorRef { shape: vec![2].into(), data: &weights })])),
//!     ("optimizer", torch::state_dict_value(&sd)?),
//!     ("epoch", Value::Int(3)),
//! ]);
//! torch::save(&path, &ckpt, Default::default())?;
//!
//! let mut file = TorchFile::open(&path)?;
//! assert_eq!(file.get("epoch"), Some(&Value::Int(3)));
//! assert_eq!(file.state_dict_at::<f32>("optimizer")?, opt.state_dict());
//! let model = file.tensors_at::<f32>("model")?;
//! assert_eq!((model[0].0.as_str(), model[0].1.data()), ("w", &weights[..]));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod layout;
mod pickle;
mod unpickle;
mod value;

use std::any::Any;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

pub use value::{AnyTensorRef, Dtype, TensorInfo, Value};

use super::{atomic_write, excerpt, CheckpointError, Durability, StateDictRef, Stored};
use crate::optimizer::{StateDict, TensorData};
use archive::{Archive, ArchiveWriter};

/// The archive's top folder, as `torch.save` names it: the file name
/// without its extension.
pub(crate) fn archive_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .unwrap_or("archive")
        .to_string()
}

/// Whether `head` starts as a legacy (pre-zip) torch.save file does: a
/// pickled magic number.
pub(crate) fn is_legacy(head: &[u8]) -> bool {
    head.starts_with(&[0x80, 0x02, 0x8a, 0x0a])
}

/// The error for a legacy (pre-zip) `torch.save` file.
pub(crate) fn legacy_error() -> CheckpointError {
    CheckpointError::format(
        "this is PyTorch's legacy (pre-1.6, non-zip) torch.save format, which is not \
         supported: load it in PyTorch and save it again with a current version",
    )
}

/// The optimizer state dict `sd` as the [`Value`] that
/// `torch.save(optimizer.state_dict())` pickles, to save alone or inside a
/// training checkpoint. Its tensors borrow `sd`'s: each `step` a 0-dim
/// float32 tensor (as PyTorch keeps it), `square_avg` and `acc_delta` of
/// the state's element type `E`.
///
/// ```
/// use adadelta::checkpoint::torch::{self, Dtype, Value};
/// use adadelta::{Adadelta, Param};
/// let mut opt = Adadelta::new(vec![Param::from_vec(vec![1.0_f64, 2.0])], Default::default())?;
/// opt.params_mut()[0].set_grad(vec![0.5, 0.5])?;
/// opt.step()?;
/// let view = opt.state_dict_ref();
/// let v = torch::state_dict_value(&view)?;
/// let Some(Value::Dict(state)) = v.get("state") else { unreachable!() };
/// let dtype = |key| match state[0].1.get(key) { Some(Value::Tensor(t)) => t.dtype(), _ => unreachable!() };
/// assert_eq!((dtype("step"), dtype("square_avg")), (Dtype::Float32, Dtype::Float64));
/// assert!(matches!(v.get("param_groups"), Some(Value::List(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn state_dict_value<'a, E: Stored>(
    sd: &'a StateDictRef<'a, E>,
) -> Result<Value<AnyTensorRef<'a>>, CheckpointError> {
    layout::state_dict_value(sd)
}

/// A module state dict (name → tensor, in order) as the [`Value`] that
/// `torch.save(model.state_dict())` pickles; `load_state_dict` of a PyTorch
/// module takes it. Each tensor is a
/// [`TensorRef`](crate::checkpoint::TensorRef) of `f32`, `f64`,
/// `half::bf16` or `half::f16`, or, to mix dtypes in one dict, an
/// [`AnyTensorRef`].
///
/// ```
/// use adadelta::checkpoint::{torch, TensorRef};
/// let w = [0.5_f32; 6];
/// let v = torch::tensors_value([("fc.weight", TensorRef { shape: vec![2, 3].into(), data: &w })]);
/// assert!(matches!(v.get("fc.weight"), Some(torch::Value::Tensor(_))));
/// let (a, b) = ([1.0_f32], [2.0_f64]);
/// let mixed = torch::tensors_value([
///     ("a", torch::AnyTensorRef::from(TensorRef { shape: vec![1].into(), data: &a })),
///     ("b", TensorRef { shape: vec![1].into(), data: &b }.into()),
/// ]);
/// assert!(matches!(mixed.get("b"), Some(torch::Value::Tensor(t)) if t.dtype() == torch::Dtype::Float64));
/// ```
pub fn tensors_value<'a, S: AsRef<str>, T: Into<AnyTensorRef<'a>>>(
    named: impl IntoIterator<Item = (S, T)>,
) -> Value<AnyTensorRef<'a>> {
    layout::tensors_value(named)
}

/// Writes `value` to `path` in the `torch.save` format, atomically (see
/// [`checkpoint::save`](crate::checkpoint::save)); `torch.load(path,
/// weights_only=True)` reads it.
pub fn save(
    path: impl AsRef<Path>,
    value: &Value<AnyTensorRef<'_>>,
    durability: Durability,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let name = archive_name(path);
    atomic_write(path, durability, |file| write(file, value, &name))
}

/// Writes `value` in the `torch.save` format to `writer`, its records under
/// the folder `archive`.
///
/// ```
/// use adadelta::checkpoint::torch::{self, AnyTensorRef, Value};
/// let mut out = std::io::Cursor::new(Vec::new());
/// torch::write(&mut out, &Value::<AnyTensorRef>::Int(7), "archive")?;
/// assert_eq!(&out.get_ref()[..2], b"PK");
/// # Ok::<(), adadelta::CheckpointError>(())
/// ```
pub fn write<W: Write + Seek>(
    writer: W,
    value: &Value<AnyTensorRef<'_>>,
    archive: &str,
) -> Result<(), CheckpointError> {
    let (pkl, tensors) = pickle::pickle(value)?;
    let mut zip = ArchiveWriter::new(BufWriter::with_capacity(1 << 20, writer), archive);
    zip.record("data.pkl", &pkl)?;
    zip.record(".format_version", b"1")?;
    zip.record(".storage_alignment", b"64")?;
    zip.record("byteorder", b"little")?;
    for (key, t) in tensors.iter().enumerate() {
        zip.record_elements(&format!("data/{key}"), t.native_bytes(), t.dtype().size())?;
    }
    zip.record("version", b"3\n")?;
    zip.record(".data/serialization_id", serialization_id(&pkl).as_bytes())?;
    zip.finish()?.flush()?;
    Ok(())
}

/// A 40-digit identifier of the file, as `torch.save` writes one: here a
/// hash of the pickle (FNV-1a), so that the same content gives the same file.
fn serialization_id(pkl: &[u8]) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in pkl {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{:040}", h % 10u128.pow(38))
}

/// The `torch.save` writer of [`checkpoint::save`](crate::checkpoint::save).
pub(crate) fn write_state_dict<E: Stored>(
    file: &mut File,
    sd: &StateDictRef<'_, E>,
    archive: &str,
) -> Result<(), CheckpointError> {
    write(file, &layout::state_dict_value(sd)?, archive)
}

/// The `torch.save` reader of [`checkpoint::load`](crate::checkpoint::load).
pub(crate) fn read_state_dict<E: Stored>(file: File) -> Result<StateDict<E>, CheckpointError> {
    TorchFile::from_file(file)?.state_dict()
}

/// An open `torch.save` file: its pickle parsed into a [`Value`] whose
/// tensors are [`TensorInfo`]s, their elements read on demand.
///
/// Read an optimizer state dict with [`state_dict`](Self::state_dict) (the
/// file holds one) or [`state_dict_at`](Self::state_dict_at) (a training
/// checkpoint holds one under a key); a module's state dict with
/// [`tensors`](Self::tensors) / [`tensors_at`](Self::tensors_at); anything
/// else (an epoch, a scheduler's state) from [`root`](Self::root) and
/// [`get`](Self::get). Each read of elements names their element type,
/// `f32`, `f64`, `half::bf16` or `half::f16`
/// (`file.state_dict_at::<f64>("optimizer")`). See the
/// [module docs](self) for an example.
pub struct TorchFile {
    archive: Archive,
    root: Value,
    path: Option<PathBuf>,
    /// Storages read ahead, in parallel ([`prefetch`](Self::prefetch)), by
    /// key: a [`Ready`] of the element type being read.
    ready: Option<Box<dyn Any + Send + Sync>>,
}

/// Storages read ahead, by key, of one element type.
type Ready<E> = HashMap<String, Vec<E>>;

impl std::fmt::Debug for TorchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchFile")
            .field("path", &self.path)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl TorchFile {
    /// Opens `path` and reads its pickle (not its tensors' elements).
    ///
    /// ```
    /// let err = adadelta::checkpoint::torch::TorchFile::open("/nonexistent.pt").unwrap_err();
    /// assert!(err.to_string().starts_with("/nonexistent.pt: "));
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<TorchFile, CheckpointError> {
        let path = path.as_ref();
        let file = super::open(path)?;
        let mut f = TorchFile::from_file(file).map_err(|e| e.with_path(path))?;
        f.path = Some(path.to_path_buf());
        Ok(f)
    }

    /// Reads the pickle of an open file.
    pub fn from_file(file: File) -> Result<TorchFile, CheckpointError> {
        let mut head = [0u8; 4];
        {
            use std::io::{Read, SeekFrom};
            let mut f = &file;
            let n = f.read(&mut head)?;
            if is_legacy(&head[..n]) {
                return Err(legacy_error());
            }
            // A zip reader finds an archive anywhere before its end record;
            // torch.load, and `checkpoint::load`, read one only at the start.
            if !head[..n].starts_with(b"PK") {
                return Err(CheckpointError::format(format!(
                    "not a torch.save file: it starts with {:02x?}, not a zip archive's \"PK\"",
                    &head[..n]
                )));
            }
            f.seek(SeekFrom::Start(0))?;
        }
        let mut archive = Archive::open(file)?;
        let pkl = archive.pickle()?;
        let root = unpickle::unpickle(&pkl)?;
        Ok(TorchFile {
            archive,
            root,
            path: None,
            ready: None,
        })
    }

    fn at_path(&self, e: CheckpointError) -> CheckpointError {
        match &self.path {
            Some(p) => e.with_path(p),
            None => e,
        }
    }

    /// The saved object.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The value under the string key `key` of the saved dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.root.get(key)
    }

    /// The elements of a tensor of this file, of the element type `E`
    /// (`f32` for a float32 tensor, `f64` for a float64 one, `half::bf16`
    /// and `half::f16` for bfloat16 and float16 ones), in row-major
    /// order, read straight into the returned tensor's buffer (a contiguous
    /// tensor that fills its storage, as `torch.save` writes them, is read
    /// with no copy; any other view is gathered from its storage). A tensor
    /// of another dtype is refused, naming both dtypes.
    ///
    /// ```
    /// use adadelta::checkpoint::torch::{self, TorchFile, Value};
    /// use adadelta::checkpoint::{Durability, TensorRef};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-tensor-{}.pt", std::process::id()));
    /// let w = [0.25_f64, -1.0];
    /// torch::save(&path, &torch::tensors_value([("w", TensorRef { shape: vec![2].into(), data: &w })]), Durability::NoSync)?;
    /// let mut file = TorchFile::open(&path)?;
    /// let Some(Value::Tensor(info)) = file.get("w").cloned() else { unreachable!() };
    /// assert_eq!(file.tensor::<f64>(&info)?.data(), &w);
    /// let err = file.tensor::<f32>(&info).unwrap_err().to_string();
    /// assert!(err.contains("has dtype torch.float64; expected torch.float32"), "{err}");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tensor<E: Stored>(
        &mut self,
        info: &TensorInfo,
    ) -> Result<TensorData<E>, CheckpointError> {
        self.read_tensor(info, "a tensor")
            .map_err(|e| self.at_path(e))
    }

    fn read_tensor<E: Stored>(
        &mut self,
        info: &TensorInfo,
        what: &str,
    ) -> Result<TensorData<E>, CheckpointError> {
        if info.dtype != E::TORCH {
            return Err(CheckpointError::format(format!(
                "{what} has dtype {}; expected {}",
                info.dtype,
                E::TORCH
            )));
        }
        let numel = info.numel();
        // More elements than its storage holds is a view with zero strides
        // (an expanded tensor): materialising it could take any amount of
        // memory from a few stored bytes.
        if numel > info.storage_len {
            return Err(CheckpointError::format(format!(
                "{what} has {numel} elements but its storage only {}: an expanded view \
                 (zero strides), which is not read",
                info.storage_len
            )));
        }
        let size = self.archive.storage_size(&info.storage)?;
        let width = std::mem::size_of::<E>() as u128;
        // (In u128: the pickle's size may be any non-negative int.)
        if u128::from(size) != info.storage_len as u128 * width {
            return Err(CheckpointError::format(format!(
                "{what}: storage {} holds {size} bytes, not the {} of its {} {} elements",
                excerpt(&info.storage),
                info.storage_len as u128 * width,
                info.storage_len,
                E::DTYPE
            )));
        }
        let alloc = |n: usize| -> Result<Vec<E>, CheckpointError> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| {
                CheckpointError::format(format!("{what}: cannot allocate {n} elements"))
            })?;
            v.resize(n, E::default());
            Ok(v)
        };
        let ready = whole(info)
            .then(|| self.ready_mut::<E>()?.remove(&info.storage))
            .flatten();
        let data = match ready {
            Some(data) => data,
            None => {
                let mut storage = alloc(info.storage_len)?;
                self.archive
                    .read_storage(&info.storage, bytemuck::cast_slice_mut(&mut storage))?;
                to_native(&mut storage);
                if whole(info) {
                    storage
                } else {
                    let mut out = alloc(numel)?;
                    gather(&storage, info, &mut out);
                    out
                }
            }
        };
        TensorData::from_parts(info.shape.clone(), data)
            .map_err(|e| CheckpointError::format(e.to_string()))
    }

    /// The storages read ahead of the element type `E`, if they are of it.
    fn ready_mut<E: Stored>(&mut self) -> Option<&mut Ready<E>> {
        self.ready.as_mut()?.downcast_mut()
    }

    /// A 1-element tensor's value as an f64 (float32 or float64; `what`
    /// names it in an error).
    fn read_scalar(&mut self, info: &TensorInfo, what: &str) -> Result<f64, CheckpointError> {
        match info.dtype {
            Dtype::Float32 => Ok(f64::from(self.read_tensor::<f32>(info, what)?.data()[0])),
            Dtype::Float64 => Ok(self.read_tensor::<f64>(info, what)?.data()[0]),
            d => Err(CheckpointError::format(format!(
                "{what} has dtype {d}; expected {} or {}",
                Dtype::Float32,
                Dtype::Float64
            ))),
        }
    }

    /// The optimizer state dict the file holds (`torch.save(opt.state_dict())`),
    /// its running averages of the element type `E` (`f32`, `f64`,
    /// `half::bf16` or `half::f16`).
    ///
    /// ```
    /// use adadelta::checkpoint::torch::TorchFile;
    /// use adadelta::{Adadelta, Param};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-torchsd-{}.pt", std::process::id()));
    /// let mut opt = Adadelta::new(vec![Param::from_vec(vec![1.0_f64, 2.0])], Default::default())?;
    /// opt.params_mut()[0].set_grad(vec![0.5, 0.5])?;
    /// opt.step()?;
    /// opt.save(&path)?;
    /// let mut file = TorchFile::open(&path)?;
    /// assert_eq!(file.state_dict::<f64>()?, opt.state_dict());
    /// let err = file.state_dict::<f32>().unwrap_err().to_string();
    /// assert!(err.contains("state[0].square_avg has dtype torch.float64; expected torch.float32"), "{err}");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state_dict<E: Stored>(&mut self) -> Result<StateDict<E>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = self.state_dict_of(&root);
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// The optimizer state dict under the key `key` of a training checkpoint
    /// (`torch.save({"optimizer": opt.state_dict(), ...})`), its running
    /// averages of the element type `E`.
    pub fn state_dict_at<E: Stored>(&mut self, key: &str) -> Result<StateDict<E>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = match root.get(key) {
            Some(v) => self.state_dict_of(v),
            None => Err(no_key(&root, key)),
        };
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// Reads ahead, on the rayon pool, every tensor of `v` of the element
    /// type `E` that is a whole storage (all of `torch.save`'s tensors are):
    /// each straight into the buffer it is returned in, with its CRC-32
    /// checked. Memory is what those tensors take, no more than reading them
    /// one by one.
    fn prefetch<E: Stored>(&mut self, v: &Value) -> Result<(), CheckpointError> {
        if !cfg!(any(unix, windows)) {
            return Ok(()); // read one by one
        }
        let mut infos = Vec::new();
        collect(v, &mut infos);
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for info in infos {
            if info.dtype != E::TORCH || !whole(info) || !seen.insert(&info.storage) {
                continue; // read (or refused) one by one, with its name in the error
            }
            let extent = self.archive.storage_extent(&info.storage)?;
            let mut buf: Vec<E> = Vec::new();
            buf.try_reserve_exact(info.storage_len).map_err(|_| {
                CheckpointError::format(format!("cannot allocate {} elements", info.storage_len))
            })?;
            jobs.push((info.storage.clone(), extent, buf));
        }
        // Largest first, so that the two ends of the pool finish together.
        jobs.sort_by_key(|(_, _, b)| std::cmp::Reverse(b.capacity()));
        use rayon::prelude::*;
        let archive = &self.archive;
        jobs.par_iter_mut().try_for_each(|(key, extent, buf)| {
            buf.resize(buf.capacity(), E::default());
            archive.read_extent(key, extent, bytemuck::cast_slice_mut(buf))?;
            to_native(buf);
            Ok::<(), CheckpointError>(())
        })?;
        let ready: Ready<E> = jobs.into_iter().map(|(k, _, b)| (k, b)).collect();
        self.ready = Some(Box::new(ready));
        Ok(())
    }

    fn state_dict_of<E: Stored>(&mut self, v: &Value) -> Result<StateDict<E>, CheckpointError> {
        let r = self
            .prefetch::<E>(v)
            .and_then(|()| layout::state_dict_from(v, self));
        self.ready = None;
        r
    }

    /// The module state dict the file holds (`torch.save(model.state_dict())`):
    /// every name and its tensor, in order, each of the element type `E`.
    pub fn tensors<E: Stored>(&mut self) -> Result<Vec<(String, TensorData<E>)>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = self.tensors_of(&root, "the file");
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// The module state dict under the key `key` of a training checkpoint,
    /// each tensor of the element type `E`.
    pub fn tensors_at<E: Stored>(
        &mut self,
        key: &str,
    ) -> Result<Vec<(String, TensorData<E>)>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = match root.get(key) {
            Some(v) => self.tensors_of(v, key),
            None => Err(no_key(&root, key)),
        };
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    fn tensors_of<E: Stored>(
        &mut self,
        v: &Value,
        what: &str,
    ) -> Result<Vec<(String, TensorData<E>)>, CheckpointError> {
        let r = self
            .prefetch::<E>(v)
            .and_then(|()| self.tensors_unprefetched(v, what));
        self.ready = None;
        r
    }

    fn tensors_unprefetched<E: Stored>(
        &mut self,
        v: &Value,
        what: &str,
    ) -> Result<Vec<(String, TensorData<E>)>, CheckpointError> {
        let Value::Dict(items) = v else {
            return Err(CheckpointError::format(format!(
                "{} holds {}, not a dict of tensors",
                excerpt(what),
                v.kind()
            )));
        };
        items
            .iter()
            .map(|(k, t)| {
                let (Value::Str(name), Value::Tensor(t)) = (k, t) else {
                    return Err(CheckpointError::format(format!(
                        "{} is not a dict of name → tensor: it maps {} to {}",
                        excerpt(what),
                        k.kind(),
                        t.kind()
                    )));
                };
                let data = self.read_tensor(t, &format!("tensor {}", excerpt(name)))?;
                Ok((name.clone(), data))
            })
            .collect()
    }
}

impl layout::Elements for TorchFile {
    fn tensor<E: Stored>(
        &mut self,
        t: &TensorInfo,
        what: &str,
    ) -> Result<TensorData<E>, CheckpointError> {
        self.read_tensor(t, what)
    }

    fn scalar(&mut self, t: &TensorInfo, what: &str) -> Result<f64, CheckpointError> {
        self.read_scalar(t, what)
    }
}

fn no_key(root: &Value, key: &str) -> CheckpointError {
    let keys = match root {
        Value::Dict(items) => items
            .iter()
            .map(|(k, _)| k.as_str().map_or_else(|| k.kind().to_string(), excerpt))
            .collect::<Vec<_>>()
            .join(", "),
        v => return CheckpointError::format(format!("the file holds {}, not a dict", v.kind())),
    };
    CheckpointError::format(format!(
        "the file has no key {}; its keys are {}",
        excerpt(key),
        excerpt(&keys)
    ))
}

/// Whether a tensor is its whole storage, in order: `torch.save`'s tensors
/// are, and are read with no copy.
fn whole(info: &TensorInfo) -> bool {
    info.offset == 0 && info.numel() == info.storage_len && info.is_contiguous()
}

/// Every tensor of `v`.
fn collect<'v>(v: &'v Value, out: &mut Vec<&'v TensorInfo>) {
    match v {
        Value::Tensor(t) => out.push(t),
        Value::List(items) | Value::Tuple(items) => items.iter().for_each(|x| collect(x, out)),
        Value::Dict(items) => items.iter().for_each(|(k, x)| {
            collect(k, out);
            collect(x, out);
        }),
        _ => {}
    }
}

/// Copies a strided view of `storage` into `out`, in row-major order.
fn gather<E: Copy>(storage: &[E], info: &TensorInfo, out: &mut [E]) {
    let n = info.shape.len();
    let mut index = vec![0usize; n];
    for slot in out.iter_mut() {
        let at = info.offset
            + index
                .iter()
                .zip(&info.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        *slot = storage[at];
        for d in (0..n).rev() {
            index[d] += 1;
            if index[d] < info.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// Elements read as little-endian bytes, in this machine's order (nothing
/// to do on a little-endian machine).
fn to_native<E: Stored>(data: &mut [E]) {
    if cfg!(target_endian = "big") {
        data.iter_mut().for_each(|x| *x = x.le_to_native());
    }
}
