//! Fuzzing the `replay` command's scenario reader (`Scenario::parse`, as
//! `docs/replay.md` describes the format): random bytes, truncations,
//! flipped bits, byte edits, splices of two scenarios, and mutations of the
//! JSON tree of valid ones (a node replaced by a random value, a key
//! removed, added or written twice). Every input must give an error or a
//! valid scenario: never a panic, never a hang.
//!
//! * refused: the message starts with `scenario: ` and is under 400 bytes;
//!   a syntax or type error says where (line and column);
//! * accepted: every parameter is in exactly one group, every gradient has
//!   its parameter's length, the cost is within `MAX_ELEMENT_STEPS`, the
//!   hyperparameters pass PyTorch's validation, and `group_cases` covers
//!   every parameter once.
//!
//! ```sh
//! cargo test -p adadelta-difftest --test scenario_fuzz                    # 20,000 inputs
//! ADADELTA_FUZZ_CASES=1000000 cargo test -p adadelta-difftest --test scenario_fuzz -- --nocapture
//! ADADELTA_FUZZ_SEED=7 ADADELTA_FUZZ_START=123 ADADELTA_FUZZ_CASES=1 \
//!   cargo test -p adadelta-difftest --test scenario_fuzz -- --nocapture   # one input
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use adadelta_difftest::scenario::{Scenario, MAX_ELEMENT_STEPS};
use adadelta_difftest::suite::Rng;
use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../examples/scenarios/two_groups.json");
/// An input taking longer than this is a hang (one takes well under a
/// millisecond).
const HANG: Duration = Duration::from_secs(10);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Valid scenarios: the documented example and small generated ones.
fn seeds() -> Vec<Value> {
    let mut v = vec![serde_json::from_str(EXAMPLE).unwrap()];
    v.push(json!({
        "groups": [{"lr": 0.1, "rho": 0.0, "eps": 0.0, "weight_decay": 1e-30, "params": [1]},
                   {"maximize": true, "params": [0, 2]}, {"params": []}],
        "params": [[0.0, -0.0, 1e-45], {"bits": [2143289344u32, 4286578688u32]}, ["nan", "inf", "-inf"]],
        "grads": [[[1.0, 2.0, 3.0], null, [0.5, 0.5, 0.5]],
                  [null, {"bits": [0, 2147483648u32]}, null]]
    }));
    v.push(json!({"groups": [{"params": [0]}], "params": [[1.5]], "grads": []}));
    v
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => {
            json!([0i64, -1, 1, 2, 3, u32::MAX as i64, 1 << 40, -(1 << 40)][rng.below(8) as usize])
        }
        3 => json!([0.5, -1.0, 1e-6, 1e300, -0.0, 0.9, 1e-320][rng.below(7) as usize]),
        4 => {
            json!(["nan", "inf", "-inf", "NaN", "", "bits", "params", "1.0"][rng.below(8) as usize])
        }
        5 => json!({"bits": [rng.next_u64() as u32]}),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        7 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(3) {
                m.insert(random_key(rng), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => json!(vec![1.0; rng.below(5) as usize]),
    }
}

fn random_key(rng: &mut Rng) -> String {
    let keys = [
        "groups",
        "params",
        "grads",
        "lr",
        "rho",
        "eps",
        "weight_decay",
        "maximize",
        "bits",
        "momentum",
        "",
        "extra",
    ];
    keys[rng.below(keys.len() as u64) as usize].to_string()
}

/// A random node of `v` (possibly `v` itself).
fn random_node<'a>(v: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    if rng.below(3) == 0 {
        return v;
    }
    let len = match v {
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        _ => 0,
    };
    if len == 0 {
        return v;
    }
    let i = rng.below(len as u64) as usize;
    match v {
        Value::Array(a) => random_node(&mut a[i], rng),
        Value::Object(m) => {
            let k = m.keys().nth(i).unwrap().clone();
            random_node(m.get_mut(&k).unwrap(), rng)
        }
        _ => unreachable!(),
    }
}

/// One input: a function of the seed and its number.
fn input(seeds: &[Value], seed: u64, case: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let pick = |rng: &mut Rng| seeds[rng.below(seeds.len() as u64) as usize].clone();
    let text = |v: &Value| serde_json::to_vec(v).unwrap();
    match rng.below(7) {
        // Random bytes, mostly JSON punctuation and digits.
        0 => {
            let alphabet = b"{}[]\",:0123456789.e-+ntrufalsbi \n\xff";
            (0..rng.below(200))
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect()
        }
        // A valid scenario cut short.
        1 => {
            let t = text(&pick(&mut rng));
            let n = rng.below(t.len() as u64 + 1) as usize;
            t[..n].to_vec()
        }
        // Flipped bits.
        2 => {
            let mut t = text(&pick(&mut rng));
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(t.len() as u64) as usize;
                t[i] ^= 1 << rng.below(8);
            }
            t
        }
        // Byte edits: insert, delete, replace.
        3 => {
            let mut t = text(&pick(&mut rng));
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(t.len() as u64) as usize;
                let edits = b"{}[]\",:-.0e9n";
                let b = edits[rng.below(edits.len() as u64) as usize];
                match rng.below(3) {
                    0 => t.insert(i, b),
                    1 => {
                        t.remove(i);
                    }
                    _ => t[i] = b,
                }
                if t.is_empty() {
                    break;
                }
            }
            t
        }
        // The start of one scenario and the end of another.
        4 => {
            let (a, b) = (text(&pick(&mut rng)), text(&pick(&mut rng)));
            let (i, j) = (
                rng.below(a.len() as u64) as usize,
                rng.below(b.len() as u64) as usize,
            );
            [&a[..i], &b[j..]].concat()
        }
        // A key written twice (serde_json's Value would keep one).
        5 => {
            let t = String::from_utf8(text(&pick(&mut rng))).unwrap();
            let k = random_key(&mut rng);
            let v = serde_json::to_string(&random_value(&mut rng, 0)).unwrap();
            t.replacen('{', &format!("{{\"{k}\": {v}, "), 1)
                .into_bytes()
        }
        // The tree: a node replaced, a key removed or added.
        _ => {
            let mut root = pick(&mut rng);
            for _ in 0..1 + rng.below(3) {
                let node = random_node(&mut root, &mut rng);
                match (rng.below(3), node) {
                    (0, Value::Object(m)) if !m.is_empty() => {
                        let k = m
                            .keys()
                            .nth(rng.below(m.len() as u64) as usize)
                            .unwrap()
                            .clone();
                        m.remove(&k);
                    }
                    (1, Value::Object(m)) => {
                        m.insert(random_key(&mut rng), random_value(&mut rng, 0));
                    }
                    (_, node) => *node = random_value(&mut rng, 0),
                }
            }
            text(&root)
        }
    }
}

/// Checks one input; returns whether it was accepted.
fn check(bytes: &[u8]) -> Result<bool, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(false); // replay refuses non-UTF-8 files before parsing
    };
    match Scenario::parse(text) {
        Err(e) => {
            if !e.starts_with("scenario: ") || e.len() >= 400 {
                return Err(format!("a message that is not a scenario error: {e:?}"));
            }
            let from_serde = serde_json::from_str::<Value>(text).is_err()
                || e.contains("invalid type")
                || e.contains("unknown field")
                || e.contains("missing field")
                || e.contains("duplicate field")
                || e.contains("unknown number");
            if from_serde && !e.contains(" at line ") {
                return Err(format!("no line and column: {e:?}"));
            }
            Ok(false)
        }
        Ok(s) => {
            let n = s.params.len();
            let lens: Vec<usize> = s.params.iter().map(|p| p.len()).collect();
            let mut owner = vec![0usize; n];
            for g in &s.groups {
                g.hyper().to_fast().validate().map_err(|e| e.to_string())?;
                for &i in &g.params {
                    owner[i] += 1;
                }
            }
            if owner.iter().any(|&k| k != 1) {
                return Err(format!("accepted with parameter owners {owner:?}"));
            }
            for row in &s.grads {
                for (i, g) in row.iter().enumerate() {
                    if g.as_ref().is_some_and(|g| g.len() != lens[i]) {
                        return Err("accepted a gradient of the wrong length".into());
                    }
                }
            }
            if lens.iter().sum::<usize>() * (s.grads.len() + 1) > MAX_ELEMENT_STEPS {
                return Err("accepted a scenario over the element-step limit".into());
            }
            // Bit patterns wider than f32's are read, and refused (named)
            // when the scenario is replayed as float32.
            let cases = match s.group_cases::<f32>() {
                Ok(c) => c,
                Err(e) if e.contains("is wider than 32 bits") => return Ok(false),
                Err(e) => return Err(format!("group_cases: {e}")),
            };
            let mut covered: Vec<usize> = cases.into_iter().flat_map(|(_, i)| i).collect();
            covered.sort_unstable();
            if covered != (0..n).collect::<Vec<_>>() {
                return Err(format!("group_cases covers {covered:?} of {n}"));
            }
            Ok(true)
        }
    }
}

#[test]
fn the_scenario_reader_survives_fuzzed_input() {
    let seed = env_or("ADADELTA_FUZZ_SEED", 0x5eed_5ce0);
    let start = env_or("ADADELTA_FUZZ_START", 0);
    let cases = env_or("ADADELTA_FUZZ_CASES", 20_000);
    let seeds = seeds();
    for s in &seeds {
        assert_eq!(check(&serde_json::to_vec(s).unwrap()), Ok(true), "seed {s}");
    }
    let (mut accepted, mut refused) = (0u64, 0u64);
    for case in start..start + cases {
        let bytes = input(&seeds, seed, case);
        let t = Instant::now();
        let got = catch_unwind(AssertUnwindSafe(|| check(&bytes)));
        let replay = format!(
            "ADADELTA_FUZZ_SEED={seed} ADADELTA_FUZZ_START={case} ADADELTA_FUZZ_CASES=1 \
             cargo test -p adadelta-difftest --test scenario_fuzz -- --nocapture"
        );
        assert!(
            t.elapsed() < HANG,
            "input {case} took {:?}: {replay}",
            t.elapsed()
        );
        match got {
            Ok(Ok(true)) => accepted += 1,
            Ok(Ok(false)) => refused += 1,
            Ok(Err(e)) => panic!(
                "input {case}: {e}\n{}\n{replay}",
                String::from_utf8_lossy(&bytes)
            ),
            Err(_) => panic!("input {case} panicked: {replay}"),
        }
    }
    println!("{cases} inputs: {accepted} accepted, {refused} refused");
    assert!(
        accepted > 0 && refused > 0,
        "the mutators reach both outcomes"
    );
}
