//! The arithmetic the Adadelta algorithm is generic over.
//!
//! The algorithm (in [`crate::algorithm`]) only ever calls the methods of
//! [`Arithmetic`], one per ATen op of PyTorch's single-tensor Adadelta path:
//!
//! | ATen call in `adadelta.py`                 | method                          |
//! |--------------------------------------------|---------------------------------|
//! | `-grad`                                    | [`Arithmetic::neg`]             |
//! | `grad.add(param, alpha=weight_decay)`      | [`Arithmetic::add_alpha`]       |
//! | `x.mul_(rho)`                              | [`Arithmetic::mul`]             |
//! | `x.addcmul_(t1, t2, value=1 - rho)`        | [`Arithmetic::addcmul`]         |
//! | `x.add(eps)`                               | [`Arithmetic::add`]             |
//! | `x.sqrt_()`                                | [`Arithmetic::sqrt`]            |
//! | `delta.div_(std)`, `delta.mul_(grad)`      | [`Arithmetic::div`], [`Arithmetic::mul`] |
//! | `param.add_(delta, alpha=-lr)`             | [`Arithmetic::add_alpha`]       |
//!
//! How each op rounds is the implementation's business and is documented on
//! [`crate::HighPrecision`], [`crate::Binary32`] and [`crate::Binary64`]
//! (the last two share one implementation, [`crate::PytorchCpu`]'s). How the Python floats
//! `lr`, `rho`, `eps`, `weight_decay` (and `1 - rho`, computed in Python
//! double) become operands is [`Arithmetic::scalars`].

use crate::algorithm::Hyperparams;
use rug::Float;
use std::fmt::Debug;

/// The scalar operands of the update, as the arithmetic sees them.
///
/// Built by [`Arithmetic::scalars`] from [`Hyperparams`].
#[derive(Clone, Debug, PartialEq)]
pub struct Scalars<V> {
    /// `rho`, the operand of `mul_(rho)`.
    pub rho: V,
    /// `1 - rho`, the `value=` of both `addcmul_`. PyTorch computes it in
    /// Python (double) arithmetic before handing it to ATen.
    pub one_minus_rho: V,
    /// `eps`, the operand of both `add(eps)`.
    pub eps: V,
    /// `-lr`, the `alpha=` of the final `param.add_(delta, alpha=-lr)`.
    pub neg_lr: V,
    /// `weight_decay`, the `alpha=` of `grad.add(param, alpha=weight_decay)`.
    pub weight_decay: V,
}

/// An arithmetic in which to run Adadelta: a value type, conversions, and the
/// ATen ops the algorithm uses.
///
/// Every op takes its operands by reference and returns a new value; the
/// algorithm assigns results back to the state, which is how the in-place
/// ATen ops (`mul_`, `addcmul_`, ...) behave element-wise.
pub trait Arithmetic {
    /// One tensor element.
    type Value: Clone + Debug;

    /// The scalar operands for `hyper`, converted the way this arithmetic
    /// (and PyTorch, for [`crate::Binary32`] and [`crate::Binary64`])
    /// converts them.
    fn scalars(&self, hyper: &Hyperparams) -> Scalars<Self::Value>;

    /// An element from an `f32` (exact in every provided arithmetic).
    fn convert_f32(&self, x: f32) -> Self::Value;

    /// The exact value of an element as an MPFR number (NaN and infinities
    /// included).
    fn to_float(&self, x: &Self::Value) -> Float;

    /// `+0`, the initial value of `square_avg` and `acc_delta`
    /// (`torch.zeros_like`).
    fn zero(&self) -> Self::Value;

    /// `-x` (exact).
    fn neg(&self, x: &Self::Value) -> Self::Value;

    /// `x.add(y)`: `x + y`.
    fn add(&self, x: &Self::Value, y: &Self::Value) -> Self::Value;

    /// `x.mul(y)`: `x * y`.
    fn mul(&self, x: &Self::Value, y: &Self::Value) -> Self::Value;

    /// `x.div(y)`: `x / y`.
    fn div(&self, x: &Self::Value, y: &Self::Value) -> Self::Value;

    /// `x.sqrt()`.
    fn sqrt(&self, x: &Self::Value) -> Self::Value;

    /// `x.add(y, alpha=alpha)`: `x + alpha * y`, ATen's add-with-alpha.
    fn add_alpha(&self, x: &Self::Value, y: &Self::Value, alpha: &Self::Value) -> Self::Value;

    /// `s.addcmul(t1, t2, value=value)`: `s + value * t1 * t2`.
    fn addcmul(
        &self,
        s: &Self::Value,
        t1: &Self::Value,
        t2: &Self::Value,
        value: &Self::Value,
    ) -> Self::Value;

    /// [`Arithmetic::convert_f32`] on every element.
    fn convert_f32_slice(&self, xs: &[f32]) -> Vec<Self::Value> {
        xs.iter().map(|&x| self.convert_f32(x)).collect()
    }
}
