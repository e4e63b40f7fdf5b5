//! The state dict out of the optimizer (`state_dict`, `state_dict_ref`)
//! and into it (`load_state_dict`, which checks everything before it
//! changes anything).

use std::borrow::Cow;
use std::collections::HashMap;

use super::group::check_extra;
use super::{Adadelta, GroupDict, ParamState, Shaped, StateDict};
use crate::checkpoint::{ParamStateRef, StateDictRef, TensorRef};
use crate::Error;

impl<P: Shaped> Adadelta<P> {
    /// The optimizer's state in PyTorch's layout (PyTorch's `state_dict()`):
    /// the state-dict pre-hooks run first, then the post-hooks, which may
    /// change the returned dict. State tensors get their parameter's
    /// [`Parameter::shape`](super::Parameter::shape) (one dimension if that shape does not fit).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut p = Param::with_shape(vec![1.0; 6], vec![2, 3])?;
    /// p.set_grad(vec![0.5; 6])?;
    /// let mut opt = Adadelta::new(vec![p, Param::new(vec![0.0])], Default::default())?;
    /// opt.step()?;
    /// let sd = opt.state_dict();
    /// assert_eq!(sd.state.keys().collect::<Vec<_>>(), [&0]); // param 1 had no gradient
    /// assert_eq!(sd.state[&0].square_avg.shape(), &[2, 3]);
    /// assert_eq!(sd.param_groups[0].params, [0, 1]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state_dict(&self) -> StateDict<P::Elem> {
        for h in self.hooks.state_dict_pre.snapshot() {
            h(self);
        }
        let mut sd = self.view().to_owned();
        for h in self.hooks.state_dict_post.snapshot() {
            h(self, &mut sd);
        }
        sd
    }

    /// The state dict, borrowing the live state instead of copying it: what
    /// the saves stream from. The state-dict pre-hooks run; post-hooks do
    /// not (they take an owned dict: [`save`](Self::save) calls
    /// [`state_dict`](Self::state_dict) instead when there are any).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0; 4])], Default::default())?;
    /// opt.params_mut()[0].set_grad(vec![0.5; 4])?;
    /// opt.step()?;
    /// assert_eq!(opt.state_dict_ref().to_owned(), opt.state_dict());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state_dict_ref(&self) -> StateDictRef<'_, P::Elem> {
        for h in self.hooks.state_dict_pre.snapshot() {
            h(self);
        }
        self.view()
    }

    /// The state dict, borrowed, without hooks.
    fn view(&self) -> StateDictRef<'_, P::Elem> {
        let state = self
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                // One dimension when the parameter's shape does not fit.
                let shape: Cow<'_, [usize]> = Cow::Owned(crate::shape::fitting(
                    self.params[i].shape(),
                    s.square_avg.len(),
                ));
                Some((
                    i,
                    ParamStateRef {
                        step: s.step,
                        square_avg: TensorRef {
                            shape: shape.clone(),
                            data: &s.square_avg,
                        },
                        acc_delta: TensorRef {
                            shape,
                            data: &s.acc_delta,
                        },
                    },
                ))
            })
            .collect();
        let param_groups = self
            .groups
            .iter()
            .map(|g| GroupDict {
                options: g.options,
                extra: g.extra.clone(),
                params: g.params().collect(),
                param_names: g.param_names.clone(),
            })
            .collect();
        StateDictRef {
            state,
            param_groups: Cow::Owned(param_groups),
        }
    }

    /// Loads a state dict (PyTorch's `load_state_dict`): the load pre-hooks
    /// run first (and may change it), then it is checked, then it replaces
    /// the groups' options and extra keys and every parameter's state, then
    /// the load post-hooks run.
    ///
    /// Names do not take part in matching (as in PyTorch): a saved group's
    /// `param_names` replace the group's names, whether it had any or other
    /// ones, and a saved group without names keeps the group's own. So an
    /// optimizer of unnamed parameters that loads a named state dict is
    /// named from then on, as in PyTorch.
    ///
    /// Parameters are matched by position: the `i`-th index listed across
    /// the saved groups is the optimizer's `i`-th parameter. Checked, in
    /// this order (PyTorch's checks first, with its messages):
    ///
    /// * the number of groups ([`Error::GroupCountMismatch`]) and each
    ///   group's size ([`Error::GroupSizeMismatch`]);
    /// * each group's options ([`Options::validate`](super::Options::validate)) and extra keys,
    ///   and its `param_names`, if any, one per parameter
    ///   ([`Error::InvalidStateDict`]; PyTorch does not check);
    /// * the saved indices are distinct and every state entry belongs to one
    ///   ([`Error::InvalidStateDict`]; PyTorch keeps stray entries);
    /// * each state tensor's length against its parameter
    ///   ([`Error::StateLengthMismatch`]);
    /// * values no run can produce, from a corrupted file
    ///   ([`Error::InvalidStateDict`]; PyTorch does not check): a negative
    ///   `square_avg` or `acc_delta` element (NaN and infinities are kept:
    ///   non-finite gradients propagate into them), a step counter that is
    ///   not a whole number at least 0.
    ///
    /// On error the optimizer is exactly as before (nothing half-loaded) and
    /// no post-hook runs.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut a = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// a.params_mut()[0].set_grad(vec![1.0])?;
    /// a.step()?;
    /// let mut b = Adadelta::new(vec![Param::new(vec![1.0])], adadelta::Options { lr: 0.1, ..Default::default() })?;
    /// b.load_state_dict(a.state_dict())?;
    /// assert_eq!(b.state(0), a.state(0));
    /// assert_eq!(b.param_groups()[0].options().lr, 1.0); // saved options win
    ///
    /// let mut c = Adadelta::with_groups(
    ///     vec![GroupSpec::new(vec![Param::new(vec![1.0])]), GroupSpec::new(vec![])],
    ///     Default::default(),
    /// )?;
    /// let err = c.load_state_dict(a.state_dict()).unwrap_err();
    /// assert_eq!(err.to_string(), "loaded state dict has a different number of parameter groups");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn load_state_dict(&mut self, mut state_dict: StateDict<P::Elem>) -> Result<(), Error> {
        for h in self.hooks.load_pre.snapshot() {
            h(self, &mut state_dict);
        }
        let StateDict {
            state,
            param_groups,
        } = state_dict;
        if param_groups.len() != self.groups.len() {
            return Err(Error::GroupCountMismatch {
                saved: param_groups.len(),
                current: self.groups.len(),
            });
        }
        for (gi, (saved, current)) in param_groups.iter().zip(&self.groups).enumerate() {
            if saved.params.len() != current.len {
                return Err(Error::GroupSizeMismatch {
                    group: gi,
                    saved: saved.params.len(),
                    current: current.len,
                });
            }
        }
        for (gi, saved) in param_groups.iter().enumerate() {
            saved.options.validate()?;
            check_extra(&saved.extra)?;
            if let Some(names) = &saved.param_names {
                if names.len() != saved.params.len() {
                    return Err(Error::InvalidStateDict(format!(
                        "param_groups[{gi}] has {} param_names for {} params",
                        names.len(),
                        saved.params.len()
                    )));
                }
            }
        }
        let mut position = HashMap::with_capacity(self.params.len());
        for (pos, &index) in param_groups.iter().flat_map(|g| &g.params).enumerate() {
            if position.insert(index, pos).is_some() {
                return Err(Error::InvalidStateDict(format!(
                    "parameter index {index} appears more than once in param_groups"
                )));
            }
        }
        let mut states: Vec<Option<ParamState<P::Elem>>> = vec![None; self.params.len()];
        for (index, s) in state {
            let Some(&pos) = position.get(&index) else {
                return Err(Error::InvalidStateDict(format!(
                    "state has an entry for parameter index {index}, which is in no parameter group"
                )));
            };
            let n = self.params[pos].numel();
            for (key, t) in [("square_avg", &s.square_avg), ("acc_delta", &s.acc_delta)] {
                if t.len() != n {
                    return Err(Error::StateLengthMismatch {
                        index: pos,
                        key,
                        param: n,
                        state: t.len(),
                    });
                }
                // Values no run can produce (a corrupted file): refused
                // rather than stepped into NaN.
                if let Some(j) = t.data().iter().position(|&x| x < Default::default()) {
                    return Err(Error::InvalidStateDict(format!(
                        "state[{index}].{key}[{j}] is {}: a running average of squares \
                         is never negative",
                        t.data()[j]
                    )));
                }
            }
            if !(s.step.is_finite() && s.step >= 0.0 && s.step.fract() == 0.0) {
                return Err(Error::InvalidStateDict(format!(
                    "state[{index}].step is {}: a step count is a whole number, at least 0",
                    s.step
                )));
            }
            states[pos] = Some(ParamState {
                step: s.step,
                square_avg: s.square_avg.into_parts().1,
                acc_delta: s.acc_delta.into_parts().1,
            });
        }
        // Everything is checked: commit.
        self.states = states;
        for (g, saved) in self.groups.iter_mut().zip(param_groups) {
            g.options = saved.options;
            g.extra = saved.extra;
            if saved.param_names.is_some() {
                g.param_names = saved.param_names;
            }
        }
        for h in self.hooks.load_post.snapshot() {
            h(self);
        }
        Ok(())
    }
}
