//! [`Binary32`]: IEEE 754 binary32 arithmetic emulated through MPFR, and the
//! PyTorch CPU kernels of Adadelta's ATen ops expressed in it.
//!
//! # How one binary32 operation is rounded
//!
//! Every operation is computed by [`round`]: MPFR computes the operation at
//! 24 bits of precision, rounding to nearest-even, with its own (huge)
//! exponent range, and returns the ternary value (whether the 24-bit result is
//! below, equal to or above the exact one). Then:
//!
//! 1. **Subnormals**: [`rug::Float::subnormalize_ieee_round`] re-rounds a
//!    result below 2^-126 to the fixed binary32 subnormal grid (multiples of
//!    2^-149). This is MPFR's `mpfr_subnormalize`, which uses the ternary
//!    value of the first rounding, so the result is the one a single rounding
//!    of the exact value would give (no double-rounding error: for example
//!    an exact value just above the midpoint 2^-150 that the 24-bit rounding
//!    brought down to exactly 2^-150 goes up to 2^-149, not to 0).
//! 2. **Overflow**: MPFR's `mpfr_get_flt` (through [`rug::Float::to_f32`])
//!    then converts the (now exactly representable, or too large) value.
//!    A 24-bit value ≥ 2^128 becomes ±infinity, which is what IEEE
//!    round-to-nearest gives, because the exact value rounded at 24 bits with
//!    unbounded exponent reaches 2^128 exactly when it is ≥ the overflow
//!    threshold 2^128·(1 − 2^-25).
//!
//! (`to_f32` alone would not do: it rounds correctly from an *exact* MPFR
//! value, but applied to the 24-bit result it would round a second time in
//! the subnormal range. `subnormalize_ieee_round` temporarily narrows MPFR's
//! exponent range, which is thread-local state in the thread-safe MPFR that
//! `gmp-mpfr-sys` builds, so concurrent use from several threads is fine.)
//!
//! Special values follow MPFR, which follows IEEE 754: `0 * inf`,
//! `inf - inf`, `0/0`, `inf/inf`, `sqrt(x < 0)` and anything involving NaN
//! give NaN; `-0 + -0 = -0`, `x - x = +0`, `sqrt(-0) = -0`, the sign of a
//! product or quotient is the xor of the signs.
//!
//! # NaN bits
//!
//! MPFR has one NaN, without sign or payload, so the sign and payload of a
//! NaN result are modelled here, as x86-64's SSE/AVX/FMA units give them:
//!
//! * an op with a NaN operand returns the **first** NaN operand, quieted
//!   (bit 22 set; sign and the rest of the payload kept). "First" is the
//!   order of the function's parameters ([`add`]`(x, y)` is `addss x, y`,
//!   [`fma`]`(a, b, c)` looks at `a`, `b`, `c` in turn, even when `a * b`
//!   is `0 * inf`). [`Binary32`]'s `Arithmetic` impl passes operands in the
//!   order PyTorch 2.13's kernels give them to the instructions (measured:
//!   see `fast/docs/numerics.md`, "NaN bits");
//! * an invalid op without a NaN operand (`0 * inf`, `inf - inf`, `0/0`,
//!   `inf/inf`) returns x86's default NaN [`DEFAULT_NAN`], `0xffc00000`
//!   (sign set);
//! * [`sqrt`] of a number below zero (`-0` excluded) returns oneMKL's NaN,
//!   [`MKL_SQRT_NAN`], `0x7fc00000`: `torch.sqrt` on `float32` is oneMKL's
//!   `vsSqrt`, not `sqrtps` (which would give [`DEFAULT_NAN`]);
//! * [`neg`] flips the sign bit of anything, NaN included, and does not quiet
//!   a signalling NaN (ATen's `neg` is a sign-bit xor).
//!
//! aarch64 differs: its default NaN is `0x7fc00000`, it also propagates the
//! first NaN operand quieted, but its FMA (`fmla`) looks at the addend first.
//!
//! The single-op functions ([`add`], [`mul`], [`div`], [`sqrt`], [`fma`],
//! [`neg`], [`from_f64`]) are public so that callers can use them as a
//! correctly rounded reference.
//!
//! # PyTorch's kernels
//!
//! Hyperparameters are converted as ATen converts a Python float scalar:
//! `rho32 = f32(rho)`, `c = f32(1.0 - rho)` with the subtraction in `f64`,
//! `eps32 = f32(eps)`, `nlr = f32(-lr)`, `wd32 = f32(wd)`, where `f32(x)` rounds
//! an `f64` to nearest binary32 ([`from_f64`]).
//!
//! | ATen op                     | [`MulAdd::Fused`]            | [`MulAdd::Unfused`]                |
//! |-----------------------------|------------------------------|------------------------------------|
//! | `g.add(p, alpha=wd)`        | `fma(p, wd32, g)`            | `g + f32(wd32 * p)`                |
//! | `s.mul_(rho)`               | `f32(s * rho32)`             | same                               |
//! | `s.addcmul_(t1, t2, value=c)` | `fma(f32(c * t1), t2, s)`  | `s + f32(f32(c * t1) * t2)`        |
//! | `x.add(eps)`                | `f32(x + eps32)`             | same                               |
//! | `div`, `mul`, `sqrt`        | correctly rounded            | same                               |
//! | `p.add_(d, alpha=-lr)`      | `fma(d, nlr, p)`             | `p + f32(nlr * d)`                 |
//!
//! The fused column is what GCC's contraction of ATen's scalar lambdas and the
//! AVX2/AVX-512 `fmadd` vector bodies compute; the unfused column is the
//! `ATEN_CPU_CAPABILITY=default` build.

use crate::algorithm::Hyperparams;
use crate::arithmetic::{Arithmetic, Scalars};
use rug::float::Round;
use rug::Float;
use std::cmp::Ordering;

/// binary32's precision (significand bits, hidden bit included).
const PREC: u32 = 24;
/// binary64's precision.
const F64_PREC: u32 = 53;

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

/// PyTorch's `float32` CPU arithmetic, emulated op by op through MPFR.
///
/// The value type is `f32`. See the [module docs](self) for the rounding of
/// each op.
///
/// # Example
///
/// ```
/// use adadelta_reference::{Arithmetic, Binary32, MulAdd};
///
/// let fused = Binary32 { mul_add: MulAdd::Fused };
/// let unfused = Binary32 { mul_add: MulAdd::Unfused };
/// // x + alpha*y with x = -1, y = alpha = 1 + 2^-12: the exact result 2^-11 + 2^-24
/// // needs 14 bits; the unfused product rounds 2^-24 away first.
/// let (x, y) = (-1.0f32, 1.0 + f32::EPSILON * 2048.0);
/// assert_eq!(fused.add_alpha(&x, &y, &y), 2f32.powi(-11) + 2f32.powi(-24));
/// assert_eq!(unfused.add_alpha(&x, &y, &y), 2f32.powi(-11));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binary32 {
    /// Fused or unfused `add(alpha=)` and `addcmul` kernels.
    pub mul_add: MulAdd,
}

/// Rounds an MPFR result to binary32, given the result at **24 bits** (rounded
/// to nearest) and its ternary value.
///
/// This is the one place where binary32 rounding happens; see the
/// [module docs](self) for why it rounds exactly once.
///
/// # Panics
///
/// If `rounded.prec() != 24`.
pub fn round((mut rounded, ternary): (Float, Ordering)) -> f32 {
    assert_eq!(rounded.prec(), PREC, "binary32::round needs a 24-bit value");
    rounded.subnormalize_ieee_round(ternary, Round::Nearest);
    rounded.to_f32()
}

/// x86-64's default NaN (`0xffc00000`, sign set): the result of an invalid
/// SSE/AVX operation (`0 * inf`, `inf - inf`, `0/0`, `inf/inf`,
/// `sqrtps(x < 0)`) none of whose operands is NaN.
pub const DEFAULT_NAN: u32 = 0xffc0_0000;

/// The NaN oneMKL's `vsSqrt` (PyTorch's `float32` `torch.sqrt` on x86-64)
/// returns for an input below zero: `0x7fc00000`, sign clear. A NaN input
/// comes back quieted, like every other op's.
pub const MKL_SQRT_NAN: u32 = 0x7fc0_0000;

/// `x` quieted: bit 22 (the quiet bit) set, sign and payload kept, as x86
/// returns a NaN operand.
fn quiet(x: f32) -> f32 {
    f32::from_bits(x.to_bits() | 0x0040_0000)
}

/// The NaN rule of one x86 operation: the first NaN of `operands` quieted;
/// else `result` (computed through MPFR), with an invalid operation's NaN
/// replaced by `invalid`.
fn nan_rule(operands: &[f32], invalid: u32, result: impl FnOnce() -> f32) -> f32 {
    if let Some(&x) = operands.iter().find(|x| x.is_nan()) {
        return quiet(x);
    }
    let r = result();
    if r.is_nan() {
        f32::from_bits(invalid)
    } else {
        r
    }
}

/// The exact value of an `f32`.
fn exact(x: f32) -> Float {
    Float::with_val(PREC, x)
}

/// `f32(x)`: an `f64` rounded to the nearest binary32 (as `x as f32`).
pub fn from_f64(x: f64) -> f32 {
    round(Float::with_val_round(PREC, x, Round::Nearest))
}

/// `-x` (exact): the sign bit flipped, NaN included (a signalling NaN stays
/// signalling), as ATen's `neg` (a sign-bit xor) does.
pub fn neg(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(x.to_bits() ^ 0x8000_0000);
    }
    round(Float::with_val_round(PREC, -exact(x), Round::Nearest))
}

/// `x + y`, correctly rounded; NaN as `addss x, y` (the first NaN of `x`, `y`).
pub fn add(x: f32, y: f32) -> f32 {
    nan_rule(&[x, y], DEFAULT_NAN, || {
        round(Float::with_val_round(
            PREC,
            &exact(x) + &exact(y),
            Round::Nearest,
        ))
    })
}

/// `x * y`, correctly rounded; NaN as `mulss x, y` (the first NaN of `x`, `y`).
pub fn mul(x: f32, y: f32) -> f32 {
    nan_rule(&[x, y], DEFAULT_NAN, || {
        round(Float::with_val_round(
            PREC,
            &exact(x) * &exact(y),
            Round::Nearest,
        ))
    })
}

/// `x / y`, correctly rounded; NaN as `divss x, y` (the first NaN of `x`, `y`).
pub fn div(x: f32, y: f32) -> f32 {
    nan_rule(&[x, y], DEFAULT_NAN, || {
        round(Float::with_val_round(
            PREC,
            &exact(x) / &exact(y),
            Round::Nearest,
        ))
    })
}

/// `sqrt(x)`, correctly rounded (IEEE 754 `squareRoot`, not MKL's); a NaN
/// `x` quieted, and [`MKL_SQRT_NAN`] for `x < 0` (oneMKL's, as `torch.sqrt`).
pub fn sqrt(x: f32) -> f32 {
    nan_rule(&[x], MKL_SQRT_NAN, || {
        round(Float::with_val_round(
            PREC,
            exact(x).sqrt_ref(),
            Round::Nearest,
        ))
    })
}

/// `x * y + z` with a single rounding (IEEE 754 `fusedMultiplyAdd`); NaN as
/// x86's FMA with the operands in this order (the first NaN of `x`, `y`, `z`).
pub fn fma(x: f32, y: f32, z: f32) -> f32 {
    nan_rule(&[x, y, z], DEFAULT_NAN, || {
        let (x, y, z) = (exact(x), exact(y), exact(z));
        round(Float::with_val_round(
            PREC,
            x.mul_add_ref(&y, &z),
            Round::Nearest,
        ))
    })
}

/// `1.0 - rho` in `f64` arithmetic, as Python computes it. For any `f64`
/// `rho` the exact difference is 0 or at least 2^-53 in magnitude (never
/// subnormal), and `|1 - rho| ≤ 1 + |rho|` rounds to at most `f64::MAX` for
/// finite `rho`, so a 53-bit MPFR rounding (unbounded exponent) is exactly
/// binary64 rounding here.
fn one_minus_f64(rho: f64) -> f64 {
    Float::with_val(F64_PREC, 1 - Float::with_val(F64_PREC, rho)).to_f64()
}

impl Arithmetic for Binary32 {
    type Value = f32;

    /// `rho32 = f32(rho)`, `c = f32(1.0 - rho)` (subtraction in `f64`),
    /// `eps32 = f32(eps)`, `nlr = f32(-lr)`, `wd32 = f32(weight_decay)`.
    fn scalars(&self, hyper: &Hyperparams) -> Scalars<f32> {
        Scalars {
            rho: from_f64(hyper.rho),
            one_minus_rho: from_f64(one_minus_f64(hyper.rho)),
            eps: from_f64(hyper.eps),
            neg_lr: from_f64(-hyper.lr),
            weight_decay: from_f64(hyper.weight_decay),
        }
    }

    fn convert_f32(&self, x: f32) -> f32 {
        x
    }

    fn to_float(&self, x: &f32) -> Float {
        exact(*x)
    }

    fn zero(&self) -> f32 {
        0.0
    }

    fn neg(&self, x: &f32) -> f32 {
        neg(*x)
    }

    /// `y + x` (the same value): ATen's `add` kernel gives the instruction
    /// its second tensor first, so a NaN `y` wins (measured).
    fn add(&self, x: &f32, y: &f32) -> f32 {
        add(*y, *x)
    }

    /// `y * x` (the same value): as [`Arithmetic::add`], a NaN `y` wins
    /// (measured: `delta.mul_(grad)` returns `grad`'s NaN).
    fn mul(&self, x: &f32, y: &f32) -> f32 {
        mul(*y, *x)
    }

    fn div(&self, x: &f32, y: &f32) -> f32 {
        div(*x, *y)
    }

    fn sqrt(&self, x: &f32) -> f32 {
        sqrt(*x)
    }

    /// Fused: `fma(y, alpha, x)`; unfused: `f32(y * alpha) + x`. NaN: `y`'s
    /// first, then `x`'s (measured on the fused builds; the unfused
    /// `ATEN_CPU_CAPABILITY=default` build is given the same order, not
    /// measured op by op).
    fn add_alpha(&self, x: &f32, y: &f32, alpha: &f32) -> f32 {
        match self.mul_add {
            MulAdd::Fused => fma(*y, *alpha, *x),
            MulAdd::Unfused => add(mul(*y, *alpha), *x),
        }
    }

    /// Fused: `fma(f32(value * t1), t2, s)`; unfused:
    /// `s + f32(f32(value * t1) * t2)`.
    /// NaN: `t1`'s first, then `t2`'s, then `s`'s (measured).
    fn addcmul(&self, s: &f32, t1: &f32, t2: &f32, value: &f32) -> f32 {
        let value_t1 = mul(*t1, *value);
        match self.mul_add {
            MulAdd::Fused => fma(value_t1, *t2, *s),
            MulAdd::Unfused => add(mul(value_t1, *t2), *s),
        }
    }
}
