//! From an instruction set and a square root to a compiled loop
//! ([`Kernel`]): every pairing is a monomorphised [`Sweep`] over an
//! instruction-set proof and a recipe, and the trait bounds of
//! [`super::recipe`] let the compiler check each one. Built once per call to
//! `run` (a few comparisons, no allocation: the pairs are zero-sized).

use super::cpu::{Cpu, LibtorchSqrt};
use super::isa::Isa;
use super::job::Piece;
#[cfg(target_arch = "x86_64")]
use super::lanes::MklLanes;
use super::lanes::{Lanes, Scalar};
#[cfg(target_arch = "aarch64")]
use super::neon::Neon;
#[cfg(target_arch = "x86_64")]
use super::recipe::{Exha, L9ha, Z0ha};
use super::recipe::{Ieee, Root};
use super::update::{Roots, Sweep};
#[cfg(target_arch = "x86_64")]
use super::x86::{Avx2, Avx512, Avx512F};
use crate::Error;

/// A loop over pieces and its square root alone, for one pairing.
trait Loop: Sync {
    fn run(&self, piece: Piece<'_>);
    fn roots(&self, x: &mut [f32]);
}

/// An instruction-set proof and a square-root recipe.
struct Pair<L, R>(L, R);

impl<L: Lanes<f32>, R: Root<f32, L>> Loop for Pair<L, R> {
    fn run(&self, piece: Piece<'_>) {
        self.0.vectorize(Sweep {
            root: self.1,
            piece,
        })
    }

    fn roots(&self, x: &mut [f32]) {
        self.0.vectorize(Roots { root: self.1, x })
    }
}

/// A loop this CPU can run: only [`Kernel::new`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Kernel(&'static dyn Loop);

impl Kernel {
    /// The loop on `isa` with oneMKL's square root `mkl` (`None`: the
    /// correctly rounded one), after checking that this CPU can run both.
    pub fn new(isa: Isa, mkl: Option<LibtorchSqrt>) -> Result<Kernel, Error> {
        let isa = isa.available()?;
        if let Some(k) = mkl.filter(|k| !k.is_supported()) {
            return Err(Error::CannotReproduceLibtorch(format!(
                "this CPU cannot compute {}",
                k.mkl_kernel()
            )));
        }
        pick(isa, mkl, Cpu::this())
    }

    fn of<L: Lanes<f32>, R: Root<f32, L>>(l: L, r: R) -> Kernel {
        const { assert!(std::mem::size_of::<Pair<L, R>>() == 0) };
        // A zero-sized value: leaking it allocates nothing.
        Kernel(Box::leak(Box::new(Pair(l, r))))
    }

    /// Runs the loop over one piece.
    #[inline]
    pub fn run(self, piece: Piece<'_>) {
        self.0.run(piece)
    }

    /// The square root alone over `x`, in place.
    pub fn roots(self, x: &mut [f32]) {
        self.0.roots(x)
    }
}

/// "The `isa` path is not available here", for the pairings a CPU's checked
/// features still cannot make.
fn unavailable(isa: Isa, why: &str) -> Error {
    Error::KernelUnavailable(format!("the {} path {why}", isa.name()))
}

/// Every pairing on x86-64: each instruction set with the correctly rounded
/// square root and with each oneMKL recipe it can compute.
#[cfg(target_arch = "x86_64")]
fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, cpu: &Cpu) -> Result<Kernel, Error> {
    let absent = || unavailable(isa, "needs features this CPU lacks");
    match isa {
        Isa::Scalar => with_mkl(Scalar, mkl, || {
            Avx512F::new(cpu)
                .map(|t| Kernel::of(Scalar, Z0ha(t)))
                .ok_or_else(|| {
                    unavailable(isa, "computes Z0HA with vrsqrt14ss, which needs AVX-512F")
                })
        }),
        Isa::Avx2 => with_mkl(Avx2::<false>::new(cpu).ok_or_else(absent)?, mkl, || {
            Avx2::<true>::new(cpu)
                .map(|a| Kernel::of(a, Z0ha(a)))
                .ok_or_else(|| {
                    unavailable(
                        isa,
                        "computes Z0HA with vrsqrt14ps ymm, which needs AVX-512VL",
                    )
                })
        }),
        Isa::Avx512 => {
            let a = Avx512::new(cpu).ok_or_else(absent)?;
            with_mkl(a, mkl, || Ok(Kernel::of(a, Z0ha(a))))
        }
        Isa::Neon => Err(absent()),
    }
}

/// The loop on `l` for `mkl`; Z0HA, which needs `vrsqrt14ps` at the width of
/// `l`, from `z0ha`.
#[cfg(target_arch = "x86_64")]
fn with_mkl<L: MklLanes>(
    l: L,
    mkl: Option<LibtorchSqrt>,
    z0ha: impl FnOnce() -> Result<Kernel, Error>,
) -> Result<Kernel, Error> {
    match mkl {
        None => Ok(Kernel::of(l, Ieee)),
        Some(LibtorchSqrt::MklExHa) => Ok(Kernel::of(l, Exha::default())),
        Some(LibtorchSqrt::MklL9Ha) => Ok(Kernel::of(l, L9ha::default())),
        Some(LibtorchSqrt::MklZ0Ha) => z0ha(),
    }
}

/// Every pairing elsewhere: the correctly rounded square root only (no
/// oneMKL recipe is computable off x86-64, which `Kernel::new` checked).
#[cfg(not(target_arch = "x86_64"))]
fn pick(isa: Isa, mkl: Option<LibtorchSqrt>, cpu: &Cpu) -> Result<Kernel, Error> {
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
