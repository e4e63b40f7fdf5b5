//! Named parameters, as `torch.optim.Optimizer` has them since PyTorch 2.5
//! (`Adadelta(model.named_parameters())`, groups of `(name, tensor)` pairs):
//! the names in the groups and in `state_dict()["param_groups"][i]
//! ["param_names"]`, through every checkpoint format, loading between named
//! and unnamed optimizers as PyTorch does (checked against torch 2.13's
//! `optimizer.py` and by running it), and PyTorch's error for mixing named
//! and unnamed groups.

mod common;

use adadelta::checkpoint::torch::{TorchFile, Value};
use adadelta::{Adadelta, Error, GroupSpec, Options, Param, StateDict};
use serde_json::json;

fn names(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

/// Two named groups (`w`, `b` at lr 0.5; `head.w`), stepped twice.
fn named() -> Adadelta {
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::named([
                ("w", Param::with_shape(vec![0.5; 6], vec![2, 3]).unwrap()),
                ("b", Param::new(vec![-1.0, 2.0])),
            ])
            .lr(0.5),
            GroupSpec::named([("head.w", Param::new(vec![0.25; 3]))]).rho(0.95),
        ],
        Options::default(),
    )
    .unwrap();
    for t in 0..2 {
        for p in opt.params_mut() {
            let g = (0..p.numel()).map(|i| (i + t) as f32 * 0.1 - 0.2).collect();
            p.set_grad(g).unwrap();
        }
        opt.step().unwrap();
    }
    opt
}

/// The same parameters and options, without names, not stepped.
fn unnamed() -> Adadelta {
    Adadelta::with_groups(
        vec![
            GroupSpec::new(vec![
                Param::with_shape(vec![0.5; 6], vec![2, 3]).unwrap(),
                Param::new(vec![-1.0, 2.0]),
            ])
            .lr(0.5),
            GroupSpec::new(vec![Param::new(vec![0.25; 3])]).rho(0.95),
        ],
        Options::default(),
    )
    .unwrap()
}

fn group_names(opt: &Adadelta) -> Vec<Option<Vec<String>>> {
    opt.param_groups()
        .iter()
        .map(|g| g.param_names().map(<[String]>::to_vec))
        .collect()
}

#[test]
fn named_groups_keep_their_names_in_the_optimizer_and_its_state_dict() {
    let opt = named();
    assert_eq!(group_names(&opt), [names(&["w", "b"]), names(&["head.w"])]);
    let sd = opt.state_dict();
    assert_eq!(sd.param_groups[0].param_names, names(&["w", "b"]));
    assert_eq!(sd.param_groups[1].param_names, names(&["head.w"]));
    assert_eq!(sd.param_groups[1].params, [2]);
    assert!(sd.param_groups.iter().all(|g| g.extra.is_empty()));
    // Unnamed groups have none.
    assert_eq!(unnamed().state_dict().param_groups[0].param_names, None);
}

#[test]
fn new_named_is_adadelta_of_named_parameters_in_one_group() {
    let opt = Adadelta::new_named(
        [("a", Param::new(vec![1.0])), ("b", Param::new(vec![2.0]))],
        Options {
            lr: 0.1,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(group_names(&opt), [names(&["a", "b"])]);
    assert_eq!(opt.param_groups()[0].options().lr, 0.1);
    let err = Adadelta::<Param>::new_named(Vec::<(&str, Param)>::new(), Options::default());
    assert_eq!(err.unwrap_err(), Error::EmptyParamList);
}

#[test]
fn the_json_form_writes_param_names_first_where_pytorch_has_them() {
    let json = named().state_dict().to_json_string().unwrap();
    assert!(
        json.contains(r#""param_groups":[{"param_names":["w","b"],"lr":0.5,"rho":0.9,"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"param_names":["head.w"],"lr":1.0,"rho":0.95,"#),
        "{json}"
    );
    assert!(!unnamed()
        .state_dict()
        .to_json_string()
        .unwrap()
        .contains("param_names"));
}

#[test]
fn named_groups_round_trip_through_the_state_dict_and_every_checkpoint_format() {
    let opt = named();
    let sd = opt.state_dict();
    let dir = common::temp_dir("named-params");
    for file in ["opt.json", "opt.safetensors", "opt.pt"] {
        let path = dir.join(file);
        opt.save(&path).unwrap();
        assert_eq!(StateDict::load(&path).unwrap(), sd, "{file}");
        let mut other = unnamed();
        other.load(&path).unwrap();
        assert_eq!(other.state_dict(), sd, "{file}");
        assert_eq!(
            common::json(&other.state_dict()),
            common::json(&sd),
            "{file}"
        );
    }
    let back = StateDict::from_json_str(&sd.to_json_string().unwrap()).unwrap();
    assert_eq!(back, sd);

    // The torch.save file holds param_names as PyTorch does: a list of str,
    // first in the group.
    let f = TorchFile::open(dir.join("opt.pt")).unwrap();
    let Some(Value::List(groups)) = f.get("param_groups") else {
        panic!("no param_groups list in the torch file")
    };
    let Value::Dict(first) = &groups[0] else {
        panic!("group 0 is not a dict")
    };
    assert_eq!(first[0].0, Value::Str("param_names".into()));
    assert_eq!(
        first[0].1,
        Value::List(vec![Value::Str("w".into()), Value::Str("b".into())])
    );

    // The safetensors metadata holds them in its param_groups JSON.
    let bytes = std::fs::read(dir.join("opt.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let groups = &meta.metadata().as_ref().unwrap()["param_groups"];
    let groups: serde_json::Value = serde_json::from_str(groups).unwrap();
    assert_eq!(groups[1]["param_names"], json!(["head.w"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unnamed_optimizer_loading_a_named_state_dict_takes_the_names_as_pytorch_does() {
    let sd = named().state_dict();
    let mut opt = unnamed();
    opt.load_state_dict(sd.clone()).unwrap();
    assert_eq!(group_names(&opt), [names(&["w", "b"]), names(&["head.w"])]);
    assert_eq!(opt.state_dict(), sd);
    // Named from then on: an unnamed group is refused, as in PyTorch.
    let err = opt
        .add_param_group(GroupSpec::new(vec![Param::new(vec![0.0])]))
        .unwrap_err();
    assert_eq!(err, Error::MixedParamNames { with_names: false });
}

#[test]
fn a_named_optimizer_loading_an_unnamed_state_dict_keeps_its_names() {
    let mut source = unnamed();
    source.params_mut()[0].set_grad(vec![0.5; 6]).unwrap();
    source.step().unwrap();
    let sd = source.state_dict();
    let mut opt = named();
    opt.load_state_dict(sd.clone()).unwrap();
    assert_eq!(group_names(&opt), [names(&["w", "b"]), names(&["head.w"])]);
    assert_eq!(opt.state(0), source.state(0));
    assert_eq!(opt.state(2), None);
}

#[test]
fn saved_names_replace_other_names_and_take_no_part_in_matching() {
    let mut sd = named().state_dict();
    sd.param_groups[0].param_names = names(&["b", "w"]); // swapped: still by position
    let mut opt = Adadelta::with_groups(
        vec![
            GroupSpec::named([
                ("x", Param::with_shape(vec![0.5; 6], vec![2, 3]).unwrap()),
                ("y", Param::new(vec![-1.0, 2.0])),
            ]),
            GroupSpec::named([("z", Param::new(vec![0.25; 3]))]),
        ],
        Options::default(),
    )
    .unwrap();
    opt.load_state_dict(sd.clone()).unwrap();
    assert_eq!(group_names(&opt), [names(&["b", "w"]), names(&["head.w"])]);
    assert_eq!(opt.state(0).unwrap().square_avg().len(), 6);
    assert_eq!(opt.state_dict(), sd);
}

#[test]
fn mixing_named_and_unnamed_groups_is_pytorchs_value_error_with_its_text() {
    let unnamed_group = || GroupSpec::new(vec![Param::new(vec![0.0])]);
    let named_group = || GroupSpec::named([("p", Param::new(vec![0.0]))]);
    let err = Adadelta::with_groups(vec![named_group(), unnamed_group()], Options::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "all optimizer param groups should be with/without names. \
         cannot add param group without names to the optimizer"
    );
    let err = Adadelta::with_groups(vec![unnamed_group(), named_group()], Options::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "all optimizer param groups should be with/without names. \
         cannot add param group with names to the optimizer"
    );

    // add_param_group refuses it and changes nothing.
    let mut opt = named();
    let before = common::content(&opt);
    assert_eq!(
        opt.check_param_group(&unnamed_group()).unwrap_err(),
        Error::MixedParamNames { with_names: false }
    );
    assert_eq!(
        opt.add_param_group(unnamed_group()).unwrap_err(),
        Error::MixedParamNames { with_names: false }
    );
    assert_eq!(common::content(&opt), before);
    opt.add_param_group(named_group()).unwrap();
    assert_eq!(
        opt.param_groups()[2].param_names(),
        names(&["p"]).as_deref()
    );
}

#[test]
fn a_group_of_no_named_parameters_is_unnamed_as_in_pytorch() {
    // PyTorch finds names in (name, tensor) pairs: an empty list has none.
    let empty = GroupSpec::<Param>::named(Vec::<(String, Param)>::new());
    assert_eq!(empty.param_names(), None);
    let err = Adadelta::with_groups(
        vec![GroupSpec::named([("p", Param::new(vec![0.0]))]), empty],
        Options::default(),
    )
    .unwrap_err();
    assert_eq!(err, Error::MixedParamNames { with_names: false });
}

#[test]
fn a_state_dict_with_a_name_count_other_than_its_params_is_refused_and_changes_nothing() {
    let mut opt = named();
    let before = common::content(&opt);
    for bad in [names(&["w"]), names(&["w", "b", "c"])] {
        let mut sd = opt.state_dict();
        sd.param_groups[0].param_names = bad.clone();
        let n = bad.unwrap().len();
        let err = opt.load_state_dict(sd).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidStateDict(format!("param_groups[0] has {n} param_names for 2 params"))
        );
        assert_eq!(common::content(&opt), before);
    }
}

#[test]
fn param_names_is_a_reserved_key_not_an_extra() {
    let g = GroupSpec::new(vec![Param::new(vec![0.0])]).extra("param_names", json!(["p"]));
    assert_eq!(
        Adadelta::with_groups(vec![g], Options::default()).unwrap_err(),
        Error::ReservedGroupKey("param_names".into())
    );
    let mut opt = unnamed();
    assert_eq!(
        opt.set_group_extra(0, "param_names", json!(["a", "b"])),
        Err(Error::ReservedGroupKey("param_names".into()))
    );
    let mut sd = opt.state_dict();
    sd.param_groups[0]
        .extra
        .insert("param_names", json!(["a", "b"]));
    assert_eq!(
        opt.load_state_dict(sd.clone()).unwrap_err(),
        Error::ReservedGroupKey("param_names".into())
    );
    assert!(sd.to_json_string().is_err());
}

#[test]
fn a_pytorch_state_dict_with_param_names_reads_them_typed_and_refuses_other_values() {
    // torch 2.13: json of Adadelta(nn.Linear(2, 1).named_parameters()).state_dict(),
    // tensors aside.
    let group = |names: serde_json::Value| {
        json!({"state": {}, "param_groups": [{"param_names": names, "lr": 1.0, "rho": 0.9,
            "eps": 1e-06, "weight_decay": 0, "maximize": false, "capturable": false,
            "foreach": null, "differentiable": false, "params": [0, 1]}]})
        .to_string()
    };
    let sd = StateDict::<f32>::from_json_str(&group(json!(["weight", "bias"]))).unwrap();
    assert_eq!(sd.param_groups[0].param_names, names(&["weight", "bias"]));
    assert!(sd.param_groups[0].extra.is_empty());
    for bad in [json!("weight"), json!(["weight", 1]), json!(null)] {
        let err = StateDict::<f32>::from_json_str(&group(bad.clone())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "param_groups[0].param_names is {bad}, not a list of parameter names"
            )),
            "{msg}"
        );
    }
}
