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

impl Element for f32 {
    const DTYPE: &'static str = "float32";
}

impl sealed::Sealed for f32 {
    const NEG_ZERO: f32 = -0.0;
    fn scalars(c: &Coefficients) -> Scalars<f32> {
        c.f32
    }
    fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<f32>, Error> {
        dispatch::pick_f32(isa, mkl, ds, Cpu::this())
    }
}

impl Element for f64 {
    const DTYPE: &'static str = "float64";
}

impl sealed::Sealed for f64 {
    const NEG_ZERO: f64 = -0.0;
    fn scalars(c: &Coefficients) -> Scalars<f64> {
        c.f64
    }
    fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, _ds: DivSqrt) -> Result<Kernel<f64>, Error> {
        dispatch::pick_f64(isa, mkl, Cpu::this())
    }
}
