//! W3C Trace Context and Baggage through real hosts: the exact headers that
//! leave the host (seen by a recording server), and the spans recorded.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

use crate::common::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A conformance host calling the recorder `calls` times for one request
/// with `headers`; returns the headers that left, the response's trace id
/// and the host's spans of that trace.
async fn through_conformance(
    receiver: &Receiver,
    endpoint: &str,
    headers: &[(&str, &str)],
    calls: usize,
) -> (Vec<hyper::HeaderMap>, String, Vec<Received>) {
    let (recorder, url) = Recorder::start().await;
    let host = Host::start(
        "conformance",
        endpoint,
        HostOptions {
            args: vec!["--allow-outbound".into(), url.clone()],
            env: vec![],
        },
    )
    .await;
    let body = serde_json::Value::Array(
        (0..calls)
            .map(|i| serde_json::json!({"url": format!("{url}/call/{i}"), "arguments": {"n": i}}))
            .collect(),
    );
    let reply = send("POST", &host.url("/"), headers, &body.to_string()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    for result in reply.json().as_array().unwrap() {
        assert_eq!(result["status"], 200, "{result}");
    }
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 1 + calls).await;
    (recorder.headers(), trace_id, spans)
}

fn header(map: &hyper::HeaderMap, name: &str) -> Option<String> {
    map.get(name).map(|v| v.to_str().unwrap().to_string())
}

/// A valid context is continued: same trace id, a fresh parent id per
/// outgoing request (its CLIENT span), sampled and random flags kept,
/// `tracestate` forwarded exactly.
#[tokio::test]
async fn valid_context_is_continued_with_fresh_parent_ids() {
    let (receiver, endpoint) = Receiver::start().await;
    let (sent, trace_id, spans) = through_conformance(
        &receiver,
        &endpoint,
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("TraceState", "tenant@vendor=x"),
        ],
        2,
    )
    .await;
    assert_eq!(trace_id, TRACE);
    let server = find(&spans, "conformance", "POST /");
    assert_eq!(server.parent_id(), "00f067aa0ba902b7");
    let clients: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.kind == SPAN_KIND_CLIENT)
        .collect();
    assert_eq!(clients.len(), 2);
    let mut parents = Vec::new();
    for headers in &sent {
        let traceparent = header(headers, "traceparent").unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", TRACE, "03"),
            "{traceparent}"
        );
        assert!(
            clients.iter().any(|c| c.span_id() == parts[2]),
            "parent id is a CLIENT span"
        );
        assert_eq!(
            header(headers, "tracestate").as_deref(),
            Some("congo=t61rcWkgMzE,tenant@vendor=x")
        );
        parents.push(parts[2].to_string());
    }
    assert_ne!(parents[0], parents[1], "each request its own parent id");
}

/// Hostile or invalid incoming headers: a new trace starts and the incoming
/// `tracestate` does not leave the host; an invalid `tracestate` alone is
/// dropped while the trace continues.
#[tokio::test]
async fn hostile_headers_never_leak() {
    let too_many: String = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    // (rule, incoming headers, trace continued, tracestate out)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, Option<&'a str>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("uppercase hex", vec![("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), ("tracestate", "a=1")], false, None),
        ("repeated traceparent", vec![("traceparent", TP), ("traceparent", TP), ("tracestate", "a=1")], false, None),
        ("version ff", vec![("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], false, None),
        ("33 tracestate members", vec![("traceparent", TP), ("tracestate", &too_many)], true, None),
        ("duplicate tracestate key", vec![("traceparent", TP), ("tracestate", "a=1,a=2")], true, None),
        ("unknown flags", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09")], true, None),
    ];
    for (rule, headers, continued, tracestate) in cases {
        // A receiver per case: several cases continue the same trace id.
        let (receiver, endpoint) = Receiver::start().await;
        let (sent, trace_id, _) = through_conformance(&receiver, &endpoint, &headers, 1).await;
        assert_eq!(trace_id == TRACE, continued, "{rule}");
        let traceparent = header(&sent[0], "traceparent").unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{trace_id}-")),
            "{rule}: {traceparent}"
        );
        assert!(
            traceparent.ends_with("-01"),
            "{rule}: unknown flags zeroed: {traceparent}"
        );
        assert_eq!(
            header(&sent[0], "tracestate").as_deref(),
            tracestate,
            "{rule}"
        );
    }
}

/// `customer.tier=gold` sent to the order service shows on the payment
/// side's spans with `--baggage-attributes`, and on none without it.
#[tokio::test]
async fn baggage_reaches_the_payment_side_spans() {
    let (receiver, endpoint) = Receiver::start().await;
    let flag = |on: bool| {
        if on {
            vec![
                "--baggage-attributes".to_string(),
                "customer.tier".to_string(),
            ]
        } else {
            vec![]
        }
    };
    for on in [true, false] {
        let payment = Host::start(
            "payment",
            &endpoint,
            HostOptions {
                args: flag(on),
                env: vec![],
            },
        )
        .await;
        let mut args = flag(on);
        args.extend([
            "--env".to_string(),
            format!("PAYMENT_URL={}", payment.url("")),
            "--allow-outbound".to_string(),
            payment.url(""),
        ]);
        let order = Host::start("order", &endpoint, HostOptions { args, env: vec![] }).await;
        let reply = send(
            "POST",
            &order.url("/orders"),
            &[("baggage", "customer.tier=gold")],
            VALID_ORDER,
        )
        .await;
        assert_eq!(reply.status, 201);
        let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
        let spans = receiver.trace(&trace_id, 6).await;
        for span in &spans {
            let expected = on.then(|| "gold".to_string());
            assert_eq!(
                span.str_attr("baggage.customer.tier"),
                expected,
                "{}:{}",
                span.service,
                span.span.name
            );
        }
    }
}

/// A guest reads the incoming baggage and adds an entry; both leave on its
/// outgoing request, encoding and properties as they came; the limits hold.
#[tokio::test]
async fn guests_read_and_add_baggage_within_limits() {
    let (receiver, endpoint) = Receiver::start().await;
    let (recorder, url) = Recorder::start().await;
    let host = Host::start(
        "testbed",
        &endpoint,
        HostOptions {
            args: vec![
                "--env".into(),
                format!("FORWARD_URL={url}/next"),
                "--allow-outbound".into(),
                url.clone(),
            ],
            env: vec![],
        },
    )
    .await;
    let reply = send(
        "GET",
        &host.url("/baggage"),
        &[("baggage", "note=a%20b;ttl=60, customer.tier=gold")],
        "",
    )
    .await;
    let body = reply.json();
    assert_eq!(body["added"], true);
    assert_eq!(body["forwarded"], 200);
    assert_eq!(body["baggage"]["note"], "a b");
    assert_eq!(body["baggage"]["added.by"], "testbed");
    assert_eq!(
        header(&recorder.headers()[0], "baggage").as_deref(),
        Some("note=a%20b;ttl=60,customer.tier=gold,added.by=testbed")
    );

    let many: String = (0..70)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let reply = send("GET", &host.url("/baggage"), &[("baggage", &many)], "").await;
    assert_eq!(reply.json()["added"], false, "the 65th entry does not fit");
    let sent = header(&recorder.headers()[1], "baggage").unwrap();
    assert_eq!(
        sent.split(',').count(),
        64,
        "whole members beyond 64 dropped"
    );
    assert!(sent.ends_with(",k63=v"));
    drop(receiver);
}
