//! candle: `Adadelta<Var>` and `Adadelta<TypedVar<E>>`, an Adadelta over
//! [`candle_core::Var`]s that implements [`candle_nn::Optimizer`] and steps
//! their CPU storage in place (feature `candle`).
//!
//! `Adadelta<Var>` steps f32 vars. [`TypedVar<E>`] is a var of another
//! element type (`f64`, [`half::bf16`] or
//! [`half::f16`]: candle's `F64`, `BF16` and `F16`), and
//! `Adadelta<TypedVar<E>>` steps vars of that type, with state of that type,
//! as PyTorch's optimizer on tensors of that dtype.
//!
//! Every method of [`Adadelta`] that does not step works on both
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
//! The same in bfloat16, through candle's interface (`Optimizer::new`
//! takes the `Var`s and checks their dtype):
//!
//! ```
//! use adadelta::candle::candle_core::{DType, Device, Var};
//! use adadelta::candle::candle_nn::Optimizer;
//! use adadelta::candle::TypedVar;
//! use adadelta::half::bf16;
//! use adadelta::{Adadelta, Options};
//!
//! let w = Var::ones(3, DType::BF16, &Device::Cpu)?;
//! let mut opt: Adadelta<TypedVar<bf16>> = Optimizer::new(vec![w.clone()], Options { lr: 1.0, ..Options::default() })?;
//! opt.backward_step(&w.as_tensor().sqr()?.sum_all()?)?;
//! assert!(w.as_tensor().to_vec1::<bf16>()?[0] < bf16::ONE);
//! assert_eq!(opt.state(0).unwrap().square_avg().len(), 3); // bfloat16 state
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it steps, and how
//!
//! * CPU vars of the optimizer's element type (`F32` for `Adadelta<Var>`,
//!   [`TypedVar::<E>::DTYPE`](TypedVar::DTYPE) for `Adadelta<TypedVar<E>>`)
//!   and of a contiguous layout; anything else is refused with
//!   [`Error::UnsupportedTensor`] naming the parameter, the dtype it has and
//!   the one expected, before anything is written. The gradient may be of
//!   any layout (candle's gradients of a sum are broadcasts): a
//!   non-contiguous one is made contiguous first, which copies that
//!   gradient only.
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
//!   gives on the same values, in every numerics and dtype: it is the same
//!   update on the same slices.
//! * Step hooks run with no lock held, so a hook may read the vars.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::ops::Deref;

pub use ::candle_core;
pub use ::candle_nn;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Storage, Tensor, Var};

use crate::kernel::Element;
use crate::{Adadelta, Error, Options, ParamViewMut, Shaped};

impl Shaped for Var {
    /// `Adadelta<Var>` steps float32 storage ([`TypedVar`] steps the others).
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

/// A candle [`Var`] that an `Adadelta<TypedVar<E>>` steps as element type
/// `E`: `f64`, [`half::bf16`] or
/// [`half::f16`] (or `f32`, the default, as
/// `Adadelta<Var>` does). Its optimizer's state has the element type `E`,
/// and a var of another dtype ([`TypedVar::DTYPE`] is the one expected) is
/// refused at the step, naming both dtypes.
///
/// A `TypedVar` is a handle, as a `Var` is: it dereferences to its var, and
/// its clones share its storage.
///
/// ```
/// use adadelta::candle::candle_core::{DType, Device, Var};
/// use adadelta::candle::TypedVar;
/// use adadelta::{Adadelta, Options};
///
/// let w = Var::from_slice(&[1.0_f64, -2.0], 2, &Device::Cpu)?;
/// let mut opt = Adadelta::new(vec![TypedVar::<f64>::new(w.clone())], Options::default())?;
/// opt.step(&w.as_tensor().sqr()?.sum_all()?.backward()?)?;
/// assert!(w.as_tensor().to_vec1::<f64>()?[0] < 1.0);
/// assert_eq!(opt.params()[0].dtype(), DType::F64); // through Deref
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedVar<E = f32> {
    var: Var,
    elem: PhantomData<fn() -> E>,
}

impl<E: Element> TypedVar<E> {
    /// The candle dtype of `E`'s vars: `F32`, `F64`, `BF16` or `F16`.
    ///
    /// ```
    /// use adadelta::candle::{candle_core::DType, TypedVar};
    /// assert_eq!(TypedVar::<adadelta::half::bf16>::DTYPE, DType::BF16);
    /// assert_eq!(TypedVar::<f32>::DTYPE, DType::F32);
    /// ```
    pub const DTYPE: DType = candle_dtype(E::DTYPE);

    /// `var`, to be stepped as element type `E`. Its dtype is checked by
    /// the step (and by [`candle_nn::Optimizer::new`]), which refuses
    /// another before writing anything.
    ///
    /// ```
    /// use adadelta::candle::candle_core::{DType, Device, Var};
    /// use adadelta::candle::TypedVar;
    /// let w = TypedVar::<f64>::new(Var::zeros(4, DType::F64, &Device::Cpu)?);
    /// assert_eq!(w.elem_count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(var: Var) -> Self {
        TypedVar {
            var,
            elem: PhantomData,
        }
    }

    /// The var, consuming the handle.
    ///
    /// ```
    /// use adadelta::candle::candle_core::{DType, Device, Var};
    /// use adadelta::candle::TypedVar;
    /// let w = Var::zeros(2, DType::F16, &Device::Cpu)?;
    /// let typed = TypedVar::<adadelta::half::f16>::new(w.clone());
    /// assert_eq!(typed.into_var().id(), w.id()); // the same tensor
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_var(self) -> Var {
        self.var
    }
}

/// The candle dtype of the kernel's element type named `dtype` (torch's
/// name, [`Element::DTYPE`]). Evaluated at compile time, so an element type
/// without a candle dtype does not compile.
const fn candle_dtype(dtype: &str) -> DType {
    match dtype.as_bytes() {
        b"float32" => DType::F32,
        b"float64" => DType::F64,
        b"bfloat16" => DType::BF16,
        b"float16" => DType::F16,
        _ => panic!("a kernel element type without a candle dtype"),
    }
}

/// A clone of the handle: the same var, sharing its storage.
impl<E> Clone for TypedVar<E> {
    fn clone(&self) -> Self {
        TypedVar {
            var: self.var.clone(),
            elem: PhantomData,
        }
    }
}

/// The var's, with the element type it is stepped as.
impl<E: Element> std::fmt::Debug for TypedVar<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedVar")
            .field("elem", &E::DTYPE)
            .field("var", &self.var)
            .finish()
    }
}

/// The var, as `Var` dereferences to its tensor.
impl<E> Deref for TypedVar<E> {
    type Target = Var;
    fn deref(&self) -> &Var {
        &self.var
    }
}

/// [`TypedVar::new`].
impl<E: Element> From<Var> for TypedVar<E> {
    fn from(var: Var) -> Self {
        TypedVar::new(var)
    }
}

impl<E: Element> Shaped for TypedVar<E> {
    /// The element type it is stepped as.
    type Elem = E;
    /// The var's number of elements.
    fn numel(&self) -> usize {
        Shaped::numel(&self.var)
    }
    /// The var's dimensions.
    fn shape(&self) -> Vec<usize> {
        Shaped::shape(&self.var)
    }
    /// Whether both are handles to one storage.
    fn is_same(&self, other: &Self) -> bool {
        self.var.is_same(&other.var)
    }
}

mod handle {
    use candle_core::Var;

    /// A parameter type of the candle adapter: [`Var`] (stepped as f32) or
    /// [`TypedVar`](super::TypedVar).
    pub trait VarHandle: crate::Shaped {
        /// The var.
        fn var(&self) -> &Var;
        /// The handle of `var` (whose dtype is checked by the caller).
        fn from_var(var: Var) -> Self;
    }
}

use handle::VarHandle;

impl VarHandle for Var {
    fn var(&self) -> &Var {
        self
    }
    fn from_var(var: Var) -> Self {
        var
    }
}

impl<E: Element> VarHandle for TypedVar<E> {
    fn var(&self) -> &Var {
        &self.var
    }
    fn from_var(var: Var) -> Self {
        TypedVar::new(var)
    }
}

/// The address of a tensor's storage: equal for tensors that share it.
fn storage_key(t: &Tensor) -> usize {
    let (storage, _) = t.storage_and_layout();
    std::ptr::from_ref::<Storage>(&storage).addr()
}

/// Refuses what the adapter cannot step in place as `E`: another device
/// than the CPU, or another dtype than `E`'s. `what` is "parameter" or
/// "gradient".
fn check_cpu<E: Element>(index: usize, t: &Tensor, what: &str) -> Result<(), Error> {
    let expected = TypedVar::<E>::DTYPE;
    if t.device().is_cpu() && t.dtype() == expected {
        return Ok(());
    }
    Err(Error::UnsupportedTensor {
        index,
        reason: format!(
            "its {what} is {:?} on {:?}, and this optimizer steps {expected:?} on the CPU",
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
        step(self, grads)
    }
}

impl<E: Element> Adadelta<TypedVar<E>> {
    /// One optimisation step of the vars from a backward pass's gradients,
    /// as [`Adadelta::<Var>::step`](Adadelta::step) in the element type
    /// `E`: each var and gradient must be a CPU tensor of
    /// [`TypedVar::<E>::DTYPE`](TypedVar::DTYPE), which the step checks
    /// with every other check before anything is written
    /// ([`Error::UnsupportedTensor`] names the dtype found and the one
    /// expected).
    ///
    /// ```
    /// use adadelta::candle::candle_core::{DType, Device, Var};
    /// use adadelta::candle::TypedVar;
    /// use adadelta::half::f16;
    /// use adadelta::{Adadelta, Error};
    ///
    /// let w = Var::ones((2, 3), DType::F16, &Device::Cpu)?;
    /// let b = Var::zeros(3, DType::F16, &Device::Cpu)?;
    /// let mut opt = Adadelta::new(vec![TypedVar::<f16>::new(w.clone()), b.into()], Default::default())?;
    /// opt.step(&w.as_tensor().sum_all()?.backward()?)?; // b has no gradient
    /// assert!(opt.state(0).is_some() && opt.state(1).is_none());
    /// assert!(w.as_tensor().to_vec2::<f16>()?[0][0] < f16::ONE);
    ///
    /// let f32_var = Var::ones(3, DType::F32, &Device::Cpu)?;
    /// let mut opt = Adadelta::new(vec![TypedVar::<f16>::new(f32_var.clone())], Default::default())?;
    /// let err = opt.step(&f32_var.as_tensor().sum_all()?.backward()?).unwrap_err();
    /// assert!(matches!(err, Error::UnsupportedTensor { index: 0, .. }));
    /// assert!(err.to_string().contains("is F32 on Cpu, and this optimizer steps F16"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn step(&mut self, grads: &GradStore) -> Result<(), Error> {
        step(self, grads)
    }
}

/// The step of every candle parameter type: hooks, the checks of
/// [`lend`], then the update inside one in-place op per var.
fn step<P: VarHandle>(opt: &mut Adadelta<P>, grads: &GradStore) -> Result<(), Error> {
    opt.before_update();
    let lent = lend(opt, grads)?;
    let mut result = None;
    let mut finish = |views: Vec<ParamViewMut<'_, P::Elem>>| result = Some(opt.update_views(views));
    let nested = Nest::run(&lent, &mut Root, &mut finish);
    let update = match (nested, result) {
        (_, Some(result)) => result?,
        (Err(e), None) => return Err(candle_error(0, e)),
        (Ok(()), None) => unreachable!("the innermost op runs the update"),
    };
    opt.after_update(update);
    Ok(())
}

/// Each var's tensor and its gradient for a step (`None` for a var
/// without one), checked, with gradients made contiguous and copied
/// where they share a var's storage.
fn lend<P: VarHandle>(
    opt: &Adadelta<P>,
    grads: &GradStore,
) -> Result<Vec<Option<(Tensor, Tensor)>>, Error> {
    let vars: HashSet<usize> = opt.params().iter().map(|v| storage_key(v.var())).collect();
    let mut lent = Vec::with_capacity(opt.params().len());
    for (index, var) in opt.params().iter().map(P::var).enumerate() {
        let Some(grad) = grads.get(var.as_tensor()) else {
            lent.push(None);
            continue;
        };
        check_cpu::<P::Elem>(index, var, "parameter")?;
        check_cpu::<P::Elem>(index, grad, "gradient")?;
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

/// candle's optimizer interface, for `Adadelta<Var>` and
/// `Adadelta<TypedVar<E>>`.
impl<P: VarHandle> candle_nn::Optimizer for Adadelta<P> {
    /// The options of the one group (PyTorch's `Adadelta(params, lr=...)`).
    type Config = Options;

    /// [`Adadelta::new`]: one group of `vars`. Errors as PyTorch's
    /// constructor, and [`Error::UnsupportedTensor`] for a var that is not
    /// a CPU var of the optimizer's element type (candle's own optimizers
    /// skip non-float vars silently; this one says so).
    fn new(vars: Vec<Var>, config: Options) -> candle_core::Result<Self> {
        for (index, var) in vars.iter().enumerate() {
            check_cpu::<P::Elem>(index, var, "parameter").map_err(candle_core::Error::wrap)?;
        }
        let params = vars.into_iter().map(P::from_var).collect();
        Adadelta::new(params, config).map_err(candle_core::Error::wrap)
    }

    /// [`Adadelta::<Var>::step`](Adadelta::step); an [`Error`] is wrapped
    /// in [`candle_core::Error::Wrapped`].
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        step(self, grads).map_err(candle_core::Error::wrap)
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

/// A level of the nested in-place ops: the view it lends (none at the
/// root) and the level around it.
trait Frames<E> {
    fn split<'b>(&'b mut self) -> Option<(ParamViewMut<'b, E>, &'b mut dyn Frames<E>)>;
}

/// The views of `level` and of every level around it, in position order.
/// A loop, not a recursion: a model may have many thousands of levels.
fn collect<'b, E>(mut level: &'b mut dyn Frames<E>) -> Vec<ParamViewMut<'b, E>> {
    let mut views = Vec::new();
    while let Some((view, outer)) = level.split() {
        views.push(view);
        level = outer;
    }
    views.reverse();
    views
}

/// The outermost level: no view.
struct Root;

impl<E> Frames<E> for Root {
    fn split<'b>(&'b mut self) -> Option<(ParamViewMut<'b, E>, &'b mut dyn Frames<E>)> {
        None
    }
}

/// One var's view, lent by the in-place op whose call holds its lock, and
/// the levels around it.
struct Frame<'s, 'p, E> {
    data: &'s mut [E],
    grad: Option<&'s [E]>,
    outer: &'p mut dyn Frames<E>,
}

impl<E> Frames<E> for Frame<'_, '_, E> {
    fn split<'b>(&'b mut self) -> Option<(ParamViewMut<'b, E>, &'b mut dyn Frames<E>)> {
        let view = ParamViewMut {
            data: &mut *self.data,
            grad: self.grad,
        };
        Some((view, &mut *self.outer))
    }
}

/// The innermost level's work: the update of every view.
type Finish<'f, E> = dyn FnMut(Vec<ParamViewMut<'_, E>>) + 'f;

/// The in-place op of one level: it lends its var's storage and runs the
/// levels inside it.
struct Nest<'a, 'f, E> {
    rest: &'a [Option<(Tensor, Tensor)>],
    outer: RefCell<&'a mut dyn Frames<E>>,
    finish: RefCell<&'a mut Finish<'f, E>>,
}

impl<E: Element> Nest<'_, '_, E> {
    /// Lends `lent[0]` (through candle's in-place op if it has a gradient),
    /// then the rest inside it; the innermost level runs `finish` on every
    /// view. The stack grows as needed (one level per var).
    fn run(
        lent: &[Option<(Tensor, Tensor)>],
        outer: &mut dyn Frames<E>,
        finish: &mut Finish<'_, E>,
    ) -> candle_core::Result<()> {
        let Some((first, rest)) = lent.split_first() else {
            finish(collect(outer));
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

/// The vector of a floating-point storage, to be downcast to its element
/// type (`None` for an integer storage).
fn floats(storage: &CpuStorage) -> Option<&dyn Any> {
    Some(match storage {
        CpuStorage::F32(v) => v,
        CpuStorage::F64(v) => v,
        CpuStorage::BF16(v) => v,
        CpuStorage::F16(v) => v,
        _ => return None,
    })
}

/// [`floats`], mutable.
fn floats_mut(storage: &mut CpuStorage) -> Option<&mut dyn Any> {
    Some(match storage {
        CpuStorage::F32(v) => v,
        CpuStorage::F64(v) => v,
        CpuStorage::BF16(v) => v,
        CpuStorage::F16(v) => v,
        _ => return None,
    })
}

/// The error of an op whose tensor the adapter's checks should have refused.
fn unchecked(what: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "the adapter's checks let a {what} of another dtype or a non-contiguous layout through"
    ))
}

impl<E: Element> InplaceOp2 for Nest<'_, '_, E> {
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
        let (Some(grad), Some((gs, ge))) = (
            floats(s2).and_then(<dyn Any>::downcast_ref::<Vec<E>>),
            l2.contiguous_offsets(),
        ) else {
            return Err(unchecked("gradient"));
        };
        let (Some(data), Some((start, end))) = (
            floats_mut(s1).and_then(<dyn Any>::downcast_mut::<Vec<E>>),
            l1.contiguous_offsets(),
        ) else {
            return Err(unchecked("var"));
        };
        let mut outer = self.outer.borrow_mut();
        let mut frame = Frame {
            data: &mut data[start..end],
            grad: Some(&grad[gs..ge]),
            outer: &mut **outer,
        };
        Nest::run(self.rest, &mut frame, &mut **self.finish.borrow_mut())
    }
}
