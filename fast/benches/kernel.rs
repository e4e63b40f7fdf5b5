//! `adadelta::kernel::run` against a memory-bandwidth probe with the same
//! traffic (4 f32 streams read, 3 written: 28 bytes per element), in both
//! numerics (`Numerics::Default`, and `Numerics::ReproduceLibtorch` where
//! `LibtorchSqrt::detect` finds oneMKL's kernel for this CPU), on 1 and 2
//! threads, for one tensor of 16, 4K, 1M, 16M and 64M elements and the
//! 200-tensor list of 16M elements in all; float64 tensors of 4K, 16M and
//! 64M elements against a probe of f64 traffic (56 bytes per element); and
//! bfloat16 and float16 tensors of the same sizes against a probe of 16-bit
//! traffic (14 bytes per element). Needs neither tch nor libtorch:
//!
//! ```sh
//! cargo bench -p adadelta --bench kernel              # everything (~2 min, ~1.1 GB)
//! cargo bench -p adadelta --bench kernel -- '^16M/'   # a criterion filter
//! ```
//!
//! At the end it prints what it ran on (CPU, kernel path), the table of
//! `fast/docs/performance.md` from criterion's samples (in
//! `target/criterion/adadelta-kernel/`, apart from difftest's bench of the
//! same names), and the load average before and after the run.
//! `difftest/benches/kernel.rs` runs the same workload and probe (the same
//! source files, `benches/shared/`) beside libtorch and the reference.

use std::path::Path;

use adadelta::{Coefficients, Hyperparams};
use criterion::Criterion;

#[path = "shared/machine.rs"]
mod machine;
#[path = "shared/probe.rs"]
mod probe;
#[path = "shared/table.rs"]
mod table;

use probe::{configure, model_sizes, Elem, Tensors, LIST200, M, SIZES, TINY};

/// The float64 groups: a tensor of 4K, 16M and 64M `f64` elements (the
/// probe's traffic is 56 bytes per element).
const F64_SIZES: [(&str, usize); 3] = [
    ("f64-4K", 4 * 1024),
    ("f64-16M", 16 * M),
    ("f64-64M", 64 * M),
];

/// The bfloat16 and float16 groups: a tensor of 4K, 16M and 64M elements
/// (the probe's traffic is 14 bytes per element).
const BF16_SIZES: [(&str, usize); 3] = [
    ("bf16-4K", 4 * 1024),
    ("bf16-16M", 16 * M),
    ("bf16-64M", 64 * M),
];
const F16_SIZES: [(&str, usize); 3] = [
    ("f16-4K", 4 * 1024),
    ("f16-16M", 16 * M),
    ("f16-64M", 64 * M),
];

/// The hyperparameters timed (weight decay on, so every op of the step runs).
fn hyperparams() -> Hyperparams {
    Hyperparams {
        lr: 0.5,
        weight_decay: 0.01,
        ..Hyperparams::default()
    }
}

fn bench_sizes<E: Elem>(c: &mut Criterion, name: &str, sizes: &[usize], probe_too: bool) {
    let coeffs = Coefficients::new(&hyperparams()).unwrap();
    let mut group = c.benchmark_group(name);
    configure(&mut group, sizes.iter().sum());
    let mut t = Tensors::<E>::new(sizes);
    probe::bench_fast(&mut group, &coeffs, &mut t, probe_too);
    group.finish();
}

/// The table of `fast/docs/performance.md`: median ns/element (minimum in
/// brackets), and fast's throughput as a share of the probe's.
fn print_table(dir: &Path) {
    println!("\n{}", machine::describe());
    let rows = std::iter::once(TINY)
        .chain(SIZES)
        .chain(std::iter::once((LIST200, 16 * M)));
    print_numerics_table(dir, rows);
    for b in ["fast-default", "fast-libtorch"] {
        for (group, what) in [
            (TINY.0, "a 16-element step (per-step overhead)"),
            ("4K", "a 4K-element step"),
        ] {
            if let Some((m, lo)) = table::per_element(dir, group, b, 1, 1) {
                println!("{b}: {what}, 1 thread: median {m:.0} ns (min {lo:.0} ns)");
            }
        }
    }
    print_div_sqrt_table(dir);
    print_f64_table(dir);
    println!("\nbfloat16 (probe: 14 bytes per element):");
    print_numerics_table(dir, BF16_SIZES);
    println!("\nfloat16 (probe: 14 bytes per element):");
    print_numerics_table(dir, F16_SIZES);
}

/// float64: the kernel against the f64 probe (4 f64 streams read, 3
/// written: 56 bytes per element).
fn print_f64_table(dir: &Path) {
    println!("\nfloat64 (probe: 56 bytes per element):");
    print_numerics_table(dir, F64_SIZES);
}

/// Both numerics against the probe, a row per (group, threads): median
/// ns/element (minimum in brackets) and the share of the probe's throughput.
fn print_numerics_table<'a>(dir: &Path, groups: impl IntoIterator<Item = (&'a str, usize)>) {
    println!(
        "\n| size | threads | probe | fast default (% of probe) | fast reproduce-libtorch (% of probe) |"
    );
    println!("|---|---|---|---|---|");
    for (group, n) in groups {
        for t in [1, 2] {
            let probe = table::probe_of(dir, group, t, n);
            let per = |b: &str| table::per_element(dir, group, b, t, n);
            println!(
                "| {group} | {t} | {} | {} | {} |",
                table::ns(probe),
                table::of_probe(per("fast-default"), probe),
                table::of_probe(per("fast-libtorch"), probe),
            );
        }
    }
}

/// Every division-and-square-root choice side by side, as a share of the
/// probe (`DivSqrt`: the same bits, different units of the CPU).
fn print_div_sqrt_table(dir: &Path) {
    let cols: Vec<String> = [("default", false), ("libtorch", true)]
        .into_iter()
        .flat_map(|(n, l)| {
            probe::div_sqrts(l)
                .into_iter()
                .map(move |d| probe::bench_name(n, d))
        })
        .collect();
    println!("\nDivision and square roots (`DivSqrt`), ns/element median and % of probe:\n");
    println!("| size | threads | probe | {} |", cols.join(" | "));
    println!("|---|---|---|{}", "---|".repeat(cols.len()));
    for (group, n) in SIZES.into_iter().chain(std::iter::once((LIST200, 16 * M))) {
        for t in [1, 2] {
            let probe = table::probe_of(dir, group, t, n);
            let cells: Vec<String> = cols
                .iter()
                .map(|b| table::of_probe(table::per_element(dir, group, b, t, n), probe))
                .collect();
            println!(
                "| {group} | {t} | {} | {} |",
                table::ns(probe),
                cells.join(" | ")
            );
        }
    }
    for b in &cols {
        if let Some((m, lo)) = table::per_element(dir, "4K", b, 1, 1) {
            println!("{b}: a 4K-element step, 1 thread: median {m:.0} ns (min {lo:.0} ns)");
        }
    }
}

fn main() {
    let before = machine::load();
    // Apart from difftest's kernel bench, whose groups have the same names.
    let dir = table::criterion_dir().join("adadelta-kernel");
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    bench_sizes::<f32>(&mut c, TINY.0, &[TINY.1], true);
    for (name, n) in SIZES {
        bench_sizes::<f32>(&mut c, name, &[n], true);
    }
    // Held to the 16M probe (a probe per tensor would not split the list
    // across threads as the kernel does).
    bench_sizes::<f32>(&mut c, LIST200, &model_sizes(), false);
    for (name, n) in F64_SIZES {
        bench_sizes::<f64>(&mut c, name, &[n], true);
    }
    for (name, n) in BF16_SIZES {
        bench_sizes::<adadelta::half::bf16>(&mut c, name, &[n], true);
    }
    for (name, n) in F16_SIZES {
        bench_sizes::<adadelta::half::f16>(&mut c, name, &[n], true);
    }
    c.final_summary();
    print_table(&dir);
    println!(
        "\nload average (1, 5, 15 min) before: {before}; after: {}",
        machine::load()
    );
}
