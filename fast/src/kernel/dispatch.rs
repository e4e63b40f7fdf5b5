//! From an instruction set and a square root to a compiled loop
//! ([`Kernel`]): every pairing is a monomorphised [`Sweep`] over an
//! instruction-set proof and a recipe, and the trait bounds of
//! [`super::recipe`] let the compiler check each one. Built once per call to
//! `run` (a few comparisons, no allocation: the pairs are zero-sized).

use super::aten::{Aten, Native, Screened, Unroll, ViaF32};
use super::cpu::{Cpu, LibtorchSqrt};
use super::div_sqrt::DivSqrt;
use super::element::Element;
use super::isa::Isa;
use super::job::Piece;
use super::lanes::{Half16, HalfLanes, HalfLanes64, Lanes, Scalar, Simd, Widen};
#[cfg(target_arch = "x86_64")]
use super::lanes::{MklLanes, MklLanes64, NewtonLanes};
#[cfg(target_arch = "aarch64")]
use super::neon::Neon;
#[cfg(target_arch = "x86_64")]
use super::newton::Newton;
#[cfg(target_arch = "x86_64")]
use super::recipe::{Exha, L9ha, Z0ha};
use super::recipe::{Ieee, Root};
use super::update::{Quotients, Roots, Sweep};
#[cfg(target_arch = "x86_64")]
use super::x86::{Avx2, Avx512, Avx512F};
use crate::Error;

/// oneMKL's square root to compute, `None` for the correctly rounded one.
type Mkl = Option<LibtorchSqrt>;
/// A loop for elements `E`, or why this CPU cannot run it.
type Picked<E> = Result<Kernel<E>, Error>;

/// A loop over pieces of `E`, and its square root and division alone, for
/// one pairing.
trait Loop<E>: Sync {
    fn run(&self, piece: Piece<'_, E>, torch_threads: usize);
    fn roots(&self, x: &mut [E]);
    fn quotients(&self, a: &mut [E], b: &[E]);
}

impl<E: Element, A: Aten<E>> Loop<E> for A {
    fn run(&self, piece: Piece<'_, E>, torch_threads: usize) {
        self.isa().vectorize(Sweep {
            aten: *self,
            piece,
            torch_threads,
        })
    }

    fn roots(&self, x: &mut [E]) {
        self.isa().vectorize(Roots { aten: *self, x })
    }

    fn quotients(&self, a: &mut [E], b: &[E]) {
        self.isa().vectorize(Quotients { aten: *self, a, b })
    }
}

/// A loop over elements `E` this CPU can run: only [`Kernel::new`] makes
/// one. (`pub` in this private module so that the sealed
/// [`Element`](super::element::Element) can name it.)
pub struct Kernel<E: 'static> {
    lp: &'static dyn Loop<E>,
    /// The intra-op thread count of the PyTorch being reproduced
    /// ([`super::Executor::libtorch_threads`]).
    torch_threads: usize,
}

impl<E> Clone for Kernel<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Kernel<E> {}

impl<E: Element> Kernel<E> {
    /// The loop on `isa` with oneMKL's square root `mkl` (`None`: the
    /// correctly rounded one) and the division and square roots `ds`, after
    /// checking that this CPU can run all three.
    pub fn new(isa: Isa, mkl: Option<LibtorchSqrt>, ds: DivSqrt) -> Result<Kernel<E>, Error> {
        let isa = isa.available()?;
        let ds = ds.available(isa)?;
        if let Some(k) = mkl.filter(|k| !k.is_supported()) {
            return Err(Error::CannotReproduceLibtorch(format!(
                "this CPU cannot compute {}",
                k.mkl_kernel()
            )));
        }
        E::pick(isa, mkl, ds)
    }

    /// The loop of the ATen ops `a`.
    fn aten<A: Aten<E>>(a: A) -> Kernel<E> {
        const { assert!(std::mem::size_of::<A>() == 0) };
        // A zero-sized value: leaking it allocates nothing.
        Kernel {
            lp: Box::leak(Box::new(a)),
            torch_threads: 1,
        }
    }

    /// The same loop reproducing a PyTorch with `n` intra-op threads.
    pub(crate) fn with_torch_threads(self, n: usize) -> Kernel<E> {
        Kernel {
            torch_threads: n.max(1),
            ..self
        }
    }

    /// The loop of `f32` or `f64` ops on the lanes `l` with the square root
    /// `r` ([`Native`]).
    fn of<L: Lanes<E>, R: Root<E, L>>(l: L, r: R) -> Kernel<E>
    where
        E: Element<Opmath = E>,
    {
        Self::aten(Native(l, r))
    }

    /// Runs the loop over one piece.
    #[inline]
    pub(crate) fn run(self, piece: Piece<'_, E>) {
        self.lp.run(piece, self.torch_threads)
    }

    /// The square root alone over `x`, in place.
    pub(crate) fn roots(self, x: &mut [E]) {
        self.lp.roots(x)
    }

    /// The division alone: `a[i] / b[i]` into `a[i]` (same lengths).
    pub(crate) fn quotients(self, a: &mut [E], b: &[E]) {
        self.lp.quotients(a, b)
    }
}

/// "The `isa` path is not available here", for the pairings a CPU's checked
/// features still cannot make.
fn unavailable(isa: Isa, why: &str) -> Error {
    Error::KernelUnavailable(format!("the {} path {why}", isa.name()))
}

/// Every pairing on x86-64: each instruction set with the correctly rounded
/// square root and with each oneMKL recipe it can compute, and on the
/// AVX-512 paths each with the estimated division and square roots.
#[cfg(target_arch = "x86_64")]
pub(crate) fn pick_f32(isa: Isa, mkl: Mkl, ds: DivSqrt, cpu: &Cpu) -> Picked<f32> {
    let absent = || unavailable(isa, "needs features this CPU lacks");
    let est = Estimates {
        // The reproduce-libtorch numerics keep oneMKL's square root.
        sqrt: mkl.is_none() && ds.sqrt_estimated(),
        div: ds.div_estimated(),
    };
    match isa {
        // `DivSqrt::available` admits only the hardware's here.
        Isa::Scalar => with_mkl(Scalar, mkl, Plain, || {
            Avx512F::new(cpu)
                .map(|t| Kernel::of(Scalar, Z0ha(t)))
                .ok_or_else(|| {
                    unavailable(isa, "computes Z0HA with vrsqrt14ss, which needs AVX-512F")
                })
        }),
        Isa::Avx2 if ds == DivSqrt::Hardware => with_mkl(
            Avx2::<false>::new(cpu).ok_or_else(absent)?,
            mkl,
            Plain,
            || {
                Avx2::<true>::new(cpu)
                    .map(|a| Kernel::of(a, Z0ha(a)))
                    .ok_or_else(|| {
                        unavailable(
                            isa,
                            "computes Z0HA with vrsqrt14ps ymm, which needs AVX-512VL",
                        )
                    })
            },
        ),
        Isa::Avx2 => {
            let a = Avx2::<true>::new(cpu).ok_or_else(absent)?;
            with_mkl(a, mkl, est, || Ok(est.finish(a, Z0ha(a))))
        }
        Isa::Avx512 => {
            let a = Avx512::new(cpu).ok_or_else(absent)?;
            with_mkl(a, mkl, est, || Ok(est.finish(a, Z0ha(a))))
        }
        Isa::Neon => Err(absent()),
    }
}

/// The last step of a pairing: a recipe on lanes to a [`Kernel`].
#[cfg(target_arch = "x86_64")]
trait Finish<L: Lanes<f32>>: Copy {
    fn finish<R: Root<f32, L>>(self, l: L, r: R) -> Kernel<f32>;
}

/// The recipe as it is: the hardware's division and square roots.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Plain;

#[cfg(target_arch = "x86_64")]
impl<L: Lanes<f32>> Finish<L> for Plain {
    fn finish<R: Root<f32, L>>(self, l: L, r: R) -> Kernel<f32> {
        Kernel::of(l, r)
    }
}

/// The recipe with the square roots, the division, both or neither from
/// AVX-512's estimates ([`Newton`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Estimates {
    sqrt: bool,
    div: bool,
}

#[cfg(target_arch = "x86_64")]
impl<L: NewtonLanes> Finish<L> for Estimates {
    fn finish<R: Root<f32, L>>(self, l: L, r: R) -> Kernel<f32> {
        match (self.sqrt, self.div) {
            (false, false) => Kernel::of(l, r),
            (true, false) => Kernel::of(l, Newton::<R, true, false>(r)),
            (false, true) => Kernel::of(l, Newton::<R, false, true>(r)),
            (true, true) => Kernel::of(l, Newton::<R, true, true>(r)),
        }
    }
}

/// The loop on `l` for `mkl`, finished by `f`; Z0HA, which needs
/// `vrsqrt14ps` at the width of `l`, from `z0ha`.
#[cfg(target_arch = "x86_64")]
fn with_mkl<L: MklLanes>(
    l: L,
    mkl: Option<LibtorchSqrt>,
    f: impl Finish<L>,
    z0ha: impl FnOnce() -> Result<Kernel<f32>, Error>,
) -> Result<Kernel<f32>, Error> {
    match mkl {
        None => Ok(f.finish(l, Ieee)),
        Some(LibtorchSqrt::MklExHa) => Ok(f.finish(l, Exha::default())),
        Some(LibtorchSqrt::MklL9Ha) => Ok(f.finish(l, L9ha::default())),
        Some(LibtorchSqrt::MklZ0Ha) => z0ha(),
    }
}

/// Every pairing elsewhere: the correctly rounded square root only (no
/// oneMKL recipe is computable off x86-64, which `Kernel::new` checked).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn pick_f32(isa: Isa, mkl: Mkl, ds: DivSqrt, cpu: &Cpu) -> Picked<f32> {
    // `DivSqrt::available` admits only the hardware's off x86-64.
    debug_assert_eq!(ds, DivSqrt::Hardware);
    if let Some(k) = mkl {
        return Err(Error::CannotReproduceLibtorch(format!(
            "{} is computable on x86-64 only",
            k.mkl_kernel()
        )));
    }
    match isa {
        Isa::Scalar => Ok(Kernel::of(Scalar, Ieee)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Neon::new(cpu)
            .map(|n| Kernel::of(n, Ieee))
            .ok_or_else(|| unavailable(isa, "needs NEON")),
        _ => {
            let _ = cpu;
            Err(unavailable(isa, "is not built for this architecture"))
        }
    }
}

/// The float64 pairings: every instruction set with the correctly rounded
/// square root (the hardware's `sqrtpd`, `fsqrt`) and, on x86-64, with
/// each of oneMKL's float64 recipes; the hardware's division. AVX-512's
/// estimates ([`DivSqrt`]) are f32 instructions and play no part.
pub(crate) fn pick_f64(isa: Isa, mkl: Mkl, _ds: DivSqrt, cpu: &Cpu) -> Picked<f64> {
    let absent = || unavailable(isa, "needs features this CPU lacks");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Scalar => with_mkl64(Scalar, mkl, || {
            Avx512F::new(cpu)
                .map(|t| Kernel::of(Scalar, Z0ha(t)))
                .ok_or_else(|| {
                    unavailable(isa, "computes Z0HA with vrsqrt14sd, which needs AVX-512F")
                })
        }),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Scalar => with_mkl64(Scalar, mkl),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => with_mkl64(Avx2::<false>::new(cpu).ok_or_else(absent)?, mkl, || {
            Avx2::<true>::new(cpu)
                .map(|a| Kernel::of(a, Z0ha(a)))
                .ok_or_else(|| {
                    unavailable(
                        isa,
                        "computes Z0HA with vrsqrt14pd ymm, which needs AVX-512VL",
                    )
                })
        }),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            let a = Avx512::new(cpu).ok_or_else(absent)?;
            with_mkl64(a, mkl, || Ok(Kernel::of(a, Z0ha(a))))
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => with_mkl64(Neon::new(cpu).ok_or_else(absent)?, mkl),
        _ => {
            let _ = cpu;
            Err(unavailable(isa, "is not built for this architecture"))
        }
    }
}

/// The float64 loop on `l` for `mkl`; Z0HA, which needs `vrsqrt14pd` at
/// the width of `l`, from `z0ha`.
#[cfg(target_arch = "x86_64")]
fn with_mkl64<L: MklLanes64>(
    l: L,
    mkl: Option<LibtorchSqrt>,
    z0ha: impl FnOnce() -> Picked<f64>,
) -> Picked<f64> {
    match mkl {
        None => Ok(Kernel::of(l, Ieee)),
        Some(LibtorchSqrt::MklExHa) => Ok(Kernel::of(l, Exha::default())),
        Some(LibtorchSqrt::MklL9Ha) => Ok(Kernel::of(l, L9ha::default())),
        Some(LibtorchSqrt::MklZ0Ha) => z0ha(),
    }
}

/// The float64 loop on `l`: the correctly rounded square root (no oneMKL
/// recipe is computable off x86-64).
#[cfg(not(target_arch = "x86_64"))]
fn with_mkl64<L: Lanes<f64>>(l: L, mkl: Option<LibtorchSqrt>) -> Result<Kernel<f64>, Error> {
    match mkl {
        None => Ok(Kernel::of(l, Ieee)),
        Some(k) => Err(Error::CannotReproduceLibtorch(format!(
            "{} is computable on x86-64 only",
            k.mkl_kernel()
        ))),
    }
}

/// The bfloat16 and float16 pairings: [`Screened`] for the default
/// numerics, [`ViaF32`] (PyTorch's way) for the reproduce-libtorch ones.
/// ATen's 16-bit square root is `f32`'s, correctly rounded, so no oneMKL
/// recipe plays a part; PyTorch's 16-bit kernels were measured on x86-64
/// only, so elsewhere the reproduce-libtorch numerics are refused.
macro_rules! pick_half {
    ($name:ident, $h:ty) => {
        pub(crate) fn $name(isa: Isa, mkl: Mkl, _ds: DivSqrt, cpu: &Cpu) -> Picked<$h> {
            if mkl.is_some() && !cfg!(target_arch = "x86_64") {
                return Err(Error::CannotReproduceLibtorch(format!(
                    "libtorch's {} kernels are reproduced on x86-64 only",
                    <$h as Element>::DTYPE
                )));
            }
            let absent = || unavailable(isa, "needs features this CPU lacks");
            match isa {
                Isa::Scalar => Ok(half_loop(Scalar, mkl)),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => {
                    let a = Avx2::<false>::new(cpu).ok_or_else(absent)?;
                    Ok(half_loop(a, mkl))
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => {
                    let a = Avx512::new(cpu).ok_or_else(absent)?;
                    Ok(half_loop(a, mkl))
                }
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => {
                    let n = Neon::new(cpu).ok_or_else(absent)?;
                    Ok(half_loop(n, mkl))
                }
                #[allow(unreachable_patterns)]
                _ => Err(unavailable(isa, "is not built for this architecture")),
            }
        }
    };
}
pick_half!(pick_bf16, half::bf16);
pick_half!(pick_f16, half::f16);

/// The 16-bit loop on the lanes `l`: [`ViaF32`] (reproduce-libtorch, `mkl`
/// set) or [`Screened`] (default: in `f32`, an op in doubt recomputed with
/// `RoundOnce` on the same lanes as `f64`).
fn half_loop<H, L>(l: L, mkl: Mkl) -> Kernel<H>
where
    H: Element<Opmath = f32> + Half16,
    L: HalfLanes<H> + HalfLanes64<H> + Widen,
{
    // Several vectors at a time: every op ends in a rounding to the dtype, so
    // one vector's ops form a long dependency chain.
    match mkl {
        Some(_) => Kernel::aten(Unroll::<_, 4>(ViaF32::<L, false>(l))),
        None => Kernel::aten(Unroll::<_, 2>(Screened(l))),
    }
}
