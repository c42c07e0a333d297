//! The host side of our WIT interface `wasm-otel:host/tracing`.
//!
//! A guest span's resource `rep` is its index in the request's
//! [`RequestSpans`] slab; the component model guarantees a guest only holds
//! handles it was given, so it can never name another request's span.

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext as OtelSpanContext, TraceContextExt};
use wasmtime::component::Resource;

use super::attributes;
use super::bindings::tracing::{
    self, KeyValue as WitKeyValue, Span, SpanContext, SpanKind, Status,
};
use super::spans::RequestSpans;
use crate::telemetry::semconv;

/// Converts WIT attributes to OpenTelemetry ones.
fn converted(attributes: Vec<WitKeyValue>) -> Vec<KeyValue> {
    attributes.into_iter().map(KeyValue::from).collect()
}

impl tracing::Host for RequestSpans {
    fn current_span_context(&mut self) -> wasmtime::Result<SpanContext> {
        Ok(self.current().span().span_context().into())
    }

    fn set_route(&mut self, route: String) -> wasmtime::Result<()> {
        RequestSpans::set_route(self, route);
        Ok(())
    }

    fn set_server_attributes(&mut self, attrs: Vec<WitKeyValue>) -> wasmtime::Result<()> {
        RequestSpans::set_server_attributes(self, converted(attrs));
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
        let rep = self.start_guest(name, span_kind.into(), converted(attrs));
        Ok(Resource::new_own(rep))
    }

    fn span_context(&mut self, span: Resource<Span>) -> wasmtime::Result<SpanContext> {
        let sc = self
            .guest_span_context(span.rep())
            .unwrap_or_else(OtelSpanContext::empty_context);
        Ok((&sc).into())
    }

    fn set_attributes(
        &mut self,
        span: Resource<Span>,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<()> {
        if let Some((_, held)) = self.guest(span.rep()) {
            held.extend(converted(attrs));
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
            let attrs = converted(attrs)
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
            let attrs = attributes::exception(exception_type, message, stacktrace)
                .into_iter()
                .map(|kv| limits.truncate(kv))
                .collect();
            cx.span().add_event(semconv::EXCEPTION_EVENT, attrs);
        }
        Ok(())
    }

    fn set_status(&mut self, span: Resource<Span>, status: Status) -> wasmtime::Result<()> {
        if let Some((cx, _)) = self.guest(span.rep()) {
            cx.span().set_status(status.into());
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
