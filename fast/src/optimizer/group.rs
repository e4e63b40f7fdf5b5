//! Hyperparameters of a parameter group ([`Options`]), a group to add
//! ([`GroupSpec`]) and a group of the optimizer ([`ParamGroup`]).

use std::ops::Range;

use super::extra::{Extra, ExtraValue};

use crate::{Error, Hyperparams};

/// The keys of a parameter group that this crate interprets: the options in
/// PyTorch's order, `params`, and `param_names` (present only in a group of
/// named parameters, [`GroupSpec::named`]). Any other key is kept verbatim
/// as an extra.
pub(crate) const GROUP_KEYS: [&str; 10] = [
    "lr",
    "rho",
    "eps",
    "weight_decay",
    "maximize",
    "capturable",
    "foreach",
    "differentiable",
    "params",
    PARAM_NAMES,
];

/// The group key of the parameters' names (PyTorch's, since 2.5).
pub(crate) const PARAM_NAMES: &str = "param_names";

/// Every option of `torch.optim.Adadelta`, with PyTorch's defaults: the
/// optimizer's defaults and each group's values.
///
/// `foreach` is PyTorch's flag: `Some(true)` steps as its `foreach` path
/// does, `None` and `Some(false)` as its for-loop (the default on CPU). The
/// two give the same bits for float32 and float64 parameters; for bfloat16
/// and float16 the `foreach` path rounds `rho` to the dtype
/// ([`Hyperparams::foreach`](crate::Hyperparams::foreach)). `capturable` and
/// `differentiable` exist so that PyTorch state dicts round-trip, and must be
/// `false` ([`Options::validate`]).
///
/// ```
/// use adadelta::Options;
/// let o = Options { lr: 0.5, weight_decay: 1e-4, ..Options::default() };
/// assert_eq!((o.rho, o.eps, o.maximize, o.foreach), (0.9, 1e-6, false, None));
/// o.validate()?;
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Learning rate (default 1.0).
    pub lr: f64,
    /// Decay of the running averages, in `[0, 1]` (default 0.9).
    pub rho: f64,
    /// Added inside both square roots (default 1e-6).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimising it (default false).
    pub maximize: bool,
    /// PyTorch's choice of implementation (default `None`); stored only.
    pub foreach: Option<bool>,
    /// CUDA-graph capture; must be `false` (default).
    pub capturable: bool,
    /// Autograd through the step; must be `false` (default).
    pub differentiable: bool,
}

impl Default for Options {
    fn default() -> Self {
        let h = Hyperparams::default();
        Options {
            lr: h.lr,
            rho: h.rho,
            eps: h.eps,
            weight_decay: h.weight_decay,
            maximize: h.maximize,
            foreach: None,
            capturable: false,
            differentiable: false,
        }
    }
}

impl Options {
    /// Checks the options in `torch.optim.Adadelta.__init__`'s order with
    /// its messages (`lr`, `rho`, `eps`, `weight_decay`), then refuses
    /// `capturable` and `differentiable`.
    ///
    /// ```
    /// use adadelta::Options;
    /// let e = Options { lr: -1.0, rho: 2.0, ..Default::default() }.validate().unwrap_err();
    /// assert_eq!(e.to_string(), "Invalid learning rate: -1.0"); // lr is checked first
    /// let e = Options { capturable: true, ..Default::default() }.validate().unwrap_err();
    /// assert_eq!(e, adadelta::Error::CapturableUnsupported);
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        self.hyperparams().validate()?;
        if self.capturable {
            return Err(Error::CapturableUnsupported);
        }
        if self.differentiable {
            return Err(Error::DifferentiableUnsupported);
        }
        Ok(())
    }

    /// The numeric hyperparameters, as the kernel takes them.
    ///
    /// ```
    /// let h = adadelta::Options { lr: 0.1, ..Default::default() }.hyperparams();
    /// assert_eq!(h.lr, 0.1);
    /// ```
    pub fn hyperparams(&self) -> Hyperparams {
        Hyperparams {
            lr: self.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            // `None` is the for-loop on CPU (PyTorch defaults to foreach
            // only for CUDA tensors).
            foreach: self.foreach == Some(true),
        }
    }
}

/// A parameter group to give the optimizer: its parameters and the options
/// it sets; the options it leaves unset are filled from the optimizer's
/// defaults (PyTorch's `{"params": [...], "lr": 0.01}` dict).
///
/// ```
/// use adadelta::{Adadelta, GroupSpec, Options, Param};
/// let backbone = vec![Param::new(vec![1.0; 4])];
/// let head = vec![Param::new(vec![0.0; 2])];
/// let opt = Adadelta::with_groups(
///     vec![GroupSpec::new(backbone), GroupSpec::new(head).lr(0.1)],
///     Options { lr: 0.01, ..Options::default() },
/// )?;
/// assert_eq!(opt.param_groups()[0].options().lr, 0.01);
/// assert_eq!(opt.param_groups()[1].options().lr, 0.1);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GroupSpec<P> {
    pub(crate) params: Vec<P>,
    lr: Option<f64>,
    rho: Option<f64>,
    eps: Option<f64>,
    weight_decay: Option<f64>,
    maximize: Option<bool>,
    foreach: Option<Option<bool>>,
    capturable: Option<bool>,
    differentiable: Option<bool>,
    pub(crate) param_names: Option<Vec<String>>,
    pub(crate) extra: Extra,
}

impl<P> GroupSpec<P> {
    /// A group of `params` that sets no option.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::new(vec![adadelta::Param::new(vec![0.0])]);
    /// assert_eq!(g.params().len(), 1);
    /// ```
    pub fn new(params: Vec<P>) -> Self {
        GroupSpec {
            params,
            lr: None,
            rho: None,
            eps: None,
            weight_decay: None,
            maximize: None,
            foreach: None,
            capturable: None,
            differentiable: None,
            param_names: None,
            extra: Extra::new(),
        }
    }

    /// A group of named parameters that sets no option (PyTorch's
    /// `{"params": model.named_parameters()}`, or
    /// `Adadelta(model.named_parameters())` for one group: see
    /// [`Adadelta::new_named`](crate::Adadelta::new_named)). The names are
    /// kept in the group and its state dict (`param_names`) and do not
    /// affect loading: parameters are matched by position, as in PyTorch.
    /// Either every group of an optimizer is named or none is
    /// ([`Error::MixedParamNames`]). As in PyTorch, which finds the names in
    /// the `(name, tensor)` pairs, a group of no parameters is not named.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Options, Param};
    /// let g = GroupSpec::named([("weight", Param::new(vec![0.0; 4])), ("bias", Param::new(vec![0.0]))]);
    /// assert_eq!(g.param_names(), Some(&["weight".to_string(), "bias".to_string()][..]));
    /// let opt = Adadelta::with_groups(vec![g.lr(0.1)], Options::default())?;
    /// assert_eq!(opt.state_dict().param_groups[0].param_names.as_deref(), Some(&["weight".into(), "bias".into()][..]));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn named<S: Into<String>>(params: impl IntoIterator<Item = (S, P)>) -> Self {
        let (names, params): (Vec<String>, Vec<P>) =
            params.into_iter().map(|(n, p)| (n.into(), p)).unzip();
        GroupSpec {
            param_names: (!names.is_empty()).then_some(names),
            ..GroupSpec::new(params)
        }
    }

    /// The parameters' names, for a group built by [`named`](Self::named).
    ///
    /// ```
    /// let g = adadelta::GroupSpec::new(vec![adadelta::Param::new(vec![0.0])]);
    /// assert_eq!(g.param_names(), None);
    /// ```
    pub fn param_names(&self) -> Option<&[String]> {
        self.param_names.as_deref()
    }

    /// The group's parameters.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]);
    /// assert!(g.params().is_empty());
    /// ```
    pub fn params(&self) -> &[P] {
        &self.params
    }

    /// Sets the group's learning rate.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).lr(0.1);
    /// assert_eq!(g.options(&Default::default()).lr, 0.1);
    /// ```
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// Sets the group's `rho`.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).rho(0.5);
    /// assert_eq!(g.options(&Default::default()).rho, 0.5);
    /// ```
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = Some(rho);
        self
    }

    /// Sets the group's `eps`.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).eps(1e-8);
    /// assert_eq!(g.options(&Default::default()).eps, 1e-8);
    /// ```
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = Some(eps);
        self
    }

    /// Sets the group's weight decay.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).weight_decay(0.01);
    /// assert_eq!(g.options(&Default::default()).weight_decay, 0.01);
    /// ```
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Sets whether the group maximizes.
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).maximize(true);
    /// assert!(g.options(&Default::default()).maximize);
    /// ```
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = Some(maximize);
        self
    }

    /// Sets the group's `foreach` (PyTorch's flag: see [`Options`]).
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).foreach(Some(false));
    /// assert_eq!(g.options(&Default::default()).foreach, Some(false));
    /// ```
    pub fn foreach(mut self, foreach: Option<bool>) -> Self {
        self.foreach = Some(foreach);
        self
    }

    /// Sets the group's `capturable` (only `false` is accepted).
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).capturable(true);
    /// assert!(g.options(&Default::default()).validate().is_err());
    /// ```
    pub fn capturable(mut self, capturable: bool) -> Self {
        self.capturable = Some(capturable);
        self
    }

    /// Sets the group's `differentiable` (only `false` is accepted).
    ///
    /// ```
    /// let g = adadelta::GroupSpec::<adadelta::Param>::new(vec![]).differentiable(true);
    /// assert!(g.options(&Default::default()).validate().is_err());
    /// ```
    pub fn differentiable(mut self, differentiable: bool) -> Self {
        self.differentiable = Some(differentiable);
        self
    }

    /// Adds a key that the optimizer keeps verbatim in the group and its
    /// state dict, as PyTorch keeps unknown group keys (for example an LR
    /// scheduler's `initial_lr`). A key this crate interprets (`lr`, ...,
    /// `params`, `param_names`) is refused ([`Error::ReservedGroupKey`]) when the group is
    /// added.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Options, Param};
    /// let g = GroupSpec::new(vec![Param::new(vec![0.0])]).extra("initial_lr", 1.0);
    /// let opt = Adadelta::with_groups(vec![g], Options::default())?;
    /// assert_eq!(opt.param_groups()[0].extra()["initial_lr"].as_f64(), Some(1.0));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<ExtraValue>) -> Self {
        self.extra.insert(key, value);
        self
    }

    /// The group's options: those it sets, the others from `defaults`
    /// (PyTorch's `setdefault` of each default). Not validated.
    ///
    /// ```
    /// use adadelta::{GroupSpec, Options, Param};
    /// let defaults = Options { lr: 0.3, rho: 0.8, ..Options::default() };
    /// let o = GroupSpec::<Param>::new(vec![]).rho(0.95).options(&defaults);
    /// assert_eq!((o.lr, o.rho), (0.3, 0.95));
    /// ```
    pub fn options(&self, defaults: &Options) -> Options {
        Options {
            lr: self.lr.unwrap_or(defaults.lr),
            rho: self.rho.unwrap_or(defaults.rho),
            eps: self.eps.unwrap_or(defaults.eps),
            weight_decay: self.weight_decay.unwrap_or(defaults.weight_decay),
            maximize: self.maximize.unwrap_or(defaults.maximize),
            foreach: self.foreach.unwrap_or(defaults.foreach),
            capturable: self.capturable.unwrap_or(defaults.capturable),
            differentiable: self.differentiable.unwrap_or(defaults.differentiable),
        }
    }
}

/// A parameter group of the optimizer: its options, the keys it keeps
/// verbatim, which parameters it holds (a range of positions across all
/// groups, PyTorch's state-dict numbering) and, for named parameters, their
/// names.
///
/// ```
/// use adadelta::{Adadelta, Options, Param};
/// let opt = Adadelta::new(vec![Param::new(vec![0.0]), Param::new(vec![0.0; 2])], Options::default())?;
/// let g = &opt.param_groups()[0];
/// assert_eq!((g.params(), g.len(), g.options().lr), (0..2, 2, 1.0));
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    pub(crate) options: Options,
    pub(crate) extra: Extra,
    pub(crate) param_names: Option<Vec<String>>,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl ParamGroup {
    /// The group's options.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.param_groups()[0].options().rho, 0.9);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The keys kept verbatim (see [`GroupSpec::extra`]).
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert!(opt.param_groups()[0].extra().is_empty());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn extra(&self) -> &Extra {
        &self.extra
    }

    /// The names of the group's parameters, in order, if it was built from
    /// named parameters ([`GroupSpec::named`]) or loaded from a state dict
    /// that names them (PyTorch's `param_groups[i]["param_names"]`).
    ///
    /// ```
    /// use adadelta::{Adadelta, Options, Param};
    /// let opt = Adadelta::new_named([("w", Param::new(vec![0.0]))], Options::default())?;
    /// assert_eq!(opt.param_groups()[0].param_names(), Some(&["w".to_string()][..]));
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Options::default())?;
    /// assert_eq!(opt.param_groups()[0].param_names(), None);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn param_names(&self) -> Option<&[String]> {
        self.param_names.as_deref()
    }

    /// The positions of the group's parameters across all groups.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let opt = Adadelta::with_groups(
    ///     vec![GroupSpec::new(vec![Param::new(vec![0.0])]), GroupSpec::new(vec![Param::new(vec![0.0])])],
    ///     Default::default(),
    /// )?;
    /// assert_eq!(opt.param_groups()[1].params(), 1..2);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn params(&self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// The number of parameters in the group.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.param_groups()[0].len(), 1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the group has no parameter (PyTorch allows such groups).
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let opt = Adadelta::<Param>::with_groups(vec![GroupSpec::new(vec![])], Default::default())?;
    /// assert!(opt.param_groups()[0].is_empty());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Refuses extra keys that this crate interprets.
pub(crate) fn check_extra(extra: &Extra) -> Result<(), Error> {
    extra.keys().try_for_each(check_extra_key)
}

/// Refuses a key that this crate interprets as an extra key.
pub(crate) fn check_extra_key(key: &str) -> Result<(), Error> {
    match GROUP_KEYS.contains(&key) {
        true => Err(Error::ReservedGroupKey(key.to_owned())),
        false => Ok(()),
    }
}
