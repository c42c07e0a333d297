//! What a guest or a client cannot do to the host: run past its deadline,
//! allocate without bound, flood spans, send an oversized body. Each fails
//! that request only, visibly in its trace, and the host keeps serving.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

use crate::common::*;

async fn testbed(args: &[&str]) -> (Receiver, Host) {
    let (receiver, endpoint) = Receiver::start().await;
    let options = HostOptions {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
    };
    let host = Host::start("testbed", &endpoint, options).await;
    (receiver, host)
}

/// The server span of the request whose response carried `reply`.
async fn server_span(receiver: &Receiver, reply: &Reply) -> Received {
    let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace_id, 1).await;
    spans
        .into_iter()
        .find(|s| s.span.kind == SPAN_KIND_SERVER)
        .unwrap()
}

/// A guest computing forever is stopped at the deadline (epoch
/// interruption): 504, an ERROR span with `error.type`, and the next request
/// is served.
#[tokio::test]
async fn a_looping_guest_is_stopped_at_its_deadline() {
    let (receiver, host) = testbed(&["--deadline-ms", "300"]).await;
    let reply = send("GET", &host.url("/loop"), &[], "").await;
    assert_eq!(
        reply.status,
        504,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let server = server_span(&receiver, &reply).await;
    assert_eq!(server.status().0, STATUS_ERROR);
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("deadline_exceeded")
    );
    assert_eq!(server.int_attr("http.response.status_code"), Some(504));
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
}

/// A client that hangs up while its guest runs does not cut the guest
/// short: the guest runs to its end (here, its deadline) and the request is
/// traced whole, with the status the host would have sent.
#[tokio::test]
async fn a_client_that_hangs_up_does_not_cut_the_guest_short() {
    use tokio::io::AsyncWriteExt;
    let (receiver, host) = testbed(&["--deadline-ms", "300"]).await;
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let mut stream = tokio::net::TcpStream::connect(&host.addr).await.unwrap();
    let request = format!(
        "GET /loop HTTP/1.1\r\nhost: {}\r\ntraceparent: 00-{trace}-00f067aa0ba902b7-01\r\n\r\n",
        host.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(stream);
    let spans = receiver.trace(trace, 1).await;
    let server = &spans[0];
    assert_eq!(server.span.kind, SPAN_KIND_SERVER);
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("deadline_exceeded")
    );
    assert_eq!(server.int_attr("http.response.status_code"), Some(504));
    assert!(server.span.end_time_unix_nano - server.span.start_time_unix_nano >= 300_000_000);
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
}

/// A guest blocked in a host call is stopped at the deadline too (the outer
/// timeout), with the same 504.
#[tokio::test]
async fn a_guest_waiting_in_a_host_call_is_stopped_at_its_deadline() {
    let (receiver, host) = testbed(&["--deadline-ms", "300"]).await;
    let reply = send("GET", &host.url("/wait"), &[], "").await;
    assert_eq!(reply.status, 504);
    let server = server_span(&receiver, &reply).await;
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("deadline_exceeded")
    );
}

/// A guest allocating without bound fails that request only: 500 and an
/// ERROR span naming the cap; the host keeps serving.
#[tokio::test]
async fn unbounded_allocation_fails_only_that_request() {
    let (receiver, host) = testbed(&["--memory-limit-mib", "16"]).await;
    let reply = send("GET", &host.url("/alloc"), &[], "").await;
    assert_eq!(reply.status, 500);
    let server = server_span(&receiver, &reply).await;
    assert_eq!(server.status().0, STATUS_ERROR);
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("resource_limit_exceeded")
    );
    assert!(server.event("exception").is_some());
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
}

/// Past the span cap, guest spans are not recorded (and not an error to the
/// guest); the server span counts them.
#[tokio::test]
async fn span_floods_are_capped_and_counted() {
    let (receiver, host) = testbed(&["--max-spans", "50"]).await;
    let reply = send("GET", &host.url("/flood"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 51).await;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SPAN_KIND_SERVER)
        .unwrap();
    assert_eq!(server.int_attr("wasm.guest_spans_dropped"), Some(4950));
}

/// A body over the limit is refused with 413 before the guest runs; one
/// within it reaches the guest.
#[tokio::test]
async fn oversized_bodies_are_refused_before_the_guest() {
    let (receiver, host) = testbed(&["--max-body-bytes", "1024"]).await;
    let big = "x".repeat(2048);
    let reply = send("POST", &host.url("/context"), &[], &big).await;
    assert_eq!(reply.status, 413);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("larger than 1024 bytes")
    );
    let server = server_span(&receiver, &reply).await;
    assert_eq!(server.int_attr("http.response.status_code"), Some(413));
    assert_eq!(server.status().0, STATUS_UNSET, "4xx is the client's");
    let small = send("POST", &host.url("/context"), &[], "{}").await;
    assert_eq!(small.status, 200);
}

/// The `OTEL_*` span limits hold for guest spans: attributes past the count
/// limit and events past theirs are dropped and counted, strings cut.
#[tokio::test]
async fn otel_span_limits_hold_for_guest_spans() {
    let (receiver, endpoint) = Receiver::start().await;
    let options = HostOptions {
        args: vec![],
        env: vec![
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT".into(), "5".into()),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT".into(), "4".into()),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT".into(), "2".into()),
        ],
    };
    let host = Host::start("testbed", &endpoint, options).await;
    let reply = send("GET", &host.url("/many"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 2).await;
    let many = find(&spans, "testbed", "many");
    assert_eq!(many.span.attributes.len(), 5);
    assert_eq!(many.span.dropped_attributes_count, 15);
    assert_eq!(many.str_attr("k00").as_deref(), Some("abcd"));
    assert_eq!(many.span.events.len(), 2);
    assert_eq!(many.span.dropped_events_count, 3);
}

/// A burst beyond what may run and wait gets 503 at once (with
/// `retry-after` and an ERROR span), never a crash; queued requests run when
/// a turn frees up.
#[tokio::test]
async fn a_burst_beyond_the_queue_gets_503() {
    let (receiver, host) = testbed(&[
        "--max-concurrent",
        "1",
        "--max-queue",
        "1",
        "--deadline-ms",
        "800",
    ])
    .await;
    let url = host.url("/wait");
    let first = tokio::spawn({
        let url = url.clone();
        async move { send("GET", &url, &[], "").await }
    });
    // Let the first take the only turn, then the second take the only place
    // in the queue.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = tokio::spawn({
        let url = url.clone();
        async move { send("GET", &url, &[], "").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let third = send("GET", &url, &[], "").await;
    assert_eq!(third.status, 503);
    assert_eq!(third.headers["retry-after"], "1");
    let server = server_span(&receiver, &third).await;
    assert_eq!(server.status().0, STATUS_ERROR);
    assert_eq!(server.str_attr("error.type").as_deref(), Some("overloaded"));
    // The running and the queued requests both ran to their deadline.
    assert_eq!(first.await.unwrap().status, 504);
    assert_eq!(second.await.unwrap().status, 504);
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
}

/// Reads from `stream` until the server closes it; panics if it stays open
/// past the test's patience.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server never closed the connection");
}

/// A slow-loris client (headers never finished) and an idle keep-alive
/// connection are both closed by the server; others are served meanwhile.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let (_receiver, host) = testbed(&["--header-timeout-ms", "300"]).await;
    let mut slow = tokio::net::TcpStream::connect(&host.addr).await.unwrap();
    slow.write_all(b"GET /context HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&host.addr).await.unwrap();
    idle.write_all(b"GET /context HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
    closed_by_server(&mut slow).await;
    closed_by_server(&mut idle).await;
    assert_eq!(
        send("GET", &host.url("/context"), &[], "").await.status,
        200
    );
}
