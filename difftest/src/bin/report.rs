//! The differential report: the workspace's main job (`./scripts/report.sh`).
//!
//! Runs the embedded default suite ([`adadelta_difftest::suite::default_suite`])
//! through every implementation, prints the table of
//! [`adadelta_difftest::report`], and exits 1 when a promised agreement fails.

use adadelta_difftest::report::{self, Options};
use adadelta_difftest::suite;
use std::process::ExitCode;

const USAGE: &str = "usage: report [--no-pytorch] [--json PATH] [--plot PATH.svg]

Runs the embedded default suite through fast, the MPFR reference (binary32
emulation) and libtorch (tch), measures per-step error against a 256-bit
MPFR reference and multi-step drift, and prints a table. Exits 1 if a
promised agreement fails, 2 on bad arguments.

  --no-pytorch   do not run real torch.optim.Adadelta in the venv's Python
  --json PATH    also write the whole report as JSON to PATH
  --plot PATH    also write an SVG plot of multi-step drift against step";

fn main() -> ExitCode {
    let mut opts = Options {
        run_pytorch: true,
        progress: true,
    };
    let mut json = None;
    let mut plot = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-pytorch" => opts.run_pytorch = false,
            "--json" => match args.next() {
                Some(p) => json = Some(p),
                None => {
                    eprintln!("report: --json needs a path\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--plot" => match args.next() {
                Some(p) => plot = Some(p),
                None => {
                    eprintln!("report: --plot needs a path\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
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
    let r = report::run(&suite::default_suite(), &opts);
    print!("{}", report::render(&r));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&r).expect("the report serialises");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("report: cannot write {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = plot {
        if let Err(e) = report::plot_drift_svg(&r, std::path::Path::new(&path)) {
            eprintln!("report: {e}");
            return ExitCode::from(2);
        }
    }
    if r.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
