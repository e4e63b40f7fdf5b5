//! The square roots the kernel computes, each written once against
//! [`Lanes`]: [`Ieee`] (correctly rounded) and the three oneMKL VML recipes
//! that libtorch 2.13's `torch.sqrt` runs on x86-64 ([`Exha`], [`L9ha`],
//! [`Z0ha`]), written down op by op from their disassembly in torch 2.13.0's
//! `libtorch_cpu.so` (oneMKL 2024.2); see
//! [`guide::numerics`](crate::guide::numerics), "The two numerics of `fast`".
//!
//! Each oneMKL recipe is an approximation instruction refined in f32 and
//! reproduces oneMKL by running the same instruction and the same rounded
//! operations. Which recipe an instruction set can run is a trait bound
//! ([`MklLanes`], [`Rsqrt14`]), so that the compiler checks every pairing
//! the dispatch makes.

use super::lanes::Lanes;
#[cfg(target_arch = "x86_64")]
use super::lanes::{MklLanes, MklLanes64, Rsqrt14};

/// A square root, element-wise over the lanes of `L`.
pub(crate) trait Root<E: Copy + Default, L: Lanes<E>>: Copy + Send + Sync + 'static {
    /// The square root of every lane of `x`.
    fn root(self, lanes: L, x: L::V) -> L::V;
    /// The correctly rounded quotient `a / b` the update takes of two
    /// square roots: the hardware's division unless the recipe says how.
    #[inline(always)]
    fn div(self, lanes: L, a: L::V, b: L::V) -> L::V {
        lanes.div(a, b)
    }
}

/// The correctly rounded square root (`sqrtss`, `vsqrtps`, `fsqrt`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ieee;

impl<E: Copy + Default, L: Lanes<E>> Root<E, L> for Ieee {
    #[inline(always)]
    fn root(self, l: L, x: L::V) -> L::V {
        l.sqrt(x)
    }
}

/// The oneMKL recipes: x86-64 only (they are built on `rsqrtps` and
/// `vrsqrt14ps`).
#[cfg(target_arch = "x86_64")]
mod mkl {
    use super::*;

    /// `r` with the lanes set in `m` replaced by those of `other()`, which
    /// runs only if some lane is set: the rare-lane fallback of every recipe
    /// built on an approximation.
    #[inline(always)]
    pub(crate) fn replace_where<E: Copy + Default, L: Lanes<E>>(
        l: L,
        m: L::M,
        r: L::V,
        other: impl FnOnce() -> L::V,
    ) -> L::V {
        if l.any(m) {
            l.select(m, other(), r)
        } else {
            r
        }
    }

    /// `r` with the lanes set in `m` replaced by the IEEE square root of `x`:
    /// how every oneMKL recipe treats the inputs it does not refine.
    #[inline(always)]
    pub(crate) fn ieee_where<L: Lanes<f32>>(l: L, m: L::M, r: L::V, x: L::V) -> L::V {
        replace_where(l, m, r, || l.sqrt(x))
    }

    /// oneMKL's EXHA and L9HA: `rsqrtps`, then one Newton step on both the
    /// square root `s = x y` and the half reciprocal `h = y / 2`, and a final
    /// correction. EXHA rounds every multiply and add (`FUSED = false`), L9HA
    /// fuses every `a * b + c`; the order of operations is the same:
    ///
    /// ```text
    /// y = rsqrtps(x);  s = x y;  h = y 0.5
    /// e = 0.5 - s h;   s1 = e s + s;  h1 = e h + h
    /// r = h1 (x - s1 s1) + s1
    /// ```
    ///
    /// Lanes whose bits plus [`SPECIAL_OFFSET`] exceed the threshold as an
    /// `i32` get IEEE `sqrt` ([`EXHA_SPECIAL_ABOVE`], [`L9HA_SPECIAL_ABOVE`]).
    #[derive(Clone, Copy, Debug, Default)]
    pub(crate) struct Refined<const FUSED: bool>;

    /// oneMKL `mkl_vml_kernel_sSqrt_EXHAynn` (every non-Intel x86-64 CPU).
    pub(crate) type Exha = Refined<false>;
    /// oneMKL `mkl_vml_kernel_sSqrt_L9HAynn` (Intel with AVX2, without AVX-512).
    pub(crate) type L9ha = Refined<true>;

    impl<L: MklLanes, const FUSED: bool> Root<f32, L> for Refined<FUSED> {
        #[inline(always)]
        fn root(self, l: L, x: L::V) -> L::V {
            // a * b + c and c - a * b, fused or rounded twice.
            let mad = |a, b, c| {
                if FUSED {
                    l.mul_add(a, b, c)
                } else {
                    l.add(l.mul(a, b), c)
                }
            };
            let nmad = |a, b, c| {
                if FUSED {
                    l.neg_mul_add(a, b, c)
                } else {
                    l.sub(c, l.mul(a, b))
                }
            };
            let half = l.splat(0.5);
            let y = l.rsqrt12(x);
            let (s, h) = (l.mul(x, y), l.mul(y, half));
            let e = nmad(s, h, half);
            let (s1, h1) = (mad(e, s, s), mad(e, h, h));
            let r = mad(h1, nmad(s1, s1, x), s1);
            let above = if FUSED {
                L9HA_SPECIAL_ABOVE
            } else {
                EXHA_SPECIAL_ABOVE
            };
            ieee_where(l, l.bits_above(x, SPECIAL_OFFSET, above), r, x)
        }
    }

    /// The seed of oneMKL's float64 EXHA and L9HA, from the bits `a` of `x`:
    /// `rsqrtps` of x's top 23 mantissa bits as an f32 in [1, 4) (exponent
    /// by the parity of x's), and the power of two `sc` that scales it to
    /// `1/sqrt(x)`: `r = sc y` (exact).
    ///
    /// ```text
    /// b  = !a & 2^52
    /// f  = low32(((a & 0x001fffffe0000000) | (b + 0x07f0000000000000)) >> 29)
    /// y  = f64(rsqrtps(f));  sc = bits(((b - (a & 0x7ff0000000000000)) + 0xbfd0000000000000) >> 1)
    /// ```
    #[inline(always)]
    fn seed64<L: MklLanes64>(l: L, x: L::V) -> L::V {
        let b = l.and_bits(l.xor(x, l.splat(f64::from_bits(!0))), 0x0010_0000_0000_0000);
        let top = l.and_bits(x, 0x001f_ffff_e000_0000);
        let f = l.shr_bits(l.or_bits(top, l.add_bits(b, 0x07f0_0000_0000_0000)), 29);
        let e = l.sub_bits(b, l.and_bits(x, 0x7ff0_0000_0000_0000));
        let sc = l.shr_bits(l.add_bits(e, 0xbfd0_0000_0000_0000), 1);
        l.mul(sc, l.rsqrt12_low(f))
    }

    /// The float64 EXHA and L9HA send every lane whose bits plus
    /// [`SPECIAL_OFFSET_64`] exceed this as an `i64` to IEEE `sqrt`: with
    /// `hi` the top 32 bits, `(i32)(hi + 0x7ff00000) > (i32)0xffbfffff`,
    /// i.e. every pattern with the sign set, +0, positive subnormals, and
    /// `x >= 2^1022` (+inf and +NaN included). oneMKL's scalar helper gives
    /// IEEE's bits on those (measured on every subnormal and `>= 2^1022`
    /// value tested; negatives are NaN either way).
    pub(crate) const SPECIAL_ABOVE_64: i64 = 0xffbf_ffff_ffff_ffff_u64 as i64;
    /// The offset added before that comparison (`0x7ff00000` on the top half).
    pub(crate) const SPECIAL_OFFSET_64: u64 = 0x7ff0_0000_0000_0000;
    /// The float64 recipes' polynomial in `e = 1 - x r^2`: `C0..C3`, from
    /// libtorch_cpu.so's constants (about 1/2, 3/8, 5/16, 35/128).
    const C64: [u64; 4] = [
        0x3fdf_ffff_ffff_fe71,
        0x3fd8_0000_0000_00f6,
        0x3fd4_0000_b130_01d9,
        0x3fd1_8000_3233_8cbb,
    ];

    /// oneMKL `mkl_vml_kernel_dSqrt_EXHAynn`, every operation rounded alone:
    ///
    /// ```text
    /// r  = seed64(x);  rr = r r;  xh = bits(a & 0xfffffffff8000000);  xl = x - xh
    /// e  = (1 - xh rr) - xl rr
    /// p  = ((((e C3 + C2) e + C1) e + C0) e
    /// res = xh r + (xl r + (p r) x)
    /// ```
    impl<L: MklLanes64> Root<f64, L> for Refined<false> {
        #[inline(always)]
        fn root(self, l: L, x: L::V) -> L::V {
            let c = C64.map(|b| l.splat(f64::from_bits(b)));
            let r = seed64(l, x);
            let rr = l.mul(r, r);
            let xh = l.and_bits(x, 0xffff_ffff_f800_0000);
            let xl = l.sub(x, xh);
            let e = l.sub(l.sub(l.splat(1.0), l.mul(xh, rr)), l.mul(xl, rr));
            let p = l.add(l.mul(e, c[3]), c[2]);
            let p = l.add(l.mul(p, e), c[1]);
            let p = l.mul(l.add(l.mul(p, e), c[0]), e);
            let q = l.mul(l.mul(p, r), x);
            let res = l.add(l.mul(xh, r), l.add(l.mul(xl, r), q));
            let special = l.bits_above(x, SPECIAL_OFFSET_64, SPECIAL_ABOVE_64);
            replace_where(l, special, res, || l.sqrt(x))
        }
    }

    /// oneMKL `mkl_vml_kernel_dSqrt_L9HAynn`, fused:
    ///
    /// ```text
    /// r = seed64(x);  e = fma(-x, r r, 1)
    /// p = fma(fma(fma(C3, e, C2), e, C1), e, C0)
    /// res = fma(x, r, x (r (e p)))
    /// ```
    impl<L: MklLanes64> Root<f64, L> for Refined<true> {
        #[inline(always)]
        fn root(self, l: L, x: L::V) -> L::V {
            let c = C64.map(|b| l.splat(f64::from_bits(b)));
            let r = seed64(l, x);
            let e = l.neg_mul_add(x, l.mul(r, r), l.splat(1.0));
            let p = l.mul_add(l.mul_add(l.mul_add(c[3], e, c[2]), e, c[1]), e, c[0]);
            let res = l.mul_add(x, r, l.mul(x, l.mul(r, l.mul(e, p))));
            let special = l.bits_above(x, SPECIAL_OFFSET_64, SPECIAL_ABOVE_64);
            replace_where(l, special, res, || l.sqrt(x))
        }
    }

    /// oneMKL `mkl_vml_kernel_sSqrt_Z0HAynn` (Intel with AVX-512): `vrsqrt14ps`
    /// and one fused Newton step, scaled by 2^78 where the estimate exceeds 2^39
    /// (inputs below about 2^-78); IEEE `sqrt` for ±0, +inf and negatives:
    ///
    /// ```text
    /// y = vrsqrt14ps(x);  h = y 0.5;  s = x y
    /// r = fma(fma(-s, s, x), h, s)                          y <= 2^39
    /// r = fma(h 2^-78, fma(-(s 2^39), s 2^39, x 2^78), s)   y >  2^39
    /// ```
    ///
    /// `T` proves that `vrsqrt14ps` runs at the width of the lanes.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Z0ha<T>(pub T);

    impl<L: Lanes<f32>, T: Rsqrt14<L>> Root<f32, L> for Z0ha<T> {
        #[inline(always)]
        fn root(self, l: L, x: L::V) -> L::V {
            let y = self.0.rsqrt14(l, x);
            let h = l.mul(y, l.splat(0.5));
            let s = l.mul(x, y);
            let mut r = l.mul_add(l.neg_mul_add(s, s, x), h, s);
            let big = l.gt(y, l.splat(Z0HA_SCALE_ABOVE));
            if l.any(big) {
                let xs = l.mul(x, l.splat(TWO_78));
                let ss = l.mul(s, l.splat(TWO_39));
                let hs = l.mul(h, l.splat(TWO_M78));
                r = l.select(big, l.mul_add(hs, l.neg_mul_add(ss, ss, xs), s), r);
            }
            let special = l.or(l.le(x, l.splat(0.0)), l.eq(x, l.splat(f32::INFINITY)));
            ieee_where(l, special, r, x)
        }
    }

    /// oneMKL `mkl_vml_kernel_dSqrt_Z0HAynn` (Intel with AVX-512):
    /// `vrsqrt14pd`, one fused Newton step on both `g = x y` and `h = y / 2`
    /// and a fused correction, scaled by 2^916 where the estimate exceeds
    /// 2^458 (x below about 2^-916, subnormals included, which the
    /// instruction takes as they are); IEEE `sqrt` for ±0, ±inf and
    /// negatives (oneMKL's helper, where no arithmetic happens):
    ///
    /// ```text
    /// y = vrsqrt14pd(x);  h = y 0.5;  g = y x
    /// e = fma(-g, h, 0.5);  g1 = fma(e, g, g);  h1 = fma(e, h, h)
    /// r = fma(fma(-g1, g1, x), h1, g1)                                y <= 2^458
    /// r = fma(h1 2^-916, fma(-(g1 2^458), g1 2^458, x 2^916), g1)     y >  2^458
    /// ```
    ///
    /// `T` proves that `vrsqrt14pd` runs at the width of the lanes.
    impl<L: Lanes<f64>, T: Rsqrt14<L, f64>> Root<f64, L> for Z0ha<T> {
        #[inline(always)]
        fn root(self, l: L, x: L::V) -> L::V {
            let y = self.0.rsqrt14(l, x);
            let half = l.splat(0.5);
            let (h, g) = (l.mul(y, half), l.mul(y, x));
            let e = l.neg_mul_add(g, h, half);
            let (g1, h1) = (l.mul_add(e, g, g), l.mul_add(e, h, h));
            let mut r = l.mul_add(l.neg_mul_add(g1, g1, x), h1, g1);
            let big = l.gt(y, l.splat(f64::from_bits(Z0HA64_SCALE_ABOVE)));
            if l.any(big) {
                let xs = l.mul(x, l.splat(f64::from_bits(TWO_916)));
                let gs = l.mul(g1, l.splat(f64::from_bits(Z0HA64_SCALE_ABOVE)));
                let hs = l.mul(h1, l.splat(f64::from_bits(TWO_M916)));
                r = l.select(big, l.mul_add(hs, l.neg_mul_add(gs, gs, xs), g1), r);
            }
            let special = l.or(l.le(x, l.splat(0.0)), l.eq(x, l.splat(f64::INFINITY)));
            replace_where(l, special, r, || l.sqrt(x))
        }
    }

    /// The float64 Z0HA's threshold on `vrsqrt14pd(x)` above which it
    /// scales, 2^458 (`0x5c90000000000000`), which is also the factor for
    /// `g1`; the bits of 2^916 and 2^-916, its other factors.
    pub(crate) const Z0HA64_SCALE_ABOVE: u64 = 0x5c90_0000_0000_0000;
    pub(crate) const TWO_916: u64 = (1023 + 916) << 52;
    pub(crate) const TWO_M916: u64 = (1023 - 916) << 52;

    /// EXHA and L9HA send every lane whose `bits + 0x7f80_0000` (wrapping) is
    /// greater, as an `i32`, than this threshold to IEEE `sqrt`. With
    /// [`L9HA_SPECIAL_ABOVE`] that is exactly the inputs that are not positive
    /// normal finite numbers (±0, subnormals, negatives, ±inf, NaN); EXHA's lower
    /// threshold also takes the top 4096 patterns, `0x7f7ff000..=0x7f7fffff`,
    /// where its refinement would square to infinity.
    pub(crate) const EXHA_SPECIAL_ABOVE: i32 = 0xfeff_efff_u32 as i32;
    /// See [`EXHA_SPECIAL_ABOVE`]; the constant is L9HA's own (`0xfeffffff`).
    pub(crate) const L9HA_SPECIAL_ABOVE: i32 = 0xfeff_ffff_u32 as i32;
    /// The offset both add before that signed comparison (`0x7f800000`).
    pub(crate) const SPECIAL_OFFSET: u32 = 0x7f80_0000;

    /// Z0HA's threshold on `vrsqrt14ps(x)` above which it scales (x below ~2^-78).
    pub(crate) const Z0HA_SCALE_ABOVE: f32 = 549_755_813_888.0; // 2^39
    /// 2^78, 2^39 and 2^-78, Z0HA's scale factors.
    pub(crate) const TWO_78: f32 = 302_231_454_903_657_293_676_544.0;
    pub(crate) const TWO_39: f32 = 549_755_813_888.0;
    pub(crate) const TWO_M78: f32 = 3.308_722_5e-24;
}
#[cfg(target_arch = "x86_64")]
pub(crate) use mkl::*;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn special_thresholds() {
        let special = |b: u32, t: i32| (b.wrapping_add(SPECIAL_OFFSET) as i32) > t;
        for t in [EXHA_SPECIAL_ABOVE, L9HA_SPECIAL_ABOVE] {
            for b in [0u32, 1, 0x007f_ffff, 0x8000_0000, 0x8080_0000, 0xff7f_ffff] {
                assert!(special(b, t), "{b:#x}");
            }
            for b in [0x7f80_0000u32, 0x7fc0_0000, 0xff80_0000, 0xffc0_0000] {
                assert!(special(b, t), "{b:#x}");
            }
            for b in [0x0080_0000u32, 0x3f80_0000, 0x7f7f_efff] {
                assert!(!special(b, t), "{b:#x}");
            }
        }
        assert!(special(0x7f7f_f000, EXHA_SPECIAL_ABOVE));
        assert!(!special(0x7f7f_ffff, L9HA_SPECIAL_ABOVE));
        assert_eq!(TWO_78, 2f32.powi(78));
        assert_eq!(TWO_39, 2f32.powi(39));
        assert_eq!(TWO_M78, 2f32.powi(-78));
        assert_eq!(Z0HA_SCALE_ABOVE, TWO_39);
        assert_eq!(f64::from_bits(Z0HA64_SCALE_ABOVE), 2f64.powi(458));
        assert_eq!(f64::from_bits(TWO_916), 2f64.powi(916));
        assert_eq!(f64::from_bits(TWO_M916), 2f64.powi(-916));
    }
}
