//! insta snapshots (stored in `fixtures/snapshots/`; review changes with
//! `cargo insta review`, see the README): the machine-independent part of
//! the report's summary, and error messages.

use adadelta_difftest::report::{self, Options};
use adadelta_difftest::suite;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/snapshots"
    ));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// The report's figures for fast and the reference, in float32 and float64,
/// which must be identical on every machine (no libtorch or MKL inside): any
/// change in the numerics of either shows up here.
#[test]
fn report_summary() {
    let r = report::run(
        &suite::default_suites(),
        &Options {
            run_pytorch: false,
            progress: false,
        },
    );
    settings().bind(|| {
        insta::assert_snapshot!("report_summary", report::machine_independent_summary(&r))
    });
}

/// Hyperparameter validation messages (PyTorch's text, see
/// `fast/src/error.rs`; compared with real PyTorch in the API tests).
#[test]
fn hyperparameter_error_messages() {
    let d = adadelta::Hyperparams::default();
    let cases = [
        adadelta::Hyperparams { lr: -1.0, ..d },
        adadelta::Hyperparams { lr: f64::NAN, ..d },
        adadelta::Hyperparams { rho: 1.5, ..d },
        adadelta::Hyperparams { rho: -0.0001, ..d },
        adadelta::Hyperparams { eps: -1e-6, ..d },
        adadelta::Hyperparams {
            weight_decay: -1e20,
            ..d
        },
        adadelta::Hyperparams {
            weight_decay: f64::NEG_INFINITY,
            ..d
        },
    ];
    let text: String = cases
        .iter()
        .map(|h| {
            format!(
                "{:?} -> {}\n",
                (h.lr, h.rho, h.eps, h.weight_decay),
                h.validate().unwrap_err()
            )
        })
        .collect();
    settings().bind(|| insta::assert_snapshot!("hyperparameter_error_messages", text));
}

fn tiny_optimizer() -> adadelta::Adadelta {
    use adadelta::{Adadelta, GroupSpec, Options, Param};
    let a = Param::with_shape(vec![1.0, -2.0, 0.5], vec![3]).unwrap();
    let b = Param::with_shape(vec![0.25, 0.5, -0.75, 1.0, -1.25, 1.5], vec![2, 3]).unwrap();
    let c = Param::new(vec![4.0]); // never gets a gradient: no state
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![a, b])
                .lr(0.5)
                .weight_decay(0.1)
                .maximize(true),
            GroupSpec::new(vec![c]).rho(0.95),
        ],
        Options::default(),
    )
    .unwrap()
}

/// The state_dict JSON layout (PyTorch's: `state` keyed by position with
/// step, square_avg, acc_delta; `param_groups` with every key and `params`
/// last), after two steps with default numerics (machine-independent bits).
#[test]
fn state_dict_json_layout() {
    let mut opt = tiny_optimizer();
    for k in 0..2 {
        let s = k as f32 + 1.0;
        opt.params_mut()[0]
            .set_grad(vec![0.1 * s, -0.2, 0.3])
            .unwrap();
        opt.params_mut()[1]
            .set_grad(vec![0.5, -0.5 * s, 1.0, -1.0, 2.0, 0.0])
            .unwrap();
        opt.step().unwrap();
    }
    let json = serde_json::to_string_pretty(&opt.state_dict()).unwrap();
    settings().bind(|| insta::assert_snapshot!("state_dict_json_layout", json));
}

/// Error messages of the Optimizer API (PyTorch's text where PyTorch has the
/// error; api_pytorch.rs compares those with real PyTorch at test time).
#[test]
fn api_error_messages() {
    use adadelta::{Adadelta, Options, Param, StateDict};
    let mut lines = Vec::new();
    let mut push = |what: &str, e: String| lines.push(format!("{what}: {e}"));
    push(
        "empty parameter list",
        Adadelta::<Param>::new(vec![], Options::default())
            .unwrap_err()
            .to_string(),
    );
    for (what, o) in [
        (
            "lr = -1",
            Options {
                lr: -1.0,
                ..Options::default()
            },
        ),
        (
            "rho = 2",
            Options {
                rho: 2.0,
                ..Options::default()
            },
        ),
        (
            "eps = -1e-8",
            Options {
                eps: -1e-8,
                ..Options::default()
            },
        ),
        (
            "weight_decay = nan",
            Options {
                weight_decay: f64::NAN,
                ..Options::default()
            },
        ),
        (
            "capturable",
            Options {
                capturable: true,
                ..Options::default()
            },
        ),
        (
            "differentiable",
            Options {
                differentiable: true,
                ..Options::default()
            },
        ),
    ] {
        push(
            what,
            Adadelta::new(vec![Param::new(vec![1.0])], o)
                .unwrap_err()
                .to_string(),
        );
    }
    push(
        "grad of the wrong size",
        Param::new(vec![1.0, 2.0])
            .set_grad(vec![1.0])
            .unwrap_err()
            .to_string(),
    );
    push(
        "shape and data disagree",
        Param::with_shape(vec![1.0; 5], vec![2, 3])
            .unwrap_err()
            .to_string(),
    );
    let mut opt = tiny_optimizer();
    push("set_lr(-0.5)", opt.set_lr(-0.5).unwrap_err().to_string());
    push(
        "update_group(7)",
        opt.update_group(7, |o| o.lr = 0.1).unwrap_err().to_string(),
    );
    let mut sd = opt.state_dict();
    sd.param_groups.pop();
    push(
        "load: fewer groups",
        opt.load_state_dict(sd).unwrap_err().to_string(),
    );
    let mut sd = opt.state_dict();
    sd.param_groups[0].params.pop();
    push(
        "load: smaller group",
        opt.load_state_dict(sd).unwrap_err().to_string(),
    );
    for (what, json) in [
        ("json: truncated", r#"{"state": {"#),
        ("json: missing param_groups", r#"{"state": {}}"#),
        (
            "json: float64 tensor",
            r#"{"state": {"0": {"step": {"dtype": "float64", "shape": [], "bits": [0]}, "square_avg": {"dtype": "float32", "shape": [1], "bits": [0]}, "acc_delta": {"dtype": "float32", "shape": [1], "bits": [0]}}}, "param_groups": [{"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": false, "capturable": false, "foreach": null, "differentiable": false, "params": [0]}]}"#,
        ),
    ] {
        push(
            what,
            StateDict::<f32>::from_json_str(json)
                .unwrap_err()
                .to_string(),
        );
    }
    settings().bind(|| insta::assert_snapshot!("api_error_messages", lines.join("\n")));
}
