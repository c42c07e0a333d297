//! The host's metrics at a real OTLP receiver (gRPC and HTTP/protobuf):
//! counts per route and status equal to the requests sent, exemplars that
//! lead to exported traces, the sandbox's instruments, a collector that is
//! down costing requests nothing.

use std::collections::{BTreeMap, HashSet};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

use crate::common::*;

/// A point's attribute as text (strings as they are, numbers in decimal).
fn text(attributes: &[KeyValue], key: &str) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match attr(attributes, key) {
        Some(Value::StringValue(s)) => s,
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => "-".to_string(),
    }
}

/// Counts per (method, route, status, error.type).
fn counts(points: &[HistogramDataPoint]) -> BTreeMap<(String, String, String, String), u64> {
    points
        .iter()
        .map(|p| {
            (
                (
                    text(&p.attributes, "http.request.method"),
                    text(&p.attributes, "http.route"),
                    text(&p.attributes, "http.response.status_code"),
                    text(&p.attributes, "error.type"),
                ),
                p.count,
            )
        })
        .collect()
}

fn key(method: &str, route: &str, status: &str, error: &str) -> (String, String, String, String) {
    (
        method.to_string(),
        route.to_string(),
        status.to_string(),
        error.to_string(),
    )
}

/// Sends 3 valid, 2 fraud and 1 invalid order to a one-process system
/// exporting to `receiver`, stops it (the last export happens at SIGTERM)
/// and checks what arrived.
async fn orders_of_known_outcomes(receiver: Receiver, endpoint: &str, env: &[(&str, &str)]) {
    let mut host = one_process(endpoint, env, &[]).await;
    let order_url = format!("http://{}/orders", host.addrs["order-api"]);
    let mut sent = Vec::new();
    for (body, status) in [
        (VALID_ORDER, 201),
        (FRAUD_ORDER, 402),
        (VALID_ORDER, 201),
        (INVALID_ORDER, 422),
        (FRAUD_ORDER, 402),
        (VALID_ORDER, 201),
    ] {
        let reply = send("POST", &order_url, &[], body).await;
        assert_eq!(reply.status, status, "{}", reply.json());
        sent.push(reply.json()["trace_id"].as_str().unwrap().to_string());
    }
    assert!(host.terminate().await.success());

    // The order API: one point per route, status and error, counting
    // exactly the requests of each outcome.
    let order = receiver.histogram("order-api", "http.server.request.duration");
    assert_eq!(
        counts(&order),
        BTreeMap::from([
            (key("POST", "/orders", "201", "-"), 3),
            (key("POST", "/orders", "402", "-"), 2),
            (key("POST", "/orders", "422", "-"), 1),
        ])
    );
    for point in &order {
        assert_eq!(text(&point.attributes, "url.scheme"), "http");
        assert_eq!(point.explicit_bounds.len(), 14, "the convention's buckets");
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
        assert!(point.sum.unwrap() > 0.0);
    }
    // The payment service, and the order API's calls to it.
    let payment = receiver.histogram("payment-service", "http.server.request.duration");
    assert_eq!(
        counts(&payment),
        BTreeMap::from([
            (key("POST", "/payments", "200", "-"), 3),
            (key("POST", "/payments", "402", "-"), 2),
        ])
    );
    let client = receiver.histogram("order-api", "http.client.request.duration");
    let by_status: BTreeMap<(String, String), u64> = client
        .iter()
        .map(|p| {
            (
                (
                    text(&p.attributes, "http.response.status_code"),
                    text(&p.attributes, "error.type"),
                ),
                p.count,
            )
        })
        .collect();
    assert_eq!(
        by_status,
        BTreeMap::from([
            (("200".to_string(), "-".to_string()), 3),
            (("402".to_string(), "402".to_string()), 2),
        ])
    );
    assert!(
        client
            .iter()
            .all(|p| text(&p.attributes, "server.address") == "127.0.0.1")
    );

    // Exemplars: each bucket with counts has one, and it names an exported
    // span of one of the requests sent, in that very bucket's service.
    let spans = receiver.spans();
    let exported: HashSet<(String, String)> =
        spans.iter().map(|s| (s.trace_id(), s.span_id())).collect();
    for point in order.iter().chain(&payment).chain(&client) {
        let filled = point.bucket_counts.iter().filter(|n| **n > 0).count();
        assert_eq!(
            point.exemplars.len(),
            filled,
            "one exemplar per filled bucket"
        );
        for exemplar in &point.exemplars {
            let ids = (hex(&exemplar.trace_id), hex(&exemplar.span_id));
            assert!(
                sent.contains(&ids.0),
                "exemplar of an unsent request: {ids:?}"
            );
            assert!(
                exported.contains(&ids),
                "exemplar of no exported span: {ids:?}"
            );
        }
    }
    // The order API's exemplars are its SERVER spans.
    for exemplar in order.iter().flat_map(|p| &p.exemplars) {
        let span = spans
            .iter()
            .find(|s| s.span.span_id == exemplar.span_id)
            .unwrap();
        assert_eq!(
            (span.service.as_str(), span.span.kind),
            ("order-api", SPAN_KIND_SERVER)
        );
    }

    // The business metrics the services record through `metrics`.
    let outcomes = |service: &str, name: &str, key: &str| -> BTreeMap<String, i64> {
        receiver
            .sum(service, name)
            .into_iter()
            .map(|(attributes, n)| (text(&attributes, key), n))
            .collect()
    };
    assert_eq!(
        outcomes("order-api", "orders", "order.outcome"),
        BTreeMap::from([
            ("confirmed".to_string(), 3),
            ("fraud_rejected".to_string(), 2),
            ("invalid".to_string(), 1),
        ])
    );
    assert_eq!(
        outcomes("payment-service", "payments", "payment.outcome"),
        BTreeMap::from([
            ("authorized".to_string(), 3),
            ("fraud_declined".to_string(), 2)
        ])
    );
    let amounts = receiver.histogram("order-api", "order.amount");
    let by_outcome: BTreeMap<String, (u64, f64)> = amounts
        .iter()
        .map(|p| {
            (
                text(&p.attributes, "order.outcome"),
                (p.count, p.sum.unwrap()),
            )
        })
        .collect();
    assert_eq!(by_outcome["confirmed"].0, 3);
    assert!((by_outcome["confirmed"].1 - 3.0 * 59.97).abs() < 1e-6);
    assert_eq!(by_outcome["fraud_rejected"], (2, 50_000.0));
    for exemplar in amounts.iter().flat_map(|p| &p.exemplars) {
        assert!(sent.contains(&hex(&exemplar.trace_id)));
    }

    // The sandbox: an instantiation and a memory peak per request that ran
    // a guest (all six orders, five payments); no request still active.
    for (service, requests) in [("order-api", 6), ("payment-service", 5)] {
        for name in ["wasm.instantiate.duration", "wasm.memory.peak"] {
            let points = receiver.histogram(service, name);
            assert_eq!(points.len(), 1, "{service} {name}");
            assert_eq!(points[0].count, requests, "{service} {name}");
        }
        let active = receiver.sum(service, "http.server.active_requests");
        assert!(active.iter().all(|(_, n)| *n == 0), "{active:?}");
        let slots = receiver.sum(service, "wasm.pool.slots.used");
        assert_eq!(slots.iter().map(|(_, n)| n).sum::<i64>(), 0, "{slots:?}");
    }
}

/// After orders of known outcomes, over OTLP/gRPC: per route and status the
/// server histograms count exactly what was sent (both services), the
/// client histogram counts the calls to payment by status, every exemplar
/// names an exported span of a request that was sent, the services' own
/// `orders`, `payments` and `order.amount` count each outcome, and the
/// sandbox's instruments count every request.
#[tokio::test]
async fn histograms_count_each_outcome_with_exemplars_over_grpc() {
    let (receiver, endpoint) = Receiver::start().await;
    orders_of_known_outcomes(receiver, &endpoint, &[]).await;
}

/// The same over OTLP/HTTP (protobuf), to `/v1/metrics` under the general
/// endpoint.
#[tokio::test]
async fn histograms_count_each_outcome_with_exemplars_over_http() {
    let (receiver, base) = Receiver::start_http().await;
    orders_of_known_outcomes(
        receiver,
        &base,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
    )
    .await;
}

/// A guest that traps is counted in `wasm.guest.failures` by its
/// `error.type`, and its 500 is in the server histogram with that
/// `error.type`; exports are periodic (`OTEL_METRIC_EXPORT_INTERVAL`), not
/// only at shutdown.
#[tokio::test]
async fn guest_failures_are_counted_by_error_type_between_exports() {
    let (receiver, endpoint) = Receiver::start().await;
    let options = HostOptions {
        env: vec![("OTEL_METRIC_EXPORT_INTERVAL".into(), "100".into())],
        ..Default::default()
    };
    let host = Host::start("testbed", &endpoint, options).await;
    for _ in 0..2 {
        assert_eq!(send("GET", &host.url("/trap"), &[], "").await.status, 500);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let failures = loop {
        let failures = receiver.sum("testbed", "wasm.guest.failures");
        if failures.iter().map(|(_, n)| n).sum::<i64>() >= 2 {
            break failures;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failures exported: {failures:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        text(&failures[0].0, "error.type"),
        "unreachable_code_reached"
    );
    assert_eq!(failures[0].1, 2);
    let server = receiver.histogram("testbed", "http.server.request.duration");
    let errors: Vec<String> = server
        .iter()
        .map(|p| text(&p.attributes, "error.type"))
        .collect();
    assert_eq!(errors, vec!["unreachable_code_reached"]);
}

/// With the collector silent, requests are served as fast as ever (none
/// waits on a metrics export), the failure is said once on stderr, and the
/// host still stops cleanly at SIGTERM.
#[tokio::test]
async fn a_silent_metrics_collector_costs_requests_nothing() {
    let (_receiver, endpoint) = Receiver::start().await;
    let silent = silent_server().await;
    let options = HostOptions {
        env: vec![
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".into(), silent.clone()),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT".into(), "200".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL".into(), "50".into()),
        ],
        ..Default::default()
    };
    let mut host = Host::start("payment", &endpoint, options).await;
    let body = r#"{"order_id":"o","customer_id":"c","amount":5.0}"#;
    for _ in 0..20 {
        assert_eq!(
            send("POST", &host.url("/payments"), &[], body).await.status,
            200
        );
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !host.stderr.lock().unwrap().contains("metrics export to") {
        assert!(tokio::time::Instant::now() < deadline, "failure never said");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        assert_eq!(
            send("POST", &host.url("/payments"), &[], body).await.status,
            200
        );
    }
    assert!(host.terminate().await.success());
    host.wait_for_stdout("stopped").await;
    let stderr = host.stderr.lock().unwrap().clone();
    assert_eq!(stderr.matches("metrics export to").count(), 1, "{stderr}");
    assert!(stderr.contains(&silent), "{stderr}");
}

/// `OTEL_METRICS_EXPORTER=none` exports no metrics (traces still flow);
/// `console` prints the points on standard output.
#[tokio::test]
async fn metrics_exporter_none_and_console() {
    let (receiver, endpoint) = Receiver::start().await;
    let options = |value: &str| HostOptions {
        env: vec![("OTEL_METRICS_EXPORTER".into(), value.into())],
        ..Default::default()
    };
    let mut host = Host::start("payment", &endpoint, options("none")).await;
    let body = r#"{"order_id":"o","customer_id":"c","amount":5.0}"#;
    let reply = send("POST", &host.url("/payments"), &[], body).await;
    assert_eq!(reply.status, 200);
    assert!(host.terminate().await.success());
    assert!(receiver.metrics.lock().unwrap().is_empty());
    assert!(!receiver.spans().is_empty());

    let mut host = Host::start("payment", &endpoint, options("console")).await;
    send("POST", &host.url("/payments"), &[], body).await;
    assert!(host.terminate().await.success());
    let out = host.wait_for_stdout("stopped").await;
    assert!(
        out.contains("metric payment-service http.server.request.duration {"),
        "{out}"
    );
    assert!(receiver.metrics.lock().unwrap().is_empty());
}

/// The trace ids of the `traceresponse` headers of `count` payments sent to
/// `host`.
async fn payments(host: &Host, count: usize) -> HashSet<String> {
    let body = r#"{"order_id":"o","customer_id":"c","amount":5.0}"#;
    let mut traces = HashSet::new();
    for _ in 0..count {
        let reply = send("POST", &host.url("/payments"), &[], body).await;
        assert_eq!(reply.status, 200);
        let traceresponse = reply.headers["traceresponse"].to_str().unwrap();
        traces.insert(traceresponse[3..35].to_string());
    }
    traces
}

/// `OTEL_METRICS_EXEMPLAR_FILTER`, with the sampler it depends on: what
/// arrives at the receiver for four payments. `always_off` exports points
/// without exemplars; `trace_based` (the default) exports none when no span
/// is sampled; `always_on` keeps exemplars of unsampled spans, with their
/// trace and span ids (the specification's exemplar carries the active
/// span's ids, sampled or not), though no span was exported.
#[tokio::test]
async fn exemplar_filter_decides_which_requests_become_exemplars() {
    // (filter, sampler, exemplars expected)
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        ("always_off",  "always_on",  false),
        ("trace_based", "always_off", false),
        ("always_on",   "always_off", true),
        ("trace_based", "always_on",  true),
    ];
    for &(filter, sampler, expected) in cases {
        let (receiver, endpoint) = Receiver::start().await;
        let options = HostOptions {
            env: vec![
                ("OTEL_METRICS_EXEMPLAR_FILTER".into(), filter.into()),
                ("OTEL_TRACES_SAMPLER".into(), sampler.into()),
            ],
            ..Default::default()
        };
        let mut host = Host::start("payment", &endpoint, options).await;
        let sent = payments(&host, 4).await;
        assert!(host.terminate().await.success());
        let case = format!("{filter} with sampler {sampler}");
        let points = receiver.histogram("payment-service", "http.server.request.duration");
        assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 4, "{case}");
        let exemplars: Vec<_> = points.iter().flat_map(|p| &p.exemplars).collect();
        assert_eq!(!exemplars.is_empty(), expected, "{case}: {exemplars:?}");
        for exemplar in &exemplars {
            assert!(sent.contains(&hex(&exemplar.trace_id)), "{case}");
            assert_eq!(exemplar.span_id.len(), 8, "{case}");
        }
        let memory = receiver.histogram("payment-service", "wasm.memory.peak");
        assert_eq!(
            memory[0].exemplars.is_empty(),
            !expected,
            "{case}: every histogram follows the filter"
        );
        if sampler == "always_off" {
            assert!(receiver.spans().is_empty(), "{case}: no span sampled");
        }
    }
}

/// With `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=base2_exponential_bucket_histogram`
/// every histogram (the HTTP conventions', the sandbox's, the services'
/// own) arrives as an OTLP exponential histogram: per route and status
/// the counts equal the requests sent, the buckets and zero count add up
/// to the count, the scale is at most 20 and the buckets at most 160, and
/// the exemplars name requests that were sent.
#[tokio::test]
async fn exponential_histograms_count_every_request() {
    let (receiver, endpoint) = Receiver::start().await;
    let env = [(
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        "base2_exponential_bucket_histogram",
    )];
    let mut host = one_process(&endpoint, &env, &[]).await;
    let order_url = format!("http://{}/orders", host.addrs["order-api"]);
    let mut sent = HashSet::new();
    for (body, status) in [
        (VALID_ORDER, 201),
        (FRAUD_ORDER, 402),
        (VALID_ORDER, 201),
        (VALID_ORDER, 201),
    ] {
        let reply = send("POST", &order_url, &[], body).await;
        assert_eq!(reply.status, status, "{}", reply.json());
        sent.insert(reply.json()["trace_id"].as_str().unwrap().to_string());
    }
    assert!(host.terminate().await.success());

    let order = receiver.exponential("order-api", "http.server.request.duration");
    let by_status: BTreeMap<String, u64> = order
        .iter()
        .map(|p| (text(&p.attributes, "http.response.status_code"), p.count))
        .collect();
    assert_eq!(
        by_status,
        BTreeMap::from([("201".to_string(), 3), ("402".to_string(), 1)])
    );
    for (service, name, count) in [
        ("order-api", "http.server.request.duration", 4),
        ("order-api", "http.client.request.duration", 4),
        ("order-api", "wasm.instantiate.duration", 4),
        ("order-api", "wasm.memory.peak", 4),
        ("order-api", "order.amount", 4),
        ("payment-service", "http.server.request.duration", 4),
    ] {
        let points = receiver.exponential(service, name);
        assert_eq!(
            points.iter().map(|p| p.count).sum::<u64>(),
            count,
            "{service} {name}"
        );
        for p in &points {
            let positive = p.positive.as_ref().unwrap();
            assert_eq!(
                positive.bucket_counts.iter().sum::<u64>() + p.zero_count,
                p.count,
                "{service} {name}"
            );
            assert!(p.scale <= 20 && positive.bucket_counts.len() <= 160);
            assert!(p.min.unwrap() <= p.max.unwrap() && p.sum.unwrap() > 0.0);
            assert!(!p.exemplars.is_empty(), "{service} {name}");
            for exemplar in &p.exemplars {
                assert!(sent.contains(&hex(&exemplar.trace_id)), "{service} {name}");
            }
        }
    }
}

/// `OTEL_METRIC_EXPORT_TIMEOUT` bounds each metrics export even when the
/// OTLP timeout is longer: against a collector that never answers, with
/// the OTLP timeout at its 10 s default, the failure is said within a
/// couple of seconds, and shutdown does not wait 10 s.
#[tokio::test]
async fn metric_export_timeout_bounds_each_export() {
    let (_receiver, endpoint) = Receiver::start().await;
    let silent = silent_server().await;
    let options = HostOptions {
        env: vec![
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".into(), silent),
            ("OTEL_METRIC_EXPORT_TIMEOUT".into(), "200".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL".into(), "50".into()),
        ],
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let mut host = Host::start("payment", &endpoint, options).await;
    payments(&host, 2).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !host.stderr.lock().unwrap().contains("metrics export to") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the export was not cut short"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(host.terminate().await.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
