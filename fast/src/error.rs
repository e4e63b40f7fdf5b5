//! Errors returned by this crate.

use std::fmt;

/// Everything that can go wrong when stepping. Messages of errors that PyTorch
/// also raises are PyTorch's text.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// `lr` is negative or NaN.
    InvalidLr(f64),
    /// `rho` is outside `[0, 1]` or NaN.
    InvalidRho(f64),
    /// `eps` is negative or NaN.
    InvalidEps(f64),
    /// `weight_decay` is negative or NaN.
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
        // Python's repr: shortest round-trip digits; scientific when the
        // decimal exponent is < -4 or >= 16.
        let exp = if v == 0.0 {
            0
        } else {
            v.abs().log10().floor() as i32
        };
        if (-4..16).contains(&exp) {
            let s = format!("{v}");
            if s.contains('.') {
                f.write_str(&s)
            } else {
                write!(f, "{s}.0")
            }
        } else {
            let s = format!("{v:e}"); // e.g. 1e-6, 1.5e20
            let (mant, e) = s.split_once('e').expect("{:e} has an exponent");
            let e: i32 = e.parse().expect("exponent is an integer");
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
        // Expected strings are CPython 3.11's str(float) of the same values.
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
        ] {
            assert_eq!(PyFloat(v).to_string(), s, "{v:?}");
        }
    }
}
