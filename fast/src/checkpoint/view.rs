//! [`StateDictRef`]: a state dict that borrows its tensors, which is what
//! every save streams from, so that saving never copies the state.

use std::borrow::Cow;

use crate::kernel::Element;
use crate::optimizer::{GroupDict, ParamStateDict, StateDict, TensorData};

/// A tensor borrowed for a save: its shape and its elements (of the element
/// type `E`) in row-major order.
#[derive(Clone, Debug)]
pub struct TensorRef<'a, E = f32> {
    /// The shape; its product is `data.len()` (a writer refuses it otherwise).
    pub shape: Cow<'a, [usize]>,
    /// The elements.
    pub data: &'a [E],
}

impl<'a, E: Element> TensorRef<'a, E> {
    /// A borrowed view of `t`.
    pub fn of(t: &'a TensorData<E>) -> Self {
        TensorRef {
            shape: Cow::Borrowed(t.shape()),
            data: t.data(),
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> TensorData<E> {
        TensorData::from_parts(self.shape.to_vec(), self.data.to_vec())
            .unwrap_or_else(|_| TensorData::from(self.data.to_vec()))
    }
}

/// One parameter's state, borrowed: the step counter and the two running
/// averages.
#[derive(Clone, Debug)]
pub struct ParamStateRef<'a, E = f32> {
    /// The step counter.
    pub step: f32,
    /// The running average of squared gradients.
    pub square_avg: TensorRef<'a, E>,
    /// The running average of squared updates.
    pub acc_delta: TensorRef<'a, E>,
}

/// A state dict in PyTorch's layout whose tensors are borrowed, from a
/// [`StateDict`] ([`StateDict::as_ref`]) or straight from the optimizer's
/// live state ([`Adadelta::state_dict_ref`](crate::Adadelta::state_dict_ref)).
/// Every writer (JSON, torch.save, safetensors) takes one.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut opt = Adadelta::new(vec![Param::new(vec![1.0, 2.0])], Default::default())?;
/// opt.params_mut()[0].set_grad(vec![0.5, 0.5])?;
/// opt.step()?;
/// let view = opt.state_dict_ref();
/// assert_eq!(view.state[0].0, 0);
/// assert_eq!(view.state[0].1.square_avg.data.as_ptr(), opt.state(0).unwrap().square_avg().as_ptr()); // no copy
/// assert_eq!(view.to_owned(), opt.state_dict());
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StateDictRef<'a, E = f32> {
    /// Per-parameter state, by position, in increasing order.
    pub state: Vec<(usize, ParamStateRef<'a, E>)>,
    /// The parameter groups, in order.
    pub param_groups: Cow<'a, [GroupDict]>,
}

impl<E: Element> StateDictRef<'_, E> {
    /// An owned copy.
    pub fn to_owned(&self) -> StateDict<E> {
        StateDict {
            state: self
                .state
                .iter()
                .map(|(i, s)| {
                    (
                        *i,
                        ParamStateDict {
                            step: s.step,
                            square_avg: s.square_avg.to_owned(),
                            acc_delta: s.acc_delta.to_owned(),
                        },
                    )
                })
                .collect(),
            param_groups: self.param_groups.to_vec(),
        }
    }

    /// The number of state elements (both running averages of every
    /// parameter).
    pub fn numel(&self) -> usize {
        self.state
            .iter()
            .map(|(_, s)| s.square_avg.data.len() + s.acc_delta.data.len())
            .sum()
    }
}

impl<E: Element> StateDict<E> {
    /// This state dict, borrowed, for a writer.
    ///
    /// ```
    /// let sd = adadelta::StateDict::<f32>::default();
    /// assert_eq!(sd.as_ref().to_owned(), sd);
    /// ```
    pub fn as_ref(&self) -> StateDictRef<'_, E> {
        StateDictRef {
            state: self
                .state
                .iter()
                .map(|(&i, s)| {
                    (
                        i,
                        ParamStateRef {
                            step: s.step,
                            square_avg: TensorRef::of(&s.square_avg),
                            acc_delta: TensorRef::of(&s.acc_delta),
                        },
                    )
                })
                .collect(),
            param_groups: Cow::Borrowed(&self.param_groups),
        }
    }
}
