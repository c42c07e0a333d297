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

use super::random_flag::RandomTrace;
pub use super::random_flag::random_root;

/// The scope of the host's own spans.
pub const HOST_SCOPE: &str = "wasm-otel-host";

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
                let span = builder.start_with_context(tracer, parent);
                match RandomTrace::of(parent, &span) {
                    Some(context) => parent.with_span(RandomTrace { span, context }),
                    None => parent.with_span(span),
                }
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

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceFlags;

    use super::*;

    /// The flags of the context a host span hands on: the SDK's sampled
    /// decision, with the random flag of the trace (incoming, or set on a
    /// trace the host starts), on the span and on its children.
    #[rustfmt::skip]
    #[test]
    fn host_spans_carry_the_random_flag_of_their_trace() {
        use opentelemetry_sdk::trace::Sampler;
        let parent = |flags: u8| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(1u128), SpanId::from(1u64), TraceFlags::new(flags), true, Default::default(),
            ))
        };
        // (sampler, parent, flags handed on)
        let cases = [
            (Sampler::AlwaysOn, Context::new(), 0x03),
            (Sampler::AlwaysOff, Context::new(), 0x02),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x00), 0x00),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x01), 0x01),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x02), 0x02),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x03), 0x03),
            (Sampler::AlwaysOn, parent(0x02), 0x03),
        ];
        for (sampler, parent, expected) in cases {
            let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
            let tracer = ServiceTracer::Sdk { tracer: provider.tracer(HOST_SCOPE), provider };
            let cx = tracer.start(SpanBuilder::from_name("s"), &parent);
            let child = tracer.start(SpanBuilder::from_name("c"), &cx);
            for cx in [cx, child] {
                assert_eq!(cx.span().span_context().trace_flags().to_u8(), expected, "{:?}", parent.span().span_context());
            }
        }
    }
}
