//! Every attribute key and event name the host writes on a span or a
//! resource, in one place: the OpenTelemetry semantic conventions' from
//! `opentelemetry-semantic-conventions`, and the host's own (`wasm.*`) and
//! those the crate lacks as named constants beside them. A new span
//! attribute gets its key here.

pub use opentelemetry_semantic_conventions::attribute::{
    CLIENT_ADDRESS, ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, EXCEPTION_TYPE,
    HTTP_REQUEST_METHOD, HTTP_REQUEST_METHOD_ORIGINAL, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE,
    NETWORK_PEER_ADDRESS, NETWORK_PEER_PORT, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT,
    SERVICE_NAME, SERVICE_VERSION, URL_FULL, URL_PATH, URL_QUERY, URL_SCHEME, USER_AGENT_ORIGINAL,
};

/// The request methods the HTTP semantic conventions name as they are; any
/// other is [`OTHER_METHOD`] (with the original in
/// `http.request.method_original`).
pub const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// `http.request.method` of a method not in [`KNOWN_METHODS`].
pub const OTHER_METHOD: &str = "_OTHER";
/// What an HTTP span's name says in place of such a method.
pub const OTHER_METHOD_NAME: &str = "HTTP";

/// The query keys whose values the conventions ask to redact in
/// `url.full` and `url.query` (matched as written, case and all).
pub const SENSITIVE_QUERY_KEYS: [&str; 5] = [
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "sig",
    "X-Goog-Signature",
];

/// What replaces a redacted value (and the user and password of a URL).
pub const REDACTED: &str = "REDACTED";

/// `query` as `url.query` and `url.full` carry it: the value of each of
/// [`SENSITIVE_QUERY_KEYS`] replaced by [`REDACTED`], its key kept
/// (`q=wasm&sig=REDACTED`); borrowed when there is none.
pub fn redacted_query(query: &str) -> std::borrow::Cow<'_, str> {
    let sensitive = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(key, _)| SENSITIVE_QUERY_KEYS.contains(&key))
    };
    if !query.split('&').any(sensitive) {
        return std::borrow::Cow::Borrowed(query);
    }
    let pairs: Vec<std::borrow::Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if sensitive(pair) => format!("{key}={REDACTED}").into(),
            _ => pair.into(),
        })
        .collect();
    pairs.join("&").into()
}

/// `method` as the conventions name it, one of [`KNOWN_METHODS`]
/// (borrowed, never copied), or `None` for any other.
pub fn known_method(method: &str) -> Option<&'static str> {
    KNOWN_METHODS.into_iter().find(|known| *known == method)
}

/// The event that records an exception (the semantic conventions name it;
/// the crate has no constant for event names).
pub const EXCEPTION_EVENT: &str = "exception";

/// The prefix of the attributes that copy baggage entries onto spans
/// (`--baggage-attributes`): `baggage.KEY`.
pub const BAGGAGE_PREFIX: &str = "baggage.";

/// The SERVER span's time to instantiate the component, in microseconds.
pub const WASM_INSTANTIATE_DURATION_US: &str = "wasm.instantiate.duration_us";
/// The SERVER span's peak linear memory of the instance, in bytes.
pub const WASM_MEMORY_PEAK_BYTES: &str = "wasm.memory.peak_bytes";
/// The SERVER span's count of guest spans not recorded (`--max-spans`).
pub const WASM_GUEST_SPANS_DROPPED: &str = "wasm.guest_spans_dropped";
/// The resource's component source language, from its `producers` section.
pub const WASM_COMPONENT_LANGUAGE: &str = "wasm.component.language";

/// `error.type` of a request stopped at its deadline.
pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
/// `error.type` of a request whose guest hit its memory or table cap.
pub const LIMIT_EXCEEDED: &str = "resource_limit_exceeded";
/// `error.type` of a request refused because the queue was full.
pub const OVERLOADED: &str = "overloaded";
/// `error.type` of a request whose body is over `--max-body-bytes` (413).
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// `error.type` of a request whose body is not valid HTTP/1.1 framing, such
/// as a malformed chunk size (400).
pub const MALFORMED_BODY: &str = "malformed_body";
/// `error.type` of a request whose body ended before its announced length
/// (the client went; 400, which it will not read).
pub const INCOMPLETE_BODY: &str = "incomplete_body";
/// `error.type` of a guest error that is not a trap.
pub const GUEST_ERROR: &str = "guest_error";

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

pub use opentelemetry_semantic_conventions::metric::{
    HTTP_CLIENT_REQUEST_DURATION, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};

/// Histogram: the time to instantiate the component for a request, in s.
pub const WASM_INSTANTIATE_DURATION: &str = "wasm.instantiate.duration";
/// Histogram: an instance's peak linear memory per request, in bytes.
pub const WASM_MEMORY_PEAK: &str = "wasm.memory.peak";
/// UpDownCounter: pooling-allocator instances a service holds now.
pub const WASM_POOL_SLOTS_USED: &str = "wasm.pool.slots.used";
/// Counter: guests that trapped, hit the deadline or the memory cap.
pub const WASM_GUEST_FAILURES: &str = "wasm.guest.failures";
/// Counter: requests refused with 503 by admission.
pub const WASM_ADMISSION_REFUSED: &str = "wasm.admission.refused";
/// Counter: spans not exported, by `wasm.drop.reason`.
pub const WASM_SPANS_DROPPED: &str = "wasm.spans.dropped";
/// Counter: guest log lines not exported, by `wasm.drop.reason`.
pub const WASM_LOGS_DROPPED: &str = "wasm.logs.dropped";
/// Counter: guest log lines cut to the line length limit.
pub const WASM_LOGS_TRUNCATED: &str = "wasm.logs.truncated";
/// Counter: guest measurements not recorded (bad name or value, too many
/// instruments).
pub const WASM_GUEST_MEASUREMENTS_REFUSED: &str = "wasm.guest.measurements.refused";
/// Counter (and SERVER span attribute): data points a guest exported
/// through `wasi:otel/metrics` that were not forwarded, by
/// `wasm.drop.reason`.
pub const WASM_GUEST_POINTS_DROPPED: &str = "wasm.guest.points.dropped";
/// Why something was dropped: `span_limit`, `export_queue`, `request_limit`,
/// and for a guest's data points also `invalid` and `too_large`.
pub const WASM_DROP_REASON: &str = "wasm.drop.reason";
