//! The tch adapter (`Adadelta<tch::Tensor>` for float32,
//! `Adadelta<TypedTensor<f64>>` for float64) with
//! `Numerics::ReproduceLibtorch` against libtorch's own Adadelta step on the
//! same tensors, bit for bit: PyTorch's single-tensor step rebuilt from tch
//! ops ([`adadelta_difftest::libtorch`]), over every option and random
//! values (normal, wide-range, with NaN and infinities), several tensors of sizes
//! around the SIMD widths, and a tensor that never gets a gradient.
//!
//! As in `kernel_libtorch.rs`, NaN counts as equal to NaN (payloads differ
//! between instruction encodings); every other bit must be identical.

use adadelta::kernel::{self, Executor, Numerics};
use adadelta::tch::tch::{self, Tensor};
use adadelta::tch::TypedTensor;
use adadelta::{Adadelta, Error, Shaped};
use adadelta_difftest::accuracy::{first_difference_with, NanBits};
use adadelta_difftest::case::{Case, Snapshot, Trajectory};
use adadelta_difftest::dtype::Dtype;
use adadelta_difftest::libtorch;
use adadelta_difftest::suite::{default_hypers, random_case, Values};

fn values<T: Dtype>(t: &Tensor) -> Vec<T> {
    Vec::try_from(&t.reshape([-1])).unwrap()
}

/// The case through a tch adapter (`wrap` makes its parameter of a tensor,
/// `step` is its step): libtorch leaf tensors whose `.grad` is set to the
/// case's gradient (exactly: the first by a backward pass of `sum(p * g)`,
/// whose gradient is `1 * g`, then by `copy_`), stepped in place.
fn run_adapter<T: Dtype, P: Shaped<Elem = T>>(
    case: &Case<T>,
    wrap: impl Fn(Tensor) -> P,
    step: impl Fn(&mut Adadelta<P>) -> Result<(), Error>,
) -> Trajectory<T> {
    let params: Vec<Tensor> = case
        .params
        .iter()
        .map(|p| Tensor::from_slice(p).set_requires_grad(true))
        .collect();
    let handles = params.iter().map(|t| wrap(t.shallow_clone())).collect();
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
                (p * &g).sum(T::KIND).backward();
            }
        }
        step(&mut opt).unwrap();
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

/// Every default hyperparameter setting on normal and wide-range values
/// (with NaN and infinite gradients), through the adapter `run` and through
/// libtorch, bit for bit. Skipped, with the reason printed, where this CPU
/// cannot reproduce libtorch in `T`.
fn adapter_reproduces_libtorch<T: Dtype>(run: impl Fn(&Case<T>) -> Trajectory<T>) {
    let exec = Executor::with_numerics(Numerics::ReproduceLibtorch);
    if let Err(e) = kernel::sqrt(&exec, &mut [T::from_f64(2.0)]) {
        eprintln!("SKIPPED ({}): {e}", T::DTYPE);
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
                    (T::from_f64(f64::NAN), T::from_f64(f64::INFINITY));
                g[2][4].as_mut().unwrap()[9] = T::from_f64(f64::NEG_INFINITY);
            }
            // One more tensor that never has a gradient (PyTorch's p.grad is None).
            case.params.push(vec![T::from_f64(0.5); 5]);
            for step in &mut case.grads {
                step.push(None);
            }
            let adapter = run(&case);
            let torch = libtorch::run(&case);
            if let Some(d) =
                first_difference_with(&case, &adapter, &torch, NanBits::QuietAnyPayload)
            {
                panic!(
                    "{name} ({kind:?}, {}): the tch adapter differs from libtorch: {d}",
                    T::DTYPE
                );
            }
            assert_eq!(adapter.last().unwrap().step.last(), Some(&None));
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} cases");
}

#[test]
fn the_tch_adapter_reproduces_libtorchs_adadelta_step_bit_for_bit() {
    adapter_reproduces_libtorch::<f32>(|case| run_adapter(case, |t| t, Adadelta::<Tensor>::step));
}

#[test]
fn the_tch_adapter_reproduces_libtorchs_float64_adadelta_step_bit_for_bit() {
    adapter_reproduces_libtorch::<f64>(|case| {
        run_adapter(case, TypedTensor::new, Adadelta::<TypedTensor<f64>>::step)
    });
}
