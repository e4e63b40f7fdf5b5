//! The report's embedded default suite, and a small deterministic generator
//! of values and cases (also used by tests that need fixed inputs).

use crate::case::{Case, Hyper};
use crate::dtype::Floating;
use adadelta_reference::Format;

/// SplitMix64: a tiny, well-known, seedable generator. Deterministic across
/// platforms, so a suite is the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A value of format `T` of the given kind, drawn natively in `T`: the
    /// same distribution for `f32` and `f64`, placed relative to each
    /// format's range (see [`Values`]), each magnitude an f64 `2^x` rounded
    /// once to `T` (so an `f64` has a full 53-bit significand). The `f32`
    /// values are those of the report's float32 suite since it was
    /// written.
    pub fn value<T: Floating>(&mut self, kind: Values) -> T {
        let sign = if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        let negative = if sign < 0.0 { T::SIGN_BIT } else { 0 };
        // The bottom of the normal range, and the point above which a
        // square overflows: 2^-126 and 2^64 for f32 and bf16, 2^-1022 and
        // 2^512 for f64, 2^-14 and 2^8 for f16.
        let (normal_min, square_max) = (1 - T::BIAS, T::EXP_MAX / 2);
        // Tiny values: the bottom 40 binades of the normal range, or its
        // bottom quarter where that is less (f16: 30 binades, so 7).
        let tiny = (T::EXP_MAX - normal_min).div_euclid(4).min(40);
        // Huge values: 24 binades below the square threshold to 36 above
        // it, where the format reaches that far (f32, bf16, f64); f16
        // stops 8 binades above it, so [2^3, 2^15), 7 binades of 12 above.
        let (huge, huge_span) = if square_max + 36 < T::EXP_MAX {
            (square_max - 24, 60.0)
        } else {
            (square_max - 5, f64::from(T::EXP_MAX - 1 - (square_max - 5)))
        };
        match kind {
            // log-uniform magnitude in [2^-8, 2^4): typical weights and gradients
            Values::Normal => self.pow2_in::<T>(sign, -8, 12.0),
            Values::Wide => {
                // a mix over the whole range: zeros, subnormals, tiny, normal, huge
                match self.below(8) {
                    0 => T::from_f64(sign * 0.0),
                    1 => <T as Format>::from_bits(negative | (1 + self.below(T::FRACTION_MASK))),
                    2 => self.pow2_in::<T>(sign, normal_min, f64::from(tiny)),
                    3 => self.pow2_in::<T>(sign, huge, huge_span),
                    _ => self.pow2_in::<T>(sign, -12, 24.0),
                }
            }
            Values::NonFinite => match self.below(16) {
                // NaNs of both signs, quiet and signalling, with payloads
                0 => <T as Format>::from_bits(T::INF_BITS | T::QUIET_BIT),
                1 => <T as Format>::from_bits(
                    T::SIGN_BIT | T::INF_BITS | T::QUIET_BIT | self.below(T::QUIET_BIT - 1),
                ),
                2 => <T as Format>::from_bits(T::INF_BITS + 1 + self.below(T::QUIET_BIT - 2)),
                3 => T::from_f64(sign * f64::INFINITY),
                4 => T::from_f64(sign * 0.0),
                _ => self.pow2_in::<T>(sign, -8, 12.0),
            },
        }
    }

    /// `sign * 2^x` rounded to `T`, `x` uniform in `[lo, lo + span)`.
    fn pow2_in<T: Floating>(&mut self, sign: f64, lo: i32, span: f64) -> T {
        T::from_f64(sign * 2f64.powf(self.unit() * span + f64::from(lo)))
    }

    /// A vector of `n` values.
    pub fn values<T: Floating>(&mut self, n: usize, kind: Values) -> Vec<T> {
        (0..n).map(|_| self.value(kind)).collect()
    }
}

/// Kinds of generated values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Finite, normal, moderate magnitudes of both signs: log-uniform in
    /// `[2^-8, 2^4)`.
    Normal,
    /// Zeros, subnormals, tiny, moderate and huge magnitudes of both signs,
    /// placed relative to the format's range: subnormals uniform over their
    /// bit patterns; tiny log-uniform over the bottom 40 binades of the
    /// normal range (`[2^-126, 2^-86)`, `[2^-1022, 2^-982)`; float16, whose
    /// normal range has 30 binades, its bottom quarter `[2^-14, 2^-7)`);
    /// moderate log-uniform in `[2^-12, 2^12)`; huge log-uniform over
    /// `[2^(E/2 - 24), 2^(E/2 + 36))` with `2^(E/2)` the point above which
    /// a square overflows (`[2^40, 2^100)` for float32 and bfloat16,
    /// `[2^488, 2^548)` for float64), so that `g*g` overflows for 3/5 of
    /// them; float16 ends 8 binades above `2^(E/2) = 2^8`, so `[2^3,
    /// 2^15)`, 7/12 of them overflowing.
    Wide,
    /// Moderate values mixed with NaNs (both signs, quiet and signalling,
    /// several payloads), infinities and zeros: about 1 in 5 elements is
    /// NaN, which then spreads through the state.
    NonFinite,
}

/// Builds a case of parameters of dtype `T`: `sizes` parameters, `steps`
/// steps, gradients absent with probability `absent` (never at step 0 for
/// parameter 0, so every case steps). The same seed draws the same
/// sequence of choices in either dtype (values of the same kinds, at the
/// same places), each value in its own format ([`Rng::value`]).
pub fn random_case<T: Floating>(
    name: &str,
    seed: u64,
    hyper: Hyper,
    sizes: &[usize],
    steps: usize,
    kind: Values,
    absent: f64,
) -> Case<T> {
    let mut rng = Rng::new(seed);
    let params = sizes.iter().map(|&n| rng.values(n, kind)).collect();
    let grads = (0..steps)
        .map(|t| {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let skip = !(t == 0 && i == 0) && rng.unit() < absent;
                    (!skip).then(|| rng.values(n, kind))
                })
                .collect()
        })
        .collect();
    Case {
        name: name.to_string(),
        hyper,
        params,
        grads,
    }
}

/// The hyperparameter settings of the default suite: PyTorch's defaults and
/// each option and boundary value.
pub fn default_hypers() -> Vec<(&'static str, Hyper)> {
    let d = Hyper::default();
    vec![
        ("defaults", d),
        (
            "lr=0.37 wd=0.1 maximize",
            Hyper {
                lr: 0.37,
                weight_decay: 0.1,
                maximize: true,
                ..d
            },
        ),
        (
            "lr=0.05 rho=0.95 eps=1e-8",
            Hyper {
                lr: 0.05,
                rho: 0.95,
                eps: 1e-8,
                ..d
            },
        ),
        ("rho=0", Hyper { rho: 0.0, ..d }),
        ("rho=1", Hyper { rho: 1.0, ..d }),
        (
            "eps=0 wd=1e-3",
            Hyper {
                eps: 0.0,
                weight_decay: 1e-3,
                ..d
            },
        ),
        ("lr=0", Hyper { lr: 0.0, ..d }),
    ]
}

/// The report's default suite, with parameters of dtype `T`: every setting
/// of [`default_hypers`] on a model of several tensors whose sizes cover
/// every SIMD tail (1, 7, 8, 15..17, 31..33, 63..65) and one beyond ATen's
/// 32768-element grain, 10 steps, some absent gradients; plus wide-range
/// values (zeros, subnormals, huge) and non-finite ones (NaNs of several
/// signs and payloads, infinities) on the defaults. The float32 and
/// float64 suites are the same cases (seeds, sizes, absent gradients),
/// their values drawn in each format.
pub fn default_suite<T: Floating>() -> Vec<Case<T>> {
    let sizes = [1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 40_000];
    let mut cases: Vec<Case<T>> = default_hypers()
        .into_iter()
        .enumerate()
        .map(|(k, (name, h))| {
            random_case(name, 1000 + k as u64, h, &sizes, 10, Values::Normal, 0.1)
        })
        .collect();
    cases.push(random_case(
        "defaults, wide values",
        2000,
        Hyper::default(),
        &sizes[..13],
        10,
        Values::Wide,
        0.1,
    ));
    // NaN and inf in parameters and gradients: the NaN bits of the
    // reference are compared with libtorch's (one step, before NaN fills
    // every element).
    cases.push(random_case(
        "defaults, NaN and inf",
        3000,
        Hyper::default(),
        &sizes[..13],
        3,
        Values::NonFinite,
        0.1,
    ));
    cases
}

/// The report's suites: cases with parameters of each dtype (any may be
/// empty; the report skips it).
#[derive(Clone, Debug, Default)]
pub struct Suites {
    /// Cases with float32 parameters.
    pub float32: Vec<Case<f32>>,
    /// Cases with float64 parameters.
    pub float64: Vec<Case<f64>>,
    /// Cases with bfloat16 parameters.
    pub bfloat16: Vec<Case<half::bf16>>,
    /// Cases with float16 parameters.
    pub float16: Vec<Case<half::f16>>,
}

/// [`default_suite`] in a 16-bit dtype, every other case on PyTorch's
/// `foreach` path ([`Hyper::foreach`]), which rounds `rho` to the dtype
/// (the path changes nothing in float32 and float64).
pub fn default_suite_16<T: Floating>() -> Vec<Case<T>> {
    let mut cases = default_suite::<T>();
    for (k, c) in cases.iter_mut().enumerate() {
        c.hyper.foreach = k % 2 == 1;
    }
    cases
}

/// The report's default suites: [`default_suite`] in float32 and in
/// float64, and [`default_suite_16`] in bfloat16 and float16.
pub fn default_suites() -> Suites {
    Suites {
        float32: default_suite(),
        float64: default_suite(),
        bfloat16: default_suite_16(),
        float16: default_suite_16(),
    }
}

/// Cheap deterministic values in [-1, 1) (xorshift), for the benches'
/// large tensors: fast to make, not for statistics.
///
/// ```
/// let v = adadelta_difftest::suite::fill(4, 1);
/// assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
/// assert_eq!(v, adadelta_difftest::suite::fill(4, 1));
/// ```
pub fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}
