//! The spans of one request: the SERVER span the host opened, and the spans
//! the guest opened through the `tracing` interface.
//!
//! Each span lives in an OpenTelemetry [`Context`], so a child is started
//! from its parent's context and the parent link is exact. Guest spans are
//! kept in a per-request slab indexed by the WIT resource's `rep`: a guest
//! can only name spans of its own request, and every span still open when
//! the request finishes is ended by [`RequestSpans::finish`].

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

use crate::propagation::Propagator;
use crate::telemetry::HostTracer;

/// One guest span's place in the slab.
enum Slot {
    Open(Context),
    /// Ended: calls on it are ignored, but its identity can still be read.
    Ended(opentelemetry::trace::SpanContext),
    /// The guest dropped its handle.
    Free,
}

/// The spans of one request.
pub struct RequestSpans {
    tracer: HostTracer,
    /// Writes the trace context into the guest's outgoing requests.
    pub propagator: Arc<Propagator>,
    server: Context,
    method: String,
    route: Option<String>,
    /// Whether the guest set `error.type` itself, so that the host's
    /// status-code fallback does not overwrite a more precise reason.
    guest_error_type: bool,
    slots: Vec<Slot>,
    /// The open guest spans in start order: the last is the innermost.
    open: Vec<u32>,
}

/// How a request ended, for its SERVER span.
pub struct Outcome {
    /// The status code the client received (from the guest, or the host's
    /// 500 when the guest sent none).
    pub status: u16,
    /// A failure of the guest itself, such as a trap.
    pub failure: Option<Failure>,
}

/// A guest failure, recorded as the standard `exception` event.
pub struct Failure {
    /// `error.type`: a low-cardinality name (`unreachable_code_reached`).
    pub error_type: String,
    /// `exception.type`.
    pub exception_type: String,
    /// `exception.message`.
    pub message: String,
    /// `exception.stacktrace`: the guest's Wasm backtrace, when known.
    pub stacktrace: Option<String>,
}

impl RequestSpans {
    /// Takes over `server`, the context holding the request's SERVER span.
    /// `method` is the span's name until the guest names the route.
    pub fn new(
        tracer: HostTracer,
        propagator: Arc<Propagator>,
        server: Context,
        method: String,
    ) -> Self {
        RequestSpans {
            tracer,
            propagator,
            server,
            method,
            route: None,
            guest_error_type: false,
            slots: Vec::new(),
            open: Vec::new(),
        }
    }

    /// The context of the innermost open span: the parent of anything the
    /// request starts next.
    pub fn current(&self) -> &Context {
        self.open
            .last()
            .and_then(|&rep| match &self.slots[rep as usize] {
                Slot::Open(cx) => Some(cx),
                _ => None,
            })
            .unwrap_or(&self.server)
    }

    /// Starts a child of the innermost open span as a guest span; returns its rep.
    pub fn start_guest(&mut self, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> u32 {
        let cx = self.start_child(name, kind, attributes);
        let rep = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot::Open(cx));
        self.open.push(rep);
        rep
    }

    /// Starts a child of the innermost open span that the host manages (a
    /// CLIENT span), returning its context.
    pub fn start_child(&self, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> Context {
        let builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes);
        self.tracer.start(builder, self.current())
    }

    /// The open guest span `rep`, if it is still open.
    pub fn guest(&self, rep: u32) -> Option<&Context> {
        match self.slots.get(rep as usize) {
            Some(Slot::Open(cx)) => Some(cx),
            _ => None,
        }
    }

    /// The identity of guest span `rep`, open or ended.
    pub fn guest_span_context(&self, rep: u32) -> Option<opentelemetry::trace::SpanContext> {
        match self.slots.get(rep as usize)? {
            Slot::Open(cx) => Some(cx.span().span_context().clone()),
            Slot::Ended(sc) => Some(sc.clone()),
            Slot::Free => None,
        }
    }

    /// Ends guest span `rep`; a span already ended stays as it was.
    pub fn end_guest(&mut self, rep: u32) {
        let Some(slot) = self.slots.get_mut(rep as usize) else {
            return;
        };
        if let Slot::Open(cx) = slot {
            cx.span().end();
            *slot = Slot::Ended(cx.span().span_context().clone());
            self.open.retain(|&open| open != rep);
        }
    }

    /// The guest dropped its handle to span `rep`: end it, forget it.
    pub fn drop_guest(&mut self, rep: u32) {
        self.end_guest(rep);
        if let Some(slot) = self.slots.get_mut(rep as usize) {
            *slot = Slot::Free;
        }
    }

    /// The request's SERVER span.
    pub fn server(&self) -> &Context {
        &self.server
    }

    /// Names the route: sets `http.route` and renames the server span
    /// `{method} {route}`.
    pub fn set_route(&mut self, route: String) {
        let span = self.server.span();
        span.update_name(format!("{} {route}", self.method));
        span.set_attribute(KeyValue::new("http.route", route.clone()));
        self.route = Some(route);
    }

    /// Sets attributes on the server span.
    pub fn set_server_attributes(&mut self, attributes: Vec<KeyValue>) {
        if attributes.iter().any(|kv| kv.key.as_str() == "error.type") {
            self.guest_error_type = true;
        }
        self.server.span().set_attributes(attributes);
    }

    /// Ends every guest span still open (innermost first), then records the
    /// outcome on the SERVER span and ends it.
    pub fn finish(&mut self, outcome: Outcome) {
        while let Some(&rep) = self.open.last() {
            self.end_guest(rep);
        }
        let span = self.server.span();
        if let Some(failure) = &outcome.failure {
            let mut attributes = vec![
                KeyValue::new("exception.type", failure.exception_type.clone()),
                KeyValue::new("exception.message", failure.message.clone()),
            ];
            if let Some(stacktrace) = &failure.stacktrace {
                attributes.push(KeyValue::new("exception.stacktrace", stacktrace.clone()));
            }
            span.add_event("exception", attributes);
        }
        let status = outcome.status;
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        // HTTP semconv: a SERVER span is an error for 5xx only; 4xx is the
        // client's mistake, not the server's failure.
        if status >= 500 {
            if !self.guest_error_type {
                let error_type = match &outcome.failure {
                    Some(failure) => failure.error_type.clone(),
                    None => status.to_string(),
                };
                span.set_attribute(KeyValue::new("error.type", error_type));
            }
            let description = match &outcome.failure {
                Some(failure) => failure.message.clone(),
                None => String::new(),
            };
            span.set_status(Status::error(description));
        }
        span.end();
    }
}
