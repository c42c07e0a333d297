//! A collector the host does not control: absent, hanging, refusing with
//! `UNAVAILABLE`, coming back. Requests are served regardless, the host says
//! so once, export resumes by itself, and shutdown is bounded and says how
//! many spans were not delivered.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use tokio::net::TcpListener;

fn fast_export() -> Vec<(String, String)> {
    vec![("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "500".into())]
}

async fn wait_for_stderr(host: &Host, text: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !host.stderr.lock().unwrap().contains(text) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stderr never showed `{text}`:\n{}",
            host.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A collector that is down, then comes up on the same port: requests are
/// served throughout, the outage is reported once, and export resumes by
/// itself with no restart of the host.
#[tokio::test]
async fn export_resumes_when_the_collector_comes_back() {
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let host = Host::start(
        "payment",
        &format!("http://{addr}"),
        HostOptions {
            args: vec![],
            env: fast_export(),
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    }
    wait_for_stderr(&host, "not reaching the collector").await;

    let listener = TcpListener::bind(addr).await.unwrap();
    let (receiver, _) = Receiver::start_on(listener, Receiver::default()).await;
    // The exporter reconnects on its own; keep sending until a span lands.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reply = send("GET", &host.url("/health"), &[], "").await;
        assert_eq!(reply.status, 200);
        if !receiver.spans().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "export never resumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_stderr(&host, "reaching the collector at").await;
    assert_eq!(
        host.stderr
            .lock()
            .unwrap()
            .matches("not reaching the collector")
            .count(),
        1
    );
}

/// A collector answering `UNAVAILABLE`: requests are served, the failure is
/// said once; when it recovers, spans arrive again.
#[tokio::test]
async fn unavailable_collector_then_recovery() {
    let (receiver, endpoint) = Receiver::start().await;
    receiver.unavailable.store(true, Ordering::SeqCst);
    let host = Host::start(
        "payment",
        &endpoint,
        HostOptions {
            args: vec![],
            env: fast_export(),
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    }
    wait_for_stderr(&host, "not reaching the collector").await;
    assert!(receiver.spans().is_empty());

    receiver.unavailable.store(false, Ordering::SeqCst);
    let reply = send("GET", &host.url("/health"), &[], "").await;
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    receiver.trace(&trace_id, 1).await;
    assert_eq!(
        host.stderr
            .lock()
            .unwrap()
            .matches("not reaching the collector")
            .count(),
        1
    );
}

/// A collector that accepts connections but never answers: requests are
/// served, and SIGTERM still ends the host (exit 0) after a bounded flush
/// that says how many spans were not delivered.
#[tokio::test]
async fn hanging_collector_neither_blocks_requests_nor_shutdown() {
    let endpoint = silent_server().await;
    let mut host = Host::start(
        "payment",
        &endpoint,
        HostOptions {
            args: vec![],
            env: fast_export(),
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    }
    let status = host.terminate().await;
    assert!(status.success(), "{status:?}");
    wait_for_stderr(&host, "could not be delivered").await;
}

/// With the default exporter and no collector, every trace is drawn in the
/// terminal instead, including those served before the failure was known;
/// with a collector, the terminal stays quiet.
#[tokio::test]
async fn no_collector_means_the_terminal_draws_the_traces() {
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", reserved.local_addr().unwrap());
    drop(reserved);
    let host = Host::start(
        "payment",
        &nowhere,
        HostOptions {
            args: vec![],
            env: fast_export(),
        },
    )
    .await;
    let early = send("GET", &host.url("/health"), &[], "").await;
    let early_id = early.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    wait_for_stderr(&host, "Traces are drawn in the terminal meanwhile").await;
    host.wait_for_stdout(&format!("── trace {early_id}")).await;
    let late = send("GET", &host.url("/health"), &[], "").await;
    let late_id = late.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    host.wait_for_stdout(&format!("── trace {late_id}")).await;

    let (receiver, endpoint) = Receiver::start().await;
    let quiet = Host::start("payment", &endpoint, HostOptions::default()).await;
    let reply = send("GET", &quiet.url("/health"), &[], "").await;
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    receiver.trace(&trace_id, 1).await;
    assert!(
        !quiet.stdout.lock().unwrap().contains("── trace"),
        "delivered traces are not drawn"
    );
}

/// A collector too slow for the traffic (here: it never answers) fills the
/// export queue. Requests are still served at once; the queue holds
/// `OTEL_BSP_MAX_QUEUE_SIZE` spans and no more (host memory stays bounded);
/// the spans past it are counted exactly, reported once per interval while
/// it lasts, and in all at shutdown.
#[tokio::test]
async fn a_full_export_queue_drops_and_counts_exactly() {
    let endpoint = silent_server().await;
    let mut host = Host::start(
        "payment",
        &endpoint,
        HostOptions {
            args: vec![],
            env: vec![
                ("OTEL_BSP_MAX_QUEUE_SIZE".into(), "10".into()),
                // The first batch stays in flight for the whole test.
                ("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "60000".into()),
            ],
        },
    )
    .await;
    for _ in 0..30 {
        assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    }
    wait_for_stderr(
        &host,
        "span(s) dropped in the last 5s because the export queue was full",
    )
    .await;
    let status = host.terminate().await;
    assert!(status.success(), "{status:?}");
    wait_for_stderr(
        &host,
        "warning: 20 span(s) were dropped because the export queue was full",
    )
    .await;
    let stderr = host.stderr.lock().unwrap().clone();
    assert!(stderr.contains("(20 in all)"), "{stderr}");
}
