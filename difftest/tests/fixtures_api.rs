//! Replays every golden fixture through fast's Optimizer API (groups, absent
//! gradients, lazy state, the f32 step counter, `state_dict`, and the
//! fixture's save/load round trip done with this crate's JSON) and compares
//! the parameters and the whole `state_dict` after every step with what
//! PyTorch recorded.
//!
//! Bit for bit with `Numerics::ReproduceLibtorch` when this machine's
//! libtorch sqrt gives the fixture's probe bits and fast can reproduce it;
//! otherwise the test says so on stderr, runs the default numerics, checks the
//! state dict's structure, counters and options against PyTorch's, and its
//! numbers bit for bit against fast's own kernel run per group
//! (`run_fast`), whose accuracy fixtures_replay.rs bounds.

use adadelta::kernel::{Executor, Numerics};
use adadelta::{Adadelta, GroupSpec, Options, Param, StateDict};
use adadelta_difftest::case::Trajectory;
use adadelta_difftest::fixture::Fixture;
use adadelta_difftest::implementations::run_fast;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn reproduces_generator(fx: &Fixture) -> bool {
    let sq = &fx.generated_by.sqrt_flavour;
    let x: Vec<f32> = sq.probe_inputs.iter().map(|&b| f32::from_bits(b)).collect();
    let y = Vec::<f32>::try_from(tch::Tensor::from_slice(&x).sqrt()).expect("f32 tensor");
    let same_sqrt = bits(&y) == sq.probe_outputs;
    let can = Numerics::ReproduceLibtorch.libtorch_sqrt();
    if !same_sqrt || can.is_err() {
        eprintln!(
            "NOTE: fixture {:?} (libtorch sqrt {:?}): this machine's libtorch sqrt {} and fast {}; \
             comparing structure and counters with PyTorch and numbers with fast's default kernel",
            fx.name,
            sq.name,
            if same_sqrt { "matches" } else { "differs" },
            match &can {
                Ok(_) => "can reproduce it".to_string(),
                Err(e) => format!("cannot reproduce it ({e})"),
            }
        );
    }
    same_sqrt && can.is_ok()
}

fn build(fx: &Fixture, params: Vec<Param>, numerics: Numerics) -> Adadelta {
    let mut params = params.into_iter();
    let specs = fx
        .groups
        .iter()
        .map(|g| {
            let ps: Vec<Param> = params.by_ref().take(g.params.len()).collect();
            GroupSpec::new(ps)
                .lr(g.lr)
                .rho(g.rho)
                .eps(g.eps)
                .weight_decay(g.weight_decay)
                .maximize(g.maximize)
                // Recorded only: fast's one kernel gives both foreach
                // values' numbers, as PyTorch's are the same in float32.
                .foreach(fx.foreach)
        })
        .collect();
    Adadelta::with_groups(specs, Options::default())
        .expect("fixture groups are valid")
        .with_executor(Executor::with_numerics(numerics))
}

#[test]
fn optimizer_api_replays_every_fixture() {
    let fixtures = Fixture::load_all().expect("fixtures load");
    assert!(!fixtures.is_empty());
    for fx in &fixtures {
        // The fixture's groups number their parameters in order, as PyTorch does.
        let order: Vec<usize> = fx
            .groups
            .iter()
            .flat_map(|g| g.params.iter().copied())
            .collect();
        assert_eq!(
            order,
            (0..fx.params.len()).collect::<Vec<_>>(),
            "{}",
            fx.name
        );

        let bitwise = reproduces_generator(fx);
        let numerics = if bitwise {
            Numerics::ReproduceLibtorch
        } else {
            Numerics::Default
        };
        // What fast's numbers must be when they cannot be PyTorch's: fast's kernel per group.
        let own: Vec<(Vec<usize>, Trajectory)> = fx
            .group_cases()
            .into_iter()
            .map(|(case, idx)| (idx, run_fast(&case)))
            .collect();

        let params: Vec<Param> = fx
            .params
            .iter()
            .map(|t| Param::with_shape(t.values(), t.shape.clone()).expect("shape"))
            .collect();
        let mut opt = build(fx, params, numerics);
        for (t, grads) in fx.grads.iter().enumerate() {
            if fx.roundtrip_after_step == Some(t) {
                // Save with this crate's JSON, load into a fresh optimizer over copies.
                let json = opt.state_dict().to_json_string().expect("serialises");
                let mut fresh = build(fx, opt.params().to_vec(), numerics);
                fresh
                    .load_state_dict(StateDict::from_json_str(&json).expect("parses"))
                    .expect("loads");
                assert_eq!(
                    fresh.state_dict(),
                    opt.state_dict(),
                    "{}: round trip",
                    fx.name
                );
                opt = fresh;
            }
            for (p, g) in opt.params_mut().iter_mut().zip(grads) {
                match g {
                    Some(g) => p.set_grad(g.values()).expect("grad length"),
                    None => p.zero_grad(true),
                }
            }
            opt.step().expect("step");

            let rec = &fx.steps[t];
            let sd = opt.state_dict();
            let ctx = format!("{} step {t}", fx.name);
            // Which parameters have state, and their f32 step counters: exactly PyTorch's.
            let keys: Vec<usize> = sd.state.keys().copied().collect();
            let torch_keys: Vec<usize> = rec
                .state_dict
                .state
                .keys()
                .map(|k| k.parse().expect("index"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(keys, torch_keys, "{ctx}: parameters with state");
            for (&i, s) in &sd.state {
                let torch = &rec.state_dict.state[&i.to_string()];
                assert_eq!(
                    s.step.to_bits(),
                    torch.step.bits,
                    "{ctx}: step counter of param {i}"
                );
                assert_eq!(
                    s.square_avg.shape(),
                    &torch.square_avg.shape[..],
                    "{ctx}: square_avg shape"
                );
            }
            // Groups: options as PyTorch stored them, and params index lists.
            assert_eq!(
                sd.param_groups.len(),
                rec.state_dict.param_groups.len(),
                "{ctx}"
            );
            for (g, tg) in sd.param_groups.iter().zip(&rec.state_dict.param_groups) {
                let o = &g.options;
                assert_eq!(tg["lr"].as_f64(), Some(o.lr), "{ctx}");
                assert_eq!(tg["rho"].as_f64(), Some(o.rho), "{ctx}");
                assert_eq!(tg["eps"].as_f64(), Some(o.eps), "{ctx}");
                assert_eq!(tg["weight_decay"].as_f64(), Some(o.weight_decay), "{ctx}");
                assert_eq!(tg["maximize"].as_bool(), Some(o.maximize), "{ctx}");
                assert_eq!(tg["capturable"].as_bool(), Some(o.capturable), "{ctx}");
                assert_eq!(
                    tg["differentiable"].as_bool(),
                    Some(o.differentiable),
                    "{ctx}"
                );
                assert_eq!(tg["foreach"].as_bool(), o.foreach, "{ctx}");
                let tp: Vec<usize> = tg["params"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .map(|v| v.as_u64().expect("index") as usize)
                    .collect();
                assert_eq!(g.params, tp, "{ctx}");
            }
            // Numbers.
            for (i, p) in opt.params().iter().enumerate() {
                let (expected_p, expected_state) = if bitwise {
                    let s = rec.state_dict.state.get(&i.to_string());
                    (
                        rec.params[i].bits.clone(),
                        s.map(|s| (s.square_avg.bits.clone(), s.acc_delta.bits.clone())),
                    )
                } else {
                    let (idx, traj) = own
                        .iter()
                        .find(|(idx, _)| idx.contains(&i))
                        .expect("every param has a group");
                    let j = idx.iter().position(|&k| k == i).expect("in group");
                    let snap = &traj[t];
                    (
                        bits(&snap.params[j]),
                        snap.square_avg[j]
                            .as_ref()
                            .map(|v| (bits(v), bits(snap.acc_delta[j].as_ref().expect("state")))),
                    )
                };
                assert_eq!(bits(p.data()), expected_p, "{ctx}: param {i}");
                let got_state = sd
                    .state
                    .get(&i)
                    .map(|s| (bits(s.square_avg.data()), bits(s.acc_delta.data())));
                assert_eq!(got_state, expected_state, "{ctx}: state of param {i}");
            }
        }
    }
}
