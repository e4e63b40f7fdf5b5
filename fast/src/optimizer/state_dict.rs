//! The optimizer's `state_dict` in PyTorch's layout: [`StateDict`] and its
//! parts, owned. Files and streams are in [`crate::checkpoint`]: PyTorch's
//! `torch.save` format, safetensors and JSON.
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
use std::io::{Read, Write};
use std::path::Path;

use super::extra::Extra;
use serde::Serialize;

use super::group::Options;
use crate::checkpoint::{self, json, CheckpointError, Stored};
use crate::kernel::{same_bits, Element};
use crate::Error;

/// A tensor of a state dict: a shape and its elements (of the element type
/// `E`: `f32`, the default, `f64`, [`half::bf16`] or
/// [`half::f16`]) in row-major order. Equality compares
/// bit patterns (so a NaN equals itself and `0.0` differs from `-0.0`),
/// which is what a checkpoint must preserve.
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
pub struct TensorData<E = f32> {
    shape: Vec<usize>,
    data: Vec<E>,
}

impl TensorData {
    /// An `f32` tensor of `shape` holding `data`; [`Error::InvalidShape`]
    /// when the shape's product is not `data.len()`.
    ///
    /// ```
    /// let t = adadelta::TensorData::new(vec![], vec![5.0])?; // 0-dim, like PyTorch's step
    /// assert_eq!(t.data(), &[5.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, Error> {
        TensorData::from_parts(shape, data)
    }
}

impl<E: Element> TensorData<E> {
    /// A tensor of `data`'s element type, as [`new`](TensorData::new).
    ///
    /// ```
    /// let t = adadelta::TensorData::from_parts(vec![2], vec![1.0_f64, 2.0])?;
    /// assert_eq!(t.data(), &[1.0, 2.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn from_parts(shape: Vec<usize>, data: Vec<E>) -> Result<Self, Error> {
        if crate::shape::numel(&shape) != Some(data.len()) {
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
    pub fn data(&self) -> &[E] {
        &self.data
    }

    /// The elements, mutable (their number cannot change).
    ///
    /// ```
    /// let mut t = adadelta::TensorData::from(vec![1.0]);
    /// t.data_mut()[0] = 2.0;
    /// assert_eq!(t.data(), &[2.0]);
    /// ```
    pub fn data_mut(&mut self) -> &mut [E] {
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
    /// assert!(adadelta::TensorData::from(Vec::<f32>::new()).is_empty());
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
    pub fn into_parts(self) -> (Vec<usize>, Vec<E>) {
        (self.shape, self.data)
    }
}

impl<E: Element> From<Vec<E>> for TensorData<E> {
    /// A one-dimensional tensor.
    fn from(data: Vec<E>) -> Self {
        TensorData {
            shape: vec![data.len()],
            data,
        }
    }
}

impl<E: Element> PartialEq for TensorData<E> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && same_bits(&self.data, &other.data)
    }
}

impl<E: Element> Eq for TensorData<E> {}

/// One parameter's Adadelta state, as in PyTorch's `state[i]`: the step
/// counter (an f32, as PyTorch's 0-dim float32 tensor, whatever the
/// parameter's dtype) and the two running averages, in the parameter's
/// shape and element type `E`. Equality compares bit patterns.
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
pub struct ParamStateDict<E = f32> {
    /// How many steps updated the parameter (stops growing at 2^24, as an f32).
    pub step: f32,
    /// The running average of squared gradients.
    pub square_avg: TensorData<E>,
    /// The running average of squared updates.
    pub acc_delta: TensorData<E>,
}

impl<E: Element> PartialEq for ParamStateDict<E> {
    fn eq(&self, other: &Self) -> bool {
        self.step.to_bits() == other.step.to_bits()
            && self.square_avg == other.square_avg
            && self.acc_delta == other.acc_delta
    }
}

impl<E: Element> Eq for ParamStateDict<E> {}

/// One parameter group of a state dict: its options, the keys kept
/// verbatim, its parameters' positions (PyTorch's `params` list) and, for
/// named parameters, their names (PyTorch's `param_names`).
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
    pub extra: Extra,
    /// The positions of the group's parameters.
    pub params: Vec<usize>,
    /// The names of the group's parameters, one per entry of `params`, when
    /// the group is of named parameters
    /// ([`GroupSpec::named`](crate::GroupSpec::named)); written first in
    /// the group, where PyTorch writes them for
    /// `Adadelta(model.named_parameters())`.
    pub param_names: Option<Vec<String>>,
}

/// The optimizer's state in PyTorch's `state_dict` layout, owned (unlike
/// PyTorch's, it shares nothing with the optimizer). `E` is the state
/// tensors' element type, the parameters' (`f32`, the default, `f64`,
/// `bf16` or `f16`); the files record it as the tensors' dtype, and a file
/// of another dtype is refused, naming it. The step counters are `f32`
/// whatever `E` is, as PyTorch keeps them.
///
/// ```
/// use adadelta::half::bf16;
/// use adadelta::{Adadelta, Param, StateDict};
/// let mut opt = Adadelta::new(vec![Param::from_vec(vec![bf16::from_f32(1.0); 3])], Default::default())?;
/// opt.params_mut()[0].set_grad(vec![bf16::from_f32(0.5); 3])?;
/// opt.step()?;
/// let sd: StateDict<bf16> = opt.state_dict();
/// let json = sd.to_json_string()?;
/// assert!(json.contains(r#""square_avg":{"dtype":"bfloat16","shape":[3],"bits":["#), "{json}");
/// assert_eq!(StateDict::<bf16>::from_json_str(&json)?, sd);
/// let err = StateDict::<adadelta::half::f16>::from_json_str(&json).unwrap_err().to_string();
/// assert!(err.contains(r#"has dtype "bfloat16"; expected "float16""#), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
#[derive(Clone, Debug, PartialEq)]
pub struct StateDict<E: Element = f32> {
    /// Per-parameter state, keyed by position; parameters without state
    /// have no entry.
    pub state: BTreeMap<usize, ParamStateDict<E>>,
    /// The parameter groups, in order.
    pub param_groups: Vec<GroupDict>,
}

impl<E: Element> Default for StateDict<E> {
    /// No state and no group.
    fn default() -> Self {
        StateDict {
            state: BTreeMap::new(),
            param_groups: Vec::new(),
        }
    }
}

impl<E: Element> StateDict<E> {
    /// Writes the JSON form to `writer` (compact, one line and a newline).
    /// Fails on I/O errors, or when a group's extra keys include one of the
    /// optimizer's own ([`Error::ReservedGroupKey`]).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// adadelta::StateDict::<f32>::default().to_writer(&mut out)?;
    /// assert_eq!(out, b"{\"state\":{},\"param_groups\":[]}\n");
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn to_writer<W: Write>(&self, writer: W) -> Result<(), CheckpointError> {
        json::write(&self.as_ref(), writer)
    }

    /// Reads the JSON form from `reader`.
    ///
    /// ```
    /// let sd = adadelta::StateDict::<f32>::from_reader(&b"{\"state\":{},\"param_groups\":[]}"[..])?;
    /// assert!(sd.param_groups.is_empty());
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn from_reader<R: Read>(reader: R) -> Result<Self, CheckpointError> {
        json::read(reader)
    }

    /// The JSON form as a string (see [`to_writer`](Self::to_writer)).
    ///
    /// ```
    /// let json = adadelta::StateDict::<f32>::default().to_json_string()?;
    /// assert_eq!(json, r#"{"state":{},"param_groups":[]}"#);
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn to_json_string(&self) -> Result<String, CheckpointError> {
        let mut out = Vec::new();
        json::write(&self.as_ref(), &mut out)?;
        out.pop(); // the newline
        Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
    }

    /// Parses the JSON form.
    ///
    /// ```
    /// let sd = adadelta::StateDict::<f32>::from_json_str(r#"{"state":{},"param_groups":[]}"#)?;
    /// assert_eq!(sd, adadelta::StateDict::<f32>::default());
    /// # Ok::<(), adadelta::CheckpointError>(())
    /// ```
    pub fn from_json_str(json: &str) -> Result<Self, CheckpointError> {
        json::from_str(json)
    }

    /// Writes the file `path` atomically and durably, in the format its
    /// extension names ([`Format::from_path`](checkpoint::Format::from_path):
    /// `.json` is JSON, `.safetensors` is safetensors, anything else is
    /// PyTorch's `torch.save` format); see [`checkpoint::save`].
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-save-{}.json", std::process::id()));
    /// let sd = adadelta::StateDict::<f32>::default();
    /// sd.save(&path)?;
    /// assert_eq!(adadelta::StateDict::<f32>::load(&path)?, sd);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError>
    where
        E: Stored,
    {
        checkpoint::save(path, &self.as_ref(), &checkpoint::SaveOptions::default())
    }

    /// Reads the file `path`, in whichever format it is (told from its
    /// first bytes; [`checkpoint::load`]).
    ///
    /// ```
    /// let err = adadelta::StateDict::<f32>::load("/nonexistent/adadelta.json").unwrap_err();
    /// assert!(matches!(err, adadelta::CheckpointError::Io { .. }));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CheckpointError>
    where
        E: Stored,
    {
        checkpoint::load(path)
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
    checkpoint::save_json_value(path.as_ref(), value)
}

/// Reads a JSON file written by [`save_json`] (or any JSON of `T`).
///
/// ```
/// let err = adadelta::load_json::<adadelta::StateDict>("/nonexistent.json").unwrap_err();
/// assert!(matches!(err, adadelta::CheckpointError::Io { .. }));
/// ```
pub fn load_json<T: serde::de::DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<T, CheckpointError> {
    checkpoint::load_json_value(path.as_ref())
}
