//! The optimizer's `state_dict`: PyTorch's layout, a bit-exact JSON form,
//! and saving to files atomically.
//!
//! # JSON format
//!
//! The structure is PyTorch's `optimizer.state_dict()`. Every tensor is an
//! object with its dtype, its shape and its elements as IEEE-754 bit
//! patterns (unsigned 32-bit integers), so that nothing is lost to decimal
//! printing; hyperparameters are JSON numbers that read back exactly
//! (non-finite ones are the strings `"inf"`, `"-inf"`, `"nan"`):
//!
//! ```json
//! {"state": {"0": {"step": {"dtype": "float32", "shape": [], "bits": [1084227584]},
//!                  "square_avg": {"dtype": "float32", "shape": [2, 3], "bits": [...]},
//!                  "acc_delta": {"dtype": "float32", "shape": [2, 3], "bits": [...]}}},
//!  "param_groups": [{"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": false,
//!                    "capturable": false, "foreach": null, "differentiable": false,
//!                    "params": [0, 1]}]}
//! ```
//!
//! `state` is keyed by the parameter's position across the groups and holds
//! only parameters that have state; each group lists its parameters'
//! positions under `params`, last. Group keys other than the optimizer's
//! own are kept verbatim. `difftest/python/state_dict_convert.py` converts
//! between this and a `torch.save`d PyTorch state dict.
//!
//! ```
//! use adadelta::{Adadelta, Param, StateDict};
//! let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
//! opt.params_mut()[0].set_grad(vec![1.0])?;
//! opt.step()?;
//! let json = opt.state_dict().to_json_string()?;
//! assert!(json.starts_with(r#"{"state":{"0":{"step":{"dtype":"float32","shape":[],"bits":[1065353216]}"#));
//! assert_eq!(StateDict::from_json_str(&json)?, opt.state_dict());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::group::{check_extra, Options};
use crate::Error;

/// An f32 tensor of a state dict: a shape and its elements in row-major
/// order. Equality compares bit patterns (so a NaN equals itself and `0.0`
/// differs from `-0.0`), which is what a checkpoint must preserve.
///
/// ```
/// use adadelta::TensorData;
/// let t = TensorData::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])?;
/// assert_eq!((t.shape(), t.data()[3]), (&[2, 2][..], 4.0));
/// assert!(TensorData::new(vec![3], vec![1.0]).is_err());
/// assert_eq!(TensorData::from(vec![f32::NAN]), TensorData::from(vec![f32::NAN]));
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TensorData {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl TensorData {
    /// A tensor of `shape` holding `data`; [`Error::InvalidShape`] when the
    /// shape's product is not `data.len()`.
    ///
    /// ```
    /// let t = adadelta::TensorData::new(vec![], vec![5.0])?; // 0-dim, like PyTorch's step
    /// assert_eq!(t.data(), &[5.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, Error> {
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(data.len()) {
            return Err(Error::InvalidShape {
                shape,
                len: data.len(),
            });
        }
        Ok(TensorData { shape, data })
    }

    /// The shape.
    ///
    /// ```
    /// assert_eq!(adadelta::TensorData::from(vec![1.0, 2.0]).shape(), &[2]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements.
    ///
    /// ```
    /// assert_eq!(adadelta::TensorData::from(vec![1.0, 2.0]).data(), &[1.0, 2.0]);
    /// ```
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, mutable (their number cannot change).
    ///
    /// ```
    /// let mut t = adadelta::TensorData::from(vec![1.0]);
    /// t.data_mut()[0] = 2.0;
    /// assert_eq!(t.data(), &[2.0]);
    /// ```
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(adadelta::TensorData::from(vec![0.0; 3]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there is no element.
    ///
    /// ```
    /// assert!(adadelta::TensorData::from(Vec::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The shape and the elements, consuming the tensor.
    ///
    /// ```
    /// let (shape, data) = adadelta::TensorData::from(vec![1.0]).into_parts();
    /// assert_eq!((shape, data), (vec![1], vec![1.0]));
    /// ```
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }
}

impl From<Vec<f32>> for TensorData {
    /// A one-dimensional tensor.
    fn from(data: Vec<f32>) -> Self {
        TensorData {
            shape: vec![data.len()],
            data,
        }
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl PartialEq for TensorData {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && same_bits(&self.data, &other.data)
    }
}

impl Eq for TensorData {}

/// One parameter's Adadelta state, as in PyTorch's `state[i]`: the step
/// counter (an f32, as PyTorch's 0-dim float32 tensor) and the two running
/// averages, in the parameter's shape. Equality compares bit patterns.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut p = Param::new(vec![1.0, 2.0]);
/// p.set_grad(vec![0.1, 0.1])?;
/// let mut opt = Adadelta::new(vec![p], Default::default())?;
/// opt.step()?;
/// let sd = opt.state_dict();
/// let s = &sd.state[&0];
/// assert_eq!((s.step, s.square_avg.len(), s.acc_delta.shape()), (1.0, 2, &[2][..]));
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ParamStateDict {
    /// How many steps updated the parameter (stops growing at 2^24, as an f32).
    pub step: f32,
    /// The running average of squared gradients.
    pub square_avg: TensorData,
    /// The running average of squared updates.
    pub acc_delta: TensorData,
}

impl PartialEq for ParamStateDict {
    fn eq(&self, other: &Self) -> bool {
        self.step.to_bits() == other.step.to_bits()
            && self.square_avg == other.square_avg
            && self.acc_delta == other.acc_delta
    }
}

impl Eq for ParamStateDict {}

/// One parameter group of a state dict: its options, the keys kept
/// verbatim, and its parameters' positions (PyTorch's `params` list).
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let opt = Adadelta::new(vec![Param::new(vec![0.0]), Param::new(vec![0.0])], Default::default())?;
/// let g = &opt.state_dict().param_groups[0];
/// assert_eq!((g.options.lr, &g.params[..]), (1.0, &[0, 1][..]));
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDict {
    /// The group's options.
    pub options: Options,
    /// Other keys, kept verbatim (e.g. an LR scheduler's `initial_lr`); none
    /// may be one of the optimizer's own ([`Error::ReservedGroupKey`]).
    pub extra: Map<String, Value>,
    /// The positions of the group's parameters.
    pub params: Vec<usize>,
}

/// The optimizer's state in PyTorch's `state_dict` layout, owned (unlike
/// PyTorch's, it shares nothing with the optimizer).
///
/// Build it with [`Adadelta::state_dict`](crate::Adadelta::state_dict),
/// load it with [`Adadelta::load_state_dict`](crate::Adadelta::load_state_dict).
/// It is `serde` serialisable (the JSON form is in the [module
/// docs](crate::optimizer::state_dict)), and [`StateDict::save`] writes a
/// file atomically.
///
/// ```
/// use adadelta::{Adadelta, Param, StateDict};
/// let mut p = Param::new(vec![1.0]);
/// p.set_grad(vec![0.5])?;
/// let mut opt = Adadelta::new(vec![p], Default::default())?;
/// opt.step()?;
/// let json = opt.state_dict().to_json_string()?;
/// let back = StateDict::from_json_str(&json)?;
/// assert_eq!(back, opt.state_dict());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// Per-parameter state, keyed by position; parameters without state
    /// have no entry.
    pub state: BTreeMap<usize, ParamStateDict>,
    /// The parameter groups, in order.
    pub param_groups: Vec<GroupDict>,
}

/// Why saving or loading a state dict failed: the file or stream, the JSON,
/// or the content.
///
/// ```
/// let err = adadelta::StateDict::from_json_str("{").unwrap_err();
/// assert!(matches!(err, adadelta::CheckpointError::Json(_)));
/// let err = adadelta::StateDict::from_json_str(r#"{"state": {}, "param_groups": [{}]}"#).unwrap_err();
/// assert_eq!(err.to_string(), "invalid state dict: param_groups[0] has no \"lr\"");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The text is not JSON of the expected structure.
    Json(serde_json::Error),
    /// The content is not a valid state dict, or does not fit the optimizer.
    Invalid(Error),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io(e) => write!(f, "{e}"),
            CheckpointError::Json(e) => write!(f, "state dict JSON: {e}"),
            CheckpointError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io(e) => Some(e),
            CheckpointError::Json(e) => Some(e),
            CheckpointError::Invalid(e) => Some(e),
        }
    }
}

impl From<io::Error> for CheckpointError {
    fn from(e: io::Error) -> Self {
        CheckpointError::Io(e)
    }
}

impl From<serde_json::Error> for CheckpointError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            CheckpointError::Io(e.into())
        } else {
            CheckpointError::Json(e)
        }
    }
}

impl From<Error> for CheckpointError {
    fn from(e: Error) -> Self {
        CheckpointError::Invalid(e)
    }
}

impl StateDict {
    /// The checks serialisation needs: no group extra key is reserved.
    fn check(&self) -> Result<(), Error> {
        self.param_groups
            .iter()
            .try_for_each(|g| check_extra(&g.extra))
    }

    /// Writes the JSON form to `writer` (compact, one line and a newline).
    /// Fails on I/O errors, or when a group's extra keys include one of the
    /// optimizer's own ([`Error::ReservedGroupKey`]).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// adadelta::StateDict::default().to_writer(&mut out)?;
    /// assert_eq!(out, b"{\"state\":{},\"param_groups\":[]}\n");
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn to_writer<W: Write>(&self, writer: W) -> Result<(), CheckpointError> {
        self.check()?;
        let mut w = BufWriter::new(writer);
        serde_json::to_writer(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(())
    }

    /// Reads the JSON form from `reader`.
    ///
    /// ```
    /// let sd = adadelta::StateDict::from_reader(&b"{\"state\":{},\"param_groups\":[]}"[..])?;
    /// assert!(sd.param_groups.is_empty());
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn from_reader<R: Read>(reader: R) -> Result<Self, CheckpointError> {
        let wire: Wire = serde_json::from_reader(BufReader::new(reader))?;
        Ok(wire.into_state_dict()?)
    }

    /// The JSON form as a string (see [`to_writer`](Self::to_writer)).
    ///
    /// ```
    /// let json = adadelta::StateDict::default().to_json_string()?;
    /// assert_eq!(json, r#"{"state":{},"param_groups":[]}"#);
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn to_json_string(&self) -> Result<String, CheckpointError> {
        self.check()?;
        Ok(serde_json::to_string(self)?)
    }

    /// Parses the JSON form.
    ///
    /// ```
    /// let sd = adadelta::StateDict::from_json_str(r#"{"state":{},"param_groups":[]}"#)?;
    /// assert_eq!(sd, adadelta::StateDict::default());
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn from_json_str(json: &str) -> Result<Self, CheckpointError> {
        let wire: Wire = serde_json::from_str(json)?;
        Ok(wire.into_state_dict()?)
    }

    /// Writes the JSON form to the file `path` atomically: into a temporary
    /// file in the same directory, flushed to disk, then renamed over
    /// `path`, and the directory flushed. A crash or error midway leaves the
    /// previous file (if any) intact; the temporary file is removed on error.
    /// The new file gets default permissions.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-save-{}.json", std::process::id()));
    /// let sd = adadelta::StateDict::default();
    /// sd.save(&path)?;
    /// assert_eq!(adadelta::StateDict::load(&path)?, sd);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        self.check()?;
        atomic_write(path.as_ref(), |file| self.to_writer(file))
    }

    /// Reads the JSON form from the file `path`.
    ///
    /// ```
    /// let err = adadelta::StateDict::load("/nonexistent/adadelta.json").unwrap_err();
    /// assert!(matches!(err, adadelta::CheckpointError::Io(_)));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        Self::from_reader(File::open(path)?)
    }
}

/// Writes any serialisable value as JSON to the file `path`, atomically as
/// [`StateDict::save`] does: for a checkpoint that holds the model's
/// parameters and the optimizer's state dict together.
///
/// ```
/// use adadelta::{load_json, save_json, StateDict, TensorData};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Checkpoint {
///     epoch: u32,
///     weights: TensorData,
///     optimizer: StateDict,
/// }
/// let path = std::env::temp_dir().join(format!("adadelta-doc-ckpt-{}.json", std::process::id()));
/// let ckpt = Checkpoint { epoch: 3, weights: vec![1.5, f32::NAN].into(), optimizer: StateDict::default() };
/// save_json(&path, &ckpt)?;
/// let back: Checkpoint = load_json(&path)?;
/// assert_eq!((back.epoch, back.weights), (3, ckpt.weights));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save_json<T: Serialize + ?Sized>(
    path: impl AsRef<Path>,
    value: &T,
) -> Result<(), CheckpointError> {
    atomic_write(path.as_ref(), |file| {
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, value)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(())
    })
}

/// Reads a JSON file written by [`save_json`] (or any JSON of `T`).
///
/// ```
/// let err = adadelta::load_json::<adadelta::StateDict>("/nonexistent.json").unwrap_err();
/// assert!(matches!(err, adadelta::CheckpointError::Io(_)));
/// ```
pub fn load_json<T: serde::de::DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<T, CheckpointError> {
    Ok(serde_json::from_reader(BufReader::new(File::open(path)?))?)
}

/// Writes `path` through a temporary sibling and a rename (see
/// [`StateDict::save`]). `write` gets the temporary file.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let name = path.file_name().ok_or_else(|| {
        CheckpointError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        ))
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
            Err(e) => return Err(e.into()),
        }
    };
    let result = (|| {
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)?;
        Ok(())
    })();
    if result.is_err() {
        // Gone already if the rename happened; otherwise do not leave it.
        let _ = fs::remove_file(&tmp);
    }
    result
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

// ---- JSON: writing ----

/// f32 elements serialised as their bit patterns.
struct Bits<'a>(&'a [f32]);

impl Serialize for Bits<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&x.to_bits())?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct TensorOut<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    bits: Bits<'a>,
}

impl<'a> TensorOut<'a> {
    fn new(shape: &'a [usize], data: &'a [f32]) -> Self {
        TensorOut {
            dtype: "float32",
            shape,
            bits: Bits(data),
        }
    }
}

impl Serialize for TensorData {
    /// `{"dtype": "float32", "shape": [...], "bits": [...]}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(&self.shape, &self.data).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TensorWire::deserialize(d)?
            .into_tensor("tensor")
            .map_err(de::Error::custom)
    }
}

struct StepOut(f32);

impl Serialize for StepOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(&[], std::slice::from_ref(&self.0)).serialize(s)
    }
}

#[derive(Serialize)]
struct StateOut<'a> {
    step: StepOut,
    square_avg: &'a TensorData,
    acc_delta: &'a TensorData,
}

/// A hyperparameter: a JSON number, or a string when not finite (JSON has
/// no infinity or NaN).
fn f64_value(x: f64) -> Value {
    match serde_json::Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("nan".into()),
        None if x > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

impl Serialize for GroupDict {
    /// PyTorch's key order: the options, the extra keys, then `params`. An
    /// extra key that is one of the optimizer's own is an error.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        check_extra(&self.extra).map_err(serde::ser::Error::custom)?;
        let o = &self.options;
        let mut m = s.serialize_map(Some(9 + self.extra.len()))?;
        m.serialize_entry("lr", &f64_value(o.lr))?;
        m.serialize_entry("rho", &f64_value(o.rho))?;
        m.serialize_entry("eps", &f64_value(o.eps))?;
        m.serialize_entry("weight_decay", &f64_value(o.weight_decay))?;
        m.serialize_entry("maximize", &o.maximize)?;
        m.serialize_entry("capturable", &o.capturable)?;
        m.serialize_entry("foreach", &o.foreach)?;
        m.serialize_entry("differentiable", &o.differentiable)?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("params", &self.params)?;
        m.end()
    }
}

impl Serialize for StateDict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct States<'a>(&'a BTreeMap<usize, ParamStateDict>);
        impl Serialize for States<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(
                        &k.to_string(),
                        &StateOut {
                            step: StepOut(v.step),
                            square_avg: &v.square_avg,
                            acc_delta: &v.acc_delta,
                        },
                    )?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("state", &States(&self.state))?;
        m.serialize_entry("param_groups", &self.param_groups)?;
        m.end()
    }
}

// ---- JSON: reading ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorWire {
    dtype: String,
    shape: Vec<usize>,
    bits: Vec<u32>,
}

impl TensorWire {
    fn into_tensor(self, what: &str) -> Result<TensorData, Error> {
        if self.dtype != "float32" {
            return Err(Error::InvalidStateDict(format!(
                "{what} has dtype {:?}; only \"float32\" is supported",
                self.dtype
            )));
        }
        let data: Vec<f32> = self.bits.into_iter().map(f32::from_bits).collect();
        TensorData::new(self.shape, data)
            .map_err(|e| Error::InvalidStateDict(format!("{what}: {e}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateWire {
    step: Option<TensorWire>,
    square_avg: Option<TensorWire>,
    acc_delta: Option<TensorWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    state: BTreeMap<String, StateWire>,
    param_groups: Vec<Map<String, Value>>,
}

impl Wire {
    fn into_state_dict(self) -> Result<StateDict, Error> {
        let mut state = BTreeMap::new();
        for (key, s) in self.state {
            let index: usize = key
                .parse()
                .ok()
                .filter(|i: &usize| i.to_string() == key)
                .ok_or_else(|| {
                    Error::InvalidStateDict(format!("state key {key:?} is not a parameter index"))
                })?;
            let entry = match (s.step, s.square_avg, s.acc_delta) {
                // PyTorch's empty per-parameter dict: state not created yet.
                (None, None, None) => continue,
                (Some(step), Some(v), Some(u)) => {
                    let step = step.into_tensor(&format!("state[{index}].step"))?;
                    if step.len() != 1 {
                        return Err(Error::InvalidStateDict(format!(
                            "state[{index}].step has {} elements, not 1",
                            step.len()
                        )));
                    }
                    ParamStateDict {
                        step: step.data[0],
                        square_avg: v.into_tensor(&format!("state[{index}].square_avg"))?,
                        acc_delta: u.into_tensor(&format!("state[{index}].acc_delta"))?,
                    }
                }
                (step, v, _) => {
                    let missing = if step.is_none() {
                        "step"
                    } else if v.is_none() {
                        "square_avg"
                    } else {
                        "acc_delta"
                    };
                    return Err(Error::InvalidStateDict(format!(
                        "state[{index}] has no {missing:?}"
                    )));
                }
            };
            state.insert(index, entry);
        }
        let param_groups = self
            .param_groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| group_from_map(i, g))
            .collect::<Result<_, _>>()?;
        Ok(StateDict {
            state,
            param_groups,
        })
    }
}

/// Reads a group: the four numbers are required, the flags default as in
/// PyTorch's `__setstate__`, `params` is required, other keys are extras.
fn group_from_map(i: usize, mut g: Map<String, Value>) -> Result<GroupDict, Error> {
    let bad = |key: &str, want: &str, v: &Value| {
        Error::InvalidStateDict(format!("param_groups[{i}].{key} is {v}, not {want}"))
    };
    let mut take_f64 = |key: &str| -> Result<f64, Error> {
        let v = g
            .remove(key)
            .ok_or_else(|| Error::InvalidStateDict(format!("param_groups[{i}] has no {key:?}")))?;
        match &v {
            Value::Number(n) => n.as_f64().ok_or_else(|| bad(key, "a number", &v)),
            Value::String(s) => match s.as_str() {
                "inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                "nan" | "NaN" => Ok(f64::NAN),
                _ => Err(bad(key, "a number", &v)),
            },
            _ => Err(bad(key, "a number", &v)),
        }
    };
    let lr = take_f64("lr")?;
    let rho = take_f64("rho")?;
    let eps = take_f64("eps")?;
    let weight_decay = take_f64("weight_decay")?;
    let mut take_bool = |key: &str| -> Result<bool, Error> {
        match g.remove(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(bad(key, "true or false", &v)),
        }
    };
    let maximize = take_bool("maximize")?;
    let capturable = take_bool("capturable")?;
    let differentiable = take_bool("differentiable")?;
    let foreach = match g.remove("foreach") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(v) => return Err(bad("foreach", "true, false or null", &v)),
    };
    let params = match g.remove("params") {
        None => {
            return Err(Error::InvalidStateDict(format!(
                "param_groups[{i}] has no \"params\""
            )))
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| bad("params", "a list of parameter indices", v))
            })
            .collect::<Result<Vec<usize>, _>>()?,
        Some(v) => return Err(bad("params", "a list of parameter indices", &v)),
    };
    Ok(GroupDict {
        options: Options {
            lr,
            rho,
            eps,
            weight_decay,
            maximize,
            foreach,
            capturable,
            differentiable,
        },
        extra: g,
        params,
    })
}

impl<'de> Deserialize<'de> for StateDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d)?
            .into_state_dict()
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for GroupDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let g = Map::<String, Value>::deserialize(d)?;
        group_from_map(0, g).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = atomic_write(&path, |f| {
            f.write_all(b"half a new fi")?;
            Err(CheckpointError::Io(io::Error::other("simulated crash")))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "simulated crash");
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(entries(&dir), ["ckpt.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn successful_write_replaces_and_leaves_no_temporary() {
        let dir = temp_dir("ok");
        let path = dir.join("ckpt.json");
        fs::write(&path, b"old").unwrap();
        atomic_write(&path, |f| Ok(f.write_all(b"new")?)).unwrap();
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
        atomic_write(&path, |f| Ok(f.write_all(b"x")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
        assert_eq!(fs::read(&squatter).unwrap(), b"someone else's");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hyperparameters_round_trip_exactly_including_non_finite() {
        for x in [
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
            1e-300,
            5e-324,
            0.1 + 0.2,
            f64::MAX,
        ] {
            let g = GroupDict {
                options: Options {
                    lr: x,
                    ..Options::default()
                },
                extra: Map::new(),
                params: vec![],
            };
            let s = serde_json::to_string(&g).unwrap();
            let back: GroupDict = serde_json::from_str(&s).unwrap();
            assert_eq!(back.options.lr.to_bits(), x.to_bits(), "{s}");
        }
        let g = GroupDict {
            options: Options {
                lr: f64::NAN,
                ..Options::default()
            },
            extra: Map::new(),
            params: vec![],
        };
        let back: GroupDict = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert!(back.options.lr.is_nan());
    }
}
