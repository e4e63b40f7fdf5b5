//! Each MPFR-emulated binary64 op agrees **bit for bit, NaN sign and payload
//! included** with the hardware's IEEE binary64 op on x86-64 (SSE2 `addsd`,
//! `subsd`, `mulsd`, `divsd`, `sqrtsd`, `cvtsd2ss`/`cvtss2sd`, the FMA unit's
//! `vfmadd213sd`; no flush-to-zero), on arbitrary bit patterns and on operands
//! built to land on the hard cases: subnormal results, double-rounding traps,
//! overflow. The one deliberate difference is `sqrt(x < 0)`, which is
//! oneMKL's NaN rather than `sqrtsd`'s default NaN.
//!
//! The native ops are `#[inline(never)]` functions of their operands in
//! order, so that the compiled instruction sees them in that order (its first
//! source is the first argument register): the NaN that wins is then the
//! architecture's rule, not a compiler choice. This file only builds on
//! x86-64: aarch64's NaN rules differ.
#![cfg(target_arch = "x86_64")]

mod common;

use adadelta_reference::binary64::{
    add, div, fma, from_f32, mul, neg, sqrt, sub, DEFAULT_NAN, MKL_SQRT_NAN,
};
use adadelta_reference::ieee::{self, Format};
use common::{any_bits_of, interesting_f64, nan_of, same_bits, subnormal_of, with_exponent_of};
use proptest::prelude::*;
use std::ops::RangeInclusive;

#[inline(never)]
fn native_add(x: f64, y: f64) -> f64 {
    x + y
}

#[inline(never)]
fn native_sub(x: f64, y: f64) -> f64 {
    x - y
}

#[inline(never)]
fn native_mul(x: f64, y: f64) -> f64 {
    x * y
}

#[inline(never)]
fn native_div(x: f64, y: f64) -> f64 {
    x / y
}

#[inline(never)]
fn native_neg(x: f64) -> f64 {
    -x
}

#[inline(never)]
fn native_to_f32(x: f64) -> f32 {
    x as f32
}

#[inline(never)]
fn native_to_f64(x: f32) -> f64 {
    f64::from(x)
}

/// `sqrtsd`, except for `x < 0`, where PyTorch's `torch.sqrt` (oneMKL
/// `vdSqrt`) gives [`MKL_SQRT_NAN`] and `sqrtsd` the default NaN. (The
/// constant goes through `black_box`: LLVM, for which NaN bits are
/// unspecified, otherwise folds the branch into the `sqrtsd`.)
#[inline(never)]
fn torch_sqrt(x: f64) -> f64 {
    if x < 0.0 {
        std::hint::black_box(f64::from_bits(MKL_SQRT_NAN))
    } else {
        x.sqrt()
    }
}

/// `_mm_fmadd_sd(r1, r2, r3)`, which LLVM compiles here (arguments in
/// `xmm0`..`xmm2`, result in `xmm0`) to `vfmadd213sd xmm0, xmm1, xmm2`:
/// `xmm0 = xmm1 * xmm0 + xmm2`, that is `r2 * r1 + r3` (LLVM commutes the
/// product to fit the form).
#[target_feature(enable = "fma")]
#[inline(never)]
fn vfmadd213sd(r1: f64, r2: f64, r3: f64) -> f64 {
    use std::arch::x86_64::{_mm_cvtsd_f64, _mm_fmadd_sd, _mm_set_sd};
    _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(r1), _mm_set_sd(r2), _mm_set_sd(r3)))
}

/// The hardware FMA computing the formula `a * b + c` (as
/// `vfmadd213sd` of `b`, `a`, `c`: `a * b + c` with `a` in the product's first
/// place); panics if the CPU has no FMA.
///
/// The FMA unit's NaN precedence is the order of the operands in the
/// formula of the instruction's form, not their registers (measured on this
/// project's AMD EPYC for all of `vfmadd132sd`, `213`, `231`): the first NaN
/// of `a`, `b`, `c` here. `nan_bits_follow_x86_and_onemkl_in_binary64`
/// checks that this function still gives that order.
fn fma_unit(a: f64, b: f64, c: f64) -> f64 {
    assert!(
        is_x86_feature_detected!("fma"),
        "this test needs a CPU with FMA"
    );
    // SAFETY: `vfmadd213sd` only requires the `fma` target feature, which the
    // CPU was just checked to have.
    unsafe { vfmadd213sd(b, a, c) }
}

/// Unbiased exponent `e` of a normal `f64` in `[2^e, 2^(e+1))` as a biased
/// exponent field, clamped to the normal range.
fn biased(e: i64) -> u64 {
    (e + 1023).clamp(1, 2046) as u64
}

/// A normal `f64` with unbiased exponent `e` (clamped to the normal range),
/// fraction `m` and sign `s`.
fn normal(e: i64, m: u64, s: bool) -> f64 {
    f64::from_bits(u64::from(s) << 63 | biased(e) << 52 | (m & <f64 as Format>::FRACTION_MASK))
}

/// Two normal factors whose unbiased exponents add up to a value in `sum`
/// (so `|x * y|` is in `[2^sum, 2^(sum+2))`, up to clamping).
fn factors(sum: RangeInclusive<i64>) -> impl Strategy<Value = (f64, f64)> {
    (
        sum,
        -1022i64..=0,
        any::<u64>(),
        any::<u64>(),
        any::<(bool, bool)>(),
    )
        .prop_map(|(s, ex, mx, my, (sx, sy))| (normal(ex, mx, sx), normal(s - ex, my, sy)))
}

/// Per-op cases: each case is a handful of 53-bit MPFR ops (about 1 us).
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(200_000)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_matches_addsd(x in interesting_f64(), y in interesting_f64()) {
        prop_assert_bits!(add(x, y), native_add(x, y), "{x:e} + {y:e}");
    }

    #[test]
    fn add_of_any_bits_matches_addsd(x in any_bits_of::<f64>(), y in any_bits_of::<f64>()) {
        prop_assert_bits!(add(x, y), native_add(x, y), "{x:e} + {y:e}");
    }

    /// Nearby small exponents: cancellation, exact zeros (and their sign) and
    /// subnormal sums.
    #[test]
    fn add_with_cancellation_into_the_subnormals_matches_addsd(
        x in with_exponent_of::<f64>(0..=60), y in with_exponent_of::<f64>(0..=60),
    ) {
        prop_assert_bits!(add(x, y), native_add(x, y), "{x:e} + {y:e}");
        prop_assert_bits!(add(x, -x), native_add(x, -x), "{x:e} - itself");
    }

    /// `sub` keeps the sign of a NaN `y` (it is not `add(x, -y)`).
    #[test]
    fn sub_matches_subsd(x in interesting_f64(), y in interesting_f64()) {
        prop_assert_bits!(sub(x, y), native_sub(x, y), "{x:e} - {y:e}");
    }

    #[test]
    fn mul_matches_mulsd(x in interesting_f64(), y in interesting_f64()) {
        prop_assert_bits!(mul(x, y), native_mul(x, y), "{x:e} * {y:e}");
    }

    #[test]
    fn mul_of_any_bits_matches_mulsd(x in any_bits_of::<f64>(), y in any_bits_of::<f64>()) {
        prop_assert_bits!(mul(x, y), native_mul(x, y), "{x:e} * {y:e}");
    }

    /// Products from `2^-1080` to `2^-1014`: subnormal and underflowing
    /// results, where a 53-bit rounding followed by a subnormal rounding
    /// would double-round.
    #[test]
    fn mul_into_the_subnormals_matches_mulsd((x, y) in factors(-1080..=-1016)) {
        prop_assert_bits!(mul(x, y), native_mul(x, y), "{x:e} * {y:e}");
    }

    /// Products around `2^1024`: the overflow boundary.
    #[test]
    fn mul_near_overflow_matches_mulsd((x, y) in factors(1020..=1024)) {
        prop_assert_bits!(mul(x, y), native_mul(x, y), "{x:e} * {y:e}");
    }

    #[test]
    fn div_matches_divsd(x in interesting_f64(), y in interesting_f64()) {
        prop_assert_bits!(div(x, y), native_div(x, y), "{x:e} / {y:e}");
    }

    #[test]
    fn div_of_any_bits_matches_divsd(x in any_bits_of::<f64>(), y in any_bits_of::<f64>()) {
        prop_assert_bits!(div(x, y), native_div(x, y), "{x:e} / {y:e}");
    }

    /// Quotients in the subnormal range and near the overflow threshold.
    #[test]
    fn div_into_the_subnormals_and_near_overflow_matches_divsd(
        x in with_exponent_of::<f64>(1..=120), y in with_exponent_of::<f64>(1000..=1100),
        u in with_exponent_of::<f64>(1950..=2046), w in with_exponent_of::<f64>(900..=1030),
    ) {
        prop_assert_bits!(div(x, y), native_div(x, y), "{x:e} / {y:e}");
        prop_assert_bits!(div(u, w), native_div(u, w), "{u:e} / {w:e}");
    }

    #[test]
    fn sqrt_matches_sqrtsd_with_onemkls_nan(x in interesting_f64()) {
        prop_assert_bits!(sqrt(x), torch_sqrt(x), "sqrt({x:e})");
    }

    #[test]
    fn fma_matches_the_fma_unit(x in interesting_f64(), y in interesting_f64(), z in interesting_f64()) {
        prop_assert_bits!(fma(x, y, z), fma_unit(x, y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    #[test]
    fn fma_of_any_bits_matches_the_fma_unit(
        x in any_bits_of::<f64>(), y in any_bits_of::<f64>(), z in any_bits_of::<f64>(),
    ) {
        prop_assert_bits!(fma(x, y, z), fma_unit(x, y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// Rust's `f64::mul_add(x, y, z)` calls libm's `fma`, which glibc
    /// dispatches on a CPU with FMA to `vfmadd213sd xmm0, xmm1, xmm2` with `x`
    /// in `xmm0`: the formula `y * x + z`, so the hardware FMA of `y`, `x`,
    /// `z`, bit for bit, NaNs included (`y`'s NaN before `x`'s; a software
    /// fma would give `0 * inf + NaN` the default NaN instead).
    #[test]
    fn f64_mul_add_is_the_fma_unit_with_the_product_commuted(
        x in interesting_f64(), y in interesting_f64(), z in interesting_f64(),
    ) {
        prop_assert_bits!(x.mul_add(y, z), fma_unit(y, x, z), "fma({x:e}, {y:e}, {z:e})");
        prop_assert_bits!(x.mul_add(y, z), fma(y, x, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// `z` close to `-x*y`: massive cancellation, the exact residual of the
    /// product, zeros and their signs, subnormal results.
    #[test]
    fn fma_with_cancellation_matches_the_fma_unit(x in interesting_f64(), y in interesting_f64(), k in -3i64..=3) {
        let p = native_mul(x, y);
        let z = -f64::from_bits(p.to_bits().wrapping_add_signed(k));
        prop_assert_bits!(fma(x, y, z), fma_unit(x, y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// Products from `2^-1130` to `2^-1016` plus subnormal addends: subnormal
    /// fma results, products far below the grid.
    #[test]
    fn fma_into_the_subnormals_matches_the_fma_unit(
        (x, y) in factors(-1130..=-1016), z in subnormal_of::<f64>(),
    ) {
        prop_assert_bits!(fma(x, y, z), fma_unit(x, y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    /// Double-rounding traps by construction: `z = k * 2^-1074` plus or minus
    /// `x * y = 2^-1075 (1 + j 2^-52)`, an exact value just off the midpoint
    /// `(k ± 1/2) 2^-1074` of the subnormal grid, by `j 2^-1127`. Rounded to 53
    /// bits with unbounded exponent it lands exactly on the midpoint whenever
    /// `j 2^-52` is below half a 53-bit ulp of `2k ± 1` (every `k` from
    /// `2^10` on: nearly all drawn here), where a second, ties-to-even rounding
    /// goes to the even neighbour whichever side the exact value is on; only
    /// the ternary value of the first rounding gets both parities right.
    #[test]
    fn fma_just_off_a_subnormal_midpoint_matches_the_fma_unit(
        k in 0u64..(1 << 52), j in 1u64..1024, sx in any::<bool>(), sz in any::<bool>(),
    ) {
        let x = normal(-538, j, sx); // (1 + j 2^-52) 2^-538
        let y = normal(-537, 0, false); // 2^-537
        let z = f64::from_bits(k | u64::from(sz) << 63);
        prop_assert_bits!(fma(x, y, z), fma_unit(x, y, z), "fma({x:e}, {y:e}, {z:e})");
    }

    #[test]
    fn neg_flips_the_sign_bit_as_xorpd(x in any_bits_of::<f64>()) {
        prop_assert_bits!(neg(x), native_neg(x), "-{x:e}");
    }

    /// `f64 -> f32` rounds to nearest-even with subnormal results and
    /// overflow to infinity, and quiets a NaN keeping its sign and leading
    /// payload bits, as `cvtsd2ss`.
    #[test]
    fn f64_to_f32_matches_cvtsd2ss(
        x in prop_oneof![interesting_f64(), -1e-37f64..1e-37, 3e38f64..3.5e38, nan_of::<f64>()],
    ) {
        let (r, n): (f32, f32) = (ieee::from_f64(x), native_to_f32(x));
        prop_assert!(same_bits(r, n), "f32({x:e}): {:#010x} != {:#010x}", r.to_bits(), n.to_bits());
    }

    /// `f32 -> f64` is exact, and quiets a NaN keeping its sign and payload,
    /// as `cvtss2sd`; `f64 -> f64` is no conversion at all.
    #[test]
    fn f32_to_f64_matches_cvtss2sd(bits in any::<u32>(), y in any_bits_of::<f64>()) {
        let x = f32::from_bits(bits);
        prop_assert_bits!(from_f32(x), native_to_f64(x), "f64({x:e})");
        prop_assert_bits!(ieee::from_f64::<f64>(y), y, "identity");
    }
}

/// `sqrt` on 4.2 million inputs: every 1021st value of the top 32 bits
/// (every sign and exponent, NaNs and infinities included), with low bits
/// mixed from the top ones.
#[test]
fn sqrt_strided_sweep_matches_sqrtsd_with_onemkls_nan() {
    for hi in (0..=u32::MAX).step_by(1021) {
        let lo = hi.wrapping_mul(0x9e37_79b9) ^ (hi >> 7);
        let x = f64::from_bits(u64::from(hi) << 32 | u64::from(lo));
        let (r, n) = (sqrt(x), torch_sqrt(x));
        assert!(
            same_bits(r, n),
            "sqrt({x:e}) ({:#018x}): {:#018x} != {:#018x}",
            x.to_bits(),
            r.to_bits(),
            n.to_bits()
        );
    }
}

/// Hand-made double-rounding traps and overflow thresholds in binary64: the
/// exact result, rounded to 53 bits with unbounded exponent, lands exactly on
/// a midpoint of the subnormal grid (or on the overflow threshold), and a
/// second, ties-to-even rounding would go the wrong way. Each is checked
/// against the expected value worked out by hand and against the hardware.
#[test]
fn double_rounding_traps_in_binary64() {
    let two = |e: i32| 2f64.powi(e);
    let sub = f64::from_bits; // k * 2^-1074
    let one_plus = 1.0 + f64::EPSILON; // 1 + 2^-52
    let one_minus = 1.0 - f64::EPSILON / 2.0; // 1 - 2^-53

    // (1 + 2^-52)(1 - 2^-53) 2^-1075 = 2^-1075 (1 + 2^-53 - 2^-105): 53-bit
    // rounding gives exactly 2^-1075 (the midpoint between 0 and 2^-1074, a
    // tie that would go to 0), but the exact value is above it: 2^-1074.
    let (x, y) = (one_plus * two(-537), one_minus * two(-538));
    assert_eq!(mul(x, y).to_bits(), 1);
    assert_eq!(mul(-x, y).to_bits(), 0x8000_0000_0000_0001);
    assert_eq!(fma(x, y, 0.0).to_bits(), 1);
    for (a, b) in [(x, y), (-x, y)] {
        assert!(same_bits(mul(a, b), native_mul(a, b)));
        assert!(same_bits(fma(a, b, 0.0), fma_unit(a, b, 0.0)));
    }

    // 2^-1021 / Y with Y = (2^54 - 1) / 9, an odd 51-bit integer: the quotient
    // is 9 * 2^-1075 (1 + 1/(2^54 - 1)), which rounds at 53 bits to exactly the
    // midpoint 4.5 * 2^-1074 (a tie that would go to the even 4 * 2^-1074),
    // but the exact value is above it: 5 * 2^-1074.
    let y = ((1u64 << 54) - 1) / 9;
    assert_eq!(9 * y, (1 << 54) - 1);
    let (x, y) = (two(-1021), y as f64);
    assert_eq!(div(x, y), sub(5));
    assert!(same_bits(div(x, y), native_div(x, y)));

    // fma(x, y, z) = k 2^-1074 + 2^-1075 (1 + 2^-52) with k = 2^40 even: the
    // 53-bit rounding is the midpoint (k + 1/2) 2^-1074 (ties-to-even: k), the
    // exact value above it: k + 1. And k 2^-1074 - 2^-1075 (1 + 2^-52) with
    // k = 2^40 + 2: midpoint (k - 1/2), ties-to-even gives k, exact below:
    // k - 1 (odd).
    let (x, y) = (one_plus * two(-538), two(-537));
    let k = 1u64 << 40;
    assert_eq!(fma(x, y, sub(k)), sub(k + 1));
    assert_eq!(fma(-x, y, sub(k + 2)), sub(k + 1));
    assert!(same_bits(fma(x, y, sub(k)), fma_unit(x, y, sub(k))));
    assert!(same_bits(
        fma(-x, y, sub(k + 2)),
        fma_unit(-x, y, sub(k + 2))
    ));

    // Overflow: (1 - 2^-53) 2^512 * (1 + 2^-52) 2^512 = 2^1024 (1 + 2^-53 -
    // 2^-105), above the threshold 2^1024 (1 - 2^-54): infinity.
    let (x, y) = (one_minus * two(512), one_plus * two(512));
    assert_eq!(mul(x, y), f64::INFINITY);
    assert!(same_bits(mul(x, y), native_mul(x, y)));
    // ((1 - 2^-53) 2^512)^2 = 2^1024 (1 - 2^-52 + 2^-106): f64::MAX - 2^971.
    assert_eq!(mul(x, x), f64::MAX - two(971));
    assert!(same_bits(mul(x, x), native_mul(x, x)));
    // The threshold itself, f64::MAX + 2^970 = 2^1024 (1 - 2^-54), is a tie
    // that goes to the even 2^1024: infinity. Just below it: f64::MAX.
    for (z, expected) in [(two(970), f64::INFINITY), (two(969), f64::MAX)] {
        assert_eq!(fma(f64::MAX, 1.0, z), expected);
        assert_eq!(add(f64::MAX, z), expected);
        assert!(same_bits(fma(f64::MAX, 1.0, z), fma_unit(f64::MAX, 1.0, z)));
        assert!(same_bits(add(f64::MAX, z), native_add(f64::MAX, z)));
    }
}

/// The format constants derived from `BITS` and `PREC` are Rust's.
#[test]
fn format_constants_are_those_of_the_std_types() {
    assert_eq!(<f64 as Format>::PREC, f64::MANTISSA_DIGITS);
    assert_eq!(<f32 as Format>::PREC, f32::MANTISSA_DIGITS);
    // Rust's MIN_EXP/MAX_EXP use MPFR's convention (x = m 2^e, 0.5 <= m < 1).
    assert_eq!(<f64 as Format>::NORMAL_EXP_MIN, f64::MIN_EXP);
    assert_eq!(<f64 as Format>::EXP_MAX, f64::MAX_EXP);
    assert_eq!(<f32 as Format>::NORMAL_EXP_MIN, f32::MIN_EXP);
    assert_eq!(<f32 as Format>::EXP_MAX, f32::MAX_EXP);
    assert_eq!(<f64 as Format>::INF_BITS, f64::INFINITY.to_bits());
    assert_eq!(
        <f32 as Format>::INF_BITS,
        u64::from(f32::INFINITY.to_bits())
    );
    assert_eq!(
        <f64 as Format>::QUIET_BIT,
        f64::NAN.to_bits() & !f64::INFINITY.to_bits()
    );
}

/// The NaN bits of binary64, as x86-64's SSE2/FMA units and oneMKL's
/// `vdSqrt` give them (see the `binary64` module docs), spelled out.
#[test]
fn nan_bits_follow_x86_and_onemkl_in_binary64() {
    let bits = |x: f64| x.to_bits();
    let f = f64::from_bits;
    let (a, b, c) = (
        f(0x7ff8_1111_1111_1111),
        f(0xfff8_2222_2222_2222),
        f(0x7ff8_3333_3333_3333),
    );
    let snan = f(0xfff1_2345_6789_abcd);
    let inf = f64::INFINITY;
    // The first NaN operand, quieted (bit 51), sign and payload kept.
    assert_eq!(bits(add(a, b)), 0x7ff8_1111_1111_1111);
    assert_eq!(bits(add(b, a)), 0xfff8_2222_2222_2222);
    assert_eq!(bits(sub(1.0, b)), 0xfff8_2222_2222_2222); // no sign flip
    assert_eq!(bits(mul(1.0, b)), 0xfff8_2222_2222_2222);
    assert_eq!(bits(div(snan, a)), 0xfff9_2345_6789_abcd);
    assert_eq!(bits(fma(2.0, b, c)), 0xfff8_2222_2222_2222);
    assert_eq!(bits(fma(0.0, inf, c)), 0x7ff8_3333_3333_3333); // NaN operand beats 0 * inf
                                                               // The FMA unit, in formula order, whichever two or three are NaN (and
                                                               // signalling or not): the reference's order.
    let (sa, sb) = (f(0x7ff0_0000_0000_0001), f(0xfff0_0000_0000_0002));
    for (x, y, z) in [
        (a, b, c),
        (sa, b, c),
        (a, sb, c),
        (1.0, sb, c),
        (sa, 1.0, c),
        (a, b, 1.0),
    ] {
        assert_eq!(bits(fma_unit(x, y, z)), bits(fma(x, y, z)));
        assert!(fma(x, y, z).is_nan());
    }
    assert_eq!(bits(fma_unit(b, a, c)), 0xfff8_2222_2222_2222);
    assert_eq!(bits(sqrt(snan)), 0xfff9_2345_6789_abcd);
    // Invalid operations without a NaN operand: x86's default NaN...
    for x in [
        mul(0.0, inf),
        add(inf, -inf),
        sub(inf, inf),
        div(0.0, 0.0),
        div(-inf, inf),
        fma(0.0, inf, 1.0),
        fma(inf, 1.0, -inf),
    ] {
        assert_eq!(bits(x), DEFAULT_NAN);
    }
    assert_eq!(DEFAULT_NAN, 0xfff8_0000_0000_0000);
    // ...and oneMKL's for a square root below zero; -0, +0, +inf are numbers.
    for x in [-1.0, -inf, -f(1), -f64::MAX] {
        assert_eq!(bits(sqrt(x)), MKL_SQRT_NAN);
    }
    assert_eq!(MKL_SQRT_NAN, 0x7ff8_0000_0000_0000);
    assert_eq!(bits(sqrt(-0.0)), 0x8000_0000_0000_0000);
    assert_eq!(bits(sqrt(0.0)), 0);
    assert_eq!(sqrt(inf), inf);
    // neg flips the sign bit and leaves a signalling NaN signalling.
    assert_eq!(bits(neg(snan)), 0x7ff1_2345_6789_abcd);
    assert_eq!(bits(neg(a)), 0xfff8_1111_1111_1111);
    // Conversions quiet; the identity does not.
    assert_eq!(
        bits(from_f32(f32::from_bits(0xff81_2345))),
        0xfff8_2468_a000_0000
    );
    assert_eq!(bits(ieee::from_f64::<f64>(snan)), bits(snan));
}
