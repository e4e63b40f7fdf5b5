//! User scenarios for the `replay` command: hyperparameters (one or more
//! groups), initial parameters and per-step gradients, absent gradients
//! allowed. The format is documented in `docs/replay.md`.

use crate::case::{Case, Hyper};
use adadelta_reference::ieee::convert;
use adadelta_reference::Format;
use serde::Deserialize;

/// The most bytes a scenario file may have (16 MiB).
pub const MAX_BYTES: u64 = 16 << 20;

/// The most element-steps a scenario may ask for: `(steps + 1)` times the
/// number of parameter elements (every implementation runs and writes out
/// every element at every step, the 256-bit reference among them). At the
/// limit a replay takes 1.4 to 2.3 s and 240 to 330 MB (`docs/replay.md`
/// has the figures).
pub const MAX_ELEMENT_STEPS: usize = 100_000;

/// A tensor as a user writes it: an array of decimal numbers (`"nan"`,
/// `"inf"`, `"-inf"` as strings), each rounded to the replay's dtype as
/// `torch.tensor(values, dtype=...)` does (to f32, then to a 16-bit dtype;
/// to f64 itself), or `{"bits": [...]}`, exact bit patterns of the replay's
/// dtype. Anything else is an error that says what a tensor is, with the
/// line and column.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Decimal numbers, as f64s (JSON's numbers).
    Numbers(Vec<f64>),
    /// Bit patterns, of the replay's dtype.
    Bits(Vec<u64>),
}

impl Values {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Bits(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in the dtype `T`; an error naming the first bit pattern
    /// wider than `T`.
    pub fn to<T: Format>(&self) -> Result<Vec<T>, String> {
        match self {
            Values::Numbers(v) => Ok(v.iter().map(|&x| from_python::<T>(x)).collect()),
            Values::Bits(v) => v
                .iter()
                .map(|&b| {
                    if T::BITS < 64 && b >> T::BITS != 0 {
                        Err(format!("bit pattern {b} is wider than {} bits", T::BITS))
                    } else {
                        Ok(T::from_bits(b))
                    }
                })
                .collect(),
        }
    }
}

/// A Python float as `torch.tensor([x], dtype=T)` stores it: `x` itself in
/// float64, else rounded to f32 first (and from there to a 16-bit dtype:
/// torch 2.13 turns `1 + 2^-8 + 2^-30` into bfloat16 `1.0`, not `1 + 2^-7`).
pub fn from_python<T: Format>(x: f64) -> T {
    if T::BITS == 64 {
        convert::<f64, T>(x)
    } else {
        convert::<f32, T>(convert::<f64, f32>(x))
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> serde::de::Visitor<'de> for ValuesVisitor {
    type Value = Values;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "a tensor: an array of numbers (or \"nan\", \"inf\", \"-inf\"), or \
             {\"bits\": [bit patterns as integers]}",
        )
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
        let mut v = Vec::new();
        while let Some(Number(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Values::Numbers(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
        use serde::de::Error;
        let mut bits: Option<Vec<u64>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "bits" if bits.is_none() => bits = Some(map.next_value()?),
                "bits" => return Err(A::Error::duplicate_field("bits")),
                other => return Err(A::Error::unknown_field(other, &["bits"])),
            }
        }
        let bits = bits.ok_or_else(|| A::Error::missing_field("bits"))?;
        Ok(Values::Bits(bits))
    }
}

/// One element: a JSON number (an f64), or `"nan"`, `"inf"`, `"-inf"`.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor)
    }
}

struct NumberVisitor;

impl serde::de::Visitor<'_> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, \"nan\", \"inf\" or \"-inf\"")
    }

    fn visit_f64<E>(self, x: f64) -> Result<Number, E> {
        Ok(Number(x))
    }

    fn visit_i64<E>(self, x: i64) -> Result<Number, E> {
        Ok(Number(x as f64))
    }

    fn visit_u64<E>(self, x: u64) -> Result<Number, E> {
        Ok(Number(x as f64))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Number, E> {
        match s {
            "nan" => Ok(Number(f64::NAN)),
            "inf" => Ok(Number(f64::INFINITY)),
            "-inf" => Ok(Number(f64::NEG_INFINITY)),
            other => Err(E::custom(format!(
                "unknown number {other:?} (use a number, \"nan\", \"inf\" or \"-inf\")"
            ))),
        }
    }
}

fn default_lr() -> f64 {
    1.0
}
fn default_rho() -> f64 {
    0.9
}
fn default_eps() -> f64 {
    1e-6
}

/// A parameter group: hyperparameters (PyTorch's defaults where missing) and
/// the indices of its parameters.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Learning rate (default 1.0).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// rho (default 0.9).
    #[serde(default = "default_rho")]
    pub rho: f64,
    /// eps (default 1e-6).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Maximize (default false).
    #[serde(default)]
    pub maximize: bool,
    /// Indices into the scenario's `params`.
    pub params: Vec<usize>,
}

impl Group {
    /// The group's hyperparameters.
    pub fn hyper(&self) -> Hyper {
        Hyper {
            lr: self.lr,
            rho: self.rho,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            foreach: false,
        }
    }
}

/// Splits a multi-group model into one single-group [`Case`] per group, with
/// the group's global parameter indices. Adadelta's update of a parameter
/// depends only on its group's hyperparameters and its own state, so groups
/// run independently. `grads[step][param]`, `None` when absent.
pub fn group_cases<T: Clone>(
    groups: &[Group],
    params: &[Vec<T>],
    grads: &[Vec<Option<Vec<T>>>],
    name: impl Fn(usize) -> String,
) -> Vec<(Case<T>, Vec<usize>)> {
    groups
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let case = Case {
                name: name(k),
                hyper: g.hyper(),
                params: g.params.iter().map(|&i| params[i].clone()).collect(),
                grads: grads
                    .iter()
                    .map(|row| g.params.iter().map(|&i| row[i].clone()).collect())
                    .collect(),
            };
            (case, g.params.clone())
        })
        .collect()
}

/// One group's [`Case`] and its parameters' indices in the scenario.
pub type GroupCase<T> = (Case<T>, Vec<usize>);

/// A replay scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Parameter groups.
    pub groups: Vec<Group>,
    /// Initial parameter values (flattened).
    pub params: Vec<Values>,
    /// `grads[step][param]`; `null` = no gradient at that step.
    pub grads: Vec<Vec<Option<Values>>>,
}

impl Scenario {
    /// Parses and checks a scenario: every parameter in exactly one group,
    /// valid hyperparameters, gradient lengths equal to their parameter's.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| format!("scenario: {e}"))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let n = self.params.len();
        if n == 0 {
            return Err("scenario: optimizer got an empty parameter list".into());
        }
        let mut owner = vec![None; n];
        for (k, g) in self.groups.iter().enumerate() {
            g.hyper()
                .to_fast()
                .validate()
                .map_err(|e| format!("scenario: group {k}: {e}"))?;
            for &i in &g.params {
                let slot = owner.get_mut(i).ok_or_else(|| {
                    format!("scenario: group {k} names parameter {i}, but there are {n}")
                })?;
                if slot.is_some() {
                    return Err(
                        "scenario: some parameters appear in more than one parameter group".into(),
                    );
                }
                *slot = Some(k);
            }
        }
        if let Some(i) = owner.iter().position(Option::is_none) {
            return Err(format!("scenario: parameter {i} is in no group"));
        }
        let lens: Vec<usize> = self.params.iter().map(Values::len).collect();
        let cost = lens
            .iter()
            .sum::<usize>()
            .saturating_mul(self.grads.len() + 1);
        if cost > MAX_ELEMENT_STEPS {
            return Err(format!(
                "scenario: {} elements over {} steps is {cost} element-steps, more than \
                 the limit of {MAX_ELEMENT_STEPS} ((steps + 1) x elements)",
                lens.iter().sum::<usize>(),
                self.grads.len()
            ));
        }
        for (t, row) in self.grads.iter().enumerate() {
            if row.len() != n {
                return Err(format!(
                    "scenario: step {t} has {} gradients for {n} parameters",
                    row.len()
                ));
            }
            for (i, g) in row.iter().enumerate() {
                if let Some(g) = g {
                    let len = g.len();
                    if len != lens[i] {
                        return Err(format!("scenario: step {t}: gradient of parameter {i} has {len} elements, the parameter {}", lens[i]));
                    }
                }
            }
        }
        Ok(())
    }

    /// One single-group [`Case`] per group that has parameters, in the
    /// dtype `T` (decimal numbers rounded as [`from_python`]), with the
    /// group's parameter indices (see [`group_cases`]). A group without
    /// parameters steps nothing, so it has no case (real PyTorch would
    /// refuse an optimizer of it alone). An error names the first tensor
    /// with a bit pattern wider than `T`.
    pub fn group_cases<T: Format>(&self) -> Result<Vec<GroupCase<T>>, String> {
        let params = self
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to::<T>()
                    .map_err(|e| format!("scenario: parameter {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let grads = self
            .grads
            .iter()
            .enumerate()
            .map(|(t, row)| {
                row.iter()
                    .enumerate()
                    .map(|(i, g)| {
                        g.as_ref().map(|g| g.to::<T>()).transpose().map_err(|e| {
                            format!("scenario: step {t}: gradient of parameter {i}: {e}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(
            group_cases(&self.groups, &params, &grads, |k| format!("group {k}"))
                .into_iter()
                .filter(|(_, idx)| !idx.is_empty())
                .collect(),
        )
    }
}
