//! The candle adapter (`Adadelta<Var>` and `Adadelta<TypedVar<E>>`,
//! feature `candle`): compared bit for bit with the plain API on the same
//! values in every dtype and numerics, in place, with every refusal clear
//! and changing nothing, and no deadlock on aliased storage.

mod common;

use adadelta::candle::candle_core::{backprop::GradStore, DType, Device, Tensor, Var, WithDType};
use adadelta::candle::candle_nn::Optimizer;
use adadelta::candle::TypedVar;
use adadelta::checkpoint::Stored;
use adadelta::half::{bf16, f16};
use adadelta::kernel::{Element, Executor, Numerics};
use adadelta::{Adadelta, Error, GroupSpec, Options, Param};
use common::{bits, Rng};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Shapes of a small MLP (w1, b1, w2, b2) and of a var the loss never uses.
const SHAPES: [&[usize]; 5] = [&[4, 3], &[4], &[1, 4], &[1], &[5]];

fn var(rng: &mut Rng, shape: &[usize]) -> Var {
    let n = shape.iter().product();
    Var::from_vec(rng.vec(n), shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// The MLP's loss on a fixed batch: its gradients are of candle's layouts
/// (the bias's is a broadcast's sum, w1's comes through a transpose).
fn loss(vars: &[Var], x: &Tensor, y: &Tensor) -> Tensor {
    let h = x
        .matmul(&vars[0].t().unwrap())
        .unwrap()
        .broadcast_add(&vars[1])
        .unwrap()
        .relu()
        .unwrap();
    let out = h
        .matmul(&vars[2].t().unwrap())
        .unwrap()
        .broadcast_add(&vars[3])
        .unwrap();
    (out - y).unwrap().sqr().unwrap().mean_all().unwrap()
}

fn batch(rng: &mut Rng) -> (Tensor, Tensor) {
    let x = Tensor::from_vec(rng.vec(8 * 3), (8, 3), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(rng.vec(8), (8, 1), &Device::Cpu).unwrap();
    (x, y)
}

/// The plain optimizer's mirror of `vars`: the same values, shapes and groups.
fn mirror(vars: &[Var], groups: &[std::ops::Range<usize>], defaults: Options) -> Adadelta<Param> {
    let specs = groups
        .iter()
        .enumerate()
        .map(|(gi, r)| {
            let params = vars[r.clone()]
                .iter()
                .map(|v| Param::with_shape(values(v), v.dims().to_vec()).unwrap())
                .collect();
            GroupSpec::new(params)
                .lr(0.5 + gi as f64)
                .weight_decay(0.01 * gi as f64)
        })
        .collect();
    Adadelta::with_groups(specs, defaults).unwrap()
}

#[test]
fn candle_steps_are_bit_identical_to_the_plain_api_over_groups_and_absent_gradients() -> Res {
    let mut rng = Rng(7);
    let vars: Vec<Var> = SHAPES.iter().map(|s| var(&mut rng, s)).collect();
    let groups = [0..2, 2..5];
    let defaults = Options {
        rho: 0.8,
        maximize: false,
        ..Options::default()
    };
    let mut plain = mirror(&vars, &groups, defaults);
    let specs = groups
        .iter()
        .enumerate()
        .map(|(gi, r)| {
            GroupSpec::new(vars[r.clone()].to_vec())
                .lr(0.5 + gi as f64)
                .weight_decay(0.01 * gi as f64)
        })
        .collect();
    let mut opt = Adadelta::with_groups(specs, defaults)?;
    for step in 0..6 {
        let (x, y) = batch(&mut rng);
        let grads = loss(&vars, &x, &y).backward()?;
        for (i, v) in vars.iter().enumerate() {
            if let Some(g) = grads.get(v) {
                plain.params_mut()[i].set_grad(values(g))?;
            }
        }
        opt.step(&grads)?;
        plain.step()?;
        for (i, v) in vars.iter().enumerate() {
            assert_eq!(
                bits(&values(v)),
                bits(plain.params()[i].data()),
                "step {step} var {i}"
            );
            assert_eq!(opt.state(i), plain.state(i), "step {step} state {i}");
        }
    }
    assert!(
        opt.state(4).is_none(),
        "the unused var has no gradient, so no state"
    );
    // The checkpoints are the same bytes' worth of state.
    assert_eq!(opt.state_dict(), plain.state_dict());
    Ok(())
}

#[test]
fn the_optimizer_trait_steps_in_place_and_sets_the_learning_rate() -> Res {
    let w = Var::from_slice(&[1.0_f32, -1.0], 2, &Device::Cpu)?;
    let before = w.as_tensor().clone(); // the same storage: in place
    let mut opt = <Adadelta<Var> as Optimizer>::new(vec![w.clone()], Options::default())?;
    opt.backward_step(&w.as_tensor().sqr()?.sum_all()?)?;
    assert_ne!(
        values(&before),
        vec![1.0, -1.0],
        "the var's own storage was stepped"
    );
    assert_eq!(opt.learning_rate(), 1.0);
    opt.set_learning_rate(0.25);
    assert_eq!(opt.param_groups()[0].options().lr, 0.25);
    // An invalid rate cannot be refused by this setter: the next step is.
    opt.set_learning_rate(-1.0);
    let kept = values(&w);
    let err = Optimizer::step(&mut opt, &w.as_tensor().sum_all()?.backward()?).unwrap_err();
    assert!(
        err.to_string().contains("Invalid learning rate: -1.0"),
        "{err}"
    );
    assert_eq!(bits(&values(&w)), bits(&kept));
    assert_eq!(opt.state(0).unwrap().step(), 1.0);
    Ok(())
}

#[test]
fn another_dtype_is_refused_by_name_and_nothing_changes() -> Res {
    let ok = Var::from_slice(&[1.0_f32, 2.0], 2, &Device::Cpu)?;
    let f64var = Var::from_slice(&[1.0_f64, 2.0], 2, &Device::Cpu)?;
    let err =
        <Adadelta<Var> as Optimizer>::new(vec![ok.clone(), f64var.clone()], Options::default())
            .err()
            .unwrap();
    assert!(
        err.to_string()
            .contains("parameter 1 cannot be stepped in place"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("its parameter is F64 on Cpu, and this optimizer steps F32 on the CPU"),
        "{err}"
    );
    // Through the generic constructor, the step refuses it.
    let mut opt = Adadelta::new(vec![ok.clone(), f64var.clone()], Options::default())?;
    let loss = (ok.as_tensor().sum_all()? + f64var.as_tensor().sum_all()?.to_dtype(DType::F32)?)?;
    let err = opt.step(&loss.backward()?).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedTensor { index: 1, .. }),
        "{err}"
    );
    assert_eq!(values(&ok), vec![1.0, 2.0]);
    assert!(opt.state(0).is_none());
    Ok(())
}

#[test]
fn a_gradient_of_another_shape_is_refused_with_pytorchs_text() -> Res {
    let w = Var::from_slice(&[1.0_f32; 6], (2, 3), &Device::Cpu)?;
    let mut opt = Adadelta::new(vec![w.clone()], Options::default())?;
    let mut grads = w.as_tensor().sum_all()?.backward()?;
    grads.insert(&w, Tensor::ones((3, 2), DType::F32, &Device::Cpu)?);
    let err = opt.step(&grads).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("attempting to assign a gradient of size '[3, 2]'"),
        "{err}"
    );
    assert!(opt.state(0).is_none());
    Ok(())
}

#[test]
fn a_var_given_twice_is_refused_as_pytorch_refuses_a_duplicate() {
    let w = Var::from_slice(&[1.0_f32], 1, &Device::Cpu).unwrap();
    let err = Adadelta::new(vec![w.clone(), w.clone()], Options::default()).unwrap_err();
    assert_eq!(err, Error::DuplicateParam);
}

#[test]
fn a_gradient_sharing_a_vars_storage_is_read_as_a_copy_without_deadlock() -> Res {
    // A hand-made GradStore: the gradient of `a` is `b` itself, and the
    // gradient of `b` is `b` too. Holding b's write lock while reading it
    // would deadlock; the adapter reads a copy, the values at the step's start.
    let a = Var::from_slice(&[1.0_f32, 2.0], 2, &Device::Cpu)?;
    let b = Var::from_slice(&[0.5_f32, -0.5], 2, &Device::Cpu)?;
    let mut grads: GradStore = a.as_tensor().sum_all()?.backward()?;
    grads.insert(&a, b.as_tensor().clone());
    grads.insert(&b, b.as_tensor().clone());
    let mut opt = Adadelta::new(vec![a.clone(), b.clone()], Options::default())?;
    opt.step(&grads)?;
    let mut plain = Adadelta::new(
        vec![Param::new(vec![1.0, 2.0]), Param::new(vec![0.5, -0.5])],
        Options::default(),
    )?;
    plain.params_mut()[0].set_grad(vec![0.5, -0.5])?;
    plain.params_mut()[1].set_grad(vec![0.5, -0.5])?;
    plain.step()?;
    assert_eq!(bits(&values(&a)), bits(plain.params()[0].data()));
    assert_eq!(bits(&values(&b)), bits(plain.params()[1].data()));
    Ok(())
}

#[test]
fn a_model_of_thousands_of_vars_steps_on_a_small_stack() {
    // One nested in-place op per var: the stack grows as needed, even on a
    // thread with 256 KiB of it.
    let run = || -> Result<(), String> {
        let vars: Vec<Var> = (0..5000)
            .map(|i| Var::from_slice(&[i as f32], 1, &Device::Cpu).unwrap())
            .collect();
        // One op over every var (a chain of 5000 additions would be deep
        // for candle's own backward pass).
        let all: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
        let total = Tensor::cat(&all, 0).unwrap().sum_all().unwrap();
        let mut opt = Adadelta::new(vars.clone(), Options::default()).map_err(|e| e.to_string())?;
        opt.step(&total.backward().unwrap())
            .map_err(|e| e.to_string())?;
        assert!(values(&vars[4999])[0] < 4999.0);
        assert_eq!(opt.state(0).unwrap().step(), 1.0);
        Ok(())
    };
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
}

#[test]
fn step_hooks_may_read_the_vars_because_no_lock_is_held() -> Res {
    let w = Var::from_slice(&[1.0_f32], 1, &Device::Cpu)?;
    let mut opt = Adadelta::new(vec![w.clone()], Options::default())?;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for post in [false, true] {
        let seen = seen.clone();
        let hook = move |o: &mut Adadelta<Var>| {
            seen.lock().unwrap().push(values(&o.params()[0])[0]);
        };
        if post {
            opt.register_step_post_hook(hook);
        } else {
            opt.register_step_pre_hook(hook);
        }
    }
    opt.step(&w.as_tensor().sum_all()?.backward()?)?;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], 1.0);
    assert!(seen[1] < 1.0);
    Ok(())
}

/// The element types the adapter steps, with candle's dtype of each.
const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::BF16, DType::F16];

/// A tensor's elements of type `E`, in row-major order, exactly.
fn elems<E: WithDType>(t: &Tensor) -> Vec<E> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn elem_bits<E: Element>(x: &[E]) -> Vec<u64> {
    x.iter().map(|y| y.bits()).collect()
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

/// Shapes whose lengths put elements in every part of a 16-bit step
/// (PyTorch's scalar tail is the last `len % 32`); the last var never has
/// a gradient.
const TYPED_SHAPES: [&[usize]; 5] = [&[4, 3], &[37], &[100], &[1], &[5]];

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

/// A loss whose gradient for every var but the last is `grads[i]`
/// exactly: `sum(v * g)` (var 0 through a transpose, so that its gradient
/// comes back in a transposed layout).
fn typed_loss(vars: &[Var], grads: &[Tensor]) -> Tensor {
    let mut loss = (vars[0].t().unwrap() * &grads[0])
        .unwrap()
        .sum_all()
        .unwrap();
    for (v, g) in vars[1..4].iter().zip(&grads[1..]) {
        let term = (v.as_tensor() * g).unwrap().sum_all().unwrap();
        loss = (loss + term).unwrap();
    }
    loss
}

/// `Adadelta<TypedVar<E>>` and `Adadelta<Param<E>>` on the same values:
/// every step, every state and the state dict bit for bit, in every
/// numerics; then the adapter's checkpoint (a `torch.save` file) resumes
/// bit for bit.
fn typed_steps_equal_the_plain_api<E: Stored + WithDType>() -> Res {
    let dtype = TypedVar::<E>::DTYPE;
    let of = |x: f32| E::from_f64(x.into());
    for executor in executors() {
        let mut rng = Rng(29);
        let vars: Vec<Var> = TYPED_SHAPES
            .iter()
            .map(|s| {
                let n = s.iter().product();
                Var::from_vec(rng.vec(n).into_iter().map(of).collect(), *s, &Device::Cpu)
            })
            .collect::<Result<_, _>>()?;
        let typed = vars.iter().map(|v| TypedVar::<E>::new(v.clone())).collect();
        let mut opt = Adadelta::with_groups(typed_groups(typed), Options::default())?
            .with_executor(executor.clone());
        let mirror = vars
            .iter()
            .map(|v| Param::from_vec_with_shape(elems::<E>(v), v.dims().to_vec()))
            .collect::<Result<_, _>>()?;
        let mut plain = Adadelta::with_groups(typed_groups(mirror), Options::default())?
            .with_executor(executor.clone());
        let context = format!("{dtype:?} in {:?}", executor.numerics);
        let step = |opt: &mut Adadelta<TypedVar<E>>,
                    plain: &mut Adadelta<Param<E>>,
                    rng: &mut Rng,
                    step: usize|
         -> Res {
            let grads: Vec<Tensor> = [&[3, 4][..], &[37], &[100], &[1]]
                .iter()
                .map(|s| {
                    let mut g: Vec<E> = rng.vec(s.iter().product()).into_iter().map(of).collect();
                    if step == 1 && g.len() > 1 {
                        // Non-finite gradients propagate, in the same bits.
                        (g[0], g[1]) = (of(f32::NAN), of(f32::NEG_INFINITY));
                    }
                    Tensor::from_vec(g, *s, &Device::Cpu)
                })
                .collect::<Result<_, _>>()?;
            let store = typed_loss(&vars, &grads).backward()?;
            for (i, v) in vars.iter().enumerate() {
                if let Some(g) = store.get(v) {
                    plain.params_mut()[i].set_grad(elems(g))?;
                }
            }
            opt.step(&store)?;
            plain.step()?;
            for (i, v) in vars.iter().enumerate() {
                assert_eq!(
                    elem_bits(&elems::<E>(v)),
                    elem_bits(plain.params()[i].data()),
                    "{context}: step {step} var {i}"
                );
                assert_eq!(
                    opt.state(i),
                    plain.state(i),
                    "{context}: step {step} state {i}"
                );
            }
            Ok(())
        };
        for s in 0..3 {
            step(&mut opt, &mut plain, &mut rng, s)?;
        }
        assert!(
            opt.state(4).is_none(),
            "{context}: the unused var has no state"
        );
        assert_eq!(opt.state_dict(), plain.state_dict(), "{context}");

        // The adapter's checkpoint, in PyTorch's format, resumes bit for bit.
        let path = std::env::temp_dir().join(format!(
            "adadelta-adapter-candle-{}-{dtype:?}.pt",
            std::process::id()
        ));
        opt.save(&path)?;
        let typed = vars.iter().map(|v| TypedVar::<E>::new(v.clone())).collect();
        let mut resumed = Adadelta::with_groups(typed_groups(typed), Options::default())?
            .with_executor(executor.clone());
        resumed.load(&path)?;
        std::fs::remove_file(&path)?;
        assert_eq!(resumed.state_dict(), opt.state_dict(), "{context}");
        step(&mut resumed, &mut plain, &mut rng, 3)?;
    }
    Ok(())
}

#[test]
fn typed_vars_of_every_dtype_step_bit_identically_to_the_plain_api_in_every_numerics() -> Res {
    typed_steps_equal_the_plain_api::<f32>()?;
    typed_steps_equal_the_plain_api::<f64>()?;
    typed_steps_equal_the_plain_api::<bf16>()?;
    typed_steps_equal_the_plain_api::<f16>()
}

/// An `Adadelta<TypedVar<E>>` given a var, or a gradient, of each other
/// dtype: refused by `Optimizer::new` and by the step, naming the index, the
/// dtype found and the one expected; nothing written.
fn other_dtypes_are_refused<E: Element + WithDType>() -> Res {
    let expected = TypedVar::<E>::DTYPE;
    for found in DTYPES.into_iter().filter(|&d| d != expected) {
        let ok = Var::ones(2, expected, &Device::Cpu)?;
        let bad = Var::ones(2, found, &Device::Cpu)?;
        let named = |err: &dyn std::fmt::Display, what: &str| {
            let text = err.to_string();
            let want = format!(
                "parameter 1 cannot be stepped in place: its {what} is {found:?} on Cpu, \
                 and this optimizer steps {expected:?} on the CPU"
            );
            assert!(text.contains(&want), "{text}");
        };
        let err = <Adadelta<TypedVar<E>> as Optimizer>::new(
            vec![ok.clone(), bad.clone()],
            Options::default(),
        )
        .err()
        .unwrap();
        named(&err, "parameter");

        let typed = vec![TypedVar::<E>::new(ok.clone()), TypedVar::new(bad.clone())];
        let mut opt = Adadelta::new(typed, Options::default())?;
        let loss = (ok.sum_all()? + bad.sum_all()?.to_dtype(expected)?)?;
        let err = opt.step(&loss.backward()?).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedTensor { index: 1, .. }),
            "{err}"
        );
        named(&err, "parameter");
        assert_eq!(elems::<E>(&ok), vec![E::from_f64(1.0); 2]);
        assert!(opt.state(0).is_none() && opt.state(1).is_none());

        // A gradient of another dtype than its var (a hand-made GradStore).
        let good = Var::ones(2, expected, &Device::Cpu)?;
        let mut grads = (ok.sum_all()? + good.sum_all()?)?.backward()?;
        grads.insert(&good, Tensor::ones(2, found, &Device::Cpu)?);
        let mut opt = Adadelta::new(
            vec![TypedVar::<E>::new(ok.clone()), TypedVar::new(good.clone())],
            Options::default(),
        )?;
        let err = opt.step(&grads).unwrap_err();
        named(&err, "gradient");
        assert_eq!(elems::<E>(&ok), vec![E::from_f64(1.0); 2]);
        assert!(opt.state(0).is_none());
    }
    Ok(())
}

#[test]
fn typed_vars_of_every_dtype_refuse_the_other_dtypes_by_name_and_nothing_changes() -> Res {
    other_dtypes_are_refused::<f32>()?;
    other_dtypes_are_refused::<f64>()?;
    other_dtypes_are_refused::<bf16>()?;
    other_dtypes_are_refused::<f16>()
}

#[path = "../examples/candle_mlp.rs"]
mod candle_mlp;

#[test]
fn the_candle_mlp_example_learns_and_resumes_from_its_checkpoint_bit_for_bit() {
    candle_mlp::main().unwrap();
}
