//! [`Binary64`]: IEEE 754 binary64 arithmetic emulated through MPFR, and the
//! PyTorch CPU kernels of Adadelta's ATen ops on `float64` tensors expressed
//! in it.
//!
//! Everything here is [`crate::ieee`] at `f64`, exactly as
//! [`crate::binary32`] is at `f32`: every op computed by MPFR at 53 bits,
//! rounded to nearest-even, then brought onto the binary64 grid with a single
//! rounding ([`round`]: subnormals, multiples of `2^-1074`, through
//! `mpfr_subnormalize` with the first rounding's ternary value; overflow to
//! ±infinity at `2^1024`), never with native `f64` arithmetic.
//!
//! # NaN bits
//!
//! As x86-64's SSE2/AVX/FMA units give them:
//!
//! * an op with a NaN operand returns the **first** NaN operand (in the
//!   order of the function's parameters), quieted: bit 51 set, sign and
//!   payload kept;
//! * an invalid op with no NaN operand (`0 * inf`, `inf - inf`, `0/0`,
//!   `inf/inf`) returns x86's default NaN [`DEFAULT_NAN`],
//!   `0xfff8000000000000`;
//! * [`sqrt`] of `x < 0` (`-0` excluded: `sqrt(-0) = -0`) returns
//!   [`MKL_SQRT_NAN`], `0x7ff8000000000000`: PyTorch 2.13's `float64`
//!   `torch.sqrt` is oneMKL's `vdSqrt`, measured to give `+0 → +0`,
//!   `-0 → -0`, `+inf → +inf`, this NaN for `-inf`, `-1` and negative
//!   subnormals, and a NaN input back quieted with its sign and payload;
//! * [`neg`] flips the sign bit, NaN included, without quieting.
//!
//! # PyTorch's kernels
//!
//! ATen's `float64` CPU kernels are the same templates as the `float32` ones,
//! so [`Binary64`] is the table of the [`binary32`](crate::binary32) module
//! docs with every op in binary64 and the same operand orders for NaN. The
//! scalars are the Python floats themselves, with no conversion: `rho`,
//! `c = 1.0 - rho` (computed in `f64`, as Python does), `eps`, `-lr`,
//! `weight_decay`.
//!
//! | ATen op                       | [`MulAdd::Fused`]      | [`MulAdd::Unfused`]          |
//! |-------------------------------|------------------------|------------------------------|
//! | `g.add(p, alpha=wd)`          | `fma(p, wd, g)`        | `g + f64(wd * p)`            |
//! | `s.mul_(rho)`                 | `f64(s * rho)`         | same                         |
//! | `s.addcmul_(t1, t2, value=c)` | `fma(f64(c * t1), t2, s)` | `s + f64(f64(c * t1) * t2)` |
//! | `x.add(eps)`                  | `f64(x + eps)`         | same                         |
//! | `div`, `mul`, `sqrt`          | correctly rounded      | same                         |
//! | `p.add_(d, alpha=-lr)`        | `fma(d, -lr, p)`       | `p + f64(-lr * d)`           |
//!
//! **Not modelled**: PyTorch's `float64` `torch.sqrt` (oneMKL `vdSqrt`) is not
//! correctly rounded: on this project's AMD machines about 1.4 % of uniform
//! inputs in `[0, 4)` come out 1 ulp off (`fast/docs/numerics.md`).
//! [`sqrt`] here is the correctly rounded IEEE square root.

use crate::ieee::{self, Format, PytorchCpu};
use rug::Float;
use std::cmp::Ordering;

pub use crate::ieee::MulAdd;

/// PyTorch's `float64` CPU arithmetic, emulated op by op through MPFR.
///
/// The value type is `f64`. See the [module docs](self) for the rounding of
/// each op and the scalars; the [`Arithmetic`](crate::Arithmetic) impl is
/// [`PytorchCpu`]'s, shared with [`crate::Binary32`].
///
/// # Example
///
/// ```
/// use adadelta_reference::{Arithmetic, Binary64, MulAdd};
///
/// let fused = Binary64 { mul_add: MulAdd::Fused };
/// let unfused = Binary64 { mul_add: MulAdd::Unfused };
/// // x + alpha*y with x = -1, y = alpha = 1 + 2^-27: the exact result
/// // 2^-26 + 2^-54 needs 29 bits; the unfused product rounds 2^-54 away first.
/// let (x, y) = (-1.0f64, 1.0 + 2f64.powi(-27));
/// assert_eq!(fused.add_alpha(&x, &y, &y), 2f64.powi(-26) + 2f64.powi(-54));
/// assert_eq!(unfused.add_alpha(&x, &y, &y), 2f64.powi(-26));
/// // f32 inputs are converted exactly.
/// assert_eq!(fused.convert_f32(0.1f32), f64::from(0.1f32));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binary64 {
    /// Fused or unfused `add(alpha=)` and `addcmul` kernels.
    pub mul_add: MulAdd,
}

impl PytorchCpu for Binary64 {
    type Format = f64;

    fn mul_add(&self) -> MulAdd {
        self.mul_add
    }
}

/// Rounds an MPFR result to binary64, given the result at **53 bits**
/// (rounded to nearest) and its ternary value: [`ieee::round`] at `f64`.
///
/// # Panics
///
/// If `rounded.prec() != 53`.
pub fn round(rounded: (Float, Ordering)) -> f64 {
    ieee::round(rounded)
}

/// x86-64's default NaN (`0xfff8000000000000`, sign set): the result of an
/// invalid SSE2/AVX operation (`0 * inf`, `inf - inf`, `0/0`, `inf/inf`,
/// `sqrtsd(x < 0)`) none of whose operands is NaN.
pub const DEFAULT_NAN: u64 = <f64 as Format>::DEFAULT_NAN;

/// The NaN oneMKL's `vdSqrt` (PyTorch's `float64` `torch.sqrt` on x86-64)
/// returns for an input below zero: `0x7ff8000000000000`, sign clear.
pub const MKL_SQRT_NAN: u64 = <f64 as Format>::MKL_SQRT_NAN;

/// `-x` (exact): the sign bit flipped, NaN included (a signalling NaN stays
/// signalling).
pub fn neg(x: f64) -> f64 {
    ieee::neg(x)
}

/// `x + y`, correctly rounded; NaN as `addsd x, y` (the first NaN of `x`, `y`).
pub fn add(x: f64, y: f64) -> f64 {
    ieee::add(x, y)
}

/// `x - y`, correctly rounded; NaN as `subsd x, y` (the first NaN of `x`,
/// `y`, its sign not flipped).
pub fn sub(x: f64, y: f64) -> f64 {
    ieee::sub(x, y)
}

/// `x * y`, correctly rounded; NaN as `mulsd x, y` (the first NaN of `x`, `y`).
pub fn mul(x: f64, y: f64) -> f64 {
    ieee::mul(x, y)
}

/// `x / y`, correctly rounded; NaN as `divsd x, y` (the first NaN of `x`, `y`).
pub fn div(x: f64, y: f64) -> f64 {
    ieee::div(x, y)
}

/// `sqrt(x)`, correctly rounded (IEEE 754 `squareRoot`, not oneMKL's); a NaN
/// `x` quieted, and [`MKL_SQRT_NAN`] for `x < 0` (oneMKL's, as `torch.sqrt`).
pub fn sqrt(x: f64) -> f64 {
    ieee::sqrt(x)
}

/// `x * y + z` with a single rounding (IEEE 754 `fusedMultiplyAdd`); NaN as
/// x86's FMA with the operands in this order (the first NaN of `x`, `y`, `z`).
pub fn fma(x: f64, y: f64, z: f64) -> f64 {
    ieee::fma(x, y, z)
}

/// `f64(x)` of an `f32`: exact (`cvtss2sd`); a NaN quieted, sign and payload
/// kept (shifted up 29 bits).
pub fn from_f32(x: f32) -> f64 {
    ieee::convert(x)
}
