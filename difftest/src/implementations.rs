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
    let steps = |step: &mut ElementStep<T>| time_element_steps(case, step);
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

/// Wall time of `step` over every step of `case` from its initial
/// parameters and a zero state allocated beforehand (no snapshots);
/// parameters without a gradient are skipped.
fn time_element_steps<T: Element>(
    case: &Case<T>,
    step: &mut ElementStep<T>,
) -> std::time::Duration {
    let mut params = case.params.clone();
    let mut v: Vec<Vec<T>> = params.iter().map(|p| vec![T::default(); p.len()]).collect();
    let mut u = v.clone();
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
    let step = ReferenceHalf::new(case, rounding, torch_threads);
    run_with(case, |p, g, v, u| step.step(p, g, v, u))
}

/// The MPFR reference's 16-bit step of [`run_reference_half`], for one
/// case's hyperparameters.
struct ReferenceHalf<H> {
    arith: adadelta_reference::Half<H>,
    scalar: adadelta_reference::Half<H>,
    hyper: adadelta_reference::Hyperparams,
    rounding: adadelta_reference::Rounding,
    torch_threads: usize,
}

impl<H: Element + adadelta_reference::Format> ReferenceHalf<H> {
    fn new(case: &Case<H>, rounding: adadelta_reference::Rounding, torch_threads: usize) -> Self {
        use adadelta_reference::{Half, Rounding};
        let foreach = case.hyper.foreach;
        ReferenceHalf {
            arith: Half::<H>::new(rounding, foreach),
            scalar: Half::<H>::new(Rounding::OpmathScalar, foreach),
            hyper: case.hyper.to_reference(),
            rounding,
            torch_threads,
        }
    }

    /// One tensor's step, element by element.
    fn step(&self, p: &mut [H], g: &[H], v: &mut [H], u: &mut [H]) {
        use adadelta_reference::ieee::convert;
        use adadelta_reference::Rounding;
        let widen = |x: &H| convert::<H, f32>(*x);
        let n = p.len();
        for i in 0..n {
            let in_scalar_code = adadelta::kernel::torch_tail::run_at(i, n, self.torch_threads).0;
            let a = if self.rounding == Rounding::Opmath && in_scalar_code {
                &self.scalar
            } else {
                &self.arith
            };
            let (mut pi, gi, mut vi, mut ui) = (
                [widen(&p[i])],
                [widen(&g[i])],
                [widen(&v[i])],
                [widen(&u[i])],
            );
            adadelta_reference::step(a, &self.hyper, &mut pi, &gi, &mut vi, &mut ui);
            p[i] = convert::<f32, H>(pi[0]);
            v[i] = convert::<f32, H>(vi[0]);
            u[i] = convert::<f32, H>(ui[0]);
        }
    }
}

/// The intra-op thread count of the PyTorch that the report's bfloat16
/// and float16 rows reproduce and run: with one thread, where PyTorch
/// computes in scalar code depends on the tensor's length alone
/// ([`adadelta::kernel::torch_tail`]), the same on every machine.
pub const HALF_TORCH_THREADS: usize = 1;

/// An implementation the report's bfloat16 and float16 sections compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfImplementation {
    /// `adadelta`, default numerics: every ATen op's exact result rounded
    /// once to the dtype.
    Fast,
    /// The MPFR reference rounding every op once
    /// ([`Rounding::Once`](adadelta_reference::Rounding::Once)).
    ReferenceOnce,
    /// `adadelta` with a reproduce-libtorch numerics (each op in f32, then
    /// rounded to the dtype), reproducing a PyTorch of
    /// [`HALF_TORCH_THREADS`] intra-op threads. Not run where this CPU
    /// computes no reproduce-libtorch numerics.
    FastReproduceLibtorch,
    /// The MPFR reference rounding as PyTorch does
    /// ([`Rounding::Opmath`](adadelta_reference::Rounding::Opmath), its
    /// scalar code where a PyTorch of [`HALF_TORCH_THREADS`] threads runs it).
    ReferenceOpmath,
    /// Real `torch.optim.Adadelta` in the venv with
    /// [`HALF_TORCH_THREADS`] intra-op threads.
    PyTorch,
}

impl HalfImplementation {
    /// Every implementation, in report order.
    pub const ALL: [HalfImplementation; 5] = [
        HalfImplementation::Fast,
        HalfImplementation::ReferenceOnce,
        HalfImplementation::FastReproduceLibtorch,
        HalfImplementation::ReferenceOpmath,
        HalfImplementation::PyTorch,
    ];

    /// Short name used in tables, for parameters of dtype `H` (the
    /// reference names the dtype and its rounding).
    ///
    /// ```
    /// use adadelta_difftest::implementations::HalfImplementation;
    /// assert_eq!(HalfImplementation::ReferenceOnce.name::<half::bf16>(), "reference bfloat16 (once)");
    /// assert_eq!(HalfImplementation::ReferenceOpmath.name::<half::f16>(), "reference float16 (opmath)");
    /// ```
    pub fn name<H: Element>(self) -> String {
        match self {
            HalfImplementation::Fast => "fast (default)".into(),
            HalfImplementation::ReferenceOnce => format!("reference {} (once)", H::DTYPE),
            HalfImplementation::FastReproduceLibtorch => "fast (reproduce libtorch)".into(),
            HalfImplementation::ReferenceOpmath => format!("reference {} (opmath)", H::DTYPE),
            HalfImplementation::PyTorch => "torch.optim.Adadelta (Python)".into(),
        }
    }

    /// How it rounds each op, the error bound it is held to
    /// ([`crate::bound::one_step_half`]).
    pub fn rounding(self) -> adadelta_reference::Rounding {
        match self {
            HalfImplementation::Fast | HalfImplementation::ReferenceOnce => {
                adadelta_reference::Rounding::Once
            }
            _ => adadelta_reference::Rounding::Opmath,
        }
    }

    /// Whether its results are the same on every machine (no PyTorch
    /// inside, and run on every CPU), so that they can be snapshotted.
    pub fn machine_independent(self) -> bool {
        matches!(
            self,
            HalfImplementation::Fast
                | HalfImplementation::ReferenceOnce
                | HalfImplementation::ReferenceOpmath
        )
    }

    /// The implementation this one promises to equal bit for bit (NaNs by
    /// class and quietness), if any.
    pub fn promised_bit_identical_to(self) -> Option<HalfImplementation> {
        match self {
            HalfImplementation::Fast => Some(HalfImplementation::ReferenceOnce),
            HalfImplementation::FastReproduceLibtorch => Some(HalfImplementation::ReferenceOpmath),
            HalfImplementation::PyTorch => Some(HalfImplementation::FastReproduceLibtorch),
            _ => None,
        }
    }

    /// Runs every case from its initial parameters and a fresh state, in
    /// the parameters' dtype `H`; PyTorch in one Python process. An error
    /// where it cannot run here (no reproduce-libtorch numerics on this
    /// CPU, no PyTorch).
    pub fn run_all<H: crate::dtype::Floating>(
        self,
        cases: &[Case<H>],
    ) -> Result<Vec<Trajectory<H>>, String> {
        let kernel = |numerics| {
            let exec = half_executor(numerics);
            Ok(cases.iter().map(|c| run_kernel(c, &exec)).collect())
        };
        let reference = |rounding| {
            cases
                .iter()
                .map(|c| run_reference_half(c, rounding, HALF_TORCH_THREADS))
                .collect()
        };
        match self {
            HalfImplementation::Fast => kernel(adadelta::kernel::Numerics::Default),
            HalfImplementation::FastReproduceLibtorch => kernel(half_reproduce_numerics()?),
            HalfImplementation::ReferenceOnce | HalfImplementation::ReferenceOpmath => {
                Ok(reference(self.rounding()))
            }
            HalfImplementation::PyTorch => {
                crate::pytorch::run_pytorch_with_threads(cases, Some(HALF_TORCH_THREADS as u32))
            }
        }
    }

    /// Wall time of the step computations alone over a whole case, as
    /// [`time_steps`], for fast's rows; `None` for the others (the
    /// report times the references by their run, whose snapshots cost
    /// nothing beside MPFR, and does not time PyTorch) and where it cannot
    /// run here.
    pub fn time_steps<H: crate::dtype::Floating>(
        self,
        case: &Case<H>,
    ) -> Option<std::time::Duration> {
        let numerics = match self {
            HalfImplementation::Fast => adadelta::kernel::Numerics::Default,
            HalfImplementation::FastReproduceLibtorch => half_reproduce_numerics().ok()?,
            _ => return None,
        };
        let c = adadelta::Coefficients::new(&case.hyper.to_fast()).expect("valid hyperparameters");
        let exec = half_executor(numerics);
        Some(time_element_steps(case, &mut |p, g, v, u| {
            fast_job(&c, &exec, p, g, v, u)
        }))
    }
}

/// The reproduce-libtorch numerics this CPU computes, for the 16-bit
/// kernels (which take no oneMKL square root, so any will do).
fn half_reproduce_numerics() -> Result<adadelta::kernel::Numerics, String> {
    adadelta::kernel::Numerics::supported()
        .get(1)
        .copied()
        .ok_or_else(|| "this CPU computes no reproduce-libtorch numerics".to_string())
}

/// The executor of the report's 16-bit fast rows: `numerics` on the
/// calling thread, reproducing a PyTorch of [`HALF_TORCH_THREADS`] threads.
fn half_executor(numerics: adadelta::kernel::Numerics) -> adadelta::kernel::Executor {
    adadelta::kernel::Executor {
        numerics,
        threads: adadelta::kernel::Threads::Single,
        libtorch_threads: Some(HALF_TORCH_THREADS),
        ..adadelta::kernel::Executor::default()
    }
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
