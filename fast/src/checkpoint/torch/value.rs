//! [`Value`]: what a `torch.save` file holds, as a tree: Python's `None`,
//! booleans, integers, floats, strings, lists, tuples, dicts, and
//! tensors.

use std::fmt;

/// The element type of a tensor in a `torch.save` file (its storage class).
/// Only [`Dtype::Float32`] tensors can become an optimizer's state or a
/// parameter today; the others are recognised so that an error can name
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// `torch.float32` (`FloatStorage`).
    Float32,
    /// `torch.float64` (`DoubleStorage`).
    Float64,
    /// `torch.float16` (`HalfStorage`).
    Float16,
    /// `torch.bfloat16` (`BFloat16Storage`).
    BFloat16,
    /// `torch.complex64` (`ComplexFloatStorage`).
    Complex64,
    /// `torch.complex128` (`ComplexDoubleStorage`).
    Complex128,
    /// `torch.int64` (`LongStorage`).
    Int64,
    /// `torch.int32` (`IntStorage`).
    Int32,
    /// `torch.int16` (`ShortStorage`).
    Int16,
    /// `torch.int8` (`CharStorage`).
    Int8,
    /// `torch.uint8` (`ByteStorage`).
    UInt8,
    /// `torch.bool` (`BoolStorage`).
    Bool,
}

impl Dtype {
    /// Every dtype, with its storage class name in `torch.save` files.
    const ALL: [(Dtype, &'static str); 12] = [
        (Dtype::Float32, "FloatStorage"),
        (Dtype::Float64, "DoubleStorage"),
        (Dtype::Float16, "HalfStorage"),
        (Dtype::BFloat16, "BFloat16Storage"),
        (Dtype::Complex64, "ComplexFloatStorage"),
        (Dtype::Complex128, "ComplexDoubleStorage"),
        (Dtype::Int64, "LongStorage"),
        (Dtype::Int32, "IntStorage"),
        (Dtype::Int16, "ShortStorage"),
        (Dtype::Int8, "CharStorage"),
        (Dtype::UInt8, "ByteStorage"),
        (Dtype::Bool, "BoolStorage"),
    ];

    /// The dtype of a storage class name (`"FloatStorage"`).
    pub(crate) fn from_storage(name: &str) -> Option<Dtype> {
        Dtype::ALL.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }

    /// Bytes per element.
    ///
    /// ```
    /// assert_eq!(adadelta::checkpoint::torch::Dtype::Float32.size(), 4);
    /// ```
    pub fn size(self) -> usize {
        match self {
            Dtype::Float64 | Dtype::Int64 | Dtype::Complex64 => 8,
            Dtype::Complex128 => 16,
            Dtype::Float32 | Dtype::Int32 => 4,
            Dtype::Float16 | Dtype::BFloat16 | Dtype::Int16 => 2,
            Dtype::Int8 | Dtype::UInt8 | Dtype::Bool => 1,
        }
    }
}

impl fmt::Display for Dtype {
    /// PyTorch's name, e.g. `torch.float32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
            Dtype::Float16 => "float16",
            Dtype::BFloat16 => "bfloat16",
            Dtype::Complex64 => "complex64",
            Dtype::Complex128 => "complex128",
            Dtype::Int64 => "int64",
            Dtype::Int32 => "int32",
            Dtype::Int16 => "int16",
            Dtype::Int8 => "int8",
            Dtype::UInt8 => "uint8",
            Dtype::Bool => "bool",
        };
        write!(f, "torch.{name}")
    }
}

/// A tensor of a `torch.save` file, as its pickle describes it: a view
/// (`offset`, `shape`, `stride`, in elements) of a storage (the archive
/// entry `data/<storage>`). Its elements are read on demand
/// ([`TorchFile::tensor`](super::TorchFile::tensor)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The element type.
    pub dtype: Dtype,
    /// The shape (empty for a 0-dim tensor).
    pub shape: Vec<usize>,
    /// The strides, in elements.
    pub stride: Vec<usize>,
    /// The first element's position in the storage.
    pub offset: usize,
    /// The storage's key: its archive entry is `data/<storage>`.
    pub storage: String,
    /// The storage's length in elements.
    pub storage_len: usize,
    /// The device PyTorch saved it from (`"cpu"`, `"cuda:0"`); the data is
    /// the same bytes either way.
    pub location: String,
}

impl TensorInfo {
    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the elements are the storage's `offset..offset + numel` in
    /// row-major order.
    pub fn is_contiguous(&self) -> bool {
        let mut expect = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.stride).rev() {
            if d != 1 && s != expect {
                return false;
            }
            expect = expect.saturating_mul(d);
        }
        true
    }
}

/// A Python value from a `torch.save` file, or to write to one. `T` is
/// what a tensor is: [`TensorInfo`] when read, a
/// [`TensorRef`](crate::checkpoint::TensorRef) when written.
///
/// ```
/// use adadelta::checkpoint::torch::Value;
/// let epoch: Value = Value::Int(3);
/// let d: Value = Value::dict([("epoch", epoch), ("name", Value::from("run-7"))]);
/// assert_eq!(d.get("epoch"), Some(&Value::Int(3)));
/// assert_eq!(d.get("name").and_then(Value::as_str), Some("run-7"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value<T = TensorInfo> {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` (one that fits in 64 bits).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `list`.
    List(Vec<Value<T>>),
    /// A `tuple`.
    Tuple(Vec<Value<T>>),
    /// A `dict` or `collections.OrderedDict`, in insertion order.
    Dict(Vec<(Value<T>, Value<T>)>),
    /// A tensor (or an `nn.Parameter`, which is saved as its tensor).
    Tensor(T),
}

impl<T> Value<T> {
    /// A dict with string keys.
    pub fn dict<K: Into<String>>(items: impl IntoIterator<Item = (K, Value<T>)>) -> Self {
        Value::Dict(
            items
                .into_iter()
                .map(|(k, v)| (Value::Str(k.into()), v))
                .collect(),
        )
    }

    /// The value under the string key `key`, if this is a dict that has it.
    pub fn get(&self, key: &str) -> Option<&Value<T>> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The same value with every tensor mapped by `f`; the first error of
    /// `f` stops it.
    ///
    /// ```
    /// use adadelta::checkpoint::torch::Value;
    /// let v: Value<u8> = Value::List(vec![Value::Tensor(1), Value::Int(2)]);
    /// let w: Value<u16> = v.try_map_tensors(&mut |t| Ok::<_, ()>(u16::from(t) * 10)).unwrap();
    /// assert_eq!(w, Value::List(vec![Value::Tensor(10), Value::Int(2)]));
    /// ```
    pub fn try_map_tensors<U, E>(
        self,
        f: &mut impl FnMut(T) -> Result<U, E>,
    ) -> Result<Value<U>, E> {
        Ok(match self {
            Value::None => Value::None,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x),
            Value::Str(s) => Value::Str(s),
            Value::List(v) => Value::List(map_all(v, f)?),
            Value::Tuple(v) => Value::Tuple(map_all(v, f)?),
            Value::Dict(items) => Value::Dict(
                items
                    .into_iter()
                    .map(|(k, v)| Ok((k.try_map_tensors(f)?, v.try_map_tensors(f)?)))
                    .collect::<Result<_, E>>()?,
            ),
            Value::Tensor(t) => Value::Tensor(f(t)?),
        })
    }

    /// A short description of the value's kind, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Dict(_) => "a dict",
            Value::Tensor(_) => "a tensor",
        }
    }
}

fn map_all<T, U, E>(
    v: Vec<Value<T>>,
    f: &mut impl FnMut(T) -> Result<U, E>,
) -> Result<Vec<Value<U>>, E> {
    v.into_iter().map(|x| x.try_map_tensors(f)).collect()
}

impl<T> From<&str> for Value<T> {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl<T> From<i64> for Value<T> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl<T> From<f64> for Value<T> {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

impl<T> From<bool> for Value<T> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
