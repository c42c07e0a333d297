//! What a guest or a client cannot do to the host: run past its deadline,
//! allocate without bound, flood spans, send an oversized body. Each fails
//! that request only, visibly in its trace, and the host keeps serving.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

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

/// Sends `request` (a head and its body) `tries` times, one connection each,
/// from a blocking client that writes it whole before reading (as Python's
/// `urllib` does), on a thread of its own; every try must get a response.
async fn tries_written_whole(
    addr: &str,
    tries: usize,
    head: String,
    body: Vec<u8>,
) -> Vec<RawReply> {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        (0..tries)
            .map(|try_| {
                write_whole_then_read(&addr, &head, &body)
                    .unwrap_or_else(|e| panic!("try {try_}: no response, {e}"))
            })
            .collect()
    })
    .await
    .unwrap()
}

/// Asserts that every reply is `status` with the host's JSON error body
/// (its message containing `says`) and `Connection: close`.
fn assert_refused(replies: &[RawReply], status: u16, says: &str) {
    for (try_, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, status, "try {try_}: {reply:?}");
        let json = reply.json();
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "try {try_}: {error}");
        assert_eq!(json["trace_id"].as_str().map(str::len), Some(32));
        assert_eq!(reply.header("connection"), Some("close"), "try {try_}");
    }
}

fn post_head(addr: &str, path: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{framing}\r\n"
    )
}

/// The case: a 2 MB order over the 1 MiB limit, written whole
/// before the client reads, gets its 413 and JSON body every time (the
/// host lingers instead of resetting the connection under the response).
#[tokio::test]
async fn an_oversized_body_written_whole_gets_its_413_every_time() {
    let (_receiver, host) = testbed(&[]).await;
    let body = vec![b'x'; 2_000_000];
    let head = post_head(&host.addr, "/context", "content-length: 2000000\r\n");
    let replies = tries_written_whole(&host.addr, 100, head, body).await;
    assert_refused(&replies, 413, "larger than 1048576 bytes");
}

/// A chunked body is refused once it passes the limit, part read: the rest
/// is drained and the client gets its 413.
#[tokio::test]
async fn an_oversized_chunked_body_written_whole_gets_its_413() {
    let (_receiver, host) = testbed(&[]).await;
    let body = chunked(&vec![b'x'; 2_000_000], 64 << 10);
    let head = post_head(&host.addr, "/context", "transfer-encoding: chunked\r\n");
    let replies = tries_written_whole(&host.addr, 30, head, body).await;
    assert_refused(&replies, 413, "larger than 1048576 bytes");
}

/// `Expect: 100-continue` on an oversized body: a client that waits is
/// answered 413 at once (no `100 Continue`, it never sends the body); one
/// that sends the body anyway gets the 413 too; a chunked one is told to
/// continue, sends, and is refused at the limit.
#[tokio::test]
async fn expect_continue_gets_its_413_whether_or_not_the_client_waits() {
    let (_receiver, host) = testbed(&[]).await;
    let addr = host.addr.clone();
    let sized = post_head(
        &addr,
        "/context",
        "content-length: 2000000\r\nexpect: 100-continue\r\n",
    );
    let chunked_head = post_head(
        &addr,
        "/context",
        "transfer-encoding: chunked\r\nexpect: 100-continue\r\n",
    );
    let body = vec![b'x'; 2_000_000];
    let waited = tokio::task::spawn_blocking({
        let (addr, sized, chunked_head, body) =
            (addr.clone(), sized.clone(), chunked_head, body.clone());
        move || {
            let mut replies = Vec::new();
            for try_ in 0..30 {
                for (head, body) in [
                    (&sized, body.clone()),
                    (&chunked_head, chunked(&body, 64 << 10)),
                ] {
                    let reply = expect_continue_then_send(&addr, head, &body)
                        .unwrap_or_else(|e| panic!("try {try_}: no response, {e}"));
                    replies.push(reply);
                }
            }
            replies
        }
    })
    .await
    .unwrap();
    assert_refused(&waited, 413, "larger than 1048576 bytes");
    let sent_anyway = tries_written_whole(&addr, 30, sized, body).await;
    assert_refused(&sent_anyway, 413, "larger than 1048576 bytes");
}

/// A chunk size that is not hex is a malformed request, not a large one:
/// 400 naming the fault, `error.type=malformed_body` on the server span,
/// and the client that wrote the rest of its body still gets the response.
#[tokio::test]
async fn a_malformed_chunk_size_gets_400_and_says_so() {
    let (receiver, host) = testbed(&[]).await;
    let mut body = b"ZZ\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 500_000));
    let head = post_head(&host.addr, "/context", "transfer-encoding: chunked\r\n");
    let replies = tries_written_whole(&host.addr, 30, head, body).await;
    assert_refused(&replies, 400, "malformed request body");
    assert!(
        replies[0].json()["error"]
            .as_str()
            .unwrap()
            .contains("chunk size"),
        "{:?}",
        replies[0].json()
    );
    let trace_id = replies[0].json()["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace_id, 1).await;
    let server = &spans[0];
    assert_eq!(server.span.kind, SPAN_KIND_SERVER);
    assert_eq!(server.int_attr("http.response.status_code"), Some(400));
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("malformed_body")
    );
    assert_eq!(server.status().0, STATUS_UNSET, "4xx is the client's");
}

/// The 413's span says why too, and a body within the limit still passes.
#[tokio::test]
async fn an_oversized_body_is_named_on_its_span() {
    let (receiver, host) = testbed(&["--max-body-bytes", "1024"]).await;
    let reply = send("POST", &host.url("/context"), &[], &"x".repeat(2048)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.headers["connection"], "close");
    let server = server_span(&receiver, &reply).await;
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("body_too_large")
    );
}

/// A refused turn (503) to a client that wrote its whole body: the body was
/// read, so the response arrives and the connection stays usable.
#[tokio::test]
async fn a_refused_turn_written_whole_gets_its_503() {
    let (_receiver, host) = testbed(&[
        "--max-concurrent",
        "1",
        "--max-queue",
        "0",
        "--deadline-ms",
        "20000",
    ])
    .await;
    let url = host.url("/wait");
    let busy = tokio::spawn(async move { send("GET", &url, &[], "").await });
    // Let it take the only turn.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = vec![b'x'; 500_000];
    let head = post_head(&host.addr, "/context", "content-length: 500000\r\n");
    let replies = tries_written_whole(&host.addr, 30, head, body).await;
    for (try_, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 503, "try {try_}: {reply:?}");
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("too many requests")
        );
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_ne!(reply.header("connection"), Some("close"));
    }
    busy.abort();
}

/// A guest that answers without reading its body: the host has read the
/// body (within the limit) before the guest ran, so a client that writes
/// it whole gets the guest's response, every time.
#[tokio::test]
async fn a_guest_that_ignores_its_body_answers_a_client_that_writes_it_whole() {
    let (_receiver, host) = testbed(&[]).await;
    let body = vec![b'x'; 500_000];
    let head = post_head(&host.addr, "/context", "content-length: 500000\r\n");
    let replies = tries_written_whole(&host.addr, 30, head, body).await;
    for (try_, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200, "try {try_}: {reply:?}");
        assert_eq!(
            reply.json()["inside_trace_id"].as_str().map(str::len),
            Some(32)
        );
    }
}

/// Writes to `stream` (an oversized request's connection) `chunk` after
/// `chunk` until the host cuts it off; panics if the host is still
/// reading after the test's patience (far past any linger bound here).
fn send_until_cut_off(mut stream: std::net::TcpStream, chunk: &[u8], pause: std::time::Duration) {
    use std::io::Write;
    let started = std::time::Instant::now();
    while started.elapsed() < PATIENCE {
        if stream.write_all(chunk).is_err() {
            return;
        }
        std::thread::sleep(pause);
    }
    panic!("the host kept reading for {PATIENCE:?}");
}

/// A slow client that keeps sending forever after its 413 is cut off at
/// `--linger-ms`, having received its response.
#[tokio::test]
async fn a_client_that_keeps_sending_slowly_is_cut_off_at_the_linger_time() {
    let (_receiver, host) = testbed(&["--linger-ms", "500"]).await;
    let head = post_head(&host.addr, "/context", "content-length: 1000000000000\r\n");
    let addr = host.addr.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut stream = blocking_connect(&addr);
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let reply = read_response(&mut reader).unwrap();
        assert_eq!(reply.status, 413);
        send_until_cut_off(stream, &[b'x'; 1024], std::time::Duration::from_millis(20));
    })
    .await
    .unwrap();
}

/// A client that floods after its 413 is cut off at `--linger-bytes`, long
/// before `--linger-ms`.
#[tokio::test]
async fn a_client_that_floods_is_cut_off_at_the_linger_bytes() {
    let (_receiver, host) = testbed(&["--linger-ms", "600000", "--linger-bytes", "1048576"]).await;
    let head = post_head(&host.addr, "/context", "content-length: 1000000000000\r\n");
    let addr = host.addr.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut stream = blocking_connect(&addr);
        stream.write_all(head.as_bytes()).unwrap();
        send_until_cut_off(stream, &[b'x'; 64 << 10], std::time::Duration::ZERO);
    })
    .await
    .unwrap();
}
