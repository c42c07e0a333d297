//! One stored span, in the form it arrived in: this process's spans as the
//! SDK ended them ([`SpanData`], moved in, nothing converted), other
//! processes' as OTLP delivered them (a protobuf [`Span`]). What search
//! reads (service, name, kind, times, status, tags) is read from either
//! form in place; a span is converted to OTLP only when a page or the API
//! shows it ([`Record::otlp`]).
//!
//! The log lines shown under a span (a guest's output in this process, OTLP
//! log records from others) are kept beside it, [`MAX_LINES_PER_SPAN`] at
//! most and then a count, and shown as OTLP events named `log` (Jaeger span
//! logs with `level` and `message` fields).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, Status as SdkStatus, TraceState};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_sdk::trace::SpanData;

/// Log lines drawn under one span, at most; more are counted in one last
/// event.
pub const MAX_LINES_PER_SPAN: usize = 20;

/// OTLP's status code for an error.
pub const STATUS_ERROR: i32 = 2;

/// A span as it arrived.
#[derive(Debug, Clone)]
pub enum Body {
    /// A span of this process, as its tracer provider ended it (boxed: a
    /// record is moved as it is stored, and a trace's records are kept in
    /// a vector that grows).
    Sdk(Box<SpanData>),
    /// A span received over OTLP, with its instrumentation scope (shared,
    /// by `Arc`, between the spans of one export).
    Otlp {
        /// The span (boxed, as above).
        span: Box<Span>,
        /// Its scope.
        scope: Arc<InstrumentationScope>,
    },
}

/// One log line under a span.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When it was written, in Unix nanoseconds.
    pub time: u64,
    /// Its severity as text (`INFO`, `WARN`, …).
    pub level: String,
    /// The line.
    pub message: String,
}

impl LogLine {
    /// What keeping it costs, for the store's byte budget.
    pub fn cost(&self) -> usize {
        std::mem::size_of::<LogLine>() + self.level.len() + self.message.len()
    }
}

/// The log lines of one span: the first [`MAX_LINES_PER_SPAN`], and how
/// many more there were.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lines {
    /// The lines kept, in arrival order.
    pub kept: Vec<LogLine>,
    /// Lines past the limit, shown as a count.
    pub more: u64,
}

impl Lines {
    /// Adds `line`; returns what keeping it costs (0 when only counted).
    pub fn push(&mut self, line: LogLine) -> usize {
        if self.kept.len() >= MAX_LINES_PER_SPAN {
            self.more += 1;
            return 0;
        }
        let cost = line.cost();
        self.kept.push(line);
        cost
    }

    /// Adds every line of `other`, in order; returns the cost of those kept.
    pub fn append(&mut self, other: Lines) -> usize {
        let cost = other.kept.into_iter().map(|line| self.push(line)).sum();
        self.more += other.more;
        cost
    }

    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more == 0
    }

    /// What the lines cost, for the store's byte budget.
    pub fn cost(&self) -> usize {
        self.kept.iter().map(LogLine::cost).sum()
    }
}

/// One stored span with the resource it was reported under.
#[derive(Debug, Clone)]
pub struct Record {
    /// The resource (`service.name` and the rest): one per tracer provider
    /// for this process's spans, one per export for received ones.
    pub resource: Arc<Resource>,
    /// The span.
    pub body: Body,
    /// The log lines written in it.
    pub lines: Lines,
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Record {
    /// The span id.
    pub fn span_id(&self) -> [u8; 8] {
        match &self.body {
            Body::Sdk(span) => span.span_context.span_id().to_bytes(),
            Body::Otlp { span, .. } => span.span_id[..].try_into().unwrap_or_default(),
        }
    }

    /// The span's name (Jaeger's operation).
    pub fn name(&self) -> &str {
        match &self.body {
            Body::Sdk(span) => &span.name,
            Body::Otlp { span, .. } => &span.name,
        }
    }

    /// The span kind, as OTLP numbers it.
    pub fn kind(&self) -> i32 {
        use opentelemetry::trace::SpanKind as K;
        match &self.body {
            Body::Sdk(span) => match span.span_kind {
                K::Internal => 1,
                K::Server => 2,
                K::Client => 3,
                K::Producer => 4,
                K::Consumer => 5,
            },
            Body::Otlp { span, .. } => span.kind,
        }
    }

    /// The start, in Unix nanoseconds.
    pub fn start(&self) -> u64 {
        match &self.body {
            Body::Sdk(span) => nanos(span.start_time),
            Body::Otlp { span, .. } => span.start_time_unix_nano,
        }
    }

    /// The end, in Unix nanoseconds.
    pub fn end(&self) -> u64 {
        match &self.body {
            Body::Sdk(span) => nanos(span.end_time),
            Body::Otlp { span, .. } => span.end_time_unix_nano,
        }
    }

    /// The status code, as OTLP numbers it (0 unset, 1 ok, 2 error).
    pub fn status_code(&self) -> i32 {
        match &self.body {
            Body::Sdk(span) => match span.status {
                SdkStatus::Unset => 0,
                SdkStatus::Ok => 1,
                SdkStatus::Error { .. } => STATUS_ERROR,
            },
            Body::Otlp { span, .. } => span.status.as_ref().map_or(0, |s| s.code),
        }
    }

    /// The `service.name` of the span's resource (empty when it has none).
    pub fn service(&self) -> &str {
        self.resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or("")
    }

    /// Whether the span, its events, its log lines or its resource carry
    /// the attribute `key` with `value` as text ([`value_text`]).
    pub fn has_attribute(&self, key: &str, value: &str) -> bool {
        let in_proto = |list: &[KeyValue]| {
            list.iter()
                .any(|kv| kv.key == key && value_text(kv.value.as_ref()) == value)
        };
        let in_sdk = |list: &[opentelemetry::KeyValue]| {
            list.iter().any(|kv| {
                kv.key.as_str() == key
                    && value_text(Some(&AnyValue::from(kv.value.clone()))) == value
            })
        };
        let in_span = match &self.body {
            Body::Sdk(span) => {
                in_sdk(&span.attributes) || span.events.iter().any(|e| in_sdk(&e.attributes))
            }
            Body::Otlp { span, .. } => {
                in_proto(&span.attributes) || span.events.iter().any(|e| in_proto(&e.attributes))
            }
        };
        in_span
            || in_proto(&self.resource.attributes)
            || self.lines.kept.iter().any(|line| match key {
                "level" => line.level == value,
                "message" => line.message == value,
                _ => false,
            })
    }

    /// Whether one of the span's links carries the attribute `key` with
    /// `value` as text.
    pub fn has_link_attribute(&self, key: &str, value: &str) -> bool {
        match &self.body {
            Body::Sdk(span) => span.links.iter().any(|link| {
                link.attributes.iter().any(|kv| {
                    kv.key.as_str() == key
                        && value_text(Some(&AnyValue::from(kv.value.clone()))) == value
                })
            }),
            Body::Otlp { span, .. } => span.links.iter().any(|link| {
                link.attributes
                    .iter()
                    .any(|kv| kv.key == key && value_text(kv.value.as_ref()) == value)
            }),
        }
    }

    /// The instrumentation scope, as OTLP has it.
    pub fn scope(&self) -> Cow<'_, InstrumentationScope> {
        match &self.body {
            Body::Sdk(span) => Cow::Owned(InstrumentationScope::from((
                &span.instrumentation_scope,
                None,
            ))),
            Body::Otlp { scope, .. } => Cow::Borrowed(scope),
        }
    }

    /// The span as OTLP has it, its log lines added as events named `log`
    /// (and a last event counting the lines past the limit).
    pub fn otlp(&self) -> Span {
        let mut span = match &self.body {
            Body::Sdk(span) => Span::from((**span).clone()),
            Body::Otlp { span, .. } => (**span).clone(),
        };
        let field = |key: &str, value: &str| KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            key_strindex: 0,
        };
        span.events.extend(self.lines.kept.iter().map(|line| Event {
            time_unix_nano: line.time,
            name: "log".to_string(),
            attributes: vec![field("level", &line.level), field("message", &line.message)],
            dropped_attributes_count: 0,
        }));
        if self.lines.more > 0 {
            span.events.push(Event {
                time_unix_nano: span.end_time_unix_nano,
                name: format!("{} more log line(s)", self.lines.more),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            });
        }
        span
    }
}

/// An attribute value as text, as tag search compares it.
pub fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values
                .iter()
                .map(|v| value_text(Some(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(any_value::Value::KvlistValue(l)) => format!(
            "{{{}}}",
            l.values
                .iter()
                .map(|kv| format!("{}={}", kv.key, value_text(kv.value.as_ref())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(other) => format!("{other:?}"),
    }
}

/// What keeping an SDK span costs, in bytes: its box and every heap block
/// it owns (the attribute, event and link vectors at their capacity,
/// the text of every name, key and value, counted whether or not it is
/// shared or static, so the figure never falls short). A walk over the
/// span with no allocation: this runs as each span ends.
pub fn sdk_cost(span: &SpanData) -> usize {
    use std::mem::size_of;
    let attributes = |list: &Vec<opentelemetry::KeyValue>| {
        list.capacity() * size_of::<opentelemetry::KeyValue>()
            + list
                .iter()
                .map(|kv| kv.key.as_str().len() + value_cost(&kv.value))
                .sum::<usize>()
    };
    let events: usize = span.events.events.capacity() * size_of::<opentelemetry::trace::Event>()
        + span
            .events
            .iter()
            .map(|e| e.name.len() + attributes(&e.attributes))
            .sum::<usize>();
    let links: usize = span.links.links.capacity() * size_of::<opentelemetry::trace::Link>()
        + span
            .links
            .iter()
            .map(|l| attributes(&l.attributes) + trace_state_cost(l.span_context.trace_state()))
            .sum::<usize>();
    let status = match &span.status {
        SdkStatus::Error { description } => description.len(),
        _ => 0,
    };
    let scope = &span.instrumentation_scope;
    let scope = scope.name().len()
        + scope.version().map_or(0, str::len)
        + scope.schema_url().map_or(0, str::len)
        + scope
            .attributes()
            .map(|kv| {
                size_of::<opentelemetry::KeyValue>() + kv.key.as_str().len() + value_cost(&kv.value)
            })
            .sum::<usize>();
    size_of::<SpanData>()
        + span.name.len()
        + attributes(&span.attributes)
        + events
        + links
        + status
        + scope
        + trace_state_cost(span.span_context.trace_state())
}

fn value_cost(value: &opentelemetry::Value) -> usize {
    use opentelemetry::{Array, Value};
    match value {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::Bool(v)) => v.capacity(),
        Value::Array(Array::I64(v)) => v.capacity() * 8,
        Value::Array(Array::F64(v)) => v.capacity() * 8,
        Value::Array(Array::String(v)) => {
            v.capacity() * std::mem::size_of::<opentelemetry::StringValue>()
                + v.iter().map(|s| s.as_str().len()).sum::<usize>()
        }
        _ => 0,
    }
}

fn trace_state_cost(state: &TraceState) -> usize {
    if *state == TraceState::NONE {
        0
    } else {
        // A header is at most 32 members; a member is two `String`s.
        state.header().len() + 32 * 2 * std::mem::size_of::<String>()
    }
}

/// A span id that is not the invalid (all-zero) one.
pub fn valid_span_id(id: [u8; 8]) -> bool {
    SpanId::from_bytes(id) != SpanId::INVALID
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::KeyValue as SdkKeyValue;
    use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId};

    /// A span of this process as the SDK ends it.
    pub(crate) fn sdk_span(trace: u8, id: u8) -> SpanData {
        let start = UNIX_EPOCH + std::time::Duration::from_micros(5_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes([trace; 16]),
                SpanId::from_bytes([id; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from_bytes([3; 8]),
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "POST /orders".into(),
            start_time: start,
            end_time: start + std::time::Duration::from_micros(2_500),
            attributes: vec![
                SdkKeyValue::new("http.request.method", "POST"),
                SdkKeyValue::new("http.response.status_code", 402_i64),
                SdkKeyValue::new("order.customer", "c-1".to_string()),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: SdkStatus::error("payment declined"),
            instrumentation_scope: opentelemetry::InstrumentationScope::builder("wasm-otel-host")
                .build(),
        }
    }

    fn record(body: Body) -> Record {
        Record {
            resource: Arc::default(),
            body,
            lines: Lines::default(),
        }
    }

    /// What search reads from an SDK span is what its OTLP conversion
    /// says: the same name, kind, times, status and tags.
    #[test]
    fn sdk_span_reads_as_its_otlp_form() {
        let sdk = record(Body::Sdk(Box::new(sdk_span(1, 2))));
        let otlp = record(Body::Otlp {
            span: Box::new(Span::from(sdk_span(1, 2))),
            scope: Arc::default(),
        });
        for r in [&sdk, &otlp] {
            assert_eq!(
                (
                    r.span_id(),
                    r.name(),
                    r.kind(),
                    r.start(),
                    r.end(),
                    r.status_code()
                ),
                (
                    [2; 8],
                    "POST /orders",
                    2,
                    5_000_000,
                    7_500_000,
                    STATUS_ERROR
                )
            );
            assert!(r.has_attribute("http.response.status_code", "402"));
            assert!(r.has_attribute("order.customer", "c-1"));
            assert!(!r.has_attribute("order.customer", "c-2"));
        }
        assert_eq!(sdk.otlp(), otlp.otlp());
        assert_eq!(sdk.scope().name, "wasm-otel-host");
    }

    /// Twenty lines a span, then a count, shown after the span's events.
    #[test]
    fn lines_are_capped_then_counted() {
        let mut r = record(Body::Sdk(Box::new(sdk_span(1, 2))));
        for i in 0..25 {
            r.lines.push(LogLine {
                time: 6_000_000 + i,
                level: "INFO".into(),
                message: format!("line {i}"),
            });
        }
        assert!(r.has_attribute("message", "line 19"));
        assert!(!r.has_attribute("message", "line 20"));
        let events = r.otlp().events;
        assert_eq!(events.len(), MAX_LINES_PER_SPAN + 1);
        assert_eq!(events[0].name, "log");
        assert_eq!(events[MAX_LINES_PER_SPAN].name, "5 more log line(s)");
    }

    /// The estimate covers the span's own text and grows with it.
    #[test]
    fn sdk_cost_grows_with_the_span() {
        let small = sdk_span(1, 2);
        let mut big = sdk_span(1, 2);
        big.attributes
            .push(SdkKeyValue::new("big", "x".repeat(10_000)));
        assert!(sdk_cost(&small) > "POST /orders".len() + 3 * 16);
        assert!(sdk_cost(&big) > sdk_cost(&small) + 10_000);
    }
}
