//! The report's bfloat16 and float16 sections: their rows (fast in both
//! numerics, the reference rounding once and as PyTorch does, real
//! PyTorch with one thread), each promise computed and holding, and a
//! failing one failing the report.

use adadelta_difftest::case::{Case, Hyper};
use adadelta_difftest::dtype::Floating;
use adadelta_difftest::report::{self, Options};
use adadelta_difftest::suite::{default_hypers, random_case, Suites, Values};
use half::{bf16, f16};

/// The default hyperparameters on small tensors (the last ones cross
/// PyTorch's 32-element vectors), three steps, every other case on the
/// `foreach` path; plus wide and non-finite values.
fn small_suite<H: Floating>() -> Vec<Case<H>> {
    let sizes = [1, 7, 33, 1000];
    let mut cases: Vec<Case<H>> = default_hypers()
        .into_iter()
        .enumerate()
        .map(|(k, (name, h))| {
            let h = Hyper {
                foreach: k % 2 == 1,
                ..h
            };
            random_case(name, 1000 + k as u64, h, &sizes, 3, Values::Normal, 0.1)
        })
        .collect();
    cases.push(random_case(
        "wide",
        2000,
        Hyper::default(),
        &sizes,
        3,
        Values::Wide,
        0.1,
    ));
    cases.push(random_case(
        "NaN",
        3000,
        Hyper::default(),
        &sizes,
        2,
        Values::NonFinite,
        0.1,
    ));
    cases
}

#[test]
fn report_has_bfloat16_and_float16_sections_whose_promises_hold() {
    let suites = Suites {
        bfloat16: small_suite::<bf16>(),
        float16: small_suite::<f16>(),
        ..Suites::default()
    };
    let mut r = report::run(
        &suites,
        &Options {
            run_pytorch: true,
            progress: false,
        },
    );
    let formats: Vec<(&str, &str)> = r
        .sections
        .iter()
        .map(|s| (s.dtype.as_str(), s.format.as_str()))
        .collect();
    assert_eq!(formats, [("bfloat16", "bfloat16"), ("float16", "binary16")]);
    // This project's machine computes reproduce-libtorch: every row runs.
    for sec in &r.sections {
        let names: Vec<&str> = sec.rows.iter().map(|r| r.implementation.as_str()).collect();
        let d = &sec.dtype;
        assert_eq!(
            names,
            [
                "fast (default)".to_string(),
                format!("reference {d} (once)"),
                "fast (reproduce libtorch)".to_string(),
                format!("reference {d} (opmath)"),
                "torch.optim.Adadelta (Python)".to_string(),
            ]
        );
        assert_eq!(sec.baseline, format!("reference {d} (opmath)"));
        for row in &sec.rows {
            assert!(row.compared > 0, "{d} {}", row.implementation);
            assert_eq!(row.violations, 0, "{d} {}", row.implementation);
        }
        // fast's default numerics differ from PyTorch's somewhere: the
        // comparison tells the roundings apart.
        assert!(sec.rows[0].identical_to_libtorch < 1.0, "{d}");
        assert_eq!(sec.rows[2].identical_to_libtorch, 1.0, "{d}");
        assert_eq!(sec.rows[4].identical_to_libtorch, 1.0, "{d}");
        assert!(sec.rows[4].ns_per_element_step.is_none());
        let promises: Vec<&str> = r
            .promises
            .iter()
            .filter(|p| &p.dtype == d)
            .map(|p| p.promise.as_str())
            .collect();
        let within =
            |n: &str| format!("{n}: per-step error within the bound of fast/docs/numerics.md");
        assert_eq!(
            promises,
            [
                within("fast (default)"),
                format!("fast (default) = reference {d} (once), bit for bit"),
                within(&format!("reference {d} (once)")),
                within("fast (reproduce libtorch)"),
                format!("fast (reproduce libtorch) = reference {d} (opmath), bit for bit"),
                within(&format!("reference {d} (opmath)")),
                within("torch.optim.Adadelta (Python)"),
                "torch.optim.Adadelta (Python) = fast (reproduce libtorch), bit for bit"
                    .to_string(),
            ]
        );
    }
    for p in &r.promises {
        assert!(p.held, "{}: {}: {}", p.dtype, p.promise, p.detail);
    }
    let text = report::render(&r);
    assert!(text.contains("bfloat16 parameters (bfloat16)"), "{text}");
    assert!(text.contains("float16 parameters (binary16)"), "{text}");
    assert!(text.contains("= opmath"), "{text}");
    let summary = report::machine_independent_summary(&r);
    assert!(
        summary.contains("bfloat16: reference bfloat16 (opmath)"),
        "{summary}"
    );
    assert!(!summary.contains("reproduce"), "{summary}");
    // A 16-bit promise that fails fails the report.
    let k = r
        .promises
        .iter()
        .position(|p| p.dtype == "float16")
        .unwrap();
    r.promises[k].held = false;
    assert!(!r.all_held());
    assert!(report::render(&r).contains("[FAILED] float16: fast (default)"));
}
