//! The host's tracer for one service: starts the host's spans (SERVER,
//! CLIENT, the guest's through our interface) and records the spans a guest
//! reports whole through `wasi:otel`, with the guest's own ids.

use std::cell::Cell;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt,
    TraceId, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};

/// Starts the host's spans; a no-op when the SDK is disabled.
#[derive(Clone, Debug)]
pub enum ServiceTracer {
    /// Spans are recorded and exported.
    Sdk {
        /// The host's own tracer (scope `wasm-otel-host`).
        tracer: SdkTracer,
        /// For the tracers of the scopes guests report spans in.
        provider: SdkTracerProvider,
    },
    /// `OTEL_SDK_DISABLED=true`: no span is created; the context passed in
    /// is passed on, so an incoming `traceparent` travels on unchanged.
    Disabled,
}

/// A span a guest created and ended itself and reported whole (through
/// `wasi:otel`): its ids, times and contents are the guest's.
pub struct ReportedSpan {
    /// Its trace and span id, sampled flag and `tracestate`.
    pub context: SpanContext,
    /// Its parent in the same trace; `None` for a root span.
    pub parent: Option<SpanId>,
    /// Its name, kind, start and end.
    pub name: String,
    /// See `name`.
    pub kind: SpanKind,
    /// See `name`.
    pub start: SystemTime,
    /// See `name`.
    pub end: SystemTime,
    /// What the guest recorded on it, within the attribute limits.
    pub attributes: Vec<KeyValue>,
    /// See `attributes`.
    pub events: Vec<Event>,
    /// See `attributes`.
    pub links: Vec<Link>,
    /// See `attributes`.
    pub status: Status,
    /// The library that produced it.
    pub scope: InstrumentationScope,
}

impl ServiceTracer {
    /// Starts `builder` as a child of `parent`; returns the context holding it.
    pub fn start(&self, builder: SpanBuilder, parent: &Context) -> Context {
        match self {
            ServiceTracer::Sdk { tracer, .. } => {
                parent.with_span(builder.start_with_context(tracer, parent))
            }
            ServiceTracer::Disabled => parent.clone(),
        }
    }

    /// Records `span` through the SDK, so it is sampled, limited, batched
    /// and exported like the host's own, with the guest's ids and times.
    pub fn record(&self, span: ReportedSpan) {
        let ServiceTracer::Sdk { provider, .. } = self else {
            return;
        };
        let tracer = provider.tracer_with_scope(span.scope);
        let parent = match span.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                span.context.trace_id(),
                parent,
                span.context.trace_flags(),
                false,
                span.context.trace_state().clone(),
            )),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(span.name)
            .with_kind(span.kind)
            .with_start_time(span.start)
            .with_attributes(span.attributes)
            .with_events(span.events)
            .with_links(span.links);
        REPORTED_IDS.set(Some((span.context.trace_id(), span.context.span_id())));
        let mut recorded = builder.start_with_context(&tracer, &parent);
        REPORTED_IDS.set(None);
        recorded.set_status(span.status);
        recorded.end_with_timestamp(span.end);
    }
}

thread_local! {
    /// The ids of the reported span being built on this thread, if one is.
    static REPORTED_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// The SDK's id generator: random ids, except while a reported span is
/// being built ([`ServiceTracer::record`]), which keeps the ids its guest gave
/// it. The SDK asks for ids synchronously on the building thread, and the
/// SDK has no other way to take a span's ids from outside.
#[derive(Debug, Default)]
pub(super) struct Ids(RandomIdGenerator);

impl IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        match REPORTED_IDS.get() {
            Some((trace_id, _)) => trace_id,
            None => self.0.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match REPORTED_IDS.get() {
            Some((_, span_id)) => span_id,
            None => self.0.new_span_id(),
        }
    }
}
