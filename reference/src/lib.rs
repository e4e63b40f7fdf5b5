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
//! * [`binary32`]: [`Binary32`], an emulation of what PyTorch computes on an
//!   x86 CPU in `float32`: every op rounded to nearest-even in IEEE binary32
//!   (subnormals, overflow to infinity, signed zeros, NaN), computed through
//!   MPFR, never with native `f32` arithmetic. [`MulAdd`] selects between the
//!   fused (AVX2/AVX-512 builds) and unfused (`ATEN_CPU_CAPABILITY=default`)
//!   kernels of `add(alpha=)` and `addcmul`.
//! * [`ulp`]: [`ulp_error`], the error of an `f32` against an exact value in
//!   binary32 ULPs.
//!
//! # What this oracle does *not* model
//!
//! * PyTorch's CPU `torch.sqrt` on `float32` is oneMKL's VML `vsSqrt` (HA),
//!   which is not correctly rounded and depends on the CPU: on Intel AVX-512
//!   about 0.6 % of [1, 4) is 1 ulp low; on this project's AMD EPYC machines
//!   (where MKL runs its SSE-level kernel) about 17 % is ±1 ulp off. See
//!   `fast/docs/numerics.md`. [`Binary32`] uses the correctly rounded IEEE square
//!   root, the default numerics of the `adadelta` crate.
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
pub mod high_precision;
pub mod ulp;

pub use algorithm::{step, Adadelta, Hyperparams, ParamState};
pub use arithmetic::{Arithmetic, Scalars};
pub use binary32::{Binary32, MulAdd};
pub use high_precision::HighPrecision;
pub use rug;
pub use ulp::{ulp_error, ulp_exponent};
