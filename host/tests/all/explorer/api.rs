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

/// `ns` nanoseconds since the epoch as RFC 3339 (`2026-12-06T01:30:00.000000001Z`).
fn rfc3339(ns: u64) -> String {
    let (days, rest) = (
        (ns / 1_000_000_000 / 86_400) as i64,
        ns % (86_400 * 1_000_000_000),
    );
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = rest / 1_000_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000_000
    )
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The trace ids of every span in an api/v3 answer.
fn v3_ids(body: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for resource in body["result"]["resourceSpans"].as_array().unwrap() {
        for scope in resource["scopeSpans"].as_array().unwrap() {
            for span in scope["spans"].as_array().unwrap() {
                ids.insert(span["traceId"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

/// Jaeger's api/v3 over real HTTP: services, operations by span kind, one
/// trace (by hex or base64 id) as OTLP/JSON in Jaeger's shape, and the
/// search with each of its parameters, canonical and deprecated names.
#[tokio::test]
async fn jaeger_v3_api() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let url = explorer.host.url("");
    let valid = order(&url, VALID_ORDER).await;
    let fraud = order(&url, FRAUD_ORDER).await;
    let valid_trace = explorer.trace(&valid, 6).await;
    let fraud_trace = explorer.trace(&fraud, 6).await;
    assert_eq!(
        explorer.json("/api/v3/services").await,
        serde_json::json!({"services": ["order-api", "payment-service"]})
    );
    let ops = explorer.json("/api/v3/operations?service=order-api").await;
    assert!(
        ops["operations"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "POST /orders", "spanKind": "server"})),
        "{ops}"
    );
    for kind in ["spanKind", "span_kind"] {
        assert_eq!(
            explorer
                .json(&format!(
                    "/api/v3/operations?service=order-api&{kind}=client"
                ))
                .await,
            serde_json::json!({"operations": [{"name": "POST", "spanKind": "client"}]}),
            "{kind}"
        );
    }
    assert_eq!(
        explorer.json("/api/v3/operations?service=nobody").await,
        serde_json::json!({"operations": []})
    );

    // One trace: OTLP/JSON as Jaeger writes it.
    let body = explorer.json(&format!("/api/v3/traces/{valid}")).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "only `result`: {body}");
    let resources = body["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(resources.len(), 2, "one per service: {body:#}");
    let spans: Vec<&Value> = resources
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .flat_map(|s| s["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), 6);
    let root = spans.iter().find(|s| s["name"] == "POST /orders").unwrap();
    assert_eq!(root["traceId"], valid);
    assert_eq!(root["spanId"].as_str().unwrap().len(), 16, "hex: {root}");
    assert_eq!(root["kind"], 2, "enums as numbers: {root}");
    assert!(
        root["startTimeUnixNano"].is_string(),
        "int64 as string: {root}"
    );
    assert!(
        root.get("parentSpanId").is_none(),
        "defaults omitted: {root}"
    );
    assert!(root.get("traceState").is_none(), "defaults omitted: {root}");
    assert!(root["status"].is_object(), "{root}");
    let status_code = root["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "http.response.status_code")
        .unwrap();
    assert_eq!(status_code["value"], serde_json::json!({"intValue": "201"}));
    let fraud_root = explorer.json(&format!("/api/v3/traces/{fraud}")).await;
    assert!(
        fraud_root.to_string().contains(r#""status":{"code":2"#),
        "{fraud_root}"
    );
    // The same trace by its id in base64, and with the optional window.
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&valid[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let base64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &bytes);
    assert_eq!(
        explorer.json(&format!("/api/v3/traces/{base64}")).await,
        body
    );
    let padded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
    let escaped = enc(&padded);
    assert_eq!(
        explorer.json(&format!("/api/v3/traces/{escaped}")).await,
        body,
        "{padded}"
    );
    let with_window = format!(
        "/api/v3/traces/{valid}?start_time=2000-01-01T00:00:00Z&endTime=2100-01-01T00:00:00%2B02:00&raw_traces=true"
    );
    assert_eq!(explorer.json(&with_window).await, body);

    // The search.
    let start_of =
        |trace: &Value| span(trace, "POST /orders")["startTime"].as_u64().unwrap() * 1000;
    let (valid_start, fraud_start) = (start_of(&valid_trace), start_of(&fraud_trace));
    let window = |min: u64, max: u64| {
        format!(
            "query.startTimeMin={}&query.startTimeMax={}",
            enc(&rfc3339(min)),
            enc(&rfc3339(max))
        )
    };
    let all = window(valid_start - 1_000_000_000, fraud_start + 3_600_000_000_000);
    let both = BTreeSet::from([valid.clone(), fraud.clone()]);
    let just = |id: &str| BTreeSet::from([id.to_string()]);
    let none = BTreeSet::new();
    let attributes = |json: &str| format!("{all}&query.attributes={}", enc(json));
    #[rustfmt::skip]
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (all.clone(), both.clone()),
        (window(valid_start, fraud_start - 1_000), just(&valid)),
        (window(fraud_start, fraud_start + 3_600_000_000_000), just(&fraud)),
        ("query.start_time_min=2001-01-01T00:00:00Z&query.start_time_max=2001-01-02T00:00:00Z".into(), none.clone()),
        (format!("{all}&query.serviceName=order-api"), both.clone()),
        (format!("{all}&query.service_name=payment-service&query.operation_name=process_payment"), both.clone()),
        (format!("{all}&query.serviceName=order-api&query.operationName=nothing"), none.clone()),
        (attributes(r#"{"error":"true"}"#), just(&fraud)),
        (attributes(r#"{"span.status":"ERROR"}"#), just(&fraud)),
        (attributes(r#"{"http.response.status_code":"201"}"#), just(&valid)),
        (attributes(r#"{"http.response.status_code":"402","span.kind":"server"}"#), just(&fraud)),
        (attributes(r#"{"resource.service.name":"payment-service","span.kind":"client"}"#), none.clone()),
        (attributes(r#"{"resource.service.name":"order-api","span.kind":"client"}"#), both.clone()),
        (format!("{all}&query.durationMin=1h"), none.clone()),
        (format!("{all}&query.duration_max=1h"), both.clone()),
        (format!("{all}&query.searchDepth=1"), just(&fraud)),
        (format!("{all}&query.num_traces=1"), just(&fraud)),
        (format!("{all}&query.rawTraces=true"), both.clone()),
    ];
    for (query, expected) in cases {
        let reply = explorer.get(&format!("/api/v3/traces?{query}")).await;
        if expected.is_empty() {
            assert_eq!(reply.status, 404, "{query}");
            assert_eq!(
                reply.json(),
                serde_json::json!({"error": {"httpCode": 404, "message": "No traces found"}}),
                "{query}"
            );
        } else {
            assert_eq!(
                reply.status,
                200,
                "{query}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(v3_ids(&reply.json()), expected, "{query}");
        }
    }
}

/// api/v3's bad parameters: 400 naming the parameter, in Jaeger's words
/// and grpc-gateway's error shape; an unknown trace 404.
#[tokio::test]
async fn jaeger_v3_bad_parameters() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let window = "query.startTimeMin=2026-01-01T00:00:00Z&query.startTimeMax=2026-01-02T00:00:00Z";
    #[rustfmt::skip]
    let cases: Vec<(String, u16, &str)> = vec![
        ("/api/v3/traces".into(), 400, "query.startTimeMin and query.startTimeMax are required"),
        ("/api/v3/traces?query.startTimeMin=yesterday&query.startTimeMax=2026-01-01T00:00:00Z".into(), 400, "malformed parameter query.startTimeMin: `yesterday`"),
        ("/api/v3/traces?query.startTimeMin=2026-01-02T00:00:00Z&query.startTimeMax=2026-01-01T00:00:00Z".into(), 400, "query.startTimeMin must be before query.startTimeMax"),
        (format!("/api/v3/traces?{window}&query.searchDepth=many"), 400, "malformed parameter query.searchDepth: `many`"),
        (format!("/api/v3/traces?{window}&query.duration_min=5"), 400, "malformed parameter query.duration_min: `5`"),
        (format!("/api/v3/traces?{window}&query.attributes=notjson"), 400, "malformed parameter query.attributes: `notjson`"),
        (format!("/api/v3/traces?{window}&query.raw_traces=perhaps"), 400, "malformed parameter query.raw_traces: `perhaps`"),
        ("/api/v3/traces/not-an-id!".into(), 400, "malformed parameter trace_id: `not-an-id!`"),
        ("/api/v3/traces/1?startTime=today".into(), 400, "malformed parameter startTime: `today`"),
        ("/api/v3/traces/1?end_time=2026-01-01".into(), 400, "malformed parameter end_time: `2026-01-01`"),
        ("/api/v3/traces/1?rawTraces=yes".into(), 400, "malformed parameter rawTraces: `yes`"),
        ("/api/v3/traces/0123456789abcdef0123456789abcdef".into(), 404, "No traces found"),
    ];
    for (path, status, message) in cases {
        let reply = explorer.get(&path).await;
        assert_eq!(reply.status, status, "{path}");
        let body = reply.json();
        assert_eq!(body["error"]["httpCode"], status, "{path}: {body}");
        let said = body["error"]["message"].as_str().unwrap();
        assert!(said.starts_with(message), "{path}: {said}");
    }
}
