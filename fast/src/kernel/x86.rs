//! The x86-64 instruction sets: AVX2 + FMA (8 f32 or 4 f64 lanes) and
//! AVX-512F (16 or 8 lanes, masked tails), as [`Lanes`] types, with AVX-512's 14-bit estimates
//! where the CPU has them ([`NewtonLanes`], and [`Rsqrt14`] for the scalar
//! path's `vrsqrt14ss`). A leaf: each operation is the
//! one intrinsic that rounds as the scalar operation of the same name does
//! (Rust never contracts or reassociates intrinsics).
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::cpu::Cpu;
use super::lanes::{
    intrinsic_ops, simd_door, Lanes, MklLanes, MklLanes64, NewtonLanes, Rsqrt14, Scalar, Simd,
};

/// AVX2 + FMA, 8 lanes. With `VL`, also AVX-512F and AVX-512VL, so that
/// `vrsqrt14ps ymm` (oneMKL's Z0HA on 8 lanes) runs inline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2<const VL: bool>(());

impl<const VL: bool> Avx2<VL> {
    /// The proof, if this CPU has the features.
    pub fn new(cpu: &Cpu) -> Option<Self> {
        (cpu.avx2_fma && (!VL || (cpu.avx512f && cpu.avx512vl))).then_some(Avx2(()))
    }
}

simd_door!(Avx2<false>, "avx2,fma");
simd_door!(Avx2<true>, "avx2,fma,avx512f,avx512vl");

/// `Lanes<$e>` for `Avx2<VL>`, from its intrinsics for that element type
/// (each one instruction that rounds as the scalar operation does).
macro_rules! avx2_lanes {
    ($e:ty, $v:ty, $n:literal, [$set1:path, $loadu:path, $storeu:path, $sqrt:path, $add:path,
        $sub:path, $mul:path, $div:path, $xor:path, $or:path, $fmadd:path, $fnmadd:path,
        $cmp:ident, $movemask:path, $blendv:path]) => {
        impl<const VL: bool> Lanes<$e> for Avx2<VL>
        where
            Avx2<VL>: Simd,
        {
            type V = $v;
            type M = $v;
            const N: usize = $n;

            intrinsic_ops! { memory($e): splat = $set1, load = $loadu, store = $storeu; }
            intrinsic_ops! { unary: sqrt = $sqrt; }
            intrinsic_ops! {
                binary: add = $add, sub = $sub, mul = $mul, div = $div, xor = $xor, or = $or;
            }
            intrinsic_ops! { ternary: mul_add = $fmadd, neg_mul_add = $fnmadd; }
            intrinsic_ops! {
                gt(a: $v, b: $v) -> $v = $cmp::<_CMP_GT_OQ>(a, b);
                le(a: $v, b: $v) -> $v = $cmp::<_CMP_LE_OQ>(a, b);
                eq(a: $v, b: $v) -> $v = $cmp::<_CMP_EQ_OQ>(a, b);
                any(m: $v) -> bool = $movemask(m) != 0;
                select(m: $v, a: $v, b: $v) -> $v = $blendv(b, a, m);
            }
        }
    };
}

avx2_lanes! { f32, __m256, 8, [_mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_sqrt_ps,
_mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_xor_ps, _mm256_or_ps,
_mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_cmp_ps, _mm256_movemask_ps, _mm256_blendv_ps] }
avx2_lanes! { f64, __m256d, 4, [_mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_sqrt_pd,
_mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd, _mm256_div_pd, _mm256_xor_pd, _mm256_or_pd,
_mm256_fmadd_pd, _mm256_fnmadd_pd, _mm256_cmp_pd, _mm256_movemask_pd, _mm256_blendv_pd] }

impl<const VL: bool> MklLanes for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        rsqrt12(x: __m256) -> __m256 = _mm256_rsqrt_ps(x);
        bits_above(x: __m256, offset: u32, above: i32) -> __m256 = {
            let t = _mm256_add_epi32(_mm256_castps_si256(x), _mm256_set1_epi32(offset as i32));
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(t, _mm256_set1_epi32(above)))
        };
    }
}

/// The integer operations of [`MklLanes64`] on an f64 vector `$v` through
/// its integer type's intrinsics: the casts both ways, `and`, `or`, 64-bit
/// `add`, `sub`, logical shift right by a count, and 64-bit `set1`.
macro_rules! bit_ops {
    ($v:ty, [$to:path, $from:path, $and:path, $or:path, $add:path, $sub:path, $srl:path,
        $set1:path]) => {
        intrinsic_ops! {
            and_bits(a: $v, mask: u64) -> $v = $from($and($to(a), $set1(mask as i64)));
            or_bits(a: $v, b: $v) -> $v = $from($or($to(a), $to(b)));
            add_bits(a: $v, k: u64) -> $v = $from($add($to(a), $set1(k as i64)));
            sub_bits(a: $v, b: $v) -> $v = $from($sub($to(a), $to(b)));
            shr_bits(a: $v, n: u32) -> $v = $from($srl($to(a), _mm_cvtsi32_si128(n as i32)));
        }
    };
}

impl<const VL: bool> MklLanes64 for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    bit_ops! { __m256d, [_mm256_castpd_si256, _mm256_castsi256_pd, _mm256_and_si256,
    _mm256_or_si256, _mm256_add_epi64, _mm256_sub_epi64, _mm256_srl_epi64, _mm256_set1_epi64x] }
    intrinsic_ops! {
        rsqrt12_low(a: __m256d) -> __m256d = {
            // The low dword of each quadword, gathered into four f32 lanes.
            let lows = _mm256_permutevar8x32_epi32(
                _mm256_castpd_si256(a),
                _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6),
            );
            _mm256_cvtps_pd(_mm_rsqrt_ps(_mm_castsi128_ps(_mm256_castsi256_si128(lows))))
        };
        bits_above(x: __m256d, offset: u64, above: i64) -> __m256d = {
            let t = _mm256_add_epi64(_mm256_castpd_si256(x), _mm256_set1_epi64x(offset as i64));
            _mm256_castsi256_pd(_mm256_cmpgt_epi64(t, _mm256_set1_epi64x(above)))
        };
    }
}

impl NewtonLanes for Avx2<true> {
    intrinsic_ops! { unary: rsqrt14 = _mm256_rsqrt14_ps, rcp14 = _mm256_rcp14_ps; }
    intrinsic_ops! {
        step_bits(x: __m256, k: i32) -> __m256 =
            _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(x), _mm256_set1_epi32(k)));
        bits_outside(x: __m256, lo: u32, hi: u32) -> __m256 = {
            // bits - lo >= hi - lo, unsigned: max(t, n) == t.
            let t = _mm256_sub_epi32(_mm256_castps_si256(x), _mm256_set1_epi32(lo as i32));
            let n = _mm256_set1_epi32(hi.wrapping_sub(lo) as i32);
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(t, n), t))
        };
    }
}

/// AVX-512F with AVX2 and FMA, 16 lanes; tails through masked loads and
/// stores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The proof, if this CPU has the features.
    pub fn new(cpu: &Cpu) -> Option<Self> {
        (cpu.avx2_fma && cpu.avx512f).then_some(Avx512(()))
    }
}

simd_door!(Avx512, "avx512f,avx2,fma");

/// The mask of the first `n` (< 16) lanes (as a `__mmask8` for f64's
/// eight, where `n < 8`).
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    debug_assert!(n < 16);
    (1u16 << n) - 1
}

/// `Lanes<$e>` for `Avx512`, from its intrinsics for that element type;
/// tails through masked loads and stores (`$mask`, `N` lanes).
macro_rules! avx512_lanes {
    ($e:ty, $v:ty, $mask:ty, $n:literal, [$set1:path, $loadu:path, $storeu:path, $maskz_loadu:path,
        $mask_storeu:path, $to_si:path, $from_si:path, $sqrt:path, $add:path, $sub:path,
        $mul:path, $div:path, $fmadd:path, $fnmadd:path, $cmp:ident, $blend:path]) => {
        impl Lanes<$e> for Avx512 {
            type V = $v;
            type M = $mask;
            const N: usize = $n;

            intrinsic_ops! { memory($e): splat = $set1, load = $loadu, store = $storeu; }
            intrinsic_ops! {
                load_part(s: &[$e]) -> $v = {
                    // Only the first `s.len()` (< N) lanes are read; masked-off
                    // lanes are not accessed (their faults are suppressed).
                    $maskz_loadu(first(s.len()) as $mask, s.as_ptr())
                };
                store_part(v: $v, s: &mut [$e]) -> () = {
                    $mask_storeu(s.as_mut_ptr(), first(s.len()) as $mask, v)
                };
                xor(a: $v, b: $v) -> $v = $from_si(_mm512_xor_si512($to_si(a), $to_si(b)));
            }
            intrinsic_ops! { unary: sqrt = $sqrt; }
            intrinsic_ops! { binary: add = $add, sub = $sub, mul = $mul, div = $div; }
            intrinsic_ops! { ternary: mul_add = $fmadd, neg_mul_add = $fnmadd; }
            intrinsic_ops! {
                gt(a: $v, b: $v) -> $mask = $cmp::<_CMP_GT_OQ>(a, b);
                le(a: $v, b: $v) -> $mask = $cmp::<_CMP_LE_OQ>(a, b);
                eq(a: $v, b: $v) -> $mask = $cmp::<_CMP_EQ_OQ>(a, b);
                select(m: $mask, a: $v, b: $v) -> $v = $blend(m, b, a);
            }

            #[inline(always)]
            fn or(self, a: $mask, b: $mask) -> $mask {
                a | b
            }
            #[inline(always)]
            fn any(self, m: $mask) -> bool {
                m != 0
            }
        }
    };
}

avx512_lanes! { f32, __m512, __mmask16, 16, [_mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
_mm512_maskz_loadu_ps, _mm512_mask_storeu_ps, _mm512_castps_si512, _mm512_castsi512_ps,
_mm512_sqrt_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps, _mm512_fmadd_ps,
_mm512_fnmadd_ps, _mm512_cmp_ps_mask, _mm512_mask_blend_ps] }
avx512_lanes! { f64, __m512d, __mmask8, 8, [_mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
_mm512_maskz_loadu_pd, _mm512_mask_storeu_pd, _mm512_castpd_si512, _mm512_castsi512_pd,
_mm512_sqrt_pd, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd, _mm512_div_pd, _mm512_fmadd_pd,
_mm512_fnmadd_pd, _mm512_cmp_pd_mask, _mm512_mask_blend_pd] }

impl MklLanes for Avx512 {
    intrinsic_ops! {
        // `rsqrtps` on two 8-lane halves: AVX-512 has no `vrsqrtps zmm`,
        // and `vrsqrt14ps` is a different approximation.
        rsqrt12(x: __m512) -> __m512 = {
            let lo = _mm256_rsqrt_ps(_mm512_castps512_ps256(x));
            let hi = _mm256_rsqrt_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                _mm512_castps_pd(x),
                1,
            )));
            _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                _mm256_castps_pd(hi),
                1,
            ))
        };
        bits_above(x: __m512, offset: u32, above: i32) -> __mmask16 = {
            let t = _mm512_add_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(offset as i32));
            _mm512_cmpgt_epi32_mask(t, _mm512_set1_epi32(above))
        };
    }
}

impl MklLanes64 for Avx512 {
    bit_ops! { __m512d, [_mm512_castpd_si512, _mm512_castsi512_pd, _mm512_and_si512,
    _mm512_or_si512, _mm512_add_epi64, _mm512_sub_epi64, _mm512_srl_epi64, _mm512_set1_epi64] }
    intrinsic_ops! {
        // `vpmovqd` takes the low dword of each quadword; `rsqrtps ymm`, as
        // AVX-512 has no `vrsqrtps zmm`.
        rsqrt12_low(a: __m512d) -> __m512d = _mm512_cvtps_pd(_mm256_rsqrt_ps(_mm256_castsi256_ps(
            _mm512_cvtepi64_epi32(_mm512_castpd_si512(a)),
        )));
        bits_above(x: __m512d, offset: u64, above: i64) -> __mmask8 = {
            let t = _mm512_add_epi64(_mm512_castpd_si512(x), _mm512_set1_epi64(offset as i64));
            _mm512_cmpgt_epi64_mask(t, _mm512_set1_epi64(above))
        };
    }
}

impl NewtonLanes for Avx512 {
    intrinsic_ops! { unary: rsqrt14 = _mm512_rsqrt14_ps, rcp14 = _mm512_rcp14_ps; }
    intrinsic_ops! {
        step_bits(x: __m512, k: i32) -> __m512 = {
            let b = _mm512_castps_si512(x);
            _mm512_castsi512_ps(_mm512_add_epi32(b, _mm512_set1_epi32(k)))
        };
        // bits - lo >= hi - lo, unsigned, in one compare.
        bits_outside(x: __m512, lo: u32, hi: u32) -> __mmask16 = _mm512_cmpge_epu32_mask(
            _mm512_sub_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(lo as i32)),
            _mm512_set1_epi32(hi.wrapping_sub(lo) as i32),
        );
    }
}

/// A proof that the CPU has AVX-512F, for `vrsqrt14ss` on the scalar path
/// (called out of line: the scalar path is compiled without AVX-512).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512F(());

impl Avx512F {
    /// The proof, if this CPU has AVX-512F.
    pub fn new(cpu: &Cpu) -> Option<Self> {
        cpu.avx512f.then_some(Avx512F(()))
    }
}

/// `vrsqrt14ss`, the per-lane approximation of `vrsqrt14ps`.
#[target_feature(enable = "avx512f")]
fn rsqrt14ss(x: f32) -> f32 {
    let v = _mm_set_ss(x);
    _mm_cvtss_f32(_mm_rsqrt14_ss(v, v))
}

impl Rsqrt14<Scalar> for Avx512F {
    intrinsic_ops! {
        rsqrt14(_l: Scalar, x: f32) -> f32 = rsqrt14ss(x);
    }
}

/// `vrsqrt14sd`, the per-lane approximation of `vrsqrt14pd`.
#[target_feature(enable = "avx512f")]
fn rsqrt14sd(x: f64) -> f64 {
    let v = _mm_set_sd(x);
    _mm_cvtsd_f64(_mm_rsqrt14_sd(v, v))
}

impl Rsqrt14<Scalar, f64> for Avx512F {
    intrinsic_ops! {
        rsqrt14(_l: Scalar, x: f64) -> f64 = rsqrt14sd(x);
    }
}

/// `vrsqrt14pd ymm` (oneMKL's float64 Z0HA on 4 lanes) runs inline: the
/// type proves AVX-512VL.
impl Rsqrt14<Avx2<true>, f64> for Avx2<true> {
    intrinsic_ops! {
        rsqrt14(_l: Avx2<true>, x: __m256d) -> __m256d = _mm256_rsqrt14_pd(x);
    }
}

impl Rsqrt14<Avx512, f64> for Avx512 {
    intrinsic_ops! {
        rsqrt14(_l: Avx512, x: __m512d) -> __m512d = _mm512_rsqrt14_pd(x);
    }
}
