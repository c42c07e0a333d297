//! Telemetry configured the standard way, and the ways to see traces: OTLP
//! over gRPC and HTTP, the terminal waterfall, the OTLP/JSON traces file,
//! several services in one process, `--watch`, and start-up errors.

use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The one-command mode: both services in one process answer the four
/// scenarios, and each trace is drawn once, whole, across both services.
#[tokio::test]
async fn one_process_serves_the_scenarios_and_draws_whole_traces() {
    let host = one_process(
        "http://127.0.0.1:9",
        &[("OTEL_TRACES_EXPORTER", "console")],
        &[],
    )
    .await;
    let order = &host.addrs["order-api"];
    assert!(host.addrs.contains_key("payment-service"));
    let health = send("GET", &format!("http://{order}/health"), &[], "").await;
    assert_eq!(health.status, 200);
    let valid = send("POST", &format!("http://{order}/orders"), &[], VALID_ORDER).await;
    assert_eq!(valid.status, 201);
    let invalid = send(
        "POST",
        &format!("http://{order}/orders"),
        &[],
        INVALID_ORDER,
    )
    .await;
    assert_eq!(invalid.status, 422);
    let fraud = send("POST", &format!("http://{order}/orders"), &[], FRAUD_ORDER).await;
    assert_eq!(fraud.status, 402);

    let trace_id = valid.json()["trace_id"].as_str().unwrap().to_string();
    let fraud_id = fraud.json()["trace_id"].as_str().unwrap().to_string();
    let out = host.wait_for_stdout(&format!("── trace {fraud_id}")).await;
    // One drawing of the valid order, with all six spans of both services.
    let header = format!("── trace {trace_id} · ");
    assert_eq!(out.matches(&header).count(), 1, "{out}");
    let drawing: String = out
        .split(&header)
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|line| !line.starts_with("──") && !line.starts_with("order-api POST"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(drawing.contains("6 spans"), "{drawing}");
    for part in [
        "POST /orders",
        "├─ validate_order",
        "├─ save_order",
        "◆ order.saved",
        "└─ POST /payments",
        "└─ process_payment",
    ] {
        assert!(drawing.contains(part), "missing `{part}` in\n{drawing}");
    }
    assert!(
        !drawing.contains("remote parent"),
        "one process sees the whole trace:\n{drawing}"
    );
    // The fraud trace stands out.
    let fraud_drawing = out
        .split(&format!("── trace {fraud_id} · "))
        .nth(1)
        .unwrap();
    assert!(fraud_drawing.lines().next().unwrap().contains("ERROR"));
    assert!(
        fraud_drawing.contains("◆ exception FraudSuspected: payment declined: suspected fraud")
    );
    // Every request is logged with its trace id and Jaeger link.
    assert!(out.contains("order-api POST /orders 201 "));
    assert!(out.contains(&format!(
        "trace {trace_id}  http://localhost:16686/trace/{trace_id}"
    )));
    // And each response says which trace served it.
    let traceresponse = valid.headers["traceresponse"].to_str().unwrap().to_string();
    assert!(
        traceresponse.starts_with(&format!("00-{trace_id}-")),
        "{traceresponse}"
    );
    // A trace the host starts has random ids: sampled and random (W3C
    // Trace Context § "Random Trace ID Flag").
    assert!(traceresponse.ends_with("-03"), "{traceresponse}");
}

/// Separate processes: each draws its own part, the payment side marked as
/// joining a remote parent.
#[tokio::test]
async fn separate_processes_draw_their_part() {
    let console = [("OTEL_TRACES_EXPORTER".to_string(), "console".to_string())];
    let payment = Host::start(
        "payment",
        "http://127.0.0.1:9",
        HostOptions {
            args: vec![],
            env: console.to_vec(),
        },
    )
    .await;
    let order = Host::start(
        "order",
        "http://127.0.0.1:9",
        HostOptions {
            args: args(&[
                "--env",
                &format!("PAYMENT_URL={}", payment.url("")),
                "--allow-outbound",
                &payment.url(""),
            ]),
            env: console.to_vec(),
        },
    )
    .await;
    let reply = send("POST", &order.url("/orders"), &[], VALID_ORDER).await;
    let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
    let out = payment
        .wait_for_stdout(&format!("── trace {trace_id}"))
        .await;
    assert!(out.contains("2 spans"), "{out}");
    assert!(out.contains("↖ remote parent"), "{out}");
    let out = order.wait_for_stdout(&format!("── trace {trace_id}")).await;
    assert!(out.contains("4 spans"), "{out}");
}

/// OTLP over HTTP/protobuf reaches a real receiver at `/v1/traces`, with the
/// percent-decoded `OTEL_EXPORTER_OTLP_HEADERS`.
#[tokio::test]
async fn otlp_http_protobuf() {
    let (receiver, base) = Receiver::start_http().await;
    let host = Host::start(
        "payment",
        &base,
        HostOptions {
            args: vec![],
            env: env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret%3D1"),
            ]),
        },
    )
    .await;
    let reply = send("GET", &host.url("/health"), &[], "").await;
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 1).await;
    assert_eq!(spans[0].span.name, "GET /health");
    assert_eq!(spans[0].service, "payment-service");
    let headers = receiver.headers.lock().unwrap().clone();
    assert_eq!(headers[0]["x-api-key"], "s3cret=1");
}

/// gRPC exports carry `OTEL_EXPORTER_OTLP_TRACES_HEADERS` as metadata; the
/// traces variable wins over the general one.
#[tokio::test]
async fn otlp_grpc_headers() {
    let (receiver, endpoint) = Receiver::start().await;
    let host = Host::start(
        "payment",
        "http://127.0.0.1:9",
        HostOptions {
            args: vec![],
            env: env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=general"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                    "x-tenant=traces%20only",
                ),
            ]),
        },
    )
    .await;
    let reply = send("GET", &host.url("/health"), &[], "").await;
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    receiver.trace(&trace_id, 1).await;
    let headers = receiver.headers.lock().unwrap().clone();
    assert_eq!(headers[0]["x-tenant"], "traces only");
}

/// `--traces-file` writes OTLP/JSON lines that parse back with the official
/// types, holding the same spans the receiver got.
#[tokio::test]
async fn traces_file_holds_the_same_spans_as_otlp() {
    let (receiver, endpoint) = Receiver::start().await;
    let dir = std::env::temp_dir().join(format!("wasm-otel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("traces-file-test.jsonl");
    let _ = std::fs::remove_file(&file);
    let mut host = one_process(&endpoint, &[], &["--traces-file", file.to_str().unwrap()]).await;
    let order = host.addrs["order-api"].clone();
    let reply = send("POST", &format!("http://{order}/orders"), &[], VALID_ORDER).await;
    let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
    let received = receiver.trace(&trace_id, 6).await;
    assert!(host.terminate().await.success());

    let text = std::fs::read_to_string(&file).unwrap();
    let mut from_file = Vec::new();
    for line in text.lines() {
        let request: ExportTraceServiceRequest = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("line is not an OTLP/JSON ExportTraceServiceRequest ({e}): {line}")
        });
        for resource_spans in request.resource_spans {
            let service =
                str_of(&resource_spans.resource.unwrap().attributes, "service.name").unwrap();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    from_file.push((service.clone(), span));
                }
            }
        }
        // The OTLP/JSON mapping: hex ids, lowerCamelCase names.
        assert!(
            line.contains(&format!("\"traceId\":\"{trace_id}\"")) || !line.contains(&trace_id[..8])
        );
        assert!(line.contains("\"startTimeUnixNano\":\""), "{line}");
    }
    let mut expected: Vec<(String, String, String, String)> = received
        .iter()
        .map(|r| {
            (
                r.service.clone(),
                r.span.name.clone(),
                r.span_id(),
                r.parent_id(),
            )
        })
        .collect();
    let mut got: Vec<(String, String, String, String)> = from_file
        .iter()
        .filter(|(_, span)| hex(&span.trace_id) == trace_id)
        .map(|(service, span)| {
            (
                service.clone(),
                span.name.clone(),
                hex(&span.span_id),
                hex(&span.parent_span_id),
            )
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `OTEL_SDK_DISABLED=true`: no spans at all, no `traceresponse`, and an
/// incoming `traceparent` passes through to the payment service unchanged.
#[tokio::test]
async fn sdk_disabled_records_nothing_and_passes_context_through() {
    let (receiver, endpoint) = Receiver::start().await;
    let payment = Host::start("payment", &endpoint, HostOptions::default()).await;
    let order = Host::start(
        "order",
        &endpoint,
        HostOptions {
            args: args(&[
                "--env",
                &format!("PAYMENT_URL={}", payment.url("")),
                "--allow-outbound",
                &payment.url(""),
            ]),
            env: env(&[("OTEL_SDK_DISABLED", "true")]),
        },
    )
    .await;
    order.wait_for_stdout("telemetry: disabled").await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let reply = send(
        "POST",
        &order.url("/orders"),
        &[("traceparent", traceparent)],
        VALID_ORDER,
    )
    .await;
    assert_eq!(reply.status, 201);
    assert!(reply.headers.get("traceresponse").is_none());
    // The payment side continued the caller's context as if order were not there.
    let spans = receiver.trace("0af7651916cd43dd8448eb211c80319c", 2).await;
    let server = find(&spans, "payment-service", "POST /payments");
    assert_eq!(server.parent_id(), "b7ad6b7169203331");
    assert!(spans.iter().all(|s| s.service == "payment-service"));
}

/// `OTEL_SERVICE_NAME` wins over `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, whose other values arrive percent-decoded;
/// the sampler and propagators follow their variables.
#[tokio::test]
async fn resource_sampler_and_propagators_follow_the_environment() {
    let (receiver, endpoint) = Receiver::start().await;
    let named = Host::start(
        "payment",
        &endpoint,
        HostOptions {
            args: vec![],
            env: env(&[
                ("OTEL_SERVICE_NAME", "pay-from-env"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=ignored,deployment.environment.name=eu%2Cwest",
                ),
                ("OTEL_PROPAGATORS", "none"),
            ]),
        },
    )
    .await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let reply = send(
        "GET",
        &named.url("/health"),
        &[("traceparent", traceparent)],
        "",
    )
    .await;
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    assert_ne!(
        trace_id, "0af7651916cd43dd8448eb211c80319c",
        "propagators=none ignores traceparent"
    );
    let spans = receiver.trace(&trace_id, 1).await;
    assert_eq!(spans[0].service, "pay-from-env");
    assert_eq!(
        str_of(&spans[0].resource, "deployment.environment.name").as_deref(),
        Some("eu,west")
    );

    let unsampled = Host::start(
        "payment",
        &endpoint,
        HostOptions {
            args: vec![],
            env: env(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ]),
        },
    )
    .await;
    let reply = send("GET", &unsampled.url("/health"), &[], "").await;
    let traceresponse = reply.headers["traceresponse"].to_str().unwrap().to_string();
    assert!(
        traceresponse.ends_with("-02"),
        "not sampled, random: {traceresponse}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let trace_id = &traceresponse[3..35];
    assert!(receiver.spans().iter().all(|s| s.trace_id() != trace_id));
}

/// An invalid `OTEL_*` value stops start-up with one sentence naming the
/// variable and the value.
#[tokio::test]
async fn invalid_configuration_is_a_clear_startup_error() {
    for (key, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_SDK_DISABLED", "yes"),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
        ("OTEL_LOGS_EXPORTER", "syslog"),
        ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "30s"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "exponential",
        ),
        ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "-1"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "short"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "many"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "1.5"),
    ] {
        let output = Host::command(
            &[
                component("payment").display().to_string(),
                "--port".into(),
                "0".into(),
            ],
            "http://127.0.0.1:9",
            &env(&[(key, value)]),
        )
        .output()
        .await
        .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("invalid {key}=`{value}`")),
            "{stderr}"
        );
    }
}

/// The metrics SDK's and the limits' variables: a bad value stops
/// start-up with the whole sentence a user needs (variable, value, what
/// is expected).
#[tokio::test]
async fn metrics_and_limit_variables_say_what_is_expected() {
    #[rustfmt::skip]
    let cases = [
        ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", "invalid OTEL_METRICS_EXEMPLAR_FILTER=`sometimes`: expected `always_on`, `always_off` or `trace_based`"),
        ("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "exponential", "invalid OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=`exponential`: expected `explicit_bucket_histogram` or `base2_exponential_bucket_histogram`"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "30s", "invalid OTEL_METRIC_EXPORT_TIMEOUT=`30s`: expected a whole number of milliseconds"),
        ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "-1", "invalid OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT=`-1`: expected a non-negative whole number"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "many", "invalid OTEL_SPAN_LINK_COUNT_LIMIT=`many`: expected a non-negative whole number"),
    ];
    for (key, value, sentence) in cases {
        let output = Host::command(
            &[
                component("payment").display().to_string(),
                "--port".into(),
                "0".into(),
            ],
            "http://127.0.0.1:9",
            &env(&[(key, value)]),
        )
        .output()
        .await
        .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(sentence), "{stderr}");
    }
}

/// Start-up errors say what failed, with the value, and what to do.
#[tokio::test]
async fn startup_errors_say_what_to_do() {
    let run = |args: Vec<String>| async move {
        let output = Host::command(&args, "http://127.0.0.1:9", &[])
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = run(args(&["nonexistent.wasm"])).await;
    assert!(
        missing.contains("component `nonexistent.wasm` not found"),
        "{missing}"
    );
    assert!(missing.contains("cargo build-components"), "{missing}");

    let dir = std::env::temp_dir().join(format!("wasm-otel-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let not_component = run(vec![junk.display().to_string()]).await;
    assert!(
        not_component.contains(&format!("failed to compile component `{}`", junk.display())),
        "{not_component}"
    );

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let in_use = run(vec![
        component("payment").display().to_string(),
        "--port".into(),
        port.clone(),
    ])
    .await;
    assert!(
        in_use.contains(&format!("cannot listen on `127.0.0.1:{port}`")),
        "{in_use}"
    );

    let no_port = run(vec![
        component("order").display().to_string(),
        component("payment").display().to_string(),
    ])
    .await;
    assert!(no_port.contains("has no port"), "{no_port}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--watch`: replace the component under a running host; requests before
/// and after succeed and the new behaviour is served; a broken rebuild is
/// reported and the old component keeps serving.
#[tokio::test]
async fn watch_reloads_a_rebuilt_component() {
    let dir = std::env::temp_dir().join(format!("wasm-otel-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let served = dir.join("service.wasm");
    std::fs::copy(component("payment"), &served).unwrap();
    let host = Host::start_with(
        &[
            served.display().to_string(),
            "--port".into(),
            "0".into(),
            "--watch".into(),
        ],
        1,
        "http://127.0.0.1:9",
        &[],
    )
    .await;
    let url = |path: &str| format!("http://{}{path}", host.addr);
    assert_eq!(send("GET", &url("/health"), &[], "").await.status, 200);
    assert_eq!(
        send("GET", &url("/orders"), &[], "").await.status,
        404,
        "payment has no /orders"
    );

    // A broken rebuild: reported, the old component keeps serving.
    std::fs::write(dir.join("broken.tmp"), b"garbage").unwrap();
    std::fs::rename(dir.join("broken.tmp"), &served).unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !host.stderr.lock().unwrap().contains("cannot be loaded") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broken rebuild not reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(send("GET", &url("/health"), &[], "").await.status, 200);

    // A good rebuild with new behaviour.
    std::fs::copy(component("order"), dir.join("order.tmp")).unwrap();
    std::fs::rename(dir.join("order.tmp"), &served).unwrap();
    host.wait_for_stdout("reloaded").await;
    assert_eq!(send("GET", &url("/health"), &[], "").await.status, 200);
    assert_eq!(
        send("GET", &url("/orders"), &[], "").await.status,
        405,
        "order has /orders (POST only)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
