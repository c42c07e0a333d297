//! The responses the host writes itself (for requests the guest could not
//! answer), the `traceresponse` header, and the request's log line.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use opentelemetry::trace::SpanContext;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::propagation;
use crate::telemetry::{JAEGER_TRACE_URL, write_hex, write_request_summary};

/// The response to a request.
pub(super) type HostResponse = Response<HyperOutgoingBody>;

/// A JSON error the host answers with itself: `{"error", "trace_id"}`.
pub(super) fn error(status: StatusCode, error: &str, trace_id: &str) -> HostResponse {
    json(
        status,
        &serde_json::json!({"error": error, "trace_id": trace_id}),
    )
}

/// A JSON response with `body`.
fn json(status: StatusCode, body: &serde_json::Value) -> HostResponse {
    let body = Full::new(Bytes::from(body.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// W3C Trace Context level 2: tells the caller which trace and span served
/// it (`traceresponse`, and a Server-Timing `trace` metric; each kept if the
/// guest set its own). A remote context means the host made no span
/// (telemetry disabled): there is nothing of ours to report.
pub(super) fn add_traceresponse(response: &mut HostResponse, server: &SpanContext) {
    if server.is_valid() && !server.is_remote() {
        propagation::respond(server, response.headers_mut());
    }
}

/// What a request did, as its log record's body says it: method, path,
/// status and time (`POST /orders 201 1.05ms`). The record's resource names
/// the service, and its trace and span ids the request's SERVER span.
pub(super) fn request_summary(
    method: &hyper::Method,
    path: &str,
    status: StatusCode,
    took: Duration,
) -> String {
    let mut summary = String::with_capacity(48 + path.len());
    write_request_summary(&mut summary, method.as_str(), path, status.as_u16(), took);
    summary
}

/// The request's line in the host's output: the service, the request's
/// `summary`, its trace (with a link to it when it was sampled).
pub(super) fn log_line(service: &str, summary: &str, server: &SpanContext) -> String {
    let mut line = String::with_capacity(160);
    line.push_str(service);
    line.push(' ');
    line.push_str(summary);
    line.push_str(" trace ");
    let id = line.len();
    write_hex(&mut line, &server.trace_id().to_bytes());
    if server.is_sampled() {
        line.push_str("  ");
        line.push_str(JAEGER_TRACE_URL);
        line.extend_from_within(id..id + 32);
    }
    line
}
