//! Building an [`Adadelta`] (`new`, `new_named`, `with_groups`) and its settings that are
//! not part of the state dict: the kernel's [`Executor`] and the
//! [`NonFinitePolicy`].

use super::hooks::Hooks;
use super::{Adadelta, GroupSpec, NonFinitePolicy, Options, Shaped};
use crate::kernel::Executor;
use crate::Error;

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

    /// An optimizer of one group of named parameters (PyTorch's
    /// `Adadelta(model.named_parameters(), lr=..., ...)`): as
    /// [`new`](Self::new), with the names kept in the group
    /// ([`ParamGroup::param_names`](super::ParamGroup::param_names)) and its
    /// state dict. Every group added later must be named too
    /// ([`GroupSpec::named`]).
    ///
    /// ```
    /// use adadelta::{Adadelta, Options, Param};
    /// let mut opt = Adadelta::new_named(
    ///     [("linear.weight", Param::new(vec![0.5; 4])), ("linear.bias", Param::new(vec![0.0]))],
    ///     Options::default(),
    /// )?;
    /// opt.params_mut()[0].set_grad(vec![1.0; 4])?;
    /// opt.step()?;
    /// let sd = opt.state_dict();
    /// assert_eq!(sd.param_groups[0].param_names.as_deref(), Some(&["linear.weight".into(), "linear.bias".into()][..]));
    /// assert!(Adadelta::<Param>::new_named(Vec::<(String, Param)>::new(), Options::default()).is_err());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn new_named<S: Into<String>>(
        params: impl IntoIterator<Item = (S, P)>,
        defaults: Options,
    ) -> Result<Self, Error> {
        defaults.validate()?;
        let group = GroupSpec::named(params);
        if group.params.is_empty() {
            return Err(Error::EmptyParamList);
        }
        Self::with_groups(vec![group], defaults)
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
}
