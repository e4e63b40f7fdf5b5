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
//! `docs/coming-from-pytorch.md` maps every PyTorch call to its counterpart
//! here.
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

pub(crate) mod group;
mod hooks;
#[cfg(feature = "ndarray")]
mod ndarray;
mod nonfinite;
mod param;
pub mod state_dict;
mod step;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::checkpoint::{
    self, CheckpointError, ParamStateRef, SaveOptions, StateDictRef, TensorRef,
};
use crate::kernel::Executor;
use crate::Error;

#[cfg(feature = "ndarray")]
pub use self::ndarray::NdParam;
pub use group::{GroupSpec, Options, ParamGroup};
pub use hooks::{
    HookHandle, LoadStateDictPostHook, LoadStateDictPreHook, StateDictPostHook, StateDictPreHook,
    StepHook,
};
pub use nonfinite::NonFinitePolicy;
pub use param::{Lent, Param, ParamViewMut, Parameter, Shaped};
pub use state_dict::{load_json, save_json, GroupDict, ParamStateDict, StateDict, TensorData};

use group::check_extra;
use hooks::{HookList, Hooks};

/// One parameter's Adadelta state: the f32 step counter and the two running
/// averages. Created (zeros, step 0) the first time the parameter is stepped
/// with a gradient. Equality compares bit patterns.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut p = Param::new(vec![1.0]);
/// p.set_grad(vec![2.0])?;
/// let mut opt = Adadelta::new(vec![p, Param::new(vec![0.0])], Default::default())?;
/// opt.step()?;
/// let s = opt.state(0).unwrap();
/// assert_eq!((s.step(), s.square_avg().len()), (1.0, 1));
/// assert!(opt.state(1).is_none()); // no gradient: no state
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ParamState {
    step: f32,
    square_avg: Vec<f32>,
    acc_delta: Vec<f32>,
}

impl ParamState {
    /// Zeros for a parameter of `n` elements, or `None` when the memory
    /// cannot be had (instead of aborting the process): both tensors are
    /// reserved before either is written.
    fn try_zeros(n: usize) -> Option<Self> {
        let (mut square_avg, mut acc_delta) = (Vec::new(), Vec::new());
        square_avg.try_reserve_exact(n).ok()?;
        acc_delta.try_reserve_exact(n).ok()?;
        square_avg.resize(n, 0.0);
        acc_delta.resize(n, 0.0);
        Some(ParamState {
            step: 0.0,
            square_avg,
            acc_delta,
        })
    }

    /// The step counter: an f32, incremented by 1 in f32 per step, so that
    /// it stops growing at 2^24 = 16777216 as PyTorch's float32 tensor does.
    ///
    /// ```
    /// assert_eq!(16777216.0_f32 + 1.0, 16777216.0); // why it stops
    /// ```
    pub fn step(&self) -> f32 {
        self.step
    }

    /// The running average of squared gradients.
    ///
    /// ```
    /// # use adadelta::{Adadelta, Param};
    /// # let mut p = Param::new(vec![1.0]); p.set_grad(vec![2.0])?;
    /// # let mut opt = Adadelta::new(vec![p], Default::default())?; opt.step()?;
    /// // rho = 0.9: f32(0.1 * 2) * 2 + 0 * 0.9, rounded as PyTorch rounds it
    /// assert_eq!(opt.state(0).unwrap().square_avg(), &[(0.1_f32 * 2.0).mul_add(2.0, 0.0)]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn square_avg(&self) -> &[f32] {
        &self.square_avg
    }

    /// The running average of squared updates.
    ///
    /// ```
    /// # use adadelta::{Adadelta, Param};
    /// # let mut p = Param::new(vec![1.0]); p.set_grad(vec![2.0])?;
    /// # let mut opt = Adadelta::new(vec![p], Default::default())?; opt.step()?;
    /// assert!(opt.state(0).unwrap().acc_delta()[0] > 0.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn acc_delta(&self) -> &[f32] {
        &self.acc_delta
    }
}

impl PartialEq for ParamState {
    fn eq(&self, o: &Self) -> bool {
        let bits = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.step.to_bits() == o.step.to_bits()
            && bits(&self.square_avg, &o.square_avg)
            && bits(&self.acc_delta, &o.acc_delta)
    }
}

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
pub struct Adadelta<P = Param> {
    defaults: Options,
    groups: Vec<ParamGroup>,
    params: Vec<P>,
    states: Vec<Option<ParamState>>,
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
impl<P: Clone> Clone for Adadelta<P> {
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

impl<P: fmt::Debug> fmt::Debug for Adadelta<P> {
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

impl<P: Shaped> Adadelta<P> {
    /// An optimizer of one group holding `params`, with `defaults` as its
    /// options (PyTorch's `Adadelta(params, lr=..., ...)`).
    ///
    /// Errors, in PyTorch's order: the options ([`Options::validate`]), then
    /// [`Error::EmptyParamList`] for no parameter, then the group's checks
    /// ([`add_param_group`](Self::add_param_group)).
    ///
    /// ```
    /// use adadelta::{Adadelta, Options, Param};
    /// let err = Adadelta::new(vec![Param::new(vec![0.0])], Options { eps: -1e-8, ..Options::default() })
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "Invalid epsilon value: -1e-08");
    /// let err = Adadelta::<Param>::new(vec![], Options::default()).unwrap_err();
    /// assert_eq!(err.to_string(), "optimizer got an empty parameter list");
    /// ```
    pub fn new(params: Vec<P>, defaults: Options) -> Result<Self, Error> {
        defaults.validate()?;
        if params.is_empty() {
            return Err(Error::EmptyParamList);
        }
        Self::with_groups(vec![GroupSpec::new(params)], defaults)
    }

    /// An optimizer of several groups (PyTorch's list of dicts); each
    /// group's unset options come from `defaults`. A group may be empty, but
    /// not the list.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Options, Param};
    /// let opt = Adadelta::with_groups(
    ///     vec![
    ///         GroupSpec::new(vec![Param::new(vec![0.0; 3])]),
    ///         GroupSpec::new(vec![Param::new(vec![0.0])]).lr(0.1).weight_decay(0.01),
    ///     ],
    ///     Options::default(),
    /// )?;
    /// assert_eq!(opt.param_groups()[1].options().weight_decay, 0.01);
    /// assert_eq!(opt.params().len(), 2);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn with_groups(groups: Vec<GroupSpec<P>>, defaults: Options) -> Result<Self, Error> {
        defaults.validate()?;
        if groups.is_empty() {
            return Err(Error::EmptyParamList);
        }
        let mut opt = Adadelta {
            defaults,
            groups: Vec::with_capacity(groups.len()),
            params: Vec::new(),
            states: Vec::new(),
            executor: Executor::default(),
            non_finite: NonFinitePolicy::default(),
            skipped: 0,
            hooks: Hooks::default(),
        };
        for g in groups {
            opt.add_param_group(g)?;
        }
        Ok(opt)
    }

    /// Sets the executor the kernel runs with (numerics, threads), builder style.
    ///
    /// ```
    /// use adadelta::{kernel::Executor, Adadelta, Param};
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?
    ///     .with_executor(Executor::default());
    /// # let _ = opt;
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn with_executor(mut self, executor: Executor) -> Self {
        self.executor = executor;
        self
    }

    /// Replaces the executor the kernel runs with.
    ///
    /// ```
    /// use adadelta::{kernel::Executor, Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_executor(Executor::default());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_executor(&mut self, executor: Executor) {
        self.executor = executor;
    }

    /// The executor the kernel runs with.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// println!("{:?}", opt.executor());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Sets what a step does with a NaN or infinite gradient, builder style
    /// (see [`NonFinitePolicy`]; the default is PyTorch's `Propagate`).
    ///
    /// ```
    /// use adadelta::{Adadelta, NonFinitePolicy, Param};
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?
    ///     .with_non_finite_policy(NonFinitePolicy::Skip);
    /// assert_eq!(opt.non_finite_policy(), NonFinitePolicy::Skip);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn with_non_finite_policy(mut self, policy: NonFinitePolicy) -> Self {
        self.non_finite = policy;
        self
    }

    /// Replaces the [`NonFinitePolicy`]. It is a setting of this optimizer,
    /// like its executor, and not part of the state dict.
    ///
    /// ```
    /// use adadelta::{Adadelta, NonFinitePolicy, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_non_finite_policy(NonFinitePolicy::Error);
    /// assert_eq!(opt.non_finite_policy(), NonFinitePolicy::Error);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_non_finite_policy(&mut self, policy: NonFinitePolicy) {
        self.non_finite = policy;
    }

    /// The [`NonFinitePolicy`] in force.
    ///
    /// ```
    /// use adadelta::{Adadelta, NonFinitePolicy, Param};
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.non_finite_policy(), NonFinitePolicy::Propagate); // PyTorch's
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn non_finite_policy(&self) -> NonFinitePolicy {
        self.non_finite
    }

    /// How many steps [`NonFinitePolicy::Skip`] has skipped since this
    /// optimizer was built (not part of the state dict).
    ///
    /// ```
    /// use adadelta::{Adadelta, NonFinitePolicy, Param};
    /// let mut p = Param::new(vec![1.0]);
    /// p.set_grad(vec![f32::INFINITY])?;
    /// let mut opt = Adadelta::new(vec![p], Default::default())?
    ///     .with_non_finite_policy(NonFinitePolicy::Skip);
    /// opt.step()?;
    /// opt.params_mut()[0].set_grad(vec![0.5])?;
    /// opt.step()?;
    /// assert_eq!((opt.skipped_steps(), opt.state(0).unwrap().step()), (1, 1.0));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Checks that [`add_param_group`](Self::add_param_group) would accept
    /// `group`, without taking it; returns the group's filled-in options.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// let bad = GroupSpec::new(vec![Param::new(vec![1.0])]).rho(1.5);
    /// assert_eq!(opt.check_param_group(&bad).unwrap_err().to_string(), "Invalid rho value: 1.5");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn check_param_group(&self, group: &GroupSpec<P>) -> Result<Options, Error> {
        let options = group.options(&self.defaults);
        options.validate()?;
        check_extra(&group.extra)?;
        let ps = &group.params;
        for (i, p) in ps.iter().enumerate() {
            if ps[..i].iter().any(|q| p.is_same(q)) {
                return Err(Error::DuplicateParam);
            }
        }
        if ps.iter().any(|p| self.params.iter().any(|q| p.is_same(q))) {
            return Err(Error::ParamInMultipleGroups);
        }
        Ok(options)
    }

    /// Adds a parameter group (PyTorch's `add_param_group`): its unset
    /// options are filled from the defaults, then checked in PyTorch's order:
    ///
    /// * the options ([`Options::validate`]; PyTorch does not check a
    ///   group's own values, this crate does), and the extra keys;
    /// * a parameter twice in the group: [`Error::DuplicateParam`]. PyTorch
    ///   only warns and then updates that parameter twice per step; this
    ///   crate refuses it;
    /// * a parameter already in another group:
    ///   [`Error::ParamInMultipleGroups`] (PyTorch's `ValueError`).
    ///
    /// The last two need [`Parameter::is_same`]; owned parameters such as
    /// [`Param`] can never be given twice. The new parameters are numbered
    /// after the existing ones. On error the optimizer is unchanged and
    /// `group` is dropped; use [`check_param_group`](Self::check_param_group)
    /// first to keep it.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.add_param_group(GroupSpec::new(vec![Param::new(vec![0.0; 2])]).lr(0.5))?;
    /// assert_eq!(opt.param_groups()[1].params(), 1..2);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn add_param_group(&mut self, group: GroupSpec<P>) -> Result<(), Error> {
        let options = self.check_param_group(&group)?;
        let GroupSpec { params, extra, .. } = group;
        self.groups.push(ParamGroup {
            options,
            extra,
            start: self.params.len(),
            len: params.len(),
        });
        self.states.extend(params.iter().map(|_| None));
        self.params.extend(params);
        Ok(())
    }

    /// The default options (those given at construction).
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.defaults().lr, 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn defaults(&self) -> &Options {
        &self.defaults
    }

    /// The parameter groups (PyTorch's `param_groups`).
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.param_groups().len(), 1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn param_groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn group_index(&self, group: usize) -> Result<usize, Error> {
        if group < self.groups.len() {
            Ok(group)
        } else {
            Err(Error::NoSuchGroup {
                group,
                groups: self.groups.len(),
            })
        }
    }

    /// Sets every group's learning rate (PyTorch's `for g in
    /// opt.param_groups: g["lr"] = lr`), as a learning-rate schedule does.
    /// An invalid value changes nothing.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_lr(0.5)?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// assert_eq!(opt.set_lr(-1.0).unwrap_err().to_string(), "Invalid learning rate: -1.0");
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_lr(&mut self, lr: f64) -> Result<(), Error> {
        self.update_groups(|_, o| o.lr = lr)
    }

    /// Changes one group's options through `edit`, then validates them; on
    /// error the group keeps its old options.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.update_group(0, |o| { o.rho = 0.95; o.weight_decay = 1e-4 })?;
    /// assert_eq!(opt.param_groups()[0].options().rho, 0.95);
    /// assert!(opt.update_group(0, |o| o.rho = 1.01).is_err());
    /// assert_eq!(opt.param_groups()[0].options().rho, 0.95);
    /// assert!(opt.update_group(1, |_| ()).is_err()); // no group 1
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn update_group(
        &mut self,
        group: usize,
        edit: impl FnOnce(&mut Options),
    ) -> Result<(), Error> {
        let g = self.group_index(group)?;
        let mut o = self.groups[g].options;
        edit(&mut o);
        o.validate()?;
        self.groups[g].options = o;
        Ok(())
    }

    /// Changes every group's options through `edit(group index, options)`,
    /// then validates them all; on any error no group changes.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut opt = Adadelta::with_groups(
    ///     vec![GroupSpec::new(vec![Param::new(vec![0.0])]).lr(1.0), GroupSpec::new(vec![]).lr(0.1)],
    ///     Default::default(),
    /// )?;
    /// opt.update_groups(|_, o| o.lr *= 0.5)?; // a step decay
    /// assert_eq!((opt.param_groups()[0].options().lr, opt.param_groups()[1].options().lr), (0.5, 0.05));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn update_groups(
        &mut self,
        mut edit: impl FnMut(usize, &mut Options),
    ) -> Result<(), Error> {
        let mut new = Vec::with_capacity(self.groups.len());
        for (i, g) in self.groups.iter().enumerate() {
            let mut o = g.options;
            edit(i, &mut o);
            o.validate()?;
            new.push(o);
        }
        for (g, o) in self.groups.iter_mut().zip(new) {
            g.options = o;
        }
        Ok(())
    }

    /// Sets an extra key of a group (see [`GroupSpec::extra`]), e.g. the
    /// `initial_lr` an LR scheduler records; returns the old value.
    /// [`Error::ReservedGroupKey`] for a key this crate interprets.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_group_extra(0, "initial_lr", 1.0.into())?;
    /// assert_eq!(opt.state_dict().param_groups[0].extra["initial_lr"], 1.0);
    /// assert!(opt.set_group_extra(0, "lr", 1.0.into()).is_err());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_group_extra(
        &mut self,
        group: usize,
        key: impl Into<String>,
        value: Value,
    ) -> Result<Option<Value>, Error> {
        let g = self.group_index(group)?;
        let mut one = Map::new();
        one.insert(key.into(), value);
        check_extra(&one)?;
        let (key, value) = one.into_iter().next().expect("one entry was inserted");
        Ok(self.groups[g].extra.insert(key, value))
    }

    /// Removes an extra key of a group; returns its value.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_group_extra(0, "note", "x".into())?;
    /// assert_eq!(opt.remove_group_extra(0, "note")?, Some("x".into()));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn remove_group_extra(&mut self, group: usize, key: &str) -> Result<Option<Value>, Error> {
        let g = self.group_index(group)?;
        Ok(self.groups[g].extra.remove(key))
    }

    /// All parameters, in position order.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.params()[0].data(), &[2.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn params(&self) -> &[P] {
        &self.params
    }

    /// All parameters, mutable, in position order: set gradients here.
    /// Replacing a parameter by one of another size makes the next step fail
    /// with [`Error::LengthMismatch`] if it has state.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// opt.params_mut()[0].set_grad(vec![1.0])?;
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn params_mut(&mut self) -> &mut [P] {
        &mut self.params
    }

    /// The parameters of one group.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.group_params(0)?.len(), 1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn group_params(&self, group: usize) -> Result<&[P], Error> {
        let g = self.group_index(group)?;
        Ok(&self.params[self.groups[g].params()])
    }

    /// The parameters of one group, mutable.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// opt.group_params_mut(0)?[0].data_mut()[0] = 3.0;
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn group_params_mut(&mut self, group: usize) -> Result<&mut [P], Error> {
        let g = self.group_index(group)?;
        let r = self.groups[g].params();
        Ok(&mut self.params[r])
    }

    /// The parameters, consuming the optimizer.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.into_params()[0].data(), &[2.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn into_params(self) -> Vec<P> {
        self.params
    }

    /// The state of the parameter at `index`, if it has been stepped.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert!(opt.state(0).is_none() && opt.state(7).is_none());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state(&self, index: usize) -> Option<&ParamState> {
        self.states.get(index).and_then(Option::as_ref)
    }

    /// The optimizer's state in PyTorch's layout (PyTorch's `state_dict()`):
    /// the state-dict pre-hooks run first, then the post-hooks, which may
    /// change the returned dict. State tensors get their parameter's
    /// [`Parameter::shape`] (one dimension if that shape does not fit).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut p = Param::with_shape(vec![1.0; 6], vec![2, 3])?;
    /// p.set_grad(vec![0.5; 6])?;
    /// let mut opt = Adadelta::new(vec![p, Param::new(vec![0.0])], Default::default())?;
    /// opt.step()?;
    /// let sd = opt.state_dict();
    /// assert_eq!(sd.state.keys().collect::<Vec<_>>(), [&0]); // param 1 had no gradient
    /// assert_eq!(sd.state[&0].square_avg.shape(), &[2, 3]);
    /// assert_eq!(sd.param_groups[0].params, [0, 1]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state_dict(&self) -> StateDict {
        for h in self.hooks.state_dict_pre.snapshot() {
            h(self);
        }
        let mut sd = self.view().to_owned();
        for h in self.hooks.state_dict_post.snapshot() {
            h(self, &mut sd);
        }
        sd
    }

    /// The state dict, borrowing the live state instead of copying it: what
    /// the saves stream from. The state-dict pre-hooks run; post-hooks do
    /// not (they take an owned dict: [`save`](Self::save) calls
    /// [`state_dict`](Self::state_dict) instead when there are any).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0; 4])], Default::default())?;
    /// opt.params_mut()[0].set_grad(vec![0.5; 4])?;
    /// opt.step()?;
    /// assert_eq!(opt.state_dict_ref().to_owned(), opt.state_dict());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state_dict_ref(&self) -> StateDictRef<'_> {
        for h in self.hooks.state_dict_pre.snapshot() {
            h(self);
        }
        self.view()
    }

    /// The state dict, borrowed, without hooks.
    fn view(&self) -> StateDictRef<'_> {
        let state = self
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                // One dimension when the parameter's shape does not fit.
                let shape: Cow<'_, [usize]> = Cow::Owned(crate::shape::fitting(
                    self.params[i].shape(),
                    s.square_avg.len(),
                ));
                Some((
                    i,
                    ParamStateRef {
                        step: s.step,
                        square_avg: TensorRef {
                            shape: shape.clone(),
                            data: &s.square_avg,
                        },
                        acc_delta: TensorRef {
                            shape,
                            data: &s.acc_delta,
                        },
                    },
                ))
            })
            .collect();
        let param_groups = self
            .groups
            .iter()
            .map(|g| GroupDict {
                options: g.options,
                extra: g.extra.clone(),
                params: g.params().collect(),
            })
            .collect();
        StateDictRef {
            state,
            param_groups: Cow::Owned(param_groups),
        }
    }

    /// Loads a state dict (PyTorch's `load_state_dict`): the load pre-hooks
    /// run first (and may change it), then it is checked, then it replaces
    /// the groups' options and extra keys and every parameter's state, then
    /// the load post-hooks run.
    ///
    /// Parameters are matched by position: the `i`-th index listed across
    /// the saved groups is the optimizer's `i`-th parameter. Checked, in
    /// this order (PyTorch's checks first, with its messages):
    ///
    /// * the number of groups ([`Error::GroupCountMismatch`]) and each
    ///   group's size ([`Error::GroupSizeMismatch`]);
    /// * each group's options ([`Options::validate`]) and extra keys;
    /// * the saved indices are distinct and every state entry belongs to one
    ///   ([`Error::InvalidStateDict`]; PyTorch keeps stray entries);
    /// * each state tensor's length against its parameter
    ///   ([`Error::StateLengthMismatch`]);
    /// * values no run can produce, from a corrupted file
    ///   ([`Error::InvalidStateDict`]; PyTorch does not check): a negative
    ///   `square_avg` or `acc_delta` element (NaN and infinities are kept:
    ///   non-finite gradients propagate into them), a step counter that is
    ///   not a whole number at least 0.
    ///
    /// On error the optimizer is exactly as before (nothing half-loaded) and
    /// no post-hook runs.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut a = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// a.params_mut()[0].set_grad(vec![1.0])?;
    /// a.step()?;
    /// let mut b = Adadelta::new(vec![Param::new(vec![1.0])], adadelta::Options { lr: 0.1, ..Default::default() })?;
    /// b.load_state_dict(a.state_dict())?;
    /// assert_eq!(b.state(0), a.state(0));
    /// assert_eq!(b.param_groups()[0].options().lr, 1.0); // saved options win
    ///
    /// let mut c = Adadelta::with_groups(
    ///     vec![GroupSpec::new(vec![Param::new(vec![1.0])]), GroupSpec::new(vec![])],
    ///     Default::default(),
    /// )?;
    /// let err = c.load_state_dict(a.state_dict()).unwrap_err();
    /// assert_eq!(err.to_string(), "loaded state dict has a different number of parameter groups");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn load_state_dict(&mut self, mut state_dict: StateDict) -> Result<(), Error> {
        for h in self.hooks.load_pre.snapshot() {
            h(self, &mut state_dict);
        }
        let StateDict {
            state,
            param_groups,
        } = state_dict;
        if param_groups.len() != self.groups.len() {
            return Err(Error::GroupCountMismatch {
                saved: param_groups.len(),
                current: self.groups.len(),
            });
        }
        for (gi, (saved, current)) in param_groups.iter().zip(&self.groups).enumerate() {
            if saved.params.len() != current.len {
                return Err(Error::GroupSizeMismatch {
                    group: gi,
                    saved: saved.params.len(),
                    current: current.len,
                });
            }
        }
        for saved in &param_groups {
            saved.options.validate()?;
            check_extra(&saved.extra)?;
        }
        let mut position = HashMap::with_capacity(self.params.len());
        for (pos, &index) in param_groups.iter().flat_map(|g| &g.params).enumerate() {
            if position.insert(index, pos).is_some() {
                return Err(Error::InvalidStateDict(format!(
                    "parameter index {index} appears more than once in param_groups"
                )));
            }
        }
        let mut states: Vec<Option<ParamState>> = vec![None; self.params.len()];
        for (index, s) in state {
            let Some(&pos) = position.get(&index) else {
                return Err(Error::InvalidStateDict(format!(
                    "state has an entry for parameter index {index}, which is in no parameter group"
                )));
            };
            let n = self.params[pos].numel();
            for (key, t) in [("square_avg", &s.square_avg), ("acc_delta", &s.acc_delta)] {
                if t.len() != n {
                    return Err(Error::StateLengthMismatch {
                        index: pos,
                        key,
                        param: n,
                        state: t.len(),
                    });
                }
                // Values no run can produce (a corrupted file): refused
                // rather than stepped into NaN.
                if let Some(j) = t.data().iter().position(|&x| x < 0.0) {
                    return Err(Error::InvalidStateDict(format!(
                        "state[{index}].{key}[{j}] is {}: a running average of squares \
                         is never negative",
                        t.data()[j]
                    )));
                }
            }
            if !(s.step.is_finite() && s.step >= 0.0 && s.step.fract() == 0.0) {
                return Err(Error::InvalidStateDict(format!(
                    "state[{index}].step is {}: a step count is a whole number, at least 0",
                    s.step
                )));
            }
            states[pos] = Some(ParamState {
                step: s.step,
                square_avg: s.square_avg.into_parts().1,
                acc_delta: s.acc_delta.into_parts().1,
            });
        }
        // Everything is checked: commit.
        self.states = states;
        for (g, saved) in self.groups.iter_mut().zip(param_groups) {
            g.options = saved.options;
            g.extra = saved.extra;
        }
        for h in self.hooks.load_post.snapshot() {
            h(self);
        }
        Ok(())
    }

    /// Saves the state dict to `path` atomically and durably, in the format
    /// its extension names ([`Format::from_path`](crate::checkpoint::Format::from_path)): `.json`, `.safetensors`,
    /// or anything else for PyTorch's `torch.save` format. It streams from
    /// the live state ([`state_dict_ref`](Self::state_dict_ref)) unless a
    /// state-dict post-hook is registered, which needs an owned copy.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-opt-{}.pt", std::process::id()));
    /// let opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.save(&path)?;
    /// let mut other = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// other.load(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        self.save_with(path, &SaveOptions::default())
    }

    /// Saves as [`save`](Self::save) does, in the format and durability of
    /// `options`.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// use adadelta::checkpoint::{Durability, Format, SaveOptions};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-optw-{}.bin", std::process::id()));
    /// let opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.save_with(&path, &SaveOptions::new(Format::Safetensors).durability(Durability::NoSync))?;
    /// assert_eq!(adadelta::StateDict::load(&path)?, opt.state_dict());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_with(
        &self,
        path: impl AsRef<Path>,
        options: &SaveOptions,
    ) -> Result<(), CheckpointError> {
        if self.hooks.state_dict_post.len() == 0 {
            checkpoint::save(path, &self.state_dict_ref(), options)
        } else {
            checkpoint::save(path, &self.state_dict().as_ref(), options)
        }
    }

    /// Reads a state dict from `path`, in whichever format it is
    /// ([`checkpoint::load`]), and loads it
    /// ([`load_state_dict`](Self::load_state_dict)). The tensors are read
    /// straight into the buffers that become the state; on any error the
    /// optimizer is unchanged.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![1.0])], Default::default())?;
    /// assert!(opt.load("/nonexistent/optimizer.json").is_err());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let sd = checkpoint::load(path)?;
        self.load_state_dict(sd)
            .map_err(|e| CheckpointError::from(e).with_path(path))
    }

    fn register<F: ?Sized>(
        &mut self,
        list: impl FnOnce(&mut Hooks<P>) -> &mut HookList<F>,
        hook: Arc<F>,
        prepend: bool,
    ) -> HookHandle {
        let id = self.hooks.next();
        list(&mut self.hooks).add(id, hook, prepend);
        HookHandle(id)
    }

    /// Registers a hook called with the optimizer at the start of every
    /// [`step`](Self::step) / [`step_with`](Self::step_with), before the
    /// closure (PyTorch's `register_step_pre_hook`; hooks run in
    /// registration order). It may change the optimizer, e.g. the learning
    /// rate.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_step_pre_hook(|opt| opt.set_lr(0.5).unwrap());
    /// opt.step()?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_step_pre_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
    ) -> HookHandle {
        self.register(
            |h| &mut h.step_pre,
            Arc::new(hook) as Arc<StepHook<P>>,
            false,
        )
    }

    /// Registers a hook called with the optimizer after every successful
    /// step (PyTorch's `register_step_post_hook`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use adadelta::{Adadelta, Param};
    /// let steps = Arc::new(AtomicUsize::new(0));
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// let s = Arc::clone(&steps);
    /// opt.register_step_post_hook(move |_| { s.fetch_add(1, Ordering::Relaxed); });
    /// opt.step()?;
    /// opt.step()?;
    /// assert_eq!(steps.load(Ordering::Relaxed), 2);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_step_post_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
    ) -> HookHandle {
        self.register(
            |h| &mut h.step_post,
            Arc::new(hook) as Arc<StepHook<P>>,
            false,
        )
    }

    /// Registers a hook called with the optimizer before
    /// [`state_dict`](Self::state_dict) builds the dict; with `prepend` it
    /// runs before the hooks already registered.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_state_dict_pre_hook(|opt| println!("saving {} groups", opt.param_groups().len()), false);
    /// let _ = opt.state_dict();
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_state_dict_pre_hook(
        &mut self,
        hook: impl Fn(&Self) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.state_dict_pre,
            Arc::new(hook) as Arc<StateDictPreHook<P>>,
            prepend,
        )
    }

    /// Registers a hook that may change the dict
    /// [`state_dict`](Self::state_dict) returns (PyTorch's post-hook
    /// returning a replacement).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_state_dict_post_hook(
    ///     |_, sd| { sd.param_groups[0].extra.insert("saved_by".into(), "me".into()); },
    ///     false,
    /// );
    /// assert_eq!(opt.state_dict().param_groups[0].extra["saved_by"], "me");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_state_dict_post_hook(
        &mut self,
        hook: impl Fn(&Self, &mut StateDict) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.state_dict_post,
            Arc::new(hook) as Arc<StateDictPostHook<P>>,
            prepend,
        )
    }

    /// Registers a hook that may change a dict before
    /// [`load_state_dict`](Self::load_state_dict) checks and loads it.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// // Keep the current learning rate instead of the saved one.
    /// opt.register_load_state_dict_pre_hook(
    ///     |opt, sd| { for g in &mut sd.param_groups { g.options.lr = opt.param_groups()[0].options().lr; } },
    ///     false,
    /// );
    /// let mut sd = opt.state_dict();
    /// sd.param_groups[0].options.lr = 0.25;
    /// opt.load_state_dict(sd)?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_load_state_dict_pre_hook(
        &mut self,
        hook: impl Fn(&Self, &mut StateDict) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.load_pre,
            Arc::new(hook) as Arc<LoadStateDictPreHook<P>>,
            prepend,
        )
    }

    /// Registers a hook called with the optimizer after a successful
    /// [`load_state_dict`](Self::load_state_dict).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_load_state_dict_post_hook(|opt| opt.set_lr(0.1).unwrap(), false);
    /// opt.load_state_dict(opt.state_dict())?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_load_state_dict_post_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.load_post,
            Arc::new(hook) as Arc<LoadStateDictPostHook<P>>,
            prepend,
        )
    }

    /// Removes the hook `handle` identifies; whether it was registered
    /// (PyTorch's `handle.remove()`).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// let h = opt.register_state_dict_pre_hook(|_| panic!("removed hooks never run"), false);
    /// assert!(opt.remove_hook(h));
    /// let _ = opt.state_dict();
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn remove_hook(&mut self, handle: HookHandle) -> bool {
        self.hooks.remove(handle.0)
    }
}
