//! The f32 square roots the kernel can compute: IEEE (correctly rounded), and
//! the three oneMKL VML kernels that libtorch's `torch.sqrt` runs on x86-64
//! (`vmsSqrt(.., VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE)`), each written
//! down op by op from its disassembly in torch 2.13.0's `libtorch_cpu.so`
//! (oneMKL 2024.2). See [`guide::numerics`](crate::guide::numerics), "The
//! two numerics of `fast`".
//!
//! This file holds the scalar forms (the definition every SIMD form is tested
//! against), which kernel a machine's libtorch runs ([`LibtorchSqrt::detect`]),
//! and the conversion to the internal [`Sqrt`] mode.

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
        LibtorchSqrt::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
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
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                LibtorchSqrt::MklExHa | LibtorchSqrt::MklL9Ha => true,
                LibtorchSqrt::MklZ0Ha => std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
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
                detect_from(|name| std::env::var(name).ok(), &Cpu::this())
                    .map_err(Error::CannotReproduceLibtorch)
            })
            .clone()
    }
}

/// What the detection rule reads about the CPU.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cpu {
    pub x86_64: bool,
    pub intel: bool,
    pub avx2_fma: bool,
    /// AVX-512 F, CD, BW, DQ and VL (oneMKL's and ATen's AVX-512 level).
    pub avx512_core: bool,
    pub avx512f: bool,
}

impl Cpu {
    pub fn this() -> Cpu {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            Cpu {
                x86_64: true,
                intel: super::dispatch::cpu_vendor() == *b"GenuineIntel",
                avx2_fma: has!("avx2") && has!("fma"),
                avx512_core: has!("avx512f")
                    && has!("avx512cd")
                    && has!("avx512bw")
                    && has!("avx512dq")
                    && has!("avx512vl"),
                avx512f: has!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Cpu::default()
        }
    }
}

/// The detection rule of [`LibtorchSqrt::detect`], over an environment and a
/// CPU description (so that the tests can walk every branch).
pub(crate) fn detect_from(
    env: impl Fn(&str) -> Option<String>,
    cpu: &Cpu,
) -> Result<LibtorchSqrt, String> {
    let supported = |k: LibtorchSqrt| match k {
        LibtorchSqrt::MklExHa | LibtorchSqrt::MklL9Ha => cpu.x86_64,
        LibtorchSqrt::MklZ0Ha => cpu.avx512f,
    };
    if let Some(v) = env("ADADELTA_LIBTORCH_SQRT").filter(|v| !v.trim().is_empty()) {
        return match LibtorchSqrt::from_name(&v) {
            Some(k) if supported(k) => Ok(k),
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

/// The square root a kernel instantiation computes (a const-generic id, so
/// that every (path, sqrt) pair is its own monomorphised loop).
pub(crate) mod id {
    /// Correctly rounded.
    pub const IEEE: u8 = 0;
    /// oneMKL EXHA.
    pub const EXHA: u8 = 1;
    /// oneMKL Z0HA.
    pub const Z0HA: u8 = 2;
    /// oneMKL L9HA.
    pub const L9HA: u8 = 3;
}

/// The square root one run computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sqrt {
    Ieee,
    Libtorch(LibtorchSqrt),
}

impl Sqrt {
    pub fn id(self) -> u8 {
        match self {
            Sqrt::Ieee => id::IEEE,
            Sqrt::Libtorch(LibtorchSqrt::MklExHa) => id::EXHA,
            Sqrt::Libtorch(LibtorchSqrt::MklZ0Ha) => id::Z0HA,
            Sqrt::Libtorch(LibtorchSqrt::MklL9Ha) => id::L9HA,
        }
    }
}

/// EXHA and L9HA send every lane whose `bits + 0x7f80_0000` (wrapping) is
/// greater, as an `i32`, than this threshold to IEEE `sqrt`. With
/// [`L9HA_SPECIAL_ABOVE`] that is exactly the inputs that are not positive
/// normal finite numbers (±0, subnormals, negatives, ±inf, NaN); EXHA's lower
/// threshold also takes the top 4096 patterns, `0x7f7ff000..=0x7f7fffff`,
/// where its refinement would square to infinity.
pub(crate) const EXHA_SPECIAL_ABOVE: i32 = 0xfeff_efff_u32 as i32;
/// See [`EXHA_SPECIAL_ABOVE`]; the constant is L9HA's own (`0xfeffffff`).
pub(crate) const L9HA_SPECIAL_ABOVE: i32 = 0xfeff_ffff_u32 as i32;
/// The offset both add before that signed comparison (`0x7f800000`).
pub(crate) const SPECIAL_OFFSET: u32 = 0x7f80_0000;

/// Z0HA's threshold on `vrsqrt14ps(x)` above which it scales (x below ~2^-78).
pub(crate) const Z0HA_SCALE_ABOVE: f32 = 549_755_813_888.0; // 2^39
/// 2^78, 2^39 and 2^-78, Z0HA's scale factors.
pub(crate) const TWO_78: f32 = 302_231_454_903_657_293_676_544.0;
pub(crate) const TWO_39: f32 = 549_755_813_888.0;
pub(crate) const TWO_M78: f32 = 3.308_722_5e-24;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod hw {
    use std::arch::x86_64::*;

    /// `rsqrtss`: the same per-lane approximation as `rsqrtps` (xmm/ymm).
    #[inline(always)]
    pub fn rsqrt(x: f32) -> f32 {
        // SAFETY: SSE is part of the x86-64 baseline, so these SSE intrinsics
        // are available on every CPU this code can run on.
        unsafe { _mm_cvtss_f32(_mm_rsqrt_ss(_mm_set_ss(x))) }
    }

    /// `vrsqrt14ss`: the same per-lane approximation as `vrsqrt14ps`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rsqrt14(x: f32) -> f32 {
        let v = _mm_set_ss(x);
        _mm_cvtss_f32(_mm_rsqrt14_ss(v, v))
    }
}

/// oneMKL EXHA, one element: `rsqrtps`, then multiplies and adds each
/// rounded to f32 (no FMA), in this order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn exha(x: f32) -> f32 {
    if (x.to_bits().wrapping_add(SPECIAL_OFFSET) as i32) > EXHA_SPECIAL_ABOVE {
        return x.sqrt();
    }
    let y = hw::rsqrt(x);
    let s = y * x;
    let h = y * 0.5;
    let e = 0.5 - s * h;
    let s1 = s * e + s;
    let h1 = e * h + h;
    (x - s1 * s1) * h1 + s1
}

/// oneMKL L9HA, one element: `rsqrtps`, then the same refinement as EXHA but
/// with every `a*b+c` fused.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn l9ha(x: f32) -> f32 {
    if (x.to_bits().wrapping_add(SPECIAL_OFFSET) as i32) > L9HA_SPECIAL_ABOVE {
        return x.sqrt();
    }
    let y = hw::rsqrt(x);
    let s = x * y;
    let h = y * 0.5;
    let e = (-s).mul_add(h, 0.5);
    let s1 = e.mul_add(s, s);
    let h1 = e.mul_add(h, h);
    let r = (-s1).mul_add(s1, x);
    h1.mul_add(r, s1)
}

/// oneMKL Z0HA, one element: `vrsqrt14ps` and one FMA Newton step (scaled
/// by 2^78 when the estimate exceeds 2^39); IEEE for ±0, ±inf, negatives.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
pub(crate) unsafe fn z0ha(x: f32) -> f32 {
    if x <= 0.0 || x == f32::INFINITY {
        return x.sqrt();
    }
    // SAFETY: the caller guarantees AVX-512F.
    let y = unsafe { hw::rsqrt14(x) };
    let h = y * 0.5;
    let s = x * y;
    if y > Z0HA_SCALE_ABOVE {
        let xs = x * TWO_78;
        let ss = s * TWO_39;
        let hs = h * TWO_M78;
        hs.mul_add((-ss).mul_add(ss, xs), s)
    } else {
        (-s).mul_add(s, x).mul_add(h, s)
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
            avx512_core: true,
            avx512f: true,
        };
        let intel512 = Cpu {
            intel: true,
            ..amd.clone()
        };
        let intel2 = Cpu {
            avx512_core: false,
            avx512f: false,
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

    #[test]
    fn special_thresholds() {
        let special = |b: u32, t: i32| (b.wrapping_add(SPECIAL_OFFSET) as i32) > t;
        for t in [EXHA_SPECIAL_ABOVE, L9HA_SPECIAL_ABOVE] {
            for b in [0u32, 1, 0x007f_ffff, 0x8000_0000, 0x8080_0000, 0xff7f_ffff] {
                assert!(special(b, t), "{b:#x}");
            }
            for b in [0x7f80_0000u32, 0x7fc0_0000, 0xff80_0000, 0xffc0_0000] {
                assert!(special(b, t), "{b:#x}");
            }
            for b in [0x0080_0000u32, 0x3f80_0000, 0x7f7f_efff] {
                assert!(!special(b, t), "{b:#x}");
            }
        }
        assert!(special(0x7f7f_f000, EXHA_SPECIAL_ABOVE));
        assert!(!special(0x7f7f_ffff, L9HA_SPECIAL_ABOVE));
        assert_eq!(TWO_78, 2f32.powi(78));
        assert_eq!(TWO_39, 2f32.powi(39));
        assert_eq!(TWO_M78, 2f32.powi(-78));
        assert_eq!(Z0HA_SCALE_ABOVE, TWO_39);
    }
}
