//! What the kernel is written against: a vector of lanes and the operations
//! on it, each rounding exactly as one scalar IEEE operation does
//! ([`Lanes`]), behind a zero-sized proof that the CPU has the instructions
//! ([`Simd`]). The element math ([`super::update`]) and the square-root
//! recipes ([`super::recipe`]) are written once against these traits; each
//! instruction set is a type in a leaf module ([`super::x86`],
//! [`super::neon`]); the portable fallback, [`Scalar`], one lane wide, is
//! here.
//!
//! The style is `pulp`'s: code generic over `S: Simd` runs inside
//! [`Simd::vectorize`], a function compiled with the instruction set's
//! target features, into which every `#[inline(always)]` operation inlines.

/// A proof, as a zero-sized value, that this CPU can run an instruction set,
/// and the door into code compiled for it. Only the type's own constructor
/// (which checks [`Cpu`](super::cpu::Cpu)) makes one.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    /// Runs `task` inside a function compiled with this instruction set's
    /// target features.
    fn vectorize<T: Task<Self>>(self, task: T) -> T::Output;
}

/// Work generic over an instruction set `S`, run by [`Simd::vectorize`].
pub(crate) trait Task<S> {
    /// What the work returns.
    type Output;
    /// Does the work with the instruction set `simd`. Implementations are
    /// `#[inline(always)]`, so that they compile with `S`'s features.
    fn run(self, simd: S) -> Self::Output;
}

/// Vectors of `N` lanes of `E` on an instruction set, and the operations the
/// kernel uses. Each arithmetic operation rounds every lane as the scalar
/// IEEE operation of the same name does (round to nearest even; `mul_add`
/// and `neg_mul_add` round once), so that code written once against this
/// trait gives the same bits on every instruction set.
// The comparisons, masks and `sub` serve the oneMKL recipes, which exist on
// x86-64 only; elsewhere they are implemented but unused.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) trait Lanes<E: Copy + Default>: Simd {
    /// A vector of `N` lanes.
    type V: Copy;
    /// A lane mask, as comparisons return it.
    type M: Copy;
    /// The number of lanes.
    const N: usize;

    /// Every lane `x`.
    fn splat(self, x: E) -> Self::V;
    /// The first `N` elements of `s`, which has at least `N`.
    fn load(self, s: &[E]) -> Self::V;
    /// Writes the lanes to the first `N` elements of `s`, which has at least `N`.
    fn store(self, v: Self::V, s: &mut [E]);
    /// The elements of `s` (fewer than `N`) in the first lanes, zeros after.
    fn load_part(self, s: &[E]) -> Self::V {
        let mut b = [E::default(); MAX_LANES];
        b[..s.len()].copy_from_slice(s);
        self.load(&b)
    }
    /// Writes the first `s.len()` (fewer than `N`) lanes to `s`.
    fn store_part(self, v: Self::V, s: &mut [E]) {
        let mut b = [E::default(); MAX_LANES];
        self.store(v, &mut b);
        let n = s.len();
        s.copy_from_slice(&b[..n]);
    }

    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, rounded once.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a * b`, rounded once.
    fn neg_mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The correctly rounded square root.
    fn sqrt(self, a: Self::V) -> Self::V;
    /// The bitwise exclusive or of `a` and `b` (with `±0.0` in `b`: a
    /// conditional sign flip).
    fn xor(self, a: Self::V, b: Self::V) -> Self::V;

    /// `a > b`, false where either is NaN.
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a <= b`, false where either is NaN.
    fn le(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a == b`, false where either is NaN.
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes set in `a` or in `b`.
    fn or(self, a: Self::M, b: Self::M) -> Self::M;
    /// Lanes set in `a` and in `b`.
    fn and(self, a: Self::M, b: Self::M) -> Self::M;
    /// Lanes not set in `m`.
    fn not(self, m: Self::M) -> Self::M;
    /// Whether any lane is set.
    fn any(self, m: Self::M) -> bool;
    /// `a` where `m` is set, else `b`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
}

/// The most lanes any instruction set has (bf16 on 512 bits would have 32).
pub(crate) const MAX_LANES: usize = 64;

#[cfg(target_arch = "x86_64")]
/// The two f32 operations oneMKL's EXHA and L9HA recipes need beyond
/// [`Lanes`]. x86-64 only: `rsqrtps` has no equivalent elsewhere.
pub(crate) trait MklLanes: Lanes<f32> {
    /// `rsqrtps`: the hardware's 12-bit reciprocal-square-root estimate
    /// (the same table on `rsqrtss`, `rsqrtps xmm` and `vrsqrtps ymm`).
    fn rsqrt12(self, x: Self::V) -> Self::V;
    /// Lanes whose bit pattern plus `offset` (wrapping), read as an `i32`,
    /// exceeds `above`.
    fn bits_above(self, x: Self::V, offset: u32, above: i32) -> Self::M;
}

#[cfg(target_arch = "x86_64")]
/// The f64 operations oneMKL's `dSqrt` EXHA and L9HA recipes need beyond
/// [`Lanes`]: integer arithmetic on each lane's bit pattern (wrapping), and
/// their seed, `rsqrtps`. x86-64 only, as `rsqrtps` is.
pub(crate) trait MklLanes64: Lanes<f64> {
    /// `bits(a) & mask`.
    fn and_bits(self, a: Self::V, mask: u64) -> Self::V;
    /// `bits(a) | bits(b)`.
    fn or_bits(self, a: Self::V, b: Self::V) -> Self::V;
    /// `bits(a) + k`, wrapping.
    fn add_bits(self, a: Self::V, k: u64) -> Self::V;
    /// `bits(a) - bits(b)`, wrapping.
    fn sub_bits(self, a: Self::V, b: Self::V) -> Self::V;
    /// `bits(a) >> n`, logical.
    fn shr_bits(self, a: Self::V, n: u32) -> Self::V;
    /// `f64(rsqrtps(f))` where `f` is the f32 whose bits are the low 32 bits
    /// of the lane (the same 12-bit table as the f32 recipes' `rsqrt12`).
    fn rsqrt12_low(self, a: Self::V) -> Self::V;
    /// Lanes whose bit pattern plus `offset` (wrapping), read as an `i64`,
    /// exceeds `above`.
    fn bits_above(self, x: Self::V, offset: u64, above: i64) -> Self::M;
}

#[cfg(target_arch = "x86_64")]
/// A proof that `vrsqrt14ps` or, for `E = f64`, `vrsqrt14pd` (AVX-512's
/// 14-bit reciprocal-square-root estimates, which oneMKL's Z0HA is built
/// on) can run at the width of `L`.
pub(crate) trait Rsqrt14<L: Lanes<E>, E: Copy + Default = f32>:
    Copy + Send + Sync + 'static
{
    /// `vrsqrt14ps`/`vrsqrt14pd` (or `vrsqrt14ss`/`vrsqrt14sd`) on every lane.
    fn rsqrt14(self, lanes: L, x: L::V) -> L::V;
}

#[cfg(target_arch = "x86_64")]
/// What the correctly rounded square root and division built from AVX-512's
/// 14-bit estimates ([`super::newton`]) need beyond [`Lanes`]: the
/// estimates at the width of the lanes, and two operations on the bit
/// patterns of positive finite floats.
pub(crate) trait NewtonLanes: Lanes<f32> {
    /// `vrsqrt14ps`: `1/sqrt(x)` within a relative error of 2^-14.
    fn rsqrt14(self, x: Self::V) -> Self::V;
    /// `vrcp14ps`: `1/x` within a relative error of 2^-14.
    fn rcp14(self, x: Self::V) -> Self::V;
    /// The float whose bit pattern is `x`'s plus `k` (wrapping): for a
    /// positive finite `x` and `k = ±1`, its successor or predecessor.
    fn step_bits(self, x: Self::V, k: i32) -> Self::V;
    /// Lanes whose bit pattern, unsigned, is outside `lo..hi`.
    fn bits_outside(self, x: Self::V, lo: u32, hi: u32) -> Self::M;
}

#[cfg(target_arch = "x86_64")]
/// Lanes with the estimates prove `vrsqrt14ps` at their own width.
impl<L: NewtonLanes> Rsqrt14<L> for L {
    #[inline(always)]
    fn rsqrt14(self, _lanes: L, x: L::V) -> L::V {
        NewtonLanes::rsqrt14(self, x)
    }
}

/// A 16-bit float type (`bfloat16`, `float16`): its exact widening to `f32`
/// and its rounding from `f32`, as the lanes of every instruction set must
/// reproduce them.
pub(crate) trait Half16: Copy + Default + Send + Sync + 'static {
    /// The value as an `f32` (exact).
    fn widen(self) -> f32;
    /// `x` rounded to nearest even; a NaN quieted, its sign and leading
    /// payload kept (x86's `vcvtps2ph`, and `half`'s conversions).
    fn narrow(x: f32) -> Self;
    /// Whether the product of any two finite values is exact in `f32`
    /// (float16: yes; bfloat16, with `f32`'s exponent range: no).
    const PRODUCTS_EXACT_IN_F32: bool;
}

impl Half16 for half::bf16 {
    const PRODUCTS_EXACT_IN_F32: bool = false;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(x: f32) -> Self {
        half::bf16::from_f32(x)
    }
}

impl Half16 for half::f16 {
    // 11-bit significands, magnitudes in [2^-24, 65504]: products in
    // [2^-48, 2^32), normal in f32, with at most 22 bits.
    const PRODUCTS_EXACT_IN_F32: bool = true;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(x: f32) -> Self {
        half::f16::from_f32(x)
    }
}

/// `f32` lanes that load and store 16-bit floats `H` and round to them:
/// what PyTorch's way of computing a 16-bit op (in `f32`, rounded to `H` at
/// the op's end) needs.
pub(crate) trait HalfLanes<H: Half16>: Lanes<f32> {
    /// The first `N` elements of `s`, widened.
    fn load_half(self, s: &[H]) -> Self::V;
    /// Writes the lanes, each a value of `H`, to the first `N` elements of
    /// `s` (exact).
    fn store_half(self, v: Self::V, s: &mut [H]);
    /// Every lane rounded to `H` ([`Half16::narrow`]) and widened back.
    fn narrow(self, v: Self::V) -> Self::V;

    /// The mask with no lane set.
    #[inline(always)]
    fn none(self) -> Self::M {
        let z = self.splat(0.0);
        self.gt(z, z)
    }

    /// The lanes where `y` is a rounding boundary of `H` (a midpoint of two
    /// adjacent values of `H`, or its overflow threshold), given `r =
    /// self.narrow(y)`; other lanes may be set too, never fewer. At a
    /// midpoint `y`, `d = y − r` is half the spacing of `H` there and `y + d`
    /// is the other neighbour, a value of `H`, both exact in `f32`; away
    /// from one, `y + d` is a value of `H` only where `d = 0` (`y` itself a
    /// value of `H`, excluded), or through a rounding of `y + d` (an extra
    /// lane, harmless). Beyond the overflow threshold `r` is infinite and `y
    /// + d` too: set. NaN and infinite `y` give a NaN `d`: not set. (The
    /// x86 bfloat16 lanes test the bits instead: low 16 bits `0x8000`.)
    #[inline(always)]
    fn on_boundary(self, y: Self::V, r: Self::V) -> Self::M {
        let d = self.sub(y, r);
        let t = self.add(y, d);
        let t = self.select(self.eq(d, self.splat(0.0)), self.splat(f32::NAN), t);
        self.eq(self.narrow(t), t)
    }

    /// `y`, moved by `2^-20·|y|` (to within an `f32` rounding) in the
    /// direction of the sign of `dir` on the lanes set in `doubt` where
    /// `dir` is not zero (and not NaN).
    #[inline(always)]
    fn nudge(self, y: Self::V, dir: Self::V, doubt: Self::M) -> Self::V {
        // y·(1 ± 2^-20): up in magnitude where dir and y agree in sign,
        // i.e. where dir·sign(y) (a sign flip, exact) is positive.
        let (zero, one) = (self.splat(0.0), self.splat(1.0));
        let up = self.splat(1.0 + f32::from_bits(0x3580_0000));
        let down = self.splat(1.0 - f32::from_bits(0x3580_0000));
        let toward = self.select(self.gt(zero, y), self.xor(dir, self.splat(-0.0)), dir);
        let factor = self.select(self.gt(toward, zero), up, down);
        let factor = self.select(self.nonzero(dir), factor, one);
        self.select(doubt, self.mul(y, factor), y)
    }

    /// The lanes where `e` is not zero (NaN lanes not set).
    #[inline(always)]
    fn nonzero(self, e: Self::V) -> Self::M {
        let zero = self.splat(0.0);
        self.or(self.gt(e, zero), self.gt(zero, e))
    }

    /// The lanes where `|x| < 2^-100`, zero included: below it a residual
    /// computed with one fused multiply-add (the error of a product, the
    /// remainder of a quotient or root) may not be exact in `f32` (it is
    /// where the factors' exponents sum to at least `-126 + 23`).
    #[inline(always)]
    fn tiny(self, x: Self::V) -> Self::M {
        let t = self.splat(f32::from_bits(0x0d80_0000)); // 2^-100
        let minus_t = self.splat(-f32::from_bits(0x0d80_0000));
        self.and(self.gt(t, x), self.gt(x, minus_t))
    }

    /// The lanes where `p`, the `f32` product of the values `t1` and `t2` of
    /// `H`, may not be exact; other lanes may be set too, never fewer. The
    /// product of two 16-bit significands (at most 22 bits) is exact unless
    /// it leaves `f32`'s normal range: a nonzero product below `2^-126`, or
    /// one that overflowed. Never for float16, whose products lie within
    /// `[2^-48, 65504²]`.
    #[inline(always)]
    fn inexact_product(self, t1: Self::V, t2: Self::V, p: Self::V) -> Self::M {
        if H::PRODUCTS_EXACT_IN_F32 {
            return self.none();
        }
        let zero = self.splat(0.0);
        // An exact zero (a zero factor) stands as 1, a safe magnitude.
        let zero_factor = self.or(self.eq(t1, zero), self.eq(t2, zero));
        let q = self.select(zero_factor, self.splat(1.0), p);
        let a = self.select(self.gt(zero, q), self.xor(q, self.splat(-0.0)), q);
        self.or(
            self.gt(self.splat(f32::MIN_POSITIVE), a),
            self.gt(a, self.splat(f32::MAX)),
        )
    }
}

/// `f64` lanes that load and store 16-bit floats `H` and round an exactly
/// known real number to them: what the correctly rounded 16-bit ops need.
pub(crate) trait HalfLanes64<H: Half16>: Lanes<f64> {
    /// The first `N` elements of `s`, widened.
    fn load_half(self, s: &[H]) -> Self::V;
    /// Writes the lanes, each a value of `H`, to the first `N` elements of
    /// `s` (exact).
    fn store_half(self, v: Self::V, s: &mut [H]);
    /// For each lane, the real number `z` with `hi = z` rounded to f64 and
    /// `lo` of the sign of `z − hi` (`0` exactly when `z = hi`), rounded
    /// once to `H`, widened back: [`narrow_pair`] on every lane.
    fn narrow_pair(self, hi: Self::V, lo: Self::V) -> Self::V;
}

/// `f32` lanes as `f64` lanes and back, for the values of a 16-bit dtype
/// (exact both ways): one `f32` vector is the two `f64` vectors of its low
/// and high lanes (on [`Scalar`], one lane, the lane twice).
pub(crate) trait Widen: Lanes<f32> + Lanes<f64> {
    /// The lanes of `v` as `f64`, low half first.
    fn widen(self, v: <Self as Lanes<f32>>::V) -> [<Self as Lanes<f64>>::V; 2];
    /// The inverse of [`Widen::widen`] (each lane rounded to `f32`).
    fn join(self, v: [<Self as Lanes<f64>>::V; 2]) -> <Self as Lanes<f32>>::V;
}

/// The definition of [`HalfLanes64::narrow_pair`] on one lane: `z` rounded
/// to odd at `f32`'s 24 bits (truncated, the last bit set if anything was
/// cut), then to nearest even at `H`'s. Rounding to odd with at least two
/// more bits than the target makes the second rounding the correct one (the
/// odd last bit stands for everything cut, so a tie can only be a true tie);
/// `f32` has 13 or more bits more than `H` at every magnitude `H` has,
/// subnormals included. A non-finite `hi` is converted as it is, and `lo`
/// is ignored where `hi` is zero.
#[inline(always)]
pub(crate) fn narrow_pair<H: Half16>(hi: f64, lo: f64) -> f64 {
    if !hi.is_finite() {
        return f64::from(H::narrow(hi as f32).widen());
    }
    // `hi = 0` is exact: no sum, product, quotient or root of the update
    // underflows f64, so its real value is 0 too (and the remainder of a
    // quotient 0 by inf is NaN, which must not count).
    let lo = if hi == 0.0 { 0.0 } else { lo };
    let t = hi as f32; // to nearest even, ±inf beyond f32's range
    let back = f64::from(t);
    // Toward zero: one step down in magnitude where the nearest was away
    // from zero (the bit pattern's magnitude is monotonic).
    let away = if back == hi {
        lo != 0.0 && (lo < 0.0) != (hi < 0.0)
    } else {
        back.abs() > hi.abs()
    };
    let mut bits = t.to_bits() - u32::from(away);
    if back != hi || lo != 0.0 {
        bits |= 1;
    }
    f64::from(H::narrow(f32::from_bits(bits)).widen())
}

/// Portable Rust, one lane: the fallback every target has, and the
/// definition the other instruction sets are tested against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    #[inline(always)]
    fn vectorize<T: Task<Self>>(self, task: T) -> T::Output {
        task.run(self)
    }
}

/// The scalar lanes of one float type: each operation is Rust's (IEEE, round
/// to nearest even; `mul_add` is one rounding).
macro_rules! scalar_lanes {
    ($($e:ty),*) => {$(
    impl Lanes<$e> for Scalar {
        type V = $e;
        type M = bool;
        const N: usize = 1;

        #[inline(always)]
        fn splat(self, x: $e) -> $e {
            x
        }
        #[inline(always)]
        fn load(self, s: &[$e]) -> $e {
            s[0]
        }
        #[inline(always)]
        fn store(self, v: $e, s: &mut [$e]) {
            s[0] = v;
        }
        #[inline(always)]
        fn add(self, a: $e, b: $e) -> $e {
            a + b
        }
        #[inline(always)]
        fn sub(self, a: $e, b: $e) -> $e {
            a - b
        }
        #[inline(always)]
        fn mul(self, a: $e, b: $e) -> $e {
            a * b
        }
        #[inline(always)]
        fn div(self, a: $e, b: $e) -> $e {
            a / b
        }
        #[inline(always)]
        fn mul_add(self, a: $e, b: $e, c: $e) -> $e {
            a.mul_add(b, c)
        }
        #[inline(always)]
        fn neg_mul_add(self, a: $e, b: $e, c: $e) -> $e {
            (-a).mul_add(b, c)
        }
        #[inline(always)]
        fn sqrt(self, a: $e) -> $e {
            a.sqrt()
        }
        #[inline(always)]
        fn xor(self, a: $e, b: $e) -> $e {
            <$e>::from_bits(a.to_bits() ^ b.to_bits())
        }
        #[inline(always)]
        fn gt(self, a: $e, b: $e) -> bool {
            a > b
        }
        #[inline(always)]
        fn le(self, a: $e, b: $e) -> bool {
            a <= b
        }
        #[inline(always)]
        fn eq(self, a: $e, b: $e) -> bool {
            a == b
        }
        #[inline(always)]
        fn or(self, a: bool, b: bool) -> bool {
            a || b
        }
        #[inline(always)]
        fn and(self, a: bool, b: bool) -> bool {
            a && b
        }
        #[inline(always)]
        fn not(self, m: bool) -> bool {
            !m
        }
        #[inline(always)]
        fn any(self, m: bool) -> bool {
            m
        }
        #[inline(always)]
        fn select(self, m: bool, a: $e, b: $e) -> $e {
            if m {
                a
            } else {
                b
            }
        }
    }
    )*};
}
scalar_lanes!(f32, f64);

impl<H: Half16> HalfLanes<H> for Scalar {
    #[inline(always)]
    fn load_half(self, s: &[H]) -> f32 {
        s[0].widen()
    }
    #[inline(always)]
    fn store_half(self, v: f32, s: &mut [H]) {
        s[0] = H::narrow(v);
    }
    #[inline(always)]
    fn narrow(self, v: f32) -> f32 {
        H::narrow(v).widen()
    }
}

impl Widen for Scalar {
    #[inline(always)]
    fn widen(self, v: f32) -> [f64; 2] {
        [f64::from(v); 2]
    }
    #[inline(always)]
    fn join(self, v: [f64; 2]) -> f32 {
        v[0] as f32
    }
}

impl<H: Half16> HalfLanes64<H> for Scalar {
    #[inline(always)]
    fn load_half(self, s: &[H]) -> f64 {
        f64::from(s[0].widen())
    }
    #[inline(always)]
    fn store_half(self, v: f64, s: &mut [H]) {
        s[0] = H::narrow(v as f32);
    }
    #[inline(always)]
    fn narrow_pair(self, hi: f64, lo: f64) -> f64 {
        narrow_pair::<H>(hi, lo)
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
impl MklLanes for Scalar {
    #[inline(always)]
    fn rsqrt12(self, x: f32) -> f32 {
        use std::arch::x86_64::{_mm_cvtss_f32, _mm_rsqrt_ss, _mm_set_ss};
        // SAFETY: SSE is in the x86-64 baseline: every CPU this code runs
        // on has these instructions.
        unsafe { _mm_cvtss_f32(_mm_rsqrt_ss(_mm_set_ss(x))) }
    }
    #[inline(always)]
    fn bits_above(self, x: f32, offset: u32, above: i32) -> bool {
        (x.to_bits().wrapping_add(offset) as i32) > above
    }
}

#[cfg(target_arch = "x86_64")]
impl MklLanes64 for Scalar {
    #[inline(always)]
    fn and_bits(self, a: f64, mask: u64) -> f64 {
        f64::from_bits(a.to_bits() & mask)
    }
    #[inline(always)]
    fn or_bits(self, a: f64, b: f64) -> f64 {
        f64::from_bits(a.to_bits() | b.to_bits())
    }
    #[inline(always)]
    fn add_bits(self, a: f64, k: u64) -> f64 {
        f64::from_bits(a.to_bits().wrapping_add(k))
    }
    #[inline(always)]
    fn sub_bits(self, a: f64, b: f64) -> f64 {
        f64::from_bits(a.to_bits().wrapping_sub(b.to_bits()))
    }
    #[inline(always)]
    fn shr_bits(self, a: f64, n: u32) -> f64 {
        f64::from_bits(a.to_bits() >> n)
    }
    #[inline(always)]
    fn rsqrt12_low(self, a: f64) -> f64 {
        f64::from(MklLanes::rsqrt12(self, f32::from_bits(a.to_bits() as u32)))
    }
    #[inline(always)]
    fn bits_above(self, x: f64, offset: u64, above: i64) -> bool {
        (x.to_bits().wrapping_add(offset) as i64) > above
    }
}

/// Writes [`Lanes`] methods whose body is one expression of intrinsics, with
/// their safety argument written once: an instruction-set type exists only
/// where its constructor found its features on this CPU, and those features
/// are all that the intrinsics of its methods need. The short forms map
/// methods of one, two or three vectors to one intrinsic each, and `splat`,
/// `load` and `store` to theirs.
macro_rules! intrinsic_ops {
    (memory($e:ty): splat = $splat:path, load = $load:path, store = $store:path;) => {
        $crate::kernel::lanes::intrinsic_ops! {
            splat(x: $e) -> Self::V = $splat(x);
            load(s: &[$e]) -> Self::V = {
                // `N` elements are readable at `s`; the load needs no alignment.
                assert!(s.len() >= <Self as $crate::kernel::lanes::Lanes<$e>>::N);
                $load(s.as_ptr())
            };
            store(v: Self::V, s: &mut [$e]) -> () = {
                assert!(s.len() >= <Self as $crate::kernel::lanes::Lanes<$e>>::N);
                $store(s.as_mut_ptr(), v)
            };
        }
    };
    (unary: $($op:ident = $f:path),* ;) => {
        $crate::kernel::lanes::intrinsic_ops! { $($op(a: Self::V) -> Self::V = $f(a);)* }
    };
    (binary: $($op:ident = $f:path),* ;) => {
        $crate::kernel::lanes::intrinsic_ops! { $($op(a: Self::V, b: Self::V) -> Self::V = $f(a, b);)* }
    };
    (ternary: $($op:ident = $f:path),* ;) => {
        $crate::kernel::lanes::intrinsic_ops! { $($op(a: Self::V, b: Self::V, c: Self::V) -> Self::V = $f(a, b, c);)* }
    };
    ($($op:ident($($arg:ident: $t:ty),*) -> $ret:ty = $body:expr;)*) => {$(
        #[inline(always)]
        fn $op(self, $($arg: $t),*) -> $ret {
            // SAFETY: `self` proves that the CPU has the features of its type
            // (see the type's constructor); the intrinsics need no more.
            unsafe { $body }
        }
    )*};
}
pub(crate) use intrinsic_ops;

/// Implements [`Simd`] for an instruction-set type: `vectorize` enters a
/// function compiled with `$features`, which the type's constructor checked.
macro_rules! simd_door {
    ($ty:ty, $features:literal) => {
        impl $crate::kernel::lanes::Simd for $ty {
            #[inline(always)]
            fn vectorize<T: $crate::kernel::lanes::Task<Self>>(self, task: T) -> T::Output {
                #[target_feature(enable = $features)]
                fn inner<T: $crate::kernel::lanes::Task<$ty>>(s: $ty, task: T) -> T::Output {
                    task.run(s)
                }
                // SAFETY: `self` proves the features (the type's constructor
                // checked them on this CPU).
                unsafe { inner(self, task) }
            }
        }
    };
}
pub(crate) use simd_door;
