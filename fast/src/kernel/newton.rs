//! The correctly rounded square root and division computed without the
//! CPU's divide unit: AVX-512's 14-bit estimates (`vrsqrt14ps`,
//! `vrcp14ps`), one Newton step in FMA, and an exact final correction. The
//! bits are those of `vsqrtps` and `vdivps` (proved in
//! [`guide::numerics`](crate::guide::numerics), "Square root and division
//! from estimates"; checked over all 2^32 inputs for the square root and
//! against the MPFR oracle for the division); only the throughput differs.
//! Where `vsqrtps`/`vdivps` limit a step (a divide unit that two
//! hyperthreads share), trading them for FMA-port work can pay.
//!
//! Lanes outside the domain each proof covers (positive normal numbers of
//! moderate size: far from overflow and underflow) go to `vsqrtps`/`vdivps`
//! in a branch that real optimizer state never takes.
//!
//! ```text
//! sqrt:  y = rsqrt14(x);  s = x y;  h = y/2;  c = fma(fma(-s, s, x), h, s)
//! div:   y = rcp14(b);  y = fma(fma(-b, y, 1), y, y);  q = a y;  c = fma(fma(-b, q, a), y, q)
//! then, with c+ and c- its neighbours and r the residual (x - c c, or a - b c):
//!        c+ if r > k (c+ - c);  c- if r + k (c - c-) <= 0;  else c
//!        (k = c for the square root, b/2 for the division)
//! ```

use super::lanes::NewtonLanes;
use super::recipe::{ieee_where, replace_where, Root};

/// Square roots by [`sqrt`] and divisions by [`div`] where `ROOT` and `DIV`
/// are set; `R`'s square root (the correctly rounded one, or a oneMKL
/// recipe) where `ROOT` is not, and `vdivps` where `DIV` is not.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Newton<R, const ROOT: bool, const DIV: bool>(pub R);

impl<L: NewtonLanes, R: Root<f32, L>, const ROOT: bool, const DIV: bool> Root<f32, L>
    for Newton<R, ROOT, DIV>
{
    #[inline(always)]
    fn root(self, l: L, x: L::V) -> L::V {
        if ROOT {
            sqrt(l, x)
        } else {
            self.0.root(l, x)
        }
    }

    #[inline(always)]
    fn div(self, l: L, a: L::V, b: L::V) -> L::V {
        if DIV {
            div(l, a, b)
        } else {
            l.div(a, b)
        }
    }
}

/// The bits of 2^-100 and 2^100: [`sqrt`]'s domain is `SQRT_LO..SQRT_HI`.
pub(crate) const SQRT_LO: u32 = 0x0d80_0000;
/// See [`SQRT_LO`].
pub(crate) const SQRT_HI: u32 = 0x7180_0000;
/// The bits of 2^-30 and 2^30: [`div`]'s domain, for both operands.
pub(crate) const DIV_LO: u32 = 0x3080_0000;
/// See [`DIV_LO`].
pub(crate) const DIV_HI: u32 = 0x4e80_0000;

/// The correctly rounded square root of every lane.
#[inline(always)]
pub(crate) fn sqrt<L: NewtonLanes>(l: L, x: L::V) -> L::V {
    let y = l.rsqrt14(x);
    let s = l.mul(x, y);
    let h = l.mul(y, l.splat(0.5));
    let c = l.mul_add(l.neg_mul_add(s, s, x), h, s);
    let r = l.neg_mul_add(c, c, x);
    let c = correct(l, c, r, c);
    ieee_where(l, l.bits_outside(x, SQRT_LO, SQRT_HI), c, x)
}

/// The correctly rounded quotient `a / b` of every lane.
#[inline(always)]
pub(crate) fn div<L: NewtonLanes>(l: L, a: L::V, b: L::V) -> L::V {
    let one = l.splat(1.0);
    let y = l.rcp14(b);
    let y = l.mul_add(l.neg_mul_add(b, y, one), y, y);
    let q = l.mul(a, y);
    let c = l.mul_add(l.neg_mul_add(b, q, a), y, q);
    let r = l.neg_mul_add(b, c, a);
    let c = correct(l, c, r, l.mul(b, l.splat(0.5)));
    let outside = l.or(
        l.bits_outside(a, DIV_LO, DIV_HI),
        l.bits_outside(b, DIV_LO, DIV_HI),
    );
    replace_where(l, outside, c, || l.div(a, b))
}

/// The exact correction: `c` (within 0.6 of a step of the grid from the
/// true value), its successor or its predecessor, by the residual `r` and
/// the scale `k` of the proofs.
#[inline(always)]
fn correct<L: NewtonLanes>(l: L, c: L::V, r: L::V, k: L::V) -> L::V {
    let (up, down) = (l.step_bits(c, 1), l.step_bits(c, -1));
    let go_up = l.gt(r, l.mul(k, l.sub(up, c)));
    let go_down = l.le(l.mul_add(k, l.sub(c, down), r), l.splat(0.0));
    l.select(go_up, up, l.select(go_down, down, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_the_powers_of_two_the_proofs_assume() {
        assert_eq!(f32::from_bits(SQRT_LO), 2f32.powi(-100));
        assert_eq!(f32::from_bits(SQRT_HI), 2f32.powi(100));
        assert_eq!(f32::from_bits(DIV_LO), 2f32.powi(-30));
        assert_eq!(f32::from_bits(DIV_HI), 2f32.powi(30));
    }
}
