//! The replay command's scenario parsing and its end-to-end run.

use adadelta_difftest::scenario::Scenario;
use std::process::Command;

const EXAMPLE: &str = include_str!("../examples/scenarios/two_groups.json");

#[test]
fn example_scenario_parses_into_group_cases() {
    let s = Scenario::parse(EXAMPLE).expect("the documented example parses");
    let groups = s.group_cases::<f32>().expect("f32 bit patterns");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].1, vec![1, 2]);
    assert_eq!(groups[0].0.hyper.lr, 0.5);
    assert_eq!(
        groups[1].0.hyper.lr, 1.0,
        "missing keys take PyTorch's defaults"
    );
    // {"bits": [...]} is exact; "inf" is accepted; null is an absent gradient.
    assert_eq!(groups[1].0.params[1], vec![1.0, -1.0]);
    assert_eq!(groups[1].0.grads[1][0].as_ref().unwrap()[1], f32::INFINITY);
    assert!(groups[0].0.grads[1][0].is_none());
    // The example's f32 bit patterns do not fit a 16-bit dtype: named.
    let err = s.group_cases::<adadelta::half::bf16>().unwrap_err();
    assert!(
        err.contains("parameter 2: bit pattern 1065353216 is wider than 16 bits"),
        "{err}"
    );
}

/// A Python float becomes a tensor element as `torch.tensor([x], dtype=...)`
/// makes it: through f32 for the 16-bit dtypes (torch 2.13 gives bfloat16
/// `1.0` for `1 + 2^-8 + 2^-30`, float16 `1.0` for `1 + 2^-11 + 2^-30`:
/// measured), itself in float64.
#[test]
fn decimal_numbers_round_to_each_dtype_as_torch_tensor_does() {
    use adadelta::half::{bf16, f16};
    let text =
        |x: f64| format!(r#"{{"groups": [{{"params": [0]}}], "params": [[{x:e}]], "grads": []}}"#);
    let first = |x: f64| Scenario::parse(&text(x)).unwrap();
    let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-30);
    let s = first(x);
    assert_eq!(
        s.group_cases::<bf16>().unwrap()[0].0.params[0],
        vec![bf16::ONE]
    );
    assert_eq!(s.group_cases::<f64>().unwrap()[0].0.params[0], vec![x]);
    let y = 1.0 + 2f64.powi(-11) + 2f64.powi(-30);
    assert_eq!(
        first(y).group_cases::<f16>().unwrap()[0].0.params[0],
        vec![f16::ONE]
    );
}

#[test]
fn bad_scenarios_are_clear_errors() {
    let base = |groups: &str, params: &str, grads: &str| {
        format!(r#"{{"groups": {groups}, "params": {params}, "grads": {grads}}}"#)
    };
    for (text, expected) in [
        (
            base(r#"[{"params": [0]}, {"params": [0]}]"#, "[[1.0]]", "[]"),
            "some parameters appear in more than one parameter group",
        ),
        (
            base(r#"[{"params": [0]}]"#, "[[1.0], [2.0]]", "[]"),
            "parameter 1 is in no group",
        ),
        (
            base(r#"[{"params": [3]}]"#, "[[1.0]]", "[]"),
            "names parameter 3, but there are 1",
        ),
        (
            base(r#"[{"lr": -1.0, "params": [0]}]"#, "[[1.0]]", "[]"),
            "Invalid learning rate: -1.0",
        ),
        (
            base(r#"[{"params": [0]}]"#, "[[1.0]]", "[[[1.0, 2.0]]]"),
            "gradient of parameter 0 has 2 elements, the parameter 1",
        ),
        (
            base(r#"[{"params": [0]}]"#, "[[1.0]]", "[[]]"),
            "step 0 has 0 gradients for 1 parameters",
        ),
        (
            base(r#"[{"params": [0]}]"#, r#"[["huge"]]"#, "[]"),
            "unknown number \"huge\"",
        ),
        (
            base(r#"[{"params": [0], "momentum": 0.9}]"#, "[[1.0]]", "[]"),
            "unknown field `momentum`",
        ),
        (
            base("[]", "[]", "[]"),
            "optimizer got an empty parameter list",
        ),
    ] {
        let err = Scenario::parse(&text).expect_err(&text);
        assert!(
            err.contains(expected),
            "{text}: got {err:?}, expected it to contain {expected:?}"
        );
    }
}

#[test]
fn replay_binary_writes_results_for_every_implementation() {
    let out = std::env::temp_dir().join(format!("adadelta-replay-{}.json", std::process::id()));
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/two_groups.json"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args([scenario, "--out"])
        .arg(&out)
        .status()
        .expect("replay runs");
    assert!(status.success());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    for imp in ["fast (default)", "reference binary32", "libtorch (tch)"] {
        let steps = r["results"][imp]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{imp} missing"));
        assert_eq!(steps.len(), 3);
        assert_eq!(
            r["error_vs_high_precision"][imp]["outside_bound"], 0,
            "{imp}"
        );
    }
    // Parameter 0 has no gradient at step 2: unchanged and its step counter stays 1.
    assert_eq!(
        r["results"]["fast (default)"]["steps"][1][0]["param"],
        r["results"]["fast (default)"]["steps"][0][0]["param"]
    );
    assert_eq!(r["results"]["fast (default)"]["steps"][1][0]["step"], 1.0);
    assert_eq!(
        r["bit_identical"]["fast (default) = reference binary32"]["identical"],
        r["bit_identical"]["fast (default) = reference binary32"]["elements"]
    );
    assert_eq!(r["dtype"], "float32");
}

/// Runs the replay binary on `scenario` with `--dtype dtype` and returns
/// its JSON.
fn replay_as(scenario: &str, dtype: &str) -> serde_json::Value {
    let out = std::env::temp_dir().join(format!(
        "adadelta-replay-{dtype}-{}.json",
        std::process::id()
    ));
    let status = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args([scenario, "--dtype", dtype, "--out"])
        .arg(&out)
        .status()
        .expect("replay runs");
    assert!(status.success(), "{dtype}");
    let r = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    r
}

/// A scenario of decimal numbers only (the documented example's bit
/// patterns are float32's).
const DECIMAL: &str = r#"{
  "groups": [{"lr": 0.5, "weight_decay": 0.1, "params": [0]}, {"rho": 0.95, "params": [1]}],
  "params": [[1.0, -2.0, 0.5, 3.1], [0.25, 3.0]],
  "grads": [[[0.1, 0.2, -0.3, 1e-3], [1.0, -1.0]], [null, [2.0, "inf"]], [[0.5, 0.5, 0.5, 0.5], [0.0, -0.0]]]
}"#;

#[test]
fn replay_takes_a_dtype() {
    let path = std::env::temp_dir().join(format!(
        "adadelta-replay-decimal-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, DECIMAL).unwrap();
    let scenario = path.to_str().unwrap();
    let r = replay_as(scenario, "float64");
    assert_eq!(r["dtype"], "float64");
    for imp in ["fast (default)", "reference binary64", "libtorch (tch)"] {
        assert_eq!(
            r["results"][imp]["steps"].as_array().map(Vec::len),
            Some(3),
            "{imp}"
        );
        assert_eq!(
            r["error_vs_high_precision"][imp]["outside_bound"], 0,
            "{imp}"
        );
    }
    let same = &r["bit_identical"]["fast (default) = reference binary64"];
    assert_eq!(same["identical"], same["elements"]);
    for dtype in ["bfloat16", "float16"] {
        let r = replay_as(scenario, dtype);
        assert_eq!(r["dtype"], dtype);
        // Every run within the 16-bit bound of its rounding, with outputs
        // compared (the scenario's finite elements).
        let errors = r["error_vs_high_precision"].as_object().unwrap();
        for imp in [
            "fast (default)".to_string(),
            format!("reference {dtype} (once)"),
            format!("reference {dtype} (opmath)"),
        ] {
            let e = &errors[&imp];
            assert_eq!(e["outside_bound"], 0, "{dtype}: {imp}");
            assert!(
                e["outputs_compared"].as_u64().unwrap() > 0,
                "{dtype}: {imp}"
            );
        }
        let once = format!("fast (default) = reference {dtype} (once)");
        let same = &r["bit_identical"][&once];
        assert!(same["elements"].as_u64().unwrap() > 0, "{dtype}: {once}");
        assert_eq!(same["identical"], same["elements"], "{dtype}: {once}");
        // 16-bit bit patterns in the results.
        let bits = &r["results"]["fast (default)"]["steps"][0][1]["param"]["bits"];
        assert!(
            bits.as_array()
                .unwrap()
                .iter()
                .all(|b| b.as_u64().unwrap() < 1 << 16),
            "{dtype}"
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_unknown_dtype_is_a_usage_error() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/two_groups.json"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args([scenario, "--dtype", "float8"])
        .output()
        .expect("replay runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown dtype \"float8\" (one of float32, float64, bfloat16, float16)"),
        "{err}"
    );
}
