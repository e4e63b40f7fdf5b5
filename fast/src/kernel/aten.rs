//! Adadelta's ATen ops on vectors ([`Aten`]), as each element type and
//! numerics round them: what [`super::update`] is written against.
//!
//! | type | elements | each op |
//! |---|---|---|
//! | [`Native`] | `f32`, `f64` | the element type's own IEEE ops on the lanes, `add(alpha=)` and `addcmul` fused as ATen's AVX2/AVX-512 kernels are, the square root a [`Root`] |
//! | [`ViaF32`] | `bf16`, `f16`: reproduce-libtorch | computed in `f32` as ATen's kernels compute a 16-bit op (its `opmath`), rounded to the dtype at the op's end |
//! | [`Screened`] | `bf16`, `f16`: default | the op's exact result rounded once to the dtype: in `f32` then to the dtype, a vector recomputed by [`RoundOnce`] where that double rounding may differ |
//! | [`RoundOnce`] | `bf16`, `f16`: default, where [`Screened`] doubts | the op's exact result rounded once to the dtype, through `f64` lanes |
//!
//! The three tables of `fast/docs/numerics.md` say what each op computes;
//! the MPFR reference (`adadelta_reference::Binary32`, `Binary64` and
//! `Half` with `Rounding::Opmath` or `Rounding::Once`) is the definition
//! the tests hold them to.

use super::element::Element;
use super::lanes::{Half16, HalfLanes, HalfLanes64, Lanes, Simd, MAX_LANES};
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

    /// The ops that recompute a vector these ops cannot vouch for
    /// ([`Aten::doubtful`]); `Self` where they always can.
    type Exact: Aten<E, Isa = Self::Isa>;

    /// The instruction-set proof.
    fn isa(self) -> Self::Isa;
    /// [`Self::Exact`] where a result of these ops can be
    /// [doubtful](Aten::doubtful), else `None`.
    #[inline(always)]
    fn exact(self) -> Option<Self::Exact> {
        None
    }
    /// Whether some lane of `v`, a result of these ops, may differ from the
    /// definition's, so that the whole vector must be recomputed with
    /// [`Aten::exact`] from its inputs.
    #[inline(always)]
    fn doubtful(self, v: Self::V) -> bool {
        let _ = v;
        false
    }
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
    /// `x.add(y)`.
    fn add(self, x: Self::V, y: Self::V) -> Self::V;
    /// `x.mul(y)`.
    fn mul(self, x: Self::V, y: Self::V) -> Self::V;
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
    type Exact = Self;

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
    type Exact = Self;

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
    type Exact = Self;

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
/// computed in `f32` and screened: each op's exact result is rounded once to
/// `f32` (`add(alpha=)` and `addcmul` as one fused multiply-add, whose
/// product `t1·t2` of two 16-bit values is exact in `f32`), then to the
/// dtype. That double rounding equals the single one except where the
/// `f32` result is exactly a rounding boundary of the dtype (a midpoint
/// between two of its values, or its overflow threshold): every boundary
/// is an `f32`, and rounding to `f32` is monotonic, so an exact result on
/// one side of a boundary never rounds to the other side, only onto it.
/// Each op marks the lanes whose `f32` result is on a boundary
/// ([`HalfLanes::on_boundary`]) or whose product `t1·t2` was not exact
/// ([`HalfLanes::inexact_product`]: bfloat16's products can underflow or
/// overflow `f32`); a vector with a marked lane is [doubtful](Aten::doubtful)
/// and recomputed by [`RoundOnce`] ([`Aten::exact`]). On random data about
/// one op in 2^16 (bfloat16) or 2^13 (float16) lands on a boundary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Screened<L>(pub L);

impl<L> Screened<L> {
    /// `y` rounded to the dtype, its lanes on a boundary added to `marks`.
    #[inline(always)]
    fn round<H>(self, y: L::V, marks: L::M) -> (L::V, L::M)
    where
        H: Half16,
        L: HalfLanes<H>,
    {
        let r = self.0.narrow(y);
        (r, self.0.or(marks, self.0.on_boundary(y, r)))
    }
}

/// Lanes set in `a` or `b`, on `f32` lanes.
#[inline(always)]
fn or<L: Lanes<f32>>(l: L, a: L::M, b: L::M) -> L::M {
    l.or(a, b)
}

impl<H, L> Aten<H> for Screened<L>
where
    H: Element<Opmath = f32> + Half16,
    L: HalfLanes<H> + HalfLanes64<H>,
{
    type Isa = L;
    /// The lanes, and the mask of those that may be wrong.
    type V = (<L as Lanes<f32>>::V, <L as Lanes<f32>>::M);
    const N: usize = <L as Lanes<f32>>::N;
    type Scalar = Self;
    type Exact = Unroll<RoundOnce<L>, 4>;

    #[inline(always)]
    fn isa(self) -> L {
        self.0
    }
    #[inline(always)]
    fn exact(self) -> Option<Self::Exact> {
        Some(Unroll(RoundOnce(self.0)))
    }
    #[inline(always)]
    fn doubtful(self, v: Self::V) -> bool {
        Lanes::<f32>::any(self.0, v.1)
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        let l = self.0;
        (Lanes::<f32>::splat(l, x), HalfLanes::<H>::none(l))
    }
    #[inline(always)]
    fn load(self, s: &[H]) -> Self::V {
        (
            HalfLanes::<H>::load_half(self.0, s),
            HalfLanes::<H>::none(self.0),
        )
    }
    #[inline(always)]
    fn store(self, v: Self::V, s: &mut [H]) {
        HalfLanes::<H>::store_half(self.0, v.0, s)
    }
    #[inline(always)]
    fn xor(self, a: Self::V, b: Self::V) -> Self::V {
        let l = self.0;
        (Lanes::<f32>::xor(l, a.0, b.0), or(l, a.1, b.1))
    }
    #[inline(always)]
    fn add(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        self.round::<H>(Lanes::<f32>::add(l, x.0, y.0), or(l, x.1, y.1))
    }
    #[inline(always)]
    fn mul(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        self.round::<H>(Lanes::<f32>::mul(l, x.0, y.0), or(l, x.1, y.1))
    }
    #[inline(always)]
    fn div(self, x: Self::V, y: Self::V) -> Self::V {
        let l = self.0;
        self.round::<H>(Lanes::<f32>::div(l, x.0, y.0), or(l, x.1, y.1))
    }
    #[inline(always)]
    fn sqrt(self, x: Self::V) -> Self::V {
        self.round::<H>(Lanes::<f32>::sqrt(self.0, x.0), x.1)
    }
    #[inline(always)]
    fn add_alpha(self, x: Self::V, y: Self::V, alpha: Self::V) -> Self::V {
        let l = self.0;
        let marks = or(l, or(l, x.1, y.1), alpha.1);
        self.round::<H>(Lanes::<f32>::mul_add(l, y.0, alpha.0, x.0), marks)
    }
    #[inline(always)]
    fn addcmul(self, s: Self::V, t1: Self::V, t2: Self::V, value: Self::V) -> Self::V {
        let l = self.0;
        let p = Lanes::<f32>::mul(l, t1.0, t2.0);
        let marks = or(l, or(l, s.1, value.1), or(l, t1.1, t2.1));
        let marks = or(l, marks, HalfLanes::<H>::inexact_product(l, t1.0, t2.0, p));
        self.round::<H>(Lanes::<f32>::mul_add(l, value.0, p, s.0), marks)
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
    type Exact = A::Exact;

    #[inline(always)]
    fn isa(self) -> A::Isa {
        self.0.isa()
    }
    #[inline(always)]
    fn exact(self) -> Option<A::Exact> {
        self.0.exact()
    }
    #[inline(always)]
    fn doubtful(self, v: Self::V) -> bool {
        let mut i = 0;
        let mut any = false;
        while i < K {
            any |= self.0.doubtful(v[i]);
            i += 1;
        }
        any
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
