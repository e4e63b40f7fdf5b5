//! Hyperparameters as the user gives them (f64, like Python floats) and the
//! f32 coefficients the kernel uses, converted exactly as ATen converts them.

use crate::kernel::Element;
use crate::Error;

/// Adadelta's hyperparameters, with `torch.optim.Adadelta`'s meaning and
/// defaults (`lr = 1.0`, `rho = 0.9`, `eps = 1e-6`, `weight_decay = 0`,
/// `maximize = false`).
///
/// ```
/// let h = adadelta::Hyperparams { rho: 0.95, ..Default::default() };
/// assert_eq!((h.lr, h.rho, h.eps), (1.0, 0.95, 1e-6));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparams {
    /// Learning rate: the update is `param -= lr * delta`.
    pub lr: f64,
    /// Decay of both running averages, in `[0, 1]`.
    pub rho: f64,
    /// Added to both running averages before their square roots.
    pub eps: f64,
    /// L2 penalty: the gradient becomes `grad + weight_decay * param`.
    pub weight_decay: f64,
    /// Ascend instead of descend: the gradient is negated first.
    pub maximize: bool,
    /// PyTorch's `foreach` path (`_multi_tensor_adadelta`) rather than its
    /// for-loop (`foreach=None` or `False` on CPU). The two give the same
    /// bits in float32 and float64; in bfloat16 and float16,
    /// `torch._foreach_mul_` rounds `rho` to the tensor's dtype first
    /// ([`Coefficients::scalars`]).
    pub foreach: bool,
}

impl Default for Hyperparams {
    fn default() -> Self {
        Hyperparams {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
            foreach: false,
        }
    }
}

impl Hyperparams {
    /// Checks the values as `torch.optim.Adadelta.__init__` does, in its
    /// order, with its messages, and also refuses what PyTorch accepts but
    /// cannot step with: an `lr`, `eps` or `weight_decay` that is infinite,
    /// or so large that its f32 (what the kernel computes with, see
    /// [`Coefficients`]) is infinite. Such a value makes every updated
    /// element infinite or NaN.
    ///
    /// ```
    /// let bad = adadelta::Hyperparams { rho: 1.5, ..Default::default() };
    /// assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid rho value: 1.5");
    /// let inf = adadelta::Hyperparams { lr: f64::INFINITY, ..Default::default() };
    /// assert_eq!(inf.validate().unwrap_err().to_string(), "Invalid learning rate: inf");
    /// let huge = adadelta::Hyperparams { eps: 1e39, ..Default::default() }; // f32(1e39) = inf
    /// assert_eq!(huge.validate().unwrap_err().to_string(), "Invalid epsilon value: 1e+39");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        // `not 0.0 <= x` in Python: NaN fails every comparison. Beyond
        // PyTorch, the value must stay finite as the f32 the kernel uses.
        let ok = |x: f64| 0.0 <= x && (x as f32).is_finite();
        if !ok(self.lr) {
            return Err(Error::InvalidLr(self.lr));
        }
        if !(0.0 <= self.rho && self.rho <= 1.0) {
            return Err(Error::InvalidRho(self.rho));
        }
        if !ok(self.eps) {
            return Err(Error::InvalidEps(self.eps));
        }
        if !ok(self.weight_decay) {
            return Err(Error::InvalidWeightDecay(self.weight_decay));
        }
        Ok(())
    }
}

/// The scalars of one step, each converted from the f64 hyperparameter
/// exactly as PyTorch 2.13's CPU kernels convert it. For `float32` tensors
/// (round to nearest even):
///
/// | field | value | where ATen takes it |
/// |---|---|---|
/// | `rho` | `f32(rho)` | `square_avg.mul_(rho)`: a wrapped scalar cast to f32 |
/// | `one_minus_rho` | `f32(1.0 - rho)`, the subtraction in **f64** | `addcmul_(.., value=1-rho)`, computed in Python |
/// | `eps` | `f32(eps)` | `square_avg.add(eps)` |
/// | `neg_lr` | `f32(-lr)` | `param.add_(delta, alpha=-lr)` |
/// | `weight_decay` | `f32(weight_decay)` | `grad.add(param, alpha=weight_decay)` |
///
/// For `float64` tensors each is the f64 value itself, with `1.0 - rho`
/// subtracted in f64 ([`Coefficients::scalars`]).
///
/// ```
/// let c = adadelta::Coefficients::new(&adadelta::Hyperparams::default())?;
/// assert_eq!(c.one_minus_rho(), (1.0_f64 - 0.9) as f32);
/// assert_ne!(c.one_minus_rho(), 1.0_f32 - 0.9_f32); // why the f64 subtraction matters
/// # Ok::<(), adadelta::Error>(())
/// ```
///
/// The fields are private: a `Coefficients` exists only through
/// [`Coefficients::new`], so every one the kernel steps with has passed
/// [`Hyperparams::validate`] (no NaN `rho`, no negative `eps`):
///
/// ```compile_fail
/// // Error: the fields are private.
/// let c = adadelta::Coefficients { rho: f32::NAN, one_minus_rho: 0.0, eps: -1.0, neg_lr: -1.0,
///     weight_decay: 0.0, apply_weight_decay: false, maximize: false };
/// ```
///
/// ```
/// let nan = adadelta::Hyperparams { rho: f64::NAN, ..Default::default() };
/// assert_eq!(adadelta::Coefficients::new(&nan).unwrap_err().to_string(), "Invalid rho value: nan");
/// let neg = adadelta::Hyperparams { eps: -1.0, ..Default::default() };
/// assert_eq!(adadelta::Coefficients::new(&neg).unwrap_err().to_string(), "Invalid epsilon value: -1.0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    pub(crate) f32: Scalars<f32>,
    pub(crate) f64: Scalars<f64>,
    pub(crate) bf16: Scalars<f32>,
    pub(crate) f16: Scalars<f32>,
    pub(crate) apply_weight_decay: bool,
    pub(crate) maximize: bool,
}

/// The five scalar operands of one step for tensors of element type `E`, as
/// PyTorch 2.13's CPU kernels see them for that dtype
/// ([`Coefficients::scalars`]). A copy to read: the kernel takes only
/// [`Coefficients`].
///
/// ```
/// use adadelta::{Coefficients, Hyperparams};
/// let c = Coefficients::new(&Hyperparams::default())?;
/// let s = c.scalars::<f64>();
/// // float64 tensors take the Python floats as they are.
/// assert_eq!((s.rho, s.one_minus_rho, s.eps, s.neg_lr), (0.9, 1.0 - 0.9, 1e-6, -1.0));
/// assert_eq!(c.scalars::<f32>().rho, 0.9_f32);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalars<E> {
    /// The operand of `square_avg.mul_(rho)` and `acc_delta.mul_(rho)`.
    pub rho: E,
    /// The `value=` of both `addcmul_`: `1.0 - rho`, subtracted in f64 (in
    /// Python) before any conversion.
    pub one_minus_rho: E,
    /// The operand of both `add(eps)`.
    pub eps: E,
    /// The `alpha=` of `param.add_(delta, alpha=-lr)`.
    pub neg_lr: E,
    /// The `alpha=` of `grad.add(param, alpha=weight_decay)`.
    pub weight_decay: E,
}

impl Coefficients {
    /// Validates `hyper` (see [`Hyperparams::validate`]) and converts it.
    pub fn new(hyper: &Hyperparams) -> Result<Self, Error> {
        hyper.validate()?;
        let f64 = Scalars {
            rho: hyper.rho,
            one_minus_rho: 1.0 - hyper.rho,
            eps: hyper.eps,
            neg_lr: -hyper.lr,
            weight_decay: hyper.weight_decay,
        };
        let f32 = Scalars {
            rho: f64.rho as f32,
            one_minus_rho: f64.one_minus_rho as f32,
            eps: f64.eps as f32,
            neg_lr: f64.neg_lr as f32,
            weight_decay: f64.weight_decay as f32,
        };
        // A Python float reaches a 16-bit dtype through f32
        // (`c10::BFloat16(float)`, `c10::Half(float)`); `value=` and the
        // for-loop's `rho` stay f32 (ATen's opmath).
        let half = |to: fn(f32) -> f32| Scalars {
            rho: if hyper.foreach { to(f32.rho) } else { f32.rho },
            one_minus_rho: f32.one_minus_rho,
            eps: to(f32.eps),
            neg_lr: to(f32.neg_lr),
            weight_decay: to(f32.weight_decay),
        };
        Ok(Coefficients {
            bf16: half(|x| half::bf16::from_f32(x).to_f32()),
            f16: half(|x| half::f16::from_f32(x).to_f32()),
            f32,
            f64,
            apply_weight_decay: hyper.weight_decay != 0.0,
            maximize: hyper.maximize,
        })
    }

    /// The scalars for tensors of element type `E`: for `f32` the table
    /// above; for `f64` the f64 hyperparameters themselves (`1.0 - rho`
    /// subtracted in f64), which is what ATen's float64 kernels take from a
    /// Python float.
    ///
    /// For `bfloat16` and `float16` the scalars are what ATen's kernels
    /// compute those dtypes' ops with, `f32` ([`Element::Opmath`]): `eps`,
    /// `-lr` and `weight_decay` rounded to the dtype (through f32), `1 - rho`
    /// kept in f32, and `rho` kept in f32 on the for-loop path but rounded to
    /// the dtype on the `foreach` path ([`Hyperparams::foreach`]).
    ///
    /// ```
    /// use adadelta::{Coefficients, Hyperparams};
    /// use adadelta::half::bf16;
    /// let forloop = Coefficients::new(&Hyperparams::default())?;
    /// let foreach = Coefficients::new(&Hyperparams { foreach: true, ..Default::default() })?;
    /// assert_eq!(forloop.scalars::<bf16>().rho, 0.9_f32);
    /// assert_eq!(foreach.scalars::<bf16>().rho, 0.8984375); // bfloat16(0.9)
    /// assert_eq!(forloop.scalars::<f32>(), foreach.scalars::<f32>());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn scalars<E: Element>(&self) -> Scalars<E::Opmath> {
        E::scalars(self)
    }

    /// Checks that `-lr`, `eps` and (where it applies) `weight_decay` are
    /// finite as tensors of element type `E` see them: [`validate`](Hyperparams::validate)
    /// checks float32, which covers float64 and bfloat16 too, but float16's
    /// largest value is 65504. The errors are `validate`'s.
    pub(crate) fn finite_in<E: Element>(&self) -> Result<(), Error> {
        let s = self.scalars::<E>();
        let finite = |x: E::Opmath| Into::<f64>::into(x).is_finite();
        if !finite(s.neg_lr) {
            return Err(Error::InvalidLr(-self.f64.neg_lr));
        }
        if !finite(s.eps) {
            return Err(Error::InvalidEps(self.f64.eps));
        }
        if self.apply_weight_decay && !finite(s.weight_decay) {
            return Err(Error::InvalidWeightDecay(self.f64.weight_decay));
        }
        Ok(())
    }

    /// `f32(rho)`.
    pub fn rho(&self) -> f32 {
        self.f32.rho
    }

    /// `f32(1.0 - rho)`, subtracted in f64.
    pub fn one_minus_rho(&self) -> f32 {
        self.f32.one_minus_rho
    }

    /// `f32(eps)`.
    pub fn eps(&self) -> f32 {
        self.f32.eps
    }

    /// `f32(-lr)`.
    pub fn neg_lr(&self) -> f32 {
        self.f32.neg_lr
    }

    /// `f32(weight_decay)`; weight decay is applied only when the f64 value
    /// is non-zero ([`apply_weight_decay`](Self::apply_weight_decay)).
    pub fn weight_decay(&self) -> f32 {
        self.f32.weight_decay
    }

    /// Whether the f64 weight decay is non-zero (PyTorch tests
    /// `weight_decay != 0` before rounding, so a tiny decay that rounds to 0
    /// in f32 is still applied).
    ///
    /// ```
    /// let h = adadelta::Hyperparams { weight_decay: 1e-50, ..Default::default() };
    /// let c = adadelta::Coefficients::new(&h)?;
    /// assert_eq!((c.weight_decay(), c.apply_weight_decay()), (0.0, true));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn apply_weight_decay(&self) -> bool {
        self.apply_weight_decay
    }

    /// Whether the gradient is negated first.
    pub fn maximize(&self) -> bool {
        self.maximize
    }
}
