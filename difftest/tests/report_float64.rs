//! The report's float64 section: its suite (the float32 cases, values drawn
//! in binary64), the float64 error bound (`fast/docs/numerics.md`, "binary64:
//! what changes") holding for every float64 implementation and failing for
//! an output beyond it, the wire form of float64 cases, and the section's
//! promises.

use adadelta_difftest::accuracy;
use adadelta_difftest::bound::{self, Scalars, SqrtAccuracy};
use adadelta_difftest::case::{Case, Hyper, Snapshot, WireCase, WireSnapshot};
use adadelta_difftest::implementations::Implementation;
use adadelta_difftest::report::{self, Options};
use adadelta_difftest::suite::{self, default_hypers, random_case, Suites, Values};

/// A small float64 case with weight decay and maximize (every scalar of the
/// recipe in use).
fn case(kind: Values) -> Case<f64> {
    let hyper = Hyper {
        lr: 0.37,
        weight_decay: 0.1,
        maximize: true,
        ..Hyper::default()
    };
    random_case("float64 bound", 11, hyper, &[1000, 33], 5, kind, 0.1)
}

/// The sizes of a case's parameters, and which gradients are absent at
/// each step.
fn shape<T>(c: &Case<T>) -> (Vec<usize>, Vec<Vec<bool>>) {
    let sizes = c.params.iter().map(Vec::len).collect();
    let absent = c
        .grads
        .iter()
        .map(|s| s.iter().map(Option::is_none).collect())
        .collect();
    (sizes, absent)
}

#[test]
fn float64_suite_is_the_float32_suite_with_values_drawn_in_binary64() {
    let (c32, c64) = (suite::default_suite::<f32>(), suite::default_suite::<f64>());
    assert_eq!(c32.len(), c64.len());
    let (mut finite, mut beyond_f32) = (0usize, 0usize);
    for (a, b) in c32.iter().zip(&c64) {
        assert_eq!((&a.name, a.hyper), (&b.name, b.hyper));
        assert_eq!(shape(a), shape(b), "{}", a.name);
        for x in b.params.iter().flatten() {
            finite += x.is_finite() as usize;
            beyond_f32 += (x.is_finite() && (*x as f32) as f64 != *x) as usize;
        }
    }
    // Drawn natively: nearly every finite f64 has more than f32's 24
    // significant bits (the exceptions are zeros and the rare short ones).
    assert!(
        beyond_f32 as f64 > 0.9 * finite as f64,
        "{beyond_f32} of {finite}"
    );
}

#[test]
fn wide_float64_values_reach_binary64_subnormals_and_squares_that_overflow() {
    let c: Case<f64> = random_case(
        "wide",
        2000,
        Hyper::default(),
        &[4000],
        1,
        Values::Wide,
        0.0,
    );
    let p = &c.params[0];
    assert!(p.iter().any(|x| x.is_subnormal()));
    assert!(p.iter().any(|x| (x * x).is_infinite()));
    assert!(p.iter().any(|x| x.is_normal() && x.abs() < 1e-300));
}

#[test]
fn float64_cases_and_snapshots_cross_the_wire_bit_for_bit() {
    let c = random_case::<f64>(
        "wire",
        3000,
        Hyper::default(),
        &[40],
        2,
        Values::NonFinite,
        0.2,
    );
    let w = WireCase::from(&c);
    assert_eq!(w.dtype, "float64");
    assert_eq!(Case::<f64>::try_from(&w).unwrap().params[0].len(), 40);
    let back: Case<f64> = Case::try_from(&w).unwrap();
    let bits = |c: &Case<f64>| {
        c.params
            .iter()
            .flatten()
            .chain(c.grads.iter().flatten().flatten().flatten())
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&back), bits(&c));
    // A float64 case is not read as float32.
    assert!(Case::<f32>::try_from(&w).is_err());
    let traj = Implementation::Fast.run(&c);
    let ws = WireSnapshot::from(&traj[1]);
    let snap: Snapshot<f64> = Snapshot::try_from(&ws).unwrap();
    assert!(accuracy::first_difference(&c, &vec![snap], &traj[1..].to_vec()).is_none());
    // A 64-bit pattern does not fit a float32 snapshot.
    assert!(Snapshot::<f32>::try_from(&ws).is_err());
}

#[test]
fn every_float64_implementation_is_within_the_float64_bound() {
    for kind in [Values::Normal, Values::Wide] {
        let c = case(kind);
        for imp in Implementation::ALL {
            let acc = accuracy::per_step(&c, &imp.run(&c), imp.sqrt_accuracy());
            assert_eq!(
                acc.violation_count,
                0,
                "{} {kind:?}: first: {:?}",
                imp.name::<f64>(),
                acc.violations.first()
            );
            assert!(acc.compared > 0, "{} {kind:?}", imp.name::<f64>());
            if kind == Values::Normal {
                // Not vacuous: over thousands of outputs some error exceeds
                // 0.4 ulp (a correctly rounded op alone errs up to 0.5 ulp),
                // and some uses more than 5 % of its bound (a few ulps).
                assert!(
                    acc.max_ulps > 0.4,
                    "{}: {}",
                    imp.name::<f64>(),
                    acc.max_ulps
                );
                assert!(
                    acc.max_bound_ratio > 0.05,
                    "{}: {}",
                    imp.name::<f64>(),
                    acc.max_bound_ratio
                );
            }
        }
    }
}

#[test]
fn a_float64_output_beyond_its_bound_is_reported_as_a_violation() {
    let c = case(Values::Normal);
    let traj = Implementation::Fast.run(&c);
    let sqrt = SqrtAccuracy::CorrectlyRounded;
    assert_eq!(accuracy::per_step(&c, &traj, sqrt).violation_count, 0);
    // Parameter 0 has a gradient at step 0 (random_case guarantees it);
    // its element 7 starts from p, g and a zero state.
    let (p, g) = (c.params[0][7], c.grads[0][0].as_ref().unwrap()[7]);
    let b = bound::one_step(&Scalars::new(&c.hyper), sqrt, p, g, 0.0, 0.0);
    let x = traj[0].params[0][7];
    assert!(b.param.is_finite() && b.param > 0.0);
    // Move x up by more than twice the bound B plus 2 ulps of x: since
    // |x - exact| <= B, the moved value is more than B + 2 ulps from the
    // exact one, out of its bound whatever the bound's size in ULPs.
    let mut moved = x;
    while moved - x <= 2.0 * b.param {
        moved = moved.next_up();
    }
    moved = moved.next_up().next_up();
    let mut bad = traj.clone();
    bad[0].params[0][7] = moved;
    let acc = accuracy::per_step(&c, &bad, sqrt);
    assert!(acc.violation_count >= 1);
    let v = &acc.violations[0];
    assert_eq!(
        (v.step, v.param, v.index, v.what.as_str()),
        (0, 0, 7, "Param")
    );
    assert_eq!(v.got, moved);
    assert!(v.ulps > v.bound_ulps, "{v:?}");
}

/// The float64 section of a small report: its rows, and each of its
/// promises computed and holding (PyTorch included).
#[test]
fn report_has_a_float64_section_whose_promises_are_computed() {
    let sizes = [1, 7, 8, 33, 1000];
    let mut float64: Vec<Case<f64>> = default_hypers()
        .into_iter()
        .enumerate()
        .map(|(k, (name, h))| random_case(name, 1000 + k as u64, h, &sizes, 3, Values::Normal, 0.1))
        .collect();
    float64.push(random_case(
        "wide",
        2000,
        Hyper::default(),
        &sizes,
        3,
        Values::Wide,
        0.1,
    ));
    float64.push(random_case(
        "NaN",
        3000,
        Hyper::default(),
        &sizes,
        2,
        Values::NonFinite,
        0.1,
    ));
    let suites = Suites {
        float64,
        ..Suites::default()
    };
    let mut r = report::run(
        &suites,
        &Options {
            run_pytorch: true,
            progress: false,
        },
    );
    assert_eq!(r.sections.len(), 1);
    let sec = &r.sections[0];
    assert_eq!(
        (sec.dtype.as_str(), sec.format.as_str()),
        ("float64", "binary64")
    );
    let names: Vec<&str> = sec.rows.iter().map(|r| r.implementation.as_str()).collect();
    assert_eq!(
        names,
        [
            "fast (default)",
            "reference binary64",
            "libtorch (tch)",
            "fast (reproduce libtorch)"
        ]
    );
    for row in &sec.rows {
        assert_eq!(row.dtype, "float64");
        assert!(row.compared > 0, "{}", row.implementation);
    }
    assert_eq!(sec.pytorch_identical_to_libtorch, Some(1.0));
    let promises: Vec<&str> = r.promises.iter().map(|p| p.promise.as_str()).collect();
    assert_eq!(
        promises,
        [
            "fast (default): per-step error within the bound of fast/docs/numerics.md",
            "fast (default) = reference binary64, bit for bit",
            "reference binary64: per-step error within the bound of fast/docs/numerics.md",
            "libtorch (tch): per-step error within the bound of fast/docs/numerics.md",
            "fast (reproduce libtorch): per-step error within the bound of fast/docs/numerics.md",
            "fast (reproduce libtorch) = libtorch (tch), bit for bit",
            "libtorch (tch) = torch.optim.Adadelta (Python), bit for bit",
        ]
    );
    for p in &r.promises {
        assert_eq!(p.dtype, "float64");
        assert!(p.held, "{}: {}", p.promise, p.detail);
    }
    assert!(r.all_held());
    let text = report::render(&r);
    assert!(text.contains("float64 parameters (binary64)"), "{text}");
    // A float64 promise that fails fails the report (its exit status).
    r.promises[1].held = false;
    assert!(!r.all_held());
    assert!(report::render(&r).contains("[FAILED] float64: fast (default) = reference binary64"));
}
