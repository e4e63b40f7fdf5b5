//! Non-finite gradients (`fast/docs/reliability.md`): PyTorch's default
//! propagation keeps each NaN or infinity in its own element, and the opt-in
//! `NonFinitePolicy::Error` / `Skip` leave every parameter, state tensor and
//! step counter bit-identical, wherever the bad element sits: inside a SIMD
//! vector, in a masked tail, on either side of a cut between threads, on
//! every kernel path.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use adadelta::kernel::{Executor, Isa, Threads};
use adadelta::{Adadelta, Error, GroupSpec, NonFinitePolicy, Options, Param};
use common::{bits, content, Rng};

/// Parameter sizes: a long one that the pool cuts into pieces (cuts fall on
/// multiples of 16 inside a tensor), an odd one (a masked or buffered tail on
/// every path), a third after it, and one that has no state before the step
/// under test.
const SIZES: [usize; 4] = [1000, 37, 300, 21];

/// Every executor the test runs: each path this CPU has, on one thread and
/// on a pool of 2 with a grain of 64 elements (so that a step of 1358
/// elements is cut into pieces of about 170).
fn executors() -> Vec<(String, Executor)> {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let mut v = Vec::new();
    for path in Isa::ALL.into_iter().filter(|p| p.is_supported()) {
        v.push((
            format!("{} single", path.name()),
            Executor {
                isa: Some(path),
                threads: Threads::Single,
                ..Executor::default()
            },
        ));
        v.push((
            format!("{} pool(2) grain 64", path.name()),
            Executor {
                isa: Some(path),
                threads: Threads::Pool(pool.clone()),
                grain: 64,
                ..Executor::default()
            },
        ));
    }
    v
}

/// Two groups with different options; after one finite step parameters 0 to
/// 2 have state and parameter 3 has none.
fn optimizer(exec: &Executor, policy: NonFinitePolicy, seed: u64) -> Adadelta {
    let mut rng = Rng(seed);
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![
                Param::new(rng.vec(SIZES[0])),
                Param::new(rng.vec(SIZES[1])),
            ])
            .weight_decay(0.01)
            .maximize(true),
            GroupSpec::new(vec![
                Param::new(rng.vec(SIZES[2])),
                Param::new(rng.vec(SIZES[3])),
            ])
            .lr(0.5)
            .rho(0.95),
        ],
        Options::default(),
    )
    .unwrap()
    .with_executor(exec.clone())
    .with_non_finite_policy(policy);
    for (p, &n) in opt.params_mut()[..3].iter_mut().zip(&SIZES) {
        p.set_grad(rng.vec(n)).unwrap();
    }
    opt.step().unwrap();
    assert!(opt.state(3).is_none());
    opt
}

/// Finite gradients for every parameter.
fn grads(rng: &mut Rng) -> Vec<Vec<f32>> {
    SIZES.iter().map(|&n| rng.vec(n)).collect()
}

fn set(opt: &mut Adadelta, g: &[Vec<f32>]) {
    for (p, g) in opt.params_mut().iter_mut().zip(g) {
        p.set_grad(g.clone()).unwrap();
    }
}

/// Positions (parameter, element) where a bad value is most likely to leak
/// if a path or a cut mishandled it: both sides of every multiple of 8 and
/// 16 (AVX2 and AVX-512 vectors, thread cuts), the first and last elements.
fn structured_positions() -> Vec<(usize, usize)> {
    let mut s = Vec::new();
    for (i, &n) in SIZES.iter().enumerate() {
        for e in 0..n {
            if e % 8 == 0 || e % 8 == 7 || e == n - 1 {
                s.push((i, e));
            }
        }
    }
    s
}

/// 1 to 4 random positions, or the structured ones.
fn bad_positions(rng: &mut Rng, trial: usize) -> Vec<(usize, usize)> {
    if trial == 0 {
        return structured_positions();
    }
    let mut v: Vec<(usize, usize)> = (0..1 + rng.below(4))
        .map(|_| {
            let i = rng.below(SIZES.len());
            (i, rng.below(SIZES[i]))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn poison(g: &mut [Vec<f32>], at: &[(usize, usize)], rng: &mut Rng) {
    for &(i, e) in at {
        g[i][e] = rng.non_finite();
    }
}

const TRIALS: usize = 100;

#[test]
fn propagation_keeps_each_non_finite_value_in_its_own_element() {
    let (mut steps, mut injected) = (0, 0);
    for (name, exec) in executors() {
        let mut rng = Rng(11);
        for trial in 0..TRIALS {
            let mut bad = optimizer(&exec, NonFinitePolicy::Propagate, 5);
            let mut good = optimizer(&exec, NonFinitePolicy::Propagate, 5);
            let g = grads(&mut rng);
            let at = bad_positions(&mut rng, trial);
            let mut gb = g.clone();
            poison(&mut gb, &at, &mut rng);
            set(&mut bad, &gb);
            set(&mut good, &g);
            bad.step().unwrap();
            good.step().unwrap();
            steps += 1;
            injected += at.len();
            for (i, &n) in SIZES.iter().enumerate() {
                let (b, k) = (bad.state(i).unwrap(), good.state(i).unwrap());
                let (pb, pk) = (bad.params()[i].data(), good.params()[i].data());
                for e in 0..n {
                    let ctx = || format!("{name}, trial {trial}, parameter {i}, element {e}");
                    if at.contains(&(i, e)) {
                        // PyTorch's arithmetic: std = sqrt(inf or NaN) and
                        // 0 * inf = NaN reach delta, so param and acc_delta
                        // become NaN; square_avg is +inf or NaN.
                        assert!(pb[e].is_nan(), "{}", ctx());
                        assert!(b.acc_delta()[e].is_nan(), "{}", ctx());
                        let v = b.square_avg()[e];
                        assert!(v.is_nan() || v == f32::INFINITY, "{}", ctx());
                    } else {
                        assert_eq!(pb[e].to_bits(), pk[e].to_bits(), "{}", ctx());
                        assert_eq!(
                            b.square_avg()[e].to_bits(),
                            k.square_avg()[e].to_bits(),
                            "{}",
                            ctx()
                        );
                        assert_eq!(
                            b.acc_delta()[e].to_bits(),
                            k.acc_delta()[e].to_bits(),
                            "{}",
                            ctx()
                        );
                    }
                }
            }
        }
    }
    println!("propagate: {injected} non-finite gradient elements in {steps} steps");
}

/// Runs the refused or skipped step of `policy` on an optimizer and checks
/// that nothing changed, then that the next good step equals a run that
/// never saw the bad one.
fn refused_or_skipped(policy: NonFinitePolicy) {
    let (mut steps, mut injected) = (0, 0);
    for (name, exec) in executors() {
        let mut rng = Rng(23);
        for trial in 0..TRIALS {
            let mut opt = optimizer(&exec, policy, 9);
            let mut control = optimizer(&exec, policy, 9);
            let (pre, post) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (a, b) = (pre.clone(), post.clone());
            opt.register_step_pre_hook(move |_| {
                a.fetch_add(1, Ordering::SeqCst);
            });
            opt.register_step_post_hook(move |_| {
                b.fetch_add(1, Ordering::SeqCst);
            });
            let mut g = grads(&mut rng);
            let at = bad_positions(&mut rng, trial);
            poison(&mut g, &at, &mut rng);
            set(&mut opt, &g);
            let before = content(&opt);
            steps += 1;
            injected += at.len();
            let ctx = format!("{name}, trial {trial}, bad at {:?}", &at[..at.len().min(4)]);
            // Half the trials put the bad value in through the closure.
            let result = if trial % 2 == 0 {
                opt.step().map(|()| 0.0)
            } else {
                opt.step_with(|params| {
                    let (i, e) = at[0];
                    let mut gi = params[i].grad().unwrap().to_vec();
                    gi[e] = f32::NAN;
                    params[i].set_grad(gi).unwrap();
                    0.75_f32
                })
            };
            match policy {
                NonFinitePolicy::Error => {
                    let (index, element) = at[0];
                    assert_eq!(
                        result,
                        Err(Error::NonFiniteGradient { index, element }),
                        "{ctx}"
                    );
                    assert_eq!(opt.skipped_steps(), 0, "{ctx}");
                }
                _ => {
                    let loss = if trial % 2 == 0 { 0.0 } else { 0.75 };
                    assert_eq!(result, Ok(loss), "{ctx}");
                    assert_eq!(opt.skipped_steps(), 1, "{ctx}");
                }
            }
            if trial % 2 == 1 {
                // The closure's NaN is in the gradient now; the rest is as before.
                let (i, e) = at[0];
                let mut gi = opt.params()[i].grad().unwrap().to_vec();
                gi[e] = g[i][e];
                opt.params_mut()[i].set_grad(gi).unwrap();
            }
            assert_eq!(content(&opt), before, "{ctx}: bit-identical");
            assert!(opt.state(3).is_none(), "{ctx}: no state created");
            assert_eq!(
                (pre.load(Ordering::SeqCst), post.load(Ordering::SeqCst)),
                (1, 0),
                "{ctx}: pre-hooks ran, post-hooks did not"
            );
            // The next good step is the one the control takes.
            let good = grads(&mut rng);
            set(&mut opt, &good);
            set(&mut control, &good);
            opt.step().unwrap();
            control.step().unwrap();
            assert_eq!(content(&opt), content(&control), "{ctx}: resumes");
            assert_eq!(post.load(Ordering::SeqCst), 1, "{ctx}");
        }
    }
    println!(
        "{policy:?}: {injected} non-finite gradient elements in {steps} refused or skipped steps"
    );
}

#[test]
fn the_error_policy_refuses_the_step_and_changes_nothing() {
    refused_or_skipped(NonFinitePolicy::Error);
}

#[test]
fn the_skip_policy_skips_the_step_and_changes_nothing() {
    refused_or_skipped(NonFinitePolicy::Skip);
}

#[test]
fn with_finite_gradients_every_policy_steps_alike() {
    for (name, exec) in executors() {
        let mut rng = Rng(3);
        let mut opts: Vec<Adadelta> = [
            NonFinitePolicy::Propagate,
            NonFinitePolicy::Error,
            NonFinitePolicy::Skip,
        ]
        .into_iter()
        .map(|p| optimizer(&exec, p, 4))
        .collect();
        for _ in 0..5 {
            let mut g = grads(&mut rng);
            // Finite extremes are not "non-finite".
            g[0][3] = f32::MAX;
            g[1][36] = -f32::MAX;
            g[2][17] = f32::from_bits(1);
            for o in &mut opts {
                set(o, &g);
                o.step().unwrap();
            }
        }
        let c: Vec<String> = opts.iter().map(content).collect();
        assert!(c[0] == c[1] && c[1] == c[2], "{name}");
        assert!(opts.iter().all(|o| o.skipped_steps() == 0));
        assert_eq!(bits(&[opts[0].state(3).unwrap().step()]), bits(&[5.0]));
    }
}
