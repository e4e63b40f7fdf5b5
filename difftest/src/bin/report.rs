//! The differential report: the workspace's main job.
//!
//! Runs the embedded default suite ([`adadelta_difftest::suite::default_suite`])
//! through every implementation, measures each one's per-step error against
//! the 256-bit MPFR reference, compares bits with libtorch, and prints a
//! table. Exits with status 1 when a promised agreement fails:
//!
//! 1. fast (default numerics) is bit-identical to the reference's binary32 emulation;
//! 2. libtorch through tch is bit-identical to real `torch.optim.Adadelta` (run in the venv);
//! 3. every implementation's per-step error is within the derived bound (`docs/numerics.md`);
//! 4. parameters without a gradient are never changed.

use adadelta_difftest::accuracy::{self, Accuracy};
use adadelta_difftest::case::Trajectory;
use adadelta_difftest::implementations::Implementation;
use adadelta_difftest::{pytorch, suite};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: report [--no-pytorch]

Runs the embedded default suite through fast, the MPFR reference (binary32
emulation) and libtorch (tch), measures per-step error against a 256-bit
MPFR reference, and prints a table. Exits 1 if a promised agreement fails.

  --no-pytorch   do not run real torch.optim.Adadelta in the venv's Python
                 (skips promise 2; everything else still runs)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut run_pytorch = true;
    for a in &args {
        match a.as_str() {
            "--no-pytorch" => run_pytorch = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("report: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let cases = suite::default_suite();
    let elements: usize = cases.iter().map(|c| c.params.iter().map(Vec::len).sum::<usize>() * c.grads.len()).sum();
    eprintln!("[report] {} cases, {} element-steps", cases.len(), elements);

    let info = pytorch::torch_info();
    let mut failures: Vec<String> = Vec::new();

    // Trajectories per implementation and case.
    let mut trajs: Vec<Vec<Trajectory>> = Vec::new();
    for imp in Implementation::ALL {
        let t0 = Instant::now();
        trajs.push(cases.iter().map(|c| imp.run(c)).collect());
        eprintln!("[report] ran {:<20} in {:.2?}", imp.name(), t0.elapsed());
    }
    let lib_idx = Implementation::ALL.iter().position(|&i| i == Implementation::Libtorch).expect("libtorch is listed");

    let pytorch_trajs = if run_pytorch {
        let t0 = Instant::now();
        match pytorch::run_pytorch(&cases) {
            Ok(t) => {
                eprintln!("[report] ran torch.optim.Adadelta (Python) in {:.2?}", t0.elapsed());
                Some(t)
            }
            Err(e) => {
                failures.push(format!("could not run torch.optim.Adadelta: {e}"));
                None
            }
        }
    } else {
        None
    };

    println!("adadelta-rs differential report");
    match &info {
        Ok(i) => println!(
            "torch {} | CPU capability {} | torch threads {} | {}",
            i.torch_version, i.cpu_capability, i.num_threads, i.mkl_version
        ),
        Err(e) => println!("torch: unknown ({e})"),
    }
    println!(
        "suite: {} cases, {} element-steps; error = |f32 - exact| in ULPs of binary32 at the exact \
         value, per step from the implementation's own f32 state, exact = MPFR {} bits",
        cases.len(),
        elements,
        accuracy::PRECISION
    );
    println!();
    println!(
        "| {:<28} | {:>13} | {:>14} | {:>16} | {:>17} |",
        "implementation", "max ULP vs HP", "mean ULP vs HP", "bound held (max)", "= libtorch (bits)"
    );
    println!("|{:-<30}|{:->15}|{:->16}|{:->18}|{:->19}|", "", "", "", "", "");

    for (k, imp) in Implementation::ALL.iter().enumerate() {
        let t0 = Instant::now();
        let mut acc = Accuracy::default();
        let (mut eq, mut n) = (0u64, 0u64);
        for (c, case) in cases.iter().enumerate() {
            acc.merge(&accuracy::per_step(case, &trajs[k][c], imp.sqrt_accuracy()));
            let (e, m) = accuracy::bit_identical(&trajs[k][c], &trajs[lib_idx][c]);
            eq += e;
            n += m;
        }
        eprintln!("[report] measured {:<20} in {:.2?}", imp.name(), t0.elapsed());
        println!(
            "| {:<28} | {:>13.3} | {:>14.4} | {:>16} | {:>16.3}% |",
            imp.name(),
            acc.max_ulps,
            acc.mean_ulps(),
            if acc.violation_count == 0 { format!("yes ({:.2})", acc.max_bound_ratio) } else { format!("NO: {}", acc.violation_count) },
            100.0 * eq as f64 / n.max(1) as f64
        );
        if acc.violation_count > 0 {
            failures.push(format!("{}: {} elements outside the error bound, e.g. {:?}", imp.name(), acc.violation_count, acc.violations.first()));
        }
    }
    if let Some(pt) = &pytorch_trajs {
        let (mut eq, mut n) = (0u64, 0u64);
        for (c, t) in pt.iter().enumerate() {
            let (e, m) = accuracy::bit_identical(t, &trajs[lib_idx][c]);
            eq += e;
            n += m;
        }
        println!("| {:<28} | {:>13} | {:>14} | {:>16} | {:>16.3}% |", "torch.optim.Adadelta (Python)", "-", "-", "-", 100.0 * eq as f64 / n.max(1) as f64);
        if eq != n {
            failures.push(format!("libtorch (tch) differs from torch.optim.Adadelta on {} of {} elements", n - eq, n));
        }
    }

    // Promise 1: fast == reference binary32, bit for bit.
    let fast_idx = Implementation::ALL.iter().position(|&i| i == Implementation::Fast).expect("fast is listed");
    let ref_idx = Implementation::ALL.iter().position(|&i| i == Implementation::ReferenceBinary32).expect("reference is listed");
    let (mut eq, mut n) = (0u64, 0u64);
    for c in 0..cases.len() {
        let (e, m) = accuracy::bit_identical(&trajs[fast_idx][c], &trajs[ref_idx][c]);
        eq += e;
        n += m;
    }
    println!();
    println!("fast = reference binary32 (fused), bit for bit: {eq} of {n} elements");
    if eq != n {
        failures.push(format!("fast differs from reference binary32 on {} of {} elements", n - eq, n));
    }

    println!();
    if failures.is_empty() {
        println!("all promised agreements hold");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
        ExitCode::from(1)
    }
}
