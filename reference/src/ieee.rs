//! IEEE 754 binary arithmetic emulated through MPFR, written once for every
//! [`Format`] (binary32 = `f32`, binary64 = `f64`), and PyTorch's CPU
//! kernels of Adadelta's ATen ops expressed in it ([`PytorchCpu`]).
//!
//! [`crate::binary32`] and [`crate::binary64`] are this module at one format.
//!
//! # A format
//!
//! A [`Format`] is described by its storage width `BITS` and its precision
//! `PREC` (significand bits, the hidden bit included): 32/24 for binary32,
//! 64/53 for binary64 (and 16/11 for binary16, 16/8 for bfloat16, which fit
//! the same trait). Everything else is derived from those two:
//! the exponent field has `BITS − PREC` bits, the bias is
//! `2^(BITS − PREC − 1) − 1`, and in **MPFR's exponent convention**
//! (`x = m·2^e` with `0.5 ≤ |m| < 1`, so `e = floor(log2|x|) + 1`):
//!
//! * the smallest normal `2^(1 − bias)` has exponent
//!   [`Format::NORMAL_EXP_MIN`] `= 2 − bias` (−125 for binary32, −1021 for
//!   binary64), the smallest subnormal `2^(2 − bias − PREC)` has exponent
//!   `NORMAL_EXP_MIN − (PREC − 1)`;
//! * the largest finite value `(1 − 2^−PREC)·2^(bias + 1)` has exponent
//!   [`Format::EXP_MAX`] `= bias + 1` (128, 1024): anything with a larger
//!   exponent is an overflow.
//!
//! # How one operation is rounded
//!
//! Every operation is computed by [`round`]: MPFR computes the operation at
//! `PREC` bits of precision, rounding to nearest-even, with its own (huge)
//! exponent range, and returns the ternary value (whether the `PREC`-bit
//! result is below, equal to or above the exact one). Then:
//!
//! 1. **Subnormals**: [`rug::Float::subnormalize_round`]`(NORMAL_EXP_MIN,
//!    ternary, Nearest)` re-rounds a result below the smallest normal to the
//!    fixed subnormal grid (multiples of `2^-149` for binary32, `2^-1074`
//!    for binary64). This is MPFR's `mpfr_subnormalize`, which uses the
//!    ternary value of the first rounding, so the result is the one a single
//!    rounding of the exact value would give (no double-rounding error: an
//!    exact value just above the midpoint `2^-150` that the 24-bit rounding
//!    brought down to exactly `2^-150` goes up to `2^-149`, not to 0). rug's
//!    `subnormalize_ieee_round` is the same call with `NORMAL_EXP_MIN` derived
//!    from the precision, but only for the precisions IEEE 754 names (11, 24,
//!    53, ...): bfloat16's 8 bits would silently not be subnormalized, so the
//!    exponent is always given explicitly here.
//! 2. **Overflow**: a result whose exponent exceeds [`Format::EXP_MAX`] (it
//!    can only be `±2^EXP_MAX` exactly) becomes ±infinity. This is what IEEE
//!    round-to-nearest gives: the exact value rounded at `PREC` bits with
//!    unbounded exponent reaches `2^EXP_MAX` exactly when it is at or above
//!    the overflow threshold `2^EXP_MAX·(1 − 2^−(PREC+1))` (the threshold
//!    itself is a tie, which goes to the even `2^EXP_MAX`).
//! 3. The value, now exactly representable, is converted exactly
//!    ([`Format::from_representable`]).
//!
//! `subnormalize_round` temporarily narrows MPFR's exponent range, which is
//! thread-local state in the thread-safe MPFR that `gmp-mpfr-sys` builds, so
//! concurrent use from several threads is fine.
//!
//! Special values follow MPFR, which follows IEEE 754: `0 * inf`,
//! `inf - inf`, `0/0`, `inf/inf`, `sqrt(x < 0)` and anything involving NaN
//! give NaN; `-0 + -0 = -0`, `x - x = +0`, `sqrt(-0) = -0`, the sign of a
//! product or quotient is the xor of the signs.
//!
//! # NaN bits
//!
//! MPFR has one NaN, without sign or payload, so the sign and payload of a
//! NaN result are modelled here, as x86-64's SSE/AVX/FMA units give them, in
//! every format alike (the bit positions scale with the format: the quiet
//! bit is the top fraction bit, bit `PREC − 2`: bit 22 of binary32, bit 51 of
//! binary64):
//!
//! * an op with a NaN operand returns the **first** NaN operand, quieted
//!   ([`quiet`]: quiet bit set; sign and the rest of the payload kept).
//!   "First" is the order of the function's parameters ([`add`]`(x, y)` is
//!   `addss`/`addsd x, y`, [`fma`]`(a, b, c)` looks at `a`, `b`, `c` in turn,
//!   even when `a * b` is `0 * inf`). [`PytorchCpu`]'s `Arithmetic` impl
//!   passes operands in the order PyTorch 2.13's kernels give them to the
//!   instructions (measured in binary32: see `fast/docs/numerics.md`, "NaN
//!   bits"; the float64 kernels are the same ATen templates);
//! * an invalid op without a NaN operand (`0 * inf`, `inf - inf`, `0/0`,
//!   `inf/inf`) returns x86's default NaN [`Format::DEFAULT_NAN`]: sign set,
//!   quiet bit set, payload 0 (`0xffc00000`, `0xfff8000000000000`);
//! * [`sqrt`] of a number below zero (`-0` excluded) returns oneMKL's NaN,
//!   [`Format::MKL_SQRT_NAN`]: sign clear, quiet bit set (`0x7fc00000`,
//!   `0x7ff8000000000000`): `torch.sqrt` is oneMKL's `vsSqrt`/`vdSqrt`, not
//!   `sqrtps`/`sqrtpd` (which would give the default NaN). A NaN input comes
//!   back quieted;
//! * [`neg`] flips the sign bit of anything, NaN included, and does not quiet
//!   a signalling NaN (ATen's `neg` is a sign-bit xor);
//! * [`convert`] between two formats (`cvtsd2ss`, `cvtss2sd`) quiets a NaN
//!   and keeps its sign and the leading bits of its payload (the fraction is
//!   shifted, truncating when narrowing); converting to the same format is no
//!   conversion and returns the bits unchanged.
//!
//! aarch64 differs: its default NaN is positive, it also propagates the first
//! NaN operand quieted, but its FMA (`fmla`) looks at the addend first.
//!
//! # PyTorch's kernels
//!
//! [`PytorchCpu`] (implemented by [`crate::Binary32`] and
//! [`crate::Binary64`]) maps Adadelta's ATen ops to these single ops, once for
//! every format; the table is in the [`binary32`](crate::binary32) module
//! docs.

use crate::algorithm::Hyperparams;
use crate::arithmetic::{Arithmetic, Scalars};
use rug::float::Round;
use rug::Float;
use std::cmp::Ordering;
use std::fmt::Debug;

/// An IEEE 754 binary interchange format, as a Rust type holding one value.
///
/// Implementors give the storage width [`Format::BITS`], the precision
/// [`Format::PREC`], the bits and the exact conversions to and from
/// [`rug::Float`]; every other constant is derived (see the
/// [module docs](self)) and should not be overridden. Implemented for `f32`
/// (binary32) and `f64` (binary64); the layout is the IEEE one (sign,
/// `BITS − PREC` exponent bits, `PREC − 1` fraction bits), so binary16 and
/// bfloat16 fit as well.
///
/// # Example
///
/// ```
/// use adadelta_reference::ieee::Format;
///
/// assert_eq!(<f64 as Format>::NORMAL_EXP_MIN, -1021); // 2^-1022 = 0.5 * 2^-1021
/// assert_eq!(<f64 as Format>::EXP_MAX, 1024);
/// assert_eq!(<f32 as Format>::QUIET_BIT, 1 << 22);
/// assert_eq!(<f64 as Format>::DEFAULT_NAN, 0xfff8_0000_0000_0000);
/// assert_eq!(<f32 as Format>::MKL_SQRT_NAN, 0x7fc0_0000);
/// ```
pub trait Format: Copy + Debug + PartialEq + Send + Sync + 'static {
    /// Storage width in bits (32, 64).
    const BITS: u32;
    /// Precision: significand bits, the hidden bit included (24, 53).
    const PREC: u32;

    /// Width of the exponent field, `BITS − PREC` (8, 11).
    const EXP_BITS: u32 = Self::BITS - Self::PREC;
    /// The exponent bias, `2^(EXP_BITS − 1) − 1` (127, 1023).
    const BIAS: i32 = (1 << (Self::EXP_BITS - 1)) - 1;
    /// MPFR exponent (`x = m·2^e`, `0.5 ≤ |m| < 1`) of the smallest normal
    /// number `2^(1 − BIAS)`: `2 − BIAS` (−125, −1021). The `normal_exp_min`
    /// of [`rug::Float::subnormalize_round`].
    const NORMAL_EXP_MIN: i32 = 2 - Self::BIAS;
    /// MPFR exponent of the largest finite number
    /// `(1 − 2^−PREC)·2^(BIAS + 1)`: `BIAS + 1` (128, 1024). A rounded value
    /// with a larger exponent is an overflow.
    const EXP_MAX: i32 = Self::BIAS + 1;
    /// The sign bit, `1 << (BITS − 1)`.
    const SIGN_BIT: u64 = 1 << (Self::BITS - 1);
    /// The bits of `+inf`: exponent field all ones, fraction 0.
    const INF_BITS: u64 = ((1 << Self::EXP_BITS) - 1) << (Self::PREC - 1);
    /// The fraction field, `PREC − 1` bits.
    const FRACTION_MASK: u64 = (1 << (Self::PREC - 1)) - 1;
    /// The quiet bit of a NaN, the top fraction bit `1 << (PREC − 2)`
    /// (bit 22, bit 51).
    const QUIET_BIT: u64 = 1 << (Self::PREC - 2);
    /// x86-64's default NaN: the result of an invalid SSE/AVX operation
    /// (`0 * inf`, `inf - inf`, `0/0`, `inf/inf`, `sqrtps(x < 0)`) none of
    /// whose operands is NaN. Sign set, quiet, payload 0: `0xffc00000`,
    /// `0xfff8000000000000`.
    const DEFAULT_NAN: u64 = Self::SIGN_BIT | Self::INF_BITS | Self::QUIET_BIT;
    /// The NaN oneMKL's `vsSqrt`/`vdSqrt` (PyTorch's `torch.sqrt` on x86-64)
    /// returns for an input below zero: sign clear, quiet, payload 0:
    /// `0x7fc00000`, `0x7ff8000000000000`.
    const MKL_SQRT_NAN: u64 = Self::INF_BITS | Self::QUIET_BIT;

    /// The bits of `self`, in the low `BITS` bits.
    fn to_bits(self) -> u64;

    /// The value with bits `bits` (the low `BITS` bits; the others must be 0).
    fn from_bits(bits: u64) -> Self;

    /// The exact value as an MPFR number of precision `PREC` (NaN without
    /// sign or payload, infinities and signed zeros kept).
    fn to_float(self) -> Float;

    /// The value of `x`, which must be exactly representable in the format:
    /// a zero, an infinity, or a finite value of at most `PREC` significant
    /// bits inside the format's normal or subnormal range. Exact (no
    /// rounding). A NaN `x` gives some NaN.
    fn from_representable(x: &Float) -> Self;

    /// Whether `self` is a NaN (exponent all ones, fraction not 0).
    fn is_nan(self) -> bool {
        self.to_bits() & !Self::SIGN_BIT > Self::INF_BITS
    }
}

impl Format for f32 {
    const BITS: u32 = 32;
    const PREC: u32 = 24;

    fn to_bits(self) -> u64 {
        u64::from(f32::to_bits(self))
    }

    fn from_bits(bits: u64) -> Self {
        f32::from_bits(u32::try_from(bits).expect("f32::from_bits: more than 32 bits"))
    }

    fn to_float(self) -> Float {
        Float::with_val(Self::PREC, self)
    }

    /// `mpfr_get_flt`, exact for a representable value.
    fn from_representable(x: &Float) -> Self {
        x.to_f32_round(Round::Nearest)
    }
}

impl Format for f64 {
    const BITS: u32 = 64;
    const PREC: u32 = 53;

    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }

    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }

    fn to_float(self) -> Float {
        Float::with_val(Self::PREC, self)
    }

    /// `mpfr_get_d`, exact for a representable value.
    fn from_representable(x: &Float) -> Self {
        x.to_f64_round(Round::Nearest)
    }
}

/// bfloat16: binary32's exponent range with 8 bits of precision.
impl Format for half::bf16 {
    const BITS: u32 = 16;
    const PREC: u32 = 8;

    fn to_bits(self) -> u64 {
        u64::from(half::bf16::to_bits(self))
    }

    fn from_bits(bits: u64) -> Self {
        half::bf16::from_bits(u16::try_from(bits).expect("bf16::from_bits: more than 16 bits"))
    }

    fn to_float(self) -> Float {
        Float::with_val(Self::PREC, f32::from(self))
    }

    /// Through `f32`, both steps exact for a representable value.
    fn from_representable(x: &Float) -> Self {
        half::bf16::from_f32(x.to_f32_round(Round::Nearest))
    }
}

/// IEEE binary16 (`float16`).
impl Format for half::f16 {
    const BITS: u32 = 16;
    const PREC: u32 = 11;

    fn to_bits(self) -> u64 {
        u64::from(half::f16::to_bits(self))
    }

    fn from_bits(bits: u64) -> Self {
        half::f16::from_bits(u16::try_from(bits).expect("f16::from_bits: more than 16 bits"))
    }

    fn to_float(self) -> Float {
        Float::with_val(Self::PREC, f32::from(self))
    }

    /// Through `f32`, both steps exact for a representable value.
    fn from_representable(x: &Float) -> Self {
        half::f16::from_f32(x.to_f32_round(Round::Nearest))
    }
}

/// The NaN `F` with bits `bits`.
fn bits<F: Format>(bits: u64) -> F {
    F::from_bits(bits)
}

/// x86's default NaN in `F`, [`Format::DEFAULT_NAN`].
pub fn default_nan<F: Format>() -> F {
    bits(F::DEFAULT_NAN)
}

/// oneMKL's NaN for a square root below zero in `F`,
/// [`Format::MKL_SQRT_NAN`].
pub fn mkl_sqrt_nan<F: Format>() -> F {
    bits(F::MKL_SQRT_NAN)
}

/// Rounds an MPFR result to `F`, given the result at **`F::PREC` bits**
/// (rounded to nearest) and its ternary value: subnormal grid, then overflow,
/// then an exact conversion.
///
/// This is the one place where rounding to a format happens; see the
/// [module docs](self) for why it rounds exactly once. An MPFR NaN gives
/// [`default_nan`] (the ops apply their own NaN rule before calling this).
///
/// # Panics
///
/// If `rounded.prec() != F::PREC`.
pub fn round<F: Format>((mut rounded, ternary): (Float, Ordering)) -> F {
    assert_eq!(
        rounded.prec(),
        F::PREC,
        "ieee::round needs a value at the format's precision"
    );
    if rounded.is_nan() {
        return default_nan();
    }
    rounded.subnormalize_round(F::NORMAL_EXP_MIN, ternary, Round::Nearest);
    if rounded.get_exp().is_some_and(|e| e > F::EXP_MAX) {
        let inf = if rounded.is_sign_negative() {
            F::SIGN_BIT | F::INF_BITS
        } else {
            F::INF_BITS
        };
        return bits(inf);
    }
    F::from_representable(&rounded)
}

/// `x` quieted: the quiet bit set, sign and payload kept, as x86 returns a
/// NaN operand. (Applied to a number it would change the number: call it on
/// NaNs.)
pub fn quiet<F: Format>(x: F) -> F {
    bits(x.to_bits() | F::QUIET_BIT)
}

/// The NaN rule of one x86 operation: the first NaN of `operands`, quieted;
/// else `result()` (computed through MPFR), with an invalid operation's NaN
/// replaced by the NaN with bits `invalid`.
pub fn nan_rule<F: Format>(operands: &[F], invalid: u64, result: impl FnOnce() -> F) -> F {
    if let Some(&x) = operands.iter().find(|x| x.is_nan()) {
        return quiet(x);
    }
    let r = result();
    if r.is_nan() {
        bits(invalid)
    } else {
        r
    }
}

/// The exact value of `x`.
pub(crate) fn exact<F: Format>(x: F) -> Float {
    x.to_float()
}

/// An MPFR computation (an exact value or an incomplete rug computation)
/// rounded to nearest at `F`'s precision, then to `F` by [`round`].
pub(crate) fn rounded<F: Format, T>(value: T) -> F
where
    Float: rug::ops::AssignRound<T, Round = Round, Ordering = Ordering>,
{
    round(Float::with_val_round(F::PREC, value, Round::Nearest))
}

/// `x` converted from format `S` to format `D`, rounded to nearest-even
/// (`cvtsd2ss`, `cvtss2sd`, Rust's `as`): exact when `D` is at least as wide,
/// subnormal results and overflow to infinity when narrowing.
///
/// A NaN keeps its sign and the leading bits of its fraction (shifted to
/// `D`'s width, truncated when narrowing) and is quieted, as x86's
/// conversions do. When `S` and `D` are the same format nothing is converted
/// and the bits come back unchanged (a signalling NaN stays signalling).
pub fn convert<S: Format, D: Format>(x: S) -> D {
    if S::BITS == D::BITS && S::PREC == D::PREC {
        return bits(x.to_bits());
    }
    if x.is_nan() {
        let b = x.to_bits();
        let fraction = b & S::FRACTION_MASK;
        let fraction = if D::PREC >= S::PREC {
            fraction << (D::PREC - S::PREC)
        } else {
            fraction >> (S::PREC - D::PREC)
        };
        let sign = if b & S::SIGN_BIT != 0 { D::SIGN_BIT } else { 0 };
        return bits(sign | D::INF_BITS | D::QUIET_BIT | fraction);
    }
    rounded::<D, _>(exact(x))
}

/// `F(x)`: an `f64` rounded to the nearest `F` ([`convert`] from binary64;
/// `x as f32` for binary32, `x` itself for binary64).
pub fn from_f64<F: Format>(x: f64) -> F {
    convert::<f64, F>(x)
}

/// `-x` (exact): the sign bit flipped, NaN included (a signalling NaN stays
/// signalling), as ATen's `neg` (a sign-bit xor) does.
pub fn neg<F: Format>(x: F) -> F {
    if x.is_nan() {
        return bits(x.to_bits() ^ F::SIGN_BIT);
    }
    rounded(-exact(x))
}

/// `x + y`, correctly rounded; NaN as `addss`/`addsd x, y` (the first NaN of
/// `x`, `y`).
pub fn add<F: Format>(x: F, y: F) -> F {
    nan_rule(&[x, y], F::DEFAULT_NAN, || rounded(&exact(x) + &exact(y)))
}

/// `x - y`, correctly rounded; NaN as `subss`/`subsd x, y` (the first NaN of
/// `x`, `y`, quieted, its sign **not** flipped).
pub fn sub<F: Format>(x: F, y: F) -> F {
    nan_rule(&[x, y], F::DEFAULT_NAN, || rounded(&exact(x) - &exact(y)))
}

/// `x * y`, correctly rounded; NaN as `mulss`/`mulsd x, y` (the first NaN of
/// `x`, `y`).
pub fn mul<F: Format>(x: F, y: F) -> F {
    nan_rule(&[x, y], F::DEFAULT_NAN, || rounded(&exact(x) * &exact(y)))
}

/// `x / y`, correctly rounded; NaN as `divss`/`divsd x, y` (the first NaN of
/// `x`, `y`).
pub fn div<F: Format>(x: F, y: F) -> F {
    nan_rule(&[x, y], F::DEFAULT_NAN, || rounded(&exact(x) / &exact(y)))
}

/// `sqrt(x)`, correctly rounded (IEEE 754 `squareRoot`, not oneMKL's); a
/// NaN `x` quieted, and [`Format::MKL_SQRT_NAN`] for `x < 0` (oneMKL's, as
/// `torch.sqrt`).
pub fn sqrt<F: Format>(x: F) -> F {
    nan_rule(&[x], F::MKL_SQRT_NAN, || rounded(exact(x).sqrt_ref()))
}

/// `x * y + z` with a single rounding (IEEE 754 `fusedMultiplyAdd`); NaN as
/// x86's FMA with the operands in this order (the first NaN of `x`, `y`,
/// `z`).
pub fn fma<F: Format>(x: F, y: F, z: F) -> F {
    nan_rule(&[x, y, z], F::DEFAULT_NAN, || {
        let (x, y, z) = (exact(x), exact(y), exact(z));
        rounded(x.mul_add_ref(&y, &z))
    })
}

/// Whether ATen's `add(alpha=)` and `addcmul` kernels are contracted into a
/// fused multiply-add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulAdd {
    /// One rounding for the final multiply-add (x86 wheels with AVX2 or
    /// AVX-512 and FMA: the default on the project's machine).
    Fused,
    /// Separate roundings for the product and the sum
    /// (`ATEN_CPU_CAPABILITY=default`).
    Unfused,
}

/// PyTorch's CPU kernels of Adadelta's ATen ops in the IEEE format
/// [`PytorchCpu::Format`]: every type implementing this is an
/// [`Arithmetic`] (a blanket impl), with the op mapping of the table in the
/// [`binary32`](crate::binary32) module docs, written once for all formats.
///
/// Implemented by [`crate::Binary32`] (`float32` tensors) and
/// [`crate::Binary64`] (`float64` tensors).
///
/// # Example
///
/// ```
/// use adadelta_reference::{Arithmetic, Binary64, MulAdd};
///
/// let b = Binary64 { mul_add: MulAdd::Fused };
/// // The Python float 0.9 is the operand itself: no conversion in float64.
/// let s = b.scalars(&adadelta_reference::Hyperparams::default());
/// assert_eq!((s.rho, s.one_minus_rho, s.eps), (0.9, 1.0 - 0.9, 1e-6));
/// ```
pub trait PytorchCpu: Copy + Debug {
    /// The tensor's dtype.
    type Format: Format;

    /// Fused or unfused `add(alpha=)` and `addcmul` kernels.
    fn mul_add(&self) -> MulAdd;
}

impl<K: PytorchCpu> Arithmetic for K {
    type Value = K::Format;

    /// As ATen converts a Python float scalar to the tensor's dtype
    /// ([`from_f64`]): `rho`, `1.0 - rho` (the subtraction in `f64`, as
    /// Python computes it: [`sub`]), `eps`, `-lr` (a sign flip, [`neg`]),
    /// `weight_decay`. In binary64 these are the Python floats themselves.
    fn scalars(&self, hyper: &Hyperparams) -> Scalars<K::Format> {
        Scalars {
            rho: from_f64(hyper.rho),
            one_minus_rho: from_f64(sub(1.0, hyper.rho)),
            eps: from_f64(hyper.eps),
            neg_lr: from_f64(neg(hyper.lr)),
            weight_decay: from_f64(hyper.weight_decay),
        }
    }

    /// [`convert`]: exact for binary32 and binary64.
    fn convert_f32(&self, x: f32) -> K::Format {
        convert(x)
    }

    fn to_float(&self, x: &K::Format) -> Float {
        exact(*x)
    }

    fn zero(&self) -> K::Format {
        bits(0)
    }

    fn neg(&self, x: &K::Format) -> K::Format {
        neg(*x)
    }

    /// `y + x` (the same value): ATen's `add` kernel gives the instruction
    /// its second tensor first, so a NaN `y` wins (measured in binary32).
    fn add(&self, x: &K::Format, y: &K::Format) -> K::Format {
        add(*y, *x)
    }

    /// `y * x` (the same value): as [`Arithmetic::add`], a NaN `y` wins
    /// (measured in binary32: `delta.mul_(grad)` returns `grad`'s NaN).
    fn mul(&self, x: &K::Format, y: &K::Format) -> K::Format {
        mul(*y, *x)
    }

    fn div(&self, x: &K::Format, y: &K::Format) -> K::Format {
        div(*x, *y)
    }

    fn sqrt(&self, x: &K::Format) -> K::Format {
        sqrt(*x)
    }

    /// Fused: `fma(y, alpha, x)`; unfused: `round(y * alpha) + x`. NaN:
    /// `y`'s first, then `x`'s (measured on the fused binary32 builds; the
    /// unfused `ATEN_CPU_CAPABILITY=default` build is given the same order,
    /// not measured op by op).
    fn add_alpha(&self, x: &K::Format, y: &K::Format, alpha: &K::Format) -> K::Format {
        match self.mul_add() {
            MulAdd::Fused => fma(*y, *alpha, *x),
            MulAdd::Unfused => add(mul(*y, *alpha), *x),
        }
    }

    /// Fused: `fma(round(value * t1), t2, s)`; unfused:
    /// `s + round(round(value * t1) * t2)`.
    /// NaN: `t1`'s first, then `t2`'s, then `s`'s (measured in binary32).
    fn addcmul(
        &self,
        s: &K::Format,
        t1: &K::Format,
        t2: &K::Format,
        value: &K::Format,
    ) -> K::Format {
        let value_t1 = mul(*t1, *value);
        match self.mul_add() {
            MulAdd::Fused => fma(value_t1, *t2, *s),
            MulAdd::Unfused => add(mul(value_t1, *t2), *s),
        }
    }
}
