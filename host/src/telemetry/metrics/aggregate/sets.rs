//! Attribute sets: the values a point is keyed by, the set built or
//! borrowed, and how a measurement compares its set with a point's.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};

use super::OVERFLOW;

/// An attribute value a metric point is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// A string.
    Str(Cow<'static, str>),
    /// A whole number.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The string `text`: borrowed when it is one of the values host
    /// metrics take most (HTTP methods, URL schemes, protocol versions,
    /// loopback names), rather than copied for every measurement; any
    /// other copied. A `match`, which compares lengths before bytes.
    pub fn text(text: &str) -> Value {
        let common: &'static str = match text {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "CONNECT" => "CONNECT",
            "OPTIONS" => "OPTIONS",
            "TRACE" => "TRACE",
            "PATCH" => "PATCH",
            "_OTHER" => "_OTHER",
            "http" => "http",
            "https" => "https",
            "1.0" => "1.0",
            "1.1" => "1.1",
            "2" => "2",
            "3" => "3",
            "127.0.0.1" => "127.0.0.1",
            "localhost" => "localhost",
            _ => return Value::Str(Cow::Owned(text.to_string())),
        };
        Value::Str(Cow::Borrowed(common))
    }
}

/// A [`Value`] borrowed: what a measurement looks its point up by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a str),
    /// A whole number.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    pub(super) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(text) => ValueRef::Str(text),
            Value::Int(n) => ValueRef::Int(*n),
            Value::Bool(b) => ValueRef::Bool(*b),
        }
    }
}

impl ValueRef<'_> {
    pub(super) fn to_value(self) -> Value {
        match self {
            ValueRef::Str(text) => Value::text(text),
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Bool(b) => Value::Bool(b),
        }
    }
}

impl From<&'static str> for Value {
    fn from(value: &'static str) -> Self {
        Value::Str(Cow::Borrowed(value))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Str(Cow::Owned(value))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

/// Whether `a` and `b` are the same text: by where they point first (the
/// host's keys and its common values are the same constants every time),
/// then by their bytes, eight at a time, inline: the strings a measurement
/// compares are a few bytes to a few dozen, and take no call to `memcmp`
/// (about as many instructions either way; docs/metrics-logs.md, Cost).
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return true;
    }
    fn word(bytes: &[u8], at: usize) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_ne_bytes(word)
    }
    fn half(bytes: &[u8], at: usize) -> u32 {
        let mut half = [0; 4];
        half.copy_from_slice(&bytes[at..at + 4]);
        u32::from_ne_bytes(half)
    }
    if n < 4 {
        // The first, middle and last bytes are all of them.
        return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    }
    if n < 8 {
        // Two overlapping halves.
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // The last eight bytes, overlapping those compared when `n` is not a
    // multiple of eight.
    word(a, n - 8) == word(b, n - 8)
}

/// Whether `a` and `b` are the same value, strings by [`same_text`].
#[inline]
fn same_value(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Str(a), ValueRef::Str(b)) => same_text(a, b),
        (ValueRef::Int(a), ValueRef::Int(b)) => a == b,
        (ValueRef::Bool(a), ValueRef::Bool(b)) => a == b,
        _ => false,
    }
}

/// A point's attribute set: sorted by key, one value per key, so that the
/// same set in another order is the same point.
#[derive(Debug, Clone, Eq, Default)]
pub struct Attributes(Vec<(Cow<'static, str>, Value)>);

/// Equal sets have equal keys in the same order: a key is compared by
/// where it points first, as the host's keys are the same constants
/// every time, then by its text.
impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((ka, va), (kb, vb))| {
                same_value(va.as_ref(), vb.as_ref()) && same_text(ka, kb)
            })
    }
}

/// Keys and values, as `eq` compares them. (Hashing the values alone would
/// be cheaper, but a guest could then fill one bucket with sets that differ
/// only in their keys.) Three writes a pair: the key's bytes, the value's,
/// and one word of both lengths and the value's kind, which keeps where
/// each ends in the hash.
impl std::hash::Hash for Attributes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for (key, value) in &self.0 {
            hash_pair(state, key, value.as_ref());
        }
    }
}

pub(super) fn hash_pair<H: std::hash::Hasher>(state: &mut H, key: &str, value: ValueRef) {
    state.write(key.as_bytes());
    let (kind, length) = match value {
        ValueRef::Str(text) => {
            state.write(text.as_bytes());
            (0, text.len())
        }
        ValueRef::Int(n) => {
            state.write_i64(n);
            (1, 8)
        }
        ValueRef::Bool(b) => {
            state.write_u8(u8::from(b));
            (2, 1)
        }
    };
    state.write_u64(key.len() as u64 ^ (length as u64) << 32 ^ kind << 62);
}

/// A set borrowed, its keys the host's constants, sorted and distinct: a
/// measurement finds its point by it, hashed and compared as the
/// [`Attributes`] it stands for, and only a set not yet kept is copied.
#[derive(Debug, Clone, Copy)]
pub struct Pairs<'a>(pub &'a [(&'static str, ValueRef<'a>)]);

impl std::hash::Hash for Pairs<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for (key, value) in self.0 {
            hash_pair(state, key, *value);
        }
    }
}

/// A guest's set, borrowed from the guest's attributes: sorted by key and
/// distinct (see [`GuestPairs::canonical`]), hashed and compared as the
/// [`Attributes`] it stands for, and copied (keys too) only when it is
/// new. Its keys are the guest's text, not the host's constants.
#[derive(Debug, Clone, Copy)]
pub struct GuestPairs<'a>(pub &'a [(&'a str, ValueRef<'a>)]);

impl GuestPairs<'_> {
    /// Sorts `pairs` by key and keeps the last value of a key repeated
    /// (as [`Attributes::new`] does): the length of the set, at the front.
    pub fn canonical(pairs: &mut [(&str, ValueRef<'_>)]) -> usize {
        // Stable, and no allocation for the few pairs a guest may pass.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept = 0;
        for at in 0..pairs.len() {
            if pairs.get(at + 1).is_some_and(|next| next.0 == pairs[at].0) {
                continue;
            }
            pairs[kept] = pairs[at];
            kept += 1;
        }
        kept
    }
}

impl std::hash::Hash for GuestPairs<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for (key, value) in self.0 {
            hash_pair(state, key, *value);
        }
    }
}

impl From<&Pairs<'_>> for Attributes {
    fn from(pairs: &Pairs<'_>) -> Attributes {
        debug_assert!(
            pairs.0.windows(2).all(|w| w[0].0 < w[1].0),
            "keys not sorted"
        );
        Attributes(
            pairs
                .0
                .iter()
                .map(|(key, value)| (Cow::Borrowed(*key), value.to_value()))
                .collect(),
        )
    }
}

impl From<&GuestPairs<'_>> for Attributes {
    fn from(pairs: &GuestPairs<'_>) -> Attributes {
        Attributes(
            pairs
                .0
                .iter()
                .map(|(key, value)| (Cow::Owned(key.to_string()), value.to_value()))
                .collect(),
        )
    }
}

impl Attributes {
    /// The set of `pairs` (the last value of a key repeated wins).
    pub fn new(pairs: impl IntoIterator<Item = (Cow<'static, str>, Value)>) -> Attributes {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        if pairs.len() < 2 {
            return Attributes(pairs);
        }
        // Stable: among equal keys the last set stays last, and dedup keeps
        // the first of a run, so reverse around it.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Attributes(pairs)
    }

    /// The overflow set: `otel.metric.overflow=true`.
    pub(super) fn overflow() -> Attributes {
        Attributes(vec![(Cow::Borrowed(OVERFLOW), Value::Bool(true))])
    }

    /// The value of `key`, if set.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn to_proto(&self) -> Vec<ProtoKeyValue> {
        self.0
            .iter()
            .map(|(key, value)| ProtoKeyValue {
                key: key.to_string(),
                value: Some(AnyValue {
                    value: Some(match value {
                        Value::Str(s) => any_value::Value::StringValue(s.to_string()),
                        Value::Int(n) => any_value::Value::IntValue(*n),
                        Value::Bool(b) => any_value::Value::BoolValue(*b),
                    }),
                }),
                key_strindex: 0,
            })
            .collect()
    }
}

/// The set a measurement is made with: built, or borrowed.
#[derive(Debug)]
pub enum Key<'a> {
    /// A set built for it (a guest's attributes, moved in).
    Owned(Attributes),
    /// A set of the host's keys, borrowed.
    Borrowed(Pairs<'a>),
    /// A guest's set, borrowed.
    Guest(GuestPairs<'a>),
}

impl From<Attributes> for Key<'_> {
    fn from(attributes: Attributes) -> Self {
        Key::Owned(attributes)
    }
}

impl<'a> From<Pairs<'a>> for Key<'a> {
    fn from(pairs: Pairs<'a>) -> Self {
        Key::Borrowed(pairs)
    }
}

impl<'a> From<GuestPairs<'a>> for Key<'a> {
    fn from(pairs: GuestPairs<'a>) -> Self {
        Key::Guest(pairs)
    }
}

/// A set a point is looked up by, owned ([`Attributes`]) or borrowed
/// ([`Pairs`]): compared with a kept set and hashed as that set is, and
/// made into one only when it is new.
pub(super) trait Lookup: std::hash::Hash {
    /// Whether it is the set with no pairs.
    fn is_empty(&self) -> bool;
    /// Whether it is `set`.
    fn is(&self, set: &Attributes) -> bool;
    /// The set to keep.
    fn into_set(self) -> Attributes;
}

impl Lookup for Attributes {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn is(&self, set: &Attributes) -> bool {
        self == set
    }

    fn into_set(self) -> Attributes {
        self
    }
}

impl Lookup for Pairs<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As [`Attributes`]' `eq`.
    fn is(&self, set: &Attributes) -> bool {
        self.0.len() == set.0.len()
            && self
                .0
                .iter()
                .zip(&set.0)
                .all(|((ka, va), (kb, vb))| same_value(*va, vb.as_ref()) && same_text(ka, kb))
    }

    fn into_set(self) -> Attributes {
        Attributes::from(&self)
    }
}

impl Lookup for GuestPairs<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn is(&self, set: &Attributes) -> bool {
        self.0.len() == set.0.len()
            && self
                .0
                .iter()
                .zip(&set.0)
                .all(|((ka, va), (kb, vb))| same_value(*va, vb.as_ref()) && same_text(ka, kb))
    }

    fn into_set(self) -> Attributes {
        Attributes::from(&self)
    }
}
