//! The guest span API's guarantees, through the test-only `testbed`
//! component: default parents, every attribute type, forgotten spans ended
//! by the host, span contexts, and a trapping guest.

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

async fn testbed() -> (Receiver, Host) {
    let (receiver, endpoint) = Receiver::start().await;
    let host = Host::start("testbed", &endpoint, HostOptions::default()).await;
    (receiver, host)
}

fn trace_of(reply: &Reply) -> String {
    reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string()
}

/// Spans the guest forgets (never ends, never drops) are ended by the host
/// when the request finishes, before the server span, with their parents.
#[tokio::test]
async fn forgotten_spans_are_ended_by_the_host() {
    let (receiver, host) = testbed().await;
    let reply = send("GET", &host.url("/leak"), &[], "").await;
    assert_eq!(reply.status, 200);
    let spans = receiver.trace(&trace_of(&reply), 3).await;
    let server = find(&spans, "testbed", "GET /leak");
    let outer = find(&spans, "testbed", "outer");
    let inner = find(&spans, "testbed", "inner");
    assert_eq!(outer.parent_id(), server.span_id());
    assert_eq!(inner.parent_id(), outer.span_id());
    for span in [outer, inner] {
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
        assert!(span.span.end_time_unix_nano <= server.span.end_time_unix_nano);
    }
}

/// A new span's parent is the innermost span still open, else the server
/// span; kinds are kept.
#[tokio::test]
async fn default_parent_is_the_innermost_open_span() {
    let (receiver, host) = testbed().await;
    let reply = send("GET", &host.url("/nested"), &[], "").await;
    let spans = receiver.trace(&trace_of(&reply), 5).await;
    let server = find(&spans, "testbed", "GET /nested");
    let a = find(&spans, "testbed", "a");
    assert_eq!(a.parent_id(), server.span_id());
    assert_eq!(find(&spans, "testbed", "b").parent_id(), a.span_id());
    let c = find(&spans, "testbed", "c");
    assert_eq!(c.parent_id(), a.span_id());
    assert_eq!(c.span.kind, 4, "PRODUCER");
    assert_eq!(
        find(&spans, "testbed", "d").parent_id(),
        server.span_id(),
        "a had ended"
    );
}

/// Every attribute type arrives typed; the exception event has the
/// semantic-convention keys; `ok` is final.
#[tokio::test]
async fn attributes_events_and_status() {
    let (receiver, host) = testbed().await;
    let reply = send("GET", &host.url("/attributes"), &[], "").await;
    let spans = receiver.trace(&trace_of(&reply), 2).await;
    let typed = find(&spans, "testbed", "typed");
    assert_eq!(typed.str_attr("s").as_deref(), Some("overwritten"));
    assert_eq!(typed.attr("b"), Some(Value::BoolValue(true)));
    assert_eq!(typed.int_attr("i"), Some(-42));
    assert_eq!(typed.float_attr("f"), Some(2.5));
    let array = |key: &str| match typed.attr(key) {
        Some(Value::ArrayValue(array)) => array
            .values
            .into_iter()
            .map(|v| v.value.unwrap())
            .collect::<Vec<_>>(),
        other => panic!("{key} is not an array: {other:?}"),
    };
    assert_eq!(
        array("sa"),
        vec![
            Value::StringValue("x".into()),
            Value::StringValue("y".into())
        ]
    );
    assert_eq!(
        array("ba"),
        vec![Value::BoolValue(true), Value::BoolValue(false)]
    );
    assert_eq!(
        array("ia"),
        vec![Value::IntValue(1), Value::IntValue(2), Value::IntValue(3)]
    );
    assert_eq!(
        array("fa"),
        vec![Value::DoubleValue(0.5), Value::DoubleValue(1.5)]
    );
    let checkpoint = typed.event("checkpoint").unwrap();
    assert_eq!(
        attr(&checkpoint.attributes, "step"),
        Some(Value::IntValue(1))
    );
    let exception = typed.event("exception").unwrap();
    assert_eq!(
        str_of(&exception.attributes, "exception.type").as_deref(),
        Some("Recovered")
    );
    assert_eq!(
        str_of(&exception.attributes, "exception.message").as_deref(),
        Some("handled")
    );
    assert_eq!(
        str_of(&exception.attributes, "exception.stacktrace").as_deref(),
        Some("frame 1\nframe 2")
    );
    assert_eq!(typed.status().0, 1, "OK stays OK");
}

/// `current-span-context` is the server span outside guest spans; a span's
/// own context carries its ids.
#[tokio::test]
async fn span_contexts() {
    let (receiver, host) = testbed().await;
    let reply = send("GET", &host.url("/context"), &[], "").await;
    let body = reply.json();
    let trace_id = trace_of(&reply);
    assert_eq!(body["outside_trace_id"], trace_id);
    assert_eq!(body["inside_trace_id"], trace_id);
    assert_eq!(body["sampled"], true);
    let spans = receiver.trace(&trace_id, 2).await;
    assert_eq!(
        body["inside_span_id"],
        find(&spans, "testbed", "inside").span_id()
    );
}

/// A guest that traps gets a 500 JSON answer; its server span is ERROR with
/// an `exception` event carrying the trap message and the Wasm backtrace;
/// the next request is served normally.
#[tokio::test]
async fn a_trap_is_a_500_with_an_exception() {
    let (receiver, host) = testbed().await;
    let reply = send("GET", &host.url("/trap"), &[], "").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("component failed"),
        "{body}"
    );
    let trace_id = body["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace_id, 1).await;
    let server = &spans[0];
    assert_eq!(server.status().0, STATUS_ERROR);
    assert_eq!(server.int_attr("http.response.status_code"), Some(500));
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("unreachable_code_reached")
    );
    let exception = server.event("exception").unwrap();
    assert_eq!(
        str_of(&exception.attributes, "exception.type").as_deref(),
        Some("wasmtime::Trap")
    );
    let stack = str_of(&exception.attributes, "exception.stacktrace").unwrap();
    assert!(
        stack.contains("testbed"),
        "backtrace names the guest: {stack}"
    );

    let next = send("GET", &host.url("/nested"), &[], "").await;
    assert_eq!(next.status, 200);
}
