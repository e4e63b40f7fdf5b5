//! Replays a user scenario (`docs/replay.md`) through every implementation
//! and writes their results as JSON.

use adadelta::half::{bf16, f16};
use adadelta_difftest::accuracy::{self, Compared, NanBits};
use adadelta_difftest::case::{Case, Trajectory};
use adadelta_difftest::cli;
use adadelta_difftest::dtype::{Dtype, Floating};
use adadelta_difftest::implementations::{HalfImplementation, Implementation, HALF_TORCH_THREADS};
use adadelta_difftest::pytorch;
use adadelta_difftest::scenario::{self, Scenario};
use adadelta_reference::Format;
use serde_json::{json, Value};
use std::process::ExitCode;

const USAGE: &str = "usage: replay SCENARIO.json [--dtype DTYPE] [--out RESULT.json] [--pytorch]

Replays the scenario through fast, the MPFR reference and libtorch (tch)
(and real torch.optim.Adadelta with --pytorch), and writes
per-implementation results, per-step errors against the 256-bit reference and
bit-identity between implementations as JSON (to stdout without --out).
DTYPE is float32 (the default), float64, bfloat16 or float16; for the 16-bit
dtypes the implementations are fast in both numerics, the reference rounding
every op once and the reference rounding as PyTorch does (and PyTorch with
one intra-op thread). Format: docs/replay.md.";

/// The dtypes `--dtype` names.
const DTYPES: [&str; 4] = ["float32", "float64", "bfloat16", "float16"];

fn tensor<T: Compared + Format>(v: &[T]) -> Value {
    let values: Vec<Value> = v
        .iter()
        .map(|&x| {
            let x = x.to_float().to_f64();
            if x.is_finite() {
                json!(x)
            } else {
                json!(format!("{x}").to_lowercase())
            }
        })
        .collect();
    json!({ "bits": v.iter().map(|x| x.bits()).collect::<Vec<_>>(), "values": values })
}

/// Places a group's trajectory into the scenario's global parameter numbering.
fn merge<T: Compared + Format>(steps: &mut [Vec<Value>], traj: &Trajectory<T>, idx: &[usize]) {
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
    let mut dtype = "float32".to_string();
    let mut with_pytorch = false;
    let mut args = cli::args().map_err(usage_error)?.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(cli::path_after("--out", args.next()).map_err(usage_error)?),
            "--dtype" => match args.next() {
                Some(d) if DTYPES.contains(&d.as_str()) => dtype = d,
                Some(d) => {
                    return Err(usage_error(format!(
                        "unknown dtype {d:?} (one of {})",
                        DTYPES.join(", ")
                    )))
                }
                None => return Err(usage_error("--dtype needs a dtype".into())),
            },
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
    let bad = |e: String| (2, format!("replay: {path}: {e}"));
    let mut report = match dtype.as_str() {
        "float64" => replay_as::<f64>(&scenario, with_pytorch, bad)?,
        "bfloat16" => replay_half::<bf16>(&scenario, with_pytorch, bad)?,
        "float16" => replay_half::<f16>(&scenario, with_pytorch, bad)?,
        _ => replay_as::<f32>(&scenario, with_pytorch, bad)?,
    };
    let fields = report.as_object_mut().expect("an object");
    fields.insert("scenario".into(), json!(path));
    fields.insert("dtype".into(), json!(dtype));
    let text = serde_json::to_string_pretty(&report).expect("serialises") + "\n";
    match out {
        Some(o) => o.write(&text),
        None => cli::print(&text),
    }
    .map_err(|e| (2, format!("replay: {e}")))
}

/// One implementation's run: its name, the implementation whose NaN rule it
/// follows (`None`: real PyTorch, whose NaN bits are libtorch's), and its
/// trajectory per group.
type Run<T> = (String, Option<Implementation>, Vec<Trajectory<T>>);

/// float32 or float64: every implementation, its error against the 256-bit
/// reference within the format's bound, and which runs are bit-identical.
fn replay_as<T: Dtype>(
    scenario: &Scenario,
    with_pytorch: bool,
    bad: impl Fn(String) -> Failure,
) -> Result<Value, Failure> {
    let groups = scenario.group_cases::<T>().map_err(bad)?;
    let mut errors = serde_json::Map::new();
    let mut runs: Vec<Run<T>> = Vec::new();
    for imp in Implementation::ALL {
        let trajs: Vec<Trajectory<T>> = groups.iter().map(|(c, _)| imp.run(c)).collect();
        let mut acc = accuracy::Accuracy::default();
        for ((c, _), t) in groups.iter().zip(&trajs) {
            acc.merge(&accuracy::per_step(c, t, imp.sqrt_accuracy()));
        }
        errors.insert(imp.name::<T>().into(), error_json(&acc));
        runs.push((imp.name::<T>().into(), Some(imp), trajs));
    }
    if with_pytorch {
        let cases: Vec<Case<T>> = groups.iter().map(|(c, _)| c.clone()).collect();
        let t = pytorch::run_pytorch(&cases).map_err(|e| (1, format!("replay: {e}")))?;
        runs.push(("torch.optim.Adadelta (Python)".into(), None, t));
    }
    let torch = Implementation::Libtorch;
    let nan = |a: Option<Implementation>, b: Option<Implementation>| {
        a.unwrap_or(torch).nan_bits(b.unwrap_or(torch))
    };
    let mut report = results(scenario, &groups, &runs, nan);
    report["error_vs_high_precision"] = Value::Object(errors);
    Ok(report)
}

/// bfloat16 or float16: fast in both numerics, the reference rounding every
/// op once (what the default numerics promise) and rounding as PyTorch does
/// (what reproduce-libtorch promises), real PyTorch with `--pytorch`, each
/// one's error against the 256-bit reference within the 16-bit bound of
/// its rounding, and which runs are bit-identical, NaNs by class (torch's
/// bfloat16 NaN bits depend on the tensor's length). One PyTorch intra-op
/// thread on both sides ([`HALF_TORCH_THREADS`]).
fn replay_half<H: Floating>(
    scenario: &Scenario,
    with_pytorch: bool,
    bad: impl Fn(String) -> Failure,
) -> Result<Value, Failure> {
    let groups = scenario.group_cases::<H>().map_err(bad)?;
    let cases: Vec<Case<H>> = groups.iter().map(|(c, _)| c.clone()).collect();
    let mut errors = serde_json::Map::new();
    let mut runs: Vec<Run<H>> = Vec::new();
    for imp in HalfImplementation::ALL {
        if imp == HalfImplementation::PyTorch && !with_pytorch {
            continue;
        }
        let trajs = match imp.run_all(&cases) {
            Ok(t) => t,
            Err(e) if imp == HalfImplementation::PyTorch => {
                return Err((1, format!("replay: {e}")))
            }
            // Reproduce-libtorch where this CPU computes none: left out.
            Err(_) => continue,
        };
        let mut acc = accuracy::Accuracy::default();
        for (c, t) in cases.iter().zip(&trajs) {
            acc.merge(&accuracy::per_step_half(
                c,
                t,
                imp.rounding(),
                HALF_TORCH_THREADS,
            ));
        }
        errors.insert(imp.name::<H>(), error_json(&acc));
        runs.push((imp.name::<H>(), None, trajs));
    }
    let mut report = results(scenario, &groups, &runs, |_, _| NanBits::QuietAnyPayload);
    report["error_vs_high_precision"] = Value::Object(errors);
    Ok(report)
}

/// One implementation's errors against the 256-bit reference, as JSON.
fn error_json<T: Floating>(acc: &accuracy::Accuracy<T>) -> Value {
    json!({
        "max_ulp_param": acc.max_ulps_by_output[0],
        "max_ulp_square_avg": acc.max_ulps_by_output[1],
        "max_ulp_acc_delta": acc.max_ulps_by_output[2],
        "mean_ulp": acc.mean_ulps(),
        "outputs_compared": acc.compared,
        "outputs_non_finite": acc.non_finite,
        "outside_bound": acc.violation_count,
        "max_bound_ratio": acc.max_bound_ratio,
    })
}

/// The runs' results in the scenario's numbering, and which pairs are
/// bit-identical (NaNs compared as `nan` says for the two).
fn results<T: Compared + Format>(
    scenario: &Scenario,
    groups: &[(Case<T>, Vec<usize>)],
    runs: &[Run<T>],
    nan: impl Fn(Option<Implementation>, Option<Implementation>) -> NanBits,
) -> Value {
    let (steps, nparams) = (scenario.grads.len(), scenario.params.len());
    let mut identical = serde_json::Map::new();
    for (a, ia, ta) in runs {
        for (b, ib, tb) in runs {
            if a < b {
                let (e, n) = ta
                    .iter()
                    .zip(tb)
                    .map(|(x, y)| accuracy::bit_identical_with(x, y, nan(*ia, *ib)))
                    .fold((0, 0), |(e, n), (x, y)| (e + x, n + y));
                identical.insert(
                    format!("{a} = {b}"),
                    json!({ "identical": e, "elements": n }),
                );
            }
        }
    }
    let mut results = serde_json::Map::new();
    for (name, _, trajs) in runs {
        let mut steps_json = vec![vec![Value::Null; nparams]; steps];
        for ((_, idx), t) in groups.iter().zip(trajs) {
            merge(&mut steps_json, t, idx);
        }
        results.insert(name.clone(), json!({ "steps": steps_json }));
    }
    json!({ "results": results, "bit_identical": identical })
}
