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
//! `('storage', torch.FloatStorage, key, location, numel)`.
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
//! **What loads.** Tensors of other dtypes than float32 are read as
//! [`TensorInfo`]s (their dtype is named) but cannot become state or
//! parameters yet: [`TorchFile::tensor`] says so. The legacy pre-zip
//! `torch.save` format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`)
//! is recognised and refused with a message.
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
//! assert_eq!(file.state_dict_at("optimizer")?, opt.state_dict());
//! let model = file.tensors_at("model")?;
//! assert_eq!((model[0].0.as_str(), model[0].1.data()), ("w", &weights[..]));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod layout;
mod pickle;
mod unpickle;
mod value;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

pub use value::{Dtype, TensorInfo, Value};

use super::{atomic_write, excerpt, CheckpointError, Durability, StateDictRef, TensorRef};
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
/// training checkpoint. Its tensors borrow `sd`'s.
///
/// ```
/// let sd = adadelta::StateDict::<f32>::default();
/// let view = sd.as_ref();
/// let v = adadelta::checkpoint::torch::state_dict_value(&view)?;
/// assert!(matches!(v.get("param_groups"), Some(adadelta::checkpoint::torch::Value::List(_))));
/// # Ok::<(), adadelta::CheckpointError>(())
/// ```
pub fn state_dict_value<'a>(
    sd: &'a StateDictRef<'a>,
) -> Result<Value<TensorRef<'a>>, CheckpointError> {
    layout::state_dict_value(sd)
}

/// A module state dict (name → tensor, in order) as the [`Value`] that
/// `torch.save(model.state_dict())` pickles; `load_state_dict` of a PyTorch
/// module takes it.
///
/// ```
/// use adadelta::checkpoint::{torch, TensorRef};
/// let w = [0.5_f32; 6];
/// let v = torch::tensors_value([("fc.weight", TensorRef { shape: vec![2, 3].into(), data: &w })]);
/// assert!(matches!(v.get("fc.weight"), Some(torch::Value::Tensor(_))));
/// ```
pub fn tensors_value<'a, S: AsRef<str>>(
    named: impl IntoIterator<Item = (S, TensorRef<'a>)>,
) -> Value<TensorRef<'a>> {
    layout::tensors_value(named)
}

/// Writes `value` to `path` in the `torch.save` format, atomically (see
/// [`checkpoint::save`](crate::checkpoint::save)); `torch.load(path,
/// weights_only=True)` reads it.
pub fn save(
    path: impl AsRef<Path>,
    value: &Value<TensorRef<'_>>,
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
/// use adadelta::checkpoint::torch::{self, Value};
/// let mut out = std::io::Cursor::new(Vec::new());
/// torch::write(&mut out, &Value::<adadelta::checkpoint::TensorRef>::Int(7), "archive")?;
/// assert_eq!(&out.get_ref()[..2], b"PK");
/// # Ok::<(), adadelta::CheckpointError>(())
/// ```
pub fn write<W: Write + Seek>(
    writer: W,
    value: &Value<TensorRef<'_>>,
    archive: &str,
) -> Result<(), CheckpointError> {
    let (pkl, tensors) = pickle::pickle(value)?;
    let mut zip = ArchiveWriter::new(BufWriter::with_capacity(1 << 20, writer), archive);
    zip.record("data.pkl", &pkl)?;
    zip.record(".format_version", b"1")?;
    zip.record(".storage_alignment", b"64")?;
    zip.record("byteorder", b"little")?;
    for (key, t) in tensors.iter().enumerate() {
        zip.record_f32(&format!("data/{key}"), t.data)?;
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
pub(crate) fn write_state_dict(
    file: &mut File,
    sd: &StateDictRef<'_>,
    archive: &str,
) -> Result<(), CheckpointError> {
    write(file, &layout::state_dict_value(sd)?, archive)
}

/// The `torch.save` reader of [`checkpoint::load`](crate::checkpoint::load).
pub(crate) fn read_state_dict(file: File) -> Result<StateDict, CheckpointError> {
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
/// [`get`](Self::get). See the [module docs](self) for an example.
pub struct TorchFile {
    archive: Archive,
    root: Value,
    path: Option<PathBuf>,
    /// Storages read ahead, in parallel ([`prefetch`](Self::prefetch)), by key.
    ready: HashMap<String, Vec<f32>>,
}

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
            ready: HashMap::new(),
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

    /// The elements of a float32 tensor of this file, in row-major order,
    /// read straight into the returned tensor's buffer (a contiguous tensor
    /// that fills its storage, as `torch.save` writes them, is read with no
    /// copy; any other view is gathered from its storage).
    pub fn tensor(&mut self, info: &TensorInfo) -> Result<TensorData, CheckpointError> {
        self.read_tensor(info, "a tensor")
            .map_err(|e| self.at_path(e))
    }

    fn read_tensor(
        &mut self,
        info: &TensorInfo,
        what: &str,
    ) -> Result<TensorData, CheckpointError> {
        if info.dtype != Dtype::Float32 {
            return Err(CheckpointError::format(format!(
                "{what} is {}; only torch.float32 tensors are supported",
                info.dtype
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
        // (In u128: the pickle's size may be any non-negative int.)
        if u128::from(size) != info.storage_len as u128 * 4 {
            return Err(CheckpointError::format(format!(
                "{what}: storage {} holds {size} bytes, not the {} of its {} float32 elements",
                excerpt(&info.storage),
                info.storage_len as u128 * 4,
                info.storage_len
            )));
        }
        let alloc = |n: usize| -> Result<Vec<f32>, CheckpointError> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| {
                CheckpointError::format(format!("{what}: cannot allocate {n} elements"))
            })?;
            v.resize(n, 0.0);
            Ok(v)
        };
        if let Some(data) = self.ready.remove(&info.storage) {
            if whole(info) {
                return TensorData::new(info.shape.clone(), data)
                    .map_err(|e| CheckpointError::format(e.to_string()));
            }
            self.ready.insert(info.storage.clone(), data);
        }
        let mut storage = alloc(info.storage_len)?;
        self.archive
            .read_storage(&info.storage, bytemuck::cast_slice_mut(&mut storage))?;
        if cfg!(target_endian = "big") {
            storage
                .iter_mut()
                .for_each(|x| *x = f32::from_bits(x.to_bits().swap_bytes()));
        }
        let data = if whole(info) {
            storage
        } else {
            let mut out = alloc(numel)?;
            gather(&storage, info, &mut out);
            out
        };
        TensorData::new(info.shape.clone(), data)
            .map_err(|e| CheckpointError::format(e.to_string()))
    }

    /// A 1-element tensor's value as an f64 (float32 or float64).
    fn read_scalar(&mut self, info: &TensorInfo) -> Result<f64, CheckpointError> {
        match info.dtype {
            Dtype::Float32 => Ok(f64::from(self.read_tensor(info, "a scalar")?.data()[0])),
            Dtype::Float64 => {
                let size = self.archive.storage_size(&info.storage)?;
                if u128::from(size) != info.storage_len as u128 * 8
                    || info.offset >= info.storage_len
                {
                    return Err(CheckpointError::format(
                        "a float64 scalar's storage is not its size",
                    ));
                }
                let mut bytes = vec![0u8; size as usize];
                self.archive.read_storage(&info.storage, &mut bytes)?;
                let at = info.offset * 8;
                Ok(f64::from_le_bytes(
                    bytes[at..at + 8].try_into().expect("8 bytes"),
                ))
            }
            d => Err(CheckpointError::format(format!(
                "a scalar tensor of {d}; float32 and float64 are read"
            ))),
        }
    }

    /// The optimizer state dict the file holds (`torch.save(opt.state_dict())`).
    pub fn state_dict(&mut self) -> Result<StateDict, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = self.state_dict_of(&root);
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// The optimizer state dict under the key `key` of a training checkpoint
    /// (`torch.save({"optimizer": opt.state_dict(), ...})`).
    pub fn state_dict_at(&mut self, key: &str) -> Result<StateDict, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = match root.get(key) {
            Some(v) => self.state_dict_of(v),
            None => Err(no_key(&root, key)),
        };
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// Reads ahead, on the rayon pool, every float32 tensor of `v` that is a
    /// whole storage (all of `torch.save`'s tensors are): each straight into
    /// the buffer it is returned in, with its CRC-32 checked. Memory is what
    /// the tensors of `v` take, no more than reading them one by one.
    fn prefetch(&mut self, v: &Value) -> Result<(), CheckpointError> {
        if !cfg!(any(unix, windows)) {
            return Ok(()); // read one by one
        }
        let mut infos = Vec::new();
        collect(v, &mut infos);
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for info in infos {
            if info.dtype != Dtype::Float32 || !whole(info) || !seen.insert(&info.storage) {
                continue; // read (or refused) one by one, with its name in the error
            }
            let extent = self.archive.storage_extent(&info.storage)?;
            let mut buf: Vec<f32> = Vec::new();
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
            buf.resize(buf.capacity(), 0.0);
            archive.read_extent(key, extent, bytemuck::cast_slice_mut(buf))?;
            if cfg!(target_endian = "big") {
                buf.iter_mut()
                    .for_each(|x| *x = f32::from_bits(x.to_bits().swap_bytes()));
            }
            Ok::<(), CheckpointError>(())
        })?;
        self.ready = jobs.into_iter().map(|(k, _, b)| (k, b)).collect();
        Ok(())
    }

    fn state_dict_of(&mut self, v: &Value) -> Result<StateDict, CheckpointError> {
        let r = self
            .prefetch(v)
            .and_then(|()| self.state_dict_unprefetched(v));
        self.ready.clear();
        r
    }

    fn state_dict_unprefetched(&mut self, v: &Value) -> Result<StateDict, CheckpointError> {
        let cell = std::cell::RefCell::new(self);
        layout::state_dict_from(
            v,
            &mut |t, what| cell.borrow_mut().read_tensor(t, what),
            &mut |t| cell.borrow_mut().read_scalar(t),
        )
    }

    /// The module state dict the file holds (`torch.save(model.state_dict())`):
    /// every name and its tensor, in order.
    pub fn tensors(&mut self) -> Result<Vec<(String, TensorData)>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = self.tensors_of(&root, "the file");
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    /// The module state dict under the key `key` of a training checkpoint.
    pub fn tensors_at(&mut self, key: &str) -> Result<Vec<(String, TensorData)>, CheckpointError> {
        let root = std::mem::replace(&mut self.root, Value::None);
        let r = match root.get(key) {
            Some(v) => self.tensors_of(v, key),
            None => Err(no_key(&root, key)),
        };
        self.root = root;
        r.map_err(|e| self.at_path(e))
    }

    fn tensors_of(
        &mut self,
        v: &Value,
        what: &str,
    ) -> Result<Vec<(String, TensorData)>, CheckpointError> {
        let r = self
            .prefetch(v)
            .and_then(|()| self.tensors_unprefetched(v, what));
        self.ready.clear();
        r
    }

    fn tensors_unprefetched(
        &mut self,
        v: &Value,
        what: &str,
    ) -> Result<Vec<(String, TensorData)>, CheckpointError> {
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
fn gather(storage: &[f32], info: &TensorInfo, out: &mut [f32]) {
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
