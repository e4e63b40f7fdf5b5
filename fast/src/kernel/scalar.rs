//! The portable path: [`element`](super::element) over a slice, one element
//! at a time. It is the definition every SIMD path is tested against.

use super::element;
#[cfg(target_arch = "x86_64")]
use super::sqrt::{self, id};
use crate::Coefficients;

/// The square root a scalar instantiation computes.
#[inline(always)]
pub(crate) fn sqrt_of<const S: u8>(x: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        match S {
            id::EXHA => sqrt::exha(x),
            id::L9HA => sqrt::l9ha(x),
            _ => x.sqrt(),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        x.sqrt()
    }
}

/// The scalar loop with square root `S` (IEEE, EXHA or L9HA).
pub(crate) fn slice<const S: u8>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    with_sqrt(c, param, grad, square_avg, acc_delta, sqrt_of::<S>);
}

/// The scalar loop over [`element`] with the square root `sqrt`.
fn with_sqrt(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
    sqrt: impl Fn(f32) -> f32 + Copy,
) {
    let n = param.len();
    assert!(grad.len() == n && square_avg.len() == n && acc_delta.len() == n);
    for (((p, &g), v), u) in param
        .iter_mut()
        .zip(grad)
        .zip(square_avg.iter_mut())
        .zip(acc_delta.iter_mut())
    {
        (*p, *v, *u) = element(c, *p, g, *v, *u, sqrt);
    }
}

/// The scalar loop with oneMKL's Z0HA square root.
///
/// # Safety
/// The CPU must support AVX-512F (`vrsqrt14ss`).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) unsafe fn slice_z0ha(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    // SAFETY: the caller guarantees AVX-512F.
    let z0ha = |x: f32| unsafe { sqrt::z0ha(x) };
    with_sqrt(c, param, grad, square_avg, acc_delta, z0ha);
}

/// The scalar square root `S` over a slice, in place.
pub(crate) fn sqrt_slice<const S: u8>(x: &mut [f32]) {
    for x in x {
        *x = sqrt_of::<S>(*x);
    }
}

/// [`sqrt_slice`] for Z0HA.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) unsafe fn sqrt_slice_z0ha(x: &mut [f32]) {
    for x in x {
        // SAFETY: the caller guarantees AVX-512F.
        *x = unsafe { sqrt::z0ha(*x) };
    }
}
