//! The spans of one request: the SERVER span the host opened, the spans
//! the guest opened through the `tracing` interface, and the spans it
//! announced and reported through `wasi:otel` (`wasi_otel`). Open
//! spans of both kinds form one stack: the innermost is the parent of what
//! the request starts next, CLIENT spans included.
//!
//! Each span lives in an OpenTelemetry [`Context`], so a child is started
//! from its parent's context and the parent link is exact. Guest spans are
//! kept in a per-request slab indexed by the WIT resource's `rep`: a guest
//! can only name spans of its own request, and every span still open when
//! the request finishes is ended by [`RequestSpans::finish`].
//!
//! Attributes set after a span starts are held here and written when it
//! ends: the SDK appends rather than replaces, and OpenTelemetry (and our WIT
//! contract) say a key set twice keeps its last value.

use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attributes::{self, AttributeLimits, Attributes};
use super::output::GuestOutput;
use crate::outbound::Outbound;
use crate::propagation::Baggage;
use crate::telemetry::metrics::{ActiveRequest, Sandbox};
use crate::telemetry::{ReportedSpan, ServiceMetrics, ServiceTracer, semconv};

/// One guest span's place in the slab.
enum Slot {
    Open {
        cx: Context,
        attributes: Attributes,
    },
    /// Ended: calls on it are ignored, but its identity can still be read.
    Ended(SpanContext),
    /// The guest dropped its handle.
    Free,
}

/// The spans of one request.
pub struct RequestSpans {
    tracer: ServiceTracer,
    /// Sends the guest's outgoing requests: egress, injection, the client.
    pub outbound: Outbound,
    server: Context,
    server_attributes: Attributes,
    method: String,
    /// Whether the guest set `error.type` itself, so that the host's
    /// status-code fallback does not overwrite a more precise reason.
    guest_error_type: bool,
    slots: Vec<Slot>,
    /// The open guest spans in start order, of either interface: the last
    /// is the innermost, the parent of whatever the request starts next.
    open: Vec<Open>,
    /// Spans the guest reported whole through `wasi:otel` and the host
    /// recorded.
    reported: usize,
    /// The request's baggage: what came in plus what the guest added; it
    /// travels on every outgoing request.
    pub baggage: Baggage,
    /// The incoming `tracestate`, forwarded on every outgoing request.
    pub tracestate: String,
    /// The baggage keys copied onto every span as `baggage.KEY`
    /// (`--baggage-attributes`).
    baggage_attributes: Arc<[String]>,
    /// The most guest spans this request records (`--max-spans`).
    span_limit: usize,
    /// Guest spans not recorded because of `span_limit`.
    dropped_spans: u64,
    /// Data points the guest exported through `wasi:otel/metrics` and the
    /// host forwarded (the request's budget is spent by these).
    pub(super) exported_points: usize,
    /// Data points the guest exported that were not forwarded.
    pub(super) points_dropped: u64,
    /// The attribute limits of every span of the request.
    pub attribute_limits: AttributeLimits,
    /// The service's instruments, when metrics are on, counting the
    /// request in `http.server.active_requests` until it ends.
    metrics: Option<ActiveRequest>,
    /// When the request started, for `http.server.request.duration`.
    started: Instant,
    /// What the request's sandbox cost, when metrics are on and its guest
    /// ran: recorded with its duration, in one note.
    sandbox: Option<Sandbox>,
    /// The guest's stdout and stderr, when they become log records; told
    /// the innermost open span whenever it changes.
    output: Option<Arc<GuestOutput>>,
}

/// An open guest span.
enum Open {
    /// Started through `wasm-otel:host/tracing`: its rep in the slab.
    Slot(u32),
    /// Started in the guest and announced through `wasi:otel`'s `on-start`:
    /// a context holding its identity (the guest reports the rest when it
    /// ends).
    Announced(Context),
}

/// The rep of every span past the limit: a handle the guest can use like any
/// other, on which every call is ignored.
const DROPPED: u32 = u32::MAX;

/// How a request ended, for its SERVER span.
pub struct Outcome {
    /// The status code the client received (from the guest, or the host's
    /// 500 when the guest sent none).
    pub status: u16,
    /// A failure of the guest itself, such as a trap.
    pub failure: Option<Failure>,
}

/// A guest failure, recorded as the standard `exception` event.
#[derive(Clone)]
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
    /// Takes over `server`, the context holding the request's SERVER span,
    /// and the attributes it is to carry. `method` is the span's name until
    /// the guest names the route.
    pub fn new(
        tracer: ServiceTracer,
        outbound: Outbound,
        server: Context,
        server_attributes: Vec<KeyValue>,
        method: String,
    ) -> Self {
        let mut attributes = Attributes::new(AttributeLimits::default());
        attributes.extend(server_attributes);
        RequestSpans {
            tracer,
            outbound,
            server,
            server_attributes: attributes,
            method,
            guest_error_type: false,
            slots: Vec::new(),
            open: Vec::new(),
            reported: 0,
            baggage: Baggage::default(),
            tracestate: String::new(),
            baggage_attributes: Arc::from([]),
            span_limit: usize::MAX,
            dropped_spans: 0,
            exported_points: 0,
            points_dropped: 0,
            attribute_limits: AttributeLimits::default(),
            metrics: None,
            started: Instant::now(),
            sandbox: None,
            output: None,
        }
    }

    /// Makes the guest's stdout and stderr lines log records through
    /// `output`, each in the span innermost when it was written.
    pub fn with_output(mut self, output: Option<Arc<GuestOutput>>) -> Self {
        self.output = output;
        self.publish_current();
        self
    }

    /// The request's guest output, when it becomes log records.
    pub fn output(&self) -> Option<&Arc<GuestOutput>> {
        self.output.as_ref()
    }

    /// Tells the guest output which span is innermost now.
    fn publish_current(&self) {
        if let Some(output) = &self.output {
            output.set_current(self.current().span().span_context());
        }
    }

    /// Records the request in `metrics` (active now, its duration when it
    /// finishes).
    pub fn with_metrics(mut self, metrics: Option<&'static ServiceMetrics>) -> Self {
        if let Some(metrics) = metrics {
            let held = |key: &str| {
                self.server_attributes
                    .kvs
                    .iter()
                    .find(|kv| kv.key.as_str() == key)
                    .map(|kv| kv.value.as_str())
            };
            let method = held(semconv::HTTP_REQUEST_METHOD);
            let scheme = held(semconv::URL_SCHEME);
            let active = metrics.request_started(
                method.as_deref().unwrap_or(semconv::OTHER_METHOD),
                scheme.as_deref().unwrap_or("http"),
            );
            self.metrics = Some(active);
        }
        self
    }

    /// What the request's sandbox cost: the time to instantiate (when it
    /// did) and the instance's peak linear memory, recorded in the
    /// metrics (when on) as the request ends.
    pub fn sandbox_measured(&mut self, instantiated: Option<Duration>, peak_bytes: usize) {
        if self.metrics.is_some() {
            self.sandbox = Some(Sandbox::of(instantiated, peak_bytes));
        }
    }

    /// The service's instruments and the SERVER span's identity (the
    /// exemplar of what the request records), when metrics are on.
    pub fn metrics(&self) -> Option<(&'static ServiceMetrics, SpanContext)> {
        let metrics = self.metrics.as_ref()?.metrics();
        Some((metrics, self.server.span().span_context().clone()))
    }

    /// Applies `limits` to the request's spans.
    pub fn with_attribute_limits(mut self, limits: AttributeLimits) -> Self {
        let mut server = Attributes::new(limits);
        server.extend(std::mem::take(&mut self.server_attributes.kvs));
        self.server_attributes = server;
        self.attribute_limits = limits;
        self
    }

    /// Caps the guest spans this request records.
    pub fn with_span_limit(mut self, limit: usize) -> Self {
        self.span_limit = limit;
        self
    }

    /// Gives the request its incoming `tracestate` and `baggage`, and the
    /// baggage keys to copy onto its spans.
    pub fn with_incoming(
        mut self,
        tracestate: String,
        baggage: Baggage,
        keys: Arc<[String]>,
    ) -> Self {
        self.tracestate = tracestate;
        self.baggage = baggage;
        self.baggage_attributes = keys;
        self
    }

    /// `baggage.KEY` attributes for the configured keys present now.
    fn baggage_kvs(&self) -> Vec<KeyValue> {
        self.baggage_attributes
            .iter()
            .filter_map(|key| {
                self.baggage
                    .get(key)
                    .map(|value| KeyValue::new(format!("{}{key}", semconv::BAGGAGE_PREFIX), value))
            })
            .collect()
    }

    /// The context of the innermost open span: the parent of anything the
    /// request starts next.
    pub fn current(&self) -> &Context {
        self.open
            .last()
            .and_then(|open| match open {
                Open::Slot(rep) => match &self.slots[*rep as usize] {
                    Slot::Open { cx, .. } => Some(cx),
                    _ => None,
                },
                Open::Announced(cx) => Some(cx),
            })
            .unwrap_or(&self.server)
    }

    /// Whether the request has recorded as many guest spans as it may.
    fn at_span_limit(&self) -> bool {
        self.slots.len() + self.reported >= self.span_limit
    }

    /// A span the guest started itself (`wasi:otel` `on-start`): it is the
    /// innermost open span until the guest reports its end.
    ///
    /// At most `--max-spans` are held open this way (a guest announcing
    /// without end cannot grow the host's memory); past that an
    /// announcement is ignored, and the span is not a parent.
    pub fn announce(&mut self, span: SpanContext) {
        if self.open.len() >= self.span_limit {
            return;
        }
        self.open.push(Open::Announced(
            Context::new().with_remote_span_context(span),
        ));
        self.publish_current();
    }

    /// A span the guest ended and reported whole (`wasi:otel` `on-end`):
    /// it is no longer open, and it is recorded unless the request is at
    /// its span limit.
    pub fn report(&mut self, span: ReportedSpan) {
        let span_id = span.context.span_id();
        if let Some(at) = self.open.iter().rposition(|open| {
            matches!(open, Open::Announced(cx) if cx.span().span_context().span_id() == span_id)
        }) {
            self.open.remove(at);
            self.publish_current();
        }
        if !span.context.is_sampled() {
            return;
        }
        if self.at_span_limit() {
            self.dropped_spans += 1;
            return;
        }
        self.reported += 1;
        self.tracer.record(span);
    }

    /// Starts a child of the innermost open span as a guest span; returns its rep.
    pub fn start_guest(&mut self, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> u32 {
        if self.at_span_limit() {
            self.dropped_spans += 1;
            return DROPPED;
        }
        let cx = self.start(name, kind, Vec::new());
        let mut held = Attributes::new(self.attribute_limits);
        held.extend(self.baggage_kvs());
        held.extend(attributes);
        let rep = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot::Open {
            cx,
            attributes: held,
        });
        self.open.push(Open::Slot(rep));
        self.publish_current();
        rep
    }

    /// Starts a child of the innermost open span that the host manages (a
    /// CLIENT span), returning its context.
    pub fn start_child(
        &self,
        name: String,
        kind: SpanKind,
        mut attributes: Vec<KeyValue>,
    ) -> Context {
        attributes.extend(self.baggage_kvs());
        self.start(name, kind, attributes)
    }

    fn start(&self, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> Context {
        let builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes);
        self.tracer.start(builder, self.current())
    }

    /// The open guest span `rep` and its held attributes, if still open.
    pub fn guest(&mut self, rep: u32) -> Option<(&Context, &mut Attributes)> {
        match self.slots.get_mut(rep as usize) {
            Some(Slot::Open { cx, attributes }) => Some((cx, attributes)),
            _ => None,
        }
    }

    /// The identity of guest span `rep`, open or ended.
    pub fn guest_span_context(&self, rep: u32) -> Option<SpanContext> {
        match self.slots.get(rep as usize)? {
            Slot::Open { cx, .. } => Some(cx.span().span_context().clone()),
            Slot::Ended(sc) => Some(sc.clone()),
            Slot::Free => None,
        }
    }

    /// Ends guest span `rep`; a span already ended stays as it was.
    pub fn end_guest(&mut self, rep: u32) {
        let Some(slot) = self.slots.get_mut(rep as usize) else {
            return;
        };
        if let Slot::Open { cx, attributes } = slot {
            let span = cx.span();
            attributes.write_to(&span);
            span.end();
            *slot = Slot::Ended(span.span_context().clone());
            self.open
                .retain(|open| !matches!(open, Open::Slot(open) if *open == rep));
            self.publish_current();
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
        self.server
            .span()
            .update_name(format!("{} {route}", self.method));
        self.server_attributes
            .set(KeyValue::new(semconv::HTTP_ROUTE, route));
    }

    /// Sets attributes of the host's own on the server span.
    pub fn set_host_attributes(&mut self, attributes: Vec<KeyValue>) {
        self.server_attributes.extend(attributes);
    }

    /// Sets attributes on the server span (for the guest).
    pub fn set_server_attributes(&mut self, attributes: Vec<KeyValue>) {
        if attributes
            .iter()
            .any(|kv| kv.key.as_str() == semconv::ERROR_TYPE)
        {
            self.guest_error_type = true;
        }
        self.server_attributes.extend(attributes);
    }

    /// Ends every guest span still open (innermost first), then records the
    /// outcome on the SERVER span and ends it.
    pub fn finish(&mut self, outcome: Outcome) {
        // Spans announced through `wasi:otel` and never reported are the
        // guest's to report: the host knows only their ids.
        while let Some(open) = self.open.pop() {
            if let Open::Slot(rep) = open {
                self.end_guest(rep);
            }
        }
        if let Some(output) = &self.output {
            let counts = output.finish();
            for (key, count) in [
                (semconv::WASM_LOGS_DROPPED, counts.dropped),
                (semconv::WASM_LOGS_TRUNCATED, counts.truncated),
            ] {
                if count > 0 {
                    self.server_attributes
                        .set(KeyValue::new(key, i64::try_from(count).unwrap_or(i64::MAX)));
                }
            }
        }
        let span = self.server.span();
        if let Some(failure) = &outcome.failure {
            let attributes = attributes::exception(
                failure.exception_type.clone(),
                failure.message.clone(),
                failure.stacktrace.clone(),
            );
            span.add_event(semconv::EXCEPTION_EVENT, attributes);
        }
        let status = outcome.status;
        let baggage = self.baggage_kvs();
        self.server_attributes.extend(baggage);
        for (key, count) in [
            (semconv::WASM_GUEST_SPANS_DROPPED, self.dropped_spans),
            (semconv::WASM_GUEST_POINTS_DROPPED, self.points_dropped),
        ] {
            if count > 0 {
                self.server_attributes
                    .set(KeyValue::new(key, i64::try_from(count).unwrap_or(i64::MAX)));
            }
        }
        self.server_attributes.set(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
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
                self.server_attributes
                    .set(KeyValue::new(semconv::ERROR_TYPE, error_type));
            }
            let description = match &outcome.failure {
                Some(failure) => failure.message.clone(),
                None => String::new(),
            };
            span.set_status(Status::error(description));
        }
        if let Some(active) = &mut self.metrics {
            active.end();
            let metrics = active.metrics();
            if self.dropped_spans > 0 {
                metrics.spans_over_limit(self.dropped_spans);
            }
            metrics.request_ended(
                self.started.elapsed(),
                &self.server_attributes.kvs,
                self.sandbox,
                span.span_context(),
            );
        }
        self.server_attributes.write_to(&span);
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::Propagator;

    fn announced(n: u64) -> SpanContext {
        SpanContext::new(
            opentelemetry::trace::TraceId::from(1u128),
            opentelemetry::trace::SpanId::from(n),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        )
    }

    /// Announced spans nest in order and leave the stack when reported;
    /// past the span limit announcements are ignored (memory stays bounded).
    #[test]
    fn announced_spans_form_a_bounded_stack() {
        let mut spans = RequestSpans::new(
            ServiceTracer::Disabled,
            Outbound::new(Arc::new(Propagator::new(&[]))),
            Context::new(),
            Vec::new(),
            "GET".into(),
        )
        .with_span_limit(2);
        let current = |spans: &RequestSpans| spans.current().span().span_context().span_id();
        for n in 1..=5 {
            spans.announce(announced(n));
        }
        assert_eq!(current(&spans), opentelemetry::trace::SpanId::from(2u64));
        spans.report(ReportedSpan {
            context: announced(2),
            parent: None,
            name: "b".into(),
            kind: SpanKind::Internal,
            start: std::time::SystemTime::UNIX_EPOCH,
            end: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![],
            events: vec![],
            links: vec![],
            status: Status::Unset,
            scope: opentelemetry::InstrumentationScope::builder("t").build(),
        });
        assert_eq!(current(&spans), opentelemetry::trace::SpanId::from(1u64));
    }
}
