//! A test-only component that uses `wasi:otel` directly, the way an
//! OpenTelemetry SDK inside a component reports to Spin or wasmCloud: it
//! chooses its span ids, announces each span (`on-start`), reports it whole
//! when it ends (`on-end`), and parents its root span on the host's
//! (`outer-span-context`); it exports metrics it aggregated itself
//! (`metrics.export`) and emits log records (`logs.on-emit`). Each route
//! answers with the ids it used, so the tests can check what arrives
//! against them.
//!
//! | route | does |
//! |---|---|
//! | `/work?to=URL` | `work` ⊃ `fetch`, which `POST`s `{}` to `URL`: the host's CLIENT span must nest under `fetch` |
//! | `/mixed` | a `wasm-otel` span `ours` ⊃ a `wasi:otel` span `theirs` ⊃ a `wasm-otel` span `inner`: one stack of open spans |
//! | `/invalid` | reports spans with invalid ids: the host ignores them |
//! | `/metrics` | exports one metric of every kind (see `signals.rs`), exemplars in its span `measure` |
//! | `/logs` | emits records outside any span, in a `wasi:otel` span (its ids given), in a `wasm-otel` span (no ids) and with invalid ids |
//! | `/garbage` | exports invalid and oversized points and a flood of 100,000, and emits 1200 records, the first too long |

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::exports::wasm_otel::host::service_info::{self, Info};
use bindings::wasi::otel::tracing::{
    self as otel, Event, Link, SpanContext, SpanData, SpanKind, Status, TraceFlags,
};
use bindings::wasi::otel::types::{InstrumentationScope, KeyValue};
use otel_guest::bindings::wasi::clocks::wall_clock;
use otel_guest::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use otel_guest::bindings::wasi::random::random::get_random_u64;
use otel_guest::http::{BaseUrl, post_json, respond_json};
use otel_guest::trace::{Span as OurSpan, SpanKind as OurKind};
use serde_json::{Value, json};

mod signals;

/// Bindings for `service-otel`: `wasi:otel` generated here, everything the
/// `service` world has taken from `otel-guest`, so that its HTTP helpers
/// serve this component too.
#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasm-otel:host/service-otel",
        with: {
            "wasi:http/types@0.2.12": otel_guest::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": otel_guest::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": otel_guest::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": otel_guest::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": otel_guest::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": otel_guest::bindings::wasi::clocks::monotonic_clock,
            "wasi:clocks/wall-clock@0.2.12": otel_guest::bindings::wasi::clocks::wall_clock,
            "wasm-otel:host/tracing@0.1.0": otel_guest::bindings::wasm_otel::host::tracing,
        },
        generate_all,
    });

    use super::Component;
    export!(Component with_types_in crate::bindings);
}

struct Component;

impl service_info::Guest for Component {
    fn describe() -> Info {
        Info {
            name: "wasi-otel-guest".to_string(),
            version: "0.1.0".to_string(),
            // The URL it fetches arrives in the request: the test grants it
            // with `--allow-outbound`.
            outbound: Vec::new(),
        }
    }
}

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = match path.split_once('?') {
            Some(("/work", query)) => match query.strip_prefix("to=") {
                Some(url) => (200, work(url)),
                None => (400, json!({"error": "usage: /work?to=URL"})),
            },
            _ if path == "/mixed" => (200, mixed()),
            _ if path == "/invalid" => (200, invalid()),
            _ if path == "/metrics" => (200, signals::metrics()),
            _ if path == "/logs" => (200, signals::logs()),
            _ if path == "/garbage" => (200, signals::garbage()),
            _ => (404, json!({"error": format!("no route {path}")})),
        };
        respond_json(out, status, &body);
    }
}

/// A span the guest started: what an SDK keeps until the span ends.
pub(crate) struct Started {
    context: SpanContext,
    parent: String,
    name: &'static str,
    start: wall_clock::Datetime,
}

fn hex(value: u64, digits: usize) -> String {
    format!("{value:0digits$x}")
}

/// Starts a span under `parent` and announces it.
pub(crate) fn start(name: &'static str, parent: &SpanContext) -> Started {
    let context = SpanContext {
        trace_id: parent.trace_id.clone(),
        span_id: hex(get_random_u64() | 1, 16),
        trace_flags: TraceFlags::SAMPLED,
        is_remote: false,
        trace_state: parent.trace_state.clone(),
    };
    otel::on_start(&context);
    Started {
        context,
        parent: parent.span_id.clone(),
        name,
        start: wall_clock::now(),
    }
}

pub(crate) fn kv(key: &str, json: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: json.to_string(),
    }
}

/// Ends `span` and reports it whole.
pub(crate) fn end(
    span: Started,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    links: Vec<Link>,
    status: Status,
) {
    otel::on_end(&SpanData {
        span_context: span.context,
        parent_span_id: span.parent,
        span_kind: SpanKind::Internal,
        name: span.name.to_string(),
        start_time: span.start,
        end_time: wall_clock::now(),
        attributes,
        events,
        links,
        status,
        instrumentation_scope: InstrumentationScope {
            name: "wasi-otel-guest".to_string(),
            version: Some("0.1.0".to_string()),
            schema_url: None,
            attributes: vec![],
        },
        dropped_attributes: 0,
        dropped_events: 0,
        dropped_links: 0,
    });
}

fn work(url: &str) -> Value {
    let outer = otel::outer_span_context();
    let work = start("work", &outer);
    let fetch = start("fetch", &work.context);
    let fetched = BaseUrl::parse(url)
        .map_err(|error| error.to_string())
        .and_then(|base| post_json(&base, "", b"{}", 5_000).map_err(|error| error.to_string()));
    let fetch_id = fetch.context.span_id.clone();
    let status = match &fetched {
        Ok(response) => response.status.to_string(),
        Err(error) => format!("{error:?}"),
    };
    end(
        fetch,
        vec![kv("http.response.status_code", &status)],
        vec![],
        vec![],
        Status::Unset,
    );
    let work_id = work.context.span_id.clone();
    end(
        work,
        vec![
            kv("order.item", r#""widget""#),
            kv("order.quantity", "3"),
            kv("order.amount", "59.97"),
            kv("order.express", "true"),
            kv("order.tags", r#"["a","b"]"#),
            kv("order.meta", r#"{"k":1}"#),
        ],
        vec![Event {
            name: "work.done".to_string(),
            time: wall_clock::now(),
            attributes: vec![kv("items", "1")],
        }],
        vec![Link {
            span_context: outer.clone(),
            attributes: vec![kv("link.reason", r#""outer""#)],
        }],
        Status::Error("out of widgets".to_string()),
    );
    json!({
        "trace_id": outer.trace_id,
        "outer": outer.span_id,
        "work": work_id,
        "fetch": fetch_id,
        "fetched": fetched.is_ok(),
    })
}

fn mixed() -> Value {
    let ours = OurSpan::start_with_kind("ours", OurKind::Internal, &[]);
    let outer = otel::outer_span_context();
    let theirs = start("theirs", &outer);
    let theirs_id = theirs.context.span_id.clone();
    let inner = OurSpan::start("inner", &[]);
    let inner_id = inner.context().span_id;
    inner.end();
    end(theirs, vec![], vec![], vec![], Status::Ok);
    let ours_id = ours.context().span_id;
    ours.end();
    json!({
        "trace_id": outer.trace_id,
        "outer": outer.span_id,
        "ours": ours_id,
        "theirs": theirs_id,
        "inner": inner_id,
    })
}

fn invalid() -> Value {
    let outer = otel::outer_span_context();
    for (trace_id, span_id) in [
        (outer.trace_id.clone(), "not-hex-at-all!!".to_string()),
        (outer.trace_id.clone(), "0000000000000000".to_string()),
        ("0".repeat(32), "00f067aa0ba902b7".to_string()),
        (
            outer.trace_id.to_uppercase(),
            "00f067aa0ba902b7".to_string(),
        ),
    ] {
        let span = Started {
            context: SpanContext {
                trace_id,
                span_id,
                ..outer.clone()
            },
            parent: outer.span_id.clone(),
            name: "invalid",
            start: wall_clock::now(),
        };
        end(span, vec![], vec![], vec![], Status::Unset);
    }
    json!({"trace_id": outer.trace_id})
}
