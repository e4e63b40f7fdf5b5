//! A model as Rust training code writes it: a struct that owns its layers,
//! of different types and shapes, trained with an `Adadelta<Lent>` that
//! keeps only the groups, the options and the state.
//!
//! * the model is a two-layer network `y = w2 · tanh(w1 · x + b1) + b2`:
//!   `w1` a `Param` of shape [8, 3], `b1` an `ndarray` vector, `w2` an
//!   `ndarray` matrix [1, 8], `b2` a `Param` of one element;
//! * the biases are in a second group without weight decay;
//! * each step lends the layers to the optimizer (`step_lent`), by
//!   position, in the order they were given to it;
//! * halfway, the model and the optimizer are checkpointed (the optimizer
//!   in PyTorch's `torch.save` format), everything is dropped, and training
//!   resumes from the files. The resumed run must end bit for bit where the
//!   uninterrupted run ends.
//!
//! Run with `cargo run -p adadelta --example model_struct`; `cargo test`
//! runs it too (`fast/tests/api_example.rs`).

use std::error::Error;
use std::path::Path;

use adadelta::{Adadelta, GroupSpec, Lent, NdParam, Options, Param, Parameter};
use ndarray::{Array1, Array2};

const HIDDEN: usize = 8;
const INPUTS: usize = 3;
const SAMPLES: usize = 128;
const STEPS: usize = 400;

struct Model {
    w1: Param,
    b1: NdParam<ndarray::Ix1>,
    w2: NdParam<ndarray::Ix2>,
    b2: Param,
}

/// Deterministic numbers in [-1, 1) (xorshift64*).
fn uniform(state: &mut u64) -> f32 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

impl Model {
    fn new() -> Self {
        let mut s = 0x9e37_79b9_7f4a_7c15;
        Model {
            w1: Param::with_shape(
                (0..HIDDEN * INPUTS)
                    .map(|_| 0.5 * uniform(&mut s))
                    .collect(),
                vec![HIDDEN, INPUTS],
            )
            .expect("the shape fits"),
            b1: NdParam::new(Array1::zeros(HIDDEN)),
            w2: NdParam::new(Array2::from_shape_fn((1, HIDDEN), |_| {
                0.5 * uniform(&mut s)
            })),
            b2: Param::new(vec![0.0]),
        }
    }

    /// The layers in the order the optimizer was given them: group 0's
    /// (the weights), then group 1's (the biases).
    fn params_mut(&mut self) -> [&mut dyn Parameter<Elem = f32>; 4] {
        [&mut self.w1, &mut self.w2, &mut self.b1, &mut self.b2]
    }

    /// Mean squared error over the data, and its gradients (backward).
    fn loss_and_grad(&mut self, data: &[([f32; INPUTS], f32)]) -> f32 {
        let w1 = self.w1.data();
        let (mut gw1, mut gb1) = (vec![0.0_f32; HIDDEN * INPUTS], Array1::<f32>::zeros(HIDDEN));
        let (mut gw2, mut gb2) = (Array2::<f32>::zeros((1, HIDDEN)), 0.0_f32);
        let mut loss = 0.0;
        let scale = 2.0 / data.len() as f32;
        for (x, y) in data {
            let h: Vec<f32> = (0..HIDDEN)
                .map(|j| {
                    (w1[j * INPUTS..][..INPUTS]
                        .iter()
                        .zip(x)
                        .map(|(a, b)| a * b)
                        .sum::<f32>()
                        + self.b1.data[j])
                        .tanh()
                })
                .collect();
            let out = h
                .iter()
                .enumerate()
                .map(|(j, hj)| self.w2.data[[0, j]] * hj)
                .sum::<f32>()
                + self.b2.data()[0];
            let err = out - y;
            loss += err * err / data.len() as f32;
            gb2 += scale * err;
            for j in 0..HIDDEN {
                gw2[[0, j]] += scale * err * h[j];
                let dh = scale * err * self.w2.data[[0, j]] * (1.0 - h[j] * h[j]);
                gb1[j] += dh;
                for k in 0..INPUTS {
                    gw1[j * INPUTS + k] += dh * x[k];
                }
            }
        }
        self.w1.set_grad(gw1).expect("the gradient has w1's size");
        self.b1.grad = Some(gb1);
        self.w2.grad = Some(gw2);
        self.b2.set_grad(vec![gb2]).expect("one element");
        loss
    }

    /// Every layer's values, as little-endian f32 (the model's own file).
    fn save(&mut self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for p in self.params_mut() {
            let view = p.view_mut().expect("plain memory");
            bytes.extend(view.data.iter().flat_map(|x| x.to_le_bytes()));
        }
        std::fs::write(path, bytes)
    }

    fn load(path: &Path) -> Result<Self, Box<dyn Error>> {
        let bytes = std::fs::read(path)?;
        let mut m = Model::new();
        let mut at = 0;
        for p in m.params_mut() {
            let view = p.view_mut()?;
            let n = view.data.len() * 4;
            let chunk = bytes.get(at..at + n).ok_or("the model file is short")?;
            for (x, b) in view.data.iter_mut().zip(chunk.chunks_exact(4)) {
                *x = f32::from_le_bytes(b.try_into()?);
            }
            at += n;
        }
        Ok(m)
    }

    fn bits(&self) -> Vec<u32> {
        let all = [
            self.w1.data(),
            self.b1.data.as_slice().unwrap(),
            self.w2.data.as_slice().unwrap(),
            self.b2.data(),
        ];
        all.iter()
            .flat_map(|s| s.iter().map(|x| x.to_bits()))
            .collect()
    }
}

fn optimizer(m: &Model) -> Result<Adadelta<Lent>, adadelta::Error> {
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![Lent::of(&m.w1), Lent::of(&m.w2)]).weight_decay(1e-4),
            GroupSpec::new(vec![Lent::of(&m.b1), Lent::of(&m.b2)]),
        ],
        Options {
            lr: 1.0,
            ..Options::default()
        },
    )
}

/// Trains `m` with `opt` from step `from` to `to`; returns the last loss.
fn train(
    m: &mut Model,
    opt: &mut Adadelta<Lent>,
    data: &[([f32; INPUTS], f32)],
    from: usize,
    to: usize,
) -> Result<f32, adadelta::Error> {
    let mut loss = f32::NAN;
    for _ in from..to {
        loss = m.loss_and_grad(data);
        opt.step_lent(&mut m.params_mut())?;
    }
    Ok(loss)
}

pub fn main() -> Result<(), Box<dyn Error>> {
    let mut s = 42;
    let data: Vec<([f32; INPUTS], f32)> = (0..SAMPLES)
        .map(|_| {
            let x = [uniform(&mut s), uniform(&mut s), uniform(&mut s)];
            (x, (1.5 * x[0] - x[1]).sin() + 0.5 * x[2])
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("adadelta-example-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (model_file, opt_file) = (dir.join("model.bin"), dir.join("optimizer.pt"));

    // Uninterrupted.
    let mut m = Model::new();
    let mut opt = optimizer(&m)?;
    let first = m.loss_and_grad(&data);
    let last = train(&mut m, &mut opt, &data, 0, STEPS)?;

    // Interrupted halfway, resumed from the files.
    let mut a = Model::new();
    let mut opt_a = optimizer(&a)?;
    train(&mut a, &mut opt_a, &data, 0, STEPS / 2)?;
    a.save(&model_file)?;
    opt_a.save(&opt_file)?;
    drop((a, opt_a));
    let mut b = Model::load(&model_file)?;
    let mut opt_b = optimizer(&b)?;
    opt_b.load(&opt_file)?;
    let resumed = train(&mut b, &mut opt_b, &data, STEPS / 2, STEPS)?;
    std::fs::remove_dir_all(&dir)?;

    println!("loss {first:.5} -> {last:.5} after {STEPS} steps; resumed run: {resumed:.5}");
    if last.is_nan() || last >= 0.5 * first {
        return Err(format!("did not train: loss {first} -> {last}").into());
    }
    if m.bits() != b.bits() || opt.state_dict() != opt_b.state_dict() {
        return Err("the resumed run differs from the uninterrupted one".into());
    }
    println!("the resumed run ends bit for bit where the uninterrupted run ends");
    Ok(())
}
