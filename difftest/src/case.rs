//! A differential-test case: hyperparameters, initial parameters and the
//! gradient of every parameter at every step (absent gradients allowed), and
//! the trajectory an implementation produces from it.
//!
//! On the wire (JSON, shared with the Python side in `difftest/python/`)
//! every f32 or f64 is its IEEE bit pattern as an unsigned integer, so
//! nothing is lost to decimal printing.

use crate::accuracy::Compared;
use adadelta_reference::Format;
use serde::{Deserialize, Serialize};

/// Adadelta's hyperparameters as the user gives them to `torch.optim.Adadelta`
/// (Python floats, i.e. f64).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the running averages.
    pub rho: f64,
    /// Term added inside both square roots.
    pub eps: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Maximize the objective instead of minimising it.
    pub maximize: bool,
    /// PyTorch's `foreach` path (`foreach=True`) rather than the for-loop;
    /// it changes the bits of bfloat16 and float16 steps only.
    #[serde(default)]
    pub foreach: bool,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
            foreach: false,
        }
    }
}

impl Hyper {
    /// The same hyperparameters for the MPFR reference.
    pub fn to_reference(self) -> adadelta_reference::Hyperparams {
        adadelta_reference::Hyperparams {
            lr: self.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
        }
    }

    /// The same hyperparameters for the fast crate.
    pub fn to_fast(self) -> adadelta::Hyperparams {
        adadelta::Hyperparams {
            lr: self.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            foreach: self.foreach,
        }
    }

    /// The same hyperparameters as the fast crate's optimizer options (the
    /// other options at PyTorch's defaults).
    pub fn to_options(self) -> adadelta::Options {
        adadelta::Options {
            lr: self.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            ..adadelta::Options::default()
        }
    }
}

/// One scenario: initial parameters and per-step gradients, in the
/// parameters' dtype `T` (`f32`, or `f64` for the float64 fixtures).
#[derive(Clone, Debug, PartialEq)]
pub struct Case<T = f32> {
    /// A short readable name (used in reports and failure messages).
    pub name: String,
    /// Hyperparameters (one group).
    pub hyper: Hyper,
    /// Initial value of every parameter tensor (flattened).
    pub params: Vec<Vec<T>>,
    /// `grads[step][param]`; `None` means the parameter has no gradient at
    /// that step (PyTorch's `p.grad is None`: skipped, no state created).
    pub grads: Vec<Vec<Option<Vec<T>>>>,
}

/// Parameters and state of every tensor after one step, in the parameters'
/// dtype `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<T = f32> {
    /// Parameter values.
    pub params: Vec<Vec<T>>,
    /// `square_avg` per parameter, `None` while the parameter has no state.
    pub square_avg: Vec<Option<Vec<T>>>,
    /// `acc_delta` per parameter, `None` while the parameter has no state.
    pub acc_delta: Vec<Option<Vec<T>>>,
    /// The step counter per parameter (PyTorch stores it as an f32 tensor,
    /// whatever the parameter's dtype).
    pub step: Vec<Option<f32>>,
}

/// The snapshot after each step of a case: `trajectory[t]` is after step `t + 1`.
pub type Trajectory<T = f32> = Vec<Snapshot<T>>;

/// The bit patterns of `v`, widened to `u64`.
fn to_bits<T: Compared>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.bits()).collect()
}

/// The values of the bit patterns `v`; an error if one does not fit `T`.
fn from_bits<T: Format>(v: &[u64]) -> Result<Vec<T>, String> {
    v.iter()
        .map(|&b| {
            if T::BITS < 64 && b >> T::BITS != 0 {
                Err(format!("bit pattern {b:#x} is wider than {}", T::BITS))
            } else {
                Ok(<T as Format>::from_bits(b))
            }
        })
        .collect()
}

/// Each tensor's values, `None` kept.
fn optional<T: Format>(v: &[Option<Vec<u64>>]) -> Result<Vec<Option<Vec<T>>>, String> {
    v.iter()
        .map(|x| x.as_deref().map(from_bits).transpose())
        .collect()
}

/// Wire form of [`Case`].
#[derive(Serialize, Deserialize)]
pub struct WireCase {
    /// See [`Case::name`].
    pub name: String,
    /// The parameters' dtype as torch names it, `float32` (the default when
    /// absent) or `float64`.
    #[serde(default = "float32")]
    pub dtype: String,
    /// See [`Case::hyper`].
    pub hyper: Hyper,
    /// Bit patterns of the initial parameters, in the dtype's width.
    pub params: Vec<Vec<u64>>,
    /// Bit patterns of the gradients, `[step][param]`, `null` when absent.
    pub grads: Vec<Vec<Option<Vec<u64>>>>,
}

fn float32() -> String {
    "float32".into()
}

/// Wire form of [`Snapshot`].
#[derive(Serialize, Deserialize)]
pub struct WireSnapshot {
    /// Bit patterns of the parameters, in their dtype's width.
    pub params: Vec<Vec<u64>>,
    /// Bit patterns of `square_avg`, `null` without state.
    pub square_avg: Vec<Option<Vec<u64>>>,
    /// Bit patterns of `acc_delta`, `null` without state.
    pub acc_delta: Vec<Option<Vec<u64>>>,
    /// f32 bit pattern of the step counter (float32 whatever the
    /// parameters' dtype), `null` without state.
    pub step: Vec<Option<u32>>,
}

impl<T: Compared> From<&Case<T>> for WireCase {
    fn from(c: &Case<T>) -> Self {
        WireCase {
            name: c.name.clone(),
            dtype: <T as adadelta::kernel::Element>::DTYPE.into(),
            hyper: c.hyper,
            params: c.params.iter().map(|p| to_bits(p)).collect(),
            grads: c
                .grads
                .iter()
                .map(|s| s.iter().map(|g| g.as_deref().map(to_bits)).collect())
                .collect(),
        }
    }
}

impl<T: Compared + Format> TryFrom<&WireCase> for Case<T> {
    type Error = String;

    /// The case, if its dtype is `T`'s and every bit pattern fits.
    fn try_from(w: &WireCase) -> Result<Self, String> {
        if w.dtype != <T as adadelta::kernel::Element>::DTYPE {
            return Err(format!(
                "a {} case read as {}",
                w.dtype,
                <T as adadelta::kernel::Element>::DTYPE
            ));
        }
        Ok(Case {
            name: w.name.clone(),
            hyper: w.hyper,
            params: w
                .params
                .iter()
                .map(|p| from_bits(p))
                .collect::<Result<_, _>>()?,
            grads: w
                .grads
                .iter()
                .map(|s| optional(s))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl<T: Compared> From<&Snapshot<T>> for WireSnapshot {
    fn from(s: &Snapshot<T>) -> Self {
        WireSnapshot {
            params: s.params.iter().map(|p| to_bits(p)).collect(),
            square_avg: s
                .square_avg
                .iter()
                .map(|v| v.as_deref().map(to_bits))
                .collect(),
            acc_delta: s
                .acc_delta
                .iter()
                .map(|v| v.as_deref().map(to_bits))
                .collect(),
            step: s.step.iter().map(|v| v.map(f32::to_bits)).collect(),
        }
    }
}

impl<T: Compared + Format> TryFrom<&WireSnapshot> for Snapshot<T> {
    type Error = String;

    /// The snapshot, if every bit pattern fits `T`.
    fn try_from(w: &WireSnapshot) -> Result<Self, String> {
        Ok(Snapshot {
            params: w
                .params
                .iter()
                .map(|p| from_bits(p))
                .collect::<Result<_, _>>()?,
            square_avg: optional(&w.square_avg)?,
            acc_delta: optional(&w.acc_delta)?,
            step: w.step.iter().map(|v| v.map(f32::from_bits)).collect(),
        })
    }
}
