//! `ulp_error` and `ulp_exponent`.

use adadelta_reference::rug::Float;
use adadelta_reference::{ulp_error, ulp_error_in, ulp_exponent, ulp_exponent_in};
use proptest::prelude::*;

fn exact(x: f32) -> Float {
    Float::with_val(24, x)
}

#[test]
fn special_values() {
    let inf = f32::INFINITY;
    assert_eq!(ulp_error(f32::NAN, &exact(f32::NAN)), 0.0);
    assert_eq!(ulp_error(1.0, &exact(f32::NAN)), f64::INFINITY);
    assert_eq!(ulp_error(f32::NAN, &exact(1.0)), f64::INFINITY);
    assert_eq!(ulp_error(inf, &exact(inf)), 0.0);
    assert_eq!(ulp_error(-inf, &exact(inf)), f64::INFINITY);
    assert_eq!(ulp_error(f32::MAX, &exact(inf)), f64::INFINITY);
    assert_eq!(ulp_error(-0.0, &exact(0.0)), 0.0);
    // ulp(0) = 2^-149, the smallest subnormal.
    assert_eq!(ulp_error(f32::from_bits(1), &exact(0.0)), 1.0);
    assert_eq!(ulp_error(f32::from_bits(3), &exact(-0.0)), 3.0);
    // Subnormal range: the unit is 2^-149 throughout.
    assert_eq!(ulp_error(f32::from_bits(7), &exact(f32::from_bits(5))), 2.0);
    // inf stands for [2^128, inf): the threshold 2^128 (1 - 2^-25) rounds to
    // inf with an error of exactly 0.5 (ulp there is 2^104); f32::MAX to inf
    // is 1 ulp; anything beyond 2^128 is 0.
    let threshold =
        Float::with_val(64, Float::i_exp(1, 128)) - Float::with_val(64, Float::i_exp(1, 103));
    assert_eq!(ulp_error(inf, &threshold), 0.5);
    assert_eq!(ulp_error(inf, &exact(f32::MAX)), 1.0);
    assert_eq!(ulp_error(-inf, &exact(f32::MIN)), 1.0);
    assert_eq!(
        ulp_error(inf, &Float::with_val(24, Float::i_exp(1, 130))),
        0.0
    );
    assert_eq!(
        ulp_error(inf, &Float::with_val(24, Float::i_exp(1, 128))),
        0.0
    );
    assert_eq!(
        ulp_error(-inf, &Float::with_val(24, Float::i_exp(1, 128))),
        2f64.powi(24)
    );
    // Beyond the range the unit formula continues: ulp(2^130) = 2^107.
    assert_eq!(
        ulp_error(f32::MAX, &Float::with_val(24, Float::i_exp(1, 130))),
        3.0 * 2f64.powi(21) + 2f64.powi(-3)
    );
}

#[test]
fn unit_is_taken_at_the_exact_value() {
    // 1 - 2^-24 is just below 1: ulp there is 2^-24, so 1.0 is 1 ulp away.
    assert_eq!(ulp_error(1.0, &exact(1.0 - f32::EPSILON / 2.0)), 1.0);
    // ...while from above, 1 - 2^-24 is half an ulp of 1 away.
    assert_eq!(ulp_error(1.0 - f32::EPSILON / 2.0, &exact(1.0)), 0.5);
    assert_eq!(ulp_exponent(&exact(f32::MIN_POSITIVE)), -149);
    assert_eq!(ulp_exponent(&exact(-3.0)), -22);
}

#[test]
fn binary64_units_follow_binary64s_precision_and_range() {
    let exact64 = |x: f64| Float::with_val(53, x);
    assert_eq!(ulp_exponent_in::<f64>(&exact64(1.0)), -52);
    assert_eq!(ulp_exponent_in::<f64>(&exact64(-3.0)), -51);
    assert_eq!(ulp_exponent_in::<f64>(&exact64(f64::MIN_POSITIVE)), -1074);
    assert_eq!(ulp_exponent_in::<f64>(&Float::new(53)), -1074);
    // The subnormal range: the unit is 2^-1074 throughout.
    assert_eq!(
        ulp_error_in(f64::from_bits(7), &exact64(f64::from_bits(5))),
        2.0
    );
    assert_eq!(ulp_error_in(-0.0f64, &exact64(0.0)), 0.0);
    // inf stands for [2^1024, inf): f64::MAX to inf is 1 ulp (2^971), and
    // anything beyond 2^1024 is 0.
    assert_eq!(ulp_error_in(f64::INFINITY, &exact64(f64::MAX)), 1.0);
    assert_eq!(
        ulp_error_in(f64::INFINITY, &Float::with_val(53, Float::i_exp(1, 1030))),
        0.0
    );
    assert_eq!(ulp_error_in(f64::NAN, &exact64(f64::NAN)), 0.0);
    assert_eq!(ulp_error_in(1.0f64, &exact64(f64::NAN)), f64::INFINITY);
    // The binary32 functions are the f32 instances.
    assert_eq!(
        ulp_exponent_in::<f32>(&exact(-3.0)),
        ulp_exponent(&exact(-3.0))
    );
}

proptest! {
    /// The next f64 up is exactly one binary64 ulp from a finite exact
    /// `f64`, and an f64 rounded to nearest from 256 bits is within half.
    #[test]
    fn binary64_next_up_is_one_ulp(x in any::<u64>().prop_map(f64::from_bits), num in 1u64.., den in 1u64..) {
        if x.is_finite() && x.abs() != f64::MAX {
            let up = f64::from_bits(x.to_bits() + 1);
            prop_assert_eq!(ulp_error_in(x, &Float::with_val(53, x)), 0.0);
            prop_assert_eq!(ulp_error_in(up, &Float::with_val(53, x)), 1.0, "{:e} -> {:e}", x, up);
        }
        let q = Float::with_val(256, num) / den;
        let e = ulp_error_in(q.to_f64(), &q);
        prop_assert!(e <= 0.5, "{num}/{den}: {e}");
    }

    /// A correctly rounded value is within half an ulp; the next float up is
    /// exactly one ulp from a finite exact `f32` (same binade, or the step out
    /// of the top of a binade, which has the lower binade's spacing).
    #[test]
    fn correctly_rounded_within_half_ulp(bits in any::<u64>(), x in any::<u32>().prop_map(f32::from_bits)) {
        let y = f64::from_bits(bits);
        if y.is_finite() {
            let e = ulp_error(y as f32, &Float::with_val(53, y));
            prop_assert!(e <= 0.5, "{y:e}: {e}");
        }
        if x.is_finite() && x.abs() != f32::MAX {
            // One step away from zero (from -0: to -2^-149).
            let up = f32::from_bits(x.to_bits() + 1);
            prop_assert_eq!(ulp_error(x, &exact(x)), 0.0);
            prop_assert_eq!(ulp_error(up, &exact(x)), 1.0, "{:e} -> {:e}", x, up);
        }
    }
}
