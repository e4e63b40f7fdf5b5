//! The Adadelta update: one fused pass over `param`, `grad`, `square_avg`
//! and `acc_delta`, on every SIMD path of the CPU and on many threads.
//!
//! # The math, written once
//!
//! Each line is one ATen op of PyTorch 2.13's single-tensor path, rounded as
//! that op's CPU kernel rounds it on x86-64 builds with AVX2/AVX-512 (where GCC
//! contracts the scalar lambdas into FMA):
//!
//! ```text
//! g   = maximize ? -g : g                      neg: exact
//! g   = fma(p, wd, g)          if wd != 0      grad.add(param, alpha=wd)
//! v   = fma(c * g, g, v * rho)                 square_avg.mul_(rho).addcmul_(g, g, value=1-rho)
//! std = sqrt(v + eps)                          square_avg.add(eps).sqrt_()      (new v)
//! d   = sqrt(u + eps) / std * g                acc_delta.add(eps).sqrt_().div_(std).mul_(g)  (old u)
//! u   = fma(c * d, d, u * rho)                 acc_delta.mul_(rho).addcmul_(d, d, value=1-rho)
//! p   = fma(d, -lr, p)                         param.add_(d, alpha=-lr)
//! ```
//!
//! Every `*`, `+`, `/` is one operation of the element type ([`Element`]:
//! `f32` or `f64`, as the tensor's dtype) rounded to nearest even and every
//! `fma` rounds once; the scalars are the group's, converted for that dtype
//! as ATen converts them ([`Coefficients::scalars`]). `sqrt` depends on the [`Numerics`]:
//!
//! * [`Numerics::Default`]: correctly rounded. The same bits on every machine,
//!   path and thread count, equal to the MPFR reference's binary32 (binary64)
//!   emulation (NaNs excepted: NaN wherever the reference has one, and quiet,
//!   but sign and payload not promised; [`guide::numerics`](crate::guide::numerics),
//!   "NaN bits").
//! * [`Numerics::ReproduceLibtorch`]: the oneMKL kernel libtorch's
//!   `torch.sqrt` runs on this CPU ([`LibtorchSqrt`]), for `f32` and `f64`,
//!   so that the result is libtorch's, bit for bit, on this machine.
//!
//! `bfloat16` and `float16` ([`half::bf16`], [`half::f16`]) take the same
//! ATen ops with `f32` scalars (ATen's opmath; `rho` rounded to the dtype on
//! the `foreach` path, [`Hyperparams::foreach`](crate::Hyperparams::foreach)):
//!
//! * [`Numerics::Default`]: each op's exact result rounded once to the dtype
//!   (`s + value·t1·t2` for `addcmul`, `x + alpha·y` for `add(alpha=)`),
//!   computed in `f32`, with a lane whose `f32` result is a rounding
//!   boundary of the dtype moved towards the exact result (the sign of the
//!   op's exact residual) or, where that sign is unknown, recomputed on
//!   `f64` lanes with exact products and sums;
//! * [`Numerics::ReproduceLibtorch`]: each op computed in `f32` as PyTorch's
//!   vectorised kernels do, rounded to the dtype at the op's end; on the
//!   elements PyTorch computes in scalar code (the last `len % 32` of a
//!   tensor, or of each of its threads' chunks: [`torch_tail`],
//!   [`Executor::libtorch_threads`]), `add(alpha=)` rounds `alpha·y` to the
//!   dtype first, as that code does.
//!
//! # Instruction sets and threads
//!
//! The loop is written once ([`update`](self) in `update.rs`, over the
//! lane operations of `lanes.rs`) and compiled for each instruction set
//! ([`Isa`]): portable scalar Rust, x86-64 AVX2+FMA and AVX-512F, aarch64
//! NEON. Every instruction set computes the formula above operation for
//! operation and gives the same bits (tested). The best one the CPU supports
//! is picked at run time; `ADADELTA_KERNEL=scalar|avx2|avx512|neon` forces
//! one.
//!
//! # Where things are
//!
//! | module | holds |
//! |---|---|
//! | `cpu` | the CPU's vendor and features; which oneMKL square root libtorch runs on it |
//! | `element` | [`Element`]: `f32`, `f64`, `bf16`, `f16`, each with its scalars and its pairings |
//! | `isa` | [`Isa`]: the instruction sets, which ones run here, `ADADELTA_KERNEL` |
//! | `lanes` | the lane operations everything is written against; the scalar fallback |
//! | `x86`, `neon` | each instruction set's lane operations, intrinsic by intrinsic |
//! | `div_sqrt` | [`DivSqrt`]: the divide unit, or AVX-512's estimates, `ADADELTA_DIVSQRT` |
//! | `recipe` | the square roots: IEEE and oneMKL's EXHA, L9HA, Z0HA, each once |
//! | `newton` | the correctly rounded square root and division from estimates |
//! | `aten` | Adadelta's ATen ops as each element type and numerics round them |
//! | `update` | the Adadelta math, once, and the loop over a slice |
//! | `dispatch` | (instruction set, square root) to a compiled loop |
//! | `job`, `parallel` | the step's slices, and their split across threads |
//! | `torch_tail` | which elements of a 16-bit tensor PyTorch computes in scalar code |
//!
//! Imports point down that table: `cpu` and `lanes` import nothing from the
//! kernel; nothing imports this module.
//!
//! [`run`] treats the elements of all its [`Job`]s as one index space and
//! splits it across a rayon pool ([`Threads`]); steps shorter than
//! [`Executor::grain`] stay on the calling thread. The update is
//! element-wise, so the thread count cannot change any bit.
//!
//! The step allocates nothing.

mod aten;
mod cpu;
mod dispatch;
mod div_sqrt;
pub(crate) mod element;
mod isa;
mod job;
mod lanes;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod newton;
mod parallel;
mod recipe;
pub mod torch_tail;
mod update;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::Arc;

pub use cpu::LibtorchSqrt;
use dispatch::Kernel;
pub use div_sqrt::DivSqrt;
pub(crate) use element::same_bits;
pub use element::Element;
pub use isa::Isa;
pub use job::Job;
use job::{check_lengths, Piece};

use crate::{Coefficients, Error};

/// One Adadelta step on one parameter tensor, in place, with the default
/// numerics, on the calling thread, on the [selected](Isa::selected) path.
///
/// `square_avg` and `acc_delta` are the parameter's state (zeros before its
/// first step). All four slices must have the same length; otherwise
/// [`Error::LengthMismatch`] is returned and nothing is written.
/// [`Error::KernelUnavailable`] means `ADADELTA_KERNEL` names a path this CPU
/// cannot run. For many tensors, threads or the reproduce-libtorch numerics,
/// see [`run`].
///
/// ```
/// use adadelta::{Coefficients, Hyperparams};
/// let c = Coefficients::new(&Hyperparams { rho: 0.0, eps: 0.0, ..Default::default() })?;
/// // rho = 0, eps = 0, zero state: the first step is `param -= lr * 0 / |g| * g`,
/// // i.e. sqrt(0) / |g| * g = 0: Adadelta's first step with eps = 0 does not move.
/// let (mut p, mut v, mut u) = (vec![1.0_f32], vec![0.0_f32], vec![0.0_f32]);
/// adadelta::step(&c, &mut p, &[2.0], &mut v, &mut u)?;
/// assert_eq!((p[0], v[0], u[0]), (1.0, 4.0, 0.0));
///
/// // float64 parameters step in f64, with the f64 scalars (torch's float64).
/// let c = Coefficients::new(&Hyperparams::default())?;
/// let (mut p, mut v, mut u) = (vec![1.0_f64], vec![0.0_f64], vec![0.0_f64]);
/// adadelta::step(&c, &mut p, &[2.0], &mut v, &mut u)?;
/// assert_eq!(v[0], ((1.0 - 0.9) * 2.0_f64).mul_add(2.0, 0.9 * 0.0)); // as torch's addcmul_
/// let std = (v[0] + 1e-6).sqrt();
/// assert_eq!(p[0], 1.0 - (1e-6_f64).sqrt() / std * 2.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn step<E: Element>(
    coeffs: &Coefficients,
    param: &mut [E],
    grad: &[E],
    square_avg: &mut [E],
    acc_delta: &mut [E],
) -> Result<(), Error> {
    check_lengths(param, grad, square_avg, acc_delta)?;
    coeffs.finite_in::<E>()?;
    let kernel = Kernel::<E>::new(Isa::selected()?, None, DivSqrt::selected()?)?;
    let tensor = param.len();
    kernel.run(Piece {
        coeffs,
        param,
        grad,
        square_avg,
        acc_delta,
        at: 0,
        tensor,
    });
    Ok(())
}

/// Which numerics the kernel computes. Both use PyTorch's op order, fusing
/// and scalar conversions (see the [module docs](self)); they differ only in
/// the square root.
///
/// ```
/// use adadelta::kernel::{Numerics, LibtorchSqrt};
/// assert_eq!(Numerics::default(), Numerics::Default);
/// // The reproduce-libtorch numerics resolve to a oneMKL kernel, or say why not:
/// match Numerics::ReproduceLibtorch.libtorch_sqrt() {
///     Ok(Some(k)) => assert!(k.is_supported()),
///     Ok(None) => unreachable!(),
///     Err(e) => println!("cannot reproduce libtorch here: {e}"),
/// }
/// assert_eq!(Numerics::Default.libtorch_sqrt(), Ok(None));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Numerics {
    /// PyTorch's op order and fusing with a correctly rounded sqrt: the same
    /// bits on every machine, path and thread count, equal to the MPFR
    /// reference's binary32 emulation (a NaN's sign and payload excepted:
    /// [`guide::numerics`](crate::guide::numerics), "NaN bits").
    #[default]
    Default,
    /// Bit-identical to libtorch 2.13 (the wheel's oneMKL 2024.2) on this
    /// machine: the square root is the oneMKL kernel
    /// [`LibtorchSqrt::detect`] finds. Runs fail with
    /// [`Error::CannotReproduceLibtorch`] where it finds none.
    ReproduceLibtorch,
    /// Like [`ReproduceLibtorch`](Self::ReproduceLibtorch) with a given oneMKL
    /// kernel instead of the detected one: for reproducing another machine
    /// kind's libtorch (the kernel must be [supported](LibtorchSqrt::is_supported)
    /// here) or a oneMKL whose dispatch was changed.
    Libtorch(LibtorchSqrt),
}

impl Numerics {
    /// Every numerics this CPU can compute: [`Numerics::Default`], and
    /// [`Numerics::Libtorch`] with each oneMKL kernel whose approximation
    /// instruction it has ([`LibtorchSqrt::is_supported`]).
    ///
    /// ```
    /// use adadelta::kernel::Numerics;
    /// let here = Numerics::supported();
    /// assert_eq!(here[0], Numerics::Default);
    /// assert!(here[1..].iter().all(|n| n.libtorch_sqrt().unwrap().unwrap().is_supported()));
    /// ```
    pub fn supported() -> Vec<Numerics> {
        std::iter::once(Numerics::Default)
            .chain(
                LibtorchSqrt::ALL
                    .into_iter()
                    .filter(|k| k.is_supported())
                    .map(Numerics::Libtorch),
            )
            .collect()
    }

    /// The oneMKL square root these numerics compute: `None` for the
    /// correctly rounded one ([`Numerics::Default`]).
    ///
    /// ```
    /// use adadelta::kernel::{LibtorchSqrt, Numerics};
    /// let n = Numerics::Libtorch(LibtorchSqrt::MklExHa);
    /// assert_eq!(n.libtorch_sqrt(), Ok(Some(LibtorchSqrt::MklExHa)));
    /// ```
    pub fn libtorch_sqrt(self) -> Result<Option<LibtorchSqrt>, Error> {
        Ok(match self {
            Numerics::Default => None,
            Numerics::ReproduceLibtorch => Some(LibtorchSqrt::detect()?),
            Numerics::Libtorch(k) => Some(k),
        })
    }
}

/// Where a multi-tensor step runs.
///
/// ```
/// use std::sync::Arc;
/// use adadelta::kernel::Threads;
/// let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
/// let t = Threads::Pool(pool);
/// assert_eq!(t.count(), 2);
/// assert_eq!(Threads::Single.count(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub enum Threads {
    /// rayon's current pool: the global pool, or the pool whose
    /// [`install`](rayon::ThreadPool::install) the call runs inside.
    #[default]
    Rayon,
    /// The calling thread only.
    Single,
    /// The given pool (the step runs inside its
    /// [`install`](rayon::ThreadPool::install)).
    Pool(Arc<rayon::ThreadPool>),
}

impl Threads {
    /// How many threads a large step uses.
    ///
    /// ```
    /// use adadelta::kernel::Threads;
    /// assert_eq!(Threads::Rayon.count(), rayon::current_num_threads());
    /// ```
    pub fn count(&self) -> usize {
        match self {
            Threads::Rayon => rayon::current_num_threads(),
            Threads::Single => 1,
            Threads::Pool(p) => p.current_num_threads(),
        }
    }
}

/// How a multi-tensor step runs: numerics, path, threads.
///
/// ```
/// use adadelta::kernel::{Executor, Isa, Numerics, Threads};
/// let exec = Executor { numerics: Numerics::Default, threads: Threads::Single, ..Executor::default() };
/// assert_eq!(exec.isa, None); // the selected path (`ADADELTA_KERNEL` or the best)
/// let forced = Executor { isa: Some(Isa::Scalar), ..Executor::default() };
/// assert_eq!(forced.grain, adadelta::kernel::DEFAULT_GRAIN);
/// ```
#[derive(Clone, Debug)]
pub struct Executor {
    /// The numerics to compute.
    pub numerics: Numerics,
    /// The instruction set; `None` means [`Isa::selected`]. One the CPU
    /// cannot run is [`Error::KernelUnavailable`].
    pub isa: Option<Isa>,
    /// How the division and square roots are computed (the same bits
    /// either way); `None` means [`DivSqrt::selected`]. One the path cannot
    /// run is [`Error::KernelUnavailable`].
    pub div_sqrt: Option<DivSqrt>,
    /// Threads for steps of at least `2 * grain` elements.
    pub threads: Threads,
    /// Steps of fewer than `2 * grain` elements (all jobs together) run on
    /// the calling thread; larger ones are cut into pieces of about `grain`
    /// elements or more, at most four per thread.
    pub grain: usize,
    /// The intra-op thread count (`torch.get_num_threads()`) of the
    /// PyTorch whose bits [`Numerics::ReproduceLibtorch`] reproduces on
    /// bfloat16 and float16 tensors of 32768 elements or more: PyTorch
    /// splits those into one chunk per thread, and computes the last
    /// `len % 32` elements of each chunk in its scalar code, which rounds
    /// `add(alpha=)` differently ([`torch_tail`]). `None`: this machine's
    /// [available parallelism](std::thread::available_parallelism) (PyTorch's
    /// default is the number of physical cores: set it where the two
    /// differ). It plays no part in other dtypes or numerics, and this
    /// crate's own threads ([`Executor::threads`]) never change a bit.
    pub libtorch_threads: Option<usize>,
}

/// The default [`Executor::grain`]: 32768 elements (896 KiB of traffic,
/// 7 to 17 µs on one core), well above rayon's fork-join cost of a few
/// microseconds; [`guide::performance`](crate::guide::performance) has the
/// measurements.
///
/// ```
/// assert_eq!(adadelta::kernel::Executor::default().grain, adadelta::kernel::DEFAULT_GRAIN);
/// ```
pub const DEFAULT_GRAIN: usize = 1 << 15;

impl Default for Executor {
    fn default() -> Self {
        Executor {
            numerics: Numerics::Default,
            isa: None,
            div_sqrt: None,
            threads: Threads::Rayon,
            grain: DEFAULT_GRAIN,
            libtorch_threads: None,
        }
    }
}

impl Executor {
    /// The default executor with other numerics.
    ///
    /// ```
    /// use adadelta::kernel::{Executor, Numerics};
    /// assert_eq!(Executor::with_numerics(Numerics::ReproduceLibtorch).numerics, Numerics::ReproduceLibtorch);
    /// ```
    pub fn with_numerics(numerics: Numerics) -> Self {
        Executor {
            numerics,
            ..Executor::default()
        }
    }

    /// The instruction set this executor runs, or why it cannot run.
    ///
    /// ```
    /// use adadelta::kernel::{Executor, Isa};
    /// let e = Executor { isa: Some(Isa::Scalar), ..Executor::default() };
    /// assert_eq!(e.resolved_isa(), Ok(Isa::Scalar));
    /// ```
    pub fn resolved_isa(&self) -> Result<Isa, Error> {
        match self.isa {
            Some(isa) => isa.available(),
            None => Isa::selected(),
        }
    }

    /// The loop this executor runs, or why it cannot run.
    fn kernel<E: Element>(&self) -> Result<Kernel<E>, Error> {
        let ds = match self.div_sqrt {
            Some(ds) => ds,
            None => DivSqrt::selected()?,
        };
        // Read once: `available_parallelism` reads cgroup files (tens of
        // microseconds), too slow for every step.
        static HERE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let here =
            || *HERE.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let torch_threads = self.libtorch_threads.unwrap_or_else(here);
        Ok(
            Kernel::new(self.resolved_isa()?, self.numerics.libtorch_sqrt()?, ds)?
                .with_torch_threads(torch_threads),
        )
    }
}

/// Steps every job. All lengths are checked first: on
/// [`Error::LengthMismatch`] (or an unavailable path or numerics) nothing at
/// all has been written. So are the scalars in `E`: a float16 step refuses
/// an `lr`, `eps` or `weight_decay` above float16's 65504, which would be
/// infinite in its tensors ([`Error::InvalidLr`], [`Error::InvalidEps`],
/// [`Error::InvalidWeightDecay`]).
///
/// ```
/// use adadelta::kernel::{run, Executor, Job};
/// use adadelta::{Coefficients, Hyperparams};
/// let c = Coefficients::new(&Hyperparams::default())?;
/// let (mut p, mut v, mut u) = (vec![1.0_f32; 4], vec![0.0_f32; 4], vec![0.0_f32; 4]);
/// let g = vec![0.5_f32; 4];
/// let mut jobs = [Job { coeffs: &c, param: &mut p, grad: &g, square_avg: &mut v, acc_delta: &mut u }];
/// run(&mut jobs, &Executor::default())?;
/// assert!(p[0] < 1.0);
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn run<E: Element>(jobs: &mut [Job<'_, E>], exec: &Executor) -> Result<(), Error> {
    for j in jobs.iter() {
        check_lengths(j.param, j.grad, j.square_avg, j.acc_delta)?;
        j.coeffs.finite_in::<E>()?;
    }
    let kernel = exec.kernel::<E>()?;
    let span = parallel::Span::new(jobs);
    let total = span.len();
    let grain = exec.grain.max(1);
    let small = total < grain.saturating_mul(2);
    let leaf = |threads: usize| grain.max(total.div_ceil(threads.saturating_mul(4)));
    match &exec.threads {
        _ if small => span.run(kernel),
        Threads::Single => span.run(kernel),
        Threads::Rayon => match rayon::current_num_threads() {
            1 => span.run(kernel),
            t => parallel::run(span, leaf(t), kernel),
        },
        Threads::Pool(pool) => match pool.current_num_threads() {
            1 => span.run(kernel),
            t => pool.install(|| parallel::run(span, leaf(t), kernel)),
        },
    }
    Ok(())
}

/// The square root `exec` computes (its numerics, path and
/// [`DivSqrt`]), over `x` in place: the exact operation the kernel applies
/// to `square_avg + eps` and `acc_delta + eps`. For verifying each square
/// root: the emulated oneMKL ones against libtorch, the estimated one
/// against `vsqrtps` ([`guide::numerics`](crate::guide::numerics)).
/// Threads play no part.
///
/// ```
/// use adadelta::kernel::{sqrt, Executor, Isa};
/// let mut x = [4.0_f32, 2.0, 0.0, -1.0];
/// sqrt(&Executor { isa: Some(Isa::Scalar), ..Executor::default() }, &mut x)?;
/// assert_eq!(&x[..3], &[2.0, 2f32.sqrt(), 0.0]);
/// assert!(x[3].is_nan());
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn sqrt<E: Element>(exec: &Executor, x: &mut [E]) -> Result<(), Error> {
    exec.kernel::<E>()?.roots(x);
    Ok(())
}

/// The division `exec` computes, `a[i] / b[i]` into `a[i]`: the exact
/// operation the kernel applies to its two square roots. Correctly rounded
/// in every numerics and for every [`DivSqrt`]; for verifying that.
/// [`Error::LengthMismatch`] (with `b`'s length as `grad`'s) if the lengths
/// differ.
///
/// ```
/// use adadelta::kernel::{div, Executor};
/// let mut a = [1.0_f32, 3.0, -0.0];
/// div(&Executor::default(), &mut a, &[3.0, 1.5, 2.0])?;
/// assert_eq!(a, [1.0 / 3.0, 2.0, -0.0]);
/// # Ok::<(), adadelta::Error>(())
/// ```
pub fn div<E: Element>(exec: &Executor, a: &mut [E], b: &[E]) -> Result<(), Error> {
    check_lengths(a, b, a, a)?;
    exec.kernel::<E>()?.quotients(a, b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hyperparams;

    #[test]
    fn length_mismatch_writes_nothing() {
        let c = Coefficients::new(&Hyperparams::default()).unwrap();
        let (mut p, mut v, mut u) = (vec![1.0_f32; 3], vec![0.5_f32; 3], vec![0.25_f32; 2]);
        let err = step(&c, &mut p, &[1.0; 3], &mut v, &mut u).unwrap_err();
        assert_eq!(
            err,
            Error::LengthMismatch {
                param: 3,
                grad: 3,
                square_avg: 3,
                acc_delta: 2
            }
        );
        assert_eq!((p, v, u), (vec![1.0; 3], vec![0.5; 3], vec![0.25; 2]));
    }

    #[test]
    fn rho_one_keeps_state_and_steps_by_lr_times_grad() {
        // rho = 1: 1 - rho = 0 so both averages stay 0, and with any eps > 0
        // d = sqrt(eps)/sqrt(eps) * g = g exactly (x/x = 1 and 1*g = g exactly).
        let c = Coefficients::new(&Hyperparams {
            rho: 1.0,
            lr: 0.5,
            ..Default::default()
        })
        .unwrap();
        let (mut p, mut v, mut u) = (vec![1.0_f32, -3.0], vec![0.0; 2], vec![0.0; 2]);
        step(&c, &mut p, &[2.0, -0.25], &mut v, &mut u).unwrap();
        assert_eq!((p, v, u), (vec![0.0, -2.875], vec![0.0; 2], vec![0.0; 2]));
    }

    /// Many jobs of awkward lengths split across a pool with a tiny grain:
    /// every element is updated exactly once (the split neither drops nor
    /// repeats an element), and the result equals the single-thread run.
    #[test]
    fn split_covers_every_element_once() {
        let c = Coefficients::new(&Hyperparams {
            rho: 0.5,
            ..Default::default()
        })
        .unwrap();
        // With rho = 0.5 and zero state, one step sets v = (0.5 g) g; a
        // second update of the same element would give 0.75 g g.
        let sizes = [0usize, 1, 15, 16, 17, 33, 100, 0, 257, 1000, 3];
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap(),
        );
        let mut ps: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        let gs: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| 1.0 + i as f32).collect())
            .collect();
        let mut vs: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        let mut us: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
        for grain in [1, 5, 16, 40, 300] {
            for v in vs.iter_mut() {
                v.fill(0.0);
            }
            let mut jobs: Vec<Job> = ps
                .iter_mut()
                .zip(&gs)
                .zip(vs.iter_mut())
                .zip(us.iter_mut())
                .map(|(((p, g), v), u)| Job {
                    coeffs: &c,
                    param: p,
                    grad: g,
                    square_avg: v,
                    acc_delta: u,
                })
                .collect();
            let exec = Executor {
                threads: Threads::Pool(pool.clone()),
                grain,
                ..Executor::default()
            };
            run(&mut jobs, &exec).unwrap();
            drop(jobs);
            for (v, g) in vs.iter().zip(&gs) {
                let want: Vec<f32> = g.iter().map(|g| (0.5 * g) * g).collect();
                assert_eq!(v, &want, "grain {grain}");
            }
        }
    }
}
