//! The host side of the WIT `wasm-otel:host/tracing` interface.
//!
//! A guest span's resource `rep` is its index in the request's
//! [`RequestSpans`] slab; the component model guarantees a guest only holds
//! handles it was given, so it can never name another request's span.

use opentelemetry::trace::{SpanContext as OtelSpanContext, TraceContextExt};
use opentelemetry::{Array, KeyValue, StringValue, Value as OtelValue};
use wasmtime::component::Resource;

use crate::guest_api::bindings::tracing::{
    self, KeyValue as WitKeyValue, Span, SpanContext, SpanKind, Status, Value,
};
use crate::guest_api::spans::RequestSpans;

fn kind(kind: SpanKind) -> opentelemetry::trace::SpanKind {
    use opentelemetry::trace::SpanKind as K;
    match kind {
        SpanKind::Internal => K::Internal,
        SpanKind::Server => K::Server,
        SpanKind::Client => K::Client,
        SpanKind::Producer => K::Producer,
        SpanKind::Consumer => K::Consumer,
    }
}

fn value(value: Value) -> OtelValue {
    fn strings(values: Vec<String>) -> Vec<StringValue> {
        values.into_iter().map(StringValue::from).collect()
    }
    match value {
        Value::String(s) => OtelValue::from(s),
        Value::Bool(b) => OtelValue::Bool(b),
        Value::S64(n) => OtelValue::I64(n),
        Value::F64(n) => OtelValue::F64(n),
        Value::StringArray(values) => OtelValue::Array(Array::String(strings(values))),
        Value::BoolArray(values) => OtelValue::Array(Array::Bool(values)),
        Value::S64Array(values) => OtelValue::Array(Array::I64(values)),
        Value::F64Array(values) => OtelValue::Array(Array::F64(values)),
    }
}

/// Converts WIT attributes to OpenTelemetry ones.
pub fn attributes(attributes: Vec<WitKeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|kv| KeyValue::new(kv.key, value(kv.value)))
        .collect()
}

fn span_context(sc: &OtelSpanContext) -> SpanContext {
    SpanContext {
        trace_id: sc.trace_id().to_string(),
        span_id: sc.span_id().to_string(),
        sampled: sc.is_sampled(),
    }
}

impl tracing::Host for RequestSpans {
    fn current_span_context(&mut self) -> wasmtime::Result<SpanContext> {
        Ok(span_context(self.current().span().span_context()))
    }

    fn set_route(&mut self, route: String) -> wasmtime::Result<()> {
        RequestSpans::set_route(self, route);
        Ok(())
    }

    fn set_server_attributes(&mut self, attrs: Vec<WitKeyValue>) -> wasmtime::Result<()> {
        RequestSpans::set_server_attributes(self, attributes(attrs));
        Ok(())
    }

    fn baggage(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.baggage.entries())
    }

    fn set_baggage(&mut self, key: String, value: String) -> wasmtime::Result<bool> {
        Ok(self.baggage.set(&key, &value))
    }
}

impl tracing::HostSpan for RequestSpans {
    fn new(
        &mut self,
        name: String,
        span_kind: SpanKind,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<Resource<Span>> {
        let rep = self.start_guest(name, kind(span_kind), attributes(attrs));
        Ok(Resource::new_own(rep))
    }

    fn span_context(&mut self, span: Resource<Span>) -> wasmtime::Result<SpanContext> {
        let sc = self
            .guest_span_context(span.rep())
            .unwrap_or_else(OtelSpanContext::empty_context);
        Ok(span_context(&sc))
    }

    fn set_attributes(
        &mut self,
        span: Resource<Span>,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<()> {
        if let Some((_, held)) = self.guest(span.rep()) {
            held.extend(attributes(attrs));
        }
        Ok(())
    }

    fn add_event(
        &mut self,
        span: Resource<Span>,
        name: String,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<()> {
        let limits = self.attribute_limits;
        if let Some((cx, _)) = self.guest(span.rep()) {
            let attrs = attributes(attrs)
                .into_iter()
                .map(|kv| limits.truncate(kv))
                .collect();
            cx.span().add_event(name, attrs);
        }
        Ok(())
    }

    fn record_exception(
        &mut self,
        span: Resource<Span>,
        exception_type: String,
        message: String,
        stacktrace: Option<String>,
    ) -> wasmtime::Result<()> {
        let limits = self.attribute_limits;
        if let Some((cx, _)) = self.guest(span.rep()) {
            // The semantic conventions' exception event, attribute for attribute.
            let mut attrs: Vec<KeyValue> = vec![
                KeyValue::new("exception.type", exception_type),
                KeyValue::new("exception.message", message),
            ];
            if let Some(stacktrace) = stacktrace {
                attrs.push(KeyValue::new("exception.stacktrace", stacktrace));
            }
            let attrs = attrs.into_iter().map(|kv| limits.truncate(kv)).collect();
            cx.span().add_event("exception", attrs);
        }
        Ok(())
    }

    fn set_status(&mut self, span: Resource<Span>, status: Status) -> wasmtime::Result<()> {
        if let Some((cx, _)) = self.guest(span.rep()) {
            cx.span().set_status(match status {
                Status::Unset => opentelemetry::trace::Status::Unset,
                Status::Ok => opentelemetry::trace::Status::Ok,
                Status::Error(description) => opentelemetry::trace::Status::error(description),
            });
        }
        Ok(())
    }

    fn end(&mut self, span: Resource<Span>) -> wasmtime::Result<()> {
        self.end_guest(span.rep());
        Ok(())
    }

    fn drop(&mut self, span: Resource<Span>) -> wasmtime::Result<()> {
        self.drop_guest(span.rep());
        Ok(())
    }
}
