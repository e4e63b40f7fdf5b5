//! What a step does with a gradient that holds NaN or an infinity
//! ([`NonFinitePolicy`]), and the check behind it.

use crate::kernel::Element;

/// What [`Adadelta::step`](crate::Adadelta::step) does when a gradient holds
/// NaN, `+inf` or `-inf`. Set it with
/// [`Adadelta::with_non_finite_policy`](crate::Adadelta::with_non_finite_policy).
///
/// The default is PyTorch's behaviour. The two other policies check every
/// gradient before anything is written (one extra read of the gradients,
/// about a seventh of a step's memory traffic), so that a refused or skipped
/// step leaves every parameter, every state tensor and every step counter
/// bit-identical to before the call. Only the gradients as given are
/// checked: finite gradients whose squares overflow (`|g| > 1.8e19`) still
/// give infinite state, as in PyTorch.
///
/// ```
/// use adadelta::{Adadelta, Error, NonFinitePolicy, Param};
///
/// let mut p = Param::new(vec![1.0, 2.0]);
/// p.set_grad(vec![0.5, f32::NAN])?;
/// let mut opt = Adadelta::new(vec![p], Default::default())?
///     .with_non_finite_policy(NonFinitePolicy::Error);
/// assert_eq!(opt.step(), Err(Error::NonFiniteGradient { index: 0, element: 1 }));
/// assert_eq!(opt.params()[0].data(), &[1.0, 2.0]); // untouched
/// assert!(opt.state(0).is_none()); // no state created
///
/// opt.set_non_finite_policy(NonFinitePolicy::Skip);
/// opt.step()?; // skipped: Ok, nothing changes
/// assert_eq!((opt.params()[0].data(), opt.skipped_steps()), (&[1.0, 2.0][..], 1));
///
/// opt.set_non_finite_policy(NonFinitePolicy::Propagate); // PyTorch's behaviour
/// opt.step()?;
/// assert!(opt.params()[0].data()[1].is_nan() && opt.params()[0].data()[0] < 1.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonFinitePolicy {
    /// PyTorch's behaviour (the default): no check; the step runs and NaN
    /// and infinities propagate into the parameter and state elements they
    /// reach (each element only its own: the update is element-wise).
    #[default]
    Propagate,
    /// The step fails with
    /// [`Error::NonFiniteGradient`](crate::Error::NonFiniteGradient), which
    /// names the first non-finite element; nothing is written, no state is
    /// created, the step post-hooks do not run.
    Error,
    /// The step is skipped: it returns `Ok` (with the closure's loss),
    /// nothing is written, no state is created, the step post-hooks do not
    /// run, and [`Adadelta::skipped_steps`](crate::Adadelta::skipped_steps)
    /// counts it (as `torch.amp.GradScaler` skips `optimizer.step()`).
    Skip,
}

/// The position of the first element of `g` that is NaN or infinite.
///
/// Scans in blocks with a branch-free test of the exponent bits (which the
/// compiler vectorises), and looks for the position only in a block that
/// has one.
pub(crate) fn first_non_finite<E: Element>(g: &[E]) -> Option<usize> {
    let mut start = 0;
    for block in g.chunks(4096) {
        let any = block
            .iter()
            .fold(0u32, |a, &x| a | u32::from(!Element::is_finite(x)));
        if any != 0 {
            return block
                .iter()
                .position(|&x| !Element::is_finite(x))
                .map(|k| start + k);
        }
        start += block.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn finds_the_first_non_finite_element_anywhere() {
        assert_eq!(first_non_finite::<f32>(&[]), None);
        assert_eq!(first_non_finite::<f64>(&[]), None);
        let specials = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::from_bits(0x7f80_0001), // signalling NaN
            f32::from_bits(0xffff_ffff),
        ];
        for n in [1usize, 7, 4095, 4096, 4097, 9000] {
            // Finite extremes are not flagged.
            let g: Vec<f32> = (0..n)
                .map(|i| match i % 5 {
                    0 => f32::MAX,
                    1 => -f32::MAX,
                    2 => f32::from_bits(1), // smallest subnormal
                    3 => -0.0,
                    _ => i as f32,
                })
                .collect();
            assert_eq!(first_non_finite(&g), None, "n = {n}");
            for at in [0, n / 2, n - 1, 4095.min(n - 1)] {
                for &s in &specials {
                    let mut h = g.clone();
                    h[at] = s;
                    assert_eq!(first_non_finite(&h), Some(at), "n = {n}, at {at}, {s}");
                    h[n - 1] = f32::NAN; // a later one does not hide the first
                    assert_eq!(first_non_finite(&h), Some(at), "n = {n}, at {at}, {s}");
                }
            }
        }
    }

    #[test]
    fn finds_the_first_non_finite_f64_element_and_passes_the_largest_finite_ones() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        ];
        for n in [1usize, 4096, 4097] {
            let g: Vec<f64> = (0..n)
                .map(|i| match i % 3 {
                    0 => f64::MAX,
                    1 => f64::from_bits(1),
                    _ => -(f32::MAX as f64) * 2.0, // finite in f64, not in f32
                })
                .collect();
            assert_eq!(first_non_finite(&g), None, "n = {n}");
            for &s in &specials {
                let mut h = g.clone();
                h[n - 1] = s;
                assert_eq!(first_non_finite(&h), Some(n - 1), "n = {n}, {s}");
            }
        }
    }
}
