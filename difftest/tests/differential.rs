//! Property tests: fast vs the MPFR reference (binary32 emulation, bit for
//! bit), and fast and libtorch vs the high-precision reference (per-step
//! error within the bound derived in `fast/docs/numerics.md`).
//!
//! Case counts follow `PROPTEST_CASES` when set (nightly-style long runs);
//! the defaults below keep the suite quick.

use adadelta_difftest::accuracy::{self, Accuracy};
use adadelta_difftest::case::{Case, Hyper};
use adadelta_difftest::implementations::{run_fast, run_reference, Implementation};
use adadelta_difftest::strategies::{case, cases_or};
use adadelta_reference::MulAdd;
use proptest::prelude::*;

/// fast's NaNs are compared by class and quietness only: its NaN sign and
/// payload are not determined (`NanBits::QuietAnyPayload` says why).
const FAST_NAN: accuracy::NanBits = accuracy::NanBits::QuietAnyPayload;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(1024), ..ProptestConfig::default() })]

    /// The production kernel is the reference's binary32 emulation (fused
    /// multiply-adds, correctly rounded sqrt), bit for bit: no tolerance.
    #[test]
    fn fast_equals_reference_binary32(case in case(8)) {
        let fast = run_fast(&case);
        let reference = run_reference(&case, MulAdd::Fused);
        let (eq, n) = accuracy::bit_identical_with(&fast, &reference, FAST_NAN);
        prop_assert_eq!(
            eq,
            n,
            "fast and reference binary32 differ on {} of {} elements; first: {}",
            n - eq,
            n,
            accuracy::first_difference_with(&case, &fast, &reference, FAST_NAN).unwrap_or_default()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(24), ..ProptestConfig::default() })]

    /// Long trajectories (up to 50 steps): still bit for bit, and every
    /// step within the bound from the implementation's own state.
    #[test]
    fn long_trajectories(case in case(50)) {
        let fast = run_fast(&case);
        let reference = run_reference(&case, MulAdd::Fused);
        prop_assert!(
            accuracy::first_difference_with(&case, &fast, &reference, FAST_NAN).is_none(),
            "{}",
            accuracy::first_difference_with(&case, &fast, &reference, FAST_NAN).unwrap_or_default()
        );
        check_within_bound(&case, Implementation::Fast)?;
        check_within_bound(&case, Implementation::Libtorch)?;
    }
}

fn check_within_bound(case: &Case, imp: Implementation) -> Result<Accuracy, TestCaseError> {
    let traj = imp.run(case);
    let acc = accuracy::per_step(case, &traj, imp.sqrt_accuracy());
    // Tolerance: the per-element bound of `bound::one_step` (derived in
    // fast/docs/numerics.md), i.e. the sum of every rounding error of the f32 recipe
    // propagated to the output, with sqrt at 1/2 ulp (fast) or 3/2 ulp
    // (libtorch's oneMKL sqrt, measured within 1 ulp of correct).
    prop_assert_eq!(
        acc.violation_count,
        0,
        "{}: {} elements outside the bound; first: {:?}",
        imp.name::<f32>(),
        acc.violation_count,
        acc.violations.first()
    );
    Ok(acc)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(192), ..ProptestConfig::default() })]

    /// Per-step error of fast against the 256-bit reference stays within the bound.
    #[test]
    fn fast_within_bound_of_high_precision(case in case(5)) {
        check_within_bound(&case, Implementation::Fast)?;
    }

    /// Per-step error of libtorch (through tch) against the 256-bit reference
    /// stays within the bound, with sqrt allowed 3/2 ulp.
    #[test]
    fn libtorch_within_bound_of_high_precision(case in case(5)) {
        check_within_bound(&case, Implementation::Libtorch)?;
    }
}

/// The bound is not vacuous: on ordinary inputs it is a few ULPs, and both
/// implementations use a real part of it (an all-zero error would mean the
/// comparison is not looking at the outputs).
#[test]
fn bound_is_tight_on_ordinary_inputs() {
    let case = adadelta_difftest::suite::random_case(
        "tightness",
        7,
        Hyper {
            lr: 0.37,
            weight_decay: 0.1,
            maximize: true,
            ..Hyper::default()
        },
        &[1000, 33],
        5,
        adadelta_difftest::suite::Values::Normal,
        0.0,
    );
    for imp in [Implementation::Fast, Implementation::Libtorch] {
        let acc = check_within_bound(&case, imp).unwrap();
        assert!(
            acc.max_ulps > 0.4,
            "{}: max error {} ULP: suspiciously exact",
            imp.name::<f32>(),
            acc.max_ulps
        );
        assert!(
            acc.max_bound_ratio > 0.05,
            "{}: bound ratio {}",
            imp.name::<f32>(),
            acc.max_bound_ratio
        );
    }
}
