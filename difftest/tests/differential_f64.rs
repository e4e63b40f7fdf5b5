//! float64: the production kernel in its default numerics against the MPFR
//! reference's binary64 emulation (`Binary64`, fused multiply-adds,
//! correctly rounded sqrt), bit for bit, on every path, over several steps
//! with absent gradients and values of every class (subnormals, huge, ±0,
//! ±inf, NaN, raw bit patterns).
//!
//! fast's NaNs are compared by class and quietness only (its NaN sign and
//! payload are not determined: `fast/docs/numerics.md`, "NaN bits"); every
//! other bit, signed zeros included, must be equal. Case counts follow
//! `PROPTEST_CASES` when set.

use adadelta::kernel::{Executor, Isa, Numerics, Threads};
use adadelta_difftest::accuracy::{first_difference_with, NanBits};
use adadelta_difftest::case::Case;
use adadelta_difftest::implementations::{run_kernel, run_reference};
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_reference::MulAdd;
use proptest::prelude::*;

/// f64 values of every class.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -4.0f64..4.0,
        1 => Just(0.0f64),
        1 => Just(-0.0f64),
        1 => (1u64..1 << 52, any::<bool>())
            .prop_map(|(b, s)| f64::from_bits(b | if s { 1 << 63 } else { 0 })),
        1 => -1e-160f64..1e-160,
        1 => prop_oneof![1e150f64..1.7e308, -1.7e308f64..-1e150],
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN)],
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

/// One case: the initial parameters, and each step's gradients (`None`:
/// absent, as a parameter whose `.grad` is `None`).
fn case() -> impl Strategy<Value = Case<f64>> {
    (
        hyper(),
        prop::collection::vec(0usize..=40, 1..=3),
        1usize..=5,
    )
        .prop_flat_map(|(hyper, sizes, steps)| {
            let params: Vec<_> = sizes
                .iter()
                .map(|&n| prop::collection::vec(value(), n))
                .collect();
            let step = sizes
                .iter()
                .map(|&n| prop::option::weighted(0.85, prop::collection::vec(value(), n)))
                .collect::<Vec<_>>();
            (Just(hyper), params, prop::collection::vec(step, steps))
        })
        .prop_map(|(hyper, params, grads)| Case {
            name: "float64 proptest".into(),
            hyper,
            params,
            grads,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(512), ..ProptestConfig::default() })]

    /// After every step: parameters, state and step counters.
    #[test]
    fn fast_f64_equals_reference_binary64_on_every_path(c in case()) {
        let want = run_reference(&c, MulAdd::Fused);
        for isa in Isa::ALL.into_iter().filter(|i| i.is_supported()) {
            let exec = Executor {
                numerics: Numerics::Default,
                isa: Some(isa),
                threads: Threads::Single,
                ..Executor::default()
            };
            let got = run_kernel(&c, &exec);
            if let Some(d) = first_difference_with(&c, &got, &want, NanBits::QuietAnyPayload) {
                return Err(TestCaseError::fail(format!("{isa:?}: fast vs reference: {d}")));
            }
        }
    }
}
