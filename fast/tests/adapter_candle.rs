//! The candle adapter (`Adadelta<Var>`, feature `candle`): compared bit for
//! bit with the plain API on the same values, in place, with every refusal
//! clear and changing nothing, and no deadlock on aliased storage.

mod common;

use adadelta::candle::candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use adadelta::candle::candle_nn::Optimizer;
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
    assert!(err.to_string().contains("F64"), "{err}");
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

#[path = "../examples/candle_mlp.rs"]
mod candle_mlp;

#[test]
fn the_candle_mlp_example_learns_and_resumes_from_its_checkpoint_bit_for_bit() {
    candle_mlp::main().unwrap();
}
