//! The whole Adadelta step in [`Binary64`]: bit for bit a plain scalar `f64`
//! implementation, within a derived bound of a 256-bit [`HighPrecision`] step
//! and trajectory, and a hand-checked case.

mod common;

use adadelta_reference::rug::Float;
use adadelta_reference::{
    step, ulp_error_in, Adadelta, Arithmetic, Binary64, HighPrecision, Hyperparams, MulAdd,
    ParamState,
};
use common::{interesting_f64, native_step};
use proptest::prelude::*;

/// Error of the finite `x` against the finite exact value `exact`, in binary64
/// ULPs at `exact` ([`ulp_error_in`]).
fn ulp_error_f64(x: f64, exact: &Float) -> f64 {
    assert!(x.is_finite() && exact.is_finite(), "{x:e} vs {exact}");
    ulp_error_in(x, exact)
}

/// NaN class, else bits.
fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn hyperparams() -> impl Strategy<Value = Hyperparams> {
    (
        prop_oneof![
            prop::sample::select(&[0.0, 1.0, 0.37, 1e-3, 1e300][..]),
            0.0..10.0
        ],
        prop_oneof![
            prop::sample::select(&[0.0, 1.0, 0.9, 0.999_999_9, 1e-9][..]),
            0.0..1.0
        ],
        // eps: 0, defaults, a subnormal eps.
        prop_oneof![
            prop::sample::select(&[0.0, 1e-6, 1e-8, 1e-310, 1.0][..]),
            0.0..1e-2
        ],
        prop_oneof![
            prop::sample::select(&[0.0, -0.0, 0.1, 1e-4, 1e-320][..]),
            0.0..1.0
        ],
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

/// Mostly the corners of binary64, with ordinary values so that many
/// trajectories stay finite for several steps.
fn element() -> impl Strategy<Value = f64> {
    prop_oneof![3 => interesting_f64(), 2 => -10.0f64..10.0]
}

proptest! {
    // Each case is at most 4 elements x 4 steps x ~15 MPFR ops at 53 bits.
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Native `f64` ops are correctly rounded on x86-64 and aarch64, so the
    /// step agrees bit for bit; NaNs by class only (Rust promises no NaN
    /// bits; the NaN rules are `binary64_ops.rs`'s).
    #[test]
    fn binary64_steps_match_a_native_f64_implementation_bit_for_bit(
        hyper in hyperparams(),
        fused in any::<bool>(),
        (p, v, u, grads) in (1usize..=4).prop_flat_map(|n| (
            prop::collection::vec(element(), n),
            prop_oneof![Just(vec![0.0; n]), prop::collection::vec(element(), n)],
            prop_oneof![Just(vec![0.0; n]), prop::collection::vec(element(), n)],
            prop::collection::vec(prop::collection::vec(element(), n), 1..=4),
        )),
    ) {
        let arith = Binary64 { mul_add: if fused { MulAdd::Fused } else { MulAdd::Unfused } };
        let (mut p, mut v, mut u) = (p, v, u);
        let (mut np, mut nv, mut nu) = (p.clone(), v.clone(), u.clone());
        for (t, g) in grads.iter().enumerate() {
            step(&arith, &hyper, &mut p, g, &mut v, &mut u);
            for i in 0..np.len() {
                native_step(fused, &hyper, &mut np[i], g[i], &mut nv[i], &mut nu[i]);
            }
            for i in 0..p.len() {
                for (name, a, b) in [("param", p[i], np[i]), ("square_avg", v[i], nv[i]), ("acc_delta", u[i], nu[i])] {
                    prop_assert!(same_f64(a, b), "{name} {i} after step {}: {a:e} ({:#018x}) != {b:e} ({:#018x})",
                        t + 1, a.to_bits(), b.to_bits());
                }
            }
        }
    }

    /// One step from the same `f64` state, moderate values.
    #[test]
    fn one_binary64_step_is_within_a_few_ulps_of_high_precision(
        hyper in (
            prop::sample::select(&[1.0, 0.37, 0.05][..]),
            prop::sample::select(&[0.9, 0.95, 0.5, 0.99][..]),
            prop::sample::select(&[1e-6, 1e-8, 1e-3][..]),
            prop::sample::select(&[0.0, 0.1, 1e-4][..]),
            any::<bool>(),
        ).prop_map(|(lr, rho, eps, weight_decay, maximize)| Hyperparams { lr, rho, eps, weight_decay, maximize }),
        fused in any::<bool>(),
        p in moderate(),
        g in moderate(),
        v in prop_oneof![Just(0.0f64), 0.0f64..10.0],
        u in prop_oneof![Just(0.0f64), 0.0f64..1e-3],
    ) {
        let mul_add = if fused { MulAdd::Fused } else { MulAdd::Unfused };
        let state = ParamState { step: 3, square_avg: vec![v], acc_delta: vec![u] };
        let mut f = Adadelta::from_state(Binary64 { mul_add }, hyper, vec![vec![p]], vec![Some(state)]);
        f.step(&[Some(vec![g])]);
        let hp = HighPrecision::default();
        let hp_state = ParamState { step: 3, square_avg: vec![hp.convert_f64(v)], acc_delta: vec![hp.convert_f64(u)] };
        let mut h = Adadelta::from_state(hp, hyper, vec![vec![hp.convert_f64(p)]], vec![Some(hp_state)]);
        h.step(&[Some(vec![hp.convert_f64(g)])]);
        let (fs, hs) = (f.state(0).unwrap(), h.state(0).unwrap());
        let (fp, hpv) = (f.params()[0][0], &h.params()[0][0]);

        // Only where weight decay does not cancel the gradient: the rounding
        // of wd*p (1u) is then at most 1u of g' = ±g + wd*p.
        let wd_p = Float::with_val(256, hp.convert_f64(hyper.weight_decay) * hp.convert_f64(p));
        let g_exact = Float::with_val(256, if hyper.maximize { -g } else { g }) + &wd_p;
        if wd_p.cmp_abs(&g_exact).is_some_and(|o| o.is_gt()) {
            return Ok(());
        }

        // Error budget in u = 2^-53, the largest relative error of one binary64
        // rounding (a relative error k*u is at most k ULPs at the exact value X,
        // since ulp(X) >= |X| u for normal X). Unlike binary32, the scalars
        // rho, eps, wd, -lr are exact (the Python floats); c = f64(1 - rho) is
        // within 1u. Every op adds at most 1u. Counting the unfused kernels
        // (one more rounding per multiply-add than fused):
        //   g' = g + f64(wd p): product 1u on |wd p| <= |g'|, + 1u: 2u.
        //   v' = s + f64(f64(c g') g'), s = f64(v rho): c g'^2 term
        //        1 + 2*2 + 1 + 1 = 7u, s 1u, both >= 0, sum 1u: 8u.
        //   std = sqrt(f64(v' + eps)): (8 + 1)/2 + 1 = 5.5u.
        //   sqrt(f64(u + eps)): 1/2 + 1 = 1.5u.
        //   delta = f64(f64(d / std) * g'): 5.5 + 1.5 + 1 + 2 + 1 = 11u.
        //   u' (as v'): c delta^2 term 1 + 2*11 + 1 + 1 = 25u, u rho 1u,
        //        sum 1u: 26u.
        // Second-order terms are about 26^2 u^2 < 2^-96: negligible.
        let (ev, eu) = (ulp_error_f64(fs.square_avg[0], &hs.square_avg[0]), ulp_error_f64(fs.acc_delta[0], &hs.acc_delta[0]));
        prop_assert!(ev <= 8.01, "square_avg: {} ULPs", ev);
        prop_assert!(eu <= 26.01, "acc_delta: {} ULPs", eu);
        // p' = p + f64(-lr * delta): lr*delta within 11 + 1 (product) = 12u,
        // plus the final rounding (half an ulp of p'): at most
        // 0.5 + 12 lr|delta| / |p'| ULPs, i.e. 12.5 where
        // lr|delta| = |p' - p| <= |p'| (checked only there).
        let moved = Float::with_val(256, hpv - hp.convert_f64(p)).abs();
        if moved <= hpv.clone().abs() {
            let e = ulp_error_f64(fp, hpv);
            prop_assert!(e <= 12.51, "param: {} ULPs", e);
        }
    }
}

/// `|x|` in `[1e-3, 1e3]` of either sign (not representable in `f32`, in
/// general).
fn moderate() -> impl Strategy<Value = f64> {
    (-3.0f64..3.0, any::<bool>()).prop_map(|(e, s)| {
        let x = 10f64.powf(e);
        if s {
            -x
        } else {
            x
        }
    })
}

/// A 20-step trajectory in binary64 stays within 1024 binary64 ULPs of the
/// 256-bit one, on deterministic inputs (params in [0.5, 3.1], gradients of
/// mixed signs spanning 1e-3 .. 10, as `precision.rs`).
#[test]
fn a_binary64_trajectory_stays_within_1024_ulps_of_high_precision() {
    const STEPS: usize = 20;
    const N: usize = 8;
    let params: Vec<f64> = (0..N).map(|i| 0.5 + 0.37 * i as f64).collect();
    let grads: Vec<Vec<f64>> = (0..STEPS)
        .map(|t| {
            (0..N)
                .map(|i| ((t + 1) as f64 * (i + 2) as f64).sin() * 10f64.powi(i as i32 % 4 - 2))
                .collect()
        })
        .collect();
    let hp = HighPrecision::default();
    let configs = [
        Hyperparams::default(),
        Hyperparams {
            lr: 0.37,
            weight_decay: 0.1,
            maximize: true,
            ..Hyperparams::default()
        },
        Hyperparams {
            lr: 0.05,
            rho: 0.95,
            eps: 1e-8,
            ..Hyperparams::default()
        },
    ];
    for hyper in configs {
        for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
            let mut f = Adadelta::new(Binary64 { mul_add }, hyper, vec![params.clone()]);
            let to_hp = |xs: &[f64]| xs.iter().map(|&x| hp.convert_f64(x)).collect::<Vec<_>>();
            let mut h = Adadelta::new(hp, hyper, vec![to_hp(&params)]);
            for g in &grads {
                f.step(&[Some(g)]);
                h.step(&[Some(to_hp(g))]);
            }
            let (fs, hs) = (f.state(0).unwrap(), h.state(0).unwrap());
            let mut worst = 0.0f64;
            for (x, exact) in f.params()[0]
                .iter()
                .chain(&fs.square_avg)
                .chain(&fs.acc_delta)
                .zip(
                    h.params()[0]
                        .iter()
                        .chain(&hs.square_avg)
                        .chain(&hs.acc_delta),
                )
            {
                worst = worst.max(ulp_error_f64(*x, exact));
            }
            // Bound, in u = 2^-53 (per rounding; k u of relative error is at
            // most k ULPs), with the per-step budget of the single-step test
            // (unfused): square_avg is a weighted average of non-negative
            // terms, so its error grows by at most 2u a step, from 8u: at most
            // (2t + 6)u = 46u at t = 20. acc_delta gains err(acc_delta) +
            // err(square_avg) + 18u a step: at most sum (2s + 24)u = 900u.
            // delta then is within 480u, and the params p_t = p_0 - lr sum
            // delta_s stay in [0.4, 3.2] without cancellation, so their error
            // is below 480u + 20 roundings of 1u. 1024 ULPs covers all three.
            assert!(
                worst <= 1024.0,
                "{hyper:?} {mul_add:?}: {worst} ULPs from 256 bits"
            );
            // And binary64 is really in use: some element is not exact.
            assert!(worst > 0.0, "{hyper:?} {mul_add:?}: all exact?");
        }
    }
}

/// Hand-checked: with `rho = 1` the state stays 0 and `delta = sqrt(eps) /
/// sqrt(eps) * g = g` exactly, so the step is `p + (-lr) g` with one rounding
/// (fused) or two (unfused). With `lr = 0.1` (not an `f32`) the Python float
/// 0.1 itself is the operand: `1 - 0.1 = 0.9` in `f64` (Python prints 0.9),
/// where binary32 would give `f32(1 - f32(0.1))`.
#[test]
fn binary64_with_rho_one_is_sgd_with_the_python_floats() {
    let hyper = Hyperparams {
        lr: 0.1,
        rho: 1.0,
        ..Hyperparams::default()
    };
    for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
        let arith = Binary64 { mul_add };
        let (mut p, mut v, mut u) = (vec![1.0f64, 3.0], vec![0.0], vec![0.0]);
        let (mut p1, g1) = (vec![p[1]], vec![0.5]);
        step(&arith, &hyper, &mut p[..1], &[1.0], &mut v, &mut u);
        assert_eq!(p[0], 0.9);
        assert_eq!((v[0], u[0]), (0.0, 0.0));
        // 3 - 0.1 * 0.5: the product is exact (a halving), the sum
        // 2.95 - 2.8e-18 rounds to the double nearest 2.95.
        let (mut v, mut u) = (vec![0.0], vec![0.0]);
        step(&arith, &hyper, &mut p1, &g1, &mut v, &mut u);
        assert_eq!(p1[0], 2.95, "{mul_add:?}");
        let s = arith.scalars(&hyper);
        assert_eq!(
            (s.rho, s.one_minus_rho, s.neg_lr, s.eps),
            (1.0, 0.0, -0.1, 1e-6)
        );
    }
}
