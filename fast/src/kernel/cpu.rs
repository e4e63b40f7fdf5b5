//! The facts about this machine's CPU that everything else in the kernel
//! reads: its vendor and features ([`Cpu`]), and which oneMKL square root
//! libtorch 2.13 runs on it ([`LibtorchSqrt`], [`detect_from`]). A leaf: it
//! imports nothing from the rest of the kernel.
//!
//! The oneMKL kernels are those libtorch's `torch.sqrt` runs on x86-64
//! (`vmsSqrt(.., VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE)`); how each is
//! computed is in [`super::recipe`], and
//! [`guide::numerics`](crate::guide::numerics) ("The two numerics of `fast`")
//! has their derivation from torch 2.13.0's `libtorch_cpu.so` (oneMKL 2024.2).

use std::sync::OnceLock;

use crate::Error;

/// The oneMKL VML single-precision square-root kernel that libtorch 2.13's
/// `torch.sqrt` runs on a CPU, which [`Numerics::ReproduceLibtorch`]
/// reproduces bit for bit.
///
/// Each is an approximation instruction refined in f32; none is correctly
/// rounded, and each is reproduced with the same hardware approximation
/// instruction that oneMKL itself executes, so a reproduction is exact on the
/// machine it runs on by construction (and verified exhaustively on this
/// project's machine, see [`guide::numerics`](crate::guide::numerics)).
///
/// ```
/// use adadelta::kernel::LibtorchSqrt;
/// // What libtorch runs here (or why it cannot be reproduced):
/// match LibtorchSqrt::detect() {
///     Ok(k) => println!("libtorch's sqrt here is oneMKL's {}", k.mkl_kernel()),
///     Err(e) => println!("{e}"),
/// }
/// assert_eq!(LibtorchSqrt::MklExHa.mkl_kernel(), "mkl_vml_kernel_sSqrt_EXHAynn");
/// ```
///
/// [`Numerics::ReproduceLibtorch`]: super::Numerics::ReproduceLibtorch
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LibtorchSqrt {
    /// `mkl_vml_kernel_sSqrt_EXHAynn`, run on every non-Intel x86-64 CPU
    /// (measured on AMD Zen 5 with AVX-512): `rsqrtps` refined by
    /// multiplies and adds, each rounded (no FMA); IEEE `sqrt` for inputs
    /// that are not positive normals below `0x7f7ff000`.
    MklExHa,
    /// `mkl_vml_kernel_sSqrt_Z0HAynn`, Intel CPUs with AVX-512
    /// (F, CD, BW, DQ, VL): `vrsqrt14ps` plus one FMA Newton step, with a
    /// scaled variant for tiny inputs; IEEE for ±0, ±inf and negatives.
    /// Needs AVX-512F here.
    MklZ0Ha,
    /// `mkl_vml_kernel_sSqrt_L9HAynn`, Intel CPUs with AVX2 and FMA but not
    /// AVX-512: `rsqrtps` refined with FMAs (correctly rounded in practice
    /// except for normal inputs below about 2^-106); IEEE for inputs that are
    /// not positive normals.
    MklL9Ha,
}

impl LibtorchSqrt {
    /// Every kernel.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::LibtorchSqrt::ALL.len(), 3);
    /// ```
    pub const ALL: [LibtorchSqrt; 3] = [
        LibtorchSqrt::MklExHa,
        LibtorchSqrt::MklZ0Ha,
        LibtorchSqrt::MklL9Ha,
    ];

    /// oneMKL's symbol for the kernel.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::LibtorchSqrt::MklZ0Ha.mkl_kernel(), "mkl_vml_kernel_sSqrt_Z0HAynn");
    /// ```
    pub fn mkl_kernel(self) -> &'static str {
        match self {
            LibtorchSqrt::MklExHa => "mkl_vml_kernel_sSqrt_EXHAynn",
            LibtorchSqrt::MklZ0Ha => "mkl_vml_kernel_sSqrt_Z0HAynn",
            LibtorchSqrt::MklL9Ha => "mkl_vml_kernel_sSqrt_L9HAynn",
        }
    }

    /// The short name `ADADELTA_LIBTORCH_SQRT` accepts: `exha`, `z0ha`, `l9ha`.
    ///
    /// ```
    /// use adadelta::kernel::LibtorchSqrt;
    /// assert_eq!(LibtorchSqrt::from_name("z0ha"), Some(LibtorchSqrt::MklZ0Ha));
    /// assert_eq!(LibtorchSqrt::MklL9Ha.name(), "l9ha");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            LibtorchSqrt::MklExHa => "exha",
            LibtorchSqrt::MklZ0Ha => "z0ha",
            LibtorchSqrt::MklL9Ha => "l9ha",
        }
    }

    /// Parses [`name`](Self::name) (ASCII case-insensitive).
    ///
    /// ```
    /// use adadelta::kernel::LibtorchSqrt;
    /// assert_eq!(LibtorchSqrt::from_name("EXHA"), Some(LibtorchSqrt::MklExHa));
    /// assert_eq!(LibtorchSqrt::from_name("ieee"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<LibtorchSqrt> {
        by_name(LibtorchSqrt::ALL, LibtorchSqrt::name, name)
    }

    /// Whether this CPU has the approximation instruction the kernel is
    /// built on (`rsqrtps` for EXHA and L9HA, any x86-64; `vrsqrt14ps` for
    /// Z0HA, AVX-512F), i.e. whether this crate can compute it here.
    ///
    /// ```
    /// # #[cfg(target_arch = "x86_64")]
    /// assert!(adadelta::kernel::LibtorchSqrt::MklExHa.is_supported());
    /// ```
    pub fn is_supported(self) -> bool {
        self.computable_on(Cpu::this())
    }

    /// Whether a CPU with these facts has the kernel's approximation
    /// instruction (the rule of [`is_supported`](Self::is_supported)).
    fn computable_on(self, cpu: &Cpu) -> bool {
        match self {
            LibtorchSqrt::MklExHa | LibtorchSqrt::MklL9Ha => cpu.x86_64,
            LibtorchSqrt::MklZ0Ha => cpu.avx512f,
        }
    }

    /// Which kernel libtorch 2.13's `torch.sqrt` (oneMKL 2024.2) runs on this
    /// machine, or why it cannot be reproduced. Computed once per process.
    ///
    /// The rule ([`guide::numerics`](crate::guide::numerics)):
    ///
    /// 1. `ADADELTA_LIBTORCH_SQRT=exha|z0ha|l9ha` overrides everything below
    ///    (for reproducing another machine kind's libtorch, or a oneMKL run
    ///    whose dispatch was changed); the kernel must be
    ///    [supported](Self::is_supported).
    /// 2. Not x86-64: cannot reproduce (libtorch does not use oneMKL there).
    /// 3. ATen must run its AVX2 or AVX-512 kernels, whose multiply-adds GCC
    ///    contracted into FMAs: a CPU without AVX2 and FMA, or
    ///    `ATEN_CPU_CAPABILITY=default`, means unfused kernels, which this
    ///    crate does not model.
    /// 4. A CPU whose vendor is not `GenuineIntel`: EXHA (oneMKL does not
    ///    dispatch to its AVX2/AVX-512 kernels on other vendors, whatever
    ///    `MKL_ENABLE_INSTRUCTIONS` says).
    /// 5. Intel: `MKL_CBWR` other than `AUTO` is not modelled;
    ///    `MKL_ENABLE_INSTRUCTIONS` caps the choice (`AVX512*` or `AVX2*`;
    ///    anything lower is not modelled); then Z0HA with AVX-512
    ///    F/CD/BW/DQ/VL, else L9HA.
    ///
    /// ```
    /// use adadelta::kernel::LibtorchSqrt;
    /// match LibtorchSqrt::detect() {
    ///     // A detected kernel is always one this CPU can compute.
    ///     Ok(k) => assert!(k.is_supported()),
    ///     Err(e) => assert!(matches!(e, adadelta::Error::CannotReproduceLibtorch(_))),
    /// }
    /// ```
    pub fn detect() -> Result<LibtorchSqrt, Error> {
        static DETECTED: OnceLock<Result<LibtorchSqrt, Error>> = OnceLock::new();
        DETECTED
            .get_or_init(|| {
                detect_from(|name| std::env::var(name).ok(), Cpu::this())
                    .map_err(Error::CannotReproduceLibtorch)
            })
            .clone()
    }
}

/// What this crate needs to know about a CPU: its vendor and the features
/// that the kernel's instruction sets and oneMKL's dispatch depend on.
/// [`Cpu::this`] reads them once; the tests build others to walk every
/// branch of the rules that read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cpu {
    /// An x86-64 CPU (`rsqrtps`, which EXHA and L9HA are built on, is in
    /// its baseline).
    pub x86_64: bool,
    /// `cpuid` leaf 0 says `GenuineIntel` (oneMKL dispatches on it).
    pub intel: bool,
    /// AVX2, FMA and F16C (the float16 conversions, on every AVX2 CPU
    /// made): the kernel's `avx2` path, and ATen's AVX2 level.
    pub avx2_fma: bool,
    /// AVX-512F: the kernel's `avx512` path (with AVX2 and FMA), and
    /// `vrsqrt14ps`, which Z0HA is built on.
    pub avx512f: bool,
    /// AVX-512VL: `vrsqrt14ps` on 8 lanes, for Z0HA on the `avx2` path.
    pub avx512vl: bool,
    /// AVX-512 F, CD, BW, DQ and VL: oneMKL's and ATen's AVX-512 level.
    pub avx512_core: bool,
    /// An aarch64 CPU with Advanced SIMD (NEON): the kernel's `neon` path.
    pub neon: bool,
}

impl Cpu {
    /// This machine's CPU, read once per process.
    pub fn this() -> &'static Cpu {
        static THIS: OnceLock<Cpu> = OnceLock::new();
        THIS.get_or_init(Cpu::read)
    }

    #[cfg(target_arch = "x86_64")]
    fn read() -> Cpu {
        use std::arch::is_x86_feature_detected as has;
        Cpu {
            x86_64: true,
            intel: vendor() == *b"GenuineIntel",
            avx2_fma: has!("avx2") && has!("fma") && has!("f16c"),
            avx512f: has!("avx512f"),
            avx512vl: has!("avx512vl"),
            avx512_core: has!("avx512f")
                && has!("avx512cd")
                && has!("avx512bw")
                && has!("avx512dq")
                && has!("avx512vl"),
            neon: false,
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn read() -> Cpu {
        Cpu {
            neon: std::arch::is_aarch64_feature_detected!("neon"),
            ..Cpu::default()
        }
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn read() -> Cpu {
        Cpu::default()
    }
}

#[cfg(test)]
impl Cpu {
    /// An x86-64 CPU with AVX2 and FMA, and AVX-512F and AVX-512VL as given:
    /// the CPUs the selection rules are tested on.
    pub(crate) fn x86_with(avx512f: bool, avx512vl: bool) -> Cpu {
        Cpu {
            x86_64: true,
            avx2_fma: true,
            avx512f,
            avx512vl,
            ..Cpu::default()
        }
    }
}

/// The one of `all` whose `name` is `s`, ignoring ASCII case and surrounding
/// white space: how the environment variables naming a choice are read.
pub(crate) fn by_name<T: Copy, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    s: &str,
) -> Option<T> {
    all.into_iter()
        .find(|&t| name(t).eq_ignore_ascii_case(s.trim()))
}

/// The choice an environment variable `var` with value `value` names, read
/// with [`by_name`]: `Ok(None)` where it is unset, empty or `auto` (the
/// caller's rule decides), else the choice or "`VAR=value`: expected
/// `a, b, c` or auto".
pub(crate) fn from_env<T: Copy, const N: usize>(
    var: &str,
    value: Option<&str>,
    all: [T; N],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("auto") => Ok(None),
        Some(v) => by_name(all, name, v).map(Some).ok_or_else(|| {
            let known = all.map(name).join(", ");
            format!("{var}={v}: expected {known} or auto")
        }),
    }
}

/// The CPU vendor string from `cpuid` leaf 0 (`GenuineIntel`, `AuthenticAMD`, ...).
#[cfg(target_arch = "x86_64")]
fn vendor() -> [u8; 12] {
    // `cpuid` exists on every x86-64 CPU; the intrinsic is safe.
    let r = std::arch::x86_64::__cpuid(0);
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// The detection rule of [`LibtorchSqrt::detect`], over an environment and a
/// CPU description (so that the tests can walk every branch).
pub(crate) fn detect_from(
    env: impl Fn(&str) -> Option<String>,
    cpu: &Cpu,
) -> Result<LibtorchSqrt, String> {
    if let Some(v) = env("ADADELTA_LIBTORCH_SQRT").filter(|v| !v.trim().is_empty()) {
        return match LibtorchSqrt::from_name(&v) {
            Some(k) if k.computable_on(cpu) => Ok(k),
            Some(k) => Err(format!(
                "ADADELTA_LIBTORCH_SQRT={v}: this CPU cannot compute {} (it needs AVX-512F)",
                k.mkl_kernel()
            )),
            None => Err(format!(
                "ADADELTA_LIBTORCH_SQRT={v}: expected one of exha, z0ha, l9ha"
            )),
        };
    }
    if !cpu.x86_64 {
        return Err("libtorch's f32 sqrt is modelled on x86-64 only (oneMKL VML)".into());
    }
    if env("ATEN_CPU_CAPABILITY").is_some_and(|v| v.trim().eq_ignore_ascii_case("default")) {
        return Err(
            "ATEN_CPU_CAPABILITY=default: ATen's unfused DEFAULT kernels are not modelled \
                    (only its AVX2/AVX-512 kernels, whose multiply-adds are fused)"
                .into(),
        );
    }
    if !cpu.avx2_fma {
        return Err(
            "this CPU lacks AVX2+FMA, so ATen runs its unfused DEFAULT kernels, \
                    which are not modelled"
                .into(),
        );
    }
    if !cpu.intel {
        return Ok(LibtorchSqrt::MklExHa);
    }
    if let Some(v) = env("MKL_CBWR").filter(|v| !v.trim().eq_ignore_ascii_case("AUTO")) {
        return Err(format!(
            "MKL_CBWR={v}: oneMKL's conditional-numerical-reproducibility kernels are not modelled"
        ));
    }
    let cap = env("MKL_ENABLE_INSTRUCTIONS").map(|v| v.trim().to_ascii_uppercase());
    let allow512 = cap.as_deref().is_none_or(|c| c.starts_with("AVX512"));
    let allow2 = cap
        .as_deref()
        .is_none_or(|c| c.starts_with("AVX512") || c.starts_with("AVX2"));
    if allow512 && cpu.avx512_core {
        Ok(LibtorchSqrt::MklZ0Ha)
    } else if allow2 {
        Ok(LibtorchSqrt::MklL9Ha)
    } else {
        Err(format!(
            "MKL_ENABLE_INSTRUCTIONS={}: oneMKL's kernels below AVX2 are not modelled",
            cap.unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn detection_rule() {
        let amd = Cpu {
            x86_64: true,
            intel: false,
            avx2_fma: true,
            avx512f: true,
            avx512vl: true,
            avx512_core: true,
            neon: false,
        };
        let intel512 = Cpu {
            intel: true,
            ..amd.clone()
        };
        let intel2 = Cpu {
            avx512_core: false,
            avx512f: false,
            avx512vl: false,
            ..intel512.clone()
        };
        use LibtorchSqrt::*;
        assert_eq!(detect_from(env(&[]), &amd), Ok(MklExHa));
        assert_eq!(
            detect_from(env(&[("MKL_ENABLE_INSTRUCTIONS", "AVX2")]), &amd),
            Ok(MklExHa)
        );
        assert_eq!(detect_from(env(&[]), &intel512), Ok(MklZ0Ha));
        assert_eq!(detect_from(env(&[]), &intel2), Ok(MklL9Ha));
        assert_eq!(
            detect_from(env(&[("MKL_ENABLE_INSTRUCTIONS", "avx2")]), &intel512),
            Ok(MklL9Ha)
        );
        assert!(detect_from(env(&[("MKL_ENABLE_INSTRUCTIONS", "SSE4_2")]), &intel512).is_err());
        assert!(detect_from(env(&[("MKL_CBWR", "COMPATIBLE")]), &intel512).is_err());
        assert_eq!(
            detect_from(env(&[("MKL_CBWR", "AUTO")]), &intel512),
            Ok(MklZ0Ha)
        );
        assert!(detect_from(env(&[("ATEN_CPU_CAPABILITY", "default")]), &amd).is_err());
        assert!(detect_from(
            env(&[]),
            &Cpu {
                avx2_fma: false,
                ..amd.clone()
            }
        )
        .is_err());
        assert!(detect_from(env(&[]), &Cpu::default()).is_err());
        assert_eq!(
            detect_from(env(&[("ADADELTA_LIBTORCH_SQRT", "Z0HA")]), &amd),
            Ok(MklZ0Ha)
        );
        assert!(detect_from(env(&[("ADADELTA_LIBTORCH_SQRT", "z0ha")]), &intel2).is_err());
        assert!(detect_from(env(&[("ADADELTA_LIBTORCH_SQRT", "fast")]), &amd).is_err());
    }
}
