//! The optimizer's bookkeeping: `None` gradients, lazy state, step counts,
//! resuming from a state, the documented panics.

use adadelta_reference::rug::Float;
use adadelta_reference::{
    step, Adadelta, Arithmetic, Binary32, HighPrecision, Hyperparams, MulAdd, ParamState,
};

#[test]
fn none_grad_skips_param_and_creates_no_state() {
    let hp = HighPrecision::new(64);
    let params = vec![
        hp.convert_f32_slice(&[1.0, 2.0]),
        hp.convert_f32_slice(&[3.0]),
    ];
    let mut opt = Adadelta::new(hp, Hyperparams::default(), params.clone());
    assert!(opt.state(0).is_none() && opt.state(1).is_none());

    opt.step::<Vec<Float>>(&[None, None]);
    assert!(opt.state(0).is_none() && opt.state(1).is_none());
    assert_eq!(opt.params(), &params[..]);

    opt.step(&[None, Some(hp.convert_f32_slice(&[0.5]))]);
    assert!(opt.state(0).is_none());
    assert_eq!(opt.params()[0], params[0]);
    assert_eq!(opt.state(1).unwrap().step, 1);
    assert_ne!(opt.params()[1], params[1]);

    opt.step(&[
        Some(hp.convert_f32_slice(&[0.5, 0.5])),
        Some(hp.convert_f32_slice(&[0.5])),
    ]);
    assert_eq!(opt.state(0).unwrap().step, 1);
    assert_eq!(opt.state(1).unwrap().step, 2);
    assert_eq!(opt.states().len(), 2);
}

/// The optimizer's step on a fresh parameter is the free `step` on zero state.
#[test]
fn optimizer_step_is_free_step_on_zero_state() {
    let b = Binary32 {
        mul_add: MulAdd::Fused,
    };
    let hyper = Hyperparams {
        lr: 0.37,
        weight_decay: 0.1,
        ..Hyperparams::default()
    };
    let (p0, g) = (vec![1.0f32, -2.0, 0.3], vec![0.1f32, 5.0, -7.0]);
    let mut opt = Adadelta::new(b, hyper, vec![p0.clone()]);
    opt.step(&[Some(&g[..])]);
    let (mut p, mut v, mut u) = (p0, vec![0.0; 3], vec![0.0; 3]);
    step(&b, &hyper, &mut p, &g, &mut v, &mut u);
    assert_eq!(opt.params()[0], p);
    assert_eq!(
        opt.state(0),
        Some(&ParamState {
            step: 1,
            square_avg: v,
            acc_delta: u
        })
    );
}

/// Lifting an f32 run's state to HighPrecision is exact, and the lifted
/// optimizer continues from it.
#[test]
fn from_f32_state_lifts_exactly() {
    let b = Binary32 {
        mul_add: MulAdd::Fused,
    };
    let hyper = Hyperparams::default();
    let mut f32_opt = Adadelta::new(b, hyper, vec![vec![1.0f32, -2.0], vec![4.0]]);
    for _ in 0..3 {
        f32_opt.step(&[Some(vec![0.25f32, -1.0]), None]);
    }
    let hp = HighPrecision::default();
    let (params, states) = f32_opt.clone().into_parts();
    let mut hp_opt = Adadelta::from_f32_state(hp, hyper, &params, &states);
    let s = hp_opt.state(0).unwrap();
    let f = f32_opt.state(0).unwrap();
    assert_eq!(s.step, 3);
    assert!(hp_opt.state(1).is_none());
    for i in 0..2 {
        assert_eq!(hp_opt.params()[0][i], f32_opt.params()[0][i]);
        assert_eq!(s.square_avg[i], f.square_avg[i]);
        assert_eq!(s.acc_delta[i], f.acc_delta[i]);
    }
    hp_opt.step(&[
        Some(hp.convert_f32_slice(&[0.25, -1.0])),
        Some(hp.convert_f32_slice(&[1.0])),
    ]);
    assert_eq!(hp_opt.state(0).unwrap().step, 4);
    assert_eq!(hp_opt.state(1).unwrap().step, 1);
    assert_eq!(*hp_opt.hyper(), hyper);
    assert_eq!(hp_opt.arith().prec(), 256);
}

#[test]
#[should_panic(expected = "one gradient (or None) per parameter")]
fn step_panics_on_wrong_number_of_grads() {
    let mut opt = Adadelta::new(
        Binary32 {
            mul_add: MulAdd::Fused,
        },
        Hyperparams::default(),
        vec![vec![1.0f32]],
    );
    opt.step(&[Some(vec![1.0f32]), None]);
}

#[test]
#[should_panic(expected = "grad and param lengths differ")]
fn step_panics_on_wrong_grad_length() {
    let mut opt = Adadelta::new(
        Binary32 {
            mul_add: MulAdd::Fused,
        },
        Hyperparams::default(),
        vec![vec![1.0f32]],
    );
    opt.step(&[Some(vec![1.0f32, 2.0])]);
}

#[test]
#[should_panic(expected = "square_avg length of param 0")]
fn from_state_panics_on_wrong_state_length() {
    let state = ParamState {
        step: 1,
        square_avg: vec![0.0f32; 2],
        acc_delta: vec![0.0f32],
    };
    Adadelta::from_state(
        Binary32 {
            mul_add: MulAdd::Fused,
        },
        Hyperparams::default(),
        vec![vec![1.0f32]],
        vec![Some(state)],
    );
}

#[test]
#[should_panic(expected = "one state (or None) per parameter")]
fn from_state_panics_on_wrong_number_of_states() {
    Adadelta::from_state(
        Binary32 {
            mul_add: MulAdd::Fused,
        },
        Hyperparams::default(),
        vec![vec![1.0f32]],
        vec![],
    );
}

#[test]
fn defaults_are_torch_defaults() {
    let h = Hyperparams::default();
    assert_eq!(
        (h.lr, h.rho, h.eps, h.weight_decay, h.maximize),
        (1.0, 0.9, 1e-6, 0.0, false)
    );
    assert_eq!(HighPrecision::default().prec(), 256);
}

/// The Binary32 scalars are PyTorch's conversions (see `binary32`'s "PyTorch's kernels"), e.g.
/// `c = f32(1.0 - 0.9)` computed in f64 differs from `1 - f32(0.9)`.
#[test]
fn binary32_scalars() {
    let k = Binary32 {
        mul_add: MulAdd::Fused,
    }
    .scalars(&Hyperparams {
        lr: 0.1,
        weight_decay: 1e-40,
        ..Hyperparams::default()
    });
    assert_eq!(k.rho, 0.9f32);
    assert_eq!(k.one_minus_rho, (1.0f64 - 0.9) as f32);
    assert_ne!(k.one_minus_rho, 1.0 - 0.9f32);
    assert_eq!(k.eps, 1e-6f32);
    assert_eq!(k.neg_lr, -0.1f32);
    assert_eq!(k.weight_decay, 1e-40f64 as f32); // a subnormal
    let hp = HighPrecision::new(64);
    let k = hp.scalars(&Hyperparams::default());
    assert_eq!(k.rho, 0.9f64); // exact f64 value, not decimal 0.9
    assert_eq!(k.neg_lr, -1.0);
    assert_eq!(
        k.one_minus_rho,
        Float::with_val(64, 1 - Float::with_val(53, 0.9f64))
    );
}
