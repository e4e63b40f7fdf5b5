//! PyTorch's Adadelta optimizer (`torch.optim.Adadelta`) for Rust, in f32,
//! with PyTorch's numerics.
//!
//! This is the production crate of adadelta-rs. At this stage it holds the
//! portable scalar kernel: one fused pass over `param`, `grad`, `square_avg`
//! and `acc_delta` that rounds every operation exactly as PyTorch 2.13's CPU
//! kernels do (see [`kernel`] and `docs/numerics.md`). The full
//! `torch.optim.Optimizer` API and the SIMD, multi-threaded kernel come next.
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
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod hyper;
pub mod kernel;

pub use error::Error;
pub use hyper::{Coefficients, Hyperparams};
pub use kernel::step;
