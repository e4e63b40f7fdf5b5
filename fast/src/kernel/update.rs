//! The Adadelta update, written once: [`update`] is the math of one vector
//! of elements, generic over the ATen ops ([`Aten`]: an element type and a
//! numerics on an instruction set), and [`Sweep`] runs it over a [`Piece`]
//! (whole vectors, then the tail through the same code). Every instruction
//! set, element type and numerics instantiates this.
//!
//! Each line of [`update`] is one ATen op of PyTorch 2.13's single-tensor
//! path (see the [kernel docs](super)); how it rounds is the [`Aten`]'s.

use super::aten::Aten;
use super::element::Element;
use super::job::Piece;
use super::lanes::Task;
use super::torch_tail;
use crate::Coefficients;

/// A group's coefficients, each in every lane.
pub(crate) struct Splat<V> {
    /// `-0.0` to negate the gradient (`maximize`), else `+0.0`.
    sign: V,
    weight_decay: V,
    one_minus_rho: V,
    rho: V,
    eps: V,
    neg_lr: V,
}

impl<V: Copy> Splat<V> {
    #[inline(always)]
    fn new<E: Element, A: Aten<E, V = V>>(a: A, c: &Coefficients) -> Self {
        let s = c.scalars::<E>();
        Splat {
            sign: a.splat(E::Opmath::from(if c.maximize { -0.0 } else { 0.0 })),
            weight_decay: a.splat(s.weight_decay),
            one_minus_rho: a.splat(s.one_minus_rho),
            rho: a.splat(s.rho),
            eps: a.splat(s.eps),
            neg_lr: a.splat(s.neg_lr),
        }
    }
}

/// One vector of the update: returns the new `(param, square_avg,
/// acc_delta)`. `WD` is whether weight decay applies.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn update<E: Element, A: Aten<E>, const WD: bool>(
    a: A,
    k: &Splat<A::V>,
    p: A::V,
    g: A::V,
    v: A::V,
    u: A::V,
) -> (A::V, A::V, A::V) {
    // maximize: g = -g (a sign flip, exact)
    let g = a.xor(g, k.sign);
    // grad.add(param, alpha=weight_decay)
    let g = if WD {
        a.add_alpha(g, p, k.weight_decay)
    } else {
        g
    };
    // square_avg.mul_(rho).addcmul_(g, g, value=1-rho)
    let v = a.addcmul(a.mul_scalar(v, k.rho), g, g, k.one_minus_rho);
    // std = square_avg.add(eps).sqrt_()
    let std = a.sqrt(a.add(v, k.eps));
    // delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    let d = a.mul(a.div(a.sqrt(a.add(u, k.eps)), std), g);
    // acc_delta.mul_(rho).addcmul_(delta, delta, value=1-rho)
    let u = a.addcmul(a.mul_scalar(u, k.rho), d, d, k.one_minus_rho);
    // param.add_(delta, alpha=-lr)
    let p = a.add_alpha(p, d, k.neg_lr);
    (p, v, u)
}

/// The update over one piece, as a [`Task`] for [`Simd::vectorize`](super::lanes::Simd::vectorize).
/// Where the ops have a [scalar variant](Aten::torch_scalar), the elements
/// PyTorch (with `torch_threads` intra-op threads) computes in scalar code
/// take it ([`torch_tail`]).
pub(crate) struct Sweep<'a, E, A> {
    pub aten: A,
    pub piece: Piece<'a, E>,
    pub torch_threads: usize,
}

impl<E: Element, A: Aten<E>> Task<A::Isa> for Sweep<'_, E, A> {
    type Output = ();

    #[inline(always)]
    fn run(self, _: A::Isa) {
        let k = Splat::new(self.aten, self.piece.coeffs);
        let Some(scalar) = self.aten.torch_scalar() else {
            return whole(self.aten, &k, self.piece);
        };
        let mut rest = self.piece;
        while rest.len() > 0 {
            let (is_scalar, end) = torch_tail::run_at(rest.at, rest.tensor, self.torch_threads);
            let k_run = (end - rest.at).min(rest.len());
            let (run, after) = rest.split_at(k_run);
            if is_scalar {
                whole(scalar, &k, run)
            } else {
                whole(self.aten, &k, run)
            }
            rest = after;
        }
    }
}

/// [`sweep`] with the piece's weight decay.
#[inline(always)]
fn whole<E: Element, A: Aten<E>>(a: A, k: &Splat<A::V>, piece: Piece<'_, E>) {
    if piece.coeffs.apply_weight_decay {
        sweep::<E, A, true>(a, k, piece)
    } else {
        sweep::<E, A, false>(a, k, piece)
    }
}

#[inline(always)]
fn sweep<E: Element, A: Aten<E>, const WD: bool>(a: A, k: &Splat<A::V>, piece: Piece<'_, E>) {
    let Piece {
        param,
        grad,
        square_avg,
        acc_delta,
        ..
    } = piece;
    let n = param.len();
    assert!(grad.len() == n && square_avg.len() == n && acc_delta.len() == n);
    let mut ps = param.chunks_exact_mut(A::N);
    let mut gs = grad.chunks_exact(A::N);
    let mut vs = square_avg.chunks_exact_mut(A::N);
    let mut us = acc_delta.chunks_exact_mut(A::N);
    for (((p, g), v), u) in (&mut ps).zip(&mut gs).zip(&mut vs).zip(&mut us) {
        block::<E, A, WD, true>(a, k, p, g, v, u);
    }
    let (p, g) = (ps.into_remainder(), gs.remainder());
    let (v, u) = (vs.into_remainder(), us.into_remainder());
    if !p.is_empty() {
        block::<E, A, WD, false>(a, k, p, g, v, u);
    }
}

/// The update of `N` elements (`FULL`) or of fewer, the tail.
#[inline(always)]
fn block<E: Element, A: Aten<E>, const WD: bool, const FULL: bool>(
    a: A,
    k: &Splat<A::V>,
    p: &mut [E],
    g: &[E],
    v: &mut [E],
    u: &mut [E],
) {
    let load = |s: &[E]| if FULL { a.load(s) } else { a.load_part(s) };
    let (np, nv, nu) = update::<E, A, WD>(a, k, load(p), load(g), load(v), load(u));
    for (x, s) in [(np, p), (nv, v), (nu, u)] {
        if FULL {
            a.store(x, s)
        } else {
            a.store_part(x, s)
        }
    }
}

/// The square root alone over a slice, in place, as a [`Task`]: the exact
/// operation [`update`] applies, for verifying it.
pub(crate) struct Roots<'a, E, A> {
    pub aten: A,
    pub x: &'a mut [E],
}

impl<E: Element, A: Aten<E>> Task<A::Isa> for Roots<'_, E, A> {
    type Output = ();

    #[inline(always)]
    fn run(self, _: A::Isa) {
        let a = self.aten;
        let mut xs = self.x.chunks_exact_mut(A::N);
        for x in &mut xs {
            a.store(a.sqrt(a.load(x)), x);
        }
        let rest = xs.into_remainder();
        if !rest.is_empty() {
            a.store_part(a.sqrt(a.load_part(rest)), rest);
        }
    }
}

/// The division alone, `a[i] / b[i]` into `a[i]`, as a [`Task`]: the exact
/// operation [`update`] applies to the two square roots, for verifying it.
pub(crate) struct Quotients<'a, E, A> {
    pub aten: A,
    pub a: &'a mut [E],
    pub b: &'a [E],
}

impl<E: Element, A: Aten<E>> Task<A::Isa> for Quotients<'_, E, A> {
    type Output = ();

    #[inline(always)]
    fn run(self, _: A::Isa) {
        let at = self.aten;
        assert_eq!(self.a.len(), self.b.len());
        let mut xs = self.a.chunks_exact_mut(A::N);
        let mut ys = self.b.chunks_exact(A::N);
        for (x, y) in (&mut xs).zip(&mut ys) {
            at.store(at.div(at.load(x), at.load(y)), x);
        }
        let (x, y) = (xs.into_remainder(), ys.remainder());
        if !x.is_empty() {
            at.store_part(at.div(at.load_part(x), at.load_part(y)), x);
        }
    }
}
