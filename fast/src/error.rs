//! Errors returned by this crate.

use std::fmt;

/// Everything that can go wrong when stepping. Messages of errors that PyTorch
/// also raises are PyTorch's text.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// `lr` is negative, NaN, infinite, or infinite as an f32.
    InvalidLr(f64),
    /// `rho` is outside `[0, 1]` or NaN.
    InvalidRho(f64),
    /// `eps` is negative, NaN, infinite, or infinite as an f32.
    InvalidEps(f64),
    /// `weight_decay` is negative, NaN, infinite, or infinite as an f32.
    InvalidWeightDecay(f64),
    /// The slices given to one step have different lengths. Nothing was written.
    LengthMismatch {
        /// Length of `param`.
        param: usize,
        /// Length of `grad`.
        grad: usize,
        /// Length of `square_avg`.
        square_avg: usize,
        /// Length of `acc_delta`.
        acc_delta: usize,
    },
    // ---- Kernel (`crate::kernel`) ----
    /// The requested kernel path (`Executor::path` or `ADADELTA_KERNEL`) is
    /// unknown or this CPU cannot run it. Nothing was written.
    KernelUnavailable(String),
    /// `Numerics::ReproduceLibtorch` cannot reproduce libtorch on this machine
    /// (the reason says why). Nothing was written.
    CannotReproduceLibtorch(String),
    // ---- Optimizer API (`crate::optimizer`) ----
    /// The optimizer was given no parameter at all (PyTorch's `ValueError`).
    EmptyParamList,
    /// A parameter is in more than one parameter group (PyTorch's `ValueError`).
    ParamInMultipleGroups,
    /// A parameter is twice in one group. PyTorch only warns (and then updates
    /// it twice per step); this crate refuses it.
    DuplicateParam,
    /// `capturable = true`: CUDA-graph capture, which has no meaning on the
    /// CPU. The text is what PyTorch raises at `step()` for CPU tensors.
    CapturableUnsupported,
    /// `differentiable = true`: autograd through the optimizer step, which
    /// this crate does not have.
    DifferentiableUnsupported,
    /// `load_state_dict`: the numbers of parameter groups differ.
    GroupCountMismatch {
        /// Groups in the loaded state dict.
        saved: usize,
        /// Groups in the optimizer.
        current: usize,
    },
    /// `load_state_dict`: a group's number of parameters differs.
    GroupSizeMismatch {
        /// Index of the group.
        group: usize,
        /// Parameters of that group in the loaded state dict.
        saved: usize,
        /// Parameters of that group in the optimizer.
        current: usize,
    },
    /// `load_state_dict`: a state tensor's length differs from its parameter's.
    StateLengthMismatch {
        /// Index of the parameter (its position across groups).
        index: usize,
        /// `"square_avg"` or `"acc_delta"`.
        key: &'static str,
        /// Elements of the parameter.
        param: usize,
        /// Elements of the loaded tensor.
        state: usize,
    },
    /// A state dict that is not well formed (missing or unexpected keys,
    /// wrong types, bad parameter indices); the text says what and where.
    InvalidStateDict(String),
    /// A parameter-group index out of range.
    NoSuchGroup {
        /// The index asked for.
        group: usize,
        /// The number of groups.
        groups: usize,
    },
    /// A gradient whose size differs from its parameter's (PyTorch's text).
    GradSizeMismatch {
        /// Shape of the gradient.
        grad: Vec<usize>,
        /// Shape of the parameter.
        param: Vec<usize>,
    },
    /// A shape whose element count is not the data's length (PyTorch's text).
    InvalidShape {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of elements there are.
        len: usize,
    },
    /// An extra parameter-group key that is one of the optimizer's own
    /// (`lr`, ..., `params`, `param_names`): set those through the group's
    /// options, or name the parameters with
    /// [`GroupSpec::named`](crate::GroupSpec::named).
    ReservedGroupKey(String),
    /// A group of named parameters added to an optimizer whose groups are
    /// not named (`with_names: true`), or the reverse (PyTorch's
    /// `ValueError`, its text): either every group is named or none is.
    MixedParamNames {
        /// Whether the group being added is named.
        with_names: bool,
    },
    /// A parameter whose memory cannot be stepped as one slice (for example a
    /// non-contiguous array); the text says why.
    UnsupportedLayout(String),
    /// A step of lent parameters ([`Adadelta::step_lent`](crate::Adadelta::step_lent))
    /// was lent a different number of parameters than the optimizer was
    /// built with. Nothing was written.
    LentCountMismatch {
        /// Parameters lent to the step.
        lent: usize,
        /// Parameters the optimizer has, across its groups.
        expected: usize,
    },
    /// A parameter lent to a step has another shape than the one recorded at
    /// its position when the optimizer was built: most likely parameters
    /// lent in another order. Nothing was written.
    LentShapeMismatch {
        /// Position of the parameter across the groups.
        index: usize,
        /// The shape recorded for that position.
        expected: Vec<usize>,
        /// The shape of the parameter lent there.
        lent: Vec<usize>,
    },
    // ---- Framework adapters (`crate::candle`, `crate::tch`) ----
    /// A framework tensor that the adapter cannot step in place: another
    /// dtype than the optimizer's element type, another device than the
    /// CPU, a non-contiguous layout, an undefined tensor. The reason names
    /// what was found and what was expected. Nothing was written.
    UnsupportedTensor {
        /// Position of the parameter across the groups.
        index: usize,
        /// What the tensor is, and what the adapter needs.
        reason: String,
    },
    /// Two parameters are views of overlapping memory: stepping them in
    /// place would write one through the other (PyTorch would update the
    /// shared elements twice). Nothing was written.
    SharedMemory {
        /// Position of the first parameter across the groups.
        first: usize,
        /// Position of the second.
        second: usize,
    },
    // ---- Reliability (`fast/docs/reliability.md`) ----
    /// A gradient holds NaN or an infinity and the optimizer's
    /// [`NonFinitePolicy`](crate::NonFinitePolicy) is `Error`: the step was
    /// refused before anything was written.
    NonFiniteGradient {
        /// Position of the parameter across the groups.
        index: usize,
        /// Position of the first non-finite element in its gradient.
        element: usize,
    },
    /// The state of a parameter (two f32 tensors of its size, created at its
    /// first step) could not be allocated. Nothing was written.
    StateAllocation {
        /// Position of the parameter across the groups.
        index: usize,
        /// Elements of the parameter.
        elements: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The four hyperparameter messages are torch/optim/adadelta.py's.
        match self {
            Error::InvalidLr(v) => write!(f, "Invalid learning rate: {}", PyFloat(*v)),
            Error::InvalidRho(v) => write!(f, "Invalid rho value: {}", PyFloat(*v)),
            Error::InvalidEps(v) => write!(f, "Invalid epsilon value: {}", PyFloat(*v)),
            Error::InvalidWeightDecay(v) => {
                write!(f, "Invalid weight_decay value: {}", PyFloat(*v))
            }
            Error::LengthMismatch {
                param,
                grad,
                square_avg,
                acc_delta,
            } => write!(
                f,
                "length mismatch: param has {param} elements, grad {grad}, \
                 square_avg {square_avg}, acc_delta {acc_delta}"
            ),
            Error::KernelUnavailable(why) => write!(f, "kernel path unavailable: {why}"),
            Error::CannotReproduceLibtorch(why) => {
                write!(f, "cannot reproduce libtorch on this machine: {why}")
            }
            // Optimizer API: PyTorch's texts where PyTorch has the error
            // (torch/optim/optimizer.py, adadelta.py, autograd), else ours.
            Error::EmptyParamList => f.write_str("optimizer got an empty parameter list"),
            Error::ParamInMultipleGroups => {
                f.write_str("some parameters appear in more than one parameter group")
            }
            Error::DuplicateParam => {
                f.write_str("optimizer contains a parameter group with duplicate parameters")
            }
            Error::MixedParamNames { with_names } => write!(
                f,
                "all optimizer param groups should be with/without names. \
                 cannot add param group {} to the optimizer",
                if *with_names { "with names" } else { "without names" }
            ),
            Error::CapturableUnsupported => f.write_str(
                "If capturable=True, params and state_steps must be on supported devices: \
                 ['cuda', 'xpu', 'hpu', 'privateuseone'].",
            ),
            Error::DifferentiableUnsupported => f.write_str(
                "differentiable=True is not supported: adadelta-rs has no autograd \
                 (use differentiable=False)",
            ),
            Error::GroupCountMismatch { .. } => {
                f.write_str("loaded state dict has a different number of parameter groups")
            }
            Error::GroupSizeMismatch { .. } => f.write_str(
                "loaded state dict contains a parameter group that doesn't match \
                 the size of optimizer's group",
            ),
            Error::StateLengthMismatch {
                index,
                key,
                param,
                state,
            } => write!(
                f,
                "loaded state dict has a {key} of {state} elements for parameter {index}, \
                 which has {param} elements"
            ),
            Error::InvalidStateDict(why) => write!(f, "invalid state dict: {why}"),
            Error::NoSuchGroup { group, groups } => write!(
                f,
                "parameter group index {group} is out of range: the optimizer has {groups} groups"
            ),
            Error::GradSizeMismatch { grad, param } => write!(
                f,
                "attempting to assign a gradient of size '{grad:?}' to a tensor of size \
                 '{param:?}'. Please ensure that the gradient and the tensor are the same size"
            ),
            Error::InvalidShape { shape, len } => {
                write!(f, "shape '{shape:?}' is invalid for input of size {len}")
            }
            Error::ReservedGroupKey(k) => write!(
                f,
                "the extra parameter-group key {k:?} is reserved: it is one of the optimizer's own keys"
            ),
            Error::UnsupportedLayout(why) => write!(f, "unsupported parameter layout: {why}"),
            Error::NonFiniteGradient { index, element } => write!(
                f,
                "the gradient of parameter {index} is NaN or infinite at element {element}; \
                 the step was refused and nothing was changed"
            ),
            Error::LentCountMismatch { lent, expected } => write!(
                f,
                "the step was lent {lent} parameters, but the optimizer has {expected}; \
                 nothing was changed"
            ),
            Error::LentShapeMismatch {
                index,
                expected,
                lent,
            } => write!(
                f,
                "the parameter lent at position {index} has shape {lent:?}, but the optimizer \
                 recorded {expected:?} there (parameters are lent in the order they were \
                 given); nothing was changed"
            ),
            Error::UnsupportedTensor { index, reason } => write!(
                f,
                "parameter {index} cannot be stepped in place: {reason}; nothing was changed"
            ),
            Error::SharedMemory { first, second } => write!(
                f,
                "parameters {first} and {second} share memory, so a step in place would write \
                 one through the other; nothing was changed"
            ),
            Error::StateAllocation { index, elements } => write!(
                f,
                "cannot allocate the state of parameter {index}: two tensors of {elements} f32 \
                 elements; nothing was changed"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Formats an f64 as Python's `str(float)` does for the values validation
/// reports (`-1.0`, `nan`, `-inf`, `1e-06`).
struct PyFloat(f64);

impl fmt::Display for PyFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            return f.write_str("nan");
        }
        if v.is_infinite() {
            return f.write_str(if v > 0.0 { "inf" } else { "-inf" });
        }
        // Python's repr: the shortest digits that round-trip (as Rust's
        // `{}` and `{:e}` give them), in scientific notation when their
        // decimal exponent, read off those digits (not a logarithm, which
        // rounds: log10(9999999999999998) is 16.0 in f64), is below -4 or
        // 16 and above.
        let sci = format!("{v:e}"); // e.g. 1e-6, -9.999999999999999e-5
        let (mant, e) = sci.split_once('e').expect("{:e} has an exponent");
        let e: i32 = e.parse().expect("the exponent is an integer");
        if (-4..16).contains(&e) {
            let s = format!("{v}");
            if s.contains('.') {
                f.write_str(&s)
            } else {
                write!(f, "{s}.0")
            }
        } else {
            let sign = if e < 0 { '-' } else { '+' };
            write!(f, "{mant}e{sign}{:02}", e.abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_formatting() {
        // Expected strings are CPython 3.11's repr(float) (= str) of the same
        // values, printed by `python3 -c 'print(repr(v))'`.
        for (v, s) in [
            (-1.0, "-1.0"),
            (-0.5, "-0.5"),
            (1e-6, "1e-06"),
            (-1e-6, "-1e-06"),
            (1.5, "1.5"),
            (-1e20, "-1e+20"),
            (-0.0001, "-0.0001"),
            (-0.00001, "-1e-05"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (-123456789012345.0, "-123456789012345.0"),
            (-1234567890123456.0, "-1234567890123456.0"),
            (-1e16, "-1e+16"),
            (-12345678901234567.0, "-1.2345678901234568e+16"),
            (-1e-320, "-1e-320"),
            (1e300, "1e+300"),
            // Where a logarithm would pick the other notation.
            (-9999999999999998.0, "-9999999999999998.0"),
            (-9.999999999999999e-05, "-9.999999999999999e-05"),
            (9999999999999999.0, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(PyFloat(v).to_string(), s, "{v:?}");
        }
    }
}
