//! Binary32 against HighPrecision on one step from the same `f32` state:
//! both arithmetics run the same algorithm, so in the normal range the f32
//! step is within a few ULPs of the 256-bit one.

mod common;

use adadelta_reference::rug::Float;
use adadelta_reference::{
    ulp_error, Adadelta, Arithmetic, Binary32, HighPrecision, Hyperparams, MulAdd, ParamState,
};
use proptest::prelude::*;

fn hyper() -> impl Strategy<Value = Hyperparams> {
    (
        prop::sample::select(&[1.0, 0.37, 0.05][..]),
        prop::sample::select(&[0.9, 0.95, 0.5, 0.99][..]),
        prop::sample::select(&[1e-6, 1e-8, 1e-3][..]),
        prop::sample::select(&[0.0, 0.1, 1e-4][..]),
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

/// `|x|` in `[1e-3, 1e3]` of either sign.
fn moderate() -> impl Strategy<Value = f32> {
    (-3.0f64..3.0, any::<bool>()).prop_map(|(e, s)| {
        let x = 10f64.powf(e) as f32;
        if s {
            -x
        } else {
            x
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn one_f32_step_is_within_a_few_ulps_of_high_precision(
        hyper in hyper(),
        fused in any::<bool>(),
        p in moderate(),
        g in moderate(),
        v in prop_oneof![Just(0.0f32), 0.0f32..10.0],
        u in prop_oneof![Just(0.0f32), 0.0f32..1e-3],
    ) {
        let mul_add = if fused { MulAdd::Fused } else { MulAdd::Unfused };
        let state = ParamState { step: 3, square_avg: vec![v], acc_delta: vec![u] };
        let mut f = Adadelta::from_state(Binary32 { mul_add }, hyper, vec![vec![p]], vec![Some(state.clone())]);
        f.step(&[Some(vec![g])]);
        let hp = HighPrecision::default();
        let mut h = Adadelta::from_f32_state(hp, hyper, &[vec![p]], &[Some(state)]);
        h.step(&[Some(hp.from_f32_slice(&[g]))]);
        let (fs, hs) = (f.state(0).unwrap(), h.state(0).unwrap());
        let (fp, hpv) = (f.params()[0][0], &h.params()[0][0]);

        // Only where weight decay does not cancel the gradient: the error of
        // wd32 (1u) is then at most 1u of g' = ±g + wd*p.
        let wd_p = Float::with_val(256, hp.from_f64(hyper.weight_decay) * Float::with_val(24, p));
        let g_exact = Float::with_val(256, if hyper.maximize { -g } else { g }) + &wd_p;
        if wd_p.cmp_abs(&g_exact).is_some_and(|o| o.is_gt()) {
            return Ok(());
        }

        // Error budget in u = 2^-24, the largest relative error of one binary32
        // rounding (a relative error k*u is at most k ULPs at the exact value X,
        // since ulp(X) >= |X| u for normal X). The f32 scalars rho32,
        // c = f32(f64(1 - rho)), eps32, wd32, nlr each are within 1u (c: 1u +
        // 2^-53) of the exact ones; every op adds at most 1u.
        //   g' = fma(p, wd32, g): 1u (wd32) + 1u = 2u.
        //   v' = fma(f32(c g'), g', f32(v rho32)): c g'^2 term 1 + 2*2 + 1 = 6u,
        //        v rho term 2u, both >= 0, fma 1u: 7u.
        //   std = sqrt(f32(v' + eps32)): (7 + 1)/2 + 1 = 5u.
        //   sqrt(f32(u + eps32)): (1 + 1)/2 + 1 = 2u.
        //   delta = f32(f32(d / std) * g'): 5 + 2 + 1 + 2 + 1 = 11u.
        //   u' = fma(f32(c delta), delta, f32(u rho32)): 1 + 2*11 + 1 = 24u,
        //        u rho term 2u, fma 1u: 25u.
        // Second-order terms are about 25^2 u^2 < 2^-38: below 0.01 ULP.
        let (ev, eu) = (ulp_error(fs.square_avg[0], &hs.square_avg[0]), ulp_error(fs.acc_delta[0], &hs.acc_delta[0]));
        prop_assert!(ev <= 7.01, "square_avg: {} ULPs", ev);
        prop_assert!(eu <= 25.01, "acc_delta: {} ULPs", eu);
        // p' = fma(delta, nlr, p): lr*delta within 11 + 1 = 12u, plus the final
        // rounding (half an ulp of p'): at most 0.5 + 12 lr|delta| / |p'| ULPs,
        // i.e. 12.5 where lr|delta| = |p' - p| <= |p'| (checked only there).
        let moved = Float::with_val(256, hpv - Float::with_val(24, p)).abs();
        if moved <= hpv.clone().abs() {
            let e = ulp_error(fp, hpv);
            prop_assert!(e <= 12.51, "param: {} ULPs", e);
        }
    }
}
