//! float64 parameters through the optimizer API: `Param<f64>`, `NdParam`
//! of f64, `Lent<f64>`; their state and state dicts are float64, in memory,
//! in JSON and in safetensors; the `torch.save` format and another dtype's
//! file are refused with messages that say why.

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

#[test]
fn the_torch_format_refuses_float64_state_and_writes_nothing() {
    let (opt, _) = stepped();
    let path = temp("sd.pt");
    let err = opt.save(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err:?}");
    assert!(
        err.to_string().contains("float32 state only, not float64"),
        "{err}"
    );
    assert!(!path.exists(), "nothing written");
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
