//! How the kernel computes its correctly rounded square roots and its
//! division ([`DivSqrt`]): with the CPU's divide unit, or from AVX-512's
//! estimates refined in FMA. The same bits either way; only the speed
//! differs, and by CPU (`ADADELTA_DIVSQRT` can force one).

use std::sync::OnceLock;

use super::cpu::{by_name, from_env, Cpu};
use super::isa::Isa;
use crate::Error;

/// Which operations the kernel computes from AVX-512's 14-bit estimates
/// (`vrsqrt14ps`, `vrcp14ps`: one Newton step in FMA and an exact
/// correction) instead of with `vsqrtps`/`vdivps`. Every choice gives the
/// same bits: the estimate paths are correctly rounded too (proved in
/// [`guide::numerics`](crate::guide::numerics), "Square root and division
/// from estimates", and tested against the divide unit). They trade the
/// divide unit's throughput for FMA-port work, which pays where the divide
/// unit is what limits a step.
///
/// The square roots concerned are those of [`Numerics::Default`](super::Numerics::Default):
/// the reproduce-libtorch numerics compute oneMKL's square root whatever
/// this says, so there only the division follows it.
///
/// The estimate paths run on the AVX-512 paths ([`Isa::Avx512`], and
/// [`Isa::Avx2`] on CPUs with AVX-512VL); elsewhere only
/// [`DivSqrt::Hardware`] is available.
///
/// ```
/// use adadelta::kernel::{DivSqrt, Isa};
/// assert_eq!(DivSqrt::from_name("estimated-div"), Some(DivSqrt::EstimatedDiv));
/// assert!(DivSqrt::Hardware.runs_with(Isa::Scalar));
/// assert!(!DivSqrt::Estimated.runs_with(Isa::Scalar));
/// assert!(DivSqrt::selected()?.runs_with(adadelta::kernel::Isa::selected()?));
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DivSqrt {
    /// `vsqrtps` and `vdivps` (`sqrtss`/`divss`, `fsqrt`/`fdiv`): every path.
    #[default]
    Hardware,
    /// The square roots from `vrsqrt14ps`, the division with `vdivps`.
    EstimatedSqrt,
    /// The square roots with `vsqrtps`, the division from `vrcp14ps`.
    EstimatedDiv,
    /// Both from the estimates.
    Estimated,
}

impl DivSqrt {
    /// Every choice.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::DivSqrt::ALL.len(), 4);
    /// ```
    pub const ALL: [DivSqrt; 4] = [
        DivSqrt::Hardware,
        DivSqrt::EstimatedSqrt,
        DivSqrt::EstimatedDiv,
        DivSqrt::Estimated,
    ];

    /// The name `ADADELTA_DIVSQRT` accepts: `hardware`, `estimated-sqrt`,
    /// `estimated-div`, `estimated`.
    ///
    /// ```
    /// assert_eq!(adadelta::kernel::DivSqrt::Estimated.name(), "estimated");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            DivSqrt::Hardware => "hardware",
            DivSqrt::EstimatedSqrt => "estimated-sqrt",
            DivSqrt::EstimatedDiv => "estimated-div",
            DivSqrt::Estimated => "estimated",
        }
    }

    /// Parses [`name`](Self::name) (ASCII case-insensitive).
    ///
    /// ```
    /// use adadelta::kernel::DivSqrt;
    /// assert_eq!(DivSqrt::from_name(" Hardware"), Some(DivSqrt::Hardware));
    /// assert_eq!(DivSqrt::from_name("fast"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<DivSqrt> {
        by_name(DivSqrt::ALL, DivSqrt::name, name)
    }

    /// Whether the square roots are computed from estimates.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn sqrt_estimated(self) -> bool {
        matches!(self, DivSqrt::EstimatedSqrt | DivSqrt::Estimated)
    }

    /// Whether the division is computed from estimates.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn div_estimated(self) -> bool {
        matches!(self, DivSqrt::EstimatedDiv | DivSqrt::Estimated)
    }

    /// Whether this CPU can run this choice on the path `isa`.
    ///
    /// ```
    /// use adadelta::kernel::{DivSqrt, Isa};
    /// assert!(DivSqrt::ALL.into_iter().any(|d| d.runs_with(Isa::Scalar)));
    /// ```
    pub fn runs_with(self, isa: Isa) -> bool {
        self.runs_on(isa, Cpu::this())
    }

    /// The rule of [`runs_with`](Self::runs_with), over given CPU facts.
    pub(crate) fn runs_on(self, isa: Isa, cpu: &Cpu) -> bool {
        isa.runs_on(cpu)
            && match (self, isa) {
                (DivSqrt::Hardware, _) => true,
                (_, Isa::Avx512) => true,
                (_, Isa::Avx2) => cpu.avx512f && cpu.avx512vl,
                _ => false,
            }
    }

    /// `Ok(self)` if this CPU can run it on `isa`, else
    /// [`Error::KernelUnavailable`].
    ///
    /// ```
    /// use adadelta::kernel::{DivSqrt, Isa};
    /// assert!(DivSqrt::Estimated.available(Isa::Scalar).is_err());
    /// ```
    pub fn available(self, isa: Isa) -> Result<DivSqrt, Error> {
        if self.runs_with(isa) {
            Ok(self)
        } else {
            Err(Error::KernelUnavailable(format!(
                "the {} path cannot compute the {} division and square roots \
                 (they need AVX-512F, and AVX-512VL on the avx2 path)",
                isa.name(),
                self.name()
            )))
        }
    }

    /// The choice used when none is given: `ADADELTA_DIVSQRT` (a
    /// [`name`](Self::name); empty or `auto` means the rule below) if set,
    /// else [`Hardware`](Self::Hardware). Read once per process. An unknown
    /// name is [`Error::KernelUnavailable`]; whether the path can run it is
    /// checked when a step runs.
    ///
    /// The rule is `Hardware` on every CPU. On AMD Zen 5, the one CPU with
    /// the estimates measured so far, each estimated operation is slower
    /// than the divide unit's in cache and no faster from memory; on Intel
    /// the choice has not been measured yet (`cargo bench -p adadelta
    /// --bench kernel` prints every choice side by side;
    /// [`guide::performance`](crate::guide::performance) has the figures).
    ///
    /// ```
    /// use adadelta::kernel::{DivSqrt, Executor};
    /// // An executor without a choice of its own steps with this one.
    /// assert_eq!(Executor::default().div_sqrt, None);
    /// println!("division and square roots: {}", DivSqrt::selected()?.name());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn selected() -> Result<DivSqrt, Error> {
        static CHOICE: OnceLock<Result<DivSqrt, Error>> = OnceLock::new();
        let read = || select(std::env::var("ADADELTA_DIVSQRT").ok().as_deref());
        CHOICE.get_or_init(read).clone()
    }
}

/// The rule of [`DivSqrt::selected`] for a value of `ADADELTA_DIVSQRT`.
fn select(var: Option<&str>) -> Result<DivSqrt, Error> {
    from_env("ADADELTA_DIVSQRT", var, DivSqrt::ALL, DivSqrt::name)
        .map(|d| d.unwrap_or(DivSqrt::Hardware))
        .map_err(Error::KernelUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_run_on_the_avx512_paths_only() {
        let avx2 = Cpu::x86_with(false, false);
        let f = Cpu::x86_with(true, false);
        let vl = Cpu::x86_with(true, true);
        let runs = |cpu: &Cpu| -> Vec<(&str, &str)> {
            Isa::ALL
                .into_iter()
                .flat_map(|i| DivSqrt::ALL.map(|d| (i, d)))
                .filter(|(i, d)| *d != DivSqrt::Hardware && d.runs_on(*i, cpu))
                .map(|(i, d)| (i.name(), d.name()))
                .collect()
        };
        assert!(runs(&avx2).is_empty());
        assert_eq!(runs(&f).len(), 3);
        assert!(runs(&f).iter().all(|(i, _)| *i == "avx512"));
        assert_eq!(runs(&vl).len(), 6);
        for i in Isa::ALL {
            assert_eq!(DivSqrt::Hardware.runs_on(i, &vl), i.runs_on(&vl));
        }
    }

    #[test]
    fn divsqrt_variable_names_a_choice_or_fails_with_the_value() {
        assert_eq!(select(None), Ok(DivSqrt::Hardware));
        assert_eq!(select(Some(" auto")), Ok(DivSqrt::Hardware));
        assert_eq!(select(Some("ESTIMATED-SQRT")), Ok(DivSqrt::EstimatedSqrt));
        assert_eq!(
            select(Some("fast")),
            Err(Error::KernelUnavailable(
                "ADADELTA_DIVSQRT=fast: expected hardware, estimated-sqrt, estimated-div, \
                 estimated or auto"
                    .into()
            ))
        );
    }
}
