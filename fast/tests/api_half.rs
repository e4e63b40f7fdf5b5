//! bfloat16 and float16 parameters through the optimizer API:
//! `Param<bf16>`, `Param<f16>`, `Lent` and `NdParam` of them; their state
//! and state dicts are of the parameters' dtype, in memory, in JSON, in
//! safetensors and in the `torch.save` format (a float32 step, as
//! PyTorch's); another dtype's file is refused with a message that names
//! both dtypes, and a failed save writes nothing.
//!
//! Every test runs for both dtypes; the stepping tests run in every
//! numerics this CPU computes and with both of PyTorch's paths
//! (`foreach`), on tensors of 37 and 100 elements, so that PyTorch's scalar
//! tail (the last `len % 32` elements) is part of every step.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use adadelta::checkpoint::torch::{self, AnyTensorRef, Dtype, TorchFile, Value};
use adadelta::checkpoint::{self, Durability, Format, SaveOptions, Stored, TensorRef};
use adadelta::half::{bf16, f16};
use adadelta::kernel::{self, Element, Executor, Job, Numerics};
use adadelta::{
    Adadelta, CheckpointError, Coefficients, GroupSpec, Lent, NdParam, Options, Param, StateDict,
};

/// The two 16-bit element types, with the conversion the tests make their
/// values with and the other one (for refusals).
trait Half: Stored {
    fn of(x: f32) -> Self;
    /// The value of a bit pattern.
    fn bits16(b: u16) -> Self;
    /// What safetensors calls the dtype.
    const SAFETENSORS_NAME: &'static str;
    /// Bit patterns no step makes, which a file must still keep (and a
    /// state dict may hold: no negative number): NaNs with payloads and
    /// signs (a signalling one too), a negative zero, an infinity, the
    /// largest and the smallest subnormal, the largest finite value.
    const SPECIALS: [u16; 8];
}

impl Half for bf16 {
    fn of(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
    fn bits16(b: u16) -> bf16 {
        bf16::from_bits(b)
    }
    const SAFETENSORS_NAME: &'static str = "BF16";
    const SPECIALS: [u16; 8] = [
        0x7fc1, 0xffa5, 0x7f81, 0x8000, 0x7f80, 0x007f, 0x0001, 0x7f7f,
    ];
}

impl Half for f16 {
    fn of(x: f32) -> f16 {
        f16::from_f32(x)
    }
    fn bits16(b: u16) -> f16 {
        f16::from_bits(b)
    }
    const SAFETENSORS_NAME: &'static str = "F16";
    const SPECIALS: [u16; 8] = [
        0x7e01, 0xfe5a, 0x7c01, 0x8000, 0x7c00, 0x03ff, 0x0001, 0x7bff,
    ];
}

/// Runs `$body` once with `$e` as each 16-bit type.
macro_rules! for_both {
    ($e:ident => $body:block) => {{
        {
            type $e = bf16;
            $body
        }
        {
            type $e = f16;
            $body
        }
    }};
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("adadelta-api-half-{}-{name}", std::process::id()))
}

fn bits<E: Element>(x: &[E]) -> Vec<u64> {
    x.iter().map(|y| y.bits()).collect()
}

/// Every state element's bit pattern, NaN payloads and signed zeros
/// included, and every step counter's.
fn state_bits<E: Element>(sd: &StateDict<E>) -> Vec<(usize, u32, Vec<u64>, Vec<u64>)> {
    sd.state
        .iter()
        .map(|(&i, s)| {
            (
                i,
                s.step.to_bits(),
                bits(s.square_avg.data()),
                bits(s.acc_delta.data()),
            )
        })
        .collect()
}

/// `n` values of moderate size, different for each `seed`.
fn values<E: Half>(n: usize, seed: u32) -> Vec<E> {
    (0..n as u32)
        .map(|i| {
            let x = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 2001;
            E::of((x as f32 - 1000.0) / 250.0)
        })
        .collect()
}

/// The executors to step with: every numerics this CPU computes, with the
/// intra-op thread count of a PyTorch run under `torch.set_num_threads(1)`.
fn executors() -> Vec<Executor> {
    let mut numerics = Numerics::supported();
    if Numerics::ReproduceLibtorch.libtorch_sqrt().is_ok() {
        numerics.push(Numerics::ReproduceLibtorch);
    }
    numerics
        .into_iter()
        .map(|numerics| Executor {
            libtorch_threads: Some(1),
            ..Executor::with_numerics(numerics)
        })
        .collect()
}

const STEPS: u32 = 3;

/// The options of the stepping tests, on PyTorch's path `foreach`.
fn options(foreach: Option<bool>) -> Options {
    Options {
        lr: 0.7,
        weight_decay: 0.01,
        foreach,
        ..Options::default()
    }
}

/// An optimizer of a 37-element and a 4 × 25 parameter, and a third that
/// never has a gradient.
fn optimizer<E: Half>(foreach: Option<bool>, executor: &Executor) -> Adadelta<Param<E>> {
    let params = vec![
        Param::from_vec(values(37, 1)),
        Param::from_vec_with_shape(values(100, 2), vec![4, 25]).expect("shape"),
        Param::from_vec(values(5, 3)),
    ];
    Adadelta::new(params, options(foreach))
        .expect("valid")
        .with_executor(executor.clone())
}

/// The gradient of parameter `i` (0 or 1) at step `t`.
fn grad<E: Half>(i: usize, t: u32) -> Vec<E> {
    values([37, 100][i], 10 * t + i as u32)
}

/// [`optimizer`] after [`STEPS`] steps.
fn stepped<E: Half>(foreach: Option<bool>, executor: &Executor) -> Adadelta<Param<E>> {
    let mut opt = optimizer::<E>(foreach, executor);
    for t in 1..=STEPS {
        for i in 0..2 {
            opt.params_mut()[i].set_grad(grad(i, t)).expect("length");
        }
        opt.step().expect("steps");
    }
    opt
}

/// The same steps on plain slices through the kernel: parameters and
/// state, by parameter.
fn kernel_steps<E: Half>(foreach: Option<bool>, executor: &Executor) -> Vec<[Vec<u64>; 3]> {
    let c = Coefficients::new(&options(foreach).hyperparams()).expect("valid");
    (0..2)
        .map(|i| {
            let mut p: Vec<E> = values([37, 100][i], i as u32 + 1);
            let (mut v, mut u) = (vec![E::default(); p.len()], vec![E::default(); p.len()]);
            for t in 1..=STEPS {
                let g = grad::<E>(i, t);
                let mut jobs = [Job {
                    coeffs: &c,
                    param: &mut p,
                    grad: &g,
                    square_avg: &mut v,
                    acc_delta: &mut u,
                }];
                kernel::run(&mut jobs, executor).expect("runs");
            }
            [bits(&p), bits(&v), bits(&u)]
        })
        .collect()
}

/// Parameters and state of `opt`, by parameter with state.
fn optimizer_bits<E: Element>(opt: &Adadelta<Param<E>>) -> Vec<[Vec<u64>; 3]> {
    (0..2)
        .map(|i| {
            let s = opt.state(i).expect("state");
            [
                bits(opt.params()[i].data()),
                bits(s.square_avg()),
                bits(s.acc_delta()),
            ]
        })
        .collect()
}

#[test]
fn a_half_optimizer_steps_exactly_as_the_kernel_in_every_numerics_on_both_pytorch_paths() {
    for_both!(E => {
        for executor in executors() {
            let mut by_path = Vec::new();
            for foreach in [None, Some(false), Some(true)] {
                let opt = stepped::<E>(foreach, &executor);
                let got = optimizer_bits(&opt);
                assert_eq!(
                    got,
                    kernel_steps::<E>(foreach, &executor),
                    "{} {:?} foreach={foreach:?}",
                    E::DTYPE,
                    executor.numerics
                );
                assert_eq!(opt.state(0).expect("state").step(), STEPS as f32);
                assert!(opt.state(2).is_none(), "never stepped: no state");
                by_path.push(got);
            }
            assert_eq!(by_path[0], by_path[1], "foreach=False is the for-loop path");
            // `_foreach_mul_` rounds rho = 0.9 to the dtype: other bits.
            assert_ne!(by_path[0], by_path[2], "{}: foreach=True differs", E::DTYPE);
        }
    });
}

#[test]
fn a_half_optimizer_keeps_its_own_executor_and_its_thread_count_for_pytorch() {
    for_both!(E => {
        let executor = Executor {
            libtorch_threads: Some(1),
            ..Executor::with_numerics(Numerics::ReproduceLibtorch)
        };
        let opt = optimizer::<E>(None, &executor);
        assert_eq!(opt.executor().libtorch_threads, Some(1));
        assert_eq!(opt.executor().numerics, Numerics::ReproduceLibtorch);
    });
}

#[test]
fn reproduce_libtorch_steps_a_half_optimizer_or_says_why_not_and_changes_nothing() {
    for_both!(E => {
        let executor = Executor::with_numerics(Numerics::ReproduceLibtorch);
        let mut opt = optimizer::<E>(Some(true), &executor);
        opt.params_mut()[0].set_grad(grad(0, 1)).expect("length");
        let before = opt.state_dict();
        match opt.step() {
            Ok(()) => assert_eq!(opt.state(0).expect("state").step(), 1.0),
            Err(e) => {
                assert!(matches!(e, adadelta::Error::CannotReproduceLibtorch(_)), "{e}");
                assert_eq!(opt.state_dict(), before);
            }
        }
    });
}

#[test]
fn lent_and_ndarray_half_parameters_step_like_owned_ones() {
    for_both!(E => {
        let executor = Executor::default();
        let owned = stepped::<E>(Some(true), &executor);
        let mut a = Param::from_vec(values::<E>(37, 1));
        let mut b = Param::from_vec_with_shape(values::<E>(100, 2), vec![4, 25]).expect("shape");
        let mut c = Param::from_vec(values::<E>(5, 3));
        let mut lent =
            Adadelta::new(vec![Lent::of(&a), Lent::of(&b), Lent::of(&c)], options(Some(true)))
                .expect("valid");
        let nd = |v: Vec<E>| NdParam::from_array(ndarray::Array1::from(v));
        let mut by_nd = Adadelta::new(
            vec![nd(values(37, 1)), nd(values(100, 2)), nd(values(5, 3))],
            options(Some(true)),
        )
        .expect("valid");
        for t in 1..=STEPS {
            a.set_grad(grad(0, t)).expect("length");
            b.set_grad(grad(1, t)).expect("length");
            lent.step_lent(&mut [&mut a, &mut b, &mut c]).expect("steps");
            for i in 0..2 {
                by_nd.params_mut()[i].grad = Some(ndarray::Array1::from(grad::<E>(i, t)));
            }
            by_nd.step().expect("steps");
        }
        assert_eq!(lent.state_dict(), owned.state_dict());
        assert_eq!(bits(a.data()), bits(owned.params()[0].data()));
        assert_eq!(bits(b.data()), bits(owned.params()[1].data()));
        let nd_sd = by_nd.state_dict();
        for i in 0..2 {
            let (mine, theirs) = (&nd_sd.state[&i], &owned.state_dict().state[&i]);
            assert_eq!(bits(mine.square_avg.data()), bits(theirs.square_avg.data()));
            assert_eq!(bits(mine.acc_delta.data()), bits(theirs.acc_delta.data()));
            assert_eq!(
                bits(by_nd.params()[i].data.as_slice().expect("contiguous")),
                bits(owned.params()[i].data())
            );
        }
    });
}

#[test]
fn hooks_run_on_a_half_optimizer_as_on_a_float32_one() {
    for_both!(E => {
        let mut opt = optimizer::<E>(None, &Executor::default());
        let posts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&posts);
        opt.register_step_pre_hook(|opt| opt.set_lr(0.5).expect("valid"));
        opt.register_step_post_hook(move |opt: &mut Adadelta<Param<E>>| {
            assert_eq!(opt.state(0).expect("state").step(), 1.0);
            seen.fetch_add(1, Ordering::Relaxed);
        });
        opt.register_state_dict_post_hook(
            |_, sd: &mut StateDict<E>| {
                sd.state.get_mut(&0).expect("state").square_avg.data_mut()[0] = E::of(2.0);
            },
            false,
        );
        opt.register_load_state_dict_pre_hook(
            |_, sd: &mut StateDict<E>| {
                sd.state.get_mut(&0).expect("state").acc_delta.data_mut()[1] = E::of(3.0);
            },
            false,
        );
        opt.params_mut()[0].set_grad(grad(0, 1)).expect("length");
        opt.step().expect("steps");
        assert_eq!(posts.load(Ordering::Relaxed), 1);
        assert_eq!(opt.param_groups()[0].options().lr, 0.5);
        let sd = opt.state_dict();
        assert_eq!(sd.state[&0].square_avg.data()[0], E::of(2.0));
        opt.load_state_dict(sd).expect("loads");
        let s = opt.state(0).expect("state");
        assert_eq!((s.square_avg()[0], s.acc_delta()[1]), (E::of(2.0), E::of(3.0)));
    });
}

/// [`Half::SPECIALS`] in parameter 0's `square_avg`, a NaN in its
/// `acc_delta`, and a large step count.
fn with_special_values<E: Half>(sd: &mut StateDict<E>) {
    let s = sd.state.get_mut(&0).expect("state");
    for (x, b) in s.square_avg.data_mut().iter_mut().zip(E::SPECIALS) {
        *x = E::bits16(b);
    }
    s.acc_delta.data_mut()[0] = E::bits16(E::SPECIALS[2]);
    s.step = 1e7;
}

#[test]
fn a_half_state_dict_is_json_with_its_dtype_its_16_bit_patterns_and_a_float32_step() {
    for_both!(E => {
        let mut sd = stepped::<E>(None, &Executor::default()).state_dict();
        with_special_values(&mut sd);
        let json = sd.to_json_string().expect("serialises");
        let [a, b, ..] = E::SPECIALS;
        let head = format!(r#""square_avg":{{"dtype":"{}","shape":[37],"bits":[{a},{b},"#, E::DTYPE);
        assert!(json.contains(&head), "{json}");
        let shaped = format!(r#""acc_delta":{{"dtype":"{}","shape":[4,25],"bits":["#, E::DTYPE);
        assert!(json.contains(&shaped), "{json}");
        assert!(
            json.contains(r#""step":{"dtype":"float32","shape":[],"bits":[1259902592]}"#),
            "the step counter stays float32: {json}"
        );
        let read = StateDict::<E>::from_json_str(&json).expect("parses");
        assert_eq!(state_bits(&read), state_bits(&sd));
        assert_eq!(read, sd);

        // A bit pattern wider than 16 bits is not an element.
        let wide = json.replacen(&format!("[{a},"), "[65536,", 1);
        let err = StateDict::<E>::from_json_str(&wide).unwrap_err().to_string();
        let want = format!("u16 (the bit pattern of a {})", E::DTYPE);
        assert!(err.contains(&want), "{err}");
    });
}

#[test]
fn half_state_dicts_round_trip_bit_for_bit_through_json_safetensors_and_the_torch_format() {
    for_both!(E => {
        let opt = stepped::<E>(Some(true), &Executor::default());
        let mut sd = opt.state_dict();
        with_special_values(&mut sd);
        for name in ["sd.json", "sd.safetensors", "sd.pt"] {
            let path = temp(&format!("{}-{name}", E::DTYPE));
            sd.save(&path).expect("saves");
            let read = checkpoint::load::<E>(&path).expect("loads");
            assert_eq!(state_bits(&read), state_bits(&sd), "{name}");
            assert_eq!(read, sd, "{name}");
            let mut fresh = optimizer::<E>(None, &Executor::default());
            fresh.load(&path).expect("loads");
            assert_eq!(state_bits(&fresh.state_dict()), state_bits(&sd), "{name}");
            assert_eq!(fresh.param_groups()[0].options().foreach, Some(true), "{name}");
            std::fs::remove_file(&path).expect("removes");
        }

        // The optimizer's own save streams from its live state; a load
        // continues exactly where the saved one was.
        for name in ["opt.json", "opt.safetensors", "opt.pt"] {
            let path = temp(&format!("{}-{name}", E::DTYPE));
            opt.save(&path).expect("saves");
            let mut resumed = optimizer::<E>(None, &Executor::default());
            resumed.load(&path).expect("loads");
            std::fs::remove_file(&path).expect("removes");
            for i in 0..2 {
                resumed.params_mut()[i].data_mut().copy_from_slice(opt.params()[i].data());
            }
            let mut original = opt.clone();
            for o in [&mut original, &mut resumed] {
                for i in 0..2 {
                    o.params_mut()[i].set_grad(grad(i, 9)).expect("length");
                }
                o.step().expect("steps");
            }
            assert_eq!(optimizer_bits(&resumed), optimizer_bits(&original), "{name}");
            assert_eq!(resumed.state(1).expect("state").step(), STEPS as f32 + 1.0);
        }
    });
}

#[test]
fn the_files_hold_the_dtype_as_pytorch_and_safetensors_name_it_and_a_float32_step() {
    for_both!(E => {
        let opt = stepped::<E>(None, &Executor::default());
        let path = temp(&format!("{}-layout.safetensors", E::DTYPE));
        opt.save(&path).expect("saves");
        let bytes = std::fs::read(&path).expect("reads");
        std::fs::remove_file(&path).expect("removes");
        let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
        let dtype = |name: &str| file.tensor(name).expect("present").dtype();
        assert_eq!(dtype("state.1.square_avg"), E::SAFETENSORS);
        assert_eq!(E::SAFETENSORS.to_string(), E::SAFETENSORS_NAME);
        assert_eq!(dtype("state.1.acc_delta"), E::SAFETENSORS);
        assert_eq!(dtype("state.1.step"), safetensors::Dtype::F32);
        assert_eq!(file.tensor("state.1.square_avg").expect("present").shape(), &[4, 25]);

        // As `torch.save(opt.state_dict())` of a 16-bit torch.optim.Adadelta:
        // a float32 0-dim step, the averages in the dtype's storage.
        let path = temp(&format!("{}-layout.pt", E::DTYPE));
        opt.save(&path).expect("saves");
        let mut file = TorchFile::open(&path).expect("opens");
        let Some(Value::Dict(state)) = file.get("state") else {
            panic!("no state: {:?}", file.root())
        };
        let tensor = |key: &str| match state[1].1.get(key) {
            Some(Value::Tensor(t)) => (t.dtype, t.shape.clone()),
            v => panic!("{key}: {v:?}"),
        };
        assert_eq!(tensor("step"), (Dtype::Float32, vec![]));
        assert_eq!(tensor("square_avg"), (E::TORCH, vec![4, 25]));
        assert_eq!(tensor("acc_delta"), (E::TORCH, vec![4, 25]));
        assert_eq!(
            state_bits(&file.state_dict::<E>().expect("reads")),
            state_bits(&opt.state_dict())
        );
        std::fs::remove_file(&path).expect("removes");
    });
    assert_eq!(<bf16 as Stored>::TORCH, Dtype::BFloat16);
    assert_eq!(<f16 as Stored>::TORCH, Dtype::Float16);
    assert_eq!(Dtype::BFloat16.storage_class(), "BFloat16Storage");
    assert_eq!(Dtype::Float16.storage_class(), "HalfStorage");
}

/// `load::<E>` of a file that holds `F`'s state: refused, naming both
/// dtypes as the format names them, and the optimizer unchanged.
fn refused<E: Half, F: Half>() {
    let theirs = stepped::<F>(None, &Executor::default());
    let mut mine = stepped::<E>(None, &Executor::default());
    let before = mine.state_dict();
    let names = [
        ("json", format!("{:?}", F::DTYPE), format!("{:?}", E::DTYPE)),
        (
            "safetensors",
            F::SAFETENSORS_NAME.into(),
            E::SAFETENSORS_NAME.into(),
        ),
        ("pt", F::TORCH.to_string(), E::TORCH.to_string()),
    ];
    for (ext, found, expected) in names {
        let path = temp(&format!("{}-as-{}.{ext}", F::DTYPE, E::DTYPE));
        theirs.save(&path).expect("saves");
        let err = checkpoint::load::<E>(&path).unwrap_err();
        assert!(!matches!(err, CheckpointError::Io { .. }), "{err:?}");
        let err = err.to_string();
        let want = format!("has dtype {found}; expected {expected}");
        assert!(err.contains(&want), "{ext}: {err}");
        assert!(err.contains("square_avg"), "{ext}: names the tensor: {err}");
        assert!(mine.load(&path).is_err());
        assert_eq!(mine.state_dict(), before, "a refused load changes nothing");
        std::fs::remove_file(&path).expect("removes");
    }
}

#[test]
fn a_state_dict_of_the_other_16_bit_dtype_is_refused_naming_both_in_every_format() {
    refused::<bf16, f16>();
    refused::<f16, bf16>();
}

#[test]
fn float32_state_and_half_state_are_refused_for_each_other_naming_both() {
    let mut f32_opt =
        Adadelta::new(vec![Param::new(vec![1.0; 37])], Options::default()).expect("valid");
    f32_opt.params_mut()[0]
        .set_grad(vec![0.5; 37])
        .expect("length");
    f32_opt.step().expect("steps");
    for_both!(E => {
        for ext in ["json", "safetensors", "pt"] {
            let path = temp(&format!("float32-as-{}.{ext}", E::DTYPE));
            f32_opt.save(&path).expect("saves");
            let err = StateDict::<E>::load(&path).unwrap_err().to_string();
            let want = match ext {
                "json" => format!("has dtype \"float32\"; expected {:?}", E::DTYPE),
                "safetensors" => format!("has dtype F32; expected {}", E::SAFETENSORS_NAME),
                _ => format!("has dtype torch.float32; expected {}", E::TORCH),
            };
            assert!(err.contains(&want), "{ext}: {err}");

            stepped::<E>(None, &Executor::default()).save(&path).expect("saves");
            let err = StateDict::<f32>::load(&path).unwrap_err().to_string();
            let want = match ext {
                "json" => format!("has dtype {:?}; expected \"float32\"", E::DTYPE),
                "safetensors" => format!("has dtype {}; expected F32", E::SAFETENSORS_NAME),
                _ => format!("has dtype {}; expected torch.float32", E::TORCH),
            };
            assert!(err.contains(&want), "{ext}: {err}");
            std::fs::remove_file(&path).expect("removes");
        }
    });
}

#[test]
fn a_half_save_that_fails_writes_nothing_and_keeps_the_old_file() {
    for_both!(E => {
        let sd = stepped::<E>(None, &Executor::default()).state_dict();
        // 38 elements claimed, 37 held: the binary formats refuse it.
        let mut misshapen = sd.as_ref();
        misshapen.state[0].1.acc_delta.shape = Cow::Owned(vec![38]);
        // A group key that is one of the optimizer's own: every format refuses it.
        let mut reserved = sd.clone();
        reserved.param_groups[0].extra.insert("lr", 0.5);
        let failures = [
            (Format::Safetensors, misshapen.clone()),
            (Format::Torch, misshapen),
            (Format::Json, reserved.as_ref()),
            (Format::Safetensors, reserved.as_ref()),
            (Format::Torch, reserved.as_ref()),
        ];
        for (format, view) in failures {
            let path = temp(&format!("{}-failed-{format:?}", E::DTYPE));
            let err = checkpoint::save(&path, &view, &SaveOptions::new(format)).unwrap_err();
            assert!(!matches!(err, CheckpointError::Io { .. }), "{format:?}: {err:?}");
            assert!(!path.exists(), "{format:?}: nothing written");
            std::fs::write(&path, b"the old file").expect("writes");
            assert!(checkpoint::save(&path, &view, &SaveOptions::new(format)).is_err());
            assert_eq!(std::fs::read(&path).expect("reads"), b"the old file");
            std::fs::remove_file(&path).expect("removes");
        }
    });
}

#[test]
fn a_torch_file_holds_half_module_tensors_beside_float32_ones_and_reads_each_as_its_type() {
    for_both!(E => {
        let w: Vec<E> = values(37, 5);
        let b = [0.5_f32, -0.25];
        let path = temp(&format!("{}-module.pt", E::DTYPE));
        let module = torch::tensors_value([
            ("fc.weight", AnyTensorRef::from(TensorRef { shape: vec![37].into(), data: &w[..] })),
            ("fc.bias", TensorRef { shape: vec![2].into(), data: &b[..] }.into()),
        ]);
        let ckpt = Value::dict([("model", module), ("epoch", Value::Int(3))]);
        torch::save(&path, &ckpt, Durability::NoSync).expect("saves");
        let mut file = TorchFile::open(&path).expect("opens");
        let Some(Value::Tensor(info)) = file.get("model").and_then(|m| m.get("fc.weight")).cloned()
        else {
            panic!("no fc.weight: {:?}", file.root())
        };
        assert_eq!((info.dtype, info.shape.clone()), (E::TORCH, vec![37]));
        assert_eq!(bits(file.tensor::<E>(&info).expect("reads").data()), bits(&w));
        let err = file.tensors_at::<E>("model").unwrap_err().to_string();
        let want = format!("tensor fc.bias has dtype torch.float32; expected {}", E::TORCH);
        assert!(err.contains(&want), "{err}");
        let err = file.tensor::<f32>(&info).unwrap_err().to_string();
        let want = format!("has dtype {}; expected torch.float32", E::TORCH);
        assert!(err.contains(&want), "{err}");
        std::fs::remove_file(&path).expect("removes");
    });
}

#[test]
fn groups_of_half_parameters_keep_their_own_foreach_through_a_checkpoint() {
    for_both!(E => {
        let groups = vec![
            GroupSpec::new(vec![Param::from_vec(values::<E>(37, 1))]).foreach(Some(true)),
            GroupSpec::new(vec![Param::from_vec(values::<E>(37, 1))]),
        ];
        let mut opt = Adadelta::with_groups(groups, Options::default()).expect("valid");
        for t in 1..=STEPS {
            for i in 0..2 {
                opt.params_mut()[i].set_grad(grad(0, t)).expect("length");
            }
            opt.step().expect("steps");
        }
        let (a, b) = (opt.state(0).expect("state"), opt.state(1).expect("state"));
        assert_ne!(
            (bits(a.square_avg()), bits(a.acc_delta())),
            (bits(b.square_avg()), bits(b.acc_delta())),
            "{}: the foreach group rounds rho to the dtype",
            E::DTYPE
        );
        let path = temp(&format!("{}-groups.pt", E::DTYPE));
        opt.save(&path).expect("saves");
        let sd = StateDict::<E>::load(&path).expect("loads");
        std::fs::remove_file(&path).expect("removes");
        let foreach: Vec<_> = sd.param_groups.iter().map(|g| g.options.foreach).collect();
        assert_eq!(foreach, [Some(true), None]);
        assert_eq!(sd, opt.state_dict());
    });
}

/// float16 holds at most 65504: an `eps`, `lr` or `weight_decay` above it
/// would be infinite in its tensors and make every element NaN or infinite,
/// so the step refuses it with `Hyperparams::validate`'s message and writes
/// nothing; bfloat16 (float32's range) steps with the same values.
#[test]
fn float16_refuses_scalars_it_cannot_hold_and_writes_nothing() {
    use adadelta::{Coefficients, Hyperparams};
    let cases = [
        (
            Hyperparams {
                eps: 1e5,
                ..Default::default()
            },
            "Invalid epsilon value: 100000.0",
        ),
        (
            Hyperparams {
                lr: 7e4,
                ..Default::default()
            },
            "Invalid learning rate: 70000.0",
        ),
        (
            Hyperparams {
                weight_decay: 1e6,
                ..Default::default()
            },
            "Invalid weight_decay value: 1000000.0",
        ),
    ];
    for (h, message) in cases {
        let c = Coefficients::new(&h).expect("valid in float32");
        let (p0, g) = (vec![f16::from_f32(1.0); 3], vec![f16::from_f32(0.5); 3]);
        let (mut p, mut v, mut u) = (p0.clone(), vec![f16::ZERO; 3], vec![f16::ZERO; 3]);
        let err = adadelta::step(&c, &mut p, &g, &mut v, &mut u).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(p, p0, "nothing written");
        assert!(
            v.iter().chain(&u).all(|x| x.to_bits() == 0),
            "nothing written"
        );
        // The same hyperparameters step bfloat16 tensors.
        let (mut p, mut v, mut u) = (vec![bf16::ONE; 3], vec![bf16::ZERO; 3], vec![bf16::ZERO; 3]);
        adadelta::step(&c, &mut p, &[bf16::from_f32(0.5); 3], &mut v, &mut u)
            .expect("bfloat16 holds it");
    }
}
