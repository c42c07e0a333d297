//! Every conversion between a WIT type of the guest interfaces and its
//! OpenTelemetry counterpart, each written once, as `From` (or `TryFrom`
//! where a guest's value may be invalid): our `wasm-otel:host/tracing` and
//! `wasi:otel` each have their own WIT types, and both host sides convert
//! through these.
//!
//! `wasi:otel`'s metrics and log records become OTLP (`opentelemetry-proto`)
//! directly, as the host exports them: `otlp_metrics` (every data kind,
//! number type, exemplar and temporality kept, each data point checked and
//! forwarded whole or refused, with its
//! [`Refusal`](otlp_metrics::Refusal)) and `otlp_logs`. What
//! they share (times, `AnyValue`s, attributes, scopes) is here.

mod otlp_logs;
mod otlp_metrics;

pub use otlp_logs::log_record;
pub use otlp_metrics::Converted;
use otlp_metrics::MAX_POINT_ATTRIBUTES;

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{self as otel, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use opentelemetry_proto::tonic::common::v1 as otlp;

use super::bindings::tracing as ours;
use super::bindings::wasi::otel::tracing as wasi;
use super::bindings::wasi::otel::types as wasi_types;

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
/// as the empty value; byte arrays (the proposal's `data:` URIs) as
/// bytes; text that is not JSON is kept as a string.
pub(super) fn any_value(json: &str) -> otlp::AnyValue {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value) => from_json(value),
        Err(_) => otlp::AnyValue {
            value: Some(otlp::any_value::Value::StringValue(json.to_string())),
        },
    }
}

/// The bytes of a `wasi:otel` byte array, which the proposal writes as a
/// `data:application/octet-stream;base64,…` URI; `None` for any other
/// string (kept as text).
fn bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let encoded = text.strip_prefix("data:application/octet-stream;base64,")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
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
        J::String(s) => Some(bytes(&s).map_or(V::StringValue(s), V::BytesValue)),
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

    /// `wasi:otel` values as OTLP has them, whole: byte arrays (the
    /// proposal's `data:` URIs) as bytes, other strings as text.
    #[test]
    fn any_values_from_json() {
        use otlp::any_value::Value as V;
        let v = |json: &str| any_value(json).value;
        #[rustfmt::skip]
        let cases: &[(&str, Option<V>)] = &[
            (r#""data:application/octet-stream;base64,AAEC/w==""#, Some(V::BytesValue(vec![0, 1, 2, 255]))),
            (r#""data:application/octet-stream;base64,!!""#,      Some(V::StringValue("data:application/octet-stream;base64,!!".into()))),
            (r#""data:text/plain;base64,AAEC""#,                   Some(V::StringValue("data:text/plain;base64,AAEC".into()))),
            (r#""EUR""#,                                             Some(V::StringValue("EUR".into()))),
            ("7",                                                    Some(V::IntValue(7))),
            ("null",                                                 None),
            ("not json",                                             Some(V::StringValue("not json".into()))),
        ];
        for (json, expected) in cases {
            assert_eq!(&v(json), expected, "{json}");
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
}
