//! The differential report: the workspace's main job (`./scripts/report.sh`).
//!
//! Runs the embedded default suite ([`adadelta_difftest::suite::default_suites`])
//! in float32, float64, bfloat16 and float16 through every implementation, prints the tables
//! of [`adadelta_difftest::report`], and exits 1 when a promised agreement
//! fails.

use adadelta_difftest::cli;
use adadelta_difftest::report::{self, Options};
use adadelta_difftest::suite;
use std::process::ExitCode;

const USAGE: &str = "usage: report [--no-pytorch] [--json PATH] [--plot PATH.svg]

Runs the embedded default suite, in float32, float64, bfloat16 and float16,
through fast (both numerics), the MPFR reference (emulating each format;
in bfloat16 and float16 rounding every op once and rounding as PyTorch
does), libtorch (tch) in float32 and float64, and real
torch.optim.Adadelta, measures per-step error against a 256-bit MPFR
reference and multi-step drift, and prints a table per dtype. Exits 1 if a promised agreement fails,
2 on bad arguments.

  --no-pytorch   do not run real torch.optim.Adadelta in the venv's Python
  --json PATH    also write the whole report as JSON to PATH
  --plot PATH    also write an SVG plot of multi-step drift against step";

fn main() -> ExitCode {
    match report() {
        Ok(code) => code,
        Err(message) => {
            cli::eprint(&format!("report: {message}\n"));
            ExitCode::from(2)
        }
    }
}

fn report() -> Result<ExitCode, String> {
    let mut opts = Options {
        run_pytorch: true,
        progress: true,
    };
    let mut json = None;
    let mut plot = None;
    let mut args = cli::args()?.into_iter();
    let path_of =
        |flag: &str, next| cli::path_after(flag, next).map_err(|e| format!("{e}\n\n{USAGE}"));
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-pytorch" => opts.run_pytorch = false,
            "--json" => json = Some(path_of("--json", args.next())?),
            "--plot" => plot = Some(path_of("--plot", args.next())?),
            "-h" | "--help" => {
                cli::print(&format!("{USAGE}\n"))?;
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    // Checked before the run (a minute or more): a path that cannot be
    // written fails at once.
    let json = json.map(|p| cli::Output::open(&p)).transpose()?;
    let plot = plot.map(|p| cli::Output::open(&p)).transpose()?;
    let r = report::run(&suite::default_suites(), &opts);
    // The files first, then standard output: a closed or full standard
    // output cannot keep them from being written.
    if let Some(out) = json {
        out.write(&(serde_json::to_string_pretty(&r).expect("the report serialises") + "\n"))?;
    }
    if let Some(out) = plot {
        let path = std::path::PathBuf::from(out.path());
        drop(out);
        report::plot_drift_svg(&r, &path)?;
    }
    cli::print(&report::render(&r))?;
    Ok(if r.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
