//! The implementations under test, each run over a whole [`Case`] from the
//! same inputs, producing a [`Trajectory`].

use crate::case::{Case, Snapshot, Trajectory};
use crate::dtype::Dtype;
use adadelta::kernel::Element;
use adadelta_reference::MulAdd;

/// An implementation of Adadelta that the differential tests compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// `adadelta` (the fast crate), default numerics.
    Fast,
    /// The MPFR reference emulating the parameters' format (binary32 or
    /// binary64) op by op, multiply-adds fused as ATen fuses them.
    Reference,
    /// `torch.optim.Adadelta`'s single-tensor path rebuilt from libtorch ops through `tch`.
    Libtorch,
    /// `adadelta` with `Numerics::ReproduceLibtorch`: libtorch's oneMKL sqrt
    /// emulated, promised bit-identical to [`Implementation::Libtorch`] on
    /// this machine. Running it panics where the machine's libtorch cannot
    /// be reproduced (`adadelta::kernel::LibtorchSqrt::detect` says why).
    FastReproduceLibtorch,
}

impl Implementation {
    /// Every implementation, in report order.
    pub const ALL: [Implementation; 4] = [
        Implementation::Fast,
        Implementation::Reference,
        Implementation::Libtorch,
        Implementation::FastReproduceLibtorch,
    ];

    /// Short name used in tables, for parameters of dtype `T` (the
    /// reference names the format it emulates: `reference binary32`,
    /// `reference binary64`).
    pub fn name<T: Dtype>(self) -> &'static str {
        match self {
            Implementation::Fast => "fast (default)",
            Implementation::Reference => T::REFERENCE,
            Implementation::Libtorch => "libtorch (tch)",
            Implementation::FastReproduceLibtorch => "fast (reproduce libtorch)",
        }
    }

    /// How the implementation's square root is rounded (the same in f32
    /// and f64).
    pub fn sqrt_accuracy(self) -> crate::bound::SqrtAccuracy {
        match self {
            Implementation::Libtorch | Implementation::FastReproduceLibtorch => {
                crate::bound::SqrtAccuracy::WithinOneUlpOfCorrect
            }
            _ => crate::bound::SqrtAccuracy::CorrectlyRounded,
        }
    }

    /// Whether its results are the same on every machine (no libtorch / MKL
    /// inside), so that they can be snapshotted.
    pub fn machine_independent(self) -> bool {
        match self {
            Implementation::Fast | Implementation::Reference => true,
            Implementation::Libtorch | Implementation::FastReproduceLibtorch => false,
        }
    }

    /// The implementation this one promises to equal bit for bit, if any
    /// (the report exits non-zero when such a promise fails).
    pub fn promised_bit_identical_to(self) -> Option<Implementation> {
        match self {
            Implementation::Fast => Some(Implementation::Reference),
            Implementation::FastReproduceLibtorch => Some(Implementation::Libtorch),
            _ => None,
        }
    }

    /// How its NaNs are compared with another implementation's: bit for bit
    /// ([`NanBits::Exact`](crate::accuracy::NanBits::Exact)) unless one of
    /// the two is the fast crate, whose NaN sign and payload are not
    /// determined ([`NanBits::QuietAnyPayload`](crate::accuracy::NanBits::QuietAnyPayload)
    /// says why).
    pub fn nan_bits(self, other: Implementation) -> crate::accuracy::NanBits {
        let fast = |i| {
            matches!(
                i,
                Implementation::Fast | Implementation::FastReproduceLibtorch
            )
        };
        if fast(self) || fast(other) {
            crate::accuracy::NanBits::QuietAnyPayload
        } else {
            crate::accuracy::NanBits::Exact
        }
    }

    /// Runs the case from its initial parameters and a fresh state, in the
    /// parameters' dtype `T`.
    pub fn run<T: Dtype>(self, case: &Case<T>) -> Trajectory<T> {
        match self {
            Implementation::Fast => run_fast(case),
            Implementation::Reference => run_reference(case, MulAdd::Fused),
            Implementation::Libtorch => crate::libtorch::run(case),
            Implementation::FastReproduceLibtorch => run_fast_reproduce_libtorch(case),
        }
    }
}

/// An element-wise step over `(param, grad, square_avg, acc_delta)`.
type ElementStep<'a, T> = dyn FnMut(&mut [T], &[T], &mut [T], &mut [T]) + 'a;

/// Wall time of the step computations alone over a whole case (no snapshots,
/// state pre-allocated), for the report's indicative ns/element column.
/// Parameters without a gradient are skipped. libtorch runs on one thread,
/// as [`crate::libtorch::run`] does.
pub fn time_steps<T: Dtype>(imp: Implementation, case: &Case<T>) -> std::time::Duration {
    let mut params = case.params.clone();
    let mut v: Vec<Vec<T>> = params.iter().map(|p| vec![T::default(); p.len()]).collect();
    let mut u = v.clone();
    let mut steps = |step: &mut ElementStep<T>| {
        let t0 = std::time::Instant::now();
        for grads in &case.grads {
            for (((p, g), v), u) in params
                .iter_mut()
                .zip(grads)
                .zip(v.iter_mut())
                .zip(u.iter_mut())
            {
                if let Some(g) = g {
                    step(p, g, v, u);
                }
            }
        }
        t0.elapsed()
    };
    match imp {
        Implementation::Fast => {
            let c =
                adadelta::Coefficients::new(&case.hyper.to_fast()).expect("valid hyperparameters");
            steps(&mut |p, g, v, u| adadelta::step(&c, p, g, v, u).expect("equal lengths"))
        }
        Implementation::FastReproduceLibtorch => {
            let c =
                adadelta::Coefficients::new(&case.hyper.to_fast()).expect("valid hyperparameters");
            let exec = reproduce_libtorch_executor();
            steps(&mut |p, g, v, u| fast_job(&c, &exec, p, g, v, u))
        }
        Implementation::Reference => {
            let arith = T::reference(MulAdd::Fused);
            let h = case.hyper.to_reference();
            steps(&mut |p, g, v, u| adadelta_reference::step(&arith, &h, p, g, v, u))
        }
        Implementation::Libtorch => {
            let _ = tch::get_num_threads();
            tch::set_num_threads(1);
            let t = |x: &Vec<T>| tch::Tensor::from_slice(x);
            let mut p: Vec<_> = case.params.iter().map(t).collect();
            let mut v: Vec<_> = p.iter().map(|x| x.zeros_like()).collect();
            let mut u: Vec<_> = p.iter().map(|x| x.zeros_like()).collect();
            let grads: Vec<Vec<Option<tch::Tensor>>> = case
                .grads
                .iter()
                .map(|row| row.iter().map(|g| g.as_ref().map(t)).collect())
                .collect();
            let t0 = std::time::Instant::now();
            for row in &grads {
                for (k, g) in row.iter().enumerate() {
                    if let Some(g) = g {
                        crate::libtorch::step(&case.hyper, &mut p[k], g, &mut v[k], &mut u[k]);
                    }
                }
            }
            t0.elapsed()
        }
    }
}

/// Per-parameter state kept by the runners below, in the parameters' dtype
/// `T`: `(square_avg, acc_delta, step)`, the step counter an f32 whatever
/// `T` is, as PyTorch keeps it.
type State<T> = Option<(Vec<T>, Vec<T>, f32)>;

/// The state of a parameter of `n` elements, created on its first gradient:
/// zeros, step 0.
fn zero_state<T: Element>(st: &mut State<T>, n: usize) -> (&mut Vec<T>, &mut Vec<T>, &mut f32) {
    let (v, u, t) = st.get_or_insert_with(|| (vec![T::default(); n], vec![T::default(); n], 0.0));
    (v, u, t)
}

/// Drives an element-wise step function over a case with PyTorch's
/// bookkeeping: lazy zero state on the first gradient, skipped parameters
/// without gradient, the step counter as an f32 (`step += 1` in f32).
fn run_with<T: Element>(
    case: &Case<T>,
    mut step: impl FnMut(&mut [T], &[T], &mut [T], &mut [T]),
) -> Trajectory<T> {
    let mut params = case.params.clone();
    let mut state: Vec<State<T>> = vec![None; params.len()];
    let mut out = Vec::with_capacity(case.grads.len());
    for grads in &case.grads {
        for ((p, g), st) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            let Some(g) = g else { continue };
            let (v, u, t) = zero_state(st, p.len());
            *t += 1.0;
            step(p, g, v, u);
        }
        out.push(snapshot(&params, &state));
    }
    out
}

/// The parameters and state after a step, as a [`Snapshot`].
fn snapshot<T: Element>(params: &[Vec<T>], state: &[State<T>]) -> Snapshot<T> {
    Snapshot {
        params: params.to_vec(),
        square_avg: state
            .iter()
            .map(|s| s.as_ref().map(|s| s.0.clone()))
            .collect(),
        acc_delta: state
            .iter()
            .map(|s| s.as_ref().map(|s| s.1.clone()))
            .collect(),
        step: state.iter().map(|s| s.as_ref().map(|s| s.2)).collect(),
    }
}

/// Runs a case through `adadelta::kernel::run` with `exec`: one
/// multi-tensor call per step with every parameter that has a gradient, with
/// PyTorch's bookkeeping (lazy zero state, skipped parameters, f32 step
/// counter). Panics if the kernel refuses (e.g. a path this CPU lacks).
pub fn run_kernel<T: Element>(case: &Case<T>, exec: &adadelta::kernel::Executor) -> Trajectory<T> {
    let c =
        adadelta::Coefficients::new(&case.hyper.to_fast()).expect("case has valid hyperparameters");
    let mut params = case.params.clone();
    let mut state: Vec<State<T>> = vec![None; params.len()];
    let mut out = Vec::with_capacity(case.grads.len());
    for grads in &case.grads {
        let mut jobs = Vec::new();
        for ((p, g), st) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            let Some(g) = g else { continue };
            let (v, u, t) = zero_state(st, p.len());
            *t += 1.0;
            jobs.push(adadelta::kernel::Job {
                coeffs: &c,
                param: p,
                grad: g,
                square_avg: v,
                acc_delta: u,
            });
        }
        if let Err(e) = adadelta::kernel::run(&mut jobs, exec) {
            panic!("adadelta::kernel::run with {exec:?}: {e}");
        }
        drop(jobs);
        out.push(snapshot(&params, &state));
    }
    out
}

/// Runs the fast crate's kernel (default numerics).
pub fn run_fast<T: Element>(case: &Case<T>) -> Trajectory<T> {
    let coeffs =
        adadelta::Coefficients::new(&case.hyper.to_fast()).expect("case has valid hyperparameters");
    run_with(case, |p, g, v, u| {
        adadelta::step(&coeffs, p, g, v, u).expect("equal lengths")
    })
}

/// The executor of [`Implementation::FastReproduceLibtorch`]: reproduce
/// libtorch's numerics, on the calling thread (like [`crate::libtorch::run`];
/// the thread count cannot change the bits).
fn reproduce_libtorch_executor() -> adadelta::kernel::Executor {
    adadelta::kernel::Executor {
        numerics: adadelta::kernel::Numerics::ReproduceLibtorch,
        threads: adadelta::kernel::Threads::Single,
        ..adadelta::kernel::Executor::default()
    }
}

/// One tensor's step through `adadelta::kernel::run`.
fn fast_job<T: Element>(
    c: &adadelta::Coefficients,
    exec: &adadelta::kernel::Executor,
    param: &mut [T],
    grad: &[T],
    square_avg: &mut [T],
    acc_delta: &mut [T],
) {
    let mut jobs = [adadelta::kernel::Job {
        coeffs: c,
        param,
        grad,
        square_avg,
        acc_delta,
    }];
    if let Err(e) = adadelta::kernel::run(&mut jobs, exec) {
        panic!("fast (reproduce libtorch): {e}");
    }
}

/// Runs the fast crate's kernel with `Numerics::ReproduceLibtorch`.
///
/// # Panics
/// Where this machine's libtorch cannot be reproduced.
pub fn run_fast_reproduce_libtorch<T: Dtype>(case: &Case<T>) -> Trajectory<T> {
    let coeffs =
        adadelta::Coefficients::new(&case.hyper.to_fast()).expect("case has valid hyperparameters");
    let exec = reproduce_libtorch_executor();
    run_with(case, |p, g, v, u| fast_job(&coeffs, &exec, p, g, v, u))
}

/// Runs the MPFR reference emulating the parameters' format (binary32 for
/// `f32`, binary64 for `f64`) op by op, multiply-adds as `mul_add` says.
pub fn run_reference<T: Dtype>(case: &Case<T>, mul_add: MulAdd) -> Trajectory<T> {
    let arith = T::reference(mul_add);
    let hyper = case.hyper.to_reference();
    run_with(case, |p, g, v, u| {
        adadelta_reference::step(&arith, &hyper, p, g, v, u)
    })
}

/// Runs the MPFR reference's 16-bit arithmetic ([`adadelta_reference::Half`]
/// at the parameters' format `H`, rounding as `rounding` says, on the
/// `foreach` path if the case's hyperparameters say so), its `f32` values
/// converted exactly from and to `H`. With [`Rounding::Opmath`](adadelta_reference::Rounding::Opmath),
/// the elements PyTorch with `torch_threads` intra-op threads computes in
/// scalar code ([`adadelta::kernel::torch_tail`]) take
/// [`Rounding::OpmathScalar`](adadelta_reference::Rounding::OpmathScalar).
pub fn run_reference_half<H>(
    case: &Case<H>,
    rounding: adadelta_reference::Rounding,
    torch_threads: usize,
) -> Trajectory<H>
where
    H: Element + adadelta_reference::Format,
{
    use adadelta_reference::ieee::convert;
    use adadelta_reference::{Half, Rounding};
    let foreach = case.hyper.foreach;
    let (arith, scalar) = (
        Half::<H>::new(rounding, foreach),
        Half::<H>::new(Rounding::OpmathScalar, foreach),
    );
    let hyper = case.hyper.to_reference();
    let widen = |x: &H| convert::<H, f32>(*x);
    run_with(case, |p, g, v, u| {
        let n = p.len();
        for i in 0..n {
            let in_scalar_code = adadelta::kernel::torch_tail::run_at(i, n, torch_threads).0;
            let a = if rounding == Rounding::Opmath && in_scalar_code {
                &scalar
            } else {
                &arith
            };
            let (mut pi, gi, mut vi, mut ui) = (
                [widen(&p[i])],
                [widen(&g[i])],
                [widen(&v[i])],
                [widen(&u[i])],
            );
            adadelta_reference::step(a, &hyper, &mut pi, &gi, &mut vi, &mut ui);
            p[i] = convert::<f32, H>(pi[0]);
            v[i] = convert::<f32, H>(vi[0]);
            u[i] = convert::<f32, H>(ui[0]);
        }
    })
}

/// Every kernel path this CPU runs.
pub fn paths_here() -> Vec<adadelta::kernel::Isa> {
    adadelta::kernel::Isa::ALL
        .into_iter()
        .filter(|p| p.is_supported())
        .collect()
}

/// The executor of one kernel path and numerics, on the calling thread.
pub fn path_executor(
    numerics: adadelta::kernel::Numerics,
    isa: adadelta::kernel::Isa,
) -> adadelta::kernel::Executor {
    adadelta::kernel::Executor {
        numerics,
        isa: Some(isa),
        threads: adadelta::kernel::Threads::Single,
        ..adadelta::kernel::Executor::default()
    }
}
