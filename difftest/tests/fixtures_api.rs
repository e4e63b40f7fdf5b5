//! Replays every golden fixture, float32, float64, bfloat16 and float16,
//! both `foreach` values, through fast's Optimizer API (`Param<E>`;
//! groups, absent gradients, lazy state, the f32 step counter,
//! `state_dict`, and the fixture's save/load round trip done with this
//! crate's JSON and safetensors) and compares the parameters and the whole
//! `state_dict` after every step with what PyTorch recorded.
//!
//! Bit for bit with `Numerics::ReproduceLibtorch` when this machine's
//! libtorch sqrt gives the fixture's probe bits and fast can reproduce it
//! (for bfloat16 and float16, whose square root is not oneMKL's, when fast
//! can reproduce libtorch at all and the fixture comes from ATen's AVX2 or
//! AVX-512 kernels; their NaNs by class, as torch's bfloat16 NaN bits depend
//! on the tensor's length);
//! otherwise the test says so on stderr, runs the default numerics, checks the
//! state dict's structure, counters and options against PyTorch's, and its
//! numbers bit for bit against fast's own kernel run per group
//! (`run_fast`), whose accuracy fixtures_replay.rs bounds.

use adadelta::checkpoint::Stored;
use adadelta::kernel::{Element, Executor, Numerics};
use adadelta::{Adadelta, GroupSpec, Options, Param, StateDict};
use adadelta_difftest::case::Trajectory;
use adadelta_difftest::fixture::{Bf16Bits, Bits, F16Bits, Fixture, SqrtFlavour};
use adadelta_difftest::implementations::run_fast;

fn bits<E: Element>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

fn widen<B: Bits + Into<u64>>(v: &[B]) -> Vec<u64> {
    v.iter().map(|&b| b.into()).collect()
}

/// A fixture dtype as this test replays it.
trait Dtype: Bits + Into<u64>
where
    Self::Float: Stored + tch::kind::Element,
{
    /// The generator's sqrt flavour of this dtype, if oneMKL's square root
    /// is this dtype's.
    fn flavour(fx: &Fixture<Self>) -> Option<&SqrtFlavour<Self>>;
    /// The quiet bit of a NaN, for dtypes whose NaN bits are compared by
    /// class only; `None` where they are compared exactly.
    const QUIET_NAN: Option<u64> = None;
}

impl Dtype for u32 {
    fn flavour(fx: &Fixture<u32>) -> Option<&SqrtFlavour<u32>> {
        Some(&fx.generated_by.sqrt_flavour)
    }
}

impl Dtype for u64 {
    fn flavour(fx: &Fixture<u64>) -> Option<&SqrtFlavour<u64>> {
        Some(&fx.generated_by.sqrt_flavour_float64)
    }
}

impl Dtype for Bf16Bits {
    fn flavour(_: &Fixture<Bf16Bits>) -> Option<&SqrtFlavour<Bf16Bits>> {
        None
    }
    const QUIET_NAN: Option<u64> = Some(0x0040);
}

impl Dtype for F16Bits {
    fn flavour(_: &Fixture<F16Bits>) -> Option<&SqrtFlavour<F16Bits>> {
        None
    }
    const QUIET_NAN: Option<u64> = Some(0x0200);
}

/// `v` with every quiet NaN's sign and payload cleared, where `B`'s
/// NaNs are compared by class.
fn nans_by_class<B: Dtype>(v: Vec<u64>) -> Vec<u64>
where
    B::Float: Stored + tch::kind::Element,
{
    let Some(quiet) = B::QUIET_NAN else { return v };
    // A 16-bit NaN: exponent all ones (bits 7..14 or 10..14), fraction not 0.
    let inf = 0x7fff & !(quiet * 2 - 1);
    v.into_iter()
        .map(|b| {
            if b & 0x7fff > inf && b & quiet != 0 {
                inf | quiet
            } else {
                b
            }
        })
        .collect()
}

fn reproduces_generator<B: Dtype>(fx: &Fixture<B>) -> bool
where
    B::Float: Stored + tch::kind::Element,
{
    let Some(sq) = B::flavour(fx) else {
        let can = Numerics::ReproduceLibtorch.libtorch_sqrt();
        let fused = ["AVX2", "AVX512"].contains(&fx.generated_by.cpu_capability.as_str());
        if can.is_err() || !fused {
            eprintln!(
                "NOTE: {} fixture {:?} (ATen capability {}): fast {}; comparing structure and \
                 counters with PyTorch and numbers with fast's default kernel",
                fx.dtype,
                fx.name,
                fx.generated_by.cpu_capability,
                match &can {
                    Ok(_) => "reproduces only the AVX2 and AVX512 capabilities".to_string(),
                    Err(e) => format!("cannot reproduce libtorch ({e})"),
                }
            );
        }
        return can.is_ok() && fused;
    };
    let x: Vec<B::Float> = sq.probe_inputs.iter().map(|&b| b.float()).collect();
    let y = Vec::<B::Float>::try_from(tch::Tensor::from_slice(&x).sqrt()).expect("tensor");
    let same_sqrt = bits(&y) == widen(&sq.probe_outputs);
    let can = Numerics::ReproduceLibtorch.libtorch_sqrt();
    if !same_sqrt || can.is_err() {
        eprintln!(
            "NOTE: {} fixture {:?} (libtorch sqrt {:?}): this machine's libtorch sqrt {} and fast {}; \
             comparing structure and counters with PyTorch and numbers with fast's default kernel",
            fx.dtype,
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

fn build<B: Bits>(
    fx: &Fixture<B>,
    params: Vec<Param<B::Float>>,
    numerics: Numerics,
) -> Adadelta<Param<B::Float>> {
    let mut params = params.into_iter();
    let specs = fx
        .groups
        .iter()
        .map(|g| {
            let ps: Vec<Param<B::Float>> = params.by_ref().take(g.params.len()).collect();
            GroupSpec::new(ps)
                .lr(g.lr)
                .rho(g.rho)
                .eps(g.eps)
                .weight_decay(g.weight_decay)
                .maximize(g.maximize)
                // PyTorch's foreach path rounds rho to a 16-bit dtype.
                .foreach(fx.foreach)
        })
        .collect();
    Adadelta::with_groups(specs, Options::default())
        .expect("fixture groups are valid")
        .with_executor(Executor::with_numerics(numerics))
}

#[test]
fn optimizer_api_replays_every_float32_fixture() {
    replay_all::<u32>();
}

#[test]
fn optimizer_api_replays_every_float64_fixture() {
    replay_all::<u64>();
}

#[test]
fn optimizer_api_replays_every_bfloat16_fixture() {
    replay_all::<Bf16Bits>();
}

#[test]
fn optimizer_api_replays_every_float16_fixture() {
    replay_all::<F16Bits>();
}

/// A state dict written to a safetensors file and read back.
fn through_safetensors<E: Stored>(sd: &StateDict<E>, name: &str) -> StateDict<E> {
    let path = std::env::temp_dir().join(format!(
        "adadelta-fixtures-api-{}-{name}-{}.safetensors",
        std::process::id(),
        E::DTYPE
    ));
    sd.save(&path).expect("saves");
    let back = StateDict::load(&path).expect("loads");
    std::fs::remove_file(&path).expect("removes");
    back
}

fn replay_all<B: Dtype>()
where
    B::Float: Stored + tch::kind::Element,
{
    let fixtures = Fixture::<B>::load_all().expect("fixtures load");
    assert!(fixtures.len() >= 10, "{} fixtures", fixtures.len());
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
        let own: Vec<(Vec<usize>, Trajectory<B::Float>)> = fx
            .group_cases()
            .into_iter()
            .map(|(case, idx)| (idx, run_fast(&case)))
            .collect();

        let params: Vec<Param<B::Float>> = fx
            .params
            .iter()
            .map(|t| Param::from_vec_with_shape(t.values(), t.shape.clone()).expect("shape"))
            .collect();
        let mut opt = build(fx, params, numerics);
        for (t, grads) in fx.grads.iter().enumerate() {
            if fx.roundtrip_after_step == Some(t) {
                // Save with this crate's JSON, load into a fresh optimizer over
                // copies; the same state through safetensors.
                let json = opt.state_dict().to_json_string().expect("serialises");
                let mut fresh = build(fx, opt.params().to_vec(), numerics);
                fresh
                    .load_state_dict(StateDict::from_json_str(&json).expect("parses"))
                    .expect("loads");
                assert_eq!(
                    through_safetensors(&opt.state_dict(), &fx.name),
                    opt.state_dict(),
                    "{}: safetensors round trip",
                    fx.name
                );
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
            let ctx = format!("{} {} foreach={:?} step {t}", fx.dtype, fx.name, fx.foreach);
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
                        widen(&rec.params[i].bits),
                        s.map(|s| (widen(&s.square_avg.bits), widen(&s.acc_delta.bits))),
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
                let class = nans_by_class::<B>;
                assert_eq!(class(bits(p.data())), class(expected_p), "{ctx}: param {i}");
                let got_state = sd.state.get(&i).map(|s| {
                    (
                        class(bits(s.square_avg.data())),
                        class(bits(s.acc_delta.data())),
                    )
                });
                let expected_state = expected_state.map(|(v, u)| (class(v), class(u)));
                assert_eq!(got_state, expected_state, "{ctx}: state of param {i}");
            }
        }
    }
}
