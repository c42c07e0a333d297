//! The spans of one request: the SERVER span the host opened, the spans
//! the guest opened through the `tracing` interface, and the spans it
//! announced and reported through `wasi:otel` ([`crate::guest_api::wasi_otel`]). Open
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

use crate::propagation::baggage::Baggage;
use crate::outbound::client::Client;
use crate::outbound::egress::Egress;
use crate::propagation::trace_context::Propagator;
use crate::telemetry::sdk::{HostTracer, ReportedSpan};

/// How many attributes a span keeps and how long a string value may be
/// (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
#[derive(Debug, Clone, Copy)]
pub struct AttributeLimits {
    /// Attributes per span; the SDK's span limit is the same number.
    pub count: usize,
    /// Characters per string value, `None` for no limit.
    pub value_length: Option<usize>,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            count: crate::telemetry::config::DEFAULT_COUNT_LIMIT as usize,
            value_length: None,
        }
    }
}

impl AttributeLimits {
    /// Cuts string values (and each string of an array) to the length limit.
    pub fn truncate(&self, kv: KeyValue) -> KeyValue {
        use opentelemetry::{Array, StringValue, Value};
        let Some(max) = self.value_length else {
            return kv;
        };
        let cut = |s: &str| -> Option<String> {
            (s.chars().count() > max).then(|| s.chars().take(max).collect())
        };
        let value = match &kv.value {
            Value::String(s) => match cut(s.as_str()) {
                Some(short) => Value::from(short),
                None => return kv,
            },
            Value::Array(Array::String(items)) => Value::Array(Array::String(
                items
                    .iter()
                    .map(|item| {
                        StringValue::from(cut(item.as_str()).unwrap_or_else(|| item.to_string()))
                    })
                    .collect(),
            )),
            _ => return kv,
        };
        KeyValue::new(kv.key, value)
    }
}

/// Attributes with unique keys, in the order first set, within the limits:
/// memory stays bounded however many a guest sets.
#[derive(Debug)]
pub struct Attributes {
    kvs: Vec<KeyValue>,
    limits: AttributeLimits,
    /// New keys refused at the count limit.
    dropped: u64,
}

impl Attributes {
    /// An empty set within `limits`.
    pub fn new(limits: AttributeLimits) -> Attributes {
        Attributes {
            kvs: Vec::new(),
            limits,
            dropped: 0,
        }
    }

    /// Sets `kv`, replacing any earlier value of its key.
    pub fn set(&mut self, kv: KeyValue) {
        let kv = self.limits.truncate(kv);
        if let Some(old) = self.kvs.iter_mut().find(|old| old.key == kv.key) {
            *old = kv;
        } else if self.kvs.len() < self.limits.count {
            self.kvs.push(kv);
        } else {
            self.dropped += 1;
        }
    }

    /// Sets each of `attributes`.
    pub fn extend(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        for kv in attributes {
            self.set(kv);
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.kvs.iter().any(|kv| kv.key.as_str() == key)
    }

    /// Writes the attributes to `span`. Those refused here are offered to
    /// the SDK past its (equal) limit, which counts them in the span's
    /// dropped-attributes count without storing them.
    fn write_to(&mut self, span: &opentelemetry::trace::SpanRef<'_>) {
        span.set_attributes(std::mem::take(&mut self.kvs));
        for _ in 0..std::mem::take(&mut self.dropped) {
            span.set_attribute(KeyValue::new("dropped", false));
        }
    }
}

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
    tracer: HostTracer,
    /// Writes the trace context into the guest's outgoing requests.
    pub propagator: Arc<Propagator>,
    /// Where the guest's outgoing requests may go, and the service's name
    /// for the log line saying what was denied.
    pub egress: Option<(Arc<Egress>, Arc<str>)>,
    /// Sends the guest's outgoing requests, reusing connections; `None`
    /// sends each on a connection of its own.
    pub client: Option<Arc<Client>>,
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
    /// The attribute limits of every span of the request.
    pub attribute_limits: AttributeLimits,
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
        tracer: HostTracer,
        propagator: Arc<Propagator>,
        server: Context,
        server_attributes: Vec<KeyValue>,
        method: String,
    ) -> Self {
        let mut attributes = Attributes::new(AttributeLimits::default());
        attributes.extend(server_attributes);
        RequestSpans {
            tracer,
            propagator,
            egress: None,
            client: None,
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
            attribute_limits: AttributeLimits::default(),
        }
    }

    /// Applies `limits` to the request's spans.
    pub fn with_attribute_limits(mut self, limits: AttributeLimits) -> Self {
        let mut server = Attributes::new(limits);
        server.extend(std::mem::take(&mut self.server_attributes.kvs));
        self.server_attributes = server;
        self.attribute_limits = limits;
        self
    }

    /// Restricts outgoing requests to what `egress` allows.
    pub fn with_egress(mut self, egress: Arc<Egress>, service: Arc<str>) -> Self {
        self.egress = Some((egress, service));
        self
    }

    /// Sends outgoing requests through `client`.
    pub fn with_client(mut self, client: Arc<Client>) -> Self {
        self.client = Some(client);
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
                    .map(|value| KeyValue::new(format!("baggage.{key}"), value))
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
            .set(KeyValue::new("http.route", route));
    }

    /// Sets attributes of the host's own on the server span.
    pub fn set_host_attributes(&mut self, attributes: Vec<KeyValue>) {
        self.server_attributes.extend(attributes);
    }

    /// Sets attributes on the server span (for the guest).
    pub fn set_server_attributes(&mut self, attributes: Vec<KeyValue>) {
        if attributes.iter().any(|kv| kv.key.as_str() == "error.type") {
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
        let baggage = self.baggage_kvs();
        self.server_attributes.extend(baggage);
        if self.dropped_spans > 0 {
            self.server_attributes.set(KeyValue::new(
                "wasm.guest_spans_dropped",
                i64::try_from(self.dropped_spans).unwrap_or(i64::MAX),
            ));
        }
        self.server_attributes.set(KeyValue::new(
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
                self.server_attributes
                    .set(KeyValue::new("error.type", error_type));
            }
            let description = match &outcome.failure {
                Some(failure) => failure.message.clone(),
                None => String::new(),
            };
            span.set_status(Status::error(description));
        }
        self.server_attributes.write_to(&span);
        span.end();
    }
}

/// A low-cardinality `error.type` from a Rust enum variant's debug text:
/// the leading identifier in snake case (`ConnectionReadTimeout(..)` →
/// `connection_read_timeout`).
pub fn error_type_name(debug: &str) -> String {
    let variant = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .filter(|v| !v.is_empty())
        .unwrap_or("error");
    let mut snake = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

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
            HostTracer::Disabled,
            Arc::new(Propagator::new(&[])),
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

    /// A key set twice keeps its last value, in its first position.
    #[test]
    fn attributes_replace_by_key() {
        let mut attributes = Attributes::new(AttributeLimits::default());
        attributes.extend([
            KeyValue::new("a", 1),
            KeyValue::new("b", 2),
            KeyValue::new("a", 3),
        ]);
        assert_eq!(
            attributes.kvs,
            vec![KeyValue::new("a", 3), KeyValue::new("b", 2)]
        );
        assert!(attributes.contains("b") && !attributes.contains("c"));
    }

    /// Past the count limit new keys are counted, not kept; existing keys
    /// still update; strings are cut to the length limit.
    #[test]
    fn attributes_within_limits() {
        let limits = AttributeLimits {
            count: 2,
            value_length: Some(3),
        };
        let mut attributes = Attributes::new(limits);
        attributes.extend([
            KeyValue::new("a", "abcdef"),
            KeyValue::new("b", 1),
            KeyValue::new("c", 2),
            KeyValue::new("d", 3),
            KeyValue::new("b", 9),
        ]);
        assert_eq!(
            attributes.kvs,
            vec![KeyValue::new("a", "abc"), KeyValue::new("b", 9)]
        );
        assert_eq!(attributes.dropped, 2);
        let array = limits.truncate(KeyValue::new(
            "s",
            opentelemetry::Value::Array(
                vec![opentelemetry::StringValue::from("long"), "ok".into()].into(),
            ),
        ));
        assert_eq!(array.value.as_str(), "[\"lon\",\"ok\"]");
    }
}
