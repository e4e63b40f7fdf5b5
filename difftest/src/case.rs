//! A differential-test case: hyperparameters, initial parameters and the
//! gradient of every parameter at every step (absent gradients allowed), and
//! the trajectory an implementation produces from it.
//!
//! On the wire (JSON, shared with the Python side in `difftest/python/`)
//! every f32 is its IEEE bit pattern as an unsigned integer, so nothing is
//! lost to decimal printing.

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
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
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

fn to_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn from_bits(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&b| f32::from_bits(b)).collect()
}

/// Wire form of [`Case`].
#[derive(Serialize, Deserialize)]
pub struct WireCase {
    /// See [`Case::name`].
    pub name: String,
    /// See [`Case::hyper`].
    pub hyper: Hyper,
    /// f32 bit patterns of the initial parameters.
    pub params: Vec<Vec<u32>>,
    /// f32 bit patterns of the gradients, `[step][param]`, `null` when absent.
    pub grads: Vec<Vec<Option<Vec<u32>>>>,
}

/// Wire form of [`Snapshot`].
#[derive(Serialize, Deserialize)]
pub struct WireSnapshot {
    /// f32 bit patterns of the parameters.
    pub params: Vec<Vec<u32>>,
    /// f32 bit patterns of `square_avg`, `null` without state.
    pub square_avg: Vec<Option<Vec<u32>>>,
    /// f32 bit patterns of `acc_delta`, `null` without state.
    pub acc_delta: Vec<Option<Vec<u32>>>,
    /// f32 bit pattern of the step counter, `null` without state.
    pub step: Vec<Option<u32>>,
}

impl From<&Case> for WireCase {
    fn from(c: &Case) -> Self {
        WireCase {
            name: c.name.clone(),
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

impl From<&WireCase> for Case {
    fn from(w: &WireCase) -> Self {
        Case {
            name: w.name.clone(),
            hyper: w.hyper,
            params: w.params.iter().map(|p| from_bits(p)).collect(),
            grads: w
                .grads
                .iter()
                .map(|s| s.iter().map(|g| g.as_deref().map(from_bits)).collect())
                .collect(),
        }
    }
}

impl From<&Snapshot> for WireSnapshot {
    fn from(s: &Snapshot) -> Self {
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

impl From<&WireSnapshot> for Snapshot {
    fn from(w: &WireSnapshot) -> Self {
        Snapshot {
            params: w.params.iter().map(|p| from_bits(p)).collect(),
            square_avg: w
                .square_avg
                .iter()
                .map(|v| v.as_deref().map(from_bits))
                .collect(),
            acc_delta: w
                .acc_delta
                .iter()
                .map(|v| v.as_deref().map(from_bits))
                .collect(),
            step: w.step.iter().map(|v| v.map(f32::from_bits)).collect(),
        }
    }
}
