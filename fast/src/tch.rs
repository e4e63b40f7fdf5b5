//! tch: `Adadelta<tch::Tensor>` and `Adadelta<TypedTensor<E>>`, an
//! Adadelta over libtorch tensors that steps their contiguous CPU memory in
//! place, reading each one's `.grad()` (feature `tch`; needs libtorch, as
//! the `tch` crate does).
//!
//! `Adadelta<Tensor>` steps `Float` (f32) tensors. [`TypedTensor<E>`] is a
//! tensor of another element type (`f64`, [`half::bf16`]
//! or [`half::f16`]: libtorch's `Double`, `BFloat16` and
//! `Half`), and `Adadelta<TypedTensor<E>>` steps tensors of that type, with
//! state of that type, as PyTorch's optimizer on tensors of that dtype.
//!
//! Every method of [`Adadelta`] that does not step works on both
//! (groups, options, state dicts, checkpoints in PyTorch's format, hooks).
//! [`Adadelta::<Tensor>::step`](Adadelta::step) is PyTorch's
//! `optimizer.step()` after `loss.backward()`; with
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
//! The same in float64:
//!
//! ```
//! use adadelta::tch::tch::{Kind, Tensor};
//! use adadelta::tch::TypedTensor;
//! use adadelta::{Adadelta, Options};
//!
//! let w = Tensor::from_slice(&[1.0_f64, -2.0, 3.0]).set_requires_grad(true);
//! let mut opt = Adadelta::new(vec![TypedTensor::<f64>::new(w.shallow_clone())], Options { lr: 1.0, ..Options::default() })?;
//! w.square().sum(Kind::Double).backward();
//! opt.step()?;
//! assert!(w.double_value(&[0]) < 1.0);
//! assert_eq!(opt.state(0).unwrap().square_avg().len(), 3); // float64 state
//! # Ok::<(), adadelta::Error>(())
//! ```
//!
//! # What it steps, and how
//!
//! * Defined, dense, contiguous CPU tensors of the optimizer's element type
//!   (`Float` for `Adadelta<Tensor>`,
//!   [`TypedTensor::<E>::KIND`](TypedTensor::KIND) for
//!   `Adadelta<TypedTensor<E>>`); anything else is refused with
//!   [`Error::UnsupportedTensor`] naming the parameter and what it is (its
//!   dtype and the one expected), before anything is written. The gradient
//!   may be of any layout: a non-contiguous one is made contiguous first,
//!   which copies that gradient only.
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
//!
//! # bfloat16 and `tch::kind::Element`
//!
//! tch 0.26 gives `half::bf16` the kind `Half` (float16) in its
//! `tch::kind::Element`, so `Tensor::from_slice(&[bf16])` makes a float16
//! tensor of the bfloat16 bits. Make bfloat16 tensors with
//! [`TypedTensor::<bf16>::KIND`](TypedTensor::KIND) (`BFloat16`), for
//! example with `Tensor::from_slice(&f32s).to_kind(TypedTensor::<bf16>::KIND)`.

pub use ::tch;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use ::tch::{Device, Kind, Tensor};

use crate::kernel::Element;
use crate::{Adadelta, Error, ParamViewMut, Shaped};

impl Shaped for Tensor {
    /// `Adadelta<Tensor>` steps float32 memory ([`TypedTensor`] steps the
    /// others).
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

/// A libtorch [`Tensor`] that an `Adadelta<TypedTensor<E>>` steps as
/// element type `E`: `f64`, [`half::bf16`] or
/// [`half::f16`] (or `f32`, the default, as
/// `Adadelta<Tensor>` does). Its optimizer's state has the element type
/// `E`, and a tensor of another kind ([`TypedTensor::KIND`] is the one
/// expected) is refused at the step, naming both.
///
/// A `TypedTensor` is a handle, as a `Tensor` is: it dereferences to its
/// tensor, and shares its memory with the tensor's other handles
/// (`shallow_clone`s).
///
/// ```
/// use adadelta::tch::tch::{Device, Kind, Tensor};
/// use adadelta::tch::TypedTensor;
/// use adadelta::half::bf16;
/// use adadelta::Adadelta;
///
/// let w = Tensor::ones([2, 3], (TypedTensor::<bf16>::KIND, Device::Cpu)).set_requires_grad(true);
/// let mut opt = Adadelta::new(vec![TypedTensor::<bf16>::new(w.shallow_clone())], Default::default())?;
/// w.sum(Kind::BFloat16).backward();
/// opt.step()?;
/// assert!(w.double_value(&[0, 0]) < 1.0);
/// assert_eq!(opt.params()[0].kind(), Kind::BFloat16); // through Deref
/// # Ok::<(), adadelta::Error>(())
/// ```
pub struct TypedTensor<E = f32> {
    tensor: Tensor,
    elem: PhantomData<fn() -> E>,
}

impl<E: Element> TypedTensor<E> {
    /// The libtorch kind of `E`'s tensors: `Float`, `Double`, `BFloat16`
    /// or `Half` (`tch::kind::Element::KIND` of `half::bf16` is `Half` in
    /// tch 0.26: this one is right).
    ///
    /// ```
    /// use adadelta::tch::{tch::Kind, TypedTensor};
    /// assert_eq!(TypedTensor::<adadelta::half::bf16>::KIND, Kind::BFloat16);
    /// assert_eq!(TypedTensor::<adadelta::half::f16>::KIND, Kind::Half);
    /// assert_eq!(TypedTensor::<f64>::KIND, Kind::Double);
    /// ```
    pub const KIND: Kind = tch_kind(E::DTYPE);

    /// `tensor`, to be stepped as element type `E`. Its kind is checked by
    /// the step, which refuses another before writing anything.
    ///
    /// ```
    /// use adadelta::tch::tch::Tensor;
    /// use adadelta::tch::TypedTensor;
    /// let w = TypedTensor::<f64>::new(Tensor::from_slice(&[1.0_f64, 2.0]));
    /// assert_eq!(w.numel(), 2);
    /// ```
    pub fn new(tensor: Tensor) -> Self {
        TypedTensor {
            tensor,
            elem: PhantomData,
        }
    }

    /// The tensor, consuming the handle.
    ///
    /// ```
    /// use adadelta::tch::tch::Tensor;
    /// use adadelta::tch::TypedTensor;
    /// let w = Tensor::from_slice(&[1.0_f64, 2.0]);
    /// let typed = TypedTensor::<f64>::new(w.shallow_clone());
    /// assert_eq!(typed.into_tensor().data_ptr(), w.data_ptr());
    /// ```
    pub fn into_tensor(self) -> Tensor {
        self.tensor
    }
}

/// The libtorch kind of the kernel's element type named `dtype` (torch's
/// name, [`Element::DTYPE`]). Evaluated at compile time, so an element type
/// without a libtorch kind does not compile.
const fn tch_kind(dtype: &str) -> Kind {
    match dtype.as_bytes() {
        b"float32" => Kind::Float,
        b"float64" => Kind::Double,
        b"bfloat16" => Kind::BFloat16,
        b"float16" => Kind::Half,
        _ => panic!("a kernel element type without a libtorch kind"),
    }
}

/// The tensor's, with the element type it is stepped as.
impl<E: Element> std::fmt::Debug for TypedTensor<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedTensor")
            .field("elem", &E::DTYPE)
            .field("tensor", &self.tensor)
            .finish()
    }
}

/// The tensor.
impl<E> Deref for TypedTensor<E> {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.tensor
    }
}

/// The tensor, for tch's methods that take `&mut self` (`zero_grad`,
/// in-place ops).
impl<E> DerefMut for TypedTensor<E> {
    fn deref_mut(&mut self) -> &mut Tensor {
        &mut self.tensor
    }
}

/// [`TypedTensor::new`].
impl<E: Element> From<Tensor> for TypedTensor<E> {
    fn from(tensor: Tensor) -> Self {
        TypedTensor::new(tensor)
    }
}

impl<E: Element> Shaped for TypedTensor<E> {
    /// The element type it is stepped as.
    type Elem = E;
    /// The number of elements (0 for an undefined tensor).
    fn numel(&self) -> usize {
        Shaped::numel(&self.tensor)
    }
    /// The sizes (empty for an undefined tensor).
    fn shape(&self) -> Vec<usize> {
        Shaped::shape(&self.tensor)
    }
    /// Whether both are handles to the same non-empty memory.
    fn is_same(&self, other: &Self) -> bool {
        self.tensor.is_same(&other.tensor)
    }
}

mod handle {
    use tch::Tensor;

    /// A parameter type of the tch adapter: [`Tensor`] (stepped as f32) or
    /// [`TypedTensor`](super::TypedTensor).
    pub trait TensorHandle: crate::Shaped {
        /// The tensor.
        fn tensor(&self) -> &Tensor;
        /// The tensor, mutable.
        fn tensor_mut(&mut self) -> &mut Tensor;
    }
}

use handle::TensorHandle;

impl TensorHandle for Tensor {
    fn tensor(&self) -> &Tensor {
        self
    }
    fn tensor_mut(&mut self) -> &mut Tensor {
        self
    }
}

impl<E: Element> TensorHandle for TypedTensor<E> {
    fn tensor(&self) -> &Tensor {
        &self.tensor
    }
    fn tensor_mut(&mut self) -> &mut Tensor {
        &mut self.tensor
    }
}

/// Refuses what the adapter cannot step in place as `E`: an undefined,
/// sparse or MKL-DNN tensor, or another device than the CPU or another kind
/// than `E`'s. `what` is "parameter" or "gradient".
fn check_cpu<E: Element>(index: usize, t: &Tensor, what: &str) -> Result<(), Error> {
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
    let expected = TypedTensor::<E>::KIND;
    if kind != expected || t.device() != Device::Cpu {
        return Err(unsupported(format!(
            "its {what} is {kind:?} on {:?}, and this optimizer steps {expected:?} ({}) on the CPU",
            t.device(),
            E::DTYPE
        )));
    }
    Ok(())
}

/// A copy of the tensor `t` of `E`'s kind in new, contiguous memory, bit
/// for bit (NaN payloads included). (`empty_like` would keep `t`'s
/// strides.)
fn copied<E: Element>(index: usize, t: &Tensor) -> Result<Tensor, Error> {
    let unsupported = |e: ::tch::TchError| Error::UnsupportedTensor {
        index,
        reason: format!("libtorch failed copying its gradient: {e}"),
    };
    let mut copy =
        Tensor::f_empty(t.size(), (TypedTensor::<E>::KIND, Device::Cpu)).map_err(unsupported)?;
    copy.f_copy_(t).map_err(unsupported)?;
    Ok(copy)
}

/// One parameter lent to a step: its memory, and its gradient's, with the
/// handle that keeps the gradient alive.
struct Lend<E> {
    index: usize,
    data: *mut E,
    len: usize,
    grad: Option<(Tensor, *const E)>,
}

impl<E: Element> Lend<E> {
    /// The byte range of the parameter's memory.
    fn range(&self) -> std::ops::Range<usize> {
        let start = self.data as usize;
        start..start + self.len * size_of::<E>()
    }

    /// The view of this parameter for the update: the crate's one `unsafe`
    /// outside the SIMD kernel, since `tch` lends no slice of a tensor.
    #[allow(unsafe_code)]
    fn view(&mut self) -> ParamViewMut<'_, E> {
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
        // SAFETY: `data` and `grad` point to `len` elements of type `E` of
        // defined, dense, contiguous CPU tensors of `E`'s kind
        // (`TypedTensor::<E>::KIND`: libtorch stores `Float`, `Double`,
        // `BFloat16` and `Half` as `f32`, `f64`, `half::bf16` and
        // `half::f16` store them; checked by `lend`), kept alive for the
        // view's lifetime: the parameter by the optimizer, which the step
        // borrows mutably, the gradient by the handle in `self.grad`.
        // `lend` also checked that no two stepped parameters' memory
        // overlaps and copied every gradient that overlaps one, so these
        // are the only references to the parameter's memory, and the
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
        step(self)
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
        zero_grad(self);
    }
}

impl<E: Element> Adadelta<TypedTensor<E>> {
    /// One optimisation step of the tensors from their `.grad()`, as
    /// [`Adadelta::<Tensor>::step`](Adadelta::step) in the element type
    /// `E`: each parameter and gradient must be a dense CPU tensor of
    /// [`TypedTensor::<E>::KIND`](TypedTensor::KIND), which the step checks
    /// with every other check before anything is written
    /// ([`Error::UnsupportedTensor`] names the kind found and the one
    /// expected).
    ///
    /// ```
    /// use adadelta::tch::tch::{Device, Kind, Tensor};
    /// use adadelta::tch::TypedTensor;
    /// use adadelta::half::f16;
    /// use adadelta::{Adadelta, Error};
    ///
    /// let w = Tensor::ones([2, 3], (Kind::Half, Device::Cpu)).set_requires_grad(true);
    /// let b = Tensor::zeros([3], (Kind::Half, Device::Cpu)).set_requires_grad(true);
    /// let mut opt = Adadelta::new(vec![TypedTensor::<f16>::new(w.shallow_clone()), b.into()], Default::default())?;
    /// w.sum(Kind::Half).backward(); // b's gradient stays undefined
    /// opt.step()?;
    /// assert!(opt.state(0).is_some() && opt.state(1).is_none());
    /// assert!(w.double_value(&[0, 0]) < 1.0);
    ///
    /// let f32s = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    /// let mut opt = Adadelta::new(vec![TypedTensor::<f16>::new(f32s.shallow_clone())], Default::default())?;
    /// f32s.sum(Kind::Float).backward();
    /// let err = opt.step().unwrap_err();
    /// assert!(matches!(err, Error::UnsupportedTensor { index: 0, .. }));
    /// assert!(err.to_string().contains("is Float on Cpu, and this optimizer steps Half (float16)"), "{err}");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn step(&mut self) -> Result<(), Error> {
        step(self)
    }

    /// Fills every defined gradient with zeros, as
    /// [`Adadelta::<Tensor>::zero_grad`](Adadelta::zero_grad).
    ///
    /// ```
    /// use adadelta::tch::tch::{Kind, Tensor};
    /// use adadelta::tch::TypedTensor;
    /// use adadelta::Adadelta;
    ///
    /// let w = Tensor::from_slice(&[1.0_f64, 2.0]).set_requires_grad(true);
    /// let mut opt = Adadelta::new(vec![TypedTensor::<f64>::new(w.shallow_clone())], Default::default())?;
    /// w.sum(Kind::Double).backward();
    /// opt.zero_grad();
    /// assert_eq!(Vec::<f64>::try_from(&w.grad()).unwrap(), [0.0, 0.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn zero_grad(&mut self) {
        zero_grad(self);
    }
}

/// The step of every tch parameter type: hooks, the checks of [`lend`],
/// then the update of the lent memory.
fn step<P: TensorHandle>(opt: &mut Adadelta<P>) -> Result<(), Error> {
    opt.before_update();
    let mut lent = lend(opt)?;
    let views = lent.iter_mut().map(Lend::view).collect();
    let update = opt.update_views(views)?;
    opt.after_update(update);
    Ok(())
}

/// Every defined gradient filled with zeros.
fn zero_grad<P: TensorHandle>(opt: &mut Adadelta<P>) {
    for t in opt.params_mut() {
        t.tensor_mut().zero_grad();
    }
}

/// Each parameter's memory and its gradient's for a step, checked, with
/// gradients made contiguous and copied where they overlap a stepped
/// parameter.
fn lend<P: TensorHandle>(opt: &Adadelta<P>) -> Result<Vec<Lend<P::Elem>>, Error> {
    let mut lent = Vec::with_capacity(opt.params().len());
    for (index, t) in opt.params().iter().map(P::tensor).enumerate() {
        check_cpu::<P::Elem>(index, t, "parameter")?;
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
        check_cpu::<P::Elem>(index, &grad, "gradient")?;
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
            copied::<P::Elem>(index, &grad)?
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
        let end = start + l.len * size_of::<P::Elem>();
        // The ranges are disjoint and sorted, so only the last one that
        // starts before `end` can reach past `start`.
        let before = ranges.partition_point(|(r, _)| r.start < end);
        if l.len > 0 && before > 0 && ranges[before - 1].0.end > start {
            *grad = copied::<P::Elem>(l.index, grad)?;
            *ptr = grad.data_ptr().cast_const().cast();
        }
    }
    Ok(lent)
}
