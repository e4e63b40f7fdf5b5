//! float64 parameters through the optimizer API: `Param<f64>`, `NdParam`
//! of f64, `Lent<f64>`; their state and state dicts are float64, in memory,
//! in JSON, in safetensors and in the `torch.save` format (a float32 step,
//! as PyTorch's); another dtype's file is refused with a message that names
//! both dtypes.

use std::borrow::Cow;

use adadelta::checkpoint::torch::{self, Dtype, TorchFile, Value};
use adadelta::checkpoint::{self, Durability, Format, SaveOptions, TensorRef};
use adadelta::kernel::{self, Executor, Job, Numerics};
use adadelta::{Adadelta, CheckpointError, Coefficients, Lent, NdParam, Options, Param, StateDict};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "adadelta-api-float64-{}-{name}",
        std::process::id()
    ))
}

/// A float64 optimizer with state after two steps (one parameter never
/// stepped), and its options.
fn stepped() -> (Adadelta<Param<f64>>, Options) {
    let options = Options {
        lr: 0.7,
        weight_decay: 0.01,
        ..Options::default()
    };
    let w = Param::from_vec_with_shape(vec![0.5, -1.25, 3.0, 1e-300, -0.0, 2.5], vec![2, 3])
        .expect("shape");
    let mut opt = Adadelta::new(vec![w, Param::from_vec(vec![7.0])], options).expect("valid");
    for g in [[0.25, -0.5, 1e-3, 1e200, 2.0, -3.0], [1.0; 6]] {
        opt.params_mut()[0].set_grad(g.to_vec()).expect("length");
        opt.step().expect("steps");
    }
    (opt, options)
}

#[test]
fn a_float64_optimizer_steps_exactly_as_the_float64_kernel() {
    let (opt, options) = stepped();
    // The same two steps on plain slices through the kernel.
    let c = Coefficients::new(&options.hyperparams()).expect("valid");
    let mut p = vec![0.5, -1.25, 3.0, 1e-300, -0.0, 2.5];
    let (mut v, mut u) = (vec![0.0f64; 6], vec![0.0f64; 6]);
    for g in [[0.25, -0.5, 1e-3, 1e200, 2.0, -3.0], [1.0; 6]] {
        let mut jobs = [Job {
            coeffs: &c,
            param: &mut p,
            grad: &g,
            square_avg: &mut v,
            acc_delta: &mut u,
        }];
        kernel::run(&mut jobs, &Executor::default()).expect("runs");
    }
    let bits = |x: &[f64]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(opt.params()[0].data()), bits(&p));
    let s = opt.state(0).expect("state");
    assert_eq!(
        (bits(s.square_avg()), bits(s.acc_delta()), s.step()),
        (bits(&v), bits(&u), 2.0)
    );
    assert!(opt.state(1).is_none(), "never stepped: no state");
    // Not what f32 gives: the values 1e-300 and 1e200 exist only in float64.
    assert!(opt.params()[0].data()[3] != 0.0 && opt.params()[0].data()[3].abs() < 1e-290);
}

#[test]
fn float64_state_dicts_round_trip_bit_for_bit_in_json_and_safetensors() {
    let (opt, _) = stepped();
    let sd = opt.state_dict();
    let json = sd.to_json_string().expect("serialises");
    assert!(
        json.contains(r#""square_avg":{"dtype":"float64","shape":[2,3],"bits":["#),
        "{json}"
    );
    assert!(
        json.contains(r#""step":{"dtype":"float32","shape":[],"bits":[1073741824]}"#),
        "the step counter stays float32: {json}"
    );
    assert_eq!(StateDict::<f64>::from_json_str(&json).expect("parses"), sd);
    for name in ["sd.json", "sd.safetensors"] {
        let path = temp(name);
        opt.save(&path).expect("saves");
        let mut fresh = Adadelta::new(
            vec![
                Param::from_vec_with_shape(vec![0.0f64; 6], vec![2, 3]).expect("shape"),
                Param::from_vec(vec![0.0]),
            ],
            Options::default(),
        )
        .expect("valid");
        fresh.load(&path).expect("loads");
        std::fs::remove_file(&path).expect("removes");
        assert_eq!(fresh.state_dict(), sd, "{name}");
    }
}

#[test]
fn a_state_dict_of_the_other_dtype_is_refused_naming_both_dtypes() {
    let (opt, _) = stepped();
    let json = opt.state_dict().to_json_string().expect("serialises");
    let err = StateDict::<f32>::from_json_str(&json)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"state[0].square_avg has dtype "float64"; expected "float32""#),
        "{err}"
    );
    let path = temp("other.safetensors");
    opt.save(&path).expect("saves");
    let err = StateDict::<f32>::load(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).expect("removes");
    assert!(err.contains("has dtype F64; expected F32"), "{err}");
}

/// Every element's bit pattern, NaN payloads and signed zeros included.
fn state_bits(sd: &StateDict<f64>) -> Vec<(usize, u32, Vec<u64>, Vec<u64>)> {
    let bits = |x: &[f64]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
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

#[test]
fn a_float64_state_dict_round_trips_through_the_torch_format_bit_for_bit() {
    let (opt, _) = stepped();
    let mut sd = opt.state_dict();
    // Values no step makes, which a file must still keep: NaNs with
    // payloads and signs, a negative zero, an infinity, a subnormal.
    let s = sd.state.get_mut(&0).expect("state");
    s.square_avg.data_mut()[..4].copy_from_slice(&[
        f64::from_bits(0x7ff8_0000_dead_beef),
        -0.0,
        f64::INFINITY,
        f64::from_bits(1),
    ]);
    s.acc_delta.data_mut()[0] = f64::from_bits(0xfff4_0000_0000_0001); // a signalling NaN
    let path = temp("roundtrip.pt");
    sd.save(&path).expect("saves");
    let read = checkpoint::load::<f64>(&path).expect("loads");
    assert_eq!(state_bits(&read), state_bits(&sd));
    assert_eq!(read.param_groups, sd.param_groups);
    assert_eq!(read, sd);

    // In the file: a float32 0-dim step and float64 averages, as
    // `torch.save(opt.state_dict())` of a float64 torch.optim.Adadelta.
    let mut file = TorchFile::open(&path).expect("opens");
    let Some(Value::Dict(state)) = file.get("state") else {
        panic!("no state: {:?}", file.root())
    };
    let tensor = |key: &str| match state[0].1.get(key) {
        Some(Value::Tensor(t)) => (t.dtype, t.shape.clone()),
        v => panic!("{key}: {v:?}"),
    };
    assert_eq!(tensor("step"), (Dtype::Float32, vec![]));
    assert_eq!(tensor("square_avg"), (Dtype::Float64, vec![2, 3]));
    assert_eq!(tensor("acc_delta"), (Dtype::Float64, vec![2, 3]));
    assert_eq!(
        state_bits(&file.state_dict::<f64>().expect("reads")),
        state_bits(&sd)
    );
    std::fs::remove_file(&path).expect("removes");

    // The optimizer's own save streams from its live state; its load
    // continues exactly where the saved one was.
    let path = temp("opt.pt");
    opt.save(&path).expect("saves");
    let mut fresh = Adadelta::new(
        vec![
            Param::from_vec_with_shape(vec![0.0f64; 6], vec![2, 3]).expect("shape"),
            Param::from_vec(vec![0.0]),
        ],
        Options::default(),
    )
    .expect("valid");
    fresh.load(&path).expect("loads");
    std::fs::remove_file(&path).expect("removes");
    assert_eq!(
        state_bits(&fresh.state_dict()),
        state_bits(&opt.state_dict())
    );
}

#[test]
fn the_torch_format_refuses_the_other_dtype_both_ways_naming_both() {
    let (opt64, _) = stepped();
    let path = temp("other.pt");
    opt64.save(&path).expect("saves");
    let err = checkpoint::load::<f32>(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("state[0].square_avg has dtype torch.float64; expected torch.float32"),
        "{err}"
    );
    let mut opt32 = Adadelta::new(
        vec![Param::new(vec![1.0; 6]), Param::new(vec![2.0])],
        Options::default(),
    )
    .expect("valid");
    opt32.params_mut()[0]
        .set_grad(vec![0.5; 6])
        .expect("length");
    opt32.step().expect("steps");
    let before = opt32.state_dict();
    assert!(opt32.load(&path).is_err());
    assert_eq!(opt32.state_dict(), before, "a refused load changes nothing");

    opt32.save(&path).expect("saves");
    let err = StateDict::<f64>::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("state[0].square_avg has dtype torch.float32; expected torch.float64"),
        "{err}"
    );

    // A module state dict too: its tensors are read as what they are.
    let w = [0.5_f32, -0.25];
    let module = torch::tensors_value([(
        "w",
        TensorRef {
            shape: vec![2].into(),
            data: &w,
        },
    )]);
    torch::save(&path, &module, Durability::NoSync).expect("saves");
    let mut file = TorchFile::open(&path).expect("opens");
    let err = file.tensors::<f64>().unwrap_err().to_string();
    assert!(
        err.contains("tensor w has dtype torch.float32; expected torch.float64"),
        "{err}"
    );
    assert_eq!(file.tensors::<f32>().expect("reads")[0].1.data(), &w);
    std::fs::remove_file(&path).expect("removes");
}

#[test]
fn a_float64_save_that_fails_writes_nothing_and_keeps_the_old_file() {
    let (opt, _) = stepped();
    let sd = opt.state_dict();
    let mut view = sd.as_ref();
    view.state[0].1.acc_delta.shape = Cow::Owned(vec![7]); // 7 elements claimed, 6 held
    let path = temp("failed.pt");
    let err = checkpoint::save(&path, &view, &SaveOptions::new(Format::Torch)).unwrap_err();
    assert!(err.to_string().contains("cannot hold 6 elements"), "{err}");
    assert!(!path.exists(), "nothing written");
    std::fs::write(&path, b"the old file").expect("writes");
    assert!(checkpoint::save(&path, &view, &SaveOptions::new(Format::Torch)).is_err());
    assert_eq!(std::fs::read(&path).expect("reads"), b"the old file");
    std::fs::remove_file(&path).expect("removes");
}

#[test]
fn lent_and_ndarray_float64_parameters_step_like_owned_ones() {
    let (owned, options) = stepped();
    let mut w = Param::from_vec_with_shape(vec![0.5, -1.25, 3.0, 1e-300, -0.0, 2.5], vec![2, 3])
        .expect("shape");
    let mut b = Param::from_vec(vec![7.0]);
    let mut lent = Adadelta::new(vec![Lent::of(&w), Lent::of(&b)], options).expect("valid");
    let nd = NdParam::from_array(
        ndarray::Array2::from_shape_vec((2, 3), vec![0.5, -1.25, 3.0, 1e-300, -0.0, 2.5])
            .expect("shape"),
    );
    let mut by_nd = Adadelta::new(vec![nd], options).expect("valid");
    for g in [[0.25, -0.5, 1e-3, 1e200, 2.0, -3.0], [1.0; 6]] {
        w.set_grad(g.to_vec()).expect("length");
        lent.step_lent(&mut [&mut w, &mut b]).expect("steps");
        by_nd.params_mut()[0].grad =
            Some(ndarray::Array2::from_shape_vec((2, 3), g.to_vec()).expect("shape"));
        by_nd.step().expect("steps");
    }
    assert_eq!(lent.state_dict(), owned.state_dict());
    assert_eq!(by_nd.state_dict().state, owned.state_dict().state);
    let bits = |x: &[f64]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(w.data()), bits(owned.params()[0].data()));
    assert_eq!(
        bits(by_nd.params()[0].data.as_slice().expect("contiguous")),
        bits(owned.params()[0].data())
    );
}

#[test]
fn reproduce_libtorch_steps_float64_or_says_why_not() {
    let (mut opt, _) = stepped();
    opt = opt.with_executor(Executor::with_numerics(Numerics::ReproduceLibtorch));
    opt.params_mut()[0].set_grad(vec![0.5; 6]).expect("length");
    let before = opt.state_dict();
    match opt.step() {
        Ok(()) => assert_eq!(opt.state(0).expect("state").step(), 3.0),
        // A CPU whose oneMKL recipe the kernel cannot compute: nothing changed.
        Err(e) => {
            assert!(
                matches!(e, adadelta::Error::CannotReproduceLibtorch(_)),
                "{e}"
            );
            assert_eq!(opt.state_dict(), before);
        }
    }
}
