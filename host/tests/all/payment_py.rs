//! The Python payment service (`payment-py.wasm`, componentize-py) is a
//! drop-in for the Rust one (`payment.wasm`): the order service's four
//! scenarios give the same statuses, bodies and trace shape with either, the
//! only difference being the `wasm.component.language` resource attribute;
//! and both refuse malformed payments with the same status and JSON error.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::KeyValue;

/// The two implementations of the payment service.
const IMPLEMENTATIONS: [&str; 2] = ["payment", "payment-py"];
/// How long a host may take to compile a payment component and listen:
/// the Python one is 18 MB of wasm, about a minute for a debug build of the
/// host on a busy machine (a second or two in release).
const COMPILE_PATIENCE: Duration = Duration::from_secs(300);
/// The resource attribute naming a component's language.
const LANGUAGE: &str = "wasm.component.language";

/// Attributes whose values differ from run to run whichever service answers
/// (random ids, ports, timings, memory): their keys are compared, not values.
const VARIES: [&str; 11] = [
    "order.id",
    "payment.order_id",
    "payment.id",
    "server.port",
    "client.port",
    "network.peer.port",
    "url.full",
    "wasm.instantiate.duration_us",
    "wasm.memory.peak_bytes",
    "http.request.body.size",
    "http.response.body.size",
];

/// A span as a user reads it, without what varies between runs: its
/// service, name, kind, parent (by service and name), status, attributes
/// and events.
#[derive(Debug, PartialEq)]
struct Shape {
    service: String,
    name: String,
    kind: i32,
    parent: String,
    status: (i32, String),
    attributes: BTreeMap<String, String>,
    events: Vec<(String, BTreeMap<String, String>)>,
}

fn values(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = if VARIES.contains(&kv.key.as_str()) {
                "<varies>".to_string()
            } else {
                format!("{:?}", kv.value)
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// The trace's spans as shapes, sorted, and each service's resource.
fn shapes(spans: &[Received]) -> (Vec<Shape>, BTreeMap<String, BTreeMap<String, String>>) {
    let ids = by_id(spans);
    let mut shapes: Vec<Shape> = spans
        .iter()
        .map(|s| Shape {
            service: s.service.clone(),
            name: s.span.name.clone(),
            kind: s.span.kind,
            parent: ids
                .get(&s.parent_id())
                .map(|p| format!("{} {}", p.service, p.span.name))
                .unwrap_or_default(),
            status: s.status(),
            attributes: values(&s.span.attributes),
            events: s
                .span
                .events
                .iter()
                .map(|e| (e.name.clone(), values(&e.attributes)))
                .collect(),
        })
        .collect();
    shapes.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    let resources = spans
        .iter()
        .map(|s| (s.service.clone(), values(&s.resource)))
        .collect();
    (shapes, resources)
}

/// What one scenario gave: status, body (trace and random ids blanked) and
/// the trace.
#[derive(Debug)]
struct Outcome {
    status: u16,
    body: serde_json::Value,
    spans: Vec<Shape>,
    resources: BTreeMap<String, BTreeMap<String, String>>,
}

fn blank_ids(mut body: serde_json::Value) -> serde_json::Value {
    for key in ["trace_id", "order_id", "payment_id"] {
        if let Some(value) = body.get_mut(key) {
            let id = value.as_str().unwrap();
            // `ord_…`, `pay_…`: the prefix stays; a trace id is all random.
            let kept = id.find('_').map_or("", |end| &id[..=end]);
            *value = serde_json::Value::String(format!("{kept}…"));
        }
    }
    body
}

async fn order_host(endpoint: &str, payment_url: &str) -> Host {
    Host::start(
        "order",
        endpoint,
        HostOptions {
            args: vec![
                "--env".into(),
                format!("PAYMENT_URL={payment_url}"),
                "--allow-outbound".into(),
                payment_url.into(),
            ],
            ..HostOptions::default()
        },
    )
    .await
}

/// A reply of the payment service itself: status, `content-type`, body.
type Direct = (u16, String, serde_json::Value);

/// Requests sent straight to the payment service: malformed payments, wrong
/// methods and paths, and their expected status.
#[rustfmt::skip]
fn direct_cases() -> Vec<(
    &'static str,
    &'static str,
    Option<&'static str>,
    String,
    u16,
)> {
    let json = Some("application/json");
    let payment =
        |amount: &str| format!(r#"{{"order_id":"o","customer_id":"c","amount":{amount}}}"#);
    vec![
        ("POST", "/payments", json, String::new(), 422),
        ("POST", "/payments", json, "{".into(), 422),
        ("POST", "/payments", json, "[1]".into(), 422),
        ("POST", "/payments", json, r#"{"a":1,"a":2}"#.into(), 422),
        ("POST", "/payments", json, r#"{"a":{"b":1,"b":1}}"#.into(), 422),
        ("POST", "/payments", json, r#"{"a":NaN}"#.into(), 422),
        ("POST", "/payments", json, r#"{"order_id":1}"#.into(), 422),
        ("POST", "/payments", json, r#"{"order_id":" "}"#.into(), 422),
        ("POST", "/payments", json, r#"{"order_id":"o"}"#.into(), 422),
        ("POST", "/payments", json, payment(r#""5""#), 422),
        ("POST", "/payments", json, payment("true"), 422),
        ("POST", "/payments", json, payment("null"), 422),
        ("POST", "/payments", json, payment(r#"[1,{"x":2}]"#), 422),
        ("POST", "/payments", json, payment("-1.5"), 422),
        ("POST", "/payments", json, payment("0"), 422),
        ("POST", "/payments", Some("text/plain"), payment("5"), 415),
        ("POST", "/payments", json, payment("10000.5"), 402),
        ("POST", "/payments", json, "x".repeat(70_000), 413),
        ("GET", "/payments", None, String::new(), 405),
        ("DELETE", "/health", None, String::new(), 405),
        ("GET", "/nope", None, String::new(), 404),
        ("GET", "/health", None, String::new(), 200),
    ]
}

/// Runs the four scenarios with `payment` (valid, fraud, invalid, then with
/// the payment host stopped), and before the last the [`direct_cases`];
/// returns what each gave.
async fn scenarios(payment: &str) -> (Vec<Outcome>, Vec<Direct>) {
    let (receiver, endpoint) = Receiver::start().await;
    let mut payment =
        Host::start_patiently(payment, &endpoint, HostOptions::default(), COMPILE_PATIENCE).await;
    let payment_url = payment.url("");
    let order = order_host(&endpoint, &payment_url).await;
    let mut outcomes = Vec::new();
    let mut direct = Vec::new();
    // (body, status, spans in the trace)
    let cases = [
        (VALID_ORDER, 201, 6),
        (FRAUD_ORDER, 402, 6),
        (INVALID_ORDER, 422, 2),
        (VALID_ORDER, 502, 4),
    ];
    for (index, (order_body, status, count)) in cases.into_iter().enumerate() {
        if index == 3 {
            for (method, path, content_type, body, status) in direct_cases() {
                let headers: Vec<(&str, &str)> = content_type
                    .map(|ct| ("content-type", ct))
                    .into_iter()
                    .collect();
                let reply = send(method, &payment.url(path), &headers, &body).await;
                assert_eq!(reply.status, status, "{method} {path} {:.60}", body);
                let content_type = reply.headers["content-type"].to_str().unwrap().to_string();
                direct.push((reply.status, content_type, reply.json()));
            }
            payment.terminate().await;
        }
        let reply = send("POST", &order.url("/orders"), &[], order_body).await;
        let mut body = reply.json();
        assert_eq!(reply.status, status, "{body}");
        // A 502 names the payment service's URL, whose port varies.
        if let Some(error) = body.get_mut("error") {
            let named = error.as_str().unwrap().replace(&payment_url, "PAYMENT_URL");
            *error = serde_json::Value::String(named);
        }
        let trace_id = body["trace_id"].as_str().unwrap().to_string();
        let spans = receiver.trace(&trace_id, count).await;
        let (spans, resources) = shapes(&spans);
        outcomes.push(Outcome {
            status: reply.status,
            body: blank_ids(body),
            spans,
            resources,
        });
    }
    (outcomes, direct)
}

/// Valid order → 201 with the payment authorized, fraud → 402, invalid
/// order → 422, payment down → 502: the same statuses, bodies, span names,
/// kinds, parents, attributes, events and statuses with either payment
/// service; the resources differ only in the language attribute. And sent
/// straight to the payment service, malformed payments (bad JSON, wrong
/// types, wrong content type, duplicate keys, empty or oversized body),
/// wrong methods and paths get the same status and `{"error","trace_id"}`
/// body from both, with the same message except the detail of a JSON syntax
/// error, which comes from each language's parser. (One test, so that each
/// payment component is compiled once.)
#[tokio::test]
async fn order_cannot_tell_the_payment_services_apart() {
    let ((rust, rust_direct), (python, python_direct)) =
        tokio::join!(scenarios(IMPLEMENTATIONS[0]), scenarios(IMPLEMENTATIONS[1]));
    assert_eq!(rust[0].body["status"], "confirmed");
    assert_eq!(rust[0].body["payment_id"], "pay_…");
    assert_eq!(rust[1].body["error"], "payment declined: suspected fraud");
    for (rust, python) in rust.iter().zip(&python) {
        assert_eq!(rust.status, python.status);
        assert_eq!(rust.body, python.body);
        assert_eq!(rust.spans, python.spans, "trace shape ({})", rust.status);
        for (service, resource) in &rust.resources {
            let mut resource = resource.clone();
            let mut other = python.resources[service].clone();
            let (rust_language, python_language) = (
                resource.remove(LANGUAGE).unwrap(),
                other.remove(LANGUAGE).unwrap(),
            );
            assert_eq!(resource, other, "resource of {service}");
            assert!(rust_language.contains("\"rust\""), "{rust_language}");
            if service == "payment-service" {
                assert!(python_language.contains("\"python\""), "{python_language}");
            } else {
                assert_eq!(python_language, rust_language);
            }
        }
    }
    // The payment spans are there to compare: the valid order's trace has
    // `process_payment` with its attributes and event.
    let process = python[0]
        .spans
        .iter()
        .find(|s| s.name == "process_payment")
        .unwrap();
    assert_eq!(process.parent, "payment-service POST /payments");
    assert!(process.attributes["payment.amount"].contains("59.97"));
    assert_eq!(process.events[0].0, "payment.authorized");

    const SYNTAX: &str = "request body is not valid JSON: ";
    let cases = direct_cases();
    for ((a, b), case) in rust_direct.iter().zip(&python_direct).zip(&cases) {
        let case = format!("{} {} {:.60}", case.0, case.1, case.3);
        assert_eq!((a.0, &a.1), (b.0, &b.1), "{case}");
        if a.0 == 200 {
            assert_eq!(a.2, b.2, "{case}");
            continue;
        }
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&a.2), ["error", "trace_id"], "{case}");
        assert_eq!(keys(&b.2), keys(&a.2), "{case}");
        assert_eq!(b.2["trace_id"].as_str().unwrap().len(), 32, "{case}");
        let (a, b) = (
            a.2["error"].as_str().unwrap(),
            b.2["error"].as_str().unwrap(),
        );
        match (a.strip_prefix(SYNTAX), b.strip_prefix(SYNTAX)) {
            // Duplicate keys are the services' own rule: the same words
            // (serde_json adds the position).
            (Some(a), Some(b)) if a.starts_with("duplicate key") => {
                assert!(a.starts_with(b), "{case}: `{a}` vs `{b}`")
            }
            (Some(_), Some(_)) => {}
            _ => assert_eq!(a, b, "{case}"),
        }
    }
    assert_eq!(rust_direct.len(), cases.len());
    assert_eq!(python_direct.len(), cases.len());
}
