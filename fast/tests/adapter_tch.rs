//! The tch adapter (`Adadelta<tch::Tensor>`, feature `tch`): compared bit
//! for bit with the plain API on the same values, in place, with every
//! refusal clear and changing nothing. (Its comparison with libtorch's own
//! Adadelta step is difftest's `adapter_tch.rs`.)

mod common;

use adadelta::tch::tch::{self, Kind, Tensor};
use adadelta::{Adadelta, Error, GroupSpec, Options, Param};
use common::{bits, Rng};

const CPU: (Kind, tch::Device) = (Kind::Float, tch::Device::Cpu);

fn values(t: &Tensor) -> Vec<f32> {
    Vec::try_from(&t.contiguous().reshape([-1])).unwrap()
}

fn leaf(rng: &mut Rng, shape: &[i64]) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    Tensor::from_slice(&rng.vec(n))
        .reshape(shape)
        .set_requires_grad(true)
}

fn shape(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

#[test]
fn tch_steps_are_bit_identical_to_the_plain_api_over_groups_and_undefined_gradients() {
    let mut rng = Rng(11);
    let shapes: [&[i64]; 5] = [&[4, 3], &[4], &[1, 4], &[1], &[5]];
    let params: Vec<Tensor> = shapes.iter().map(|s| leaf(&mut rng, s)).collect();
    let x = Tensor::from_slice(&rng.vec(8 * 3)).reshape([8, 3]);
    let y = Tensor::from_slice(&rng.vec(8)).reshape([8, 1]);
    let spec = |ps: Vec<Tensor>, gi: usize| {
        GroupSpec::new(ps)
            .lr(0.5 + gi as f64)
            .weight_decay(0.01 * gi as f64)
    };
    let handles = |r: std::ops::Range<usize>| params[r].iter().map(Tensor::shallow_clone).collect();
    let mut opt = Adadelta::with_groups(
        vec![spec(handles(0..2), 0), spec(handles(2..5), 1)],
        Options {
            rho: 0.8,
            ..Options::default()
        },
    )
    .unwrap();
    let mirror = |r: std::ops::Range<usize>| {
        params[r]
            .iter()
            .map(|t| Param::with_shape(values(t), shape(t)).unwrap())
            .collect::<Vec<_>>()
    };
    let mut plain = Adadelta::with_groups(
        vec![spec_plain(mirror(0..2), 0), spec_plain(mirror(2..5), 1)],
        Options {
            rho: 0.8,
            ..Options::default()
        },
    )
    .unwrap();
    for step in 0..6 {
        opt.zero_grad();
        let h = x.matmul(&params[0].tr()).relu() + &params[1];
        let out = h.matmul(&params[2].tr()) + &params[3];
        (out - &y).square().mean(Kind::Float).backward();
        for (i, t) in params.iter().enumerate() {
            let g = t.grad();
            if g.defined() {
                plain.params_mut()[i].set_grad(values(&g)).unwrap();
            }
        }
        opt.step().unwrap();
        plain.step().unwrap();
        for (i, t) in params.iter().enumerate() {
            assert_eq!(
                bits(&values(t)),
                bits(plain.params()[i].data()),
                "step {step} param {i}"
            );
            assert_eq!(opt.state(i), plain.state(i), "step {step} state {i}");
        }
    }
    assert!(
        opt.state(4).is_none(),
        "the unused parameter's gradient is undefined: no state"
    );
    assert_eq!(opt.state_dict(), plain.state_dict());
}

fn spec_plain(ps: Vec<Param>, gi: usize) -> GroupSpec<Param> {
    GroupSpec::new(ps)
        .lr(0.5 + gi as f64)
        .weight_decay(0.01 * gi as f64)
}

#[test]
fn the_step_writes_the_tensors_own_memory() {
    let w = Tensor::from_slice(&[1.0_f32, -1.0]).set_requires_grad(true);
    let ptr = w.data_ptr();
    let mut opt = Adadelta::new(vec![w.shallow_clone()], Options::default()).unwrap();
    w.square().sum(Kind::Float).backward();
    opt.step().unwrap();
    assert_eq!(w.data_ptr(), ptr);
    assert_ne!(values(&w), vec![1.0, -1.0]);
}

#[test]
fn a_non_contiguous_gradient_is_read_in_the_parameters_order() {
    let w = Tensor::from_slice(&[1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0])
        .reshape([2, 3])
        .set_requires_grad(true);
    w.sum(Kind::Float).backward();
    // Make the gradient an F-order view of its own memory, then give it values.
    let mut g = w.grad();
    let _ = g.as_strided_([2, 3], [1, 2], 0);
    tch::no_grad(|| {
        g.copy_(&Tensor::from_slice(&[0.5_f32, -1.0, 2.0, 0.25, 3.0, -4.0]).reshape([2, 3]))
    });
    assert!(!w.grad().is_contiguous());
    let mut opt = Adadelta::new(vec![w.shallow_clone()], Options::default()).unwrap();
    opt.step().unwrap();
    let mut plain = Adadelta::new(
        vec![Param::with_shape(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2, 3]).unwrap()],
        Options::default(),
    )
    .unwrap();
    plain.params_mut()[0]
        .set_grad(vec![0.5, -1.0, 2.0, 0.25, 3.0, -4.0])
        .unwrap();
    plain.step().unwrap();
    assert_eq!(bits(&values(&w)), bits(plain.params()[0].data()));
}

#[test]
fn another_dtype_is_refused_by_name_and_nothing_changes() {
    let ok = Tensor::from_slice(&[1.0_f32, 2.0]).set_requires_grad(true);
    let f64s = Tensor::from_slice(&[1.0_f64, 2.0]).set_requires_grad(true);
    let mut opt = Adadelta::new(
        vec![ok.shallow_clone(), f64s.shallow_clone()],
        Options::default(),
    )
    .unwrap();
    (ok.sum(Kind::Float) + f64s.sum(Kind::Float)).backward();
    let err = opt.step().unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedTensor { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Double"), "{err}");
    assert_eq!(values(&ok), vec![1.0, 2.0]);
    assert!(opt.state(0).is_none());
}

#[test]
fn a_non_contiguous_parameter_is_refused_and_nothing_changes() {
    let mut p = Tensor::from_slice(&[1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape([2, 3]);
    let _ = p.as_strided_([2, 3], [1, 2], 0);
    let p = p.set_requires_grad(true);
    p.sum(Kind::Float).backward();
    let mut opt = Adadelta::new(vec![p.shallow_clone()], Options::default()).unwrap();
    let err = opt.step().unwrap_err();
    assert!(
        err.to_string()
            .contains("parameter 0 cannot be stepped in place: it is not contiguous"),
        "{err}"
    );
    assert!(opt.state(0).is_none());
}

#[test]
fn parameters_sharing_memory_are_refused_and_a_handle_given_twice_is_a_duplicate() {
    let base = Tensor::from_slice(&[1.0_f32; 6]);
    let a = base.narrow(0, 0, 4).detach().set_requires_grad(true);
    let b = base.narrow(0, 2, 4).detach().set_requires_grad(true);
    (a.sum(Kind::Float) + b.sum(Kind::Float)).backward();
    let mut opt = Adadelta::new(
        vec![a.shallow_clone(), b.shallow_clone()],
        Options::default(),
    )
    .unwrap();
    assert_eq!(
        opt.step().unwrap_err(),
        Error::SharedMemory {
            first: 0,
            second: 1
        }
    );
    assert_eq!(values(&base), vec![1.0; 6]);
    let err = Adadelta::new(
        vec![a.shallow_clone(), a.shallow_clone()],
        Options::default(),
    )
    .unwrap_err();
    assert_eq!(err, Error::DuplicateParam);
}

#[test]
fn a_gradient_sharing_a_parameters_memory_is_read_as_a_copy() {
    // The gradient of `a` is made to be `b`'s memory: read as b was when the
    // step began, as the plain API reads a gradient that is a copy.
    let a = Tensor::from_slice(&[1.0_f32, 2.0]).set_requires_grad(true);
    let b = Tensor::from_slice(&[0.5_f32, -0.5]).set_requires_grad(true);
    (a.sum(Kind::Float) + b.sum(Kind::Float)).backward();
    let mut ga = a.grad();
    let _ = ga.set_source_tensor_(&b.detach());
    assert_eq!(a.grad().data_ptr(), b.data_ptr());
    let mut opt = Adadelta::new(
        vec![a.shallow_clone(), b.shallow_clone()],
        Options::default(),
    )
    .unwrap();
    opt.step().unwrap();
    let mut plain = Adadelta::new(
        vec![Param::new(vec![1.0, 2.0]), Param::new(vec![0.5, -0.5])],
        Options::default(),
    )
    .unwrap();
    plain.params_mut()[0].set_grad(vec![0.5, -0.5]).unwrap();
    plain.params_mut()[1].set_grad(vec![1.0, 1.0]).unwrap();
    plain.step().unwrap();
    assert_eq!(bits(&values(&a)), bits(plain.params()[0].data()));
    assert_eq!(bits(&values(&b)), bits(plain.params()[1].data()));
}

#[test]
fn zero_grad_fills_defined_gradients_with_zeros_and_the_next_step_steps_them() {
    let w = Tensor::ones([3], CPU).set_requires_grad(true);
    let mut opt = Adadelta::new(vec![w.shallow_clone()], Options::default()).unwrap();
    w.sum(Kind::Float).backward();
    opt.step().unwrap();
    opt.zero_grad();
    assert_eq!(values(&w.grad()), vec![0.0; 3]);
    opt.step().unwrap(); // PyTorch's zero_grad(set_to_none=False): stepped with zeros
    assert_eq!(opt.state(0).unwrap().step(), 2.0);
}

#[path = "../examples/tch_training.rs"]
mod tch_training;

#[test]
fn the_tch_training_example_converges_stepping_the_tensors_in_place() {
    tch_training::main().unwrap();
}
