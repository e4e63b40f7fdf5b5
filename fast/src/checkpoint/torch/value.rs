//! [`Value`]: what a `torch.save` file holds, as a tree: Python's `None`,
//! booleans, integers, floats, strings, lists, tuples, dicts, and
//! tensors ([`TensorInfo`] when read, [`AnyTensorRef`] when written).

use std::borrow::Cow;
use std::fmt;

use crate::checkpoint::{Stored, TensorRef};

/// The element type of a tensor in a `torch.save` file (its storage class).
/// [`Dtype::Float32`], [`Dtype::Float64`], [`Dtype::BFloat16`] and
/// [`Dtype::Float16`] tensors are read and written (the element types that
/// are [`Stored`]: `f32`, `f64`, `half::bf16` and `half::f16`); the others
/// are recognised so that an error can name them.
///
/// ```
/// use adadelta::checkpoint::{torch::Dtype, Stored};
/// assert_eq!(<adadelta::half::bf16 as Stored>::TORCH, Dtype::BFloat16);
/// assert_eq!(Dtype::BFloat16.to_string(), "torch.bfloat16");
/// assert_eq!((Dtype::Float16.storage_class(), Dtype::Float16.size()), ("HalfStorage", 2));
/// ```
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

    /// The storage class name of this dtype in `torch.save` files, as in
    /// `torch.DoubleStorage`.
    ///
    /// ```
    /// use adadelta::checkpoint::torch::Dtype;
    /// assert_eq!(Dtype::Float64.storage_class(), "DoubleStorage");
    /// ```
    pub fn storage_class(self) -> &'static str {
        Dtype::ALL
            .iter()
            .find(|(d, _)| *d == self)
            .map(|(_, n)| *n)
            .expect("every dtype is in Dtype::ALL")
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

/// A tensor to write to a `torch.save` file: a borrowed [`TensorRef`] of
/// any element type the formats store ([`Stored`]: `f32`, `f64`,
/// `half::bf16`, `half::f16`), tagged
/// with its [`Dtype`], so that one [`Value`] tree can hold tensors of
/// several dtypes, as PyTorch's float64 optimizer state dict does (a
/// float32 `step`, float64 `square_avg` and `acc_delta`). Made from a
/// `TensorRef` with `From`; nothing is copied.
///
/// ```
/// use adadelta::checkpoint::torch::{AnyTensorRef, Dtype};
/// use adadelta::checkpoint::TensorRef;
/// let w = [0.5_f64, -1.0, 2.0];
/// let t = AnyTensorRef::from(TensorRef { shape: vec![3].into(), data: &w });
/// assert_eq!((t.dtype(), t.shape(), t.len()), (Dtype::Float64, &[3][..], 3));
/// assert_eq!(t.data::<f64>(), Some(&w[..])); // the same memory
/// assert_eq!(t.data::<f32>(), None);
/// ```
#[derive(Clone)]
pub struct AnyTensorRef<'a> {
    shape: Cow<'a, [usize]>,
    dtype: Dtype,
    /// The elements' bytes, in this machine's byte order; `dtype.size()`
    /// bytes each, aligned for their element type.
    bytes: &'a [u8],
}

impl<'a> AnyTensorRef<'a> {
    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape (a writer refuses it if its product is not
    /// [`len`](Self::len)).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    /// Whether there is no element.
    ///
    /// ```
    /// use adadelta::checkpoint::{torch::AnyTensorRef, TensorRef};
    /// assert!(AnyTensorRef::from(TensorRef::<f32> { shape: vec![0].into(), data: &[] }).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The elements, if they are of the element type `E`.
    pub fn data<E: Stored>(&self) -> Option<&'a [E]> {
        if self.dtype != E::TORCH {
            return None;
        }
        bytemuck::try_cast_slice(self.bytes).ok()
    }

    /// The elements' bytes in this machine's byte order.
    pub(crate) fn native_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a, E: Stored> From<TensorRef<'a, E>> for AnyTensorRef<'a> {
    fn from(t: TensorRef<'a, E>) -> Self {
        AnyTensorRef {
            shape: t.shape,
            dtype: E::TORCH,
            bytes: bytemuck::cast_slice(t.data),
        }
    }
}

impl fmt::Debug for AnyTensorRef<'_> {
    /// The dtype, the shape and the number of elements (not the elements).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyTensorRef")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("len", &self.len())
            .finish()
    }
}

/// A Python value from a `torch.save` file, or to write to one. `T` is
/// what a tensor is: [`TensorInfo`] when read, an [`AnyTensorRef`] when
/// written.
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
