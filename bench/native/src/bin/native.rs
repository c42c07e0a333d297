//! The native baseline of the benchmark: the Order API and the Payment
//! Service as plain hyper + tokio + OpenTelemetry SDK services, no Wasm.
//!
//! It mirrors what the Wasm host and the components do, so that the two can
//! be compared request for request: the same routes, JSON bodies and status
//! codes (`components/order`, `components/payment`), and the same six spans
//! per order (`host/src/handler.rs`, `outgoing.rs`, `spans.rs`): a SERVER
//! span per request with the HTTP semconv attributes, `validate_order`,
//! `save_order` and `process_payment` as INTERNAL spans, a CLIENT span around
//! the call to the Payment Service, W3C `traceparent` carried by the SDK's
//! `TraceContextPropagator`, exported by the batch span processor over
//! OTLP/gRPC as the `OTEL_*` variables say. The outgoing client keeps its
//! connections alive, as a hand-written service would.
//!
//! It is a benchmark fixture, not a product: validation is what the
//! benchmark's bodies need, not the components' full strictness.
//!
//! ```sh
//! bench-native --service payment --port 8001 &
//! bench-native --service order --port 8000 --payment-url http://127.0.0.1:8001
//! ```

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The batch queue of the Wasm host (`host::export_queue::DEFAULT_MAX_QUEUE_SIZE`):
/// with the SDK's 2048 this service dropped 4% of its spans at full load,
/// and a span dropped is a span not exported, which flattered the baseline.
const MAX_QUEUE_SIZE: usize = 16_384;

/// Amounts above this are declined as suspected fraud (as `payment.wasm`).
const FRAUD_THRESHOLD: f64 = 10_000.0;
/// The message a declined payment carries (as `payment.wasm`).
const FRAUD_MESSAGE: &str = "payment declined: suspected fraud";
/// The largest body read (as the components).
const MAX_BODY: usize = 64 * 1024;

/// Which service to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Which {
    /// `order-api`: `GET /health`, `POST /orders`.
    Order,
    /// `payment-service`: `GET /health`, `POST /payments`.
    Payment,
}

/// Serve the order system's Order API or Payment Service natively, traced
/// with the OpenTelemetry SDK (configured by the standard `OTEL_*`
/// variables: `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SDK_DISABLED`, `OTEL_BSP_*`).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The service to run.
    #[arg(long, value_enum, value_name = "SERVICE")]
    service: Which,
    /// The TCP port to listen on, on 127.0.0.1.
    #[arg(long, value_name = "PORT")]
    port: u16,
    /// Where the Payment Service listens (order only).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8001")]
    payment_url: String,
}

/// What every request shares: built once.
struct App {
    which: Which,
    tracer: Option<SdkTracer>,
    propagator: TraceContextPropagator,
    client: Client<HttpConnector, Full<Bytes>>,
    payment_url: String,
}

/// The host's allocator, so that the comparison is of the two designs, not
/// of two allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("failed to start the tokio runtime")?;
    runtime.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let name = match cli.service {
        Which::Order => "order-api",
        Which::Payment => "payment-service",
    };
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    // The tonic exporter must be built inside the runtime that drives its
    // connection; the batch processor then exports from its own thread.
    let provider = if disabled {
        None
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .context(
                "failed to build the OTLP/gRPC exporter (check OTEL_EXPORTER_OTLP_ENDPOINT)",
            )?;
        // The builder reads `OTEL_BSP_*`; the queue size defaults to the host's.
        let mut batch = BatchConfigBuilder::default();
        if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
            batch = batch.with_max_queue_size(MAX_QUEUE_SIZE);
        }
        let resource = Resource::builder()
            .with_service_name(name)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        Some(
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_span_processor(
                    BatchSpanProcessor::builder(exporter)
                        .with_batch_config(batch.build())
                        .build(),
                )
                .build(),
        )
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let app = Arc::new(App {
        which: cli.service,
        tracer: provider.as_ref().map(|p| p.tracer("bench-native")),
        propagator: TraceContextPropagator::new(),
        client: Client::builder(TokioExecutor::new()).build(connector),
        payment_url: cli.payment_url.trim_end_matches('/').to_string(),
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], cli.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on `{addr}`: is the port taken?"))?;
    println!("{name} (native) listening on http://{addr}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("{name}: accept failed: {error}");
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| app.clone().handle(request, addr, peer));
            // A client that goes away is not the server's failure.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    // Flush what is queued: the receiver counts every span.
    if let Some(provider) = provider {
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .context("the span flush task failed")?
            .context("failed to flush spans at shutdown")?;
    }
    Ok(())
}

/// A request's server span and the context holding it.
struct Server {
    cx: Context,
    method: &'static str,
}

impl App {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let parent = self.propagator.extract(&Headers(request.headers()));
        let method = match *request.method() {
            Method::GET => "GET",
            Method::POST => "POST",
            _ => "HTTP",
        };
        let server = match &self.tracer {
            Some(tracer) => {
                let span = tracer
                    .span_builder(method)
                    .with_kind(SpanKind::Server)
                    .with_attributes(server_attributes(&request, method, local, peer))
                    .start_with_context(tracer, &parent);
                parent.with_span(span)
            }
            None => parent,
        };
        let server = Server { cx: server, method };
        let (status, body) = self.route(request, &server).await;
        let span = server.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            span.set_attribute(KeyValue::new("error.type", status.as_u16().to_string()));
            span.set_status(Status::error(""));
        }
        let sc = span.span_context().clone();
        span.end();
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if sc.is_valid() && !sc.is_remote() {
            let value = format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("traceresponse", value);
            }
        }
        Ok(response)
    }

    async fn route(&self, request: Request<Incoming>, server: &Server) -> (StatusCode, Value) {
        let path = request.uri().path().to_string();
        let allowed = match (self.which, path.as_str()) {
            (_, "/health") => "GET",
            (Which::Order, "/orders") | (Which::Payment, "/payments") => "POST",
            _ => {
                return refused(
                    server,
                    StatusCode::NOT_FOUND,
                    format!("no route for `{path}`"),
                );
            }
        };
        set_route(server, &path);
        if request.method().as_str() != allowed {
            let why = format!(
                "method `{}` is not allowed on `{path}`: use {allowed}",
                request.method()
            );
            return refused(server, StatusCode::METHOD_NOT_ALLOWED, why);
        }
        if path == "/health" {
            return (StatusCode::OK, json!({"status": "ok"}));
        }
        let json_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                let why = format!("request body larger than {MAX_BODY} bytes");
                return refused(server, StatusCode::PAYLOAD_TOO_LARGE, why);
            }
        };
        match self.which {
            Which::Order => self.create_order(server, json_type, &body).await,
            Which::Payment => self.process_payment(server, json_type, &body),
        }
    }

    fn internal(&self, server: &Server, name: &'static str) -> Context {
        match &self.tracer {
            Some(tracer) => {
                let span = tracer.start_with_context(name, &server.cx);
                server.cx.with_span(span)
            }
            None => server.cx.clone(),
        }
    }

    async fn create_order(
        &self,
        server: &Server,
        json_type: bool,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let validate = self.internal(server, "validate_order");
        let order = match parse_order(json_type, body, &validate) {
            Ok(order) => order,
            Err((status, why)) => return refused(server, status, why),
        };
        let order_id = format!("ord_{:016x}", random_u64());
        {
            let save = self.internal(server, "save_order");
            let span = save.span();
            span.set_attributes([
                KeyValue::new("order.id", order_id.clone()),
                KeyValue::new("db.system.name", "in-memory"),
                KeyValue::new("db.operation.name", "INSERT"),
                KeyValue::new("db.collection.name", "orders"),
            ]);
            span.add_event(
                "order.saved",
                vec![
                    KeyValue::new("order.id", order_id.clone()),
                    KeyValue::new("order.item", order.item.clone()),
                    KeyValue::new("order.quantity", order.quantity),
                ],
            );
            span.end();
        }
        let payment = json!({
            "order_id": order_id,
            "customer_id": order.customer_id,
            "amount": order.amount,
        });
        let trace_id = trace_id(server);
        let failed = |status: StatusCode, reason: String, error_type: &'static str| {
            server
                .cx
                .span()
                .set_attribute(KeyValue::new("error.type", error_type));
            (
                status,
                json!({"order_id": order_id, "status": "failed", "error": reason, "trace_id": trace_id}),
            )
        };
        let (status, answer) = match self.charge(server, payment).await {
            Ok(answer) => answer,
            Err(reason) => return failed(StatusCode::BAD_GATEWAY, reason, "payment_unavailable"),
        };
        match status.as_u16() {
            200 | 201 => match answer.get("payment_id").and_then(Value::as_str) {
                Some(payment_id) => (
                    StatusCode::CREATED,
                    json!({"order_id": order_id, "status": "confirmed", "payment_id": payment_id, "trace_id": trace_id}),
                ),
                None => failed(
                    StatusCode::BAD_GATEWAY,
                    "payment service answered without a payment_id".to_string(),
                    "payment_unavailable",
                ),
            },
            402 => {
                let reason = answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("payment declined");
                (
                    StatusCode::PAYMENT_REQUIRED,
                    json!({"order_id": order_id, "status": "rejected", "error": reason, "trace_id": trace_id}),
                )
            }
            other => failed(
                StatusCode::BAD_GATEWAY,
                format!("payment service answered {other}: {answer}"),
                "payment_unavailable",
            ),
        }
    }

    /// `POST /payments` under a CLIENT span, with its `traceparent`.
    async fn charge(&self, server: &Server, payment: Value) -> Result<(StatusCode, Value), String> {
        let url = format!("{}/payments", self.payment_url);
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("PAYMENT_URL `{url}` is invalid: {e}"))?;
        let cx = match &self.tracer {
            Some(tracer) => {
                let mut attributes = vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("url.full", url.clone()),
                    KeyValue::new("server.port", i64::from(uri.port_u16().unwrap_or(80))),
                ];
                if let Some(host) = uri.host() {
                    attributes.push(KeyValue::new("server.address", host.to_string()));
                }
                let span = tracer
                    .span_builder("POST")
                    .with_kind(SpanKind::Client)
                    .with_attributes(attributes)
                    .start_with_context(tracer, &server.cx);
                server.cx.with_span(span)
            }
            None => server.cx.clone(),
        };
        let mut request = Request::post(uri)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payment.to_string())))
            .map_err(|e| format!("cannot build the payment request: {e}"))?;
        self.propagator
            .inject_context(&cx, &mut HeadersMut(request.headers_mut()));
        let result: Result<(StatusCode, Value), String> = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("payment service at {url} failed: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("payment service at {url} failed: {e}"))?
                .to_bytes();
            Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
        .await;
        let span = cx.span();
        match &result {
            Ok((status, _)) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status.as_u16()),
                ));
                if status.as_u16() >= 400 {
                    span.set_attribute(KeyValue::new("error.type", status.as_u16().to_string()));
                    span.set_status(Status::error(""));
                }
            }
            Err(why) => {
                span.set_attribute(KeyValue::new("error.type", "connect_error"));
                span.set_status(Status::error(why.clone()));
            }
        }
        span.end();
        result
    }

    fn process_payment(
        &self,
        server: &Server,
        json_type: bool,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let cx = self.internal(server, "process_payment");
        let span = cx.span();
        let parsed = (|| {
            if !json_type {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "content-type is not JSON: send `application/json`".to_string(),
                ));
            }
            let object = object(body)
                .map_err(|why| (StatusCode::UNPROCESSABLE_ENTITY, "ValidationError", why))?;
            let invalid = |why| (StatusCode::UNPROCESSABLE_ENTITY, "ValidationError", why);
            let order_id = string(&object, "order_id").map_err(invalid)?;
            span.set_attribute(KeyValue::new("payment.order_id", order_id));
            let customer_id = string(&object, "customer_id").map_err(invalid)?;
            span.set_attribute(KeyValue::new("payment.customer_id", customer_id));
            let amount = positive(&object, "amount").map_err(invalid)?;
            span.set_attribute(KeyValue::new("payment.amount", amount));
            Ok(amount)
        })();
        let amount = match parsed {
            Ok(amount) => amount,
            Err((status, exception, why)) => {
                fail(&cx, exception, &why);
                span.end();
                return refused(server, status, why);
            }
        };
        if amount > FRAUD_THRESHOLD {
            span.set_attribute(KeyValue::new("payment.fraud_threshold", FRAUD_THRESHOLD));
            fail(&cx, "FraudSuspected", FRAUD_MESSAGE);
            span.end();
            return (
                StatusCode::PAYMENT_REQUIRED,
                json!({"error": FRAUD_MESSAGE, "trace_id": trace_id(server)}),
            );
        }
        let payment_id = format!("pay_{:016x}", random_u64());
        span.set_attribute(KeyValue::new("payment.id", payment_id.clone()));
        span.add_event(
            "payment.authorized",
            vec![KeyValue::new("payment.id", payment_id.clone())],
        );
        span.end();
        (
            StatusCode::OK,
            json!({"payment_id": payment_id, "status": "authorized"}),
        )
    }
}

/// A validated order.
struct Order {
    customer_id: String,
    item: String,
    quantity: i64,
    amount: f64,
}

/// Validates an order under the `validate_order` span in `cx`, and ends it.
fn parse_order(json_type: bool, body: &[u8], cx: &Context) -> Result<Order, (StatusCode, String)> {
    let span = cx.span();
    let parsed = (|| {
        if !json_type {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "content-type is not JSON: send `application/json`".to_string(),
            ));
        }
        let invalid = |why| (StatusCode::UNPROCESSABLE_ENTITY, "ValidationError", why);
        let object = object(body).map_err(invalid)?;
        let customer_id = string(&object, "customer_id").map_err(invalid)?;
        span.set_attribute(KeyValue::new("order.customer_id", customer_id.clone()));
        let item = string(&object, "item").map_err(invalid)?;
        span.set_attribute(KeyValue::new("order.item", item.clone()));
        let quantity = match object.get("quantity").and_then(Value::as_i64) {
            Some(q) if q >= 1 => q,
            Some(q) => {
                return Err(invalid(format!(
                    "field `quantity` must be at least 1, got {q}"
                )));
            }
            None => return Err(invalid("field `quantity` must be an integer".to_string())),
        };
        span.set_attribute(KeyValue::new("order.quantity", quantity));
        let amount = positive(&object, "amount").map_err(invalid)?;
        span.set_attribute(KeyValue::new("order.amount", amount));
        Ok(Order {
            customer_id,
            item,
            quantity,
            amount,
        })
    })();
    if let Err((_, exception, why)) = &parsed {
        fail(cx, exception, why);
    }
    span.end();
    parsed.map_err(|(status, _, why)| (status, why))
}

fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("the body must be a JSON object".to_string()),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    }
}

fn string(object: &serde_json::Map<String, Value>, field: &str) -> Result<String, String> {
    match object.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("field `{field}` must be a non-empty string")),
        None => Err(format!("field `{field}` is missing")),
    }
}

fn positive(object: &serde_json::Map<String, Value>, field: &str) -> Result<f64, String> {
    match object.get(field).and_then(Value::as_f64) {
        Some(n) if n > 0.0 => Ok(n),
        Some(n) => Err(format!("field `{field}` must be greater than 0, got {n}")),
        None => Err(format!("field `{field}` must be a number")),
    }
}

/// The standard `exception` event and ERROR status, as the guest's `fail`.
fn fail(cx: &Context, exception: &str, why: &str) {
    let span = cx.span();
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", exception.to_string()),
            KeyValue::new("exception.message", why.to_string()),
        ],
    );
    span.set_status(Status::error(why.to_string()));
}

/// Names the server span `{method} {route}` and sets `http.route`.
fn set_route(server: &Server, route: &str) {
    let span = server.cx.span();
    span.update_name(format!("{} {route}", server.method));
    span.set_attribute(KeyValue::new("http.route", route.to_string()));
}

fn refused(server: &Server, status: StatusCode, why: String) -> (StatusCode, Value) {
    (status, json!({"error": why, "trace_id": trace_id(server)}))
}

fn trace_id(server: &Server) -> String {
    server.cx.span().span_context().trace_id().to_string()
}

/// The HTTP server semantic conventions' request attributes, as the host sets them.
fn server_attributes<B>(
    request: &Request<B>,
    method: &'static str,
    local: SocketAddr,
    peer: SocketAddr,
) -> Vec<KeyValue> {
    let uri = request.uri();
    let mut attributes = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.path", uri.path().to_string()),
    ];
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new("url.query", query.to_string()));
    }
    attributes.push(KeyValue::new("url.scheme", "http"));
    let authority = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<hyper::http::uri::Authority>().ok());
    let (address, port) = match &authority {
        Some(a) => (a.host().to_string(), a.port_u16().unwrap_or(80)),
        None => (local.ip().to_string(), local.port()),
    };
    attributes.push(KeyValue::new("server.address", address));
    attributes.push(KeyValue::new("server.port", i64::from(port)));
    attributes.push(KeyValue::new("network.protocol.version", "1.1"));
    if let Some(agent) = request
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
    }
    attributes.push(KeyValue::new("client.address", peer.ip().to_string()));
    attributes.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
    attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
    attributes
}

/// A random id part; `RandomState` is seeded per instance from the OS.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// Incoming headers, for the SDK's propagator.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Outgoing headers, for the SDK's propagator.
struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
