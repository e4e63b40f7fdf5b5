//! Checkpoint save and load at scale, side by side in one run: `adadelta`
//! in each format (PyTorch's `torch.save` format, safetensors, JSON) against
//! real `torch.save` and `torch.load` + `load_state_dict` (PyTorch 2.13 in
//! the project venv, through `difftest/python/bench_checkpoint.py`).
//!
//! The state: 100M f32 parameters in 400 tensors of log-uniform sizes (the
//! same sizes on both sides), after 3 steps. Compared like for like:
//!
//! * **durable save**: `adadelta`'s atomic save (write a temporary, fsync,
//!   rename, fsync the directory) against `torch.save` then `os.fsync` of
//!   the file; and the **non-durable** write of each (no fsync);
//! * **load**: into a fresh optimizer (the resume case), every check
//!   included, against `torch.load(weights_only=True)` + `load_state_dict`;
//!   both read a file just written, so the page cache is in the same state.
//!
//! Peak extra memory is measured, not assumed: each operation runs once
//! more in a fresh child process, which reports its resident set before,
//! after, and its peak during the call (VmHWM, reset through
//! `/proc/self/clear_refs`); "extra" is the peak beyond the larger of before
//! and after.
//!
//! ```sh
//! source scripts/env.sh
//! cargo bench -p adadelta-difftest --bench checkpoint                # 100M parameters, ~10 min, ~6 GB disk
//! ADADELTA_CKPT_PARAMS=10000000 cargo bench -p adadelta-difftest --bench checkpoint   # quicker
//! ```
//!
//! At the end it prints what it ran on (CPU model, vendor, logical CPUs,
//! kernel path), the table of `fast/docs/performance.md`, and the load
//! average before and after the run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use adadelta::checkpoint::{Durability, Format, SaveOptions};
use adadelta::{Adadelta, Options, Param};
use adadelta_difftest::suite::fill;
use criterion::{Criterion, SamplingMode};

// What the bench ran on: the description every benchmark table of the
// workspace starts with (fast's kernel bench's source).
#[path = "../../fast/benches/shared/machine.rs"]
mod machine;

const CHILD: &str = "ADADELTA_CKPT_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `tensors` log-uniform sizes from about 1,000 to 10,000,000 elements (in
/// a fixed order), scaled to `total` elements in all.
fn sizes(total: usize, tensors: usize) -> Vec<usize> {
    let raw: Vec<f64> = (0..tensors)
        .map(|i| 1e3 * 1e4f64.powf((i as f64 * 0.618_033_988_7) % 1.0))
        .collect();
    let sum: f64 = raw.iter().sum();
    let mut s: Vec<usize> = raw
        .iter()
        .map(|x| ((x * total as f64 / sum) as usize).max(1))
        .collect();
    let got: usize = s.iter().sum();
    s[0] = s[0] + total - got;
    s
}

fn fresh(sizes: &[usize]) -> Adadelta {
    let params = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| Param::new(fill(n, i as u64 + 1)))
        .collect();
    Adadelta::new(params, Options::default()).unwrap()
}

/// An optimizer over `sizes` after 3 steps, gradients dropped.
fn stepped(sizes: &[usize]) -> Adadelta {
    let mut opt = fresh(sizes);
    for t in 0..3u64 {
        for (i, p) in opt.params_mut().iter_mut().enumerate() {
            let n = p.data().len();
            p.set_grad(fill(n, 1000 * (t + 1) + i as u64)).unwrap();
        }
        opt.step().unwrap();
        opt.zero_grad(true);
    }
    opt
}

/// An operation of the table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Save(Format, Durability),
    Load(Format),
}

impl Op {
    fn label(self) -> String {
        let f = |f: Format| match f {
            Format::Torch => "torch format",
            Format::Safetensors => "safetensors",
            Format::Json => "JSON",
        };
        match self {
            Op::Save(fmt, Durability::Durable) => format!("save {}, durable", f(fmt)),
            Op::Save(fmt, Durability::NoSync) => format!("save {}, no fsync", f(fmt)),
            Op::Load(fmt) => format!("load {}", f(fmt)),
        }
    }

    fn file(self, dir: &Path) -> PathBuf {
        let fmt = match self {
            Op::Save(f, _) | Op::Load(f) => f,
        };
        dir.join(match fmt {
            Format::Torch => "rust.pt",
            Format::Safetensors => "rust.safetensors",
            Format::Json => "rust.json",
        })
    }

    fn encode(self) -> String {
        match self {
            Op::Save(f, d) => format!("save {f:?} {d:?}"),
            Op::Load(f) => format!("load {f:?}"),
        }
    }

    fn decode(s: &str) -> Op {
        let fmt = |w: &str| match w {
            "Torch" => Format::Torch,
            "Safetensors" => Format::Safetensors,
            _ => Format::Json,
        };
        let w: Vec<&str> = s.split(' ').collect();
        match w[0] {
            "save" if w[2] == "Durable" => Op::Save(fmt(w[1]), Durability::Durable),
            "save" => Op::Save(fmt(w[1]), Durability::NoSync),
            _ => Op::Load(fmt(w[1])),
        }
    }
}

const OPS: [Op; 9] = [
    Op::Save(Format::Torch, Durability::Durable),
    Op::Save(Format::Torch, Durability::NoSync),
    Op::Save(Format::Safetensors, Durability::Durable),
    Op::Save(Format::Safetensors, Durability::NoSync),
    Op::Save(Format::Json, Durability::Durable),
    Op::Save(Format::Json, Durability::NoSync),
    Op::Load(Format::Torch),
    Op::Load(Format::Safetensors),
    Op::Load(Format::Json),
];

fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Memory of one operation: resident bytes before, at the peak, after.
#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    before: u64,
    peak: u64,
    after: u64,
}

impl Rss {
    fn extra(self) -> u64 {
        self.peak.saturating_sub(self.before.max(self.after))
    }
}

/// The child process: one operation, with its memory.
fn child(spec: &str) {
    let mut w = spec.splitn(3, '|');
    let (op, dir, sizes_file) = (
        Op::decode(w.next().unwrap()),
        PathBuf::from(w.next().unwrap()),
        w.next().unwrap(),
    );
    let sizes: Vec<usize> =
        serde_json::from_str(&std::fs::read_to_string(sizes_file).unwrap()).unwrap();
    let mut opt = match op {
        Op::Save(..) => stepped(&sizes),
        Op::Load(_) => fresh(&sizes),
    };
    let path = op.file(&dir);
    let before = status("VmRSS");
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    match op {
        Op::Save(format, durability) => opt
            .save_with(&path, &SaveOptions::new(format).durability(durability))
            .unwrap(),
        Op::Load(_) => opt.load(&path).unwrap(),
    }
    let peak = status("VmHWM");
    let after = status("VmRSS");
    println!("{{\"before\": {before}, \"peak\": {peak}, \"after\": {after}}}");
}

fn parse_rss(out: &[u8]) -> Rss {
    let v: serde_json::Value = serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)));
    Rss {
        before: v["before"].as_u64().unwrap(),
        peak: v["peak"].as_u64().unwrap(),
        after: v["after"].as_u64().unwrap(),
    }
}

fn rust_rss(op: Op, dir: &Path, sizes_file: &Path) -> Rss {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(
            CHILD,
            format!("{}|{}|{}", op.encode(), dir.display(), sizes_file.display()),
        )
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "child {op:?} failed");
    parse_rss(&out.stdout)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/bench_checkpoint.py")
}

fn python_rss(what: &str, sizes_file: &Path, path: &Path, durable: bool) -> Rss {
    let mut cmd = Command::new(adadelta_difftest::pytorch::python_path());
    cmd.arg(script())
        .args(["rss", what])
        .arg(sizes_file)
        .arg(path);
    if durable {
        cmd.arg("durable");
    }
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "python rss {what} failed");
    parse_rss(&out.stdout)
}

/// PyTorch, serving one save or load per request.
struct Torch {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Torch {
    fn start(sizes_file: &Path) -> Torch {
        let mut child = Command::new(adadelta_difftest::pytorch::python_path())
            .arg(script())
            .arg("serve")
            .arg(sizes_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start Python (scripts/setup.sh)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("ready"), "bench_checkpoint.py: {line}");
        Torch {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, cmd: serde_json::Value) -> Duration {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("an answer");
        Duration::from_nanos(v["ns"].as_u64().unwrap())
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row of the table.
struct Row {
    label: String,
    times: Vec<Duration>,
    bytes: u64,
    rss: Rss,
}

/// Benchmarks `once` (one operation, returning its own duration) under
/// `label`, keeping every duration for the table; `file` is what it wrote
/// or read.
fn measure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    file: &Path,
    mut once: impl FnMut() -> Duration,
) -> Row {
    let mut times = Vec::new();
    group.bench_function(label, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let d = once();
                    times.push(d);
                    d
                })
                .sum()
        })
    });
    Row {
        label: label.into(),
        times,
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        rss: Rss::default(),
    }
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let load_before = machine::load();
    let total = env_usize("ADADELTA_CKPT_PARAMS", 100_000_000);
    let tensors = env_usize("ADADELTA_CKPT_TENSORS", 400);
    let samples = env_usize("ADADELTA_CKPT_SAMPLES", 10);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sizes = sizes(total, tensors);
    let sizes_file = dir.join("sizes.json");
    std::fs::write(&sizes_file, serde_json::to_string(&sizes).unwrap()).unwrap();
    let state_bytes = 8 * total as u64;
    eprintln!(
        "checkpoint bench: {total} parameters in {tensors} tensors ({} to {} elements), state {:.2} GB",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        state_bytes as f64 / 1e9
    );

    let mut c = Criterion::default()
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let opt = stepped(&sizes);
    let mut torch = Torch::start(&sizes_file);
    let torch_pt = dir.join("torch.pt");
    let mut rows: Vec<Row> = Vec::new();

    let mut group = c.benchmark_group("checkpoint");
    group.sampling_mode(SamplingMode::Flat);
    for op in OPS.iter().filter(|o| matches!(o, Op::Save(..))) {
        let Op::Save(format, durability) = *op else {
            unreachable!()
        };
        let path = op.file(&dir);
        let options = SaveOptions::new(format).durability(durability);
        rows.push(measure(&mut group, &op.label(), &path, || {
            let t = Instant::now();
            opt.save_with(&path, &options).unwrap();
            t.elapsed()
        }));
    }
    for durable in [true, false] {
        let label = if durable {
            "torch.save + os.fsync (PyTorch)"
        } else {
            "torch.save, no fsync (PyTorch)"
        };
        rows.push(measure(&mut group, label, &torch_pt, || {
            torch.call(serde_json::json!({"op": "save", "path": torch_pt, "durable": durable}))
        }));
    }
    let mut target = Some(fresh(&sizes));
    for op in OPS.iter().filter(|o| matches!(o, Op::Load(_))) {
        let path = op.file(&dir);
        if !path.exists() {
            continue; // filtered out
        }
        rows.push(measure(&mut group, &op.label(), &path, || {
            let mut t_opt = target.take().unwrap();
            let t = Instant::now();
            t_opt.load(&path).unwrap();
            let d = t.elapsed();
            // Back to a fresh optimizer, outside the timing.
            target = Some(Adadelta::new(t_opt.into_params(), Options::default()).unwrap());
            d
        }));
    }
    if torch_pt.exists() {
        let label = "torch.load + load_state_dict (PyTorch)";
        rows.push(measure(&mut group, label, &torch_pt, || {
            torch.call(serde_json::json!({"op": "load", "path": torch_pt}))
        }));
    }
    group.finish();
    drop(torch);
    drop(opt);
    drop(target);

    // Memory, one fresh process per operation.
    for row in rows.iter_mut() {
        if row.times.is_empty() {
            continue;
        }
        row.rss = match OPS.iter().find(|o| o.label() == row.label) {
            Some(&op) => rust_rss(op, &dir, &sizes_file),
            None if row.label.starts_with("torch.load") => {
                python_rss("load", &sizes_file, &torch_pt, false)
            }
            None => python_rss(
                "save",
                &sizes_file,
                &torch_pt,
                row.label.contains("fsync ("),
            ),
        };
    }
    print_table(&rows, total, sizes.len(), state_bytes);
    println!(
        "\nload average (1, 5, 15 min) before: {load_before}; after: {}",
        machine::load()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn print_table(rows: &[Row], params: usize, tensors: usize, state_bytes: u64) {
    let torch_of = |label: &str| -> Option<f64> {
        let want = if label.starts_with("load") {
            "torch.load + load_state_dict (PyTorch)"
        } else if label.ends_with("durable") {
            "torch.save + os.fsync (PyTorch)"
        } else {
            "torch.save, no fsync (PyTorch)"
        };
        rows.iter()
            .find(|r| r.label == want && !r.times.is_empty())
            .map(|r| median(&r.times))
    };
    println!();
    println!(
        "Checkpoints: {params} f32 parameters in {tensors} tensors after 3 steps (state {:.2} GB)",
        state_bytes as f64 / 1e9,
    );
    println!("{}", machine::describe());
    println!();
    println!("| operation | median s (n) | file GB | B/param | peak extra MiB (% of state) | time / PyTorch's |");
    println!("|---|---|---|---|---|---|");
    for r in rows.iter().filter(|r| !r.times.is_empty()) {
        let m = median(&r.times);
        let ratio = if r.label.contains("PyTorch") {
            "1".to_string()
        } else {
            torch_of(&r.label).map_or("-".into(), |t| format!("{:.2}", m / t))
        };
        println!(
            "| {} | {:.3} ({}) | {:.3} | {:.3} | {:.1} ({:.2} %) | {} |",
            r.label,
            m,
            r.times.len(),
            r.bytes as f64 / 1e9,
            r.bytes as f64 / params as f64,
            r.rss.extra() as f64 / (1u64 << 20) as f64,
            100.0 * r.rss.extra() as f64 / state_bytes as f64,
            ratio
        );
    }
}
