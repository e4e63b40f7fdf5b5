//! PyTorch's Adadelta optimizer (`torch.optim.Adadelta`) for Rust, in f32,
//! f64, bf16 and f16 (torch's `float32`, `float64`, `bfloat16` and
//! `float16`), with PyTorch's numerics.
//!
//! * [`Adadelta`] is `torch.optim.Adadelta`'s whole API: [`Options`] with
//!   PyTorch's defaults, parameter groups ([`GroupSpec`]), lazy state, `step`
//!   with or without a closure, `zero_grad`, `state_dict` /
//!   `load_state_dict` in PyTorch's layout ([`StateDict`]) and hooks, with
//!   PyTorch's behaviour and error messages ([`Error`]). It owns its
//!   parameters ([`Param`], or any [`Parameter`] type), or keeps only their
//!   records ([`Lent`]) and steps the parameters a model lends it
//!   ([`Adadelta::step_lent`]). The parameters' element type
//!   ([`Parameter::Elem`]: `f32`, or `f64`, [`half::bf16`] or
//!   [`half::f16`] with `Param<f64>`, `Param<bf16>`, `Param<f16>`) is
//!   their state's and their state dict's, as in PyTorch.
//! * Framework adapters step a framework's own tensors in place, in each of
//!   these element types: `candle` (feature `candle`:
//!   `Adadelta<candle_core::Var>` for f32 and `Adadelta<candle::TypedVar<E>>`
//!   implement `candle_nn::Optimizer`), `tch` (feature `tch`:
//!   `Adadelta<tch::Tensor>` for f32 and `Adadelta<tch::TypedTensor<E>>`)
//!   and `NdParam` (feature `ndarray`).
//! * [`kernel`] is the update: one fused pass over `param`, `grad`,
//!   `square_avg` and `acc_delta` with PyTorch 2.13's op order and rounding,
//!   written once and compiled for portable scalar Rust, AVX2, AVX-512 and
//!   NEON (the best the CPU supports, picked at run time;
//!   `ADADELTA_KERNEL=scalar|avx2|avx512|neon` forces one, see
//!   [`kernel::Isa`]), on many threads. Every path and
//!   thread count gives the same bits (a NaN's sign and payload excepted:
//!   [`guide::numerics`], "NaN bits"). The [`kernel::Numerics`] are a
//!   correctly rounded square root by default, or
//!   [`ReproduceLibtorch`](kernel::Numerics::ReproduceLibtorch): libtorch
//!   2.13's CPU results bit for bit.
//! * [`checkpoint`] saves and loads state dicts in PyTorch's `torch.save`
//!   format ([`checkpoint::torch`]), safetensors and bit-exact JSON, saves
//!   atomic ([`Adadelta::save`], [`Adadelta::load`]).
//! * [`guide`] holds the user guide: coming from PyTorch, the numerics and
//!   their proof, performance, reliability and the design.
//!
//! ```
//! use adadelta::{Adadelta, Options, Param};
//!
//! let mut opt = Adadelta::new(vec![Param::new(vec![1.0, -2.0, 3.0])], Options { lr: 0.5, ..Options::default() })?;
//! opt.params_mut()[0].set_grad(vec![0.1, 0.2, -0.3])?;
//! opt.step()?;
//! let w = opt.params()[0].data();
//! assert!(w[0] < 1.0 && w[2] > 3.0);
//! # Ok::<(), adadelta::Error>(())
//! ```
//!
//! The kernel alone, on slices:
//!
//! ```
//! use adadelta::{Coefficients, Hyperparams};
//!
//! let coeffs = Coefficients::new(&Hyperparams { lr: 0.5, ..Hyperparams::default() })?;
//! let mut param = vec![1.0_f32, -2.0, 3.0];
//! let grad = vec![0.1_f32, 0.2, -0.3];
//! let (mut square_avg, mut acc_delta) = (vec![0.0; 3], vec![0.0; 3]);
//! adadelta::step(&coeffs, &mut param, &grad, &mut square_avg, &mut acc_delta)?;
//! assert!(param[0] < 1.0 && param[2] > 3.0);
//! # Ok::<(), adadelta::Error>(())
//! ```

// `unsafe` only in the SIMD kernel (`kernel/x86.rs` and the intrinsic calls
// of `kernel/{sqrt,dispatch,scalar}.rs`) and in the tch adapter's slice of a
// tensor's memory (`tch.rs`, FFI storage), each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The README's examples run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(feature = "candle")]
pub mod candle;
pub mod checkpoint;
mod error;
pub mod guide;
mod hyper;
pub mod kernel;
pub mod optimizer;
mod shape;
#[cfg(feature = "tch")]
pub mod tch;

/// The `ndarray` crate (0.17) that [`NdParam`] is built on, re-exported so
/// that a user's arrays are of the same crate version:
/// `use adadelta::ndarray::Array2;`.
#[cfg(feature = "ndarray")]
pub use ::ndarray;
pub use checkpoint::CheckpointError;
pub use error::Error;
/// The `half` crate, whose `bf16` and `f16` are the kernel's `bfloat16` and
/// `float16` elements.
pub use half;
pub use hyper::{Coefficients, Hyperparams, Scalars};
pub use kernel::step;
#[cfg(feature = "ndarray")]
pub use optimizer::NdParam;
pub use optimizer::{
    load_json, save_json, Adadelta, GroupDict, GroupSpec, HookHandle, Lent, NonFinitePolicy,
    Options, Param, ParamGroup, ParamState, ParamStateDict, ParamViewMut, Parameter, Shaped,
    StateDict, TensorData,
};
