//! The `ndarray` adapter (cargo feature `ndarray`): [`NdParam`].

use ndarray::{Array, Dimension};

use super::{ParamViewMut, Parameter};
use crate::kernel::Element;
use crate::Error;

/// A parameter held as an `ndarray` array of any dimension and of the
/// element type `E` (`f32`, the default, `f64`, `half::bf16` or
/// `half::f16`), with an optional
/// gradient of the same shape and memory layout.
///
/// The step works on the parameter's memory in place, as one slice, so
/// `data` must be contiguous (in any axis order); otherwise the step fails
/// with [`Error::UnsupportedLayout`] before writing anything. The gradient
/// may have any memory layout: one in another order than `data`'s is
/// re-laid out in `data`'s (same values) at the step. A gradient of another
/// shape is [`Error::GradSizeMismatch`]. The `ndarray` these types come
/// from is re-exported as [`adadelta::ndarray`](crate::ndarray).
///
/// ```
/// use adadelta::{Adadelta, NdParam};
/// use ndarray::array;
///
/// let mut w = NdParam::new(array![[1.0_f32, 2.0], [3.0, 4.0]]);
/// w.grad = Some(array![[0.5, 0.5], [-0.5, -0.5]]);
/// let mut opt = Adadelta::new(vec![w], Default::default())?;
/// opt.step()?;
/// let w = &opt.params()[0].data;
/// assert!(w[[0, 0]] < 1.0 && w[[1, 1]] > 4.0);
/// assert_eq!(opt.state_dict().state[&0].square_avg.shape(), &[2, 2]);
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NdParam<D: Dimension, E = f32> {
    /// The values.
    pub data: Array<E, D>,
    /// The gradient, if any: the shape of `data`, in any memory layout.
    pub grad: Option<Array<E, D>>,
}

impl<D: Dimension> NdParam<D> {
    /// An `f32` parameter without gradient (so that an array of literals
    /// such as `array![1.0]` stays `f32`; [`from_array`](Self::from_array)
    /// takes any element type).
    ///
    /// ```
    /// let p = adadelta::NdParam::new(ndarray::Array2::<f32>::zeros((2, 3)));
    /// assert!(p.grad.is_none());
    /// ```
    pub fn new(data: Array<f32, D>) -> Self {
        NdParam::from_array(data)
    }
}

impl<D: Dimension, E: Element> NdParam<D, E> {
    /// A parameter of the array's element type, without gradient.
    ///
    /// ```
    /// use adadelta::{Adadelta, NdParam};
    /// let mut w = NdParam::from_array(ndarray::array![1.0_f64, -1.0]);
    /// w.grad = Some(ndarray::array![0.5, -0.5]);
    /// let mut opt = Adadelta::new(vec![w], Default::default())?; // float64 state
    /// opt.step()?;
    /// assert!(opt.params()[0].data[0] < 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn from_array(data: Array<E, D>) -> Self {
        NdParam { data, grad: None }
    }
}

/// Whether two arrays of `shape` with these strides put element `i` at the
/// same memory offset: the strides of axes longer than 1 agree.
fn same_layout(shape: &[usize], a: &[isize], b: &[isize]) -> bool {
    shape
        .iter()
        .zip(a.iter().zip(b))
        .all(|(&n, (x, y))| n <= 1 || x == y)
}

impl<D: Dimension, E: Element> Parameter for NdParam<D, E> {
    type Elem = E;
    fn numel(&self) -> usize {
        self.data.len()
    }

    fn shape(&self) -> Vec<usize> {
        self.data.shape().to_vec()
    }

    fn view_mut(&mut self) -> Result<ParamViewMut<'_, E>, Error> {
        if let Some(g) = &self.grad {
            if g.shape() != self.data.shape() {
                return Err(Error::GradSizeMismatch {
                    grad: g.shape().to_vec(),
                    param: self.data.shape().to_vec(),
                });
            }
        }
        if self.data.as_slice_memory_order().is_none() {
            return Err(Error::UnsupportedLayout(
                "the parameter is not contiguous: it is stepped in place, as one slice".into(),
            ));
        }
        // A gradient in another memory order (the F-order result of
        // `x.t().dot(..)`, a non-contiguous view's copy) is re-laid out in
        // the parameter's: same shape and values, one copy per new gradient.
        if let Some(g) = &self.grad {
            let contiguous = g.as_slice_memory_order().is_some();
            if !contiguous || !same_layout(self.data.shape(), g.strides(), self.data.strides()) {
                let mut relaid = self.data.clone();
                relaid.assign(g);
                self.grad = Some(relaid);
            }
        }
        let grad = match &self.grad {
            None => None,
            Some(g) => Some(g.as_slice_memory_order().ok_or_else(|| {
                Error::UnsupportedLayout("the gradient is not contiguous".into())
            })?),
        };
        let data = self
            .data
            .as_slice_memory_order_mut()
            .ok_or_else(|| Error::UnsupportedLayout("the parameter is not contiguous".into()))?;
        Ok(ParamViewMut { data, grad })
    }

    fn zero_grad(&mut self, set_to_none: bool) {
        if set_to_none {
            self.grad = None;
        } else if let Some(g) = &mut self.grad {
            g.fill(E::default());
        }
    }
}
