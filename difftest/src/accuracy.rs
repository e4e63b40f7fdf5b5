//! Accuracy of a trajectory against the high-precision reference, one step
//! at a time.
//!
//! For every step `t` and every parameter with a gradient, the state the
//! implementation held before the step (its own trajectory, in its dtype) is
//! taken as exact input to one MPFR step at [`PRECISION`] bits with the exact
//! f64 hyperparameters. The implementation's outputs are compared with that
//! result in ULPs of their format (binary32, binary64, bfloat16, binary16)
//! at the exact value, and checked against the running error bound of
//! [`crate::bound`]. Multi-step drift is a separate
//! matter (`crate::report`'s drift columns); here the error of every single step is measured.

use crate::bound::{self, SqrtAccuracy};
use crate::case::{Case, Trajectory};
use crate::dtype::{Dtype, Floating};
use adadelta_reference::rug::Float;
use adadelta_reference::{ulp_error_in, ulp_exponent_in, HighPrecision, Rounding};

/// Bits of the high-precision reference: its own error (relative 2^-256 per
/// op) is more than 2^-190 below anything the bounds allow (relative
/// `2^-53` at the least, in binary64).
pub const PRECISION: u32 = 256;

/// Which output of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The updated parameter.
    Param,
    /// The updated `square_avg`.
    SquareAvg,
    /// The updated `acc_delta`.
    AccDelta,
}

/// One element whose error exceeded the bound (or whose behaviour broke a rule).
#[derive(Clone, Debug)]
pub struct Violation<T = f32> {
    /// Step index (0-based).
    pub step: usize,
    /// Parameter index.
    pub param: usize,
    /// Element index.
    pub index: usize,
    /// What was compared.
    pub what: String,
    /// The computed value (f32 or f64).
    pub got: T,
    /// The reference value, rounded to f64 for display.
    pub exact: f64,
    /// Error in ULPs.
    pub ulps: f64,
    /// The bound in ULPs.
    pub bound_ulps: f64,
}

/// Error statistics of one implementation over one or more cases.
#[derive(Clone, Debug, Default)]
pub struct Accuracy<T = f32> {
    /// Largest error seen, in ULPs.
    pub max_ulps: f64,
    /// Sum of errors in ULPs (for the mean).
    pub sum_ulps: f64,
    /// Number of finite outputs compared.
    pub compared: u64,
    /// Outputs where the exact result or the computed one is not finite
    /// (compared for equality of class, not in ULPs).
    pub non_finite: u64,
    /// Largest `error / bound` ratio: <= 1 when the bound holds.
    pub max_bound_ratio: f64,
    /// Largest error in ULPs per output, indexed by [`Output`] as `usize`.
    pub max_ulps_by_output: [f64; 3],
    /// The element with the largest `error / bound` ratio.
    pub tightest: Option<Violation<T>>,
    /// Elements that broke the bound, at most [`Accuracy::MAX_KEPT`] kept.
    pub violations: Vec<Violation<T>>,
    /// Number of violations in all.
    pub violation_count: u64,
}

impl<T: Floating> Accuracy<T> {
    /// How many violations are kept for display.
    pub const MAX_KEPT: usize = 20;

    /// Mean error in ULPs.
    pub fn mean_ulps(&self) -> f64 {
        if self.compared == 0 {
            0.0
        } else {
            self.sum_ulps / self.compared as f64
        }
    }

    /// Adds another set of statistics.
    pub fn merge(&mut self, o: &Accuracy<T>) {
        self.max_ulps = self.max_ulps.max(o.max_ulps);
        self.sum_ulps += o.sum_ulps;
        self.compared += o.compared;
        self.non_finite += o.non_finite;
        if o.max_bound_ratio > self.max_bound_ratio {
            self.tightest = o.tightest.clone();
        }
        self.max_bound_ratio = self.max_bound_ratio.max(o.max_bound_ratio);
        for (m, x) in self.max_ulps_by_output.iter_mut().zip(o.max_ulps_by_output) {
            *m = m.max(x);
        }
        self.violation_count += o.violation_count;
        for v in &o.violations {
            if self.violations.len() < Self::MAX_KEPT {
                self.violations.push(v.clone());
            }
        }
    }

    fn record(
        &mut self,
        loc: (usize, usize, usize),
        what: Output,
        got: T,
        exact: &Float,
        bound_abs: f64,
    ) {
        let exact_f64 = exact.to_f64();
        if !got.is_finite() || !exact.is_finite() || !bound_abs.is_finite() {
            self.non_finite += 1;
            return;
        }
        let ulps = ulp_error_in(got, exact);
        // The bound in ULPs of the same exact value.
        let ulp = ulps_of::<T>(exact);
        let bound_ulps = bound_abs / ulp;
        self.compared += 1;
        self.max_ulps = self.max_ulps.max(ulps);
        self.sum_ulps += ulps;
        let ratio = if bound_ulps > 0.0 {
            ulps / bound_ulps
        } else if ulps == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        let slot = &mut self.max_ulps_by_output[what as usize];
        *slot = slot.max(ulps);
        let here = || Violation {
            step: loc.0,
            param: loc.1,
            index: loc.2,
            what: format!("{what:?}"),
            got,
            exact: exact_f64,
            ulps,
            bound_ulps,
        };
        if ratio > self.max_bound_ratio {
            self.max_bound_ratio = ratio;
            self.tightest = Some(here());
        }
        if ulps > bound_ulps {
            self.violation_count += 1;
            if self.violations.len() < Self::MAX_KEPT {
                self.violations.push(here());
            }
        }
    }
}

/// One ULP of format `T` at the exact value `x` (as an f64; binary64's
/// smallest, 2^-1074, is an f64 too).
fn ulps_of<T: Floating>(x: &Float) -> f64 {
    2f64.powi(ulp_exponent_in::<T>(x))
}

/// `x` exactly, at [`PRECISION`] bits.
pub fn high_precision<T: Floating>(x: T) -> Float {
    Float::with_val(PRECISION, x.to_f64())
}

/// Measures `traj` (produced by an implementation whose sqrt is rounded as
/// `sqrt`) against one-step high-precision results, in ULPs of `T`'s
/// format, within [`bound::one_step`]. Also checks that parameters without
/// a gradient are left bit-identical.
pub fn per_step<T: Dtype>(case: &Case<T>, traj: &Trajectory<T>, sqrt: SqrtAccuracy) -> Accuracy<T> {
    let scalars = bound::Scalars::<T>::new(&case.hyper);
    per_step_within(case, traj, |_, p, g, v, u| {
        bound::one_step(&scalars, sqrt, p, g, v, u)
    })
}

/// [`per_step`] for a bfloat16 or float16 trajectory computed with
/// `rounding` ([`Rounding::Once`] or [`Rounding::Opmath`]), within
/// [`bound::one_step_half`]. With `Opmath`, the elements that a PyTorch
/// with `torch_threads` intra-op threads computes in its scalar code
/// ([`adadelta::kernel::torch_tail::run_at`]) are bounded as
/// [`Rounding::OpmathScalar`].
pub fn per_step_half<H: Floating>(
    case: &Case<H>,
    traj: &Trajectory<H>,
    rounding: Rounding,
    torch_threads: usize,
) -> Accuracy<H> {
    let scalars = bound::HalfScalars::<H>::new(&case.hyper);
    per_step_within(case, traj, |(k, n), p, g, v, u| {
        let scalar_code = adadelta::kernel::torch_tail::run_at(k, n, torch_threads).0;
        let r = match rounding {
            Rounding::Opmath if scalar_code => Rounding::OpmathScalar,
            r => r,
        };
        bound::one_step_half(&scalars, r, p, g, v, u)
    })
}

/// Measures `traj` against one-step high-precision results, element `k` of
/// a tensor of `n` within `bound((k, n), p, g, v, u)`.
fn per_step_within<T: Floating>(
    case: &Case<T>,
    traj: &Trajectory<T>,
    bound: impl Fn((usize, usize), T, T, T, T) -> bound::StepBound,
) -> Accuracy<T> {
    let arith = HighPrecision::new(PRECISION);
    let hyper = case.hyper.to_reference();
    let hp = |v: &[T]| -> Vec<Float> { v.iter().map(|&x| high_precision(x)).collect() };
    let mut acc = Accuracy::default();
    for (t, grads) in case.grads.iter().enumerate() {
        // The state before step t: the initial parameters and no state, or
        // the implementation's own snapshot after step t - 1.
        let before = t.checked_sub(1).map(|k| &traj[k]);
        let after = &traj[t];
        for (i, g) in grads.iter().enumerate() {
            let p0: &[T] = before.map_or(&case.params[i], |s| &s.params[i]);
            let Some(g) = g else {
                if after.params[i]
                    .iter()
                    .map(|&x| adadelta::kernel::Element::bits(x))
                    .ne(p0.iter().map(|&x| adadelta::kernel::Element::bits(x)))
                {
                    acc.violation_count += 1;
                    acc.violations.push(Violation {
                        step: t,
                        param: i,
                        index: 0,
                        what: "parameter without gradient changed".into(),
                        got: T::from_f64(f64::NAN),
                        exact: f64::NAN,
                        ulps: f64::INFINITY,
                        bound_ulps: 0.0,
                    });
                }
                continue;
            };
            let zeros = vec![T::default(); p0.len()];
            let v0 = before
                .and_then(|s| s.square_avg[i].as_deref())
                .unwrap_or(&zeros);
            let u0 = before
                .and_then(|s| s.acc_delta[i].as_deref())
                .unwrap_or(&zeros);
            let (mut p, gg, mut v, mut u) = (hp(p0), hp(g), hp(v0), hp(u0));
            adadelta_reference::step(&arith, &hyper, &mut p, &gg, &mut v, &mut u);
            let out_v = after.square_avg[i].as_deref().unwrap_or(&[]);
            let out_u = after.acc_delta[i].as_deref().unwrap_or(&[]);
            for k in 0..p0.len() {
                let b = bound((k, p0.len()), p0[k], g[k], v0[k], u0[k]);
                acc.record((t, i, k), Output::Param, after.params[i][k], &p[k], b.param);
                acc.record((t, i, k), Output::SquareAvg, out_v[k], &v[k], b.square_avg);
                acc.record((t, i, k), Output::AccDelta, out_u[k], &u[k], b.acc_delta);
            }
        }
    }
    acc
}

/// How two `f32` (or `f64`) results are compared bit for bit, NaN included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NanBits {
    /// Equal bits, NaN sign and payload included. What the reference,
    /// libtorch and real PyTorch are held to: their NaN bits are determined
    /// (x86's first-NaN-operand rule over the operand order of PyTorch
    /// 2.13's kernels, which the reference models; `fast/docs/numerics.md`,
    /// "NaN bits").
    Exact,
    /// Equal bits, or two **quiet** NaNs whatever their sign and payload
    /// (a signalling NaN matches only itself: a parameter no step touched
    /// keeps it). The one exception,
    /// for comparisons with the fast crate's output, because its NaN bits
    /// are not determined: Rust and LLVM do not promise NaN payloads (RFC
    /// 3514: an op with a NaN operand may return any NaN operand's payload
    /// or a preferred NaN), the compiler picks the operand order of
    /// commutative ops and the form of each FMA, and its IEEE square root
    /// (`sqrtps`) returns x86's default NaN `0xffc00000` for a negative
    /// where PyTorch's oneMKL returns `0x7fc00000`. Every NaN an update
    /// returns comes out of an arithmetic instruction, so it is quiet on
    /// x86-64 and aarch64 alike: that much is checked.
    QuietAnyPayload,
}

impl NanBits {
    /// Whether `x` and `y` are the same result under this rule.
    ///
    /// ```
    /// use adadelta_difftest::accuracy::NanBits;
    /// let (pos, neg) = (f32::from_bits(0x7fc0_0000), f32::from_bits(0xffc0_0000));
    /// assert!(!NanBits::Exact.same(pos, neg));
    /// assert!(NanBits::QuietAnyPayload.same(pos, neg));
    /// // An update's NaN is quiet; a signalling NaN is only ever the same
    /// // bits (a parameter no step touched).
    /// let signalling = f32::from_bits(0x7f80_0001);
    /// assert!(!NanBits::QuietAnyPayload.same(pos, signalling));
    /// assert!(NanBits::QuietAnyPayload.same(signalling, signalling));
    /// ```
    pub fn same(self, x: f32, y: f32) -> bool {
        let quiet = |z: f32| z.is_nan() && z.to_bits() & 0x0040_0000 != 0;
        self.same_bits(x.to_bits() == y.to_bits(), quiet(x) && quiet(y))
    }

    /// [`NanBits::same`] for `f64` (quiet bit 51).
    ///
    /// ```
    /// use adadelta_difftest::accuracy::NanBits;
    /// let (pos, neg) = (f64::from_bits(0x7ff8 << 48), f64::from_bits(0xfff8 << 48));
    /// assert!(!NanBits::Exact.same_f64(pos, neg));
    /// assert!(NanBits::QuietAnyPayload.same_f64(pos, neg));
    /// assert!(!NanBits::QuietAnyPayload.same_f64(pos, f64::from_bits(0x7ff0_0000_0000_0001)));
    /// ```
    pub fn same_f64(self, x: f64, y: f64) -> bool {
        let quiet = |z: f64| z.is_nan() && z.to_bits() & (1 << 51) != 0;
        self.same_bits(x.to_bits() == y.to_bits(), quiet(x) && quiet(y))
    }

    /// The rule, given whether the bits are equal and whether both are
    /// quiet NaNs.
    fn same_bits(self, equal_bits: bool, both_quiet: bool) -> bool {
        match self {
            NanBits::Exact => equal_bits,
            NanBits::QuietAnyPayload => equal_bits || both_quiet,
        }
    }
}

/// Whether PyTorch's `delta.mul_(grad)` gives element `k` of a tensor of
/// `n` elements the NaN of `delta` (its first tensor) rather than `grad`'s
/// when both are NaN: the one place where PyTorch's own NaN bits depend on
/// the path (measured with torch 2.13.0's AVX2 and AVX-512 builds; the
/// `ATEN_CPU_CAPABILITY=default` build differs at more positions). ATen's
/// vector body and most of its scalar tail multiply `grad * delta`; GCC's
/// compilation of the last `n % 8` elements (a 4-wide SSE chunk, then
/// scalars) swaps the operands of the 4-wide chunk when `n % 8 >= 4` and of
/// the very last element when `n % 8` is 3 or 7. The reference computes
/// each element alone and follows the body, so at these positions only
/// [`NanBits::QuietAnyPayload`] can be checked against PyTorch.
///
/// ```
/// use adadelta_difftest::accuracy::pytorch_mul_takes_deltas_nan;
/// let at = |n| (0..n).filter(|&k| pytorch_mul_takes_deltas_nan(n, k)).collect::<Vec<_>>();
/// assert_eq!(at(7), [0, 1, 2, 3, 6]);
/// assert_eq!(at(2197), [2192, 2193, 2194, 2195]);
/// assert_eq!(at(27), [26]);
/// assert!(at(2200).is_empty());
/// ```
pub fn pytorch_mul_takes_deltas_nan(n: usize, k: usize) -> bool {
    let (r, tail) = (n % 8, n - n % 8);
    (r >= 4 && (tail..tail + 4).contains(&k)) || ((r == 3 || r == 7) && k + 1 == n)
}

/// How a NaN of the reference is compared with PyTorch's (or libtorch's)
/// at element `k` of a tensor of `n`: [`NanBits::Exact`], except at the
/// positions of [`pytorch_mul_takes_deltas_nan`].
pub fn reference_vs_pytorch_nan_rule(n: usize, k: usize) -> NanBits {
    if pytorch_mul_takes_deltas_nan(n, k) {
        NanBits::QuietAnyPayload
    } else {
        NanBits::Exact
    }
}

/// Elements NaN in either trajectory (params, square_avg and acc_delta,
/// after every step), and how many of them differ under
/// [`reference_vs_pytorch_nan_rule`]: `reference` against PyTorch or
/// libtorch, `torch`, on the same case.
pub fn nan_bits_differences(reference: &Trajectory, torch: &Trajectory) -> (u64, u64) {
    let (mut nans, mut differ) = (0u64, 0u64);
    let mut cmp = |xs: &[f32], ys: &[f32]| {
        let n = xs.len();
        for (k, (&x, &y)) in xs.iter().zip(ys).enumerate() {
            if x.is_nan() || y.is_nan() {
                nans += 1;
                differ += !reference_vs_pytorch_nan_rule(n, k).same(x, y) as u64;
            }
        }
    };
    tensor_pairs(reference, torch, &mut cmp);
    (nans, differ)
}

/// Share of elements (params, square_avg and acc_delta, after every step)
/// whose bits equal `other`'s, NaN bits included ([`NanBits::Exact`]).
pub fn bit_identical<T: Compared>(a: &Trajectory<T>, b: &Trajectory<T>) -> (u64, u64) {
    bit_identical_with(a, b, NanBits::Exact)
}

/// [`bit_identical`] with NaNs compared by `nan`.
pub fn bit_identical_with<T: Compared>(
    a: &Trajectory<T>,
    b: &Trajectory<T>,
    nan: NanBits,
) -> (u64, u64) {
    let same = |x: T, y: T| T::same(nan, x, y);
    let (mut eq, mut n) = (0u64, 0u64);
    let mut cmp = |x: &[T], y: &[T]| {
        for (&x, &y) in x.iter().zip(y) {
            n += 1;
            eq += same(x, y) as u64;
        }
    };
    tensor_pairs(a, b, &mut cmp);
    (eq, n)
}

/// Calls `f` on each pair of same tensors of two trajectories of one case:
/// the parameters, then the states both have, after every step.
fn tensor_pairs<T>(a: &Trajectory<T>, b: &Trajectory<T>, f: &mut dyn FnMut(&[T], &[T])) {
    for (sa, sb) in a.iter().zip(b) {
        for (x, y) in sa.params.iter().zip(&sb.params) {
            f(x, y);
        }
        for (x, y) in sa
            .square_avg
            .iter()
            .zip(&sb.square_avg)
            .chain(sa.acc_delta.iter().zip(&sb.acc_delta))
        {
            if let (Some(x), Some(y)) = (x, y) {
                f(x, y);
            }
        }
    }
}

/// The first element (step, tensor, index) whose bits differ between two
/// trajectories of the same case, NaN bits included ([`NanBits::Exact`]),
/// described for a failure message.
pub fn first_difference<T: Compared>(
    case: &Case<T>,
    a: &Trajectory<T>,
    b: &Trajectory<T>,
) -> Option<String> {
    first_difference_with(case, a, b, NanBits::Exact)
}

/// A dtype whose trajectories [`first_difference_with`] compares: `f32`
/// or `f64` (its bit patterns are [`Element::bits`](adadelta::kernel::Element::bits)).
pub trait Compared: adadelta::kernel::Element + std::fmt::LowerExp {
    /// [`NanBits::same`] or [`NanBits::same_f64`].
    fn same(nan: NanBits, x: Self, y: Self) -> bool;
}

impl Compared for f32 {
    fn same(nan: NanBits, x: f32, y: f32) -> bool {
        nan.same(x, y)
    }
}

impl Compared for f64 {
    fn same(nan: NanBits, x: f64, y: f64) -> bool {
        nan.same_f64(x, y)
    }
}

/// bfloat16 and float16 by their own bits (widening to f32 would quiet a
/// signalling NaN in `half`'s conversion).
macro_rules! compared_half {
    ($($h:ty),*) => {$(
        impl Compared for $h {
            fn same(nan: NanBits, x: $h, y: $h) -> bool {
                use adadelta_reference::Format;
                let quiet = |v: $h| v.is_nan() && Format::to_bits(v) & <$h as Format>::QUIET_BIT != 0;
                x.to_bits() == y.to_bits()
                    || (nan == NanBits::QuietAnyPayload && quiet(x) && quiet(y))
            }
        }
    )*};
}
compared_half!(half::bf16, half::f16);

/// [`first_difference`] with NaNs compared by `nan`.
pub fn first_difference_with<T: Compared>(
    case: &Case<T>,
    a: &Trajectory<T>,
    b: &Trajectory<T>,
    nan: NanBits,
) -> Option<String> {
    let same = |x: T, y: T| T::same(nan, x, y);
    for (t, (sa, sb)) in a.iter().zip(b).enumerate() {
        let tensors = [("param", &sa.params, &sb.params)];
        for (what, xs, ys) in tensors {
            for (i, (x, y)) in xs.iter().zip(ys.iter()).enumerate() {
                if let Some(k) = (0..x.len()).find(|&k| !same(x[k], y[k])) {
                    return Some(describe(case, a, t, i, k, what, x[k], y[k]));
                }
            }
        }
        for (what, xs, ys) in [
            ("square_avg", &sa.square_avg, &sb.square_avg),
            ("acc_delta", &sa.acc_delta, &sb.acc_delta),
        ] {
            for (i, (x, y)) in xs.iter().zip(ys.iter()).enumerate() {
                match (x, y) {
                    (Some(x), Some(y)) => {
                        if let Some(k) = (0..x.len()).find(|&k| !same(x[k], y[k])) {
                            return Some(describe(case, a, t, i, k, what, x[k], y[k]));
                        }
                    }
                    (None, None) => {}
                    _ => {
                        return Some(format!(
                            "step {t}: {what} of param {i} exists in only one trajectory"
                        ))
                    }
                }
            }
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn describe<T: Compared>(
    case: &Case<T>,
    a: &Trajectory<T>,
    t: usize,
    i: usize,
    k: usize,
    what: &str,
    x: T,
    y: T,
) -> String {
    let before = |v: Option<&Vec<T>>| v.map(|v| v[k]).unwrap_or_default();
    let (p, v, u) = if t == 0 {
        (case.params[i][k], T::default(), T::default())
    } else {
        let s = &a[t - 1];
        (
            s.params[i][k],
            before(s.square_avg[i].as_ref()),
            before(s.acc_delta[i].as_ref()),
        )
    };
    let g = case.grads[t][i].as_ref().map(|g| format!("{:e}", g[k]));
    format!(
        "step {t}, param {i}, element {k}: {what} {x:e} ({:#x}) vs {y:e} ({:#x}); \
         inputs p={p:e} ({:#x}) g={g:?} v={v:e} ({:#x}) u={u:e} ({:#x}), {:?}",
        x.bits(),
        y.bits(),
        p.bits(),
        v.bits(),
        u.bits(),
        case.hyper
    )
}
