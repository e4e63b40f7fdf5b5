//! The optimizer's construction, validation and parameter groups: defaults,
//! PyTorch's check order, typed errors, group options filled from defaults,
//! duplicate and overlapping parameters, and changing options between steps.
//!
//! The error *texts* are compared with real PyTorch in
//! `difftest/tests/api_pytorch.rs`; here the typed variants and the order of
//! the checks are tested.

use adadelta::{Adadelta, Error, GroupSpec, Options, Param, ParamViewMut, Parameter};

/// A parameter with an identity, like a handle to a shared framework tensor:
/// two `Handle`s with the same `id` are the same parameter.
#[derive(Debug)]
struct Handle {
    id: u32,
    data: Vec<f32>,
    grad: Option<Vec<f32>>,
}

fn handle(id: u32) -> Handle {
    Handle {
        id,
        data: vec![0.0; 2],
        grad: None,
    }
}

impl Parameter for Handle {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.data.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        Ok(ParamViewMut {
            data: &mut self.data,
            grad: self.grad.as_deref(),
        })
    }
    fn zero_grad(&mut self, set_to_none: bool) {
        if set_to_none {
            self.grad = None;
        } else if let Some(g) = &mut self.grad {
            g.fill(0.0);
        }
    }
    fn is_same(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

fn p(n: usize) -> Param {
    Param::new(vec![0.0; n])
}

#[test]
fn defaults_are_pytorchs() {
    // torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-06,
    // weight_decay=0, foreach=None, *, capturable=False, maximize=False,
    // differentiable=False) (seed docs and torch/optim/adadelta.py).
    let o = Options::default();
    assert_eq!((o.lr, o.rho, o.eps, o.weight_decay), (1.0, 0.9, 1e-6, 0.0));
    assert_eq!(
        (o.maximize, o.foreach, o.capturable, o.differentiable),
        (false, None, false, false)
    );
    let opt = Adadelta::new(vec![p(1)], Options::default()).unwrap();
    assert_eq!(opt.param_groups()[0].options(), &o);
    assert_eq!(opt.defaults(), &o);
}

#[test]
fn validation_runs_in_pytorchs_order() {
    let all_bad = Options {
        lr: -1.0,
        rho: 2.0,
        eps: -1.0,
        weight_decay: -1.0,
        capturable: true,
        differentiable: true,
        ..Options::default()
    };
    let mut o = all_bad;
    assert_eq!(o.validate(), Err(Error::InvalidLr(-1.0)));
    o.lr = 0.0; // lr = 0 is allowed
    assert_eq!(o.validate(), Err(Error::InvalidRho(2.0)));
    o.rho = 1.0; // rho = 1 is allowed
    assert_eq!(o.validate(), Err(Error::InvalidEps(-1.0)));
    o.eps = 0.0; // eps = 0 is allowed
    assert_eq!(o.validate(), Err(Error::InvalidWeightDecay(-1.0)));
    o.weight_decay = 0.0;
    assert_eq!(o.validate(), Err(Error::CapturableUnsupported));
    o.capturable = false;
    assert_eq!(o.validate(), Err(Error::DifferentiableUnsupported));
    o.differentiable = false;
    assert_eq!(o.validate(), Ok(()));
    // rho = 0 passes, as in PyTorch (`0.0 <= x`).
    let ok = Options {
        rho: 0.0,
        ..Options::default()
    };
    assert_eq!(ok.validate(), Ok(()), "{ok:?}");
    // Infinite values pass PyTorch's `0.0 <= x` but are refused here
    // (they make every updated element infinite or NaN).
    let inf = Options {
        lr: f64::INFINITY,
        ..Options::default()
    };
    assert_eq!(inf.validate(), Err(Error::InvalidLr(f64::INFINITY)));
    let inf = Options {
        weight_decay: f64::INFINITY,
        ..Options::default()
    };
    assert_eq!(
        inf.validate(),
        Err(Error::InvalidWeightDecay(f64::INFINITY))
    );
    // NaN fails every `0.0 <= x`.
    let nan = Options {
        eps: f64::NAN,
        ..Options::default()
    };
    assert!(matches!(nan.validate(), Err(Error::InvalidEps(x)) if x.is_nan()));
}

#[test]
fn options_are_checked_before_the_parameter_list() {
    // PyTorch validates lr etc. in Adadelta.__init__ before Optimizer.__init__
    // looks at the params.
    let bad = Options {
        lr: -0.5,
        ..Options::default()
    };
    assert_eq!(
        Adadelta::<Param>::new(vec![], bad).unwrap_err(),
        Error::InvalidLr(-0.5)
    );
    assert_eq!(
        Adadelta::<Param>::with_groups(vec![], bad).unwrap_err(),
        Error::InvalidLr(-0.5)
    );
    assert_eq!(
        Adadelta::<Param>::new(vec![], Options::default()).unwrap_err(),
        Error::EmptyParamList
    );
    assert_eq!(
        Adadelta::<Param>::with_groups(vec![], Options::default()).unwrap_err(),
        Error::EmptyParamList
    );
}

#[test]
fn an_empty_group_is_allowed_as_in_pytorch() {
    let opt =
        Adadelta::<Param>::with_groups(vec![GroupSpec::new(vec![])], Options::default()).unwrap();
    assert_eq!(opt.param_groups().len(), 1);
    assert!(opt.param_groups()[0].is_empty());
    assert!(opt.params().is_empty());
}

#[test]
fn group_options_fill_from_defaults_and_are_validated() {
    let defaults = Options {
        lr: 0.5,
        rho: 0.8,
        eps: 1e-7,
        weight_decay: 0.01,
        maximize: true,
        foreach: Some(false),
        ..Options::default()
    };
    let opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![p(1)]),
            GroupSpec::new(vec![p(2), p(3)])
                .lr(0.1)
                .rho(0.95)
                .eps(1e-8)
                .weight_decay(0.0)
                .maximize(false)
                .foreach(None),
        ],
        defaults,
    )
    .unwrap();
    assert_eq!(opt.param_groups()[0].options(), &defaults);
    assert_eq!(
        opt.param_groups()[1].options(),
        &Options {
            lr: 0.1,
            rho: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
            foreach: None,
            ..defaults
        }
    );
    assert_eq!(opt.param_groups()[1].params(), 1..3);
    assert_eq!(opt.group_params(1).unwrap().len(), 2);

    // PyTorch would accept a group's own invalid value; this crate refuses it.
    for (spec, err) in [
        (GroupSpec::new(vec![p(1)]).lr(-1.0), Error::InvalidLr(-1.0)),
        (GroupSpec::new(vec![p(1)]).rho(1.5), Error::InvalidRho(1.5)),
        (
            GroupSpec::new(vec![p(1)]).eps(-1.0),
            Error::InvalidEps(-1.0),
        ),
        (
            GroupSpec::new(vec![p(1)]).weight_decay(-1.0),
            Error::InvalidWeightDecay(-1.0),
        ),
        (
            GroupSpec::new(vec![p(1)]).capturable(true),
            Error::CapturableUnsupported,
        ),
        (
            GroupSpec::new(vec![p(1)]).differentiable(true),
            Error::DifferentiableUnsupported,
        ),
        (
            GroupSpec::new(vec![p(1)]).extra("params", 1),
            Error::ReservedGroupKey("params".into()),
        ),
    ] {
        let mut opt = Adadelta::new(vec![p(1)], Options::default()).unwrap();
        assert_eq!(opt.check_param_group(&spec).unwrap_err(), err);
        assert_eq!(opt.add_param_group(spec).unwrap_err(), err);
        assert_eq!(opt.param_groups().len(), 1, "nothing added");
        assert_eq!(opt.params().len(), 1);
    }
}

#[test]
fn added_groups_are_numbered_after_existing_parameters() {
    let mut opt = Adadelta::new(vec![p(1), p(2)], Options::default()).unwrap();
    opt.add_param_group(GroupSpec::new(vec![p(3)]).lr(0.5))
        .unwrap();
    opt.add_param_group(GroupSpec::new(vec![])).unwrap();
    opt.add_param_group(GroupSpec::new(vec![p(4), p(5)]))
        .unwrap();
    let ranges: Vec<_> = opt.param_groups().iter().map(|g| g.params()).collect();
    assert_eq!(ranges, [0..2, 2..3, 3..3, 3..5]);
    let sizes: Vec<_> = opt.params().iter().map(|p| p.numel()).collect();
    assert_eq!(sizes, [1, 2, 3, 4, 5]);
    assert_eq!(opt.group_params(3).unwrap()[1].numel(), 5);
    assert_eq!(
        opt.group_params(4).unwrap_err(),
        Error::NoSuchGroup {
            group: 4,
            groups: 4
        }
    );
}

#[test]
fn a_parameter_in_two_groups_is_refused() {
    let mut opt = Adadelta::new(vec![handle(1), handle(2)], Options::default()).unwrap();
    let err = opt
        .add_param_group(GroupSpec::new(vec![handle(3), handle(2)]))
        .unwrap_err();
    assert_eq!(err, Error::ParamInMultipleGroups);
    assert_eq!(opt.params().len(), 2);
    assert_eq!(opt.param_groups().len(), 1);
    // Within the constructor's groups too.
    let err = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![handle(1)]),
            GroupSpec::new(vec![handle(1)]),
        ],
        Options::default(),
    )
    .unwrap_err();
    assert_eq!(err, Error::ParamInMultipleGroups);
    // Distinct handles are fine.
    opt.add_param_group(GroupSpec::new(vec![handle(3)]))
        .unwrap();
    assert_eq!(opt.params().len(), 3);
}

#[test]
fn a_parameter_twice_in_one_group_is_refused() {
    // PyTorch only warns and then steps the parameter twice per step; this
    // crate refuses it (Error::DuplicateParam), before the overlap check as
    // PyTorch's warning comes before its overlap error.
    let err = Adadelta::new(vec![handle(1), handle(1)], Options::default()).unwrap_err();
    assert_eq!(err, Error::DuplicateParam);
    let mut opt = Adadelta::new(vec![handle(1)], Options::default()).unwrap();
    let err = opt
        .add_param_group(GroupSpec::new(vec![handle(1), handle(1)]))
        .unwrap_err();
    assert_eq!(err, Error::DuplicateParam);
}

#[test]
fn learning_rate_and_options_change_between_steps_with_validation() {
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![p(1)]).lr(1.0),
            GroupSpec::new(vec![p(1)]).lr(0.1),
        ],
        Options::default(),
    )
    .unwrap();
    opt.set_lr(0.25).unwrap();
    let lrs: Vec<f64> = opt.param_groups().iter().map(|g| g.options().lr).collect();
    assert_eq!(lrs, [0.25, 0.25]);

    // All or nothing: group 1 fails, so group 0 does not change either.
    let err = opt
        .update_groups(|i, o| o.rho = if i == 1 { -0.1 } else { 0.5 })
        .unwrap_err();
    assert_eq!(err, Error::InvalidRho(-0.1));
    assert!(opt.param_groups().iter().all(|g| g.options().rho == 0.9));

    assert_eq!(
        opt.set_lr(f64::NAN).unwrap_err().to_string(),
        "Invalid learning rate: nan"
    );
    assert!(opt.param_groups().iter().all(|g| g.options().lr == 0.25));

    opt.update_group(1, |o| o.maximize = true).unwrap();
    assert!(opt.param_groups()[1].options().maximize);
    assert!(!opt.param_groups()[0].options().maximize);
    assert_eq!(
        opt.update_group(0, |o| o.capturable = true).unwrap_err(),
        Error::CapturableUnsupported
    );
    assert!(!opt.param_groups()[0].options().capturable);
    assert!(matches!(
        opt.update_group(2, |_| ()),
        Err(Error::NoSuchGroup {
            group: 2,
            groups: 2
        })
    ));
}

#[test]
fn extra_group_keys_are_kept_and_reserved_keys_refused() {
    let mut opt = Adadelta::with_groups(
        vec![GroupSpec::new(vec![p(1)]).extra("initial_lr", 1.0)],
        Options::default(),
    )
    .unwrap();
    assert_eq!(
        opt.param_groups()[0].extra()["initial_lr"].as_f64(),
        Some(1.0)
    );
    assert_eq!(
        opt.set_group_extra(0, "custom", serde_json::json!({"a": [1, 2]}))
            .unwrap(),
        None
    );
    assert_eq!(
        opt.set_group_extra(0, "custom", 3).unwrap(),
        Some(serde_json::json!({"a": [1, 2]}).into())
    );
    for key in [
        "lr",
        "rho",
        "eps",
        "weight_decay",
        "maximize",
        "capturable",
        "foreach",
        "differentiable",
        "params",
    ] {
        assert_eq!(
            opt.set_group_extra(0, key, 0).unwrap_err(),
            Error::ReservedGroupKey(key.into())
        );
    }
    assert_eq!(
        opt.remove_group_extra(0, "custom").unwrap(),
        Some(adadelta::optimizer::ExtraValue::from(3))
    );
    assert_eq!(opt.param_groups()[0].extra().len(), 1);
}

#[test]
fn the_optimizer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Adadelta<Param>>();
    check::<Adadelta<&mut Param>>();
    check::<adadelta::StateDict>();
    check::<Error>();
    check::<adadelta::CheckpointError>();
    #[cfg(feature = "ndarray")]
    check::<Adadelta<adadelta::NdParam<ndarray::IxDyn>>>();
}

#[test]
fn borrowed_parameters_work_and_stay_with_their_owner() {
    let mut a = Param::new(vec![1.0, 2.0]);
    a.set_grad(vec![1.0, 1.0]).unwrap();
    let mut owned = a.clone();
    {
        let mut opt = Adadelta::new(vec![&mut a], Options::default()).unwrap();
        opt.step().unwrap();
    }
    let mut opt = Adadelta::new(vec![&mut owned], Options::default()).unwrap();
    opt.step().unwrap();
    drop(opt);
    assert_eq!(a, owned);
    assert!(a.data()[0] < 1.0);
}
