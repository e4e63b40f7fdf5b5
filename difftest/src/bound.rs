//! A rigorous (first-order-complete) running error bound for one Adadelta
//! step in binary32 or binary64 ([`Dtype`]), or bfloat16 or binary16
//! ([`one_step_half`]), used as the tolerance of every comparison against
//! the high-precision reference.
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
//!
//! bfloat16 and float16 have their own bound, [`one_step_half`] (numerics.md,
//! "bfloat16 and float16: the bound"): the same analysis with the rounding
//! rule of each op in either 16-bit numerics, and magnitudes taken from the
//! exact step (recomputed in f64 and bounded by the binary64 analysis of
//! [`trace`]) instead of a recomputation in the dtype, which would differ
//! from the implementation's intermediates by a relative `4u = 2^-6`.

use crate::dtype::{Dtype, Floating};
use adadelta_reference::Rounding;
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
    fn rel<T: Floating>(self) -> f64 {
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

impl StepBound {
    /// No bound claimed: every output's bound infinite.
    pub const NONE: StepBound = StepBound {
        param: f64::INFINITY,
        square_avg: f64::INFINITY,
        acc_delta: f64::INFINITY,
    };
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
fn rn<T: Floating>(x: f64) -> f64 {
    let u = T::UNIT_ROUNDOFF;
    add(mul(x, u * (1.0 + 2.0 * u)), T::ETA)
}

/// `|x̂ŷ - xy|` given `|x̂ - x| <= ex`, `|ŷ - y| <= ey`.
fn prod(x: f64, ex: f64, y: f64, ey: f64) -> f64 {
    add(add(mul(x.abs(), ey), mul(y.abs(), ex)), mul(ex, ey))
}

/// `|√â - √A|` given `|â - A| <= e`, `â, A >= 0` and `a` at most one of
/// them: `|â - A| / (√â + √A)`, at most `e/√a` and at most `√e`.
fn sqrt_prop(a: f64, e: f64) -> f64 {
    if a > 0.0 {
        up(e / down(a.sqrt())).min(up(e.sqrt()))
    } else {
        up(e.sqrt())
    }
}

/// `|√â - √A|` given `|â - A| <= e`, `A >= 0`, plus the sqrt's own rounding.
fn sqrt_err<T: Floating>(a: f64, e: f64, out: f64, acc: SqrtAccuracy) -> f64 {
    add(
        sqrt_prop(a, e),
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

/// One intermediate of a step as [`trace`] recomputes it: its value (as
/// an f64) and a bound on its distance to the exact intermediate.
#[derive(Clone, Copy, Debug)]
struct Bounded {
    value: f64,
    err: f64,
}

/// Every intermediate of one step, in the order of the recipe
/// (`fast/docs/numerics.md`, "Error bound of one step").
#[derive(Clone, Copy, Debug)]
struct Trace {
    g2: Bounded,
    vr: Bounded,
    cg: Bounded,
    v2: Bounded,
    a: Bounded,
    std: Bounded,
    b: Bounded,
    r: Bounded,
    q: Bounded,
    d: Bounded,
    ur: Bounded,
    cd: Bounded,
    u2: Bounded,
    p2: Bounded,
}

/// The second-order slack of [`one_step`]: the magnitudes of [`trace`] come
/// from the correctly rounded recipe, the implementation's own
/// intermediates differ from them by a relative <= 2^-20; 2^-10 of the
/// bound covers the resulting terms (each is <= 2^-20 times a term already
/// in the bound).
const SECOND_ORDER: f64 = 1.0 + 1.0 / (1u64 << 10) as f64;

/// Recomputes one element's step with the correctly-rounded recipe in `T`
/// and bounds every intermediate's error as an implementation whose sqrt
/// is rounded as `acc` says would make it, before the [`SECOND_ORDER`]
/// slack. `None` where an intermediate is not finite or `std = 0`.
fn trace<T: Dtype>(s: &Scalars<T>, acc: SqrtAccuracy, p: T, g: T, v: T, u: T) -> Option<Trace> {
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
        return None;
    }
    let at = |value: T, err: f64| Bounded {
        value: value.to_f64(),
        err,
    };
    Some(Trace {
        g2: at(g2, e_g2),
        vr: at(vr, e_vr),
        cg: at(cg, e_cg),
        v2: at(v2, e_v2),
        a: at(a, e_a),
        std: at(std, e_std),
        b: at(b, e_b),
        r: at(r, e_r),
        q: at(q, e_q),
        d: at(d, e_d),
        ur: at(ur, e_ur),
        cd: at(cd, e_cd),
        u2: at(u2, e_u2),
        p2: at(p2, e_p2),
    })
}

/// Bounds one element's step. `p, g, v, u` are the inputs in format `T`;
/// the intermediates are recomputed ([`trace`]) with the correctly-rounded
/// recipe in `T`, whose magnitudes equal the implementation's own up to a
/// relative `4u` (its sqrt within 1 ulp of correct, propagated), which the
/// bound absorbs with the `1 + 2^-20` factor applied to each magnitude
/// used, and the [`SECOND_ORDER`] factor on the result. Returns the bound on
/// all three outputs.
pub fn one_step<T: Dtype>(s: &Scalars<T>, acc: SqrtAccuracy, p: T, g: T, v: T, u: T) -> StepBound {
    match trace(s, acc, p, g, v, u) {
        None => StepBound::NONE,
        Some(t) => StepBound {
            param: mul(t.p2.err, SECOND_ORDER),
            square_avg: mul(t.v2.err, SECOND_ORDER),
            acc_delta: mul(t.u2.err, SECOND_ORDER),
        },
    }
}

/// How one op of a 16-bit implementation rounds its exact result `x` (the
/// op applied exactly to the operands it was given): `|x̂ - x| <= rel·|x| +
/// abs`, wherever `|x|` is at most the format's largest finite value.
#[derive(Clone, Copy, Debug)]
struct Rounds {
    rel: f64,
    abs: f64,
}

impl Rounds {
    /// Round to nearest in format `T`, once: at most half an ulp, `u|x|`
    /// in the normal range and `eta` (half the subnormal spacing) below it.
    fn nearest<T: Floating>() -> Rounds {
        Rounds {
            rel: T::UNIT_ROUNDOFF,
            abs: T::ETA,
        }
    }

    /// `self` applied to the result of `inner` (binary32, then the 16-bit
    /// format: a double rounding): `|o(y) - x| <= |o(y) - y| + |y - x|`
    /// with `|y| <= |x|(1 + inner.rel) + inner.abs`, so
    /// `rel = o.rel + i.rel + o.rel·i.rel` and `abs = o.abs + i.abs(1 + o.rel)`.
    fn after(self, inner: Rounds) -> Rounds {
        Rounds {
            rel: add(add(self.rel, inner.rel), mul(self.rel, inner.rel)),
            abs: add(self.abs, mul(inner.abs, 1.0 + self.rel)),
        }
    }

    /// The bound for an exact result of magnitude at most `x`.
    fn err(self, x: f64) -> f64 {
        add(mul(x, self.rel), self.abs)
    }
}

/// `|a - b|`: exact where Sterbenz's lemma makes the f64 subtraction exact
/// (`b/2 <= a <= 2b`, which holds for a hyperparameter and its rounding to
/// a format unless that rounding underflows or overflows), else rounded up.
fn difference(a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    if (a >= 0.0) == (b >= 0.0) && a.abs() <= 2.0 * b.abs() && b.abs() <= 2.0 * a.abs() {
        d
    } else {
        up(d)
    }
}

/// The hyperparameters as ATen's bfloat16 and float16 kernels take them
/// (`fast/docs/numerics.md`, "bfloat16 and float16"), as f64 values, with
/// their exact conversion errors against the f64 hyperparameters, for
/// [`one_step_half`]: `eps`, `-lr` and `weight_decay` rounded to the dtype
/// through f32, `1 - rho` subtracted in f64 and rounded to f32, `rho`
/// rounded to f32 on the for-loop path and to the dtype (through f32) with
/// `foreach`.
///
/// ```
/// use adadelta_difftest::bound::HalfScalars;
/// use adadelta_difftest::case::Hyper;
/// use half::bf16;
/// // bfloat16(0.9) = 0.8984375 on the foreach path only.
/// let h = Hyper { foreach: true, ..Hyper::default() };
/// assert_eq!(HalfScalars::<bf16>::new(&h).rho(), 0.8984375);
/// assert_eq!(HalfScalars::<bf16>::new(&Hyper::default()).rho(), f64::from(0.9f32));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HalfScalars<H> {
    rho: f64,
    c: f64,
    lr: f64,
    wd_exact: f64,
    e_rho: f64,
    e_c: f64,
    e_eps: f64,
    e_lr: f64,
    e_wd: f64,
    apply_wd: bool,
    /// The exact step's scalars for its f64 recomputation ([`trace`]).
    exact: Scalars<f64>,
    format: PhantomData<H>,
}

impl<H: Floating> HalfScalars<H> {
    /// Converts as ATen does and records the conversion errors.
    pub fn new(h: &crate::case::Hyper) -> Self {
        let f32_ = |x: f64| f64::from(x as f32);
        // Through f32 (Floating::from_f64 of a 16-bit dtype).
        let dt = |x: f64| H::from_f64(x).to_f64();
        let rho = if h.foreach { dt(h.rho) } else { f32_(h.rho) };
        let c64 = 1.0 - h.rho; // exact when rho >= 0.5 (Sterbenz), else within 2^-53 relative
        let c = f32_(c64);
        let (eps, nlr, wd) = (dt(h.eps), dt(-h.lr), dt(h.weight_decay));
        HalfScalars {
            rho,
            c,
            lr: h.lr,
            wd_exact: h.weight_decay,
            e_rho: difference(rho, h.rho),
            e_c: add(difference(c, c64), c64.abs() * f64::EPSILON / 2.0),
            e_eps: difference(eps, h.eps),
            e_lr: difference(nlr, -h.lr),
            e_wd: difference(wd, h.weight_decay),
            apply_wd: h.weight_decay != 0.0,
            exact: Scalars::new(h),
            format: PhantomData,
        }
    }

    /// `rho` as `mul_(rho)` takes it (an f32, or a value of the dtype on
    /// the `foreach` path).
    pub fn rho(&self) -> f64 {
        self.rho
    }
}

/// Bounds one element's step of a bfloat16 or float16 implementation
/// rounding as `rounding` says: [`Rounding::Once`] (every ATen op's exact
/// result rounded once to the dtype: fast's default numerics),
/// [`Rounding::Opmath`] (each op in f32, fused as ATen's vectorised
/// kernels fuse it, then rounded to the dtype: PyTorch, fast's
/// reproduce-libtorch) or [`Rounding::OpmathScalar`] (PyTorch's scalar
/// code, whose `add(alpha=)` is `dt(x + dt(alpha·y))`). The derivation is
/// `fast/docs/numerics.md`, "bfloat16 and float16: the bound".
///
/// Unlike [`one_step`], nothing is recomputed in the dtype: every
/// intermediate `X` of the exact step is recomputed in f64 from the inputs
/// with the exact hyperparameters, with the rigorous bound `F` of [`trace`]
/// on that recomputation's error, so `|X| <= |X̂| + F` and `|X| >= |X̂| -
/// F` hold; each op's rounding error is bounded at the magnitude of its
/// exact result, `|X| +` the error propagated into it. No bound is claimed
/// where that magnitude could exceed the dtype's largest finite value (an
/// overflow), where a recomputed intermediate is not finite, or where the
/// divisor `std` cannot be told from 0.
pub fn one_step_half<H: Floating>(
    s: &HalfScalars<H>,
    rounding: Rounding,
    p: H,
    g: H,
    v: H,
    u: H,
) -> StepBound {
    let (p, g, v, u) = (p.to_f64(), g.to_f64(), v.to_f64(), u.to_f64());
    // The exact intermediates in f64, their errors bounded as those of an
    // implementation that is this very recomputation (its magnitudes its
    // own, so the 1 + 2^-20 of `trace` is to spare), the SECOND_ORDER slack
    // applied as `one_step` applies it to its outputs.
    let Some(t) = trace::<f64>(&s.exact, SqrtAccuracy::CorrectlyRounded, p, g, v, u) else {
        return StepBound::NONE;
    };
    let hi = |x: Bounded| add(x.value.abs(), mul(x.err, SECOND_ORDER));
    let lo = |x: Bounded| down(x.value.abs() - mul(x.err, SECOND_ORDER)).max(0.0);
    let once = Rounds::nearest::<H>();
    let f32_op = Rounds::nearest::<f32>();
    let twice = once.after(f32_op);
    // The rounding of each op but addcmul's inner product and the
    // scalar code's add(alpha=).
    let op = match rounding {
        Rounding::Once => once,
        Rounding::Opmath | Rounding::OpmathScalar => twice,
    };
    let mut in_range = true;
    // An op whose exact result on exact operands has magnitude at most
    // `exact` and whose operands carry the error `prop`: its result's error.
    let mut rounded = |how: Rounds, exact: f64, prop: f64| {
        let x = add(exact, prop);
        in_range &= x <= H::MAX;
        add(prop, how.err(x))
    };
    let hi_c = add(s.c.abs(), s.e_c);
    // grad.add(param, alpha=weight_decay)
    let e_g2 = if s.apply_wd {
        let prop = mul(p.abs(), s.e_wd);
        if rounding == Rounding::OpmathScalar {
            let e_t = rounded(twice, mul(p.abs(), s.wd_exact.abs()), prop);
            rounded(twice, hi(t.g2), e_t)
        } else {
            rounded(op, hi(t.g2), prop)
        }
    } else {
        0.0
    };
    // square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    let e_vr = rounded(op, hi(t.vr), mul(v.abs(), s.e_rho));
    let prop_cg = prod(hi_c, s.e_c, hi(t.g2), e_g2);
    let e_cg = match rounding {
        // Once: c·g2 is inside addcmul's one rounding.
        Rounding::Once => prop_cg,
        _ => rounded(f32_op, hi(t.cg), prop_cg),
    };
    let e_v2 = rounded(
        op,
        hi(t.v2),
        add(e_vr, prod(hi(t.cg), e_cg, hi(t.g2), e_g2)),
    );
    // std = square_avg.add(eps).sqrt_()
    let e_a = rounded(op, hi(t.a), add(e_v2, s.e_eps));
    let e_std = rounded(op, hi(t.std), sqrt_prop(lo(t.a), e_a));
    // delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
    let e_b = rounded(op, hi(t.b), s.e_eps);
    let e_r = rounded(op, hi(t.r), sqrt_prop(lo(t.b), e_b));
    let e_q = rounded(op, hi(t.q), quot(hi(t.r), e_r, lo(t.std), e_std));
    let e_d = rounded(op, hi(t.d), prod(hi(t.q), e_q, hi(t.g2), e_g2));
    // acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    let e_ur = rounded(op, hi(t.ur), mul(u.abs(), s.e_rho));
    let prop_cd = prod(hi_c, s.e_c, hi(t.d), e_d);
    let e_cd = match rounding {
        Rounding::Once => prop_cd,
        _ => rounded(f32_op, hi(t.cd), prop_cd),
    };
    let e_u2 = rounded(op, hi(t.u2), add(e_ur, prod(hi(t.cd), e_cd, hi(t.d), e_d)));
    // param.add_(delta, alpha=-lr)
    let prop_p = prod(hi(t.d), e_d, s.lr.abs(), s.e_lr);
    let e_p2 = if rounding == Rounding::OpmathScalar {
        let e_t = rounded(twice, mul(s.lr.abs(), hi(t.d)), prop_p);
        rounded(twice, hi(t.p2), e_t)
    } else {
        rounded(op, hi(t.p2), prop_p)
    };
    if !in_range {
        return StepBound::NONE;
    }
    StepBound {
        param: e_p2,
        square_avg: e_v2,
        acc_delta: e_u2,
    }
}
