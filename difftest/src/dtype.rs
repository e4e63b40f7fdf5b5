//! The parameter dtypes the differential tests run — float32 (`f32`),
//! float64 (`f64`), bfloat16 (`half::bf16`) and float16 (`half::f16`) —
//! and what each piece of the crate needs of them: the format's constants
//! for the error bounds ([`crate::bound`]), exact conversions to and from
//! f64, and, for the two IEEE formats the MPFR reference emulates natively
//! ([`Dtype`]), its emulation and native arithmetic to recompute a step's
//! intermediates. Bit patterns and finiteness are
//! [`Element`](adadelta::kernel::Element)'s.

use crate::accuracy::Compared;
use adadelta_reference::{Arithmetic, Binary32, Binary64, MulAdd};
use half::{bf16, f16};

/// Any parameter dtype of the differential tests: `f32`, `f64`, `bf16`,
/// `f16`. Its rounding constants and its conversions.
///
/// ```
/// use adadelta_difftest::dtype::Floating;
/// use half::{bf16, f16};
/// assert_eq!(<f32 as Floating>::UNIT_ROUNDOFF, 2f64.powi(-24));
/// assert_eq!(<f64 as Floating>::UNIT_ROUNDOFF, 2f64.powi(-53));
/// assert_eq!(<bf16 as Floating>::UNIT_ROUNDOFF, 2f64.powi(-8));
/// assert_eq!(<f16 as Floating>::UNIT_ROUNDOFF, 2f64.powi(-11));
/// assert_eq!(<f32 as Floating>::ETA, 2f64.powi(-150));
/// // 2^-1075 is no f64: the smallest f64 above it.
/// assert_eq!(<f64 as Floating>::ETA, f64::from_bits(1));
/// assert_eq!(<bf16 as Floating>::ETA, 2f64.powi(-134));
/// assert_eq!(<f16 as Floating>::ETA, 2f64.powi(-25));
/// assert_eq!(<f16 as Floating>::MAX, 65504.0);
/// assert_eq!(<bf16 as Floating>::MAX, f64::from(bf16::MAX.to_f32()));
/// // Through f32, as torch.tensor and c10::BFloat16(float) round a Python
/// // float: 1 + 2^-8 + 2^-30 becomes f32 1 + 2^-8, a tie, then 1.
/// assert_eq!(<bf16 as Floating>::from_f64(1.0 + 2f64.powi(-8) + 2f64.powi(-30)), bf16::ONE);
/// ```
pub trait Floating:
    adadelta::kernel::Element + adadelta_reference::Format + Compared + PartialOrd
{
    /// Unit roundoff of the format, round to nearest: `2^-p` (`2^-24`,
    /// `2^-53`, `2^-8`, `2^-11`).
    const UNIT_ROUNDOFF: f64;
    /// An f64 at least the largest rounding error in the format's subnormal
    /// range, half the smallest subnormal: `2^-150` (binary32), `2^-134`
    /// (bfloat16, binary32's exponent range), `2^-25` (binary16) exactly;
    /// for binary64 `2^-1075` is below every f64, so `2^-1074`.
    const ETA: f64;
    /// The largest finite value, `(2 - 2^(1-p))·2^BIAS` (binary16: 65504).
    const MAX: f64;
    /// `x` rounded to nearest (even) in the format; the 16-bit dtypes
    /// through f32, as `torch.tensor` and ATen's scalar conversion
    /// (`c10::BFloat16(float)`, `c10::Half(float)`) round a Python float.
    fn from_f64(x: f64) -> Self;
    /// The value as an f64 (exact).
    fn to_f64(self) -> f64;
}

/// A parameter dtype whose format the MPFR reference emulates with its
/// own value type and which libtorch's `tch` maps to its kind: `f32`
/// (binary32, `torch.float32`) or `f64` (binary64, `torch.float64`).
///
/// ```
/// use adadelta_difftest::dtype::Dtype;
/// assert_eq!(<f64 as Dtype>::REFERENCE, "reference binary64");
/// ```
pub trait Dtype:
    Floating
    + tch::kind::Element
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// The name of the MPFR reference's emulation of the format, as the
    /// report prints it.
    const REFERENCE: &'static str;
    /// The MPFR reference emulating the format op by op.
    type Reference: Arithmetic<Value = Self>;

    /// The reference with multiply-adds computed as `mul_add` says.
    fn reference(mul_add: MulAdd) -> Self::Reference;
    /// `self * a + b` rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The correctly rounded square root.
    fn sqrt(self) -> Self;
}

impl Floating for f32 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 24) as f64;
    // The smallest f32 subnormal, 2^-149, halved.
    const ETA: f64 = 1.401_298_464_324_817e-45 / 2.0;
    const MAX: f64 = f32::MAX as f64;
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
}

impl Dtype for f32 {
    const REFERENCE: &'static str = "reference binary32";
    type Reference = Binary32;

    fn reference(mul_add: MulAdd) -> Binary32 {
        Binary32 { mul_add }
    }
    fn mul_add(self, a: f32, b: f32) -> f32 {
        f32::mul_add(self, a, b)
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Floating for f64 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 53) as f64;
    const ETA: f64 = f64::from_bits(1);
    const MAX: f64 = f64::MAX;
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Dtype for f64 {
    const REFERENCE: &'static str = "reference binary64";
    type Reference = Binary64;

    fn reference(mul_add: MulAdd) -> Binary64 {
        Binary64 { mul_add }
    }
    fn mul_add(self, a: f64, b: f64) -> f64 {
        f64::mul_add(self, a, b)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}

impl Floating for bf16 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 8) as f64;
    // The smallest bfloat16 subnormal, 2^-133 (binary32's exponent range,
    // 7 fraction bits), halved.
    const ETA: f64 = 1.0 / (1u128 << 127) as f64 / (1u64 << 7) as f64;
    const MAX: f64 = bf16::MAX.to_f64_const();
    fn from_f64(x: f64) -> bf16 {
        bf16::from_f32(x as f32)
    }
    fn to_f64(self) -> f64 {
        self.to_f64_const()
    }
}

impl Floating for f16 {
    const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 11) as f64;
    // The smallest binary16 subnormal, 2^-24, halved.
    const ETA: f64 = 1.0 / (1u64 << 25) as f64;
    const MAX: f64 = f16::MAX.to_f64_const();
    fn from_f64(x: f64) -> f16 {
        f16::from_f32(x as f32)
    }
    fn to_f64(self) -> f64 {
        self.to_f64_const()
    }
}
