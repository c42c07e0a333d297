//! The endpoint W3C trace-context test harnesses drive (`w3c/trace-context`
//! `test/`): `POST` a JSON array of `{"url": string, "arguments": any}`; for
//! each element, in order and before answering, this component `POST`s
//! `arguments` as a JSON body to `url`. It does nothing about trace context
//! itself: the host's propagation is what the harness checks.

use otel_guest::ServiceInfo;
use otel_guest::bindings::exports::wasi::http::incoming_handler::Guest;
use otel_guest::bindings::exports::wasm_otel::host::service_info;
use otel_guest::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use otel_guest::http::{BaseUrl, Request, post_json, respond_json};
use otel_guest::trace::set_route;
use serde_json::{Value, json};

/// The largest instruction list read.
const MAX_BODY: usize = 1024 * 1024;
/// How long each call may take.
const CALL_TIMEOUT_MS: u64 = 10_000;

struct Conformance;

impl Guest for Conformance {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut request = Request::from_wasi(request);
        set_route("/");
        let (status, body) = if request.method != "POST" {
            (
                405,
                json!({"error": "POST a JSON array of {\"url\", \"arguments\"}"}),
            )
        } else {
            match request.read_body(MAX_BODY) {
                Err(error) => (400, json!({"error": error.to_string()})),
                Ok(body) => match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Array(calls)) => run(&calls),
                    _ => (
                        400,
                        json!({"error": "expected a JSON array of {\"url\", \"arguments\"}"}),
                    ),
                },
            }
        };
        respond_json(out, status, &body);
    }
}

fn run(calls: &[Value]) -> (u16, Value) {
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        let Some(url) = call.get("url").and_then(Value::as_str) else {
            results.push(json!({"error": "missing `url`"}));
            continue;
        };
        let arguments = call.get("arguments").cloned().unwrap_or(Value::Null);
        let result = match BaseUrl::parse(url) {
            Err(why) => json!({"url": url, "error": why}),
            Ok(base) => {
                match post_json(&base, "", arguments.to_string().as_bytes(), CALL_TIMEOUT_MS) {
                    Ok(response) => json!({"url": url, "status": response.status}),
                    Err(error) => json!({"url": url, "error": error.to_string()}),
                }
            }
        };
        results.push(result);
    }
    (200, Value::Array(results))
}

impl service_info::Guest for Conformance {
    fn describe() -> ServiceInfo {
        ServiceInfo {
            name: "conformance".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // The URLs it calls arrive in requests (from the W3C harness),
            // so it declares none: the operator grants the harness's origin
            // with `--allow-outbound`.
            outbound: Vec::new(),
        }
    }
}

otel_guest::bindings::export!(Conformance with_types_in otel_guest::bindings);
