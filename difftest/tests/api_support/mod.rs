//! Shared by the `api_*` tests: running `api_interop.py` and
//! `state_dict_convert.py` (test helpers beside this file, not for users:
//! users read and write `torch.save` files with `adadelta::checkpoint::torch`)
//! in the project venv, the wire format of their
//! tensors, and the interop scenario (two groups, four parameters).

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use adadelta::{Adadelta, GroupSpec, Options, Param, StateDict};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `difftest/tests/api_support/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api_support")
        .join(name)
}

/// Runs a Python script of `difftest/tests/api_support` with `args`, feeding `stdin`;
/// panics with its stderr if it fails. Returns stdout.
pub fn python(name: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let py = adadelta_difftest::pytorch::python_path();
    let mut child = Command::new(&py)
        .arg(script(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not start {}: {e} (run scripts/setup.sh)",
                py.display()
            )
        });
    let mut pipe = child.stdin.take().expect("stdin pipe");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("waiting for Python");
    writer
        .join()
        .expect("writer thread")
        .expect("writing to Python");
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Sends one request to `api_interop.py`.
pub fn interop(request: &Value) -> Value {
    let out = python("api_interop.py", &[], request.to_string().as_bytes());
    serde_json::from_slice(&out).expect("api_interop.py answers JSON")
}

/// `state_dict_convert.py <direction> <input> <output>`.
pub fn convert(direction: &str, input: &Path, output: &Path) {
    python(
        "state_dict_convert.py",
        &[direction, input.to_str().unwrap(), output.to_str().unwrap()],
        b"",
    );
}

/// A tensor on the wire: shape and f32 bit patterns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    pub shape: Vec<usize>,
    pub bits: Vec<u32>,
}

impl Wire {
    pub fn new(shape: &[usize], data: &[f32]) -> Self {
        Wire {
            shape: shape.to_vec(),
            bits: data.iter().map(|x| x.to_bits()).collect(),
        }
    }
    pub fn values(&self) -> Vec<f32> {
        self.bits.iter().map(|&b| f32::from_bits(b)).collect()
    }
}

/// The parameters and the state dict after one step (or before the first).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub params: Vec<Wire>,
    pub state_dict: StateDict,
}

pub fn snapshots(answer: &Value) -> Vec<Snapshot> {
    answer["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| Snapshot {
            params: serde_json::from_value(s["params"].clone()).unwrap(),
            state_dict: serde_json::from_value(s["state_dict"].clone()).unwrap(),
        })
        .collect()
}

/// The generator of `adadelta_difftest::suite`, with this file's value
/// distribution: roughly normal times a random power of ten in [1e-3, 1e1).
pub struct Rng(pub adadelta_difftest::suite::Rng);

impl Rng {
    pub fn value(&mut self) -> f32 {
        let (u1, u2) = (1.0 - self.0.unit(), self.0.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (normal * 10f64.powf(-3.0 + 4.0 * self.0.unit())) as f32
    }
    pub fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.value()).collect()
    }
}

/// The interop scenario: group 0 (lr 0.5, weight decay 0.1, maximize) holds
/// parameters of shapes (3,) and (2, 3); group 1 (rho 0.95, eps 1e-8)
/// holds (2, 2, 2) and (40,). Parameter 1 has no gradient every third step;
/// parameter 3 has none before step `late`, so that its state is created
/// only after a checkpoint.
pub struct Scenario {
    pub shapes: Vec<Vec<usize>>,
    pub init: Vec<Vec<f32>>,
    /// `grads[t]` is used by step `t + 1`.
    pub grads: Vec<Vec<Option<Vec<f32>>>>,
}

pub const GROUP_SIZES: [usize; 2] = [2, 2];

pub fn group_options() -> [Options; 2] {
    [
        Options {
            lr: 0.5,
            weight_decay: 0.1,
            maximize: true,
            ..Options::default()
        },
        Options {
            rho: 0.95,
            eps: 1e-8,
            ..Options::default()
        },
    ]
}

impl Scenario {
    pub fn new(seed: u64, steps: usize, late: usize) -> Self {
        let shapes: Vec<Vec<usize>> = vec![vec![3], vec![2, 3], vec![2, 2, 2], vec![40]];
        let mut rng = Rng(adadelta_difftest::suite::Rng::new(seed));
        let numel = |s: &Vec<usize>| s.iter().product::<usize>();
        let init = shapes.iter().map(|s| rng.values(numel(s))).collect();
        let grads = (1..=steps)
            .map(|t| {
                shapes
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let absent = (i == 1 && t % 3 == 0) || (i == 3 && t < late);
                        (!absent).then(|| rng.values(numel(s)))
                    })
                    .collect()
            })
            .collect();
        Scenario {
            shapes,
            init,
            grads,
        }
    }

    /// The groups for `api_interop.py`.
    pub fn groups_json(&self) -> Value {
        let o = group_options();
        json!([
            {"options": {"lr": o[0].lr, "weight_decay": o[0].weight_decay, "maximize": o[0].maximize},
             "size": GROUP_SIZES[0]},
            {"options": {"rho": o[1].rho, "eps": o[1].eps}, "size": GROUP_SIZES[1]},
        ])
    }

    pub fn params_json(&self, values: &[Vec<f32>]) -> Value {
        json!(self
            .shapes
            .iter()
            .zip(values)
            .map(|(s, v)| Wire::new(s, v))
            .collect::<Vec<_>>())
    }

    /// Gradients of steps `from+1 ..= to` for `api_interop.py`.
    pub fn grads_json(&self, from: usize, to: usize) -> Value {
        json!(self.grads[from..to]
            .iter()
            .map(|step| step
                .iter()
                .zip(&self.shapes)
                .map(|(g, s)| g.as_ref().map(|g| Wire::new(s, g)))
                .collect::<Vec<_>>())
            .collect::<Vec<_>>())
    }

    /// A fast optimizer with these parameter values and the scenario's groups.
    pub fn fast(&self, values: &[Vec<f32>]) -> Adadelta {
        let params: Vec<Param> = self
            .shapes
            .iter()
            .zip(values)
            .map(|(s, v)| Param::with_shape(v.clone(), s.clone()).unwrap())
            .collect();
        let o = group_options();
        Adadelta::with_groups(
            vec![
                GroupSpec::new(params[..2].to_vec())
                    .lr(o[0].lr)
                    .weight_decay(o[0].weight_decay)
                    .maximize(o[0].maximize),
                GroupSpec::new(params[2..].to_vec())
                    .rho(o[1].rho)
                    .eps(o[1].eps),
            ],
            Options::default(),
        )
        .unwrap()
    }

    /// One fast step with the gradients of step `t` (1-based).
    pub fn fast_step(&self, opt: &mut Adadelta, t: usize) {
        opt.zero_grad(true);
        for (p, g) in opt.params_mut().iter_mut().zip(&self.grads[t - 1]) {
            if let Some(g) = g {
                p.set_grad(g.clone()).unwrap();
            }
        }
        opt.step().unwrap();
    }

    pub fn fast_snapshot(&self, opt: &Adadelta) -> Snapshot {
        Snapshot {
            params: opt
                .params()
                .iter()
                .map(|p| Wire::new(p.shape(), p.data()))
                .collect(),
            state_dict: opt.state_dict(),
        }
    }
}

/// The values of a snapshot's parameters.
pub fn values(s: &Snapshot) -> Vec<Vec<f32>> {
    s.params.iter().map(Wire::values).collect()
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("adadelta-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
