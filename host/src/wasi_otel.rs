//! The host side of `wasi:otel/tracing@0.2.0-rc.2`, the WASI proposal's
//! tracing interface: a guest instrumented with an OpenTelemetry SDK (as for
//! Spin or wasmCloud) announces each span it starts (`on-start`), reports
//! each span it ends, whole (`on-end`), and asks for the host's span to
//! parent its root spans on (`outer-span-context`).
//!
//! Announced spans join the request's stack of open spans, the same stack
//! as spans started through `wasm-otel:host/tracing`: the innermost open
//! span of either interface is what `outer-span-context` returns and the
//! parent of the host's CLIENT spans and of the next `wasm-otel` span.
//! Reported spans are recorded through the SDK with the guest's ids, times
//! and contents, within the request's span limit and the `OTEL_*` limits.
//!
//! Calls never fail: a span whose ids are not valid W3C ids is ignored, as
//! the interface has no way to say so and telemetry must not change what a
//! service does.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    self as otel, SpanContext as OtelSpanContext, SpanId, TraceContextExt, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use crate::bindings::wasi::otel::tracing::{
    Event, Host, Link, SpanContext, SpanData, SpanKind, Status, TraceFlags as WitFlags,
};
use crate::bindings::wasi::otel::types::{InstrumentationScope as WitScope, KeyValue as WitKv};
use crate::propagation::RANDOM;
use crate::spans::{AttributeLimits, RequestSpans};
use crate::telemetry::ReportedSpan;

impl Host for RequestSpans {
    fn on_start(&mut self, context: SpanContext) -> wasmtime::Result<()> {
        let trace = self.current().span().span_context().clone();
        if let Some(context) = span_context(context, &trace) {
            self.announce(context);
        }
        Ok(())
    }

    fn on_end(&mut self, span: SpanData) -> wasmtime::Result<()> {
        let trace = self.current().span().span_context().clone();
        if let Some(span) = reported(span, self.attribute_limits, &trace) {
            self.report(span);
        }
        Ok(())
    }

    fn outer_span_context(&mut self) -> wasmtime::Result<SpanContext> {
        Ok(wit_span_context(self.current().span().span_context()))
    }
}

/// The WIT form of `sc` (ids in lowercase hex, as W3C writes them).
fn wit_span_context(sc: &OtelSpanContext) -> SpanContext {
    let mut trace_flags = WitFlags::empty();
    if sc.is_sampled() {
        trace_flags |= WitFlags::SAMPLED;
    }
    SpanContext {
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

/// A valid W3C id: the given number of lowercase hex digits, not all zero.
fn hex_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut id = [0u8; N];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    (id != [0u8; N]).then_some(id)
}

/// The guest's span context, if its ids are valid; an invalid
/// `trace-state` is taken as empty, as the interface says.
///
/// `wasi:otel`'s `trace-flags` name only `sampled`, so the random trace-id
/// flag cannot come from the guest. It belongs to the trace id (W3C Trace
/// Context § "Random Trace ID Flag": set on every `traceparent` that uses
/// the same `trace-id`), so a context in the trace of `trace` (the host's
/// innermost open span) takes `trace`'s random flag.
fn span_context(context: SpanContext, trace: &OtelSpanContext) -> Option<OtelSpanContext> {
    let trace_id = TraceId::from_bytes(hex_id::<16>(&context.trace_id)?);
    let span_id = SpanId::from_bytes(hex_id::<8>(&context.span_id)?);
    let mut flags = 0;
    if context.trace_flags.contains(WitFlags::SAMPLED) {
        flags |= TraceFlags::SAMPLED.to_u8();
    }
    if trace.is_valid() && trace.trace_id() == trace_id {
        flags |= trace.trace_flags().to_u8() & RANDOM;
    }
    let flags = TraceFlags::new(flags);
    let trace_state = TraceState::from_key_value(context.trace_state).unwrap_or_default();
    Some(OtelSpanContext::new(
        trace_id,
        span_id,
        flags,
        context.is_remote,
        trace_state,
    ))
}

fn time(datetime: Datetime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(datetime.seconds, datetime.nanoseconds)
}

/// An attribute value from its JSON text: strings, booleans, integers,
/// floats and homogeneous arrays of them become typed values; anything else
/// (maps, mixed arrays, null, byte arrays, text that is not JSON) is kept as
/// the text itself, so nothing the guest sent is lost.
fn value(json: String) -> Value {
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

fn attributes(kvs: Vec<WitKv>, limits: AttributeLimits) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| limits.truncate(KeyValue::new(kv.key, value(kv.value))))
        .collect()
}

fn kind(kind: SpanKind) -> otel::SpanKind {
    match kind {
        SpanKind::Client => otel::SpanKind::Client,
        SpanKind::Server => otel::SpanKind::Server,
        SpanKind::Producer => otel::SpanKind::Producer,
        SpanKind::Consumer => otel::SpanKind::Consumer,
        SpanKind::Internal => otel::SpanKind::Internal,
    }
}

fn scope(scope: WitScope, limits: AttributeLimits) -> InstrumentationScope {
    let mut builder = InstrumentationScope::builder(scope.name)
        .with_attributes(attributes(scope.attributes, limits));
    if let Some(version) = scope.version {
        builder = builder.with_version(version);
    }
    if let Some(schema_url) = scope.schema_url {
        builder = builder.with_schema_url(schema_url);
    }
    builder.build()
}

/// The span the guest reported, if its ids are valid. A parent id that is
/// not a valid span id makes the span a root of its trace.
fn reported(
    span: SpanData,
    limits: AttributeLimits,
    trace: &OtelSpanContext,
) -> Option<ReportedSpan> {
    let context = span_context(span.span_context, trace)?;
    let parent = hex_id::<8>(&span.parent_span_id).map(SpanId::from_bytes);
    Some(ReportedSpan {
        context,
        parent,
        name: span.name,
        kind: kind(span.span_kind),
        start: time(span.start_time),
        // A span does not end before it starts.
        end: time(span.end_time).max(time(span.start_time)),
        attributes: attributes(span.attributes, limits),
        events: span
            .events
            .into_iter()
            .map(|event: Event| {
                otel::Event::new(
                    event.name,
                    time(event.time),
                    attributes(event.attributes, limits),
                    0,
                )
            })
            .collect(),
        links: span
            .links
            .into_iter()
            .filter_map(|link: Link| {
                Some(otel::Link::new(
                    span_context(link.span_context, trace)?,
                    attributes(link.attributes, limits),
                    0,
                ))
            })
            .collect(),
        status: match span.status {
            Status::Unset => otel::Status::Unset,
            Status::Ok => otel::Status::Ok,
            Status::Error(description) => otel::Status::error(description),
        },
        scope: scope(span.instrumentation_scope, limits),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_from_json() {
        let v = |json: &str| value(json.to_string());
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
}
