//! The element types the kernel steps ([`Element`]: `f32` and `f64`), each
//! with its own PyTorch scalar conversion ([`Coefficients::scalars`]) and its
//! own pairings of instruction set and square root.

use std::fmt::Debug;

use super::cpu::{Cpu, LibtorchSqrt};
use super::dispatch::{self, Kernel};
use super::div_sqrt::DivSqrt;
use super::isa::Isa;
use crate::{Coefficients, Error, Scalars};

/// A floating-point type the kernel steps: `f32` (torch's `float32`) and
/// `f64` (`float64`). A parameter, its gradient and its state have the same
/// element type, as in PyTorch, where the state is `zeros_like(param)`.
///
/// Sealed: the kernel has a compiled loop for each element type, so only
/// this crate implements it.
///
/// ```
/// use adadelta::kernel::Element;
/// assert_eq!(<f64 as Element>::DTYPE, "float64");
/// assert_eq!(<f32 as Element>::DTYPE, "float32");
/// ```
pub trait Element:
    Copy + Default + PartialEq + Debug + Send + Sync + 'static + sealed::Sealed
{
    /// The dtype's name as torch prints it (`torch.float64` is `"float64"`).
    const DTYPE: &'static str;
}

pub(crate) mod sealed {
    use super::*;

    /// What the kernel needs of an element type, hidden from users.
    pub trait Sealed: Sized {
        /// `-0.0`: the gradient's sign flip for `maximize` (an xor).
        const NEG_ZERO: Self;
        /// The group's scalars converted to this type as PyTorch converts
        /// them for a tensor of this dtype.
        fn scalars(c: &Coefficients) -> Scalars<Self>;
        /// The compiled loop for this element type on `isa` with oneMKL's
        /// square root `mkl` (`None`: the correctly rounded one), after the
        /// checks of `Kernel::new`.
        fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<Self>, Error>;
    }
}

/// `Element` for `$e`: its dtype name, its scalars (`Coefficients`'s
/// field), `-0.0` and its pairings.
macro_rules! element {
    ($e:ident, $dtype:literal, $pick:path) => {
        impl Element for $e {
            const DTYPE: &'static str = $dtype;
        }

        impl sealed::Sealed for $e {
            const NEG_ZERO: $e = -0.0;
            fn scalars(c: &Coefficients) -> Scalars<$e> {
                c.$e
            }
            fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<$e>, Error> {
                $pick(isa, mkl, ds, Cpu::this())
            }
        }
    };
}

element!(f32, "float32", dispatch::pick_f32);
element!(f64, "float64", dispatch::pick_f64);
