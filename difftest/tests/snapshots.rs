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

/// The report's figures for fast and the reference, which must be identical
/// on every machine (no libtorch or MKL inside): any change in the numerics
/// of either shows up here.
#[test]
fn report_summary() {
    let r = report::run(
        &suite::default_suite(),
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
