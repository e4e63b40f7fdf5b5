//! Errors measured in units in the last place of a [`Format`]: binary32
//! ([`ulp_error`], [`ulp_exponent`]) or any format ([`ulp_error_in`],
//! [`ulp_exponent_in`]; binary64 for `f64`).
//!
//! The unit is taken at the **exact** value `X` (not at the computed value):
//! `ulp(X) = 2^(max(floor(log2|X|), emin) - (p - 1))` with `p` the
//! precision and `emin` the exponent of the smallest normal number
//! (binary32: `p = 24`, `emin = -126`, `ulp(0) = 2^-149`; binary64: `p = 53`,
//! `emin = -1022`, `ulp(0) = 2^-1074`). Above the format's range the same
//! formula continues (binary32: `ulp(2^130) = 2^107`). A correctly rounded
//! finite result has an error ≤ 0.5 in this unit.

use crate::ieee::Format;
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
    ulp_exponent_in::<f32>(x)
}

/// [`ulp_exponent`] for the format `F`: `max(floor(log2|X|), emin) - (p - 1)`
/// with `emin = 1 - bias` (`-126`, `-1022`), and `emin - (p - 1)` for
/// `X = 0` (`-149`, `-1074`).
///
/// # Panics
///
/// If `x` is NaN or infinite.
///
/// # Example
///
/// ```
/// use adadelta_reference::{rug::Float, ulp_exponent_in};
/// assert_eq!(ulp_exponent_in::<f64>(&Float::with_val(53, 1.0)), -52);
/// assert_eq!(ulp_exponent_in::<f64>(&Float::with_val(53, f64::MAX)), 971);
/// assert_eq!(ulp_exponent_in::<f64>(&Float::with_val(53, 1e-310)), -1074);
/// assert_eq!(ulp_exponent_in::<f64>(&Float::new(53)), -1074);
/// assert_eq!(ulp_exponent_in::<f32>(&Float::with_val(24, 1.5)), -23);
/// ```
pub fn ulp_exponent_in<F: Format>(x: &Float) -> i32 {
    assert!(!x.is_nan() && !x.is_infinite(), "ulp_exponent of {x}");
    let emin = 1 - F::BIAS;
    let digits = F::PREC as i32 - 1;
    match x.get_exp() {
        // rug's exponent: x = m * 2^exp with 0.5 <= |m| < 1, so
        // floor(log2|x|) = exp - 1.
        Some(exp) => (exp - 1).max(emin) - digits,
        None => emin - digits, // zero
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
    ulp_error_in(x, exact)
}

/// [`ulp_error`] for a value of the format `F`, in `F`'s ULPs at `exact`
/// ([`ulp_exponent_in`]); an infinite `x` stands for the ray from
/// `±2^(bias + 1)` (`2^128`, `2^1024`) outwards.
///
/// # Example
///
/// ```
/// use adadelta_reference::{rug::Float, ulp_error_in};
///
/// let third = Float::with_val(256, 1) / 3u32;
/// let e = ulp_error_in(1.0f64 / 3.0, &third);
/// assert!(e > 0.0 && e <= 0.5);
/// assert_eq!(ulp_error_in(1.0 + f64::EPSILON, &Float::with_val(53, 1.0)), 1.0);
/// assert_eq!(ulp_error_in(f64::from_bits(3), &Float::new(53)), 3.0);
/// assert_eq!(ulp_error_in(f64::INFINITY, &Float::with_val(53, f64::MAX)), 1.0);
/// ```
pub fn ulp_error_in<F: Format>(x: F, exact: &Float) -> f64 {
    let x = x.to_float();
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
        // The point of the ray [2^(bias+1), inf) (or its negative) nearest to exact.
        let sign = if x.is_sign_negative() { -1 } else { 1 };
        let edge = Float::with_val(F::PREC, Float::i_exp(sign, F::EXP_MAX));
        let beyond = x.is_sign_negative() == exact.is_sign_negative()
            && exact.cmp_abs(&edge).is_some_and(|o| o.is_ge());
        if beyond {
            return 0.0;
        }
        edge
    } else {
        x
    };
    // One rounding at >= 64 bits, then one to f64: relative error < 2^-52.
    let diff = Float::with_val(exact.prec().max(64), &x - exact).abs();
    (diff >> ulp_exponent_in::<F>(exact)).to_f64()
}
