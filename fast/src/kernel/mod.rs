//! The Adadelta update, element by element: the one place this crate writes
//! the math down.
//!
//! Each line is one ATen op of PyTorch 2.13's single-tensor path, rounded as
//! that op's CPU kernel rounds it on x86-64 builds with AVX2/AVX-512 (where GCC
//! contracts the scalar lambdas into FMA):
//!
//! ```text
//! g   = maximize ? -g : g                      neg: exact
//! g   = fma(p, wd, g)          if wd != 0      grad.add(param, alpha=wd)
//! v   = fma(c * g, g, v * rho)                 square_avg.mul_(rho).addcmul_(g, g, value=1-rho)
//! std = sqrt(v + eps)                          square_avg.add(eps).sqrt_()      (new v)
//! d   = sqrt(u + eps) / std * g                acc_delta.add(eps).sqrt_().div_(std).mul_(g)  (old u)
//! u   = fma(c * d, d, u * rho)                 acc_delta.mul_(rho).addcmul_(d, d, value=1-rho)
//! p   = fma(d, -lr, p)                         param.add_(d, alpha=-lr)
//! ```
//!
//! Every `*`, `+`, `/` is one f32 operation rounded to nearest even, every
//! `fma` is [`f32::mul_add`] (one rounding), and `sqrt` is [`f32::sqrt`]
//! (correctly rounded). libtorch's own f32 `sqrt` goes through oneMKL and is
//! not always correctly rounded; see `docs/numerics.md`.

use crate::{Coefficients, Error};

/// Updates one element; returns `(param, square_avg, acc_delta)`.
#[inline(always)]
fn element(c: &Coefficients, p: f32, g: f32, v: f32, u: f32) -> (f32, f32, f32) {
    let g = if c.maximize { -g } else { g };
    let g = if c.apply_weight_decay {
        p.mul_add(c.weight_decay, g)
    } else {
        g
    };
    let v = (c.one_minus_rho * g).mul_add(g, v * c.rho);
    let std = (v + c.eps).sqrt();
    let d = (u + c.eps).sqrt() / std * g;
    let u = (c.one_minus_rho * d).mul_add(d, u * c.rho);
    let p = d.mul_add(c.neg_lr, p);
    (p, v, u)
}

/// One Adadelta step on one parameter tensor, in place.
///
/// `square_avg` and `acc_delta` are the parameter's state (zeros before its
/// first step). All four slices must have the same length; otherwise
/// [`Error::LengthMismatch`] is returned and nothing is written.
///
/// ```
/// use adadelta::{Coefficients, Hyperparams};
/// let c = Coefficients::new(&Hyperparams { rho: 0.0, eps: 0.0, ..Default::default() })?;
/// // rho = 0, eps = 0, zero state: the first step is `param -= lr * 0 / |g| * g`,
/// // i.e. sqrt(0) / |g| * g = 0: Adadelta's first step with eps = 0 does not move.
/// let (mut p, mut v, mut u) = (vec![1.0_f32], vec![0.0_f32], vec![0.0_f32]);
/// adadelta::step(&c, &mut p, &[2.0], &mut v, &mut u)?;
/// assert_eq!((p[0], v[0], u[0]), (1.0, 4.0, 0.0));
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn step(
    coeffs: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) -> Result<(), Error> {
    let n = param.len();
    if grad.len() != n || square_avg.len() != n || acc_delta.len() != n {
        return Err(Error::LengthMismatch {
            param: n,
            grad: grad.len(),
            square_avg: square_avg.len(),
            acc_delta: acc_delta.len(),
        });
    }
    for (((p, &g), v), u) in param
        .iter_mut()
        .zip(grad)
        .zip(square_avg.iter_mut())
        .zip(acc_delta.iter_mut())
    {
        (*p, *v, *u) = element(coeffs, *p, g, *v, *u);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hyperparams;

    #[test]
    fn length_mismatch_writes_nothing() {
        let c = Coefficients::new(&Hyperparams::default()).unwrap();
        let (mut p, mut v, mut u) = (vec![1.0_f32; 3], vec![0.5_f32; 3], vec![0.25_f32; 2]);
        let err = step(&c, &mut p, &[1.0; 3], &mut v, &mut u).unwrap_err();
        assert_eq!(
            err,
            Error::LengthMismatch {
                param: 3,
                grad: 3,
                square_avg: 3,
                acc_delta: 2
            }
        );
        assert_eq!((p, v, u), (vec![1.0; 3], vec![0.5; 3], vec![0.25; 2]));
    }

    #[test]
    fn rho_one_keeps_state_and_steps_by_lr_times_grad() {
        // rho = 1: 1 - rho = 0 so both averages stay 0, and with any eps > 0
        // d = sqrt(eps)/sqrt(eps) * g = g exactly (x/x = 1 and 1*g = g exactly).
        let c = Coefficients::new(&Hyperparams {
            rho: 1.0,
            lr: 0.5,
            ..Default::default()
        })
        .unwrap();
        let (mut p, mut v, mut u) = (vec![1.0_f32, -3.0], vec![0.0; 2], vec![0.0; 2]);
        step(&c, &mut p, &[2.0, -0.25], &mut v, &mut u).unwrap();
        assert_eq!((p, v, u), (vec![0.0, -2.875], vec![0.0; 2], vec![0.0; 2]));
    }
}

/// Which numerics the kernel computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Numerics {
    /// PyTorch's op order and fusing with a correctly rounded sqrt: the same
    /// bits on every machine, path and thread count (see [`kernel`](self)).
    #[default]
    Default,
}

/// One parameter tensor of a step: its group's coefficients and its slices.
#[derive(Debug)]
pub struct Job<'a> {
    /// The coefficients of the parameter's group.
    pub coeffs: &'a Coefficients,
    /// Parameter values, updated in place.
    pub param: &'a mut [f32],
    /// Gradient (same length).
    pub grad: &'a [f32],
    /// `square_avg` state (same length), updated in place.
    pub square_avg: &'a mut [f32],
    /// `acc_delta` state (same length), updated in place.
    pub acc_delta: &'a mut [f32],
}

/// How a multi-tensor step runs: numerics (and, later, threads).
#[derive(Clone, Debug, Default)]
pub struct Executor {
    /// The numerics to compute.
    pub numerics: Numerics,
}

/// Steps every job. All lengths are checked first: on
/// [`Error::LengthMismatch`] nothing at all has been written.
///
/// ```
/// use adadelta::kernel::{run, Executor, Job};
/// use adadelta::{Coefficients, Hyperparams};
/// let c = Coefficients::new(&Hyperparams::default())?;
/// let (mut p, mut v, mut u) = (vec![1.0_f32; 4], vec![0.0_f32; 4], vec![0.0_f32; 4]);
/// let g = vec![0.5_f32; 4];
/// let mut jobs = [Job { coeffs: &c, param: &mut p, grad: &g, square_avg: &mut v, acc_delta: &mut u }];
/// run(&mut jobs, &Executor::default())?;
/// assert!(p[0] < 1.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn run(jobs: &mut [Job<'_>], exec: &Executor) -> Result<(), Error> {
    let Numerics::Default = exec.numerics;
    for j in jobs.iter() {
        let n = j.param.len();
        if j.grad.len() != n || j.square_avg.len() != n || j.acc_delta.len() != n {
            return Err(Error::LengthMismatch {
                param: n,
                grad: j.grad.len(),
                square_avg: j.square_avg.len(),
                acc_delta: j.acc_delta.len(),
            });
        }
    }
    for j in jobs.iter_mut() {
        step(j.coeffs, j.param, j.grad, j.square_avg, j.acc_delta)?;
    }
    Ok(())
}
