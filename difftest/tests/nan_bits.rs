//! The sign and payload of every NaN: the MPFR reference's binary32
//! emulation gives the NaN bits real `torch.optim.Adadelta` (2.13, x86-64,
//! this machine's default AVX2/AVX-512 kernels) gives, bit for bit, on
//! inputs built to make NaNs every way an Adadelta step can: NaN gradients,
//! parameters and state of both signs, with payloads, quiet and signalling;
//! `inf - inf` and `0 * inf` (invalid: x86's default NaN `0xffc00000`);
//! `sqrt` of a negative (oneMKL's `0x7fc00000`); `maximize`'s sign flip;
//! weight decay; `eps = 0` (`0/0`); `rho` 0 and 1.
//!
//! The fast crate's NaN bits are not promised (see `nan_bits` in
//! `adadelta_difftest::accuracy` and `fast/docs/numerics.md`, "NaN bits"):
//! its NaNs are NaN exactly where PyTorch's are, and quiet.

use adadelta_difftest::accuracy::{reference_vs_pytorch_nan_rule, NanBits};
use adadelta_difftest::case::{Case, Hyper, Trajectory};
use adadelta_difftest::implementations::{run_fast, run_reference};
use adadelta_difftest::pytorch::run_pytorch;
use adadelta_reference::MulAdd;
use std::collections::BTreeSet;

/// Values whose combinations make every kind of NaN.
const VALUES: [u32; 13] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x3f80_0000, // 1
    0xbf80_0000, // -1 (a negative acc_delta: sqrt of a negative)
    0x7f7f_ffff, // f32::MAX (its square overflows)
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7fc0_0000, // the quiet NaN of Python's float('nan')
    0xffc0_0000, // x86's default NaN
    0x7fc1_2345, // a quiet NaN with a payload
    0xffd0_0001, // a negative quiet NaN with a payload
    0x7f80_0001, // a signalling NaN
    0xff81_2345, // a negative signalling NaN with a payload
];

/// Hyperparameters that move NaNs through every op: the defaults,
/// weight decay, maximize (the sign flip), eps = 0 (0/0), rho = 1 (c = 0,
/// so 0 * inf) and rho = 0 with lr = 0.
fn hypers() -> Vec<Hyper> {
    let h = Hyper::default();
    vec![
        h,
        Hyper {
            weight_decay: 0.1,
            ..h
        },
        Hyper {
            maximize: true,
            ..h
        },
        Hyper {
            lr: 0.5,
            weight_decay: 0.25,
            maximize: true,
            ..h
        },
        Hyper { eps: 0.0, ..h },
        Hyper {
            eps: 0.0,
            weight_decay: 0.5,
            maximize: true,
            ..h
        },
        Hyper { rho: 1.0, ..h },
        Hyper {
            lr: 0.0,
            rho: 0.0,
            ..h
        },
    ]
}

/// One case per hyperparameter set: every (param, grad 1, grad 2) of
/// [`VALUES`] over three steps (the third repeats grad 1), so that NaN and
/// inf reach the state and come back out of it. Parameter 0 holds all 2197
/// combinations (ATen's vector body and its scalar tail); parameter 1 the
/// first 7, all in the scalar tail (a tensor shorter than two vectors).
fn cases() -> Vec<Case> {
    let f = |b: u32| f32::from_bits(b);
    let mut p = Vec::new();
    let (mut g1, mut g2) = (Vec::new(), Vec::new());
    for &a in &VALUES {
        for &b in &VALUES {
            for &c in &VALUES {
                p.push(f(a));
                g1.push(f(b));
                g2.push(f(c));
            }
        }
    }
    // The first 7 combinations with a NaN in them (p = +0: grads vary).
    let short = |v: &[f32]| v[VALUES.len() * 7..VALUES.len() * 7 + 7].to_vec();
    hypers()
        .into_iter()
        .enumerate()
        .map(|(i, hyper)| Case {
            name: format!("nan bits {i}"),
            hyper,
            params: vec![p.clone(), short(&p)],
            grads: vec![
                vec![Some(g1.clone()), Some(short(&g1))],
                vec![Some(g2.clone()), Some(short(&g2))],
                vec![Some(g1.clone()), Some(short(&g1))],
            ],
        })
        .collect()
}

/// Every output element (params and state after every step) as
/// `(what, step, param, index, a, b)`.
fn pairs<'a>(
    a: &'a Trajectory,
    b: &'a Trajectory,
) -> Vec<(&'static str, usize, usize, usize, f32, f32)> {
    let mut out = Vec::new();
    for (t, (sa, sb)) in a.iter().zip(b).enumerate() {
        let tensors = [
            (
                "param",
                sa.params.iter().map(Some).collect::<Vec<_>>(),
                sb.params.iter().map(Some).collect::<Vec<_>>(),
            ),
            (
                "square_avg",
                sa.square_avg.iter().map(Option::as_ref).collect(),
                sb.square_avg.iter().map(Option::as_ref).collect(),
            ),
            (
                "acc_delta",
                sa.acc_delta.iter().map(Option::as_ref).collect(),
                sb.acc_delta.iter().map(Option::as_ref).collect(),
            ),
        ];
        for (what, xs, ys) in tensors {
            for (i, (x, y)) in xs.into_iter().zip(ys).enumerate() {
                let (x, y) = match (x, y) {
                    (Some(x), Some(y)) => (x, y),
                    (None, None) => continue, // a parameter that never had a gradient
                    _ => panic!("step {t}: {what} of param {i} exists in only one trajectory"),
                };
                assert_eq!(x.len(), y.len());
                for (k, (&x, &y)) in x.iter().zip(y).enumerate() {
                    out.push((what, t, i, k, x, y));
                }
            }
        }
    }
    out
}

#[test]
fn the_reference_gives_every_nan_the_sign_and_payload_pytorch_gives_it() {
    let cases = cases();
    let torch = run_pytorch(&cases).expect("running torch.optim.Adadelta");
    let mut patterns = BTreeSet::new();
    let mut nans = 0usize;
    let mut tail_differs = 0usize;
    for (case, torch) in cases.iter().zip(&torch) {
        let reference = run_reference(case, MulAdd::Fused);
        for (what, t, i, k, r, p) in pairs(&reference, torch) {
            // Finite and infinite elements are the accuracy tests' business
            // (the reference's sqrt is IEEE, torch's is oneMKL's); every
            // element that is NaN in either must have the same bits in both.
            if r.is_nan() || p.is_nan() {
                // Exact, but by class at PyTorch's own path-dependent
                // positions (accuracy::pytorch_mul_takes_deltas_nan).
                let rule = reference_vs_pytorch_nan_rule(case.params[i].len(), k);
                assert!(
                    rule.same(r, p),
                    "{}: {what}[{i}][{k}] after step {}: reference {:#010x}, torch {:#010x}",
                    case.name,
                    t + 1,
                    r.to_bits(),
                    p.to_bits()
                );
                nans += 1;
                patterns.insert(p.to_bits());
                tail_differs += (r.to_bits() != p.to_bits()) as usize;
            }
        }
    }
    // The inputs reach what they were built for: both default NaNs and
    // propagated payloads of both signs.
    for b in [
        0x7fc0_0000,
        0xffc0_0000,
        0x7fc1_2345,
        0xffd0_0001,
        0x7fc0_0001,
        0xffc1_2345,
    ] {
        assert!(
            patterns.contains(&b),
            "no NaN {b:#010x} among {patterns:x?}"
        );
    }
    assert!(nans > 10_000, "only {nans} NaNs");
    // The exception is real: at those positions PyTorch's bits differ.
    assert!(tail_differs > 0, "no tail position took delta's NaN");
}

#[test]
fn fast_gives_a_quiet_nan_exactly_where_pytorch_gives_a_nan() {
    let cases = cases();
    let torch = run_pytorch(&cases).expect("running torch.optim.Adadelta");
    for (case, torch) in cases.iter().zip(&torch) {
        let fast = run_fast(case);
        for (what, t, i, k, f, p) in pairs(&fast, torch) {
            if f.is_nan() || p.is_nan() {
                assert!(
                    NanBits::QuietAnyPayload.same(f, p),
                    "{}: {what}[{i}][{k}] after step {}: fast {:#010x}, torch {:#010x}",
                    case.name,
                    t + 1,
                    f.to_bits(),
                    p.to_bits()
                );
            }
        }
    }
}
