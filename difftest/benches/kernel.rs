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
//! At the end it prints what it ran on (CPU model, vendor, logical CPUs,
//! kernel path), the ns/element table of `fast/docs/performance.md` from
//! criterion's samples (`target/criterion/*/*/*/new/sample.json`) and the
//! load average before and after the run (the machine may be shared).
//!
//! The workload, the probe and the table helpers are those of
//! `cargo bench -p adadelta --bench kernel` (`fast/benches/shared/`), which
//! times the kernel against the probe without tch or the venv.

use std::path::Path;
use std::time::Duration;

use adadelta::candle::candle_core::{self, Var};
use adadelta::kernel::{Executor, Threads};
use adadelta::{Adadelta, Coefficients, Param};
use adadelta_difftest::case::Hyper;
use criterion::{BenchmarkId, Criterion, SamplingMode};
use tch::Tensor;

// The workload, the probe, the tables and the machine's description are
// fast's kernel bench's, by source (one definition for both benches).
#[path = "../../fast/benches/shared/machine.rs"]
mod machine;
#[path = "../../fast/benches/shared/probe.rs"]
mod probe;
#[path = "../../fast/benches/shared/table.rs"]
mod table;

use probe::{configure, model_sizes, pools, Tensors, K, LIST200, M, SIZES, TINY};

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

fn hyper() -> Hyper {
    Hyper {
        lr: 0.5,
        weight_decay: 0.01,
        ..Hyper::default()
    }
}

fn bench_sizes(c: &mut Criterion, name: &str, sizes: &[usize], reference: bool, probe_too: bool) {
    let h = hyper();
    let coeffs = Coefficients::new(&h.to_fast()).unwrap();
    let n: usize = sizes.iter().sum();
    let mut group = c.benchmark_group(name);
    configure(&mut group, n);
    let mut t = Tensors::<f32>::new(sizes);
    probe::bench_fast(&mut group, &coeffs, &mut t, probe_too);
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
        let mut t = Tensors::<f32>::new(sizes);
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
        let mut t = Tensors::<f32>::new(sizes);
        group.bench_function(BenchmarkId::new("probe", threads), |b| {
            b.iter(|| t.probe(&pool))
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
            let mut opt = Adadelta::new(params.collect(), h.to_options())
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
            let mut opt = Adadelta::new(vars, h.to_options())
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
            let mut opt = Adadelta::new(params, h.to_options())
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
    bench_sizes(c, LIST200, &model_sizes(), false, false);
    bench_adapters(c, "16M", &[16 * M]);
    bench_adapters(c, LIST200, &model_sizes());
    // 200 tensors of 16 elements: almost no memory traffic, so what is
    // timed is each step's fixed cost, the adapters' lending included.
    bench_adapters(c, "overhead200", &[16; 200]);
}

// ------------------------------------------------------------------ table --

/// The table of `fast/docs/performance.md`: median ns/element (minimum in
/// brackets), and fast's throughput as a fraction of the probe's (median
/// over median; minimum over minimum in brackets).
fn print_table(dir: &Path) {
    use table::{ns, of_probe};
    println!("\n{}", machine::describe());
    println!(
        "\n| size | threads | probe | fast default (% of probe) | fast reproduce-libtorch (% of probe) | libtorch | fast default vs libtorch | reference |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let rows: Vec<(&str, usize)> = std::iter::once(TINY)
        .chain(SIZES)
        .chain(std::iter::once((LIST200, 16 * M)))
        .collect();
    for (group, n) in rows {
        for t in [1, 2] {
            let per = |b: &str| table::per_element(dir, group, b, t, n);
            let probe = table::probe_of(dir, group, t, n);
            let (fd, fl, lt) = (per("fast-default"), per("fast-libtorch"), per("libtorch"));
            let speedup = match (fd, lt) {
                (Some((a, _)), Some((b, _))) => format!("{:.1}×", b / a),
                _ => "—".into(),
            };
            let reference = if t == 1 { per("reference") } else { None };
            println!(
                "| {group} | {t} | {} | {} | {} | {} | {speedup} | {} |",
                ns(probe),
                of_probe(fd, probe),
                of_probe(fl, probe),
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
            let per = |b: &str| table::per_element(dir, group, b, t, 16 * M);
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
    println!("\nA step of 200 tensors of 16 elements (the fixed cost per step), µs, median (min):");
    for t in [1, 2] {
        let us = |b: &str| {
            table::per_element(dir, "adapters-overhead200", b, t, 1)
                .map_or("—".to_string(), |(m, lo)| {
                    format!("{:.1} ({:.1})", m / 1e3, lo / 1e3)
                })
        };
        println!(
            "{t} thread(s): kernel::run {}, plain {}, candle {}, tch {}",
            us("kernel-run"),
            us("plain"),
            us("candle"),
            us("tch")
        );
    }
    for b in ["fast-default", "fast-libtorch"] {
        if let Some((m, lo)) = table::per_element(dir, TINY.0, b, 1, 1) {
            println!("\n{b}: a 16-element step (per-step overhead), 1 thread: median {m:.0} ns (min {lo:.0} ns)");
        }
        if let Some((m, lo)) = table::per_element(dir, "4K", b, 1, 1) {
            println!("{b}: a 4K-element step, 1 thread: median {m:.0} ns (min {lo:.0} ns)");
        }
    }
}

fn main() {
    let before = machine::load();
    let dir = table::criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    print_table(&dir);
    println!(
        "\nload average (1, 5, 15 min) before: {before}; after: {}",
        machine::load()
    );
}
