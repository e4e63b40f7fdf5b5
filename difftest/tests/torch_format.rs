//! PyTorch's `torch.save` format, read and written by `adadelta` with no
//! Python in between, checked against real PyTorch (the project venv)
//! through `difftest/python/torch_format.py`:
//!
//! * **PyTorch → Rust**: PyTorch runs 3 steps and `torch.save`s one kind of
//!   file; `adadelta` loads it (and the parameters, also from a `torch.save`
//!   file), continues 3 steps, and must equal PyTorch's own 6 steps bit for
//!   bit: every parameter, every state tensor, every step counter and
//!   option.
//! * **Rust → PyTorch**: `adadelta` runs 3 steps and saves; PyTorch loads the
//!   file with `torch.load(weights_only=True)`, finds in it what its own
//!   `state_dict()` holds after the same 3 steps (every tensor's dtype,
//!   shape and bits), `load_state_dict`s it, continues 3 steps, and must
//!   equal `adadelta`'s own 6 steps bit for bit.
//!
//! Bit for bit holds because `adadelta` runs with
//! `Numerics::ReproduceLibtorch`, which computes libtorch 2.13's own
//! rounding, square root included (`fast/docs/numerics.md`); the file formats add
//! no rounding at all. On a CPU whose libtorch square root the kernel cannot
//! compute, the loads and the layout are still checked, and the bitwise
//! part is skipped with the reason printed. The kinds of file are what
//! PyTorch really writes: `step` as a 0-dim tensor and as a plain number
//! (older PyTorch), `lr` as a float and as a 1-element tensor, extra group
//! keys, state for only some parameters, an empty and a 0-dim tensor, a
//! whole training checkpoint (`{"model", "optimizer", "epoch",
//! "scheduler"}`), and the same in float64 (float64 parameters and running
//! averages, a float32 `step`), and the float64 `step` PyTorch keeps under
//! `torch.set_default_dtype(torch.float64)`; and in bfloat16 and float16
//! (a float32 `step`), on PyTorch's for-loop and `foreach` paths, with
//! tensors of 37 and 100 elements, whose last `len % 32` elements PyTorch
//! computes in scalar code (reproduced with the executor's
//! `libtorch_threads` at 1, as the script runs `torch.set_num_threads(1)`).

use std::path::Path;
use std::process::Command;

use adadelta::checkpoint::torch::{self, TorchFile, Value};
use adadelta::checkpoint::{Durability, Stored, TensorRef};
use adadelta::half::bf16;
use adadelta::kernel::{Element, Executor, Numerics};
use adadelta::{Adadelta, GroupSpec, Options, Param, StateDict, TensorData};

const SAVE_AT: usize = 3;
const STEPS: usize = 6;

fn python(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/torch_format.py");
    let out = Command::new(adadelta_difftest::pytorch::python_path())
        .arg(script)
        .args(args)
        .output()
        .expect("start Python (run scripts/setup.sh)");
    assert!(
        out.status.success(),
        "torch_format.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(kind: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "adadelta-torch-format-{kind}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether a kind of file is a training checkpoint.
fn is_checkpoint(kind: &str) -> bool {
    kind.ends_with("checkpoint")
}

/// The numerics that give PyTorch's bits for `E` on this machine, or why
/// there are none (then the bit-for-bit comparisons are skipped): PyTorch's
/// own, for a PyTorch of one intra-op thread (the script's
/// `torch.set_num_threads(1)`, which decides where a 16-bit tensor's
/// scalar tail falls).
fn libtorch_numerics<E: Element>() -> Result<Executor, String> {
    let executor = Executor {
        libtorch_threads: Some(1),
        ..Executor::with_numerics(Numerics::ReproduceLibtorch)
    };
    let mut probe = Adadelta::new(
        vec![Param::from_vec(vec![E::default()])],
        Options::default(),
    )
    .unwrap()
    .with_executor(executor.clone());
    probe.params_mut()[0].set_grad(vec![E::default()]).unwrap();
    match probe.step() {
        Ok(()) => Ok(executor),
        Err(e) => Err(format!("{} cannot reproduce libtorch here: {e}", E::DTYPE)),
    }
}

/// The scenario PyTorch wrote to `inputs.pt`: groups (parameter names and
/// options), initial values, gradients by step, of the element type `E`.
struct Inputs<E> {
    groups: Vec<(Vec<String>, Options)>,
    init: Vec<(String, TensorData<E>)>,
    grads: Vec<(String, TensorData<E>)>,
}

fn float(v: &Value, key: &str) -> f64 {
    match v.get(key) {
        Some(Value::Float(x)) => *x,
        Some(Value::Int(i)) => *i as f64,
        other => panic!("config {key}: {other:?}"),
    }
}

fn read_inputs<E: Stored>(dir: &Path) -> Inputs<E> {
    let mut f = TorchFile::open(dir.join("inputs.pt")).unwrap();
    let Some(Value::List(groups)) = f.get("config").and_then(|c| c.get("groups")).cloned() else {
        panic!("inputs.pt has no config.groups")
    };
    let groups = groups
        .iter()
        .map(|g| {
            let Some(Value::List(names)) = g.get("names") else {
                panic!("names")
            };
            let names = names
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            let options = Options {
                lr: float(g, "lr"),
                rho: float(g, "rho"),
                eps: float(g, "eps"),
                weight_decay: float(g, "weight_decay"),
                maximize: g.get("maximize") == Some(&Value::Bool(true)),
                foreach: match g.get("foreach") {
                    Some(Value::Bool(b)) => Some(*b),
                    _ => None,
                },
                ..Options::default()
            };
            (names, options)
        })
        .collect();
    Inputs {
        groups,
        init: f.tensors_at("init").unwrap(),
        grads: f.tensors_at("grads").unwrap(),
    }
}

impl<E: Stored> Inputs<E> {
    fn names(&self) -> Vec<String> {
        self.groups.iter().flat_map(|(n, _)| n.clone()).collect()
    }

    /// An optimizer over `values` (by name), in the scenario's groups,
    /// stepping with `executor`.
    fn optimizer(
        &self,
        values: &[(String, TensorData<E>)],
        executor: &Executor,
    ) -> Adadelta<Param<E>> {
        self.build(values, executor, false)
    }

    /// [`optimizer`](Self::optimizer) with named parameters (PyTorch's
    /// `param_names`).
    fn named_optimizer(
        &self,
        values: &[(String, TensorData<E>)],
        executor: &Executor,
    ) -> Adadelta<Param<E>> {
        self.build(values, executor, true)
    }

    fn build(
        &self,
        values: &[(String, TensorData<E>)],
        executor: &Executor,
        named: bool,
    ) -> Adadelta<Param<E>> {
        let param = |name: &String| {
            let (_, t) = values
                .iter()
                .find(|(n, _)| n == name)
                .expect("a value per name");
            Param::from_vec_with_shape(t.data().to_vec(), t.shape().to_vec()).unwrap()
        };
        let groups = self
            .groups
            .iter()
            .map(|(names, o)| {
                let group = if named {
                    GroupSpec::named(names.iter().map(|n| (n.clone(), param(n))))
                } else {
                    GroupSpec::new(names.iter().map(param).collect())
                };
                group
                    .lr(o.lr)
                    .rho(o.rho)
                    .eps(o.eps)
                    .weight_decay(o.weight_decay)
                    .maximize(o.maximize)
                    .foreach(o.foreach)
            })
            .collect();
        Adadelta::with_groups(groups, Options::default())
            .unwrap()
            .with_executor(executor.clone())
    }

    fn step(&self, opt: &mut Adadelta<Param<E>>, t: usize) {
        opt.zero_grad(true);
        for (p, name) in opt.params_mut().iter_mut().zip(self.names()) {
            let key = format!("{t}.{name}");
            if let Some((_, g)) = self.grads.iter().find(|(n, _)| *n == key) {
                p.set_grad(g.data().to_vec()).unwrap();
            }
        }
        opt.step().unwrap();
    }

    fn named<'a>(&self, opt: &'a Adadelta<Param<E>>) -> Vec<(String, TensorRef<'a, E>)> {
        self.names()
            .into_iter()
            .zip(opt.params())
            .map(|(n, p)| {
                (
                    n,
                    TensorRef {
                        shape: p.shape().into(),
                        data: p.data(),
                    },
                )
            })
            .collect()
    }
}

fn same_bits<E: Element>(a: &[E], b: &[E]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits() == y.bits())
}

/// PyTorch saves `kind` after 3 steps; adadelta loads it and continues 3
/// steps; the result must be PyTorch's own 6 steps, bit for bit.
fn pytorch_file_loads_and_continues_bit_for_bit<E: Stored>(kind: &str) {
    let dir = temp_dir(kind);
    python(&["write", kind, dir.to_str().unwrap()]);
    let inputs = read_inputs::<E>(&dir);
    let saved = dir.join("saved.pt");
    let numerics = libtorch_numerics::<E>();
    let executor = numerics.clone().unwrap_or_default();
    let (values, sd): (_, StateDict<E>) = if is_checkpoint(kind) {
        let mut f = TorchFile::open(&saved).unwrap();
        assert_eq!(f.get("epoch"), Some(&Value::Int(3)));
        let sched = f.get("scheduler").expect("the scheduler's state is kept");
        assert_eq!(sched.get("last_epoch"), Some(&Value::Int(3)));
        (
            f.tensors_at("model").unwrap(),
            f.state_dict_at("optimizer").unwrap(),
        )
    } else {
        (
            TorchFile::open(dir.join("params3.pt"))
                .unwrap()
                .tensors()
                .unwrap(),
            adadelta::checkpoint::load::<E>(&saved).unwrap(),
        )
    };
    let mut opt = inputs.optimizer(&values, &executor);
    assert_eq!(opt.executor().libtorch_threads, executor.libtorch_threads);
    if is_checkpoint(kind) {
        opt.load_state_dict(sd).unwrap();
    } else {
        opt.load(&saved).unwrap(); // the path users take
        assert_eq!(opt.state_dict(), sd);
    }
    assert!(
        opt.state(4).is_none(),
        "parameter e had no gradient: no state"
    );
    assert_eq!(opt.state(0).expect("state").step(), 3.0);
    if let Err(why) = numerics {
        eprintln!("{kind}: loaded; the bit-for-bit continuation is skipped: {why}");
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    for t in SAVE_AT + 1..=STEPS {
        inputs.step(&mut opt, t);
    }
    let mut expected = TorchFile::open(dir.join("expected.pt")).unwrap();
    let want = expected.tensors_at::<E>("params").unwrap();
    for ((name, w), p) in want.iter().zip(opt.params()) {
        assert_eq!(w.shape(), p.shape(), "{kind}: {name}");
        assert!(
            same_bits(w.data(), p.data()),
            "{kind}: parameter {name} differs from PyTorch's"
        );
    }
    assert_eq!(
        opt.state_dict(),
        expected.state_dict_at("state").unwrap(),
        "{kind}: state after 6 steps differs from PyTorch's"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// adadelta saves `kind` after 3 steps; PyTorch loads it with
/// `weights_only=True`, finds its own state after 3 steps in it, and
/// continues 3 steps; the result must be adadelta's own 6 steps, bit for
/// bit.
fn adadelta_file_loads_in_pytorch_and_continues_bit_for_bit<E: Stored>(kind: &str) {
    let dir = temp_dir(&format!("{kind}-back"));
    python(&["write", kind, dir.to_str().unwrap()]);
    let inputs = read_inputs::<E>(&dir);
    let numerics = libtorch_numerics::<E>();
    let executor = numerics.clone().unwrap_or_default();
    let mut opt = if kind == "extra_keys" {
        inputs.named_optimizer(&inputs.init, &executor)
    } else {
        inputs.optimizer(&inputs.init, &executor)
    };
    if kind == "extra_keys" {
        for (g, (_, o)) in inputs.groups.iter().enumerate() {
            opt.set_group_extra(g, "initial_lr", serde_json::json!(o.lr))
                .unwrap();
        }
    }
    for t in 1..=SAVE_AT {
        inputs.step(&mut opt, t);
    }
    let rust3 = dir.join("rust3.pt");
    if is_checkpoint(kind) {
        let sd = opt.state_dict_ref();
        let ckpt = Value::dict([
            ("model", torch::tensors_value(inputs.named(&opt))),
            ("optimizer", torch::state_dict_value(&sd).unwrap()),
            ("epoch", Value::Int(3)),
        ]);
        torch::save(&rust3, &ckpt, Durability::Durable).unwrap();
    } else {
        opt.save(&rust3).unwrap();
        let params = torch::tensors_value(inputs.named(&opt));
        torch::save(dir.join("rust_params3.pt"), &params, Durability::NoSync).unwrap();
    }
    for t in SAVE_AT + 1..=STEPS {
        inputs.step(&mut opt, t);
    }
    let sd = opt.state_dict_ref();
    let result = Value::dict([
        ("params", torch::tensors_value(inputs.named(&opt))),
        ("state", torch::state_dict_value(&sd).unwrap()),
    ]);
    torch::save(dir.join("rust6.pt"), &result, Durability::NoSync).unwrap();
    let compare = match &numerics {
        Ok(_) => "bits",
        Err(why) => {
            eprintln!("{kind}: dtypes and shapes compared; bits skipped: {why}");
            "layout"
        }
    };
    let answer: serde_json::Value =
        serde_json::from_str(&python(&["check", kind, dir.to_str().unwrap(), compare])).unwrap();
    assert!(answer["compared"].as_u64().unwrap() > 50, "{answer}");
    assert_eq!(answer["mismatches"], 0, "{kind}: {answer}");
    std::fs::remove_dir_all(&dir).unwrap();
}

macro_rules! both_ways {
    ($($name:ident: $kind:literal of $elem:ty,)*) => {
        mod pytorch_to_rust {
            $(#[test]
            fn $name() {
                super::pytorch_file_loads_and_continues_bit_for_bit::<$elem>($kind);
            })*
        }
        mod rust_to_pytorch {
            $(#[test]
            fn $name() {
                super::adadelta_file_loads_in_pytorch_and_continues_bit_for_bit::<$elem>($kind);
            })*
        }
    };
}

both_ways! {
    an_optimizer_state_dict_with_step_as_a_0_dim_tensor: "plain" of f32,
    a_state_dict_with_step_as_a_plain_number_as_older_pytorch_wrote: "step_number" of f32,
    a_state_dict_with_lr_as_a_1_element_tensor: "lr_tensor" of f32,
    a_state_dict_with_extra_group_keys: "extra_keys" of f32,
    a_training_checkpoint_with_model_optimizer_epoch_and_scheduler: "checkpoint" of f32,
    a_float64_optimizer_state_dict_with_a_float32_step: "float64" of f64,
    a_float64_training_checkpoint: "float64_checkpoint" of f64,
    a_bfloat16_optimizer_state_dict_with_a_float32_step: "bfloat16" of adadelta::half::bf16,
    a_bfloat16_state_dict_of_the_foreach_path: "bfloat16_foreach" of adadelta::half::bf16,
    a_bfloat16_training_checkpoint: "bfloat16_checkpoint" of adadelta::half::bf16,
    a_float16_optimizer_state_dict_with_a_float32_step: "float16" of adadelta::half::f16,
    a_float16_state_dict_of_the_foreach_path: "float16_foreach" of adadelta::half::f16,
    a_float16_training_checkpoint_of_the_foreach_path: "float16_foreach_checkpoint" of adadelta::half::f16,
}

/// PyTorch under `torch.set_default_dtype(torch.float64)` keeps `step` as
/// a float64 tensor; it loads (as float32, which holds every count) and
/// the run continues bit for bit.
#[test]
fn a_float64_state_dict_with_the_float64_step_of_a_float64_default_dtype_loads() {
    pytorch_file_loads_and_continues_bit_for_bit::<f64>("float64_default_dtype");
}

/// PyTorch writes a file adadelta cannot load; the error must name the file
/// and say what was found.
fn refused_with<E: Stored>(kind: &str, words: &[&str]) {
    let dir = temp_dir(&format!("refused-{kind}"));
    python(&["refused", kind, dir.to_str().unwrap()]);
    let path = dir.join("refused.pt");
    let mut opt = Adadelta::new(
        vec![Param::from_vec(vec![E::default(); 3])],
        Options::default(),
    )
    .unwrap();
    let before = opt.state_dict();
    let err = opt.load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
    for w in words {
        assert!(err.contains(w), "{kind}: {err:?} does not say {w:?}");
    }
    assert_eq!(opt.state_dict(), before, "a refused load changed nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_legacy_pre_zip_format_is_refused_with_a_message() {
    refused_with::<f32>("legacy", &["legacy", "pre-1.6", "save it again"]);
}

#[test]
fn float64_state_into_a_float32_optimizer_is_refused_naming_both_dtypes_and_the_tensor() {
    refused_with::<f32>(
        "float64",
        &["state[0].square_avg has dtype torch.float64; expected torch.float32"],
    );
}

#[test]
fn float16_state_into_a_bfloat16_optimizer_is_refused_naming_both_dtypes_and_the_tensor() {
    refused_with::<bf16>(
        "float16",
        &["state[0].square_avg has dtype torch.float16; expected torch.bfloat16"],
    );
}

#[test]
fn a_step_of_another_dtype_than_float32_or_float64_is_refused_naming_it() {
    refused_with::<f64>(
        "step_int64",
        &["state[0].step has dtype torch.int64; expected torch.float32 or torch.float64"],
    );
}

#[test]
fn a_global_outside_the_allow_list_is_refused_and_nothing_is_executed() {
    refused_with::<f32>(
        "global",
        &[
            "GLOBAL __main__.NotAllowed is not accepted",
            "nothing in the file is executed",
        ],
    );
}
