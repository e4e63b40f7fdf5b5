//! The element types the kernel steps ([`Element`]: `f32` and `f64`), each
//! with its own PyTorch scalar conversion ([`Coefficients::scalars`]) and its
//! own pairings of instruction set and square root.

use std::fmt::{Debug, Display};

use half::{bf16, f16};

use super::cpu::{Cpu, LibtorchSqrt};
use super::dispatch::{self, Kernel};
use super::div_sqrt::DivSqrt;
use super::isa::Isa;
use crate::{Coefficients, Error, Scalars};

/// A floating-point type the kernel steps: `f32` (torch's `float32`), `f64`
/// (`float64`), [`half::bf16`] (`bfloat16`) and [`half::f16`] (`float16`).
/// A parameter, its gradient and its state have the same element type, as
/// in PyTorch, where the state is `zeros_like(param)`.
///
/// Sealed: the kernel has a compiled loop for each element type, so only
/// this crate implements it.
///
/// ```
/// use adadelta::kernel::Element;
/// assert_eq!(<f64 as Element>::DTYPE, "float64");
/// assert_eq!(<f32 as Element>::DTYPE, "float32");
/// assert_eq!(<adadelta::half::bf16 as Element>::DTYPE, "bfloat16");
/// ```
pub trait Element:
    Copy + Default + PartialEq + PartialOrd + Debug + Display + Send + Sync + 'static + sealed::Sealed
{
    /// The dtype's name as torch prints it (`torch.float64` is `"float64"`).
    const DTYPE: &'static str;

    /// The type ATen computes this dtype's ops in (its `opmath_type`), and
    /// so the type of the step's scalars ([`Coefficients::scalars`]): `f32`
    /// for `bfloat16` and `float16`, the type itself for `f32` and `f64`.
    type Opmath: Copy + Default + PartialEq + Debug + From<f32> + Into<f64> + Send + Sync + 'static;

    /// The IEEE-754 bit pattern, widened to 64 bits: what "the same bits"
    /// compares (a NaN equals itself, `0.0` differs from `-0.0`).
    ///
    /// ```
    /// use adadelta::kernel::Element;
    /// assert_eq!(Element::bits(1.0f32), 0x3f80_0000);
    /// assert_ne!(Element::bits(-0.0f64), Element::bits(0.0f64));
    /// ```
    fn bits(self) -> u64;

    /// What [`bits`](Self::bits) gives, for messages: `"u32 (the bit
    /// pattern of a float32)"`.
    const BITS_NAME: &'static str;

    /// The value of the bit pattern `bits`; `None` when it does not fit the
    /// type's width.
    ///
    /// ```
    /// use adadelta::kernel::Element;
    /// assert_eq!(<f32 as Element>::from_bits(0x3f80_0000), Some(1.0));
    /// assert_eq!(<f32 as Element>::from_bits(1 << 32), None);
    /// ```
    fn from_bits(bits: u64) -> Option<Self>;

    /// Neither NaN nor infinite.
    ///
    /// ```
    /// use adadelta::kernel::Element;
    /// assert!(!Element::is_finite(f64::NAN) && Element::is_finite(f32::MAX));
    /// ```
    fn is_finite(self) -> bool;
}

/// Whether `a` and `b` hold the same bit patterns, element by element.
pub(crate) fn same_bits<E: Element>(a: &[E], b: &[E]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits() == y.bits())
}

pub(crate) mod sealed {
    use super::*;

    /// What the kernel needs of an element type, hidden from users.
    pub trait Sealed: Sized {
        /// The group's scalars converted as PyTorch converts them for a
        /// tensor of this dtype.
        fn scalars(c: &Coefficients) -> Scalars<Self::Opmath>
        where
            Self: Element;
        /// The compiled loop for this element type on `isa` with oneMKL's
        /// square root `mkl` (`None`: the correctly rounded one), after the
        /// checks of `Kernel::new`.
        fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<Self>, Error>;
    }
}

/// `Element` for `$e`: its dtype name, its opmath and scalars
/// (`Coefficients`'s field) and its pairings.
macro_rules! element {
    ($e:ident, $width:literal, $dtype:literal, $pick:path) => {
        element!($e, $e, $width, $dtype, $pick);
    };
    ($e:ident, $opmath:ty, $width:literal, $dtype:literal, $pick:path) => {
        impl Element for $e {
            const DTYPE: &'static str = $dtype;
            type Opmath = $opmath;
            fn bits(self) -> u64 {
                self.to_bits().into()
            }
            const BITS_NAME: &'static str =
                concat!("u", $width, " (the bit pattern of a ", $dtype, ")");
            fn from_bits(bits: u64) -> Option<$e> {
                bits.try_into().ok().map($e::from_bits)
            }
            fn is_finite(self) -> bool {
                $e::is_finite(self)
            }
        }

        impl sealed::Sealed for $e {
            fn scalars(c: &Coefficients) -> Scalars<$opmath>
            where
                Self: Element,
            {
                c.$e
            }
            fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<$e>, Error> {
                $pick(isa, mkl, ds, Cpu::this())
            }
        }
    };
}

element!(f32, "32", "float32", dispatch::pick_f32);
element!(f64, "64", "float64", dispatch::pick_f64);
element!(bf16, f32, "16", "bfloat16", dispatch::pick_bf16);
element!(f16, f32, "16", "float16", dispatch::pick_f16);
