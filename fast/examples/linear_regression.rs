//! Train a linear regression end to end with `adadelta::Adadelta`, the way
//! a PyTorch training loop would:
//!
//! * the model is two `Param`s (weights `w` and bias `b`), in two parameter
//!   groups (no weight decay on the bias);
//! * every step calls `step_with` with a closure that recomputes the loss
//!   and the gradients (PyTorch's `optimizer.step(closure)`);
//! * a learning-rate schedule halves the learning rate every 500 epochs
//!   (PyTorch's `StepLR(step_size=500, gamma=0.5)`);
//! * halfway, a checkpoint (model and optimizer state) is saved atomically,
//!   everything is dropped, and training resumes from the file. The resumed
//!   run must end bit for bit where an uninterrupted run ends.
//!
//! Run with `cargo run -p adadelta --example linear_regression`; `cargo test`
//! runs it too (`fast/tests/api_example.rs`).

use std::error::Error;
use std::path::Path;

use adadelta::{load_json, save_json, Adadelta, GroupSpec, Options, Param, StateDict, TensorData};
use serde::{Deserialize, Serialize};

const FEATURES: usize = 3;
const SAMPLES: usize = 256;
const EPOCHS: usize = 1500;

/// Synthetic data: y = x · [1.5, -2.0, 0.5] + 0.75 + small noise.
struct Data {
    x: Vec<[f32; FEATURES]>,
    y: Vec<f32>,
}

fn make_data() -> Data {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let true_w = [1.5_f32, -2.0, 0.5];
    let mut x = Vec::with_capacity(SAMPLES);
    let mut y = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let xi = [uniform(), uniform(), uniform()];
        let yi = xi.iter().zip(&true_w).map(|(a, b)| a * b).sum::<f32>() + 0.75 + 0.01 * uniform();
        x.push(xi);
        y.push(yi);
    }
    Data { x, y }
}

/// Mean squared error of the model on the data, and its gradients, written
/// into the parameters' `grad` (like `zero_grad(); loss.backward()`).
fn loss_and_grad(params: &mut [Param], data: &Data) -> f32 {
    let (w, b) = (params[0].data().to_vec(), params[1].data()[0]);
    let mut gw = [0.0_f32; FEATURES];
    let mut gb = 0.0_f32;
    let mut loss = 0.0_f32;
    let n = data.y.len() as f32;
    for (xi, &yi) in data.x.iter().zip(&data.y) {
        let pred = xi.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() + b;
        let r = pred - yi;
        loss += r * r / n;
        for (g, &xk) in gw.iter_mut().zip(xi) {
            *g += 2.0 * r * xk / n;
        }
        gb += 2.0 * r / n;
    }
    params[0].set_grad(gw.to_vec()).expect("same length as w");
    params[1].set_grad(vec![gb]).expect("same length as b");
    loss
}

/// StepLR(step_size=500, gamma=0.5) from lr = 1.0.
fn lr_at(epoch: usize) -> f64 {
    0.5f64.powi((epoch / 500) as i32)
}

fn new_model() -> Adadelta {
    let w = Param::new(vec![0.0; FEATURES]);
    let b = Param::new(vec![0.0]);
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![w]).weight_decay(1e-4),
            GroupSpec::new(vec![b]),
        ],
        Options::default(),
    )
    .expect("valid options")
}

/// Trains epochs `from..to`; returns the last loss.
fn train(opt: &mut Adadelta, data: &Data, from: usize, to: usize) -> Result<f32, Box<dyn Error>> {
    let mut loss = f32::NAN;
    for epoch in from..to {
        opt.set_lr(lr_at(epoch))?;
        loss = opt.step_with(|params| loss_and_grad(params, data))?;
        if epoch % 250 == 0 || epoch + 1 == EPOCHS {
            println!("epoch {epoch:3}  lr {:.3}  loss {loss:.6}", lr_at(epoch));
        }
    }
    Ok(loss)
}

/// What is saved: the epoch to resume at, the model, the optimizer.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    epoch: usize,
    model: Vec<TensorData>,
    optimizer: StateDict,
}

fn save(path: &Path, opt: &Adadelta, epoch: usize) -> Result<(), Box<dyn Error>> {
    let ckpt = Checkpoint {
        epoch,
        model: opt
            .params()
            .iter()
            .map(|p| TensorData::new(p.shape().to_vec(), p.data().to_vec()))
            .collect::<Result<_, _>>()?,
        optimizer: opt.state_dict(),
    };
    save_json(path, &ckpt)?;
    Ok(())
}

fn resume(path: &Path) -> Result<(Adadelta, usize), Box<dyn Error>> {
    let ckpt: Checkpoint = load_json(path)?;
    let mut opt = new_model();
    for (p, saved) in opt.params_mut().iter_mut().zip(ckpt.model) {
        p.data_mut().copy_from_slice(saved.data());
    }
    opt.load_state_dict(ckpt.optimizer)?;
    Ok((opt, ckpt.epoch))
}

/// Public so that `fast/tests/api_example.rs` runs it as a test.
pub fn main() -> Result<(), Box<dyn Error>> {
    let data = make_data();
    let dir = std::env::temp_dir().join(format!("adadelta-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("checkpoint.json");

    println!("uninterrupted run:");
    let mut straight = new_model();
    let final_loss = train(&mut straight, &data, 0, EPOCHS)?;

    println!("run with a checkpoint at epoch {}:", EPOCHS / 2);
    let mut first = new_model();
    train(&mut first, &data, 0, EPOCHS / 2)?;
    save(&path, &first, EPOCHS / 2)?;
    drop(first);
    let (mut resumed, epoch) = resume(&path)?;
    println!("resumed at epoch {epoch} from {}", path.display());
    let resumed_loss = train(&mut resumed, &data, epoch, EPOCHS)?;

    let same = straight
        .params()
        .iter()
        .zip(resumed.params())
        .all(|(a, b)| {
            a.data()
                .iter()
                .map(|x| x.to_bits())
                .eq(b.data().iter().map(|x| x.to_bits()))
        })
        && straight.state_dict() == resumed.state_dict();
    let w = resumed.params()[0].data();
    let b = resumed.params()[1].data()[0];
    println!("w = {w:?}, b = {b} (true: [1.5, -2.0, 0.5], 0.75)");
    println!("final loss {resumed_loss:.6}; resumed == uninterrupted bit for bit: {same}");
    std::fs::remove_dir_all(&dir)?;

    if !same || resumed_loss.to_bits() != final_loss.to_bits() {
        return Err("the resumed run differs from the uninterrupted one".into());
    }
    if final_loss.is_nan() || final_loss >= 1e-3 {
        return Err(format!("did not converge: loss {final_loss}").into());
    }
    Ok(())
}
