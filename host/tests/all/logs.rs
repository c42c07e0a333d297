//! Guest output and the host's request log as OTLP log records at a real
//! receiver (gRPC and HTTP/protobuf): each line once, with the trace and
//! the span that wrote it; a flooding guest bounded, its excess counted.

use crate::common::*;

/// `testbed` exporting logs every 100 ms to `endpoint`, with `env` on top.
async fn testbed(endpoint: &str, env: &[(&str, &str)]) -> Host {
    let mut all = vec![("OTEL_BLRP_SCHEDULE_DELAY".to_string(), "100".to_string())];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Host::start(
        "testbed",
        endpoint,
        HostOptions {
            env: all,
            ..Default::default()
        },
    )
    .await
}

/// Sends GET /print and checks its four lines: each once, with the trace
/// of its request, in the span innermost when it was written, stdout INFO
/// and stderr WARN; the host's request log line is a record too.
async fn print_lines_arrive_in_their_spans(
    receiver: Receiver,
    endpoint: &str,
    env: &[(&str, &str)],
) {
    let mut host = testbed(endpoint, env).await;
    let reply = send("GET", &host.url("/print"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 2).await;
    let server = find(&spans, "testbed", "GET /print");
    let work = find(&spans, "testbed", "work");
    assert!(host.terminate().await.success());

    let logs: Vec<ReceivedLog> = receiver
        .logs()
        .into_iter()
        .filter(|log| log.trace_id() == trace_id)
        .collect();
    let guest: Vec<(String, String, String, String)> = logs
        .iter()
        .filter(|log| log.scope == "wasm-otel-guest")
        .map(|log| {
            (
                log.body(),
                log.record.severity_text.clone(),
                log.str_attr("log.iostream").unwrap_or_default(),
                log.span_id(),
            )
        })
        .collect();
    let line = |body: &str, severity: &str, stream: &str, span: &Received| {
        (
            body.to_string(),
            severity.to_string(),
            stream.to_string(),
            span.span_id(),
        )
    };
    assert_eq!(
        guest,
        vec![
            line("printed before any span", "INFO", "stdout", server),
            line("printed in work", "INFO", "stdout", work),
            line("warned in work", "WARN", "stderr", work),
            line("unfinished line", "INFO", "stdout", server),
        ]
    );
    for log in logs.iter().filter(|log| log.scope == "wasm-otel-guest") {
        assert_eq!(log.service, "testbed");
        assert_eq!(log.record.flags & 1, 1, "sampled");
    }
    let host_lines: Vec<&ReceivedLog> = logs
        .iter()
        .filter(|log| log.scope == "wasm-otel-host")
        .collect();
    assert_eq!(host_lines.len(), 1, "{host_lines:?}");
    // The body says what the request did; the service is the resource's,
    // the trace and span are the record's own ids, not repeated in text.
    let body = host_lines[0].body();
    let took = body.strip_prefix("GET /print 200 ").unwrap_or_default();
    let number = took.trim_end_matches("ms").trim_end_matches('s');
    assert!(number.parse::<f64>().is_ok(), "{body}");
    assert!(
        !body.contains(&hex(&host_lines[0].record.trace_id)),
        "{body}"
    );
    assert_eq!(host_lines[0].span_id(), server.span_id());
}

/// Over OTLP/gRPC: every line a guest writes arrives once, with its
/// request's trace id and the span that wrote it.
#[tokio::test]
async fn guest_lines_arrive_once_in_their_spans_over_grpc() {
    let (receiver, endpoint) = Receiver::start().await;
    print_lines_arrive_in_their_spans(receiver, &endpoint, &[]).await;
}

/// The same over OTLP/HTTP (protobuf), to `/v1/logs`.
#[tokio::test]
async fn guest_lines_arrive_once_in_their_spans_over_http() {
    let (receiver, base) = Receiver::start_http().await;
    print_lines_arrive_in_their_spans(
        receiver,
        &base,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
    )
    .await;
}

/// A guest writing 5001 lines, the first of 20000 bytes: its request keeps
/// the first 1000 (`--max-log-lines`), the long one cut to 8192 bytes, and
/// says what it dropped on its SERVER span and in `wasm.logs.dropped`; the
/// next request's lines are all there.
#[tokio::test]
async fn a_flooding_guest_is_bounded_and_counted() {
    let (receiver, endpoint) = Receiver::start().await;
    let mut host = testbed(&endpoint, &[]).await;
    let flood = send("GET", &host.url("/shout"), &[], "").await;
    assert_eq!(flood.status, 200);
    let flood_trace = flood.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let after = send("GET", &host.url("/print"), &[], "").await;
    let after_trace = after.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&flood_trace, 1).await;
    let server = find(&spans, "testbed", "GET /shout");
    assert_eq!(server.int_attr("wasm.logs.dropped"), Some(4001));
    assert_eq!(server.int_attr("wasm.logs.truncated"), Some(1));
    assert!(host.terminate().await.success());

    let guest_logs = |trace: &str| -> Vec<ReceivedLog> {
        receiver
            .logs()
            .into_iter()
            .filter(|log| log.trace_id() == trace && log.scope == "wasm-otel-guest")
            .collect()
    };
    let flooded = guest_logs(&flood_trace);
    assert_eq!(flooded.len(), 1000);
    assert_eq!(flooded[0].body(), "x".repeat(8192));
    assert_eq!(flooded[1].body(), "shout 0");
    assert_eq!(flooded[999].body(), "shout 998");
    assert_eq!(guest_logs(&after_trace).len(), 4);

    let dropped = receiver.sum("testbed", "wasm.logs.dropped");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(
        str_of(&dropped[0].0, "wasm.drop.reason").as_deref(),
        Some("request_limit")
    );
    assert_eq!(dropped[0].1, 4001);
    let truncated = receiver.sum("testbed", "wasm.logs.truncated");
    assert_eq!(truncated.iter().map(|(_, n)| n).sum::<i64>(), 1);
}

/// A full batch (`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`) is exported as soon as
/// it waits, not a schedule delay later: with an hour's delay and batches
/// of 4, the five records of GET /print (four guest lines, the request
/// log) reach the receiver while the host runs, and none is lost.
#[tokio::test]
async fn a_full_batch_is_exported_without_waiting_for_the_delay() {
    let (receiver, endpoint) = Receiver::start().await;
    let mut host = testbed(
        &endpoint,
        &[
            ("OTEL_BLRP_SCHEDULE_DELAY", "3600000"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4"),
        ],
    )
    .await;
    let reply = send("GET", &host.url("/print"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let of_request = || {
        receiver
            .logs()
            .into_iter()
            .filter(|log| log.trace_id() == trace_id)
            .count()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while of_request() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(of_request() >= 4, "a full batch waited for the delay");
    assert!(host.terminate().await.success());
    assert_eq!(of_request(), 5);
}

/// `OTEL_LOGS_EXPORTER=none`: no log records leave, and the guest's output
/// still reaches the host's own stdout as before.
#[tokio::test]
async fn logs_exporter_none_keeps_plain_output() {
    let (receiver, endpoint) = Receiver::start().await;
    let mut host = testbed(&endpoint, &[("OTEL_LOGS_EXPORTER", "none")]).await;
    assert_eq!(send("GET", &host.url("/print"), &[], "").await.status, 200);
    host.wait_for_stdout("printed in work").await;
    assert!(host.terminate().await.success());
    assert!(receiver.logs().is_empty());
}

/// With the terminal view (`OTEL_TRACES_EXPORTER=console`), a request's
/// lines are drawn under the span that wrote them.
#[tokio::test]
async fn the_waterfall_draws_lines_under_their_span() {
    let (_receiver, endpoint) = Receiver::start().await;
    let host = testbed(&endpoint, &[("OTEL_TRACES_EXPORTER", "console")]).await;
    assert_eq!(send("GET", &host.url("/print"), &[], "").await.status, 200);
    let out = host.wait_for_stdout("▸ WARN warned in work").await;
    let lines: Vec<&str> = out.lines().collect();
    let row = |text: &str| lines.iter().position(|l| l.contains(text)).unwrap();
    let server = row("GET /print");
    let work = lines.iter().rposition(|l| l.contains(" work ")).unwrap();
    assert_eq!(row("▸ INFO printed before any span"), server + 1, "{out}");
    assert_eq!(row("▸ INFO unfinished line"), server + 2, "{out}");
    assert_eq!(row("▸ INFO printed in work"), work + 1, "{out}");
    assert_eq!(row("▸ WARN warned in work"), work + 2, "{out}");
}

/// The log record limits, as a receiver sees a guest's lines:
/// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT` cuts `log.iostream` to its
/// first characters; `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT=0` leaves it out
/// and counts it in `dropped_attributes_count`; the general
/// `OTEL_ATTRIBUTE_*_LIMIT` applies when the log-record one is unset; the
/// body is never cut.
#[tokio::test]
async fn log_record_attribute_limits_cut_and_count() {
    // (variables, `log.iostream` of the stdout lines, dropped per record)
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, u32);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[],                                                  Some("stdout"), 0),
        (&[("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3")], Some("std"), 0),
        (&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")],        Some("stdo"),   0),
        (&[("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "0")],     None,           1),
        (&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "0")],               None,           1),
        (&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "0"), ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "1")], Some("stdout"), 0),
    ];
    for &(env, stream, dropped) in cases {
        let (receiver, endpoint) = Receiver::start().await;
        let mut host = testbed(&endpoint, env).await;
        let reply = send("GET", &host.url("/print"), &[], "").await;
        assert_eq!(reply.status, 200);
        assert!(host.terminate().await.success());
        let printed: Vec<ReceivedLog> = receiver
            .logs()
            .into_iter()
            .filter(|log| log.body() == "printed in work")
            .collect();
        assert_eq!(printed.len(), 1, "{env:?}");
        let record = &printed[0].record;
        assert_eq!(
            (
                printed[0].str_attr("log.iostream").as_deref(),
                record.dropped_attributes_count
            ),
            (stream, dropped),
            "{env:?}"
        );
        assert!(record.attributes.len() <= 1, "{env:?}");
    }
}
