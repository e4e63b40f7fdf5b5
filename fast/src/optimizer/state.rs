//! [`ParamState`]: one parameter's step counter and running averages.

/// One parameter's Adadelta state: the f32 step counter and the two running
/// averages. Created (zeros, step 0) the first time the parameter is stepped
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
pub struct ParamState {
    pub(super) step: f32,
    pub(super) square_avg: Vec<f32>,
    pub(super) acc_delta: Vec<f32>,
}

impl ParamState {
    /// Zeros for a parameter of `n` elements, or `None` when the memory
    /// cannot be had (instead of aborting the process): both tensors are
    /// reserved before either is written.
    pub(super) fn try_zeros(n: usize) -> Option<Self> {
        let (mut square_avg, mut acc_delta) = (Vec::new(), Vec::new());
        square_avg.try_reserve_exact(n).ok()?;
        acc_delta.try_reserve_exact(n).ok()?;
        square_avg.resize(n, 0.0);
        acc_delta.resize(n, 0.0);
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
    pub fn square_avg(&self) -> &[f32] {
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
    pub fn acc_delta(&self) -> &[f32] {
        &self.acc_delta
    }
}

impl PartialEq for ParamState {
    fn eq(&self, o: &Self) -> bool {
        let bits = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.step.to_bits() == o.step.to_bits()
            && bits(&self.square_avg, &o.square_avg)
            && bits(&self.acc_delta, &o.acc_delta)
    }
}
