//! Writing `data.pkl`: a [`Value`] as pickle protocol 2, with the opcodes
//! and globals `torch.save` uses, so that `torch.load(weights_only=True)`
//! reads it. Tensors become `torch._utils._rebuild_tensor_v2` of a
//! persistent storage id of their dtype's storage class; their data is
//! written by the caller, in the order [`pickle`] returns them.

use super::value::{AnyTensorRef, Value};
use crate::checkpoint::CheckpointError;

/// `value` as pickle bytes, and its tensors in storage-key order (storage
/// `"0"` first).
pub(crate) fn pickle<'v, 'a>(
    value: &'v Value<AnyTensorRef<'a>>,
) -> Result<(Vec<u8>, Vec<&'v AnyTensorRef<'a>>), CheckpointError> {
    let mut w = Writer {
        out: vec![0x80, 2],
        tensors: Vec::new(),
    };
    w.value(value, 0)?;
    w.out.push(b'.');
    Ok((w.out, w.tensors))
}

struct Writer<'v, 'a> {
    out: Vec<u8>,
    tensors: Vec<&'v AnyTensorRef<'a>>,
}

impl<'v, 'a> Writer<'v, 'a> {
    /// A `str` (BINUNICODE: `weights_only` reads no longer form, so a
    /// string of 4 GiB or more is refused).
    fn str(&mut self, s: &str) -> Result<(), CheckpointError> {
        let n = u32::try_from(s.len())
            .map_err(|_| CheckpointError::format("a string of 4 GiB or more cannot be pickled"))?;
        self.out.push(b'X');
        self.out.extend_from_slice(&n.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn int(&mut self, i: i64) {
        match i {
            0..=0xff => self.out.extend_from_slice(&[b'K', i as u8]),
            0x100..=0xffff => {
                self.out.push(b'M');
                self.out.extend_from_slice(&(i as u16).to_le_bytes());
            }
            _ if i32::try_from(i).is_ok() => {
                self.out.push(b'J');
                self.out.extend_from_slice(&(i as i32).to_le_bytes());
            }
            _ => {
                // LONG1: the shortest little-endian two's complement.
                let b = i.to_le_bytes();
                let mut n = 8;
                while n > 1 {
                    let (last, prev) = (b[n - 1], b[n - 2]);
                    if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                        n -= 1;
                    } else {
                        break;
                    }
                }
                self.out.extend_from_slice(&[0x8a, n as u8]);
                self.out.extend_from_slice(&b[..n]);
            }
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }

    fn tuple_of_ints(&mut self, v: &[usize]) -> Result<(), CheckpointError> {
        let ints = v
            .iter()
            .map(|&d| i64::try_from(d).map_err(|_| CheckpointError::format("a size beyond i64")))
            .collect::<Result<Vec<_>, _>>()?;
        match ints.len() {
            0 => self.out.push(b')'),
            1..=3 => {
                ints.iter().for_each(|&i| self.int(i));
                self.out.push(0x84 + ints.len() as u8);
            }
            _ => {
                self.out.push(b'(');
                ints.iter().for_each(|&i| self.int(i));
                self.out.push(b't');
            }
        }
        Ok(())
    }

    fn tensor(&mut self, t: &'v AnyTensorRef<'a>) -> Result<(), CheckpointError> {
        let shape = t.shape();
        if crate::shape::numel(shape) != Some(t.len()) {
            return Err(CheckpointError::format(format!(
                "a tensor of shape {shape:?} cannot hold {} elements",
                t.len()
            )));
        }
        let key = self.tensors.len().to_string();
        self.tensors.push(t);
        let mut stride = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1].max(1);
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        // The persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel)
        self.out.push(b'(');
        self.str("storage")?;
        self.global("torch", t.dtype().storage_class());
        self.str(&key)?;
        self.str("cpu")?;
        self.int(t.len() as i64);
        self.out.push(b't');
        self.out.push(b'Q');
        self.int(0); // storage offset
        self.tuple_of_ints(shape)?;
        self.tuple_of_ints(&stride)?;
        self.out.push(0x89); // requires_grad = False
        self.global("collections", "OrderedDict");
        self.out.push(b')');
        self.out.push(b'R'); // backward hooks: OrderedDict()
        self.out.push(b't');
        self.out.push(b'R');
        Ok(())
    }

    fn value(
        &mut self,
        v: &'v Value<AnyTensorRef<'a>>,
        depth: usize,
    ) -> Result<(), CheckpointError> {
        if depth > super::unpickle::MAX_DEPTH {
            return Err(CheckpointError::format(
                "a value nested too deep to be read back",
            ));
        }
        match v {
            Value::None => self.out.push(b'N'),
            Value::Bool(true) => self.out.push(0x88),
            Value::Bool(false) => self.out.push(0x89),
            Value::Int(i) => self.int(*i),
            Value::Float(x) => {
                self.out.push(b'G');
                self.out.extend_from_slice(&x.to_be_bytes());
            }
            Value::Str(s) => self.str(s)?,
            Value::List(items) => {
                self.out.push(b']');
                if !items.is_empty() {
                    self.out.push(b'(');
                    for x in items {
                        self.value(x, depth + 1)?;
                    }
                    self.out.push(b'e');
                }
            }
            Value::Tuple(items) => {
                self.out.push(b'(');
                for x in items {
                    self.value(x, depth + 1)?;
                }
                self.out.push(b't');
            }
            Value::Dict(items) => {
                self.out.push(b'}');
                if !items.is_empty() {
                    self.out.push(b'(');
                    for (k, x) in items {
                        self.value(k, depth + 1)?;
                        self.value(x, depth + 1)?;
                    }
                    self.out.push(b'u');
                }
            }
            Value::Tensor(t) => self.tensor(t)?,
        }
        Ok(())
    }
}
