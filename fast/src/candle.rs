//! candle: `Adadelta<Var>`, an Adadelta over [`candle_core::Var`]s that
//! implements [`candle_nn::Optimizer`] and steps their CPU f32 storage in
//! place (feature `candle`).
//!
//! Every method of [`Adadelta`] that does not step works on `Adadelta<Var>`
//! (groups, options, state dicts, checkpoints in PyTorch's format, hooks);
//! [`Adadelta::<Var>::step`](Adadelta::step) takes the gradients of a
//! backward pass, and [`candle_nn::Optimizer`] gives candle's interface
//! (`backward_step`, `learning_rate`, ...).
//!
//! ```
//! use adadelta::candle::candle_core::{Device, Tensor, Var};
//! use adadelta::candle::candle_nn::Optimizer;
//! use adadelta::{Adadelta, Options};
//!
//! let w = Var::from_slice(&[1.0_f32, -2.0, 3.0], 3, &Device::Cpu)?;
//! let mut opt = Adadelta::new(vec![w.clone()], Options { lr: 1.0, ..Options::default() })?;
//! let loss = w.as_tensor().sqr()?.sum_all()?; // minimise |w|^2
//! opt.backward_step(&loss)?;
//! let w: Vec<f32> = w.as_tensor().to_vec1()?;
//! assert!(w[0] < 1.0 && w[1] > -2.0 && w[2] < 3.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it steps, and how
//!
//! * CPU f32 vars of a contiguous layout; anything else is refused with
//!   [`Error::UnsupportedTensor`] naming the parameter and what it is, before
//!   anything is written. The gradient may be of any layout (candle's
//!   gradients of a sum are broadcasts): a non-contiguous one is made
//!   contiguous first, which copies that gradient only.
//! * In place, with no copy of a parameter or of the state: each var's
//!   storage is lent to the kernel through candle's in-place custom op
//!   ([`candle_core::InplaceOp2`]), which holds the var's write lock and its
//!   gradient's read lock. A step holds every stepped var's lock at once,
//!   one op nested in the other, so that the whole step is one kernel run
//!   with every check of [`Adadelta::step`] done before anything is written.
//!   The nesting grows the stack as deep as a model has vars (`stacker`),
//!   so models of many thousands of vars step too.
//! * Deadlock-free: a var given twice is refused when the optimizer is
//!   built ([`Error::DuplicateParam`], [`Shaped::is_same`] compares
//!   storage), and a gradient that shares storage with a var (a
//!   hand-made [`GradStore`] can hold one) is copied first, since its read
//!   lock would wait on the var's write lock.
//! * Bit for bit what the plain API ([`crate::Param`], [`crate::kernel::run`])
//!   gives on the same values: it is the same update on the same slices.
//! * Step hooks run with no lock held, so a hook may read the vars.

use std::cell::RefCell;
use std::collections::HashSet;

pub use ::candle_core;
pub use ::candle_nn;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Storage, Tensor, Var};

use crate::{Adadelta, Error, Options, ParamViewMut, Shaped};

impl Shaped for Var {
    /// The adapter steps float32 storage.
    type Elem = f32;
    /// The var's number of elements.
    fn numel(&self) -> usize {
        self.elem_count()
    }
    /// The var's dimensions.
    fn shape(&self) -> Vec<usize> {
        self.dims().to_vec()
    }
    /// Whether both are handles to one storage (clones of one var).
    fn is_same(&self, other: &Self) -> bool {
        storage_key(self) == storage_key(other)
    }
}

/// The address of a tensor's storage: equal for tensors that share it.
fn storage_key(t: &Tensor) -> usize {
    let (storage, _) = t.storage_and_layout();
    std::ptr::from_ref::<Storage>(&storage).addr()
}

/// Refuses what the adapter cannot step in place: another device or dtype
/// than CPU f32. `what` is "parameter" or "gradient".
fn check_cpu_f32(index: usize, t: &Tensor, what: &str) -> Result<(), Error> {
    if t.device().is_cpu() && t.dtype() == DType::F32 {
        return Ok(());
    }
    Err(Error::UnsupportedTensor {
        index,
        reason: format!(
            "its {what} is {:?} on {:?}, and the candle adapter steps f32 on the CPU",
            t.dtype(),
            t.device().location()
        ),
    })
}

/// An adapter error from a candle call made while preparing a step.
fn candle_error(index: usize, e: candle_core::Error) -> Error {
    Error::UnsupportedTensor {
        index,
        reason: format!("candle failed preparing its gradient: {e}"),
    }
}

impl Adadelta<Var> {
    /// One optimisation step of the vars from a backward pass's gradients
    /// (PyTorch's `loss.backward(); opt.step()`): the step pre-hooks, then
    /// every var that has a gradient in `grads` is updated in place, then
    /// the step post-hooks. Vars without a gradient are skipped and get no
    /// state, as parameters whose `.grad` is `None` in PyTorch.
    ///
    /// Checked before anything is written: each var and gradient is CPU f32
    /// and the var contiguous ([`Error::UnsupportedTensor`]), the gradient
    /// has the var's shape ([`Error::GradSizeMismatch`]), and every check of
    /// [`step`](Adadelta::step). On error no var, state or counter changed.
    ///
    /// ```
    /// use adadelta::candle::candle_core::{DType, Device, Var};
    /// use adadelta::Adadelta;
    ///
    /// let w = Var::ones((2, 3), DType::F32, &Device::Cpu)?;
    /// let b = Var::zeros(3, DType::F32, &Device::Cpu)?;
    /// let mut opt = Adadelta::new(vec![w.clone(), b.clone()], Default::default())?;
    /// let grads = w.as_tensor().sum_all()?.backward()?; // b has no gradient
    /// opt.step(&grads)?;
    /// assert!(opt.state(0).is_some() && opt.state(1).is_none());
    /// assert!(w.as_tensor().to_vec2::<f32>()?[0][0] < 1.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn step(&mut self, grads: &GradStore) -> Result<(), Error> {
        self.before_update();
        let lent = self.lend(grads)?;
        let mut result = None;
        let mut finish = |views: Vec<ParamViewMut<'_>>| result = Some(self.update_views(views));
        let nested = Nest::run(&lent, &mut Root, &mut finish);
        let update = match (nested, result) {
            (_, Some(result)) => result?,
            (Err(e), None) => return Err(candle_error(0, e)),
            (Ok(()), None) => unreachable!("the innermost op runs the update"),
        };
        self.after_update(update);
        Ok(())
    }

    /// Each var's tensor and its gradient for a step (`None` for a var
    /// without one), checked, with gradients made contiguous and copied
    /// where they share a var's storage.
    fn lend(&self, grads: &GradStore) -> Result<Vec<Option<(Tensor, Tensor)>>, Error> {
        let vars: HashSet<usize> = self.params().iter().map(|v| storage_key(v)).collect();
        let mut lent = Vec::with_capacity(self.params().len());
        for (index, var) in self.params().iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                lent.push(None);
                continue;
            };
            check_cpu_f32(index, var, "parameter")?;
            check_cpu_f32(index, grad, "gradient")?;
            if var.layout().contiguous_offsets().is_none() {
                return Err(Error::UnsupportedTensor {
                    index,
                    reason: format!(
                        "its layout (dims {:?}, strides {:?}) is not contiguous",
                        var.dims(),
                        var.stride()
                    ),
                });
            }
            if grad.dims() != var.dims() {
                return Err(Error::GradSizeMismatch {
                    grad: grad.dims().to_vec(),
                    param: var.dims().to_vec(),
                });
            }
            let mut grad = grad.contiguous().map_err(|e| candle_error(index, e))?;
            if vars.contains(&storage_key(&grad)) {
                grad = grad.copy().map_err(|e| candle_error(index, e))?;
            }
            lent.push(Some((var.as_tensor().clone(), grad)));
        }
        Ok(lent)
    }
}

impl candle_nn::Optimizer for Adadelta<Var> {
    /// The options of the one group (PyTorch's `Adadelta(params, lr=...)`).
    type Config = Options;

    /// [`Adadelta::new`]: one group of `vars`. Errors as PyTorch's
    /// constructor, and [`Error::UnsupportedTensor`] for a var that is not
    /// CPU f32 (candle's own optimizers skip non-float vars silently; this
    /// one says so).
    fn new(vars: Vec<Var>, config: Options) -> candle_core::Result<Self> {
        for (index, var) in vars.iter().enumerate() {
            check_cpu_f32(index, var, "parameter").map_err(candle_core::Error::wrap)?;
        }
        Adadelta::new(vars, config).map_err(candle_core::Error::wrap)
    }

    /// [`Adadelta::<Var>::step`](Adadelta::step); an [`Error`] is wrapped
    /// in [`candle_core::Error::Wrapped`].
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        Adadelta::<Var>::step(self, grads).map_err(candle_core::Error::wrap)
    }

    /// The first group's learning rate (candle's optimizers have one).
    fn learning_rate(&self) -> f64 {
        self.param_groups()
            .first()
            .map_or(self.defaults().lr, |g| g.options().lr)
    }

    /// Sets every group's learning rate. This interface cannot return an
    /// error, so the value is checked at the next step, which refuses an
    /// invalid one with [`Error::InvalidLr`] before writing anything;
    /// [`Adadelta::set_lr`] refuses it at once.
    fn set_learning_rate(&mut self, lr: f64) {
        self.set_lr_unchecked(lr);
    }
}

/// The views of the levels around the innermost one, collected there into
/// one list in position order.
trait Frames {
    fn collect<'b>(&'b mut self, out: &mut Vec<ParamViewMut<'b>>);
}

/// The outermost level: no view.
struct Root;

impl Frames for Root {
    fn collect<'b>(&'b mut self, _: &mut Vec<ParamViewMut<'b>>) {}
}

/// One var's view, lent by the in-place op whose call holds its lock, and
/// the levels around it.
struct Frame<'s, 'p> {
    data: &'s mut [f32],
    grad: Option<&'s [f32]>,
    outer: &'p mut dyn Frames,
}

impl Frames for Frame<'_, '_> {
    fn collect<'b>(&'b mut self, out: &mut Vec<ParamViewMut<'b>>) {
        self.outer.collect(out);
        out.push(ParamViewMut {
            data: &mut *self.data,
            grad: self.grad,
        });
    }
}

/// The innermost level's work: the update of every view.
type Finish<'f> = dyn FnMut(Vec<ParamViewMut<'_>>) + 'f;

/// The in-place op of one level: it lends its var's storage and runs the
/// levels inside it.
struct Nest<'a, 'f> {
    rest: &'a [Option<(Tensor, Tensor)>],
    outer: RefCell<&'a mut dyn Frames>,
    finish: RefCell<&'a mut Finish<'f>>,
}

impl Nest<'_, '_> {
    /// Lends `lent[0]` (through candle's in-place op if it has a gradient),
    /// then the rest inside it; the innermost level runs `finish` on every
    /// view. The stack grows as needed (one level per var).
    fn run(
        lent: &[Option<(Tensor, Tensor)>],
        outer: &mut dyn Frames,
        finish: &mut Finish<'_>,
    ) -> candle_core::Result<()> {
        let Some((first, rest)) = lent.split_first() else {
            let mut views = Vec::new();
            outer.collect(&mut views);
            finish(views);
            return Ok(());
        };
        stacker::maybe_grow(32 * 1024, 1024 * 1024, || match first {
            None => {
                let mut frame = Frame {
                    data: &mut [],
                    grad: None,
                    outer,
                };
                Nest::run(rest, &mut frame, finish)
            }
            Some((var, grad)) => var.inplace_op2(
                grad,
                &Nest {
                    rest,
                    outer: RefCell::new(outer),
                    finish: RefCell::new(finish),
                },
            ),
        })
    }
}

/// The contiguous f32 elements of a tensor's storage.
fn elements<'s>(storage: &'s CpuStorage, layout: &Layout) -> candle_core::Result<&'s [f32]> {
    let (CpuStorage::F32(v), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
        candle_core::bail!("the adapter's checks let a non-f32 or non-contiguous tensor through");
    };
    Ok(&v[start..end])
}

impl InplaceOp2 for Nest<'_, '_> {
    fn name(&self) -> &'static str {
        "adadelta-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let grad = elements(s2, l2)?;
        let (CpuStorage::F32(v), Some((start, end))) = (s1, l1.contiguous_offsets()) else {
            candle_core::bail!("the adapter's checks let a non-f32 or non-contiguous var through");
        };
        let mut outer = self.outer.borrow_mut();
        let mut frame = Frame {
            data: &mut v[start..end],
            grad: Some(grad),
            outer: &mut **outer,
        };
        Nest::run(self.rest, &mut frame, &mut **self.finish.borrow_mut())
    }
}
