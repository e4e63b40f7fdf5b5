//! Training `tch` (libtorch) tensors with `Adadelta<tch::Tensor>` (feature
//! `tch`), zero-copy: the optimizer steps the tensors' own memory.
//!
//! The model and its gradients live in libtorch: a linear regression whose
//! weights are `tch::Tensor`s with `requires_grad`, trained with libtorch's
//! autograd. The loop is PyTorch's:
//! `opt.zero_grad(); loss.backward(); opt.step()`, with a step decay of the
//! learning rate (`StepLR(step_size=500, gamma=0.5)`).
//!
//! Run with `source scripts/env.sh && cargo run -p adadelta --features tch --example tch_training`;
//! `cargo test --features tch` runs it too (`fast/tests/adapter_tch.rs`).

use std::error::Error;

use adadelta::tch::tch::{self, Device, Kind, Tensor};
use adadelta::{Adadelta, Options};

/// Public so that `fast/tests/adapter_tch.rs` runs it as a test.
pub fn main() -> Result<(), Box<dyn Error>> {
    tch::manual_seed(0);
    let (n, features) = (256, 3);
    let x = Tensor::randn([n, features], (Kind::Float, Device::Cpu));
    let true_w = Tensor::from_slice(&[1.5_f32, -2.0, 0.5]);
    let y = x.mv(&true_w) + 0.75 + 0.01 * Tensor::randn([n], (Kind::Float, Device::Cpu));

    let w = Tensor::zeros([features], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let b = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    // The optimizer holds handles to the same tensors (no copy).
    let mut opt = Adadelta::new(
        vec![w.shallow_clone(), b.shallow_clone()],
        Options::default(),
    )?;

    let mut loss = f64::NAN;
    for epoch in 0..1500 {
        if epoch == 500 || epoch == 1000 {
            let lr = opt.param_groups()[0].options().lr;
            opt.set_lr(lr * 0.5)?;
        }
        opt.zero_grad();
        let l = (x.mv(&w) + &b - &y).square().mean(Kind::Float);
        l.backward();
        opt.step()?;
        loss = l.double_value(&[]);
        if epoch % 250 == 0 {
            println!("epoch {epoch:4}  loss {loss:.6}");
        }
    }
    let (wv, bv) = (Vec::<f32>::try_from(&w)?, Vec::<f32>::try_from(&b)?);
    println!("w = {wv:?}, b = {bv:?} (true: [1.5, -2.0, 0.5], [0.75]); loss {loss:.6}");
    if loss.is_nan() || loss >= 1e-3 {
        return Err(format!("did not converge: loss {loss}").into());
    }
    Ok(())
}
