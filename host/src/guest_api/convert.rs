//! Every conversion between a WIT type of the guest interfaces and its
//! OpenTelemetry counterpart, each written once, as `From` (or `TryFrom`
//! where a guest's value may be invalid): our `wasm-otel:host/tracing` and
//! `wasi:otel` each have their own WIT types, and both host sides convert
//! through these. `wasi:otel`'s metrics and log records become OTLP
//! (`opentelemetry-proto`) directly, as the host exports them: every data
//! kind, number type, exemplar and temporality kept, each data point
//! checked (a point is forwarded whole or refused, with its [`Refusal`]).

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{self as otel, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use opentelemetry_proto::tonic::common::v1 as otlp;
use opentelemetry_proto::tonic::logs::v1 as logs;
use opentelemetry_proto::tonic::metrics::v1 as metrics;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;

use super::attributes::AttributeLimits;
use super::bindings::tracing as ours;
use super::bindings::wasi::otel::logs as wasi_logs;
use super::bindings::wasi::otel::metrics as wasi_metrics;
use super::bindings::wasi::otel::tracing as wasi;
use super::bindings::wasi::otel::types as wasi_types;
use super::output::MAX_LINE_BYTES;

fn strings(values: Vec<String>) -> Vec<StringValue> {
    values.into_iter().map(StringValue::from).collect()
}

impl From<ours::Value> for Value {
    fn from(value: ours::Value) -> Value {
        match value {
            ours::Value::String(s) => Value::from(s),
            ours::Value::Bool(b) => Value::Bool(b),
            ours::Value::S64(n) => Value::I64(n),
            ours::Value::F64(n) => Value::F64(n),
            ours::Value::StringArray(values) => Value::Array(Array::String(strings(values))),
            ours::Value::BoolArray(values) => Value::Array(Array::Bool(values)),
            ours::Value::S64Array(values) => Value::Array(Array::I64(values)),
            ours::Value::F64Array(values) => Value::Array(Array::F64(values)),
        }
    }
}

impl From<ours::KeyValue> for KeyValue {
    fn from(kv: ours::KeyValue) -> KeyValue {
        KeyValue::new(kv.key, Value::from(kv.value))
    }
}

/// `wasi:otel` carries attribute values as JSON text: strings, booleans,
/// integers, floats and homogeneous arrays of them become typed values;
/// anything else (maps, mixed arrays, null, byte arrays, text that is not
/// JSON) is kept as the text itself, so nothing the guest sent is lost.
impl From<wasi_types::KeyValue> for KeyValue {
    fn from(kv: wasi_types::KeyValue) -> KeyValue {
        KeyValue::new(kv.key, json_value(kv.value))
    }
}

/// An attribute value from its JSON text (see the `wasi:otel` `From`).
pub(super) fn json_value(json: String) -> Value {
    use serde_json::Value as J;
    fn array(items: &[J]) -> Option<Array> {
        if let Some(strings) = items.iter().map(J::as_str).collect::<Option<Vec<_>>>() {
            return Some(Array::String(
                strings
                    .into_iter()
                    .map(|s| StringValue::from(s.to_string()))
                    .collect(),
            ));
        }
        if let Some(bools) = items.iter().map(J::as_bool).collect::<Option<Vec<_>>>() {
            return Some(Array::Bool(bools));
        }
        if let Some(ints) = items.iter().map(J::as_i64).collect::<Option<Vec<_>>>() {
            return Some(Array::I64(ints));
        }
        items
            .iter()
            .map(J::as_f64)
            .collect::<Option<Vec<_>>>()
            .map(Array::F64)
    }
    match serde_json::from_str::<J>(&json) {
        Ok(J::String(s)) => Value::from(s),
        Ok(J::Bool(b)) => Value::Bool(b),
        Ok(J::Number(n)) => match n.as_i64() {
            Some(i) => Value::I64(i),
            None => n
                .as_f64()
                .map_or_else(|| Value::from(json.clone()), Value::F64),
        },
        Ok(J::Array(items)) if !items.is_empty() => match array(&items) {
            Some(array) => Value::Array(array),
            None => Value::from(json),
        },
        _ => Value::from(json),
    }
}

impl From<ours::SpanKind> for otel::SpanKind {
    fn from(kind: ours::SpanKind) -> otel::SpanKind {
        match kind {
            ours::SpanKind::Internal => otel::SpanKind::Internal,
            ours::SpanKind::Server => otel::SpanKind::Server,
            ours::SpanKind::Client => otel::SpanKind::Client,
            ours::SpanKind::Producer => otel::SpanKind::Producer,
            ours::SpanKind::Consumer => otel::SpanKind::Consumer,
        }
    }
}

impl From<wasi::SpanKind> for otel::SpanKind {
    fn from(kind: wasi::SpanKind) -> otel::SpanKind {
        match kind {
            wasi::SpanKind::Internal => otel::SpanKind::Internal,
            wasi::SpanKind::Server => otel::SpanKind::Server,
            wasi::SpanKind::Client => otel::SpanKind::Client,
            wasi::SpanKind::Producer => otel::SpanKind::Producer,
            wasi::SpanKind::Consumer => otel::SpanKind::Consumer,
        }
    }
}

impl From<ours::Status> for otel::Status {
    fn from(status: ours::Status) -> otel::Status {
        match status {
            ours::Status::Unset => otel::Status::Unset,
            ours::Status::Ok => otel::Status::Ok,
            ours::Status::Error(description) => otel::Status::error(description),
        }
    }
}

impl From<wasi::Status> for otel::Status {
    fn from(status: wasi::Status) -> otel::Status {
        match status {
            wasi::Status::Unset => otel::Status::Unset,
            wasi::Status::Ok => otel::Status::Ok,
            wasi::Status::Error(description) => otel::Status::error(description),
        }
    }
}

impl From<&otel::SpanContext> for ours::SpanContext {
    fn from(sc: &otel::SpanContext) -> ours::SpanContext {
        ours::SpanContext {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
            sampled: sc.is_sampled(),
        }
    }
}

/// The WIT form of a span context (ids in lowercase hex, as W3C writes them).
impl From<&otel::SpanContext> for wasi::SpanContext {
    fn from(sc: &otel::SpanContext) -> wasi::SpanContext {
        let mut trace_flags = wasi::TraceFlags::empty();
        if sc.is_sampled() {
            trace_flags |= wasi::TraceFlags::SAMPLED;
        }
        wasi::SpanContext {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
            trace_flags,
            is_remote: sc.is_remote(),
            trace_state: sc
                .trace_state()
                .header()
                .split(',')
                .filter_map(|entry| entry.split_once('='))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }
}

/// A guest's span context whose trace or span id is not a valid W3C id.
#[derive(Debug)]
pub struct InvalidIds;

/// The guest's span context, if its ids are valid; an invalid
/// `trace-state` is taken as empty, as the interface says.
impl TryFrom<wasi::SpanContext> for otel::SpanContext {
    type Error = InvalidIds;

    fn try_from(context: wasi::SpanContext) -> Result<otel::SpanContext, InvalidIds> {
        let trace_id = TraceId::from_bytes(hex_id::<16>(&context.trace_id).ok_or(InvalidIds)?);
        let span_id = SpanId::from_bytes(hex_id::<8>(&context.span_id).ok_or(InvalidIds)?);
        let flags = if context.trace_flags.contains(wasi::TraceFlags::SAMPLED) {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let trace_state = TraceState::from_key_value(context.trace_state).unwrap_or_default();
        Ok(otel::SpanContext::new(
            trace_id,
            span_id,
            flags,
            context.is_remote,
            trace_state,
        ))
    }
}

/// A valid W3C id: the given number of lowercase hex digits, not all zero.
pub(super) fn hex_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut id = [0u8; N];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    (id != [0u8; N]).then_some(id)
}

/// A WASI wall-clock time as a `SystemTime` (both types are foreign here,
/// so this cannot be a `From`).
pub(super) fn time(datetime: Datetime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(datetime.seconds, datetime.nanoseconds)
}

/// A WASI wall-clock time in nanoseconds since the Unix epoch, as OTLP
/// carries it (saturating far in the future).
pub(super) fn nanos(datetime: Datetime) -> u64 {
    datetime
        .seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(datetime.nanoseconds))
}

/// An `AnyValue` from its `wasi:otel` JSON text, whole: strings, booleans,
/// integers, floats, arrays and maps (nested as OTLP nests them), `null`
/// as the empty value; text that is not JSON is kept as a string. Byte
/// arrays stay in the proposal's `data:` URI text.
pub(super) fn any_value(json: &str) -> otlp::AnyValue {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value) => from_json(value),
        Err(_) => otlp::AnyValue {
            value: Some(otlp::any_value::Value::StringValue(json.to_string())),
        },
    }
}

/// A parsed JSON value as an `AnyValue` (both types are foreign here, so
/// this cannot be a `From`).
fn from_json(value: serde_json::Value) -> otlp::AnyValue {
    use otlp::any_value::Value as V;
    use serde_json::Value as J;
    let value = match value {
        J::Null => None,
        J::Bool(b) => Some(V::BoolValue(b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Some(V::IntValue(i)),
            None => n.as_f64().map(V::DoubleValue),
        },
        J::String(s) => Some(V::StringValue(s)),
        J::Array(items) => Some(V::ArrayValue(otlp::ArrayValue {
            values: items.into_iter().map(from_json).collect(),
        })),
        J::Object(map) => Some(V::KvlistValue(otlp::KeyValueList {
            values: map
                .into_iter()
                .map(|(key, value)| otlp::KeyValue {
                    key,
                    value: Some(from_json(value)),
                    key_strindex: 0,
                })
                .collect(),
        })),
    };
    otlp::AnyValue { value }
}

/// An attribute as OTLP carries it, its value whole (see [`any_value`]).
impl From<wasi_types::KeyValue> for otlp::KeyValue {
    fn from(kv: wasi_types::KeyValue) -> otlp::KeyValue {
        otlp::KeyValue {
            value: Some(any_value(&kv.value)),
            key: kv.key,
            key_strindex: 0,
        }
    }
}

/// Attributes of a resource or a scope, at most [`MAX_POINT_ATTRIBUTES`]
/// (the rest dropped; they name no time series).
fn kvs(kvs: Vec<wasi_types::KeyValue>) -> Vec<otlp::KeyValue> {
    kvs.into_iter()
        .take(MAX_POINT_ATTRIBUTES)
        .map(otlp::KeyValue::from)
        .collect()
}

impl From<wasi_types::InstrumentationScope> for otlp::InstrumentationScope {
    fn from(scope: wasi_types::InstrumentationScope) -> otlp::InstrumentationScope {
        otlp::InstrumentationScope {
            name: scope.name,
            version: scope.version.unwrap_or_default(),
            attributes: kvs(scope.attributes),
            ..Default::default()
        }
    }
}

/// Attributes one data point (or exemplar) may carry; more make it too
/// large (OpenTelemetry's default attribute count limit).
pub const MAX_POINT_ATTRIBUTES: usize = 128;
/// Bytes of one attribute's key or value text, at most.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;
/// Buckets of an explicit histogram point, or of either side of an
/// exponential one, at most (the SDK's exponential default size, 160).
pub const MAX_BUCKETS: usize = 160;
/// Exemplars of one data point, at most.
pub const MAX_EXEMPLARS: usize = 64;

/// Why a guest's data point was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks OTLP's rules: a value that is not finite or does not fit,
    /// bucket counts that do not add up to the count or do not match the
    /// bounds, bounds out of order, malformed exemplar ids.
    Invalid,
    /// More attributes, buckets or exemplars than the bounds above, or an
    /// attribute longer than [`MAX_ATTRIBUTE_BYTES`].
    TooLarge,
}

/// A point's attributes, within the bounds.
fn point_attributes(attributes: Vec<wasi_types::KeyValue>) -> Result<Vec<otlp::KeyValue>, Refusal> {
    if attributes.len() > MAX_POINT_ATTRIBUTES
        || attributes
            .iter()
            .any(|kv| kv.key.len() > MAX_ATTRIBUTE_BYTES || kv.value.len() > MAX_ATTRIBUTE_BYTES)
    {
        return Err(Refusal::TooLarge);
    }
    Ok(attributes.into_iter().map(otlp::KeyValue::from).collect())
}

/// A finite float, else the point is invalid.
fn finite(x: f64) -> Result<f64, Refusal> {
    x.is_finite().then_some(x).ok_or(Refusal::Invalid)
}

/// A metric number as a float (histogram sums, minima and maxima are
/// doubles in OTLP).
fn float(number: wasi_metrics::MetricNumber) -> Result<f64, Refusal> {
    match number {
        wasi_metrics::MetricNumber::F64(x) => finite(x),
        wasi_metrics::MetricNumber::S64(n) => Ok(n as f64),
        wasi_metrics::MetricNumber::U64(n) => Ok(n as f64),
    }
}

/// A metric number as OTLP's: integers stay integers; a `u64` past
/// `i64::MAX` cannot be carried, and a float that is not finite is invalid.
impl TryFrom<wasi_metrics::MetricNumber> for number_data_point::Value {
    type Error = Refusal;

    fn try_from(number: wasi_metrics::MetricNumber) -> Result<Self, Refusal> {
        match number {
            wasi_metrics::MetricNumber::F64(x) => Ok(Self::AsDouble(finite(x)?)),
            wasi_metrics::MetricNumber::S64(n) => Ok(Self::AsInt(n)),
            wasi_metrics::MetricNumber::U64(n) => i64::try_from(n)
                .map(Self::AsInt)
                .map_err(|_| Refusal::Invalid),
        }
    }
}

/// An exemplar, its ids kept (both empty when no sampled span was active,
/// else valid W3C ids).
impl TryFrom<wasi_metrics::Exemplar> for metrics::Exemplar {
    type Error = Refusal;

    fn try_from(exemplar: wasi_metrics::Exemplar) -> Result<Self, Refusal> {
        let (trace_id, span_id) = if exemplar.trace_id.is_empty() && exemplar.span_id.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                hex_id::<16>(&exemplar.trace_id)
                    .ok_or(Refusal::Invalid)?
                    .to_vec(),
                hex_id::<8>(&exemplar.span_id)
                    .ok_or(Refusal::Invalid)?
                    .to_vec(),
            )
        };
        let value = match number_data_point::Value::try_from(exemplar.value)? {
            number_data_point::Value::AsDouble(x) => metrics::exemplar::Value::AsDouble(x),
            number_data_point::Value::AsInt(n) => metrics::exemplar::Value::AsInt(n),
        };
        Ok(metrics::Exemplar {
            filtered_attributes: point_attributes(exemplar.filtered_attributes)?,
            time_unix_nano: nanos(exemplar.time),
            span_id,
            trace_id,
            value: Some(value),
        })
    }
}

fn exemplars(exemplars: Vec<wasi_metrics::Exemplar>) -> Result<Vec<metrics::Exemplar>, Refusal> {
    if exemplars.len() > MAX_EXEMPLARS {
        return Err(Refusal::TooLarge);
    }
    exemplars
        .into_iter()
        .map(metrics::Exemplar::try_from)
        .collect()
}

/// OTLP's temporality. `low-memory` is a preference, not a temporality: as
/// the SDK reads it, delta for what only grows, cumulative for an up-down
/// sum.
fn temporality(temporality: wasi_metrics::Temporality, monotonic: bool) -> i32 {
    use metrics::AggregationTemporality as A;
    match temporality {
        wasi_metrics::Temporality::Cumulative => A::Cumulative as i32,
        wasi_metrics::Temporality::Delta => A::Delta as i32,
        wasi_metrics::Temporality::LowMemory if monotonic => A::Delta as i32,
        wasi_metrics::Temporality::LowMemory => A::Cumulative as i32,
    }
}

/// A gauge's or sum's point, at `start` (0: unknown) and `time`; a
/// monotonic sum cannot be negative.
fn number_point(
    attributes: Vec<wasi_types::KeyValue>,
    value: wasi_metrics::MetricNumber,
    points_exemplars: Vec<wasi_metrics::Exemplar>,
    (start, time): (u64, u64),
    monotonic: bool,
) -> Result<metrics::NumberDataPoint, Refusal> {
    let value = number_data_point::Value::try_from(value)?;
    let negative = match value {
        number_data_point::Value::AsDouble(x) => x < 0.0,
        number_data_point::Value::AsInt(n) => n < 0,
    };
    if monotonic && negative {
        return Err(Refusal::Invalid);
    }
    Ok(metrics::NumberDataPoint {
        attributes: point_attributes(attributes)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        exemplars: exemplars(points_exemplars)?,
        flags: 0,
        value: Some(value),
    })
}

/// The least and greatest values, finite and in order.
fn min_max(
    min: Option<wasi_metrics::MetricNumber>,
    max: Option<wasi_metrics::MetricNumber>,
) -> Result<(Option<f64>, Option<f64>), Refusal> {
    let min = min.map(float).transpose()?;
    let max = max.map(float).transpose()?;
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(Refusal::Invalid);
    }
    Ok((min, max))
}

/// The sum of `counts`, or `None` past `u64`.
fn total(counts: &[u64]) -> Option<u64> {
    counts.iter().try_fold(0u64, |sum, n| sum.checked_add(*n))
}

/// A guest's data point with its metric's start and end times (ns), which
/// OTLP carries on every point.
#[derive(Debug)]
struct Timed<P> {
    point: P,
    start: u64,
    time: u64,
}

/// An explicit-bucket histogram point: bounds finite and strictly
/// increasing, one more bucket than bounds (or no buckets at all), the
/// buckets adding up to the count.
impl TryFrom<Timed<wasi_metrics::HistogramDataPoint>> for metrics::HistogramDataPoint {
    type Error = Refusal;

    fn try_from(
        Timed { point, start, time }: Timed<wasi_metrics::HistogramDataPoint>,
    ) -> Result<Self, Refusal> {
        if point.bounds.len() > MAX_BUCKETS || point.bucket_counts.len() > MAX_BUCKETS + 1 {
            return Err(Refusal::TooLarge);
        }
        let ordered = point.bounds.iter().all(|b| b.is_finite())
            && point.bounds.windows(2).all(|pair| pair[0] < pair[1]);
        let matched = point.bucket_counts.is_empty()
            || (point.bucket_counts.len() == point.bounds.len() + 1
                && total(&point.bucket_counts) == Some(point.count));
        if !ordered || !matched {
            return Err(Refusal::Invalid);
        }
        let (min, max) = min_max(point.min, point.max)?;
        Ok(metrics::HistogramDataPoint {
            attributes: point_attributes(point.attributes)?,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count: point.count,
            sum: Some(float(point.sum)?),
            bucket_counts: point.bucket_counts,
            explicit_bounds: point.bounds,
            exemplars: exemplars(point.exemplars)?,
            flags: 0,
            min,
            max,
        })
    }
}

/// An exponential histogram point: a scale OTLP defines (−10 to 20), a
/// finite non-negative zero threshold, the zero count and both sides'
/// buckets adding up to the count.
impl TryFrom<Timed<wasi_metrics::ExponentialHistogramDataPoint>>
    for metrics::ExponentialHistogramDataPoint
{
    type Error = Refusal;

    fn try_from(
        Timed { point, start, time }: Timed<wasi_metrics::ExponentialHistogramDataPoint>,
    ) -> Result<Self, Refusal> {
        let (positive, negative) = (point.positive_bucket, point.negative_bucket);
        if positive.counts.len() > MAX_BUCKETS || negative.counts.len() > MAX_BUCKETS {
            return Err(Refusal::TooLarge);
        }
        let counted = total(&positive.counts)
            .zip(total(&negative.counts))
            .and_then(|(p, n)| p.checked_add(n)?.checked_add(point.zero_count));
        let valid = (-10..=20).contains(&point.scale)
            && point.zero_threshold.is_finite()
            && point.zero_threshold >= 0.0
            && counted == Some(point.count);
        if !valid {
            return Err(Refusal::Invalid);
        }
        let (min, max) = min_max(point.min, point.max)?;
        let buckets = |bucket: wasi_metrics::ExponentialBucket| Buckets {
            offset: bucket.offset,
            bucket_counts: bucket.counts,
        };
        Ok(metrics::ExponentialHistogramDataPoint {
            attributes: point_attributes(point.attributes)?,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count: point.count,
            sum: Some(float(point.sum)?),
            scale: i32::from(point.scale),
            zero_count: point.zero_count,
            positive: Some(buckets(positive)),
            negative: Some(buckets(negative)),
            flags: 0,
            exemplars: exemplars(point.exemplars)?,
            min,
            max,
            zero_threshold: point.zero_threshold,
        })
    }
}

/// The number of data points in `data`.
fn point_count(data: &wasi_metrics::MetricData) -> usize {
    use wasi_metrics::MetricData as M;
    match data {
        M::F64Gauge(g) | M::U64Gauge(g) | M::S64Gauge(g) => g.data_points.len(),
        M::F64Sum(s) | M::U64Sum(s) | M::S64Sum(s) => s.data_points.len(),
        M::F64Histogram(h) | M::U64Histogram(h) | M::S64Histogram(h) => h.data_points.len(),
        M::F64ExponentialHistogram(h)
        | M::U64ExponentialHistogram(h)
        | M::S64ExponentialHistogram(h) => h.data_points.len(),
    }
}

/// What became of a guest's `resource-metrics`: its scopes as OTLP, and
/// the points kept and refused.
#[derive(Debug, Default)]
pub(super) struct Converted {
    /// The guest's resource attributes (the host merges them with the
    /// service's).
    pub resource: Vec<otlp::KeyValue>,
    /// The resource's schema URL.
    pub schema_url: String,
    /// The scopes with the points kept (scopes and metrics left with none
    /// are left out).
    pub scopes: Vec<metrics::ScopeMetrics>,
    /// Points kept.
    pub kept: usize,
    /// Points refused as [`Refusal::Invalid`].
    pub invalid: u64,
    /// Points refused as [`Refusal::TooLarge`].
    pub too_large: u64,
    /// Points past the budget.
    pub over_budget: u64,
}

impl Converted {
    /// Keeps each point that converts, while the budget lasts.
    fn points<W, P>(
        &mut self,
        points: Vec<W>,
        budget: usize,
        convert: impl Fn(W) -> Result<P, Refusal>,
    ) -> Vec<P> {
        let mut kept = Vec::new();
        for point in points {
            if self.kept >= budget {
                self.over_budget += 1;
                continue;
            }
            match convert(point) {
                Ok(point) => {
                    self.kept += 1;
                    kept.push(point);
                }
                Err(Refusal::Invalid) => self.invalid += 1,
                Err(Refusal::TooLarge) => self.too_large += 1,
            }
        }
        kept
    }

    /// One metric's data as OTLP, its points converted one by one; `None`
    /// when none is kept.
    fn data(
        &mut self,
        data: wasi_metrics::MetricData,
        budget: usize,
    ) -> Option<metrics::metric::Data> {
        use metrics::metric::Data;
        use wasi_metrics::MetricData as M;
        let data = match data {
            M::F64Gauge(gauge) | M::U64Gauge(gauge) | M::S64Gauge(gauge) => {
                let times = (gauge.start_time.map_or(0, nanos), nanos(gauge.time));
                Data::Gauge(metrics::Gauge {
                    data_points: self.points(gauge.data_points, budget, |p| {
                        number_point(p.attributes, p.value, p.exemplars, times, false)
                    }),
                })
            }
            M::F64Sum(sum) | M::U64Sum(sum) | M::S64Sum(sum) => {
                let times = (nanos(sum.start_time), nanos(sum.time));
                let monotonic = sum.is_monotonic;
                Data::Sum(metrics::Sum {
                    data_points: self.points(sum.data_points, budget, |p| {
                        number_point(p.attributes, p.value, p.exemplars, times, monotonic)
                    }),
                    aggregation_temporality: temporality(sum.temporality, monotonic),
                    is_monotonic: monotonic,
                })
            }
            M::F64Histogram(h) | M::U64Histogram(h) | M::S64Histogram(h) => {
                let (start, time) = (nanos(h.start_time), nanos(h.time));
                Data::Histogram(metrics::Histogram {
                    data_points: self.points(h.data_points, budget, |point| {
                        metrics::HistogramDataPoint::try_from(Timed { point, start, time })
                    }),
                    aggregation_temporality: temporality(h.temporality, true),
                })
            }
            M::F64ExponentialHistogram(h)
            | M::U64ExponentialHistogram(h)
            | M::S64ExponentialHistogram(h) => {
                let (start, time) = (nanos(h.start_time), nanos(h.time));
                Data::ExponentialHistogram(metrics::ExponentialHistogram {
                    data_points: self.points(h.data_points, budget, |point| {
                        metrics::ExponentialHistogramDataPoint::try_from(Timed {
                            point,
                            start,
                            time,
                        })
                    }),
                    aggregation_temporality: temporality(h.temporality, true),
                })
            }
        };
        let empty = match &data {
            Data::Gauge(g) => g.data_points.is_empty(),
            Data::Sum(s) => s.data_points.is_empty(),
            Data::Histogram(h) => h.data_points.is_empty(),
            Data::ExponentialHistogram(h) => h.data_points.is_empty(),
            Data::Summary(s) => s.data_points.is_empty(),
        };
        (!empty).then_some(data)
    }

    /// A guest's `resource-metrics` as OTLP, keeping at most `budget`
    /// points, every point checked (a metric whose name is empty or over
    /// 255 bytes has all its points refused as invalid).
    pub(super) fn resource_metrics(rm: wasi_metrics::ResourceMetrics, budget: usize) -> Converted {
        let mut converted = Converted {
            resource: kvs(rm.resource.attributes),
            schema_url: rm.resource.schema_url.unwrap_or_default(),
            ..Default::default()
        };
        for scope in rm.scope_metrics {
            let schema_url = scope.scope.schema_url.clone().unwrap_or_default();
            let mut kept = Vec::new();
            for metric in scope.metrics {
                let named = !metric.name.is_empty() && metric.name.len() <= 255;
                let data = if named {
                    converted.data(metric.data, budget)
                } else {
                    converted.invalid += point_count(&metric.data) as u64;
                    None
                };
                if let Some(data) = data {
                    kept.push(metrics::Metric {
                        name: metric.name,
                        description: metric.description.chars().take(1023).collect(),
                        unit: metric.unit.chars().take(63).collect(),
                        metadata: Vec::new(),
                        data: Some(data),
                    });
                }
            }
            if !kept.is_empty() {
                converted.scopes.push(metrics::ScopeMetrics {
                    scope: Some(otlp::InstrumentationScope::from(scope.scope)),
                    metrics: kept,
                    schema_url,
                });
            }
        }
        converted
    }
}

/// A log record a guest emitted through `wasi:otel/logs`, as OTLP, with
/// what the views that show it need.
#[derive(Debug)]
pub(super) struct GuestRecord {
    /// The record.
    pub record: logs::LogRecord,
    /// The scope the guest named, if it named one.
    pub scope: Option<otlp::InstrumentationScope>,
    /// The span the record belongs to.
    pub span: otel::SpanContext,
    /// The body as text.
    pub body: String,
    /// Whether the body was cut to [`MAX_LINE_BYTES`] (a guest's line's
    /// limit).
    pub cut: bool,
}

/// A guest's log record as OTLP. Its trace and span are the ids it gives
/// when both are valid W3C ids, else those of `current` (the innermost
/// open span when it was emitted), as for its stdout lines. Severity
/// numbers outside 1–24 become unspecified (0). At most `limits.count`
/// attributes are kept, each within [`MAX_ATTRIBUTE_BYTES`] (the others
/// counted in `dropped_attributes_count`); a body longer than
/// [`MAX_LINE_BYTES`] of JSON is kept as that much text. The guest's
/// resource is not carried: records go out under the service's (as Spin
/// does), which joins them with its spans and metrics.
pub(super) fn log_record(
    data: wasi_logs::LogRecord,
    current: &otel::SpanContext,
    limits: AttributeLimits,
) -> GuestRecord {
    let given = data
        .trace_id
        .as_deref()
        .and_then(hex_id::<16>)
        .zip(data.span_id.as_deref().and_then(hex_id::<8>));
    let span = match given {
        Some((trace_id, span_id)) => {
            let trace_id = TraceId::from_bytes(trace_id);
            let flags = match data.trace_flags {
                Some(flags) if flags.contains(wasi::TraceFlags::SAMPLED) => TraceFlags::SAMPLED,
                Some(_) => TraceFlags::default(),
                None if current.trace_id() == trace_id => current.trace_flags(),
                None => TraceFlags::default(),
            };
            otel::SpanContext::new(
                trace_id,
                SpanId::from_bytes(span_id),
                flags,
                false,
                TraceState::default(),
            )
        }
        None => current.clone(),
    };
    let (mut body_text, mut cut) = (data.body.clone().unwrap_or_default(), false);
    let body = data.body.map(|json| {
        if json.len() <= MAX_LINE_BYTES {
            return any_value(&json);
        }
        let mut end = MAX_LINE_BYTES;
        while !json.is_char_boundary(end) {
            end -= 1;
        }
        cut = true;
        body_text = json[..end].to_string();
        otlp::AnyValue {
            value: Some(otlp::any_value::Value::StringValue(body_text.clone())),
        }
    });
    if let Some(otlp::any_value::Value::StringValue(s)) =
        body.as_ref().and_then(|b| b.value.as_ref())
    {
        body_text = s.clone();
    }
    let given_attributes = data.attributes.unwrap_or_default();
    let offered = given_attributes.len();
    let attributes: Vec<otlp::KeyValue> = given_attributes
        .into_iter()
        .filter(|kv| kv.key.len() <= MAX_ATTRIBUTE_BYTES && kv.value.len() <= MAX_ATTRIBUTE_BYTES)
        .take(limits.count)
        .map(otlp::KeyValue::from)
        .collect();
    let (trace_id, span_id, flags) = if span.is_valid() {
        (
            span.trace_id().to_bytes().to_vec(),
            span.span_id().to_bytes().to_vec(),
            u32::from(span.trace_flags().to_u8()),
        )
    } else {
        (Vec::new(), Vec::new(), 0)
    };
    let record = logs::LogRecord {
        time_unix_nano: data.timestamp.map_or(0, nanos),
        observed_time_unix_nano: data
            .observed_timestamp
            .map_or_else(crate::telemetry::metrics::now_nanos, nanos),
        severity_number: data
            .severity_number
            .filter(|n| (1..=24).contains(n))
            .map_or(0, i32::from),
        severity_text: data.severity_text.unwrap_or_default(),
        body,
        dropped_attributes_count: u32::try_from(offered - attributes.len()).unwrap_or(u32::MAX),
        attributes,
        flags,
        trace_id,
        span_id,
        event_name: data.event_name.unwrap_or_default(),
    };
    GuestRecord {
        record,
        scope: data
            .instrumentation_scope
            .map(otlp::InstrumentationScope::from),
        span,
        body: body_text,
        cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_from_json() {
        let v = |json: &str| json_value(json.to_string());
        assert_eq!(v(r#""EUR""#), Value::from("EUR"));
        assert_eq!(v("true"), Value::Bool(true));
        assert_eq!(v("42"), Value::I64(42));
        assert_eq!(v("-1.5"), Value::F64(-1.5));
        assert_eq!(
            v(r#"["a","b"]"#),
            Value::Array(Array::String(vec!["a".into(), "b".into()]))
        );
        assert_eq!(v("[1,2]"), Value::Array(Array::I64(vec![1, 2])));
        assert_eq!(v("[1,2.5]"), Value::Array(Array::F64(vec![1.0, 2.5])));
        // Kept as text: maps, mixed arrays, null, empty arrays, not JSON.
        for text in [r#"{"a":1}"#, r#"[1,"a"]"#, "null", "[]", "not json"] {
            assert_eq!(v(text), Value::from(text.to_string()), "{text}");
        }
    }

    #[test]
    fn ids_must_be_valid_w3c_ids() {
        assert!(hex_id::<8>("00f067aa0ba902b7").is_some());
        for bad in [
            "",
            "0000000000000000",
            "00F067AA0BA902B7",
            "00f067aa0ba902b",
            "00f067aa0ba902bz",
        ] {
            assert!(hex_id::<8>(bad).is_none(), "{bad}");
        }
        assert!(hex_id::<16>("4bf92f3577b34da6a3ce929d0e0e4736").is_some());
    }

    const T: Datetime = Datetime {
        seconds: 1,
        nanoseconds: 2,
    };

    fn histogram(
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
    ) -> wasi_metrics::HistogramDataPoint {
        wasi_metrics::HistogramDataPoint {
            attributes: vec![],
            count,
            bounds,
            bucket_counts: counts,
            min: None,
            max: None,
            sum: wasi_metrics::MetricNumber::F64(1.0),
            exemplars: vec![],
        }
    }

    fn timed<P>(point: P) -> Timed<P> {
        Timed {
            point,
            start: 0,
            time: nanos(T),
        }
    }

    /// A histogram point is forwarded only if its buckets match its
    /// bounds and add up to its count, its bounds ascend and its floats
    /// are finite; too many buckets make it too large.
    #[test]
    #[rustfmt::skip]
    fn histogram_points_are_checked() {
        use metrics::HistogramDataPoint as H;
        let check = |p| H::try_from(timed(p)).map(|_| ());
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 0, 2], 3)), Ok(()));
        assert_eq!(check(histogram(vec![], vec![], 3)), Ok(()));
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 0, 2], 4)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![2.0, 1.0], vec![1, 0, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![f64::NAN], vec![1, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![1.0], vec![u64::MAX, 2], 1)), Err(Refusal::Invalid));
        assert_eq!(check(wasi_metrics::HistogramDataPoint { sum: wasi_metrics::MetricNumber::F64(f64::INFINITY), ..histogram(vec![], vec![], 0) }), Err(Refusal::Invalid));
        let many: Vec<f64> = (0..=MAX_BUCKETS).map(|n| n as f64).collect();
        let counts = vec![0; many.len() + 1];
        assert_eq!(check(histogram(many, counts, 0)), Err(Refusal::TooLarge));
    }

    /// Numbers keep their type; what OTLP cannot carry is refused.
    #[test]
    #[rustfmt::skip]
    fn metric_numbers() {
        use number_data_point::Value as V;
        use wasi_metrics::MetricNumber as N;
        assert_eq!(V::try_from(N::S64(-3)), Ok(V::AsInt(-3)));
        assert_eq!(V::try_from(N::U64(7)), Ok(V::AsInt(7)));
        assert_eq!(V::try_from(N::F64(2.5)), Ok(V::AsDouble(2.5)));
        assert_eq!(V::try_from(N::U64(u64::MAX)), Err(Refusal::Invalid));
        assert_eq!(V::try_from(N::F64(f64::NAN)), Err(Refusal::Invalid));
    }

    /// A call keeps at most its budget of points; the rest are counted,
    /// as are invalid points, which do not spend the budget.
    #[test]
    fn points_past_the_budget_are_counted() {
        let point = |value: f64| wasi_metrics::GaugeDataPoint {
            attributes: vec![],
            value: wasi_metrics::MetricNumber::F64(value),
            exemplars: vec![],
        };
        let mut points = vec![point(f64::NAN)];
        points.extend((0..10).map(|n| point(f64::from(n))));
        let rm = wasi_metrics::ResourceMetrics {
            resource: wasi_types::Resource {
                attributes: vec![],
                schema_url: None,
            },
            scope_metrics: vec![wasi_metrics::ScopeMetrics {
                scope: wasi_types::InstrumentationScope {
                    name: "s".into(),
                    version: None,
                    schema_url: None,
                    attributes: vec![],
                },
                metrics: vec![wasi_metrics::Metric {
                    name: "g".into(),
                    description: String::new(),
                    unit: String::new(),
                    data: wasi_metrics::MetricData::F64Gauge(wasi_metrics::Gauge {
                        data_points: points,
                        start_time: None,
                        time: T,
                    }),
                }],
            }],
        };
        let converted = Converted::resource_metrics(rm, 4);
        assert_eq!(
            (converted.kept, converted.invalid, converted.over_budget),
            (4, 1, 6)
        );
        assert_eq!(converted.scopes[0].metrics.len(), 1);
    }

    /// `low-memory` is delta, except for an up-down sum.
    #[test]
    fn low_memory_temporality() {
        use metrics::AggregationTemporality as A;
        use wasi_metrics::Temporality as W;
        assert_eq!(temporality(W::LowMemory, true), A::Delta as i32);
        assert_eq!(temporality(W::LowMemory, false), A::Cumulative as i32);
        assert_eq!(temporality(W::Cumulative, true), A::Cumulative as i32);
    }

    /// A record is in the span whose ids it gives, else in the current one.
    #[test]
    fn log_records_keep_their_trace() {
        let current = otel::SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(2u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let record = |trace_id: Option<&str>, span_id: Option<&str>| wasi_logs::LogRecord {
            timestamp: None,
            observed_timestamp: None,
            severity_text: None,
            severity_number: Some(30),
            body: Some(r#"{"a":[1,null]}"#.into()),
            attributes: None,
            event_name: None,
            resource: None,
            instrumentation_scope: None,
            trace_id: trace_id.map(String::from),
            span_id: span_id.map(String::from),
            trace_flags: None,
        };
        let limits = AttributeLimits::default();
        let given = log_record(
            record(Some(&"1".repeat(32)), Some("00f067aa0ba902b7")),
            &current,
            limits,
        );
        assert_eq!(hex(&given.record.span_id), "00f067aa0ba902b7");
        assert_eq!(given.record.flags, 0, "another trace, no flags given");
        assert_eq!(given.record.severity_number, 0, "30 is no severity");
        let fallback = log_record(record(Some("zz"), None), &current, limits);
        assert_eq!(fallback.span, current);
        assert_eq!(fallback.record.flags, 1);
        assert!(matches!(
            given.record.body.and_then(|b| b.value),
            Some(otlp::any_value::Value::KvlistValue(_))
        ));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
