//! A candle model trained with `Adadelta<Var>` (feature `candle`), which
//! implements `candle_nn::Optimizer` and steps the vars' storage in place.
//!
//! * the model is a two-layer MLP, `candle_nn::linear` layers 2 → 16 → 1
//!   with a tanh, built from a `VarMap`, fitting `y = sin(x0) · x1` on
//!   synthetic data;
//! * the optimizer gets the vars sorted by name: a `VarMap`'s own order is
//!   a hash map's, and an optimizer's state is keyed by position, as
//!   PyTorch's `state_dict` is;
//! * halfway, the model is saved as safetensors (`VarMap::save`) and the
//!   optimizer in PyTorch's `torch.save` format; both are dropped and
//!   training resumes from the files. The resumed run must end bit for bit
//!   where the uninterrupted run ends.
//!
//! Run with `cargo run -p adadelta --features candle --example candle_mlp`;
//! `cargo test --features candle` runs it too (`fast/tests/adapter_candle.rs`).

use std::error::Error;
use std::path::Path;

use adadelta::candle::candle_core::{self, DType, Device, Module, Tensor, Var};
use adadelta::candle::candle_nn::{self, Optimizer, VarBuilder, VarMap};
use adadelta::{Adadelta, Options};

const SAMPLES: usize = 256;
const HIDDEN: usize = 16;
const STEPS: usize = 300;

struct Mlp {
    hidden: candle_nn::Linear,
    out: candle_nn::Linear,
}

impl Mlp {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Mlp {
            hidden: candle_nn::linear(2, HIDDEN, vb.pp("hidden"))?,
            out: candle_nn::linear(HIDDEN, 1, vb.pp("out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.hidden.forward(x)?.tanh()?)
    }
}

/// Deterministic numbers in [-1, 1) (xorshift64*).
fn uniform(state: &mut u64) -> f32 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// The inputs and targets.
fn data() -> candle_core::Result<(Tensor, Tensor)> {
    let mut s = 0x9e37_79b9_7f4a_7c15;
    let x: Vec<f32> = (0..SAMPLES * 2).map(|_| 2.0 * uniform(&mut s)).collect();
    let y: Vec<f32> = x.chunks(2).map(|p| p[0].sin() * p[1]).collect();
    Ok((
        Tensor::from_vec(x, (SAMPLES, 2), &Device::Cpu)?,
        Tensor::from_vec(y, (SAMPLES, 1), &Device::Cpu)?,
    ))
}

/// A model with deterministic initial weights, and its vars by name.
fn model() -> Result<(VarMap, Mlp, Vec<Var>), Box<dyn Error>> {
    let varmap = VarMap::new();
    let mlp = Mlp::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    let mut s = 0x0123_4567_89ab_cdef;
    let mut named: Vec<(String, Var)> = varmap.data().lock().unwrap().clone().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in &named {
        let init: Vec<f32> = (0..var.elem_count())
            .map(|_| 0.5 * uniform(&mut s))
            .collect();
        var.set(&Tensor::from_vec(init, var.shape(), &Device::Cpu)?)?;
    }
    Ok((varmap, mlp, named.into_iter().map(|(_, v)| v).collect()))
}

fn optimizer(vars: Vec<Var>) -> candle_core::Result<Adadelta<Var>> {
    <Adadelta<Var> as Optimizer>::new(
        vars,
        Options {
            lr: 1.0,
            ..Options::default()
        },
    )
}

/// `steps` steps; returns the last loss.
fn train(mlp: &Mlp, opt: &mut Adadelta<Var>, steps: usize) -> candle_core::Result<f32> {
    let (x, y) = data()?;
    let mut last = f32::NAN;
    for _ in 0..steps {
        let loss = (mlp.forward(&x)? - &y)?.sqr()?.mean_all()?;
        last = loss.to_scalar()?;
        opt.backward_step(&loss)?;
    }
    Ok(last)
}

fn weights(vars: &[Var]) -> candle_core::Result<Vec<u32>> {
    let mut bits = Vec::new();
    for v in vars {
        let values: Vec<f32> = v.flatten_all()?.to_vec1()?;
        bits.extend(values.iter().map(|x| x.to_bits()));
    }
    Ok(bits)
}

/// Half the steps, a checkpoint, then the rest from the files.
fn resumed(dir: &Path) -> Result<Vec<u32>, Box<dyn Error>> {
    let (model_file, opt_file) = (dir.join("model.safetensors"), dir.join("optimizer.pt"));
    {
        let (varmap, mlp, vars) = model()?;
        let mut opt = optimizer(vars)?;
        train(&mlp, &mut opt, STEPS / 2)?;
        varmap.save(&model_file)?;
        opt.save(&opt_file)?;
    }
    let (mut varmap, mlp, vars) = model()?;
    varmap.load(&model_file)?;
    let mut opt = optimizer(vars.clone())?;
    opt.load(&opt_file)?;
    train(&mlp, &mut opt, STEPS - STEPS / 2)?;
    Ok(weights(&vars)?)
}

pub fn main() -> Result<(), Box<dyn Error>> {
    let (_, mlp, vars) = model()?;
    let mut opt = optimizer(vars.clone())?;
    let first = train(&mlp, &mut opt, 1)?;
    let last = train(&mlp, &mut opt, STEPS - 1)?;
    println!("loss {first:.5} -> {last:.5} in {STEPS} steps");
    if last.is_nan() || last >= 0.25 * first {
        return Err(format!("the MLP did not learn: loss {first} -> {last}").into());
    }
    let dir = std::env::temp_dir().join(format!("adadelta-example-candle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let resumed = resumed(&dir);
    std::fs::remove_dir_all(&dir)?;
    if resumed? != weights(&vars)? {
        return Err("the resumed run differs from the uninterrupted one".into());
    }
    println!("resumed from the checkpoint: bit for bit the uninterrupted run");
    Ok(())
}
