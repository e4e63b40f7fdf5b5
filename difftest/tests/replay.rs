//! The replay command's scenario parsing and its end-to-end run.

use adadelta_difftest::scenario::Scenario;
use std::process::Command;

const EXAMPLE: &str = include_str!("../examples/scenarios/two_groups.json");

#[test]
fn example_scenario_parses_into_group_cases() {
    let s = Scenario::parse(EXAMPLE).expect("the documented example parses");
    let groups = s.group_cases();
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
}
