//! User scenarios for the `replay` command: hyperparameters (one or more
//! groups), initial parameters and per-step gradients, absent gradients
//! allowed. The format is documented in `docs/replay.md`.

use crate::case::{Case, Hyper};
use serde::Deserialize;

/// A tensor as a user writes it: decimal numbers (rounded to the nearest f32,
/// as `torch.tensor(values, dtype=torch.float32)` does) or exact bit patterns.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Values {
    /// Decimal numbers; `"nan"`, `"inf"`, `"-inf"` are accepted as strings.
    Decimal(Vec<Number>),
    /// Exact f32 bit patterns.
    Bits {
        /// The u32 bit patterns.
        bits: Vec<u32>,
    },
}

/// A number or one of the strings `"nan"`, `"inf"`, `"-inf"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// A JSON number.
    Finite(f64),
    /// `"nan"`, `"inf"` or `"-inf"`.
    Special(String),
}

impl Values {
    /// The f32 values.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        match self {
            Values::Bits { bits } => Ok(bits.iter().map(|&b| f32::from_bits(b)).collect()),
            Values::Decimal(v) => v
                .iter()
                .map(|n| match n {
                    Number::Finite(x) => Ok(*x as f32),
                    Number::Special(s) => match s.as_str() {
                        "nan" => Ok(f32::NAN),
                        "inf" => Ok(f32::INFINITY),
                        "-inf" => Ok(f32::NEG_INFINITY),
                        other => Err(format!(
                            "unknown number {other:?} (use a number, \"nan\", \"inf\" or \"-inf\")"
                        )),
                    },
                })
                .collect(),
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
        }
    }
}

/// Splits a multi-group model into one single-group [`Case`] per group, with
/// the group's global parameter indices. Adadelta's update of a parameter
/// depends only on its group's hyperparameters and its own state, so groups
/// run independently. `grads[step][param]`, `None` when absent.
pub fn group_cases(
    groups: &[Group],
    params: &[Vec<f32>],
    grads: &[Vec<Option<Vec<f32>>>],
    name: impl Fn(usize) -> String,
) -> Vec<(Case, Vec<usize>)> {
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
        let lens: Vec<usize> = self
            .params
            .iter()
            .map(|p| p.to_f32().map(|v| v.len()))
            .collect::<Result<_, _>>()?;
        for (t, row) in self.grads.iter().enumerate() {
            if row.len() != n {
                return Err(format!(
                    "scenario: step {t} has {} gradients for {n} parameters",
                    row.len()
                ));
            }
            for (i, g) in row.iter().enumerate() {
                if let Some(g) = g {
                    let len = g.to_f32()?.len();
                    if len != lens[i] {
                        return Err(format!("scenario: step {t}: gradient of parameter {i} has {len} elements, the parameter {}", lens[i]));
                    }
                }
            }
        }
        Ok(())
    }

    /// One single-group [`Case`] per group, with the group's parameter
    /// indices (see [`group_cases`]).
    pub fn group_cases(&self) -> Vec<(Case, Vec<usize>)> {
        let f = |v: &Values| v.to_f32().expect("checked by parse");
        let params: Vec<Vec<f32>> = self.params.iter().map(f).collect();
        let grads: Vec<Vec<Option<Vec<f32>>>> = self
            .grads
            .iter()
            .map(|row| row.iter().map(|g| g.as_ref().map(f)).collect())
            .collect();
        group_cases(&self.groups, &params, &grads, |k| format!("group {k}"))
    }
}
