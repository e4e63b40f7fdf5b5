//! Property test through the Optimizer API: several groups with their own
//! hyperparameters, several parameters each, gradients absent on some steps,
//! any executor (paths, threads, a small grain so small models split too).
//! After every step the parameters and the state dict equal the reference's
//! binary32 emulation run per group, bit for bit (default numerics: no
//! tolerance), and parameters without a gradient keep no state.

use adadelta::kernel::{Executor, Isa, Threads};
use adadelta::{Adadelta, GroupSpec, Options, Param};
use adadelta_difftest::case::{Case, Hyper};
use adadelta_difftest::implementations::run_reference;
use adadelta_difftest::strategies::{cases_or, hyper};
use adadelta_reference::MulAdd;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![8 => -8.0f32..8.0, 1 => Just(0.0f32), 1 => (1u32..0x0080_0000).prop_map(f32::from_bits), 1 => -1e20f32..1e20]
}

/// Groups: (hyper, parameter sizes); then per step, per global parameter, an optional gradient.
type Model = (
    Vec<(Hyper, Vec<usize>)>,
    Vec<Vec<f32>>,
    Vec<Vec<Option<Vec<f32>>>>,
);

fn model() -> impl Strategy<Value = Model> {
    prop::collection::vec(
        (
            hyper(),
            prop::collection::vec(prop_oneof![1usize..=3, 15usize..=17, 30usize..=70], 1..=3),
        ),
        1..=3,
    )
    .prop_flat_map(|groups| {
        let sizes: Vec<usize> = groups.iter().flat_map(|(_, s)| s.clone()).collect();
        let params: Vec<_> = sizes
            .iter()
            .map(|&n| prop::collection::vec(value(), n))
            .collect();
        let row: Vec<_> = sizes
            .iter()
            .map(|&n| prop::option::weighted(0.75, prop::collection::vec(value(), n)))
            .collect();
        (Just(groups), params, prop::collection::vec(row, 1..=8))
    })
}

fn executor() -> impl Strategy<Value = Executor> {
    let paths: Vec<Option<Isa>> = std::iter::once(None)
        .chain(
            Isa::ALL
                .iter()
                .copied()
                .filter(|p| p.is_supported())
                .map(Some),
        )
        .collect();
    (
        prop::sample::select(paths),
        any::<bool>(),
        prop_oneof![
            Just(16usize),
            Just(64usize),
            Just(adadelta::kernel::DEFAULT_GRAIN)
        ],
    )
        .prop_map(|(path, single, grain)| Executor {
            isa: path,
            threads: if single {
                Threads::Single
            } else {
                Threads::Rayon
            },
            grain,
            ..Executor::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn optimizer_api_equals_reference_per_group((groups, init, grads) in model(), exec in executor()) {
        // Expected: one reference run per group (groups are independent).
        let mut expected = Vec::new();
        let mut first = 0;
        for (hyper, sizes) in &groups {
            let idx: Vec<usize> = (first..first + sizes.len()).collect();
            first += sizes.len();
            let case = Case {
                name: "group".into(),
                hyper: *hyper,
                params: idx.iter().map(|&i| init[i].clone()).collect(),
                grads: grads.iter().map(|row| idx.iter().map(|&i| row[i].clone()).collect()).collect(),
            };
            expected.push((idx, run_reference(&case, MulAdd::Fused)));
        }

        let mut params = init.iter().map(|p| Param::new(p.clone()));
        let specs = groups.iter().map(|(h, sizes)| {
            GroupSpec::new(params.by_ref().take(sizes.len()).collect())
                .lr(h.lr).rho(h.rho).eps(h.eps).weight_decay(h.weight_decay).maximize(h.maximize)
        }).collect();
        let mut opt = Adadelta::with_groups(specs, Options::default()).unwrap().with_executor(exec.clone());
        for (t, row) in grads.iter().enumerate() {
            for (p, g) in opt.params_mut().iter_mut().zip(row) {
                match g {
                    Some(g) => p.set_grad(g.clone()).unwrap(),
                    None => p.zero_grad(true),
                }
            }
            opt.step().unwrap();
            let sd = opt.state_dict();
            for (idx, traj) in &expected {
                let snap = &traj[t];
                for (j, &i) in idx.iter().enumerate() {
                    // fast's NaN sign and payload are not determined (NanBits::QuietAnyPayload
                    // says why): compare NaNs as equal.
                    let bits = |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
                    prop_assert_eq!(bits(opt.params()[i].data()), bits(&snap.params[j]), "step {} param {} ({:?})", t, i, exec);
                    let got = sd.state.get(&i).map(|s| (bits(s.square_avg.data()), bits(s.acc_delta.data()), s.step));
                    let want = snap.square_avg[j].as_ref().map(|v| (bits(v), bits(snap.acc_delta[j].as_ref().unwrap()), snap.step[j].unwrap()));
                    prop_assert_eq!(got, want, "step {} state of param {}", t, i);
                }
            }
        }
    }
}
