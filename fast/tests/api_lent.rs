//! Lent parameters: an `Adadelta<Lent>` keeps groups, options and state,
//! and steps the parameters the model keeps, of any types, by position.
//! Compared bit for bit with the owned optimizer on the same data; every
//! check of the owned step holds, and a refused step changes nothing.
//! Also `Clone` (PyTorch's deepcopy).

mod common;

use adadelta::{
    Adadelta, Error, GroupSpec, Lent, NdParam, NonFinitePolicy, Options, Param, Parameter,
};
use common::{bits, BadGrad, Rng};
use ndarray::{Array1, Array3};

/// A model as Rust training code writes it: layers of different types and
/// shapes, owned by the model.
#[derive(Clone)]
struct Model {
    w1: Param,
    b1: NdParam<ndarray::Ix1>,
    w2: NdParam<ndarray::Ix3>,
    b2: Param,
}

impl Model {
    fn new() -> Self {
        Model {
            w1: Param::with_shape((0..12).map(|i| i as f32 * 0.25 - 1.0).collect(), vec![3, 4])
                .unwrap(),
            b1: NdParam::new(Array1::from(vec![0.5_f32, -0.5, 0.25])),
            w2: NdParam::new(Array3::from_shape_fn((2, 2, 3), |(i, j, k)| {
                (i * 6 + j * 3 + k) as f32 * -0.125
            })),
            b2: Param::new(vec![0.0; 2]),
        }
    }

    fn params_mut(&mut self) -> [&mut dyn Parameter<Elem = f32>; 4] {
        [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2]
    }

    /// Gradients from `rng`; `b2` gets none on odd steps.
    fn set_grads(&mut self, rng: &mut Rng, step: usize) {
        self.w1.set_grad(rng.vec(12)).unwrap();
        self.b1.grad = Some(Array1::from(rng.vec(3)));
        self.w2.grad = Some(Array3::from_shape_vec((2, 2, 3), rng.vec(12)).unwrap());
        if step.is_multiple_of(2) {
            self.b2.set_grad(rng.vec(2)).unwrap();
        } else {
            self.b2.zero_grad(true);
        }
    }

    fn bits(&self) -> Vec<Vec<u32>> {
        vec![
            bits(self.w1.data()),
            bits(self.b1.data.as_slice().unwrap()),
            bits(self.w2.data.as_slice().unwrap()),
            bits(self.b2.data()),
        ]
    }
}

/// Two groups over the model: (w1, b1) and (w2, b2) with other options.
fn groups<T>(m: [T; 4]) -> Vec<GroupSpec<T>> {
    let [a, b, c, d] = m;
    vec![
        GroupSpec::new(vec![a, b]).lr(0.5).weight_decay(0.01),
        GroupSpec::new(vec![c, d]).rho(0.95).maximize(true),
    ]
}

fn lent_optimizer(m: &Model) -> Adadelta<Lent> {
    let records = [
        Lent::of(&m.w1),
        Lent::of(&m.b1),
        Lent::of(&m.w2),
        Lent::of(&m.b2),
    ];
    Adadelta::with_groups(groups(records), Options::default()).unwrap()
}

#[test]
fn lent_parameters_of_several_types_step_bit_for_bit_as_owned_ones() {
    let mut m = Model::new();
    let mut lent = lent_optimizer(&m);
    // The owned form over the same data: every parameter as a flat Param.
    let owned_params = [
        Param::with_shape(m.w1.data().to_vec(), vec![3, 4]).unwrap(),
        Param::new(m.b1.data.to_vec()),
        Param::with_shape(m.w2.data.as_slice().unwrap().to_vec(), vec![2, 2, 3]).unwrap(),
        Param::new(m.b2.data().to_vec()),
    ];
    let mut owned = Adadelta::with_groups(groups(owned_params), Options::default()).unwrap();
    let (mut r1, mut r2) = (Rng(7), Rng(7));
    for step in 0..6 {
        m.set_grads(&mut r1, step);
        let mut twin = Model::new();
        twin.set_grads(&mut r2, step);
        let grads: [Option<Vec<f32>>; 4] = [
            twin.w1.grad().map(<[f32]>::to_vec),
            twin.b1.grad.as_ref().map(|g| g.to_vec()),
            twin.w2
                .grad
                .as_ref()
                .map(|g| g.as_slice().unwrap().to_vec()),
            twin.b2.grad().map(<[f32]>::to_vec),
        ];
        for (p, g) in owned.params_mut().iter_mut().zip(grads) {
            match g {
                Some(g) => p.set_grad(g).unwrap(),
                None => p.zero_grad(true),
            }
        }
        lent.step_lent(&mut m.params_mut()).unwrap();
        owned.step().unwrap();
        let owned_bits: Vec<Vec<u32>> = owned.params().iter().map(|p| bits(p.data())).collect();
        assert_eq!(m.bits(), owned_bits, "parameters after step {step}");
        assert_eq!(
            lent.state_dict(),
            owned.state_dict(),
            "state after step {step}"
        );
    }
    // State tensors have each parameter's shape, as recorded when lent.
    assert_eq!(lent.state_dict().state[&2].square_avg.shape(), &[2, 2, 3]);
}

#[test]
fn a_step_lent_the_wrong_number_of_parameters_changes_nothing() {
    let mut m = Model::new();
    let mut opt = lent_optimizer(&m);
    m.set_grads(&mut Rng(1), 0);
    let before = m.bits();
    let err = opt
        .step_lent(&mut [&mut m.w1, &mut m.b1, &mut m.w2])
        .unwrap_err();
    assert_eq!(
        err,
        Error::LentCountMismatch {
            lent: 3,
            expected: 4
        }
    );
    assert_eq!(
        err.to_string(),
        "the step was lent 3 parameters, but the optimizer has 4; nothing was changed"
    );
    assert_eq!(m.bits(), before);
    assert!((0..4).all(|i| opt.state(i).is_none()));
}

#[test]
fn parameters_lent_out_of_order_are_refused_by_shape_and_nothing_changes() {
    let mut m = Model::new();
    let mut opt = lent_optimizer(&m);
    m.set_grads(&mut Rng(2), 0);
    opt.step_lent(&mut m.params_mut()).unwrap();
    let (before, sd) = (m.bits(), opt.state_dict());
    let Model { w1, b1, w2, b2 } = &mut m;
    let err = opt.step_lent(&mut [w1, w2, b1, b2]).unwrap_err();
    assert_eq!(
        err,
        Error::LentShapeMismatch {
            index: 1,
            expected: vec![3],
            lent: vec![2, 2, 3]
        }
    );
    assert_eq!((m.bits(), opt.state_dict()), (before, sd));
}

#[test]
fn a_bad_lent_gradient_refuses_the_whole_step_and_creates_no_state() {
    let mut good = Param::new(vec![1.0; 3]);
    good.set_grad(vec![0.5; 3]).unwrap();
    let mut short = BadGrad {
        data: vec![1.0; 4],
        grad: vec![0.5; 3],
    };
    let mut opt =
        Adadelta::new(vec![Lent::of(&good), Lent::of(&short)], Options::default()).unwrap();
    let err = opt.step_lent(&mut [&mut good, &mut short]).unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            param: 4,
            grad: 3,
            ..
        }
    ));
    assert_eq!(good.data(), &[1.0; 3]);
    assert!(opt.state(0).is_none() && opt.state(1).is_none());
}

#[test]
fn lent_steps_follow_the_non_finite_policy_and_run_the_step_hooks() {
    let mut w = Param::new(vec![1.0; 2]);
    let mut opt = Adadelta::new(vec![Lent::of(&w)], Options::default())
        .unwrap()
        .with_non_finite_policy(NonFinitePolicy::Skip);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = std::sync::Arc::clone(&calls);
    opt.register_step_post_hook(move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    w.set_grad(vec![f32::NAN, 1.0]).unwrap();
    opt.step_lent(&mut [&mut w]).unwrap();
    assert_eq!((opt.skipped_steps(), w.data()), (1, &[1.0, 1.0][..]));
    w.set_grad(vec![1.0, 1.0]).unwrap();
    opt.step_lent(&mut [&mut w]).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(opt.state(0).unwrap().step(), 1.0);
}

#[test]
fn a_lent_optimizer_checkpointed_and_resumed_ends_where_the_uninterrupted_run_ends() {
    let dir = common::temp_dir("lent-resume");
    let path = dir.join("opt.pt");
    let (mut a, mut rng) = (Model::new(), Rng(11));
    let mut opt = lent_optimizer(&a);
    for step in 0..3 {
        a.set_grads(&mut rng, step);
        opt.step_lent(&mut a.params_mut()).unwrap();
    }
    opt.save(&path).unwrap();
    let (mut b, mut rng_b) = (a.clone(), rng.clone());
    for step in 3..6 {
        a.set_grads(&mut rng, step);
        opt.step_lent(&mut a.params_mut()).unwrap();
    }
    let mut resumed = lent_optimizer(&b);
    resumed.load(&path).unwrap();
    for step in 3..6 {
        b.set_grads(&mut rng_b, step);
        resumed.step_lent(&mut b.params_mut()).unwrap();
    }
    assert_eq!(a.bits(), b.bits());
    assert_eq!(opt.state_dict(), resumed.state_dict());
    std::fs::remove_dir_all(dir).unwrap();
}

/// PyTorch's `test_deepcopy_copies_all_public_attrs`: a clone has every
/// public attribute of the original, and is independent of it afterwards.
#[test]
fn a_clone_copies_every_public_attribute_and_is_independent_afterwards() {
    let mut opt = common::trained(3, 5).with_non_finite_policy(NonFinitePolicy::Skip);
    opt.params_mut()[0]
        .set_grad(vec![f32::INFINITY; 3])
        .unwrap();
    opt.step().unwrap(); // skipped: counted
    let handle = opt.register_step_pre_hook(|_| ());
    let copy = opt.clone();
    assert_eq!(copy.defaults(), opt.defaults());
    assert_eq!(copy.param_groups(), opt.param_groups());
    assert_eq!(copy.params(), opt.params());
    assert_eq!(copy.state_dict(), opt.state_dict());
    assert_eq!(
        format!("{:?}", copy.executor()),
        format!("{:?}", opt.executor())
    );
    assert_eq!(copy.non_finite_policy(), opt.non_finite_policy());
    assert_eq!(copy.skipped_steps(), 1);
    assert_eq!(format!("{copy:?}"), format!("{opt:?}"));
    // Independent: stepping the clone leaves the original as it was.
    let (mut copy, before) = (copy, opt.state_dict());
    common::set_grads(&mut copy, &mut Rng(9));
    copy.step().unwrap();
    assert_eq!(opt.state_dict(), before);
    assert_ne!(copy.state_dict(), before);
    // The hooks are shared closures under the same handles.
    assert!(copy.remove_hook(handle));
    assert!(opt.remove_hook(handle));
}
