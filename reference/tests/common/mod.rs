//! Shared helpers of the integration tests: `f32` strategies that reach the
//! corners of binary32, and bitwise comparison with all NaNs equal.
#![allow(dead_code)]

use proptest::prelude::*;

/// Values at the edges of binary32: signed zeros, subnormals, the normal
/// boundaries, the largest finite values, infinities and NaN.
pub const SPECIALS: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    f32::from_bits(1),           // smallest subnormal 2^-149
    f32::from_bits(0x8000_0001), // -2^-149
    f32::from_bits(0x0040_0000), // 2^-127, a subnormal
    f32::from_bits(0x007f_ffff), // largest subnormal
    f32::from_bits(0x807f_ffff),
    f32::MIN_POSITIVE, // 2^-126
    -f32::MIN_POSITIVE,
    f32::EPSILON,
    1.0 + f32::EPSILON,
    1.0 - f32::EPSILON / 2.0,
    f32::MAX,
    f32::MIN,
    f32::from_bits(0x5f80_0000), // 2^64: squares to 2^128, overflows
    f32::from_bits(0xdf80_0000),
    f32::from_bits(0x5f7f_ffff), // (1 - 2^-24) 2^64: squares just below f32::MAX
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// Any bit pattern (NaNs, infinities, subnormals and all).
pub fn any_bits() -> impl Strategy<Value = f32> {
    any::<u32>().prop_map(f32::from_bits)
}

/// A subnormal (or zero) of either sign.
pub fn subnormal() -> impl Strategy<Value = f32> {
    (0u32..0x0080_0000, any::<bool>()).prop_map(|(m, s)| f32::from_bits(m | (u32::from(s) << 31)))
}

/// A finite value with a biased exponent in `exps` (1..=254 are normal).
pub fn with_exponent(exps: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = f32> {
    (exps, 0u32..0x0080_0000, any::<bool>())
        .prop_map(|(e, m, s)| f32::from_bits((u32::from(s) << 31) | (e << 23) | m))
}

/// A mix of everything: specials, random bits, subnormals, tiny, huge and
/// ordinary values of both signs.
pub fn interesting_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        2 => prop::sample::select(SPECIALS),
        3 => any_bits(),
        1 => subnormal(),
        1 => with_exponent(1..=40),    // tiny normals: products underflow
        1 => with_exponent(200..=254), // huge: products overflow
        4 => -10.0f32..10.0,
        2 => with_exponent(100..=140), // around 1e-8 .. 1e4
    ]
}

/// Bitwise equality, all NaNs equal: these tests hold the reference's single
/// ops against native Rust `f32` arithmetic, whose NaN sign and payload Rust
/// does not promise (RFC 3514). The reference's NaN bits are checked against
/// x86's rules in `binary32_ops.rs` (`nan_bits_follow_x86_and_onemkl`) and
/// against PyTorch in difftest's `nan_bits.rs`.
pub fn same(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// `same`, as a proptest assertion with a readable message.
#[macro_export]
macro_rules! prop_assert_same {
    ($a:expr, $b:expr, $($ctx:tt)*) => {{
        let (a, b): (f32, f32) = ($a, $b);
        proptest::prop_assert!(
            $crate::common::same(a, b),
            "{:e} ({:#010x}) != {:e} ({:#010x}): {}",
            a, a.to_bits(), b, b.to_bits(), format!($($ctx)*)
        );
    }};
}
