//! The step: [`Adadelta::step`] and [`Adadelta::step_with`] over owned
//! parameters, [`Adadelta::step_lent`] over parameters the model keeps, and
//! the one update both run ([`update`]): check everything, then allocate the
//! new state, then run the kernel once over every parameter, then commit.

#[cfg(any(feature = "candle", feature = "tch"))]
use super::{param::Borrowed, ParamViewMut};
use super::{Adadelta, Lent, NonFinitePolicy, ParamGroup, ParamState, Parameter, Shaped};
use crate::kernel::{self, Element, Executor, Job};
use crate::{Coefficients, Error};

/// What [`update`] did.
pub(crate) enum Update {
    Stepped,
    /// Skipped by [`NonFinitePolicy::Skip`].
    Skipped,
}

impl<P: Parameter> Adadelta<P> {
    /// Sets every gradient to zero (`set_to_none = false`) or removes it
    /// (`true`, PyTorch's default), through [`Parameter::zero_grad`].
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut p = Param::new(vec![1.0]);
    /// p.set_grad(vec![3.0])?;
    /// let mut opt = Adadelta::new(vec![p], Default::default())?;
    /// opt.zero_grad(false);
    /// assert_eq!(opt.params()[0].grad(), Some(&[0.0][..]));
    /// opt.zero_grad(true);
    /// assert_eq!(opt.params()[0].grad(), None);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn zero_grad(&mut self, set_to_none: bool) {
        for p in &mut self.params {
            p.zero_grad(set_to_none);
        }
    }

    /// One optimisation step (PyTorch's `step()`): the step pre-hooks, then
    /// every parameter that has a gradient is updated (its state created
    /// first if needed, its step counter incremented), then the step
    /// post-hooks. Parameters without a gradient are skipped and get no state.
    ///
    /// All lengths are checked before anything is written: on error no
    /// parameter, state or counter has changed (the pre-hooks have run; the
    /// post-hooks do not). Gradients holding NaN or infinities are handled
    /// as the [`NonFinitePolicy`] says (by default they propagate, as in
    /// PyTorch).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut p = Param::new(vec![1.0, 1.0]);
    /// p.set_grad(vec![1.0, -1.0])?;
    /// let mut opt = Adadelta::new(vec![p], Default::default())?;
    /// opt.step()?;
    /// let w = opt.params()[0].data();
    /// assert!(w[0] < 1.0 && w[1] > 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn step(&mut self) -> Result<(), Error> {
        self.step_with(|_| ())
    }

    /// A step with a closure (PyTorch's `step(closure)`): after the step
    /// pre-hooks, `closure` gets the parameters to recompute the loss and set
    /// the gradients; then the update runs as in [`step`](Self::step), and
    /// the closure's loss is returned.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![2.0])], Default::default())?;
    /// let loss = opt.step_with(|params| {
    ///     let w = params[0].data()[0];
    ///     params[0].set_grad(vec![2.0 * w]).unwrap(); // d(w^2)/dw
    ///     w * w
    /// })?;
    /// assert_eq!(loss, 4.0);
    /// assert!(opt.params()[0].data()[0] < 2.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn step_with<L>(&mut self, closure: impl FnOnce(&mut [P]) -> L) -> Result<L, Error> {
        self.before_update();
        let loss = closure(&mut self.params);
        let mut lent: Vec<&mut dyn Parameter<Elem = P::Elem>> = self
            .params
            .iter_mut()
            .map(|p| p as &mut dyn Parameter<Elem = P::Elem>)
            .collect();
        let update = update(
            &self.groups,
            &mut self.states,
            &self.executor,
            self.non_finite,
            &mut lent,
        )?;
        self.after_update(update);
        Ok(loss)
    }
}

impl<P: Shaped> Adadelta<P> {
    /// The step pre-hooks, which every form of step runs first.
    pub(crate) fn before_update(&mut self) {
        for h in self.hooks.step_pre.snapshot() {
            h(self);
        }
    }

    /// The update of views a framework adapter lent, one per parameter in
    /// position order (an empty view without gradient for a parameter it
    /// skips). The adapter has checked that the views do not overlap, and
    /// that each has its parameter's number of elements; [`update`] checks
    /// the rest. The caller runs [`after_update`](Self::after_update) once
    /// it has released the framework's storage, since post-hooks may read it.
    #[cfg(any(feature = "candle", feature = "tch"))]
    pub(crate) fn update_views(
        &mut self,
        views: Vec<ParamViewMut<'_, P::Elem>>,
    ) -> Result<Update, Error> {
        let mut views: Vec<Borrowed<'_, P::Elem>> = views.into_iter().map(Borrowed).collect();
        let mut lent: Vec<&mut dyn Parameter<Elem = P::Elem>> = views
            .iter_mut()
            .map(|v| v as &mut dyn Parameter<Elem = P::Elem>)
            .collect();
        update(
            &self.groups,
            &mut self.states,
            &self.executor,
            self.non_finite,
            &mut lent,
        )
    }

    /// Sets every group's learning rate without validating it, for
    /// interfaces whose setter cannot fail (`candle_nn::Optimizer`): a value
    /// the kernel refuses makes the next step fail with its error
    /// ([`Error::InvalidLr`]), before anything is written.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn set_lr_unchecked(&mut self, lr: f64) {
        for g in &mut self.groups {
            g.options.lr = lr;
        }
    }

    /// The step post-hooks after a step, or the count of a skipped one.
    pub(crate) fn after_update(&mut self, update: Update) {
        match update {
            Update::Stepped => {
                for h in self.hooks.step_post.snapshot() {
                    h(self);
                }
            }
            Update::Skipped => self.skipped += 1,
        }
    }
}

impl<E: Element> Adadelta<Lent<E>> {
    /// One optimisation step of parameters the model keeps (PyTorch's
    /// `step()`): the step pre-hooks, then the update of every lent
    /// parameter that has a gradient, then the step post-hooks, exactly as
    /// [`step`](Adadelta::step) does for owned parameters.
    ///
    /// `params` are lent in position order, as they were given when the
    /// optimizer was built (group 0's first): the `i`-th is the one whose
    /// state is the state dict's entry `i`. They may be of different types.
    /// Checked before anything is written: their number
    /// ([`Error::LentCountMismatch`]), each one's shape against the one
    /// recorded at its position ([`Error::LentShapeMismatch`]), and every
    /// check of [`step`](Adadelta::step). On error no parameter, state or
    /// counter has changed.
    ///
    /// ```
    /// use adadelta::{Adadelta, Lent, Param, Parameter};
    /// let (mut w, mut b) = (Param::with_shape(vec![1.0; 6], vec![2, 3])?, Param::new(vec![1.0; 3]));
    /// let mut opt = Adadelta::new(vec![Lent::of(&w), Lent::of(&b)], Default::default())?;
    /// w.set_grad(vec![0.5; 6])?;
    /// opt.step_lent(&mut [&mut w, &mut b])?; // b has no gradient: skipped
    /// assert!(w.data()[0] < 1.0 && opt.state(1).is_none());
    /// let err = opt.step_lent(&mut [&mut b, &mut w]).unwrap_err(); // swapped
    /// assert!(err.to_string().starts_with("the parameter lent at position 0 has shape [3]"));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn step_lent(&mut self, params: &mut [&mut dyn Parameter<Elem = E>]) -> Result<(), Error> {
        self.before_update();
        if params.len() != self.params.len() {
            return Err(Error::LentCountMismatch {
                lent: params.len(),
                expected: self.params.len(),
            });
        }
        for (index, (record, p)) in self.params.iter().zip(params.iter()).enumerate() {
            if !record.fits(&**p) {
                return Err(Error::LentShapeMismatch {
                    index,
                    expected: record.shape().to_vec(),
                    lent: Lent::of(&**p).shape().to_vec(),
                });
            }
        }
        let update = update(
            &self.groups,
            &mut self.states,
            &self.executor,
            self.non_finite,
            params,
        )?;
        self.after_update(update);
        Ok(())
    }
}

/// The update of one step, all or nothing: each parameter is viewed once;
/// every parameter with a gradient is checked against its state (or the
/// state it will get) and, if the policy asks, for non-finite values; then
/// the state of parameters stepped for the first time is allocated, apart
/// from the optimizer's; then one kernel run steps them all; only then are
/// the new states moved in and the step counters incremented.
pub(super) fn update<E: Element>(
    groups: &[ParamGroup],
    states: &mut [Option<ParamState<E>>],
    executor: &Executor,
    policy: NonFinitePolicy,
    params: &mut [&mut dyn Parameter<Elem = E>],
) -> Result<Update, Error> {
    debug_assert_eq!(states.len(), params.len());
    let coeffs = groups
        .iter()
        .map(|g| Coefficients::new(&g.options.hyperparams()))
        .collect::<Result<Vec<_>, _>>()?;
    let group_of = groups
        .iter()
        .enumerate()
        .flat_map(|(gi, g)| std::iter::repeat_n(gi, g.len));
    // 1. Check: one view per parameter, kept for the run.
    let check_values = policy != NonFinitePolicy::Propagate;
    let mut views = Vec::with_capacity(params.len());
    for (index, ((p, s), group)) in params.iter_mut().zip(&*states).zip(group_of).enumerate() {
        let view = p.view_mut()?;
        let Some(grad) = view.grad else { continue };
        let n = view.data.len();
        let (v, u) = s
            .as_ref()
            .map_or((n, n), |s| (s.square_avg.len(), s.acc_delta.len()));
        if grad.len() != n || v != n || u != n {
            return Err(Error::LengthMismatch {
                param: n,
                grad: grad.len(),
                square_avg: v,
                acc_delta: u,
            });
        }
        if check_values {
            if let Some(element) = super::nonfinite::first_non_finite(grad) {
                return match policy {
                    NonFinitePolicy::Skip => Ok(Update::Skipped),
                    _ => Err(Error::NonFiniteGradient { index, element }),
                };
            }
        }
        views.push((index, group, view.data, grad));
    }
    // 2. Allocate: the state of first-stepped parameters, not yet the
    //    optimizer's.
    let mut fresh = Vec::new();
    for (index, _, data, _) in &views {
        if states[*index].is_none() {
            let elements = data.len();
            let state = ParamState::try_zeros(elements).ok_or(Error::StateAllocation {
                index: *index,
                elements,
            })?;
            fresh.push((*index, state));
        }
    }
    // 3. Run: one kernel run over every parameter with a gradient.
    let stepped: Vec<usize> = views.iter().map(|v| v.0).collect();
    {
        let mut fresh = fresh.iter_mut().peekable();
        let mut jobs = Vec::with_capacity(views.len());
        let mut slots = states.iter_mut().enumerate();
        for (index, group, param, grad) in views {
            let slot = slots
                .find_map(|(i, s)| (i == index).then_some(s))
                .and_then(Option::as_mut);
            let state = match slot {
                Some(s) => s,
                None => match fresh.next_if(|(i, _)| *i == index) {
                    Some((_, s)) => s,
                    None => unreachable!("state {index} was allocated in part 2"),
                },
            };
            jobs.push(Job {
                coeffs: &coeffs[group],
                param,
                grad,
                square_avg: &mut state.square_avg,
                acc_delta: &mut state.acc_delta,
            });
        }
        kernel::run(&mut jobs, executor)?;
    }
    // 4. Commit.
    for (index, state) in fresh {
        states[index] = Some(state);
    }
    for index in stepped {
        if let Some(s) = &mut states[index] {
            s.step += 1.0;
        }
    }
    Ok(Update::Stepped)
}
