//! Spans that read like ordinary Rust: start one, enrich it, let it drop.
//!
//! ```ignore
//! let span = Span::start("save_order", &[kv("order.id", id.as_str())]);
//! span.add_event("order.saved", &[]);
//! // the span ends here, when `span` is dropped
//! ```

use crate::bindings::wasm_otel::host::tracing as wit;

pub use wit::{KeyValue, SpanContext, SpanKind, Status, Value};

/// Builds one attribute.
pub fn kv(key: &str, value: impl Into<Value>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.into(),
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::S64(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::StringArray(v)
    }
}

/// A span of this request. It ends when dropped (or on [`Span::end`]); the
/// host ends any the guest leaks when the request finishes.
pub struct Span(wit::Span);

impl Span {
    /// Starts an INTERNAL span, a child of the innermost open span.
    pub fn start(name: &str, attributes: &[KeyValue]) -> Span {
        Span::start_with_kind(name, SpanKind::Internal, attributes)
    }

    /// Starts a span of the given kind, a child of the innermost open span.
    pub fn start_with_kind(name: &str, kind: SpanKind, attributes: &[KeyValue]) -> Span {
        Span(wit::Span::new(name, kind, attributes))
    }

    /// Sets one attribute.
    pub fn set_attribute(&self, key: &str, value: impl Into<Value>) {
        self.0.set_attributes(&[kv(key, value)]);
    }

    /// Sets several attributes.
    pub fn set_attributes(&self, attributes: &[KeyValue]) {
        self.0.set_attributes(attributes);
    }

    /// Adds an event.
    pub fn add_event(&self, name: &str, attributes: &[KeyValue]) {
        self.0.add_event(name, attributes);
    }

    /// Records an `exception` event and marks the span as failed with
    /// `message`: the usual pair when an error ends an operation.
    pub fn fail(&self, exception_type: &str, message: &str) {
        self.0.record_exception(exception_type, message, None);
        self.0.set_status(&Status::Error(message.to_string()));
    }

    /// Records an `exception` event without changing the status.
    pub fn record_exception(&self, exception_type: &str, message: &str, stacktrace: Option<&str>) {
        self.0.record_exception(exception_type, message, stacktrace);
    }

    /// Sets the status.
    pub fn set_status(&self, status: Status) {
        self.0.set_status(&status);
    }

    /// The span's trace id, span id and sampled flag.
    pub fn context(&self) -> SpanContext {
        self.0.span_context()
    }

    /// Ends the span now.
    pub fn end(self) {
        self.0.end();
    }
}

/// The trace id of the current request (32 hex characters), for responses
/// and logs.
pub fn trace_id() -> String {
    wit::current_span_context().trace_id
}

/// Names the matched route on the request's server span (`http.route`).
pub fn set_route(route: &str) {
    wit::set_route(route);
}

/// Sets attributes on the request's server span.
pub fn set_server_attributes(attributes: &[KeyValue]) {
    wit::set_server_attributes(attributes);
}

/// The request's W3C Baggage entries (key, decoded value), in order.
pub fn baggage() -> Vec<(String, String)> {
    wit::baggage()
}

/// Adds or replaces a baggage entry that travels on this request's
/// outgoing requests; false if the key is invalid or the limits are reached.
pub fn set_baggage(key: &str, value: &str) -> bool {
    wit::set_baggage(key, value)
}
