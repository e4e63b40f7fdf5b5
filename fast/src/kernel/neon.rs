//! The aarch64 instruction set: Advanced SIMD (NEON), 4 f32 or 2 f64 lanes,
//! as [`Lanes`] types. A leaf: each operation is the one intrinsic that rounds
//! as the scalar operation of the same name does (`vfmaq_f32` rounds once,
//! `vsqrtq_f32` and `vdivq_f32` are correctly rounded).
#![allow(unsafe_code)]

use std::arch::aarch64::*;

use super::cpu::Cpu;
use super::lanes::{
    intrinsic_ops, narrow_pair, simd_door, Half16, HalfLanes, HalfLanes64, Lanes, Widen,
};

/// Advanced SIMD, 4 lanes; tails through a buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// The proof, if this CPU has NEON (every aarch64 Linux CPU does).
    pub fn new(cpu: &Cpu) -> Option<Self> {
        cpu.neon.then_some(Neon(()))
    }
}

simd_door!(Neon, "neon");

/// `Lanes<$e>` for `Neon`, from its intrinsics for that element type
/// (`$u`: the lane mask; `$any`: the mask as `uint32x4_t`, for `vmaxvq_u32`).
macro_rules! neon_lanes {
    ($e:ty, $v:ty, $u:ty, $n:literal, [$dup:path, $ld1:path, $st1:path, $as_u:path, $as_f:path,
        $eor:path, $fma:path, $fms:path, $sqrt:path, $add:path, $sub:path, $mul:path, $div:path,
        $cgt:path, $cle:path, $ceq:path, $orr:path, $and:path, $mvn:path, $any:path, $bsl:path]) => {
        impl Lanes<$e> for Neon {
            type V = $v;
            type M = $u;
            const N: usize = $n;

            intrinsic_ops! { memory($e): splat = $dup, load = $ld1, store = $st1; }
            intrinsic_ops! {
                xor(a: $v, b: $v) -> $v = $as_f($eor($as_u(a), $as_u(b)));
                // vfmaq(c, a, b) = c + a * b and vfmsq(c, a, b) = c - a * b,
                // each rounded once.
                mul_add(a: $v, b: $v, c: $v) -> $v = $fma(c, a, b);
                neg_mul_add(a: $v, b: $v, c: $v) -> $v = $fms(c, a, b);
            }
            intrinsic_ops! { unary: sqrt = $sqrt; }
            intrinsic_ops! { binary: add = $add, sub = $sub, mul = $mul, div = $div; }
            intrinsic_ops! {
                gt(a: $v, b: $v) -> $u = $cgt(a, b);
                le(a: $v, b: $v) -> $u = $cle(a, b);
                eq(a: $v, b: $v) -> $u = $ceq(a, b);
                or(a: $u, b: $u) -> $u = $orr(a, b);
                and(a: $u, b: $u) -> $u = $and(a, b);
                not(m: $u) -> $u = $mvn(m);
                any(m: $u) -> bool = vmaxvq_u32($any(m)) != 0;
                select(m: $u, a: $v, b: $v) -> $v = $bsl(m, a, b);
            }
        }
    };
}

/// The lanes of a `uint64x2_t` mask inverted (NEON has no `vmvnq_u64`).
///
/// # Safety
/// NEON must be enabled: called only inside [`Neon`]'s `vectorize`.
#[inline(always)]
unsafe fn not_u64(m: uint64x2_t) -> uint64x2_t {
    vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(m)))
}

/// A `uint32x4_t` mask as itself, for `neon_lanes`' `$any`.
#[inline(always)]
fn u32x4(m: uint32x4_t) -> uint32x4_t {
    m
}

neon_lanes! { f32, float32x4_t, uint32x4_t, 4, [vdupq_n_f32, vld1q_f32, vst1q_f32,
vreinterpretq_u32_f32, vreinterpretq_f32_u32, veorq_u32, vfmaq_f32, vfmsq_f32, vsqrtq_f32,
vaddq_f32, vsubq_f32, vmulq_f32, vdivq_f32, vcgtq_f32, vcleq_f32, vceqq_f32, vorrq_u32, vandq_u32, vmvnq_u32, u32x4,
vbslq_f32] }
neon_lanes! { f64, float64x2_t, uint64x2_t, 2, [vdupq_n_f64, vld1q_f64, vst1q_f64,
vreinterpretq_u64_f64, vreinterpretq_f64_u64, veorq_u64, vfmaq_f64, vfmsq_f64, vsqrtq_f64,
vaddq_f64, vsubq_f64, vmulq_f64, vdivq_f64, vcgtq_f64, vcleq_f64, vceqq_f64, vorrq_u64, vandq_u64, not_u64,
vreinterpretq_u32_u64, vbslq_f64] }

/// bfloat16 and float16 on NEON, lane by lane through [`Half16`]'s scalar
/// conversions (the same functions as the scalar path's, so the same bits;
/// not yet the half-precision instructions).
impl<H: Half16> HalfLanes<H> for Neon {
    #[inline(always)]
    fn load_half(self, s: &[H]) -> float32x4_t {
        let a: [f32; 4] = std::array::from_fn(|i| s[i].widen());
        self.load(&a)
    }
    #[inline(always)]
    fn store_half(self, v: float32x4_t, s: &mut [H]) {
        let mut a = [0.0f32; 4];
        self.store(v, &mut a);
        for (t, x) in s[..4].iter_mut().zip(a) {
            *t = H::narrow(x);
        }
    }
    #[inline(always)]
    fn narrow(self, v: float32x4_t) -> float32x4_t {
        let mut a = [0.0f32; 4];
        self.store(v, &mut a);
        self.load(&a.map(|x| H::narrow(x).widen()))
    }
}

impl Widen for Neon {
    intrinsic_ops! {
        widen(v: float32x4_t) -> [float64x2_t; 2] =
            [vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)];
        join(v: [float64x2_t; 2]) -> float32x4_t = vcvt_high_f32_f64(vcvt_f32_f64(v[0]), v[1]);
    }
}

impl<H: Half16> HalfLanes64<H> for Neon {
    #[inline(always)]
    fn load_half(self, s: &[H]) -> float64x2_t {
        let a: [f64; 2] = std::array::from_fn(|i| f64::from(s[i].widen()));
        self.load(&a)
    }
    #[inline(always)]
    fn store_half(self, v: float64x2_t, s: &mut [H]) {
        let mut a = [0.0f64; 2];
        self.store(v, &mut a);
        for (t, x) in s[..2].iter_mut().zip(a) {
            *t = H::narrow(x as f32);
        }
    }
    #[inline(always)]
    fn narrow_pair(self, hi: float64x2_t, lo: float64x2_t) -> float64x2_t {
        let (mut h, mut l) = ([0.0f64; 2], [0.0f64; 2]);
        self.store(hi, &mut h);
        self.store(lo, &mut l);
        self.load(&[narrow_pair::<H>(h[0], l[0]), narrow_pair::<H>(h[1], l[1])])
    }
}
