//! [`ParamState`]: one parameter's step counter and running averages.

use crate::kernel::{same_bits, Element};

/// One parameter's Adadelta state: the f32 step counter and the two running
/// averages, of the parameter's element type `E` (the counter is an f32
/// whatever `E` is, as PyTorch's). Created (zeros, step 0) the first time the parameter is stepped
/// with a gradient. Equality compares bit patterns.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut p = Param::new(vec![1.0]);
/// p.set_grad(vec![2.0])?;
/// let mut opt = Adadelta::new(vec![p, Param::new(vec![0.0])], Default::default())?;
/// opt.step()?;
/// let s = opt.state(0).unwrap();
/// assert_eq!((s.step(), s.square_avg().len()), (1.0, 1));
/// assert!(opt.state(1).is_none()); // no gradient: no state
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ParamState<E = f32> {
    pub(super) step: f32,
    pub(super) square_avg: Vec<E>,
    pub(super) acc_delta: Vec<E>,
}

impl<E: Element> ParamState<E> {
    /// Zeros for a parameter of `n` elements, or `None` when the memory
    /// cannot be had (instead of aborting the process): both tensors are
    /// reserved before either is written.
    pub(super) fn try_zeros(n: usize) -> Option<Self> {
        let (mut square_avg, mut acc_delta) = (Vec::new(), Vec::new());
        square_avg.try_reserve_exact(n).ok()?;
        acc_delta.try_reserve_exact(n).ok()?;
        square_avg.resize(n, E::default());
        acc_delta.resize(n, E::default());
        Some(ParamState {
            step: 0.0,
            square_avg,
            acc_delta,
        })
    }

    /// The step counter: an f32, incremented by 1 in f32 per step, so that
    /// it stops growing at 2^24 = 16777216 as PyTorch's float32 tensor does.
    ///
    /// ```
    /// assert_eq!(16777216.0_f32 + 1.0, 16777216.0); // why it stops
    /// ```
    pub fn step(&self) -> f32 {
        self.step
    }

    /// The running average of squared gradients.
    ///
    /// ```
    /// # use adadelta::{Adadelta, Param};
    /// # let mut p = Param::new(vec![1.0]); p.set_grad(vec![2.0])?;
    /// # let mut opt = Adadelta::new(vec![p], Default::default())?; opt.step()?;
    /// // rho = 0.9: f32(0.1 * 2) * 2 + 0 * 0.9, rounded as PyTorch rounds it
    /// assert_eq!(opt.state(0).unwrap().square_avg(), &[(0.1_f32 * 2.0).mul_add(2.0, 0.0)]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn square_avg(&self) -> &[E] {
        &self.square_avg
    }

    /// The running average of squared updates.
    ///
    /// ```
    /// # use adadelta::{Adadelta, Param};
    /// # let mut p = Param::new(vec![1.0]); p.set_grad(vec![2.0])?;
    /// # let mut opt = Adadelta::new(vec![p], Default::default())?; opt.step()?;
    /// assert!(opt.state(0).unwrap().acc_delta()[0] > 0.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn acc_delta(&self) -> &[E] {
        &self.acc_delta
    }
}

impl<E: Element> PartialEq for ParamState<E> {
    fn eq(&self, o: &Self) -> bool {
        self.step.to_bits() == o.step.to_bits()
            && same_bits(&self.square_avg, &o.square_avg)
            && same_bits(&self.acc_delta, &o.acc_delta)
    }
}
