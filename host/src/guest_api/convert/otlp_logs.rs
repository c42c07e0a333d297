//! `wasi:otel/logs` → OTLP: a guest's `log-record` as an
//! `opentelemetry-proto` record, in the trace and span it names or the one
//! innermost when it was emitted.

use opentelemetry::trace::{self as otel, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::common::v1 as otlp;
use opentelemetry_proto::tonic::logs::v1 as logs;

use super::super::attributes::AttributeLimits;
use super::super::bindings::wasi::otel::logs as wasi_logs;
use super::super::bindings::wasi::otel::tracing as wasi;
use super::super::output::MAX_LINE_BYTES;
use super::otlp_metrics::MAX_ATTRIBUTE_BYTES;
use super::{any_value, hex_id, nanos};

/// A log record a guest emitted through `wasi:otel/logs`, as OTLP, with
/// what the views that show it need.
#[derive(Debug)]
pub struct GuestRecord {
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
pub fn log_record(
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
