//! [`HighPrecision`]: Adadelta in `p`-bit MPFR arithmetic.
//!
//! # Rounding
//!
//! * Every ATen op is **one** MPFR operation rounded to nearest (ties to
//!   even) at `p` bits: `add`, `mul`, `div`, `sqrt`; `add_alpha` (`x + alpha*y`)
//!   is a single fused multiply-add rounded once; `addcmul`
//!   (`s + value*t1*t2`) forms `value*t1` exactly (an MPFR product at the sum of
//!   the operands' precisions is exact) and then rounds `value*t1*t2 + s` once.
//!   `neg` is exact.
//! * MPFR's exponent range (about ±2^30 binary orders of magnitude) is so much
//!   wider than binary32's or binary64's that nothing reachable from `f32`
//!   inputs overflows or underflows; there are no subnormals.
//! * Hyperparameters are the **exact** values of the `f64` numbers given
//!   (`rho`, `eps`, `weight_decay`, and `-lr`, all exact at 53 bits). The one
//!   computed scalar, `1 - rho`, is rounded to nearest at `p` bits (at
//!   `p ≥ 64` and `rho ∈ [2^-11, 1]` it is exact).
//! * Inputs given as `f32` are converted exactly ([`Arithmetic::convert_f32`]
//!   gives a value of precision `max(p, 24)`).
//! * NaN and infinities follow MPFR, which follows IEEE 754 (`0/0`, `inf - inf`,
//!   `0 * inf`, `sqrt(-1)` are NaN; MPFR has a single, unsigned NaN).
//!
//! State computed in this arithmetic stays at `p` bits between steps.

use crate::algorithm::Hyperparams;
use crate::arithmetic::{Arithmetic, Scalars};
use rug::Float;

/// Bits needed to hold any `f64` exactly.
const F64_BITS: u32 = 53;
/// Bits needed to hold any `f32` exactly.
const F32_BITS: u32 = 24;

/// `p`-bit MPFR arithmetic, round to nearest, exact hyperparameters.
///
/// The value type is [`rug::Float`]. See the [module docs](self) for the
/// rounding of each op.
///
/// # Example
///
/// ```
/// use adadelta_reference::{Arithmetic, HighPrecision};
///
/// let hp = HighPrecision::new(64);
/// let third = hp.div(&hp.convert_f32(1.0), &hp.convert_f32(3.0));
/// assert_eq!(third.prec(), 64);
/// // 1/3 rounded to nearest at 64 bits is within 2^-65 (half an ulp at 2^-2) of 1/3.
/// let err = rug::Float::with_val(256, &third - rug::Float::with_val(256, 1) / 3u32).abs();
/// assert!(err <= rug::Float::with_val(64, rug::Float::u_exp(1, -66)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HighPrecision {
    prec: u32,
}

impl HighPrecision {
    /// The precision used by [`HighPrecision::default`].
    pub const DEFAULT_PREC: u32 = 256;

    /// An arithmetic that rounds every op to nearest at `prec` bits.
    ///
    /// # Panics
    ///
    /// If `prec` is outside MPFR's range
    /// `rug::float::prec_min()..=rug::float::prec_max()` (1 to about 2^31).
    pub fn new(prec: u32) -> Self {
        assert!(
            (rug::float::prec_min()..=rug::float::prec_max()).contains(&prec),
            "HighPrecision::new: precision {prec} outside MPFR's range"
        );
        HighPrecision { prec }
    }

    /// The precision, in bits, at which every op is rounded.
    pub fn prec(&self) -> u32 {
        self.prec
    }

    /// Exact conversion of an `f64` (at `max(p, 53)` bits).
    pub fn convert_f64(&self, x: f64) -> Float {
        Float::with_val(self.prec.max(F64_BITS), x)
    }
}

impl Default for HighPrecision {
    /// 256 bits.
    fn default() -> Self {
        HighPrecision::new(Self::DEFAULT_PREC)
    }
}

impl Arithmetic for HighPrecision {
    type Value = Float;

    /// `rho`, `eps`, `weight_decay` and `-lr` exact; `1 - rho` rounded to
    /// nearest at `p` bits.
    fn scalars(&self, hyper: &Hyperparams) -> Scalars<Float> {
        let rho = self.convert_f64(hyper.rho);
        let one_minus_rho = Float::with_val(self.prec, 1 - &rho);
        Scalars {
            rho,
            one_minus_rho,
            eps: self.convert_f64(hyper.eps),
            neg_lr: -self.convert_f64(hyper.lr),
            weight_decay: self.convert_f64(hyper.weight_decay),
        }
    }

    /// Exact, at `max(p, 24)` bits.
    fn convert_f32(&self, x: f32) -> Float {
        Float::with_val(self.prec.max(F32_BITS), x)
    }

    fn to_float(&self, x: &Float) -> Float {
        x.clone()
    }

    fn zero(&self) -> Float {
        Float::new(self.prec)
    }

    fn neg(&self, x: &Float) -> Float {
        -x.clone()
    }

    fn add(&self, x: &Float, y: &Float) -> Float {
        Float::with_val(self.prec, x + y)
    }

    fn mul(&self, x: &Float, y: &Float) -> Float {
        Float::with_val(self.prec, x * y)
    }

    fn div(&self, x: &Float, y: &Float) -> Float {
        Float::with_val(self.prec, x / y)
    }

    fn sqrt(&self, x: &Float) -> Float {
        Float::with_val(self.prec, x.sqrt_ref())
    }

    /// `x + alpha*y`, rounded once.
    fn add_alpha(&self, x: &Float, y: &Float, alpha: &Float) -> Float {
        Float::with_val(self.prec, alpha.mul_add_ref(y, x))
    }

    /// `s + value*t1*t2`, rounded once (`value*t1` is formed exactly).
    fn addcmul(&self, s: &Float, t1: &Float, t2: &Float, value: &Float) -> Float {
        let value_t1 = Float::with_val(value.prec() + t1.prec(), value * t1);
        Float::with_val(self.prec, value_t1.mul_add_ref(t2, s))
    }
}
