//! Precision convergence of [`HighPrecision`]: a 20-step trajectory at `p`
//! bits agrees with the same trajectory at `2p` bits to about `p` bits.

use adadelta_reference::rug::Float;
use adadelta_reference::{Adadelta, Arithmetic, HighPrecision, Hyperparams};

const STEPS: usize = 20;
const N: usize = 8;

/// Deterministic `f32` inputs: params in [0.5, 3.1], gradients of mixed signs
/// spanning 1e-3 .. 10.
fn inputs() -> (Vec<f32>, Vec<Vec<f32>>) {
    let params = (0..N).map(|i| 0.5 + 0.37 * i as f32).collect();
    let grads = (0..STEPS)
        .map(|t| {
            (0..N)
                .map(|i| {
                    let x = ((t + 1) as f64 * (i + 2) as f64).sin() * 10f64.powi(i as i32 % 4 - 2);
                    x as f32
                })
                .collect()
        })
        .collect();
    (params, grads)
}

/// Every param, square_avg and acc_delta after the trajectory.
fn trajectory(prec: u32, hyper: Hyperparams) -> Vec<Float> {
    let hp = HighPrecision::new(prec);
    let (params, grads) = inputs();
    let mut opt = Adadelta::new(hp, hyper, vec![hp.convert_f32_slice(&params)]);
    for g in &grads {
        opt.step(&[Some(hp.convert_f32_slice(g))]);
    }
    let s = opt.state(0).unwrap();
    opt.params()[0]
        .iter()
        .chain(&s.square_avg)
        .chain(&s.acc_delta)
        .cloned()
        .collect()
}

/// The largest `|a - b| / |b|`, as log2.
fn max_rel_diff_log2(a: &[Float], b: &[Float]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let d = Float::with_val(64, Float::with_val(2048, a - b) / b).abs();
            if d.is_zero() {
                f64::NEG_INFINITY
            } else {
                d.log2().to_f64()
            }
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

#[test]
fn p_and_2p_agree_to_about_p_bits() {
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
        for prec in [64u32, 128, 256] {
            let lo = trajectory(prec, hyper);
            let hi = trajectory(2 * prec, hyper);
            let bits = -max_rel_diff_log2(&lo, &hi);
            // Bound: relative difference <= 2^(12 - p). Why 12: with e = 2^-p
            // the relative error of one rounding, one step adds at most 4e to
            // square_avg (a weighted average: its relative error does not grow
            // otherwise), delta has rel. error <= (err(u) + err(v)) / 2 + 5e,
            // so acc_delta gains at most err(u) + err(v) + 13e per step:
            // err(v_t) <= 4te, err(u_t) <= sum_{s<=t} (4s + 13) e = 2t^2 + 15t
            // = 1100e at t = 20. The params p_t = p_0 - lr sum delta_s stay in
            // [0.4, 3.2] (no cancellation), so their error is below err(delta)
            // summed, again < 2^11 e. The 2p-bit run adds 2^-2p. One bit of
            // margin: 2^12.
            assert!(
                bits >= f64::from(prec) - 12.0,
                "{hyper:?}: {prec} vs {} bits agree to only {bits:.1} bits",
                2 * prec
            );
            // The precision is really used: sqrt(eps) and the divisions are
            // inexact at any precision, so a p-bit run cannot reproduce the
            // 2p-bit one to 2p bits (less than 40 bits beyond p would mean
            // most roundings were skipped).
            assert!(
                bits < f64::from(prec) + 40.0,
                "{hyper:?}: {prec} vs {} bits agree to {bits:.1} bits: precision ignored?",
                2 * prec
            );
        }
    }
}
