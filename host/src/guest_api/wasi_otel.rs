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

use opentelemetry::trace::{
    self as otel, SpanContext as OtelSpanContext, SpanId, TraceContextExt, TraceFlags,
};
use opentelemetry::{InstrumentationScope, KeyValue};

use super::attributes::AttributeLimits;
use super::bindings::wasi::otel::tracing::{Event, Host, Link, SpanContext, SpanData};
use super::bindings::wasi::otel::types::{InstrumentationScope as WitScope, KeyValue as WitKv};
use super::convert::{hex_id, time};
use super::spans::RequestSpans;
use crate::propagation::RANDOM;
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
        Ok(self.current().span().span_context().into())
    }
}

/// The guest's span context, if its ids are valid (see the `TryFrom` in
/// `convert`).
///
/// `wasi:otel`'s `trace-flags` name only `sampled`, so the random trace-id
/// flag cannot come from the guest. It belongs to the trace id (W3C Trace
/// Context § "Random Trace ID Flag": set on every `traceparent` that uses
/// the same `trace-id`), so a context in the trace of `trace` (the host's
/// innermost open span) takes `trace`'s random flag.
fn span_context(context: SpanContext, trace: &OtelSpanContext) -> Option<OtelSpanContext> {
    let context = OtelSpanContext::try_from(context).ok()?;
    if !trace.is_valid() || trace.trace_id() != context.trace_id() {
        return Some(context);
    }
    let flags = context.trace_flags().to_u8() | (trace.trace_flags().to_u8() & RANDOM);
    Some(OtelSpanContext::new(
        context.trace_id(),
        context.span_id(),
        TraceFlags::new(flags),
        context.is_remote(),
        context.trace_state().clone(),
    ))
}

fn attributes(kvs: Vec<WitKv>, limits: AttributeLimits) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| limits.truncate(KeyValue::from(kv)))
        .collect()
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
        kind: span.span_kind.into(),
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
        status: span.status.into(),
        scope: scope(span.instrumentation_scope, limits),
    })
}
