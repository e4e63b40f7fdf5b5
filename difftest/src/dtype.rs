//! The parameter dtypes the differential tests run, float32 (`f32`) and
//! float64 (`f64`), and what each piece of the crate needs of them: the
//! format's constants for the error bound ([`crate::bound`]), the MPFR
//! reference's emulation of the format, and native arithmetic to recompute
//! a step's intermediates. Bit patterns and finiteness are
//! [`Element`](adadelta::kernel::Element)'s.

use crate::accuracy::Compared;
use adadelta_reference::{Arithmetic, Binary32, Binary64, MulAdd};

/// A parameter dtype: `f32` (binary32, `torch.float32`) or `f64`
/// (binary64, `torch.float64`).
///
/// ```
/// use adadelta_difftest::dtype::Dtype;
/// assert_eq!(<f32 as Dtype>::UNIT_ROUNDOFF, 2f64.powi(-24));
/// assert_eq!(<f64 as Dtype>::UNIT_ROUNDOFF, 2f64.powi(-53));
/// assert_eq!(<f32 as Dtype>::ETA, 2f64.powi(-150));
/// // 2^-1075 is no f64: the smallest f64 above it.
/// assert_eq!(<f64 as Dtype>::ETA, f64::from_bits(1));
/// assert_eq!(<f64 as Dtype>::REFERENCE, "reference binary64");
/// ```
pub trait Dtype:
    adadelta::kernel::Element
    + adadelta_reference::Format
    + Compared
    + tch::kind::Element
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// Unit roundoff of the format, round to nearest: `2^-p` (`2^-24`,
    /// `2^-53`).
    const UNIT_ROUNDOFF: f64;
    /// An f64 at least the largest rounding error in the format's subnormal
    /// range, half the smallest subnormal: `2^-150` exactly for binary32;
    /// for binary64 `2^-1075` is below every f64, so `2^-1074`.
    const ETA: f64;
    /// The name of the MPFR reference's emulation of the format, as the
    /// report prints it.
    const REFERENCE: &'static str;
    /// The MPFR reference emulating the format op by op.
    type Reference: Arithmetic<Value = Self>;

    /// The reference with multiply-adds computed as `mul_add` says.
    fn reference(mul_add: MulAdd) -> Self::Reference;
    /// `x` rounded to nearest (even) in the format.
    fn from_f64(x: f64) -> Self;
    /// The value as an f64 (exact).
    fn to_f64(self) -> f64;
    /// `self * a + b` rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The correctly rounded square root.
    fn sqrt(self) -> Self;
}

impl Dtype for f32 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 24) as f64;
    // The smallest f32 subnormal, 2^-149, halved.
    const ETA: f64 = 1.401_298_464_324_817e-45 / 2.0;
    const REFERENCE: &'static str = "reference binary32";
    type Reference = Binary32;

    fn reference(mul_add: MulAdd) -> Binary32 {
        Binary32 { mul_add }
    }
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
    fn mul_add(self, a: f32, b: f32) -> f32 {
        f32::mul_add(self, a, b)
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Dtype for f64 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 53) as f64;
    const ETA: f64 = f64::from_bits(1);
    const REFERENCE: &'static str = "reference binary64";
    type Reference = Binary64;

    fn reference(mul_add: MulAdd) -> Binary64 {
        Binary64 { mul_add }
    }
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn mul_add(self, a: f64, b: f64) -> f64 {
        f64::mul_add(self, a, b)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}
