//! Adadelta's ATen ops on vectors ([`Aten`]), as each element type and
//! numerics round them: what [`super::update`] is written against.
//!
//! | type | elements | each op |
//! |---|---|---|
//! | [`Native`] | `f32`, `f64` | the element type's own IEEE ops on the lanes, `add(alpha=)` and `addcmul` fused as ATen's AVX2/AVX-512 kernels are, the square root a [`Root`] |
//! | [`ViaF32`] | `bf16`, `f16`: reproduce-libtorch | computed in `f32` as ATen's kernels compute a 16-bit op (its `opmath`), rounded to the dtype at the op's end |
//! | [`Screened`] | `bf16`, `f16`: default | the op's exact result rounded once to the dtype: in `f32`, then to the dtype; an op recomputed by [`RoundOnce`] where that double rounding may differ |
//! | [`RoundOnce`] | `bf16`, `f16`: default, where [`Screened`] doubts | the op's exact result rounded once to the dtype, through `f64` lanes |
//!
//! The three tables of `fast/docs/numerics.md` say what each op computes;
//! the MPFR reference (`adadelta_reference::Binary32`, `Binary64` and
//! `Half` with `Rounding::Opmath` or `Rounding::Once`) is the definition
//! the tests hold them to.

use super::element::Element;
use super::lanes::{Half16, HalfLanes, HalfLanes64, Lanes, Simd, Widen, MAX_LANES};
use super::recipe::Root;

/// Adadelta's ATen ops on vectors of `N` elements `E`, with the loads and
/// stores between slices of `E` and the vectors. The scalar operands are
/// `E::Opmath`s, [splat](Aten::splat) into every lane.
pub(crate) trait Aten<E: Element>: Copy + Send + Sync + 'static {
    /// The instruction set the ops run on.
    type Isa: Simd;
    /// A vector of `N` elements as the ops compute with them.
    type V: Copy;
    /// The number of elements in a vector.
    const N: usize;

    /// The ops of PyTorch's scalar code, for the elements it does not
    /// vectorise ([`super::torch_tail`]); `Self` where there is no such
    /// difference.
    type Scalar: Aten<E, Isa = Self::Isa, V = Self::V>;

    /// The instruction-set proof.
    fn isa(self) -> Self::Isa;
    /// [`Self::Scalar`] where PyTorch's scalar code rounds differently from
    /// these ops, else `None`.
    #[inline(always)]
    fn torch_scalar(self) -> Option<Self::Scalar> {
        None
    }
    /// Every lane `x`.
    fn splat(self, x: E::Opmath) -> Self::V;
    /// The first `N` elements of `s`, which has at least `N`.
    fn load(self, s: &[E]) -> Self::V;
    /// Writes the vector to the first `N` elements of `s`, which has at
    /// least `N`.
    fn store(self, v: Self::V, s: &mut [E]);
    /// The elements of `s` (fewer than `N`) in the first lanes, zeros after.
    #[inline(always)]
    fn load_part(self, s: &[E]) -> Self::V {
        let mut b = [E::default(); MAX_LANES];
        b[..s.len()].copy_from_slice(s);
        self.load(&b)
    }
    /// Writes the first `s.len()` (fewer than `N`) lanes to `s`.
    #[inline(always)]
    fn store_part(self, v: Self::V, s: &mut [E]) {
        let mut b = [E::default(); MAX_LANES];
        self.store(v, &mut b);
        let n = s.len();
        s.copy_from_slice(&b[..n]);
    }

    /// The bitwise xor: with `±0.0` in `b`, `maximize`'s sign flip (`-grad`).
    fn xor(self, a: Self::V, b: Self::V) -> Self::V;
    /// `x.add(y)`, both values of `E` (`eps` is rounded to `E` for every
    /// dtype).
    fn add(self, x: Self::V, y: Self::V) -> Self::V;
    /// `x.mul(y)`, both values of `E` (tensors, or `mul`'s operands
    /// already rounded to `E`).
    fn mul(self, x: Self::V, y: Self::V) -> Self::V;
    /// `x.mul(s)` for a scalar `s`: an [`E::Opmath`](Element::Opmath)
    /// splat, which for the 16-bit dtypes need not be a value of `E`
    /// (`rho` on the for-loop path).
    #[inline(always)]
    fn mul_scalar(self, x: Self::V, s: Self::V) -> Self::V {
        self.mul(x, s)
    }
    /// `x.div(y)`, where `x` and `y` are the two square roots.
    fn div(self, x: Self::V, y: Self::V) -> Self::V;
    /// `x.sqrt()`.
    fn sqrt(self, x: Self::V) -> Self::V;
    /// `x.add(y, alpha=alpha)`: `x + alpha·y`.
    fn add_alpha(self, x: Self::V, y: Self::V, alpha: Self::V) -> Self::V;
    /// `s.addcmul(t1, t2, value=value)`: `s + value·t1·t2`.
    fn addcmul(self, s: Self::V, t1: Self::V, t2: Self::V, value: Self::V) -> Self::V;
}

/// `f32` and `f64` ops in the element type itself on the lanes `L`, with the
/// square root and division of `R`:
///
/// * `add(alpha=)` is `fma(y, alpha, x)`, `addcmul` is
///   `fma(value·t1, t2, s)`: ATen's kernels contracted by GCC on x86-64's
///   AVX2/AVX-512 builds;
/// * every other op is the lanes' own, rounded to nearest even.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Native<L, R>(pub L, pub R);

impl<E, L, R> Aten<E> for Native<L, R>
where
    E: Element<Opmath = E>,
    L: Lanes<E>,
    R: Root<E, L>,
{
    type Isa = L;
    type V = L::V;
    const N: usize = L::N;
    type Scalar = Self;

    #[inline(always)]
    fn isa(self) -> L {
        self.0
    }
    #[inline(always)]
    fn splat(self, x: E) -> L::V {
        self.0.splat(x)
    }
    #[inline(always)]
    fn load(self, s: &[E]) -> L::V {
        self.0.load(s)
    }
    #[inline(always)]
    fn store(self, v: L::V, s: &mut [E]) {
        self.0.store(v, s)
    }
    #[inline(always)]
    fn load_part(self, s: &[E]) -> L::V {
        self.0.load_part(s)
    }
    #[inline(always)]
    fn store_part(self, v: L::V, s: &mut [E]) {
        self.0.store_part(v, s)
    }
    #[inline(always)]
    fn xor(self, a: L::V, b: L::V) -> L::V {
        self.0.xor(a, b)
    }
    #[inline(always)]
    fn add(self, x: L::V, y: L::V) -> L::V {
        self.0.add(x, y)
    }
    #[inline(always)]
    fn mul(self, x: L::V, y: L::V) -> L::V {
        self.0.mul(x, y)
    }
    #[inline(always)]
    fn div(self, x: L::V, y: L::V) -> L::V {
        self.1.div(self.0, x, y)
    }
    #[inline(always)]
    fn sqrt(self, x: L::V) -> L::V {
        self.1.root(self.0, x)
    }
    #[inline(always)]
    fn add_alpha(self, x: L::V, y: L::V, alpha: L::V) -> L::V {
        self.0.mul_add(y, alpha, x)
    }
    #[inline(always)]
    fn addcmul(self, s: L::V, t1: L::V, t2: L::V, value: L::V) -> L::V {
        self.0.mul_add(self.0.mul(value, t1), t2, s)
    }
}

/// 16-bit ops as PyTorch 2.13's CPU kernels compute them (the
/// reproduce-libtorch numerics): the operands widened to `f32`, the op in
/// `f32` (`add(alpha=)` and `addcmul` fused as in [`Native`], `sqrt` the
/// correctly rounded one), the result rounded to the dtype. With `SCALAR`,
/// as its scalar code computes them on the elements it does not vectorise:
/// the same, except that `add(alpha=)` rounds `alpha·y` to the dtype and
/// adds unfused (`c10::BFloat16`/`c10::Half` arithmetic).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaF32<L, const SCALAR: bool = false>(pub L);

impl<H, L, const SCALAR: bool> Aten<H> for ViaF32<L, SCALAR>
where
    H: Element<Opmath = f32> + Half16,
    L: HalfLanes<H>,
{
    type Isa = L;
    type V = L::V;
    const N: usize = L::N;
    type Scalar = ViaF32<L, true>;

    #[inline(always)]
    fn isa(self) -> L {
        self.0
    }
    #[inline(always)]
    fn torch_scalar(self) -> Option<ViaF32<L, true>> {
        (!SCALAR).then_some(ViaF32(self.0))
    }
    #[inline(always)]
    fn splat(self, x: f32) -> L::V {
        self.0.splat(x)
    }
    #[inline(always)]
    fn load(self, s: &[H]) -> L::V {
        self.0.load_half(s)
    }
    #[inline(always)]
    fn store(self, v: L::V, s: &mut [H]) {
        self.0.store_half(v, s)
    }
    #[inline(always)]
    fn xor(self, a: L::V, b: L::V) -> L::V {
        self.0.xor(a, b)
    }
    #[inline(always)]
    fn add(self, x: L::V, y: L::V) -> L::V {
        self.0.narrow(self.0.add(x, y))
    }
    #[inline(always)]
    fn mul(self, x: L::V, y: L::V) -> L::V {
        self.0.narrow(self.0.mul(x, y))
    }
    #[inline(always)]
    fn div(self, x: L::V, y: L::V) -> L::V {
        self.0.narrow(self.0.div(x, y))
    }
    #[inline(always)]
    fn sqrt(self, x: L::V) -> L::V {
        self.0.narrow(self.0.sqrt(x))
    }
    #[inline(always)]
    fn add_alpha(self, x: L::V, y: L::V, alpha: L::V) -> L::V {
        let l = self.0;
        if SCALAR {
            l.narrow(l.add(x, l.narrow(l.mul(alpha, y))))
        } else {
            l.narrow(l.mul_add(y, alpha, x))
        }
    }
    #[inline(always)]
    fn addcmul(self, s: L::V, t1: L::V, t2: L::V, value: L::V) -> L::V {
        self.0.narrow(self.0.mul_add(self.0.mul(value, t1), t2, s))
    }
}

/// 16-bit ops correctly rounded (the default numerics): each op's exact
/// result rounded once to the dtype. On `f64` lanes every product of the
/// update is exact (at most 24 + 11 + 11 = 46 bits), a sum is exact as the
/// pair of its rounded value and its error ([`two_sum`]), and a quotient or
/// square root is its rounded value with the sign of its remainder; the pair
/// is then rounded once to the dtype ([`HalfLanes64::narrow_pair`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoundOnce<L>(pub L);

/// `(a + b rounded, its error)`: the exact sum as two f64s (Knuth's
/// TwoSum; exact for finite operands whose sum does not overflow).
#[inline(always)]
fn two_sum<L: Lanes<f64>>(l: L, a: L::V, b: L::V) -> (L::V, L::V) {
    let s = l.add(a, b);
    let bb = l.sub(s, a);
    let err = l.add(l.sub(a, l.sub(s, bb)), l.sub(b, bb));
    (s, err)
}

impl<H, L> Aten<H> for RoundOnce<L>
where
    H: Element<Opmath = f32> + Half16,
    L: HalfLanes64<H>,
{
    type Isa = L;
    type V = L::V;
    const N: usize = <L as Lanes<f64>>::N;
    type Scalar = Self;

    #[inline(always)]
    fn isa(self) -> L {
        self.0
    }
    #[inline(always)]
    fn splat(self, x: f32) -> L::V {
        self.0.splat(f64::from(x))
    }
    #[inline(always)]
    fn load(self, s: &[H]) -> L::V {
        self.0.load_half(s)
    }
    #[inline(always)]
    fn store(self, v: L::V, s: &mut [H]) {
        self.0.store_half(v, s)
    }
    #[inline(always)]
    fn xor(self, a: L::V, b: L::V) -> L::V {
        self.0.xor(a, b)
    }
    #[inline(always)]
    fn add(self, x: L::V, y: L::V) -> L::V {
        let (hi, lo) = two_sum(self.0, x, y);
        self.0.narrow_pair(hi, lo)
    }
    /// Exact: a product of at most 24 + 11 bits.
    #[inline(always)]
    fn mul(self, x: L::V, y: L::V) -> L::V {
        self.0.narrow_pair(self.0.mul(x, y), self.0.splat(0.0))
    }
    /// The remainder `x − q·y` is exact (no underflow: 16-bit operands),
    /// and divided by `y` it has the sign of the error.
    #[inline(always)]
    fn div(self, x: L::V, y: L::V) -> L::V {
        let l = self.0;
        let q = l.div(x, y);
        l.narrow_pair(q, l.div(l.neg_mul_add(q, y, x), y))
    }
    /// The remainder `x − r²` is exact and has the sign of the error.
    #[inline(always)]
    fn sqrt(self, x: L::V) -> L::V {
        let l = self.0;
        let r = l.sqrt(x);
        l.narrow_pair(r, l.neg_mul_add(r, r, x))
    }
    #[inline(always)]
    fn add_alpha(self, x: L::V, y: L::V, alpha: L::V) -> L::V {
        let (hi, lo) = two_sum(self.0, self.0.mul(y, alpha), x);
        self.0.narrow_pair(hi, lo)
    }
    #[inline(always)]
    fn addcmul(self, s: L::V, t1: L::V, t2: L::V, value: L::V) -> L::V {
        let l = self.0;
        let (hi, lo) = two_sum(l, l.mul(l.mul(t1, value), t2), s);
        l.narrow_pair(hi, lo)
    }
}

/// 16-bit ops correctly rounded (the default numerics, as [`RoundOnce`]),
/// computed in `f32`: each op's exact result is rounded once to `f32`
/// (`add(alpha=)` and `addcmul` as one fused multiply-add, whose product
/// `t1·t2` of two 16-bit values is exact in `f32`), then to the dtype. That
/// double rounding equals the single one except where the `f32` result is
/// exactly a rounding boundary of the dtype (a midpoint between two of its
/// values, or its overflow threshold): every boundary is an `f32`, and
/// rounding to `f32` is monotonic, so an exact result on one side of a
/// boundary never rounds to the other side, only onto it; and for the sum,
/// product or square root of values of the dtype it never happens at all
/// (checked over every pair), so `add`, `mul` and `sqrt` are left
/// unchecked. The ops with an `f32` scalar or three operands
/// (`mul_scalar`, `add(alpha=)`, `addcmul`) and `div` check their lanes
/// ([`HalfLanes::on_boundary`], and for `addcmul`
/// [`HalfLanes::inexact_product`]: bfloat16's products can leave `f32`'s
/// range); a lane in doubt is moved towards the exact result by the sign
/// of the op's residual, computed exactly in `f32`, or, where that sign is
/// unknown, the op is recomputed from the same operands by [`RoundOnce`] on
/// `f64` lanes ([`Widen`]). Boundaries are not rare on real data: `0.9` in
/// `f32` times a bfloat16 value lands on one for 9 % of all bfloat16
/// values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Screened<L>(pub L);

/// One op of [`Screened`]: `$y`, bound to the op's `f32` result `$e`,
/// rounded to `$h`. Where a lane is on a boundary of `$h` or set in
/// `$doubt`, the block `$fix` gives, from the op's residual computed exactly
/// in `f32`, `(dir, unknown)`: `dir` has the sign of `exact − $y` (zero
/// where `$y` is exact), and `unknown` marks the lanes where that is not
/// known. A doubted lane with a known direction is moved from the boundary
/// towards the exact result by `2^-20·|$y|` (more than an `f32` ulp, less
/// than half the spacing of `$h`, which is at least `2^-12·|$y|` outside
/// the subnormals that `unknown` covers) and then rounded: the single
/// rounding. Where a doubted lane's direction is unknown, the op `$op` of
/// [`RoundOnce`] on the operands `$arg`, widened to `f64`.
macro_rules! screened {
    (branchless $s:ident, $h:ty, $y:ident = $e:expr, $fix:expr, $op:ident($($arg:ident),*)) => {{
        let l = $s.0;
        let $y = $e;
        let r = HalfLanes::<$h>::narrow(l, $y);
        let doubt = HalfLanes::<$h>::on_boundary(l, $y, r);
        screened!(@settle l, $h, $y, doubt, $fix, $op($($arg),*))
    }};
    ($s:ident, $h:ty, $y:ident = $e:expr, $doubt:expr, $fix:expr, $op:ident($($arg:ident),*)) => {{
        let l = $s.0;
        let $y = $e;
        let r = HalfLanes::<$h>::narrow(l, $y);
        let doubt = Lanes::<f32>::or(l, HalfLanes::<$h>::on_boundary(l, $y, r), $doubt);
        if !Lanes::<f32>::any(l, doubt) {
            r
        } else {
            screened!(@settle l, $h, $y, doubt, $fix, $op($($arg),*))
        }
    }};
    // The lanes in `$doubt` nudged by `$fix`'s direction, or the whole op on
    // f64 lanes where a doubted lane's direction is unknown.
    (@settle $l:ident, $h:ty, $y:ident, $doubt:ident, $fix:expr, $op:ident($($arg:ident),*)) => {{
        let (dir, unknown) = $fix;
        if Lanes::<f32>::any($l, Lanes::<f32>::and($l, $doubt, unknown)) {
            let e = RoundOnce($l);
            $(let $arg = $l.widen($arg);)*
            $l.join([
                Aten::<$h>::$op(e, $($arg[0]),*),
                Aten::<$h>::$op(e, $($arg[1]),*),
            ])
        } else {
            HalfLanes::<$h>::narrow($l, HalfLanes::<$h>::nudge($l, $y, dir, $doubt))
        }
    }};
}

/// TwoSum's exact error `a + b − s`, given `s = fl(a + b)`.
#[inline(always)]
fn two_sum32<L: Lanes<f32>>(l: L, a: L::V, b: L::V, s: L::V) -> L::V {
    let bb = l.sub(s, a);
    let aa = l.sub(s, bb);
    l.add(l.sub(a, aa), l.sub(b, bb))
}

impl<H, L> Aten<H> for Screened<L>
where
    H: Element<Opmath = f32> + Half16,
    L: HalfLanes<H> + HalfLanes64<H> + Widen,
{
    type Isa = L;
    type V = <L as Lanes<f32>>::V;
    const N: usize = <L as Lanes<f32>>::N;
    type Scalar = Self;

    #[inline(always)]
    fn isa(self) -> L {
        self.0
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        Lanes::<f32>::splat(self.0, x)
    }
    #[inline(always)]
    fn load(self, s: &[H]) -> Self::V {
        HalfLanes::<H>::load_half(self.0, s)
    }
    #[inline(always)]
    fn store(self, v: Self::V, s: &mut [H]) {
        HalfLanes::<H>::store_half(self.0, v, s)
    }
    #[inline(always)]
    fn xor(self, a: Self::V, b: Self::V) -> Self::V {
        Lanes::<f32>::xor(self.0, a, b)
    }
    /// Unchecked: both operands are values of the dtype, and for every
    /// pair of finite 16-bit values the sum rounded to `f32` and then to
    /// the dtype is the sum rounded once (checked over every pair of each
    /// dtype; `fast/tests/kernel_half_boundaries.rs` samples it).
    #[inline(always)]
    fn add(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        HalfLanes::<H>::narrow(l, Lanes::<f32>::add(l, x, y))
    }
    /// Unchecked, as [`Aten::add`]: the product of two 16-bit values.
    #[inline(always)]
    fn mul(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        HalfLanes::<H>::narrow(l, Lanes::<f32>::mul(l, x, y))
    }
    /// The direction: `x·y − p`, exact unless `|p| < 2^-100`.
    #[inline(always)]
    fn mul_scalar(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        screened!(
            branchless self,
            H,
            p = Lanes::<f32>::mul(l, x, y),
            {
                let minus = Lanes::<f32>::neg_mul_add(l, x, y, p); // p − x·y
                (
                    Lanes::<f32>::xor(l, minus, Lanes::<f32>::splat(l, -0.0)),
                    HalfLanes::<H>::tiny(l, p),
                )
            },
            mul(x, y)
        )
    }
    /// The direction: the remainder `x − q·y` times the sign of `y`, exact
    /// unless `|x| < 2^-100`.
    #[inline(always)]
    fn div(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        let none = HalfLanes::<H>::none(l);
        screened!(
            self,
            H,
            q = Lanes::<f32>::div(l, x, y),
            none,
            {
                let rem = Lanes::<f32>::neg_mul_add(l, q, y, x);
                let zero = Lanes::<f32>::splat(l, 0.0);
                let flip = Lanes::<f32>::xor(l, rem, Lanes::<f32>::splat(l, -0.0));
                (
                    Lanes::<f32>::select(l, Lanes::<f32>::gt(l, zero, y), flip, rem),
                    HalfLanes::<H>::tiny(l, x),
                )
            },
            div(x, y)
        )
    }
    /// Unchecked, as [`Aten::add`]: the square root of a 16-bit value
    /// (every value checked).
    #[inline(always)]
    fn sqrt(self, x: Self::V) -> Self::V {
        let l = self.0;
        HalfLanes::<H>::narrow(l, Lanes::<f32>::sqrt(l, x))
    }
    /// The direction: TwoSum's error of `x + p` where `p = alpha·y` is
    /// exact in `f32` (both 16-bit values); unknown where it is not (or may
    /// not be).
    #[inline(always)]
    fn add_alpha(self, x: Self::V, y: Self::V, alpha: Self::V) -> Self::V {
        let l = self.0;
        let none = HalfLanes::<H>::none(l);
        screened!(
            self,
            H,
            s = Lanes::<f32>::mul_add(l, y, alpha, x),
            none,
            {
                let p = Lanes::<f32>::mul(l, y, alpha);
                let perr = Lanes::<f32>::neg_mul_add(l, y, alpha, p);
                let unknown = Lanes::<f32>::or(
                    l,
                    HalfLanes::<H>::nonzero(l, perr),
                    HalfLanes::<H>::tiny(l, p),
                );
                (two_sum32(l, x, p, s), unknown)
            },
            add_alpha(x, y, alpha)
        )
    }
    /// The direction of `s + value·P` (`P = t1·t2`, exact unless
    /// [`HalfLanes::inexact_product`]) against `f = fl(s + value·P)`: with
    /// `value·P = ph + pl` and `s + ph = h + l` exactly, `exact − f = (h −
    /// f) + l + pl`, where `d = h − f` is exact (`h` and `f` are within an
    /// ulp) and, without cancellation (`s` and `ph` of one sign), `|l + pl|
    /// <= ulp(h)`. With `l + pl = t + tl` exactly, `w = fl(d + t)` has the
    /// sign of `d + t` and, when not zero, a magnitude above `|tl|` (`d + t`
    /// lies on the grid of `ulp(t)` > `2|tl|`); when zero the direction is
    /// `tl`'s. Unknown where `P` is inexact, `|ph| < 2^-100` (`pl` may be
    /// inexact) or `s` and `ph` differ in sign.
    #[inline(always)]
    fn addcmul(self, s: Self::V, t1: Self::V, t2: Self::V, value: Self::V) -> Self::V {
        let l = self.0;
        let p = Lanes::<f32>::mul(l, t1, t2);
        let inexact = HalfLanes::<H>::inexact_product(l, t1, t2, p);
        screened!(
            self,
            H,
            f = Lanes::<f32>::mul_add(l, value, p, s),
            inexact,
            {
                let zero = Lanes::<f32>::splat(l, 0.0);
                let ph = Lanes::<f32>::mul(l, value, p);
                let minus_pl = Lanes::<f32>::neg_mul_add(l, value, p, ph); // ph − value·P
                let pl = Lanes::<f32>::xor(l, minus_pl, Lanes::<f32>::splat(l, -0.0));
                let h = Lanes::<f32>::add(l, s, ph);
                let lo = two_sum32(l, s, ph, h);
                let d = Lanes::<f32>::sub(l, h, f);
                let t = Lanes::<f32>::add(l, lo, pl);
                let tl = two_sum32(l, lo, pl, t);
                let w = Lanes::<f32>::add(l, d, t);
                let dir = Lanes::<f32>::select(l, HalfLanes::<H>::nonzero(l, w), w, tl);
                let same_sign = Lanes::<f32>::or(
                    l,
                    Lanes::<f32>::and(
                        l,
                        Lanes::<f32>::le(l, zero, s),
                        Lanes::<f32>::le(l, zero, ph),
                    ),
                    Lanes::<f32>::and(
                        l,
                        Lanes::<f32>::le(l, s, zero),
                        Lanes::<f32>::le(l, ph, zero),
                    ),
                );
                let unknown = Lanes::<f32>::or(l, inexact, HalfLanes::<H>::tiny(l, ph));
                (
                    dir,
                    Lanes::<f32>::or(l, unknown, Lanes::<f32>::not(l, same_sign)),
                )
            },
            addcmul(s, t1, t2, value)
        )
    }
}

/// `K` vectors of `A` side by side, each op applied to all `K` before the
/// next: `K` independent dependency chains in flight, for ops whose chains
/// are long (the 16-bit ones round after every op). The same bits as `A`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unroll<A, const K: usize>(pub A);

/// `[e(0), .., e(K - 1)]` for the expression `e` of `$i`, as a loop
/// written out in place: no closure, so that everything inlines into the
/// instruction set's function (a closure, or `std::array::from_fn`, is
/// compiled without its target features and moves every vector through
/// memory).
macro_rules! each {
    ($k:expr, $i:ident => $e:expr) => {{
        let mut out = {
            let $i = 0;
            [$e; $k]
        };
        let mut $i = 1;
        while $i < $k {
            out[$i] = $e;
            $i += 1;
        }
        out
    }};
}

impl<E: Element, A: Aten<E>, const K: usize> Aten<E> for Unroll<A, K> {
    type Isa = A::Isa;
    type V = [A::V; K];
    const N: usize = {
        assert!(K * A::N <= MAX_LANES);
        K * A::N
    };
    type Scalar = Unroll<A::Scalar, K>;

    #[inline(always)]
    fn isa(self) -> A::Isa {
        self.0.isa()
    }
    #[inline(always)]
    fn torch_scalar(self) -> Option<Unroll<A::Scalar, K>> {
        self.0.torch_scalar().map(Unroll)
    }
    #[inline(always)]
    fn splat(self, x: E::Opmath) -> [A::V; K] {
        [self.0.splat(x); K]
    }
    #[inline(always)]
    fn load(self, s: &[E]) -> [A::V; K] {
        each!(K, i => self.0.load(&s[i * A::N..]))
    }
    #[inline(always)]
    fn store(self, v: [A::V; K], s: &mut [E]) {
        let mut i = 0;
        while i < K {
            self.0.store(v[i], &mut s[i * A::N..]);
            i += 1;
        }
    }
    #[inline(always)]
    fn xor(self, a: Self::V, b: Self::V) -> Self::V {
        each!(K, i => self.0.xor(a[i], b[i]))
    }
    #[inline(always)]
    fn add(self, x: Self::V, y: Self::V) -> Self::V {
        each!(K, i => self.0.add(x[i], y[i]))
    }
    #[inline(always)]
    fn mul(self, x: Self::V, y: Self::V) -> Self::V {
        each!(K, i => self.0.mul(x[i], y[i]))
    }
    #[inline(always)]
    fn mul_scalar(self, x: Self::V, s: Self::V) -> Self::V {
        each!(K, i => self.0.mul_scalar(x[i], s[i]))
    }
    #[inline(always)]
    fn div(self, x: Self::V, y: Self::V) -> Self::V {
        each!(K, i => self.0.div(x[i], y[i]))
    }
    #[inline(always)]
    fn sqrt(self, x: Self::V) -> Self::V {
        each!(K, i => self.0.sqrt(x[i]))
    }
    #[inline(always)]
    fn add_alpha(self, x: Self::V, y: Self::V, alpha: Self::V) -> Self::V {
        each!(K, i => self.0.add_alpha(x[i], y[i], alpha[i]))
    }
    #[inline(always)]
    fn addcmul(self, s: Self::V, t1: Self::V, t2: Self::V, value: Self::V) -> Self::V {
        each!(K, i => self.0.addcmul(s[i], t1[i], t2[i], value[i]))
    }
}
