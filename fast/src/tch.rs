//! tch: `Adadelta<tch::Tensor>`, an Adadelta over libtorch tensors that
//! steps their contiguous CPU f32 memory in place, reading each one's
//! `.grad()` (feature `tch`; needs libtorch, as the `tch` crate does).
//!
//! Every method of [`Adadelta`] that does not step works on
//! `Adadelta<Tensor>` (groups, options, state dicts, checkpoints in
//! PyTorch's format, hooks). [`Adadelta::<Tensor>::step`](Adadelta::step)
//! is PyTorch's `optimizer.step()` after `loss.backward()`; with
//! [`Numerics::ReproduceLibtorch`](crate::kernel::Numerics::ReproduceLibtorch)
//! its results are libtorch's own Adadelta step's, bit for bit.
//!
//! ```
//! use adadelta::tch::tch::{Kind, Tensor};
//! use adadelta::{Adadelta, Options};
//!
//! let w = Tensor::from_slice(&[1.0_f32, -2.0, 3.0]).set_requires_grad(true);
//! let mut opt = Adadelta::new(vec![w.shallow_clone()], Options { lr: 1.0, ..Options::default() })?;
//! w.square().sum(Kind::Float).backward(); // minimise |w|^2
//! opt.step()?;
//! let w: Vec<f32> = Vec::try_from(&w).unwrap();
//! assert!(w[0] < 1.0 && w[1] > -2.0 && w[2] < 3.0);
//! # Ok::<(), adadelta::Error>(())
//! ```
//!
//! # What it steps, and how
//!
//! * Defined, dense, contiguous CPU f32 tensors; anything else is refused
//!   with [`Error::UnsupportedTensor`] naming the parameter and what it is,
//!   before anything is written. The gradient may be of any layout: a
//!   non-contiguous one is made contiguous first, which copies that
//!   gradient only.
//! * In place, with no copy of a parameter or of the state: the kernel
//!   writes the tensor's memory (`data_ptr`) directly, as libtorch's own
//!   `torch.no_grad()` step does.
//! * Two parameters whose memory overlaps (views of one tensor) are refused
//!   ([`Error::SharedMemory`]): PyTorch would update the shared elements
//!   twice, and Rust cannot lend the same memory twice. A gradient that
//!   overlaps a parameter is copied first (read as it was when the step
//!   began). A parameter given twice is refused when the optimizer is built
//!   ([`Error::DuplicateParam`]).
//! * A parameter whose gradient is undefined (never computed) is skipped and
//!   gets no state, as `p.grad is None` in PyTorch. `tch` cannot unset a
//!   gradient, so [`zero_grad`](Adadelta::zero_grad) fills gradients with
//!   zeros (PyTorch's `zero_grad(set_to_none=False)`).
//!
//! # What the caller keeps
//!
//! As with libtorch itself, no other thread may use these tensors (through
//! another handle, such as a `shallow_clone`) while a step runs. The step
//! writes memory without bumping libtorch's version counter: an autograd
//! graph recorded before a step must not be backpropagated after it
//! (PyTorch would refuse that with "modified by an inplace operation"; here
//! the gradient would be computed from the new values).

pub use ::tch;
use ::tch::{Device, Kind, Tensor};

use crate::{Adadelta, Error, ParamViewMut, Shaped};

impl Shaped for Tensor {
    /// The adapter steps float32 storage.
    type Elem = f32;
    /// The number of elements (0 for an undefined tensor).
    fn numel(&self) -> usize {
        if self.defined() {
            Tensor::numel(self)
        } else {
            0
        }
    }
    /// The sizes (empty for an undefined tensor).
    fn shape(&self) -> Vec<usize> {
        if self.defined() {
            self.size().iter().map(|&d| d as usize).collect()
        } else {
            Vec::new()
        }
    }
    /// Whether both are handles to the same non-empty memory (for example
    /// `t` and `t.shallow_clone()`).
    fn is_same(&self, other: &Self) -> bool {
        Shaped::numel(self) > 0 && Shaped::numel(other) > 0 && self.data_ptr() == other.data_ptr()
    }
}

/// Refuses what the adapter cannot step in place: an undefined, sparse or
/// MKL-DNN tensor, or another device or dtype than CPU f32. `what` is
/// "parameter" or "gradient".
fn check_cpu_f32(index: usize, t: &Tensor, what: &str) -> Result<(), Error> {
    let unsupported = |reason: String| Error::UnsupportedTensor { index, reason };
    if !t.defined() {
        return Err(unsupported(format!("its {what} is an undefined tensor")));
    }
    if t.is_sparse() || t.is_mkldnn() {
        return Err(unsupported(format!(
            "its {what} is not a dense (strided) tensor"
        )));
    }
    let kind = t.f_kind().map_err(|e| unsupported(e.to_string()))?;
    if kind != Kind::Float || t.device() != Device::Cpu {
        return Err(unsupported(format!(
            "its {what} is {kind:?} on {:?}, and the tch adapter steps Float (f32) on the CPU",
            t.device()
        )));
    }
    Ok(())
}

/// A copy of the f32 tensor `t` in new, contiguous memory, bit for bit
/// (NaN payloads included). (`empty_like` would keep `t`'s strides.)
fn copied(index: usize, t: &Tensor) -> Result<Tensor, Error> {
    let unsupported = |e: ::tch::TchError| Error::UnsupportedTensor {
        index,
        reason: format!("libtorch failed copying its gradient: {e}"),
    };
    let mut copy = Tensor::f_empty(t.size(), (Kind::Float, Device::Cpu)).map_err(unsupported)?;
    copy.f_copy_(t).map_err(unsupported)?;
    Ok(copy)
}

/// One parameter lent to a step: its memory, and its gradient's, with the
/// handle that keeps the gradient alive.
struct Lend {
    index: usize,
    data: *mut f32,
    len: usize,
    grad: Option<(Tensor, *const f32)>,
}

impl Lend {
    /// The byte range of the parameter's memory.
    fn range(&self) -> std::ops::Range<usize> {
        let start = self.data as usize;
        start..start + self.len * size_of::<f32>()
    }

    /// The view of this parameter for the update: the crate's one `unsafe`
    /// outside the SIMD kernel, since `tch` lends no slice of a tensor.
    #[allow(unsafe_code)]
    fn view(&mut self) -> ParamViewMut<'_> {
        let Some((_, grad)) = self.grad else {
            return ParamViewMut {
                data: &mut [],
                grad: None,
            };
        };
        if self.len == 0 {
            return ParamViewMut {
                data: &mut [],
                grad: Some(&[]),
            };
        }
        // SAFETY: `data` and `grad` point to `len` f32 elements of defined,
        // dense, contiguous CPU Float tensors (checked by `lend`), kept
        // alive for the view's lifetime: the parameter by the optimizer,
        // which the step borrows mutably, the gradient by the handle in
        // `self.grad`. `lend` also checked that no two stepped parameters'
        // memory overlaps and copied every gradient that overlaps one, so
        // these are the only references to the parameter's memory, and the
        // gradient's is only read. No other thread uses the tensors during
        // the step (`Tensor` is not `Sync`; the module docs state that
        // other handles must not be used meanwhile, as for libtorch).
        unsafe {
            ParamViewMut {
                data: std::slice::from_raw_parts_mut(self.data, self.len),
                grad: Some(std::slice::from_raw_parts(grad, self.len)),
            }
        }
    }
}

impl Adadelta<Tensor> {
    /// One optimisation step of the tensors from their `.grad()` (PyTorch's
    /// `optimizer.step()`): the step pre-hooks, then every parameter whose
    /// gradient is defined is updated in place, then the step post-hooks.
    ///
    /// Checked before anything is written: each parameter and gradient is a
    /// dense CPU f32 tensor and the parameter contiguous
    /// ([`Error::UnsupportedTensor`]), the gradient has the parameter's
    /// shape ([`Error::GradSizeMismatch`]), no two stepped parameters share
    /// memory ([`Error::SharedMemory`]), and every check of
    /// [`step`](Adadelta::step). On error no tensor, state or counter
    /// changed.
    ///
    /// ```
    /// use adadelta::tch::tch::{Kind, Tensor};
    /// use adadelta::Adadelta;
    ///
    /// let w = Tensor::ones([2, 3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    /// # use adadelta::tch::tch;
    /// let b = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    /// let mut opt = Adadelta::new(vec![w.shallow_clone(), b.shallow_clone()], Default::default())?;
    /// w.sum(Kind::Float).backward(); // b's gradient stays undefined
    /// opt.step()?;
    /// assert!(opt.state(0).is_some() && opt.state(1).is_none());
    /// assert!(w.double_value(&[0, 0]) < 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn step(&mut self) -> Result<(), Error> {
        self.before_update();
        let mut lent = self.lend()?;
        let views = lent.iter_mut().map(Lend::view).collect();
        let update = self.update_views(views)?;
        self.after_update(update);
        Ok(())
    }

    /// Fills every defined gradient with zeros (PyTorch's
    /// `zero_grad(set_to_none=False)`; `tch` cannot unset a gradient).
    ///
    /// ```
    /// use adadelta::tch::tch::{Kind, Tensor};
    /// use adadelta::Adadelta;
    ///
    /// let w = Tensor::from_slice(&[1.0_f32, 2.0]).set_requires_grad(true);
    /// let mut opt = Adadelta::new(vec![w.shallow_clone()], Default::default())?;
    /// w.sum(Kind::Float).backward();
    /// opt.zero_grad();
    /// assert_eq!(Vec::<f32>::try_from(&w.grad()).unwrap(), [0.0, 0.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn zero_grad(&mut self) {
        for t in self.params_mut() {
            t.zero_grad();
        }
    }

    /// Each parameter's memory and its gradient's for a step, checked, with
    /// gradients made contiguous and copied where they overlap a stepped
    /// parameter.
    fn lend(&self) -> Result<Vec<Lend>, Error> {
        let mut lent = Vec::with_capacity(self.params().len());
        for (index, t) in self.params().iter().enumerate() {
            check_cpu_f32(index, t, "parameter")?;
            let grad = t.grad();
            let len = Tensor::numel(t);
            if !grad.defined() {
                lent.push(Lend {
                    index,
                    data: t.data_ptr().cast(),
                    len,
                    grad: None,
                });
                continue;
            }
            check_cpu_f32(index, &grad, "gradient")?;
            if !t.is_contiguous() {
                return Err(Error::UnsupportedTensor {
                    index,
                    reason: format!(
                        "it is not contiguous (sizes {:?}, strides {:?})",
                        t.size(),
                        t.stride()
                    ),
                });
            }
            if grad.size() != t.size() {
                return Err(Error::GradSizeMismatch {
                    grad: Shaped::shape(&grad),
                    param: Shaped::shape(t),
                });
            }
            let grad = if grad.is_contiguous() {
                grad
            } else {
                copied(index, &grad)?
            };
            let ptr = grad.data_ptr().cast_const().cast();
            lent.push(Lend {
                index,
                data: t.data_ptr().cast(),
                len,
                grad: Some((grad, ptr)),
            });
        }
        // The stepped parameters' memory, by address: pairwise disjoint.
        let mut ranges: Vec<(std::ops::Range<usize>, usize)> = lent
            .iter()
            .filter(|l| l.grad.is_some() && l.len > 0)
            .map(|l| (l.range(), l.index))
            .collect();
        ranges.sort_by_key(|(r, _)| r.start);
        for pair in ranges.windows(2) {
            let ((a, i), (b, j)) = (&pair[0], &pair[1]);
            if b.start < a.end {
                return Err(Error::SharedMemory {
                    first: *i.min(j),
                    second: *i.max(j),
                });
            }
        }
        // A gradient overlapping a stepped parameter is read from a copy.
        for l in &mut lent {
            let Some((grad, ptr)) = &mut l.grad else {
                continue;
            };
            let start = *ptr as usize;
            let end = start + l.len * size_of::<f32>();
            // The ranges are disjoint and sorted, so only the last one that
            // starts before `end` can reach past `start`.
            let before = ranges.partition_point(|(r, _)| r.start < end);
            if l.len > 0 && before > 0 && ranges[before - 1].0.end > start {
                *grad = copied(l.index, grad)?;
                *ptr = grad.data_ptr().cast_const().cast();
            }
        }
        Ok(lent)
    }
}
