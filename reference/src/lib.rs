//! The numerical oracle of adadelta-rs: PyTorch 2.13's `torch.optim.Adadelta`
//! written literally, op by op, in MPFR (through [`rug`]).
//!
//! # Layout
//!
//! * [`algorithm`]: the Adadelta update, written **once**, generic over an
//!   [`Arithmetic`]. It follows PyTorch's single-tensor path (the CPU
//!   default) ATen op by ATen op: [`step`] for one tensor and [`Adadelta`] for
//!   several tensors with lazily created per-parameter state.
//! * [`arithmetic`]: the [`Arithmetic`] trait: the handful of ATen ops the
//!   algorithm uses, and how hyperparameters become [`Scalars`].
//! * [`high_precision`]: [`HighPrecision`], every op rounded to nearest at `p`
//!   bits (default 256), hyperparameters exact. This approximates the exact
//!   real-number Adadelta trajectory.
//! * [`ieee`]: IEEE 754 arithmetic through MPFR, written **once** for every
//!   [`Format`] (`f32` = binary32, `f64` = binary64): one rounding
//!   ([`ieee::round`]: subnormals, overflow to infinity, signed zeros), the
//!   single ops and x86-64's NaN bits, and [`PytorchCpu`], PyTorch's CPU
//!   kernels of Adadelta's ATen ops in a format (the [`Arithmetic`] impl of
//!   both types below, written once).
//! * [`binary32`]: [`Binary32`], an emulation of what PyTorch computes on an
//!   x86 CPU in `float32`: every op rounded to nearest-even in IEEE binary32,
//!   computed through MPFR, never with native `f32` arithmetic. [`MulAdd`]
//!   selects between the fused (AVX2/AVX-512 builds) and unfused
//!   (`ATEN_CPU_CAPABILITY=default`) kernels of `add(alpha=)` and `addcmul`.
//! * [`binary64`]: [`Binary64`], the same for `float64` tensors: every op in
//!   binary64, the hyperparameters the Python floats themselves.
//! * [`ulp`]: [`ulp_error`], the error of an `f32` against an exact value in
//!   binary32 ULPs, and [`ulp_error_in`], the same for any [`Format`]
//!   (binary64 ULPs for an `f64`).
//!
//! # What this oracle does *not* model
//!
//! * PyTorch's CPU `torch.sqrt` on `float32` is oneMKL's VML `vsSqrt` (HA),
//!   which is not correctly rounded and depends on the CPU: on Intel AVX-512
//!   about 0.6 % of [1, 4) is 1 ulp low; on this project's AMD EPYC machines
//!   (where MKL runs its SSE-level kernel) about 17 % is ±1 ulp off. See
//!   `fast/docs/numerics.md`. [`Binary32`] uses the correctly rounded IEEE square
//!   root, the default numerics of the `adadelta` crate.
//! * Likewise on `float64`, `torch.sqrt` is oneMKL's `vdSqrt`, not correctly
//!   rounded: on this project's AMD EPYC machines about 1.4 % of uniform
//!   inputs in [0, 4) are 1 ulp off. [`Binary64`] uses the correctly rounded
//!   square root.
//! * PyTorch's `step` counter is a `float32` tensor that stops increasing at
//!   2^24; [`ParamState::step`] is an exact `u64`.
//! * Complex parameters, `foreach`, `capturable`, tensor `lr`.
//!
//! # Example
//!
//! ```
//! use adadelta_reference::{Adadelta, Arithmetic, Binary32, HighPrecision, Hyperparams, MulAdd};
//!
//! let hyper = Hyperparams { lr: 0.5, ..Hyperparams::default() };
//!
//! // What PyTorch computes in float32 (fused kernels, IEEE sqrt).
//! let mut f32_opt = Adadelta::new(Binary32 { mul_add: MulAdd::Fused }, hyper, vec![vec![1.0f32, -2.0]]);
//! f32_opt.step(&[Some(vec![0.25f32, 4.0])]);
//!
//! // The same step at 256 bits.
//! let hp = HighPrecision::default();
//! let mut hp_opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&[1.0, -2.0])]);
//! hp_opt.step(&[Some(hp.convert_f32_slice(&[0.25, 4.0]))]);
//!
//! for (x, exact) in f32_opt.params()[0].iter().zip(&hp_opt.params()[0]) {
//!     // A handful of roundings, no cancellation: a few ULPs at most.
//!     assert!(adadelta_reference::ulp_error(*x, exact) < 4.0);
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod algorithm;
pub mod arithmetic;
pub mod binary32;
pub mod binary64;
pub mod half_types;
pub mod high_precision;
pub mod ieee;
pub mod ulp;

pub use algorithm::{step, Adadelta, Hyperparams, ParamState};
pub use arithmetic::{Arithmetic, Scalars};
pub use binary32::Binary32;
pub use binary64::Binary64;
pub use half_types::{Bfloat16, Binary16, Half, Rounding};
pub use high_precision::HighPrecision;
pub use ieee::{Format, MulAdd, PytorchCpu};
pub use rug;
pub use ulp::{ulp_error, ulp_error_in, ulp_exponent, ulp_exponent_in};
