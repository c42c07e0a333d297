//! The order system end to end: real hosts serving the real `order` and
//! `payment` components over loopback, spans checked at a real OTLP receiver.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A receiver, a payment host and an order host wired to it.
struct System {
    receiver: Receiver,
    payment: Host,
    order: Host,
}

impl System {
    async fn start() -> System {
        let (receiver, endpoint) = Receiver::start().await;
        let payment = Host::start("payment", &endpoint, HostOptions::default()).await;
        let order = order_host(&endpoint, &payment.url(""), &[]).await;
        System {
            receiver,
            payment,
            order,
        }
    }
}

async fn order_host(endpoint: &str, payment_url: &str, extra_env: &[&str]) -> Host {
    order_host_with(endpoint, payment_url, extra_env, &[]).await
}

async fn order_host_with(
    endpoint: &str,
    payment_url: &str,
    extra_env: &[&str],
    process_env: &[(&str, &str)],
) -> Host {
    // No `--allow-outbound`: the order component declares its PAYMENT_URL,
    // as with the design card's `cargo run -p host -- order.wasm --port 8000`.
    let mut args = vec!["--env".to_string(), format!("PAYMENT_URL={payment_url}")];
    for env in extra_env {
        args.push("--env".to_string());
        args.push(env.to_string());
    }
    Host::start(
        "order",
        endpoint,
        HostOptions {
            args,
            env: process_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    )
    .await
}

/// A valid order is confirmed (201) and yields exactly one trace across both
/// services, with the documented parent links, names, kinds, attributes,
/// event, statuses and service names.
#[tokio::test]
async fn valid_order_is_one_trace_across_both_services() {
    let system = System::start().await;
    let reply = send(
        "POST",
        &system.order.url("/orders"),
        &[("user-agent", "order-test/1")],
        VALID_ORDER,
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["status"], "confirmed");
    assert!(body["order_id"].as_str().unwrap().starts_with("ord_"));
    assert!(body["payment_id"].as_str().unwrap().starts_with("pay_"));
    let trace_id = body["trace_id"].as_str().unwrap().to_string();
    assert_eq!(trace_id.len(), 32);

    let spans = system.receiver.trace(&trace_id, 6).await;
    let order_server = find(&spans, "order-api", "POST /orders");
    let validate = find(&spans, "order-api", "validate_order");
    let save = find(&spans, "order-api", "save_order");
    let client = find(&spans, "order-api", "POST");
    let payment_server = find(&spans, "payment-service", "POST /payments");
    let process = find(&spans, "payment-service", "process_payment");

    // Parent links: one tree rooted at the order's server span.
    assert_eq!(order_server.parent_id(), "");
    assert_eq!(validate.parent_id(), order_server.span_id());
    assert_eq!(save.parent_id(), order_server.span_id());
    assert_eq!(client.parent_id(), order_server.span_id());
    assert_eq!(payment_server.parent_id(), client.span_id());
    assert_eq!(process.parent_id(), payment_server.span_id());

    // Kinds.
    assert_eq!(order_server.span.kind, SPAN_KIND_SERVER);
    assert_eq!(client.span.kind, SPAN_KIND_CLIENT);
    assert_eq!(payment_server.span.kind, SPAN_KIND_SERVER);
    for internal in [validate, save, process] {
        assert_eq!(internal.span.kind, SPAN_KIND_INTERNAL);
    }

    // Server span: the stable HTTP semantic conventions.
    assert_eq!(
        order_server.str_attr("http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        order_server.str_attr("http.route").as_deref(),
        Some("/orders")
    );
    assert_eq!(
        order_server.str_attr("url.path").as_deref(),
        Some("/orders")
    );
    assert_eq!(order_server.str_attr("url.scheme").as_deref(), Some("http"));
    assert_eq!(
        order_server.str_attr("server.address").as_deref(),
        Some("127.0.0.1")
    );
    let order_port: i64 = system
        .order
        .addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(order_server.int_attr("server.port"), Some(order_port));
    assert_eq!(
        order_server.str_attr("network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        order_server.str_attr("user_agent.original").as_deref(),
        Some("order-test/1")
    );
    assert_eq!(
        order_server.int_attr("http.response.status_code"),
        Some(201)
    );
    assert_eq!(order_server.status().0, STATUS_UNSET);

    // Guest spans.
    assert_eq!(
        validate.str_attr("order.customer_id").as_deref(),
        Some("cust-42")
    );
    assert_eq!(validate.str_attr("order.item").as_deref(), Some("widget"));
    assert_eq!(validate.int_attr("order.quantity"), Some(3));
    assert_eq!(validate.float_attr("order.amount"), Some(59.97));
    assert_eq!(
        save.str_attr("order.id").as_deref(),
        body["order_id"].as_str()
    );
    assert!(
        save.event("order.saved").is_some(),
        "save_order has its event"
    );

    // Client span: where it went and what came back.
    let payment_port: i64 = system
        .payment
        .addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        client.str_attr("http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        client.str_attr("server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(client.int_attr("server.port"), Some(payment_port));
    assert_eq!(
        client.str_attr("url.full"),
        Some(format!("http://{}/payments", system.payment.addr))
    );
    assert_eq!(client.int_attr("http.response.status_code"), Some(200));
    assert_eq!(client.status().0, STATUS_UNSET);

    // Payment side.
    assert_eq!(
        process.str_attr("payment.order_id").as_deref(),
        body["order_id"].as_str()
    );
    assert_eq!(
        process.str_attr("payment.customer_id").as_deref(),
        Some("cust-42")
    );
    assert_eq!(process.float_attr("payment.amount"), Some(59.97));
    assert!(process.event("payment.authorized").is_some());
    assert_eq!(
        payment_server.int_attr("http.response.status_code"),
        Some(200)
    );

    // Resources name each service and carry the SDK's attributes.
    for span in &spans {
        assert_eq!(
            str_of(&span.resource, "service.version").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            str_of(&span.resource, "telemetry.sdk.language").as_deref(),
            Some("rust")
        );
    }
}

/// An invalid order is refused with 422 before any payment call; the
/// exception is recorded on `validate_order`, whose status is ERROR, while
/// the server span (a client mistake) is not an error.
#[tokio::test]
async fn invalid_order_is_422_without_a_payment_call() {
    let system = System::start().await;
    let reply = send("POST", &system.order.url("/orders"), &[], INVALID_ORDER).await;
    assert_eq!(reply.status, 422);
    let body = reply.json();
    assert_eq!(body["error"], "field `quantity` must be at least 1, got 0");
    let trace_id = body["trace_id"].as_str().unwrap().to_string();

    let spans = system.receiver.trace(&trace_id, 2).await;
    let server = find(&spans, "order-api", "POST /orders");
    let validate = find(&spans, "order-api", "validate_order");
    assert_eq!(validate.parent_id(), server.span_id());
    assert_eq!(
        validate.status(),
        (
            STATUS_ERROR,
            "field `quantity` must be at least 1, got 0".to_string()
        )
    );
    let exception = validate.event("exception").expect("exception event");
    assert_eq!(
        str_of(&exception.attributes, "exception.type").as_deref(),
        Some("ValidationError")
    );
    assert_eq!(
        str_of(&exception.attributes, "exception.message").as_deref(),
        Some("field `quantity` must be at least 1, got 0")
    );
    assert_eq!(server.int_attr("http.response.status_code"), Some(422));
    assert_eq!(server.status().0, STATUS_UNSET, "4xx is not a server error");
    assert!(
        spans.iter().all(|s| s.service == "order-api"),
        "no payment call"
    );
}

/// Every malformed input in the corpus gets a 4xx JSON error naming the
/// problem, and the `validate_order` span (ERROR, with the exception) says
/// the same; no payment is attempted.
#[tokio::test]
async fn malformed_input_corpus() {
    let system = System::start().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    // (case, body, content-type, status, what the error says)
    type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, u16, &'a str);
    let corpus: Vec<Case> = vec![
        (
            "invalid JSON",
            b"{not json".to_vec(),
            None,
            422,
            "request body is not valid JSON",
        ),
        (
            "invalid UTF-8",
            b"{\"customer_id\":\"\xff\xfe\"}".to_vec(),
            None,
            422,
            "not valid UTF-8",
        ),
        ("empty body", Vec::new(), None, 422, "request body is empty"),
        (
            "not an object",
            b"[]".to_vec(),
            None,
            422,
            "must be a JSON object, got an array",
        ),
        (
            "string quantity",
            br#"{"customer_id":"c","item":"i","quantity":"3","amount":1}"#.to_vec(),
            None,
            422,
            "field `quantity` must be an integer",
        ),
        (
            "fractional quantity",
            br#"{"customer_id":"c","item":"i","quantity":1.5,"amount":1}"#.to_vec(),
            None,
            422,
            "field `quantity` must be an integer",
        ),
        (
            "missing field",
            br#"{"customer_id":"c","item":"i","quantity":1}"#.to_vec(),
            None,
            422,
            "missing field `amount`",
        ),
        (
            "zero amount",
            br#"{"customer_id":"c","item":"i","quantity":1,"amount":0}"#.to_vec(),
            None,
            422,
            "field `amount` must be greater than 0",
        ),
        (
            "huge number",
            br#"{"customer_id":"c","item":"i","quantity":1,"amount":1e400}"#.to_vec(),
            None,
            422,
            "request body is not valid JSON",
        ),
        (
            "huge integer",
            br#"{"customer_id":"c","item":"i","quantity":99999999999999999999999,"amount":1}"#
                .to_vec(),
            None,
            422,
            "field `quantity` must be an integer",
        ),
        (
            "NaN",
            br#"{"customer_id":"c","item":"i","quantity":1,"amount":NaN}"#.to_vec(),
            None,
            422,
            "request body is not valid JSON",
        ),
        (
            "Infinity",
            br#"{"customer_id":"c","item":"i","quantity":1,"amount":Infinity}"#.to_vec(),
            None,
            422,
            "request body is not valid JSON",
        ),
        (
            "deeply nested",
            deep.into_bytes(),
            None,
            422,
            "recursion limit exceeded",
        ),
        (
            "duplicate keys",
            br#"{"customer_id":"c","item":"i","quantity":1,"quantity":2,"amount":1}"#.to_vec(),
            None,
            422,
            "duplicate key `quantity`",
        ),
        (
            "wrong content type",
            VALID_ORDER.as_bytes().to_vec(),
            Some("text/plain"),
            415,
            "content-type `text/plain` is not JSON",
        ),
    ];
    for (case, body, content_type, status, expected) in corpus {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let reply = send_bytes("POST", &system.order.url("/orders"), &headers, &body).await;
        assert_eq!(
            reply.status,
            status,
            "{case}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let answer = reply.json();
        let error = answer["error"].as_str().unwrap().to_string();
        assert!(error.contains(expected), "{case}: {error}");
        let trace_id = answer["trace_id"].as_str().unwrap().to_string();
        let spans = system.receiver.trace(&trace_id, 2).await;
        let validate = find(&spans, "order-api", "validate_order");
        assert_eq!(validate.status(), (STATUS_ERROR, error.clone()), "{case}");
        let exception = validate.event("exception").unwrap();
        assert_eq!(
            str_of(&exception.attributes, "exception.message"),
            Some(error),
            "{case}"
        );
    }
    // The payment service refuses the same way.
    let reply = send(
        "POST",
        &system.payment.url("/payments"),
        &[],
        r#"{"order_id":"o","order_id":"p"}"#,
    )
    .await;
    assert_eq!(reply.status, 422);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("duplicate key `order_id`")
    );
}

/// A suspected fraud is declined: 402 to the client, `process_payment` is
/// ERROR with its exception, and the order's CLIENT span is ERROR.
#[tokio::test]
async fn fraud_order_is_declined_with_errors_on_both_sides() {
    let system = System::start().await;
    let reply = send("POST", &system.order.url("/orders"), &[], FRAUD_ORDER).await;
    assert_eq!(reply.status, 402);
    let body = reply.json();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["error"], "payment declined: suspected fraud");
    let trace_id = body["trace_id"].as_str().unwrap().to_string();

    let spans = system.receiver.trace(&trace_id, 6).await;
    let process = find(&spans, "payment-service", "process_payment");
    assert_eq!(
        process.status(),
        (
            STATUS_ERROR,
            "payment declined: suspected fraud".to_string()
        )
    );
    let exception = process.event("exception").expect("exception event");
    assert_eq!(
        str_of(&exception.attributes, "exception.type").as_deref(),
        Some("FraudSuspected")
    );
    let client = find(&spans, "order-api", "POST");
    assert_eq!(client.status().0, STATUS_ERROR);
    assert_eq!(client.int_attr("http.response.status_code"), Some(402));
    assert_eq!(client.str_attr("error.type").as_deref(), Some("402"));
    let payment_server = find(&spans, "payment-service", "POST /payments");
    assert_eq!(
        payment_server.int_attr("http.response.status_code"),
        Some(402)
    );
    assert_eq!(payment_server.status().0, STATUS_UNSET);
}

/// An incoming `traceparent` is continued: same trace id, and the server
/// span's parent is the caller's span.
#[tokio::test]
async fn incoming_traceparent_is_continued() {
    let system = System::start().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = send(
        "POST",
        &system.order.url("/orders"),
        &[("traceparent", traceparent)],
        VALID_ORDER,
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let spans = system
        .receiver
        .trace("4bf92f3577b34da6a3ce929d0e0e4736", 6)
        .await;
    let server = find(&spans, "order-api", "POST /orders");
    assert_eq!(server.parent_id(), "00f067aa0ba902b7");
}

/// Without a `traceparent`, or with a malformed one, a new trace starts.
#[tokio::test]
async fn missing_or_malformed_traceparent_starts_a_new_trace() {
    let system = System::start().await;
    for headers in [
        vec![],
        vec![("traceparent", "00-zzzz-00f067aa0ba902b7-01")],
        vec![(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
    ] {
        let reply = send("GET", &system.order.url("/health"), &headers, "").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
    }
    // Each request is its own root span in its own trace.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let roots = loop {
        let roots: Vec<Received> = system
            .receiver
            .spans()
            .into_iter()
            .filter(|s| s.span.name == "GET /health")
            .collect();
        if roots.len() >= 3 || tokio::time::Instant::now() > deadline {
            break roots;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(roots.len(), 3);
    let mut trace_ids: Vec<String> = roots.iter().map(Received::trace_id).collect();
    trace_ids.sort();
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), 3, "three distinct traces");
    assert!(roots.iter().all(|s| s.parent_id().is_empty()), "all roots");
    assert!(!trace_ids.contains(&"00000000000000000000000000000000".to_string()));
}

/// Unknown paths are 404 and wrong methods 405, both JSON.
#[tokio::test]
async fn unknown_path_and_wrong_method_are_json_errors() {
    let system = System::start().await;
    let reply = send("GET", &system.order.url("/nope"), &[], "").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"], "no route for `/nope`");
    let reply = send("DELETE", &system.order.url("/orders"), &[], "").await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.json()["error"],
        "method `DELETE` not allowed; use POST"
    );
    let reply = send("GET", &system.payment.url("/payments"), &[], "").await;
    assert_eq!(reply.status, 405);
}

/// With the payment service down, an order is 502 and the CLIENT span says
/// the connection was refused.
#[tokio::test]
async fn payment_down_is_502_with_an_error_client_span() {
    let (receiver, endpoint) = Receiver::start().await;
    // A port that was free a moment ago: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let order = order_host(&endpoint, &dead, &[]).await;

    let reply = send("POST", &order.url("/orders"), &[], VALID_ORDER).await;
    assert_eq!(reply.status, 502);
    let body = reply.json();
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"].as_str().unwrap().contains("payment service"),
        "{body}"
    );
    let trace_id = body["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace_id, 4).await;
    let client = find(&spans, "order-api", "POST");
    assert_eq!(client.status().0, STATUS_ERROR);
    assert_eq!(
        client.str_attr("error.type").as_deref(),
        Some("connection_refused")
    );
    let server = find(&spans, "order-api", "POST /orders");
    assert_eq!(server.status().0, STATUS_ERROR);
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("payment_unavailable")
    );
}

/// The order service keeps its connection to payment open: consecutive
/// orders reach payment from the same client port (one TCP connection), and
/// each is still its own complete trace.
#[tokio::test]
async fn orders_reuse_one_connection_to_payment() {
    let system = System::start().await;
    let mut ports = Vec::new();
    for _ in 0..3 {
        let reply = send("POST", &system.order.url("/orders"), &[], VALID_ORDER).await;
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
        let spans = system.receiver.trace(&trace_id, 6).await;
        let payment = find(&spans, "payment-service", "POST /payments");
        ports.push(payment.int_attr("network.peer.port").unwrap());
    }
    assert!(
        ports.iter().all(|port| *port == ports[0]),
        "payment saw the orders from different client ports (new connections): {ports:?}"
    );
}

/// A payment service that accepts but never answers makes the order 504
/// after the configured deadline, with a timed-out CLIENT span.
#[tokio::test]
async fn payment_timeout_is_504() {
    let (receiver, endpoint) = Receiver::start().await;
    let url = silent_server().await;
    let order = order_host(&endpoint, &url, &["PAYMENT_TIMEOUT_MS=300"]).await;
    let reply = send("POST", &order.url("/orders"), &[], VALID_ORDER).await;
    assert_eq!(reply.status, 504);
    let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&trace_id, 4).await;
    let client = find(&spans, "order-api", "POST");
    assert_eq!(client.status().0, STATUS_ERROR);
    assert!(
        client.str_attr("error.type").unwrap().contains("timeout"),
        "{:?}",
        client.str_attr("error.type")
    );
    let server = find(&spans, "order-api", "POST /orders");
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("payment_timeout")
    );
}

/// With no collector listening, requests are still served and the host says
/// once that spans are not delivered.
#[tokio::test]
async fn no_collector_still_serves() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let payment = Host::start("payment", &nowhere, HostOptions::default()).await;
    let order = order_host(&nowhere, &payment.url(""), &[]).await;
    for _ in 0..5 {
        let reply = send("POST", &order.url("/orders"), &[], VALID_ORDER).await;
        assert_eq!(reply.status, 201);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let said = order
            .stderr
            .lock()
            .unwrap()
            .matches("not reaching the collector")
            .count();
        if said > 0 {
            assert_eq!(said, 1, "said once: {}", order.stderr.lock().unwrap());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host never said spans are lost"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = send("GET", &order.url("/health"), &[], "").await;
    assert_eq!(reply.status, 200);
}

/// A TCP proxy that holds every request for `delay` before forwarding it,
/// so that requests are still in flight when the test acts.
async fn slow_proxy(target: String, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut first = vec![0u8; 64 * 1024];
                let n = inbound.read(&mut first).await.unwrap_or(0);
                tokio::time::sleep(delay).await;
                let mut outbound = TcpStream::connect(&target).await.unwrap();
                outbound.write_all(&first[..n]).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    format!("http://{addr}")
}

/// SIGTERM with requests in flight: they complete, the host exits 0, and
/// every span of those requests reaches the receiver.
#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_flushes_their_spans() {
    let (receiver, endpoint) = Receiver::start().await;
    let payment = Host::start("payment", &endpoint, HostOptions::default()).await;
    let proxy = slow_proxy(payment.addr.clone(), Duration::from_millis(1500)).await;
    // A one-minute export delay: the order's spans can only arrive through
    // the flush at shutdown.
    let mut order = order_host_with(
        &endpoint,
        &proxy,
        &[],
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000")],
    )
    .await;
    let url = order.url("/orders");
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { send("POST", &url, &[], VALID_ORDER).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = order.terminate().await;
    assert!(status.success(), "host exits 0 on SIGTERM: {status:?}");
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, 201, "in-flight request completed");
        let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
        let spans = receiver.trace(&trace_id, 6).await;
        assert_eq!(spans.iter().filter(|s| s.service == "order-api").count(), 4);
    }
    // After shutdown nothing listens.
    assert!(TcpStream::connect(&order.addr).await.is_err());
}

/// The design card's command works as written: with no `--allow-outbound`,
/// the order component's declared origin (its `PAYMENT_URL`) is granted,
/// the host says so at start-up, and a valid order is confirmed.
#[tokio::test]
async fn the_declared_origin_is_granted() {
    let system = System::start().await;
    let granted = format!(
        "order-api: outbound HTTP granted to http://{} (declared by the component; \
         --allow-outbound replaces it)",
        system.payment.addr
    );
    system.order.wait_for_stdout(&granted).await;
    system
        .payment
        .wait_for_stdout("payment-service: no outbound HTTP (the component declares none")
        .await;
    let reply = send("POST", &system.order.url("/orders"), &[], VALID_ORDER).await;
    assert_eq!(reply.status, 201, "{}", reply.json());
    assert_eq!(reply.json()["status"], "confirmed");
}

/// `--allow-outbound` replaces what the component declares: granted another
/// origin (or `none`), the order's payment call fails with wasi:http's
/// "request denied" (502 to the client), its CLIENT span is ERROR with
/// `error.type`, nothing reaches payment, and the host names the flag that
/// would allow it.
#[tokio::test]
async fn allow_outbound_replaces_the_declared_origins() {
    let (receiver, endpoint) = Receiver::start().await;
    let payment = Host::start("payment", &endpoint, HostOptions::default()).await;
    for (flag, said) in [
        (
            "http://127.0.0.1:9",
            "outbound HTTP granted to http://127.0.0.1:9 (--allow-outbound)",
        ),
        ("none", "no outbound HTTP (--allow-outbound none)"),
    ] {
        let order = Host::start(
            "order",
            &endpoint,
            HostOptions {
                args: vec![
                    "--env".into(),
                    format!("PAYMENT_URL={}", payment.url("")),
                    "--allow-outbound".into(),
                    flag.into(),
                ],
                env: vec![],
            },
        )
        .await;
        order.wait_for_stdout(&format!("order-api: {said}")).await;
        let reply = send("POST", &order.url("/orders"), &[], VALID_ORDER).await;
        assert_eq!(reply.status, 502, "with --allow-outbound {flag}");
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("HttpRequestDenied"),
            "{}",
            reply.json()
        );
        let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
        let spans = receiver.trace(&trace_id, 4).await;
        let client = find(&spans, "order-api", "POST");
        assert_eq!(client.status().0, STATUS_ERROR);
        assert_eq!(
            client.str_attr("error.type").as_deref(),
            Some("http_request_denied")
        );
        assert!(
            spans.iter().all(|s| s.service == "order-api"),
            "nothing reached payment"
        );
        let hint = format!("--allow-outbound http://{}", payment.addr);
        let stderr = order.stderr.lock().unwrap().clone();
        assert!(stderr.contains(&hint), "{stderr}");
    }
}

/// A URL that arrives in a request cannot widen the grant (SSRF): the
/// conformance component calls whatever URLs its request body lists, and
/// declares none, so a call to a live server on loopback is refused inside
/// the guest and the server sees no request at all.
#[tokio::test]
async fn a_url_in_a_request_is_refused() {
    let (_receiver, endpoint) = Receiver::start().await;
    let (recorder, target) = Recorder::start().await;
    let host = Host::start("conformance", &endpoint, HostOptions::default()).await;
    host.wait_for_stdout("conformance: no outbound HTTP (the component declares none")
        .await;
    let body = serde_json::json!([{"url": format!("{target}/internal"), "arguments": {}}]);
    let reply = send("POST", &host.url("/"), &[], &body.to_string()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let result = &reply.json()[0];
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("HttpRequestDenied"),
        "{result}"
    );
    assert!(
        recorder.headers().is_empty(),
        "the target received a request"
    );
}
