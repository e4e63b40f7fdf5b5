//! NaN and ±inf in gradients, parameters and state propagate exactly as in
//! PyTorch: every output element is NaN, +inf, -inf or finite in fast
//! exactly where it is in libtorch (which is bit-identical to
//! `torch.optim.Adadelta`, see libtorch_matches_pytorch.rs).
//!
//! Values are kept moderate (|x| < 1e6) apart from the injected specials, so
//! that libtorch's 1-ulp sqrt differences cannot move an element across the
//! overflow threshold; finite elements are compared by the per-step bound
//! elsewhere (differential.rs).

use adadelta_difftest::case::{Case, Trajectory};
use adadelta_difftest::implementations::Implementation;
use adadelta_difftest::strategies::{cases_or, hyper};
use proptest::prelude::*;

fn class(x: f32) -> &'static str {
    if x.is_nan() {
        "nan"
    } else if x == f32::INFINITY {
        "+inf"
    } else if x == f32::NEG_INFINITY {
        "-inf"
    } else {
        "finite"
    }
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -1e6f32..1e6,
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    // Lengths span SIMD bodies and tails: a special lands mid-chunk and in tails.
    (
        hyper(),
        prop::collection::vec(prop_oneof![1usize..=3, 15usize..=17, 31usize..=70], 1..=2),
        1usize..=4,
    )
        .prop_flat_map(|(hyper, sizes, steps)| {
            let params: Vec<_> = sizes
                .iter()
                .map(|&n| prop::collection::vec(value(), n))
                .collect();
            let grads: Vec<_> = sizes
                .iter()
                .map(|&n| prop::option::weighted(0.9, prop::collection::vec(value(), n)))
                .collect();
            (Just(hyper), params, prop::collection::vec(grads, steps)).prop_map(
                |(hyper, params, grads)| Case {
                    name: "nonfinite".into(),
                    hyper,
                    params,
                    grads,
                },
            )
        })
}

fn classes(t: &Trajectory) -> Vec<&'static str> {
    t.iter()
        .flat_map(|s| {
            s.params
                .iter()
                .flatten()
                .chain(s.square_avg.iter().flatten().flatten())
                .chain(s.acc_delta.iter().flatten().flatten())
                .map(|&x| class(x))
                .collect::<Vec<_>>()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn non_finite_values_propagate_as_in_pytorch(case in case()) {
        let fast = Implementation::Fast.run(&case);
        let torch = Implementation::Libtorch.run(&case);
        let (a, b) = (classes(&fast), classes(&torch));
        prop_assert_eq!(a.len(), b.len());
        if let Some(k) = (0..a.len()).find(|&k| a[k] != b[k]) {
            prop_assert!(false, "element {} of the flattened trajectory: fast {} vs libtorch {}; first difference: {}",
                k, a[k], b[k], adadelta_difftest::accuracy::first_difference_with(&case, &fast, &torch, adadelta_difftest::accuracy::NanBits::QuietAnyPayload).unwrap_or_default());
        }
    }
}
