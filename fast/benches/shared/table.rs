//! The kernel benchmarks' tables, read back from criterion's samples
//! (`<dir>/<group>/<function>/<threads>/new/sample.json`): ns per element,
//! median and minimum, and throughput as a share of the probe's.
//!
//! Shared by source (`#[path = ...] mod table;`) by `fast/benches/kernel.rs`
//! and `difftest/benches/kernel.rs`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::probe::{LIST200, M};

/// When this run began: [`criterion_dir`], called before any benchmark
/// runs, sets it. A sample file older than this is an earlier run's (a
/// benchmark this run filtered out) and is not read.
static START: OnceLock<SystemTime> = OnceLock::new();

/// Where criterion writes: `CRITERION_HOME`, else `criterion/` in the
/// target directory (`CARGO_TARGET_DIR`, else the one holding this bench
/// binary, `<target>/<profile>/deps/<bench>`). Call it before the
/// benchmarks run: it marks the run's start.
pub fn criterion_dir() -> PathBuf {
    START.get_or_init(SystemTime::now);
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return h.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion")
}

/// Per-iteration times (ns) of one benchmark's samples, sorted, if it was
/// measured in this run.
fn samples(dir: &Path, group: &str, bench: &str, threads: usize) -> Option<Vec<f64>> {
    let path = dir
        .join(group)
        .join(bench)
        .join(threads.to_string())
        .join("new/sample.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < *START.get()? {
        return None;
    }
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

/// Median and minimum of the per-iteration times, in ns per element of a
/// step of `n` elements (`n = 1`: ns per step).
pub fn per_element(
    dir: &Path,
    group: &str,
    bench: &str,
    threads: usize,
    n: usize,
) -> Option<(f64, f64)> {
    let s = samples(dir, group, bench, threads)?;
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Some((median / n as f64, s[0] / n as f64))
}

/// The probe a group is held to: its own, except the 200-tensor list's,
/// which is the probe of one 16M tensor (the same elements in all).
pub fn probe_of(dir: &Path, group: &str, threads: usize, n: usize) -> Option<(f64, f64)> {
    if group == LIST200 {
        per_element(dir, "16M", "probe", threads, 16 * M)
    } else {
        per_element(dir, group, "probe", threads, n)
    }
}

/// `median (minimum)`, or a dash if not measured.
pub fn ns(x: Option<(f64, f64)>) -> String {
    x.map_or("—".to_string(), |(m, lo)| format!("{m:.3} ({lo:.3})"))
}

/// [`ns`], then the probe's time over this one as a percentage (median over
/// median, minimum over minimum in brackets) when both were measured.
pub fn of_probe(x: Option<(f64, f64)>, probe: Option<(f64, f64)>) -> String {
    match (x, probe) {
        (Some((m, lo)), Some((pm, plo))) => format!(
            "{} {:.0} % ({:.0} %)",
            ns(x),
            100.0 * pm / m,
            100.0 * plo / lo
        ),
        _ => ns(x),
    }
}
