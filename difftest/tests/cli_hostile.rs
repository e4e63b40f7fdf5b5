//! The `replay` and `report` commands on hostile input and hostile output:
//! each runs the built binary and checks its exit code and its message, and
//! that it did not panic (exit code 101, "panicked" on stderr).

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REPLAY: &str = env!("CARGO_BIN_EXE_replay");
const REPORT: &str = env!("CARGO_BIN_EXE_report");
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/scenarios/two_groups.json"
);

/// A directory of this test's own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("adadelta-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` (whose standard output the caller has set) to completion
/// within `limit` (a hang is a failure, not a stuck test), stderr captured.
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `program args` (stdout and stderr captured), within 60 s.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    let mut c = Command::new(program);
    c.args(args).stdout(Stdio::piped());
    run_within(c, Duration::from_secs(60))
}

/// The exit code is `code`, stderr contains `message`, and nothing panicked.
fn expect(out: &Output, code: i32, message: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "a panic: {err}");
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(message), "stderr {err:?} lacks {message:?}");
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn a_non_utf8_argument_is_an_error_naming_it() {
    let bad = std::ffi::OsStr::from_bytes(b"\xff.json");
    for program in [REPLAY, REPORT] {
        expect(
            &run(program, &[bad]),
            2,
            "argument \"\u{fffd}.json\" is not valid UTF-8",
        );
    }
}

#[test]
fn replay_to_a_full_or_closed_stdout_is_an_error_not_a_panic() {
    let full = std::fs::File::create("/dev/full").unwrap();
    let mut c = Command::new(REPLAY);
    c.arg(EXAMPLE).stdout(full);
    let out = run_within(c, Duration::from_secs(60));
    expect(
        &out,
        2,
        "cannot write to standard output: No space left on device",
    );

    // A reader that has gone: the pipe's read end is closed before replay
    // writes (EPIPE; Rust ignores SIGPIPE).
    let mut child = Command::new(REPLAY)
        .arg(EXAMPLE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    expect(&out, 2, "cannot write to standard output");
}

#[test]
fn replay_reads_only_regular_files_of_bounded_size() {
    let dir = Dir::new("files");
    expect(
        &run(REPLAY, &[os("/dev/zero")]),
        2,
        "/dev/zero: not a regular file",
    );
    let fifo = dir.0.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // No writer: opening it would block forever.
    expect(&run(REPLAY, &[fifo.as_os_str()]), 2, "not a regular file");
    let big = dir.0.join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(adadelta_difftest::scenario::MAX_BYTES + 1)
        .unwrap();
    expect(
        &run(REPLAY, &[big.as_os_str()]),
        2,
        "larger than the limit of 16777216 bytes",
    );
    expect(&run(REPLAY, &[dir.0.as_os_str()]), 2, "not a regular file");
}

#[test]
fn replay_refuses_a_scenario_beyond_the_element_step_limit() {
    let dir = Dir::new("cost");
    let n = adadelta_difftest::scenario::MAX_ELEMENT_STEPS / 2 + 1;
    let ones = vec!["0.5"; n].join(",");
    let text =
        format!(r#"{{"groups":[{{"params":[0]}}],"params":[[{ones}]],"grads":[[[{ones}]]]}}"#);
    let p = dir.file("cost.json", &text);
    expect(
        &run(REPLAY, &[p.as_os_str()]),
        2,
        &format!(
            "{n} elements over 1 steps is {} element-steps, more than the limit of 100000",
            2 * n
        ),
    );
}

#[test]
fn replay_messages_say_what_is_wrong_and_where() {
    let dir = Dir::new("messages");
    let scenario = |params: &str| {
        format!("{{\"groups\": [{{\"params\": [0]}}],\n\"params\": [{params}], \"grads\": []}}")
    };
    for (params, message) in [
        (r#"{"bits": [1], "extra": 2}"#, "unknown field `extra`, expected `bits` at line 2 column"),
        (r#"{"bits": [1], "bits": [2]}"#, "duplicate field `bits` at line 2"),
        (r#"{}"#, "missing field `bits` at line 2"),
        (r#"[1.0, "NaN"]"#, "unknown number \"NaN\" (use a number, \"nan\", \"inf\" or \"-inf\") at line 2 column 22"),
        (r#"[1.0, {"a": 1}]"#, "invalid type: map, expected a number, \"nan\", \"inf\" or \"-inf\" at line 2"),
        (r#""text""#, "expected a tensor: an array of numbers (or \"nan\", \"inf\", \"-inf\"), or {\"bits\": [bit patterns as integers]} at line 2"),
        (r#"{"bits": [-1]}"#, "invalid value: integer `-1`, expected u64 at line 2"),
        // Read as u64, refused when the replay's dtype (float32 here) is narrower.
        (r#"{"bits": [4294967296]}"#, "parameter 0: bit pattern 4294967296 is wider than 32 bits"),
    ] {
        let p = dir.file("s.json", &scenario(params));
        let out = run(REPLAY, &[p.as_os_str()]);
        expect(&out, 2, message);
        expect(&out, 2, &format!("{}: ", p.display()));
    }
    expect(
        &run(REPLAY, &[os(EXAMPLE), os("--out")]),
        2,
        "--out needs a path",
    );
    expect(
        &run(REPLAY, &[os(EXAMPLE), os("--out"), os("--pytorch")]),
        2,
        "--out needs a path",
    );
    expect(
        &run(
            REPLAY,
            &[os(EXAMPLE), os("--out"), os("/nonexistent/dir/r.json")],
        ),
        2,
        "cannot write /nonexistent/dir/r.json: No such file or directory",
    );
}

#[test]
fn replay_skips_a_group_without_parameters_even_for_pytorch() {
    let dir = Dir::new("empty");
    let s = dir.file(
        "s.json",
        r#"{"groups":[{"params":[]},{"params":[0]}],"params":[[1.0]],"grads":[[[0.5]]]}"#,
    );
    let out_path = dir.0.join("r.json");
    let python = adadelta_difftest::pytorch::torch_info().is_ok();
    let mut args = vec![s.as_os_str(), os("--out"), out_path.as_os_str()];
    if python {
        args.push(os("--pytorch"));
    }
    let out = run(REPLAY, &args);
    expect(&out, 0, "");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let results = r["results"].as_object().unwrap();
    assert_eq!(
        results.contains_key("torch.optim.Adadelta (Python)"),
        python
    );
    for (name, res) in results {
        assert_eq!(res["steps"][0][0]["step"], 1.0, "{name}");
    }
}

#[test]
fn report_checks_its_output_paths_before_the_run() {
    let start = Instant::now();
    for flag in ["--json", "--plot"] {
        expect(
            &run(REPORT, &[os(flag), os("/nonexistent/dir/r")]),
            2,
            "cannot write /nonexistent/dir/r: No such file or directory",
        );
        expect(
            &run(REPORT, &[os(flag)]),
            2,
            &format!("{flag} needs a path"),
        );
    }
    // Far less than the run (a minute or more): nothing was run.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// The two runs of the whole report (about two minutes each without
/// PyTorch, mostly on one thread) run side by side.
#[test]
fn report_writes_its_json_even_when_stdout_fails() {
    let dir = Dir::new("report");
    // A full standard output.
    let full_json = dir.0.join("full.json");
    let full = Command::new(REPORT)
        .args([os("--no-pytorch"), os("--json"), full_json.as_os_str()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `report --json F 2>&1 | head -1`: standard output and error on one
    // pipe whose reader leaves after the first line.
    let head_json = dir.0.join("head.json");
    let head = Command::new("bash")
        .args([
            "-c",
            r#""$0" --no-pytorch --json "$1" 2>&1 | head -1; exit "${PIPESTATUS[0]}""#,
            REPORT,
        ])
        .arg(&head_json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (full, head) = (
        full.wait_with_output().unwrap(),
        head.wait_with_output().unwrap(),
    );
    expect(
        &full,
        2,
        "cannot write to standard output: No space left on device",
    );
    let first = String::from_utf8_lossy(&head.stdout);
    assert!(first.starts_with("[report]"), "{first}");
    // 2: standard output failed (broken pipe); not 101, a panic.
    assert_eq!(head.status.code(), Some(2), "{first}");
    for json in [full_json, head_json] {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(
            r["promises"].is_array(),
            "the whole report was written to {json:?}"
        );
    }
}
