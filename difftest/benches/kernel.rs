//! One Adadelta step, side by side in one run: `adadelta` in both numerics,
//! libtorch's Adadelta through tch, the MPFR reference (small sizes only),
//! and a memory-bandwidth probe with the same traffic (4 f32 streams read,
//! 3 written: 28 bytes per element), on 1 and 2 threads.
//!
//! The `adapters-*` groups time a whole optimizer step through each
//! framework adapter (`Adadelta<candle_core::Var>`, `Adadelta<tch::Tensor>`)
//! and through the plain `Adadelta<Param>`, beside `kernel::run` on the same
//! sizes and the probe, on one 16M tensor and on the 200-tensor list
//! (`cargo bench -p adadelta-difftest --bench kernel -- adapters`).
//!
//! ```sh
//! source scripts/env.sh
//! cargo bench -p adadelta-difftest --bench kernel            # everything (~5 min, ~3.5 GB)
//! cargo bench -p adadelta-difftest --bench kernel -- 16M     # a criterion filter
//! ```
//!
//! At the end it prints the ns/element table of `fast/docs/performance.md` from
//! criterion's samples (`target/criterion/*/*/*/new/sample.json`) and the
//! load average before and after the run (the machine may be shared).

#![allow(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adadelta::candle::candle_core::{self, Var};
use adadelta::kernel::{self, Executor, Job, Numerics, Threads};
use adadelta::{Adadelta, Coefficients, Options, Param};
use adadelta_difftest::case::Hyper;
use adadelta_difftest::suite::fill;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tch::Tensor;

const K: usize = 1 << 10;
const M: usize = 1 << 20;
/// One tensor of each size.
const SIZES: [(&str, usize); 4] = [("4K", 4 * K), ("1M", M), ("16M", 16 * M), ("64M", 64 * M)];
/// Per-step cost with (almost) no work: overhead.
const TINY: (&str, usize) = ("16", 16);

/// A model-like list of 200 tensors, 16M elements in all, from 33 to about
/// 814K elements each (log-uniform sizes in a fixed, shuffled order).
fn model_sizes() -> Vec<usize> {
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

struct Tensors {
    p: Vec<Vec<f32>>,
    g: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    u: Vec<Vec<f32>>,
}

impl Tensors {
    fn new(sizes: &[usize]) -> Self {
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
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            u: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    fn step(&mut self, c: &Coefficients, exec: &Executor) {
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
        let mut jobs: Vec<Job> = self
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
}

/// The same data as libtorch tensors.
struct TorchTensors {
    p: Vec<Tensor>,
    g: Vec<Tensor>,
    v: Vec<Tensor>,
    u: Vec<Tensor>,
}

impl TorchTensors {
    fn new(t: &Tensors) -> Self {
        let conv = |x: &Vec<Vec<f32>>| x.iter().map(|x| Tensor::from_slice(x)).collect();
        TorchTensors {
            p: conv(&t.p),
            g: conv(&t.g),
            v: conv(&t.v),
            u: conv(&t.u),
        }
    }

    fn step(&mut self, h: &Hyper) {
        for (((p, g), v), u) in self
            .p
            .iter_mut()
            .zip(&self.g)
            .zip(self.v.iter_mut())
            .zip(self.u.iter_mut())
        {
            adadelta_difftest::libtorch::step(h, p, g, v, u);
        }
    }
}

// ------------------------------------------------------------------ probe --

/// The bandwidth probe's loop: reads `p, g, v, u`, writes `p, v, u` (one add
/// each, so nothing is elided), with the widest vectors the CPU has.
fn probe_slice(p: &mut [f32], g: &[f32], v: &mut [f32], u: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected.
        unsafe { probe_avx512(p, g, v, u) };
        return;
    }
    for i in 0..p.len() {
        let (a, b, c, d) = (p[i], g[i], v[i], u[i]);
        p[i] = a + b;
        v[i] = c + b;
        u[i] = d + a;
    }
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
        // lengths asserted above); loadu/storeu need no alignment.
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
        // SAFETY: the mask selects lanes i..n only.
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

/// The probe over one tensor on `threads` threads: the same split as the
/// kernel (pieces of at least `grain`, at most four per thread).
fn probe(t: &mut Tensors, pool: &rayon::ThreadPool) {
    use rayon::prelude::*;
    let threads = pool.current_num_threads();
    for (((p, g), v), u) in
        t.p.iter_mut()
            .zip(&t.g)
            .zip(t.v.iter_mut())
            .zip(t.u.iter_mut())
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

// ------------------------------------------------------------------ benches --

fn pools() -> Vec<(usize, Arc<rayon::ThreadPool>)> {
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

fn hyper() -> Hyper {
    Hyper {
        lr: 0.5,
        weight_decay: 0.01,
        ..Hyper::default()
    }
}

fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
) {
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

fn bench_sizes(c: &mut Criterion, name: &str, sizes: &[usize], reference: bool, probe_too: bool) {
    let h = hyper();
    let coeffs = Coefficients::new(&h.to_fast()).unwrap();
    let n: usize = sizes.iter().sum();
    let mut group = c.benchmark_group(name);
    configure(&mut group, n);
    let repro = match adadelta::kernel::LibtorchSqrt::detect() {
        Ok(_) => Some(Numerics::ReproduceLibtorch),
        Err(e) => {
            eprintln!("fast/reproduce-libtorch skipped: {e}");
            None
        }
    };
    let mut t = Tensors::new(sizes);
    for (threads, pool) in pools() {
        let exec = |numerics| Executor {
            numerics,
            threads: Threads::Pool(pool.clone()),
            ..Executor::default()
        };
        if probe_too {
            group.bench_function(BenchmarkId::new("probe", threads), |b| {
                b.iter(|| probe(&mut t, &pool))
            });
        }
        let e = exec(Numerics::Default);
        group.bench_function(BenchmarkId::new("fast-default", threads), |b| {
            b.iter(|| t.step(&coeffs, &e))
        });
        if let Some(r) = repro {
            let e = exec(r);
            group.bench_function(BenchmarkId::new("fast-libtorch", threads), |b| {
                b.iter(|| t.step(&coeffs, &e))
            });
        }
    }
    drop(t);
    // libtorch after fast, with its own copy (fast's memory freed first).
    let mut tt = TorchTensors::new(&Tensors::new(sizes));
    for threads in [1, 2] {
        tch::set_num_threads(threads);
        group.bench_function(BenchmarkId::new("libtorch", threads), |b| {
            b.iter(|| tt.step(&h))
        });
    }
    drop(tt);
    if reference {
        let arith = adadelta_reference::Binary32 {
            mul_add: adadelta_reference::MulAdd::Fused,
        };
        let rh = h.to_reference();
        let mut t = Tensors::new(sizes);
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("reference", 1), |b| {
            b.iter(|| {
                for (((p, g), v), u) in
                    t.p.iter_mut()
                        .zip(&t.g)
                        .zip(t.v.iter_mut())
                        .zip(t.u.iter_mut())
                {
                    adadelta_reference::step(&arith, &rh, p, g, v, u);
                }
            })
        });
    }
    group.finish();
}

/// The options of [`hyper`].
fn options(h: &Hyper) -> Options {
    Options {
        lr: h.lr,
        rho: h.rho,
        eps: h.eps,
        weight_decay: h.weight_decay,
        maximize: h.maximize,
        ..Options::default()
    }
}

/// A whole optimizer step through each adapter, beside `kernel::run` and
/// the probe on the same sizes. Each optimizer steps once before timing, so
/// that its state exists (as in training after the first step).
fn bench_adapters(c: &mut Criterion, name: &str, sizes: &[usize]) {
    let h = hyper();
    let coeffs = Coefficients::new(&h.to_fast()).unwrap();
    let n: usize = sizes.iter().sum();
    let mut group = c.benchmark_group(format!("adapters-{name}"));
    configure(&mut group, n);
    // The adapters' own cost is a few microseconds a step, far below the
    // noise of a 10-sample run on a shared machine: more samples.
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(6));
    let data = Tensors::new(sizes);
    for (threads, pool) in pools() {
        let exec = Executor {
            threads: Threads::Pool(pool.clone()),
            ..Executor::default()
        };
        let mut t = Tensors::new(sizes);
        group.bench_function(BenchmarkId::new("probe", threads), |b| {
            b.iter(|| probe(&mut t, &pool))
        });
        group.bench_function(BenchmarkId::new("kernel-run", threads), |b| {
            b.iter(|| t.step(&coeffs, &exec))
        });
        drop(t);
        {
            let params = data.p.iter().zip(&data.g).map(|(p, g)| {
                let mut p = Param::new(p.clone());
                p.set_grad(g.clone()).unwrap();
                p
            });
            let mut opt = Adadelta::new(params.collect(), options(&h))
                .unwrap()
                .with_executor(exec.clone());
            opt.step().unwrap();
            group.bench_function(BenchmarkId::new("plain", threads), |b| {
                b.iter(|| opt.step().unwrap())
            });
        }
        {
            let cpu = candle_core::Device::Cpu;
            let vars: Vec<Var> = data
                .p
                .iter()
                .map(|p| Var::from_slice(p, p.len(), &cpu).unwrap())
                .collect();
            let mut loss = Vec::new();
            for (v, g) in vars.iter().zip(&data.g) {
                let g = candle_core::Tensor::from_slice(g, g.len(), &cpu).unwrap();
                loss.push((v.as_tensor() * g).unwrap().sum_all().unwrap());
            }
            let loss = candle_core::Tensor::stack(&loss, 0)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let mut opt = Adadelta::new(vars, options(&h))
                .unwrap()
                .with_executor(exec.clone());
            opt.step(&grads).unwrap();
            group.bench_function(BenchmarkId::new("candle", threads), |b| {
                b.iter(|| opt.step(&grads).unwrap())
            });
        }
        {
            let params: Vec<Tensor> = data
                .p
                .iter()
                .map(|p| Tensor::from_slice(p).set_requires_grad(true))
                .collect();
            for (p, g) in params.iter().zip(&data.g) {
                (p * Tensor::from_slice(g)).sum(tch::Kind::Float).backward();
            }
            let mut opt = Adadelta::new(params, options(&h))
                .unwrap()
                .with_executor(exec.clone());
            opt.step().unwrap();
            group.bench_function(BenchmarkId::new("tch", threads), |b| {
                b.iter(|| opt.step().unwrap())
            });
        }
    }
}

fn benches(c: &mut Criterion) {
    let _ = Tensor::from(1.0f32).sqrt(); // warm oneMKL's dispatch (pytorch#188792)
    bench_sizes(c, TINY.0, &[TINY.1], true, false);
    for (name, n) in SIZES {
        bench_sizes(c, name, &[n], n <= 4 * K, true);
    }
    bench_sizes(c, "list200", &model_sizes(), false, false);
    bench_adapters(c, "16M", &[16 * M]);
    bench_adapters(c, "list200", &model_sizes());
}

// ------------------------------------------------------------------ table --

fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return h.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// Per-iteration times (ns) of one benchmark's samples, from criterion's
/// `sample.json`, if it was measured.
fn samples(group: &str, bench: &str, threads: usize) -> Option<Vec<f64>> {
    let path = criterion_dir()
        .join(group)
        .join(bench)
        .join(threads.to_string())
        .join("new/sample.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let iters = v["iters"].as_array()?;
    let times = v["times"].as_array()?;
    let mut per: Vec<f64> = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .collect();
    per.sort_by(f64::total_cmp);
    (!per.is_empty()).then_some(per)
}

/// Median and minimum of the per-iteration times, in ns per element.
fn per_element(group: &str, bench: &str, threads: usize, n: usize) -> Option<(f64, f64)> {
    let s = samples(group, bench, threads)?;
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Some((median / n as f64, s[0] / n as f64))
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The table of `fast/docs/performance.md`: median ns/element (minimum in
/// brackets), and fast's throughput as a fraction of the probe's (median
/// over median; minimum over minimum in brackets).
fn print_table() {
    println!(
        "\n| size | threads | probe | fast default (% of probe) | fast reproduce-libtorch (% of probe) | libtorch | fast default vs libtorch | reference |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let rows: Vec<(&str, usize)> = std::iter::once(TINY)
        .chain(SIZES)
        .chain(std::iter::once(("list200", 16 * M)))
        .collect();
    let ns =
        |x: Option<(f64, f64)>| x.map_or("—".to_string(), |(m, lo)| format!("{m:.3} ({lo:.3})"));
    for (group, n) in rows {
        for t in [1, 2] {
            let per = |b: &str| per_element(group, b, t, n);
            // The 200-tensor list is held to the 16M one-tensor probe.
            let probe = if group == "list200" {
                per_element("16M", "probe", t, 16 * M)
            } else {
                per("probe")
            };
            let pct = |x: Option<(f64, f64)>| match (x, probe) {
                (Some((m, lo)), Some((pm, plo))) => format!(
                    "{} {:.0} % ({:.0} %)",
                    ns(x),
                    100.0 * pm / m,
                    100.0 * plo / lo
                ),
                _ => ns(x),
            };
            let (fd, fl, lt) = (per("fast-default"), per("fast-libtorch"), per("libtorch"));
            let speedup = match (fd, lt) {
                (Some((a, _)), Some((b, _))) => format!("{:.1}×", b / a),
                _ => "—".into(),
            };
            let reference = if t == 1 {
                per_element(group, "reference", 1, n)
            } else {
                None
            };
            println!(
                "| {group} | {t} | {} | {} | {} | {} | {speedup} | {} |",
                ns(probe),
                pct(fd),
                pct(fl),
                ns(lt),
                ns(reference),
            );
        }
    }
    println!(
        "\n| adapters | threads | probe | kernel::run | plain Adadelta<Param> | candle Adadelta<Var> | tch Adadelta<Tensor> |"
    );
    println!("|---|---|---|---|---|---|---|");
    for group in ["adapters-16M", "adapters-list200"] {
        for t in [1, 2] {
            let per = |b: &str| per_element(group, b, t, 16 * M);
            let base = per("kernel-run");
            // ns/element, and kernel::run's time as a share of this one's.
            let vs = |x: Option<(f64, f64)>| match (x, base) {
                (Some((m, lo)), Some((bm, blo))) => format!(
                    "{} {:.1} % ({:.1} %)",
                    ns(x),
                    100.0 * bm / m,
                    100.0 * blo / lo
                ),
                _ => ns(x),
            };
            println!(
                "| {group} | {t} | {} | {} | {} | {} | {} |",
                ns(per("probe")),
                ns(base),
                vs(per("plain")),
                vs(per("candle")),
                vs(per("tch")),
            );
        }
    }
    for b in ["fast-default", "fast-libtorch"] {
        if let Some((m, lo)) = per_element(TINY.0, b, 1, 1) {
            println!("\n{b}: a 16-element step (per-step overhead), 1 thread: median {m:.0} ns (min {lo:.0} ns)");
        }
        if let Some((m, lo)) = per_element("4K", b, 1, 1) {
            println!("{b}: a 4K-element step, 1 thread: median {m:.0} ns (min {lo:.0} ns)");
        }
    }
}

fn main() {
    let before = load();
    let mut c = Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    print_table();
    println!(
        "\nload average (1, 5, 15 min) before: {before}; after: {}",
        load()
    );
}
