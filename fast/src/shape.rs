//! Tensor shapes: the element count of a shape, checked, written once.

/// The number of elements of a tensor of `shape`: the product of its
/// dimensions (1 for `[]`), or `None` when it overflows `usize`.
pub(crate) fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// `shape` when it holds exactly `n` elements, else `[n]`: the shape
/// recorded for a parameter whose own does not fit its data.
pub(crate) fn fitting(shape: Vec<usize>, n: usize) -> Vec<usize> {
    if numel(&shape) == Some(n) {
        shape
    } else {
        vec![n]
    }
}
