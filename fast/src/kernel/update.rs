//! The Adadelta update, written once: [`update`] is the math of one vector
//! of elements, generic over the lanes and the square root, and [`Sweep`]
//! runs it over a [`Piece`] (whole vectors, then the tail through the same
//! code). Every instruction set and every numerics instantiates this.
//!
//! Each line of [`update`] is one ATen op of PyTorch 2.13's single-tensor
//! path, rounded as that op's CPU kernel rounds it on x86-64 builds with
//! AVX2/AVX-512 (see the [kernel docs](super)).

use super::element::Element;
use super::job::Piece;
use super::lanes::{Lanes, Task};
use super::recipe::Root;
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
    fn new<E: Element, L: Lanes<E, V = V>>(l: L, c: &Coefficients) -> Self {
        let s = c.scalars::<E>();
        Splat {
            sign: l.splat(if c.maximize {
                E::NEG_ZERO
            } else {
                E::default()
            }),
            weight_decay: l.splat(s.weight_decay),
            one_minus_rho: l.splat(s.one_minus_rho),
            rho: l.splat(s.rho),
            eps: l.splat(s.eps),
            neg_lr: l.splat(s.neg_lr),
        }
    }
}

/// One vector of the update: returns the new `(param, square_avg,
/// acc_delta)`. `WD` is whether weight decay applies.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn update<E, L, R, const WD: bool>(
    l: L,
    root: R,
    k: &Splat<L::V>,
    p: L::V,
    g: L::V,
    v: L::V,
    u: L::V,
) -> (L::V, L::V, L::V)
where
    E: Copy + Default,
    L: Lanes<E>,
    R: Root<E, L>,
{
    // maximize: g = -g (a sign flip, exact)
    let g = l.xor(g, k.sign);
    // grad.add(param, alpha=weight_decay)
    let g = if WD {
        l.mul_add(p, k.weight_decay, g)
    } else {
        g
    };
    // square_avg.mul_(rho).addcmul_(g, g, value=1-rho)
    let v = l.mul_add(l.mul(k.one_minus_rho, g), g, l.mul(v, k.rho));
    // std = square_avg.add(eps).sqrt_()
    let std = root.root(l, l.add(v, k.eps));
    // delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    let d = l.mul(root.div(l, root.root(l, l.add(u, k.eps)), std), g);
    // acc_delta.mul_(rho).addcmul_(delta, delta, value=1-rho)
    let u = l.mul_add(l.mul(k.one_minus_rho, d), d, l.mul(u, k.rho));
    // param.add_(delta, alpha=-lr)
    let p = l.mul_add(d, k.neg_lr, p);
    (p, v, u)
}

/// The update over one piece, as a [`Task`] for [`Simd::vectorize`](super::lanes::Simd::vectorize).
pub(crate) struct Sweep<'a, E, R> {
    pub root: R,
    pub piece: Piece<'a, E>,
}

impl<E: Element, L: Lanes<E>, R: Root<E, L>> Task<L> for Sweep<'_, E, R> {
    type Output = ();

    #[inline(always)]
    fn run(self, l: L) {
        let k = Splat::new(l, self.piece.coeffs);
        if self.piece.coeffs.apply_weight_decay {
            sweep::<E, L, R, true>(l, self.root, &k, self.piece)
        } else {
            sweep::<E, L, R, false>(l, self.root, &k, self.piece)
        }
    }
}

#[inline(always)]
fn sweep<E: Element, L: Lanes<E>, R: Root<E, L>, const WD: bool>(
    l: L,
    root: R,
    k: &Splat<L::V>,
    piece: Piece<'_, E>,
) {
    let Piece {
        param,
        grad,
        square_avg,
        acc_delta,
        ..
    } = piece;
    let n = param.len();
    assert!(grad.len() == n && square_avg.len() == n && acc_delta.len() == n);
    let mut ps = param.chunks_exact_mut(L::N);
    let mut gs = grad.chunks_exact(L::N);
    let mut vs = square_avg.chunks_exact_mut(L::N);
    let mut us = acc_delta.chunks_exact_mut(L::N);
    for (((p, g), v), u) in (&mut ps).zip(&mut gs).zip(&mut vs).zip(&mut us) {
        block::<E, L, R, WD, true>(l, root, k, p, g, v, u);
    }
    let (p, g) = (ps.into_remainder(), gs.remainder());
    let (v, u) = (vs.into_remainder(), us.into_remainder());
    if !p.is_empty() {
        block::<E, L, R, WD, false>(l, root, k, p, g, v, u);
    }
}

/// The update of `N` elements (`FULL`) or of fewer, the tail.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<E: Element, L: Lanes<E>, R: Root<E, L>, const WD: bool, const FULL: bool>(
    l: L,
    root: R,
    k: &Splat<L::V>,
    p: &mut [E],
    g: &[E],
    v: &mut [E],
    u: &mut [E],
) {
    let load = |s: &[E]| if FULL { l.load(s) } else { l.load_part(s) };
    let (np, nv, nu) = update::<E, L, R, WD>(l, root, k, load(p), load(g), load(v), load(u));
    for (x, s) in [(np, p), (nv, v), (nu, u)] {
        if FULL {
            l.store(x, s)
        } else {
            l.store_part(x, s)
        }
    }
}

/// The square root alone over a slice, in place, as a [`Task`]: the exact
/// operation [`update`] applies, for verifying it.
pub(crate) struct Roots<'a, E, R> {
    pub root: R,
    pub x: &'a mut [E],
}

impl<E: Element, L: Lanes<E>, R: Root<E, L>> Task<L> for Roots<'_, E, R> {
    type Output = ();

    #[inline(always)]
    fn run(self, l: L) {
        let mut xs = self.x.chunks_exact_mut(L::N);
        for x in &mut xs {
            l.store(self.root.root(l, l.load(x)), x);
        }
        let rest = xs.into_remainder();
        if !rest.is_empty() {
            l.store_part(self.root.root(l, l.load_part(rest)), rest);
        }
    }
}

/// The division alone, `a[i] / b[i]` into `a[i]`, as a [`Task`]: the exact
/// operation [`update`] applies to the two square roots, for verifying it.
pub(crate) struct Quotients<'a, E, R> {
    pub root: R,
    pub a: &'a mut [E],
    pub b: &'a [E],
}

impl<E: Element, L: Lanes<E>, R: Root<E, L>> Task<L> for Quotients<'_, E, R> {
    type Output = ();

    #[inline(always)]
    fn run(self, l: L) {
        assert_eq!(self.a.len(), self.b.len());
        let mut xs = self.a.chunks_exact_mut(L::N);
        let mut ys = self.b.chunks_exact(L::N);
        for (x, y) in (&mut xs).zip(&mut ys) {
            l.store(self.root.div(l, l.load(x), l.load(y)), x);
        }
        let (x, y) = (xs.into_remainder(), ys.remainder());
        if !x.is_empty() {
            l.store_part(self.root.div(l, l.load_part(x), l.load_part(y)), x);
        }
    }
}
