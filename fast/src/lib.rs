//! PyTorch's Adadelta optimizer (`torch.optim.Adadelta`) for Rust, in f32,
//! with PyTorch's numerics.
//!
//! This is the production crate of adadelta-rs. At this stage it holds the
//! portable scalar kernel: one fused pass over `param`, `grad`, `square_avg`
//! and `acc_delta` that rounds every operation exactly as PyTorch 2.13's CPU
//! kernels do (see [`kernel`] and `docs/numerics.md`), and
//! [`Adadelta`], `torch.optim.Adadelta`'s whole API: parameter groups,
//! `step` with or without a closure, `zero_grad`, `state_dict` /
//! `load_state_dict` in PyTorch's layout (bit-exact JSON, atomic files) and
//! hooks, with PyTorch's behaviour and error messages
//! (`docs/coming-from-pytorch.md`).
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
// of `kernel/{sqrt,dispatch,scalar}.rs`), each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
mod hyper;
pub mod kernel;
pub mod optimizer;

pub use checkpoint::CheckpointError;
pub use error::Error;
pub use hyper::{Coefficients, Hyperparams};
pub use kernel::step;
#[cfg(feature = "ndarray")]
pub use optimizer::NdParam;
pub use optimizer::{
    load_json, save_json, Adadelta, GroupDict, GroupSpec, HookHandle, Lent, NonFinitePolicy,
    Options, Param, ParamGroup, ParamState, ParamStateDict, ParamViewMut, Parameter, Shaped,
    StateDict, TensorData,
};
