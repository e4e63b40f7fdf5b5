//! Each MPFR-emulated binary32 op agrees bit for bit with the hardware's IEEE
//! binary32 op (x86-64 SSE, no flush-to-zero; `f32::mul_add` is a correctly
//! rounded fma), on arbitrary bit patterns and on operands built to land on
//! the hard cases: subnormal results, double-rounding traps, overflow.

mod common;

use adadelta_reference::binary32::{add, div, fma, from_f64, mul, neg, sqrt};
use common::{any_bits, interesting_f32, with_exponent};
use proptest::prelude::*;

/// Per-op cases: each case is a handful of 24-bit MPFR ops (about 1 us),
/// so 20 properties x 400 000 cases take a few seconds.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(400_000)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_matches_native(x in interesting_f32(), y in interesting_f32()) {
        prop_assert_same!(add(x, y), x + y, "{x:e} + {y:e}");
    }

    #[test]
    fn add_bits(x in any_bits(), y in any_bits()) {
        prop_assert_same!(add(x, y), x + y, "{x:e} + {y:e}");
    }

    /// Nearby exponents: cancellation, exact zeros (and their sign) and
    /// subnormal sums.
    #[test]
    fn add_cancellation(x in with_exponent(0..=30), y in with_exponent(0..=30)) {
        prop_assert_same!(add(x, y), x + y, "{x:e} + {y:e}");
        prop_assert_same!(add(x, -x), x - x, "{x:e} - itself");
    }

    #[test]
    fn mul_matches_native(x in interesting_f32(), y in interesting_f32()) {
        prop_assert_same!(mul(x, y), x * y, "{x:e} * {y:e}");
    }

    #[test]
    fn mul_bits(x in any_bits(), y in any_bits()) {
        prop_assert_same!(mul(x, y), x * y, "{x:e} * {y:e}");
    }

    /// Exponents summing to around -150..-100: subnormal and underflowing
    /// products, where a 24-bit rounding followed by a subnormal rounding
    /// would double-round.
    #[test]
    fn mul_subnormal_results(x in with_exponent(1..=126), y in with_exponent(1..=126)) {
        prop_assert_same!(mul(x, y), x * y, "{x:e} * {y:e}");
    }

    /// Exponents summing to around 128: the overflow boundary.
    #[test]
    fn mul_overflow_boundary(x in with_exponent(180..=254), y in with_exponent(60..=80)) {
        prop_assert_same!(mul(x, y), x * y, "{x:e} * {y:e}");
    }

    #[test]
    fn div_matches_native(x in interesting_f32(), y in interesting_f32()) {
        prop_assert_same!(div(x, y), x / y, "{x:e} / {y:e}");
    }

    #[test]
    fn div_bits(x in any_bits(), y in any_bits()) {
        prop_assert_same!(div(x, y), x / y, "{x:e} / {y:e}");
    }

    /// Quotients in the subnormal range and near the overflow threshold.
    #[test]
    fn div_extreme_results(x in with_exponent(1..=60), y in with_exponent(100..=200),
                           u in with_exponent(200..=254), w in with_exponent(60..=130)) {
        prop_assert_same!(div(x, y), x / y, "{x:e} / {y:e}");
        prop_assert_same!(div(u, w), u / w, "{u:e} / {w:e}");
    }

    #[test]
    fn sqrt_matches_native(x in interesting_f32()) {
        prop_assert_same!(sqrt(x), x.sqrt(), "sqrt({x:e})");
    }

    #[test]
    fn sqrt_bits(x in any_bits()) {
        prop_assert_same!(sqrt(x), x.sqrt(), "sqrt({x:e})");
    }

    #[test]
    fn fma_matches_native(x in interesting_f32(), y in interesting_f32(), z in interesting_f32()) {
        prop_assert_same!(fma(x, y, z), x.mul_add(y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    #[test]
    fn fma_bits(x in any_bits(), y in any_bits(), z in any_bits()) {
        prop_assert_same!(fma(x, y, z), x.mul_add(y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// `z` close to `-x*y`: massive cancellation, the exact residual of the
    /// product, zeros and their signs, subnormal results.
    #[test]
    fn fma_cancellation(x in interesting_f32(), y in interesting_f32(), k in -3i32..=3) {
        let p = x * y;
        let z = -f32::from_bits(p.to_bits().wrapping_add_signed(k));
        prop_assert_same!(fma(x, y, z), x.mul_add(y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// Tiny products plus tiny addends: subnormal fma results.
    #[test]
    fn fma_subnormal(x in with_exponent(1..=110), y in with_exponent(1..=110), z in common::subnormal()) {
        prop_assert_same!(fma(x, y, z), x.mul_add(y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    #[test]
    fn neg_matches_native(x in any_bits()) {
        prop_assert_same!(neg(x), -x, "-{x:e}");
    }

    /// `f32(x)` for an `f64`: `as f32` is round-to-nearest-even, with
    /// subnormal results and overflow to infinity.
    #[test]
    fn from_f64_matches_as(bits in any::<u64>(), small in -1e-37f64..1e-37, big in 3e38f64..3.5e38) {
        for x in [f64::from_bits(bits), small, big, -big] {
            prop_assert_same!(from_f64(x), x as f32, "f32({x:e})");
        }
    }
}

/// `sqrt` on every 1021st bit pattern of all 2^32 (4.2 million inputs,
/// every exponent and sign, NaNs and infinities included).
#[test]
fn sqrt_strided_sweep() {
    for bits in (0..=u32::MAX).step_by(1021) {
        let x = f32::from_bits(bits);
        assert!(
            common::same(sqrt(x), x.sqrt()),
            "sqrt({x:e}) ({bits:#010x})"
        );
    }
}

/// Hand-made double-rounding traps: the exact result, rounded to 24 bits with
/// unbounded exponent, lands exactly on a midpoint of the subnormal grid; a
/// second, ties-to-even rounding would then go the wrong way. Only a rounding
/// that remembers the direction of the first one (MPFR's ternary value) gets
/// these right.
#[test]
fn double_rounding_traps() {
    let two = |e: i32| 2f32.powi(e);
    let min_sub = f32::from_bits(1); // 2^-149
    let one_plus = 1.0 + f32::EPSILON; // 1 + 2^-23
    let one_minus = 1.0 - f32::EPSILON / 2.0; // 1 - 2^-24

    // (1 + 2^-23)(1 - 2^-24) 2^-150 = 2^-150 (1 + 2^-24 - 2^-47): 24-bit
    // rounding gives exactly 2^-150 (the midpoint between 0 and 2^-149, a tie
    // that would go to 0), but the exact value is above it: 2^-149.
    let (x, y) = (one_plus * two(-75), one_minus * two(-75));
    assert_eq!(mul(x, y), min_sub);
    assert_eq!(mul(x, y), x * y);
    assert_eq!(mul(-x, y), -min_sub);
    assert_eq!(fma(x, y, 0.0), min_sub);

    // 2^-100 / (11184811 * 2^25), with 3 * 11184811 = 2^25 + 1: the quotient is
    // 3 * 2^-150 (1 - 2^-25 + ...), which rounds at 24 bits to exactly the
    // midpoint 3 * 2^-150 between 2^-149 and 2^-148 (a tie that would go to the
    // even 2^-148), but the exact value is below it: 2^-149.
    let (x, y) = (two(-100), 11_184_811.0 * two(25));
    assert_eq!(div(x, y), min_sub);
    assert_eq!(div(x, y), x / y);

    // Overflow: (1 - 2^-24) 2^64 * (1 + 2^-23) 2^64 = 2^128 (1 + 2^-24 - 2^-47),
    // above the threshold 2^128 (1 - 2^-25): infinity.
    let (x, y) = (one_minus * two(64), one_plus * two(64));
    assert_eq!(mul(x, y), f32::INFINITY);
    assert_eq!(mul(x, y), x * y);
    // ((1 - 2^-24) 2^64)^2 = 2^128 (1 - 2^-23 + 2^-48) is below f32::MAX: finite.
    assert_eq!(mul(x, x), x * x);
    assert_eq!(mul(x, x), f32::MAX - two(104));
    // The threshold itself, f32::MAX + 2^103 = 2^128 (1 - 2^-25), is a tie that
    // goes to the even 2^128: infinity. Just below it: f32::MAX.
    assert_eq!(fma(f32::MAX, 1.0, two(103)), f32::INFINITY);
    assert_eq!(
        fma(f32::MAX, 1.0, two(103)),
        f32::MAX.mul_add(1.0, two(103))
    );
    assert_eq!(fma(f32::MAX, 1.0, two(102)), f32::MAX);
    assert_eq!(
        fma(f32::MAX, 1.0, two(102)),
        f32::MAX.mul_add(1.0, two(102))
    );
}

/// IEEE special cases spelled out (the proptests cover them too, but a failure
/// here is easier to read).
#[test]
fn ieee_special_cases() {
    let nan = |x: f32| x.is_nan();
    let inf = f32::INFINITY;
    assert!(nan(sqrt(-1.0)));
    assert!(nan(sqrt(-f32::from_bits(1))));
    assert_eq!(sqrt(-0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(sqrt(inf), inf);
    assert!(nan(add(inf, -inf)));
    assert!(nan(mul(0.0, inf)));
    assert!(nan(div(0.0, 0.0)));
    assert!(nan(div(inf, inf)));
    assert!(nan(fma(0.0, inf, 1.0)));
    assert!(nan(fma(inf, 1.0, -inf)));
    assert_eq!(div(1.0, -0.0), -inf);
    assert_eq!(add(-0.0, -0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(add(0.0, -0.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(add(1.5, -1.5).to_bits(), 0.0f32.to_bits());
    assert_eq!(mul(-0.0, 3.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(fma(-0.0, 1.0, -0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(fma(2.0, 3.0, -6.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(fma(-2.0, 3.0, 6.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(mul(f32::MAX, 2.0), inf);
    assert_eq!(mul(f32::MIN, 2.0), -inf);
    assert_eq!(mul(f32::from_bits(1), 0.5).to_bits(), 0.0f32.to_bits()); // tie to even: 0
    assert_eq!(mul(f32::from_bits(3), 0.5), f32::from_bits(2)); // 1.5 -> 2 (even)
    assert_eq!(mul(-f32::from_bits(1), 0.5).to_bits(), (-0.0f32).to_bits());
    assert_eq!(from_f64(1e-46), 0.0);
    assert_eq!(from_f64(1e39), inf);
    assert_eq!(from_f64(f64::MAX), inf);
}

/// The NaN bits the emulation gives, as x86-64's SSE/AVX/FMA units and
/// oneMKL's `vsSqrt` give them (see the `binary32` module docs).
#[test]
fn nan_bits_follow_x86_and_onemkl() {
    use adadelta_reference::binary32::{add, div, fma, mul, neg, sqrt, DEFAULT_NAN, MKL_SQRT_NAN};
    let bits = |x: f32| x.to_bits();
    let f = f32::from_bits;
    let (a, b, c) = (f(0x7fc1_1111), f(0xffc2_2222), f(0x7fc3_3333));
    let snan = f(0xff81_2345);
    // The first NaN operand, quieted, sign and payload kept.
    assert_eq!(bits(add(a, b)), 0x7fc1_1111);
    assert_eq!(bits(add(b, a)), 0xffc2_2222);
    assert_eq!(bits(mul(1.0, b)), 0xffc2_2222);
    assert_eq!(bits(div(b, a)), 0xffc2_2222);
    assert_eq!(bits(div(snan, a)), 0xffc1_2345);
    assert_eq!(bits(fma(2.0, b, c)), 0xffc2_2222);
    assert_eq!(bits(fma(0.0, f32::INFINITY, c)), 0x7fc3_3333); // NaN operand beats 0 * inf
    assert_eq!(bits(sqrt(snan)), 0xffc1_2345);
    // Invalid operations without a NaN operand: x86's default NaN...
    let inf = f32::INFINITY;
    for x in [
        mul(0.0, inf),
        add(inf, -inf),
        div(0.0, 0.0),
        div(-inf, inf),
        fma(0.0, inf, 1.0),
        fma(inf, 1.0, -inf),
    ] {
        assert_eq!(bits(x), DEFAULT_NAN);
    }
    // ...and oneMKL's for a square root below zero.
    for x in [-1.0, -inf, -f32::from_bits(1)] {
        assert_eq!(bits(sqrt(x)), MKL_SQRT_NAN);
    }
    assert_eq!(bits(sqrt(-0.0)), 0x8000_0000);
    // neg flips the sign bit and leaves a signalling NaN signalling.
    assert_eq!(bits(neg(snan)), 0x7f81_2345);
    assert_eq!(bits(neg(a)), 0xffc1_1111);
}
