//! The JSON state-dict reader against hostile input (`fast/docs/reliability.md`,
//! "JSON: memory, duplicate keys, error length"): it reads tensors straight
//! into their final buffers, keeps its memory within a small multiple of
//! the file, turns a failed allocation into an error, refuses duplicate
//! keys, and quotes at most a readable excerpt of any value, saying where.
//!
//! The memory tests run this test binary again as a child process, which
//! writes one hostile file, loads it and reports its peak resident memory
//! (`VmHWM`), or loads it under an address-space limit (`RLIMIT_AS`).
//!
//! ```sh
//! cargo test -p adadelta --test reliability_json -- --nocapture                       # 4 MiB files
//! ADADELTA_JSON_MIB=100 cargo test -p adadelta --test reliability_json -- --nocapture # 100 MiB files
//! ```

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adadelta::{load_json, CheckpointError, GroupDict, StateDict, TensorData};
use common::env_or;
use serde_json::{json, Value};

const CHILD: &str = "ADADELTA_JSON_CHILD";

/// A group with the required keys, `params` last, and `more` before it.
fn group(more: &str, params: &str) -> String {
    format!(r#"{{"lr":1.0,"rho":0.9,"eps":1e-6,"weight_decay":0.0,{more}"params":[{params}]}}"#)
}

fn tensor(shape: &str, bits: &str) -> String {
    format!(r#"{{"dtype":"float32","shape":[{shape}],"bits":[{bits}]}}"#)
}

fn dict(state: &str, groups: &str) -> String {
    format!(r#"{{"state":{{{state}}},"param_groups":[{groups}]}}"#)
}

/// A parameter's state with `square_avg` as given.
fn entry(square_avg: &str) -> String {
    format!(
        r#"{{"step":{},"square_avg":{square_avg},"acc_delta":{}}}"#,
        tensor("", "1065353216"),
        tensor("2", "0,0")
    )
}

/// Every way to read a state dict from text: the string and reader
/// parsers, the file loaders, and serde (`load_json`'s path).
/// (`load`, which tells the format from the first byte, only for text that
/// starts as JSON state dicts do.)
fn every_reader(text: &str) -> Vec<(&'static str, Result<StateDict, CheckpointError>)> {
    let dir = temp_dir("readers");
    let path = dir.join("sd.json");
    std::fs::write(&path, text).unwrap();
    let mut r = vec![
        ("from_json_str", StateDict::from_json_str(text)),
        ("from_reader", StateDict::from_reader(text.as_bytes())),
        ("load_json", load_json::<StateDict>(&path)),
        (
            "serde_json",
            serde_json::from_str(text).map_err(CheckpointError::from),
        ),
    ];
    if text.starts_with('{') {
        r.push(("load", StateDict::load(&path)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    r
}

/// A fresh directory (one per call: the tests run in parallel).
fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    common::temp_dir(&format!("json-{tag}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

/// The parser's position in an error: (line, column).
fn position(message: &str) -> (usize, usize) {
    let at = message
        .rsplit_once(" at line ")
        .unwrap_or_else(|| panic!("no position in {message:?}"))
        .1;
    let (line, column) = at.split_once(" column ").unwrap();
    (line.parse().unwrap(), column.parse().unwrap())
}

// ---- 1. Tensors are read into their final buffers and moved ----

#[test]
fn a_tensor_is_read_into_a_buffer_of_exactly_its_length_and_moved_into_the_optimizer() {
    // 1001 elements: no growth policy (doubling, or by an eighth) ends there.
    let n = 1001;
    let mut opt = adadelta::Adadelta::new(
        vec![
            adadelta::Param::new(vec![0.5; n]),
            adadelta::Param::new(vec![1.0; 3]),
        ],
        Default::default(),
    )
    .unwrap();
    for p in opt.params_mut() {
        let g = vec![0.25; p.numel()];
        p.set_grad(g).unwrap();
    }
    opt.step().unwrap();
    let text = opt.state_dict().to_json_string().unwrap();
    // The same dict with every tensor's elements before its shape, which
    // the reader then cannot size in advance.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    for s in v["state"].as_object_mut().unwrap().values_mut() {
        for t in s.as_object_mut().unwrap().values_mut() {
            let bits = t["bits"].take();
            let shape = t["shape"].take();
            *t = json!({"bits": bits, "dtype": "float32", "shape": shape});
        }
    }
    let reordered = v.to_string();
    assert!(reordered.contains(r#"{"bits":["#), "{reordered:.80}");
    for text in [&text, &reordered] {
        for (reader, sd) in every_reader(text) {
            let sd = sd.unwrap();
            assert_eq!(sd, opt.state_dict(), "{reader}");
            for s in sd.state.into_values() {
                for t in [s.square_avg, s.acc_delta] {
                    let (_, data) = t.into_parts();
                    assert_eq!(data.capacity(), data.len(), "{reader}");
                }
            }
        }
    }
    // Loading moves the buffers: the optimizer's state is the very memory
    // the reader filled.
    let sd = StateDict::from_json_str(&text).unwrap();
    let buffers: Vec<_> = sd
        .state
        .values()
        .flat_map(|s| [s.square_avg.data().as_ptr(), s.acc_delta.data().as_ptr()])
        .collect();
    let mut fresh = adadelta::Adadelta::new(
        vec![
            adadelta::Param::new(vec![0.5; n]),
            adadelta::Param::new(vec![1.0; 3]),
        ],
        Default::default(),
    )
    .unwrap();
    fresh.load_state_dict(sd).unwrap();
    let state: Vec<_> = (0..2)
        .flat_map(|i| {
            let s = fresh.state(i).unwrap();
            [s.square_avg().as_ptr(), s.acc_delta().as_ptr()]
        })
        .collect();
    assert_eq!(state, buffers);
}

// ---- 3. Duplicate keys ----

#[test]
fn duplicate_keys_are_refused_naming_the_key_and_where() {
    let one = entry(&tensor("2", "0,0"));
    let g = group(r#""initial_lr":0.5,"#, "0");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!(r#"{{"state":{{}},"state":{{}},"param_groups":[{g}]}}"#),
            "state",
            "the state dict",
        ),
        (
            format!(r#"{{"state":{{}},"param_groups":[],"param_groups":[{g}]}}"#),
            "param_groups",
            "the state dict",
        ),
        (dict(&format!(r#""0":{one},"0":{one}"#), &g), "0", "state"),
        (dict(r#""0":{},"0":{}"#, &g), "0", "state"),
        (dict(&format!(r#""0":{{}},"0":{one}"#), &g), "0", "state"),
        (
            dict(&format!(r#""0":{one},"1":{{}},"0":{{}}"#), &g),
            "0",
            "state",
        ),
        (
            dict(
                &format!(r#""0":{{"step":{0},"step":{0}}}"#, tensor("", "0")),
                &g,
            ),
            "step",
            "state[0]",
        ),
        (
            dict(
                &format!(
                    r#""3":{}"#,
                    entry(r#"{"dtype":"float32","shape":[2],"bits":[0,0],"shape":[2]}"#)
                ),
                &g,
            ),
            "shape",
            "state[3].square_avg",
        ),
        (
            dict(
                &format!(
                    r#""0":{}"#,
                    entry(r#"{"dtype":"float32","dtype":"float32","shape":[],"bits":[0]}"#)
                ),
                &g,
            ),
            "dtype",
            "state[0].square_avg",
        ),
        (
            dict(
                &format!(
                    r#""0":{}"#,
                    entry(r#"{"dtype":"float32","shape":[1],"bits":[0],"bits":[0]}"#)
                ),
                &g,
            ),
            "bits",
            "state[0].square_avg",
        ),
        (
            dict("", &format!("{g},{}", group(r#""lr":0.5,"#, "1"))),
            "lr",
            "param_groups[1]",
        ),
        (
            dict("", &group(r#""params":[1],"#, "0")),
            "params",
            "param_groups[0]",
        ),
        (
            dict("", &group(r#""maximize":true,"maximize":false,"#, "0")),
            "maximize",
            "param_groups[0]",
        ),
        (
            dict("", &group(r#""initial_lr":0.5,"initial_lr":0.25,"#, "0")),
            "initial_lr",
            "param_groups[0]",
        ),
        (
            dict("", &group(r#""sched":{"a":[1,{"b":2,"b":3}]},"#, "0")),
            "b",
            "param_groups[0].sched",
        ),
    ];
    for (text, key, within) in &cases {
        for (reader, r) in every_reader(text) {
            let e = r.expect_err(text);
            assert!(matches!(e, CheckpointError::Json { .. }), "{reader}: {e:?}");
            let m = e.to_string();
            let want = format!("duplicate key {key:?} in {within} at line 1 column ");
            assert!(m.contains(&want), "{reader}: {m}\n  for {text}");
            let (_, column) = position(&m);
            if within.starts_with("param_groups[0].sched") {
                // An extra value is read whole, as its text, then checked:
                // the column is that of the value's end (a reader has
                // peeked one character further).
                let end = text.find(r#"}]},"params""#).unwrap() + 3;
                assert!(
                    (end..=end + 1).contains(&column),
                    "{reader}: column {column} in {text}"
                );
                continue;
            }
            // The column is that of the second occurrence of the key.
            let quoted = format!("\"{key}\"");
            let second = text
                .match_indices(&quoted)
                .map(|(i, _)| i + quoted.len())
                .find(|&end| end <= column && column <= end + 1);
            assert!(second.is_some(), "{reader}: column {column} in {text}");
        }
    }
    // A group and a tensor read on their own refuse them too.
    let e = serde_json::from_str::<GroupDict>(&group(r#""eps":1,"#, "")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("duplicate key \"eps\" in param_groups[0] at line 1"),
        "{e}"
    );
    let e = serde_json::from_str::<TensorData>(
        r#"{"dtype":"float32","shape":[],"shape":[],"bits":[0]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("duplicate key \"shape\" in tensor at line 1"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_on_other_lines_are_placed_on_their_line() {
    let g = group("", "0");
    let text =
        format!("{{\n  \"state\": {{}},\n  \"param_groups\": [{g}],\n  \"state\": {{}}\n}}\n");
    for (reader, r) in every_reader(&text) {
        let m = r.unwrap_err().to_string();
        assert!(
            m.contains("duplicate key \"state\" in the state dict at line 4 column"),
            "{reader}: {m}"
        );
    }
}

// ---- 4. Error length ----

#[test]
fn errors_quote_at_most_80_characters_of_a_10_mib_value_and_say_where() {
    let n = 10 << 20;
    let big = "x".repeat(n);
    let digits = "1".repeat(n);
    let g = group("", "0");
    let in_entry = |square_avg: &str| dict(&format!(r#""0":{}"#, entry(square_avg)), &g);
    let in_group = |more: &str| dict("", &group(more, "0"));
    let dims = vec!["1"; n / 2].join(",");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "dtype",
            in_entry(&format!(r#"{{"dtype":"{big}","shape":[],"bits":[0]}}"#)),
            "state[0].square_avg has dtype \"xxx",
        ),
        (
            "state key",
            dict(&format!(r#""{big}":{{}}"#), &g),
            "state key \"xxx",
        ),
        (
            "numeric state key",
            dict(&format!(r#""{digits}":{{}}"#), &g),
            "state key \"111",
        ),
        (
            "top-level key",
            format!(r#"{{"state":{{}},"{big}":0}}"#),
            "unknown field `xxx",
        ),
        (
            "state entry key",
            dict(&format!(r#""0":{{"{big}":0}}"#), &g),
            "unknown field `xxx",
        ),
        (
            "tensor key",
            in_entry(&format!(r#"{{"{big}":0}}"#)),
            "unknown field `xxx",
        ),
        (
            "lr",
            dict(
                "",
                &format!(r#"{{"lr":"{big}","rho":0.9,"eps":1e-6,"weight_decay":0.0,"params":[]}}"#),
            ),
            "param_groups[0].lr is \"xxx",
        ),
        (
            "a flag",
            in_group(&format!(r#""maximize":"{big}","#)),
            "param_groups[0].maximize is \"xxx",
        ),
        (
            "foreach",
            in_group(&format!(r#""foreach":"{big}","#)),
            "param_groups[0].foreach is \"xxx",
        ),
        (
            "a parameter index",
            dict("", &group("", &format!(r#"0,"{big}""#))),
            "param_groups[0].params is \"xxx",
        ),
        (
            "an element",
            in_entry(&tensor("2", &format!(r#"0,"{big}""#))),
            "invalid type: string \"xxx",
        ),
        (
            "a dimension",
            in_entry(&tensor(&format!(r#""{big}""#), "0")),
            "invalid type: string \"xxx",
        ),
        (
            "the document",
            format!(r#""{big}""#),
            "invalid type: string \"xxx",
        ),
        (
            "state",
            format!(r#"{{"state":"{big}"}}"#),
            "invalid type: string \"xxx",
        ),
        (
            "an entry",
            dict(&format!(r#""0":"{big}""#), &g),
            "invalid type: string \"xxx",
        ),
        (
            "a tensor",
            dict(&format!(r#""0":{{"step":"{big}"}}"#), &g),
            "invalid type: string \"xxx",
        ),
        (
            "param_groups",
            format!(r#"{{"param_groups":"{big}"}}"#),
            "invalid type: string \"xxx",
        ),
        (
            "a group",
            dict("", &format!(r#""{big}""#)),
            "invalid type: string \"xxx",
        ),
        (
            "an extra key",
            in_group(&format!(r#""{big}":0,"#)),
            "param_groups[0].xxx",
        ),
        (
            "an extra value",
            in_group(&format!(r#""note":"{big}","#)),
            "param_groups[0].note: the groups' extra keys hold more than 1048576 bytes",
        ),
        (
            "a key in an extra value",
            in_group(&format!(r#""note":{{"{big}":0}},"#)),
            "param_groups[0].note: the groups' extra keys hold more than 1048576 bytes",
        ),
        (
            "a long shape",
            in_entry(&tensor(&dims, "0,0")),
            "state[0].square_avg: shape '[1, 1, 1,",
        ),
        (
            "a long number",
            in_group(&format!(r#""note":{digits},"#)),
            // Kept as its text, so no range: the extra keys' allowance.
            "param_groups[0].note: the groups' extra keys hold more than 1048576 bytes",
        ),
        (
            "a long element",
            in_entry(&tensor("1", &digits)),
            "number out of range",
        ),
    ];
    for (what, text, want) in &cases {
        for (reader, r) in every_reader(text) {
            let m = r.expect_err(what).to_string();
            // (The file loaders' messages start with the file's name.)
            let m = m.split_once(".json: ").map_or(&m[..], |(_, m)| m);
            assert!(m.len() < 300, "{what}, {reader}: {} bytes: {m}", m.len());
            assert!(m.contains(want), "{what}, {reader}: {m}");
            assert_eq!(position(m).0, 1, "{what}, {reader}: {m}");
            // At most 80 characters of the value, and its length said.
            assert!(!m.contains(&"x".repeat(81)), "{what}, {reader}: {m}");
            if m.contains("xxx") {
                assert!(
                    m.contains(&format!("... ({n} bytes in all)")),
                    "{what}, {reader}: {m}"
                );
            }
        }
    }
}

// ---- 2. Memory ----

/// `ADADELTA_JSON_MIB`: the hostile files' size.
fn file_size() -> usize {
    env_or("ADADELTA_JSON_MIB", 4) as usize * (1 << 20)
}

/// The stated bound: peak memory at most 4.5 times the file, plus 24 MiB.
fn bound(file: usize) -> usize {
    file * 9 / 2 + (24 << 20)
}

/// The start of a dict whose group's extra keys follow.
const EXTRAS: &str =
    r#"{"state":{},"param_groups":[{"lr":1.0,"rho":0.9,"eps":1e-6,"weight_decay":0.0,"#;

/// The hostile inputs: (name, whether it is a valid state dict).
const HOSTILE: [(&str, bool); 14] = [
    ("elements: a tensor of 0s", true),
    ("elements before their shape", false),
    ("dimensions: a shape of 1s", true),
    ("params: a list of 0s", true),
    ("many state entries", true),
    ("many empty state entries", true),
    ("many groups", true),
    ("extra: a wide array", false),
    ("extra: a wide object", false),
    ("extra: many keys", false),
    ("extra: deep nesting", false),
    ("extra: a long string", false),
    ("a long key", false),
    ("a long dtype", false),
];

/// Writes hostile input `name` of about `size` bytes to `path`: a head, a
/// unit repeated, a tail.
fn write_hostile(path: &Path, name: &str, size: usize) -> usize {
    let g = group("", "0");
    let step = tensor("", "0");
    // The tensor's length, known before its elements are written.
    let n = (size - 300) / 2;
    let (head, unit, tail): (String, &dyn Fn(usize) -> String, String) = match name {
        "elements: a tensor of 0s" => (
            format!(r#"{{"state":{{"0":{{"step":{step},"square_avg":{{"dtype":"float32","shape":[{n}],"bits":["#),
            &|i| if i == 0 { "0".into() } else { ",0".into() },
            format!(r#"]}},"acc_delta":{step}}}}},"param_groups":[{g}]}}"#),
        ),
        "elements before their shape" => (
            format!(r#"{{"state":{{"0":{{"step":{step},"square_avg":{{"dtype":"float32","bits":["#),
            &|i| if i == 0 { "0".into() } else { ",0".into() },
            format!(r#"],"shape":[1]}},"acc_delta":{step}}}}},"param_groups":[{g}]}}"#),
        ),
        "dimensions: a shape of 1s" => (
            format!(r#"{{"state":{{"0":{{"step":{step},"square_avg":{{"dtype":"float32","shape":["#),
            &|i| if i == 0 { "1".into() } else { ",1".into() },
            format!(r#"],"bits":[0]}},"acc_delta":{step}}}}},"param_groups":[{g}]}}"#),
        ),
        "params: a list of 0s" => (
            r#"{"state":{},"param_groups":[{"lr":1.0,"rho":0.9,"eps":1e-6,"weight_decay":0.0,"params":["#.into(),
            &|i| if i == 0 { "0".into() } else { ",0".into() },
            "]}]}".into(),
        ),
        "many state entries" => (
            r#"{"state":{"#.into(),
            &|i| {
                let e = format!(
                    r#""{i}":{{"step":{},"square_avg":{},"acc_delta":{}}}"#,
                    tensor("", "0"),
                    tensor("0", ""),
                    tensor("0", "")
                );
                if i == 0 { e } else { format!(",{e}") }
            },
            format!(r#"}},"param_groups":[{g}]}}"#),
        ),
        "many empty state entries" => (
            r#"{"state":{"#.into(),
            &|i| if i == 0 { format!(r#""{i}":{{}}"#) } else { format!(r#","{i}":{{}}"#) },
            format!(r#"}},"param_groups":[{g}]}}"#),
        ),
        "many groups" => (
            r#"{"state":{},"param_groups":["#.into(),
            &|i| {
                let g = r#"{"lr":0,"rho":0,"eps":0,"weight_decay":0,"params":[]}"#;
                if i == 0 { g.into() } else { format!(",{g}") }
            },
            "]}".into(),
        ),
        "extra: a wide array" => (
            format!("{EXTRAS}\"x\":["),
            &|i| if i == 0 { "0".into() } else { ",0".into() },
            "]}]}".into(),
        ),
        "extra: a wide object" => (
            format!("{EXTRAS}\"x\":{{"),
            &|i| if i == 0 { format!(r#""{i}":0"#) } else { format!(r#","{i}":0"#) },
            "}}]}".into(),
        ),
        "extra: many keys" => (
            EXTRAS.to_string(),
            &|i| if i == 0 { format!(r#""{i}":0"#) } else { format!(r#","{i}":0"#) },
            "}]}".into(),
        ),
        "extra: deep nesting" => (
            format!("{EXTRAS}\"x\":"),
            &|_| "[".repeat(4096),
            String::new(),
        ),
        "extra: a long string" => (
            format!("{EXTRAS}\"x\":\""),
            &|_| "a".repeat(4096),
            r#""}]}"#.into(),
        ),
        "a long key" => (
            r#"{""#.into(),
            &|_| "a".repeat(4096),
            r#"":0}"#.into(),
        ),
        "a long dtype" => (
            r#"{"state":{"0":{"step":{"dtype":""#.into(),
            &|_| "a".repeat(4096),
            r#"","shape":[],"bits":[0]}}},"param_groups":[]}"#.into(),
        ),
        _ => panic!("no hostile input {name:?}"),
    };
    let mut w = BufWriter::new(File::create(path).unwrap());
    w.write_all(head.as_bytes()).unwrap();
    let mut written = head.len() + tail.len();
    let mut i = 0;
    while written < size && !(name.starts_with("elements: ") && i == n) {
        let u = unit(i);
        w.write_all(u.as_bytes()).unwrap();
        written += u.len();
        i += 1;
    }
    w.write_all(tail.as_bytes()).unwrap();
    w.flush().unwrap();
    written
}

/// A field of `/proc/self/status`, in bytes.
fn status(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.trim()
        .trim_end_matches(" kB")
        .parse::<usize>()
        .unwrap()
        * 1024
}

/// The child: writes one hostile file, optionally limits its address
/// space to `limit` bytes more than it has, loads the file and prints
/// `result <bytes> <peak growth> <outcome>`.
fn child(spec: &str) {
    let mut it = spec.splitn(4, '|');
    let (dir, name) = (it.next().unwrap(), it.next().unwrap());
    let size: usize = it.next().unwrap().parse().unwrap();
    let limit: usize = it.next().unwrap().parse().unwrap();
    let path = Path::new(dir).join("hostile.json");
    let bytes = write_hostile(&path, name, size);
    if limit > 0 {
        let cap = (status("VmSize") + limit) as libc::rlim_t;
        let r = libc::rlimit {
            rlim_cur: cap,
            rlim_max: cap,
        };
        // SAFETY: setrlimit reads the struct it is given.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) }, 0);
    }
    // Resets VmHWM to the current resident size (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status("VmRSS");
    let r = StateDict::<f32>::load(&path);
    let peak = status("VmHWM");
    let outcome = match &r {
        Ok(_) => "loaded".to_string(),
        Err(CheckpointError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::OutOfMemory =>
        {
            format!("out of memory: {}", r.as_ref().unwrap_err())
        }
        Err(e) => format!("refused: {e}"),
    };
    drop(r);
    std::fs::remove_file(&path).unwrap();
    println!("\nresult {bytes} {} {outcome}", peak.saturating_sub(before));
}

/// Runs the child on hostile input `name`: (file bytes, peak growth in
/// bytes, outcome); the child must exit normally.
fn run_child(test: &str, name: &str, size: usize, limit: usize) -> (usize, usize, String) {
    let dir = temp_dir("hostile");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{name}|{size}|{limit}", dir.display()))
        // One malloc arena: a thread's own arena reserves 64 MiB of address
        // space ahead, inside which the limit would not bite.
        .env("MALLOC_ARENA_MAX", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that hangs (glibc can deadlock when an allocation fails
    // under the limit) is killed: a failure too.
    let deadline = Instant::now() + Duration::from_secs(60 + (size >> 20) as u64);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: the child died ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_else(|| panic!("{name}: no result in\n{stdout}"));
    let mut parts = line.splitn(3, ' ');
    let bytes = parts.next().unwrap().parse().unwrap();
    let peak = parts.next().unwrap().parse().unwrap();
    (bytes, peak, parts.next().unwrap().to_string())
}

const MIB: f64 = (1 << 20) as f64;

#[test]
fn hostile_json_files_take_at_most_4_5_times_their_size_plus_24_mib_in_peak_memory() {
    const TEST: &str =
        "hostile_json_files_take_at_most_4_5_times_their_size_plus_24_mib_in_peak_memory";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let size = file_size();
    println!(
        "| hostile input ({} MiB) | peak RSS growth | × file | outcome |",
        size >> 20
    );
    println!("|---|---|---|---|");
    for (name, valid) in HOSTILE {
        let (bytes, peak, outcome) = run_child(TEST, name, size, 0);
        println!(
            "| {name} | {:.1} MiB | {:.2} | {:.110} |",
            peak as f64 / MIB,
            peak as f64 / bytes as f64,
            outcome
        );
        assert!(
            peak <= bound(bytes),
            "{name}: {peak} bytes at peak for a file of {bytes}"
        );
        if name.starts_with("elements") {
            // Read straight into the final buffer: its 4 bytes per 2-byte
            // element, and no other copy.
            assert!(
                peak <= bytes * 9 / 4 + (4 << 20),
                "{name}: {peak} bytes for {bytes}"
            );
        }
        assert_eq!(outcome == "loaded", valid, "{name}: {outcome}");
        assert!(outcome.len() < 300, "{name}: {outcome}");
    }
}

#[test]
fn hostile_json_under_a_memory_limit_gives_an_error_not_an_abort() {
    const TEST: &str = "hostile_json_under_a_memory_limit_gives_an_error_not_an_abort";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let size = file_size();
    // Within the stated bound, every input loads or is refused.
    for (name, valid) in HOSTILE {
        let (_, _, outcome) = run_child(TEST, name, size, bound(size));
        println!(
            "limit {:.0} MiB, {name}: {outcome:.120}",
            bound(size) as f64 / MIB
        );
        assert_eq!(outcome == "loaded", valid, "{name}: {outcome}");
    }
    // Below what a valid tensor needs, its allocation fails: an error.
    for name in [
        "elements: a tensor of 0s",
        "elements before their shape",
        "params: a list of 0s",
    ] {
        let (_, _, outcome) = run_child(TEST, name, size, size / 2);
        println!(
            "limit {:.0} MiB, {name}: {outcome:.120}",
            size as f64 / 2.0 / MIB
        );
        assert!(outcome.starts_with("out of memory: "), "{name}: {outcome}");
    }
}
