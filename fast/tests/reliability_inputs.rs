//! Bad input at every public entry point (`fast/docs/reliability.md`): a typed
//! error, never a panic, and nothing half-applied: on error the optimizer's
//! state dict, parameters and gradients are bit-identical to before.
//!
//! The last test drives random sequences of API calls, most of them with bad
//! arguments, and checks that property after every call (proptest;
//! `PROPTEST_CASES` sets the number of sequences).

mod common;

use adadelta::kernel::{run, Executor, Job};
use adadelta::{
    Adadelta, CheckpointError, Coefficients, Error, GroupSpec, Hyperparams, NonFinitePolicy,
    Options, Param, ParamViewMut, Parameter, StateDict, TensorData,
};
use common::{snapshot, trained};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Runs `op` on a trained optimizer; it must fail with an error `is_expected`
/// accepts and leave the optimizer bit-identical.
fn refused(
    what: &str,
    op: impl FnOnce(&mut Adadelta) -> Result<(), Error>,
    is_expected: impl Fn(&Error) -> bool,
) {
    let mut opt = trained(2, 17);
    common::set_grads(&mut opt, &mut common::Rng(3));
    let before = snapshot(&opt);
    match op(&mut opt) {
        Ok(()) => panic!("{what}: accepted"),
        Err(e) => assert!(is_expected(&e), "{what}: unexpected error {e:?}"),
    }
    assert_eq!(snapshot(&opt), before, "{what}: the optimizer changed");
}

/// Hyperparameter values that every setter must refuse, with the error.
fn bad_options() -> Vec<(Options, Error)> {
    let d = Options::default();
    let mut v = Vec::new();
    for x in [
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e39,
        f64::MAX,
    ] {
        v.push((Options { lr: x, ..d }, Error::InvalidLr(x)));
        v.push((Options { eps: x, ..d }, Error::InvalidEps(x)));
        v.push((
            Options {
                weight_decay: x,
                ..d
            },
            Error::InvalidWeightDecay(x),
        ));
    }
    for x in [-0.1, 1.0000001, f64::NAN, f64::INFINITY, -f64::INFINITY] {
        v.push((Options { rho: x, ..d }, Error::InvalidRho(x)));
    }
    v.push((
        Options {
            capturable: true,
            ..d
        },
        Error::CapturableUnsupported,
    ));
    v.push((
        Options {
            differentiable: true,
            ..d
        },
        Error::DifferentiableUnsupported,
    ));
    v
}

/// Errors equal, NaN payloads aside.
fn same_error(a: &Error, b: &Error) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

#[test]
fn bad_hyperparameters_are_refused_at_construction_and_later() {
    let one = || vec![Param::new(vec![1.0, 2.0])];
    for (o, err) in bad_options() {
        let e = Adadelta::new(one(), o).unwrap_err();
        assert!(same_error(&e, &err), "new {o:?}: {e:?}");
        let spec = GroupSpec::new(one())
            .lr(o.lr)
            .rho(o.rho)
            .eps(o.eps)
            .weight_decay(o.weight_decay)
            .capturable(o.capturable)
            .differentiable(o.differentiable);
        let e = Adadelta::with_groups(vec![spec.clone()], Options::default()).unwrap_err();
        assert!(same_error(&e, &err), "with_groups {o:?}: {e:?}");
        let h = o.hyperparams();
        if !matches!(
            err,
            Error::CapturableUnsupported | Error::DifferentiableUnsupported
        ) {
            let e = Coefficients::new(&h).unwrap_err();
            assert!(same_error(&e, &err), "Coefficients {o:?}: {e:?}");
        }
        let check = |e: &Error| same_error(e, &err);
        refused(
            "add_param_group",
            |opt| opt.add_param_group(spec.clone()),
            check,
        );
        refused(
            "check_param_group",
            |opt| opt.check_param_group(&spec).map(|_| ()),
            check,
        );
        refused("update_group", |opt| opt.update_group(1, |g| *g = o), check);
        refused(
            "update_groups (the second group bad)",
            |opt| {
                opt.update_groups(|i, g| {
                    if i == 1 {
                        *g = o
                    }
                })
            },
            check,
        );
        if o.lr != Options::default().lr {
            refused("set_lr", |opt| opt.set_lr(o.lr), check);
        }
        // Through a state dict, in memory and as JSON (non-finite values
        // are the strings "inf", "-inf", "nan").
        let mut sd = trained(2, 17).state_dict();
        sd.param_groups[1].options = o;
        refused(
            "load_state_dict",
            |opt| opt.load_state_dict(sd.clone()),
            check,
        );
        let text = sd.to_json_string().unwrap();
        refused(
            "load_state_dict(from_json_str)",
            |opt| opt.load_state_dict(StateDict::from_json_str(&text).unwrap()),
            check,
        );
    }
}

/// A parameter whose gradient can have any length (a framework tensor
/// does not check it the way `Param::set_grad` does), or whose view fails.
#[derive(Debug)]
struct Loose {
    data: Vec<f32>,
    grad: Option<Vec<f32>>,
    broken: bool,
}

impl Parameter for Loose {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.data.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        if self.broken {
            return Err(Error::UnsupportedLayout("not contiguous".into()));
        }
        Ok(ParamViewMut {
            data: &mut self.data,
            grad: self.grad.as_deref(),
        })
    }
    fn zero_grad(&mut self, _: bool) {
        self.grad = None;
    }
}

fn loose_snapshot(opt: &Adadelta<Loose>) -> String {
    format!(
        "{}\n{:?}",
        opt.state_dict().to_json_string().unwrap(),
        opt.params()
            .iter()
            .map(|p| (common::bits(&p.data), p.grad.as_deref().map(common::bits)))
            .collect::<Vec<_>>()
    )
}

#[test]
fn bad_gradients_and_changed_parameters_fail_before_any_write() {
    // Param checks a gradient's length when it is set.
    let mut p = Param::with_shape(vec![0.0; 6], vec![2, 3]).unwrap();
    p.set_grad(vec![1.0; 6]).unwrap();
    assert_eq!(
        p.set_grad(vec![1.0; 5]),
        Err(Error::GradSizeMismatch {
            grad: vec![5],
            param: vec![2, 3]
        })
    );
    assert_eq!(p.grad(), Some(&[1.0; 6][..]), "the old gradient is kept");

    // Other parameter types are checked at the step, all before any write.
    let loose = |n: usize, g: usize| Loose {
        data: (0..n).map(|i| i as f32).collect(),
        grad: Some(vec![0.5; g]),
        broken: false,
    };
    let mut opt = Adadelta::new(vec![loose(4, 4), loose(3, 3)], Options::default()).unwrap();
    opt.step().unwrap();
    opt.params_mut()[1].grad = Some(vec![0.5; 2]); // a gradient of the wrong length
    let before = loose_snapshot(&opt);
    assert_eq!(
        opt.step(),
        Err(Error::LengthMismatch {
            param: 3,
            grad: 2,
            square_avg: 3,
            acc_delta: 3
        })
    );
    assert_eq!(loose_snapshot(&opt), before);
    // A parameter whose length changed since its state was created.
    opt.params_mut()[1] = loose(5, 5);
    let before = loose_snapshot(&opt);
    assert_eq!(
        opt.step(),
        Err(Error::LengthMismatch {
            param: 5,
            grad: 5,
            square_avg: 3,
            acc_delta: 3
        })
    );
    assert_eq!(loose_snapshot(&opt), before);
    // A parameter that cannot lend its memory.
    opt.params_mut()[1] = loose(3, 3);
    opt.params_mut()[1].broken = true;
    let before = loose_snapshot(&opt);
    assert!(matches!(opt.step(), Err(Error::UnsupportedLayout(_))));
    assert_eq!(loose_snapshot(&opt), before);

    // The kernel's own entry points.
    let c = Coefficients::new(&Hyperparams::default()).unwrap();
    let (mut p, mut v, mut u) = (vec![1.0f32; 4], vec![0.5f32; 4], vec![0.25f32; 4]);
    assert!(matches!(
        adadelta::step(&c, &mut p, &[1.0; 3], &mut v, &mut u),
        Err(Error::LengthMismatch { grad: 3, .. })
    ));
    let (mut p2, mut v2, mut u2) = (vec![1.0f32; 2], vec![0.0f32; 2], vec![0.0f32; 1]);
    let mut jobs = [
        Job {
            coeffs: &c,
            param: &mut p,
            grad: &[1.0; 4],
            square_avg: &mut v,
            acc_delta: &mut u,
        },
        Job {
            coeffs: &c,
            param: &mut p2,
            grad: &[1.0; 2],
            square_avg: &mut v2,
            acc_delta: &mut u2,
        },
    ];
    assert!(matches!(
        run(&mut jobs, &Executor::default()),
        Err(Error::LengthMismatch { acc_delta: 1, .. })
    ));
    assert_eq!(
        (p, v, u),
        (vec![1.0; 4], vec![0.5; 4], vec![0.25; 4]),
        "the good job was not run"
    );
}

#[test]
fn shapes_whose_size_overflows_are_errors() {
    for shape in [
        vec![usize::MAX, 2],
        vec![1 << 32, 1 << 32],
        vec![0, usize::MAX],
    ] {
        let e = Param::with_shape(vec![0.0; 3], shape.clone()).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidShape {
                shape: shape.clone(),
                len: 3
            }
        );
        assert!(TensorData::new(shape.clone(), vec![0.0; 3]).is_err());
    }
    let mut v: Value =
        serde_json::from_str(&trained(1, 0).state_dict().to_json_string().unwrap()).unwrap();
    v["state"]["0"]["square_avg"]["shape"] = json!([1u64 << 63, 4]);
    assert!(matches!(
        StateDict::<f32>::from_json_str(&v.to_string()),
        Err(CheckpointError::Invalid { source: Error::InvalidStateDict(m), .. }) if m.contains("invalid for input of size 3")
    ));
}

/// A parameter with an identity, like a handle to a shared tensor.
#[derive(Debug)]
struct Handle(u32, Vec<f32>);

impl Parameter for Handle {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.1.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        Ok(ParamViewMut {
            data: &mut self.1,
            grad: None,
        })
    }
    fn zero_grad(&mut self, _: bool) {}
    fn is_same(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

#[test]
fn empty_overlapping_and_duplicate_groups() {
    // No parameter at all: PyTorch's ValueError.
    assert_eq!(
        Adadelta::<Param>::new(vec![], Options::default()).unwrap_err(),
        Error::EmptyParamList
    );
    assert_eq!(
        Adadelta::<Param>::with_groups(vec![], Options::default()).unwrap_err(),
        Error::EmptyParamList
    );
    // Overlap and duplicates, at construction and when adding a group.
    let h = |id| Handle(id, vec![0.0; 2]);
    assert_eq!(
        Adadelta::with_groups(
            vec![GroupSpec::new(vec![h(1), h(2)]), GroupSpec::new(vec![h(2)])],
            Options::default()
        )
        .unwrap_err(),
        Error::ParamInMultipleGroups
    );
    assert_eq!(
        Adadelta::new(vec![h(1), h(1)], Options::default()).unwrap_err(),
        Error::DuplicateParam
    );
    let mut opt = Adadelta::new(vec![h(1), h(2)], Options::default()).unwrap();
    assert_eq!(
        opt.add_param_group(GroupSpec::new(vec![h(3), h(2)])),
        Err(Error::ParamInMultipleGroups)
    );
    assert_eq!(
        opt.add_param_group(GroupSpec::new(vec![h(3), h(3)])),
        Err(Error::DuplicateParam)
    );
    assert_eq!((opt.param_groups().len(), opt.params().len()), (1, 2));

    // An empty group inside a non-empty list is PyTorch's behaviour
    // (`Adadelta([{"params": []}])` is accepted) and works everywhere.
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![]),
            GroupSpec::new(vec![Param::new(vec![1.0; 3])]),
            GroupSpec::new(vec![]),
        ],
        Options::default(),
    )
    .unwrap();
    opt.add_param_group(GroupSpec::new(vec![])).unwrap();
    opt.params_mut()[0].set_grad(vec![0.5; 3]).unwrap();
    opt.step().unwrap();
    opt.update_group(0, |o| o.lr = 0.5).unwrap();
    let sd = opt.state_dict();
    assert_eq!(sd.param_groups.len(), 4);
    let text = sd.to_json_string().unwrap();
    opt.load_state_dict(StateDict::from_json_str(&text).unwrap())
        .unwrap();
    assert_eq!(opt.state_dict(), sd);
    assert_eq!(opt.group_params(0).unwrap().len(), 0);
    // Every group-indexed call with a group that does not exist.
    let no = Error::NoSuchGroup {
        group: 4,
        groups: 4,
    };
    let before = opt.state_dict();
    assert_eq!(opt.group_params(4).unwrap_err(), no);
    assert_eq!(opt.group_params_mut(4).unwrap_err(), no);
    assert_eq!(opt.update_group(4, |o| o.lr = 0.1).unwrap_err(), no);
    assert_eq!(opt.set_group_extra(4, "k", json!(1)).unwrap_err(), no);
    assert_eq!(opt.remove_group_extra(4, "k").unwrap_err(), no);
    assert!(opt.state(usize::MAX).is_none());
    assert_eq!(opt.state_dict(), before);
}

/// `{"dtype": "float32", "shape": [n], "bits": [...]}` of zeros.
fn tensor(n: usize) -> Value {
    json!({"dtype": "float32", "shape": [n], "bits": vec![0; n]})
}

#[test]
fn state_dicts_of_another_optimizer_layout_or_version_are_refused() {
    let good: Value =
        serde_json::from_str(&trained(2, 17).state_dict().to_json_string().unwrap()).unwrap();
    let flags =
        json!({"maximize": false, "foreach": null, "capturable": false, "differentiable": false});
    let group = |extra: Value, params: Value| {
        let mut g = flags.as_object().unwrap().clone();
        g.extend(extra.as_object().unwrap().clone());
        g.insert("params".into(), params);
        Value::Object(g)
    };
    let two_groups = |extra: Value| {
        json!([
            group(extra.clone(), json!([0, 1])),
            group(extra, json!([2]))
        ])
    };
    let adam = json!({"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0, "amsgrad": false, "fused": null});
    let sgd = json!({"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0, "nesterov": false, "fused": null});
    let rmsprop = json!({"lr": 0.01, "momentum": 0, "alpha": 0.99, "eps": 1e-8, "centered": false, "weight_decay": 0});
    let mut cases: Vec<(&str, Value)> = vec![
        // PyTorch's other optimizers, converted to this JSON form.
        (
            "Adam with state",
            json!({"state": {"0": {"step": {"dtype": "float32", "shape": [], "bits": [1065353216]}, "exp_avg": tensor(3), "exp_avg_sq": tensor(3)}}, "param_groups": two_groups(adam.clone())}),
        ),
        (
            "Adam before its first step",
            json!({"state": {}, "param_groups": two_groups(adam)}),
        ),
        (
            "SGD with momentum",
            json!({"state": {"0": {"momentum_buffer": tensor(3)}}, "param_groups": two_groups(sgd)}),
        ),
        (
            "RMSprop",
            json!({"state": {}, "param_groups": two_groups(rmsprop)}),
        ),
        // Other layouts.
        ("a list of tensors", json!([tensor(3)])),
        (
            "no state",
            json!({"param_groups": good["param_groups"].clone()}),
        ),
        (
            "state as a list",
            json!({"state": [], "param_groups": good["param_groups"].clone()}),
        ),
        (
            "param_groups as an object",
            json!({"state": {}, "param_groups": {"0": good["param_groups"][0].clone()}}),
        ),
        (
            "a model checkpoint around it",
            json!({"epoch": 3, "optimizer": good.clone()}),
        ),
    ];
    // Other versions of the layout.
    let mut old = good.clone();
    old["state"]["0"]["step"] = json!(2); // PyTorch < 1.12 kept `step` as a number
    cases.push(("a numeric step (PyTorch before 1.12)", old));
    let mut v = good.clone();
    v["version"] = json!(2);
    cases.push(("a format version key", v));
    let mut v = good.clone();
    v["state"]["0"]["square_avg"] =
        json!({"dtype": "float32", "shape": [3], "data": [0.0, 0.0, 0.0]});
    cases.push(("tensors as decimal floats", v));
    let mut v = good.clone();
    v["state"]["0"]["acc_delta"]["dtype"] = json!("float64");
    cases.push(("float64 tensors", v));
    // Values no run can produce: a corrupted file.
    for (key, bits) in [
        ("square_avg", (-1.5f32).to_bits()),
        ("acc_delta", f32::NEG_INFINITY.to_bits()),
    ] {
        let mut v = good.clone();
        v["state"]["2"][key]["bits"][5] = json!(bits);
        cases.push(("a negative running average", v));
    }
    for step in [1.5f32, -1.0, f32::NAN, f32::INFINITY] {
        let mut v = good.clone();
        v["state"]["0"]["step"]["bits"] = json!([step.to_bits()]);
        cases.push(("a step that is not a whole number >= 0", v));
    }
    for (what, v) in cases {
        let text = v.to_string();
        let mut opt = trained(2, 17);
        let before = snapshot(&opt);
        let r = StateDict::from_json_str(&text)
            .and_then(|sd| opt.load_state_dict(sd).map_err(CheckpointError::from));
        let e = r.expect_err(what);
        assert!(
            matches!(
                e,
                CheckpointError::Json { .. }
                    | CheckpointError::Invalid {
                        source: Error::InvalidStateDict(_),
                        ..
                    }
            ),
            "{what}: {e:?}"
        );
        assert_eq!(snapshot(&opt), before, "{what}");
    }
    // The sign of a NaN is not a negative value: NaN state propagates from
    // NaN gradients and loads.
    let mut v = good.clone();
    v["state"]["2"]["acc_delta"]["bits"][5] = json!(0xffc0_0000u32);
    let mut opt = trained(2, 17);
    opt.load_state_dict(StateDict::from_json_str(&v.to_string()).unwrap())
        .unwrap();
    assert!(opt.state(2).unwrap().acc_delta()[5].is_nan());
}

// ---- Random API sequences ----

const SPECIAL: [f64; 12] = [
    -1.0,
    0.0,
    0.5,
    1.0,
    1.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e39,
    1e-45,
    3.4e38,
    f64::MAX,
];

#[derive(Clone, Debug)]
enum Op {
    SetGrad { p: usize, delta: i8, bad: u8 },
    ZeroGrad(bool),
    Replace { p: usize, len: usize },
    Step,
    StepWithNan { p: usize },
    SetLr(usize),
    UpdateGroup { g: usize, field: u8, value: usize },
    UpdateGroups { field: u8, value: usize },
    AddGroup { n: usize, value: usize },
    SetExtra { g: usize, key: u8 },
    RemoveExtra { g: usize, key: u8 },
    Load { how: u8, value: usize },
    Policy(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let g = 0usize..4;
    let p = 0usize..5;
    let v = 0usize..SPECIAL.len();
    prop_oneof![
        3 => (p.clone(), -1i8..=1, 0u8..4).prop_map(|(p, delta, bad)| Op::SetGrad { p, delta, bad }),
        1 => any::<bool>().prop_map(Op::ZeroGrad),
        1 => (p.clone(), 0usize..10).prop_map(|(p, len)| Op::Replace { p, len }),
        4 => Just(Op::Step),
        1 => p.prop_map(|p| Op::StepWithNan { p }),
        1 => v.clone().prop_map(Op::SetLr),
        1 => (g.clone(), 0u8..6, v.clone()).prop_map(|(g, field, value)| Op::UpdateGroup { g, field, value }),
        1 => (0u8..6, v.clone()).prop_map(|(field, value)| Op::UpdateGroups { field, value }),
        1 => (0usize..4, v.clone()).prop_map(|(n, value)| Op::AddGroup { n, value }),
        1 => (g.clone(), 0u8..4).prop_map(|(g, key)| Op::SetExtra { g, key }),
        1 => (g, 0u8..4).prop_map(|(g, key)| Op::RemoveExtra { g, key }),
        3 => (0u8..9, v).prop_map(|(how, value)| Op::Load { how, value }),
        1 => (0u8..3).prop_map(Op::Policy),
    ]
}

fn set_field(o: &mut Options, field: u8, x: f64) {
    match field {
        0 => o.lr = x,
        1 => o.rho = x,
        2 => o.eps = x,
        3 => o.weight_decay = x,
        4 => o.capturable = x > 1.0,
        _ => o.maximize = x > 0.5,
    }
}

/// What the user does before the call `op`: a NaN gradient for the step.
fn prepare(opt: &mut Adadelta, op: &Op) {
    if let Op::StepWithNan { p } = *op {
        let n = opt.params().len();
        let p = &mut opt.params_mut()[p % n];
        let mut g = vec![1.0; p.numel()];
        if let Some(x) = g.last_mut() {
            *x = f32::NAN;
        }
        p.set_grad(g).unwrap();
    }
}

/// Applies `op`; `None` for calls that cannot fail.
fn apply(opt: &mut Adadelta, op: &Op) -> Option<Result<(), Error>> {
    let n = opt.params().len();
    let key = |k: u8| ["initial_lr", "lr", "params", "note"][k as usize % 4];
    Some(match *op {
        Op::SetGrad { p, delta, bad } => {
            let p = &mut opt.params_mut()[p % n];
            let len = (p.numel() as isize + delta as isize).max(0) as usize;
            let mut g = vec![0.25; len];
            if len > 0 {
                g[len / 2] = [0.5, f32::NAN, f32::INFINITY, -1e30][bad as usize];
            }
            let numel = p.numel();
            let r = p.set_grad(g);
            assert_eq!(r.is_err(), len != numel);
            r
        }
        Op::ZeroGrad(none) => {
            opt.zero_grad(none);
            return None;
        }
        Op::Replace { p, len } => {
            opt.params_mut()[p % n] = Param::new(vec![0.5; len]);
            return None;
        }
        Op::Step => opt.step(),
        Op::StepWithNan { .. } => opt
            .step_with(|params| params.iter().map(|p| p.numel()).sum::<usize>())
            .map(|_| ()),
        Op::SetLr(v) => opt.set_lr(SPECIAL[v]),
        Op::UpdateGroup { g, field, value } => {
            opt.update_group(g, |o| set_field(o, field, SPECIAL[value]))
        }
        Op::UpdateGroups { field, value } => opt.update_groups(|i, o| {
            if i % 2 == 1 {
                set_field(o, field, SPECIAL[value])
            }
        }),
        Op::AddGroup { n, value } => opt.add_param_group(
            GroupSpec::new((0..n).map(|i| Param::new(vec![1.0; i + 1])).collect())
                .lr(SPECIAL[value]),
        ),
        Op::SetExtra { g, key: k } => opt.set_group_extra(g, key(k), json!(k)).map(|_| ()),
        Op::RemoveExtra { g, key: k } => opt.remove_group_extra(g, key(k)).map(|_| ()),
        Op::Load { how, value } => {
            let mut sd = opt.state_dict();
            let x = SPECIAL[value];
            match how {
                0 => {
                    sd.param_groups.pop();
                }
                1 => sd.param_groups[0].options.rho = x,
                2 => {
                    if let Some(s) = sd.state.values_mut().next() {
                        if !s.square_avg.is_empty() {
                            s.square_avg.data_mut()[0] = -(x as f32);
                        }
                    }
                }
                3 => {
                    if let Some(s) = sd.state.values_mut().next() {
                        s.step = x as f32;
                    }
                }
                4 => {
                    if let Some(&i) = sd.param_groups.iter().flat_map(|g| &g.params).next() {
                        sd.param_groups.last_mut().unwrap().params.push(i);
                    }
                }
                5 => {
                    if let Some(s) = sd.state.values().next().cloned() {
                        sd.state.insert(999, s);
                    }
                }
                6 => {
                    if let Some(s) = sd.state.values_mut().next() {
                        s.acc_delta = TensorData::from(vec![0.0; s.acc_delta.len() + 1]);
                    }
                }
                7 => sd.param_groups[0].options.lr = x,
                _ => {} // its own dict: loads
            }
            opt.load_state_dict(sd)
        }
        Op::Policy(k) => {
            opt.set_non_finite_policy(
                [
                    NonFinitePolicy::Propagate,
                    NonFinitePolicy::Error,
                    NonFinitePolicy::Skip,
                ][k as usize],
            );
            return None;
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    /// Random sequences of calls, most with bad arguments: no panic, every
    /// failed call changes nothing, and the optimizer's state dict always
    /// round-trips through JSON.
    #[test]
    fn random_call_sequences_never_panic_and_failures_change_nothing(
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut opt = trained(1, 2);
        for (k, op) in ops.iter().enumerate() {
            prepare(&mut opt, op);
            let before = snapshot(&opt);
            let Some(r) = apply(&mut opt, op) else { continue };
            if r.is_err() {
                prop_assert_eq!(snapshot(&opt), before, "call {} {:?}: {:?}", k, op, r);
            }
            let text = opt.state_dict().to_json_string().unwrap();
            let back = StateDict::<f32>::from_json_str(&text).unwrap();
            prop_assert_eq!(back.to_json_string().unwrap(), text);
            for g in opt.param_groups() {
                prop_assert!(g.options().validate().is_ok(), "call {} {:?}", k, op);
            }
        }
    }
}
