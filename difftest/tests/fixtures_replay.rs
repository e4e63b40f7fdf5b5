//! Replays every golden fixture (real `torch.optim.Adadelta` output, see
//! `fixtures/MANIFEST.json`) against libtorch through tch, fast and the
//! reference.
//!
//! libtorch's f32 sqrt depends on the machine (oneMKL, `fast/docs/numerics.md`).
//! Each fixture records the sqrt of its generating machine as a probe; when
//! this machine's libtorch gives other bits on that probe, the tests say so
//! on stderr and compare what still can be compared (per-step error bounds)
//! instead of bits. Nothing is skipped silently.

use adadelta_difftest::accuracy::{self, first_difference, first_difference_with, NanBits};
use adadelta_difftest::bound::{self, SqrtAccuracy};
use adadelta_difftest::fixture::{check_foreach_twins, Fixture};
use adadelta_difftest::implementations::{run_fast, run_reference};
use adadelta_difftest::libtorch;
use adadelta_reference::MulAdd;

fn fixtures() -> Vec<Fixture> {
    let fx = Fixture::load_all().expect("fixtures/MANIFEST.json and its fixtures load");
    assert!(
        fx.len() >= 10,
        "expected at least 10 fixtures, found {}",
        fx.len()
    );
    fx
}

/// Whether this machine's libtorch sqrt gives the fixture's probe bits.
fn same_sqrt_as_generator(fx: &Fixture) -> bool {
    let sq = &fx.generated_by.sqrt_flavour;
    let x: Vec<f32> = sq.probe_inputs.iter().map(|&b| f32::from_bits(b)).collect();
    let y = Vec::<f32>::try_from(tch::Tensor::from_slice(&x).sqrt()).expect("f32 tensor");
    let differing = y
        .iter()
        .zip(&sq.probe_outputs)
        .filter(|(a, &b)| a.to_bits() != b)
        .count();
    if differing > 0 {
        eprintln!(
            "NOTE: fixture {:?} was generated where libtorch's sqrt is {:?}; this machine's libtorch \
             differs on {differing} of {} probe inputs, so libtorch is compared within the per-step \
             error bound instead of bit for bit",
            fx.name,
            sq.name,
            x.len()
        );
    }
    differing == 0
}

#[test]
fn fixtures_come_from_the_pinned_pytorch() {
    for fx in fixtures() {
        fx.check_provenance().unwrap();
    }
}

/// PyTorch's `foreach=True` (`_multi_tensor_adadelta`) and its default
/// for-loop give the same bits in float32: inputs, parameters, state and
/// step counters. (Every test here replays both.)
#[test]
fn foreach_and_for_loop_fixtures_hold_the_same_float32_numbers() {
    check_foreach_twins(&fixtures()).unwrap();
}

/// The two checks above can fail: a fixture from another torch, one whose
/// recorded function is not its `foreach`'s, a missing twin, and a twin
/// one bit apart are each refused.
#[test]
fn the_provenance_and_twin_checks_refuse_a_changed_fixture() {
    let fx = fixtures();
    let mut f = fx[0].clone();
    f.generated_by.torch_version = "2.12.0".into();
    assert!(f.check_provenance().unwrap_err().contains("torch 2.12.0"));
    let mut f = fx[0].clone();
    f.implementation = "_fused_adadelta".into();
    assert!(f.check_provenance().unwrap_err().contains("implementation"));
    assert!(check_foreach_twins(&fx[1..]).is_err(), "a missing twin");
    let mut changed = fx.clone();
    let twin = changed
        .iter_mut()
        .find(|o| o.name == fx[0].name && o.foreach != fx[0].foreach)
        .expect("a twin");
    let last = twin.steps.last_mut().expect("steps");
    last.params[0].bits[0] ^= 1;
    let err = check_foreach_twins(&changed).unwrap_err();
    assert!(err.contains("differs"), "{err}");
}

#[test]
fn libtorch_replays_every_fixture() {
    for fx in fixtures() {
        let bitwise = same_sqrt_as_generator(&fx);
        for (case, idx) in fx.group_cases() {
            let expected = fx.trajectory(&idx);
            let got = libtorch::run(&case);
            if bitwise {
                assert!(
                    first_difference(&case, &got, &expected).is_none(),
                    "{}: libtorch differs from the PyTorch fixture: {}",
                    case.name,
                    first_difference(&case, &got, &expected).unwrap_or_default()
                );
                assert_eq!(
                    got.iter().map(|s| &s.step).collect::<Vec<_>>(),
                    expected.iter().map(|s| &s.step).collect::<Vec<_>>(),
                    "{}: step counters",
                    case.name
                );
            } else {
                let acc = accuracy::per_step(&case, &got, SqrtAccuracy::WithinOneUlpOfCorrect);
                assert_eq!(
                    acc.violation_count,
                    0,
                    "{}: {:?}",
                    case.name,
                    acc.violations.first()
                );
            }
        }
    }
}

/// PyTorch's own numbers obey the per-step error bound derived in
/// fast/docs/numerics.md (sqrt allowed 3/2 ulp: libtorch's oneMKL sqrt is within
/// 1 ulp of correctly rounded on the machines measured).
#[test]
fn pytorch_fixtures_obey_the_error_bound() {
    for fx in fixtures() {
        for (case, idx) in fx.group_cases() {
            let acc = accuracy::per_step(
                &case,
                &fx.trajectory(&idx),
                SqrtAccuracy::WithinOneUlpOfCorrect,
            );
            assert_eq!(
                acc.violation_count,
                0,
                "{}: {:?}",
                case.name,
                acc.violations.first()
            );
            assert!(acc.compared > 0, "{}: nothing compared", case.name);
        }
    }
}

/// fast equals the reference's binary32 emulation on every fixture, and one
/// fast step from each of PyTorch's recorded states lands within
/// `B_fast + B_torch` of PyTorch's next state (both are within their bound
/// of the same exact step: triangle inequality), bit-identical where the
/// sqrts agree.
#[test]
fn fast_replays_every_fixture() {
    for fx in fixtures() {
        for (case, idx) in fx.group_cases() {
            let fast = run_fast(&case);
            let reference = run_reference(&case, MulAdd::Fused);
            // fast's NaN bits are not determined (NanBits::QuietAnyPayload).
            let nan = NanBits::QuietAnyPayload;
            assert!(
                first_difference_with(&case, &fast, &reference, nan).is_none(),
                "{}: fast vs reference binary32: {}",
                case.name,
                first_difference_with(&case, &fast, &reference, nan).unwrap_or_default()
            );

            let expected = fx.trajectory(&idx);
            let coeffs =
                adadelta::Coefficients::new(&case.hyper.to_fast()).expect("valid hyperparameters");
            let scalars = bound::Scalars::new(&case.hyper);
            let (mut same, mut total) = (0usize, 0usize);
            for (t, grads) in case.grads.iter().enumerate() {
                for (i, g) in grads.iter().enumerate() {
                    let Some(g) = g else { continue };
                    let before = t.checked_sub(1).map(|k| &expected[k]);
                    let p0 = before.map_or(&case.params[i], |s| &s.params[i]).clone();
                    let zeros = vec![0.0; p0.len()];
                    let v0 = before
                        .and_then(|s| s.square_avg[i].clone())
                        .unwrap_or_else(|| zeros.clone());
                    let u0 = before.and_then(|s| s.acc_delta[i].clone()).unwrap_or(zeros);
                    let (mut p, mut v, mut u) = (p0.clone(), v0.clone(), u0.clone());
                    adadelta::step(&coeffs, &mut p, g, &mut v, &mut u).expect("equal lengths");
                    let after = &expected[t];
                    let (tp, tv, tu) = (
                        &after.params[i],
                        after.square_avg[i]
                            .as_ref()
                            .expect("state after a step with a gradient"),
                        after.acc_delta[i]
                            .as_ref()
                            .expect("state after a step with a gradient"),
                    );
                    for k in 0..p.len() {
                        let bf = bound::one_step(
                            &scalars,
                            SqrtAccuracy::CorrectlyRounded,
                            p0[k],
                            g[k],
                            v0[k],
                            u0[k],
                        );
                        let bt = bound::one_step(
                            &scalars,
                            SqrtAccuracy::WithinOneUlpOfCorrect,
                            p0[k],
                            g[k],
                            v0[k],
                            u0[k],
                        );
                        for (x, y, b, what) in [
                            (p[k], tp[k], bf.param + bt.param, "param"),
                            (v[k], tv[k], bf.square_avg + bt.square_avg, "square_avg"),
                            (u[k], tu[k], bf.acc_delta + bt.acc_delta, "acc_delta"),
                        ] {
                            total += 1;
                            // fast's NaN bits are not determined
                            // (NanBits::QuietAnyPayload says why).
                            if NanBits::QuietAnyPayload.same(x, y) {
                                same += 1;
                                continue;
                            }
                            // Non-finite values must agree exactly (no bound is claimed there).
                            assert!(
                                b.is_finite() && ((x as f64) - (y as f64)).abs() <= b,
                                "{} step {t} param {i} [{k}] {what}: fast {x:e} vs PyTorch {y:e}, bound {b:e}",
                                case.name
                            );
                        }
                    }
                }
            }
            eprintln!(
                "{}: fast one-step = PyTorch bit for bit on {same} of {total} outputs",
                case.name
            );
        }
    }
}
