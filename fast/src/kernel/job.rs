//! The data of a step: a parameter tensor's slices with its group's
//! coefficients ([`Job`]), and a contiguous part of one ([`Piece`]), which is
//! what threads and loops receive.

use super::element::Element;
use crate::{Coefficients, Error};

/// One parameter tensor of a step: its group's coefficients and its slices,
/// of element type `E` (`f32` unless said; `f64` too, see [`Element`]).
///
/// ```
/// use adadelta::kernel::Job;
/// let c = adadelta::Coefficients::new(&adadelta::Hyperparams::default())?;
/// let (mut p, mut v, mut u) = ([1.0_f32; 2], [0.0_f32; 2], [0.0_f32; 2]);
/// let job = Job { coeffs: &c, param: &mut p, grad: &[0.5, -0.5], square_avg: &mut v, acc_delta: &mut u };
/// assert_eq!(job.param.len(), 2);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Debug)]
pub struct Job<'a, E: Element = f32> {
    /// The coefficients of the parameter's group.
    pub coeffs: &'a Coefficients,
    /// Parameter values, updated in place.
    pub param: &'a mut [E],
    /// Gradient (same length).
    pub grad: &'a [E],
    /// `square_avg` state (same length), updated in place.
    pub square_avg: &'a mut [E],
    /// `acc_delta` state (same length), updated in place.
    pub acc_delta: &'a mut [E],
}

/// One job's slices, or a contiguous part of them: elements `at..at +
/// len()` of a tensor of `tensor` elements (where PyTorch's scalar tails
/// fall depends on the position, [`super::torch_tail`]).
pub(crate) struct Piece<'a, E> {
    pub coeffs: &'a Coefficients,
    pub param: &'a mut [E],
    pub grad: &'a [E],
    pub square_avg: &'a mut [E],
    pub acc_delta: &'a mut [E],
    pub at: usize,
    pub tensor: usize,
}

impl<'a, E: Element> Piece<'a, E> {
    pub fn of<'b: 'a>(j: &'a mut Job<'b, E>) -> Piece<'a, E> {
        let tensor = j.param.len();
        Piece {
            coeffs: j.coeffs,
            param: &mut *j.param,
            grad: j.grad,
            square_avg: &mut *j.square_avg,
            acc_delta: &mut *j.acc_delta,
            at: 0,
            tensor,
        }
    }

    pub fn len(&self) -> usize {
        self.param.len()
    }

    pub fn split_at(self, k: usize) -> (Piece<'a, E>, Piece<'a, E>) {
        let (p0, p1) = self.param.split_at_mut(k);
        let (g0, g1) = self.grad.split_at(k);
        let (v0, v1) = self.square_avg.split_at_mut(k);
        let (u0, u1) = self.acc_delta.split_at_mut(k);
        let (c, at, tensor) = (self.coeffs, self.at, self.tensor);
        (
            Piece {
                coeffs: c,
                param: p0,
                grad: g0,
                square_avg: v0,
                acc_delta: u0,
                at,
                tensor,
            },
            Piece {
                coeffs: c,
                param: p1,
                grad: g1,
                square_avg: v1,
                acc_delta: u1,
                at: at + k,
                tensor,
            },
        )
    }
}

pub(crate) fn check_lengths<E>(
    param: &[E],
    grad: &[E],
    square_avg: &[E],
    acc_delta: &[E],
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
    Ok(())
}
