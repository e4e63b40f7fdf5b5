//! `Adadelta::step`, `step_with` and `zero_grad`: PyTorch's bookkeeping
//! around the kernel (per-group coefficients, skipped parameters, lazy state,
//! the f32 step counter), all-or-nothing errors, and the parameter adapters.
//!
//! The numbers themselves are the kernel's (tested against the MPFR
//! reference and PyTorch in difftest); here the optimizer is compared bit
//! for bit with the kernel run by hand with the same inputs, which is valid
//! because both compute with the same kernel and executor.

use std::sync::{Arc, Mutex};

use adadelta::kernel::{run, Executor, Job};
use adadelta::{
    Adadelta, Coefficients, Error, GroupSpec, Hyperparams, Options, Param, ParamViewMut, Parameter,
};

mod common;

use common::{bits, BadGrad, Rng};

/// `(square_avg, acc_delta, step)` of one parameter.
type State = Option<(Vec<f32>, Vec<f32>, f32)>;

/// PyTorch's per-parameter bookkeeping written out by hand around the
/// kernel: state created at the first gradient, skipped without one, the
/// step counter incremented in f32.
struct ByHand {
    params: Vec<Vec<f32>>,
    hyper: Vec<Hyperparams>, // per parameter
    state: Vec<State>,
}

impl ByHand {
    fn step(&mut self, grads: &[Option<Vec<f32>>]) {
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let n = self.params[i].len();
            let (v, u, t) = self.state[i].get_or_insert_with(|| (vec![0.0; n], vec![0.0; n], 0.0));
            *t += 1.0;
            let c = Coefficients::new(&self.hyper[i]).unwrap();
            let mut jobs = [Job {
                coeffs: &c,
                param: &mut self.params[i],
                grad: g,
                square_avg: v,
                acc_delta: u,
            }];
            run(&mut jobs, &Executor::default()).unwrap();
        }
    }
}

#[test]
fn steps_equal_the_kernel_with_per_group_options_and_skipped_parameters() {
    let mut rng = Rng(7);
    let sizes = [5usize, 1, 33, 8, 0, 100];
    let init: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n)).collect();
    let g0 = Options {
        lr: 0.5,
        weight_decay: 0.1,
        ..Options::default()
    };
    let g1 = Options {
        lr: 1.0,
        rho: 0.95,
        eps: 1e-8,
        maximize: true,
        ..Options::default()
    };
    let g2 = Options {
        lr: 0.37,
        rho: 0.0,
        ..Options::default()
    };
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(init[..2].iter().cloned().map(Param::new).collect())
                .lr(0.5)
                .weight_decay(0.1),
            GroupSpec::new(init[2..5].iter().cloned().map(Param::new).collect())
                .rho(0.95)
                .eps(1e-8)
                .maximize(true),
            GroupSpec::new(vec![Param::new(init[5].clone())])
                .lr(0.37)
                .rho(0.0),
        ],
        Options::default(),
    )
    .unwrap();
    let group_of = [0, 0, 1, 1, 1, 2];
    let opts = [g0, g1, g2];
    let mut by_hand = ByHand {
        params: init.clone(),
        hyper: group_of.iter().map(|&g| opts[g].hyperparams()).collect(),
        state: vec![None; sizes.len()],
    };
    for t in 0..12 {
        // Parameter 1 never has a gradient; the others sometimes lack one.
        let grads: Vec<Option<Vec<f32>>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (i != 1 && (t + i) % 4 != 0).then(|| rng.vec(n)))
            .collect();
        opt.zero_grad(true);
        for (p, g) in opt.params_mut().iter_mut().zip(&grads) {
            if let Some(g) = g {
                p.set_grad(g.clone()).unwrap();
            }
        }
        opt.step().unwrap();
        by_hand.step(&grads);
        for i in 0..sizes.len() {
            assert_eq!(
                bits(opt.params()[i].data()),
                bits(&by_hand.params[i]),
                "step {t} param {i}"
            );
            match (&by_hand.state[i], opt.state(i)) {
                (None, None) => {}
                (Some((v, u, step)), Some(s)) => {
                    assert_eq!(bits(s.square_avg()), bits(v), "step {t} param {i}");
                    assert_eq!(bits(s.acc_delta()), bits(u), "step {t} param {i}");
                    assert_eq!(s.step().to_bits(), step.to_bits(), "step {t} param {i}");
                }
                (a, b) => panic!("step {t} param {i}: state {:?} vs {:?}", a.is_some(), b),
            }
        }
    }
    // Parameter 1 never had a gradient: untouched and stateless.
    assert_eq!(bits(opt.params()[1].data()), bits(&init[1]));
    assert!(opt.state(1).is_none());
    assert!(!opt.state_dict().state.contains_key(&1));
}

#[test]
fn state_is_created_lazily_and_the_counter_counts_steps_with_a_gradient() {
    let mut opt = Adadelta::new(
        vec![Param::new(vec![1.0; 3]), Param::new(vec![1.0])],
        Options::default(),
    )
    .unwrap();
    opt.step().unwrap(); // no gradients at all: nothing happens
    assert!(opt.state(0).is_none() && opt.state(1).is_none());
    assert_eq!(opt.params()[0].data(), &[1.0; 3]);
    opt.params_mut()[0].set_grad(vec![0.5; 3]).unwrap();
    for k in 1..=3 {
        opt.step().unwrap();
        assert_eq!(opt.state(0).unwrap().step(), k as f32);
        assert!(opt.state(1).is_none());
    }
    opt.params_mut()[1].set_grad(vec![0.5]).unwrap();
    opt.step().unwrap();
    assert_eq!(
        (opt.state(0).unwrap().step(), opt.state(1).unwrap().step()),
        (4.0, 1.0)
    );
}

#[test]
fn the_step_counter_is_an_f32_and_stops_at_2_pow_24() {
    let mut p = Param::new(vec![1.0]);
    p.set_grad(vec![0.5]).unwrap();
    let mut opt = Adadelta::new(vec![p], Options::default()).unwrap();
    opt.step().unwrap();
    let mut sd = opt.state_dict();
    sd.state.get_mut(&0).unwrap().step = 16_777_215.0; // 2^24 - 1
    opt.load_state_dict(sd).unwrap();
    opt.step().unwrap();
    assert_eq!(opt.state(0).unwrap().step(), 16_777_216.0);
    opt.step().unwrap();
    assert_eq!(
        opt.state(0).unwrap().step(),
        16_777_216.0,
        "f32 2^24 + 1 == 2^24"
    );
    // ... while the parameter keeps being updated.
    let before = opt.params()[0].data()[0];
    opt.step().unwrap();
    assert_ne!(opt.params()[0].data()[0], before);
}

#[test]
fn step_with_runs_pre_hooks_then_the_closure_then_the_update_then_post_hooks() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut opt = Adadelta::new(vec![Param::new(vec![2.0])], Options::default()).unwrap();
    let l = Arc::clone(&log);
    opt.register_step_pre_hook(move |o| {
        l.lock()
            .unwrap()
            .push(format!("pre w={}", o.params()[0].data()[0]));
    });
    let l = Arc::clone(&log);
    opt.register_step_post_hook(move |o| {
        l.lock()
            .unwrap()
            .push(format!("post moved={}", o.params()[0].data()[0] != 2.0));
    });
    let l = Arc::clone(&log);
    let loss = opt
        .step_with(|params| {
            l.lock().unwrap().push("closure".into());
            let w = params[0].data()[0];
            params[0].set_grad(vec![2.0 * w]).unwrap();
            w * w
        })
        .unwrap();
    assert_eq!(loss, 4.0);
    assert_eq!(
        *log.lock().unwrap(),
        ["pre w=2", "closure", "post moved=true"]
    );
    assert!(opt.params()[0].data()[0] < 2.0);
    // The closure's gradient is what the step used: the same as setting it
    // first and calling step() on a twin.
    let mut twin = Adadelta::new(vec![Param::new(vec![2.0])], Options::default()).unwrap();
    twin.params_mut()[0].set_grad(vec![4.0]).unwrap();
    twin.step().unwrap();
    assert_eq!(
        twin.params()[0].data()[0].to_bits(),
        opt.params()[0].data()[0].to_bits()
    );
}

#[derive(Debug)]
enum Mixed {
    Good(Param),
    Bad(Vec<f32>, Vec<f32>),
}

impl Parameter for Mixed {
    type Elem = f32;
    fn numel(&self) -> usize {
        match self {
            Mixed::Good(p) => p.numel(),
            Mixed::Bad(d, _) => d.len(),
        }
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        match self {
            Mixed::Good(p) => p.view_mut(),
            Mixed::Bad(d, g) => Ok(ParamViewMut {
                data: d,
                grad: Some(g),
            }),
        }
    }
    fn zero_grad(&mut self, s: bool) {
        if let Mixed::Good(p) = self {
            p.zero_grad(s)
        }
    }
}

#[test]
fn a_failing_step_changes_nothing() {
    let mut good = Param::new(vec![1.0, 2.0]);
    good.set_grad(vec![0.1, 0.2]).unwrap();
    let mut opt = Adadelta::new(
        vec![
            Mixed::Good(good.clone()),
            Mixed::Good(good),
            Mixed::Bad(vec![1.0; 3], vec![1.0; 3]),
        ],
        Options::default(),
    )
    .unwrap();
    let post = Arc::new(Mutex::new(0));
    let p2 = Arc::clone(&post);
    opt.register_step_post_hook(move |_| *p2.lock().unwrap() += 1);
    opt.step().unwrap(); // all fine: every parameter gets state
    assert_eq!(*post.lock().unwrap(), 1);
    // Now parameter 0 loses its state (fresh optimizer state from a dict
    // without it) and parameter 2's gradient gets the wrong length.
    let mut sd = opt.state_dict();
    sd.state.remove(&0);
    opt.load_state_dict(sd).unwrap();
    if let Mixed::Bad(_, g) = &mut opt.params_mut()[2] {
        g.push(1.0);
    }
    let before_sd = opt.state_dict();
    let before: Vec<Vec<u32>> = opt
        .params_mut()
        .iter_mut()
        .map(|p| bits(p.view_mut().unwrap().data))
        .collect();
    let err = opt.step().unwrap_err();
    assert_eq!(
        err,
        Error::LengthMismatch {
            param: 3,
            grad: 4,
            square_avg: 3,
            acc_delta: 3
        }
    );
    let after: Vec<Vec<u32>> = opt
        .params_mut()
        .iter_mut()
        .map(|p| bits(p.view_mut().unwrap().data))
        .collect();
    assert_eq!(before, after, "no parameter changed");
    assert_eq!(opt.state_dict(), before_sd, "no state or counter changed");
    assert!(opt.state(0).is_none(), "no state was created");
    assert_eq!(*post.lock().unwrap(), 1, "post hooks did not run");

    // The same with a parameter type whose every view is bad.
    let mut opt = Adadelta::new(
        vec![BadGrad {
            data: vec![1.0; 2],
            grad: vec![1.0; 3],
        }],
        Options::default(),
    )
    .unwrap();
    assert!(matches!(opt.step(), Err(Error::LengthMismatch { .. })));
    assert!(opt.state(0).is_none());
    assert_eq!(opt.params()[0].data, [1.0; 2]);
}

#[test]
fn a_parameter_replaced_by_one_of_another_size_is_an_error_not_corruption() {
    let mut p = Param::new(vec![1.0; 4]);
    p.set_grad(vec![1.0; 4]).unwrap();
    let mut opt = Adadelta::new(vec![p], Options::default()).unwrap();
    opt.step().unwrap();
    let mut q = Param::new(vec![1.0; 5]);
    q.set_grad(vec![1.0; 5]).unwrap();
    opt.params_mut()[0] = q;
    let sd = opt.state_dict();
    assert_eq!(
        opt.step().unwrap_err(),
        Error::LengthMismatch {
            param: 5,
            grad: 5,
            square_avg: 4,
            acc_delta: 4
        }
    );
    assert_eq!(opt.params()[0].data(), &[1.0; 5]);
    assert_eq!(opt.state_dict().state, sd.state);
}

/// A parameter that counts its views, shows its gradient on the first
/// `grad_views` of them only, and panics on view number `panic_on`.
#[derive(Debug)]
struct Scripted {
    p: Param,
    views: usize,
    grad_views: usize,
    panic_on: usize,
}

impl Scripted {
    fn new(data: Vec<f32>, grad: Vec<f32>, grad_views: usize) -> Self {
        let mut p = Param::new(data);
        p.set_grad(grad).unwrap();
        Scripted {
            p,
            views: 0,
            grad_views,
            panic_on: usize::MAX,
        }
    }
}

impl Parameter for Scripted {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.p.numel()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        self.views += 1;
        assert!(self.views != self.panic_on, "view_mut call {}", self.views);
        let mut v = self.p.view_mut()?;
        if self.views > self.grad_views {
            v.grad = None;
        }
        Ok(v)
    }
    fn zero_grad(&mut self, s: bool) {
        self.p.zero_grad(s)
    }
}

#[test]
fn a_step_views_each_parameter_once_and_steps_what_that_view_showed() {
    // A gradient on the first view only: a step that viewed a parameter
    // twice would see the gradient vanish between its check and its run.
    let mut opt = Adadelta::new(
        vec![Scripted::new(vec![1.0], vec![1.0], 1)],
        Options::default(),
    )
    .unwrap();
    opt.step().unwrap();
    assert_eq!(opt.params()[0].views, 1);
    assert_eq!(opt.state(0).unwrap().step(), 1.0);
    assert!(opt.params()[0].p.data()[0] < 1.0);
    // The second view has no gradient: the second step skips it.
    let after_one = opt.params()[0].p.data()[0];
    opt.step().unwrap();
    assert_eq!(opt.params()[0].views, 2);
    assert_eq!(opt.state(0).unwrap().step(), 1.0);
    assert_eq!(opt.params()[0].p.data()[0], after_one);
}

#[test]
fn zero_grad_zeroes_or_removes_as_pytorch() {
    let mut a = Param::new(vec![1.0, 1.0]);
    a.set_grad(vec![3.0, -3.0]).unwrap();
    let b = Param::new(vec![1.0]); // no gradient
    let mut opt = Adadelta::new(vec![a, b], Options::default()).unwrap();
    opt.zero_grad(false);
    assert_eq!(opt.params()[0].grad(), Some(&[0.0, 0.0][..]));
    assert_eq!(opt.params()[1].grad(), None, "absent stays absent");
    // A zero gradient is still a gradient: the step runs and creates state.
    opt.step().unwrap();
    assert_eq!(opt.state(0).unwrap().step(), 1.0);
    assert!(opt.state(1).is_none());
    opt.zero_grad(true);
    assert_eq!(opt.params()[0].grad(), None);
    opt.step().unwrap();
    assert_eq!(opt.state(0).unwrap().step(), 1.0, "no gradient: skipped");
}

#[test]
fn a_learning_rate_schedule_takes_effect_at_the_next_step() {
    let mut rng = Rng(3);
    let init = rng.vec(16);
    let grads: Vec<Vec<f32>> = (0..6).map(|_| rng.vec(16)).collect();
    let lr_at = |t: usize| 1.0 * 0.5f64.powi((t / 2) as i32); // halve every 2 steps
    let mut opt = Adadelta::new(vec![Param::new(init.clone())], Options::default()).unwrap();
    let mut by_hand = ByHand {
        params: vec![init],
        hyper: vec![Hyperparams::default()],
        state: vec![None],
    };
    for (t, g) in grads.iter().enumerate() {
        opt.set_lr(lr_at(t)).unwrap();
        by_hand.hyper[0].lr = lr_at(t);
        opt.params_mut()[0].set_grad(g.clone()).unwrap();
        opt.step().unwrap();
        by_hand.step(&[Some(g.clone())]);
        assert_eq!(
            bits(opt.params()[0].data()),
            bits(&by_hand.params[0]),
            "step {t}"
        );
    }
}

#[test]
fn a_closure_may_also_zero_gradients_itself() {
    // PyTorch's closure usually calls zero_grad + backward; here the closure
    // gets the parameters, so it can.
    let mut opt = Adadelta::new(vec![Param::new(vec![3.0])], Options::default()).unwrap();
    opt.params_mut()[0].set_grad(vec![100.0]).unwrap();
    let mut twin = Adadelta::new(vec![Param::new(vec![3.0])], Options::default()).unwrap();
    twin.params_mut()[0].set_grad(vec![6.0]).unwrap();
    opt.step_with(|ps| {
        for p in ps.iter_mut() {
            p.zero_grad(false);
        }
        ps[0].grad_or_zeros()[0] += 6.0;
    })
    .unwrap();
    twin.step().unwrap();
    assert_eq!(
        opt.params()[0].data()[0].to_bits(),
        twin.params()[0].data()[0].to_bits()
    );
}

#[cfg(feature = "ndarray")]
mod ndarray_adapter {
    use super::*;
    use adadelta::NdParam;
    use ndarray::Array2;

    #[test]
    fn ndarray_parameters_step_like_params() {
        let mut rng = Rng(11);
        let data = rng.vec(12);
        let grad = rng.vec(12);
        let mut nd = NdParam::new(Array2::from_shape_vec((3, 4), data.clone()).unwrap());
        nd.grad = Some(Array2::from_shape_vec((3, 4), grad.clone()).unwrap());
        let mut p = Param::with_shape(data, vec![3, 4]).unwrap();
        p.set_grad(grad).unwrap();
        let mut a = Adadelta::new(vec![nd], Options::default()).unwrap();
        let mut b = Adadelta::new(vec![p], Options::default()).unwrap();
        for _ in 0..3 {
            a.step().unwrap();
            b.step().unwrap();
        }
        assert_eq!(
            bits(a.params()[0].data.as_slice().unwrap()),
            bits(b.params()[0].data())
        );
        assert_eq!(a.state_dict(), b.state_dict());
    }

    #[test]
    fn column_major_arrays_step_in_memory_order() {
        let mut rng = Rng(5);
        let data = rng.vec(6);
        let grad = rng.vec(6);
        let c = |v: &Vec<f32>| Array2::from_shape_vec((2, 3), v.clone()).unwrap();
        // The same logical arrays in row-major and column-major memory.
        let mut row = NdParam::new(c(&data));
        row.grad = Some(c(&grad));
        let mut col = NdParam::new(row.data.t().as_standard_layout().t().to_owned());
        col.grad = Some(
            row.grad
                .as_ref()
                .unwrap()
                .t()
                .as_standard_layout()
                .t()
                .to_owned(),
        );
        assert_eq!(col.data, row.data);
        assert!(!col.data.is_standard_layout());
        let mut a = Adadelta::new(vec![row], Options::default()).unwrap();
        let mut b = Adadelta::new(vec![col], Options::default()).unwrap();
        a.step().unwrap();
        b.step().unwrap();
        let same = a.params()[0]
            .data
            .iter()
            .zip(b.params()[0].data.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same);
    }

    #[test]
    fn a_gradient_in_any_memory_layout_steps_as_the_same_values_in_c_order() {
        let data = vec![1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let grad = vec![0.5_f32, -1.0, 0.25, 2.0, -0.125, 1.5];
        let c_order = || Array2::from_shape_vec((2, 3), grad.clone()).unwrap();
        // The same logical gradient: in C order, in F order (as
        // `x.t().dot(..)` gives), and as a non-contiguous view's copy.
        let f_order = c_order().t().as_standard_layout().t().to_owned();
        assert!(!f_order.is_standard_layout());
        let mut wide = Array2::<f32>::zeros((2, 6));
        wide.slice_mut(ndarray::s![.., ..;2]).assign(&c_order());
        let mut strided = wide.clone();
        strided.slice_collapse(ndarray::s![.., ..;2]);
        assert!(strided.as_slice_memory_order().is_none());
        let mut finals = Vec::new();
        for g in [c_order(), f_order, strided] {
            let mut nd = NdParam::new(Array2::from_shape_vec((2, 3), data.clone()).unwrap());
            nd.grad = Some(g);
            let mut opt = Adadelta::new(vec![nd], Options::default()).unwrap();
            opt.step().unwrap();
            opt.step().unwrap();
            let p = &opt.params()[0];
            assert_eq!(p.grad.as_ref().unwrap(), &c_order()); // same values
            finals.push((bits(p.data.as_slice().unwrap()), opt.state_dict()));
        }
        assert_eq!(finals[0], finals[1]);
        assert_eq!(finals[0], finals[2]);
    }

    #[test]
    fn mismatched_shapes_and_non_contiguous_parameters_are_errors_before_any_write() {
        let data = vec![1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut nd = NdParam::new(Array2::from_shape_vec((2, 3), data.clone()).unwrap());
        nd.grad = Some(Array2::zeros((3, 2)));
        let mut opt = Adadelta::new(vec![nd], Options::default()).unwrap();
        assert_eq!(
            opt.step().unwrap_err().to_string(),
            "attempting to assign a gradient of size '[3, 2]' to a tensor of size '[2, 3]'. \
             Please ensure that the gradient and the tensor are the same size"
        );
        assert!(opt.state(0).is_none());
        assert_eq!(opt.params()[0].data.as_slice().unwrap(), &data[..]);

        // A non-contiguous parameter (every other column).
        let mut wide = Array2::from_shape_vec((2, 6), vec![0.0; 12]).unwrap();
        wide.slice_collapse(ndarray::s![.., ..;2]);
        let mut strided = NdParam::new(wide);
        strided.grad = Some(strided.data.clone());
        let mut opt = Adadelta::new(vec![strided], Options::default()).unwrap();
        assert!(matches!(opt.step(), Err(Error::UnsupportedLayout(_))));
        assert!(opt.state(0).is_none());
    }

    #[test]
    fn ndarray_zero_grad() {
        let mut nd = NdParam::new(Array2::<f32>::ones((2, 2)));
        nd.grad = Some(Array2::ones((2, 2)));
        let mut opt = Adadelta::new(vec![nd], Options::default()).unwrap();
        opt.zero_grad(false);
        assert_eq!(opt.params()[0].grad, Some(Array2::zeros((2, 2))));
        opt.zero_grad(true);
        assert_eq!(opt.params()[0].grad, None);
    }
}

#[test]
fn a_view_that_panics_leaves_no_state_and_no_change_behind() {
    for panic_on in [1, 2] {
        let scripted = |v: Vec<f32>| {
            let g = v.iter().map(|x| x * 0.5).collect();
            Scripted::new(v, g, usize::MAX)
        };
        let mut opt = Adadelta::new(
            vec![
                scripted(vec![1.0, 2.0]),
                scripted(vec![3.0]),
                scripted(vec![-1.0; 3]),
            ],
            Options::default(),
        )
        .unwrap();
        if panic_on == 2 {
            opt.step().unwrap(); // every parameter gets its state
        }
        // The middle parameter's next view panics: after the first one's
        // view was taken, before the last one's.
        opt.params_mut()[1].panic_on = opt.params()[1].views + 1;
        let before_sd = opt.state_dict();
        let before: Vec<Vec<u32>> = opt.params().iter().map(|f| bits(f.p.data())).collect();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| opt.step()));
        assert!(caught.is_err(), "the view's panic reaches the caller");
        let after: Vec<Vec<u32>> = opt.params().iter().map(|f| bits(f.p.data())).collect();
        assert_eq!(before, after, "no parameter changed");
        assert_eq!(
            opt.state_dict(),
            before_sd,
            "no state, value or counter changed"
        );
        if panic_on == 1 {
            assert!(
                (0..3).all(|i| opt.state(i).is_none()),
                "no state was created"
            );
        }
        // The optimizer is still usable: the next step works.
        opt.params_mut()[1].panic_on = usize::MAX;
        opt.step().unwrap();
        assert!((0..3).all(|i| opt.state(i).is_some()));
    }
}
