//! Replays a user scenario (`docs/replay.md`) through every implementation
//! and writes their results as JSON.

use adadelta_difftest::accuracy;
use adadelta_difftest::case::Trajectory;
use adadelta_difftest::cli;
use adadelta_difftest::implementations::Implementation;
use adadelta_difftest::pytorch;
use adadelta_difftest::scenario::{self, Scenario};
use serde_json::{json, Value};
use std::process::ExitCode;

const USAGE: &str = "usage: replay SCENARIO.json [--out RESULT.json] [--pytorch]

Replays the scenario through fast, the MPFR reference (binary32 emulation)
and libtorch (tch) (and real torch.optim.Adadelta with --pytorch), and writes
per-implementation results, per-step errors against the 256-bit reference and
bit-identity between implementations as JSON (to stdout without --out).
Format: docs/replay.md.";

fn tensor(v: &[f32]) -> Value {
    let values: Vec<Value> = v
        .iter()
        .map(|&x| {
            if x.is_finite() {
                json!(x as f64)
            } else {
                json!(format!("{x}").to_lowercase())
            }
        })
        .collect();
    json!({ "bits": v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "values": values })
}

/// Places a group's trajectory into the scenario's global parameter numbering.
fn merge(steps: &mut [Vec<Value>], traj: &Trajectory, idx: &[usize]) {
    for (t, snap) in traj.iter().enumerate() {
        for (j, &i) in idx.iter().enumerate() {
            steps[t][i] = json!({
                "param": tensor(&snap.params[j]),
                "square_avg": snap.square_avg[j].as_deref().map(tensor),
                "acc_delta": snap.acc_delta[j].as_deref().map(tensor),
                "step": snap.step[j],
            });
        }
    }
}

fn main() -> ExitCode {
    match replay() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            cli::eprint(&format!("{message}\n"));
            ExitCode::from(code)
        }
    }
}

/// A failure: the exit code and the message.
type Failure = (u8, String);

fn usage_error(why: String) -> Failure {
    (2, format!("replay: {why}\n\n{USAGE}"))
}

fn replay() -> Result<(), Failure> {
    let mut path = None;
    let mut out = None;
    let mut with_pytorch = false;
    let mut args = cli::args().map_err(usage_error)?.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(cli::path_after("--out", args.next()).map_err(usage_error)?),
            "--pytorch" => with_pytorch = true,
            "-h" | "--help" => {
                return cli::print(&format!("{USAGE}\n")).map_err(|e| (2, format!("replay: {e}")));
            }
            _ if path.is_none() && !a.starts_with('-') => path = Some(a),
            other => return Err(usage_error(format!("unexpected argument {other:?}"))),
        }
    }
    let Some(path) = path else {
        return Err(usage_error("a scenario file is needed".into()));
    };
    // Checked before the run: a path that cannot be written fails at once.
    let out = out
        .map(|o| cli::Output::open(&o))
        .transpose()
        .map_err(|e| (2, format!("replay: {e}")))?;
    let scenario = cli::read_text(&path, scenario::MAX_BYTES)
        .and_then(|t| Scenario::parse(&t).map_err(|e| format!("{path}: {e}")))
        .map_err(|e| (2, format!("replay: {e}")))?;
    let groups = scenario.group_cases();
    let steps = scenario.grads.len();
    let nparams = scenario.params.len();

    let mut results = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    // Each run with its implementation (`None`: real PyTorch, which holds
    // NaN bits as libtorch does).
    let mut runs: Vec<(String, Option<Implementation>, Vec<Trajectory>)> = Vec::new();
    for imp in Implementation::ALL {
        let trajs: Vec<Trajectory> = groups.iter().map(|(c, _)| imp.run(c)).collect();
        let mut acc = accuracy::Accuracy::default();
        for ((c, _), t) in groups.iter().zip(&trajs) {
            acc.merge(&accuracy::per_step(c, t, imp.sqrt_accuracy()));
        }
        errors.insert(
            imp.name::<f32>().into(),
            json!({
                "max_ulp_param": acc.max_ulps_by_output[0],
                "max_ulp_square_avg": acc.max_ulps_by_output[1],
                "max_ulp_acc_delta": acc.max_ulps_by_output[2],
                "mean_ulp": acc.mean_ulps(),
                "outputs_compared": acc.compared,
                "outputs_non_finite": acc.non_finite,
                "outside_bound": acc.violation_count,
            }),
        );
        runs.push((imp.name::<f32>().into(), Some(imp), trajs));
    }
    if with_pytorch {
        let cases: Vec<_> = groups.iter().map(|(c, _)| c.clone()).collect();
        let t = pytorch::run_pytorch(&cases).map_err(|e| (1, format!("replay: {e}")))?;
        runs.push(("torch.optim.Adadelta (Python)".into(), None, t));
    }
    let mut identical = serde_json::Map::new();
    for (a, ia, ta) in &runs {
        for (b, ib, tb) in &runs {
            if a < b {
                let torch = Implementation::Libtorch;
                let nan = ia.unwrap_or(torch).nan_bits(ib.unwrap_or(torch));
                let (e, n) = ta
                    .iter()
                    .zip(tb)
                    .map(|(x, y)| accuracy::bit_identical_with(x, y, nan))
                    .fold((0, 0), |(e, n), (x, y)| (e + x, n + y));
                identical.insert(
                    format!("{a} = {b}"),
                    json!({ "identical": e, "elements": n }),
                );
            }
        }
    }
    for (name, _, trajs) in &runs {
        let mut steps_json = vec![vec![Value::Null; nparams]; steps];
        for ((_, idx), t) in groups.iter().zip(trajs) {
            merge(&mut steps_json, t, idx);
        }
        results.insert(name.clone(), json!({ "steps": steps_json }));
    }
    let report = json!({
        "scenario": path,
        "results": results,
        "error_vs_high_precision": errors,
        "bit_identical": identical,
    });
    let text = serde_json::to_string_pretty(&report).expect("serialises") + "\n";
    match out {
        Some(o) => o.write(&text),
        None => cli::print(&text),
    }
    .map_err(|e| (2, format!("replay: {e}")))
}
