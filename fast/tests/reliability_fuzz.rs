//! Fuzzing the state-dict loaders (`fast/docs/reliability.md`): arbitrary
//! bytes, JSON token soup, truncated files, flipped bits, byte edits,
//! splices of two files, and structure-aware mutations of valid state
//! dicts. Every input must give an error or a valid optimizer; never a
//! panic, never a hang, and a refused load must leave the optimizer
//! bit-identical.
//!
//! For each input, every loader entry point is run: `StateDict::from_reader`,
//! `from_json_str`, `serde_json::from_slice::<StateDict>` (what `load_json`
//! and a user's own checkpoint struct use) and, for one input in 64, the
//! file loaders `StateDict::load`, `load_json` and `Adadelta::load`. They
//! must agree. A refused input's message must say where (line and column)
//! in under 300 bytes; a parsed input must have no key twice in any object
//! (checked by an independent scan). A parsed dict must serialise and
//! re-parse to the same JSON;
//! it is then loaded into an optimizer of the fuzzed dicts' structure:
//!
//! * refused: the optimizer's state dict, parameters and gradients are
//!   bit-identical to before;
//! * accepted: the optimizer is valid: every state tensor has its
//!   parameter's length, its own state dict saves and loads again into a
//!   fresh optimizer, and it steps.
//!
//! Runs (the counts are inputs; each input is a function of the seed and its
//! number, so a failure prints the command that replays it):
//!
//! ```sh
//! cargo test -p adadelta --test reliability_fuzz                     # 20,000 inputs, ~1 s
//! ADADELTA_FUZZ_CASES=1000000 ADADELTA_FUZZ_THREADS=2 \
//!   cargo test -p adadelta --test reliability_fuzz -- --nocapture    # the long run
//! ADADELTA_FUZZ_SEED=7 ADADELTA_FUZZ_START=123 ADADELTA_FUZZ_CASES=1 \
//!   cargo test -p adadelta --test reliability_fuzz -- --nocapture    # one input
//! ADADELTA_FUZZ_INPUT=path/to/file cargo test -p adadelta --test reliability_fuzz
//! ```

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use adadelta::{load_json, Adadelta, CheckpointError, StateDict};
use common::fuzz::Fuzz;
use common::{flip_bits, json, snapshot, splice, truncate, Rng};
use serde_json::{json, Map, Value};

const DEFAULT_CASES: u64 = 20_000;
const DEFAULT_SEED: u64 = 0x5eed_ada0;
/// An input taking longer than this is reported as a hang (one takes well
/// under a millisecond; the limit allows for a loaded machine).
const HANG: Duration = Duration::from_secs(20);

/// The mutators; each input comes from one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Uniformly random bytes.
    Bytes,
    /// Random JSON tokens, many of them this format's keys and values.
    Tokens,
    /// A valid dict cut at a random byte.
    Truncate,
    /// A valid dict with 1 to 8 bits flipped.
    BitFlip,
    /// A valid dict with bytes deleted, duplicated, inserted or swapped.
    ByteEdit,
    /// The start of one valid dict and the end of another.
    Splice,
    /// A valid dict parsed, changed as a tree (keys removed, added,
    /// renamed; values replaced by others of every type, extreme numbers,
    /// resized tensors and shapes, deep nesting) or field by field (tensor
    /// elements, shapes, dtypes, options, flags, parameter indices, state
    /// keys, extra keys), and printed again.
    Structure,
}

const KINDS: [(Kind, u64); 7] = [
    (Kind::Bytes, 1),
    (Kind::Tokens, 1),
    (Kind::Truncate, 1),
    (Kind::BitFlip, 2),
    (Kind::ByteEdit, 1),
    (Kind::Splice, 1),
    (Kind::Structure, 5),
];

/// The valid state dicts mutations start from, as JSON values.
fn seeds() -> Vec<Value> {
    let mut v: Vec<Value> = Vec::new();
    for steps in [0, 1, 3] {
        let sd = common::trained(steps, 42 + steps as u64).state_dict();
        v.push(serde_json::from_str(&json(&sd)).unwrap());
    }
    // Awkward but loadable values: NaN and infinite state (non-finite
    // gradients propagate into it), extreme options, the counter at 2^24.
    let mut sd = common::trained(2, 1).state_dict();
    let s = sd.state.get_mut(&2).unwrap();
    s.square_avg.data_mut()[0] = f32::INFINITY;
    s.acc_delta.data_mut()[1] = f32::NAN;
    s.acc_delta.data_mut()[2] = f32::from_bits(1);
    s.step = 16_777_216.0;
    sd.param_groups[0].options.rho = 1.0;
    sd.param_groups[0].options.eps = 0.0;
    sd.param_groups[1].options.lr = 0.0;
    sd.param_groups[1]
        .extra
        .insert("nested", json!({"a": [1, {"b": null}]}));
    v.push(serde_json::from_str(&json(&sd)).unwrap());
    // PyTorch's own style: flags absent, an integer weight_decay, an empty
    // per-parameter state.
    let mut p: Value = v[2].clone();
    for g in p["param_groups"].as_array_mut().unwrap() {
        let g = g.as_object_mut().unwrap();
        for k in ["maximize", "foreach", "capturable", "differentiable"] {
            g.remove(k);
        }
    }
    p["param_groups"][1]["weight_decay"] = json!(0);
    p["state"]["1"] = json!({});
    v.push(p);
    v
}

fn to_bytes(v: &Value, rng: &mut Rng) -> Vec<u8> {
    if rng.one_in(4) {
        serde_json::to_vec_pretty(v).unwrap()
    } else {
        serde_json::to_vec(v).unwrap()
    }
}

const TOKENS: [&str; 40] = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\"state\"",
    "\"param_groups\"",
    "\"0\"",
    "\"1\"",
    "\"step\"",
    "\"square_avg\"",
    "\"acc_delta\"",
    "\"dtype\"",
    "\"float32\"",
    "\"shape\"",
    "\"bits\"",
    "\"params\"",
    "\"lr\"",
    "\"rho\"",
    "\"eps\"",
    "\"weight_decay\"",
    "\"maximize\"",
    "\"foreach\"",
    "0",
    "1",
    "-1",
    "2",
    "0.5",
    "1e999",
    "-0.0",
    "4294967296",
    "18446744073709551616",
    "null",
    "true",
    "false",
    "\"nan\"",
    "\"inf\"",
    "\"\\ud800\"",
];

/// A random JSON value: every type, extreme numbers, this format's strings,
/// small tensors, deep nesting.
fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 16 } else { 20 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => json!(rng.below(10)),
        3 => json!(-(rng.below(10) as i64) - 1),
        4 => json!(
            [
                u32::MAX as u64,
                u32::MAX as u64 + 1,
                (1u64 << 53) + 1,
                u64::MAX,
                i64::MIN as u64
            ][rng.below(5)]
        ),
        5 => json!(i64::MIN),
        6 => json!([0.5, 1.5, -0.0, 1e-300, 1e300, f64::MAX, 5e-324, 0.1 + 0.2][rng.below(8)]),
        7 => json!(rng.f32() as f64),
        8 => json!(
            ["nan", "inf", "-inf", "NaN", "Infinity", "", "float32", "float64", "0", "-1", "x"]
                [rng.below(11)]
        ),
        9 => json!(rng.next() as u32),
        10 => {
            let n = rng.below(4);
            let shape: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
            let len = if rng.one_in(3) {
                rng.below(10)
            } else {
                shape.iter().product()
            };
            let bits: Vec<u32> = (0..len).map(|_| rng.next() as u32).collect();
            json!({"dtype": "float32", "shape": shape, "bits": bits})
        }
        11 => {
            // Deep nesting, beyond serde_json's recursion limit at times.
            let d = 1 + rng.below(200);
            let mut v = json!(0);
            for _ in 0..d {
                v = if rng.one_in(2) {
                    json!([v])
                } else {
                    json!({ "k": v })
                };
            }
            v
        }
        12 => json!(vec![0; rng.below(20)]),
        13 => json!({}),
        14 => json!([]),
        15 => json!((0..rng.below(6)).map(|_| rng.below(6)).collect::<Vec<_>>()),
        _ => {
            // A container of random values.
            let n = rng.below(4);
            if rng.one_in(2) {
                Value::Array((0..n).map(|_| random_value(rng, depth + 1)).collect())
            } else {
                let mut m = Map::new();
                for _ in 0..n {
                    m.insert(random_key(rng), random_value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }
}

/// A key: one of this format's, a parameter index of some form, or junk.
fn random_key(rng: &mut Rng) -> String {
    const KEYS: [&str; 26] = [
        "state",
        "param_groups",
        "step",
        "square_avg",
        "acc_delta",
        "dtype",
        "shape",
        "bits",
        "params",
        "lr",
        "rho",
        "eps",
        "weight_decay",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "initial_lr",
        "exp_avg",
        "momentum_buffer",
        "betas",
        "version",
        "0",
        "2",
        "7",
        "",
    ];
    match rng.below(6) {
        0 => [
            "00",
            "-1",
            "1e0",
            " 1",
            "+1",
            "18446744073709551616",
            "99999999999",
        ][rng.below(7)]
        .to_string(),
        1 => rng.below(12).to_string(),
        _ => KEYS[rng.below(KEYS.len())].to_string(),
    }
}

/// Walks from the root to a random node (stopping early at random).
fn random_node<'a>(v: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let mut cur = v;
    loop {
        let n = match &*cur {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if n == 0 || rng.one_in(4) {
            return cur;
        }
        let k = rng.below(n);
        cur = match cur {
            Value::Object(m) => m.values_mut().nth(k).unwrap(),
            Value::Array(a) => &mut a[k],
            _ => unreachable!(),
        };
    }
}

/// One tree mutation.
fn mutate_tree(root: &mut Value, rng: &mut Rng, other: &Value) {
    let op = rng.below(12);
    let node = random_node(root, rng);
    match (op, node) {
        (0, Value::Object(m)) if !m.is_empty() => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            m.remove(&k);
        }
        (1, Value::Object(m)) => {
            m.insert(random_key(rng), random_value(rng, 0));
        }
        (2, Value::Object(m)) if !m.is_empty() => {
            // Rename a key.
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            let v = m.remove(&k).unwrap();
            m.insert(random_key(rng), v);
        }
        (3, Value::Array(a)) if !a.is_empty() => {
            let i = rng.below(a.len());
            a.remove(i);
        }
        (4, Value::Array(a)) if !a.is_empty() => {
            // Duplicate an element (a parameter index twice, a longer tensor...).
            let i = rng.below(a.len());
            let e = a[i].clone();
            a.insert(rng.below(a.len() + 1), e);
        }
        (5, Value::Array(a)) => {
            // Resize: `bits` and `shape` arrays get longer or shorter.
            let n = rng.below(a.len() + 3);
            if n < a.len() {
                a.truncate(n);
            } else {
                while a.len() < n {
                    a.push(json!(rng.next() as u32));
                }
            }
        }
        (6, Value::Number(x)) => {
            let f = x.as_f64().unwrap_or(0.0);
            *x = match rng.below(6) {
                0 => serde_json::Number::from(x.as_u64().unwrap_or(0).wrapping_add(1)),
                1 => serde_json::Number::from(x.as_i64().unwrap_or(0).wrapping_sub(1)),
                2 => serde_json::Number::from_f64(-f).unwrap_or(0.into()),
                3 => serde_json::Number::from_f64(f * 2.0 + 0.5).unwrap_or(0.into()),
                4 => serde_json::Number::from_f64(f * 1e300).unwrap_or(0.into()),
                _ => serde_json::Number::from(rng.next() >> rng.below(64)),
            };
        }
        (7, node) => {
            // Graft a subtree of another valid dict.
            let mut o = other.clone();
            *node = random_node(&mut o, rng).clone();
        }
        (8, Value::String(s)) => {
            *s = [
                "float64", "float16", "int64", "nan", "inf", "-inf", "-0", "1", "",
            ][rng.below(9)]
            .into();
        }
        (_, node) => *node = random_value(rng, 0),
    }
}

/// A number for an option: valid, invalid, extreme, or not a number.
fn option_value(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => json!(0),
        1 => json!(1.0),
        2 => json!(-1.0),
        3 => json!(1.5),
        4 => json!(1e39),
        5 => json!(3.4e38),
        6 => json!(1e-45),
        7 => json!("inf"),
        8 => json!("nan"),
        9 => json!("-inf"),
        10 => json!(1e300),
        11 => json!(null),
        12 => json!(true),
        _ => json!((rng.next() >> 11) as f64 / (1u64 << 52) as f64),
    }
}

/// A float32 bit pattern: random, or a special value.
fn float_bits(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0 => f32::NAN.to_bits(),
        1 => f32::INFINITY.to_bits(),
        2 => f32::NEG_INFINITY.to_bits(),
        3 => (-1.5f32).to_bits(),
        4 => 0x8000_0000, // -0.0
        5 => 1,           // the smallest subnormal
        _ => rng.next() as u32,
    }
}

/// One mutation aimed at a field of the format, keeping the file parseable
/// more often than not, so that the loader's content checks are reached.
fn mutate_field(root: &mut Value, rng: &mut Rng) {
    // JSON pointers: earlier tree mutations may have removed or retyped
    // any node, so every access may find nothing.
    fn esc(k: &str) -> String {
        k.replace('~', "~0").replace('/', "~1")
    }
    let state_keys: Vec<String> = root
        .pointer("/state")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| esc(k)).collect())
        .unwrap_or_default();
    let groups = root
        .pointer("/param_groups")
        .and_then(Value::as_array)
        .map_or(0, |a| a.len());
    let tensor = ["step", "square_avg", "acc_delta"][rng.below(3)];
    let set = |root: &mut Value, ptr: String, v: Value| {
        if let Some(x) = root.pointer_mut(&ptr) {
            *x = v;
        }
    };
    match rng.below(12) {
        0 | 1 if !state_keys.is_empty() => {
            // An element of a state tensor.
            let k = &state_keys[rng.below(state_keys.len())];
            let ptr = format!("/state/{k}/{tensor}/bits");
            if let Some(b) = root.pointer_mut(&ptr).and_then(Value::as_array_mut) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] = json!(float_bits(rng));
                }
            }
        }
        2 if !state_keys.is_empty() => {
            // A shape: the same number of elements or not.
            let k = &state_keys[rng.below(state_keys.len())];
            let shape = json!(
                [
                    vec![],
                    vec![3],
                    vec![6],
                    vec![8],
                    vec![2, 3],
                    vec![3, 2],
                    vec![2, 2, 2],
                    vec![0],
                    vec![usize::MAX, 2],
                    vec![1 << 33, 1 << 33],
                ][rng.below(10)]
            );
            set(root, format!("/state/{k}/{tensor}/shape"), shape);
        }
        3 if !state_keys.is_empty() => {
            // Rename, drop or copy a parameter's state.
            let k = state_keys[rng.below(state_keys.len())].clone();
            let k = k.replace("~1", "/").replace("~0", "~");
            let new_key = random_key(rng);
            let copy_key = rng.below(4).to_string();
            let how = rng.below(3);
            if let Some(m) = root.pointer_mut("/state").and_then(Value::as_object_mut) {
                if let Some(v) = m.remove(&k) {
                    match how {
                        0 => {}
                        1 => {
                            m.insert(new_key, v);
                        }
                        _ => {
                            m.insert(k, v.clone());
                            m.insert(copy_key, v);
                        }
                    }
                }
            }
        }
        4 if !state_keys.is_empty() => {
            let k = &state_keys[rng.below(state_keys.len())];
            let dtype = json!(["float64", "float16", "bfloat16", "int64", "float32"][rng.below(5)]);
            set(root, format!("/state/{k}/{tensor}/dtype"), dtype);
        }
        5..=7 if groups > 0 => {
            let g = rng.below(groups);
            let key = ["lr", "rho", "eps", "weight_decay"][rng.below(4)];
            let v = option_value(rng);
            set(root, format!("/param_groups/{g}/{key}"), v);
        }
        8 if groups > 0 => {
            let g = rng.below(groups);
            let key = ["maximize", "foreach", "capturable", "differentiable"][rng.below(4)];
            let v = [json!(true), json!(false), json!(null), json!(0), json!("x")][rng.below(5)]
                .clone();
            set(root, format!("/param_groups/{g}/{key}"), v);
        }
        9 | 10 if groups > 0 => {
            // The parameter indices: swapped between groups, repeated,
            // renumbered, out of range.
            let (g, h) = (rng.below(groups), rng.below(groups));
            let list = |root: &Value, g: usize| {
                root.pointer(&format!("/param_groups/{g}/params"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let (a, b) = (list(root, g), list(root, h));
            let new = match rng.below(5) {
                0 => b,
                1 => [a.clone(), a].concat(),
                2 => a
                    .iter()
                    .map(|x| json!(x.as_u64().unwrap_or(0).saturating_add(10)))
                    .collect(),
                3 => vec![json!(u64::MAX)],
                _ => a.into_iter().rev().collect(),
            };
            set(root, format!("/param_groups/{g}/params"), Value::Array(new));
        }
        _ if groups > 0 => {
            // An extra key, sometimes one PyTorch's other optimizers have.
            let g = rng.below(groups);
            let key = ["initial_lr", "note", "betas", "momentum"][rng.below(4)];
            let (remove, v) = (rng.one_in(3), random_value(rng, 2));
            if let Some(m) = root
                .pointer_mut(&format!("/param_groups/{g}"))
                .and_then(Value::as_object_mut)
            {
                if remove {
                    m.remove(key);
                } else {
                    m.insert(key.into(), v);
                }
            }
        }
        _ => {}
    }
}

fn mutate(seed_values: &[Value], rng: &mut Rng, kind: Kind) -> Vec<u8> {
    let base = &seed_values[rng.below(seed_values.len())];
    match kind {
        Kind::Bytes => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        Kind::Tokens => {
            let mut s = String::new();
            for _ in 0..rng.below(80) {
                s.push_str(TOKENS[rng.below(TOKENS.len())]);
            }
            s.into_bytes()
        }
        Kind::Truncate => {
            let b = to_bytes(base, rng);
            truncate(&b, rng)
        }
        Kind::BitFlip => {
            let b = to_bytes(base, rng);
            flip_bits(b, rng)
        }
        Kind::ByteEdit => {
            let mut b = to_bytes(base, rng);
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() + 1);
                let j = (i + rng.below(16)).min(b.len());
                match rng.below(5) {
                    0 => {
                        b.drain(i..j);
                    }
                    1 => {
                        let span = b[i..j].to_vec();
                        b.splice(i..i, span);
                    }
                    2 => {
                        let t = TOKENS[rng.below(TOKENS.len())].as_bytes().to_vec();
                        b.splice(i..i, t);
                    }
                    3 if i < b.len() => {
                        const CHARS: &[u8] = b"0123456789-+.eE\"{}[],: ";
                        b[i] = CHARS[rng.below(CHARS.len())];
                    }
                    _ if j < b.len() => {
                        let k = i.min(b.len() - 1);
                        b.swap(k, j);
                    }
                    _ => {}
                }
            }
            b
        }
        Kind::Splice => {
            let a = to_bytes(base, rng);
            let other = &seed_values[rng.below(seed_values.len())];
            let b = to_bytes(other, rng);
            splice(&a, &b, rng)
        }
        Kind::Structure => {
            let mut v = base.clone();
            let other = &seed_values[rng.below(seed_values.len())];
            let n = if rng.one_in(2) { 1 } else { 1 + rng.below(4) };
            for _ in 0..n {
                if rng.one_in(3) {
                    mutate_tree(&mut v, rng, other);
                } else {
                    mutate_field(&mut v, rng);
                }
            }
            to_bytes(&v, rng)
        }
    }
}

/// What became of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Refused by the parser (not a state dict).
    NotParsed,
    /// Parsed, refused by `load_state_dict` (does not fit, or invalid
    /// content); the optimizer was left bit-identical.
    Refused,
    /// Loaded; the optimizer is valid.
    Loaded,
}

/// The optimizer inputs are loaded into: the seeds' structure, trained a
/// little, with gradients set so that a step after a load does something.
fn target() -> Adadelta {
    let mut opt = common::trained(2, 99);
    common::set_grads(&mut opt, &mut Rng(5));
    opt
}

fn same_result(a: &Result<StateDict, CheckpointError>, b: &Result<StateDict, CheckpointError>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(json(x), json(y), "two loaders parsed differently"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "two loaders disagree: {:?} vs {:?}",
            a.as_ref().map(|_| "Ok"),
            b.as_ref().map(|_| "Ok")
        ),
    }
}

/// Whether an object of the JSON text `bytes` has a key twice: a scan of
/// its own, independent of the loaders.
fn has_duplicate_key(bytes: &[u8]) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Scan;
    impl<'de> DeserializeSeed<'de> for Scan {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Scan {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut dup = false;
            while let Some(d) = seq.next_element_seed(Scan)? {
                dup |= d;
            }
            Ok(dup)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let (mut keys, mut dup) = (std::collections::HashSet::new(), false);
            while let Some(k) = map.next_key::<String>()? {
                dup |= !keys.insert(k);
                dup |= map.next_value_seed(Scan)?;
            }
            Ok(dup)
        }
    }
    Scan.deserialize(&mut serde_json::Deserializer::from_slice(bytes))
        .expect("a parsed dict is JSON")
}

/// Every check on one input.
fn check(bytes: &[u8], files: Option<&std::path::Path>) -> Outcome {
    let parsed = StateDict::from_reader(bytes);
    match &parsed {
        Ok(_) => assert!(
            !has_duplicate_key(bytes),
            "a dict with a duplicate key parsed"
        ),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains(" at line ") && m.len() < 300, "the error {m:?}");
        }
    }
    let via_serde: Result<StateDict, CheckpointError> =
        serde_json::from_slice(bytes).map_err(CheckpointError::from);
    same_result(&parsed, &via_serde);
    if let Ok(s) = std::str::from_utf8(bytes) {
        same_result(&parsed, &StateDict::from_json_str(s));
    }
    if let Some(dir) = files {
        let path = dir.join("input.json");
        std::fs::write(&path, bytes).unwrap();
        same_result(&parsed, &StateDict::load(&path));
        same_result(&parsed, &load_json::<StateDict>(&path));
        let mut opt = target();
        let before = snapshot(&opt);
        let loaded = opt.load(&path);
        if parsed.is_err() {
            assert!(
                loaded.is_err(),
                "Adadelta::load accepted an unparsable file"
            );
        }
        if loaded.is_err() {
            assert_eq!(
                snapshot(&opt),
                before,
                "a refused file load changed the optimizer"
            );
        }
    }
    let Ok(sd) = parsed else {
        return Outcome::NotParsed;
    };
    // A parsed dict prints and re-parses to itself.
    let text = json(&sd);
    let again = StateDict::from_json_str(&text).expect("a parsed state dict re-parses");
    assert_eq!(json(&again), text, "parse-print is not stable");

    let mut opt = target();
    let before = snapshot(&opt);
    if opt.load_state_dict(sd).is_err() {
        assert_eq!(
            snapshot(&opt),
            before,
            "a refused load changed the optimizer"
        );
        return Outcome::Refused;
    }
    // Loaded: the optimizer must be valid.
    for i in 0..opt.params().len() {
        if let Some(s) = opt.state(i) {
            let n = opt.params()[i].numel();
            assert_eq!((s.square_avg().len(), s.acc_delta().len()), (n, n));
        }
    }
    for g in opt.param_groups() {
        g.options().validate().expect("loaded options are valid");
    }
    let saved = json(&opt.state_dict());
    let mut fresh = common::optimizer();
    fresh
        .load_state_dict(StateDict::from_json_str(&saved).expect("its own dict parses"))
        .expect("what an optimizer saves, another loads");
    assert_eq!(json(&fresh.state_dict()), saved);
    opt.step().expect("a loaded optimizer steps");
    Outcome::Loaded
}

/// The input number `case` of the run with `seed`.
fn input(seed_values: &[Value], seed: u64, case: u64) -> (Kind, Vec<u8>) {
    let mut rng = Rng(seed ^ case.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    rng.next();
    let kind = rng.pick(&KINDS);
    (kind, mutate(seed_values, &mut rng, kind))
}

#[derive(Default)]
struct Tally {
    // Per kind: inputs, not parsed, refused, loaded.
    counts: Vec<[u64; 4]>,
}

impl Tally {
    fn add(&mut self, kind: Kind, o: Outcome) {
        if self.counts.is_empty() {
            self.counts = vec![[0; 4]; KINDS.len()];
        }
        let k = KINDS.iter().position(|x| x.0 == kind).unwrap();
        self.counts[k][0] += 1;
        self.counts[k][match o {
            Outcome::NotParsed => 1,
            Outcome::Refused => 2,
            Outcome::Loaded => 3,
        }] += 1;
    }

    fn merge(&mut self, o: &Tally) {
        for (k, c) in o.counts.iter().enumerate() {
            self.add_counts(k, c);
        }
    }

    fn add_counts(&mut self, k: usize, c: &[u64; 4]) {
        if self.counts.is_empty() {
            self.counts = vec![[0; 4]; KINDS.len()];
        }
        for (t, c) in self.counts[k].iter_mut().zip(c) {
            *t += c;
        }
    }
}

/// This fuzzer's run, from the environment.
fn fuzz() -> Fuzz {
    Fuzz {
        test: "reliability_fuzz",
        ext: "json",
        hang: HANG,
        ..Fuzz::from_env(DEFAULT_SEED, DEFAULT_CASES)
    }
}

#[test]
fn loaders_survive_fuzzed_input() {
    if let Ok(file) = std::env::var("ADADELTA_FUZZ_INPUT") {
        let bytes = std::fs::read(&file).unwrap();
        let dir = common::temp_dir("fuzz-one");
        let o = check(&bytes, Some(&dir));
        println!("{file}: {o:?}");
        return;
    }
    let f = fuzz();
    let (seed, start, cases, threads) = (f.seed, f.start, f.cases, f.threads);
    let seed_values = seeds();
    let (tally, elapsed) = f.run(
        |case| input(&seed_values, seed, case),
        |tally: &mut Tally, kind, bytes, dir, case| {
            let files = case.is_multiple_of(64).then_some(dir);
            match catch_unwind(AssertUnwindSafe(|| check(bytes, files))) {
                Ok(o) => tally.add(kind, o),
                Err(_) => f.fail(case, &kind, bytes, "panicked (message above)"),
            }
        },
        Tally::merge,
    );
    println!(
        "fuzzed {} inputs (seed {seed:#x}, from {start}) in {:.1} s on {threads} thread(s):",
        tally.counts.iter().map(|c| c[0]).sum::<u64>(),
        elapsed.as_secs_f64()
    );
    println!("| mutator | inputs | not parsed | parsed, refused | loaded |");
    println!("|---|---|---|---|---|");
    let mut sum = [0u64; 4];
    for (k, c) in tally.counts.iter().enumerate() {
        println!(
            "| {:?} | {} | {} | {} | {} |",
            KINDS[k].0, c[0], c[1], c[2], c[3]
        );
        for (s, c) in sum.iter_mut().zip(c) {
            *s += c;
        }
    }
    println!(
        "| all | {} | {} | {} | {} |",
        sum[0], sum[1], sum[2], sum[3]
    );
    assert_eq!(sum[0], cases);
    if cases >= 10_000 {
        // The mutators must reach every outcome, or the run proves little.
        assert!(
            sum[1] > 0 && sum[2] > cases / 50 && sum[3] > cases / 50,
            "outcomes {sum:?}"
        );
    }
}
