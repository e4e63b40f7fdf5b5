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
        h.step(&[Some(hp.convert_f32_slice(&[g]))]);
        let (fs, hs) = (f.state(0).unwrap(), h.state(0).unwrap());
        let (fp, hpv) = (f.params()[0][0], &h.params()[0][0]);

        // Only where weight decay does not cancel the gradient: the error of
        // wd32 (1u) is then at most 1u of g' = ±g + wd*p.
        let wd_p = Float::with_val(256, hp.convert_f64(hyper.weight_decay) * Float::with_val(24, p));
        let g_exact = Float::with_val(256, if hyper.maximize { -g } else { g }) + &wd_p;
        if wd_p.cmp_abs(&g_exact).is_some_and(|o| o.is_gt()) {
            return Ok(());
        }

        // Error budget in u = 2^-24, the largest relative error of one binary32
        // rounding (a relative error k*u is at most k ULPs at the exact value X,
        // since ulp(X) >= |X| u for normal X). The f32 scalars rho32,
        // c = f32(f64(1 - rho)), eps32, wd32, nlr each are within 1u (c: 1u +
        // 2^-53) of the exact ones; every op adds at most 1u. Counting the
        // unfused kernels (one more rounding per multiply-add than fused):
        //   g' = g + f32(wd32 p): wd32 1u + product 1u on |wd p| <= |g'|, + 1u: 3u.
        //   v' = s + f32(f32(c g') g'), s = f32(v rho32): c g'^2 term
        //        1 + 2*3 + 1 + 1 = 9u, s 2u, both >= 0, sum 1u: 10u.
        //   std = sqrt(f32(v' + eps32)): (10 + 1 + 1)/2 + 1 = 7u.
        //   sqrt(f32(u + eps32)): (1 + 1)/2 + 1 = 2u.
        //   delta = f32(f32(d / std) * g'): 7 + 2 + 1 + 3 + 1 = 14u.
        //   u' (as v'): c delta^2 term 1 + 2*14 + 1 + 1 = 31u, u rho32 2u,
        //        sum 1u: 32u.
        // Second-order terms are about 32^2 u^2 < 2^-38: below 0.01 ULP.
        let (ev, eu) = (ulp_error(fs.square_avg[0], &hs.square_avg[0]), ulp_error(fs.acc_delta[0], &hs.acc_delta[0]));
        prop_assert!(ev <= 10.01, "square_avg: {} ULPs", ev);
        prop_assert!(eu <= 32.01, "acc_delta: {} ULPs", eu);
        // p' = p + f32(nlr * delta): lr*delta within 14 + 1 (nlr) + 1 (product)
        // = 16u, plus the final rounding (half an ulp of p'): at most
        // 0.5 + 16 lr|delta| / |p'| ULPs, i.e. 16.5 where
        // lr|delta| = |p' - p| <= |p'| (checked only there).
        let moved = Float::with_val(256, hpv - Float::with_val(24, p)).abs();
        if moved <= hpv.clone().abs() {
            let e = ulp_error(fp, hpv);
            prop_assert!(e <= 16.51, "param: {} ULPs", e);
        }
    }
}
