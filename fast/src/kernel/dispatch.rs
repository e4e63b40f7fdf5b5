//! Runtime CPU dispatch: which instruction-set path runs the loop, chosen
//! once per process (`ADADELTA_KERNEL` can force one), and the
//! function-pointer table of every (path, square root) pair.

use std::sync::OnceLock;

use super::sqrt::{id, Sqrt};
use super::{scalar, Piece};
use crate::{Coefficients, Error};

/// An instruction-set path of the kernel. Every path computes the same
/// formula, operation for operation, so every path gives the same bits as
/// every other (NaN results may differ in payload only; see
/// [`guide::numerics`](crate::guide::numerics)).
///
/// ```
/// use adadelta::kernel::Path;
/// assert!(Path::Scalar.is_supported());          // always
/// assert!(Path::best().is_supported());
/// assert_eq!(Path::from_name("AVX512"), Some(Path::Avx512));
/// let here: Vec<Path> = Path::ALL.into_iter().filter(|p| p.is_supported()).collect();
/// assert!(here.contains(&Path::Scalar));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Path {
    /// Portable Rust, one element at a time; exists on every target.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F (with AVX2 + FMA), 16 lanes, masked tails.
    Avx512,
}

impl Path {
    /// Every path, slowest first.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::Path::ALL[0], adadelta::kernel::Path::Scalar);
    /// ```
    pub const ALL: [Path; 3] = [Path::Scalar, Path::Avx2, Path::Avx512];

    /// The name `ADADELTA_KERNEL` accepts: `scalar`, `avx2`, `avx512`.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::Path::Avx2.name(), "avx2");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
        }
    }

    /// Parses [`name`](Self::name) (ASCII case-insensitive).
    ///
    /// ```
    /// use adadelta::kernel::Path;
    /// assert_eq!(Path::from_name(" Scalar "), Some(Path::Scalar));
    /// assert_eq!(Path::from_name("neon"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Path> {
        Path::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU can run the path.
    ///
    /// ```
    /// use adadelta::kernel::Path;
    /// assert!(Path::Scalar.is_supported());
    /// # #[cfg(target_arch = "x86_64")]
    /// assert_eq!(
    ///     Path::Avx2.is_supported(),
    ///     is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    /// );
    /// ```
    pub fn is_supported(self) -> bool {
        match self {
            Path::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => {
                Path::Avx2.is_supported() && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest path this CPU supports.
    ///
    /// ```
    /// assert!(adadelta::kernel::Path::best().is_supported());
    /// ```
    pub fn best() -> Path {
        Path::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_supported())
            .unwrap_or(Path::Scalar)
    }

    /// The path used when none is given: `ADADELTA_KERNEL`
    /// (`scalar`, `avx2`, `avx512`; empty or `auto` means [`best`](Self::best))
    /// if set, else [`best`](Self::best). Read once per process. An unknown
    /// name, or a path this CPU cannot run, is [`Error::KernelUnavailable`]
    /// (never a silent fallback, so that a test forcing a path really runs it).
    ///
    /// ```
    /// let p = adadelta::kernel::Path::selected()?;
    /// assert!(p.is_supported());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn selected() -> Result<Path, Error> {
        static SELECTED: OnceLock<Result<Path, Error>> = OnceLock::new();
        SELECTED
            .get_or_init(|| match std::env::var("ADADELTA_KERNEL") {
                Ok(v) if !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("auto") => {
                    match Path::from_name(&v) {
                        Some(p) if p.is_supported() => Ok(p),
                        Some(p) => Err(Error::KernelUnavailable(format!(
                            "ADADELTA_KERNEL={v}: this CPU does not support the {} path",
                            p.name()
                        ))),
                        None => Err(Error::KernelUnavailable(format!(
                            "ADADELTA_KERNEL={v}: expected scalar, avx2, avx512 or auto"
                        ))),
                    }
                }
                _ => Ok(Path::best()),
            })
            .clone()
    }
}

/// The CPU vendor string from `cpuid` leaf 0 (`GenuineIntel`, `AuthenticAMD`, ...).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) fn cpu_vendor() -> [u8; 12] {
    // SAFETY: `cpuid` exists on every x86-64 CPU. (The intrinsic is a safe
    // function in recent Rust; the block keeps older compilers building.)
    #[allow(unused_unsafe)]
    let r = unsafe { std::arch::x86_64::__cpuid(0) };
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// A loop over one [`Piece`] for one (path, sqrt) pair.
type RawKernel = unsafe fn(&Coefficients, &mut [f32], &[f32], &mut [f32], &mut [f32]);

/// A loop the CPU is known to support: only [`Kernel::new`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Kernel(RawKernel);

impl Kernel {
    /// The loop for `path` computing `sqrt`, after checking that this CPU
    /// can run both.
    pub fn new(path: Path, sqrt: Sqrt) -> Result<Kernel, Error> {
        if !path.is_supported() {
            return Err(Error::KernelUnavailable(format!(
                "this CPU does not support the {} path",
                path.name()
            )));
        }
        if let Sqrt::Libtorch(k) = sqrt {
            if !k.is_supported() {
                return Err(Error::CannotReproduceLibtorch(format!(
                    "this CPU cannot compute {}",
                    k.mkl_kernel()
                )));
            }
        }
        #[cfg(target_arch = "x86_64")]
        if path == Path::Avx2
            && sqrt == Sqrt::Libtorch(super::LibtorchSqrt::MklZ0Ha)
            && !std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Err(Error::KernelUnavailable(
                "the avx2 path computes Z0HA with vrsqrt14ps ymm, which needs AVX-512VL".into(),
            ));
        }
        Ok(Kernel(raw(path, sqrt)))
    }

    /// The square root alone over `x`, with the same path and sqrt as this
    /// kernel (which `Kernel::new` checked).
    #[allow(unsafe_code)]
    pub fn sqrt(self, path: Path, sqrt: Sqrt, x: &mut [f32]) {
        let f = raw_sqrt(path, sqrt);
        // SAFETY: `self` exists, so `Kernel::new(path, sqrt)` checked the CPU
        // features of this (path, sqrt) pair.
        unsafe { f(x) }
    }

    /// Runs the loop over one piece.
    #[allow(unsafe_code)]
    #[inline]
    pub fn run(self, piece: Piece<'_>) {
        // SAFETY: `Kernel::new` checked that the CPU supports the features the
        // loop was compiled for; the loop checks the slice lengths itself.
        unsafe {
            (self.0)(
                piece.coeffs,
                piece.param,
                piece.grad,
                piece.square_avg,
                piece.acc_delta,
            )
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn raw(path: Path, sqrt: Sqrt) -> RawKernel {
    use super::x86;
    match (path, sqrt.id()) {
        (Path::Scalar, id::IEEE) => scalar::slice::<{ id::IEEE }>,
        (Path::Scalar, id::EXHA) => scalar::slice::<{ id::EXHA }>,
        (Path::Scalar, id::Z0HA) => scalar::slice_z0ha,
        (Path::Scalar, _) => scalar::slice::<{ id::L9HA }>,
        (Path::Avx2, id::IEEE) => x86::avx2::<{ id::IEEE }>,
        (Path::Avx2, id::EXHA) => x86::avx2::<{ id::EXHA }>,
        (Path::Avx2, id::Z0HA) => x86::avx2_z0ha,
        (Path::Avx2, _) => x86::avx2::<{ id::L9HA }>,
        (Path::Avx512, id::IEEE) => x86::avx512::<{ id::IEEE }>,
        (Path::Avx512, id::EXHA) => x86::avx512::<{ id::EXHA }>,
        (Path::Avx512, id::Z0HA) => x86::avx512::<{ id::Z0HA }>,
        (Path::Avx512, _) => x86::avx512::<{ id::L9HA }>,
    }
}

/// A square-root-only loop (for verification) for one (path, sqrt) pair.
type RawSqrt = unsafe fn(&mut [f32]);

#[cfg(target_arch = "x86_64")]
fn raw_sqrt(path: Path, sqrt: Sqrt) -> RawSqrt {
    use super::x86;
    match (path, sqrt.id()) {
        (Path::Scalar, id::IEEE) => scalar::sqrt_slice::<{ id::IEEE }>,
        (Path::Scalar, id::EXHA) => scalar::sqrt_slice::<{ id::EXHA }>,
        (Path::Scalar, id::Z0HA) => scalar::sqrt_slice_z0ha,
        (Path::Scalar, _) => scalar::sqrt_slice::<{ id::L9HA }>,
        (Path::Avx2, id::IEEE) => x86::avx2_sqrt::<{ id::IEEE }>,
        (Path::Avx2, id::EXHA) => x86::avx2_sqrt::<{ id::EXHA }>,
        (Path::Avx2, id::Z0HA) => x86::avx2_sqrt_z0ha,
        (Path::Avx2, _) => x86::avx2_sqrt::<{ id::L9HA }>,
        (Path::Avx512, id::IEEE) => x86::avx512_sqrt::<{ id::IEEE }>,
        (Path::Avx512, id::EXHA) => x86::avx512_sqrt::<{ id::EXHA }>,
        (Path::Avx512, id::Z0HA) => x86::avx512_sqrt::<{ id::Z0HA }>,
        (Path::Avx512, _) => x86::avx512_sqrt::<{ id::L9HA }>,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn raw_sqrt(_path: Path, _sqrt: Sqrt) -> RawSqrt {
    scalar::sqrt_slice::<{ id::IEEE }>
}

#[cfg(not(target_arch = "x86_64"))]
fn raw(_path: Path, _sqrt: Sqrt) -> RawKernel {
    // `Kernel::new` only gets here with the scalar path and the IEEE sqrt.
    scalar::slice::<{ id::IEEE }>
}
