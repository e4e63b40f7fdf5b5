//! Reading `data.pkl`: the subset of Python's pickle that
//! `torch.load(weights_only=True)` accepts, and within it only what a state
//! dict or a training checkpoint holds. Nothing is executed: a global is
//! looked up in a fixed allow-list of four kinds, and each of them is
//! interpreted here, by its documented meaning.
//!
//! The values are kept in an arena while the pickle runs, so that a memo
//! entry refers to the same (mutable) object as Python's would; the result
//! is then measured (each node once) and, only if it fits the bounds on
//! its size in bytes and its depth, expanded into a [`Value`] tree, so that
//! shared references cannot expand without bound.

use std::collections::HashMap;

use super::value::{Dtype, TensorInfo, Value};
use crate::checkpoint::{excerpt, CheckpointError};

/// The most values (arena nodes, and nodes of the expanded tree) one pickle
/// may make: about 250,000 tensors' worth. It bounds the arena at about
/// 120 bytes a value, 480 MiB, beyond the pickle's own size.
pub(crate) const MAX_VALUES: usize = 4_000_000;
/// The deepest nesting of the expanded tree.
pub(crate) const MAX_DEPTH: usize = 200;
/// The most memory the expanded tree may take: its values and what they
/// own (strings, shapes), checked before any of it is built.
pub(crate) const MAX_TREE_BYTES: u64 = 256 << 20;

type Id = usize;

/// An allowed global.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Global),
    /// A storage named by a persistent id.
    Storage {
        dtype: Dtype,
        key: String,
        location: String,
        len: usize,
    },
    Tensor(TensorInfo),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<Vec<Id>>,
    memo: HashMap<u32, Id>,
}

/// Runs the pickle `data` and returns the value it builds.
pub(crate) fn unpickle(data: &[u8]) -> Result<Value, CheckpointError> {
    let mut m = Machine {
        data,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    m.measure(root)?;
    let mut budget = MAX_VALUES;
    m.expand(root, 0, &mut budget)
}

fn err(at: usize, msg: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::format(format!("data.pkl, byte {at}: {msg}"))
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CheckpointError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                err(
                    self.pos,
                    format!("the pickle ends early (wanted {n} more bytes)"),
                )
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, CheckpointError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CheckpointError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, CheckpointError> {
        let start = self.pos;
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| err(start, "a GLOBAL name longer than 256 bytes or unterminated"))?;
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| err(start, "a GLOBAL name that is not UTF-8"))?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, node: Node) -> Result<(), CheckpointError> {
        if self.nodes.len() >= MAX_VALUES {
            return Err(err(
                self.pos,
                format!("more than {MAX_VALUES} values in one pickle"),
            ));
        }
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<Id, CheckpointError> {
        self.stack
            .pop()
            .ok_or_else(|| err(at, "an opcode needs a value but the stack is empty"))
    }

    fn top(&self, at: usize) -> Result<Id, CheckpointError> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| err(at, "an opcode needs a value but the stack is empty"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Id>, CheckpointError> {
        let below = self
            .marks
            .pop()
            .ok_or_else(|| err(at, "an opcode needs a MARK but there is none"))?;
        Ok(std::mem::replace(&mut self.stack, below))
    }

    fn int_of(&self, id: Id, at: usize, what: &str) -> Result<usize, CheckpointError> {
        match self.nodes[id] {
            Node::Int(i) if i >= 0 => usize::try_from(i)
                .map_err(|_| err(at, format!("{what} {i} does not fit this machine"))),
            ref n => Err(err(
                at,
                format!("{what} must be a non-negative int, not {}", kind(n)),
            )),
        }
    }

    fn ints_of(&self, id: Id, at: usize, what: &str) -> Result<Vec<usize>, CheckpointError> {
        match &self.nodes[id] {
            Node::Tuple(items) => items.iter().map(|&i| self.int_of(i, at, what)).collect(),
            n => Err(err(at, format!("{what} must be a tuple, not {}", kind(n)))),
        }
    }

    fn run(&mut self) -> Result<Id, CheckpointError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if !(2..=5).contains(&p) {
                        return Err(err(at, format!("pickle protocol {p} (2 to 5 are read)")));
                    }
                }
                b'.' => return self.pop(at), // STOP
                b'(' => {
                    // MARK
                    if self.marks.len() >= MAX_VALUES {
                        return Err(err(at, format!("more than {MAX_VALUES} MARKs")));
                    }
                    let below = std::mem::take(&mut self.stack);
                    self.marks.push(below);
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b')' => self.push(Node::Tuple(Vec::new()))?,
                b']' => self.push(Node::List(Vec::new()))?,
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Node::Int(v.into()))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(v.into()))?
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push(Node::Int(v.into()))?
                }
                0x8a => {
                    // LONG1: little-endian two's complement
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    if n > 8 {
                        return Err(err(at, format!("an int of {n} bytes (at most 8 are read)")));
                    }
                    let v = if n == 0 {
                        0
                    } else {
                        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
                        let mut full = [fill; 8];
                        full[..n].copy_from_slice(&b);
                        i64::from_le_bytes(full)
                    };
                    self.push(Node::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Node::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| err(at, "a str that is not valid UTF-8"))?
                        .to_string();
                    self.push(Node::Str(s))?
                }
                b'U' => {
                    // SHORT_BINSTRING, decoded as ASCII as torch.load does
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    if !b.is_ascii() {
                        return Err(err(at, "a SHORT_BINSTRING that is not ASCII"));
                    }
                    let s = String::from_utf8(b.to_vec()).expect("ASCII");
                    self.push(Node::Str(s))?
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.push(Node::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(err(at, format!("TUPLE{n} needs {n} values on the stack")));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items))?
                }
                b'a' => {
                    let item = self.pop(at)?;
                    let list = self.top(at)?;
                    match &mut self.nodes[list] {
                        Node::List(v) => v.push(item),
                        n => return Err(err(at, format!("APPEND to {}", kind(n)))),
                    }
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    let list = self.top(at)?;
                    match &mut self.nodes[list] {
                        Node::List(v) => v.extend(items),
                        n => return Err(err(at, format!("APPENDS to {}", kind(n)))),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop(at)?;
                        let k = self.pop(at)?;
                        vec![k, v]
                    } else {
                        self.pop_mark(at)?
                    };
                    if items.len() % 2 != 0 {
                        return Err(err(at, "SETITEMS with an odd number of values"));
                    }
                    let dict = self.top(at)?;
                    match &mut self.nodes[dict] {
                        Node::Dict(v) => v.extend(items.chunks(2).map(|p| (p[0], p[1]))),
                        n => return Err(err(at, format!("SETITEM on {}", kind(n)))),
                    }
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.u32()?
                    };
                    let id = *self
                        .memo
                        .get(&i)
                        .ok_or_else(|| err(at, format!("memo entry {i} was never stored")))?;
                    if self.stack.len() >= MAX_VALUES {
                        return Err(err(
                            at,
                            format!("more than {MAX_VALUES} values on the stack"),
                        ));
                    }
                    self.stack.push(id);
                }
                b'q' | b'r' => {
                    let i = if op == b'q' {
                        u32::from(self.u8()?)
                    } else {
                        self.u32()?
                    };
                    let top = self.top(at)?;
                    self.memo.insert(i, top);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = global(&module, &name).ok_or_else(|| {
                        err(
                            at,
                            format!(
                                "GLOBAL {} is not accepted: this reader takes only \
                                 collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
                                 torch._utils._rebuild_parameter and torch's storage classes \
                                 (a subset of what torch.load(weights_only=True) takes); \
                                 nothing in the file is executed",
                                excerpt(&format!("{module}.{name}"))
                            ),
                        )
                    })?;
                    self.push(Node::Global(g))?
                }
                b'Q' => {
                    let pid = self.pop(at)?;
                    let node = self.storage(pid, at)?;
                    self.push(node)?
                }
                b'R' => {
                    let args = self.pop(at)?;
                    let func = self.pop(at)?;
                    let node = self.reduce(func, args, at)?;
                    self.push(node)?
                }
                b'b' => {
                    // BUILD: an OrderedDict's attributes (a module state
                    // dict's `_metadata`), which a state dict does not need.
                    let _state = self.pop(at)?;
                    let inst = self.top(at)?;
                    if !matches!(self.nodes[inst], Node::Dict(_)) {
                        return Err(err(at, format!("BUILD on {}", kind(&self.nodes[inst]))));
                    }
                }
                _ => {
                    return Err(err(
                        at,
                        format!(
                            "opcode 0x{op:02x} is not accepted (torch.load(weights_only=True) \
                             reads only the opcodes of protocol 2 that build data)"
                        ),
                    ))
                }
            }
        }
    }

    /// `BINPERSID` of `('storage', <StorageClass>, key, location, numel)`.
    fn storage(&self, pid: Id, at: usize) -> Result<Node, CheckpointError> {
        let bad = || {
            err(
                at,
                "a persistent id that is not ('storage', type, key, location, size)",
            )
        };
        let Node::Tuple(items) = &self.nodes[pid] else {
            return Err(bad());
        };
        let [tag, class, key, location, len] = items[..] else {
            return Err(bad());
        };
        let str_of = |id: Id| match &self.nodes[id] {
            Node::Str(s) => Some(s.clone()),
            _ => None,
        };
        if str_of(tag).as_deref() != Some("storage") {
            return Err(bad());
        }
        let Node::Global(Global::Storage(dtype)) = self.nodes[class] else {
            return Err(bad());
        };
        let (Some(key), Some(location)) = (str_of(key), str_of(location)) else {
            return Err(bad());
        };
        let len = self.int_of(len, at, "a storage size")?;
        Ok(Node::Storage {
            dtype,
            key,
            location,
            len,
        })
    }

    fn reduce(&self, func: Id, args: Id, at: usize) -> Result<Node, CheckpointError> {
        let Node::Tuple(args) = &self.nodes[args] else {
            return Err(err(at, "REDUCE with arguments that are not a tuple"));
        };
        match self.nodes[func] {
            Node::Global(Global::OrderedDict) if args.is_empty() => Ok(Node::Dict(Vec::new())),
            Node::Global(Global::RebuildTensorV2) if (6..=7).contains(&args.len()) => {
                let Node::Storage {
                    dtype,
                    ref key,
                    ref location,
                    len,
                } = self.nodes[args[0]]
                else {
                    return Err(err(
                        at,
                        "_rebuild_tensor_v2 of something that is not a storage",
                    ));
                };
                let offset = self.int_of(args[1], at, "a tensor's storage offset")?;
                let shape = self.ints_of(args[2], at, "a tensor's size")?;
                let stride = self.ints_of(args[3], at, "a tensor's stride")?;
                if shape.len() != stride.len() {
                    return Err(err(at, "a tensor whose size and stride differ in length"));
                }
                let numel = crate::shape::numel(&shape);
                // The last element the view reaches must be in the storage.
                let last = shape.iter().zip(&stride).try_fold(offset, |a, (&d, &s)| {
                    a.checked_add(d.saturating_sub(1).checked_mul(s)?)
                });
                match (numel, last) {
                    (Some(0), _) => {}
                    (Some(_), Some(last)) if last < len => {}
                    _ => {
                        return Err(err(
                            at,
                            format!(
                                "a tensor of size {} stride {} offset {offset} reaches beyond \
                                 its storage of {len} elements",
                                excerpt(&format!("{shape:?}")),
                                excerpt(&format!("{stride:?}"))
                            ),
                        ))
                    }
                }
                Ok(Node::Tensor(TensorInfo {
                    dtype,
                    shape,
                    stride,
                    offset,
                    storage: key.clone(),
                    storage_len: len,
                    location: location.clone(),
                }))
            }
            Node::Global(Global::RebuildParameter) if args.len() == 3 => {
                match &self.nodes[args[0]] {
                    Node::Tensor(t) => Ok(Node::Tensor(t.clone())),
                    n => Err(err(at, format!("_rebuild_parameter of {}", kind(n)))),
                }
            }
            ref n => Err(err(
                at,
                format!(
                    "REDUCE of {} with {} arguments is not accepted",
                    kind(n),
                    args.len()
                ),
            )),
        }
    }

    /// Refuses, before anything is built, a tree that would be larger than
    /// [`MAX_TREE_BYTES`] or nest deeper than [`MAX_DEPTH`] (a value that
    /// contains itself nests without end). Each node is measured once, so
    /// shared references cost what they expand to, in time linear in the
    /// arena.
    fn measure(&self, root: Id) -> Result<(), CheckpointError> {
        // Per node: its tree's bytes and height + 1 (0: not measured yet).
        let mut seen = vec![(0u32, 0u8); self.nodes.len()];
        self.measure_node(root, 0, &mut seen).map(|_| ())
    }

    fn measure_node(
        &self,
        id: Id,
        depth: usize,
        seen: &mut [(u32, u8)],
    ) -> Result<(u64, usize), CheckpointError> {
        let too_deep = || {
            CheckpointError::format(format!(
                "data.pkl: values nested more than {MAX_DEPTH} deep (or a value that contains itself)"
            ))
        };
        if let (bytes, 1..) = seen[id] {
            let height = usize::from(seen[id].1 - 1);
            if depth + height > MAX_DEPTH {
                return Err(too_deep());
            }
            return Ok((u64::from(bytes), height));
        }
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        // A heap block of `n` bytes, with the allocator's overhead. A value
        // itself is counted in its parent's vector.
        let heap = |n: usize| if n == 0 { 0 } else { n as u64 + 16 };
        let mut bytes = 0u64;
        let mut height = 0;
        let mut child = |c: Id, bytes: &mut u64| -> Result<(), CheckpointError> {
            let (b, h) = self.measure_node(c, depth + 1, seen)?;
            *bytes = bytes.saturating_add(b);
            height = height.max(h + 1);
            Ok(())
        };
        match &self.nodes[id] {
            Node::Str(s) => bytes += heap(s.len()),
            Node::Tensor(t) => {
                bytes += heap(8 * t.shape.len())
                    + heap(8 * t.stride.len())
                    + heap(t.storage.len())
                    + heap(t.location.len())
            }
            Node::List(v) | Node::Tuple(v) => {
                bytes += heap(std::mem::size_of::<Value>() * v.len());
                for &c in v {
                    child(c, &mut bytes)?;
                }
            }
            Node::Dict(items) => {
                bytes += heap(2 * std::mem::size_of::<Value>() * items.len());
                for &(k, v) in items {
                    child(k, &mut bytes)?;
                    child(v, &mut bytes)?;
                }
            }
            _ => {}
        }
        if bytes > MAX_TREE_BYTES {
            return Err(CheckpointError::format(format!(
                "data.pkl: its values (with their shared references expanded) would take more \
                 than {} MiB",
                MAX_TREE_BYTES >> 20
            )));
        }
        seen[id] = (bytes as u32, height as u8 + 1);
        Ok((bytes, height))
    }

    fn expand(&self, id: Id, depth: usize, budget: &mut usize) -> Result<Value, CheckpointError> {
        if depth > MAX_DEPTH {
            return Err(CheckpointError::format(format!(
                "data.pkl: values nested more than {MAX_DEPTH} deep (or a value that contains itself)"
            )));
        }
        if *budget == 0 {
            return Err(CheckpointError::format(format!(
                "data.pkl: its shared references expand to more than {MAX_VALUES} values"
            )));
        }
        *budget -= 1;
        // Vectors of their exact length, as `measure` counted them.
        let all = |ids: &[Id], budget: &mut usize| -> Result<Vec<Value>, CheckpointError> {
            let mut out = Vec::with_capacity(ids.len());
            for &i in ids {
                out.push(self.expand(i, depth + 1, budget)?);
            }
            Ok(out)
        };
        Ok(match &self.nodes[id] {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Float(x) => Value::Float(*x),
            Node::Str(s) => Value::Str(s.clone()),
            Node::List(v) => Value::List(all(v, budget)?),
            Node::Tuple(v) => Value::Tuple(all(v, budget)?),
            Node::Dict(items) => {
                let mut out = Vec::with_capacity(items.len());
                for &(k, v) in items {
                    out.push((
                        self.expand(k, depth + 1, budget)?,
                        self.expand(v, depth + 1, budget)?,
                    ));
                }
                Value::Dict(out)
            }
            Node::Tensor(t) => Value::Tensor(t.clone()),
            n @ (Node::Global(_) | Node::Storage { .. }) => {
                return Err(CheckpointError::format(format!(
                    "data.pkl: {} left as a value",
                    kind(n)
                )))
            }
        })
    }
}

fn global(module: &str, name: &str) -> Option<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("torch", storage) => Dtype::from_storage(storage).map(Global::Storage),
        _ => None,
    }
}

fn kind(n: &Node) -> &'static str {
    match n {
        Node::None => "None",
        Node::Bool(_) => "a bool",
        Node::Int(_) => "an int",
        Node::Float(_) => "a float",
        Node::Str(_) => "a str",
        Node::List(_) => "a list",
        Node::Tuple(_) => "a tuple",
        Node::Dict(_) => "a dict",
        Node::Global(_) => "a global",
        Node::Storage { .. } => "a storage",
        Node::Tensor(_) => "a tensor",
    }
}
