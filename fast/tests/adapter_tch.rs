//! The tch adapter (`Adadelta<tch::Tensor>` and
//! `Adadelta<TypedTensor<E>>`, feature `tch`): compared bit for bit with
//! the plain API on the same values in every dtype and numerics, in place,
//! with every refusal clear and changing nothing. (Its comparison with
//! libtorch's own Adadelta step is difftest's `adapter_tch.rs`.)

mod common;

use adadelta::checkpoint::Stored;
use adadelta::half::{bf16, f16};
use adadelta::kernel::{Element, Executor, Numerics};
use adadelta::tch::tch::{self, Kind, Tensor};
use adadelta::tch::TypedTensor;
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
    assert!(
        err.to_string().contains(
            "its parameter is Double on Cpu, and this optimizer steps Float (float32) on the CPU"
        ),
        "{err}"
    );
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

/// The kinds of the element types the adapter steps.
const KINDS: [Kind; 4] = [Kind::Float, Kind::Double, Kind::BFloat16, Kind::Half];

/// A tensor's elements of type `E`, in row-major order, exactly (read as
/// bytes: tch's own conversions take `half::bf16` for `Half`).
fn elems<E: Element>(t: &Tensor) -> Vec<E> {
    let bytes = t
        .detach()
        .contiguous()
        .reshape([-1])
        .view_dtype(Kind::Uint8);
    let bytes = Vec::<u8>::try_from(&bytes).unwrap();
    bytes
        .chunks(size_of::<E>())
        .map(|c| {
            let mut le = [0; 8];
            le[..c.len()].copy_from_slice(c);
            E::from_bits(u64::from_le_bytes(le)).unwrap()
        })
        .collect()
}

fn elem_bits<E: Element>(x: &[E]) -> Vec<u64> {
    x.iter().map(|y| y.bits()).collect()
}

/// `n` random values of `E`'s kind, of the given sizes (rounded from f32
/// by libtorch).
fn random<E: Element>(rng: &mut Rng, sizes: &[i64]) -> Tensor {
    let n = sizes.iter().product::<i64>() as usize;
    Tensor::from_slice(&rng.vec(n))
        .reshape(sizes)
        .to_kind(TypedTensor::<E>::KIND)
}

/// The executors to step with: every numerics this CPU computes (default,
/// and reproduce-libtorch where it can), with the intra-op thread count of
/// a PyTorch under `torch.set_num_threads(1)`.
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

/// Sizes whose lengths put elements in every part of a 16-bit step
/// (PyTorch's scalar tail is the last `len % 32`); the last tensor never
/// has a gradient.
const TYPED_SIZES: [&[i64]; 5] = [&[4, 3], &[37], &[100], &[1], &[5]];

/// Groups: PyTorch's for-loop path, then its for-each path.
fn typed_groups<P>(mut params: Vec<P>) -> Vec<GroupSpec<P>> {
    let second = params.split_off(2);
    vec![
        GroupSpec::new(params).lr(0.7),
        GroupSpec::new(second)
            .lr(1.5)
            .weight_decay(0.01)
            .foreach(Some(true)),
    ]
}

/// `Adadelta<TypedTensor<E>>` and `Adadelta<Param<E>>` on the same values:
/// every step, every state and the state dict bit for bit, in every
/// numerics; then the adapter's checkpoint (a `torch.save` file) resumes
/// bit for bit.
fn typed_steps_equal_the_plain_api<E: Stored>() {
    let kind = TypedTensor::<E>::KIND;
    for executor in executors() {
        let mut rng = Rng(31);
        let params: Vec<Tensor> = TYPED_SIZES
            .iter()
            .map(|s| random::<E>(&mut rng, s).set_requires_grad(true))
            .collect();
        let handles = || {
            params
                .iter()
                .map(|t| TypedTensor::<E>::new(t.shallow_clone()))
                .collect::<Vec<_>>()
        };
        let mut opt = Adadelta::with_groups(typed_groups(handles()), Options::default())
            .unwrap()
            .with_executor(executor.clone());
        let mirror = params
            .iter()
            .map(|t| Param::from_vec_with_shape(elems::<E>(t), shape(t)).unwrap())
            .collect();
        let mut plain = Adadelta::with_groups(typed_groups(mirror), Options::default())
            .unwrap()
            .with_executor(executor.clone());
        let context = format!("{kind:?} in {:?}", executor.numerics);
        let mut step = |opt: &mut Adadelta<TypedTensor<E>>, step: usize| {
            opt.zero_grad();
            // sum(p * g): the gradient is g, exactly (p0's through a
            // transpose, so that it comes back transposed).
            let grads: Vec<Tensor> = [&[3, 4][..], &[37], &[100], &[1]]
                .iter()
                .map(|s| random::<E>(&mut rng, s))
                .collect();
            if step == 1 {
                // Non-finite gradients propagate, in the same bits.
                let _ = grads[1].get(0).fill_(f64::NAN);
                let _ = grads[2].get(5).fill_(f64::NEG_INFINITY);
            }
            let mut loss = (params[0].tr() * &grads[0]).sum(kind);
            for (p, g) in params[1..4].iter().zip(&grads[1..]) {
                loss += (p * g).sum(kind);
            }
            loss.backward();
            for (i, t) in params.iter().enumerate() {
                let g = t.grad();
                if g.defined() {
                    plain.params_mut()[i].set_grad(elems(&g)).unwrap();
                }
            }
            opt.step().unwrap();
            plain.step().unwrap();
            for (i, t) in params.iter().enumerate() {
                assert_eq!(
                    elem_bits(&elems::<E>(t)),
                    elem_bits(plain.params()[i].data()),
                    "{context}: step {step} param {i}"
                );
                assert_eq!(
                    opt.state(i),
                    plain.state(i),
                    "{context}: step {step} state {i}"
                );
            }
            assert_eq!(opt.state_dict(), plain.state_dict(), "{context}");
        };
        for s in 0..3 {
            step(&mut opt, s);
        }
        assert!(
            opt.state(4).is_none(),
            "{context}: the tensor without a gradient has no state"
        );

        // The adapter's checkpoint, in PyTorch's format, resumes bit for bit.
        let path = std::env::temp_dir().join(format!(
            "adadelta-adapter-tch-{}-{kind:?}.pt",
            std::process::id()
        ));
        opt.save(&path).unwrap();
        let mut resumed = Adadelta::with_groups(typed_groups(handles()), Options::default())
            .unwrap()
            .with_executor(executor.clone());
        resumed.load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(resumed.state_dict(), opt.state_dict(), "{context}");
        step(&mut resumed, 3);
    }
}

#[test]
fn typed_tensors_of_every_dtype_step_bit_identically_to_the_plain_api_in_every_numerics() {
    typed_steps_equal_the_plain_api::<f32>();
    typed_steps_equal_the_plain_api::<f64>();
    typed_steps_equal_the_plain_api::<bf16>();
    typed_steps_equal_the_plain_api::<f16>();
}

/// An `Adadelta<TypedTensor<E>>` given a tensor of each other kind: the
/// step refuses it, naming the index, the kind found and the one expected,
/// and writes nothing.
fn other_kinds_are_refused<E: Element>() {
    let expected = TypedTensor::<E>::KIND;
    for found in KINDS.into_iter().filter(|&k| k != expected) {
        let ok = Tensor::ones([2], (expected, tch::Device::Cpu)).set_requires_grad(true);
        let bad = Tensor::ones([2], (found, tch::Device::Cpu)).set_requires_grad(true);
        (ok.sum(Kind::Float) + bad.sum(Kind::Float)).backward();
        let mut opt = Adadelta::new(
            vec![
                TypedTensor::<E>::new(ok.shallow_clone()),
                TypedTensor::new(bad.shallow_clone()),
            ],
            Options::default(),
        )
        .unwrap();
        let err = opt.step().unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedTensor { index: 1, .. }),
            "{err}"
        );
        let want = format!(
            "parameter 1 cannot be stepped in place: its parameter is {found:?} on Cpu, and \
             this optimizer steps {expected:?} ({}) on the CPU",
            E::DTYPE
        );
        assert!(err.to_string().contains(&want), "{err}");
        assert_eq!(
            elems::<E>(&ok),
            elems::<E>(&Tensor::ones([2], (expected, tch::Device::Cpu)))
        );
        assert!(opt.state(0).is_none() && opt.state(1).is_none());
    }
}

#[test]
fn typed_tensors_of_every_dtype_refuse_the_other_kinds_by_name_and_nothing_changes() {
    other_kinds_are_refused::<f32>();
    other_kinds_are_refused::<f64>();
    other_kinds_are_refused::<bf16>();
    other_kinds_are_refused::<f16>();
}

#[test]
fn tch_gives_bfloat16_the_kind_half_so_typed_tensor_names_the_right_one() {
    // Why TypedTensor::KIND exists: tch 0.26's own element trait.
    assert_eq!(<bf16 as tch::kind::Element>::KIND, Kind::Half);
    assert_eq!(TypedTensor::<bf16>::KIND, Kind::BFloat16);
    assert_eq!(
        Tensor::from_slice(&[bf16::ONE]).kind(),
        Kind::Half,
        "a float16 tensor of bfloat16 bits"
    );
    let w = Tensor::from_slice(&[1.0_f32, -2.5]).to_kind(TypedTensor::<bf16>::KIND);
    assert_eq!(elems::<bf16>(&w), [bf16::ONE, bf16::from_f32(-2.5)]);
}

#[path = "../examples/tch_training.rs"]
mod tch_training;

#[test]
fn the_tch_training_example_converges_stepping_the_tensors_in_place() {
    tch_training::main().unwrap();
}
