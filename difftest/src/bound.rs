//! A rigorous (first-order-complete) running error bound for one Adadelta
//! step in binary32 or binary64 ([`Dtype`]), used as the tolerance of every
//! comparison against the high-precision reference.
//!
//! Given the inputs of one element (`p`, `g`, `v`, `u`, in the parameters'
//! format) and the values the implementation computed for every
//! intermediate, [`one_step`] bounds `|computed - exact|` for the new
//! `param`, `square_avg` and `acc_delta`, where *exact* is the real-number
//! Adadelta step applied to the same inputs with the **exact** f64
//! hyperparameters. The derivation is in `fast/docs/numerics.md` ("Error
//! bound of one step", and its binary64 subsection); in short, every rounded
//! op `fl(x)` of the recipe satisfies `|fl(x) - x| <= u|fl(x)|(1 + 2u) + eta`
//! with the format's unit roundoff `u` ([`Dtype::UNIT_ROUNDOFF`]: `2^-24`,
//! `2^-53`) and `eta` ([`Dtype::ETA`]: `2^-150`, `2^-1075`), the scalar
//! conversions contribute their exact conversion errors (none in binary64,
//! whose scalars are the f64 hyperparameters themselves, but for `1 - rho`),
//! and errors are propagated through products, quotients and square roots
//! with the exact identities below (no Taylor truncation: the cross terms
//! are kept).
//!
//! The bound is evaluated in f64 on magnitudes of the format's values, every
//! f64 operation rounded towards the safe side (up, or down for the
//! divisor's lower bound: [`f64::next_up`] / [`f64::next_down`] of the
//! rounded-to-nearest result), so the evaluation never makes it smaller,
//! not even where it underflows f64 (binary64's subnormal range). It is then
//! inflated by `1 + 2^-10`, which covers the second-order terms explained in
//! [`one_step`].

use crate::dtype::Dtype;
use std::marker::PhantomData;

/// How the square root the implementation uses is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqrtAccuracy {
    /// IEEE correctly rounded: at most 1/2 ulp, i.e. relative `u`.
    CorrectlyRounded,
    /// Within 1 ulp of the correctly rounded result (measured for libtorch's
    /// oneMKL f32 and f64 sqrt on the machines of this project, see
    /// `fast/docs/numerics.md`): at most 3/2 ulp from the exact root, i.e.
    /// relative `3u` (1 ulp <= 2u|x|; a root is never subnormal).
    WithinOneUlpOfCorrect,
}

impl SqrtAccuracy {
    /// The square root's relative error bound in format `T`.
    fn rel<T: Dtype>(self) -> f64 {
        match self {
            SqrtAccuracy::CorrectlyRounded => T::UNIT_ROUNDOFF,
            SqrtAccuracy::WithinOneUlpOfCorrect => 3.0 * T::UNIT_ROUNDOFF,
        }
    }
}

/// The f64 hyperparameters converted to format `T` as PyTorch converts them
/// for a tensor of that dtype (binary32: rounded to f32; binary64: the f64
/// values themselves), with the exact conversion errors.
#[derive(Clone, Copy, Debug)]
pub struct Scalars<T = f32> {
    rho: T,
    c: T,
    eps: T,
    nlr: T,
    wd: T,
    lr: f64,
    e_rho: f64,
    e_c: f64,
    e_eps: f64,
    e_lr: f64,
    e_wd: f64,
    apply_wd: bool,
    maximize: bool,
    format: PhantomData<T>,
}

impl<T: Dtype> Scalars<T> {
    /// Converts as ATen does (see `adadelta::Coefficients`) and records the
    /// conversion errors against the exact f64 values.
    pub fn new(h: &crate::case::Hyper) -> Self {
        let rho = T::from_f64(h.rho);
        let c64 = 1.0 - h.rho; // exact when rho >= 0.5 (Sterbenz), else within 2^-53 relative
        let c = T::from_f64(c64);
        let eps = T::from_f64(h.eps);
        let nlr = T::from_f64(-h.lr);
        let wd = T::from_f64(h.weight_decay);
        // Each difference of an f64 and its rounding to T is exact in f64
        // (Sterbenz; 0 for T = f64), except at overflow to inf, which the
        // finite checks of `one_step` exclude.
        Scalars {
            rho,
            c,
            eps,
            nlr,
            wd,
            lr: h.lr,
            e_rho: (rho.to_f64() - h.rho).abs(),
            e_c: up((c.to_f64() - c64).abs() + c64.abs() * f64::EPSILON / 2.0),
            e_eps: (eps.to_f64() - h.eps).abs(),
            e_lr: (nlr.to_f64() + h.lr).abs(),
            e_wd: (wd.to_f64() - h.weight_decay).abs(),
            apply_wd: h.weight_decay != 0.0,
            maximize: h.maximize,
            format: PhantomData,
        }
    }
}

/// Absolute error bounds of one step's outputs. `f64::INFINITY` where the
/// computation left the finite range (overflow, division by zero, NaN), where
/// no bound is claimed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepBound {
    /// Bound on `|param_computed - param_exact|`.
    pub param: f64,
    /// Bound on `|square_avg_computed - square_avg_exact|`.
    pub square_avg: f64,
    /// Bound on `|acc_delta_computed - acc_delta_exact|`.
    pub acc_delta: f64,
}

/// An f64 result rounded to nearest, moved up: at least the exact result.
fn up(x: f64) -> f64 {
    x.next_up()
}

/// An f64 result rounded to nearest, moved down: at most the exact result.
fn down(x: f64) -> f64 {
    x.next_down()
}

/// Sum of two upper bounds, an upper bound.
fn add(x: f64, y: f64) -> f64 {
    up(x + y)
}

/// Product of two non-negative upper bounds, an upper bound.
fn mul(x: f64, y: f64) -> f64 {
    up(x * y)
}

/// Rounding error of one round-to-nearest op of format `T` whose result has
/// magnitude `x`: `u|x|(1 + 2u) + eta` (`u(1 + 2u)` is exact in f64).
fn rn<T: Dtype>(x: f64) -> f64 {
    let u = T::UNIT_ROUNDOFF;
    add(mul(x, u * (1.0 + 2.0 * u)), T::ETA)
}

/// `|x̂ŷ - xy|` given `|x̂ - x| <= ex`, `|ŷ - y| <= ey`.
fn prod(x: f64, ex: f64, y: f64, ey: f64) -> f64 {
    add(add(mul(x.abs(), ey), mul(y.abs(), ex)), mul(ex, ey))
}

/// `|√â - √A|` given `|â - A| <= e`, `A >= 0`, plus the sqrt's own rounding.
fn sqrt_err<T: Dtype>(a: f64, e: f64, out: f64, acc: SqrtAccuracy) -> f64 {
    let prop = if a > 0.0 {
        up(e / down(a.sqrt())).min(up(e.sqrt()))
    } else {
        up(e.sqrt())
    };
    add(
        prop,
        mul(mul(acc.rel::<T>(), out.abs()), 1.0 + 2.0 * T::UNIT_ROUNDOFF),
    )
}

/// `|r̂/ŝ - R/S|` given the input bounds and a lower bound `s` of `|ŝ|`
/// (the bound decreases as `s` grows); infinite unless `es < s`.
fn quot(r: f64, er: f64, s: f64, es: f64) -> f64 {
    let den = down(s.abs() * down(s.abs() - es));
    if es >= s.abs() || den <= 0.0 {
        return f64::INFINITY;
    }
    up(add(mul(s.abs(), er), mul(r.abs(), es)) / den)
}

/// Bounds one element's step. `p, g, v, u` are the inputs in format `T`;
/// the intermediates are recomputed here with the correctly-rounded recipe
/// in `T`, whose magnitudes equal the implementation's own up to a relative
/// `4u` (its sqrt within 1 ulp of correct, propagated), which the bound
/// absorbs with the `1 + 2^-20` factor applied to each magnitude used.
/// Returns the bound on all three outputs.
pub fn one_step<T: Dtype>(s: &Scalars<T>, acc: SqrtAccuracy, p: T, g: T, v: T, u: T) -> StepBound {
    let inf = StepBound {
        param: f64::INFINITY,
        square_avg: f64::INFINITY,
        acc_delta: f64::INFINITY,
    };
    // Magnitudes of the implementation's intermediates may differ from these
    // by the sqrt discrepancy (<= 2 ulp, relative 4u) propagated through a
    // few ops; inflate every magnitude by 1 + 2^-20 (>> 16u for binary32,
    // and more so for binary64) to cover that.
    let m = |x: T| mul(x.to_f64().abs(), 1.0 + 1.0 / (1u64 << 20) as f64);
    let mag = |x: T| x.to_f64().abs();
    let g1 = if s.maximize { -g } else { g };
    let (g2, e_g2) = if s.apply_wd {
        let g2 = p.mul_add(s.wd, g1);
        (g2, add(rn::<T>(m(g2)), mul(mag(p), s.e_wd)))
    } else {
        (g1, 0.0)
    };
    let vr = v * s.rho;
    let e_vr = add(rn::<T>(m(vr)), mul(mag(v), s.e_rho));
    let cg = s.c * g2;
    let e_cg = add(rn::<T>(m(cg)), prod(mag(s.c), s.e_c, m(g2), e_g2));
    let v2 = cg.mul_add(g2, vr);
    let e_v2 = add(add(rn::<T>(m(v2)), prod(m(cg), e_cg, m(g2), e_g2)), e_vr);
    let a = v2 + s.eps;
    let e_a = add(add(rn::<T>(m(a)), e_v2), s.e_eps);
    let std = a.sqrt();
    let e_std = sqrt_err::<T>(m(a), e_a, m(std), acc);
    let b = u + s.eps;
    let e_b = add(rn::<T>(m(b)), s.e_eps);
    let r = b.sqrt();
    let e_r = sqrt_err::<T>(m(b), e_b, m(r), acc);
    // The quotient bound needs the divisor's lower magnitude, so use |std|
    // deflated by the same factor rather than inflated.
    let std_lo = down(mag(std) * (1.0 - 1.0 / (1u64 << 20) as f64));
    let q = r / std;
    let e_q = add(rn::<T>(m(q)), quot(m(r), e_r, std_lo, e_std));
    let d = q * g2;
    let e_d = add(rn::<T>(m(d)), prod(m(q), e_q, m(g2), e_g2));
    let ur = u * s.rho;
    let e_ur = add(rn::<T>(m(ur)), mul(mag(u), s.e_rho));
    let cd = s.c * d;
    let e_cd = add(rn::<T>(m(cd)), prod(mag(s.c), s.e_c, m(d), e_d));
    let u2 = cd.mul_add(d, ur);
    let e_u2 = add(add(rn::<T>(m(u2)), prod(m(cd), e_cd, m(d), e_d)), e_ur);
    let p2 = d.mul_add(s.nlr, p);
    let e_p2 = add(rn::<T>(m(p2)), prod(m(d), e_d, s.lr, s.e_lr));
    if ![g2, vr, cg, v2, a, std, b, r, q, d, ur, cd, u2, p2]
        .iter()
        .all(|x| x.is_finite())
        || std == T::from_f64(0.0)
    {
        return inf;
    }
    // Second-order slack: the magnitudes above come from the correctly rounded
    // recipe, the implementation's own intermediates differ from them by a
    // relative <= 2^-20; 2^-10 of the bound covers the resulting terms (each
    // is <= 2^-20 times a term already in the bound).
    let f = 1.0 + 1.0 / (1u64 << 10) as f64;
    StepBound {
        param: mul(e_p2, f),
        square_avg: mul(e_v2, f),
        acc_delta: mul(e_u2, f),
    }
}
