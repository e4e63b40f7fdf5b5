//! [`Binary32`]: IEEE 754 binary32 arithmetic emulated through MPFR, and the
//! PyTorch CPU kernels of Adadelta's ATen ops expressed in it.
//!
//! # How one binary32 operation is rounded
//!
//! Every function here is the generic one of [`crate::ieee`] at `f32`: MPFR
//! computes the operation at 24 bits, rounding to nearest-even, and
//! [`round`] brings the result onto the binary32 grid with a single rounding
//! (subnormals through `mpfr_subnormalize` with the first rounding's ternary
//! value, so no double rounding; overflow to ±infinity at `2^128`). See the
//! [`ieee`] module docs for why that is exactly IEEE
//! round-to-nearest-even.
//!
//! # NaN bits
//!
//! As x86-64's SSE/AVX/FMA units give them (the rules are those of
//! [`crate::ieee`], written once for every format):
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
//!   a signalling NaN (ATen's `neg` is a sign-bit xor);
//! * [`from_f64`] of a NaN is `cvtsd2ss`'s: quieted, sign and the leading 22
//!   payload bits kept.
//!
//! aarch64 differs: its default NaN is `0x7fc00000`, it also propagates the
//! first NaN operand quieted, but its FMA (`fmla`) looks at the addend first.
//!
//! The single-op functions ([`add`], [`sub`], [`mul`], [`div`], [`sqrt`],
//! [`fma`], [`neg`], [`from_f64`]) are public so that callers can use them as
//! a correctly rounded reference.
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
//! `ATEN_CPU_CAPABILITY=default` build. The mapping is written once, in
//! [`PytorchCpu`]'s blanket `Arithmetic` impl; [`crate::Binary64`] is the same
//! table in binary64.

use crate::ieee::{self, Format, PytorchCpu};
use rug::Float;
use std::cmp::Ordering;

pub use crate::ieee::MulAdd;

/// PyTorch's `float32` CPU arithmetic, emulated op by op through MPFR.
///
/// The value type is `f32`. See the [module docs](self) for the rounding of
/// each op; the [`Arithmetic`](crate::Arithmetic) impl is
/// [`PytorchCpu`]'s, shared with [`crate::Binary64`].
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

impl PytorchCpu for Binary32 {
    type Format = f32;

    fn mul_add(&self) -> MulAdd {
        self.mul_add
    }
}

/// Rounds an MPFR result to binary32, given the result at **24 bits** (rounded
/// to nearest) and its ternary value: [`ieee::round`] at `f32`.
///
/// This is the one place where binary32 rounding happens; see the
/// [`ieee`] module docs for why it rounds exactly once.
///
/// # Panics
///
/// If `rounded.prec() != 24`.
pub fn round(rounded: (Float, Ordering)) -> f32 {
    ieee::round(rounded)
}

/// x86-64's default NaN (`0xffc00000`, sign set): the result of an invalid
/// SSE/AVX operation (`0 * inf`, `inf - inf`, `0/0`, `inf/inf`,
/// `sqrtps(x < 0)`) none of whose operands is NaN.
pub const DEFAULT_NAN: u32 = <f32 as Format>::DEFAULT_NAN as u32;

/// The NaN oneMKL's `vsSqrt` (PyTorch's `float32` `torch.sqrt` on x86-64)
/// returns for an input below zero: `0x7fc00000`, sign clear. A NaN input
/// comes back quieted, like every other op's.
pub const MKL_SQRT_NAN: u32 = <f32 as Format>::MKL_SQRT_NAN as u32;

/// `f32(x)`: an `f64` rounded to the nearest binary32 (as `x as f32`,
/// `cvtsd2ss`).
pub fn from_f64(x: f64) -> f32 {
    ieee::from_f64(x)
}

/// `-x` (exact): the sign bit flipped, NaN included (a signalling NaN stays
/// signalling), as ATen's `neg` (a sign-bit xor) does.
pub fn neg(x: f32) -> f32 {
    ieee::neg(x)
}

/// `x + y`, correctly rounded; NaN as `addss x, y` (the first NaN of `x`, `y`).
pub fn add(x: f32, y: f32) -> f32 {
    ieee::add(x, y)
}

/// `x - y`, correctly rounded; NaN as `subss x, y` (the first NaN of `x`,
/// `y`, its sign not flipped).
pub fn sub(x: f32, y: f32) -> f32 {
    ieee::sub(x, y)
}

/// `x * y`, correctly rounded; NaN as `mulss x, y` (the first NaN of `x`, `y`).
pub fn mul(x: f32, y: f32) -> f32 {
    ieee::mul(x, y)
}

/// `x / y`, correctly rounded; NaN as `divss x, y` (the first NaN of `x`, `y`).
pub fn div(x: f32, y: f32) -> f32 {
    ieee::div(x, y)
}

/// `sqrt(x)`, correctly rounded (IEEE 754 `squareRoot`, not MKL's); a NaN
/// `x` quieted, and [`MKL_SQRT_NAN`] for `x < 0` (oneMKL's, as `torch.sqrt`).
pub fn sqrt(x: f32) -> f32 {
    ieee::sqrt(x)
}

/// `x * y + z` with a single rounding (IEEE 754 `fusedMultiplyAdd`); NaN as
/// x86's FMA with the operands in this order (the first NaN of `x`, `y`, `z`).
pub fn fma(x: f32, y: f32, z: f32) -> f32 {
    ieee::fma(x, y, z)
}
