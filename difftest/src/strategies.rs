//! proptest strategies shared by the differential tests: f32 values over
//! the whole range, lengths around every SIMD width, hyperparameters with
//! their boundary values, and whole cases.
//!
//! ```
//! use proptest::strategy::{Strategy, ValueTree};
//! let mut runner = proptest::test_runner::TestRunner::deterministic();
//! let case = adadelta_difftest::strategies::case(5).new_tree(&mut runner).unwrap().current();
//! assert!(!case.params.is_empty() && (1..=5).contains(&case.grads.len()));
//! ```

use crate::case::{Case, Hyper};
use proptest::prelude::*;

/// f32 values: moderate normals, ±0, subnormals, tiny and huge normals (whose
/// squares overflow to inf).
pub fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -16.0f32..16.0,
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => (1u32..0x0080_0000, any::<bool>())
            .prop_map(|(b, s)| if s { -f32::from_bits(b) } else { f32::from_bits(b) }),
        1 => -1e-30f32..1e-30,
        1 => prop_oneof![(1e30f32..3e38), (-3e38f32..-1e30)],
    ]
}

/// Lengths 0, 1, 2 and every length around the SIMD widths (8, 16, 32, 64
/// floats), and a larger one.
pub fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..=2,
        7usize..=9,
        15usize..=17,
        31usize..=33,
        63usize..=65,
        100usize..300
    ]
}

/// Hyperparameters including lr = 0, rho = 0 and 1, eps = 0 and an eps
/// that is subnormal-small in f32's terms (1e-30), weight decay and maximize.
pub fn hyper() -> impl Strategy<Value = Hyper> {
    (
        prop_oneof![Just(0.0), Just(1.0), 0.0..2.0f64],
        prop_oneof![Just(0.0), Just(1.0), Just(0.9), 0.0..1.0f64],
        prop_oneof![Just(0.0), Just(1e-6), Just(1e-30), 1e-10..1e-2f64],
        prop_oneof![Just(0.0), Just(0.0), 0.0..0.5f64],
        any::<bool>(),
    )
        .prop_map(|(lr, rho, eps, weight_decay, maximize)| Hyper {
            lr,
            rho,
            eps,
            weight_decay,
            maximize,
            foreach: false,
        })
}

/// A case: 1 to 3 parameters of [`length`]s with [`value`]s, 1 to
/// `max_steps` steps, each gradient absent with probability 1/5.
pub fn case(max_steps: usize) -> impl Strategy<Value = Case> {
    (
        hyper(),
        prop::collection::vec(length(), 1..=3),
        1..=max_steps,
    )
        .prop_flat_map(|(hyper, sizes, steps)| {
            let params: Vec<_> = sizes
                .iter()
                .map(|&n| prop::collection::vec(value(), n))
                .collect();
            let step_grads: Vec<_> = sizes
                .iter()
                .map(|&n| prop::option::weighted(0.8, prop::collection::vec(value(), n)))
                .collect();
            (
                Just(hyper),
                params,
                prop::collection::vec(step_grads, steps),
            )
        })
        .prop_map(|(hyper, params, grads)| Case {
            name: "proptest".into(),
            hyper,
            params,
            grads,
        })
}

/// `PROPTEST_CASES` when set (nightly-style long runs), else `default`.
pub fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
