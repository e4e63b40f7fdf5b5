//! The aarch64 instruction set: Advanced SIMD (NEON), 4 f32 or 2 f64 lanes,
//! as [`Lanes`] types. A leaf: each operation is the one intrinsic that rounds
//! as the scalar operation of the same name does (`vfmaq_f32` rounds once,
//! `vsqrtq_f32` and `vdivq_f32` are correctly rounded).
#![allow(unsafe_code)]

use std::arch::aarch64::*;

use super::cpu::Cpu;
use super::lanes::{intrinsic_ops, simd_door, Lanes};

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

impl Lanes<f32> for Neon {
    type V = float32x4_t;
    type M = uint32x4_t;
    const N: usize = 4;

    intrinsic_ops! { memory(f32): splat = vdupq_n_f32, load = vld1q_f32, store = vst1q_f32; }
    intrinsic_ops! {
        xor(a: float32x4_t, b: float32x4_t) -> float32x4_t = vreinterpretq_f32_u32(veorq_u32(
            vreinterpretq_u32_f32(a),
            vreinterpretq_u32_f32(b),
        ));
        // vfmaq_f32(c, a, b) = c + a * b and vfmsq_f32(c, a, b) = c - a * b,
        // each rounded once.
        mul_add(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t = vfmaq_f32(c, a, b);
        neg_mul_add(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t = vfmsq_f32(c, a, b);
    }
    intrinsic_ops! { unary: sqrt = vsqrtq_f32; }
    intrinsic_ops! { binary: add = vaddq_f32, sub = vsubq_f32, mul = vmulq_f32, div = vdivq_f32; }
    intrinsic_ops! {
        gt(a: float32x4_t, b: float32x4_t) -> uint32x4_t = vcgtq_f32(a, b);
        le(a: float32x4_t, b: float32x4_t) -> uint32x4_t = vcleq_f32(a, b);
        eq(a: float32x4_t, b: float32x4_t) -> uint32x4_t = vceqq_f32(a, b);
        or(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t = vorrq_u32(a, b);
        any(m: uint32x4_t) -> bool = vmaxvq_u32(m) != 0;
        select(m: uint32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t = vbslq_f32(m, a, b);
    }
}

impl Lanes<f64> for Neon {
    type V = float64x2_t;
    type M = uint64x2_t;
    const N: usize = 2;

    intrinsic_ops! { memory(f64): splat = vdupq_n_f64, load = vld1q_f64, store = vst1q_f64; }
    intrinsic_ops! {
        xor(a: float64x2_t, b: float64x2_t) -> float64x2_t = vreinterpretq_f64_u64(veorq_u64(
            vreinterpretq_u64_f64(a),
            vreinterpretq_u64_f64(b),
        ));
        // As for f32: vfmaq_f64(c, a, b) = c + a * b, vfmsq_f64(c, a, b) =
        // c - a * b, each rounded once.
        mul_add(a: float64x2_t, b: float64x2_t, c: float64x2_t) -> float64x2_t = vfmaq_f64(c, a, b);
        neg_mul_add(a: float64x2_t, b: float64x2_t, c: float64x2_t) -> float64x2_t = vfmsq_f64(c, a, b);
    }
    intrinsic_ops! { unary: sqrt = vsqrtq_f64; }
    intrinsic_ops! { binary: add = vaddq_f64, sub = vsubq_f64, mul = vmulq_f64, div = vdivq_f64; }
    intrinsic_ops! {
        gt(a: float64x2_t, b: float64x2_t) -> uint64x2_t = vcgtq_f64(a, b);
        le(a: float64x2_t, b: float64x2_t) -> uint64x2_t = vcleq_f64(a, b);
        eq(a: float64x2_t, b: float64x2_t) -> uint64x2_t = vceqq_f64(a, b);
        or(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t = vorrq_u64(a, b);
        any(m: uint64x2_t) -> bool = vmaxvq_u32(vreinterpretq_u32_u64(m)) != 0;
        select(m: uint64x2_t, a: float64x2_t, b: float64x2_t) -> float64x2_t = vbslq_f64(m, a, b);
    }
}
