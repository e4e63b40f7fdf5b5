//! `state_dict` / `load_state_dict`, their JSON form and files, and hooks:
//! PyTorch's layout, bit-exact round trips, every load check leaving the
//! optimizer exactly as it was, resuming equal to not stopping, atomic saves,
//! and PyTorch's hook order.

mod common;

use std::sync::{Arc, Mutex};

use adadelta::{
    Adadelta, CheckpointError, Error, GroupSpec, Options, Param, StateDict, TensorData,
};
use serde_json::{json, Value};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Two groups, three parameters of shapes (3,), (2,3), (2,2,2); parameter 1
/// never gets a gradient.
fn trained(steps: usize) -> Adadelta {
    let mut opt = common::optimizer();
    for t in 0..steps {
        let g = |n: usize, k: f32| {
            (0..n)
                .map(|i| (i as f32 + k) * 0.1 - 0.3)
                .collect::<Vec<_>>()
        };
        opt.params_mut()[0].set_grad(g(3, t as f32)).unwrap();
        opt.params_mut()[2].set_grad(g(8, 2.0 * t as f32)).unwrap();
        opt.step().unwrap();
    }
    opt
}

fn continue_training(opt: &mut Adadelta, from: usize, steps: usize) {
    for t in from..from + steps {
        let g = |n: usize, k: f32| {
            (0..n)
                .map(|i| (i as f32 + k) * 0.1 - 0.3)
                .collect::<Vec<_>>()
        };
        opt.params_mut()[0].set_grad(g(3, t as f32)).unwrap();
        opt.params_mut()[2].set_grad(g(8, 2.0 * t as f32)).unwrap();
        opt.step().unwrap();
    }
}

fn param_bits(opt: &Adadelta) -> Vec<Vec<u32>> {
    opt.params().iter().map(|p| bits(p.data())).collect()
}

#[test]
fn the_layout_is_pytorchs() {
    let opt = trained(5);
    let sd = opt.state_dict();
    // Only parameters that have state, keyed by position.
    assert_eq!(sd.state.keys().copied().collect::<Vec<_>>(), [0, 2]);
    assert_eq!(sd.state[&0].step, 5.0);
    assert_eq!(sd.state[&2].square_avg.shape(), &[2, 2, 2]);
    assert_eq!(sd.state[&0].acc_delta.shape(), &[3]);
    assert_eq!(
        bits(sd.state[&2].square_avg.data()),
        bits(opt.state(2).unwrap().square_avg())
    );
    // Groups: every option, the extra key, params as index lists.
    assert_eq!(sd.param_groups.len(), 2);
    assert_eq!(sd.param_groups[0].params, [0, 1]);
    assert_eq!(sd.param_groups[1].params, [2]);
    assert_eq!(sd.param_groups[0].options.lr, 0.5);
    assert!(sd.param_groups[0].options.maximize);
    assert_eq!(sd.param_groups[1].options.rho, 0.95);
    assert_eq!(sd.param_groups[0].extra["initial_lr"].as_f64(), Some(0.5));

    // The JSON: PyTorch's keys in PyTorch's order, `params` last.
    let json = sd.to_json_string().unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    let top: Vec<&str> = json_keys(&json, 0);
    assert_eq!(top, ["state", "param_groups"]);
    let g0 = &v["param_groups"][0];
    assert_eq!(g0["params"], json!([0, 1]));
    assert_eq!(g0["foreach"], Value::Null);
    let group_keys = json_keys(&json, json.find("\"param_groups\"").unwrap());
    assert_eq!(
        group_keys,
        [
            "lr",
            "rho",
            "eps",
            "weight_decay",
            "maximize",
            "capturable",
            "foreach",
            "differentiable",
            "initial_lr",
            "params"
        ]
    );
    let s0 = &v["state"]["0"];
    assert_eq!(
        s0["step"],
        json!({"dtype": "float32", "shape": [], "bits": [5.0f32.to_bits()]})
    );
    assert_eq!(s0["square_avg"]["shape"], json!([3]));
    assert_eq!(
        s0["square_avg"]["bits"],
        json!(bits(opt.state(0).unwrap().square_avg()))
    );
}

/// The keys of the first JSON object that starts at or after `from`, in
/// text order (serde_json's `Value` sorts keys, so read the text).
fn json_keys(json: &str, from: usize) -> Vec<&str> {
    let start = from + json[from..].find('{').unwrap();
    let mut keys = Vec::new();
    let (mut depth, mut i) = (0i32, start);
    let b = json.as_bytes();
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b'"' => {
                let end = i + 1 + json[i + 1..].find('"').unwrap();
                if depth == 1 && b[end + 1] == b':' {
                    keys.push(&json[i + 1..end]);
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

#[test]
fn json_round_trips_every_bit() {
    let mut opt = trained(3);
    // Put awkward values into the state: NaN payloads, -0, subnormals, inf.
    let mut sd = opt.state_dict();
    let weird = [
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffa0_0001),
        -0.0,
        f32::from_bits(1),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1.0e-45,
    ];
    sd.state
        .get_mut(&2)
        .unwrap()
        .acc_delta
        .data_mut()
        .copy_from_slice(&weird);
    sd.state.get_mut(&0).unwrap().step = f32::from_bits(0x4b80_0000); // 2^24
    sd.param_groups[1].options.lr = 0.1 + 0.2; // not a short decimal
    sd.param_groups[1].options.eps = f64::INFINITY;
    // The JSON form keeps every bit, even of values that the optimizer
    // refuses to load (an infinite eps, a negative running average).
    let json = sd.to_json_string().unwrap();
    let back = StateDict::from_json_str(&json).unwrap();
    assert_eq!(back, sd); // bitwise equality of every tensor
    assert_eq!(
        bits(back.state[&2].acc_delta.data()),
        weird.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        back.param_groups[1].options.lr.to_bits(),
        (0.1f64 + 0.2).to_bits()
    );
    assert_eq!(back.param_groups[1].options.eps, f64::INFINITY);
    // And through serde, as part of a user's own checkpoint structure.
    let wrapped = json!({"epoch": 3, "optimizer": back});
    let again: StateDict = serde_json::from_value(wrapped["optimizer"].clone()).unwrap();
    assert_eq!(again, sd);
    // Through the optimizer, with the values it accepts.
    sd.param_groups[1].options.eps = 1e-8;
    sd.state.get_mut(&2).unwrap().acc_delta.data_mut()[5] = f32::MAX;
    opt.load_state_dict(sd.clone()).unwrap();
    let json = opt.state_dict().to_json_string().unwrap();
    assert_eq!(StateDict::from_json_str(&json).unwrap(), sd);
}

#[test]
fn resuming_from_a_checkpoint_equals_not_stopping() {
    let dir = std::env::temp_dir().join(format!("adadelta-api-sd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("opt.json");

    let mut straight = trained(4);
    continue_training(&mut straight, 4, 5);

    let stopped = trained(4);
    stopped.save(&path).unwrap();
    let params: Vec<Param> = stopped.params().to_vec();
    drop(stopped);
    // A fresh optimizer with other options: the saved ones must win.
    let mut resumed = Adadelta::with_groups(
        vec![
            GroupSpec::new(params[..2].to_vec()),
            GroupSpec::new(params[2..].to_vec()),
        ],
        Options {
            lr: 0.01,
            ..Options::default()
        },
    )
    .unwrap();
    resumed.load(&path).unwrap();
    continue_training(&mut resumed, 4, 5);

    assert_eq!(param_bits(&resumed), param_bits(&straight));
    assert_eq!(resumed.state_dict(), straight.state_dict());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Loads `sd` into a trained optimizer, expects `err`, and checks that the
/// optimizer did not change at all.
fn load_fails(sd: StateDict, err: Error) {
    let mut opt = trained(2);
    let before = opt.state_dict();
    let before_params = param_bits(&opt);
    let posts = Arc::new(Mutex::new(0));
    let p = Arc::clone(&posts);
    opt.register_load_state_dict_post_hook(move |_| *p.lock().unwrap() += 1, false);
    assert_eq!(opt.load_state_dict(sd).unwrap_err(), err);
    assert_eq!(opt.state_dict(), before, "state and groups unchanged");
    assert_eq!(param_bits(&opt), before_params);
    assert_eq!(
        *posts.lock().unwrap(),
        0,
        "no post hook after a failed load"
    );
}

#[test]
fn every_load_check_leaves_the_optimizer_unchanged() {
    let good = trained(3).state_dict();

    let mut sd = good.clone();
    sd.param_groups.pop();
    load_fails(
        sd,
        Error::GroupCountMismatch {
            saved: 1,
            current: 2,
        },
    );

    let mut sd = good.clone();
    sd.param_groups[1].params.push(7);
    load_fails(
        sd,
        Error::GroupSizeMismatch {
            group: 1,
            saved: 2,
            current: 1,
        },
    );

    // A later group failing must not leave an earlier group's state loaded.
    let mut sd = good.clone();
    let s = sd.state.get_mut(&2).unwrap();
    s.square_avg = TensorData::from(vec![0.0; 7]);
    load_fails(
        sd,
        Error::StateLengthMismatch {
            index: 2,
            key: "square_avg",
            param: 8,
            state: 7,
        },
    );

    let mut sd = good.clone();
    sd.state.get_mut(&0).unwrap().acc_delta = TensorData::from(vec![0.0; 4]);
    load_fails(
        sd,
        Error::StateLengthMismatch {
            index: 0,
            key: "acc_delta",
            param: 3,
            state: 4,
        },
    );

    let mut sd = good.clone();
    let s0 = sd.state[&0].clone();
    sd.state.insert(9, s0);
    load_fails(
        sd,
        Error::InvalidStateDict(
            "state has an entry for parameter index 9, which is in no parameter group".into(),
        ),
    );

    let mut sd = good.clone();
    sd.param_groups[1].params = vec![0];
    load_fails(
        sd,
        Error::InvalidStateDict("parameter index 0 appears more than once in param_groups".into()),
    );

    let mut sd = good.clone();
    sd.param_groups[1].options.rho = 1.5;
    load_fails(sd, Error::InvalidRho(1.5));

    let mut sd = good.clone();
    sd.param_groups[0].options.capturable = true;
    load_fails(sd, Error::CapturableUnsupported);

    let mut sd = good.clone();
    sd.param_groups[0].options.differentiable = true;
    load_fails(sd, Error::DifferentiableUnsupported);

    let mut sd = good.clone();
    sd.param_groups[0].extra.insert("lr", 1.0);
    load_fails(sd, Error::ReservedGroupKey("lr".into()));
}

#[test]
fn loading_matches_by_position_and_replaces_all_state() {
    // Saved indices need not be 0..n: PyTorch zips them with the current
    // parameters in order.
    let a = trained(3);
    let mut sd = a.state_dict();
    let renumber = |i: usize| 10 + 2 * i;
    sd.state = sd
        .state
        .into_iter()
        .map(|(i, s)| (renumber(i), s))
        .collect();
    for g in &mut sd.param_groups {
        for i in &mut g.params {
            *i = renumber(*i);
        }
    }
    let mut b = trained(1); // has state for 0 and 2 already
    b.load_state_dict(sd).unwrap();
    assert_eq!(b.state(0), a.state(0));
    assert_eq!(b.state(2), a.state(2));
    assert!(b.state(1).is_none());

    // A dict without state for a parameter drops that parameter's state.
    let mut sd = a.state_dict();
    sd.state.remove(&2);
    b.load_state_dict(sd).unwrap();
    assert!(b.state(2).is_none());
    assert_eq!(b.state(0), a.state(0));
}

#[test]
fn malformed_json_is_a_typed_error() {
    let good = trained(1).state_dict().to_json_string().unwrap();
    let v: Value = serde_json::from_str(&good).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = v.clone();
        f(&mut v);
        StateDict::from_json_str(&v.to_string())
    };
    let invalid = |r: Result<StateDict, CheckpointError>| match r {
        // Each message says where, after what: "... at line 1 column 162".
        Err(CheckpointError::Invalid {
            source: Error::InvalidStateDict(m),
            ..
        }) => {
            let (what, at) = m.rsplit_once(" at line ").expect("a position");
            assert!(at.starts_with("1 column "), "{m}");
            what.to_string()
        }
        other => panic!("expected InvalidStateDict, got {other:?}"),
    };
    let json_err = |r: Result<StateDict, CheckpointError>| match r {
        Err(CheckpointError::Json { source: e, .. }) => e.to_string(),
        other => panic!("expected a JSON error, got {other:?}"),
    };
    assert_eq!(
        invalid(edit(&|v| {
            v["param_groups"][0].as_object_mut().unwrap().remove("rho");
        })),
        "param_groups[0] has no \"rho\""
    );
    assert_eq!(
        invalid(edit(&|v| v["param_groups"][1]["lr"] = json!("fast"))),
        "param_groups[1].lr is \"fast\", not a number"
    );
    assert_eq!(
        invalid(edit(&|v| v["param_groups"][0]["params"] = json!([0, -1]))),
        "param_groups[0].params is -1, not a list of parameter indices"
    );
    assert_eq!(
        invalid(edit(
            &|v| v["state"]["0"]["square_avg"]["dtype"] = json!("float64")
        )),
        "state[0].square_avg has dtype \"float64\"; expected \"float32\""
    );
    assert_eq!(
        invalid(edit(
            &|v| v["state"]["0"]["acc_delta"]["shape"] = json!([2, 2])
        )),
        "state[0].acc_delta: shape '[2, 2]' is invalid for input of size 3"
    );
    assert_eq!(
        invalid(edit(&|v| v["state"]["0"]["step"]["shape"] = json!([0]))),
        "state[0].step: shape '[0]' is invalid for input of size 1"
    );
    assert_eq!(
        invalid(edit(&|v| {
            v["state"]["0"].as_object_mut().unwrap().remove("acc_delta");
        })),
        "state[0] has no \"acc_delta\""
    );
    assert_eq!(
        invalid(edit(&|v| {
            let s = v["state"]["0"].clone();
            v["state"]["01"] = s;
        })),
        "state key \"01\" is not a parameter index"
    );
    assert!(json_err(edit(&|v| v["state"]["0"]["bits_typo"] = json!(1))).contains("unknown field"));
    assert!(json_err(edit(&|v| v["model"] = json!({}))).contains("unknown field `model`"));
    assert!(
        json_err(edit(&|v| v["state"]["0"]["step"]["bits"] = json!([-1])))
            .contains("invalid value")
    );
    // PyTorch's flags may be absent (its __setstate__ fills them in).
    let sd = edit(&|v| {
        let g = v["param_groups"][0].as_object_mut().unwrap();
        for k in ["maximize", "foreach", "capturable", "differentiable"] {
            g.remove(k);
        }
    })
    .unwrap();
    let o = sd.param_groups[0].options;
    assert_eq!(
        (o.maximize, o.foreach, o.capturable, o.differentiable),
        (false, None, false, false)
    );
    // An empty per-parameter dict is "no state yet", as PyTorch treats it.
    let sd = edit(&|v| v["state"]["0"] = json!({})).unwrap();
    assert!(!sd.state.contains_key(&0));
    // Integers are numbers too (PyTorch's default weight_decay is the int 0).
    let sd = edit(&|v| v["param_groups"][1]["weight_decay"] = json!(0)).unwrap();
    assert_eq!(sd.param_groups[1].options.weight_decay, 0.0);
}

#[test]
fn a_failed_file_load_leaves_the_optimizer_unchanged() {
    let dir = std::env::temp_dir().join(format!("adadelta-api-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut opt = trained(2);
    let before = opt.state_dict();
    let path = dir.join("missing.json");
    assert!(matches!(opt.load(&path), Err(CheckpointError::Io { .. })));
    std::fs::write(&path, b"{\"state\": {}, \"param_groups\": [").unwrap();
    assert!(matches!(opt.load(&path), Err(CheckpointError::Json { .. })));
    let mut one_group = trained(2).state_dict();
    one_group.param_groups.pop();
    one_group.save(&path).unwrap();
    assert!(matches!(
        opt.load(&path),
        Err(CheckpointError::Invalid {
            source: Error::GroupCountMismatch { .. },
            ..
        })
    ));
    assert_eq!(opt.state_dict(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_replaces_the_file_atomically() {
    let dir = std::env::temp_dir().join(format!("adadelta-api-atomic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.json");
    let first = trained(1);
    first.save(&path).unwrap();
    let second = trained(3);
    second.save(&path).unwrap();
    assert_eq!(StateDict::load(&path).unwrap(), second.state_dict());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ckpt.json"], "no temporary file left");
    // A dict that cannot be serialised does not touch the old file.
    let mut bad = second.state_dict();
    bad.param_groups[0].extra.insert("params", json!([]));
    assert!(matches!(
        bad.save(&path),
        Err(CheckpointError::Invalid {
            source: Error::ReservedGroupKey(_),
            ..
        })
    ));
    assert_eq!(StateDict::load(&path).unwrap(), second.state_dict());
    // Saving into a missing directory fails cleanly.
    assert!(matches!(
        second.save(dir.join("no/such/dir.json")),
        Err(CheckpointError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hooks_run_in_pytorchs_order_and_handles_remove_them() {
    // PyTorch 2.13 (measured, instance hooks only):
    // step: pre, post; state_dict: prepended pre, pre, post;
    // load_state_dict: pre (sees the dict), post.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut opt = trained(1);
    let push = |log: &Arc<Mutex<Vec<String>>>, s: &str| {
        let (log, s) = (Arc::clone(log), s.to_string());
        move || log.lock().unwrap().push(s.clone())
    };
    let f = push(&log, "pre");
    opt.register_step_pre_hook(move |_| f());
    let f = push(&log, "post");
    opt.register_step_post_hook(move |_| f());
    let f = push(&log, "sd_pre");
    opt.register_state_dict_pre_hook(move |_| f(), false);
    let f = push(&log, "sd_pre_prepended");
    opt.register_state_dict_pre_hook(move |_| f(), true);
    let f = push(&log, "sd_post");
    opt.register_state_dict_post_hook(move |_, _| f(), false);
    let l = Arc::clone(&log);
    opt.register_load_state_dict_pre_hook(
        move |_, sd| {
            l.lock()
                .unwrap()
                .push(format!("lsd_pre groups={}", sd.param_groups.len()))
        },
        false,
    );
    let f = push(&log, "lsd_post");
    opt.register_load_state_dict_post_hook(move |_| f(), false);

    opt.step().unwrap();
    let sd = opt.state_dict();
    opt.load_state_dict(sd).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "pre",
            "post",
            "sd_pre_prepended",
            "sd_pre",
            "sd_post",
            "lsd_pre groups=2",
            "lsd_post"
        ]
    );
}

#[test]
fn hook_handles_are_distinct_and_remove_exactly_their_hook() {
    let log = Arc::new(Mutex::new(Vec::<u32>::new()));
    let mut opt = trained(0);
    let mut handles = Vec::new();
    for k in 0..3 {
        let l = Arc::clone(&log);
        handles.push(opt.register_step_pre_hook(move |_| l.lock().unwrap().push(k)));
    }
    let l = Arc::clone(&log);
    let first = opt.register_load_state_dict_post_hook(move |_| l.lock().unwrap().push(99), true);
    handles.push(first);
    let distinct: std::collections::HashSet<_> = handles.iter().collect();
    assert_eq!(distinct.len(), 4);
    assert!(opt.remove_hook(handles[1]));
    assert!(!opt.remove_hook(handles[1]));
    opt.step().unwrap();
    assert_eq!(*log.lock().unwrap(), [0, 2]);
    assert!(opt.remove_hook(first));
    opt.load_state_dict(opt.state_dict()).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [0, 2],
        "the removed post hook did not run"
    );
}

#[test]
fn hooks_can_rewrite_the_dicts() {
    let mut opt = trained(2);
    // A state_dict post-hook's changes are what state_dict returns.
    let h = opt.register_state_dict_post_hook(
        |_, sd| {
            sd.param_groups[1].options.lr = 0.125;
        },
        false,
    );
    assert_eq!(opt.state_dict().param_groups[1].options.lr, 0.125);
    assert_eq!(
        opt.param_groups()[1].options().lr,
        1.0,
        "the optimizer is not changed"
    );
    opt.remove_hook(h);
    // A load pre-hook's changes are what gets loaded (and checked).
    opt.register_load_state_dict_pre_hook(|_, sd| sd.param_groups[0].options.lr = 0.75, false);
    opt.load_state_dict(opt.state_dict()).unwrap();
    assert_eq!(opt.param_groups()[0].options().lr, 0.75);
    let h =
        opt.register_load_state_dict_pre_hook(|_, sd| sd.param_groups[0].options.eps = -1.0, false);
    assert_eq!(
        opt.load_state_dict(opt.state_dict()).unwrap_err(),
        Error::InvalidEps(-1.0)
    );
    opt.remove_hook(h);
}

#[test]
fn a_step_pre_hook_can_schedule_the_learning_rate() {
    let mut opt = trained(0);
    let count = Arc::new(Mutex::new(0u32));
    let c = Arc::clone(&count);
    opt.register_step_pre_hook(move |o| {
        let mut n = c.lock().unwrap();
        *n += 1;
        o.set_lr(1.0 / *n as f64).unwrap();
    });
    for _ in 0..4 {
        opt.step().unwrap();
    }
    assert_eq!(opt.param_groups()[0].options().lr, 0.25);
}
