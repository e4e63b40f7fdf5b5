//! Which instruction set runs the kernel ([`Isa`]): the ones this crate has
//! a path for, which this CPU can run, and the one chosen when none is given
//! (`ADADELTA_KERNEL` can force one).

use std::sync::OnceLock;

use super::cpu::{by_name, from_env, Cpu};
use crate::Error;

/// An instruction set the kernel has a path for. Every path computes the
/// same formula, operation for operation, so every path gives the same bits
/// as every other (NaN results may differ in payload only; see
/// [`guide::numerics`](crate::guide::numerics)).
///
/// ```
/// use adadelta::kernel::Isa;
/// assert!(Isa::Scalar.is_supported());          // always
/// assert!(Isa::best().is_supported());
/// assert_eq!(Isa::from_name("AVX512"), Some(Isa::Avx512));
/// let here: Vec<Isa> = Isa::ALL.into_iter().filter(|p| p.is_supported()).collect();
/// assert!(here.contains(&Isa::Scalar));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust, one element at a time; exists on every target.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F (with AVX2 + FMA), 16 lanes, masked tails.
    Avx512,
    /// aarch64 Advanced SIMD (NEON), 4 lanes.
    Neon,
}

impl Isa {
    /// Every instruction set, slowest first within each architecture.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::Isa::ALL[0], adadelta::kernel::Isa::Scalar);
    /// ```
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The name `ADADELTA_KERNEL` accepts: `scalar`, `avx2`, `avx512`, `neon`.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::Isa::Avx2.name(), "avx2");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses [`name`](Self::name) (ASCII case-insensitive).
    ///
    /// ```
    /// use adadelta::kernel::Isa;
    /// assert_eq!(Isa::from_name(" Scalar "), Some(Isa::Scalar));
    /// assert_eq!(Isa::from_name("sse2"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Isa> {
        by_name(Isa::ALL, Isa::name, name)
    }

    /// Whether this CPU can run the path.
    ///
    /// ```
    /// use adadelta::kernel::Isa;
    /// assert!(Isa::Scalar.is_supported());
    /// # #[cfg(target_arch = "x86_64")]
    /// assert_eq!(
    ///     Isa::Avx2.is_supported(),
    ///     is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    /// );
    /// ```
    pub fn is_supported(self) -> bool {
        self.runs_on(Cpu::this())
    }

    /// The rule of [`is_supported`](Self::is_supported), over given CPU facts.
    pub(crate) fn runs_on(self, cpu: &Cpu) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => cpu.avx2_fma,
            Isa::Avx512 => cpu.avx2_fma && cpu.avx512f,
            Isa::Neon => cpu.neon,
        }
    }

    /// `Ok(self)` if this CPU can run it, else [`Error::KernelUnavailable`].
    ///
    /// ```
    /// assert!(adadelta::kernel::Isa::Scalar.available().is_ok());
    /// ```
    pub fn available(self) -> Result<Isa, Error> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(Error::KernelUnavailable(format!(
                "this CPU does not support the {} path",
                self.name()
            )))
        }
    }

    /// The fastest path this CPU supports.
    ///
    /// ```
    /// assert!(adadelta::kernel::Isa::best().is_supported());
    /// ```
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// The path used when none is given: `ADADELTA_KERNEL`
    /// (`scalar`, `avx2`, `avx512`, `neon`; empty or `auto` means
    /// [`best`](Self::best)) if set, else [`best`](Self::best). Read once per
    /// process. An unknown name, or a path this CPU cannot run, is
    /// [`Error::KernelUnavailable`] (never a silent fallback, so that a test
    /// forcing a path really runs it).
    ///
    /// ```
    /// let p = adadelta::kernel::Isa::selected()?;
    /// assert!(p.is_supported());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn selected() -> Result<Isa, Error> {
        static SELECTED: OnceLock<Result<Isa, Error>> = OnceLock::new();
        SELECTED
            .get_or_init(|| select(std::env::var("ADADELTA_KERNEL").ok().as_deref()))
            .clone()
    }
}

/// The rule of [`Isa::selected`] for a value of `ADADELTA_KERNEL`.
fn select(var: Option<&str>) -> Result<Isa, Error> {
    let name = "ADADELTA_KERNEL";
    match from_env(name, var, Isa::ALL, Isa::name).map_err(Error::KernelUnavailable)? {
        None => Ok(Isa::best()),
        Some(isa) => isa.available().map_err(|e| match e {
            Error::KernelUnavailable(why) => {
                Error::KernelUnavailable(format!("{name}={}: {why}", var.unwrap_or("").trim()))
            }
            other => other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_runs_on_the_cpus_that_have_its_features() {
        let (x86, x86_512) = (Cpu::x86_with(false, false), Cpu::x86_with(true, false));
        let arm = Cpu {
            neon: true,
            ..Cpu::default()
        };
        let on = |cpu: &Cpu| -> Vec<&str> {
            Isa::ALL
                .into_iter()
                .filter(|i| i.runs_on(cpu))
                .map(Isa::name)
                .collect()
        };
        assert_eq!(on(&Cpu::default()), ["scalar"]);
        assert_eq!(on(&x86), ["scalar", "avx2"]);
        assert_eq!(on(&x86_512), ["scalar", "avx2", "avx512"]);
        assert_eq!(on(&arm), ["scalar", "neon"]);
    }

    #[test]
    fn kernel_variable_names_a_path_or_fails_with_the_value() {
        assert_eq!(select(None), Ok(Isa::best()));
        assert_eq!(select(Some(" AUTO ")), Ok(Isa::best()));
        assert_eq!(select(Some("")), Ok(Isa::best()));
        assert_eq!(select(Some("Scalar")), Ok(Isa::Scalar));
        assert_eq!(
            select(Some("sse9")),
            Err(Error::KernelUnavailable(
                "ADADELTA_KERNEL=sse9: expected scalar, avx2, avx512, neon or auto".into()
            ))
        );
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
            let e = select(Some(isa.name())).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "ADADELTA_KERNEL={}: this CPU does not support the {} path",
                    isa.name(),
                    isa.name()
                )),
                "{e}"
            );
        }
    }
}
