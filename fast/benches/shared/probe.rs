//! The workload of the kernel benchmarks and its memory-bandwidth probe:
//! the sizes (one tensor of 16, 4K, 1M, 16M, 64M elements, and the
//! 200-tensor "list200" of 16M elements), the data, one `kernel::run` step,
//! and a probe with exactly the kernel's traffic (4 f32 streams read, 3
//! written: 28 bytes per element), split over threads as the kernel splits.
//!
//! Shared by source (`#[path = ...] mod probe;`) by `fast/benches/kernel.rs`
//! (no tch, no venv) and `difftest/benches/kernel.rs` (which adds libtorch
//! and the reference), so that both time the same thing.

use std::sync::Arc;
use std::time::Duration;

use adadelta::kernel::{self, DivSqrt, Executor, Job, LibtorchSqrt, Numerics, Threads};
use adadelta::Coefficients;
use criterion::{BenchmarkGroup, BenchmarkId, SamplingMode, Throughput};

pub const K: usize = 1 << 10;
pub const M: usize = 1 << 20;
/// One tensor of each size.
pub const SIZES: [(&str, usize); 4] = [("4K", 4 * K), ("1M", M), ("16M", 16 * M), ("64M", 64 * M)];
/// Per-step cost with (almost) no work: overhead.
pub const TINY: (&str, usize) = ("16", 16);
/// The name of the [`model_sizes`] group; its probe is the one of `16M`.
pub const LIST200: &str = "list200";

/// A model-like list of 200 tensors, 16M elements in all, from 33 to about
/// 814K elements each (log-uniform sizes in a fixed, shuffled order).
pub fn model_sizes() -> Vec<usize> {
    let raw: Vec<f64> = (0..200)
        .map(|i| 32.0 * 25_000f64.powf((i as f64 * 0.618_033_988_7) % 1.0))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut s: Vec<usize> = raw
        .iter()
        .map(|x| ((x * (16 * M) as f64 / total) as usize).max(16))
        .collect();
    let sum: usize = s.iter().sum();
    s[0] += 16 * M - sum;
    s
}

/// Cheap deterministic values in [-1, 1) (xorshift; the same sequence as
/// `adadelta_difftest::suite::fill`, which difftest cannot share with this
/// crate's bench).
fn fill<E: Elem>(n: usize, seed: u64) -> Vec<E> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            E::of((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        })
        .collect()
}

/// The element types benchmarked: the kernel's, with the probe's loop.
pub trait Elem: kernel::Element {
    /// Whether AVX-512's estimated division and square roots ([`DivSqrt`])
    /// play a part (f32 only).
    const ESTIMATES: bool = false;
    /// `x` rounded to this type.
    fn of(x: f32) -> Self;
    /// The probe over one tensor's slices.
    fn probe(p: &mut [Self], g: &[Self], v: &mut [Self], u: &mut [Self]);
}
impl Elem for f32 {
    const ESTIMATES: bool = true;
    fn of(x: f32) -> f32 {
        x
    }
    fn probe(p: &mut [f32], g: &[f32], v: &mut [f32], u: &mut [f32]) {
        probe_f32(p, g, v, u)
    }
}
impl Elem for f64 {
    fn of(x: f32) -> f64 {
        x.into()
    }
    fn probe(p: &mut [f64], g: &[f64], v: &mut [f64], u: &mut [f64]) {
        wide!(probe_lanes::<f64>(p, g, v, u))
    }
}
/// bfloat16 and float16: the probe adds the bit patterns (the traffic is
/// what counts: 14 bytes per element).
macro_rules! elem_half {
    ($($h:ty),*) => {$(
        impl Elem for $h {
            fn of(x: f32) -> $h {
                <$h>::from_f32(x)
            }
            fn probe(p: &mut [$h], g: &[$h], v: &mut [$h], u: &mut [$h]) {
                wide!(probe_lanes::<Bits16<$h>>(Bits16::of_mut(p), Bits16::of(g), Bits16::of_mut(v), Bits16::of_mut(u)))
            }
        }
    )*};
}
elem_half!(half::bf16, half::f16);

/// The four slices of every tensor of a step, of `f32` or `f64`.
pub struct Tensors<E = f32> {
    pub p: Vec<Vec<E>>,
    pub g: Vec<Vec<E>>,
    pub v: Vec<Vec<E>>,
    pub u: Vec<Vec<E>>,
}

impl<E: Elem> Tensors<E> {
    pub fn new(sizes: &[usize]) -> Self {
        Tensors {
            p: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| fill(n, 2 * i as u64 + 1))
                .collect(),
            g: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| fill(n, 2 * i as u64 + 2))
                .collect(),
            v: sizes.iter().map(|&n| vec![E::default(); n]).collect(),
            u: sizes.iter().map(|&n| vec![E::default(); n]).collect(),
        }
    }

    /// One `kernel::run` over every tensor.
    pub fn step(&mut self, c: &Coefficients, exec: &Executor) {
        if self.p.len() == 1 {
            // One tensor: no Vec of jobs, so the small sizes time the kernel alone.
            let mut jobs = [Job {
                coeffs: c,
                param: &mut self.p[0],
                grad: &self.g[0],
                square_avg: &mut self.v[0],
                acc_delta: &mut self.u[0],
            }];
            kernel::run(&mut jobs, exec).unwrap();
            return;
        }
        let mut jobs: Vec<Job<E>> = self
            .p
            .iter_mut()
            .zip(&self.g)
            .zip(self.v.iter_mut())
            .zip(self.u.iter_mut())
            .map(|(((p, g), v), u)| Job {
                coeffs: c,
                param: p,
                grad: g,
                square_avg: v,
                acc_delta: u,
            })
            .collect();
        kernel::run(&mut jobs, exec).unwrap();
    }

    /// The probe over every tensor on `pool`'s threads: the same split as
    /// the kernel (pieces of at least `DEFAULT_GRAIN`, at most four per
    /// thread; a tensor of fewer than `2 * DEFAULT_GRAIN` elements on the
    /// calling thread).
    pub fn probe(&mut self, pool: &rayon::ThreadPool) {
        use rayon::prelude::*;
        let threads = pool.current_num_threads();
        for (((p, g), v), u) in self
            .p
            .iter_mut()
            .zip(&self.g)
            .zip(self.v.iter_mut())
            .zip(self.u.iter_mut())
        {
            let n = p.len();
            if threads == 1 || n < 2 * kernel::DEFAULT_GRAIN {
                probe_slice(p, g, v, u);
                continue;
            }
            let chunk = n
                .div_ceil(4 * threads)
                .max(kernel::DEFAULT_GRAIN)
                .next_multiple_of(16);
            pool.install(|| {
                p.par_chunks_mut(chunk)
                    .zip(g.par_chunks(chunk))
                    .zip(v.par_chunks_mut(chunk))
                    .zip(u.par_chunks_mut(chunk))
                    .for_each(|(((p, g), v), u)| probe_slice(p, g, v, u));
            });
        }
    }
}

/// The bandwidth probe's loop: reads `p, g, v, u`, writes `p, v, u` (one add
/// each, so nothing is elided), with the widest vectors the CPU has. f32
/// with the kernel's own AVX-512 access pattern; f64 through the compiler's
/// vectorisation for the CPU's features.
fn probe_slice<E: Elem>(p: &mut [E], g: &[E], v: &mut [E], u: &mut [E]) {
    E::probe(p, g, v, u)
}

/// `$call` (a generic probe loop) compiled for the CPU's widest vectors.
macro_rules! wide {
    ($f:ident::<$t:ty>($($a:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            fn wide(p: &mut [$t], g: &[$t], v: &mut [$t], u: &mut [$t]) {
                $f(p, g, v, u)
            }
            // SAFETY: AVX-512F was just detected, `wide`'s only requirement.
            return unsafe { wide($($a),*) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn wide(p: &mut [$t], g: &[$t], v: &mut [$t], u: &mut [$t]) {
                $f(p, g, v, u)
            }
            // SAFETY: AVX2 was just detected, `wide`'s only requirement.
            return unsafe { wide($($a),*) };
        }
        $f($($a),*)
    }};
}
use wide;

/// A 16-bit float's bit pattern, for the probe's integer adds.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
struct Bits16<H>(u16, std::marker::PhantomData<H>);

impl<H: Copy> Bits16<H> {
    fn of(s: &[H]) -> &[Bits16<H>] {
        assert_eq!(std::mem::size_of::<H>(), 2);
        // SAFETY: `H` is a 2-byte `repr(transparent)` wrapper of `u16`
        // (`half::bf16`, `half::f16`), and `Bits16<H>` one of `u16`: same
        // size, alignment and validity (every bit pattern is valid).
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
    }
    fn of_mut(s: &mut [H]) -> &mut [Bits16<H>] {
        assert_eq!(std::mem::size_of::<H>(), 2);
        // SAFETY: as in `of`; the borrow is exclusive, as `s`'s was.
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
    }
}

impl<H> std::ops::Add for Bits16<H> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Bits16(self.0.wrapping_add(o.0), std::marker::PhantomData)
    }
}

fn probe_f32(p: &mut [f32], g: &[f32], v: &mut [f32], u: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected, which is probe_avx512's only
        // requirement.
        unsafe { probe_avx512(p, g, v, u) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected, which is probe_avx2's only
        // requirement.
        unsafe { probe_avx2(p, g, v, u) };
        return;
    }
    probe_lanes(p, g, v, u);
}

/// The probe's element loop, which the compiler vectorises with the target
/// features of the function it is inlined into.
#[inline(always)]
fn probe_lanes<E: Copy + std::ops::Add<Output = E>>(
    p: &mut [E],
    g: &[E],
    v: &mut [E],
    u: &mut [E],
) {
    let n = p.len();
    assert!(g.len() == n && v.len() == n && u.len() == n);
    for i in 0..n {
        let (a, b, c, d) = (p[i], g[i], v[i], u[i]);
        p[i] = a + b;
        v[i] = c + b;
        u[i] = d + a;
    }
}

/// [`probe_lanes`] compiled for AVX2 (8-lane loads and stores, as the
/// kernel's AVX2 loop), for CPUs without AVX-512.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn probe_avx2(p: &mut [f32], g: &[f32], v: &mut [f32], u: &mut [f32]) {
    probe_lanes(p, g, v, u)
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn probe_avx512(p: &mut [f32], g: &[f32], v: &mut [f32], u: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = p.len();
    assert!(g.len() == n && v.len() == n && u.len() == n);
    let (pp, gp, vp, up) = (p.as_mut_ptr(), g.as_ptr(), v.as_mut_ptr(), u.as_mut_ptr());
    let mut i = 0;
    // The same access pattern as the kernel's AVX-512 loop: full vectors
    // unmasked, the tail masked.
    while i + 16 <= n {
        // SAFETY: lanes i..i + 16 are in bounds of all four slices (equal
        // lengths asserted above); loadu/storeu need no alignment; `p`, `v`
        // and `u` are distinct `&mut` slices, so no store aliases a load of
        // another stream.
        unsafe {
            let a = _mm512_loadu_ps(pp.add(i));
            let b = _mm512_loadu_ps(gp.add(i));
            let c = _mm512_loadu_ps(vp.add(i));
            let d = _mm512_loadu_ps(up.add(i));
            _mm512_storeu_ps(pp.add(i), _mm512_add_ps(a, b));
            _mm512_storeu_ps(vp.add(i), _mm512_add_ps(c, b));
            _mm512_storeu_ps(up.add(i), _mm512_add_ps(d, a));
        }
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        // SAFETY: 0 < n - i < 16, and the mask selects lanes i..n only,
        // which are in bounds of all four slices; masked-off lanes are
        // neither read nor written (no fault past the end).
        unsafe {
            let a = _mm512_maskz_loadu_ps(m, pp.add(i));
            let b = _mm512_maskz_loadu_ps(m, gp.add(i));
            let c = _mm512_maskz_loadu_ps(m, vp.add(i));
            let d = _mm512_maskz_loadu_ps(m, up.add(i));
            _mm512_mask_storeu_ps(pp.add(i), m, _mm512_add_ps(a, b));
            _mm512_mask_storeu_ps(vp.add(i), m, _mm512_add_ps(c, b));
            _mm512_mask_storeu_ps(up.add(i), m, _mm512_add_ps(d, a));
        }
    }
}

/// Rayon pools of 1 and 2 threads.
pub fn pools() -> Vec<(usize, Arc<rayon::ThreadPool>)> {
    [1, 2]
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            (t, Arc::new(pool))
        })
        .collect()
}

/// Criterion settings for a group of `n` elements a step: flat sampling
/// and 10 samples from 16M elements up.
pub fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    if n >= 16 * M {
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
    } else {
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(1));
    }
}

/// The benchmark name of `kernel::run` in `numerics` (`"default"` or
/// `"libtorch"`) with `ds`: `fast-default`, `fast-libtorch` for the
/// hardware's division and square roots, `fast-default+estimated` and the
/// like for the others.
pub fn bench_name(numerics: &str, ds: DivSqrt) -> String {
    match ds {
        DivSqrt::Hardware => format!("fast-{numerics}"),
        _ => format!("fast-{numerics}+{}", ds.name()),
    }
}

/// The [`DivSqrt`] choices worth timing in each numerics on the selected
/// path: all it can run for the default numerics; for reproduce-libtorch,
/// whose square root is oneMKL's, the hardware's and the estimated division.
pub fn div_sqrts(libtorch: bool) -> Vec<DivSqrt> {
    let isa = kernel::Isa::selected().unwrap();
    DivSqrt::ALL
        .into_iter()
        .filter(|d| d.runs_with(isa))
        .filter(|d| !libtorch || matches!(d, DivSqrt::Hardware | DivSqrt::EstimatedDiv))
        .collect()
}

/// The probe (when `probe_too`) and `kernel::run` in both numerics
/// (reproduce-libtorch where this CPU's oneMKL kernel is known), with every
/// [`div_sqrts`] choice, on `t`, on 1 and 2 threads: the part both kernel
/// benches time alike.
pub fn bench_fast<E: Elem>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    coeffs: &Coefficients,
    t: &mut Tensors<E>,
    probe_too: bool,
) {
    // Where the oneMKL kernel is known and computable for this element type.
    let here = Executor::with_numerics(Numerics::ReproduceLibtorch);
    let repro = match LibtorchSqrt::detect().and_then(|_| kernel::sqrt::<E>(&here, &mut [])) {
        Ok(()) => Some(Numerics::ReproduceLibtorch),
        Err(e) => {
            eprintln!("fast-libtorch skipped for {}: {e}", E::DTYPE);
            None
        }
    };
    for (threads, pool) in pools() {
        let exec = |numerics, ds| Executor {
            numerics,
            div_sqrt: Some(ds),
            threads: Threads::Pool(pool.clone()),
            ..Executor::default()
        };
        if probe_too {
            group.bench_function(BenchmarkId::new("probe", threads), |b| {
                b.iter(|| t.probe(&pool))
            });
        }
        let runs = [("default", Some(Numerics::Default)), ("libtorch", repro)];
        for (name, numerics) in runs {
            let Some(numerics) = numerics else { continue };
            let choices = if E::ESTIMATES {
                div_sqrts(name == "libtorch")
            } else {
                vec![DivSqrt::Hardware]
            };
            for ds in choices {
                let e = exec(numerics, ds);
                group.bench_function(BenchmarkId::new(bench_name(name, ds), threads), |b| {
                    b.iter(|| t.step(coeffs, &e))
                });
            }
        }
    }
}
