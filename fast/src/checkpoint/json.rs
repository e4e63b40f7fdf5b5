//! The JSON form of a state dict: bit-exact, for small checkpoints people
//! read.
//!
//! The structure is PyTorch's `optimizer.state_dict()`. Every tensor is an
//! object with its dtype, its shape and its elements as IEEE-754 bit
//! patterns (unsigned 32-bit integers), so that nothing is lost to decimal
//! printing; hyperparameters are JSON numbers that read back exactly
//! (non-finite ones are the strings `"inf"`, `"-inf"`, `"nan"`):
//!
//! ```json
//! {"state": {"0": {"step": {"dtype": "float32", "shape": [], "bits": [1084227584]},
//!                  "square_avg": {"dtype": "float32", "shape": [2, 3], "bits": [...]},
//!                  "acc_delta": {"dtype": "float32", "shape": [2, 3], "bits": [...]}}},
//!  "param_groups": [{"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": false,
//!                    "capturable": false, "foreach": null, "differentiable": false,
//!                    "params": [0, 1]}]}
//! ```
//!
//! `state` is keyed by the parameter's position across the groups and holds
//! only parameters that have state; each group lists its parameters'
//! positions under `params`, last. Group keys other than the optimizer's
//! own are kept verbatim.
//!
//! Writing streams from a [`StateDictRef`] (the optimizer's live state, no
//! copy); reading parses straight into the tensors' final buffers.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::view::{ParamStateRef, StateDictRef};
use super::CheckpointError;
use crate::optimizer::group::{check_extra, Options};
use crate::optimizer::{GroupDict, ParamStateDict, StateDict, TensorData};
use crate::Error;

/// Writes the JSON form of `sd` to `writer` (compact, one line and a
/// newline). An extra group key that is one of the optimizer's own is an
/// error ([`Error::ReservedGroupKey`]).
pub(crate) fn write<W: Write>(sd: &StateDictRef<'_>, writer: W) -> Result<(), CheckpointError> {
    sd.param_groups
        .iter()
        .try_for_each(|g| check_extra(&g.extra))?;
    let mut w = BufWriter::with_capacity(1 << 20, writer);
    serde_json::to_writer(&mut w, sd)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// Reads the JSON form from `reader`.
pub(crate) fn read<R: Read>(reader: R) -> Result<StateDict, CheckpointError> {
    let wire: Wire = serde_json::from_reader(BufReader::with_capacity(1 << 20, reader))?;
    Ok(wire.into_state_dict()?)
}

/// Parses the JSON form from a string.
pub(crate) fn from_str(json: &str) -> Result<StateDict, CheckpointError> {
    let wire: Wire = serde_json::from_str(json)?;
    Ok(wire.into_state_dict()?)
}


/// f32 elements serialised as their bit patterns.
struct Bits<'a>(&'a [f32]);

impl Serialize for Bits<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&x.to_bits())?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct TensorOut<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    bits: Bits<'a>,
}

impl<'a> TensorOut<'a> {
    fn new(shape: &'a [usize], data: &'a [f32]) -> Self {
        TensorOut {
            dtype: "float32",
            shape,
            bits: Bits(data),
        }
    }
}

impl Serialize for TensorData {
    /// `{"dtype": "float32", "shape": [...], "bits": [...]}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(self.shape(), self.data()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TensorWire::deserialize(d)?
            .into_tensor("tensor")
            .map_err(de::Error::custom)
    }
}

struct StepOut(f32);

impl Serialize for StepOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(&[], std::slice::from_ref(&self.0)).serialize(s)
    }
}

#[derive(Serialize)]
struct StateOut<'a> {
    step: StepOut,
    square_avg: TensorOut<'a>,
    acc_delta: TensorOut<'a>,
}

/// A hyperparameter: a JSON number, or a string when not finite (JSON has
/// no infinity or NaN).
fn f64_value(x: f64) -> Value {
    match serde_json::Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("nan".into()),
        None if x > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

impl Serialize for GroupDict {
    /// PyTorch's key order: the options, the extra keys, then `params`. An
    /// extra key that is one of the optimizer's own is an error.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        check_extra(&self.extra).map_err(serde::ser::Error::custom)?;
        let o = &self.options;
        let mut m = s.serialize_map(Some(9 + self.extra.len()))?;
        m.serialize_entry("lr", &f64_value(o.lr))?;
        m.serialize_entry("rho", &f64_value(o.rho))?;
        m.serialize_entry("eps", &f64_value(o.eps))?;
        m.serialize_entry("weight_decay", &f64_value(o.weight_decay))?;
        m.serialize_entry("maximize", &o.maximize)?;
        m.serialize_entry("capturable", &o.capturable)?;
        m.serialize_entry("foreach", &o.foreach)?;
        m.serialize_entry("differentiable", &o.differentiable)?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("params", &self.params)?;
        m.end()
    }
}

impl Serialize for StateDictRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct States<'a, 'b>(&'a [(usize, ParamStateRef<'b>)]);
        impl Serialize for States<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(
                        &k.to_string(),
                        &StateOut {
                            step: StepOut(v.step),
                            square_avg: TensorOut::new(&v.square_avg.shape, v.square_avg.data),
                            acc_delta: TensorOut::new(&v.acc_delta.shape, v.acc_delta.data),
                        },
                    )?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("state", &States(&self.state))?;
        m.serialize_entry("param_groups", &*self.param_groups)?;
        m.end()
    }
}

impl Serialize for StateDict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

// ---- reading ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorWire {
    dtype: String,
    shape: Vec<usize>,
    bits: Vec<u32>,
}

impl TensorWire {
    fn into_tensor(self, what: &str) -> Result<TensorData, Error> {
        if self.dtype != "float32" {
            return Err(Error::InvalidStateDict(format!(
                "{what} has dtype {:?}; only \"float32\" is supported",
                self.dtype
            )));
        }
        let data: Vec<f32> = self.bits.into_iter().map(f32::from_bits).collect();
        TensorData::new(self.shape, data)
            .map_err(|e| Error::InvalidStateDict(format!("{what}: {e}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateWire {
    step: Option<TensorWire>,
    square_avg: Option<TensorWire>,
    acc_delta: Option<TensorWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    state: BTreeMap<String, StateWire>,
    param_groups: Vec<Map<String, Value>>,
}

impl Wire {
    fn into_state_dict(self) -> Result<StateDict, Error> {
        let mut state = BTreeMap::new();
        for (key, s) in self.state {
            let index: usize = key
                .parse()
                .ok()
                .filter(|i: &usize| i.to_string() == key)
                .ok_or_else(|| {
                    Error::InvalidStateDict(format!("state key {key:?} is not a parameter index"))
                })?;
            let entry = match (s.step, s.square_avg, s.acc_delta) {
                // PyTorch's empty per-parameter dict: state not created yet.
                (None, None, None) => continue,
                (Some(step), Some(v), Some(u)) => {
                    let step = step.into_tensor(&format!("state[{index}].step"))?;
                    if step.len() != 1 {
                        return Err(Error::InvalidStateDict(format!(
                            "state[{index}].step has {} elements, not 1",
                            step.len()
                        )));
                    }
                    ParamStateDict {
                        step: step.data()[0],
                        square_avg: v.into_tensor(&format!("state[{index}].square_avg"))?,
                        acc_delta: u.into_tensor(&format!("state[{index}].acc_delta"))?,
                    }
                }
                (step, v, _) => {
                    let missing = if step.is_none() {
                        "step"
                    } else if v.is_none() {
                        "square_avg"
                    } else {
                        "acc_delta"
                    };
                    return Err(Error::InvalidStateDict(format!(
                        "state[{index}] has no {missing:?}"
                    )));
                }
            };
            state.insert(index, entry);
        }
        let param_groups = self
            .param_groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| group_from_map(i, g))
            .collect::<Result<_, _>>()?;
        Ok(StateDict {
            state,
            param_groups,
        })
    }
}

/// Reads a group: the four numbers are required, the flags default as in
/// PyTorch's `__setstate__`, `params` is required, other keys are extras.
fn group_from_map(i: usize, mut g: Map<String, Value>) -> Result<GroupDict, Error> {
    let bad = |key: &str, want: &str, v: &Value| {
        Error::InvalidStateDict(format!("param_groups[{i}].{key} is {v}, not {want}"))
    };
    let mut take_f64 = |key: &str| -> Result<f64, Error> {
        let v = g
            .remove(key)
            .ok_or_else(|| Error::InvalidStateDict(format!("param_groups[{i}] has no {key:?}")))?;
        match &v {
            Value::Number(n) => n.as_f64().ok_or_else(|| bad(key, "a number", &v)),
            Value::String(s) => match s.as_str() {
                "inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                "nan" | "NaN" => Ok(f64::NAN),
                _ => Err(bad(key, "a number", &v)),
            },
            _ => Err(bad(key, "a number", &v)),
        }
    };
    let lr = take_f64("lr")?;
    let rho = take_f64("rho")?;
    let eps = take_f64("eps")?;
    let weight_decay = take_f64("weight_decay")?;
    let mut take_bool = |key: &str| -> Result<bool, Error> {
        match g.remove(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(bad(key, "true or false", &v)),
        }
    };
    let maximize = take_bool("maximize")?;
    let capturable = take_bool("capturable")?;
    let differentiable = take_bool("differentiable")?;
    let foreach = match g.remove("foreach") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(v) => return Err(bad("foreach", "true, false or null", &v)),
    };
    let params = match g.remove("params") {
        None => {
            return Err(Error::InvalidStateDict(format!(
                "param_groups[{i}] has no \"params\""
            )))
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| bad("params", "a list of parameter indices", v))
            })
            .collect::<Result<Vec<usize>, _>>()?,
        Some(v) => return Err(bad("params", "a list of parameter indices", &v)),
    };
    Ok(GroupDict {
        options: Options {
            lr,
            rho,
            eps,
            weight_decay,
            maximize,
            foreach,
            capturable,
            differentiable,
        },
        extra: g,
        params,
    })
}

impl<'de> Deserialize<'de> for StateDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d)?
            .into_state_dict()
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for GroupDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let g = Map::<String, Value>::deserialize(d)?;
        group_from_map(0, g).map_err(de::Error::custom)
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperparameters_round_trip_exactly_including_non_finite() {
        for x in [
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
            1e-300,
            5e-324,
            0.1 + 0.2,
            f64::MAX,
        ] {
            let g = GroupDict {
                options: Options {
                    lr: x,
                    ..Options::default()
                },
                extra: Map::new(),
                params: vec![],
            };
            let s = serde_json::to_string(&g).unwrap();
            let back: GroupDict = serde_json::from_str(&s).unwrap();
            assert_eq!(back.options.lr.to_bits(), x.to_bits(), "{s}");
        }
        let g = GroupDict {
            options: Options {
                lr: f64::NAN,
                ..Options::default()
            },
            extra: Map::new(),
            params: vec![],
        };
        let back: GroupDict = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert!(back.options.lr.is_nan());
    }
}
