//! Training `tch` (libtorch) tensors with `adadelta::Adadelta`.
//!
//! The model and its gradients live in libtorch: a linear regression whose
//! weights are `tch::Tensor`s with `requires_grad`, trained with libtorch's
//! autograd. `adadelta` steps them through a small adapter, `TchParam`, that
//! implements `adadelta::Parameter` over f32 mirrors of a tensor and its
//! gradient: `pull` copies both out of libtorch before a step, `push` copies
//! the new values back after it. (`tch` offers no safe borrow of a tensor's
//! memory as a slice, and this workspace uses no `unsafe`; the two copies cost
//! about as much as one more pass of the kernel.) `fast` itself stays free of
//! any tensor framework: the adapter lives here, in difftest, which already
//! links `tch`.
//!
//! The loop is PyTorch's `optimizer.step(closure)`: the closure zeroes the
//! gradients, runs the forward and backward passes in libtorch and pulls
//! the gradients; the step updates the mirrors; `push` writes them back.
//!
//! Run with `source scripts/env.sh && cargo run -p adadelta-difftest --example tch_training`;
//! `cargo test` runs it too (`difftest/tests/api_tch_example.rs`).

use std::error::Error;

use adadelta::{Adadelta, Options, ParamViewMut, Parameter};
use tch::{Kind, Tensor};

/// A libtorch parameter as `adadelta` sees it: the tensor and f32 mirrors of
/// its values and gradient (flattened, row-major).
struct TchParam {
    var: Tensor,
    data: Vec<f32>,
    grad: Option<Vec<f32>>,
}

fn flat(t: &Tensor) -> Result<Vec<f32>, tch::TchError> {
    Vec::<f32>::try_from(&t.f_detach()?.f_contiguous()?.f_reshape([-1])?)
}

impl TchParam {
    fn new(var: Tensor) -> Result<Self, tch::TchError> {
        let data = flat(&var)?;
        Ok(TchParam {
            var,
            data,
            grad: None,
        })
    }

    /// Copies the tensor's values and gradient (if defined) into the mirrors.
    fn pull(&mut self) -> Result<(), tch::TchError> {
        self.data = flat(&self.var)?;
        let g = self.var.grad();
        self.grad = if g.defined() { Some(flat(&g)?) } else { None };
        Ok(())
    }

    /// Copies the mirrored values back into the tensor.
    fn push(&mut self) -> Result<(), tch::TchError> {
        let new = Tensor::from_slice(&self.data).f_reshape(self.var.size())?;
        tch::no_grad(|| self.var.f_copy_(&new))
    }
}

impl Parameter for TchParam {
    fn numel(&self) -> usize {
        self.data.len()
    }

    fn shape(&self) -> Vec<usize> {
        self.var.size().iter().map(|&d| d as usize).collect()
    }

    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, adadelta::Error> {
        Ok(ParamViewMut {
            data: &mut self.data,
            grad: self.grad.as_deref(),
        })
    }

    /// libtorch's gradient is zeroed in both cases (`tch` cannot unset it);
    /// the mirror follows PyTorch's semantics.
    fn zero_grad(&mut self, set_to_none: bool) {
        self.var.zero_grad();
        if set_to_none {
            self.grad = None;
        } else if let Some(g) = &mut self.grad {
            g.fill(0.0);
        }
    }
}

/// Public so that `difftest/tests/api_tch_example.rs` runs it as a test.
pub fn main() -> Result<(), Box<dyn Error>> {
    tch::manual_seed(0);
    let (n, features) = (256, 3);
    let x = Tensor::randn([n, features], (Kind::Float, tch::Device::Cpu));
    let true_w = Tensor::from_slice(&[1.5_f32, -2.0, 0.5]);
    let y = x.mv(&true_w) + 0.75 + 0.01 * Tensor::randn([n], (Kind::Float, tch::Device::Cpu));

    let w = Tensor::zeros([features], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let b = Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let mut opt = Adadelta::new(
        vec![TchParam::new(w)?, TchParam::new(b)?],
        Options::default(),
    )?;

    let mut loss = f64::NAN;
    for epoch in 0..1500 {
        if epoch == 500 || epoch == 1000 {
            let lr = opt.param_groups()[0].options().lr;
            opt.set_lr(lr * 0.5)?; // StepLR(step_size=500, gamma=0.5)
        }
        let mut pulled = Ok(());
        loss = opt.step_with(|params| {
            for p in params.iter_mut() {
                p.zero_grad(true);
            }
            let pred = x.mv(&params[0].var) + &params[1].var;
            let l = (pred - &y).square().mean(Kind::Float);
            l.backward();
            pulled = params.iter_mut().try_for_each(TchParam::pull);
            l.double_value(&[])
        })?;
        pulled?;
        for p in opt.params_mut() {
            p.push()?;
        }
        if epoch % 250 == 0 {
            println!("epoch {epoch:4}  loss {loss:.6}");
        }
    }
    let w: Vec<f32> = flat(&opt.params()[0].var)?;
    let b: Vec<f32> = flat(&opt.params()[1].var)?;
    println!("w = {w:?}, b = {b:?} (true: [1.5, -2.0, 0.5], [0.75]); loss {loss:.6}");
    println!(
        "optimizer state of w after {} steps: {} elements",
        opt.state(0).map_or(0.0, |s| s.step()),
        opt.state(0).map_or(0, |s| s.square_avg().len())
    );
    if loss.is_nan() || loss >= 1e-3 {
        return Err(format!("did not converge: loss {loss}").into());
    }
    Ok(())
}
