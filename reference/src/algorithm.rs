//! The Adadelta update, written once, generic over an [`Arithmetic`].
//!
//! This is PyTorch 2.13's `torch/optim/adadelta.py` single-tensor path (the
//! CPU default; the `foreach` path is bit-identical for real parameters),
//! one [`Arithmetic`] method per ATen op, in PyTorch's order:
//!
//! ```text
//! grad = grad if not maximize else -grad
//! if weight_decay != 0:
//!     grad = grad.add(param, alpha=weight_decay)
//! square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
//! std = square_avg.add(eps).sqrt_()          # the NEW square_avg
//! delta = acc_delta.add(eps).sqrt_()         # the OLD acc_delta
//! delta.div_(std).mul_(grad)
//! acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
//! param.add_(delta, alpha=-lr)
//! ```
//!
//! Every ATen op here is element-wise, so running the whole sequence on one
//! element at a time (as [`step`] does) gives the same values as running each
//! op on the whole tensor in turn.
//!
//! # Degenerate hyperparameters (all allowed by PyTorch)
//!
//! * `rho = 1`: `1 - rho = 0`, the state stays exactly 0, `delta =
//!   sqrt(eps) / sqrt(eps) * g = g`, so Adadelta is SGD: `p -= lr * g`.
//! * `rho = 0`: `square_avg = g^2`, `acc_delta = delta^2` (no memory).
//! * `eps = 0`: from zero `acc_delta`, `delta = sqrt(0) / sqrt(v) * g = 0`
//!   whenever `v > 0`, so `acc_delta` stays 0 and the parameters **never
//!   move**; and when `v = 0` (a zero gradient on zero state, or `(1-rho) g^2`
//!   underflowing in `f32`) `delta = 0/0 * g = NaN`, so the parameter and
//!   `acc_delta` become NaN (`square_avg` stays 0). PyTorch 2.13 gives
//!   exactly this.
//! * `lr = 0`: `p + (-0) * delta = p`; the state still evolves.
//!
//! [`Adadelta`] adds the optimizer's bookkeeping: several parameter tensors,
//! parameters whose gradient is `None` are skipped, and per-parameter state
//! created lazily (zeros) on the first step that has a gradient.

use crate::arithmetic::{Arithmetic, Scalars};

/// Adadelta's hyperparameters, as the Python floats given to
/// `torch.optim.Adadelta`.
///
/// No validation is done (PyTorch rejects negative `lr`, `eps`,
/// `weight_decay` and `rho` outside `[0, 1]`; the oracle computes whatever the
/// formulas give).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparams {
    /// Learning rate `lr` (γ). PyTorch default 1.0.
    pub lr: f64,
    /// Decay `rho` (ρ). PyTorch default 0.9.
    pub rho: f64,
    /// `eps` (ε), added inside both square roots. PyTorch default 1e-6.
    pub eps: f64,
    /// L2 penalty `weight_decay` (λ). PyTorch default 0. The weight-decay op
    /// runs only if `weight_decay != 0.0` (as in Python, `-0.0` skips it and
    /// NaN does not).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing (negate the gradient).
    /// PyTorch default `false`.
    pub maximize: bool,
}

impl Default for Hyperparams {
    /// PyTorch's defaults: `lr = 1.0`, `rho = 0.9`, `eps = 1e-6`,
    /// `weight_decay = 0`, `maximize = false`.
    fn default() -> Self {
        Hyperparams {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// One Adadelta step on one tensor, element-wise, literally PyTorch's op
/// sequence (see the [module docs](self)). Updates `param`, `square_avg` and
/// `acc_delta` in place; `grad` is not modified (PyTorch's `-grad` and
/// `grad.add(...)` are out of place).
///
/// This does not count steps; [`Adadelta::step`] does.
///
/// # Panics
///
/// If `grad`, `square_avg` or `acc_delta` is not as long as `param`.
///
/// # Example
///
/// ```
/// use adadelta_reference::{step, Binary32, Hyperparams, MulAdd};
///
/// let arith = Binary32 { mul_add: MulAdd::Fused };
/// let hyper = Hyperparams { rho: 1.0, ..Hyperparams::default() };
/// let (mut p, g) = (vec![3.0f32], vec![0.5f32]);
/// let (mut v, mut u) = (vec![0.0f32], vec![0.0f32]);
/// step(&arith, &hyper, &mut p, &g, &mut v, &mut u);
/// // rho = 1: the state stays 0, sqrt(eps)/sqrt(eps) = 1, so delta = g and p = 3 - 0.5.
/// assert_eq!((p[0], v[0], u[0]), (2.5, 0.0, 0.0));
/// ```
pub fn step<A: Arithmetic>(
    arith: &A,
    hyper: &Hyperparams,
    param: &mut [A::Value],
    grad: &[A::Value],
    square_avg: &mut [A::Value],
    acc_delta: &mut [A::Value],
) {
    let n = param.len();
    assert_eq!(grad.len(), n, "step: grad and param lengths differ");
    assert_eq!(
        square_avg.len(),
        n,
        "step: square_avg and param lengths differ"
    );
    assert_eq!(
        acc_delta.len(),
        n,
        "step: acc_delta and param lengths differ"
    );
    let scalars = arith.scalars(hyper);
    let weight_decay = hyper.weight_decay != 0.0;
    for (((p, g), v), u) in param.iter_mut().zip(grad).zip(square_avg).zip(acc_delta) {
        step_element(arith, &scalars, hyper.maximize, weight_decay, p, g, v, u);
    }
}

/// The update of one element. Each line is one ATen op of `adadelta.py`.
#[allow(clippy::too_many_arguments)]
fn step_element<A: Arithmetic>(
    a: &A,
    k: &Scalars<A::Value>,
    maximize: bool,
    weight_decay: bool,
    param: &mut A::Value,
    grad: &A::Value,
    square_avg: &mut A::Value,
    acc_delta: &mut A::Value,
) {
    // grad = grad if not maximize else -grad
    let mut grad = if maximize { a.neg(grad) } else { grad.clone() };
    // if weight_decay != 0: grad = grad.add(param, alpha=weight_decay)
    if weight_decay {
        grad = a.add_alpha(&grad, param, &k.weight_decay);
    }
    // square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    *square_avg = a.mul(square_avg, &k.rho);
    *square_avg = a.addcmul(square_avg, &grad, &grad, &k.one_minus_rho);
    // std = square_avg.add(eps).sqrt_()
    let std = a.sqrt(&a.add(square_avg, &k.eps));
    // delta = acc_delta.add(eps).sqrt_()
    let mut delta = a.sqrt(&a.add(acc_delta, &k.eps));
    // delta.div_(std).mul_(grad)
    delta = a.div(&delta, &std);
    delta = a.mul(&delta, &grad);
    // acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    *acc_delta = a.mul(acc_delta, &k.rho);
    *acc_delta = a.addcmul(acc_delta, &delta, &delta, &k.one_minus_rho);
    // param.add_(delta, alpha=-lr)
    *param = a.add_alpha(param, &delta, &k.neg_lr);
}

/// The per-parameter state, as in PyTorch's `optimizer.state[p]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState<V> {
    /// Number of steps taken with a gradient. PyTorch keeps this in a 0-dim
    /// `float32` tensor (which stops increasing at 2^24); here it is exact.
    /// The update never reads it.
    pub step: u64,
    /// `square_avg` (v), the running average of squared gradients.
    pub square_avg: Vec<V>,
    /// `acc_delta` (u), the running average of squared updates.
    pub acc_delta: Vec<V>,
}

impl<V> ParamState<V> {
    /// The state PyTorch's lazy initialisation creates for a parameter of
    /// `len` elements: `step = 0`, zeros.
    pub fn zeros<A: Arithmetic<Value = V>>(arith: &A, len: usize) -> Self {
        ParamState {
            step: 0,
            square_avg: (0..len).map(|_| arith.zero()).collect(),
            acc_delta: (0..len).map(|_| arith.zero()).collect(),
        }
    }
}

impl ParamState<f32> {
    /// The same state in another arithmetic, converted exactly with
    /// [`Arithmetic::convert_f32`] (e.g. an `f32` state lifted to
    /// [`crate::HighPrecision`]).
    pub fn to_arith<A: Arithmetic>(&self, arith: &A) -> ParamState<A::Value> {
        ParamState {
            step: self.step,
            square_avg: arith.convert_f32_slice(&self.square_avg),
            acc_delta: arith.convert_f32_slice(&self.acc_delta),
        }
    }
}

/// `torch.optim.Adadelta` over several parameter tensors (one parameter
/// group), in the arithmetic `A`.
///
/// # Example
///
/// ```
/// use adadelta_reference::{Adadelta, Arithmetic, HighPrecision, Hyperparams};
///
/// let hp = HighPrecision::new(128);
/// let params = vec![hp.convert_f32_slice(&[1.0, 2.0]), hp.convert_f32_slice(&[5.0])];
/// let mut opt = Adadelta::new(hp, Hyperparams::default(), params);
/// // Parameter 1 has no gradient: it is skipped and gets no state.
/// opt.step(&[Some(hp.convert_f32_slice(&[0.5, -0.5])), None]);
/// assert_eq!(opt.state(0).unwrap().step, 1);
/// assert!(opt.state(1).is_none());
/// assert_eq!(opt.params()[1][0], 5.0);
/// // First step from zero state: |delta| = sqrt(eps) / sqrt(0.1 g^2 + eps) |g| < 1.
/// assert!(opt.params()[0][0] < 1.0 && opt.params()[0][0] > 0.99);
/// ```
#[derive(Clone, Debug)]
pub struct Adadelta<A: Arithmetic> {
    arith: A,
    hyper: Hyperparams,
    params: Vec<Vec<A::Value>>,
    states: Vec<Option<ParamState<A::Value>>>,
}

impl<A: Arithmetic> Adadelta<A> {
    /// An optimizer over `params`, with no state yet.
    pub fn new(arith: A, hyper: Hyperparams, params: Vec<Vec<A::Value>>) -> Self {
        let states = params.iter().map(|_| None).collect();
        Adadelta {
            arith,
            hyper,
            params,
            states,
        }
    }

    /// An optimizer resumed from existing parameters and state
    /// (`states[i] == None`: parameter `i` has no state yet).
    ///
    /// # Panics
    ///
    /// If `states` and `params` have different lengths, or a state's
    /// `square_avg` or `acc_delta` is not as long as its parameter.
    pub fn from_state(
        arith: A,
        hyper: Hyperparams,
        params: Vec<Vec<A::Value>>,
        states: Vec<Option<ParamState<A::Value>>>,
    ) -> Self {
        assert_eq!(
            states.len(),
            params.len(),
            "Adadelta::from_state: one state (or None) per parameter"
        );
        for (i, (p, s)) in params.iter().zip(&states).enumerate() {
            if let Some(s) = s {
                assert_eq!(
                    s.square_avg.len(),
                    p.len(),
                    "square_avg length of param {i}"
                );
                assert_eq!(s.acc_delta.len(), p.len(), "acc_delta length of param {i}");
            }
        }
        Adadelta {
            arith,
            hyper,
            params,
            states,
        }
    }

    /// An optimizer resumed from `f32` parameters and state, converted exactly
    /// into `arith` (for example to take one [`crate::HighPrecision`] step from
    /// the state of an `f32` run).
    ///
    /// # Panics
    ///
    /// As [`Adadelta::from_state`].
    ///
    /// # Example
    ///
    /// ```
    /// use adadelta_reference::{Adadelta, Arithmetic, HighPrecision, Hyperparams, ParamState};
    ///
    /// let state = ParamState { step: 7, square_avg: vec![0.25f32], acc_delta: vec![1e-6f32] };
    /// let hp = HighPrecision::default();
    /// let mut opt = Adadelta::from_f32_state(hp, Hyperparams::default(), &[vec![1.0]], &[Some(state)]);
    /// opt.step(&[Some(hp.convert_f32_slice(&[0.5]))]);
    /// assert_eq!(opt.state(0).unwrap().step, 8);
    /// ```
    pub fn from_f32_state(
        arith: A,
        hyper: Hyperparams,
        params: &[Vec<f32>],
        states: &[Option<ParamState<f32>>],
    ) -> Self {
        let params = params.iter().map(|p| arith.convert_f32_slice(p)).collect();
        let states = states
            .iter()
            .map(|s| s.as_ref().map(|s| s.to_arith(&arith)))
            .collect();
        Self::from_state(arith, hyper, params, states)
    }

    /// One optimizer step. `grads[i]` is the gradient of parameter `i`;
    /// `None` (PyTorch's `p.grad is None`) skips the parameter: it is not
    /// touched and no state is created for it. A parameter without state gets
    /// zero state first; then its step counter is incremented and [`step`]
    /// runs on it.
    ///
    /// Accepts `&[Option<Vec<V>>]` as well as `&[Option<&[V]>]`.
    ///
    /// # Panics
    ///
    /// If `grads` and the parameters have different lengths, or a gradient is
    /// not as long as its parameter.
    pub fn step<G: AsRef<[A::Value]>>(&mut self, grads: &[Option<G>]) {
        assert_eq!(
            grads.len(),
            self.params.len(),
            "Adadelta::step: one gradient (or None) per parameter"
        );
        for ((param, state), grad) in self.params.iter_mut().zip(&mut self.states).zip(grads) {
            let Some(grad) = grad else { continue };
            let state = state.get_or_insert_with(|| ParamState::zeros(&self.arith, param.len()));
            state.step += 1;
            step(
                &self.arith,
                &self.hyper,
                param,
                grad.as_ref(),
                &mut state.square_avg,
                &mut state.acc_delta,
            );
        }
    }

    /// The parameters.
    pub fn params(&self) -> &[Vec<A::Value>] {
        &self.params
    }

    /// The state of parameter `i`, `None` if it never had a gradient.
    ///
    /// # Panics
    ///
    /// If `i` is out of range.
    pub fn state(&self, i: usize) -> Option<&ParamState<A::Value>> {
        self.states[i].as_ref()
    }

    /// The states of all parameters, in order.
    pub fn states(&self) -> &[Option<ParamState<A::Value>>] {
        &self.states
    }

    /// The arithmetic.
    pub fn arith(&self) -> &A {
        &self.arith
    }

    /// The hyperparameters.
    pub fn hyper(&self) -> &Hyperparams {
        &self.hyper
    }

    /// Parameters and states, consuming the optimizer.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(self) -> (Vec<Vec<A::Value>>, Vec<Option<ParamState<A::Value>>>) {
        (self.params, self.states)
    }
}
