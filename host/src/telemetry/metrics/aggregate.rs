//! The host's own aggregation: sums and explicit-bucket histograms keyed by
//! attribute set, each histogram bucket keeping the exemplar of the last
//! sampled request that fell in it, each instrument bounded to
//! [`CARDINALITY_LIMIT`] attribute sets.
//!
//! Why not the SDK's: opentelemetry-rust 0.33 collects no exemplars (its
//! issue #3369), and a histogram point that cannot lead to a trace is half
//! of what this host's metrics are for. The instruments are few and known,
//! so the aggregation is small: one mutex per instrument, held for a hash
//! look-up and a few additions per measurement, never across an export
//! (collection clones the points out, or takes them under delta).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as ProtoExemplar, Histogram as ProtoHistogram,
    HistogramDataPoint, Metric, NumberDataPoint, Sum as ProtoSum, exemplar, metric,
    number_data_point,
};

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Attributes(Vec<(Cow<'static, str>, Value)>);

impl Attributes {
    /// The set of `pairs` (the last value of a key repeated wins).
    pub fn new(pairs: impl IntoIterator<Item = (Cow<'static, str>, Value)>) -> Attributes {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
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

/// The trace and span of a measurement, when it was made in a sampled span
/// (the specification's default `trace_based` exemplar filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
}

impl SpanRef {
    /// The span `context` names, if it is valid and sampled.
    pub fn of(context: &SpanContext) -> Option<SpanRef> {
        (context.is_valid() && context.is_sampled()).then(|| SpanRef {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
        })
    }
}

/// The last sampled measurement of one bucket.
#[derive(Debug, Clone, Copy)]
struct Exemplar {
    value: f64,
    time: u64,
    span: SpanRef,
}

impl Exemplar {
    fn to_proto(self) -> ProtoExemplar {
        ProtoExemplar {
            filtered_attributes: Vec::new(),
            time_unix_nano: self.time,
            span_id: self.span.span_id.to_vec(),
            trace_id: self.span.trace_id.to_vec(),
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

/// Points keyed by attribute set, bounded, with the time they count from.
#[derive(Debug)]
struct Points<P> {
    map: HashMap<Attributes, P>,
    start: u64,
}

impl<P> Points<P> {
    fn new() -> Self {
        Points {
            map: HashMap::new(),
            start: now_nanos(),
        }
    }

    /// The point of `attributes`, made with `new` if it is not there yet;
    /// past the cardinality limit, the overflow point.
    fn entry(&mut self, attributes: Attributes, new: impl FnOnce() -> P) -> &mut P {
        let key = if self.map.len() >= CARDINALITY_LIMIT - 1 && !self.map.contains_key(&attributes)
        {
            Attributes::overflow()
        } else {
            attributes
        };
        self.map.entry(key).or_insert_with(new)
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

/// A sum: a counter (monotonic) or an up-down counter, of whole numbers.
#[derive(Debug)]
pub struct Sum {
    descriptor: Descriptor,
    monotonic: bool,
    points: Mutex<Points<i64>>,
}

impl Sum {
    /// A counter: only ever adds.
    pub fn counter(descriptor: Descriptor) -> Sum {
        Sum {
            descriptor,
            monotonic: true,
            points: Mutex::new(Points::new()),
        }
    }

    /// An up-down counter: adds and subtracts (always cumulative).
    pub fn up_down(descriptor: Descriptor) -> Sum {
        Sum {
            descriptor,
            monotonic: false,
            points: Mutex::new(Points::new()),
        }
    }

    /// Adds `value` to the point of `attributes` (a counter ignores a
    /// negative value, as the API says).
    pub fn add(&self, value: i64, attributes: Attributes) {
        if self.monotonic && value < 0 {
            return;
        }
        if let Ok(mut points) = self.points.lock() {
            *points.entry(attributes, || 0) += value;
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        // An up-down counter's value is a level, not a rate: cumulative
        // whatever the preference, as the specification says.
        let collect = if self.monotonic {
            collect
        } else {
            Collect::Cumulative
        };
        let now = now_nanos();
        let (start, points) = {
            let mut points = self.points.lock().ok()?;
            match collect {
                Collect::Cumulative => (
                    points.start,
                    points
                        .map
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .collect::<Vec<_>>(),
                ),
                Collect::Delta => {
                    let taken = std::mem::replace(&mut *points, Points::new());
                    (taken.start, taken.map.into_iter().collect())
                }
            }
        };
        if points.is_empty() {
            return None;
        }
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
        Some(metric_of(
            &self.descriptor,
            metric::Data::Sum(ProtoSum {
                data_points,
                aggregation_temporality: collect.temporality(),
                is_monotonic: self.monotonic,
            }),
        ))
    }
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

/// One histogram point.
#[derive(Debug, Clone)]
struct HistogramPoint {
    counts: Vec<u64>,
    exemplars: Vec<Option<Exemplar>>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl HistogramPoint {
    fn new(buckets: usize) -> HistogramPoint {
        HistogramPoint {
            counts: vec![0; buckets],
            exemplars: vec![None; buckets],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// An explicit-bucket histogram of non-negative values.
#[derive(Debug)]
pub struct Histogram {
    descriptor: Descriptor,
    /// The buckets' upper bounds (inclusive, as OTLP reads them).
    bounds: &'static [f64],
    points: Mutex<Points<HistogramPoint>>,
}

impl Histogram {
    /// A histogram with the buckets `bounds` (ascending upper bounds).
    pub fn new(descriptor: Descriptor, bounds: &'static [f64]) -> Histogram {
        Histogram {
            descriptor,
            bounds,
            points: Mutex::new(Points::new()),
        }
    }

    /// Records `value` in the point of `attributes`; `span`, when given,
    /// becomes the exemplar of the bucket it fell in. A value that is not
    /// a finite non-negative number is ignored (the API's histograms take
    /// only those).
    pub fn record(&self, value: f64, attributes: Attributes, span: Option<SpanRef>) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        let buckets = self.bounds.len() + 1;
        let Ok(mut points) = self.points.lock() else {
            return;
        };
        let point = points.entry(attributes, || HistogramPoint::new(buckets));
        point.counts[bucket] += 1;
        point.count += 1;
        point.sum += value;
        point.min = point.min.min(value);
        point.max = point.max.max(value);
        if let Some(span) = span {
            point.exemplars[bucket] = Some(Exemplar {
                value,
                time: now_nanos(),
                span,
            });
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        let now = now_nanos();
        let (start, points): (u64, Vec<(Attributes, HistogramPoint)>) = {
            let mut points = self.points.lock().ok()?;
            match collect {
                Collect::Cumulative => (
                    points.start,
                    points
                        .map
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                Collect::Delta => {
                    let taken = std::mem::replace(&mut *points, Points::new());
                    (taken.start, taken.map.into_iter().collect())
                }
            }
        };
        if points.is_empty() {
            return None;
        }
        let data_points = points
            .into_iter()
            .map(|(attributes, point)| HistogramDataPoint {
                attributes: attributes.to_proto(),
                start_time_unix_nano: start,
                time_unix_nano: now,
                count: point.count,
                sum: Some(point.sum),
                bucket_counts: point.counts,
                explicit_bounds: self.bounds.to_vec(),
                exemplars: point
                    .exemplars
                    .into_iter()
                    .flatten()
                    .map(Exemplar::to_proto)
                    .collect(),
                flags: 0,
                min: Some(point.min),
                max: Some(point.max),
            })
            .collect();
        Some(metric_of(
            &self.descriptor,
            metric::Data::Histogram(ProtoHistogram {
                data_points,
                aggregation_temporality: collect.temporality(),
            }),
        ))
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
    /// exceed (bounds are inclusive); the bucket keeps the last sampled
    /// span as its exemplar; count, sum, min and max add up.
    #[test]
    fn histogram_buckets_and_exemplars() {
        static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let h = Histogram::new(TEST.clone(), &BOUNDS);
        let span = |n: u8| SpanRef {
            trace_id: [n; 16],
            span_id: [n; 8],
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
        assert_eq!(exemplar_traces, vec![vec![1; 16], vec![3; 16]]);
        // Cumulative keeps counting; delta starts again.
        h.record(0.5, attrs("/a"), None);
        let points = histogram_points(h.collect(Collect::Delta).unwrap());
        assert_eq!(points[0].count, 5);
        assert!(h.collect(Collect::Delta).is_none());
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

    /// A counter ignores negative additions; an up-down counter stays
    /// cumulative under a delta preference.
    #[test]
    fn sums() {
        let counter = Sum::counter(TEST.clone());
        counter.add(-1, Attributes::default());
        assert!(counter.collect(Collect::Cumulative).is_none());
        let level = Sum::up_down(TEST.clone());
        level.add(2, Attributes::default());
        level.add(-1, Attributes::default());
        level.collect(Collect::Delta).unwrap();
        let Some(metric::Data::Sum(data)) = level.collect(Collect::Delta).unwrap().data else {
            panic!("not a sum");
        };
        assert_eq!(
            data.data_points[0].value,
            Some(number_data_point::Value::AsInt(1))
        );
        assert_eq!(
            data.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
    }
}
