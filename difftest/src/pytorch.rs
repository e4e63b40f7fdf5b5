//! Runs real `torch.optim.Adadelta` (PyTorch in the project venv) on
//! [`Case`]s through `difftest/python/torch_adadelta.py`.
//!
//! The script is compiled into this crate (`include_str!`) and run with
//! `python -c`, so binaries do not depend on the source tree. The Python
//! interpreter is `$ADADELTA_PYTHON` at run time, else the venv Python the
//! build script found (`ADADELTA_PYTHON_BUILD`). Cases (float32 or float64
//! parameters) go to the script's stdin and trajectories come back on
//! stdout as JSON with every float as its bit pattern ([`WireCase`],
//! [`WireSnapshot`]). One Python process serves a
//! whole batch of cases, since starting Python and importing torch takes
//! about 2 s.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::accuracy::Compared;
use crate::case::{Case, Snapshot, Trajectory, WireCase, WireSnapshot};
use adadelta_reference::Format;

/// The Python driver script, `difftest/python/torch_adadelta.py`.
pub const SCRIPT: &str = include_str!("../python/torch_adadelta.py");

/// What the PyTorch installation reports about itself (`--info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorchInfo {
    /// `torch.__version__`, e.g. `2.13.0+cu130`.
    pub torch_version: String,
    /// `torch.backends.cpu.get_cpu_capability()`, e.g. `AVX512`.
    pub cpu_capability: String,
    /// `torch.get_num_threads()` in that process.
    pub num_threads: i64,
    /// MKL's `MKL_Get_Version_String`, if torch links MKL.
    pub mkl_version: Option<String>,
}

/// The Python interpreter used: `$ADADELTA_PYTHON` if set, else the venv
/// Python recorded at build time.
pub fn python_path() -> PathBuf {
    match std::env::var_os("ADADELTA_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("ADADELTA_PYTHON_BUILD")),
    }
}

/// Runs the script with `args`, feeding `stdin`, and returns its stdout.
fn run_script(args: &[String], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let py = python_path();
    let mut child = Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "could not start Python {}: {e} (run scripts/setup.sh, then `source scripts/env.sh`, \
                 or set ADADELTA_PYTHON to a Python with torch==2.13.0)",
                py.display()
            )
        })?;
    let mut pipe = child.stdin.take().ok_or("no stdin pipe to Python")?;
    // Feed stdin from another thread so a large output cannot deadlock us.
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let r = pipe.write_all(&input);
        drop(pipe);
        r
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for Python {}: {e}", py.display()))?;
    let write_result = writer
        .join()
        .map_err(|_| "stdin writer thread panicked".to_string())?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("No module named 'torch'") {
            " (torch is not installed for this Python: run scripts/setup.sh and `source scripts/env.sh`, \
             or set ADADELTA_PYTHON)"
        } else {
            ""
        };
        return Err(format!(
            "Python {} running torch_adadelta.py failed ({}){hint}:\n{}",
            py.display(),
            out.status,
            stderr.trim_end()
        ));
    }
    write_result.map_err(|e| format!("writing cases to Python's stdin: {e}"))?;
    Ok(out.stdout)
}

/// Runs every case through real `torch.optim.Adadelta` in one Python process
/// with torch's default thread count, and returns one trajectory per case.
/// The parameters are tensors of `T`'s dtype (`torch.float32`,
/// `torch.float64`, `torch.bfloat16` or `torch.float16`).
///
/// The optimizer is built as `Adadelta(params, lr=, rho=, eps=,
/// weight_decay=, maximize=)` with `foreach` at its default (False on CPU),
/// or `foreach=True` where the case's [`Hyper::foreach`](crate::case::Hyper::foreach)
/// says so; the script asserts which path ran.
pub fn run_pytorch<T: Compared + Format>(cases: &[Case<T>]) -> Result<Vec<Trajectory<T>>, String> {
    run_pytorch_with_threads(cases, None)
}

/// [`run_pytorch`] with `torch.set_num_threads(threads)` first, if given.
pub fn run_pytorch_with_threads<T: Compared + Format>(
    cases: &[Case<T>],
    threads: Option<u32>,
) -> Result<Vec<Trajectory<T>>, String> {
    let wire: Vec<WireCase> = cases.iter().map(WireCase::from).collect();
    let input = serde_json::to_vec(&wire).map_err(|e| format!("serialising cases: {e}"))?;
    let mut args = Vec::new();
    if let Some(n) = threads {
        args.push("--threads".to_string());
        args.push(n.to_string());
    }
    let out = run_script(&args, &input)?;
    let wire_out: Vec<Vec<WireSnapshot>> = serde_json::from_slice(&out)
        .map_err(|e| format!("parsing torch_adadelta.py output: {e}"))?;
    if wire_out.len() != cases.len() {
        return Err(format!(
            "torch_adadelta.py returned {} trajectories for {} cases",
            wire_out.len(),
            cases.len()
        ));
    }
    let mut trajectories = Vec::with_capacity(cases.len());
    for (case, w) in cases.iter().zip(&wire_out) {
        if w.len() != case.grads.len() {
            return Err(format!(
                "case {:?}: torch_adadelta.py returned {} snapshots for {} steps",
                case.name,
                w.len(),
                case.grads.len()
            ));
        }
        let trajectory = w
            .iter()
            .map(Snapshot::try_from)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("case {:?}: torch_adadelta.py returned {e}", case.name))?;
        trajectories.push(trajectory);
    }
    Ok(trajectories)
}

/// The torch version, CPU capability, thread count and MKL version of the
/// PyTorch that [`run_pytorch`] uses.
pub fn torch_info() -> Result<TorchInfo, String> {
    let out = run_script(&["--info".to_string()], &[])?;
    serde_json::from_slice(&out).map_err(|e| {
        format!(
            "parsing torch_adadelta.py --info output {:?}: {e}",
            String::from_utf8_lossy(&out)
        )
    })
}
