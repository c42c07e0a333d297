//! Jaeger's query API over real HTTP, against both services in one process.

use std::collections::BTreeSet;

use super::{Explorer, line, log_lines, order, span, tag, trace_of};
use crate::common::*;
use serde_json::Value;

fn service_of<'a>(trace: &'a Value, span: &Value) -> &'a str {
    trace["processes"][span["processID"].as_str().unwrap()]["serviceName"]
        .as_str()
        .unwrap()
}

/// A valid order is one trace in Jaeger's shape: six spans, two processes
/// named by service, CHILD_OF references that form the order's tree, times
/// in microseconds, typed tags, the envelope's fields; and the span also
/// still reached the configured collector (an endpoint that is not the
/// explorer's own receiver is exported to as before).
#[tokio::test]
async fn valid_order_is_a_jaeger_trace() {
    let (receiver, endpoint) = Receiver::start().await;
    let explorer = Explorer::one_process(&endpoint, &[]).await;
    let id = order(&explorer.host.url(""), VALID_ORDER).await;
    let trace = explorer.trace(&id, 6).await;
    let body = explorer.json(&format!("/api/traces/{id}")).await;
    for field in ["data", "total", "limit", "offset", "errors"] {
        assert!(
            body.get(field).is_some(),
            "envelope lacks `{field}`: {body}"
        );
    }
    assert_eq!(trace["traceID"], id);
    let services: BTreeSet<&str> = trace["processes"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(services, BTreeSet::from(["order-api", "payment-service"]));
    let root = span(&trace, "POST /orders");
    assert_eq!(root["references"], serde_json::json!([]));
    assert_eq!(tag(&root["tags"], "span.kind").unwrap(), "server");
    assert_eq!(
        tag(&root["tags"], "http.response.status_code").unwrap(),
        201
    );
    let status_tag = root["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "http.response.status_code")
        .unwrap();
    assert_eq!(status_tag["type"], "int64");
    let payment = span(&trace, "POST /payments");
    assert_eq!(service_of(&trace, payment), "payment-service");
    let client = span(&trace, "POST");
    assert_eq!(
        payment["references"],
        serde_json::json!([{"refType": "CHILD_OF", "traceID": id, "spanID": client["spanID"]}])
    );
    let (start, duration) = (
        root["startTime"].as_u64().unwrap(),
        root["duration"].as_u64().unwrap(),
    );
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(
        start <= now_us && now_us - start < 60_000_000,
        "startTime is in µs: {start}"
    );
    assert!(
        duration > 0 && duration < 10_000_000,
        "duration is in µs: {duration}"
    );
    for s in trace["spans"].as_array().unwrap() {
        assert!(
            s["logs"].is_array() && s["tags"].is_array() && s["flags"].is_u64(),
            "{s}"
        );
    }
    // The configured collector still gets them: it is not this explorer.
    receiver.trace(&id, 6).await;
}

/// Every filter of `GET /api/traces`, and the services and operations
/// endpoints, against one valid and one fraud order.
#[tokio::test]
async fn search_filters() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let url = explorer.host.url("");
    let valid = order(&url, VALID_ORDER).await;
    let fraud = order(&url, FRAUD_ORDER).await;
    explorer.trace(&valid, 6).await;
    explorer.trace(&fraud, 6).await;
    let ids = |body: Value| -> BTreeSet<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_string())
            .collect()
    };
    let both = BTreeSet::from([valid.clone(), fraud.clone()]);
    let just = |id: &str| BTreeSet::from([id.to_string()]);
    let services = explorer.json("/api/services").await;
    assert_eq!(
        services["data"],
        serde_json::json!(["order-api", "payment-service"])
    );
    assert_eq!(services["total"], 2);
    let ops = explorer
        .json("/api/services/payment-service/operations")
        .await;
    assert_eq!(
        ops["data"],
        serde_json::json!(["POST /payments", "process_payment"])
    );
    let ops = explorer.json("/api/operations?service=order-api").await;
    assert!(
        ops["data"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "POST /orders", "spanKind": "server"}))
    );
    #[rustfmt::skip]
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("service=order-api".into(), both.clone()),
        ("service=payment-service&operation=process_payment".into(), both.clone()),
        ("service=order-api&operation=nothing".into(), BTreeSet::new()),
        ("status=error".into(), just(&fraud)),
        ("status=ok".into(), just(&valid)),
        ("tags=%7B%22http.response.status_code%22%3A%22201%22%7D".into(), just(&valid)),
        ("tag=http.response.status_code:402".into(), just(&fraud)),
        ("tags=%7B%22error%22%3A%22true%22%7D".into(), just(&fraud)),
        ("service=order-api&minDuration=1h".into(), BTreeSet::new()),
        ("service=order-api&maxDuration=1h".into(), both.clone()),
        ("limit=1".into(), just(&fraud)),
        (format!("traceID={valid}"), just(&valid)),
        ("start=1&end=2".into(), BTreeSet::new()),
        ("lookback=1h".into(), both.clone()),
    ];
    for (query, expected) in cases {
        assert_eq!(
            ids(explorer.json(&format!("/api/traces?{query}")).await),
            expected,
            "{query}"
        );
    }
    let v3 = explorer.json(&format!("/api/v3/traces/{valid}")).await;
    let resource_spans = v3["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(resource_spans.len(), 2, "one per service: {v3:#}");
    let first = &resource_spans[0]["scopeSpans"][0]["spans"][0];
    assert_eq!(first["traceId"], valid, "OTLP/JSON hex ids: {first}");
}

/// Bad parameters get 400 and a message naming the parameter; an unknown
/// trace 404; both in Jaeger's error envelope.
#[tokio::test]
async fn bad_parameters_are_named() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    #[rustfmt::skip]
    let cases = [
        ("/api/traces?limit=abc", 400, "limit"),
        ("/api/traces?minDuration=5", 400, "minDuration"),
        ("/api/traces?maxDuration=forever", 400, "maxDuration"),
        ("/api/traces?start=yesterday", 400, "start"),
        ("/api/traces?tags=notjson", 400, "tags"),
        ("/api/traces?status=maybe", 400, "status"),
        ("/api/traces/not-hex", 400, "traceID"),
        ("/api/operations", 400, "service"),
        ("/api/traces/0123456789abcdef0123456789abcdef", 404, "trace not found"),
    ];
    for (path, status, named) in cases {
        let reply = explorer.get(path).await;
        assert_eq!(reply.status, status, "{path}");
        let body = reply.json();
        let message = body["errors"][0]["msg"].as_str().unwrap();
        assert!(message.contains(named), "{path}: {message}");
        assert_eq!(body["errors"][0]["code"], status);
    }
    // api/v3 answers in grpc-gateway's shape, as Jaeger's does.
    let reply = explorer
        .get("/api/v3/traces/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["httpCode"], 404);
}

/// Past `--ui-max-traces`, the oldest traces are evicted first and counted.
#[tokio::test]
async fn oldest_traces_are_evicted() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &["--ui-max-traces", "3"]).await;
    let url = explorer.host.url("");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = order(&url, VALID_ORDER).await;
        explorer.trace(&id, 6).await;
        ids.push(id);
    }
    let stats = explorer.stats().await;
    assert_eq!(
        (stats["traces"].as_u64(), stats["traces_evicted"].as_u64()),
        (Some(3), Some(2)),
        "{stats}"
    );
    assert_eq!(stats["spans_evicted"], 12);
    for (i, id) in ids.iter().enumerate() {
        let status = explorer.get(&format!("/api/traces/{id}")).await.status;
        assert_eq!(status, if i < 2 { 404 } else { 200 }, "trace {i}");
    }
}

/// With the exporter's endpoint at the explorer's own receiver (the
/// default `localhost:4317` when the explorer holds 4317), the OTLP
/// exporter is skipped: each span is stored once, in process; so is the
/// logs exporter (the guests' lines reach the store in process), and
/// metrics, which the explorer does not keep, are not sent there either.
#[tokio::test]
async fn own_receiver_is_not_exported_to() {
    let port = free_port().await;
    let grpc = format!("127.0.0.1:{port}");
    let host = one_process(
        &format!("http://localhost:{port}"),
        &[],
        &[
            "--ui=127.0.0.1:0",
            "--ui-otlp-grpc",
            &grpc,
            "--ui-otlp-http",
            "none",
        ],
    )
    .await;
    let out = host.wait_for_stdout("telemetry:").await;
    assert!(out.contains("explorer (in process;"), "{out}");
    assert!(out.contains("· metrics not exported ("), "{out}");
    assert!(out.contains("· logs explorer (in process;"), "{out}");
    let explorer = Explorer::of(host);
    let id = order(&explorer.host.url(""), VALID_ORDER).await;
    explorer.trace(&id, 6).await;
    // Batches leave every 100 ms in tests: a second copy would be here by now.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    explorer.trace(&id, 6).await;
    assert_eq!(explorer.stats().await["spans_received"], 6);
    let mut host = explorer.host;
    assert!(host.terminate().await.success());
    host.wait_for_stdout("stopped").await;
    let stderr = host.stderr.lock().unwrap().clone();
    assert!(!stderr.contains("export to"), "{stderr}");
}

/// A guest's log lines are on the trace as Jaeger logs of the span that
/// wrote them (`event` `log`, `level`, `message`), in the explorer's store.
#[tokio::test]
async fn guest_log_lines_are_logs_of_their_span() {
    let (_receiver, endpoint) = Receiver::start().await;
    let mut args = vec![
        component("testbed").display().to_string(),
        "--port".to_string(),
        "0".to_string(),
    ];
    args.extend(super::ui_args().iter().map(|s| s.to_string()));
    let explorer = Explorer::of(Host::start_with(&args, 1, &endpoint, &[]).await);
    let reply = send("GET", &explorer.host.url("/print"), &[], "").await;
    assert_eq!(reply.status, 200);
    let id = trace_of(&reply);
    let trace = explorer.trace(&id, 2).await;
    assert_eq!(
        log_lines(&trace, "work"),
        vec![
            line("INFO", "printed in work"),
            line("WARN", "warned in work")
        ]
    );
    assert_eq!(
        log_lines(&trace, "GET /print"),
        vec![
            line("INFO", "printed before any span"),
            line("INFO", "unfinished line")
        ]
    );
}
