//! Every error message of `adadelta::Adadelta` that PyTorch also has, compared
//! with the text real `torch.optim.Adadelta` (PyTorch 2.13 in the project
//! venv) raises for the same input: the expected strings come from PyTorch
//! at test time, none is written here.

mod api_support;

use adadelta::{Adadelta, Error, GroupSpec, Options, Param, ParamViewMut, Parameter};
use api_support::interop;
use serde_json::{json, Value};

/// A parameter with an identity (PyTorch's tensors are compared by
/// identity), to provoke the overlap and duplicate checks.
#[derive(Debug)]
struct Handle(u32, Vec<f32>);

impl Parameter for Handle {
    type Elem = f32;
    fn numel(&self) -> usize {
        self.1.len()
    }
    fn view_mut(&mut self) -> Result<ParamViewMut<'_>, Error> {
        Ok(ParamViewMut {
            data: &mut self.1,
            grad: None,
        })
    }
    fn zero_grad(&mut self, _: bool) {}
    fn is_same(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// A JSON number, or Python's name for a non-finite float.
fn py_float(x: f64) -> Value {
    if x.is_nan() {
        json!("nan")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(x)
    }
}

fn p(n: usize) -> Param {
    Param::new(vec![0.0; n])
}

/// Our error for each probe, in the order sent to PyTorch.
fn ours(probe: &Value) -> String {
    let f = |k: &str| probe[k].clone();
    let value = || match &probe["value"] {
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => unreachable!(),
        },
        v => v.as_f64().unwrap(),
    };
    let new = |o: Options| Adadelta::new(vec![p(3)], o).unwrap_err().to_string();
    match probe["kind"].as_str().unwrap() {
        "lr" => new(Options {
            lr: value(),
            ..Options::default()
        }),
        "rho" => new(Options {
            rho: value(),
            ..Options::default()
        }),
        "eps" => new(Options {
            eps: value(),
            ..Options::default()
        }),
        "weight_decay" => new(Options {
            weight_decay: value(),
            ..Options::default()
        }),
        "empty" => Adadelta::<Param>::new(vec![], Options::default())
            .unwrap_err()
            .to_string(),
        "overlap" => {
            let mut opt = Adadelta::new(vec![Handle(1, vec![0.0; 3])], Options::default()).unwrap();
            opt.add_param_group(GroupSpec::new(vec![Handle(1, vec![0.0; 3])]))
                .unwrap_err()
                .to_string()
        }
        "duplicate" => Adadelta::new(
            vec![Handle(1, vec![0.0; 3]), Handle(1, vec![0.0; 3])],
            Options::default(),
        )
        .unwrap_err()
        .to_string(),
        "load_group_count" => {
            let sd = Adadelta::new(vec![p(3)], Options::default())
                .unwrap()
                .state_dict();
            let mut two = Adadelta::with_groups(
                vec![GroupSpec::new(vec![p(3)]), GroupSpec::new(vec![p(2)])],
                Options::default(),
            )
            .unwrap();
            two.load_state_dict(sd).unwrap_err().to_string()
        }
        "load_group_size" => {
            let sd = Adadelta::new(vec![p(3)], Options::default())
                .unwrap()
                .state_dict();
            let mut two = Adadelta::new(vec![p(3), p(2)], Options::default()).unwrap();
            two.load_state_dict(sd).unwrap_err().to_string()
        }
        "capturable" => new(Options {
            capturable: true,
            ..Options::default()
        }),
        "grad_size" => {
            let shape: Vec<usize> = serde_json::from_value(f("param_shape")).unwrap();
            let n: usize = shape.iter().product();
            let mut w = Param::with_shape(vec![0.0; n], shape).unwrap();
            let len = f("grad_len").as_u64().unwrap() as usize;
            w.set_grad(vec![0.0; len]).unwrap_err().to_string()
        }
        "reshape" => {
            let shape: Vec<usize> = serde_json::from_value(f("shape")).unwrap();
            let len = f("len").as_u64().unwrap() as usize;
            Param::with_shape(vec![0.0; len], shape)
                .unwrap_err()
                .to_string()
        }
        k => panic!("no probe {k}"),
    }
}

#[test]
fn error_messages_are_pytorchs() {
    let mut probes = Vec::new();
    // Values chosen to exercise Python's float formatting: integral,
    // fractional, exponent notation both ways, NaN and infinities.
    for v in [
        -1.0,
        -0.5,
        -1e-6,
        -1e-5,
        -0.0001,
        -123.456,
        -1e16,
        -1.5e300,
        -5e-324,
        f64::NAN,
        f64::NEG_INFINITY,
    ] {
        probes.push(json!({"kind": "lr", "value": py_float(v)}));
    }
    for v in [
        1.5,
        -0.1,
        1.0000000000000002,
        -1e-300,
        2.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        probes.push(json!({"kind": "rho", "value": py_float(v)}));
    }
    for v in [-1e-8, -1.0, -3e17, f64::NAN, f64::NEG_INFINITY] {
        probes.push(json!({"kind": "eps", "value": py_float(v)}));
    }
    for v in [-0.1, -1e-3, -7.0, f64::NAN, f64::NEG_INFINITY] {
        probes.push(json!({"kind": "weight_decay", "value": py_float(v)}));
    }
    for kind in [
        "empty",
        "overlap",
        "load_group_count",
        "load_group_size",
        "capturable",
    ] {
        probes.push(json!({"kind": kind}));
    }
    probes.push(json!({"kind": "grad_size", "param_shape": [3], "grad_len": 2}));
    probes.push(json!({"kind": "grad_size", "param_shape": [2, 3], "grad_len": 5}));
    probes.push(json!({"kind": "grad_size", "param_shape": [], "grad_len": 0}));
    probes.push(json!({"kind": "reshape", "len": 3, "shape": [2, 2]}));
    probes.push(json!({"kind": "reshape", "len": 3, "shape": []}));
    probes.push(json!({"kind": "reshape", "len": 0, "shape": [2, 1]}));

    let answer = interop(&json!({"command": "errors", "probes": probes}));
    let torch = answer["errors"].as_array().unwrap();
    assert_eq!(torch.len(), probes.len());
    for (probe, t) in probes.iter().zip(torch) {
        let message = t["message"]
            .as_str()
            .unwrap_or_else(|| panic!("PyTorch raised nothing for {probe}"));
        assert_eq!(ours(probe), message, "{probe} (PyTorch's {})", t["type"]);
    }
}

#[test]
fn the_duplicate_parameter_error_is_pytorchs_warning_text() {
    // PyTorch only warns; this crate's error is the warning's first clause.
    let answer = interop(&json!({"command": "errors", "probes": [{"kind": "duplicate"}]}));
    let t = &answer["errors"][0];
    assert_eq!(t["type"], "UserWarning");
    let warning = t["message"].as_str().unwrap();
    let ours = ours(&json!({"kind": "duplicate"}));
    assert!(
        warning.starts_with(&format!("{ours};")),
        "{ours:?} is not the start of {warning:?}"
    );
}
