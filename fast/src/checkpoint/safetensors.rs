//! The safetensors form of a state dict: the Rust (and Hugging Face)
//! ecosystem's tensor files, readable by the `safetensors` crate (which is
//! also what Python's `safetensors` package runs).
//!
//! # Layout
//!
//! A safetensors file is an 8-byte little-endian header length `n`, a JSON
//! header of `n` bytes (padded with spaces to a multiple of 8, so that the
//! data starts 8-byte aligned), then the tensors' bytes, back to back. The
//! header maps each tensor's name to its dtype, shape and `data_offsets`
//! (`[begin, end)` within the data), and may hold a `__metadata__` object
//! of strings. A state dict is stored as:
//!
//! | header entry | dtype, shape | holds |
//! |---|---|---|
//! | `state.<index>.step` | `F32`, `[]` | the step counter of parameter `<index>` (its position across the groups) |
//! | `state.<index>.square_avg` | the state's dtype, the parameter's shape | the running average of squared gradients |
//! | `state.<index>.acc_delta` | the state's dtype, the parameter's shape | the running average of squared updates |
//! | `__metadata__` `format` | string | `"adadelta.state_dict"` |
//! | `__metadata__` `format_version` | string | `"1"` |
//! | `__metadata__` `param_groups` | string | the groups as JSON text, in the [JSON format](super::json)'s form (`[{"lr": 1.0, ..., "params": [0, 1]}]`) |
//!
//! The state's dtype is its element type's ([`Stored::SAFETENSORS`]): `F32`
//! for `f32`, `F64` for `f64`, `BF16` for `half::bf16`, `F16` for
//! `half::f16`; the step counters are `F32` whatever it is, as PyTorch
//! keeps them.
//!
//! Only parameters that have state have tensors; a parameter of no element
//! has tensors of shape `[0]` (an empty span). The tensors are in the
//! order of the parameters, each parameter's `step`, `square_avg` then
//! `acc_delta`, and the header lists them in that same order, with
//! contiguous offsets. Every element is its IEEE-754 bits in little
//! endian, so a load gives back the same bits (NaN payloads, `-0.0`).
//! The file is the state's two elements per parameter element (8 bytes in
//! float32, 16 in float64, 4 in bfloat16 and float16), 4 bytes per step
//! counter and the header (about 80 bytes per tensor, plus the groups).
//!
//! ```
//! use adadelta::{Adadelta, Param};
//! use adadelta::checkpoint::{Format, SaveOptions};
//! let path = std::env::temp_dir().join(format!("adadelta-doc-st-{}.safetensors", std::process::id()));
//! let mut opt = Adadelta::new(vec![Param::with_shape(vec![1.0; 6], vec![2, 3])?], Default::default())?;
//! opt.params_mut()[0].set_grad(vec![0.5; 6])?;
//! opt.step()?;
//! opt.save_with(&path, &SaveOptions::new(Format::Safetensors))?;
//!
//! let bytes = std::fs::read(&path)?;
//! let file = safetensors::SafeTensors::deserialize(&bytes)?;
//! let t = file.tensor("state.0.square_avg")?;
//! assert_eq!((t.dtype(), t.shape()), (safetensors::Dtype::F32, &[2, 3][..]));
//! assert_eq!(file.tensor("state.0.step")?.shape(), &[] as &[usize]);
//!
//! let mut resumed = Adadelta::new(vec![Param::with_shape(vec![1.0; 6], vec![2, 3])?], Default::default())?;
//! resumed.load(&path)?;
//! assert_eq!(resumed.state_dict(), opt.state_dict());
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing
//!
//! A save streams: the header is built first (its size is that of the
//! names and shapes), then every tensor is written straight from the
//! borrowed slices of the [`StateDictRef`] (the optimizer's live state)
//! through a 1 MiB buffer; a slice larger than the buffer goes to the file
//! in one write. Nothing the size of the state is allocated. (On a
//! big-endian machine the elements are byte-swapped through a 64 KiB
//! buffer.)
//!
//! The `safetensors` crate's own writers do not fit: `serialize` builds the
//! whole file in memory, and `serialize_to_file` takes a path and does its
//! own temporary file and rename, where a save here writes the temporary
//! file that [`save`](super::save) renames atomically. So the header is
//! built from the crate's own [`TensorInfo`] entries and written here, with
//! the `__metadata__` keys in sorted order, so that the same state gives
//! the same bytes.
//!
//! # Reading
//!
//! A load reads the header length and refuses a header longer than 100 MB
//! (the `safetensors` crate's own limit) or than the file, before reading
//! or allocating anything. It then reads and parses the header alone and
//! checks it: every entry a known name, its dtype (`F32` for a step, the
//! state's for the averages), a span of exactly the dtype's size per
//! element of its shape, spans contiguous without overlap
//! and covering the data exactly to the end of the file (which is also
//! checked by the crate's [`Metadata`] validation), the three tensors of
//! every parameter present, and the metadata's format, version and groups.
//! Only then are the tensors read, in file order, each straight into the
//! `Vec` that becomes its [`TensorData`] (allocated fallibly, and
//! never larger than the file, whose size the spans were checked
//! against): the memory a load uses beyond the state it returns is that
//! of the header and a 64 KiB read buffer.
//!
//! The crate's `SafeTensors::read_metadata` does not fit either: it takes
//! the whole file as one byte slice (it checks the data's length against
//! it), which would mean reading or mapping all of it first. So the header
//! is parsed here, bounded, into the crate's [`TensorInfo`] entries, and
//! the crate's [`Metadata::new`] validates them after this module's own
//! checks (which give the messages: the crate's do not all name the
//! tensor).
//!
//! A file that is not a well-formed safetensors file of this layout gives a
//! [`CheckpointError::Format`] that says what was found and where (the
//! tensor, its offsets, the file's size); a well-formed file whose content
//! is not a valid state dict (a parameter with a tensor missing, a bad
//! group) gives a [`CheckpointError::Invalid`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{excerpt, CheckpointError, StateDictRef, Stored};
use crate::optimizer::group::check_extra;
use crate::optimizer::{ParamStateDict, StateDict, TensorData};
use crate::Error;

/// The `__metadata__` key and value that mark a state dict of this crate.
const FORMAT_KEY: &str = "format";
/// The `format` of a state dict of this crate.
const FORMAT: &str = "adadelta.state_dict";
/// The `__metadata__` key of the layout's version.
const VERSION_KEY: &str = "format_version";
/// The layout's version: the one this module writes and reads.
const VERSION: &str = "1";
/// The `__metadata__` key of the groups, as JSON text.
const GROUPS_KEY: &str = "param_groups";
/// The longest header the `safetensors` crate reads (100 MB), which is
/// also the longest this module writes or reads.
const MAX_HEADER: u64 = 100_000_000;

/// Which of a parameter's three tensors an entry is, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Step,
    SquareAvg,
    AccDelta,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Step, Kind::SquareAvg, Kind::AccDelta];

    /// The dtype of this tensor in a state dict of `T`: F32 for the step
    /// counter whatever `T` is (as PyTorch keeps it), `T`'s for the running
    /// averages.
    fn dtype<T: Stored>(self) -> Dtype {
        match self {
            Kind::Step => Dtype::F32,
            Kind::SquareAvg | Kind::AccDelta => T::SAFETENSORS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Step => "step",
            Kind::SquareAvg => "square_avg",
            Kind::AccDelta => "acc_delta",
        }
    }
}

/// The name of parameter `index`'s tensor `kind`.
fn tensor_name(index: usize, kind: Kind) -> String {
    format!("state.{index}.{}", kind.name())
}

/// A tensor's name, quoted and cut for an error message.
fn quoted(name: &str) -> String {
    format!("{:?}", excerpt(name))
}

/// A JSON error's message, cut (a serde message quotes the offending value
/// whole), keeping its position.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let cut = excerpt(&full);
    if cut.len() == full.len() {
        full
    } else {
        format!("{cut}, at line {} column {}", e.line(), e.column())
    }
}

fn invalid(why: String) -> CheckpointError {
    CheckpointError::from(Error::InvalidStateDict(why))
}

// ---- writing ----

/// The header: `__metadata__`, then the tensors in file order.
struct HeaderOut<'a> {
    metadata: &'a BTreeMap<&'static str, &'a str>,
    tensors: &'a [(String, TensorInfo)],
}

impl Serialize for HeaderOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1 + self.tensors.len()))?;
        m.serialize_entry("__metadata__", self.metadata)?;
        for (name, info) in self.tensors {
            m.serialize_entry(name, info)?;
        }
        m.end()
    }
}

/// Writes `sd` as safetensors to `file` (see the [module docs](self)),
/// streaming its tensors from the borrowed slices.
///
/// Fails with [`CheckpointError::Invalid`] when a tensor's shape does not
/// fit its data, a parameter has state twice, or a group's extra keys
/// include one of the optimizer's own; with [`CheckpointError::Format`]
/// when the header would pass the 100 MB that readers accept.
pub(crate) fn write<T: Stored>(
    file: &mut File,
    sd: &StateDictRef<'_, T>,
) -> Result<(), CheckpointError> {
    write_to(file, sd)
}

fn write_to<T: Stored, W: Write>(
    writer: W,
    sd: &StateDictRef<'_, T>,
) -> Result<(), CheckpointError> {
    sd.param_groups
        .iter()
        .try_for_each(|g| check_extra(&g.extra))?;
    let groups = serde_json::to_string(&*sd.param_groups)?;

    let mut state: Vec<_> = sd.state.iter().collect();
    state.sort_by_key(|(i, _)| *i);
    if let Some(w) = state.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid(format!("state lists parameter {} twice", w[0].0)));
    }

    // The header entries, with contiguous offsets in file order.
    let mut tensors = Vec::new();
    tensors
        .try_reserve_exact(3 * state.len())
        .map_err(|_| CheckpointError::format("safetensors: cannot allocate the header"))?;
    let mut offset = 0usize;
    let mut push =
        |name: String, dtype: Dtype, shape: &[usize], len: usize| -> Result<(), CheckpointError> {
            if crate::shape::numel(shape) != Some(len) {
                return Err(CheckpointError::from(Error::InvalidShape {
                    shape: shape.to_vec(),
                    len,
                }));
            }
            let end = len
                .checked_mul(dtype.bitsize() / 8)
                .and_then(|b| b.checked_add(offset))
                .ok_or_else(|| {
                    CheckpointError::format(format!("safetensors: {name} does not fit in memory"))
                })?;
            tensors.push((
                name,
                TensorInfo {
                    dtype,
                    shape: shape.to_vec(),
                    data_offsets: (offset, end),
                },
            ));
            offset = end;
            Ok(())
        };
    for (i, s) in &state {
        push(tensor_name(*i, Kind::Step), Kind::Step.dtype::<T>(), &[], 1)?;
        push(
            tensor_name(*i, Kind::SquareAvg),
            Kind::SquareAvg.dtype::<T>(),
            &s.square_avg.shape,
            s.square_avg.data.len(),
        )?;
        push(
            tensor_name(*i, Kind::AccDelta),
            Kind::AccDelta.dtype::<T>(),
            &s.acc_delta.shape,
            s.acc_delta.data.len(),
        )?;
    }

    let metadata = BTreeMap::from([
        (FORMAT_KEY, FORMAT),
        (VERSION_KEY, VERSION),
        (GROUPS_KEY, groups.as_str()),
    ]);
    let mut header = serde_json::to_vec(&HeaderOut {
        metadata: &metadata,
        tensors: &tensors,
    })?;
    drop(tensors);
    // Padded with spaces so that the data starts 8-byte aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() as u64 > MAX_HEADER {
        return Err(CheckpointError::format(format!(
            "safetensors: the header would be {} bytes (the names and shapes of {} tensors \
             and the groups), over the {MAX_HEADER} bytes that safetensors readers accept",
            header.len(),
            3 * state.len()
        )));
    }

    let mut w = BufWriter::with_capacity(1 << 20, writer);
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    drop(header);
    let mut swapped = Vec::new(); // big-endian only
    for (_, s) in &state {
        write_le(&mut w, std::slice::from_ref(&s.step), &mut swapped)?;
        write_le(&mut w, s.square_avg.data, &mut swapped)?;
        write_le(&mut w, s.acc_delta.data, &mut swapped)?;
    }
    w.flush()?;
    Ok(())
}

/// Writes `data` little-endian: the slice's own bytes on a little-endian
/// machine, byte-swapped through `buf` otherwise.
fn write_le<T: Stored, W: Write>(w: &mut W, data: &[T], buf: &mut Vec<u8>) -> std::io::Result<()> {
    if cfg!(target_endian = "little") {
        return w.write_all(bytemuck::cast_slice(data));
    }
    for chunk in data.chunks(1 << 14) {
        buf.clear();
        chunk.iter().for_each(|x| x.extend_le(buf));
        w.write_all(buf)?;
    }
    Ok(())
}

// ---- reading ----

/// The header as read: the metadata and the tensor entries in header order.
struct RawHeader {
    metadata: Option<BTreeMap<String, String>>,
    tensors: Vec<(String, TensorInfo)>,
}

/// Reads the header's top-level object, noting in `current` the entry
/// being read, for the error message.
struct HeaderVisitor<'a> {
    current: &'a RefCell<Option<String>>,
}

impl<'de> Visitor<'de> for HeaderVisitor<'_> {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a safetensors header (a JSON object of tensor entries)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut metadata = None;
        let mut tensors = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                if metadata.is_some() {
                    return Err(de::Error::custom("\"__metadata__\" appears twice"));
                }
                *self.current.borrow_mut() = Some(key);
                metadata = Some(map.next_value::<BTreeMap<String, String>>()?);
            } else {
                *self.current.borrow_mut() = Some(key.clone());
                tensors.push((key, map.next_value::<TensorInfo>()?));
            }
            *self.current.borrow_mut() = None;
        }
        Ok(RawHeader { metadata, tensors })
    }
}

/// Parses the header text (bounded by [`MAX_HEADER`]).
fn parse_header(text: &str) -> Result<RawHeader, CheckpointError> {
    let current = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let header = de
        .deserialize_map(HeaderVisitor { current: &current })
        .and_then(|h| de.end().map(|()| h));
    header.map_err(|e| {
        let at = match current.borrow().as_deref() {
            Some(key) => format!(", in the entry {}", quoted(key)),
            None => String::new(),
        };
        CheckpointError::format(format!("safetensors header{at}: {}", json_message(&e)))
    })
}

/// The parameter index and kind a tensor name stands for.
fn parse_name(name: &str) -> Option<(usize, Kind)> {
    let (index, kind) = name.strip_prefix("state.")?.split_once('.')?;
    let kind = Kind::ALL.into_iter().find(|k| k.name() == kind)?;
    let canonical = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    if !canonical {
        return None;
    }
    Some((index.parse().ok()?, kind))
}

/// One tensor to read, checked.
struct Planned {
    name: String,
    index: usize,
    kind: Kind,
    shape: Vec<usize>,
    numel: usize,
    span: (usize, usize),
}

/// Checks one header entry: a known name, its dtype (F32 for a step
/// counter, `T`'s for the running averages), a span of the dtype's size
/// per element, a one-element step.
fn plan<T: Stored>(name: &str, info: &TensorInfo) -> Result<Planned, CheckpointError> {
    let (index, kind) = parse_name(name).ok_or_else(|| {
        CheckpointError::format(format!(
            "safetensors: unknown tensor {}: an optimizer state dict has only \
             state.<index>.step, state.<index>.square_avg and state.<index>.acc_delta",
            quoted(name)
        ))
    })?;
    let dtype = kind.dtype::<T>();
    if info.dtype != dtype {
        return Err(CheckpointError::format(format!(
            "safetensors: tensor {} has dtype {}; expected {dtype} ({})",
            quoted(name),
            info.dtype,
            if kind == Kind::Step {
                "a step counter is float32"
            } else {
                "the parameters' dtype"
            }
        )));
    }
    let (begin, end) = info.data_offsets;
    let numel = crate::shape::numel(&info.shape);
    let bytes = numel.and_then(|n| n.checked_mul(dtype.bitsize() / 8));
    let (Some(numel), Some(bytes)) = (numel, bytes) else {
        return Err(CheckpointError::format(format!(
            "safetensors: tensor {} has shape {}, whose size overflows",
            quoted(name),
            excerpt(&format!("{:?}", info.shape))
        )));
    };
    if end < begin || end - begin != bytes {
        return Err(CheckpointError::format(format!(
            "safetensors: tensor {} of shape {} and dtype {dtype} needs {bytes} bytes, but its \
             data_offsets [{begin}, {end}] span {}",
            quoted(name),
            excerpt(&format!("{:?}", info.shape)),
            if end < begin {
                "backwards".to_string()
            } else {
                format!("{} bytes", end - begin)
            }
        )));
    }
    if kind == Kind::Step && numel != 1 {
        return Err(CheckpointError::format(format!(
            "safetensors: tensor {} has {numel} elements; a step counter has one",
            quoted(name)
        )));
    }
    Ok(Planned {
        name: name.to_string(),
        index,
        kind,
        shape: info.shape.clone(),
        numel,
        span: (begin, end),
    })
}

/// Reads a state dict from a safetensors `file` positioned at its start
/// (see the [module docs](self) for the checks).
pub(crate) fn read<T: Stored>(file: File) -> Result<StateDict<T>, CheckpointError> {
    let len = file.metadata()?.len();
    read_from(file, len)
}

fn read_from<T: Stored, R: Read>(
    reader: R,
    file_len: u64,
) -> Result<StateDict<T>, CheckpointError> {
    let mut r = BufReader::with_capacity(1 << 16, reader);

    // The header length, bounded before anything is allocated.
    if file_len < 8 {
        return Err(CheckpointError::format(format!(
            "safetensors: the file is {file_len} bytes, too short for the 8-byte header length"
        )));
    }
    let mut n = [0u8; 8];
    r.read_exact(&mut n)
        .map_err(truncated("the header length"))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER {
        return Err(CheckpointError::format(format!(
            "safetensors: the header length is {n} bytes, over the {MAX_HEADER}-byte limit"
        )));
    }
    let data_len = file_len - 8;
    if n > data_len {
        return Err(CheckpointError::format(format!(
            "safetensors: the header length is {n} bytes, but the file has only {data_len} \
             bytes after it: the file is truncated or not safetensors"
        )));
    }
    let data_len = data_len - n;
    let n = n as usize; // at most MAX_HEADER

    // The header, alone.
    let mut header = Vec::new();
    header.try_reserve_exact(n).map_err(|_| {
        CheckpointError::format(format!("safetensors: cannot allocate the {n}-byte header"))
    })?;
    header.resize(n, 0);
    r.read_exact(&mut header).map_err(truncated("the header"))?;
    let text = std::str::from_utf8(&header).map_err(|e| {
        CheckpointError::format(format!(
            "safetensors: the header is not UTF-8 (at byte {} of the file)",
            8 + e.valid_up_to()
        ))
    })?;
    let RawHeader { metadata, tensors } = parse_header(text)?;
    drop(header);

    // The metadata: this crate's format, a known version, the groups.
    let metadata = metadata.ok_or_else(|| {
        CheckpointError::format(format!(
            "safetensors: the header has no \"__metadata__\", so this is not an optimizer \
             state dict saved by adadelta (it has {} tensors{})",
            tensors.len(),
            tensors
                .first()
                .map(|(name, _)| format!(", the first {}", quoted(name)))
                .unwrap_or_default()
        ))
    })?;
    match metadata.get(FORMAT_KEY) {
        Some(f) if f == FORMAT => {}
        found => {
            return Err(CheckpointError::format(format!(
                "safetensors: the metadata's {FORMAT_KEY:?} is {}, not {FORMAT:?}: this is not \
                 an optimizer state dict saved by adadelta",
                found.map_or("absent".to_string(), |f| quoted(f))
            )))
        }
    }
    match metadata.get(VERSION_KEY) {
        Some(v) if v == VERSION => {}
        found => {
            return Err(CheckpointError::format(format!(
                "safetensors: the metadata's {VERSION_KEY:?} is {}; this version of adadelta \
                 reads version {VERSION:?}",
                found.map_or("absent".to_string(), |v| quoted(v))
            )))
        }
    }
    let groups = metadata.get(GROUPS_KEY).ok_or_else(|| {
        CheckpointError::format(format!("safetensors: the metadata has no {GROUPS_KEY:?}"))
    })?;
    let param_groups = parse_groups(groups)?;
    drop(metadata);

    // Every entry checked, then the spans: in file order, contiguous, no
    // overlap, exactly covering the data.
    let mut planned = tensors
        .iter()
        .map(|(name, info)| plan::<T>(name, info))
        .collect::<Result<Vec<_>, _>>()?;
    planned.sort_by_key(|p| p.span);
    let mut at = 0usize;
    let mut previous: Option<&Planned> = None;
    for p in &planned {
        let (begin, end) = p.span;
        if begin > at && begin as u64 > data_len {
            return Err(CheckpointError::format(format!(
                "safetensors: tensor {} at data_offsets [{begin}, {end}] lies beyond the end \
                 of the data: the file has {data_len} bytes after the header",
                quoted(&p.name)
            )));
        }
        if begin != at {
            let what = if begin < at {
                "overlaps"
            } else {
                "leaves a gap after"
            };
            let prev = previous.map_or("the start of the data".to_string(), |q| {
                format!("tensor {} [{}, {}]", quoted(&q.name), q.span.0, q.span.1)
            });
            return Err(CheckpointError::format(format!(
                "safetensors: tensor {} at data_offsets [{begin}, {end}] {what} {prev}",
                quoted(&p.name)
            )));
        }
        at = end;
        previous = Some(p);
    }
    if at as u64 != data_len {
        let last = previous.map_or(String::new(), |q| {
            format!(" (tensor {} ends there)", quoted(&q.name))
        });
        return Err(CheckpointError::format(if (at as u64) > data_len {
            format!(
                "safetensors: the header declares {at} bytes of tensor data{last}, but the file \
                 has only {data_len} after the header: it is truncated"
            )
        } else {
            format!(
                "safetensors: the header declares {at} bytes of tensor data{last}, but the file \
                 has {data_len} after the header: {} the last tensor",
                match data_len - at as u64 {
                    1 => "1 byte follows".to_string(),
                    k => format!("{k} bytes follow"),
                }
            )
        }));
    }
    // The same checks by the safetensors crate, on the header alone.
    let mut sorted = tensors;
    sorted.sort_by_key(|(_, info)| info.data_offsets);
    Metadata::new(None, sorted)
        .map_err(|e| CheckpointError::format(format!("safetensors: invalid header: {e}")))?;

    // Every parameter has its three tensors, once.
    let mut present: BTreeMap<usize, [bool; 3]> = BTreeMap::new();
    for p in &planned {
        let slot = &mut present.entry(p.index).or_default()[p.kind as usize];
        if *slot {
            return Err(CheckpointError::format(format!(
                "safetensors: tensor {} appears twice in the header",
                quoted(&p.name)
            )));
        }
        *slot = true;
    }
    for (index, has) in &present {
        if let Some(k) = Kind::ALL.into_iter().find(|k| !has[*k as usize]) {
            return Err(invalid(format!("state[{index}] has no {:?}", k.name())));
        }
    }
    drop(present);

    // The data, in file order, each tensor straight into its final buffer.
    let mut slots: BTreeMap<usize, Slots<T>> = BTreeMap::new();
    for p in planned {
        let slot = slots.entry(p.index).or_default();
        match p.kind {
            Kind::Step => slot.step = Some(read_data::<f32>(&mut r, &p)?[0]),
            Kind::SquareAvg => {
                slot.square_avg = Some(tensor(&p.name, p.shape.clone(), read_data(&mut r, &p)?)?)
            }
            Kind::AccDelta => {
                slot.acc_delta = Some(tensor(&p.name, p.shape.clone(), read_data(&mut r, &p)?)?)
            }
        }
    }
    let state = slots
        .into_iter()
        .map(|(index, s)| match (s.step, s.square_avg, s.acc_delta) {
            (Some(step), Some(square_avg), Some(acc_delta)) => Ok((
                index,
                ParamStateDict {
                    step,
                    square_avg,
                    acc_delta,
                },
            )),
            _ => Err(invalid(format!("state[{index}] is incomplete"))),
        })
        .collect::<Result<_, _>>()?;
    Ok(StateDict {
        state,
        param_groups,
    })
}

/// The elements of the planned tensor `p`, read into their final buffer
/// (allocated fallibly).
fn read_data<X: Stored>(r: &mut impl Read, p: &Planned) -> Result<Vec<X>, CheckpointError> {
    let mut data: Vec<X> = Vec::new();
    data.try_reserve_exact(p.numel).map_err(|_| {
        CheckpointError::format(format!(
            "safetensors: cannot allocate {} bytes for tensor {}",
            p.span.1 - p.span.0,
            quoted(&p.name)
        ))
    })?;
    data.resize(p.numel, X::default());
    r.read_exact(bytemuck::cast_slice_mut(&mut data))
        .map_err(truncated(&format!("tensor {}", quoted(&p.name))))?;
    if cfg!(target_endian = "big") {
        data.iter_mut().for_each(|x| *x = x.le_to_native());
    }
    Ok(data)
}

/// A parameter's tensors as they are read.
struct Slots<T> {
    step: Option<f32>,
    square_avg: Option<TensorData<T>>,
    acc_delta: Option<TensorData<T>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            step: None,
            square_avg: None,
            acc_delta: None,
        }
    }
}

fn tensor<T: Stored>(
    name: &str,
    shape: Vec<usize>,
    data: Vec<T>,
) -> Result<TensorData<T>, CheckpointError> {
    TensorData::from_parts(shape, data).map_err(|e| invalid(format!("{name}: {e}")))
}

/// An I/O error while reading `what`; an early end of file says the file
/// is truncated (or changed while being read).
fn truncated(what: &str) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CheckpointError::format(format!(
                "safetensors: the file ends inside {what}: it is truncated (or was changed \
                 while being read)"
            ))
        } else {
            CheckpointError::from(e)
        }
    }
}

/// The groups from the metadata's JSON text, read as the JSON format reads
/// them (so that an error names the group by its index).
fn parse_groups(text: &str) -> Result<Vec<crate::GroupDict>, CheckpointError> {
    serde_json::from_str::<de::IgnoredAny>(text).map_err(|e| {
        CheckpointError::format(format!(
            "safetensors: the metadata's {GROUPS_KEY:?} is not JSON ({}): {}",
            json_message(&e),
            quoted(text)
        ))
    })?;
    if !text.trim_start().starts_with('[') {
        return Err(CheckpointError::format(format!(
            "safetensors: the metadata's {GROUPS_KEY:?} is {}, not a JSON list of groups",
            quoted(text)
        )));
    }
    // Read from the text itself, so that the extra keys keep their text.
    let wrapper = format!(r#"{{"state":{{}},"param_groups":{text}}}"#);
    let sd = serde_json::from_str::<StateDict>(&wrapper).map_err(|e| {
        let message = e.to_string();
        // The position is in the wrapper, not in the file: dropped.
        let message = match message.rfind(" at line ") {
            Some(at) if e.line() > 0 => &message[..at],
            _ => &message,
        };
        let message = message
            .strip_prefix("invalid state dict: ")
            .unwrap_or(message);
        // A message quotes the offending value whole: cut only a long one.
        invalid(if message.len() > 1000 {
            excerpt(message)
        } else {
            message.to_string()
        })
    })?;
    Ok(sd.param_groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_names_of_the_three_tensors_are_known() {
        assert_eq!(parse_name("state.0.step"), Some((0, Kind::Step)));
        assert_eq!(
            parse_name("state.12.square_avg"),
            Some((12, Kind::SquareAvg))
        );
        assert_eq!(parse_name("state.3.acc_delta"), Some((3, Kind::AccDelta)));
        for bad in [
            "state.01.step",
            "state.+1.step",
            "state..step",
            "state.1.momentum",
            "state.1.step.x",
            "weight",
            "state.99999999999999999999999.step",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_long_json_error_is_cut_but_keeps_its_position() {
        let long = format!("\"{}\"", "x".repeat(10_000));
        let e = serde_json::from_str::<u32>(&long).unwrap_err();
        let m = json_message(&e);
        assert!(m.len() < 300, "{m}");
        assert!(m.ends_with("at line 1 column 10002"), "{m}");
    }

    #[test]
    fn the_writer_streams_through_a_generic_writer_and_reads_back() {
        let sd = StateDict::<f32>::default();
        let mut out = Vec::new();
        write_to(&mut out, &sd.as_ref()).unwrap();
        assert_eq!(out.len() % 8, 0);
        let len = out.len() as u64;
        assert_eq!(read_from(&out[..], len).unwrap(), sd);
    }
}
