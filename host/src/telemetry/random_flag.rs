//! The random trace-id flag (`0x02`) on the host's spans, which the SDK
//! leaves off (see [`RandomTrace`]).

use std::time::SystemTime;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanContext, SpanId, Status, TraceContextExt, TraceFlags};

use super::tracer::HOST_SCOPE;
use crate::propagation::RANDOM;

/// An SDK span whose context carries the random trace-id flag (`0x02`) the
/// SDK left off. W3C Trace Context § "Random Trace ID Flag": a trace this
/// host starts has random ids (the SDK's `RandomIdGenerator`: all 16 bytes),
/// so the flag SHOULD be set; a continued trace keeps the incoming flag on
/// every outgoing `traceparent` with its trace id (MUST). The SDK (0.33,
/// `SdkTracer::build_with_context`) takes a span's flags from its parent
/// only and zeroes them on a dropped span, and has no way to set a root's
/// flags, so the host puts the flag on the context it hands on: children
/// then inherit it (the SDK copies a sampled parent's flags), and the
/// `traceparent` and `traceresponse` formatted from it carry it.
pub(super) struct RandomTrace {
    pub(super) span: opentelemetry_sdk::trace::Span,
    /// The SDK span's context with the random flag set.
    pub(super) context: SpanContext,
}

impl RandomTrace {
    /// `span`'s context with the random flag, when its trace has one and
    /// the SDK left it off; `None` when the SDK's context is already right.
    pub(super) fn of(
        parent: &Context,
        span: &opentelemetry_sdk::trace::Span,
    ) -> Option<SpanContext> {
        let parent_span = parent.span();
        let parent = parent_span.span_context();
        let random = !parent.is_valid() || parent.trace_flags().to_u8() & RANDOM != 0;
        let sc = span.span_context();
        (random && sc.is_valid() && sc.trace_flags().to_u8() & RANDOM == 0).then(|| {
            SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                TraceFlags::new(sc.trace_flags().to_u8() | RANDOM),
                sc.is_remote(),
                sc.trace_state().clone(),
            )
        })
    }
}

impl opentelemetry::trace::Span for RandomTrace {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<std::borrow::Cow<'static, str>>,
    {
        self.span
            .add_event_with_timestamp(name, timestamp, attributes);
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.span.set_attribute(attribute);
    }

    fn set_status(&mut self, status: Status) {
        self.span.set_status(status);
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<std::borrow::Cow<'static, str>>,
    {
        self.span.update_name(new_name);
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.span.add_link(span_context, attributes);
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.span.end_with_timestamp(timestamp);
    }
}

/// Sets the random flag on the exported copy of a root span of this host's
/// scope: the trace is one the host started (its ids random, see
/// [`RandomTrace`]), but the SDK records the root with its own flags. OTLP
/// writes the low byte of a span's `flags` from these trace flags.
pub fn random_root(span: &mut opentelemetry_sdk::trace::SpanData) {
    if span.parent_span_id == SpanId::INVALID && span.instrumentation_scope.name() == HOST_SCOPE {
        let sc = &span.span_context;
        span.span_context = SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            TraceFlags::new(sc.trace_flags().to_u8() | RANDOM),
            sc.is_remote(),
            sc.trace_state().clone(),
        );
    }
}
