//! PyTorch's layouts as [`Value`]s: the optimizer's `state_dict()` and a
//! module's `state_dict()` (name → tensor), both ways.

use serde_json::{Map, Number, Value as Json};

use super::value::{TensorInfo, Value};
use crate::checkpoint::{excerpt, json, CheckpointError, StateDictRef, TensorRef};
use crate::optimizer::group::PARAM_NAMES;
use crate::optimizer::{ParamStateDict, StateDict, TensorData};
use crate::Error;

fn invalid(msg: String) -> CheckpointError {
    CheckpointError::from(Error::InvalidStateDict(msg))
}

/// The optimizer state dict `sd` as the value `torch.save(opt.state_dict())`
/// pickles: `{"state": {0: {"step": tensor, "square_avg": tensor,
/// "acc_delta": tensor}, ...}, "param_groups": [{"lr": ..., "params": [...]}]}`.
pub(crate) fn state_dict_value<'a>(
    sd: &'a StateDictRef<'a>,
) -> Result<Value<TensorRef<'a>>, CheckpointError> {
    let state = sd
        .state
        .iter()
        .map(|(i, s)| {
            let entry = Value::dict([
                (
                    "step",
                    Value::Tensor(TensorRef {
                        shape: std::borrow::Cow::Borrowed(&[]),
                        data: std::slice::from_ref(&s.step),
                    }),
                ),
                ("square_avg", Value::Tensor(s.square_avg.clone())),
                ("acc_delta", Value::Tensor(s.acc_delta.clone())),
            ]);
            Ok((Value::Int(index(*i)?), entry))
        })
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    let groups = sd
        .param_groups
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            crate::optimizer::group::check_extra(&g.extra)?;
            // PyTorch's keys in PyTorch's order (param_names first, where
            // `Adadelta(model.named_parameters())` has them), the extra
            // keys, then params.
            let o = &g.options;
            let foreach = o.foreach.map_or(Value::None, Value::Bool);
            let names = g.param_names.iter().map(|names| {
                let names = names.iter().map(|n| Value::Str(n.clone())).collect();
                (Value::from(PARAM_NAMES), Value::List(names))
            });
            let mut items: Vec<_> = names.collect();
            items.extend([
                (Value::from("lr"), Value::Float(o.lr)),
                (Value::from("rho"), Value::Float(o.rho)),
                (Value::from("eps"), Value::Float(o.eps)),
                (Value::from("weight_decay"), Value::Float(o.weight_decay)),
                (Value::from("maximize"), Value::Bool(o.maximize)),
                (Value::from("capturable"), Value::Bool(o.capturable)),
                (Value::from("foreach"), foreach),
                (Value::from("differentiable"), Value::Bool(o.differentiable)),
            ]);
            for (k, v) in &g.extra {
                let v = from_json(v).ok_or_else(|| {
                    invalid(format!(
                        "param_groups[{gi}].{k} is {}, which cannot be pickled",
                        excerpt(&v.to_string())
                    ))
                })?;
                items.push((Value::Str(k.clone()), v));
            }
            let params = g
                .params
                .iter()
                .map(|&i| index(i).map(Value::Int))
                .collect::<Result<_, _>>()?;
            items.push((Value::from("params"), Value::List(params)));
            Ok(Value::Dict(items))
        })
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    Ok(Value::dict([
        ("state", Value::Dict(state)),
        ("param_groups", Value::List(groups)),
    ]))
}

fn index(i: usize) -> Result<i64, CheckpointError> {
    i64::try_from(i).map_err(|_| invalid(format!("parameter index {i} is beyond i64")))
}

/// A JSON value (a group's extra key) as a Python value.
fn from_json<T>(v: &Json) -> Option<Value<T>> {
    Some(match v {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(from_json).collect::<Option<_>>()?),
        Json::Object(m) => Value::Dict(
            m.iter()
                .map(|(k, v)| Some((Value::Str(k.clone()), from_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A Python value of a group as JSON, for the group reader. A 1-element
/// tensor (PyTorch's tensor `lr`) becomes its number, read by `scalar`.
fn to_json(
    v: &Value,
    what: &dyn Fn() -> String,
    scalar: &mut dyn FnMut(&TensorInfo) -> Result<f64, CheckpointError>,
) -> Result<Json, CheckpointError> {
    let bad = |v: &Value| {
        invalid(format!(
            "{} is {}, which a group cannot hold",
            what(),
            v.kind()
        ))
    };
    Ok(match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(x) => float_json(*x),
        Value::Str(s) => Json::String(s.clone()),
        Value::List(items) | Value::Tuple(items) => Json::Array(
            items
                .iter()
                .map(|x| to_json(x, what, scalar))
                .collect::<Result<_, _>>()?,
        ),
        Value::Dict(items) => {
            let mut m = Map::new();
            for (k, x) in items {
                let Value::Str(k) = k else { return Err(bad(k)) };
                m.insert(k.clone(), to_json(x, what, scalar)?);
            }
            Json::Object(m)
        }
        Value::Tensor(t) if t.numel() == 1 => float_json(scalar(t)?),
        Value::Tensor(_) => return Err(bad(v)),
    })
}

/// A float as JSON: a number, or the group reader's string for a
/// non-finite one.
fn float_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("nan".into()),
        None if x > 0.0 => Json::String("inf".into()),
        None => Json::String("-inf".into()),
    }
}

/// The optimizer state dict that `root` holds. `tensor` reads a tensor's
/// elements (f32) and `scalar` a 1-element tensor of any float dtype.
pub(crate) fn state_dict_from(
    root: &Value,
    tensor: &mut dyn FnMut(&TensorInfo, &str) -> Result<TensorData, CheckpointError>,
    scalar: &mut dyn FnMut(&TensorInfo) -> Result<f64, CheckpointError>,
) -> Result<StateDict, CheckpointError> {
    let Value::Dict(items) = root else {
        return Err(invalid(format!(
            "an optimizer state dict is a dict, but this file holds {}",
            root.kind()
        )));
    };
    let keys: Vec<String> = items
        .iter()
        .map(|(k, _)| match k {
            Value::Str(s) => excerpt(s),
            k => k.kind().to_string(),
        })
        .collect();
    let (Some(state), Some(groups)) = (root.get("state"), root.get("param_groups")) else {
        return Err(invalid(format!(
            "not an optimizer state dict (no \"state\" and \"param_groups\"): its keys are {}; \
             for a training checkpoint, name the key that holds the optimizer",
            excerpt(&keys.join(", "))
        )));
    };
    if items.len() != 2 {
        return Err(invalid(format!(
            "an optimizer state dict has the keys state and param_groups only, not {}",
            excerpt(&keys.join(", "))
        )));
    }
    let Value::Dict(state) = state else {
        return Err(invalid(format!("state is {}, not a dict", state.kind())));
    };
    let mut out = StateDict::default();
    for (k, entry) in state {
        let index = match k {
            Value::Int(i) if *i >= 0 => *i as usize,
            k => {
                return Err(invalid(format!(
                    "a state key is {}, not a parameter index",
                    k.kind()
                )))
            }
        };
        let Value::Dict(fields) = entry else {
            return Err(invalid(format!(
                "state[{index}] is {}, not a dict",
                entry.kind()
            )));
        };
        if fields.is_empty() {
            continue; // PyTorch's empty per-parameter dict: no state yet
        }
        let (mut step, mut sq, mut acc) = (None, None, None);
        for (name, v) in fields {
            let slot = match name.as_str() {
                Some("step") => &mut step,
                Some("square_avg") => &mut sq,
                Some("acc_delta") => &mut acc,
                _ => {
                    return Err(invalid(format!(
                        "state[{index}] has the key {}, which Adadelta's state has not",
                        excerpt(&format!("{name:?}"))
                    )))
                }
            };
            if slot.replace(v).is_some() {
                return Err(invalid(format!("state[{index}] has a key twice")));
            }
        }
        let missing = |what: &str| invalid(format!("state[{index}] has no {what:?}"));
        let step = match step.ok_or_else(|| missing("step"))? {
            // Older PyTorch saved the step as a number.
            Value::Int(i) => *i as f64 as f32,
            Value::Float(x) => *x as f32,
            Value::Tensor(t) if t.numel() == 1 => {
                let d = tensor(t, &format!("state[{index}].step"))?;
                d.data()[0]
            }
            v => {
                return Err(invalid(format!(
                    "state[{index}].step is {}, not a number or a 1-element tensor",
                    v.kind()
                )))
            }
        };
        let mut read = |v: Option<&Value>, key: &str| match v {
            None => Err(missing(key)),
            Some(Value::Tensor(t)) => tensor(t, &format!("state[{index}].{key}")),
            Some(v) => Err(invalid(format!(
                "state[{index}].{key} is {}, not a tensor",
                v.kind()
            ))),
        };
        let square_avg = read(sq, "square_avg")?;
        let acc_delta = read(acc, "acc_delta")?;
        if out
            .state
            .insert(
                index,
                ParamStateDict {
                    step,
                    square_avg,
                    acc_delta,
                },
            )
            .is_some()
        {
            return Err(invalid(format!("state has the key {index} twice")));
        }
    }
    let Value::List(groups) = groups else {
        return Err(invalid(format!(
            "param_groups is {}, not a list",
            groups.kind()
        )));
    };
    for (gi, g) in groups.iter().enumerate() {
        let Value::Dict(fields) = g else {
            return Err(invalid(format!(
                "param_groups[{gi}] is {}, not a dict",
                g.kind()
            )));
        };
        let mut m = Map::new();
        for (k, v) in fields {
            let Value::Str(k) = k else {
                return Err(invalid(format!(
                    "param_groups[{gi}] has a key that is {}, not a str",
                    k.kind()
                )));
            };
            let what = || format!("param_groups[{gi}].{}", excerpt(k));
            let v = to_json(v, &what, scalar)?;
            if m.insert(k.clone(), v).is_some() {
                return Err(invalid(format!("{} appears twice", what())));
            }
        }
        out.param_groups.push(json::group_from_map(gi, m)?);
    }
    Ok(out)
}

/// A module state dict (name → tensor) as the value `torch.save(model.state_dict())`
/// pickles: an `OrderedDict`.
pub(crate) fn tensors_value<'a, S: AsRef<str>>(
    named: impl IntoIterator<Item = (S, TensorRef<'a>)>,
) -> Value<TensorRef<'a>> {
    Value::Dict(
        named
            .into_iter()
            .map(|(k, t)| (Value::Str(k.as_ref().to_string()), Value::Tensor(t)))
            .collect(),
    )
}
