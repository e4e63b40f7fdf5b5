//! The x86-64 instruction sets: AVX2 + FMA (8 f32 or 4 f64 lanes) and
//! AVX-512F (16 or 8 lanes, masked tails), as [`Lanes`] types, with AVX-512's 14-bit estimates
//! where the CPU has them ([`NewtonLanes`], and [`Rsqrt14`] for the scalar
//! path's `vrsqrt14ss`). A leaf: each operation is the
//! one intrinsic that rounds as the scalar operation of the same name does
//! (Rust never contracts or reassociates intrinsics).
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::cpu::Cpu;
use half::{bf16, f16};

use super::lanes::{
    intrinsic_ops, simd_door, HalfLanes, HalfLanes64, Lanes, MklLanes, MklLanes64, NewtonLanes,
    Rsqrt14, Scalar, Simd, Widen,
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

simd_door!(Avx2<false>, "avx2,fma,f16c");
simd_door!(Avx2<true>, "avx2,fma,f16c,avx512f,avx512vl");

/// `Lanes<$e>` for `Avx2<VL>`, from its intrinsics for that element type
/// (each one instruction that rounds as the scalar operation does).
macro_rules! avx2_lanes {
    ($e:ty, $v:ty, $n:literal, [$set1:path, $loadu:path, $storeu:path, $sqrt:path, $add:path,
        $sub:path, $mul:path, $div:path, $xor:path, $or:path, $and:path, $fmadd:path, $fnmadd:path,
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
                and(a: $v, b: $v) -> $v = $and(a, b);
                // An all-ones lane compares unordered, a zero one equal.
                not(m: $v) -> $v = $xor(m, $cmp::<_CMP_EQ_UQ>(m, m));
                select(m: $v, a: $v, b: $v) -> $v = $blendv(b, a, m);
            }
        }
    };
}

avx2_lanes! { f32, __m256, 8, [_mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_sqrt_ps,
_mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_xor_ps, _mm256_or_ps,
_mm256_and_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_cmp_ps, _mm256_movemask_ps, _mm256_blendv_ps] }
avx2_lanes! { f64, __m256d, 4, [_mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_sqrt_pd,
_mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd, _mm256_div_pd, _mm256_xor_pd, _mm256_or_pd,
_mm256_and_pd, _mm256_fmadd_pd, _mm256_fnmadd_pd, _mm256_cmp_pd, _mm256_movemask_pd, _mm256_blendv_pd] }

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

simd_door!(Avx512, "avx512f,avx2,fma,f16c");

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
            #[inline(always)]
            fn and(self, a: $mask, b: $mask) -> $mask {
                a & b
            }
            #[inline(always)]
            fn not(self, m: $mask) -> $mask {
                !m
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

// bfloat16 and float16. A bfloat16 is the top half of an f32: widening is a
// shift, and rounding an f32 to it is `(bits + 0x7fff + lsb) & 0xffff0000`
// (to nearest even; infinities stay, the largest finite values overflow as
// they should) except for NaNs, which are quieted with their sign and top
// payload kept (`bits | 0x0040_0000`, truncated) as `half` does. float16
// goes through F16C's `vcvtph2ps`/`vcvtps2ph` (to nearest even, NaNs
// quieted, sign and top payload kept, as `half` does).

/// Eight 16-bit patterns at `s` (which has at least 8).
#[inline(always)]
unsafe fn load8<H>(s: &[H]) -> __m128i {
    assert!(s.len() >= 8);
    _mm_loadu_si128(s.as_ptr().cast())
}

/// Four 16-bit patterns at `s` (which has at least 4), in the low half.
#[inline(always)]
unsafe fn load4<H>(s: &[H]) -> __m128i {
    assert!(s.len() >= 4);
    _mm_loadl_epi64(s.as_ptr().cast())
}

/// The f32 bit patterns `x` (each a bfloat16 in its top half) as the
/// bfloat16 patterns, in 16-bit lanes of the low 64 bits (4) or all 128 (8).
#[inline(always)]
unsafe fn bf16_bits4(x: __m128) -> __m128i {
    let t = _mm_srli_epi32(_mm_castps_si128(x), 16);
    _mm_packus_epi32(t, t)
}

/// `x` rounded to bfloat16 in f32 lanes (see above), 4 lanes.
#[inline(always)]
unsafe fn round_bf16_128(x: __m128) -> __m128 {
    let b = _mm_castps_si128(x);
    let lsb = _mm_and_si128(_mm_srli_epi32(b, 16), _mm_set1_epi32(1));
    let r = _mm_add_epi32(_mm_add_epi32(b, _mm_set1_epi32(0x7fff)), lsb);
    let nan = _mm_or_si128(b, _mm_set1_epi32(0x0040_0000));
    let is_nan = _mm_castps_si128(_mm_cmpunord_ps(x, x));
    let r = _mm_blendv_epi8(r, nan, is_nan);
    _mm_castsi128_ps(_mm_and_si128(r, _mm_set1_epi32(0xffff_0000u32 as i32)))
}

impl<const VL: bool> Widen for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        widen(v: __m256) -> [__m256d; 2] = [
            _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
        ];
        join(v: [__m256d; 2]) -> __m256 =
            _mm256_set_m128(_mm256_cvtpd_ps(v[1]), _mm256_cvtpd_ps(v[0]));
    }
}

impl<const VL: bool> HalfLanes<bf16> for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        load_half(s: &[bf16]) -> __m256 =
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load8(s)), 16));
        store_half(v: __m256, s: &mut [bf16]) -> () = {
            assert!(s.len() >= 8);
            let t = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
            let packed = _mm_packus_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            _mm_storeu_si128(s.as_mut_ptr().cast(), packed)
        };
        narrow(v: __m256) -> __m256 = {
            let b = _mm256_castps_si256(v);
            let lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
            let r = _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb);
            let nan = _mm256_or_si256(b, _mm256_set1_epi32(0x0040_0000));
            let is_nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            let r = _mm256_blendv_epi8(r, nan, is_nan);
            _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(0xffff_0000u32 as i32)))
        };
        // bfloat16's boundaries are the f32s whose low 16 bits are 0x8000.
        on_boundary(y: __m256, _r: __m256) -> __m256 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
            _mm256_and_si256(_mm256_castps_si256(y), _mm256_set1_epi32(0xffff)),
            _mm256_set1_epi32(0x8000),
        ));
    }
}

impl<const VL: bool> HalfLanes<f16> for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        load_half(s: &[f16]) -> __m256 = _mm256_cvtph_ps(load8(s));
        store_half(v: __m256, s: &mut [f16]) -> () = {
            assert!(s.len() >= 8);
            _mm_storeu_si128(s.as_mut_ptr().cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v))
        };
        narrow(v: __m256) -> __m256 =
            _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v));
    }
}

/// The four 64-bit masks `m` as 32-bit masks (the low dword of each).
#[inline(always)]
unsafe fn mask32(m: __m256d) -> __m128i {
    let lows = _mm256_permutevar8x32_epi32(
        _mm256_castpd_si256(m),
        _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6),
    );
    _mm256_castsi256_si128(lows)
}

/// [`narrow_pair`](super::lanes::narrow_pair)'s rounding to odd at 24 bits,
/// on 4 lanes: `hi` to f32 toward zero, the last bit set where anything was
/// cut (`hi` inexact in f32, or `lo` not zero where `hi` is not); non-finite
/// `hi` converted as it is.
#[inline(always)]
unsafe fn round_to_odd4(hi: __m256d, lo: __m256d) -> __m128 {
    let zero = _mm256_setzero_pd();
    let sign = _mm256_set1_pd(-0.0);
    let t = _mm256_cvtpd_ps(hi);
    let back = _mm256_cvtps_pd(t);
    let exact = _mm256_cmp_pd::<_CMP_EQ_OQ>(back, hi);
    let lo_set = _mm256_andnot_pd(
        _mm256_cmp_pd::<_CMP_EQ_OQ>(hi, zero),
        _mm256_cmp_pd::<_CMP_NEQ_UQ>(lo, zero),
    );
    let signs_differ = _mm256_castsi256_pd(_mm256_cmpgt_epi64(
        _mm256_setzero_si256(),
        _mm256_castpd_si256(_mm256_xor_pd(lo, hi)),
    ));
    let above =
        _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_andnot_pd(sign, back), _mm256_andnot_pd(sign, hi));
    let away = _mm256_blendv_pd(above, _mm256_and_pd(lo_set, signs_differ), exact);
    let cut = _mm256_or_pd(
        _mm256_xor_pd(exact, _mm256_castsi256_pd(_mm256_set1_epi64x(-1))),
        lo_set,
    );
    let finite =
        _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, hi), _mm256_set1_pd(f64::INFINITY));
    // `away` is all ones (-1) where set: adding it steps the magnitude down.
    let bits = _mm_add_epi32(_mm_castps_si128(t), mask32(away));
    let bits = _mm_or_si128(bits, _mm_and_si128(mask32(cut), _mm_set1_epi32(1)));
    _mm_blendv_ps(t, _mm_castsi128_ps(bits), _mm_castsi128_ps(mask32(finite)))
}

impl<const VL: bool> HalfLanes64<bf16> for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        load_half(s: &[bf16]) -> __m256d = _mm256_cvtps_pd(_mm_castsi128_ps(_mm_slli_epi32(
            _mm_cvtepu16_epi32(load4(s)),
            16,
        )));
        store_half(v: __m256d, s: &mut [bf16]) -> () = {
            assert!(s.len() >= 4);
            _mm_storel_epi64(s.as_mut_ptr().cast(), bf16_bits4(_mm256_cvtpd_ps(v)))
        };
        narrow_pair(hi: __m256d, lo: __m256d) -> __m256d =
            _mm256_cvtps_pd(round_bf16_128(round_to_odd4(hi, lo)));
    }
}

impl<const VL: bool> HalfLanes64<f16> for Avx2<VL>
where
    Avx2<VL>: Simd,
{
    intrinsic_ops! {
        load_half(s: &[f16]) -> __m256d = _mm256_cvtps_pd(_mm_cvtph_ps(load4(s)));
        store_half(v: __m256d, s: &mut [f16]) -> () = {
            assert!(s.len() >= 4);
            let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_cvtpd_ps(v));
            _mm_storel_epi64(s.as_mut_ptr().cast(), h)
        };
        narrow_pair(hi: __m256d, lo: __m256d) -> __m256d = _mm256_cvtps_pd(_mm_cvtph_ps(
            _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(round_to_odd4(hi, lo)),
        ));
    }
}

/// `x` rounded to bfloat16 in f32 lanes (see above), 16 lanes.
#[inline(always)]
unsafe fn round_bf16_512(v: __m512) -> __m512 {
    let b = _mm512_castps_si512(v);
    let lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    let r = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb);
    let nan = _mm512_or_si512(b, _mm512_set1_epi32(0x0040_0000));
    let r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v), r, nan);
    _mm512_castsi512_ps(_mm512_and_si512(
        r,
        _mm512_set1_epi32(0xffff_0000u32 as i32),
    ))
}

/// [`round_to_odd4`] on 8 lanes.
#[inline(always)]
unsafe fn round_to_odd8(hi: __m512d, lo: __m512d) -> __m256 {
    let zero = _mm512_setzero_pd();
    let t = _mm512_cvtpd_ps(hi);
    let back = _mm512_cvtps_pd(t);
    let exact = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(back, hi);
    let lo_set =
        _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(lo, zero) & _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(hi, zero);
    let signs_differ = _mm512_cmplt_epi64_mask(
        _mm512_xor_si512(_mm512_castpd_si512(lo), _mm512_castpd_si512(hi)),
        _mm512_setzero_si512(),
    );
    let above = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(_mm512_abs_pd(back), _mm512_abs_pd(hi));
    let away = (exact & lo_set & signs_differ) | (!exact & above);
    let cut = !exact | lo_set;
    let finite = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(hi), _mm512_set1_pd(f64::INFINITY));
    // 8 f32 lanes, masks from the f64 compares (one bit a lane either way).
    // (`vpbroadcastd` under a mask on zmm: AVX-512F, no VL needed.)
    let ones = |m: __mmask8| _mm512_castsi512_si256(_mm512_maskz_set1_epi32(m.into(), 1));
    let bits = _mm256_castps_si256(t);
    let bits = _mm256_sub_epi32(bits, ones(away & finite));
    let bits = _mm256_or_si256(bits, ones(cut & finite));
    _mm256_castsi256_ps(bits)
}

impl Widen for Avx512 {
    intrinsic_ops! {
        widen(v: __m512) -> [__m512d; 2] = [
            _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))),
        ];
        join(v: [__m512d; 2]) -> __m512 = _mm512_castpd_ps(_mm512_insertf64x4::<1>(
            _mm512_castpd256_pd512(_mm256_castps_pd(_mm512_cvtpd_ps(v[0]))),
            _mm256_castps_pd(_mm512_cvtpd_ps(v[1])),
        ));
    }
}

impl HalfLanes<bf16> for Avx512 {
    intrinsic_ops! {
        load_half(s: &[bf16]) -> __m512 = {
            assert!(s.len() >= 16);
            let h = _mm256_loadu_si256(s.as_ptr().cast());
            _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
        };
        store_half(v: __m512, s: &mut [bf16]) -> () = {
            assert!(s.len() >= 16);
            let t = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16));
            _mm256_storeu_si256(s.as_mut_ptr().cast(), t)
        };
        narrow(v: __m512) -> __m512 = round_bf16_512(v);
        // bfloat16's boundaries are the f32s whose low 16 bits are 0x8000
        // (it shares f32's exponent range, subnormals and all).
        on_boundary(y: __m512, _r: __m512) -> __mmask16 = _mm512_cmpeq_epi32_mask(
            _mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32(0xffff)),
            _mm512_set1_epi32(0x8000),
        );
    }
}

impl HalfLanes<f16> for Avx512 {
    intrinsic_ops! {
        load_half(s: &[f16]) -> __m512 = {
            assert!(s.len() >= 16);
            _mm512_cvtph_ps(_mm256_loadu_si256(s.as_ptr().cast()))
        };
        store_half(v: __m512, s: &mut [f16]) -> () = {
            assert!(s.len() >= 16);
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm256_storeu_si256(s.as_mut_ptr().cast(), h)
        };
        narrow(v: __m512) -> __m512 =
            _mm512_cvtph_ps(_mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v));
    }
}

impl HalfLanes64<bf16> for Avx512 {
    intrinsic_ops! {
        load_half(s: &[bf16]) -> __m512d = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(load8(s)),
            16,
        )));
        store_half(v: __m512d, s: &mut [bf16]) -> () = {
            assert!(s.len() >= 8);
            let t = _mm256_srli_epi32(_mm256_castps_si256(_mm512_cvtpd_ps(v)), 16);
            let packed = _mm_packus_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            _mm_storeu_si128(s.as_mut_ptr().cast(), packed)
        };
        narrow_pair(hi: __m512d, lo: __m512d) -> __m512d = {
            let r = round_bf16_512(_mm512_castps256_ps512(round_to_odd8(hi, lo)));
            _mm512_cvtps_pd(_mm512_castps512_ps256(r))
        };
    }
}

impl HalfLanes64<f16> for Avx512 {
    intrinsic_ops! {
        load_half(s: &[f16]) -> __m512d = _mm512_cvtps_pd(_mm256_cvtph_ps(load8(s)));
        store_half(v: __m512d, s: &mut [f16]) -> () = {
            assert!(s.len() >= 8);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_cvtpd_ps(v));
            _mm_storeu_si128(s.as_mut_ptr().cast(), h)
        };
        narrow_pair(hi: __m512d, lo: __m512d) -> __m512d = _mm512_cvtps_pd(_mm256_cvtph_ps(
            _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(round_to_odd8(hi, lo)),
        ));
    }
}
