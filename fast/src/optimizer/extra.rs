//! A parameter group's extra keys ([`Extra`]): the keys PyTorch keeps in a
//! group without interpreting them (an LR scheduler's `initial_lr`, a
//! user's note), in their order, each value as its JSON text
//! ([`ExtraValue`]).
//!
//! The text is kept as it was read or given, so a JSON state dict that is
//! loaded and saved again gives back the same keys, in the same order, with
//! the same numbers: `123456789012345678901234567890` stays an integer of
//! 30 digits and `1e-400` stays `1e-400`, where a `serde_json::Value` would
//! have made them `1.2345678901234568e29` and `0.0`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::ops::Index;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// One extra value: valid JSON text, kept verbatim.
///
/// Build one from a [`serde_json::Value`] (`.into()`, written compactly),
/// from a number, a string or a bool, or from JSON text
/// ([`from_json`](Self::from_json)); read it as text ([`json`](Self::json))
/// or as a `Value` ([`to_value`](Self::to_value)). Two values are equal when
/// their texts are.
///
/// ```
/// use adadelta::optimizer::ExtraValue;
/// let v = ExtraValue::from_json("123456789012345678901234567890")?;
/// assert_eq!(v.json(), "123456789012345678901234567890");
/// assert_eq!(ExtraValue::from(0.5).as_f64(), Some(0.5));
/// assert_eq!(ExtraValue::from(serde_json::json!({"a": [1, 2]})).json(), r#"{"a":[1,2]}"#);
/// assert!(ExtraValue::from_json("[1,").is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct ExtraValue(Box<RawValue>);

impl ExtraValue {
    /// The value whose JSON text is `text` (surrounding whitespace dropped).
    /// Errors if `text` is not one JSON value, or if an object in it has a
    /// key twice.
    ///
    /// ```
    /// use adadelta::optimizer::ExtraValue;
    /// assert_eq!(ExtraValue::from_json(" 1e-400 ")?.json(), "1e-400");
    /// let err = ExtraValue::from_json(r#"{"a": 1, "a": 2}"#).unwrap_err();
    /// assert!(err.to_string().starts_with("duplicate key \"a\""), "{err}");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(text.trim_matches(is_json_space).to_owned())?;
        ExtraValue::from_raw(raw).map_err(de::Error::custom)
    }

    /// A value read from a file, checked: `Err` says which key an object in
    /// it has twice, or that it is nested too deeply.
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Result<Self, String> {
        let v = ExtraValue(raw);
        let dup = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_str(v.json());
        match (KeyCheck(&dup).deserialize(&mut de), dup.into_inner()) {
            (Ok(()), _) => Ok(v),
            (Err(_), Some(k)) => Err(format!("duplicate key {}", quoted(&k))),
            // The text is valid JSON: the one other error is its depth (a
            // file's reader skips a raw value without counting it).
            (Err(_), None) => Err(format!("a value nested more than {DEPTH} levels deep")),
        }
    }

    /// The JSON text.
    ///
    /// ```
    /// assert_eq!(adadelta::optimizer::ExtraValue::from("x").json(), r#""x""#);
    /// ```
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The value as a [`serde_json::Value`]. Lossy where `Value` is: an
    /// integer beyond 64 bits becomes the nearest `f64`, and object keys
    /// are sorted.
    ///
    /// ```
    /// use adadelta::optimizer::ExtraValue;
    /// assert_eq!(ExtraValue::from_json("[1, true]")?.to_value(), serde_json::json!([1, true]));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.json()).expect("an ExtraValue holds valid JSON")
    }

    /// The value as an `f64`, if it is a JSON number (rounded to nearest,
    /// as Python's `float` of its text).
    ///
    /// ```
    /// use adadelta::optimizer::ExtraValue;
    /// assert_eq!(ExtraValue::from_json("1e-400")?.as_f64(), Some(0.0));
    /// assert_eq!(ExtraValue::from("1").as_f64(), None);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self.tree() {
            Tree::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The value's outer level: a scalar, or a list or object of values,
    /// each as its own text.
    pub(crate) fn tree(&self) -> Tree<'_> {
        let text = self.json();
        let valid = "an ExtraValue holds valid JSON";
        match text.as_bytes()[0] {
            b'[' => Tree::List(serde_json::from_str(text).expect(valid)),
            b'{' => Tree::Object(serde_json::from_str::<Entries>(text).expect(valid).0),
            b'"' => Tree::String(serde_json::from_str(text).expect(valid)),
            b't' => Tree::Bool(true),
            b'f' => Tree::Bool(false),
            b'n' => Tree::Null,
            _ => Tree::Number(text),
        }
    }
}

/// The deepest nesting a value may have: serde_json's recursion limit.
const DEPTH: usize = 128;

/// A key for a message: quoted, cut to a readable length.
fn quoted(key: &str) -> String {
    crate::checkpoint::excerpt(&format!("{key:?}"))
}

/// JSON's whitespace (RFC 8259, `ws`).
fn is_json_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The outer level of a JSON text, borrowing from it.
pub(crate) enum Tree<'a> {
    Null,
    Bool(bool),
    /// A number, as its text (an integer when it has no `.`, `e` or `E`).
    Number(&'a str),
    String(String),
    List(Vec<&'a RawValue>),
    /// An object's entries in their order.
    Object(Vec<(String, &'a RawValue)>),
}

/// Walks a JSON value, leaving in `.0` the first key that an object has
/// twice (and stopping there). Memory: the keys of the objects open on the
/// way down.
struct KeyCheck<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for KeyCheck<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyCheck<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(KeyCheck(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if let Some(k) = keys.replace(k) {
                *self.0.borrow_mut() = Some(k);
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(KeyCheck(self.0))?;
        }
        Ok(())
    }
}

/// An object's entries, in order.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'a>, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl fmt::Debug for ExtraValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl fmt::Display for ExtraValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl PartialEq for ExtraValue {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for ExtraValue {}

impl Serialize for ExtraValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl From<Value> for ExtraValue {
    fn from(v: Value) -> Self {
        ExtraValue(serde_json::value::to_raw_value(&v).expect("a Value always serializes"))
    }
}

/// `From` a type through its [`serde_json::Value`] (a non-finite `f64`
/// is `null`, as `Value` has it).
macro_rules! through_value {
    ($($t:ty),*) => {$(
        impl From<$t> for ExtraValue {
            fn from(x: $t) -> Self {
                Value::from(x).into()
            }
        }
    )*};
}

through_value!(f64, i64, i32, u64, bool, &str, String);

/// A group's extra keys, in order: PyTorch's group keys other than the
/// optimizer's own, kept verbatim.
///
/// Inserting a key that is there replaces its value in place; a new key
/// goes last. Two `Extra`s are equal when they hold the same keys in the
/// same order with the same texts. Lookups are linear: a group has a few
/// extra keys.
///
/// ```
/// use adadelta::optimizer::{Extra, ExtraValue};
/// let mut e = Extra::new();
/// e.insert("z", 1.0);
/// e.insert("a", ExtraValue::from_json("1e-400")?);
/// assert_eq!(e.insert("z", 2.0), Some(1.0.into()));
/// assert_eq!(e.keys().collect::<Vec<_>>(), ["z", "a"]);
/// assert_eq!(e["a"].json(), "1e-400");
/// assert_eq!(e.remove("z").and_then(|v| v.as_f64()), Some(2.0));
/// assert_eq!(e.len(), 1);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra(Vec<(String, ExtraValue)>);

impl Extra {
    /// No keys.
    ///
    /// ```
    /// assert!(adadelta::optimizer::Extra::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Extra(Vec::new())
    }

    /// The number of keys.
    ///
    /// ```
    /// let e: adadelta::optimizer::Extra = [("a", 1.0)].into_iter().collect();
    /// assert_eq!(e.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no key.
    ///
    /// ```
    /// assert!(adadelta::optimizer::Extra::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    ///
    /// ```
    /// let e: adadelta::optimizer::Extra = [("a", 1.0)].into_iter().collect();
    /// assert_eq!(e.get("a").and_then(|v| v.as_f64()), Some(1.0));
    /// assert!(e.get("b").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&ExtraValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is there.
    ///
    /// ```
    /// let e: adadelta::optimizer::Extra = [("a", 1.0)].into_iter().collect();
    /// assert!(e.contains_key("a") && !e.contains_key("b"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value` (in place if it is there, else last); returns
    /// the old value.
    ///
    /// ```
    /// let mut e = adadelta::optimizer::Extra::new();
    /// assert_eq!(e.insert("a", true), None);
    /// assert_eq!(e.insert("a", false), Some(true.into()));
    /// ```
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<ExtraValue>,
    ) -> Option<ExtraValue> {
        let (key, value) = (key.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, keeping the others' order; returns its value.
    ///
    /// ```
    /// let mut e: adadelta::optimizer::Extra = [("a", 1.0), ("b", 2.0)].into_iter().collect();
    /// assert_eq!(e.remove("a"), Some(1.0.into()));
    /// assert_eq!(e.remove("a"), None);
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<ExtraValue> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    /// The keys, in order.
    ///
    /// ```
    /// let e: adadelta::optimizer::Extra = [("b", 1.0), ("a", 2.0)].into_iter().collect();
    /// assert_eq!(e.keys().collect::<Vec<_>>(), ["b", "a"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The keys and values, in order.
    ///
    /// ```
    /// let e: adadelta::optimizer::Extra = [("a", 1.0)].into_iter().collect();
    /// let (k, v) = e.iter().next().unwrap();
    /// assert_eq!((k, v.json()), ("a", "1.0"));
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &ExtraValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Appends an entry read from a file, whose caller has checked that
    /// `key` is new (in a set of its own: [`contains_key`](Self::contains_key)
    /// is linear).
    pub(crate) fn push_new(&mut self, key: String, value: ExtraValue) {
        self.0.push((key, value));
    }
}

impl Index<&str> for Extra {
    type Output = ExtraValue;
    /// The value of `key`; panics if it is not there (as
    /// `serde_json::Map`'s index does not: use [`Extra::get`] for that).
    fn index(&self, key: &str) -> &ExtraValue {
        self.get(key)
            .unwrap_or_else(|| panic!("no extra key {key:?}"))
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a str, &'a ExtraValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, ExtraValue)>,
        fn(&'a (String, ExtraValue)) -> (&'a str, &'a ExtraValue),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<K: Into<String>, V: Into<ExtraValue>> FromIterator<(K, V)> for Extra {
    /// The entries in order; a key given twice keeps its first place and
    /// its last value.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut e = Extra::new();
        for (k, v) in iter {
            e.insert(k, v);
        }
        e
    }
}

impl Serialize for Extra {
    /// A JSON object, in order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_f64_and_key_order_survive_a_round_trip_through_text() {
        let text = r#"{"z":123456789012345678901234567890,"a":[1e-400,1.50],"m":{"y":1,"b":2}}"#;
        let v = ExtraValue::from_json(text).unwrap();
        assert_eq!(v.json(), text);
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }

    #[test]
    fn a_key_twice_in_a_nested_object_is_refused() {
        let err = ExtraValue::from_json(r#"[{"k": {"x": 1, "x": 2}}]"#).unwrap_err();
        assert_eq!(err.to_string(), "duplicate key \"x\"");
        assert!(ExtraValue::from_json(r#"[{"x": 1}, {"x": 2}]"#).is_ok());
    }

    #[test]
    fn the_tree_keeps_the_text_of_numbers_and_the_order_of_keys() {
        let v = ExtraValue::from_json("-12345678901234567890123").unwrap();
        assert!(matches!(v.tree(), Tree::Number("-12345678901234567890123")));
        let v = ExtraValue::from_json(r#"{"b": 1e-400, "a": [2]}"#).unwrap();
        let Tree::Object(entries) = v.tree() else {
            panic!("an object")
        };
        let got: Vec<_> = entries.iter().map(|(k, x)| (k.as_str(), x.get())).collect();
        assert_eq!(got, [("b", "1e-400"), ("a", "[2]")]);
    }
}
