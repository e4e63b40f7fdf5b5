//! Shared helpers of the integration tests: strategies that reach the
//! corners of a format (generic over [`Format`], with `f32` shorthands), and
//! bitwise comparison (with all NaNs equal, or NaN bits included).
#![allow(dead_code)]

use adadelta_reference::ieee::Format;
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

/// Any bit pattern of `F` (NaNs, infinities, subnormals and all).
pub fn any_bits_of<F: Format>() -> impl Strategy<Value = F> {
    let mask = u64::MAX >> (64 - F::BITS);
    any::<u64>().prop_map(move |b| F::from_bits(b & mask))
}

/// A subnormal (or zero) `F` of either sign.
pub fn subnormal_of<F: Format>() -> impl Strategy<Value = F> {
    (0..=F::FRACTION_MASK, any::<bool>())
        .prop_map(|(m, s)| F::from_bits(m | if s { F::SIGN_BIT } else { 0 }))
}

/// A finite `F` with a biased exponent in `exps` (1 to `2^EXP_BITS - 2` are
/// normal, 0 is subnormal) and a random fraction and sign.
pub fn with_exponent_of<F: Format>(
    exps: std::ops::RangeInclusive<u64>,
) -> impl Strategy<Value = F> {
    (exps, 0..=F::FRACTION_MASK, any::<bool>()).prop_map(|(e, m, s)| {
        F::from_bits(if s { F::SIGN_BIT } else { 0 } | (e << (F::PREC - 1)) | m)
    })
}

/// A NaN `F` of either sign, quiet or signalling, with a random payload.
pub fn nan_of<F: Format>() -> impl Strategy<Value = F> {
    (1..=F::FRACTION_MASK, any::<bool>())
        .prop_map(|(m, s)| F::from_bits(if s { F::SIGN_BIT } else { 0 } | F::INF_BITS | m))
}

/// Any bit pattern (NaNs, infinities, subnormals and all).
pub fn any_bits() -> impl Strategy<Value = f32> {
    any_bits_of()
}

/// A subnormal (or zero) of either sign.
pub fn subnormal() -> impl Strategy<Value = f32> {
    subnormal_of()
}

/// A finite value with a biased exponent in `exps` (1..=254 are normal).
pub fn with_exponent(exps: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = f32> {
    with_exponent_of(u64::from(*exps.start())..=u64::from(*exps.end()))
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

/// Values at the edges of binary64: signed zeros, subnormals, the normal
/// boundaries, the largest finite values, infinities, and NaNs of both signs,
/// quiet and signalling, with and without payload.
pub const SPECIALS_F64: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    f64::from_bits(1),                     // smallest subnormal 2^-1074
    f64::from_bits(0x8000_0000_0000_0001), // -2^-1074
    f64::from_bits(0x0008_0000_0000_0000), // 2^-1023, a subnormal
    f64::from_bits(0x000f_ffff_ffff_ffff), // largest subnormal
    f64::from_bits(0x800f_ffff_ffff_ffff),
    f64::MIN_POSITIVE, // 2^-1022
    -f64::MIN_POSITIVE,
    f64::EPSILON,
    1.0 + f64::EPSILON,
    1.0 - f64::EPSILON / 2.0,
    f64::MAX,
    f64::MIN,
    f64::from_bits(0x5ff0_0000_0000_0000), // 2^512: squares to 2^1024, overflows
    f64::from_bits(0xdff0_0000_0000_0000),
    f64::from_bits(0x5fef_ffff_ffff_ffff), // (1 - 2^-53) 2^512: squares just below f64::MAX
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::from_bits(0xfff8_0000_0000_0000), // x86's default NaN
    f64::from_bits(0x7ff0_0000_0000_0001), // signalling, payload 1
    f64::from_bits(0xfff4_5678_9abc_def0), // signalling, negative
    f64::from_bits(0x7ffc_0000_dead_beef), // quiet with payload
];

/// A mix of everything in binary64: specials, random bits, NaNs with
/// payloads, subnormals, tiny, huge and ordinary values of both signs.
pub fn interesting_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => prop::sample::select(SPECIALS_F64),
        3 => any_bits_of::<f64>(),
        1 => nan_of::<f64>(),
        1 => subnormal_of::<f64>(),
        1 => with_exponent_of::<f64>(1..=80),       // tiny normals: products underflow
        1 => with_exponent_of::<f64>(1950..=2046),  // huge: products overflow
        4 => -10.0f64..10.0,
        2 => with_exponent_of::<f64>(900..=1150),   // around 1e-37 .. 1e38
    ]
}

/// Bitwise equality, NaN sign and payload included.
pub fn same_bits<F: Format>(a: F, b: F) -> bool {
    a.to_bits() == b.to_bits()
}

/// `same_bits` on `f64`, as a proptest assertion with a readable message.
#[macro_export]
macro_rules! prop_assert_bits {
    ($a:expr, $b:expr, $($ctx:tt)*) => {{
        let (a, b): (f64, f64) = ($a, $b);
        proptest::prop_assert!(
            $crate::common::same_bits(a, b),
            "{:e} ({:#018x}) != {:e} ({:#018x}): {}",
            a, a.to_bits(), b, b.to_bits(), format!($($ctx)*)
        );
    }};
}

/// Native IEEE arithmetic of a Rust float type: what `native_step` needs
/// beyond the operators.
pub trait Native:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::MulAssign
    + std::ops::DivAssign
{
    /// A Python float as ATen converts it to the dtype (`as`).
    fn from_f64(x: f64) -> Self;
    /// Correctly rounded fused multiply-add.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
}

impl Native for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Native for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// Adadelta on one element, written directly in native arithmetic of `T`,
/// following the recipe of the notes (§4): scalars converted from `f64`
/// with `as` (for `f32`; the Python floats themselves for `f64`),
/// `mul_add` where PyTorch fuses, `*` then `+` where it does not.
pub fn native_step<T: Native>(
    fused: bool,
    h: &adadelta_reference::Hyperparams,
    p: &mut T,
    g: T,
    v: &mut T,
    u: &mut T,
) {
    let rho = T::from_f64(h.rho);
    let c = T::from_f64(1.0 - h.rho);
    let eps = T::from_f64(h.eps);
    let nlr = T::from_f64(-h.lr);
    let wd = T::from_f64(h.weight_decay);
    let mut g = if h.maximize { -g } else { g };
    if h.weight_decay != 0.0 {
        g = if fused { p.mul_add(wd, g) } else { g + wd * *p };
    }
    *v *= rho;
    *v = if fused {
        (c * g).mul_add(g, *v)
    } else {
        *v + (c * g) * g
    };
    let std = (*v + eps).sqrt();
    let mut d = (*u + eps).sqrt();
    d /= std;
    d *= g;
    *u *= rho;
    *u = if fused {
        (c * d).mul_add(d, *u)
    } else {
        *u + (c * d) * d
    };
    *p = if fused {
        d.mul_add(nlr, *p)
    } else {
        *p + nlr * d
    };
}
