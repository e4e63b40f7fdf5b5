//! `torch.optim.Adadelta` in Rust: [`Adadelta`], its parameter groups,
//! state dict and hooks.
//!
//! The optimizer owns its parameters (any [`Parameter`] type: [`Param`] for
//! plain vectors, `NdParam` for `ndarray` with the `ndarray` feature, or
//! your own wrapper of a framework's tensor) in groups, and identifies each
//! by its position across the groups, as PyTorch's `state_dict` does. A step
//! reads each parameter's values and gradient through
//! [`Parameter::view_mut`] and runs the kernel ([`crate::kernel::run`]) on
//! all of them at once.
//!
//! [`guide::coming_from_pytorch`](crate::guide::coming_from_pytorch) maps
//! every PyTorch call to its counterpart here.
//!
//! ```
//! use adadelta::optimizer::{Adadelta, Options, Param};
//!
//! let mut opt = Adadelta::new(vec![Param::new(vec![0.5; 4])], Options::default())?;
//! let loss = opt.step_with(|params| {
//!     let w = &mut params[0];
//!     let loss: f32 = w.data().iter().map(|x| x * x).sum();
//!     let grad = w.data().iter().map(|x| 2.0 * x).collect();
//!     w.set_grad(grad).unwrap();
//!     loss
//! })?;
//! assert_eq!(loss, 1.0);
//! assert_eq!(opt.state(0).unwrap().step(), 1.0);
//! # Ok::<(), adadelta::Error>(())
//! ```

#![forbid(unsafe_code)]

mod access;
mod construct;
mod dict;
pub(crate) mod extra;
mod files;
pub(crate) mod group;
mod group_edit;
mod hooks;
#[cfg(feature = "ndarray")]
mod ndarray;
mod nonfinite;
mod param;
mod state;
pub mod state_dict;
mod step;

use std::fmt;

use crate::kernel::Executor;

#[cfg(feature = "ndarray")]
pub use self::ndarray::NdParam;
pub use extra::{Extra, ExtraValue};
pub use group::{GroupSpec, Options, ParamGroup};
pub use hooks::{
    HookHandle, LoadStateDictPostHook, LoadStateDictPreHook, StateDictPostHook, StateDictPreHook,
    StepHook,
};
pub use nonfinite::NonFinitePolicy;
pub use param::{Lent, Param, ParamViewMut, Parameter, Shaped};
pub use state::ParamState;
pub use state_dict::{load_json, save_json, GroupDict, ParamStateDict, StateDict, TensorData};

use hooks::Hooks;

/// `torch.optim.Adadelta`: parameter groups with their options, lazily
/// created per-parameter state, `step` (with or without a closure),
/// `zero_grad`, `state_dict`/`load_state_dict` and hooks, with PyTorch's
/// behaviour and error messages.
///
/// It owns its parameters; reach them with [`params`](Self::params) and
/// [`params_mut`](Self::params_mut) (or inside the closure of
/// [`step_with`](Self::step_with)). A parameter is identified by its
/// position across the groups (group 0's parameters first), which is also
/// its key in the state dict. It is `Send + Sync` when `P` is.
///
/// The parameters' element type ([`Shaped::Elem`]: `f32`, or `f64`,
/// [`half::bf16`] or [`half::f16`]
/// with [`Param<f64>`](Param) or `Param<bf16>` for instance) is the
/// state's, and the state dict's ([`StateDict<f64>`](StateDict)); the step
/// counters are `f32`, as PyTorch's.
///
/// ```
/// use adadelta::{Adadelta, Options, Param};
///
/// // Minimise (w - 3)^2.
/// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Options { lr: 1.0, ..Options::default() })?;
/// for _ in 0..500 {
///     opt.zero_grad(true);
///     let w = &mut opt.params_mut()[0];
///     let g = 2.0 * (w.data()[0] - 3.0);
///     w.set_grad(vec![g])?;
///     opt.step()?;
/// }
/// assert!(opt.params()[0].data()[0] > 0.1); // Adadelta starts slowly but moves towards 3
/// # Ok::<(), adadelta::Error>(())
/// ```
pub struct Adadelta<P: Shaped = Param> {
    defaults: Options,
    groups: Vec<ParamGroup>,
    params: Vec<P>,
    states: Vec<Option<ParamState<P::Elem>>>,
    executor: Executor,
    non_finite: NonFinitePolicy,
    skipped: u64,
    hooks: Hooks<P>,
}

/// A deep copy (PyTorch's `copy.deepcopy(optimizer)`): the parameters
/// (cloned as `P` clones), the groups, the options, every state tensor, the
/// executor, the non-finite policy and its count of skipped steps. Hooks are
/// shared, not copied: the clone calls the same closures (as deepcopy keeps
/// the same hook functions), so a hook's captured state is common to both,
/// and a [`HookHandle`] of either removes the hook from the one it is given
/// to.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut p = Param::new(vec![1.0]);
/// p.set_grad(vec![0.5])?;
/// let mut a = Adadelta::new(vec![p], Default::default())?;
/// a.step()?;
/// let mut b = a.clone();
/// a.step()?;
/// b.step()?;
/// assert_eq!(a.state_dict(), b.state_dict());
/// assert_eq!(a.params()[0].data(), b.params()[0].data());
/// # Ok::<(), adadelta::Error>(())
/// ```
impl<P: Shaped + Clone> Clone for Adadelta<P> {
    fn clone(&self) -> Self {
        Adadelta {
            defaults: self.defaults,
            groups: self.groups.clone(),
            params: self.params.clone(),
            states: self.states.clone(),
            executor: self.executor.clone(),
            non_finite: self.non_finite,
            skipped: self.skipped,
            hooks: self.hooks.clone(),
        }
    }
}

impl<P: Shaped + fmt::Debug> fmt::Debug for Adadelta<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adadelta")
            .field("defaults", &self.defaults)
            .field("param_groups", &self.groups)
            .field("params", &self.params)
            .field("state", &self.states)
            .field("executor", &self.executor)
            .field("non_finite_policy", &self.non_finite)
            .field("skipped_steps", &self.skipped)
            .field("hooks", &self.hooks.count())
            .finish()
    }
}
