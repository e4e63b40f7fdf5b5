//! The tch adapter (`Adadelta<tch::Tensor>`) with
//! `Numerics::ReproduceLibtorch` against libtorch's own Adadelta step on the
//! same tensors, bit for bit: PyTorch's single-tensor step rebuilt from tch
//! ops ([`adadelta_difftest::libtorch`]), over every option and random
//! values (normal, wide-range, with NaN and infinities), several tensors of sizes
//! around the SIMD widths, and a tensor that never gets a gradient.
//!
//! As in `kernel_libtorch.rs`, NaN counts as equal to NaN (payloads differ
//! between instruction encodings); every other bit must be identical.

use adadelta::kernel::{Executor, LibtorchSqrt, Numerics};
use adadelta::tch::tch::{self, Kind, Tensor};
use adadelta::Adadelta;
use adadelta_difftest::accuracy::{first_difference_with, NanBits};
use adadelta_difftest::case::{Case, Snapshot, Trajectory};
use adadelta_difftest::libtorch;
use adadelta_difftest::suite::{default_hypers, random_case, Values};

fn values(t: &Tensor) -> Vec<f32> {
    Vec::try_from(&t.reshape([-1])).unwrap()
}

/// The case through the tch adapter: libtorch leaf tensors whose `.grad`
/// is set to the case's gradient (exactly: the first by a backward pass of
/// `sum(p * g)`, whose gradient is `1 * g`, then by `copy_`), stepped in place.
fn run_adapter(case: &Case) -> Trajectory {
    let params: Vec<Tensor> = case
        .params
        .iter()
        .map(|p| Tensor::from_slice(p).set_requires_grad(true))
        .collect();
    let handles = params.iter().map(Tensor::shallow_clone).collect();
    let mut opt = Adadelta::new(handles, case.hyper.to_options())
        .unwrap()
        .with_executor(Executor::with_numerics(Numerics::ReproduceLibtorch));
    let mut out = Vec::new();
    for grads in &case.grads {
        for (p, g) in params.iter().zip(grads) {
            let Some(g) = g else {
                assert!(
                    !p.grad().defined(),
                    "the case's absent gradients never follow a present one"
                );
                continue;
            };
            let g = Tensor::from_slice(g);
            if p.grad().defined() {
                tch::no_grad(|| p.grad().copy_(&g));
            } else {
                (p * &g).sum(Kind::Float).backward();
            }
        }
        opt.step().unwrap();
        out.push(Snapshot {
            params: params.iter().map(values).collect(),
            square_avg: (0..params.len())
                .map(|i| opt.state(i).map(|s| s.square_avg().to_vec()))
                .collect(),
            acc_delta: (0..params.len())
                .map(|i| opt.state(i).map(|s| s.acc_delta().to_vec()))
                .collect(),
            step: (0..params.len())
                .map(|i| opt.state(i).map(|s| s.step()))
                .collect(),
        });
    }
    out
}

#[test]
fn the_tch_adapter_reproduces_libtorchs_adadelta_step_bit_for_bit() {
    if let Err(e) = LibtorchSqrt::detect() {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let sizes = [1, 7, 16, 33, 100, 1000];
    let mut checked = 0;
    for (hi, (name, hyper)) in default_hypers().into_iter().enumerate() {
        for (vi, kind) in [Values::Normal, Values::Wide].into_iter().enumerate() {
            let mut case = random_case(name, (hi * 2 + vi) as u64, hyper, &sizes, 4, kind, 0.0);
            if kind == Values::Wide {
                // Non-finite gradients propagate as in libtorch.
                let g = &mut case.grads;
                (g[1][2].as_mut().unwrap()[3], g[2][3].as_mut().unwrap()[0]) =
                    (f32::NAN, f32::INFINITY);
                g[2][4].as_mut().unwrap()[9] = f32::NEG_INFINITY;
            }
            // One more tensor that never has a gradient (PyTorch's p.grad is None).
            case.params.push(vec![0.5; 5]);
            for step in &mut case.grads {
                step.push(None);
            }
            let adapter = run_adapter(&case);
            let torch = libtorch::run(&case);
            if let Some(d) =
                first_difference_with(&case, &adapter, &torch, NanBits::QuietAnyPayload)
            {
                panic!("{name} ({kind:?}): the tch adapter differs from libtorch: {d}");
            }
            assert_eq!(adapter.last().unwrap().step.last(), Some(&None));
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} cases");
}
