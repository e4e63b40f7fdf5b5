//! The kernel's division alone (`adadelta::kernel::div`, the operation the
//! step applies to its two square roots) on every path and with every
//! `DivSqrt` this CPU can run, in both numerics, against the MPFR oracle's
//! binary32 division (`adadelta_reference::binary32::div`, correctly
//! rounded by construction), bit for bit (NaN = NaN): on raw bit patterns
//! and on the quotients nearest a rounding boundary, where a division that
//! is not correctly rounded goes wrong first. The estimated division of
//! `fast/docs/numerics.md` ("Square root and division from estimates")
//! cannot be checked exhaustively (2^64 pairs); this is its check.
//!
//! Case counts follow `PROPTEST_CASES` when set.

use adadelta::kernel::{div, DivSqrt, Executor, Isa, Numerics, Threads};
use adadelta_difftest::strategies::cases_or;
use proptest::prelude::*;

/// Every (path, division and square roots, numerics) this machine runs.
fn executors() -> Vec<Executor> {
    let numerics = Numerics::supported();
    let mut v = Vec::new();
    for isa in Isa::ALL {
        for ds in DivSqrt::ALL.into_iter().filter(|d| d.runs_with(isa)) {
            for &n in &numerics {
                let e = Executor {
                    numerics: n,
                    isa: Some(isa),
                    div_sqrt: Some(ds),
                    threads: Threads::Single,
                    ..Executor::default()
                };
                // The AVX2 path computes Z0HA only with AVX-512VL.
                if div::<f32>(&e, &mut [], &[]).is_ok() {
                    v.push(e);
                }
            }
        }
    }
    v
}

/// `(a, b)` whose quotient is as near as f32 operands allow to the midpoint
/// between two adjacent floats, where rounding to nearest decides. For an
/// odd 24-bit significand `b` and a small odd `t`, `M = t / b` modulo 2^25
/// is odd and makes `b M = A 2^25 + t` with `A` an integer below 2^24, so
/// `A / b = M / 2^25 - t / (2^25 b)`: within `|t| 2^-25 / b`, at most
/// `7 × 2^-24` of an ulp, of `M / 2^25`, a midpoint when `M` has all 25 bits
/// (`t`'s sign is flipped when it does not: `M(-t) = 2^25 - M(t)`). Then
/// random exponents (within 2^±45, across the estimated division's domain
/// of 2^±30) and signs.
fn near_midpoint() -> impl Strategy<Value = (f32, f32)> {
    (
        0u32..1 << 22,
        prop_oneof![Just(1i64), Just(3), Just(5), Just(7)],
        any::<bool>(),
        -45i32..45,
        -45i32..45,
        any::<bool>(),
    )
        .prop_map(|(bits, t, t_neg, ea, eb, neg)| {
            let b = (1u64 << 23) | (u64::from(bits) << 1) | 1;
            // The inverse of odd b modulo 2^32, by Newton's iteration.
            let mut inv = b;
            for _ in 0..5 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(b.wrapping_mul(inv))) & 0xffff_ffff;
            }
            let m_of = |t: i64| (t.rem_euclid(1 << 25) as u64 * inv) & ((1 << 25) - 1);
            let mut t = if t_neg { -t } else { t };
            if m_of(t) < 1 << 24 {
                t = -t;
            }
            let m = m_of(t);
            let big_a = (b * m) as i64 - t;
            debug_assert_eq!(big_a.rem_euclid(1 << 25), 0);
            let big_a = (big_a >> 25) as f64;
            let a = big_a * 2f64.powi(ea - 23);
            let b = b as f64 * 2f64.powi(eb - 23);
            (if neg { -a as f32 } else { a as f32 }, b as f32)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(256), ..ProptestConfig::default() })]

    /// Every path's division equals MPFR's correctly rounded one, at every
    /// length and offset.
    #[test]
    fn the_division_is_correctly_rounded_on_every_path(
        off in 0usize..16,
        ab in prop::collection::vec(prop_oneof![
            1 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| (f32::from_bits(a), f32::from_bits(b))),
            3 => near_midpoint(),
        ], 0..300),
    ) {
        let (mut a, mut b): (Vec<f32>, Vec<f32>) = ab.into_iter().unzip();
        a.splice(0..0, std::iter::repeat_n(1.0, off));
        b.splice(0..0, std::iter::repeat_n(1.0, off));
        let want: Vec<f32> = a[off..]
            .iter()
            .zip(&b[off..])
            .map(|(&x, &y)| adadelta_reference::binary32::div(x, y))
            .collect();
        for e in executors() {
            let mut got = a.clone();
            div(&e, &mut got[off..], &b[off..]).unwrap();
            for (i, (g, w)) in got[off..].iter().zip(&want).enumerate() {
                prop_assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{:?} {:?} {:?}: {:e} / {:e} = {:e} ({:#010x}), MPFR {:e} ({:#010x})",
                    e.isa, e.div_sqrt, e.numerics, a[off + i], b[off + i],
                    g, g.to_bits(), w, w.to_bits()
                );
            }
        }
    }
}

/// The generator reaches what it is for: every quotient is within 2^-20 of
/// an ulp from a midpoint (measured in f64, exact enough here: the quotient
/// of two f32 is within 2^-53 relative of its f64 value).
#[test]
fn the_hard_cases_are_near_midpoints() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..10_000 {
        let (a, b) = near_midpoint().new_tree(&mut runner).unwrap().current();
        let q = (a as f64 / b as f64).abs();
        let ulp = 2f64.powi(q.log2().floor() as i32 - 23);
        let off = ((q / ulp).fract() - 0.5).abs();
        assert!(
            off < 2f64.powi(-20),
            "{a:e} / {b:e}: {off:e} of an ulp from a midpoint"
        );
    }
}
