//! A rigorous (first-order-complete) running error bound for one f32 Adadelta
//! step, used as the tolerance of every comparison against the
//! high-precision reference.
//!
//! Given the f32 inputs of one element (`p`, `g`, `v`, `u`) and the f32
//! values the implementation computed for every intermediate, [`one_step`]
//! bounds `|computed - exact|` for the new `param`, `square_avg` and
//! `acc_delta`, where *exact* is the real-number Adadelta step applied to the
//! same f32 inputs with the **exact** f64 hyperparameters. The derivation is in
//! `fast/docs/numerics.md` ("Error bound of one step"); in short, every rounded op
//! `fl(x)` of the f32 recipe satisfies `|fl(x) - x| <= u|fl(x)|(1 + 2u) + eta`
//! with `u = 2^-24` and `eta = 2^-150` (subnormal spacing / 2), the scalar
//! conversions contribute their exact f64 conversion errors, and errors are
//! propagated through products, quotients and square roots with the exact
//! identities below (no Taylor truncation: the cross terms are kept).
//!
//! The bound is evaluated in f64 on magnitudes of f32 values and inflated by
//! `1 + 2^-10`, which covers both the f64 evaluation's own rounding (a few
//! f64 ulps) and the second-order terms explained in [`one_step`].

/// Unit roundoff of binary32, round to nearest.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Largest absolute rounding error in binary32's subnormal range (half of 2^-149).
pub const ETA: f64 = 1.401_298_464_324_817e-45 / 2.0;

/// How the square root the implementation uses is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqrtAccuracy {
    /// IEEE correctly rounded: at most 1/2 ulp, i.e. relative `u`.
    CorrectlyRounded,
    /// Within 1 ulp of the correctly rounded result (measured for libtorch's
    /// oneMKL f32 sqrt on the machines of this project, see `fast/docs/numerics.md`):
    /// at most 3/2 ulp from the exact root, i.e. relative `3u` (1 ulp <= 2u|x|).
    WithinOneUlpOfCorrect,
}

impl SqrtAccuracy {
    fn rel(self) -> f64 {
        match self {
            SqrtAccuracy::CorrectlyRounded => U,
            SqrtAccuracy::WithinOneUlpOfCorrect => 3.0 * U,
        }
    }
}

/// The f64 hyperparameters and their f32 conversions, with the exact
/// conversion errors.
#[derive(Clone, Copy, Debug)]
pub struct Scalars {
    rho32: f64,
    c32: f64,
    eps32: f64,
    nlr32: f64,
    wd32: f64,
    lr: f64,
    e_rho: f64,
    e_c: f64,
    e_eps: f64,
    e_lr: f64,
    e_wd: f64,
    apply_wd: bool,
    maximize: bool,
}

impl Scalars {
    /// Converts as ATen does (see `adadelta::Coefficients`) and records the
    /// conversion errors against the exact f64 values.
    pub fn new(h: &crate::case::Hyper) -> Self {
        let rho32 = h.rho as f32 as f64;
        let c64 = 1.0 - h.rho; // exact when rho >= 0.5 (Sterbenz), else within 2^-53 relative
        let c32 = c64 as f32 as f64;
        let eps32 = h.eps as f32 as f64;
        let nlr32 = (-h.lr) as f32 as f64;
        let wd32 = h.weight_decay as f32 as f64;
        // Each difference of an f64 and its f32 rounding is exact in f64 (Sterbenz),
        // except at overflow to inf, which the finite checks below exclude.
        Scalars {
            rho32,
            c32,
            eps32,
            nlr32,
            wd32,
            lr: h.lr,
            e_rho: (rho32 - h.rho).abs(),
            e_c: (c32 - c64).abs() + c64.abs() * f64::EPSILON / 2.0,
            e_eps: (eps32 - h.eps).abs(),
            e_lr: (nlr32 + h.lr).abs(),
            e_wd: (wd32 - h.weight_decay).abs(),
            apply_wd: h.weight_decay != 0.0,
            maximize: h.maximize,
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

/// Rounding error of one round-to-nearest op whose (f32) result is `x`.
fn rn(x: f64) -> f64 {
    U * x.abs() * (1.0 + 2.0 * U) + ETA
}

/// `|x̂ŷ - xy|` given `|x̂ - x| <= ex`, `|ŷ - y| <= ey`.
fn prod(x: f64, ex: f64, y: f64, ey: f64) -> f64 {
    x.abs() * ey + y.abs() * ex + ex * ey
}

/// `|√â - √A|` given `|â - A| <= e`, `A >= 0`, plus the sqrt's own rounding.
fn sqrt_err(a: f64, e: f64, out: f64, acc: SqrtAccuracy) -> f64 {
    let prop = if a > 0.0 {
        (e / a.sqrt()).min(e.sqrt())
    } else {
        e.sqrt()
    };
    prop + acc.rel() * out.abs() * (1.0 + 2.0 * U)
}

/// `|r̂/ŝ - R/S|` given the input bounds; infinite unless `es < |ŝ|`.
fn quot(r: f64, er: f64, s: f64, es: f64) -> f64 {
    if es >= s.abs() {
        return f64::INFINITY;
    }
    (s.abs() * er + r.abs() * es) / (s.abs() * (s.abs() - es))
}

/// Bounds one element's step. `p, g, v, u` are the f32 inputs; the
/// intermediates are recomputed here with the correctly-rounded f32 recipe,
/// whose magnitudes equal the implementation's own up to a relative `3u`
/// (sqrt) difference, which the bound absorbs with the `1 + 2^-20` factor
/// applied to each magnitude used. Returns the bound on all three outputs.
pub fn one_step(s: &Scalars, acc: SqrtAccuracy, p: f32, g: f32, v: f32, u: f32) -> StepBound {
    let inf = StepBound {
        param: f64::INFINITY,
        square_avg: f64::INFINITY,
        acc_delta: f64::INFINITY,
    };
    // Magnitudes of the implementation's intermediates may differ from these
    // by the sqrt discrepancy (<= 2 ulp, relative 4u) propagated through a
    // few ops; inflate every magnitude by 1 + 2^-20 (>> 16u) to cover that.
    let m = |x: f32| (x as f64).abs() * (1.0 + 1.0 / (1u64 << 20) as f64);
    let g1 = if s.maximize { -g } else { g };
    let (g2, e_g2) = if s.apply_wd {
        let g2 = p.mul_add(s.wd32 as f32, g1);
        (g2, rn(m(g2)) + (p as f64).abs() * s.e_wd)
    } else {
        (g1, 0.0)
    };
    let vr = v * s.rho32 as f32;
    let e_vr = rn(m(vr)) + (v as f64).abs() * s.e_rho;
    let cg = s.c32 as f32 * g2;
    let e_cg = rn(m(cg)) + prod(s.c32, s.e_c, m(g2), e_g2);
    let v2 = cg.mul_add(g2, vr);
    let e_v2 = rn(m(v2)) + prod(m(cg), e_cg, m(g2), e_g2) + e_vr;
    let a = v2 + s.eps32 as f32;
    let e_a = rn(m(a)) + e_v2 + s.e_eps;
    let std = a.sqrt();
    let e_std = sqrt_err(m(a), e_a, m(std), acc);
    let b = u + s.eps32 as f32;
    let e_b = rn(m(b)) + s.e_eps;
    let r = b.sqrt();
    let e_r = sqrt_err(m(b), e_b, m(r), acc);
    // The quotient bound needs the divisor's lower magnitude, so use |std|
    // deflated by the same factor rather than inflated.
    let std_lo = (std as f64).abs() * (1.0 - 1.0 / (1u64 << 20) as f64);
    let q = r / std;
    let e_q = rn(m(q)) + quot(m(r), e_r, std_lo, e_std);
    let d = q * g2;
    let e_d = rn(m(d)) + prod(m(q), e_q, m(g2), e_g2);
    let ur = u * s.rho32 as f32;
    let e_ur = rn(m(ur)) + (u as f64).abs() * s.e_rho;
    let cd = s.c32 as f32 * d;
    let e_cd = rn(m(cd)) + prod(s.c32, s.e_c, m(d), e_d);
    let u2 = cd.mul_add(d, ur);
    let e_u2 = rn(m(u2)) + prod(m(cd), e_cd, m(d), e_d) + e_ur;
    let p2 = d.mul_add(s.nlr32 as f32, p);
    let e_p2 = rn(m(p2)) + prod(m(d), e_d, s.lr, s.e_lr);
    if ![g2, vr, cg, v2, a, std, b, r, q, d, ur, cd, u2, p2]
        .iter()
        .all(|x| x.is_finite())
        || std == 0.0
    {
        return inf;
    }
    // Second-order slack: the magnitudes above come from the correctly rounded
    // recipe, the implementation's own intermediates differ from them by a
    // relative <= 2^-20; 2^-10 of the bound covers the resulting terms (each
    // is <= 2^-20 times a term already in the bound).
    let f = 1.0 + 1.0 / (1u64 << 10) as f64;
    StepBound {
        param: e_p2 * f,
        square_avg: e_v2 * f,
        acc_delta: e_u2 * f,
    }
}
