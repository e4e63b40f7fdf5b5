//! Errors measured in binary32 units in the last place.
//!
//! The unit is taken at the **exact** value `X` (not at the computed `f32`):
//! `ulp(X) = 2^(max(floor(log2|X|), -126) - 23)`, and `ulp(0) = 2^-149`.
//! Above the binary32 range the same formula continues (`ulp(2^130) = 2^107`).
//! A correctly rounded finite result has an error ≤ 0.5 in this unit.

use rug::Float;

/// The exponent `e` of `ulp(X) = 2^e` for binary32 at the exact value `X`:
/// `max(floor(log2|X|), -126) - 23`, and -149 for `X = 0`.
///
/// # Panics
///
/// If `x` is NaN or infinite.
///
/// # Example
///
/// ```
/// use adadelta_reference::{rug::Float, ulp_exponent};
/// assert_eq!(ulp_exponent(&Float::with_val(24, 1.0)), -23);
/// assert_eq!(ulp_exponent(&Float::with_val(24, 1.5)), -23);
/// assert_eq!(ulp_exponent(&Float::with_val(24, f32::MAX)), 104);
/// assert_eq!(ulp_exponent(&Float::with_val(24, 1e-40f32)), -149);
/// assert_eq!(ulp_exponent(&Float::new(24)), -149);
/// ```
pub fn ulp_exponent(x: &Float) -> i32 {
    assert!(!x.is_nan() && !x.is_infinite(), "ulp_exponent of {x}");
    match x.get_exp() {
        // rug's exponent: x = m * 2^exp with 0.5 <= |m| < 1, so
        // floor(log2|x|) = exp - 1.
        Some(exp) => (exp - 1).max(-126) - 23,
        None => -149, // zero
    }
}

/// Error of `x` against the exact value `exact`, in binary32 ULPs at `exact`
/// (see the [module docs](self)): `|x - exact| / ulp(exact)`, as an `f64`
/// (fractional ULPs; rounded to nearest `f64`, so its relative error is below
/// 2^-52).
///
/// Non-finite values:
///
/// * NaN vs NaN: `0.0`. An error in ULPs says nothing of NaN bits, and an
///   MPFR `exact` has no NaN sign or payload: the bits of a NaN are checked
///   against [`crate::Binary32`], which models them (difftest's `NanBits`).
/// * NaN vs a number, or a number vs NaN: `f64::INFINITY`.
/// * `exact` infinite: `0.0` if `x` is the same infinity, else `f64::INFINITY`.
/// * `x = ±inf` and `exact` finite: `x` stands for every value from ±2^128
///   outwards (what IEEE overflow rounds there), and the error is the
///   distance from `exact` to that ray. So a correctly rounded overflow
///   (`|exact| ≥ 2^128·(1 − 2^-25)`, same sign) has an error ≤ 0.5 (0 from
///   2^128 on), and `inf` for an exact `f32::MAX` has an error of 1.
///
/// Signed zeros compare equal (`ulp_error(-0.0, +0) == 0.0`).
///
/// # Example
///
/// ```
/// use adadelta_reference::{rug::Float, ulp_error};
///
/// let third = Float::with_val(256, 1) / 3u32;
/// // 1/3 rounded to binary32 is within half an ulp.
/// let e = ulp_error((1.0f32 / 3.0), &third);
/// assert!(e > 0.0 && e <= 0.5);
/// assert_eq!(ulp_error(1.0 + f32::EPSILON, &Float::with_val(24, 1.0)), 1.0);
/// assert_eq!(ulp_error(f32::NAN, &Float::with_val(24, f32::NAN)), 0.0);
/// assert_eq!(ulp_error(f32::INFINITY, &Float::with_val(24, f32::MAX)), 1.0);
/// ```
pub fn ulp_error(x: f32, exact: &Float) -> f64 {
    if exact.is_nan() || x.is_nan() {
        return if exact.is_nan() && x.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if exact.is_infinite() {
        let same = x.is_infinite() && x.is_sign_negative() == exact.is_sign_negative();
        return if same { 0.0 } else { f64::INFINITY };
    }
    let x = if x.is_infinite() {
        // The point of the ray [2^128, inf) (or its negative) nearest to exact.
        let edge = Float::with_val(24, Float::i_exp(if x < 0.0 { -1 } else { 1 }, 128));
        let beyond = x.is_sign_negative() == exact.is_sign_negative()
            && exact.cmp_abs(&edge).is_some_and(|o| o.is_ge());
        if beyond {
            return 0.0;
        }
        edge
    } else {
        Float::with_val(24, x)
    };
    // One rounding at >= 64 bits, then one to f64: relative error < 2^-52.
    let diff = Float::with_val(exact.prec().max(64), &x - exact).abs();
    (diff >> ulp_exponent(exact)).to_f64()
}
