//! The host's own aggregation: sums and histograms keyed by attribute set,
//! each instrument bounded to [`CARDINALITY_LIMIT`] attribute sets.
//! Histograms are explicit-bucket (each bucket keeping one exemplar, chosen
//! uniformly among the measurements of an export interval that fell in it)
//! or base-2 exponential (`exponential`, up to 20 exemplars a point), as
//! `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` says; which
//! measurements may become exemplars is `OTEL_METRICS_EXEMPLAR_FILTER`'s.
//!
//! Why not the SDK's: opentelemetry-rust 0.33 collects no exemplars (its
//! issue #3369), and a histogram point that cannot lead to a trace is half
//! of what this host's metrics are for. The instruments are few and known,
//! so the aggregation is small. An instrument keeps its points in parts,
//! one per recording thread, each behind its own mutex, held for a look-up
//! and a few additions per measurement, never across an export: two
//! workers recording the same set would otherwise pass its cache lines
//! back and forth on every request, which cost more than all the rest of
//! a measurement. Collection merges the parts (cloned out, or taken under
//! delta). A measurement first compares its set with the one its part
//! found last (one thread records the same set over and over); only
//! another set is hashed, with foldhash, seeded per process (SipHash was
//! the largest single cost of recording), and looked up in the part's
//! index. A measurement of the host's own instruments looks its point up
//! by a borrowed set ([`Pairs`]): only a set not seen before is copied.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as ProtoExemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram as ProtoHistogram, HistogramDataPoint, Metric,
    NumberDataPoint, Sum as ProtoSum, exemplar, metric, number_data_point,
};

use super::exponential::{Exponential, Reservoir, xorshift};
use crate::telemetry::config::{ExemplarFilter, HistogramAggregation};

/// Attribute sets one instrument keeps, at most, the overflow set included
/// (the specification's default cardinality limit).
pub const CARDINALITY_LIMIT: usize = 2000;
/// The attribute of the one point that gathers every measurement past the
/// cardinality limit, as the specification names it.
pub const OVERFLOW: &str = "otel.metric.overflow";

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
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(text) => ValueRef::Str(text),
            Value::Int(n) => ValueRef::Int(*n),
            Value::Bool(b) => ValueRef::Bool(*b),
        }
    }
}

impl ValueRef<'_> {
    fn to_value(self) -> Value {
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

/// A point's attribute set: sorted by key, one value per key, so that the
/// same set in another order is the same point.
#[derive(Debug, Clone, Eq, Default)]
pub struct Attributes(Vec<(Cow<'static, str>, Value)>);

/// Equal sets have equal keys in the same order: a key is compared by
/// where it points first, as the host's keys are the same constants
/// every time, then by its text.
impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        fn same_key(a: &str, b: &str) -> bool {
            std::ptr::eq(a, b) || a == b
        }
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((ka, va), (kb, vb))| va == vb && same_key(ka, kb))
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

fn hash_pair<H: std::hash::Hasher>(state: &mut H, key: &str, value: ValueRef) {
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
    fn overflow() -> Attributes {
        Attributes(vec![(Cow::Borrowed(OVERFLOW), Value::Bool(true))])
    }

    /// The value of `key`, if set.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn to_proto(&self) -> Vec<ProtoKeyValue> {
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

/// What an instrument is called and measures.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// The instrument's name (`http.server.request.duration`).
    pub name: Cow<'static, str>,
    /// Its unit, UCUM (`s`, `By`, `{request}`).
    pub unit: Cow<'static, str>,
    /// One sentence.
    pub description: Cow<'static, str>,
}

impl Descriptor {
    /// A descriptor of static strings.
    pub const fn of(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        Descriptor {
            name: Cow::Borrowed(name),
            unit: Cow::Borrowed(unit),
            description: Cow::Borrowed(description),
        }
    }
}

/// The span a measurement was made in: its ids, and whether it was
/// sampled (what the `trace_based` exemplar filter asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
    /// Whether the span was sampled.
    pub sampled: bool,
}

impl SpanRef {
    /// The span `context` names, if it is valid (sampled or not).
    pub fn of(context: &SpanContext) -> Option<SpanRef> {
        context.is_valid().then(|| SpanRef {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        })
    }
}

/// How a histogram aggregates, and which measurements may be its
/// exemplars; the same for every histogram of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramOptions {
    /// `OTEL_METRICS_EXEMPLAR_FILTER`.
    pub filter: ExemplarFilter,
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`.
    pub aggregation: HistogramAggregation,
}

impl Default for HistogramOptions {
    /// The specification's defaults: `trace_based`, explicit buckets.
    fn default() -> Self {
        HistogramOptions {
            filter: ExemplarFilter::TraceBased,
            aggregation: HistogramAggregation::ExplicitBucket,
        }
    }
}

/// A measurement kept as an exemplar.
#[derive(Debug, Clone, Copy)]
struct Exemplar {
    value: f64,
    time: u64,
    /// The span it was made in; `None` outside any span (kept only by
    /// `always_on`), exported without ids.
    span: Option<SpanRef>,
}

impl Exemplar {
    fn to_proto(self) -> ProtoExemplar {
        ProtoExemplar {
            filtered_attributes: Vec::new(),
            time_unix_nano: self.time,
            // The specification's exemplar carries "the associated trace id
            // and span id of the active Span", sampled or not: under
            // `always_on` an unsampled span's ids are kept too.
            span_id: self.span.map(|s| s.span_id.to_vec()).unwrap_or_default(),
            trace_id: self.span.map(|s| s.trace_id.to_vec()).unwrap_or_default(),
            value: Some(exemplar::Value::AsDouble(self.value)),
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
trait Lookup: std::hash::Hash {
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

    /// As [`Attributes`]' `eq`: keys compared by where they point first.
    fn is(&self, set: &Attributes) -> bool {
        self.0.len() == set.0.len()
            && self.0.iter().zip(&set.0).all(|((ka, va), (kb, vb))| {
                *va == vb.as_ref() && (std::ptr::eq(*ka, &**kb) || *ka == kb)
            })
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
                .all(|((ka, va), (kb, vb))| *va == vb.as_ref() && *ka == kb)
    }

    fn into_set(self) -> Attributes {
        Attributes::from(&self)
    }
}

/// Points keyed by attribute set, bounded, with the time they count from.
/// The point of the empty set, which most of the sandbox's instruments
/// record into, is kept beside the others: no hashing for it. The others
/// lie in a vector, in the order their sets came, found by an index of
/// their places, and a measurement first compares its set with the one
/// found last: one thread records the same set over and over, and that
/// comparison costs less than hashing the set and probing the index.
#[derive(Debug)]
struct Points<P> {
    /// Every point but the empty set's, with its set; a point keeps its
    /// place until the points are taken (then all are replaced).
    sets: Vec<(Attributes, P)>,
    /// The places in `sets`, by the hash of their set.
    index: hashbrown::HashTable<usize>,
    /// foldhash's fast hasher, randomly seeded, so that a guest choosing
    /// attribute values cannot aim at one bucket of `index`.
    hasher: foldhash::fast::RandomState,
    /// The place in `sets` of the set found last.
    last: Option<usize>,
    empty: Option<P>,
    start: u64,
}

impl<P> Points<P> {
    fn new() -> Self {
        Points {
            sets: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            last: None,
            empty: None,
            start: now_nanos(),
        }
    }

    /// The point of `set`, made with `new` if it is not there yet; past
    /// the cardinality limit, the overflow point.
    fn entry(&mut self, set: impl Lookup, new: impl FnOnce() -> P) -> &mut P {
        if set.is_empty() {
            return self.empty.get_or_insert_with(new);
        }
        let at = match self.last {
            Some(at) if self.sets.get(at).is_some_and(|(kept, _)| set.is(kept)) => at,
            _ => {
                let at = self.place(set, new);
                self.last = Some(at);
                at
            }
        };
        &mut self.sets[at].1
    }

    /// The place of `set`'s point, found by its hash, or made with `new`:
    /// past the cardinality limit, the overflow point's.
    fn place(&mut self, set: impl Lookup, new: impl FnOnce() -> P) -> usize {
        if let Some(at) = self.find(&set) {
            return at;
        }
        if !self.full() {
            return self.insert(set.into_set(), new());
        }
        let overflow = Pairs(&[(OVERFLOW, ValueRef::Bool(true))]);
        match self.find(&overflow) {
            Some(at) => at,
            None => self.insert(Attributes::overflow(), new()),
        }
    }

    /// The place of `set`'s point, if it has one.
    fn find(&self, set: &impl Lookup) -> Option<usize> {
        let sets = &self.sets;
        self.index
            .find(self.hasher.hash_one(set), |&at| set.is(&sets[at].0))
            .copied()
    }

    /// Keeps `point` for `set`, not kept yet; its place.
    fn insert(&mut self, set: Attributes, point: P) -> usize {
        let at = self.sets.len();
        let hash = self.hasher.hash_one(&set);
        self.sets.push((set, point));
        let (sets, hasher) = (&self.sets, &self.hasher);
        self.index
            .insert_unique(hash, at, |&at| hasher.hash_one(&sets[at].0));
        at
    }

    /// Whether a new set would pass the cardinality limit: every place
    /// but the overflow point's is taken.
    fn full(&self) -> bool {
        let held = self.sets.len() + usize::from(self.empty.is_some());
        held >= CARDINALITY_LIMIT - 1
            && held
                - usize::from(
                    self.find(&Pairs(&[(OVERFLOW, ValueRef::Bool(true))]))
                        .is_some(),
                )
                >= CARDINALITY_LIMIT - 1
    }

    /// The point of `key`, however it is given.
    fn entry_of(&mut self, key: Key, new: impl FnOnce() -> P) -> &mut P {
        match key {
            Key::Owned(attributes) => self.entry(attributes, new),
            Key::Borrowed(pairs) => self.entry(pairs, new),
            Key::Guest(pairs) => self.entry(pairs, new),
        }
    }

    /// Every point, each with its attribute set, as `read` makes it.
    fn read<T>(&mut self, mut read: impl FnMut(&mut P) -> T) -> Vec<(Attributes, T)> {
        let empty = self
            .empty
            .as_mut()
            .map(|p| (Attributes::default(), read(p)));
        empty
            .into_iter()
            .chain(self.sets.iter_mut().map(|(k, v)| (k.clone(), read(v))))
            .collect()
    }

    /// Every point, taken: the next point of a set counts from now, in a
    /// place of its own (the set found last is forgotten with the rest).
    fn take(&mut self) -> (u64, Vec<(Attributes, P)>) {
        let taken = std::mem::replace(self, Points::new());
        let empty = taken.empty.map(|p| (Attributes::default(), p));
        (taken.start, empty.into_iter().chain(taken.sets).collect())
    }
}

/// An instrument's points in parts, one for each of a few threads: a
/// thread records into its own, so that two workers recording the same
/// set do not pass the point's cache lines back and forth (that, not the
/// arithmetic, was most of a measurement's time). Collection merges the
/// parts, the cardinality limit applied to the merged points.
#[derive(Debug)]
struct Sharded<P> {
    shards: Box<[Shard<P>]>,
}

/// One part, alone on its cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Shard<P>(Mutex<Points<P>>);

/// The part a thread records into (of `shards`): threads are numbered as
/// they first record, and the parts are twice the processors (at least 2, at most
/// 32), so that the runtime's workers, which record first, each have one.
pub fn shard_of(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static THREAD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    THREAD.with(|n| *n) % shards
}

/// The parts an instrument (or the log queue) keeps: twice the
/// processors, at least 2, at most 32.
pub fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let processors = std::thread::available_parallelism().map_or(1, |n| n.get());
        (2 * processors).clamp(2, 32)
    })
}

impl<P> Sharded<P> {
    fn new() -> Self {
        Sharded {
            shards: (0..shard_count())
                .map(|_| Shard(Mutex::new(Points::new())))
                .collect(),
        }
    }

    /// This thread's part.
    fn local(&self) -> Option<std::sync::MutexGuard<'_, Points<P>>> {
        self.shards[shard_of(self.shards.len())].0.lock().ok()
    }

    /// Every point, the parts merged with `merge`: read with `read`
    /// (cumulative) or taken (delta); with the time they count from.
    fn collect(
        &self,
        collect: Collect,
        mut read: impl FnMut(&mut P) -> P,
        merge: impl Fn(&mut P, P),
    ) -> (u64, Vec<(Attributes, P)>) {
        let mut start = u64::MAX;
        let mut merged = Points::<P>::new();
        for shard in &self.shards {
            let Ok(mut points) = shard.0.lock() else {
                continue;
            };
            let (from, part) = match collect {
                Collect::Cumulative => (points.start, points.read(&mut read)),
                Collect::Delta => points.take(),
            };
            drop(points);
            start = start.min(from);
            for (attributes, point) in part {
                let mut point = Some(point);
                let at = merged.entry(attributes, || point.take().expect("taken once"));
                if let Some(point) = point {
                    merge(at, point);
                }
            }
        }
        (start.min(merged.start), merged.take().1)
    }
}

/// How collection treats the points it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Kept: the next collection counts from the same start.
    Cumulative,
    /// Taken: the next collection counts from now.
    Delta,
}

impl Collect {
    fn temporality(self) -> i32 {
        match self {
            Collect::Cumulative => AggregationTemporality::Cumulative as i32,
            Collect::Delta => AggregationTemporality::Delta as i32,
        }
    }
}

/// A counter: a monotonic sum of whole numbers.
#[derive(Debug)]
pub struct Sum {
    descriptor: Descriptor,
    points: Sharded<i64>,
}

impl Sum {
    /// A counter: only ever adds.
    pub fn counter(descriptor: Descriptor) -> Sum {
        Sum {
            descriptor,
            points: Sharded::new(),
        }
    }

    /// Adds `value` to the point of `attributes` (a negative value is
    /// ignored, as the API says of counters).
    pub fn add<'a>(&self, value: i64, attributes: impl Into<Key<'a>>) {
        if value < 0 {
            return;
        }
        if let Some(mut points) = self.points.local() {
            *points.entry_of(attributes.into(), || 0) += value;
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        let now = now_nanos();
        let (start, points) = self.points.collect(collect, |v| *v, |a, b| *a += b);
        if points.is_empty() {
            return None;
        }
        Some(sum_metric(
            &self.descriptor,
            points,
            start,
            now,
            collect,
            true,
        ))
    }
}

/// An up-down counter over attribute sets known when it is made, a few at
/// most: one atomic level per set in each thread's part (as [`Sharded`]
/// numbers them), so that a request adds and subtracts with no lock, no
/// hashing, no allocation and no cache line another processor writes too;
/// a set's level is the sum of its parts. A set's point is exported from
/// its first change on, always cumulative (a level is not a rate, and the
/// specification keeps up-down counters cumulative).
#[derive(Debug)]
pub struct Levels {
    descriptor: Descriptor,
    sets: Vec<Attributes>,
    /// The parts, one after the other, each `chunks` chunks long: set `i`
    /// of part `p` is level `i % 16` of chunk `p * chunks + i / 16`.
    parts: Vec<LevelChunk>,
    /// Chunks per part.
    chunks: usize,
    /// Whether each set has changed yet (written once, then only read).
    touched: Vec<AtomicBool>,
    start: u64,
}

/// Sixteen levels of one part, a cache-line pair of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct LevelChunk([AtomicI64; 16]);

impl Levels {
    /// Levels of `sets`, each at zero and not yet exported.
    pub fn new(descriptor: Descriptor, sets: Vec<Attributes>) -> Levels {
        let chunks = sets.len().div_ceil(16).max(1);
        Levels {
            descriptor,
            parts: (0..chunks * shard_count())
                .map(|_| LevelChunk::default())
                .collect(),
            chunks,
            touched: sets.iter().map(|_| AtomicBool::new(false)).collect(),
            sets,
            start: now_nanos(),
        }
    }

    /// Adds `value` to the level of the set at `index` (ignored past the
    /// last set), in this thread's part.
    pub fn add(&self, index: usize, value: i64) {
        let Some(touched) = self.touched.get(index) else {
            return;
        };
        let part = shard_of(self.parts.len() / self.chunks);
        self.parts[part * self.chunks + index / 16].0[index % 16]
            .fetch_add(value, Ordering::Relaxed);
        if !touched.load(Ordering::Relaxed) {
            touched.store(true, Ordering::Relaxed);
        }
    }

    /// The level of the set at `index`: its parts summed.
    fn level(&self, index: usize) -> i64 {
        self.parts
            .chunks(self.chunks)
            .map(|part| part[index / 16].0[index % 16].load(Ordering::Relaxed))
            .sum()
    }

    /// The metric, every changed set's level as of now; `None` before any
    /// change.
    pub fn collect(&self) -> Option<Metric> {
        let points: Vec<(Attributes, i64)> = self
            .sets
            .iter()
            .zip(&self.touched)
            .enumerate()
            .filter(|(_, (_, touched))| touched.load(Ordering::Relaxed))
            .map(|(index, (set, _))| (set.clone(), self.level(index)))
            .collect();
        if points.is_empty() {
            return None;
        }
        Some(sum_metric(
            &self.descriptor,
            points,
            self.start,
            now_nanos(),
            Collect::Cumulative,
            false,
        ))
    }
}

/// An up-down counter whose level is kept elsewhere (a count some other
/// part of the host keeps anyway) and read at collection: an observable
/// up-down counter, one point with no attributes, which costs the request
/// path nothing. Nothing is exported until it is given its source.
pub struct ReadLevel {
    descriptor: Descriptor,
    source: OnceLock<Box<dyn Fn() -> i64 + Send + Sync>>,
    start: u64,
}

impl std::fmt::Debug for ReadLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadLevel")
            .field("descriptor", &self.descriptor)
            .field("read", &self.source.get().map(|read| read()))
            .finish()
    }
}

impl ReadLevel {
    /// A level with no source yet.
    pub fn new(descriptor: Descriptor) -> ReadLevel {
        ReadLevel {
            descriptor,
            source: OnceLock::new(),
            start: now_nanos(),
        }
    }

    /// Reads the level with `read` from now on (the first source given
    /// stays).
    pub fn read_from(&self, read: impl Fn() -> i64 + Send + Sync + 'static) {
        let _ = self.source.set(Box::new(read));
    }

    /// The metric, the level as of now; `None` without a source.
    pub fn collect(&self) -> Option<Metric> {
        let read = self.source.get()?;
        Some(sum_metric(
            &self.descriptor,
            vec![(Attributes::default(), read())],
            self.start,
            now_nanos(),
            Collect::Cumulative,
            false,
        ))
    }
}

/// A sum metric of `points`, counted from `start` to `now`.
fn sum_metric(
    descriptor: &Descriptor,
    points: Vec<(Attributes, i64)>,
    start: u64,
    now: u64,
    collect: Collect,
    monotonic: bool,
) -> Metric {
    let data_points = points
        .into_iter()
        .map(|(attributes, value)| NumberDataPoint {
            attributes: attributes.to_proto(),
            start_time_unix_nano: start,
            time_unix_nano: now,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(number_data_point::Value::AsInt(value)),
        })
        .collect();
    metric_of(
        descriptor,
        metric::Data::Sum(ProtoSum {
            data_points,
            aggregation_temporality: collect.temporality(),
            is_monotonic: monotonic,
        }),
    )
}

/// A counter whose total is kept elsewhere (an atomic some other part of
/// the host counts into) and read at collection: an observable counter.
#[derive(Debug)]
pub struct Observed {
    descriptor: Descriptor,
    attributes: Attributes,
    source: std::sync::Arc<std::sync::atomic::AtomicU64>,
    start: u64,
    /// The total at the last delta collection.
    last: std::sync::atomic::AtomicU64,
}

impl Observed {
    /// A counter reading `source`, its one point carrying `attributes`.
    pub fn new(
        descriptor: Descriptor,
        attributes: Attributes,
        source: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Observed {
        Observed {
            descriptor,
            attributes,
            source,
            start: now_nanos(),
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The metric, or `None` while nothing was counted.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        use std::sync::atomic::Ordering;
        let total = self.source.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        let value = match collect {
            Collect::Cumulative => total,
            Collect::Delta => total - self.last.swap(total, Ordering::Relaxed).min(total),
        };
        Some(metric_of(
            &self.descriptor,
            metric::Data::Sum(ProtoSum {
                data_points: vec![NumberDataPoint {
                    attributes: self.attributes.to_proto(),
                    start_time_unix_nano: self.start,
                    time_unix_nano: now_nanos(),
                    exemplars: Vec::new(),
                    flags: 0,
                    value: Some(number_data_point::Value::AsInt(
                        i64::try_from(value).unwrap_or(i64::MAX),
                    )),
                }],
                aggregation_temporality: collect.temporality(),
                is_monotonic: true,
            }),
        ))
    }
}

/// One explicit bucket: its count and at most one exemplar, side by side,
/// so that a measurement touches one place, not a count in one array and
/// an exemplar in another.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    count: u64,
    /// The measurements offered as exemplars this collection cycle.
    seen: u64,
    /// Chosen uniformly among those offered this cycle (the
    /// specification's SHOULD for an aligned histogram reservoir: the
    /// n-th is kept with probability 1/n), or, when none was, the one
    /// kept last cycle.
    exemplar: Option<Exemplar>,
}

/// One histogram point's buckets and exemplars.
#[derive(Debug, Clone)]
enum Buckets {
    /// One count and at most one exemplar per explicit bucket.
    Explicit {
        buckets: Vec<Bucket>,
        /// The state of the generator that samples exemplars.
        random: u64,
    },
    /// Base-2 exponential buckets, exemplars from a reservoir.
    Exponential {
        buckets: Exponential,
        exemplars: Reservoir<Exemplar>,
    },
}

/// One histogram point.
#[derive(Debug, Clone)]
struct HistogramPoint {
    buckets: Buckets,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl HistogramPoint {
    fn new(bounds: &[f64], aggregation: HistogramAggregation) -> HistogramPoint {
        let buckets = match aggregation {
            HistogramAggregation::ExplicitBucket => Buckets::Explicit {
                buckets: vec![Bucket::default(); bounds.len() + 1],
                random: now_nanos() | 1,
            },
            HistogramAggregation::Base2Exponential => Buckets::Exponential {
                buckets: Exponential::default(),
                exemplars: Reservoir::new(now_nanos()),
            },
        };
        HistogramPoint {
            buckets,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// A copy to export; the point itself starts a new sampling cycle.
    fn snapshot(&mut self) -> HistogramPoint {
        let copy = self.clone();
        match &mut self.buckets {
            Buckets::Explicit { buckets, .. } => {
                for bucket in buckets {
                    bucket.seen = 0;
                }
            }
            Buckets::Exponential { exemplars, .. } => {
                exemplars.collect();
            }
        }
        copy
    }

    /// Adds `other`, the same set's point from another part: counts add,
    /// an explicit bucket keeps either part's exemplar in proportion to
    /// the measurements each was chosen among (so that the choice stays
    /// uniform over both), an exponential point rescales to the coarser
    /// scale and offers the other's exemplars.
    fn merge(&mut self, other: HistogramPoint) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        match (&mut self.buckets, other.buckets) {
            (
                Buckets::Explicit { buckets, random },
                Buckets::Explicit {
                    buckets: others, ..
                },
            ) => {
                for (bucket, other) in buckets.iter_mut().zip(others) {
                    bucket.count += other.count;
                    let seen = bucket.seen + other.seen;
                    let take = match (bucket.exemplar, other.exemplar) {
                        (_, None) => false,
                        (None, Some(_)) => true,
                        // Neither was offered one this cycle: the later.
                        (Some(kept), Some(theirs)) if seen == 0 => kept.time <= theirs.time,
                        (Some(_), Some(_)) => xorshift(random) % seen.max(1) < other.seen,
                    };
                    if take {
                        bucket.exemplar = other.exemplar;
                    }
                    bucket.seen = seen;
                }
            }
            (
                Buckets::Exponential { buckets, exemplars },
                Buckets::Exponential {
                    buckets: other_buckets,
                    exemplars: other_exemplars,
                },
            ) => {
                buckets.merge(&other_buckets);
                exemplars.absorb(other_exemplars);
            }
            // One histogram aggregates one way: its parts cannot differ.
            _ => {}
        }
    }

    fn exemplars(&mut self) -> Vec<ProtoExemplar> {
        let kept = match &mut self.buckets {
            Buckets::Explicit { buckets, .. } => {
                buckets.iter().filter_map(|b| b.exemplar).collect()
            }
            Buckets::Exponential { exemplars, .. } => exemplars.collect(),
        };
        kept.into_iter().map(Exemplar::to_proto).collect()
    }
}

/// A histogram of non-negative values: explicit buckets or base-2
/// exponential ones, per [`HistogramOptions`].
#[derive(Debug)]
pub struct Histogram {
    descriptor: Descriptor,
    /// The explicit buckets' upper bounds (inclusive, as OTLP reads them).
    bounds: &'static [f64],
    options: HistogramOptions,
    points: Sharded<HistogramPoint>,
}

impl Histogram {
    /// A histogram with the explicit buckets `bounds` (ascending upper
    /// bounds), used unless `options` asks for exponential ones.
    pub fn new(
        descriptor: Descriptor,
        bounds: &'static [f64],
        options: HistogramOptions,
    ) -> Histogram {
        Histogram {
            descriptor,
            bounds,
            options,
            points: Sharded::new(),
        }
    }

    /// Records `value` in the point of `attributes`, made in `span` (when
    /// there is one); the exemplar filter decides whether it may become an
    /// exemplar. A value that is not a finite non-negative number is
    /// ignored (the API's histograms take only those).
    #[cfg(test)]
    pub fn record<'a>(&self, value: f64, attributes: impl Into<Key<'a>>, span: Option<SpanRef>) {
        self.record_at(value, attributes, span, now_nanos());
    }

    /// [`Histogram::record`], made at `time` (nanoseconds since the Unix
    /// epoch: an exemplar's time).
    pub fn record_at<'a>(
        &self,
        value: f64,
        attributes: impl Into<Key<'a>>,
        span: Option<SpanRef>,
        time: u64,
    ) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let eligible = match self.options.filter {
            ExemplarFilter::AlwaysOn => true,
            ExemplarFilter::AlwaysOff => false,
            ExemplarFilter::TraceBased => span.is_some_and(|span| span.sampled),
        };
        let Some(mut points) = self.points.local() else {
            return;
        };
        let point = points.entry_of(attributes.into(), || {
            HistogramPoint::new(self.bounds, self.options.aggregation)
        });
        point.count += 1;
        point.sum += value;
        point.min = point.min.min(value);
        point.max = point.max.max(value);
        match &mut point.buckets {
            Buckets::Explicit { buckets, random } => {
                let bucket = &mut buckets[self.bounds.partition_point(|bound| *bound < value)];
                bucket.count += 1;
                if eligible {
                    // Chosen before it is made: most measurements are not
                    // kept, and cost neither a clock read nor a write.
                    bucket.seen += 1;
                    if bucket.seen == 1 || xorshift(random).is_multiple_of(bucket.seen) {
                        bucket.exemplar = Some(Exemplar { value, time, span });
                    }
                }
            }
            Buckets::Exponential { buckets, exemplars } => {
                buckets.record(value);
                if eligible {
                    exemplars.offer(Exemplar { value, time, span });
                }
            }
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        let now = now_nanos();
        let (start, points) =
            self.points
                .collect(collect, HistogramPoint::snapshot, HistogramPoint::merge);
        if points.is_empty() {
            return None;
        }
        let data = match self.options.aggregation {
            HistogramAggregation::ExplicitBucket => metric::Data::Histogram(ProtoHistogram {
                data_points: points
                    .into_iter()
                    .map(|(attributes, mut point)| HistogramDataPoint {
                        attributes: attributes.to_proto(),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: point.count,
                        sum: Some(point.sum),
                        exemplars: point.exemplars(),
                        bucket_counts: match point.buckets {
                            Buckets::Explicit { buckets, .. } => {
                                buckets.iter().map(|b| b.count).collect()
                            }
                            Buckets::Exponential { .. } => Vec::new(),
                        },
                        explicit_bounds: self.bounds.to_vec(),
                        flags: 0,
                        min: Some(point.min),
                        max: Some(point.max),
                    })
                    .collect(),
                aggregation_temporality: collect.temporality(),
            }),
            HistogramAggregation::Base2Exponential => {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: points
                        .into_iter()
                        .map(|(attributes, mut point)| {
                            let exemplars = point.exemplars();
                            let buckets = match point.buckets {
                                Buckets::Exponential { buckets, .. } => buckets,
                                Buckets::Explicit { .. } => Exponential::default(),
                            };
                            ExponentialHistogramDataPoint {
                                attributes: attributes.to_proto(),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: point.count,
                                sum: Some(point.sum),
                                scale: buckets.scale,
                                zero_count: buckets.zero_count,
                                positive: Some(buckets.positive()),
                                negative: None,
                                flags: 0,
                                exemplars,
                                min: Some(point.min),
                                max: Some(point.max),
                                zero_threshold: 0.0,
                            }
                        })
                        .collect(),
                    aggregation_temporality: collect.temporality(),
                })
            }
        };
        Some(metric_of(&self.descriptor, data))
    }
}

fn metric_of(descriptor: &Descriptor, data: metric::Data) -> Metric {
    Metric {
        name: descriptor.name.to_string(),
        description: descriptor.description.to_string(),
        unit: descriptor.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Descriptor = Descriptor::of("test", "s", "a test instrument");

    fn attrs(route: &'static str) -> Attributes {
        Attributes::new([(Cow::Borrowed("http.route"), Value::from(route))])
    }

    fn histogram_points(metric: Metric) -> Vec<HistogramDataPoint> {
        match metric.data {
            Some(metric::Data::Histogram(h)) => h.data_points,
            _ => panic!("not a histogram"),
        }
    }

    /// A value falls in the first bucket whose upper bound it does not
    /// exceed (bounds are inclusive); a bucket keeps one sampled span of
    /// those that fell in it as its exemplar; count, sum, min and max add
    /// up.
    #[test]
    fn histogram_buckets_and_exemplars() {
        static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let h = Histogram::new(TEST.clone(), &BOUNDS, HistogramOptions::default());
        let span = |n: u8| SpanRef {
            trace_id: [n; 16],
            span_id: [n; 8],
            sampled: true,
        };
        h.record(0.1, attrs("/a"), Some(span(1)));
        h.record(0.5, attrs("/a"), Some(span(2)));
        h.record(0.7, attrs("/a"), Some(span(3)));
        h.record(100.0, attrs("/a"), None);
        h.record(f64::NAN, attrs("/a"), Some(span(9)));
        let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!(p.bucket_counts, vec![1, 2, 0, 1]);
        assert_eq!(p.count, 4);
        assert_eq!(p.sum, Some(101.3));
        assert_eq!((p.min, p.max), (Some(0.1), Some(100.0)));
        let exemplar_traces: Vec<Vec<u8>> =
            p.exemplars.iter().map(|e| e.trace_id.clone()).collect();
        assert_eq!(exemplar_traces.len(), 2);
        assert_eq!(exemplar_traces[0], vec![1; 16]);
        assert!(
            [vec![2; 16], vec![3; 16]].contains(&exemplar_traces[1]),
            "{exemplar_traces:?}"
        );
        // Cumulative keeps counting; delta starts again.
        h.record(0.5, attrs("/a"), None);
        let points = histogram_points(h.collect(Collect::Delta).unwrap());
        assert_eq!(points[0].count, 5);
        assert!(h.collect(Collect::Delta).is_none());
    }

    /// A bucket's exemplar is chosen uniformly among the measurements of
    /// a collection cycle (not always the last): over 4,000 cycles of four
    /// measurements each is kept about 1,000 times. A cycle with no
    /// measurement in the bucket keeps the exemplar it had.
    #[test]
    fn exemplars_are_sampled_uniformly_each_cycle() {
        static BOUNDS: [f64; 1] = [1.0];
        let h = Histogram::new(TEST.clone(), &BOUNDS, HistogramOptions::default());
        let span = |n: u8| SpanRef {
            trace_id: [n; 16],
            span_id: [n; 8],
            sampled: true,
        };
        let mut kept = [0u32; 4];
        for _ in 0..4000 {
            for n in 0..4 {
                h.record(0.5, attrs("/a"), Some(span(n)));
            }
            let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
            let chosen = points[0].exemplars[0].trace_id[0];
            kept[usize::from(chosen)] += 1;
        }
        // Binomial(4000, 1/4): a standard deviation of 27.
        assert!(kept.iter().all(|n| (850..=1150).contains(n)), "{kept:?}");
        h.record(5.0, attrs("/a"), Some(span(9)));
        let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
        assert_eq!(points[0].exemplars.len(), 2, "the first bucket's stays");
    }

    /// The exemplar filter: `always_off` keeps none, `trace_based` only
    /// measurements in sampled spans, `always_on` every one, an unsampled
    /// span's with its ids and one outside any span without.
    #[test]
    fn exemplar_filter() {
        static BOUNDS: [f64; 2] = [1.0, 2.0];
        let sampled = SpanRef {
            trace_id: [1; 16],
            span_id: [1; 8],
            sampled: true,
        };
        let unsampled = SpanRef {
            trace_id: [2; 16],
            span_id: [2; 8],
            sampled: false,
        };
        type Case = (ExemplarFilter, HistogramAggregation, &'static [u8]);
        use ExemplarFilter as F;
        use HistogramAggregation as A;
        // (filter, aggregation, first byte of each exemplar's trace id:
        // 0 for no trace)
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (F::AlwaysOff,  A::ExplicitBucket,   &[]),
            (F::TraceBased, A::ExplicitBucket,   &[1]),
            (F::AlwaysOn,   A::ExplicitBucket,   &[1, 2, 0]),
            (F::AlwaysOff,  A::Base2Exponential, &[]),
            (F::TraceBased, A::Base2Exponential, &[1]),
            (F::AlwaysOn,   A::Base2Exponential, &[1, 2, 0]),
        ];
        for &(filter, aggregation, expected) in cases {
            let h = Histogram::new(
                TEST.clone(),
                &BOUNDS,
                HistogramOptions {
                    filter,
                    aggregation,
                },
            );
            // One value per explicit bucket, so that none replaces another.
            h.record(0.5, attrs("/a"), Some(sampled));
            h.record(1.5, attrs("/a"), Some(unsampled));
            h.record(2.5, attrs("/a"), None);
            let metric = h.collect(Collect::Cumulative).unwrap();
            let exemplars = match metric.data {
                Some(metric::Data::Histogram(h)) => h.data_points[0].exemplars.clone(),
                Some(metric::Data::ExponentialHistogram(h)) => h.data_points[0].exemplars.clone(),
                other => panic!("not a histogram: {other:?}"),
            };
            let traces: Vec<u8> = exemplars
                .iter()
                .map(|e| e.trace_id.first().copied().unwrap_or(0))
                .collect();
            assert_eq!(traces, expected, "{filter:?} {aggregation:?}");
        }
    }

    /// The exponential aggregation: count, sum, min and max as for explicit
    /// buckets, zeros in the zero count, the rest in positive buckets that
    /// add up to the count; delta starts again at the finest scale.
    #[test]
    fn exponential_histogram_points() {
        let options = HistogramOptions {
            filter: ExemplarFilter::TraceBased,
            aggregation: HistogramAggregation::Base2Exponential,
        };
        let h = Histogram::new(TEST.clone(), &[], options);
        for value in [0.0, 1.0, 2.0, 1024.0, -1.0, f64::NAN] {
            h.record(value, attrs("/a"), None);
        }
        let points = |metric: Metric| match metric.data {
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points,
            other => panic!("not an exponential histogram: {other:?}"),
        };
        let p = &points(h.collect(Collect::Delta).unwrap())[0];
        assert_eq!(
            (p.count, p.sum, p.min, p.max),
            (4, Some(1027.0), Some(0.0), Some(1024.0))
        );
        assert_eq!((p.scale, p.zero_count, p.zero_threshold), (3, 1, 0.0));
        let positive = p.positive.as_ref().unwrap();
        assert_eq!(positive.offset, -1);
        assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 3);
        assert!(p.negative.is_none());
        h.record(1.0, attrs("/a"), None);
        let p = &points(h.collect(Collect::Delta).unwrap())[0];
        assert_eq!((p.count, p.scale), (1, 20));
    }

    /// Threads record into parts of their own; collection gives the
    /// points of all of them, as one part would: counts, sums, buckets,
    /// exemplars, a counter's total, and the cardinality limit over the
    /// merged sets.
    #[test]
    fn parts_recorded_by_threads_merge() {
        let histogram = Histogram::new(TEST.clone(), &[1.0, 10.0], HistogramOptions::default());
        let sum = Sum::counter(TEST.clone());
        let threads = 2 * shard_count();
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let (histogram, sum) = (&histogram, &sum);
                scope.spawn(move || {
                    let span = SpanRef {
                        trace_id: [thread as u8 + 1; 16],
                        span_id: [1; 8],
                        sampled: true,
                    };
                    for n in 0..100 {
                        histogram.record(0.5, attrs("/a"), Some(span));
                        histogram.record((n % 20) as f64, attrs("/b"), None);
                        // Sets of their own past the limit: 400 a thread.
                        let own = (thread * 1000 + n) as i64;
                        for k in 0..4 {
                            sum.add(
                                1,
                                Attributes::new([(Cow::Borrowed("n"), Value::Int(own * 4 + k))]),
                            );
                        }
                    }
                });
            }
        });
        let points = histogram_points(histogram.collect(Collect::Cumulative).unwrap());
        assert_eq!(points.len(), 2);
        let route = |p: &HistogramDataPoint| p.attributes[0].value.clone().unwrap().value.unwrap();
        let a = points
            .iter()
            .find(|p| route(p) == any_value::Value::StringValue("/a".into()))
            .unwrap();
        let b = points
            .iter()
            .find(|p| route(p) == any_value::Value::StringValue("/b".into()))
            .unwrap();
        let n = threads as u64 * 100;
        assert_eq!(
            (a.count, a.sum, a.bucket_counts.clone()),
            (n, Some(0.5 * n as f64), vec![n, 0, 0])
        );
        assert_eq!(a.exemplars.len(), 1);
        assert!(
            a.exemplars[0]
                .trace_id
                .iter()
                .all(|b| *b >= 1 && usize::from(*b) <= threads)
        );
        // n % 20 for n in 0..100: 0 and 1 in (.., 1], 2 to 10 in (1, 10], 11 to 19 above.
        let each = threads as u64 * 5;
        assert_eq!(b.bucket_counts, vec![2 * each, 9 * each, 9 * each]);
        assert_eq!((b.min, b.max), (Some(0.0), Some(19.0)));
        assert!(b.exemplars.is_empty());

        let Some(metric::Data::Sum(data)) = sum.collect(Collect::Delta).unwrap().data else {
            panic!("not a sum");
        };
        assert_eq!(data.data_points.len(), CARDINALITY_LIMIT);
        let total: i64 = data
            .data_points
            .iter()
            .map(|p| match p.value {
                Some(number_data_point::Value::AsInt(n)) => n,
                _ => panic!("not an int"),
            })
            .sum();
        assert_eq!(total, threads as i64 * 400);
        assert!(
            sum.collect(Collect::Delta).is_none(),
            "delta: taken from every part"
        );
    }

    /// Past the cardinality limit, new attribute sets land in the one
    /// `otel.metric.overflow=true` point; known sets still count as theirs.
    #[test]
    fn cardinality_is_bounded_with_an_overflow_point() {
        let sum = Sum::counter(TEST.clone());
        for n in 0..3000 {
            let set = Attributes::new([(Cow::Borrowed("n"), Value::Int(n))]);
            sum.add(1, set);
        }
        sum.add(5, Attributes::new([(Cow::Borrowed("n"), Value::Int(0))]));
        let Some(metric::Data::Sum(data)) = sum.collect(Collect::Cumulative).unwrap().data else {
            panic!("not a sum");
        };
        assert_eq!(data.data_points.len(), CARDINALITY_LIMIT);
        let value = |p: &NumberDataPoint| match p.value {
            Some(number_data_point::Value::AsInt(n)) => n,
            _ => panic!("not an int"),
        };
        let overflow: Vec<&NumberDataPoint> = data
            .data_points
            .iter()
            .filter(|p| p.attributes.iter().any(|kv| kv.key == OVERFLOW))
            .collect();
        assert_eq!(overflow.len(), 1);
        assert_eq!(value(overflow[0]), 3000 - (CARDINALITY_LIMIT as i64 - 1));
        let total: i64 = data.data_points.iter().map(value).sum();
        assert_eq!(total, 3005);
    }

    /// A borrowed set finds the point its built set made, and the other
    /// way round; a new one is kept as its own point, past the cardinality
    /// limit in the overflow point.
    #[test]
    fn borrowed_sets_are_the_sets_they_stand_for() {
        let histogram = Histogram::new(TEST.clone(), &[1.0], HistogramOptions::default());
        let built = Attributes::new([
            (Cow::Borrowed("http.route"), Value::from("/orders")),
            (Cow::Borrowed("http.response.status_code"), Value::Int(201)),
        ]);
        let pairs = [
            ("http.response.status_code", ValueRef::Int(201)),
            ("http.route", ValueRef::Str("/orders")),
        ];
        histogram.record(0.5, built.clone(), None);
        histogram.record(0.5, Pairs(&pairs), None);
        let other = [("http.route", ValueRef::Str("/health"))];
        histogram.record(2.0, Pairs(&other), None);
        histogram.record(2.0, attrs("/health"), None);
        histogram.record(2.0, Pairs(&[]), None);
        let points = histogram_points(histogram.collect(Collect::Cumulative).unwrap());
        let count = |route: Option<&str>| {
            points
                .iter()
                .filter(|p| {
                    p.attributes
                        .iter()
                        .find(|kv| kv.key == "http.route")
                        .map(|kv| {
                            kv.value.as_ref().and_then(|v| v.value.clone())
                                == Some(any_value::Value::StringValue(route.unwrap_or("").into()))
                        })
                        == Some(true)
                        || (route.is_none() && p.attributes.is_empty())
                })
                .map(|p| p.count)
                .collect::<Vec<_>>()
        };
        assert_eq!(points.len(), 3);
        assert_eq!(count(Some("/orders")), [2]);
        assert_eq!(count(Some("/health")), [2]);
        assert_eq!(count(None), [1]);

        let mut points = Points::<i64>::new();
        for n in 0..3000 {
            *points.entry(Pairs(&[("n", ValueRef::Int(n))]), || 0) += 1;
        }
        *points.entry_of(
            Attributes::new([(Cow::Borrowed("n"), Value::Int(0))]).into(),
            || 0,
        ) += 5;
        assert_eq!(points.sets.len(), CARDINALITY_LIMIT);
        assert_eq!(
            count_of(&mut points, Attributes::overflow()),
            [3000 - (CARDINALITY_LIMIT as i64 - 1)]
        );
        assert_eq!(
            count_of(
                &mut points,
                Attributes::new([(Cow::Borrowed("n"), Value::Int(0))])
            ),
            [6]
        );
    }

    /// A guest's borrowed set, made canonical (sorted, the last value of a
    /// repeated key kept), finds the point of the set `Attributes::new`
    /// builds from the same pairs, and the other way round; a different
    /// value or key is another point.
    #[test]
    fn guest_sets_are_the_sets_they_stand_for() {
        let mut points = Points::<i64>::new();
        let built = Attributes::new([
            (Cow::Owned("outcome".into()), Value::from("paid")),
            (Cow::Owned("amount".into()), Value::Int(1)),
            (Cow::Owned("amount".into()), Value::Int(3)),
        ]);
        *points.entry(built.clone(), || 0) += 1;
        let mut pairs = [
            ("outcome", ValueRef::Str("paid")),
            ("amount", ValueRef::Int(1)),
            ("amount", ValueRef::Int(3)),
        ];
        let len = GuestPairs::canonical(&mut pairs);
        assert_eq!(len, 2);
        assert_eq!(
            pairs[..len],
            [
                ("amount", ValueRef::Int(3)),
                ("outcome", ValueRef::Str("paid"))
            ]
        );
        // Found last, then found by hash after another set came between.
        *points.entry(GuestPairs(&pairs[..len]), || 0) += 1;
        let other = [
            ("amount", ValueRef::Int(1)),
            ("outcome", ValueRef::Str("paid")),
        ];
        *points.entry(GuestPairs(&other), || 0) += 1;
        *points.entry(GuestPairs(&pairs[..len]), || 0) += 1;
        let renamed = [
            ("amounts", ValueRef::Int(3)),
            ("outcome", ValueRef::Str("paid")),
        ];
        *points.entry(GuestPairs(&renamed), || 0) += 1;
        assert_eq!(points.sets.len(), 3);
        assert_eq!(count_of(&mut points, built), [3]);
        assert_eq!(
            count_of(
                &mut points,
                Attributes::new([
                    (Cow::Owned("amount".into()), Value::Int(1)),
                    (Cow::Owned("outcome".into()), Value::from("paid")),
                ])
            ),
            [1]
        );
    }

    /// The counts of every point `points` keeps for `set`: one, unless the
    /// set was kept twice.
    fn count_of(points: &mut Points<i64>, set: Attributes) -> Vec<i64> {
        points
            .read(|n| *n)
            .into_iter()
            .filter(|(kept, _)| *kept == set)
            .map(|(_, n)| n)
            .collect()
    }

    /// A route and status set, its keys and value copied (not the same
    /// pointers as the host's constants).
    fn built(route: &str, status: Option<i64>) -> Attributes {
        let mut pairs = vec![(
            Cow::Owned("http.route".to_string()),
            Value::from(route.to_string()),
        )];
        if let Some(status) = status {
            pairs.push((
                Cow::Owned("http.response.status_code".to_string()),
                Value::Int(status),
            ));
        }
        Attributes::new(pairs)
    }

    /// Measurements alternating between sets, repeating one, or giving the
    /// last one again built separately (owned or borrowed, keys copied or
    /// the same constants), each count in its own set's one point: the
    /// set found last is taken only when it is the measurement's, not for
    /// a set with the same keys and another value, nor for one of its
    /// pairs alone.
    #[test]
    fn the_set_found_last_is_only_taken_for_itself() {
        const STATUS: &str = "http.response.status_code";
        const ROUTE: &str = "http.route";
        let orders = [
            (STATUS, ValueRef::Int(201)),
            (ROUTE, ValueRef::Str("/orders")),
        ];
        let refused = [
            (STATUS, ValueRef::Int(500)),
            (ROUTE, ValueRef::Str("/orders")),
        ];
        let route = [(ROUTE, ValueRef::Str("/orders"))];
        let mut points = Points::<i64>::new();
        for _ in 0..100 {
            *points.entry(Pairs(&orders), || 0) += 1;
            *points.entry(Pairs(&orders), || 0) += 1;
            *points.entry(built("/orders", Some(201)), || 0) += 1;
            *points.entry(Pairs(&refused), || 0) += 10;
            *points.entry(Pairs(&route), || 0) += 100;
            *points.entry(built("/orders", None), || 0) += 100;
            *points.entry(Pairs(&[]), || 0) += 1000;
            *points.entry(Pairs(&orders), || 0) += 1;
        }
        assert_eq!(points.sets.len(), 3, "three sets, each kept once");
        assert_eq!(count_of(&mut points, built("/orders", Some(201))), [400]);
        assert_eq!(count_of(&mut points, built("/orders", Some(500))), [1000]);
        assert_eq!(count_of(&mut points, built("/orders", None)), [20_000]);
        assert_eq!(count_of(&mut points, Attributes::default()), [100_000]);
    }

    /// After a delta collection, a measurement of the set found last
    /// before it lands in a new point that counts from zero, whichever
    /// place the set takes now, and the next collection has each set's
    /// count since the last one, no more, no less.
    #[test]
    fn a_delta_collection_forgets_the_set_found_last() {
        let counter = Sum::counter(TEST.clone());
        let value = |metric: Option<Metric>, route: &'static str| {
            let Some(metric::Data::Sum(data)) = metric.and_then(|m| m.data) else {
                panic!("not a sum");
            };
            let set = attrs(route).to_proto();
            let found: Vec<_> = data
                .data_points
                .iter()
                .filter(|p| p.attributes == set)
                .map(|p| p.value)
                .collect();
            (data.data_points.len(), found)
        };
        let int = |n| Some(number_data_point::Value::AsInt(n));
        counter.add(1, attrs("/a"));
        counter.add(2, attrs("/b"));
        counter.add(3, attrs("/b"));
        let taken = counter.collect(Collect::Delta);
        assert_eq!(value(taken, "/b"), (2, vec![int(5)]));
        // "/b" was found last, in the second place; it now takes the first.
        counter.add(7, attrs("/b"));
        counter.add(1, attrs("/a"));
        counter.add(7, attrs("/b"));
        let taken = counter.collect(Collect::Delta);
        assert_eq!(value(taken, "/b"), (2, vec![int(14)]));
        counter.add(4, attrs("/a"));
        let taken = counter.collect(Collect::Delta);
        assert_eq!(value(taken, "/a"), (1, vec![int(4)]));

        let histogram = Histogram::new(TEST.clone(), &[1.0], HistogramOptions::default());
        let route = [("http.route", ValueRef::Str("/a"))];
        histogram.record(0.5, Pairs(&route), None);
        histogram.collect(Collect::Delta);
        histogram.record(0.5, Pairs(&route), None);
        histogram.record(0.5, Pairs(&route), None);
        let points = histogram_points(histogram.collect(Collect::Delta).unwrap());
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].count, 2);
    }

    /// Past the cardinality limit, with the overflow set found last: a new
    /// set still goes to the overflow point (and is not kept), a known set
    /// still to its own, and the overflow set given as such to the
    /// overflow point; the limit holds.
    #[test]
    fn overflow_works_when_the_overflow_set_was_found_last() {
        let n = |n: i64| Attributes::new([(Cow::Borrowed("n"), Value::Int(n))]);
        let mut points = Points::<i64>::new();
        *points.entry(Attributes::default(), || 0) += 1;
        for k in 0..CARDINALITY_LIMIT as i64 - 2 {
            *points.entry(n(k), || 0) += 1;
        }
        let overflow = [(OVERFLOW, ValueRef::Bool(true))];
        *points.entry(n(5000), || 0) += 1;
        *points.entry(n(5000), || 0) += 1;
        *points.entry(n(3), || 0) += 1;
        *points.entry(Pairs(&[("n", ValueRef::Int(6000))]), || 0) += 1;
        *points.entry(Pairs(&overflow), || 0) += 10;
        *points.entry(Attributes::overflow(), || 0) += 10;
        *points.entry(n(7000), || 0) += 1;
        *points.entry(n(3), || 0) += 1;
        assert_eq!(points.sets.len() + 1, CARDINALITY_LIMIT);
        assert_eq!(count_of(&mut points, Attributes::overflow()), [24]);
        assert_eq!(count_of(&mut points, n(3)), [3]);
        assert_eq!(count_of(&mut points, n(5000)), [0; 0]);
        assert_eq!(count_of(&mut points, Attributes::default()), [1]);
    }

    /// The same pairs in another order are the same set; a key repeated
    /// keeps its last value.
    #[test]
    fn attribute_sets_are_order_free() {
        let a = Attributes::new([
            (Cow::Borrowed("b"), Value::Int(1)),
            (Cow::Borrowed("a"), Value::Int(2)),
            (Cow::Borrowed("a"), Value::Int(3)),
        ]);
        let b = Attributes::new([
            (Cow::Borrowed("a"), Value::Int(3)),
            (Cow::Borrowed("b"), Value::Int(1)),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.get("a"), Some(&Value::Int(3)));
    }

    /// Levels added and taken back by more threads than there are parts,
    /// past the first sixteen sets, read as their sums: what every thread
    /// still holds, and nothing for a set whose holders all let go.
    #[test]
    fn levels_in_parts_are_summed() {
        let sets: Vec<Attributes> = (0..20)
            .map(|n| Attributes::new([(Cow::Borrowed("http.route"), Value::from(format!("/{n}")))]))
            .collect();
        let levels = Levels::new(TEST.clone(), sets.clone());
        let threads = 2 * shard_count() + 1;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..100 {
                        levels.add(17, 1);
                        levels.add(3, 1);
                        levels.add(3, -1);
                    }
                    levels.add(17, -99);
                });
            }
        });
        let Some(metric::Data::Sum(data)) = levels.collect().unwrap().data else {
            panic!("not a sum");
        };
        let value = |set: &Attributes| {
            data.data_points
                .iter()
                .find(|point| point.attributes == set.to_proto())
                .and_then(|point| point.value)
        };
        assert_eq!(data.data_points.len(), 2, "only the sets that changed");
        assert_eq!(
            value(&sets[17]),
            Some(number_data_point::Value::AsInt(threads as i64))
        );
        assert_eq!(value(&sets[3]), Some(number_data_point::Value::AsInt(0)));
    }

    /// A counter ignores negative additions; levels stay cumulative and
    /// export only the sets that changed.
    #[test]
    fn sums() {
        let counter = Sum::counter(TEST.clone());
        counter.add(-1, Attributes::default());
        assert!(counter.collect(Collect::Cumulative).is_none());
        let levels = Levels::new(TEST.clone(), vec![attrs("/a"), attrs("/b")]);
        assert!(levels.collect().is_none());
        levels.add(1, 2);
        levels.add(1, -1);
        levels.add(7, 1);
        let Some(metric::Data::Sum(data)) = levels.collect().unwrap().data else {
            panic!("not a sum");
        };
        assert_eq!(data.data_points.len(), 1);
        assert_eq!(data.data_points[0].attributes, attrs("/b").to_proto());
        assert_eq!(
            data.data_points[0].value,
            Some(number_data_point::Value::AsInt(1))
        );
        assert_eq!(
            data.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert!(!data.is_monotonic);
    }
}
