//! How the optimizer reaches a parameter: the [`Parameter`] trait, the
//! borrowed [`ParamViewMut`] it hands out, the owned [`Param`] for users
//! with no tensor framework, and [`Lent`], the record an optimizer keeps of
//! a parameter that the model keeps ([`Shaped`] is what both give).

use std::marker::PhantomData;

use crate::kernel::Element;
use crate::Error;

/// One parameter's values (of its element type `E`: `f32`, `f64`,
/// `half::bf16` or `half::f16`),
/// mutable, and its gradient, if it has one: what [`Parameter::view_mut`]
/// lends the optimizer for a step.
///
/// The two slices are matched element by element: `grad[i]` is the
/// gradient of `data[i]`. Their order is the parameter's memory order, which
/// Adadelta (element-wise) does not care about, as long as both use the same.
///
/// ```
/// use adadelta::ParamViewMut;
/// let mut data = vec![1.0_f32, 2.0];
/// let view = ParamViewMut { data: &mut data, grad: Some(&[0.5, 0.5]) };
/// assert_eq!(view.data.len(), view.grad.unwrap().len());
/// ```
#[derive(Debug)]
pub struct ParamViewMut<'a, E = f32> {
    /// The parameter's values, updated in place by a step.
    pub data: &'a mut [E],
    /// The gradient, `None` when the parameter has none (PyTorch's
    /// `p.grad is None`): the step then skips the parameter.
    pub grad: Option<&'a [E]>,
}

/// A parameter tensor the optimizer can step: values of one element type
/// ([`Elem`](Self::Elem): `f32`, PyTorch's `float32`, `f64`, its
/// `float64`, or [`half::bf16`] and
/// [`half::f16`], its `bfloat16` and `float16`) and an
/// optional gradient of the same type and length. The
/// optimizer's state for it has the same element type, as PyTorch's state
/// has its parameter's dtype.
///
/// The trait is dyn-compatible: parameters of different types (of one
/// element type) step together as `&mut dyn Parameter<Elem = f32>`
/// ([`Adadelta::step_lent`](crate::Adadelta::step_lent)).
///
/// Implement it for your framework's parameter type (or a wrapper around
/// it) to let [`Adadelta`](crate::Adadelta) own and step it. This crate
/// implements it for [`Param`] (owned `Vec`s), for `NdParam`
/// (`ndarray`, behind the `ndarray` feature) and for `&mut T` of any
/// implementation.
///
/// The optimizer identifies parameters by their position in its groups, as
/// PyTorch's `state_dict` does, never by address; [`Parameter::is_same`] is
/// only used for PyTorch's checks that no parameter is given twice.
///
/// ```
/// use adadelta::{Error, ParamViewMut, Parameter};
///
/// /// A parameter that is a plain array.
/// struct Weights {
///     w: [f32; 4],
///     g: Option<[f32; 4]>,
/// }
///
/// impl Parameter for Weights {
///     type Elem = f32;
///     fn numel(&self) -> usize {
///         4
///     }
///     fn shape(&self) -> Vec<usize> {
///         vec![2, 2]
///     }
///     fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
///         Ok(ParamViewMut { data: &mut self.w, grad: self.g.as_ref().map(|g| &g[..]) })
///     }
///     fn zero_grad(&mut self, set_to_none: bool) {
///         if set_to_none {
///             self.g = None;
///         } else if let Some(g) = &mut self.g {
///             *g = [0.0; 4];
///         }
///     }
/// }
///
/// let w = Weights { w: [1.0; 4], g: Some([0.5; 4]) };
/// let mut opt = adadelta::Adadelta::new(vec![w], adadelta::Options::default())?;
/// opt.step()?;
/// assert!(opt.params()[0].w[0] < 1.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
pub trait Parameter {
    /// The element type of the values, the gradient and the optimizer's
    /// state: `f32`, `f64`, `half::bf16` or `half::f16` ([`Element`]).
    type Elem: Element;

    /// The number of elements.
    ///
    /// ```
    /// use adadelta::Parameter;
    /// assert_eq!(Parameter::numel(&adadelta::Param::new(vec![0.0; 5])), 5);
    /// ```
    fn numel(&self) -> usize;

    /// The shape, recorded in the state dict (PyTorch's state tensors have
    /// their parameter's shape). Its product must be [`numel`](Self::numel);
    /// if it is not, state dicts record `[numel]`. The default is
    /// `[numel]`.
    ///
    /// ```
    /// use adadelta::Parameter;
    /// let p = adadelta::Param::with_shape(vec![0.0; 6], vec![3, 2])?;
    /// assert_eq!(Parameter::shape(&p), [3, 2]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    fn shape(&self) -> Vec<usize> {
        vec![self.numel()]
    }

    /// Lends the values and the gradient for a step. An error (for example a
    /// layout that cannot be one slice) stops the step before anything is
    /// written.
    ///
    /// ```
    /// use adadelta::Parameter;
    /// let mut p = adadelta::Param::new(vec![1.0, 2.0]);
    /// let view = p.view_mut()?;
    /// assert_eq!((view.data.len(), view.grad), (2, None));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    fn view_mut(&mut self) -> Result<ParamViewMut<'_, Self::Elem>, Error>;

    /// Clears the gradient as PyTorch's `zero_grad(set_to_none)`:
    /// `set_to_none` drops it (so the next step skips this parameter unless
    /// a new gradient is set); otherwise an existing gradient is filled with
    /// zeros and an absent one stays absent.
    ///
    /// ```
    /// use adadelta::Parameter;
    /// let mut p = adadelta::Param::new(vec![1.0]);
    /// p.set_grad(vec![4.0])?;
    /// Parameter::zero_grad(&mut p, true);
    /// assert!(p.grad().is_none());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    fn zero_grad(&mut self, set_to_none: bool);

    /// Whether `self` and `other` are the same parameter, e.g. two handles to
    /// one shared tensor. Used only to refuse a parameter given twice. The
    /// default, `false`, is right for owned data, which Rust's ownership
    /// already keeps from being in two places.
    ///
    /// ```
    /// use adadelta::Parameter;
    /// let (a, b) = (adadelta::Param::new(vec![1.0]), adadelta::Param::new(vec![1.0]));
    /// assert!(!a.is_same(&b)); // equal values, two parameters
    /// ```
    fn is_same(&self, other: &Self) -> bool
    where
        Self: Sized,
    {
        let _ = other;
        false
    }
}

impl<T: Parameter> Parameter for &mut T {
    type Elem = T::Elem;
    fn numel(&self) -> usize {
        (**self).numel()
    }
    fn shape(&self) -> Vec<usize> {
        (**self).shape()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_, T::Elem>, Error> {
        (**self).view_mut()
    }
    fn zero_grad(&mut self, set_to_none: bool) {
        (**self).zero_grad(set_to_none)
    }
    fn is_same(&self, other: &Self) -> bool {
        (**self).is_same(&**other)
    }
}

/// An owned parameter: values of the element type `E` (`f32`, the default,
/// `f64`, [`half::bf16`] or
/// [`half::f16`]), a shape, and an optional gradient of
/// the same length. The
/// parameter type for code without a tensor framework.
///
/// [`new`](Param::new) and [`with_shape`](Param::with_shape) make `f32`
/// parameters (so that a literal such as `vec![1.0]` stays `f32`);
/// [`from_vec`](Param::from_vec) and
/// [`from_vec_with_shape`](Param::from_vec_with_shape) make parameters of
/// the vector's element type:
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut w = Param::from_vec(vec![1.0_f64, 2.0]);
/// w.set_grad(vec![0.5, -0.5])?;
/// let mut opt = Adadelta::new(vec![w], Default::default())?; // an Adadelta<Param<f64>>
/// opt.step()?;
/// assert!(opt.params()[0].data()[0] < 1.0);
/// assert_eq!(opt.state(0).unwrap().square_avg().len(), 2); // f64 state
/// # Ok::<(), adadelta::Error>(())
/// ```
///
/// bfloat16 and float16 parameters step as PyTorch steps them: each op
/// rounded to the dtype (see [`kernel`](crate::kernel) for the numerics),
/// with `f32` step counters.
///
/// ```
/// use adadelta::half::f16;
/// use adadelta::{Adadelta, Param};
/// let mut w = Param::from_vec(vec![f16::from_f32(1.0), f16::from_f32(-2.0)]);
/// w.set_grad(vec![f16::from_f32(0.5), f16::from_f32(-0.5)])?;
/// let mut opt = Adadelta::new(vec![w], Default::default())?; // an Adadelta<Param<f16>>
/// opt.step()?;
/// assert!(opt.params()[0].data()[0] < f16::from_f32(1.0));
/// assert_eq!(opt.state(0).unwrap().step(), 1.0_f32);
/// # Ok::<(), adadelta::Error>(())
/// ```
///
/// The gradient is kept in the parameter's shape; [`Param::set_grad`] checks
/// its length.
///
/// ```
/// use adadelta::Param;
/// let mut w = Param::with_shape(vec![0.0; 6], vec![2, 3])?;
/// assert_eq!((w.numel(), w.shape()), (6, &[2, 3][..]));
/// assert!(w.grad().is_none());
/// w.set_grad(vec![1.0; 6])?;
/// w.grad_mut().unwrap()[0] += 1.0; // accumulate, as backward() does
/// assert_eq!(w.grad().unwrap()[0], 2.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Param<E = f32> {
    data: Vec<E>,
    shape: Vec<usize>,
    grad: Option<Vec<E>>,
}

impl Param {
    /// A one-dimensional `f32` parameter (shape `[data.len()]`) without
    /// gradient.
    ///
    /// ```
    /// let p = adadelta::Param::new(vec![1.0, 2.0, 3.0]);
    /// assert_eq!(p.shape(), &[3]);
    /// ```
    pub fn new(data: Vec<f32>) -> Self {
        Param::from_vec(data)
    }

    /// An `f32` parameter of the given shape (row-major, as
    /// `torch.tensor(data).reshape(shape)`). [`Error::InvalidShape`]
    /// (PyTorch's text) when the shape's product is not `data.len()`.
    ///
    /// ```
    /// let err = adadelta::Param::with_shape(vec![0.0; 3], vec![2, 2]).unwrap_err();
    /// assert_eq!(err.to_string(), "shape '[2, 2]' is invalid for input of size 3");
    /// ```
    pub fn with_shape(data: Vec<f32>, shape: Vec<usize>) -> Result<Self, Error> {
        Param::from_vec_with_shape(data, shape)
    }
}

impl<E: Element> Param<E> {
    /// A one-dimensional parameter of `data`'s element type (shape
    /// `[data.len()]`) without gradient.
    ///
    /// ```
    /// let p = adadelta::Param::from_vec(vec![1.0_f64, 2.0]);
    /// assert_eq!((p.shape(), p.data()), (&[2][..], &[1.0, 2.0][..]));
    /// ```
    pub fn from_vec(data: Vec<E>) -> Self {
        let shape = vec![data.len()];
        Param {
            data,
            shape,
            grad: None,
        }
    }

    /// A parameter of `data`'s element type and the given shape, as
    /// [`with_shape`](Param::with_shape).
    ///
    /// ```
    /// let p = adadelta::Param::from_vec_with_shape(vec![0.0_f64; 6], vec![2, 3])?;
    /// assert_eq!(p.shape(), &[2, 3]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn from_vec_with_shape(data: Vec<E>, shape: Vec<usize>) -> Result<Self, Error> {
        if crate::shape::numel(&shape) != Some(data.len()) {
            return Err(Error::InvalidShape {
                shape,
                len: data.len(),
            });
        }
        Ok(Param {
            data,
            shape,
            grad: None,
        })
    }

    /// The values.
    ///
    /// ```
    /// assert_eq!(adadelta::Param::new(vec![1.5]).data(), &[1.5]);
    /// ```
    pub fn data(&self) -> &[E] {
        &self.data
    }

    /// The values, mutable (their number cannot change).
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![1.5]);
    /// p.data_mut()[0] = 2.0;
    /// assert_eq!(p.data(), &[2.0]);
    /// ```
    pub fn data_mut(&mut self) -> &mut [E] {
        &mut self.data
    }

    /// The shape.
    ///
    /// ```
    /// assert_eq!(adadelta::Param::new(vec![0.0; 4]).shape(), &[4]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(adadelta::Param::new(vec![0.0; 4]).numel(), 4);
    /// ```
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The gradient, if any.
    ///
    /// ```
    /// assert!(adadelta::Param::new(vec![0.0]).grad().is_none());
    /// ```
    pub fn grad(&self) -> Option<&[E]> {
        self.grad.as_deref()
    }

    /// The gradient, mutable, if any.
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![0.0]);
    /// assert!(p.grad_mut().is_none());
    /// ```
    pub fn grad_mut(&mut self) -> Option<&mut [E]> {
        self.grad.as_deref_mut()
    }

    /// The gradient, mutable, created as zeros if absent: the buffer a
    /// backward pass accumulates into.
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![0.0; 2]);
    /// p.grad_or_zeros()[1] += 3.0;
    /// assert_eq!(p.grad(), Some(&[0.0, 3.0][..]));
    /// ```
    pub fn grad_or_zeros(&mut self) -> &mut [E] {
        let n = self.data.len();
        self.grad.get_or_insert_with(|| vec![E::default(); n])
    }

    /// Sets the gradient (in the parameter's shape).
    /// [`Error::GradSizeMismatch`] (PyTorch's text) when its length differs;
    /// the old gradient is then kept.
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![0.0; 3]);
    /// let err = p.set_grad(vec![1.0; 2]).unwrap_err();
    /// assert!(err.to_string().starts_with("attempting to assign a gradient of size '[2]'"));
    /// ```
    pub fn set_grad(&mut self, grad: Vec<E>) -> Result<(), Error> {
        if grad.len() != self.data.len() {
            return Err(Error::GradSizeMismatch {
                grad: vec![grad.len()],
                param: self.shape.clone(),
            });
        }
        self.grad = Some(grad);
        Ok(())
    }

    /// Removes and returns the gradient.
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![0.0]);
    /// p.set_grad(vec![2.0])?;
    /// assert_eq!(p.take_grad(), Some(vec![2.0]));
    /// assert!(p.grad().is_none());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn take_grad(&mut self) -> Option<Vec<E>> {
        self.grad.take()
    }

    /// Zeroes the gradient (`set_to_none = false`; an absent one stays
    /// absent) or removes it (`true`), as PyTorch's `zero_grad`.
    ///
    /// ```
    /// let mut p = adadelta::Param::new(vec![1.0]);
    /// p.set_grad(vec![2.0])?;
    /// p.zero_grad(false);
    /// assert_eq!(p.grad(), Some(&[0.0][..]));
    /// p.zero_grad(true);
    /// assert_eq!(p.grad(), None);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn zero_grad(&mut self, set_to_none: bool) {
        if set_to_none {
            self.grad = None;
        } else if let Some(g) = &mut self.grad {
            g.fill(E::default());
        }
    }

    /// The values, consuming the parameter.
    ///
    /// ```
    /// assert_eq!(adadelta::Param::new(vec![7.0]).into_data(), vec![7.0]);
    /// ```
    pub fn into_data(self) -> Vec<E> {
        self.data
    }
}

impl<E: Element> Parameter for Param<E> {
    type Elem = E;
    fn numel(&self) -> usize {
        self.data.len()
    }
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_, E>, Error> {
        Ok(ParamViewMut {
            data: &mut self.data,
            grad: self.grad.as_deref(),
        })
    }
    fn zero_grad(&mut self, set_to_none: bool) {
        Param::zero_grad(self, set_to_none)
    }
}

/// What the optimizer knows of a parameter between steps: its number of
/// elements and its shape (which the state dict records), and whether two
/// are the same parameter. Every [`Parameter`] is `Shaped`, and so is
/// [`Lent`]: the methods of [`Adadelta`](crate::Adadelta) that do not step
/// (groups, state dicts, checkpoints, hooks) work for both.
///
/// ```
/// use adadelta::{Lent, Param, Shaped};
/// let p = Param::with_shape(vec![0.0; 6], vec![2, 3])?;
/// let lent = Lent::of(&p);
/// assert_eq!((Shaped::numel(&lent), Shaped::shape(&lent)), (6, vec![2, 3]));
/// # Ok::<(), adadelta::Error>(())
/// ```
pub trait Shaped {
    /// The element type of the parameter and of its state
    /// ([`Parameter::Elem`]).
    type Elem: Element;

    /// The number of elements.
    ///
    /// ```
    /// use adadelta::Shaped;
    /// assert_eq!(Shaped::numel(&adadelta::Param::new(vec![0.0; 3])), 3);
    /// ```
    fn numel(&self) -> usize;

    /// The shape, as [`Parameter::shape`].
    ///
    /// ```
    /// use adadelta::Shaped;
    /// assert_eq!(Shaped::shape(&adadelta::Lent::new(vec![4, 5])), [4, 5]);
    /// ```
    fn shape(&self) -> Vec<usize>;

    /// Whether `self` and `other` are the same parameter, as
    /// [`Parameter::is_same`]. Always `false` for [`Lent`]: parameters lent
    /// to a step as `&mut` are distinct, which the borrow checker proves.
    ///
    /// ```
    /// use adadelta::{Lent, Shaped};
    /// assert!(!Lent::new(vec![2]).is_same(&Lent::new(vec![2])));
    /// ```
    fn is_same(&self, other: &Self) -> bool;
}

impl<P: Parameter> Shaped for P {
    type Elem = <P as Parameter>::Elem;
    fn numel(&self) -> usize {
        Parameter::numel(self)
    }
    fn shape(&self) -> Vec<usize> {
        Parameter::shape(self)
    }
    fn is_same(&self, other: &Self) -> bool {
        Parameter::is_same(self, other)
    }
}

/// The optimizer's record of a parameter that the model keeps and lends to
/// each step: its shape (and so its number of elements). An
/// `Adadelta<Lent>` holds the groups, the options and the state, and
/// [`step_lent`](crate::Adadelta::step_lent) steps the parameters it is
/// given, by position, as PyTorch's state dict numbers them.
///
/// A shape whose product overflows `usize` cannot be any parameter's: such
/// a record has 0 elements and no lent parameter matches it.
///
/// ```
/// use adadelta::{Adadelta, Lent, Param, Parameter};
///
/// struct Model { w: Param, b: Param }
/// let mut m = Model { w: Param::with_shape(vec![0.5; 4], vec![2, 2])?, b: Param::new(vec![0.0; 2]) };
/// let mut opt = Adadelta::new(vec![Lent::of(&m.w), Lent::of(&m.b)], Default::default())?;
/// m.w.set_grad(vec![1.0; 4])?;
/// m.b.set_grad(vec![-1.0; 2])?;
/// opt.step_lent(&mut [&mut m.w, &mut m.b])?; // the model is still the user's
/// assert!(m.w.data()[0] < 0.5 && m.b.data()[0] > 0.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
///
/// `E` is the parameters' element type (`f32`, the default, `f64`,
/// `half::bf16` or `half::f16`): an `Adadelta<Lent<f64>>` steps
/// `&mut dyn Parameter<Elem = f64>`.
pub struct Lent<E = f32> {
    shape: Vec<usize>,
    numel: usize,
    elem: PhantomData<fn() -> E>,
}

impl<E> Clone for Lent<E> {
    fn clone(&self) -> Self {
        Lent {
            shape: self.shape.clone(),
            numel: self.numel,
            elem: PhantomData,
        }
    }
}

impl<E: Element> std::fmt::Debug for Lent<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("dtype", &E::DTYPE)
            .field("shape", &self.shape)
            .field("numel", &self.numel)
            .finish()
    }
}

impl<E> PartialEq for Lent<E> {
    fn eq(&self, o: &Self) -> bool {
        (&self.shape, self.numel) == (&o.shape, o.numel)
    }
}

impl<E> Eq for Lent<E> {}

impl Lent {
    /// The record of an `f32` parameter of this shape.
    ///
    /// ```
    /// assert_eq!(adadelta::Lent::new(vec![3, 4]).shape(), &[3, 4]);
    /// ```
    pub fn new(shape: Vec<usize>) -> Self {
        Lent::from_shape(shape)
    }
}

impl<E: Element> Lent<E> {
    /// The record of a parameter of element type `E` and this shape.
    ///
    /// ```
    /// let lent = adadelta::Lent::<f64>::from_shape(vec![2, 3]);
    /// assert_eq!(lent.numel(), 6);
    /// ```
    pub fn from_shape(shape: Vec<usize>) -> Self {
        let numel = crate::shape::numel(&shape).unwrap_or(0);
        Lent {
            shape,
            numel,
            elem: PhantomData,
        }
    }

    /// The record of `param`: its [`Parameter::shape`], or `[numel]` when
    /// that shape's product is not its number of elements.
    ///
    /// ```
    /// let p = adadelta::Param::new(vec![0.0; 5]);
    /// assert_eq!(adadelta::Lent::of(&p).numel(), 5);
    /// ```
    pub fn of(param: &(impl Parameter<Elem = E> + ?Sized)) -> Self {
        let n = param.numel();
        Lent {
            shape: crate::shape::fitting(param.shape(), n),
            numel: n,
            elem: PhantomData,
        }
    }

    /// The recorded shape.
    ///
    /// ```
    /// assert_eq!(adadelta::Lent::new(vec![7]).shape(), &[7]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The recorded number of elements.
    ///
    /// ```
    /// assert_eq!(adadelta::Lent::new(vec![2, 3]).numel(), 6);
    /// ```
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Whether `param`, lent at this record's position, fits it: the same
    /// number of elements and the same shape (as [`Lent::of`] reads it).
    pub(crate) fn fits(&self, param: &dyn Parameter<Elem = E>) -> bool {
        Lent::of(param) == *self
    }
}

impl<E: Element> Shaped for Lent<E> {
    type Elem = E;
    fn numel(&self) -> usize {
        self.numel
    }
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn is_same(&self, _: &Self) -> bool {
        false
    }
}

/// A view a framework adapter lent for one step, as a [`Parameter`]: what
/// [`update`](super::step) steps when the parameters are a framework's
/// tensors, whose storage the adapter holds for the step's length.
#[cfg(any(feature = "candle", feature = "tch"))]
pub(crate) struct Borrowed<'a, E>(pub(crate) ParamViewMut<'a, E>);

#[cfg(any(feature = "candle", feature = "tch"))]
impl<E: Element> Parameter for Borrowed<'_, E> {
    type Elem = E;
    fn numel(&self) -> usize {
        self.0.data.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_, E>, Error> {
        Ok(ParamViewMut {
            data: &mut *self.0.data,
            grad: self.0.grad,
        })
    }
    /// Never called: an update does not clear gradients, and the adapters
    /// clear them through their framework.
    fn zero_grad(&mut self, set_to_none: bool) {
        if set_to_none {
            self.0.grad = None;
        }
    }
}
