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

/// Bit-identical elements and elements in all, over the trajectories of every case.
fn identical(a: &[Trajectory], b: &[Trajectory]) -> (u64, u64) {
    a.iter()
        .zip(b)
        .map(|(x, y)| accuracy::bit_identical(x, y))
        .fold((0, 0), |(e, n), (x, y)| (e + x, n + y))
}

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
    let elements: usize = cases
        .iter()
        .map(|c| c.params.iter().map(Vec::len).sum::<usize>() * c.grads.len())
        .sum();
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
    let lib_idx = Implementation::ALL
        .iter()
        .position(|&i| i == Implementation::Libtorch)
        .expect("libtorch is listed");

    let pytorch_trajs = if run_pytorch {
        let t0 = Instant::now();
        match pytorch::run_pytorch(&cases) {
            Ok(t) => {
                eprintln!(
                    "[report] ran torch.optim.Adadelta (Python) in {:.2?}",
                    t0.elapsed()
                );
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
            i.torch_version,
            i.cpu_capability,
            i.num_threads,
            i.mkl_version.as_deref().unwrap_or("MKL version unknown")
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
        "| {:<29} | {:>15} | {:>15} | {:>15} | {:>9} | {:>16} | {:>10} |",
        "implementation",
        "max ULP param",
        "max ULP sq_avg",
        "max ULP acc_dlt",
        "mean ULP",
        "within bound",
        "= libtorch"
    );
    println!(
        "|{:-<31}|{:->17}|{:->17}|{:->17}|{:->11}|{:->18}|{:->12}|",
        "", "", "", "", "", "", ""
    );
    let mut tightest = Vec::new();
    for (k, imp) in Implementation::ALL.iter().enumerate() {
        let t0 = Instant::now();
        let mut acc = Accuracy::default();
        for (case, traj) in cases.iter().zip(&trajs[k]) {
            acc.merge(&accuracy::per_step(case, traj, imp.sqrt_accuracy()));
        }
        let (eq, n) = identical(&trajs[k], &trajs[lib_idx]);
        eprintln!(
            "[report] measured {:<20} in {:.2?}",
            imp.name(),
            t0.elapsed()
        );
        let [mp, mv, mu] = acc.max_ulps_by_output;
        println!(
            "| {:<29} | {:>15.3} | {:>15.3} | {:>15.3} | {:>9.4} | {:>16} | {:>9.3}% |",
            imp.name(),
            mp,
            mv,
            mu,
            acc.mean_ulps(),
            if acc.violation_count == 0 {
                format!("yes ({:.3})", acc.max_bound_ratio)
            } else {
                format!("NO: {}", acc.violation_count)
            },
            100.0 * eq as f64 / n.max(1) as f64
        );
        tightest.push((imp.name(), acc.tightest.clone()));
        if acc.violation_count > 0 {
            failures.push(format!(
                "{}: {} elements outside the error bound, e.g. {:?}",
                imp.name(),
                acc.violation_count,
                acc.violations.first()
            ));
        }
    }
    if let Some(pt) = &pytorch_trajs {
        let (eq, n) = identical(pt, &trajs[lib_idx]);
        println!(
            "| {:<29} | {:>15} | {:>15} | {:>15} | {:>9} | {:>16} | {:>9.3}% |",
            "torch.optim.Adadelta (Python)",
            "-",
            "-",
            "-",
            "-",
            "-",
            100.0 * eq as f64 / n.max(1) as f64
        );
        if eq != n {
            failures.push(format!(
                "libtorch (tch) differs from torch.optim.Adadelta on {} of {} elements",
                n - eq,
                n
            ));
        }
    }

    println!();
    println!("within bound: no element's error exceeds the per-element bound of docs/numerics.md; in brackets the largest error/bound ratio, whose element is:");
    for (name, t) in &tightest {
        if let Some(t) = t {
            println!(
                "  {name}: step {} param {} [{}] {}: got {:e}, exact {:e}: {:.3} ULP of a {:.3} ULP bound",
                t.step, t.param, t.index, t.what, t.got, t.exact, t.ulps, t.bound_ulps
            );
        }
    }

    // Promise 1: fast == reference binary32, bit for bit.
    let fast_idx = Implementation::ALL
        .iter()
        .position(|&i| i == Implementation::Fast)
        .expect("fast is listed");
    let ref_idx = Implementation::ALL
        .iter()
        .position(|&i| i == Implementation::ReferenceBinary32)
        .expect("reference is listed");
    let (eq, n) = identical(&trajs[fast_idx], &trajs[ref_idx]);
    println!();
    println!("fast = reference binary32 (fused), bit for bit: {eq} of {n} elements");
    if eq != n {
        failures.push(format!(
            "fast differs from reference binary32 on {} of {} elements",
            n - eq,
            n
        ));
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
