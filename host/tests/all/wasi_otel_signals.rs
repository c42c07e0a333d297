//! `wasi:otel` metrics and logs at a real OTLP receiver (gRPC and
//! HTTP/protobuf): what the guest's SDK aggregated arrives exactly (every
//! kind, its exemplars in the request's trace, its temporality), its log
//! records keep their trace and span; garbage is dropped and counted while
//! a concurrent request's data is untouched; a collector that is down costs
//! requests nothing.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};

use crate::common::*;

const SERVICE: &str = "wasi-otel-guest";
/// The guest's fixed times (see the component's `signals.rs`), in ns.
const START: u64 = 1_700_000_000_000_000_000;
const TIME: u64 = 1_700_000_060_000_000_500;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

/// The guest, exporting metrics and logs to `endpoint` with `env` on top.
async fn guest(endpoint: &str, env: &[(&str, &str)]) -> Host {
    let mut all = vec![("OTEL_BLRP_SCHEDULE_DELAY".to_string(), "100".to_string())];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Host::start(
        "wasi_otel_guest",
        endpoint,
        HostOptions {
            env: all,
            ..Default::default()
        },
    )
    .await
}

/// `GET path`, which must answer 200 with JSON.
async fn get(host: &Host, path: &str) -> serde_json::Value {
    let reply = send("GET", &host.url(path), &[], "").await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Every metric named `name` the guest's service exported, with its
/// resource's attributes and its scope's name and version.
fn metrics(receiver: &Receiver, name: &str) -> Vec<(Vec<KeyValue>, (String, String), Metric)> {
    let mut found = Vec::new();
    for export in receiver.metrics.lock().unwrap().iter() {
        for resource in &export.resource_metrics {
            let attributes = resource.resource.clone().unwrap_or_default().attributes;
            if str_of(&attributes, "service.name").as_deref() != Some(SERVICE) {
                continue;
            }
            for scope in &resource.scope_metrics {
                let scope_id = scope
                    .scope
                    .as_ref()
                    .map(|s| (s.name.clone(), s.version.clone()))
                    .unwrap_or_default();
                for metric in scope.metrics.iter().filter(|m| m.name == name) {
                    found.push((attributes.clone(), scope_id.clone(), metric.clone()));
                }
            }
        }
    }
    found
}

/// The one metric `name` exported: forwarded once, not again.
fn one(receiver: &Receiver, name: &str) -> Metric {
    let found = metrics(receiver, name);
    assert_eq!(found.len(), 1, "`{name}`: {found:#?}");
    found.into_iter().next().unwrap().2
}

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.to_string())),
    })
}

/// A counter's total over its exports (cumulative: the last export's).
fn host_count(receiver: &Receiver, name: &str, reason: &str) -> i64 {
    receiver
        .sum(SERVICE, name)
        .into_iter()
        .filter(|(attributes, _)| str_of(attributes, "wasm.drop.reason").as_deref() == Some(reason))
        .map(|(_, n)| n)
        .sum()
}

/// Checks what `/metrics` exported, as received: every kind with its
/// values, bounds, bucket counts, times, temporality and monotonicity; the
/// exemplars in the request's trace and the guest's span `measure`; the
/// guest's scope; the service's resource with the guest's other attribute.
fn every_kind_arrived(receiver: &Receiver, ids: &serde_json::Value) {
    let trace = ids["trace_id"].as_str().unwrap();
    let measure = ids["measure"].as_str().unwrap();
    let exemplar_ids = |exemplars: &[opentelemetry_proto::tonic::metrics::v1::Exemplar]| {
        exemplars
            .iter()
            .map(|e| (hex(&e.trace_id), hex(&e.span_id)))
            .collect::<Vec<_>>()
    };
    let ours = (trace.to_string(), measure.to_string());

    let (resource, scope, _) = metrics(receiver, "queue.depth").remove(0);
    assert_eq!(str_of(&resource, "service.name").as_deref(), Some(SERVICE));
    assert_eq!(
        str_of(&resource, "deployment.environment").as_deref(),
        Some("test")
    );
    assert_eq!(scope, ("guest-meter".to_string(), "1.2.3".to_string()));

    let Some(Data::Gauge(gauge)) = one(receiver, "queue.depth").data else {
        panic!("queue.depth is not a gauge");
    };
    let p = &gauge.data_points[0];
    assert_eq!(p.value, Some(Number::AsDouble(2.5)));
    assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (0, TIME));
    assert_eq!(p.attributes[0].value, string("a"));
    assert_eq!(exemplar_ids(&p.exemplars), vec![ours.clone()]);
    assert_eq!(p.exemplars[0].filtered_attributes[0].value, string("u1"));

    let sum = |name: &str| match one(receiver, name).data {
        Some(Data::Sum(sum)) => sum,
        other => panic!("{name} is not a sum: {other:?}"),
    };
    #[rustfmt::skip]
    let sums = [
        ("requests", Number::AsInt(7),    CUMULATIVE, true),
        ("inflight", Number::AsInt(-3),   DELTA,      false),
        ("tokens",   Number::AsInt(11),   DELTA,      true),  // low-memory, monotonic
        ("level",    Number::AsDouble(-1.5), CUMULATIVE, false), // low-memory, up-down
    ];
    for (name, value, temporality, monotonic) in sums {
        let s = sum(name);
        assert_eq!(s.data_points[0].value, Some(value), "{name}");
        assert_eq!(
            (s.aggregation_temporality, s.is_monotonic),
            (temporality, monotonic),
            "{name}"
        );
        assert_eq!(
            (
                s.data_points[0].start_time_unix_nano,
                s.data_points[0].time_unix_nano
            ),
            (START, TIME),
            "{name}"
        );
    }

    let latency = one(receiver, "latency");
    assert_eq!(
        (latency.unit.as_str(), latency.description.as_str()),
        ("s", "the latency of the test")
    );
    let Some(Data::Histogram(h)) = latency.data else {
        panic!("latency is not a histogram");
    };
    assert_eq!(h.aggregation_temporality, DELTA);
    let p = &h.data_points[0];
    assert_eq!(p.explicit_bounds, vec![0.1, 1.0, 10.0]);
    assert_eq!(p.bucket_counts, vec![1, 2, 0, 1]);
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (4, Some(12.5), Some(0.05), Some(11.0))
    );
    assert_eq!(exemplar_ids(&p.exemplars), vec![ours.clone(), ours.clone()]);

    let Some(Data::ExponentialHistogram(e)) = one(receiver, "size").data else {
        panic!("size is not an exponential histogram");
    };
    assert_eq!(e.aggregation_temporality, CUMULATIVE);
    let p = &e.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (5, Some(30.0), Some(-1.0), Some(12.0))
    );
    assert_eq!((p.scale, p.zero_count, p.zero_threshold), (2, 1, 0.0));
    let positive = p.positive.clone().unwrap();
    let negative = p.negative.clone().unwrap();
    assert_eq!(
        (positive.offset, positive.bucket_counts),
        (3, vec![1, 0, 2])
    );
    assert_eq!((negative.offset, negative.bucket_counts), (-1, vec![1]));
    assert_eq!(exemplar_ids(&p.exemplars), vec![ours]);
    assert_eq!(
        p.exemplars[0].value,
        Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsInt(12))
    );
}

/// Serves `/metrics` once and checks what arrived, after the last export
/// (at SIGTERM); the exemplars' span is an exported span of the request.
async fn metrics_arrive_exactly(receiver: Receiver, endpoint: &str, env: &[(&str, &str)]) {
    let mut host = guest(endpoint, env).await;
    let ids = get(&host, "/metrics").await;
    assert_eq!(ids["error"], serde_json::Value::Null, "{ids}");
    let trace = ids["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace, 2).await;
    let measure = find(&spans, SERVICE, "measure");
    assert_eq!(measure.span_id(), ids["measure"].as_str().unwrap());
    assert!(host.terminate().await.success());
    every_kind_arrived(&receiver, &ids);
}

/// Over OTLP/gRPC: a guest's exported gauge, sums (monotonic or not, delta,
/// cumulative and low-memory), histogram and exponential histogram arrive
/// with their exact values, bucket counts, times, temporality, scope and
/// exemplars naming the request's trace and the guest's span.
#[tokio::test]
async fn wasi_otel_metrics_arrive_exactly_over_grpc() {
    let (receiver, endpoint) = Receiver::start().await;
    metrics_arrive_exactly(receiver, &endpoint, &[]).await;
}

/// The same over OTLP/HTTP (protobuf).
#[tokio::test]
async fn wasi_otel_metrics_arrive_exactly_over_http() {
    let (receiver, base) = Receiver::start_http().await;
    metrics_arrive_exactly(
        receiver,
        &base,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
    )
    .await;
}

/// Serves `/logs` once and checks its four records.
async fn records_keep_their_spans(receiver: Receiver, endpoint: &str, env: &[(&str, &str)]) {
    let mut host = guest(endpoint, env).await;
    let ids = get(&host, "/logs").await;
    let trace = ids["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace, 3).await;
    let server = find(&spans, SERVICE, "GET");
    assert_eq!(server.span_id(), ids["outer"].as_str().unwrap());
    assert!(host.terminate().await.success());

    // An export groups records by scope: put them in order of severity.
    let mut logs: Vec<ReceivedLog> = receiver
        .logs()
        .into_iter()
        .filter(|log| log.trace_id() == trace && log.service == SERVICE)
        .filter(|log| log.scope != "wasm-otel-host")
        .collect();
    logs.sort_by_key(|log| log.record.severity_number);
    let seen: Vec<(String, String, i32, String)> = logs
        .iter()
        .map(|log| {
            (
                log.scope.clone(),
                log.record.severity_text.clone(),
                log.record.severity_number,
                log.span_id(),
            )
        })
        .collect();
    let id = |key: &str| ids[key].as_str().unwrap().to_string();
    let guest_scope = "wasm-otel-guest".to_string();
    assert_eq!(
        seen,
        vec![
            (guest_scope.clone(), "DEBUG".into(), 5, id("ours")),
            (guest_scope.clone(), "INFO".into(), 9, id("outer")),
            (guest_scope, "WARN".into(), 13, id("outer")),
            ("guest-logger".into(), "ERROR".into(), 17, id("emit")),
        ]
    );
    let outside = &logs[1];
    assert_eq!(outside.body(), "outside any span");
    assert_eq!(outside.str_attr("k").as_deref(), Some("v"));
    assert_eq!(outside.record.time_unix_nano, TIME);
    assert!(outside.record.observed_time_unix_nano > TIME);
    assert_eq!(logs[0].body(), "in ours");
    assert_eq!(logs[2].body(), "invalid ids");
    for log in &logs {
        assert_eq!(log.record.flags & 1, 1, "sampled");
    }
    let error = &logs[3].record;
    assert_eq!(error.event_name, "order.failed");
    assert_eq!(
        attr(&error.attributes, "order.id"),
        Some(Value::IntValue(42))
    );
    assert_eq!(
        attr(&error.attributes, "retry"),
        Some(Value::BoolValue(true))
    );
    let kv = |key: &str, value: Value| KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    };
    let tags = Value::ArrayValue(ArrayValue {
        values: ["a", "b"].iter().map(|s| string(s).unwrap()).collect(),
    });
    assert_eq!(
        error.body.clone().unwrap().value,
        Some(Value::KvlistValue(KeyValueList {
            values: vec![kv(
                "order",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("id", Value::IntValue(42)), kv("tags", tags)],
                })
            )],
        }))
    );
}

/// Over OTLP/gRPC: `on-emit` records arrive with their severity, body
/// (a map, whole), attributes, event name, time and scope, in the span
/// whose ids they give, else in the span innermost when emitted (the
/// SERVER span outside any, a `wasm-otel` span inside one), as stdout
/// lines are.
#[tokio::test]
async fn wasi_otel_records_keep_their_spans_over_grpc() {
    let (receiver, endpoint) = Receiver::start().await;
    records_keep_their_spans(receiver, &endpoint, &[]).await;
}

/// The same over OTLP/HTTP (protobuf).
#[tokio::test]
async fn wasi_otel_records_keep_their_spans_over_http() {
    let (receiver, base) = Receiver::start_http().await;
    records_keep_their_spans(
        receiver,
        &base,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
    )
    .await;
}

/// A guest exporting garbage while another request exports good data: the
/// garbage request's 9 invalid points, 2 oversized points and 98,000 of its
/// 100,000-point flood (past its budget of 2000) are dropped and counted (by reason, and on its
/// SERVER span), its call told so; 1000 of its 1200 records are kept, the
/// first cut to 8192 bytes; the concurrent request's metrics arrive exactly.
#[tokio::test]
async fn garbage_is_dropped_and_counted_and_only_its_request_affected() {
    let (receiver, endpoint) = Receiver::start().await;
    let mut host = guest(&endpoint, &[]).await;
    let (garbage, good) = tokio::join!(get(&host, "/garbage"), get(&host, "/metrics"));
    let error = garbage["error"].as_str().unwrap();
    assert!(
        error.starts_with("98011 data points not exported"),
        "{error}"
    );
    assert_eq!(good["error"], serde_json::Value::Null);
    let trace = garbage["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace, 1).await;
    assert_eq!(spans[0].int_attr("wasm.guest.points.dropped"), Some(98011));
    assert_eq!(spans[0].int_attr("wasm.logs.dropped"), Some(200));
    assert_eq!(spans[0].int_attr("wasm.logs.truncated"), Some(1));
    assert!(host.terminate().await.success());

    every_kind_arrived(&receiver, &good);
    for name in [
        "garbage.gauge",
        "garbage.histogram",
        "garbage.exponential",
        "garbage.sum",
        "garbage.exemplar",
        "garbage.wide",
    ] {
        assert!(metrics(&receiver, name).is_empty(), "{name} was exported");
    }
    let Some(Data::Sum(flood)) = one(&receiver, "garbage.flood").data else {
        panic!("garbage.flood is not a sum");
    };
    assert_eq!(flood.data_points.len(), 2000);
    for (reason, count) in [("invalid", 9), ("too_large", 2), ("request_limit", 98_000)] {
        assert_eq!(
            host_count(&receiver, "wasm.guest.points.dropped", reason),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        host_count(&receiver, "wasm.logs.dropped", "request_limit"),
        200
    );

    let records: Vec<ReceivedLog> = receiver
        .logs()
        .into_iter()
        .filter(|log| log.trace_id() == trace && log.scope == "wasm-otel-guest")
        .collect();
    assert_eq!(records.len(), 1000);
    assert_eq!(records[0].body().len(), 8192);
    assert_eq!(records[1].body(), "record 1");
    assert_eq!(records[999].body(), "record 999");
}

/// With the metrics and logs collector silent, requests that export
/// metrics and emit records are answered as before, promptly: nothing
/// waits on an export.
#[tokio::test]
async fn a_silent_collector_costs_wasi_otel_requests_nothing() {
    let (_receiver, endpoint) = Receiver::start().await;
    let silent = silent_server().await;
    let mut host = guest(
        &endpoint,
        &[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &silent),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &silent),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "200"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "200"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "50"),
        ],
    )
    .await;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        assert_eq!(
            get(&host, "/metrics").await["error"],
            serde_json::Value::Null
        );
        get(&host, "/logs").await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !host.stderr.lock().unwrap().contains("metrics export to") {
        assert!(tokio::time::Instant::now() < deadline, "failure never said");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&host, "/metrics").await["error"],
        serde_json::Value::Null
    );
    assert!(host.terminate().await.success());
}
