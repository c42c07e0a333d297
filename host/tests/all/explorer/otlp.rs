//! The explorer's OTLP receivers: a second host process joins the trace,
//! and hostile senders get OTLP's error statuses, are counted, and never
//! take the store past its bound.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::{Explorer, line, log_lines, order, trace_of, ui_args};
use crate::common::*;

/// The classic setup: payment in the explorer's process, order in a second
/// host process exporting to the explorer's OTLP/gRPC receiver. The
/// order's spans arrive over OTLP and join the payment's in one trace.
#[tokio::test]
async fn second_host_joins_the_same_trace() {
    let payment = Host::start(
        "payment",
        "http://127.0.0.1:9",
        HostOptions {
            args: ui_args().iter().map(|s| s.to_string()).collect(),
            env: vec![],
        },
    )
    .await;
    let explorer = Explorer::of(payment);
    for protocol in ["grpc", "http/protobuf"] {
        let endpoint = if protocol == "grpc" {
            &explorer.grpc
        } else {
            &explorer.http
        };
        let order_host = Host::start(
            "order",
            endpoint,
            HostOptions {
                args: vec![
                    "--env".into(),
                    format!("PAYMENT_URL={}", explorer.host.url("")),
                ],
                env: vec![("OTEL_EXPORTER_OTLP_PROTOCOL".into(), protocol.into())],
            },
        )
        .await;
        let id = order(&order_host.url(""), VALID_ORDER).await;
        let trace = explorer.trace(&id, 6).await;
        let services: std::collections::BTreeSet<&str> = trace["processes"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["serviceName"].as_str().unwrap())
            .collect();
        assert_eq!(services.len(), 2, "{protocol}: {trace:#}");
    }
}

/// The classic setup with log records: a second host process exports its
/// spans and its log records to the explorer's receiver (over gRPC, then
/// OTLP/HTTP protobuf), and its guest's lines are on the trace page under
/// the span that wrote them, as the explorer's own process's lines are,
/// whichever of the span and the records reached the explorer first. Its
/// metrics are answered as not kept (the sender says so once), and not
/// counted as refused.
#[tokio::test]
async fn second_host_log_lines_are_logs_of_their_span() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    for protocol in ["grpc", "http/protobuf"] {
        let endpoint = if protocol == "grpc" {
            &explorer.grpc
        } else {
            &explorer.http
        };
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let testbed = Host::start(
            "testbed",
            endpoint,
            HostOptions {
                args: vec![],
                env: env(&[
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                    ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
                    ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
                ]),
            },
        )
        .await;
        let reply = send("GET", &testbed.url("/print"), &[], "").await;
        assert_eq!(reply.status, 200);
        let id = trace_of(&reply);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let trace = loop {
            let trace = explorer.trace(&id, 2).await;
            if log_lines(&trace, "work").len() >= 2 && log_lines(&trace, "GET /print").len() >= 2 {
                break trace;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{protocol}: the lines never joined their spans: {trace:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(
            log_lines(&trace, "work"),
            vec![
                line("INFO", "printed in work"),
                line("WARN", "warned in work")
            ],
            "{protocol}"
        );
        let server = log_lines(&trace, "GET /print");
        for expected in [
            line("INFO", "printed before any span"),
            line("INFO", "unfinished line"),
        ] {
            assert!(server.contains(&expected), "{protocol}: {server:?}");
        }
        let signal = "warning: metrics export to";
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !testbed.stderr.lock().unwrap().contains(signal) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{protocol}: the sender never said its metrics were not delivered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let stats = explorer.stats().await;
    assert_eq!(stats["otlp_rejected"], 0, "{stats}");
    assert_eq!(stats["logs_pending"], 0, "{stats}");
}

/// OTLP/HTTP logs: a malformed body is 400 with a `google.rpc.Status` and
/// counted, as for traces; a record naming a span of a held trace is shown
/// under it; one naming no span is counted, not shown.
#[tokio::test]
async fn hostile_otlp_http_logs() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let protobuf = [("content-type", "application/x-protobuf")];
    let traces = format!("{}/v1/traces", explorer.http);
    let logs = format!("{}/v1/logs", explorer.http);
    let reply = send_bytes(
        "POST",
        &traces,
        &protobuf,
        &request(vec![span(6, "held")]).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let record = |trace: Vec<u8>, span: Vec<u8>, body: &str| LogRecord {
        trace_id: trace,
        span_id: span,
        severity_number: 13,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    };
    let export = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    record(vec![6; 16], vec![6; 8], "<b>shown</b>"),
                    record(vec![], vec![], "no span"),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let reply = send_bytes("POST", &logs, &protobuf, &export.encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    let trace = explorer.trace("06060606060606060606060606060606", 1).await;
    assert_eq!(
        log_lines(&trace, "held"),
        vec![line("WARN", "<b>shown</b>")]
    );
    let garbage = send_bytes("POST", &logs, &protobuf, b"\xff\xff\xff garbage").await;
    assert_eq!(garbage.status, 400);
    let metrics = send_bytes(
        "POST",
        &format!("{}/v1/metrics", explorer.http),
        &protobuf,
        b"",
    )
    .await;
    assert_eq!(metrics.status, 404);
    let stats = explorer.stats().await;
    assert_eq!(
        (
            &stats["otlp_rejected"],
            &stats["logs_received"],
            &stats["logs_dropped"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(2),
            &serde_json::json!(1)
        ),
        "{stats}"
    );
}

fn span(trace: u8, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: name.into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("sender".into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// OTLP/HTTP: protobuf and JSON are stored; malformed bodies get 400 with a
/// `google.rpc.Status`, a body past the limit 413, another content type
/// 415; spans with bad ids are reported in `partial_success`; every
/// refused request is counted.
#[tokio::test]
async fn hostile_otlp_http() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let url = format!("{}/v1/traces", explorer.http);
    let protobuf = [("content-type", "application/x-protobuf")];
    let ok = send_bytes(
        "POST",
        &url,
        &protobuf,
        &request(vec![span(1, "<script>alert(1)</script>")]).encode_to_vec(),
    )
    .await;
    assert_eq!(ok.status, 200);
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-sender"}}]},
        "scopeSpans":[{"spans":[{"traceId":"02020202020202020202020202020202","spanId":"0202020202020202","name":"from json",
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000002000000"}]}]}]}"#;
    let ok = send("POST", &url, &[], json).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let trace = explorer.trace("02020202020202020202020202020202", 1).await;
    assert_eq!(trace["spans"][0]["duration"], 2000);
    let partial = send(
        "POST",
        &url,
        &[],
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"03","spanId":"03"}]}]}]}"#,
    )
    .await;
    assert_eq!(partial.status, 200);
    assert_eq!(
        partial.json()["partialSuccess"]["rejectedSpans"],
        1,
        "{}",
        String::from_utf8_lossy(&partial.body)
    );
    #[rustfmt::skip]
    let refused: Vec<(Vec<u8>, &str, u16)> = vec![
        (b"\xff\xff\xff garbage".to_vec(), "application/x-protobuf", 400),
        (b"{not json".to_vec(), "application/json", 400),
        (vec![0u8; 5 << 20], "application/x-protobuf", 413),
        (b"x".to_vec(), "text/plain", 415),
    ];
    for (body, content_type, status) in &refused {
        let reply = send_bytes("POST", &url, &[("content-type", content_type)], body).await;
        assert_eq!(reply.status, *status, "{content_type}");
        if *status == 400 && *content_type == "application/json" {
            assert_eq!(reply.json()["code"], 3);
        }
    }
    let stats = explorer.stats().await;
    assert_eq!(stats["otlp_rejected"], refused.len(), "{stats}");
    assert_eq!(stats["spans_rejected"], 1, "{stats}");
    // The span name that looks like markup is stored as it came: the pages
    // show it as text (see the browser test).
    let trace = explorer.trace("01010101010101010101010101010101", 1).await;
    assert_eq!(
        trace["spans"][0]["operationName"],
        "<script>alert(1)</script>"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// OTLP/HTTP with `Content-Encoding: gzip`, as exporters send it with
/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`: protobuf and JSON are stored; a
/// body that inflates past the 4 MiB limit gets 413, a body that is not
/// gzip 400, an encoding other than gzip 415 naming it; all three counted.
#[tokio::test]
async fn gzip_otlp_http() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let url = format!("{}/v1/traces", explorer.http);
    let gzipped = |content_type| [("content-type", content_type), ("content-encoding", "gzip")];
    let protobuf = request(vec![span(6, "gzip protobuf")]).encode_to_vec();
    let reply = send_bytes(
        "POST",
        &url,
        &gzipped("application/x-protobuf"),
        &gzip(&protobuf),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let trace = explorer.trace("06060606060606060606060606060606", 1).await;
    assert_eq!(trace["spans"][0]["operationName"], "gzip protobuf");
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"07070707070707070707070707070707",
        "spanId":"0707070707070707","name":"gzip json","kind":2,
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000003000000"}]}]}]}"#;
    let reply = send_bytes(
        "POST",
        &url,
        &gzipped("application/json"),
        &gzip(json.as_bytes()),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let trace = explorer.trace("07070707070707070707070707070707", 1).await;
    assert_eq!(trace["spans"][0]["operationName"], "gzip json");
    assert_eq!(trace["spans"][0]["duration"], 3000);
    // 64 MiB of zeros: about 64 KiB compressed, far past the limit inflated.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let reply = send_bytes("POST", &url, &gzipped("application/x-protobuf"), &bomb).await;
    assert_eq!(reply.status, 413);
    let reply = send_bytes("POST", &url, &gzipped("application/json"), b"not gzip").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], 3);
    let reply = send_bytes(
        "POST",
        &url,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        json.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 415);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("`br`"), "{message}");
    assert_eq!(explorer.stats().await["otlp_rejected"], 3);
}

/// Sends one raw gRPC `Export` frame to `authority` with `headers`; the
/// `grpc-status` and `grpc-message` of the answer.
async fn raw_grpc(authority: &str, headers: &[(&str, &str)], frame: Vec<u8>) -> (String, String) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{authority}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (key, value) in headers {
        request = request.header(*key, *value);
    }
    let request = request.body(Full::new(bytes::Bytes::from(frame))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap();
    if let Some(trailers) = body.trailers() {
        headers.extend(trailers.clone());
    }
    let field = |name: &str| {
        headers
            .get(name)
            .map_or(String::new(), |v| v.to_str().unwrap().to_string())
    };
    (field("grpc-status"), field("grpc-message"))
}

/// OTLP/gRPC with `grpc-encoding: gzip`: a compressed export is stored; one
/// that inflates past the 4 MiB limit gets `RESOURCE_EXHAUSTED`; an
/// encoding other than gzip `UNIMPLEMENTED` naming it; both counted.
#[tokio::test]
async fn gzip_otlp_grpc() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let mut client = TraceServiceClient::connect(explorer.grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    client
        .export(request(vec![span(8, "gzip grpc")]))
        .await
        .unwrap();
    let trace = explorer.trace("08080808080808080808080808080808", 1).await;
    assert_eq!(trace["spans"][0]["operationName"], "gzip grpc");
    let authority = explorer.grpc.trim_start_matches("http://").to_string();
    // A compressed frame (flag 1) whose message inflates to 64 MiB.
    let frame = |flag: u8, message: Vec<u8>| {
        let mut frame = vec![flag];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        frame
    };
    let bomb = frame(1, gzip(&vec![0u8; 64 << 20]));
    let (status, message) = raw_grpc(&authority, &[("grpc-encoding", "gzip")], bomb).await;
    assert_eq!(
        status,
        (tonic::Code::ResourceExhausted as i32).to_string(),
        "{message}"
    );
    let plain = request(vec![span(9, "br")]).encode_to_vec();
    let (status, message) = raw_grpc(&authority, &[("grpc-encoding", "br")], frame(1, plain)).await;
    assert_eq!(
        status,
        (tonic::Code::Unimplemented as i32).to_string(),
        "{message}"
    );
    assert!(message.contains("br"), "{message}");
    assert_eq!(explorer.stats().await["otlp_rejected"], 2);
}

/// OTLP/gRPC: a request past the size limit is refused (and counted); a
/// sender that floods one trace and many traces never takes the store past
/// `--ui-max-mib`.
#[tokio::test]
async fn hostile_otlp_grpc_and_the_bound() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &["--ui-max-mib", "1"]).await;
    let mut client = TraceServiceClient::connect(explorer.grpc.clone())
        .await
        .unwrap();
    let huge = request(vec![Span {
        name: "x".repeat(5 << 20),
        ..span(4, "")
    }]);
    let refused = client.export(huge).await.unwrap_err();
    assert!(
        matches!(
            refused.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{refused:?}"
    );
    // 60 batches of 1,000 spans, each a different trace of ~200 bytes each:
    // far more than 1 MiB in all.
    for batch in 0..60u32 {
        let spans = (0..1000u32)
            .map(|i| {
                let mut s = span(5, &"y".repeat(100));
                s.trace_id[..8]
                    .copy_from_slice(&(u64::from(batch) << 32 | u64::from(i)).to_be_bytes());
                s
            })
            .collect();
        client.export(request(spans)).await.unwrap();
    }
    let stats = explorer.stats().await;
    assert!(stats["bytes"].as_u64().unwrap() <= 1 << 20, "{stats}");
    assert!(
        stats["traces_evicted"].as_u64().unwrap() > 50_000,
        "{stats}"
    );
    assert_eq!(stats["otlp_rejected"], 1, "{stats}");
}

/// OTLP/gRPC: a request that is not an `ExportTraceServiceRequest` (or an
/// `ExportLogsServiceRequest`) gets a gRPC error status (tonic's decode
/// error) and is counted; a metrics export gets `UNIMPLEMENTED` and is not.
#[tokio::test]
async fn malformed_grpc_is_refused_and_counted() {
    use http_body_util::{BodyExt, Full};
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let authority = explorer.grpc.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    #[rustfmt::skip]
    // (service, refused as malformed and counted; else UNIMPLEMENTED)
    let cases = [
        ("trace.v1.TraceService", true),
        ("logs.v1.LogsService", true),
        ("metrics.v1.MetricsService", false),
    ];
    for (service, malformed) in cases {
        // A gRPC frame (uncompressed, 6 bytes) that is not valid protobuf.
        let mut frame = vec![0, 0, 0, 0, 6];
        frame.extend_from_slice(b"\xff\xff\xff\xff\xff\xff");
        let request = hyper::Request::builder()
            .method("POST")
            .uri(format!(
                "http://{authority}/opentelemetry.proto.collector.{service}/Export"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(bytes::Bytes::from(frame)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let mut status = response.headers().get("grpc-status").cloned();
        let body = response.into_body().collect().await.unwrap();
        if status.is_none() {
            status = body.trailers().and_then(|t| t.get("grpc-status").cloned());
        }
        let status = status.expect("a grpc-status");
        if malformed {
            assert!(status != "0" && status != "12", "{service}: {status:?}");
        } else {
            assert_eq!(status, "12", "{service}: UNIMPLEMENTED");
        }
    }
    assert_eq!(explorer.stats().await["otlp_rejected"], 2);
}

/// A taken port is said in one line and the host carries on: without the
/// explorer when its own port is taken, without a receiver when that one is.
#[tokio::test]
async fn taken_ports_are_said_and_skipped() {
    let held = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let ui = format!("--ui={taken}");
    let host = one_process("http://127.0.0.1:9", &[], &[&ui]).await;
    let reply = send("POST", &host.url("/orders"), &[], VALID_ORDER).await;
    assert_eq!(reply.status, 201, "serves without the explorer");
    stderr_shows(&host, &format!("explorer: `{taken}` is taken")).await;
    let host = one_process(
        "http://127.0.0.1:9",
        &[],
        &[
            "--ui=127.0.0.1:0",
            "--ui-otlp-grpc",
            &taken,
            "--ui-otlp-http",
            "127.0.0.1:0",
        ],
    )
    .await;
    let explorer = Explorer::of(host);
    assert!(
        explorer.grpc.is_empty() && !explorer.http.is_empty(),
        "{} / {}",
        explorer.grpc,
        explorer.http
    );
    let id = order(&explorer.host.url(""), VALID_ORDER).await;
    explorer.trace(&id, 6).await;
    stderr_shows(&explorer.host, "receiving no OTLP/gRPC").await;
}

async fn stderr_shows(host: &Host, text: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let err = host.stderr.lock().unwrap().clone();
        if err.contains(text) {
            assert_eq!(err.matches(text).count(), 1, "said once: {err}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stderr never showed `{text}`: {err}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
