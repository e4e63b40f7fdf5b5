//! float64: the production kernel in its default numerics against the MPFR
//! reference's binary64 emulation (`Binary64`, fused multiply-adds,
//! correctly rounded sqrt), bit for bit, on every path, over several steps
//! with absent gradients and values of every class (subnormals, huge, ±0,
//! ±inf, NaN, raw bit patterns).
//!
//! fast's NaNs are compared by class and quietness only (its NaN sign and
//! payload are not determined: `fast/docs/numerics.md`, "NaN bits"); every
//! other bit, signed zeros included, must be equal. Case counts follow
//! `PROPTEST_CASES` when set.

use adadelta::kernel::{self, Executor, Isa, Job, Numerics, Threads};
use adadelta::Coefficients;
use adadelta_difftest::accuracy::NanBits;
use adadelta_difftest::case::Hyper;
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_reference::{Adadelta, Binary64, MulAdd};
use proptest::prelude::*;

/// f64 values of every class.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -4.0f64..4.0,
        1 => Just(0.0f64),
        1 => Just(-0.0f64),
        1 => (1u64..1 << 52, any::<bool>())
            .prop_map(|(b, s)| f64::from_bits(b | if s { 1 << 63 } else { 0 })),
        1 => -1e-160f64..1e-160,
        1 => prop_oneof![1e150f64..1.7e308, -1.7e308f64..-1e150],
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN)],
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

/// One case: the initial parameters, and each step's gradients (`None`:
/// absent, as a parameter whose `.grad` is `None`).
#[derive(Clone, Debug)]
struct Case {
    hyper: Hyper,
    params: Vec<Vec<f64>>,
    grads: Vec<Vec<Option<Vec<f64>>>>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        hyper(),
        prop::collection::vec(0usize..=40, 1..=3),
        1usize..=5,
    )
        .prop_flat_map(|(hyper, sizes, steps)| {
            let params: Vec<_> = sizes
                .iter()
                .map(|&n| prop::collection::vec(value(), n))
                .collect();
            let step = sizes
                .iter()
                .map(|&n| prop::option::weighted(0.85, prop::collection::vec(value(), n)))
                .collect::<Vec<_>>();
            (Just(hyper), params, prop::collection::vec(step, steps))
        })
        .prop_map(|(hyper, params, grads)| Case {
            hyper,
            params,
            grads,
        })
}

/// Quiet NaN against quiet NaN, else the same bits.
fn same(a: f64, b: f64) -> bool {
    NanBits::QuietAnyPayload.same_f64(a, b)
}

/// The case through the reference: the parameters and `(square_avg,
/// acc_delta)` of each tensor (zeros for a tensor never stepped).
fn reference(c: &Case) -> Vec<[Vec<f64>; 3]> {
    let h = &c.hyper;
    let hyper = adadelta_reference::Hyperparams {
        lr: h.lr,
        rho: h.rho,
        eps: h.eps,
        weight_decay: h.weight_decay,
        maximize: h.maximize,
    };
    let mut opt = Adadelta::new(
        Binary64 {
            mul_add: MulAdd::Fused,
        },
        hyper,
        c.params.clone(),
    );
    for g in &c.grads {
        opt.step(g);
    }
    (0..c.params.len())
        .map(|i| {
            let p = opt.params()[i].clone();
            let n = p.len();
            match opt.state(i) {
                Some(s) => [p, s.square_avg.clone(), s.acc_delta.clone()],
                None => [p, vec![0.0; n], vec![0.0; n]],
            }
        })
        .collect()
}

/// The case through `kernel::run` on `isa`, one multi-tensor call per step.
fn fast(c: &Case, isa: Isa) -> Vec<[Vec<f64>; 3]> {
    let coeffs = Coefficients::new(&c.hyper.to_fast()).unwrap();
    let exec = Executor {
        numerics: Numerics::Default,
        isa: Some(isa),
        threads: Threads::Single,
        ..Executor::default()
    };
    let mut t: Vec<[Vec<f64>; 3]> = c
        .params
        .iter()
        .map(|p| [p.clone(), vec![0.0; p.len()], vec![0.0; p.len()]])
        .collect();
    for step in &c.grads {
        let mut jobs: Vec<Job<f64>> = t
            .iter_mut()
            .zip(step)
            .filter_map(|([p, v, u], g)| {
                g.as_ref().map(|g| Job {
                    coeffs: &coeffs,
                    param: p,
                    grad: g,
                    square_avg: v,
                    acc_delta: u,
                })
            })
            .collect();
        kernel::run(&mut jobs, &exec).unwrap();
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_or(512), ..ProptestConfig::default() })]

    /// No tolerance: the same IEEE binary64 operations in the same order.
    #[test]
    fn fast_f64_equals_reference_binary64_on_every_path(c in case()) {
        let want = reference(&c);
        for isa in Isa::ALL.into_iter().filter(|i| i.is_supported()) {
            let got = fast(&c, isa);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                for (k, name) in ["param", "square_avg", "acc_delta"].iter().enumerate() {
                    if let Some(j) = (0..g[k].len()).find(|&j| !same(g[k][j], w[k][j])) {
                        return Err(TestCaseError::fail(format!(
                            "{isa:?} tensor {i} {name}[{j}]: fast {:e} ({:#018x}) vs reference {:e} ({:#018x})",
                            g[k][j], g[k][j].to_bits(), w[k][j], w[k][j].to_bits()
                        )));
                    }
                }
            }
        }
    }
}
