//! The x86-64 SIMD paths: AVX-512F (16 lanes) and AVX2 + FMA (8 lanes).
//!
//! Each path is the scalar [`element`](super::element) written with
//! intrinsics, operation for operation: `mul_add` is `vfmadd`, `*` `/` `+`
//! are `vmulps` `vdivps` `vaddps`, `-g` flips the sign bit, and the square
//! root is `vsqrtps` or the oneMKL recipe of [`super::sqrt`] with the same
//! approximation instruction. Rust never contracts or reassociates these
//! intrinsics, so every lane rounds exactly as the scalar path does.
//!
//! The public entry points are thin `#[target_feature]` wrappers (in the
//! style of `matrixmultiply`) over `#[inline(always)]` bodies; they are
//! `unsafe` only because the caller must have checked the CPU features, which
//! [`Kernel::new`](super::dispatch::Kernel::new) does.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::sqrt::{
    id, EXHA_SPECIAL_ABOVE, L9HA_SPECIAL_ABOVE, SPECIAL_OFFSET, TWO_39, TWO_78, TWO_M78,
    Z0HA_SCALE_ABOVE,
};
use crate::Coefficients;

// ---------------------------------------------------------------- AVX-512 --

/// The coefficients broadcast to 16 lanes.
struct K512 {
    sign: __m512i,
    wd: __m512,
    c: __m512,
    rho: __m512,
    eps: __m512,
    nlr: __m512,
}

#[inline(always)]
unsafe fn k512(c: &Coefficients) -> K512 {
    K512 {
        sign: _mm512_set1_epi32(if c.maximize { i32::MIN } else { 0 }),
        wd: _mm512_set1_ps(c.weight_decay),
        c: _mm512_set1_ps(c.one_minus_rho),
        rho: _mm512_set1_ps(c.rho),
        eps: _mm512_set1_ps(c.eps),
        nlr: _mm512_set1_ps(c.neg_lr),
    }
}

/// `rsqrtps` on 16 lanes (two 8-lane halves: AVX-512 has no `vrsqrtps zmm`,
/// and `vrsqrt14ps` is a different approximation).
#[inline(always)]
unsafe fn rsqrtps512(x: __m512) -> __m512 {
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
}

/// Lanes that EXHA / L9HA send to IEEE sqrt (see `sqrt::EXHA_SPECIAL_ABOVE`).
#[inline(always)]
unsafe fn special512(x: __m512, above: i32) -> __mmask16 {
    let t = _mm512_add_epi32(
        _mm512_castps_si512(x),
        _mm512_set1_epi32(SPECIAL_OFFSET as i32),
    );
    _mm512_cmpgt_epi32_mask(t, _mm512_set1_epi32(above))
}

/// The square root `S` on 16 lanes; lane for lane `scalar::sqrt_of::<S>`.
#[inline(always)]
unsafe fn sqrt512<const S: u8>(x: __m512) -> __m512 {
    let half = _mm512_set1_ps(0.5);
    match S {
        id::EXHA => {
            let y = rsqrtps512(x);
            let s = _mm512_mul_ps(y, x);
            let h = _mm512_mul_ps(y, half);
            let e = _mm512_sub_ps(half, _mm512_mul_ps(s, h));
            let s1 = _mm512_add_ps(_mm512_mul_ps(s, e), s);
            let h1 = _mm512_add_ps(_mm512_mul_ps(e, h), h);
            let r = _mm512_add_ps(
                _mm512_mul_ps(_mm512_sub_ps(x, _mm512_mul_ps(s1, s1)), h1),
                s1,
            );
            let m = special512(x, EXHA_SPECIAL_ABOVE);
            if m != 0 {
                _mm512_mask_sqrt_ps(r, m, x)
            } else {
                r
            }
        }
        id::L9HA => {
            let y = rsqrtps512(x);
            let s = _mm512_mul_ps(x, y);
            let h = _mm512_mul_ps(y, half);
            let e = _mm512_fnmadd_ps(s, h, half);
            let s1 = _mm512_fmadd_ps(e, s, s);
            let h1 = _mm512_fmadd_ps(e, h, h);
            let r = _mm512_fmadd_ps(h1, _mm512_fnmadd_ps(s1, s1, x), s1);
            let m = special512(x, L9HA_SPECIAL_ABOVE);
            if m != 0 {
                _mm512_mask_sqrt_ps(r, m, x)
            } else {
                r
            }
        }
        id::Z0HA => {
            let y = _mm512_rsqrt14_ps(x);
            let h = _mm512_mul_ps(y, half);
            let s = _mm512_mul_ps(x, y);
            let mut r = _mm512_fmadd_ps(_mm512_fnmadd_ps(s, s, x), h, s);
            let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_set1_ps(Z0HA_SCALE_ABOVE));
            if big != 0 {
                let xs = _mm512_mul_ps(x, _mm512_set1_ps(TWO_78));
                let ss = _mm512_mul_ps(s, _mm512_set1_ps(TWO_39));
                let hs = _mm512_mul_ps(h, _mm512_set1_ps(TWO_M78));
                let rb = _mm512_fmadd_ps(hs, _mm512_fnmadd_ps(ss, ss, xs), s);
                r = _mm512_mask_blend_ps(big, r, rb);
            }
            let m = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, _mm512_setzero_ps())
                | _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_set1_ps(f32::INFINITY));
            if m != 0 {
                _mm512_mask_sqrt_ps(r, m, x)
            } else {
                r
            }
        }
        _ => _mm512_sqrt_ps(x),
    }
}

/// One vector of the update; lane for lane `super::element`.
#[inline(always)]
unsafe fn body512<const S: u8, const WD: bool>(
    k: &K512,
    p: __m512,
    g: __m512,
    v: __m512,
    u: __m512,
) -> (__m512, __m512, __m512) {
    let g = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), k.sign));
    let g = if WD { _mm512_fmadd_ps(p, k.wd, g) } else { g };
    let v = _mm512_fmadd_ps(_mm512_mul_ps(k.c, g), g, _mm512_mul_ps(v, k.rho));
    let std = sqrt512::<S>(_mm512_add_ps(v, k.eps));
    let d = _mm512_mul_ps(_mm512_div_ps(sqrt512::<S>(_mm512_add_ps(u, k.eps)), std), g);
    let u = _mm512_fmadd_ps(_mm512_mul_ps(k.c, d), d, _mm512_mul_ps(u, k.rho));
    let p = _mm512_fmadd_ps(d, k.nlr, p);
    (p, v, u)
}

#[inline(always)]
unsafe fn loop512<const S: u8, const WD: bool>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    let n = param.len();
    let k = k512(c);
    let (pp, gp, vp, up) = (
        param.as_mut_ptr(),
        grad.as_ptr(),
        square_avg.as_mut_ptr(),
        acc_delta.as_mut_ptr(),
    );
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n and all four slices have length n (checked by
        // the entry point), so lanes i..i+16 are in bounds; loadu/storeu need
        // no alignment. `param`, `square_avg`, `acc_delta` are distinct
        // `&mut` slices, so the stores alias nothing else read here.
        unsafe {
            let (p, v, u) = body512::<S, WD>(
                &k,
                _mm512_loadu_ps(pp.add(i)),
                _mm512_loadu_ps(gp.add(i)),
                _mm512_loadu_ps(vp.add(i)),
                _mm512_loadu_ps(up.add(i)),
            );
            _mm512_storeu_ps(pp.add(i), p);
            _mm512_storeu_ps(vp.add(i), v);
            _mm512_storeu_ps(up.add(i), u);
        }
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        // SAFETY: as above, with the mask selecting only lanes i..n (< 16 of
        // them); masked-off lanes are neither read nor written (AVX-512 masked
        // loads and stores suppress their faults).
        unsafe {
            let (p, v, u) = body512::<S, WD>(
                &k,
                _mm512_maskz_loadu_ps(m, pp.add(i)),
                _mm512_maskz_loadu_ps(m, gp.add(i)),
                _mm512_maskz_loadu_ps(m, vp.add(i)),
                _mm512_maskz_loadu_ps(m, up.add(i)),
            );
            _mm512_mask_storeu_ps(pp.add(i), m, p);
            _mm512_mask_storeu_ps(vp.add(i), m, v);
            _mm512_mask_storeu_ps(up.add(i), m, u);
        }
    }
}

/// The AVX-512 loop with square root `S`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn avx512<const S: u8>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    let n = param.len();
    assert!(grad.len() == n && square_avg.len() == n && acc_delta.len() == n);
    if c.apply_weight_decay {
        loop512::<S, true>(c, param, grad, square_avg, acc_delta)
    } else {
        loop512::<S, false>(c, param, grad, square_avg, acc_delta)
    }
}

/// The AVX-512 square root `S` over a slice, in place.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn avx512_sqrt<const S: u8>(x: &mut [f32]) {
    let (n, xp) = (x.len(), x.as_mut_ptr());
    let mut i = 0;
    while i < n {
        let m: __mmask16 = if n - i >= 16 {
            u16::MAX
        } else {
            (1u16 << (n - i)) - 1
        };
        // SAFETY: the mask selects lanes i..min(i + 16, n), all in bounds.
        unsafe {
            let r = sqrt512::<S>(_mm512_maskz_loadu_ps(m, xp.add(i)));
            _mm512_mask_storeu_ps(xp.add(i), m, r);
        }
        i += 16;
    }
}

// ------------------------------------------------------------------- AVX2 --

/// The coefficients broadcast to 8 lanes.
struct K256 {
    sign: __m256,
    wd: __m256,
    c: __m256,
    rho: __m256,
    eps: __m256,
    nlr: __m256,
}

#[inline(always)]
unsafe fn k256(c: &Coefficients) -> K256 {
    K256 {
        sign: _mm256_castsi256_ps(_mm256_set1_epi32(if c.maximize { i32::MIN } else { 0 })),
        wd: _mm256_set1_ps(c.weight_decay),
        c: _mm256_set1_ps(c.one_minus_rho),
        rho: _mm256_set1_ps(c.rho),
        eps: _mm256_set1_ps(c.eps),
        nlr: _mm256_set1_ps(c.neg_lr),
    }
}

/// Replaces the lanes of `r` where `m` is set by IEEE `sqrt(x)`.
#[inline(always)]
unsafe fn ieee_where256(r: __m256, m: __m256, x: __m256) -> __m256 {
    if _mm256_movemask_ps(m) != 0 {
        _mm256_blendv_ps(r, _mm256_sqrt_ps(x), m)
    } else {
        r
    }
}

#[inline(always)]
unsafe fn special256(x: __m256, above: i32) -> __m256 {
    let t = _mm256_add_epi32(
        _mm256_castps_si256(x),
        _mm256_set1_epi32(SPECIAL_OFFSET as i32),
    );
    _mm256_castsi256_ps(_mm256_cmpgt_epi32(t, _mm256_set1_epi32(above)))
}

/// The square root `S` on 8 lanes; lane for lane `scalar::sqrt_of::<S>`.
/// `Z0HA` needs AVX-512F + VL in the caller (`vrsqrt14ps ymm`).
#[inline(always)]
unsafe fn sqrt256<const S: u8>(x: __m256) -> __m256 {
    let half = _mm256_set1_ps(0.5);
    match S {
        id::EXHA => {
            let y = _mm256_rsqrt_ps(x);
            let s = _mm256_mul_ps(y, x);
            let h = _mm256_mul_ps(y, half);
            let e = _mm256_sub_ps(half, _mm256_mul_ps(s, h));
            let s1 = _mm256_add_ps(_mm256_mul_ps(s, e), s);
            let h1 = _mm256_add_ps(_mm256_mul_ps(e, h), h);
            let r = _mm256_add_ps(
                _mm256_mul_ps(_mm256_sub_ps(x, _mm256_mul_ps(s1, s1)), h1),
                s1,
            );
            ieee_where256(r, special256(x, EXHA_SPECIAL_ABOVE), x)
        }
        id::L9HA => {
            let y = _mm256_rsqrt_ps(x);
            let s = _mm256_mul_ps(x, y);
            let h = _mm256_mul_ps(y, half);
            let e = _mm256_fnmadd_ps(s, h, half);
            let s1 = _mm256_fmadd_ps(e, s, s);
            let h1 = _mm256_fmadd_ps(e, h, h);
            let r = _mm256_fmadd_ps(h1, _mm256_fnmadd_ps(s1, s1, x), s1);
            ieee_where256(r, special256(x, L9HA_SPECIAL_ABOVE), x)
        }
        id::Z0HA => {
            let y = _mm256_rsqrt14_ps(x);
            let h = _mm256_mul_ps(y, half);
            let s = _mm256_mul_ps(x, y);
            let mut r = _mm256_fmadd_ps(_mm256_fnmadd_ps(s, s, x), h, s);
            let big = _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_set1_ps(Z0HA_SCALE_ABOVE));
            if _mm256_movemask_ps(big) != 0 {
                let xs = _mm256_mul_ps(x, _mm256_set1_ps(TWO_78));
                let ss = _mm256_mul_ps(s, _mm256_set1_ps(TWO_39));
                let hs = _mm256_mul_ps(h, _mm256_set1_ps(TWO_M78));
                let rb = _mm256_fmadd_ps(hs, _mm256_fnmadd_ps(ss, ss, xs), s);
                r = _mm256_blendv_ps(r, rb, big);
            }
            let m = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_setzero_ps()),
                _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_set1_ps(f32::INFINITY)),
            );
            ieee_where256(r, m, x)
        }
        _ => _mm256_sqrt_ps(x),
    }
}

/// One vector of the update; lane for lane `super::element`.
#[inline(always)]
unsafe fn body256<const S: u8, const WD: bool>(
    k: &K256,
    p: __m256,
    g: __m256,
    v: __m256,
    u: __m256,
) -> (__m256, __m256, __m256) {
    let g = _mm256_xor_ps(g, k.sign);
    let g = if WD { _mm256_fmadd_ps(p, k.wd, g) } else { g };
    let v = _mm256_fmadd_ps(_mm256_mul_ps(k.c, g), g, _mm256_mul_ps(v, k.rho));
    let std = sqrt256::<S>(_mm256_add_ps(v, k.eps));
    let d = _mm256_mul_ps(_mm256_div_ps(sqrt256::<S>(_mm256_add_ps(u, k.eps)), std), g);
    let u = _mm256_fmadd_ps(_mm256_mul_ps(k.c, d), d, _mm256_mul_ps(u, k.rho));
    let p = _mm256_fmadd_ps(d, k.nlr, p);
    (p, v, u)
}

#[inline(always)]
unsafe fn loop256<const S: u8, const WD: bool>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    let n = param.len();
    let k = k256(c);
    let (pp, gp, vp, up) = (
        param.as_mut_ptr(),
        grad.as_ptr(),
        square_avg.as_mut_ptr(),
        acc_delta.as_mut_ptr(),
    );
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n and all four slices have length n (checked by
        // the entry point); loadu/storeu need no alignment; the three written
        // slices are distinct `&mut` borrows.
        unsafe {
            let (p, v, u) = body256::<S, WD>(
                &k,
                _mm256_loadu_ps(pp.add(i)),
                _mm256_loadu_ps(gp.add(i)),
                _mm256_loadu_ps(vp.add(i)),
                _mm256_loadu_ps(up.add(i)),
            );
            _mm256_storeu_ps(pp.add(i), p);
            _mm256_storeu_ps(vp.add(i), v);
            _mm256_storeu_ps(up.add(i), u);
        }
        i += 8;
    }
    if i < n {
        // The tail (< 8 elements) through 8-lane buffers, so that it runs the
        // very same vector code as the body.
        let r = n - i;
        let mut b = [[0f32; 8]; 4];
        b[0][..r].copy_from_slice(&param[i..]);
        b[1][..r].copy_from_slice(&grad[i..]);
        b[2][..r].copy_from_slice(&square_avg[i..]);
        b[3][..r].copy_from_slice(&acc_delta[i..]);
        // SAFETY: each buffer holds exactly 8 f32.
        unsafe {
            let (p, v, u) = body256::<S, WD>(
                &k,
                _mm256_loadu_ps(b[0].as_ptr()),
                _mm256_loadu_ps(b[1].as_ptr()),
                _mm256_loadu_ps(b[2].as_ptr()),
                _mm256_loadu_ps(b[3].as_ptr()),
            );
            _mm256_storeu_ps(b[0].as_mut_ptr(), p);
            _mm256_storeu_ps(b[2].as_mut_ptr(), v);
            _mm256_storeu_ps(b[3].as_mut_ptr(), u);
        }
        param[i..].copy_from_slice(&b[0][..r]);
        square_avg[i..].copy_from_slice(&b[2][..r]);
        acc_delta[i..].copy_from_slice(&b[3][..r]);
    }
}

#[inline(always)]
unsafe fn avx2_body<const S: u8>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    let n = param.len();
    assert!(grad.len() == n && square_avg.len() == n && acc_delta.len() == n);
    if c.apply_weight_decay {
        loop256::<S, true>(c, param, grad, square_avg, acc_delta)
    } else {
        loop256::<S, false>(c, param, grad, square_avg, acc_delta)
    }
}

/// The AVX2 loop with square root `S` (IEEE, EXHA or L9HA).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn avx2<const S: u8>(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    avx2_body::<S>(c, param, grad, square_avg, acc_delta)
}

/// The AVX2 loop with oneMKL's Z0HA square root, which needs `vrsqrt14ps ymm`.
///
/// # Safety
/// The CPU must support AVX2, FMA, AVX-512F and AVX-512VL.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(crate) unsafe fn avx2_z0ha(
    c: &Coefficients,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    acc_delta: &mut [f32],
) {
    avx2_body::<{ id::Z0HA }>(c, param, grad, square_avg, acc_delta)
}

#[inline(always)]
unsafe fn avx2_sqrt_body<const S: u8>(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(8);
    for ch in &mut chunks {
        // SAFETY: the chunk holds exactly 8 f32.
        unsafe {
            let r = sqrt256::<S>(_mm256_loadu_ps(ch.as_ptr()));
            _mm256_storeu_ps(ch.as_mut_ptr(), r);
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut b = [0f32; 8];
        b[..rest.len()].copy_from_slice(rest);
        // SAFETY: the buffer holds exactly 8 f32.
        unsafe {
            let r = sqrt256::<S>(_mm256_loadu_ps(b.as_ptr()));
            _mm256_storeu_ps(b.as_mut_ptr(), r);
        }
        let n = rest.len();
        rest.copy_from_slice(&b[..n]);
    }
}

/// The AVX2 square root `S` (IEEE, EXHA or L9HA) over a slice, in place.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn avx2_sqrt<const S: u8>(x: &mut [f32]) {
    avx2_sqrt_body::<S>(x)
}

/// The AVX2 Z0HA square root over a slice, in place.
///
/// # Safety
/// The CPU must support AVX2, FMA, AVX-512F and AVX-512VL.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(crate) unsafe fn avx2_sqrt_z0ha(x: &mut [f32]) {
    avx2_sqrt_body::<{ id::Z0HA }>(x)
}
