//! The `ndarray` adapter (cargo feature `ndarray`): [`NdParam`].

use ndarray::{Array, Dimension};

use super::{ParamViewMut, Parameter};
use crate::Error;

/// A parameter held as an `ndarray` array of any dimension, with an
/// optional gradient of the same shape and memory layout.
///
/// The step works on the arrays' memory as one slice each, so both must be
/// contiguous (any axis order) and laid out alike; otherwise the step fails
/// with [`Error::UnsupportedLayout`] (or [`Error::GradSizeMismatch`] for a
/// different shape) before writing anything.
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
pub struct NdParam<D: Dimension> {
    /// The values.
    pub data: Array<f32, D>,
    /// The gradient, if any: same shape and layout as `data`.
    pub grad: Option<Array<f32, D>>,
}

impl<D: Dimension> NdParam<D> {
    /// A parameter without gradient.
    ///
    /// ```
    /// let p = adadelta::NdParam::new(ndarray::Array2::<f32>::zeros((2, 3)));
    /// assert!(p.grad.is_none());
    /// ```
    pub fn new(data: Array<f32, D>) -> Self {
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

impl<D: Dimension> Parameter for NdParam<D> {
    fn numel(&self) -> usize {
        self.data.len()
    }

    fn shape(&self) -> Vec<usize> {
        self.data.shape().to_vec()
    }

    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        let grad = match &self.grad {
            None => None,
            Some(g) => {
                if g.shape() != self.data.shape() {
                    return Err(Error::GradSizeMismatch {
                        grad: g.shape().to_vec(),
                        param: self.data.shape().to_vec(),
                    });
                }
                if !same_layout(self.data.shape(), g.strides(), self.data.strides()) {
                    return Err(Error::UnsupportedLayout(format!(
                        "the gradient's strides {:?} differ from the parameter's {:?}",
                        g.strides(),
                        self.data.strides()
                    )));
                }
                Some(g.as_slice_memory_order().ok_or_else(|| {
                    Error::UnsupportedLayout("the gradient is not contiguous".into())
                })?)
            }
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
            g.fill(0.0);
        }
    }
}
