//! The JSON form of a state dict: bit-exact, for small checkpoints people
//! read.
//!
//! The structure is PyTorch's `optimizer.state_dict()`. Every tensor is an
//! object with its dtype, its shape and its elements as IEEE-754 bit
//! patterns (unsigned integers of the dtype's width: 32 bits for
//! `"float32"`, 64 for `"float64"`, 16 for `"bfloat16"` and `"float16"`;
//! the step counters are always `"float32"`), so that nothing is lost to
//! decimal printing; hyperparameters are JSON numbers that read back exactly
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
//! copy); reading parses straight into the tensors' final buffers, which
//! [`load_state_dict`](crate::Adadelta::load_state_dict) then moves into
//! the optimizer. Reading is safe on hostile input
//! ([`guide::reliability`](crate::guide::reliability)):
//!
//! * its peak memory is at most 4.5 times the file plus 24 MiB: the group
//!   keys other than the optimizer's own are capped ([`EXTRA_LIMIT`]), and
//!   an allocation that fails is an error ([`CheckpointError::Io`] of kind
//!   `OutOfMemory`), not an abort;
//! * a key twice in one object is refused;
//! * an error quotes at most 80 characters of a value, with its length,
//!   and says where (line and column).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::{self, Display};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use super::error::{excerpt, EXCERPT_CHARS};
use super::view::{ParamStateRef, StateDictRef};
use super::CheckpointError;
use crate::kernel::Element;
use crate::optimizer::group::{check_extra, Options, GROUP_KEYS, PARAM_NAMES};
use crate::optimizer::{Extra, ExtraValue, GroupDict, ParamStateDict, StateDict, TensorData};
use crate::Error;

/// Writes the JSON form of `sd` to `writer` (compact, one line and a
/// newline). An extra group key that is one of the optimizer's own is an
/// error ([`Error::ReservedGroupKey`]).
pub(crate) fn write<E: Element, W: Write>(
    sd: &StateDictRef<'_, E>,
    writer: W,
) -> Result<(), CheckpointError> {
    sd.param_groups
        .iter()
        .try_for_each(|g| check_extra(&g.extra))?;
    let mut w = BufWriter::with_capacity(1 << 20, writer);
    serde_json::to_writer(&mut w, sd)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// Elements serialised as their bit patterns (u32 for float32, u64 for
/// float64, u16 for bfloat16 and float16).
struct Bits<'a, T>(&'a [T]);

impl<T: Element> Serialize for Bits<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&x.bits())?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
#[serde(bound = "T: Element")]
struct TensorOut<'a, T> {
    dtype: &'static str,
    shape: &'a [usize],
    bits: Bits<'a, T>,
}

impl<'a, T: Element> TensorOut<'a, T> {
    fn new(shape: &'a [usize], data: &'a [T]) -> Self {
        TensorOut {
            dtype: T::DTYPE,
            shape,
            bits: Bits(data),
        }
    }
}

impl<T: Element> Serialize for TensorData<T> {
    /// `{"dtype": "float32", "shape": [...], "bits": [...]}` (`"float64"`
    /// and 64-bit patterns for `f64`, `"bfloat16"` and `"float16"` and
    /// 16-bit patterns for `bf16` and `f16`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(self.shape(), self.data()).serialize(s)
    }
}

struct StepOut(f32);

impl Serialize for StepOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorOut::new(&[], std::slice::from_ref(&self.0)).serialize(s)
    }
}

#[derive(Serialize)]
#[serde(bound = "T: Element")]
struct StateOut<'a, T> {
    step: StepOut,
    square_avg: TensorOut<'a, T>,
    acc_delta: TensorOut<'a, T>,
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
    /// PyTorch's key order: `param_names` (for named parameters), the
    /// options, the extra keys, then `params`. An extra key that is one of
    /// the optimizer's own is an error.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        check_extra(&self.extra).map_err(serde::ser::Error::custom)?;
        let o = &self.options;
        let named = usize::from(self.param_names.is_some());
        let mut m = s.serialize_map(Some(9 + named + self.extra.len()))?;
        if let Some(names) = &self.param_names {
            m.serialize_entry(PARAM_NAMES, names)?;
        }
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

impl<T: Element> Serialize for StateDictRef<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct States<'a, 'b, T>(&'a [(usize, ParamStateRef<'b, T>)]);
        impl<T: Element> Serialize for States<'_, '_, T> {
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

impl<T: Element> Serialize for StateDict<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

// ---- reading ----
//
// Serde visitors driven by serde_json's streaming deserializer, one per
// part of the layout. A tensor's `bits` are converted to f32 as they are
// read, into the buffer that becomes the tensor's (and, through
// `load_state_dict`, the optimizer's); no `Value` tree is built but for the
// groups' extra keys, whose size is capped. Each visitor refuses a
// duplicate key, quotes at most `EXCERPT_CHARS` characters of any value,
// grows its vectors with `try_reserve_exact`, and raises its errors inside
// the deserializer, which adds their line and column.

/// The most JSON text that the parameter groups' extra keys (those that are
/// not the optimizer's own, e.g. an LR scheduler's `initial_lr`) may hold in
/// one state dict, keys and values together, counted as printed compact:
/// 1 MiB. They are kept as `serde_json::Value` trees, which take up to about
/// 16 times their text in memory; a dict with more is refused
/// ([`Error::InvalidStateDict`]).
///
/// ```
/// let big = "x".repeat(adadelta::checkpoint::json::EXTRA_LIMIT);
/// let json = format!(r#"{{"state": {{}}, "param_groups": [{{"lr": 1, "rho": 0.9, "eps": 1e-6,
///     "weight_decay": 0, "params": [], "note": "{big}"}}]}}"#);
/// let err = adadelta::StateDict::<f32>::from_json_str(&json).unwrap_err();
/// assert!(err.to_string().contains("param_groups[0].note: the groups' extra keys hold more than"), "{err}");
/// ```
pub const EXTRA_LIMIT: usize = 1 << 20;

/// Elements reserved at once for a tensor whose shape is read before its
/// elements (the order this crate writes): the buffer then ends up exactly
/// the tensor's size, while a shape that lies reserves at most this many.
const HINT_CAP: usize = 1 << 20;

/// Which [`CheckpointError`] the error under way becomes: serde_json's
/// error carries only text, so a visitor says here what it raised.
#[derive(Clone, Copy)]
enum Kind {
    /// Not JSON of the layout: [`CheckpointError::Json`].
    Json,
    /// Not a valid state dict: [`Error::InvalidStateDict`].
    Invalid,
    /// An allocation failed: [`CheckpointError::Io`] of kind `OutOfMemory`.
    Memory,
}

/// What the visitors of one state dict share.
struct Ctx {
    kind: Cell<Kind>,
    /// What is left of [`EXTRA_LIMIT`].
    extra_left: Cell<usize>,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            kind: Cell::new(Kind::Json),
            extra_left: Cell::new(EXTRA_LIMIT),
        }
    }

    /// An error of `kind`.
    fn fail<E: de::Error>(&self, kind: Kind, message: impl Display) -> E {
        self.kind.set(kind);
        E::custom(message)
    }

    /// An [`Error::InvalidStateDict`].
    fn invalid<E: de::Error>(&self, message: impl Display) -> E {
        self.fail(Kind::Invalid, message)
    }

    /// Takes `bytes` of the extra keys' allowance, for the value at `at`.
    fn charge<E: de::Error>(&self, bytes: usize, at: &dyn Display) -> Result<(), E> {
        let left = self.extra_left.get();
        if bytes > left {
            return Err(self.invalid(format_args!(
                "{at}: the groups' extra keys hold more than {EXTRA_LIMIT} bytes of JSON, \
                 the most a state dict may have"
            )));
        }
        self.extra_left.set(left - bytes);
        Ok(())
    }

    /// Appends `x` to `v`, growing it by an eighth (at least 4 elements), or,
    /// while it is shorter than the `expect`ed length, towards that length.
    fn push<T, E: de::Error>(
        &self,
        v: &mut Vec<T>,
        x: T,
        expect: usize,
        what: &dyn Display,
    ) -> Result<(), E> {
        if v.len() == v.capacity() {
            let len = v.len();
            let more = if len < expect {
                (expect - len).min((len / 8).max(HINT_CAP))
            } else {
                (len / 8).max(4)
            };
            v.try_reserve_exact(more).map_err(|_| {
                self.fail(
                    Kind::Memory,
                    format_args!(
                        "out of memory: cannot allocate {} bytes for {what}",
                        (len + more).saturating_mul(std::mem::size_of::<T>())
                    ),
                )
            })?;
        }
        v.push(x);
        Ok(())
    }
}

/// Reads the JSON form from `reader`.
pub(crate) fn read<T: Element, R: Read>(reader: R) -> Result<StateDict<T>, CheckpointError> {
    parse(serde_json::Deserializer::from_reader(
        BufReader::with_capacity(1 << 20, reader),
    ))
}

/// Parses the JSON form from a string.
pub(crate) fn from_str<T: Element>(json: &str) -> Result<StateDict<T>, CheckpointError> {
    parse(serde_json::Deserializer::from_str(json))
}

fn parse<'de, T: Element, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<StateDict<T>, CheckpointError> {
    let ctx = Ctx::new();
    let sd = StateDictSeed(&ctx, PhantomData).deserialize(&mut de);
    sd.and_then(|sd| de.end().map(|()| sd))
        .map_err(|e| match ctx.kind.get() {
            Kind::Json => e.into(),
            Kind::Invalid => Error::InvalidStateDict(e.to_string()).into(),
            Kind::Memory => io::Error::new(io::ErrorKind::OutOfMemory, e.to_string()).into(),
        })
}

impl<'de, T: Element> Deserialize<'de> for StateDict<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StateDictSeed(&Ctx::new(), PhantomData).deserialize(d)
    }
}

impl<'de, T: Element> Deserialize<'de> for TensorData<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TensorSeed::new(&Ctx::new(), Where::Tensor).deserialize(d)
    }
}

impl<'de> Deserialize<'de> for GroupDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        GroupSeed {
            ctx: &Ctx::new(),
            index: 0,
        }
        .deserialize(d)
    }
}

/// Each seed below is its own visitor, and is read with `deserialize_any`,
/// so that whatever value comes reaches a visitor of this file (serde's
/// own messages would quote a string whole). `[T]` marks the seeds generic
/// over the element type `T`.
macro_rules! seed {
    ($([$($g:ident)?] $t:ty),* $(,)?) => {$(
        impl<'de, $($g: Element)?> DeserializeSeed<'de> for $t {
            type Value = <Self as Visitor<'de>>::Value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    )*};
}

seed!(
    [T] StateDictSeed<'_, T>,
    [T] StatesSeed<'_, T>,
    [T] EntrySeed<'_, T>,
    [T] TensorSeed<'_, T>,
    [T] DtypeSeed<'_, T>,
    [] StateKeySeed<'_>,
    [] GroupsSeed<'_>,
    [] GroupSeed<'_>,
    [] GroupKeySeed<'_>,
    [] AtomSeed<'_>,
    [] FieldSeed,
);

/// A string of the wrong place, quoted cut.
fn str_type<E: de::Error>(s: &str, expected: &dyn de::Expected) -> E {
    E::invalid_type(Unexpected::Str(&excerpt(s)), expected)
}

fn duplicate<E: de::Error>(key: &str, within: &dyn Display) -> E {
    E::custom(format_args!("duplicate key {:?} in {within}", excerpt(key)))
}

/// A shape for a message: its first dimensions when it is long.
fn shape_text(shape: &[usize]) -> String {
    let mut s = String::from("[");
    for (k, d) in shape.iter().enumerate() {
        if s.len() > EXCERPT_CHARS {
            return format!("{s}, ... ({} dimensions)]", shape.len());
        }
        if k > 0 {
            s.push_str(", ");
        }
        s.push_str(&d.to_string());
    }
    s + "]"
}

/// Where a tensor is, for messages: `state[3].square_avg`, or `tensor`.
#[derive(Clone, Copy)]
enum Where {
    Tensor,
    State(usize, &'static str),
}

impl Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Tensor => f.write_str("tensor"),
            Where::State(i, name) => write!(f, "state[{i}].{name}"),
        }
    }
}

/// A key of an object whose keys are `self.0`: its position there.
struct FieldSeed(&'static [&'static str]);

impl<'de> Visitor<'de> for FieldSeed {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {:?}", self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        let k = self.0.iter().position(|&k| k == s);
        k.ok_or_else(|| E::unknown_field(&excerpt(s), self.0))
    }
}

struct StateDictSeed<'c, T>(&'c Ctx, PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for StateDictSeed<'_, T> {
    type Value = StateDict<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state dict (an object)")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<StateDict<T>, E> {
        Err(str_type(s, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StateDict<T>, A::Error> {
        const KEYS: &[&str] = &["state", "param_groups"];
        let (mut state, mut param_groups) = (None, None);
        while let Some(k) = map.next_key_seed(FieldSeed(KEYS))? {
            if [state.is_some(), param_groups.is_some()][k] {
                return Err(duplicate(KEYS[k], &"the state dict"));
            }
            if k == 0 {
                state = Some(map.next_value_seed(StatesSeed(self.0, PhantomData))?);
            } else {
                param_groups = Some(map.next_value_seed(GroupsSeed(self.0))?);
            }
        }
        Ok(StateDict {
            state: state.ok_or_else(|| de::Error::missing_field("state"))?,
            param_groups: param_groups.ok_or_else(|| de::Error::missing_field("param_groups"))?,
        })
    }
}

/// `state`: an object keyed by parameter index.
struct StatesSeed<'c, T>(&'c Ctx, PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for StatesSeed<'_, T> {
    type Value = BTreeMap<usize, ParamStateDict<T>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the state (an object keyed by parameter index)")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Err(str_type(s, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut state = BTreeMap::new();
        let mut empty = BTreeSet::new(); // the indices whose state is `{}`
        while let Some(index) = map.next_key_seed(StateKeySeed(self.0))? {
            if state.contains_key(&index) || empty.contains(&index) {
                return Err(duplicate(&index.to_string(), &"state"));
            }
            let entry = EntrySeed {
                ctx: self.0,
                index,
                elem: PhantomData,
            };
            match map.next_value_seed(entry)? {
                Some(s) => {
                    state.insert(index, s);
                }
                None => {
                    empty.insert(index);
                }
            }
        }
        Ok(state)
    }
}

/// A key of `state`: a parameter index, written as Python's `str(int)`.
struct StateKeySeed<'c>(&'c Ctx);

impl<'de> Visitor<'de> for StateKeySeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter index")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        match s.parse() {
            Ok(i) if canonical => Ok(i),
            _ => Err(self.0.invalid(format_args!(
                "state key {:?} is not a parameter index",
                excerpt(s)
            ))),
        }
    }
}

/// One parameter's state; `None` for PyTorch's `{}` (no state yet).
struct EntrySeed<'c, T> {
    ctx: &'c Ctx,
    index: usize,
    elem: PhantomData<T>,
}

impl<'de, T: Element> Visitor<'de> for EntrySeed<'_, T> {
    type Value = Option<ParamStateDict<T>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the state of parameter {} (an object)", self.index)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Err(str_type(s, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        const KEYS: &[&str] = &["step", "square_avg", "acc_delta"];
        let (ctx, i) = (self.ctx, self.index);
        // The step counter is float32 whatever the parameters' dtype.
        let mut step: Option<TensorData<f32>> = None;
        let mut averages: [Option<TensorData<T>>; 2] = Default::default();
        let mut seen = [false; 3];
        while let Some(k) = map.next_key_seed(FieldSeed(KEYS))? {
            if std::mem::replace(&mut seen[k], true) {
                return Err(duplicate(KEYS[k], &format_args!("state[{i}]")));
            }
            let at = Where::State(i, KEYS[k]);
            if k == 0 {
                step = map.next_value_seed(OrNull(TensorSeed::new(ctx, at)))?;
            } else {
                averages[k - 1] = map.next_value_seed(OrNull(TensorSeed::new(ctx, at)))?;
            }
        }
        let [square_avg, acc_delta] = averages;
        let present = [step.is_some(), square_avg.is_some(), acc_delta.is_some()];
        match (step, square_avg, acc_delta) {
            // PyTorch's empty per-parameter dict: state not created yet.
            (None, None, None) => Ok(None),
            (Some(step), Some(square_avg), Some(acc_delta)) => {
                if step.len() != 1 {
                    return Err(ctx.invalid(format_args!(
                        "state[{i}].step has {} elements, not 1",
                        step.len()
                    )));
                }
                Ok(Some(ParamStateDict {
                    step: step.data()[0],
                    square_avg,
                    acc_delta,
                }))
            }
            _ => {
                let missing = KEYS[present.iter().position(|p| !p).unwrap_or(0)];
                Err(ctx.invalid(format_args!("state[{i}] has no {missing:?}")))
            }
        }
    }
}

/// `null`, taken as absent (as this reader always has), or what `S` reads.
struct OrNull<S>(S);

impl<'de, S: Visitor<'de>> DeserializeSeed<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Visitor<'de>> Visitor<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.0.visit_str(s).map(Some)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }
}

/// `{"dtype": "float32", "shape": [...], "bits": [...]}`, of the element
/// type `T` (its dtype, and bit patterns of its width).
struct TensorSeed<'c, T> {
    ctx: &'c Ctx,
    at: Where,
    elem: PhantomData<T>,
}

impl<'c, T> TensorSeed<'c, T> {
    fn new(ctx: &'c Ctx, at: Where) -> Self {
        TensorSeed {
            ctx,
            at,
            elem: PhantomData,
        }
    }
}

impl<'de, T: Element> Visitor<'de> for TensorSeed<'_, T> {
    type Value = TensorData<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor (an object)")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<TensorData<T>, E> {
        Err(str_type(s, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TensorData<T>, A::Error> {
        const KEYS: &[&str] = &["dtype", "shape", "bits"];
        let (ctx, at) = (self.ctx, self.at);
        let (mut dtype, mut shape, mut bits) = (false, None::<Vec<usize>>, None);
        while let Some(k) = map.next_key_seed(FieldSeed(KEYS))? {
            if [dtype, shape.is_some(), bits.is_some()][k] {
                return Err(duplicate(KEYS[k], &at));
            }
            match k {
                0 => {
                    let seed = DtypeSeed::<T> {
                        ctx,
                        at,
                        elem: PhantomData,
                    };
                    dtype = map.next_value_seed(seed)?
                }
                1 => shape = Some(map.next_value_seed(Elems::new(ctx, at, "shape", 0))?),
                _ => {
                    // The exact size when the shape came first (and holds).
                    let expect = shape.as_deref().and_then(crate::shape::numel).unwrap_or(0);
                    bits = Some(map.next_value_seed(Elems::<T>::new(ctx, at, "bits", expect))?);
                }
            }
        }
        if !dtype {
            return Err(de::Error::missing_field("dtype"));
        }
        let shape = shape.ok_or_else(|| de::Error::missing_field("shape"))?;
        let bits = bits.ok_or_else(|| de::Error::missing_field("bits"))?;
        TensorData::from_parts(shape, bits).map_err(|e| match e {
            Error::InvalidShape { shape, len } => ctx.invalid(format_args!(
                "{at}: shape '{}' is invalid for input of size {len}",
                shape_text(&shape)
            )),
            e => ctx.invalid(format_args!("{at}: {e}")),
        })
    }
}

/// `dtype`, which must be `T`'s (always `true`).
struct DtypeSeed<'c, T> {
    ctx: &'c Ctx,
    at: Where,
    elem: PhantomData<T>,
}

impl<'de, T: Element> Visitor<'de> for DtypeSeed<'_, T> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        if s == T::DTYPE {
            return Ok(true);
        }
        Err(self.ctx.invalid(format_args!(
            "{} has dtype {:?}; expected {:?}",
            self.at,
            excerpt(s),
            T::DTYPE
        )))
    }
}

/// What a tensor's lists hold: dimensions (`shape`), and elements read
/// from their bit patterns (`bits`).
trait Elem: Sized {
    const EXPECTING: &'static str;
    fn from_u64(u: u64) -> Option<Self>;
}

impl Elem for usize {
    const EXPECTING: &'static str = "usize";
    fn from_u64(u: u64) -> Option<usize> {
        usize::try_from(u).ok()
    }
}

impl<T: Element> Elem for T {
    const EXPECTING: &'static str = T::BITS_NAME;
    fn from_u64(u: u64) -> Option<Self> {
        T::from_bits(u)
    }
}

/// A list of [`Elem`]s, read into its final buffer.
struct Elems<'c, T> {
    ctx: &'c Ctx,
    at: Where,
    name: &'static str,
    /// The length the list should have (0: unknown).
    expect: usize,
    elem: PhantomData<T>,
}

impl<'c, T> Elems<'c, T> {
    fn new(ctx: &'c Ctx, at: Where, name: &'static str, expect: usize) -> Self {
        Elems {
            ctx,
            at,
            name,
            expect,
            elem: PhantomData,
        }
    }
}

impl<'de, T: Elem> DeserializeSeed<'de> for Elems<'_, T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Elem> Visitor<'de> for Elems<'_, T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}", T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
        Err(str_type(s, &self))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let what = format_args!("{}.{}", self.at, self.name);
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(Elem1(PhantomData::<T>))? {
            self.ctx
                .push::<_, A::Error>(&mut v, x, self.expect, &what)?;
        }
        v.shrink_to_fit();
        Ok(v)
    }
}

/// One [`Elem`].
struct Elem1<T>(PhantomData<T>);

impl<'de, T: Elem> DeserializeSeed<'de> for Elem1<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Elem> Visitor<'de> for Elem1<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<T, E> {
        T::from_u64(u).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(u), &self))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<T, E> {
        Err(E::invalid_value(Unexpected::Signed(i), &self))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        Err(str_type(s, &self))
    }
}

struct GroupsSeed<'c>(&'c Ctx);

impl<'de> Visitor<'de> for GroupsSeed<'_> {
    type Value = Vec<GroupDict>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of parameter groups")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Err(str_type(s, &self))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut groups = Vec::new();
        let ctx = self.0;
        while let Some(g) = seq.next_element_seed(GroupSeed {
            ctx,
            index: groups.len(),
        })? {
            ctx.push::<_, A::Error>(&mut groups, g, 0, &"param_groups")?;
        }
        groups.shrink_to_fit();
        Ok(groups)
    }
}

/// What each of the optimizer's own group keys ([`GROUP_KEYS`]) must be.
const WANT: [&str; 10] = [
    "a number",
    "a number",
    "a number",
    "a number",
    "true or false",
    "true or false",
    "true, false or null",
    "true or false",
    "a list of parameter indices",
    "a list of parameter names",
];

/// A group: the four numbers are required, the flags default as in
/// PyTorch's `__setstate__`, `params` is required, `param_names` (a list of
/// strings, counted in the extra keys' allowance) may be there, other keys
/// are extras.
struct GroupSeed<'c> {
    ctx: &'c Ctx,
    index: usize,
}

impl<'de> Visitor<'de> for GroupSeed<'_> {
    type Value = GroupDict;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter group {} (an object)", self.index)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<GroupDict, E> {
        Err(str_type(s, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupDict, A::Error> {
        let (ctx, i) = (self.ctx, self.index);
        let mut seen = [false; 10];
        let mut numbers = [None; 4];
        let mut flags = [false; 9];
        let (mut foreach, mut params, mut param_names) = (None, None, None);
        let (mut extra, mut extra_keys) = (Extra::new(), HashSet::new());
        while let Some(key) = map.next_key_seed(GroupKeySeed { ctx, index: i })? {
            let k = match key {
                GroupKey::Own(k) if seen[k] => {
                    return Err(duplicate(GROUP_KEYS[k], &format_args!("param_groups[{i}]")))
                }
                GroupKey::Own(k) => k,
                GroupKey::Extra(key) => {
                    if !extra_keys.insert(key.clone()) {
                        return Err(duplicate(&key, &format_args!("param_groups[{i}]")));
                    }
                    let at = format!("param_groups[{i}].{}", excerpt(&key));
                    let value = map.next_value_seed(ExtraSeed { ctx, at: &at })?;
                    extra.push_new(key, value);
                    continue;
                }
            };
            seen[k] = true;
            let at = At(i, GROUP_KEYS[k]);
            if k == 9 {
                let value = map.next_value_seed(ExtraSeed {
                    ctx,
                    at: &at.to_string(),
                })?;
                param_names = Some(serde_json::from_str(value.json()).map_err(|_| {
                    ctx.invalid::<A::Error>(format_args!(
                        "{at} is {}, not {}",
                        excerpt(value.json()),
                        WANT[k]
                    ))
                })?);
                continue;
            }
            let atom = map.next_value_seed(AtomSeed {
                ctx,
                at,
                want: WANT[k],
                list: k == 8,
            })?;
            let bad =
                || -> A::Error { ctx.invalid(format_args!("{at} is {atom}, not {}", WANT[k])) };
            match k {
                0..=3 => numbers[k] = Some(atom.number().ok_or_else(bad)?),
                6 => foreach = atom.flag_or_null().ok_or_else(bad)?,
                8 => match atom {
                    Atom::List(p) => params = Some(p),
                    _ => return Err(bad()),
                },
                _ => flags[k] = atom.flag().ok_or_else(bad)?,
            }
        }
        let need = |k: usize| -> A::Error {
            ctx.invalid(format_args!("param_groups[{i}] has no {:?}", GROUP_KEYS[k]))
        };
        let mut number = |k: usize| numbers[k].take().ok_or_else(|| need(k));
        let options = Options {
            lr: number(0)?,
            rho: number(1)?,
            eps: number(2)?,
            weight_decay: number(3)?,
            maximize: flags[4],
            capturable: flags[5],
            foreach,
            differentiable: flags[7],
        };
        Ok(GroupDict {
            options,
            extra,
            params: params.ok_or_else(|| need(8))?,
            param_names,
        })
    }
}

/// Reads a group of the torch.save loader: its own keys (`own`) with the
/// checks of the JSON reader, and its extra keys, within their own
/// [`EXTRA_LIMIT`].
pub(crate) fn group_from_parts(
    i: usize,
    own: Map<String, Value>,
    extra: Extra,
) -> Result<GroupDict, Error> {
    let ctx = Ctx::new();
    let invalid = |e: serde_json::Error| Error::InvalidStateDict(e.to_string());
    let mut g = GroupSeed {
        ctx: &ctx,
        index: i,
    }
    .deserialize(Value::Object(own))
    .map_err(invalid)?;
    for (k, v) in &extra {
        let at = format_args!("param_groups[{i}].{}", excerpt(k));
        ctx.charge(k.len() + 4 + v.json().len(), &at)
            .map_err(invalid)?;
    }
    g.extra = extra;
    Ok(g)
}

/// A key of a group, for messages: `param_groups[1].lr`.
#[derive(Clone, Copy)]
struct At(usize, &'static str);

impl Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "param_groups[{}].{}", self.0, self.1)
    }
}

enum GroupKey {
    /// The position in [`GROUP_KEYS`].
    Own(usize),
    Extra(String),
}

struct GroupKeySeed<'c> {
    ctx: &'c Ctx,
    index: usize,
}

impl<'de> Visitor<'de> for GroupKeySeed<'_> {
    type Value = GroupKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<GroupKey, E> {
        if let Some(k) = GROUP_KEYS.iter().position(|&g| g == s) {
            return Ok(GroupKey::Own(k));
        }
        let at = format_args!("param_groups[{}].{}", self.index, excerpt(s));
        self.ctx.charge::<E>(s.len() + 4, &at)?;
        Ok(GroupKey::Extra(s.to_owned()))
    }
}

/// The value of one of a group's own keys: a scalar, or with `list` the
/// list of `params`. Anything else is refused at once.
enum Atom {
    Null,
    Bool(bool),
    Number(Number),
    /// Cut to a readable length.
    Str(String),
    List(Vec<usize>),
}

impl Atom {
    /// A hyperparameter: a JSON number, or a string when not finite.
    fn number(&self) -> Option<f64> {
        match self {
            Atom::Number(n) => n.as_f64(),
            Atom::Str(s) => match s.as_str() {
                "inf" | "Infinity" => Some(f64::INFINITY),
                "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
                "nan" | "NaN" => Some(f64::NAN),
                _ => None,
            },
            _ => None,
        }
    }

    fn flag(&self) -> Option<bool> {
        match self {
            Atom::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn flag_or_null(&self) -> Option<Option<bool>> {
        match self {
            Atom::Null => Some(None),
            a => a.flag().map(Some),
        }
    }
}

impl Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Null => f.write_str("null"),
            Atom::Bool(b) => write!(f, "{b}"),
            Atom::Number(n) => write!(f, "{n}"),
            Atom::Str(s) => write!(f, "{}", Value::String(s.clone())),
            Atom::List(_) => f.write_str("a list"),
        }
    }
}

#[derive(Clone, Copy)]
struct AtomSeed<'c> {
    ctx: &'c Ctx,
    at: At,
    want: &'static str,
    list: bool,
}

impl<'de> Visitor<'de> for AtomSeed<'_> {
    type Value = Atom;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.want)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Atom, E> {
        Ok(Atom::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Atom, E> {
        Ok(Atom::Bool(b))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Atom, E> {
        Ok(Atom::Number(u.into()))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Atom, E> {
        Ok(Atom::Number(i.into()))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Atom, E> {
        Ok(Number::from_f64(x).map_or(Atom::Null, Atom::Number))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Atom, E> {
        Ok(Atom::Str(excerpt(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Atom, A::Error> {
        let (ctx, at, want) = (self.ctx, self.at, self.want);
        if !self.list {
            return Err(ctx.invalid(format_args!("{at} is an array, not {want}")));
        }
        let mut v = Vec::new();
        let elem = AtomSeed {
            list: false,
            ..self
        };
        while let Some(x) = seq.next_element_seed(elem)? {
            match &x {
                Atom::Number(n) => match n.as_u64().and_then(|u| usize::try_from(u).ok()) {
                    Some(p) => ctx.push::<_, A::Error>(&mut v, p, 0, &at)?,
                    None => return Err(ctx.invalid(format_args!("{at} is {x}, not {want}"))),
                },
                _ => return Err(ctx.invalid(format_args!("{at} is {x}, not {want}"))),
            }
        }
        v.shrink_to_fit();
        Ok(Atom::List(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Atom, A::Error> {
        let (at, want) = (self.at, self.want);
        Err(self
            .ctx
            .invalid(format_args!("{at} is an object, not {want}")))
    }
}

/// An extra key's value, kept verbatim as its JSON text, within
/// [`EXTRA_LIMIT`]. serde_json buffers the text whole before it is charged:
/// like the buffer of a string, at most twice its length in the file.
struct ExtraSeed<'a> {
    ctx: &'a Ctx,
    /// The group's key, for messages.
    at: &'a str,
}

impl<'de> DeserializeSeed<'de> for ExtraSeed<'_> {
    type Value = ExtraValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ExtraValue, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        self.ctx.charge(raw.get().len(), &self.at)?;
        ExtraValue::from_raw(raw)
            .map_err(|why| de::Error::custom(format_args!("{why} in {}", self.at)))
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
                extra: Extra::new(),
                params: vec![],
                param_names: None,
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
            extra: Extra::new(),
            params: vec![],
            param_names: None,
        };
        let back: GroupDict = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert!(back.options.lr.is_nan());
    }
}
