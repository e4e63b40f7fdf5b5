//! The whole Adadelta step in [`Binary32`] agrees bit for bit with a plain
//! scalar `f32` implementation (native IEEE ops: `f32::mul_add` where PyTorch
//! fuses, `*` then `+` where it does not, `f32::sqrt`), for both [`MulAdd`]
//! choices, over several steps, on inputs reaching every corner of binary32
//! and on edge-case hyperparameters.

mod common;

use adadelta_reference::{step, Adadelta, Binary32, Hyperparams, MulAdd, ParamState};
use common::{interesting_f32, native_step, same, with_exponent};
use proptest::prelude::*;

/// An `f64` hyperparameter: the edge values, the PyTorch defaults, values that
/// are not exactly representable in `f32`, and a random one in `range`.
fn hyper_value(edges: &'static [f64], range: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![prop::sample::select(edges), range]
}

fn hyperparams() -> impl Strategy<Value = Hyperparams> {
    (
        hyper_value(&[0.0, 1.0, 0.37, 1e-3, 1e-30, 1e30, 0.1], 0.0..10.0),
        // rho: 0 and 1 allowed by PyTorch; 1 - rho inexact in f32 for most.
        hyper_value(&[0.0, 1.0, 0.9, 0.95, 0.5, 0.999_999_9, 1e-9], 0.0..1.0),
        // eps: 0, defaults, an f32-subnormal eps, an eps that rounds to 0 in f32.
        hyper_value(&[0.0, 1e-6, 1e-8, 1e-40, 1e-46, 1.0, 1e-3], 0.0..1e-2),
        hyper_value(&[0.0, -0.0, 0.1, 1e-4, 1e3, 1e-42], 0.0..1.0),
        any::<bool>(),
    )
        .prop_map(|(lr, rho, eps, weight_decay, maximize)| Hyperparams {
            lr,
            rho,
            eps,
            weight_decay,
            maximize,
        })
}

/// Mostly `interesting_f32`, with extra ordinary values so that many
/// trajectories stay finite for several steps.
fn element() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => interesting_f32(),
        2 => -10.0f32..10.0,
        1 => with_exponent(100..=140),
    ]
}

/// Up to 6 elements: initial params, initial state (zeros as PyTorch creates
/// it, or arbitrary as `from_state` may give), and one gradient per step for
/// up to 5 steps.
#[derive(Debug, Clone)]
struct Case {
    hyper: Hyperparams,
    params: Vec<f32>,
    square_avg: Vec<f32>,
    acc_delta: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=6, 1usize..=5, any::<bool>(), hyperparams()).prop_flat_map(
        |(n, steps, zero_state, hyper)| {
            let state = move || {
                if zero_state {
                    Just(vec![0.0f32; n]).boxed()
                } else {
                    prop::collection::vec(element(), n).boxed()
                }
            };
            (
                prop::collection::vec(element(), n),
                state(),
                state(),
                prop::collection::vec(prop::collection::vec(element(), n), steps),
            )
                .prop_map(move |(params, square_avg, acc_delta, grads)| Case {
                    hyper,
                    params,
                    square_avg,
                    acc_delta,
                    grads,
                })
        },
    )
}

fn check(case: &Case, mul_add: MulAdd) -> Result<(), TestCaseError> {
    let arith = Binary32 { mul_add };
    let fused = mul_add == MulAdd::Fused;
    let (mut p, mut v, mut u) = (
        case.params.clone(),
        case.square_avg.clone(),
        case.acc_delta.clone(),
    );
    let (mut np, mut nv, mut nu) = (p.clone(), v.clone(), u.clone());
    for (t, g) in case.grads.iter().enumerate() {
        step(&arith, &case.hyper, &mut p, g, &mut v, &mut u);
        for i in 0..np.len() {
            native_step(fused, &case.hyper, &mut np[i], g[i], &mut nv[i], &mut nu[i]);
        }
        for i in 0..p.len() {
            prop_assert_same!(p[i], np[i], "param {i} after step {}", t + 1);
            prop_assert_same!(v[i], nv[i], "square_avg {i} after step {}", t + 1);
            prop_assert_same!(u[i], nu[i], "acc_delta {i} after step {}", t + 1);
        }
    }
    Ok(())
}

proptest! {
    // Each case is at most 6 elements x 5 steps x ~15 MPFR ops at 24 bits
    // (about 20 us): 100 000 cases take a few seconds.
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn fused_matches_native(case in case()) {
        check(&case, MulAdd::Fused)?;
    }

    #[test]
    fn unfused_matches_native(case in case()) {
        check(&case, MulAdd::Unfused)?;
    }

    /// The optimizer (lazy zero state, `None` gradients skipped) is the free
    /// `step` on the tensors that have gradients.
    #[test]
    fn optimizer_matches_native(case in case(), skip in any::<bool>()) {
        let arith = Binary32 { mul_add: MulAdd::Fused };
        let n = case.params.len();
        let mut opt = Adadelta::new(arith, case.hyper, vec![case.params.clone(), case.params.clone()]);
        let mut np = case.params.clone();
        let (mut nv, mut nu) = (vec![0.0f32; n], vec![0.0f32; n]);
        for g in &case.grads {
            opt.step(&[Some(g.as_slice()), if skip { None } else { Some(g.as_slice()) }]);
            for i in 0..n {
                native_step(true, &case.hyper, &mut np[i], g[i], &mut nv[i], &mut nu[i]);
            }
        }
        let steps = case.grads.len() as u64;
        let s = opt.state(0).unwrap();
        prop_assert_eq!(s.step, steps);
        for i in 0..n {
            prop_assert_same!(opt.params()[0][i], np[i], "param {i}");
            prop_assert_same!(s.square_avg[i], nv[i], "square_avg {i}");
            prop_assert_same!(s.acc_delta[i], nu[i], "acc_delta {i}");
        }
        if skip {
            prop_assert!(opt.state(1).is_none());
            prop_assert!(opt.params()[1].iter().zip(&case.params).all(|(a, b)| same(*a, *b)));
        } else {
            let (s0, s1) = (opt.state(0).unwrap(), opt.state(1).unwrap());
            prop_assert_eq!(s0.step, s1.step);
            for i in 0..n {
                prop_assert_same!(opt.params()[1][i], opt.params()[0][i], "param {i}");
                prop_assert_same!(s1.square_avg[i], s0.square_avg[i], "square_avg {i}");
                prop_assert_same!(s1.acc_delta[i], s0.acc_delta[i], "acc_delta {i}");
            }
        }
        // Resuming from a snapshot continues identically.
        let (params, states) = opt.clone().into_parts();
        let mut resumed = Adadelta::from_state(arith, case.hyper, params, states);
        let g = &case.grads[0];
        opt.step(&[Some(g), Some(g)]);
        resumed.step(&[Some(g), Some(g)]);
        prop_assert_eq!(resumed.state(0).map(|s| s.step), Some(steps + 1));
        for (a, b) in opt.params()[0].iter().zip(&resumed.params()[0]) {
            prop_assert_same!(*a, *b, "resumed");
        }
        let _: Option<&ParamState<f32>> = resumed.state(1);
    }
}
