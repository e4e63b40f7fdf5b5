//! Closed forms and degenerate hyperparameters.
//!
//! * First step from zero state, in [`HighPrecision`], against the closed
//!   form `v1 = (1-rho) g^2`, `delta = sqrt(eps) / sqrt(v1 + eps) * g`,
//!   `u1 = (1-rho) delta^2`, `p1 = p - lr * delta`, evaluated at 1024 bits.
//! * `rho = 0`, `rho = 1`, `lr = 0`, `eps = 0` (with zero and nonzero
//!   gradients), exactly, in both arithmetics.

use adadelta_reference::rug::Float;
use adadelta_reference::{
    binary32, step, Adadelta, Arithmetic, Binary32, HighPrecision, Hyperparams, MulAdd,
};

const REF_PREC: u32 = 1024;

/// `|got - want| <= 2^(-bits) |want|`.
fn assert_rel_close(what: &str, got: &Float, want: &Float, bits: i32) {
    let err = Float::with_val(REF_PREC, got - want).abs();
    let bound = Float::with_val(REF_PREC, want.abs_ref()) >> bits;
    assert!(
        err <= bound,
        "{what}: got {got}, want {want}: relative error 2^{:.1} > 2^-{bits}",
        (Float::with_val(64, &err / want).abs().log2()).to_f64()
    );
}

fn configs() -> Vec<Hyperparams> {
    vec![
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
        Hyperparams {
            lr: 2.0,
            rho: 0.5,
            eps: 1e-3,
            weight_decay: 1e-2,
            ..Hyperparams::default()
        },
    ]
}

#[test]
fn first_step_from_zero_state_matches_closed_form() {
    let params = [1.5f32, -0.75, 2.0, 0.6];
    let grads = [0.75f32, -1e-3, 3.5, -20.0];
    for hyper in configs() {
        for prec in [64u32, 128, 256] {
            let hp = HighPrecision::new(prec);
            let mut opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&params)]);
            opt.step(&[Some(hp.convert_f32_slice(&grads))]);
            let state = opt.state(0).unwrap();
            assert_eq!(state.step, 1);

            // The closed form, evaluated with 1024-bit operations.
            let f = |x: f64| Float::with_val(REF_PREC, x);
            let (lr, rho, eps, wd) = (
                f(hyper.lr),
                f(hyper.rho),
                f(hyper.eps),
                f(hyper.weight_decay),
            );
            let c = Float::with_val(REF_PREC, 1 - &rho);
            for i in 0..params.len() {
                let (p0, g0) = (f(f64::from(params[i])), f(f64::from(grads[i])));
                let g =
                    if hyper.maximize { -g0 } else { g0 } + Float::with_val(REF_PREC, &wd * &p0);
                let v1 = Float::with_val(REF_PREC, &c * Float::with_val(REF_PREC, g.square_ref()));
                let std = Float::with_val(REF_PREC, &v1 + &eps).sqrt();
                let delta = Float::with_val(REF_PREC, eps.sqrt_ref()) / std * &g;
                let u1 =
                    Float::with_val(REF_PREC, &c * Float::with_val(REF_PREC, delta.square_ref()));
                let p1 = p0 - Float::with_val(REF_PREC, &lr * &delta);

                // Error budget, in units of 2^-prec (each p-bit rounding to
                // nearest is a relative error <= 2^-prec): g' <= 1 (weight
                // decay), 1-rho <= 1, v1 <= 2*1 + 2 = 4; sqrt(v1+eps) <= (4+1)/2
                // + 1 = 3.5; sqrt(eps) <= 1.5; delta <= 3.5 + 1.5 + 1 (div) + 1
                // (mul) + 1 (g') = 8; u1 = c*delta^2 <= 2*8 + 2 = 18;
                // p1 = p0 - lr*delta with |lr*delta| < |p1| here (delta is at most
                // sqrt(eps/(1-rho)) < 0.05) <= 1 + 8 = 9. So every quantity is
                // within 18 * 2^-prec (plus second-order terms) < 2^(5-prec);
                // we allow 2^(6-prec) for the second-order terms and the 2^-1024
                // of the reference.
                let bits = prec as i32 - 6;
                assert_rel_close(
                    &format!("v1[{i}] {hyper:?} p={prec}"),
                    &state.square_avg[i],
                    &v1,
                    bits,
                );
                assert_rel_close(
                    &format!("u1[{i}] {hyper:?} p={prec}"),
                    &state.acc_delta[i],
                    &u1,
                    bits,
                );
                assert_rel_close(
                    &format!("p1[{i}] {hyper:?} p={prec}"),
                    &opt.params()[0][i],
                    &p1,
                    bits,
                );
            }
        }
    }
}

/// rho = 0: `square_avg = 0 * v + 1 * g * g` is exactly `g^2` rounded once
/// (exact in HighPrecision at >= 48 bits: g has 24 bits), at every step.
#[test]
fn rho_zero_square_avg_is_grad_squared() {
    let hyper = Hyperparams {
        rho: 0.0,
        ..Hyperparams::default()
    };
    let grads = [[0.5f32, -3.0, 1e-3], [7.0, 0.25, -2e-2], [-1.5, 1e3, 3e-5]];
    for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
        let b = Binary32 { mul_add };
        let (mut p, mut v, mut u) = (vec![1.0f32; 3], vec![0.0f32; 3], vec![0.0f32; 3]);
        for g in &grads {
            step(&b, &hyper, &mut p, g, &mut v, &mut u);
            for i in 0..3 {
                assert_eq!(v[i], binary32::mul(g[i], g[i]));
            }
        }
    }
    let hp = HighPrecision::new(64);
    let (mut p, mut v, mut u) = (
        hp.convert_f32_slice(&[1.0; 3]),
        vec![hp.zero(); 3],
        vec![hp.zero(); 3],
    );
    for g in &grads {
        let g = hp.convert_f32_slice(g);
        step(&hp, &hyper, &mut p, &g, &mut v, &mut u);
        for i in 0..3 {
            assert_eq!(v[i], Float::with_val(48, g[i].square_ref()));
        }
    }
}

/// rho = 1: `1 - rho = 0`, so the state stays exactly 0, `delta =
/// sqrt(eps) / sqrt(eps) * g = g` exactly, and `p <- p - lr * g` (one
/// fused rounding, or two when unfused), step after step.
#[test]
fn rho_one_is_sgd() {
    for maximize in [false, true] {
        let hyper = Hyperparams {
            rho: 1.0,
            lr: 0.37,
            maximize,
            ..Hyperparams::default()
        };
        let grads = [[0.5f32, -3.0, 1e-3, 1e30], [7.0, 0.25, -2e-2, -1e-30]];
        let sign = if maximize { -1.0f32 } else { 1.0 };
        for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
            let b = Binary32 { mul_add };
            let nlr = binary32::from_f64(-hyper.lr);
            let mut opt = Adadelta::new(b, hyper, vec![vec![1.0f32, -2.0, 3.0, 4.0]]);
            for g in &grads {
                let before = opt.params()[0].clone();
                opt.step(&[Some(g.to_vec())]);
                let s = opt.state(0).unwrap();
                for i in 0..4 {
                    assert_eq!(s.square_avg[i].to_bits(), 0, "square_avg stays +0");
                    assert_eq!(s.acc_delta[i].to_bits(), 0, "acc_delta stays +0");
                    let d = sign * g[i];
                    let want = match mul_add {
                        MulAdd::Fused => binary32::fma(d, nlr, before[i]),
                        MulAdd::Unfused => binary32::add(before[i], binary32::mul(nlr, d)),
                    };
                    assert_eq!(opt.params()[0][i], want);
                }
            }
        }
        let hp = HighPrecision::new(128);
        let mut opt = Adadelta::new(
            hp,
            hyper,
            vec![hp.convert_f32_slice(&[1.0, -2.0, 3.0, 4.0])],
        );
        for g in &grads {
            let before = opt.params()[0].clone();
            opt.step(&[Some(hp.convert_f32_slice(g))]);
            let s = opt.state(0).unwrap();
            for i in 0..4 {
                assert!(s.square_avg[i].is_zero() && s.acc_delta[i].is_zero());
                let d = Float::with_val(24, sign * g[i]);
                let want = Float::with_val(
                    128,
                    &before[i] - Float::with_val(256, &d * hp.convert_f64(hyper.lr)),
                );
                assert_eq!(opt.params()[0][i], want);
            }
        }
    }
}

/// lr = 0: `p + (-0) * delta = p` exactly, while the state evolves.
#[test]
fn lr_zero_keeps_params() {
    let hyper = Hyperparams {
        lr: 0.0,
        ..Hyperparams::default()
    };
    let p0 = vec![1.0f32, -2.0, 3e-20, 5e20];
    let g = vec![0.5f32, -3.0, 1e-3, 2.0];
    for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
        let mut opt = Adadelta::new(Binary32 { mul_add }, hyper, vec![p0.clone()]);
        for _ in 0..3 {
            opt.step(&[Some(g.clone())]);
        }
        assert_eq!(opt.params()[0], p0);
        assert!(opt.state(0).unwrap().acc_delta.iter().all(|&u| u > 0.0));
    }
    let hp = HighPrecision::default();
    let mut opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&p0)]);
    for _ in 0..3 {
        opt.step(&[Some(hp.convert_f32_slice(&g))]);
    }
    assert_eq!(opt.params()[0], hp.convert_f32_slice(&p0));
}

/// eps = 0 and a zero gradient: `std = sqrt(0 + 0) = 0` and
/// `delta = sqrt(0 + 0) = 0`, so `delta / std = 0/0 = NaN` (IEEE and MPFR),
/// `NaN * 0 = NaN`: acc_delta and the params become NaN, square_avg stays 0.
/// This is what PyTorch 2.13 does too (checked: `Adadelta([p], eps=0.0)` with
/// `p.grad = zeros(3)` gives `p = [nan, nan, nan]`,
/// `square_avg = [0, 0, 0]`, `acc_delta = [nan, nan, nan]`).
#[test]
fn eps_zero_zero_grad_gives_nan() {
    let hyper = Hyperparams {
        eps: 0.0,
        ..Hyperparams::default()
    };
    for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
        let mut opt = Adadelta::new(Binary32 { mul_add }, hyper, vec![vec![1.0f32, -2.0, 0.0]]);
        opt.step(&[Some(vec![0.0f32, -0.0, 0.0])]);
        let s = opt.state(0).unwrap();
        assert!(opt.params()[0].iter().all(|p| p.is_nan()));
        assert!(s.acc_delta.iter().all(|u| u.is_nan()));
        assert!(s.square_avg.iter().all(|&v| v == 0.0));
    }
    let hp = HighPrecision::default();
    let mut opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&[1.0, -2.0, 0.0])]);
    opt.step(&[Some(hp.convert_f32_slice(&[0.0, -0.0, 0.0]))]);
    let s = opt.state(0).unwrap();
    assert!(opt.params()[0].iter().all(|p| p.is_nan()));
    assert!(s.acc_delta.iter().all(|u| u.is_nan()));
    assert!(s.square_avg.iter().all(|v| v.is_zero()));
}

/// eps = 0 and nonzero gradients: `delta = sqrt(0) / sqrt(v) * g = 0`, so
/// acc_delta stays 0 and the params never move, while square_avg grows: with
/// eps = 0 Adadelta is stuck at its starting point (PyTorch agrees: 3 steps
/// leave `p` unchanged and `acc_delta = 0`).
#[test]
fn eps_zero_nonzero_grad_never_moves() {
    let hyper = Hyperparams {
        eps: 0.0,
        lr: 0.5,
        weight_decay: 0.1,
        ..Hyperparams::default()
    };
    let p0 = vec![1.0f32, -2.0, 3.5];
    let grads = [vec![0.5f32, -0.25, 4.0], vec![-1.0, 2.0, 1e-3]];
    for mul_add in [MulAdd::Fused, MulAdd::Unfused] {
        let mut opt = Adadelta::new(Binary32 { mul_add }, hyper, vec![p0.clone()]);
        for g in &grads {
            opt.step(&[Some(g.clone())]);
        }
        assert_eq!(opt.params()[0], p0);
        let s = opt.state(0).unwrap();
        assert!(s.acc_delta.iter().all(|&u| u == 0.0));
        assert!(s.square_avg.iter().all(|&v| v > 0.0));
    }
    let hp = HighPrecision::new(64);
    let mut opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&p0)]);
    for g in &grads {
        opt.step(&[Some(hp.convert_f32_slice(g))]);
    }
    assert_eq!(opt.params()[0], hp.convert_f32_slice(&p0));
    assert!(opt.state(0).unwrap().acc_delta.iter().all(|u| u.is_zero()));
}
