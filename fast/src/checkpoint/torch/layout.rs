//! PyTorch's layouts as [`Value`]s: the optimizer's `state_dict()` and a
//! module's `state_dict()` (name → tensor), both ways.

use std::collections::HashSet;

use serde_json::value::RawValue;
use serde_json::{Map, Number, Value as Json};

use super::value::{AnyTensorRef, TensorInfo, Value};
use crate::checkpoint::{excerpt, json, CheckpointError, StateDictRef, Stored, TensorRef};
use crate::optimizer::extra::Tree;
use crate::optimizer::group::{GROUP_KEYS, PARAM_NAMES};
use crate::optimizer::{Extra, ExtraValue, ParamStateDict, StateDict, TensorData};
use crate::Error;

fn invalid(msg: String) -> CheckpointError {
    CheckpointError::from(Error::InvalidStateDict(msg))
}

/// Where the elements of a read value's tensors come from (the open file).
pub(crate) trait Elements {
    /// The elements of `t`, of the element type `E`; a tensor of another
    /// dtype is refused, naming it as `what`.
    fn tensor<E: Stored>(
        &mut self,
        t: &TensorInfo,
        what: &str,
    ) -> Result<TensorData<E>, CheckpointError>;

    /// The value of `t`, a 1-element float32 or float64 tensor (any other
    /// dtype is refused, naming it as `what`).
    fn scalar(&mut self, t: &TensorInfo, what: &str) -> Result<f64, CheckpointError>;
}

/// The optimizer state dict `sd` as the value `torch.save(opt.state_dict())`
/// pickles: `{"state": {0: {"step": tensor, "square_avg": tensor,
/// "acc_delta": tensor}, ...}, "param_groups": [{"lr": ..., "params": [...]}]}`,
/// `step` a 0-dim float32 tensor whatever `E` is, as PyTorch keeps it.
pub(crate) fn state_dict_value<'a, E: Stored>(
    sd: &'a StateDictRef<'a, E>,
) -> Result<Value<AnyTensorRef<'a>>, CheckpointError> {
    let state = sd
        .state
        .iter()
        .map(|(i, s)| {
            let step = TensorRef {
                shape: std::borrow::Cow::Borrowed(&[][..]),
                data: std::slice::from_ref(&s.step),
            };
            let entry = Value::dict([
                ("step", Value::Tensor(step.into())),
                ("square_avg", Value::Tensor(s.square_avg.clone().into())),
                ("acc_delta", Value::Tensor(s.acc_delta.clone().into())),
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
                let v = from_json(v).map_err(|why| {
                    invalid(format!(
                        "param_groups[{gi}].{} is {}, which cannot be pickled: {why}",
                        excerpt(k),
                        excerpt(v.json())
                    ))
                })?;
                items.push((Value::from(k), v));
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

/// An extra key's JSON text as a Python value: `json.loads`'s, with
/// object keys in their order; an integer must fit in 64 bits (`Err` says
/// why not).
fn from_json<T>(v: &ExtraValue) -> Result<Value<T>, String> {
    fn raw<T>(r: &RawValue) -> Result<Value<T>, String> {
        let v = ExtraValue::from_raw(r.to_owned())?;
        from_json(&v)
    }
    Ok(match v.tree() {
        Tree::Null => Value::None,
        Tree::Bool(b) => Value::Bool(b),
        // JSON's integers are Python ints; a number with a fraction or an
        // exponent is a float, rounded to nearest as Python's float() does
        // (Rust's `parse` is correctly rounded; 1e400 is inf, as in Python).
        Tree::Number(n) if n.contains(['.', 'e', 'E']) => {
            Value::Float(n.parse().map_err(|_| format!("{n} is not a number"))?)
        }
        Tree::Number(n) => Value::Int(
            n.parse()
                .map_err(|_| format!("the integer {} does not fit in 64 bits", excerpt(n)))?,
        ),
        Tree::String(s) => Value::Str(s),
        Tree::List(items) => Value::List(items.into_iter().map(raw).collect::<Result<_, _>>()?),
        Tree::Object(entries) => Value::Dict(
            entries
                .into_iter()
                .map(|(k, x)| Ok((Value::Str(k), raw(x)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// A Python value of a group as JSON text, compact, dicts in their order,
/// for the group reader. A 1-element tensor (PyTorch's tensor `lr`) becomes
/// its number, read from `elements`; a float that is not finite becomes the
/// group reader's string (`"inf"`, `"-inf"`, `"nan"`).
fn json_text(
    v: &Value,
    what: &dyn Fn() -> String,
    elements: &mut impl Elements,
    out: &mut String,
) -> Result<(), CheckpointError> {
    let bad = |v: &Value| {
        invalid(format!(
            "{} is {}, which a group cannot hold",
            what(),
            v.kind()
        ))
    };
    match v {
        Value::None => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(x) => out.push_str(&text(&float_json(*x))),
        Value::Str(s) => out.push_str(&text(s.as_str())),
        Value::List(items) | Value::Tuple(items) => {
            out.push('[');
            for (n, x) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json_text(x, what, elements, out)?;
            }
            out.push(']');
        }
        Value::Dict(items) => {
            out.push('{');
            for (n, (k, x)) in items.iter().enumerate() {
                let Value::Str(k) = k else { return Err(bad(k)) };
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&text(k.as_str()));
                out.push(':');
                json_text(x, what, elements, out)?;
            }
            out.push('}');
        }
        Value::Tensor(t) if t.numel() == 1 => {
            out.push_str(&text(&float_json(elements.scalar(t, &what())?)))
        }
        Value::Tensor(_) => return Err(bad(v)),
    }
    Ok(())
}

/// The JSON text of a string or a number.
fn text<T: serde::Serialize + ?Sized>(x: &T) -> String {
    serde_json::to_string(x).expect("a string or a JSON number always serializes")
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

/// The optimizer state dict that `root` holds, its running averages of
/// `E`, its tensors' elements read from `elements`.
pub(crate) fn state_dict_from<E: Stored>(
    root: &Value,
    elements: &mut impl Elements,
) -> Result<StateDict<E>, CheckpointError> {
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
        // The step counter is float32 here. Older PyTorch saved it as a
        // number, and PyTorch under `torch.set_default_dtype(torch.float64)`
        // as a float64 tensor: each is rounded to float32 as
        // `torch.tensor(step, dtype=torch.float32)` rounds it.
        let step = match step.ok_or_else(|| missing("step"))? {
            Value::Int(i) => *i as f64 as f32,
            Value::Float(x) => *x as f32,
            Value::Tensor(t) if t.numel() == 1 => {
                elements.scalar(t, &format!("state[{index}].step"))? as f32
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
            Some(Value::Tensor(t)) => elements.tensor(t, &format!("state[{index}].{key}")),
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
        let (mut own, mut extra, mut seen) = (Map::new(), Extra::new(), HashSet::new());
        for (k, v) in fields {
            let Value::Str(k) = k else {
                return Err(invalid(format!(
                    "param_groups[{gi}] has a key that is {}, not a str",
                    k.kind()
                )));
            };
            let what = || format!("param_groups[{gi}].{}", excerpt(k));
            if !seen.insert(k) {
                return Err(invalid(format!("{} appears twice", what())));
            }
            let mut text = String::new();
            json_text(v, &what, elements, &mut text)?;
            let raw =
                RawValue::from_string(text).map_err(|e| invalid(format!("{}: {e}", what())))?;
            let v =
                ExtraValue::from_raw(raw).map_err(|why| invalid(format!("{why} in {}", what())))?;
            if GROUP_KEYS.contains(&k.as_str()) {
                own.insert(k.clone(), v.to_value());
            } else {
                extra.push_new(k.clone(), v);
            }
        }
        out.param_groups
            .push(json::group_from_parts(gi, own, extra)?);
    }
    Ok(out)
}

/// A module state dict (name → tensor) as the value `torch.save(model.state_dict())`
/// pickles: an `OrderedDict`.
pub(crate) fn tensors_value<'a, S: AsRef<str>, T: Into<AnyTensorRef<'a>>>(
    named: impl IntoIterator<Item = (S, T)>,
) -> Value<AnyTensorRef<'a>> {
    Value::Dict(
        named
            .into_iter()
            .map(|(k, t)| (Value::Str(k.as_ref().to_string()), Value::Tensor(t.into())))
            .collect(),
    )
}
