//! `bfloat16` and `float16` tensors: [`Half`], Adadelta's ATen ops on a
//! 16-bit format ([`Bfloat16`], [`Binary16`]), in either of two roundings.
//!
//! PyTorch 2.13's CPU kernels compute a `bfloat16` or `float16` op in
//! `float32` (ATen's `opmath_type`): the operands are widened exactly, the op
//! runs in binary32 (fused as on the AVX2/AVX-512 builds), and the result is
//! rounded to the 16-bit format once, at the op's end. That is
//! [`Rounding::Opmath`]: each op here is [`crate::binary32`]'s, then
//! [`ieee::convert`] to the format. Its double rounding (binary32, then 16
//! bits) is PyTorch's own.
//!
//! [`Rounding::Once`] is the `adadelta` crate's default numerics for these
//! dtypes: the **exact** result of each ATen op (`s + value·t1·t2` for
//! `addcmul`, `x + alpha·y` for `add(alpha=)`), rounded once to the format
//! by [`ieee::round`] (its precision, exponent range and subnormals).
//!
//! | ATen op | `Once` | `Opmath` (PyTorch) |
//! |---|---|---|
//! | `x.add(y)`, `x.mul(y)`, `x.div(y)`, `x.sqrt()` | `F(x ∘ y)` | `F(f32(x ∘ y))` |
//! | `x.add(y, alpha=a)` | `F(x + a·y)` | `F(fma32(y, a, x))` |
//! | `s.addcmul(t1, t2, value=c)` | `F(s + c·t1·t2)` | `F(fma32(f32(t1·c), t2, s))` |
//!
//! [`Rounding::OpmathScalar`] is PyTorch's scalar code, which computes the
//! elements its vectorised loops leave over (the last `len % 32` of a
//! tensor, or of each thread's chunk of it): `Opmath`, except `add(alpha=)`,
//! which is `F(x + F(alpha·y))`.
//!
//! # Values and scalars
//!
//! A value is an `f32` (`Value = f32`, as ATen's opmath): a tensor element
//! is a value of the format widened exactly, and a scalar is what ATen's
//! kernel takes for that op and dtype, measured with torch 2.13 on CPU
//! (`fast/docs/numerics.md`, "Other dtypes"):
//!
//! * `mul_(rho)`: `f32(rho)` on the for-loop path, but `F(rho)` with
//!   `foreach` (`torch._foreach_mul_` rounds its scalar to the tensor's
//!   dtype: `bfloat16(0.9) = 0.8984375`);
//! * `addcmul`'s `value = 1 - rho`: `f32`, on both paths;
//! * `add(eps)` and the `alpha=` of `add` (`weight_decay`, `-lr`): `F`.
//!
//! A Python float reaches `F` through `f32` (`c10::BFloat16(float)`): two
//! roundings, `F(f32(x))`; torch 2.13 rounds `1 + 2^-8 + 2^-30` to bfloat16
//! `1.0`, not `1 + 2^-7`.
//!
//! # NaN
//!
//! As x86's binary32 unit gives them, then converted ([`ieee::convert`]):
//! the first NaN operand quieted, sign and leading payload kept; an invalid
//! op (`0·inf`, `inf − inf`, `0/0`, `sqrt(x < 0)`) gives the default NaN
//! (sign set, quiet: `0xffc0`, `0xfe00`). This is torch's `float16` on every
//! length measured; torch's `bfloat16` NaNs depend on the length (its scalar
//! conversion gives `0x7fc0` whatever the operands, its AVX-512 one
//! `0xffff`), so there only NaN-ness is modelled.

use crate::algorithm::Hyperparams;
use crate::arithmetic::{Arithmetic, Scalars};
use crate::binary32;
use crate::ieee::{self, exact, nan_rule, rounded, Format};
use rug::Float;
use std::fmt::Debug;
use std::marker::PhantomData;

/// How each op of a [`Half`] arithmetic is rounded (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// The exact result rounded once to the 16-bit format: the `adadelta`
    /// crate's default numerics.
    Once,
    /// Computed in binary32 as PyTorch's vectorised CPU kernels do, then
    /// rounded to the 16-bit format.
    Opmath,
    /// As PyTorch's scalar code computes the elements its vectorised loops
    /// leave over: [`Rounding::Opmath`], except that `add(alpha=)` rounds
    /// `alpha·y` to the format first and adds unfused, `F(x + F(alpha·y))`
    /// (`c10::BFloat16`/`c10::Half` arithmetic).
    OpmathScalar,
}

/// Adadelta's ATen ops on tensors of the 16-bit format `F` (`half::bf16` or
/// `half::f16`), values carried as `f32`.
///
/// # Example
///
/// ```
/// use adadelta_reference::half_types::{Bfloat16, Rounding};
/// use adadelta_reference::{Arithmetic, Hyperparams};
///
/// let h = Hyperparams::default(); // rho = 0.9
/// // The for-loop multiplies by f32(0.9); torch._foreach_mul_ by bfloat16(0.9).
/// assert_eq!(Bfloat16::new(Rounding::Opmath, false).scalars(&h).rho, 0.9f32);
/// assert_eq!(Bfloat16::new(Rounding::Opmath, true).scalars(&h).rho, 0.8984375);
///
/// // 2^-40 + 1.0625·2.125: the product is the bfloat16 midpoint 2.2578125
/// // (289·2^-7), and the 2^-40 above it sends the exact sum up. Rounded once
/// // it goes up; through binary32 (PyTorch) the 2^-40 is lost and the tie
/// // goes to the even 2.25.
/// let once = Bfloat16::new(Rounding::Once, false);
/// let torch = Bfloat16::new(Rounding::Opmath, false);
/// let (x, y, alpha) = (2f32.powi(-40), 2.125f32, 1.0625f32);
/// assert_eq!(once.add_alpha(&x, &y, &alpha), 2.265625);
/// assert_eq!(torch.add_alpha(&x, &y, &alpha), 2.25);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Half<F> {
    /// How each op rounds.
    pub rounding: Rounding,
    /// PyTorch's `foreach` path (`_multi_tensor_adadelta`): `mul_(rho)`'s
    /// scalar is rounded to `F`.
    pub foreach: bool,
    format: PhantomData<F>,
}

/// `bfloat16` tensors.
pub type Bfloat16 = Half<half::bf16>;
/// `float16` (IEEE binary16) tensors.
pub type Binary16 = Half<half::f16>;

impl<F: Format> Half<F> {
    /// The arithmetic rounding as `rounding`, on the `foreach` path or not.
    pub fn new(rounding: Rounding, foreach: bool) -> Self {
        Half {
            rounding,
            foreach,
            format: PhantomData,
        }
    }

    /// One op: `once` is its result rounded once to `F` (`operands`
    /// checked for NaN first, in order), `opmath` its binary32 result.
    fn op(&self, operands: &[f32], once: impl FnOnce() -> F, opmath: impl FnOnce() -> f32) -> f32 {
        match self.rounding {
            Rounding::Once => nan_rule(operands, f32::DEFAULT_NAN, || widen(once())),
            Rounding::Opmath | Rounding::OpmathScalar => narrow::<F>(opmath()),
        }
    }
}

/// An `f32` rounded to `F` and widened back (`F(x)`, as an `f32`).
pub fn narrow<F: Format>(x: f32) -> f32 {
    widen(ieee::convert::<f32, F>(x))
}

/// Enough bits for any sum or product of up to three binary32 values to be
/// exact (the terms span at most 2^128 down to 2^-447).
const EXACT: u32 = 1024;

/// `x` at [`EXACT`] bits, so that `+` and `*` on it are exact.
fn wide(x: f32) -> Float {
    Float::with_val(EXACT, x)
}

/// A value of `F` as an `f32` (exact).
fn widen<F: Format>(x: F) -> f32 {
    ieee::convert::<F, f32>(x)
}

impl<F: Format> Arithmetic for Half<F> {
    type Value = f32;

    /// Each Python float through `f64 → f32 → F` where ATen rounds it to
    /// the dtype, `f64 → f32` where it keeps opmath (see the
    /// [module docs](self)).
    fn scalars(&self, hyper: &Hyperparams) -> Scalars<f32> {
        let f = |x: f64| binary32::from_f64(x);
        let dt = |x: f64| narrow::<F>(f(x));
        Scalars {
            rho: if self.foreach {
                dt(hyper.rho)
            } else {
                f(hyper.rho)
            },
            one_minus_rho: f(ieee::sub(1.0, hyper.rho)),
            eps: dt(hyper.eps),
            neg_lr: dt(-hyper.lr),
            weight_decay: dt(hyper.weight_decay),
        }
    }

    /// `F(x)`: an element from an `f32`, rounded to the format.
    fn convert_f32(&self, x: f32) -> f32 {
        narrow::<F>(x)
    }

    fn to_float(&self, x: &f32) -> Float {
        exact(*x)
    }

    fn zero(&self) -> f32 {
        0.0
    }

    /// A sign flip, NaN included (exact in every format).
    fn neg(&self, x: &f32) -> f32 {
        ieee::neg(*x)
    }

    fn add(&self, x: &f32, y: &f32) -> f32 {
        self.op(
            &[*x, *y],
            || rounded(wide(*x) + wide(*y)),
            || binary32::add(*x, *y),
        )
    }

    fn mul(&self, x: &f32, y: &f32) -> f32 {
        self.op(
            &[*x, *y],
            || rounded(wide(*x) * wide(*y)),
            || binary32::mul(*x, *y),
        )
    }

    fn div(&self, x: &f32, y: &f32) -> f32 {
        let once = || rounded(&exact(*x) / &exact(*y));
        self.op(&[*x, *y], once, || binary32::div(*x, *y))
    }

    /// Correctly rounded; `sqrt(x < 0)` is the default NaN (`sqrtps`: ATen's
    /// 16-bit `sqrt` is not oneMKL's).
    fn sqrt(&self, x: &f32) -> f32 {
        let sqrtps = || nan_rule(&[*x], f32::DEFAULT_NAN, || rounded(exact(*x).sqrt_ref()));
        self.op(&[*x], || rounded(exact(*x).sqrt_ref()), sqrtps)
    }

    /// NaN: `y`'s first, then `alpha`'s, then `x`'s (`fma(y, alpha, x)`);
    /// in PyTorch's scalar code, `alpha`'s, `y`'s, then `x`'s.
    fn add_alpha(&self, x: &f32, y: &f32, alpha: &f32) -> f32 {
        if self.rounding == Rounding::OpmathScalar {
            return narrow::<F>(binary32::add(*x, narrow::<F>(binary32::mul(*alpha, *y))));
        }
        self.op(
            &[*y, *alpha, *x],
            || rounded(wide(*y) * wide(*alpha) + wide(*x)),
            || binary32::fma(*y, *alpha, *x),
        )
    }

    /// NaN: `t1`'s first, then `value`'s, `t2`'s, `s`'s.
    fn addcmul(&self, s: &f32, t1: &f32, t2: &f32, value: &f32) -> f32 {
        self.op(
            &[*t1, *value, *t2, *s],
            || rounded(wide(*t1) * wide(*value) * wide(*t2) + wide(*s)),
            || binary32::fma(binary32::mul(*t1, *value), *t2, *s),
        )
    }
}
