//! One request: a fresh store and instance, the SERVER span around it, the
//! guest's `handle` call, and the response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use opentelemetry::trace::{SpanBuilder, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use wasmtime::Store;
use wasmtime::StoreLimitsBuilder;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::client::Client;
use crate::component;
use crate::egress::Egress;
use crate::linger::Linger;
use crate::propagation::{self, Extracted, Propagator};
use crate::spans::{AttributeLimits, Failure, Outcome, RequestSpans, error_type_name};
use crate::state::{Limits, RequestState};
use crate::telemetry::HostTracer;
use crate::waterfall::{JAEGER_TRACE_URL, duration};

/// The methods HTTP semconv names as they are; others are `_OTHER`.
pub(crate) const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The addresses of the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The host's address.
    pub local: SocketAddr,
    /// The client's address.
    pub peer: SocketAddr,
}

/// What one request may use. Each has a command-line flag.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Wall-clock time for the guest to finish; past it, 504.
    pub deadline: Duration,
    /// Linear memory per instance, in bytes; past it, 500.
    pub memory: usize,
    /// Request body, in bytes; past it, 413 before the guest runs.
    pub body: usize,
    /// Guest spans per request; more are silently not recorded.
    pub spans: usize,
    /// Attributes per span and string length (from the `OTEL_*` limits).
    pub attributes: AttributeLimits,
    /// Requests run at once; more wait in a queue.
    pub concurrent: usize,
    /// Requests that may wait; past that, 503 at once.
    pub queue: usize,
    /// How long a connection may take to send a request's headers, and how
    /// long an idle keep-alive connection stays open (slow-loris defence).
    pub header_timeout: Duration,
    /// How long and how much a connection answered before its body was
    /// read is drained before it is closed, so that the client gets the
    /// response (see [`linger`](crate::linger)).
    pub linger: Linger,
}

/// The default request deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// The default linear-memory cap per instance: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// The default cap on guest spans per request.
pub const DEFAULT_SPAN_LIMIT: usize = 1000;

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            deadline: DEFAULT_DEADLINE,
            memory: DEFAULT_MEMORY_LIMIT,
            body: DEFAULT_BODY_LIMIT,
            spans: DEFAULT_SPAN_LIMIT,
            attributes: AttributeLimits::default(),
            concurrent: DEFAULT_CONCURRENCY,
            queue: DEFAULT_QUEUE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            linger: Linger::default(),
        }
    }
}

/// The default time to send a request's headers (and to stay idle).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default number of requests run at once.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// The default number of requests that may wait for a turn.
pub const DEFAULT_QUEUE: usize = 1024;
/// `error.type` of a request refused because the queue was full.
pub const OVERLOADED: &str = "overloaded";

/// A component being served: everything built once at start-up and shared
/// by every request.
pub struct Service {
    /// The service name, for logs.
    pub name: String,
    /// Swapped whole by [`Service::replace`] (`--watch`); each request
    /// clones the one current when it starts, so a reload never disturbs a
    /// request in flight.
    pre: RwLock<ProxyPre<RequestState>>,
    tracer: HostTracer,
    propagator: Arc<Propagator>,
    env: Vec<(String, String)>,
    in_flight: InFlight,
    /// Whether each request is logged on a line of its own.
    log_requests: bool,
    /// Baggage keys copied onto every span (`--baggage-attributes`).
    baggage_attributes: Arc<[String]>,
    limits: RequestLimits,
    /// Where guests may send requests (with the service name for its log
    /// lines); `None` lets them go anywhere.
    egress: Option<(Arc<Egress>, Arc<str>)>,
    /// Sends guests' outgoing requests; shared by every service of the
    /// process so that connections are reused across requests.
    client: Arc<Client>,
    /// Turns to run a guest: a burst beyond them waits (bounded) or gets 503.
    admission: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Service {
    /// A service running `pre`, tracing with `tracer`, propagating with
    /// `propagator`, passing `env` to the guest.
    pub fn new(
        name: String,
        pre: ProxyPre<RequestState>,
        tracer: HostTracer,
        propagator: Arc<Propagator>,
        env: Vec<(String, String)>,
    ) -> Self {
        Service {
            name,
            pre: RwLock::new(pre),
            tracer,
            propagator,
            env,
            in_flight: InFlight::default(),
            log_requests: true,
            baggage_attributes: Arc::from([]),
            limits: RequestLimits::default(),
            egress: None,
            client: Client::new(),
            admission: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY)),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sets what each request may use.
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.admission = Arc::new(tokio::sync::Semaphore::new(limits.concurrent.max(1)));
        self.limits = limits;
        self
    }

    /// Denies outgoing requests except to `egress`'s destinations.
    pub fn egress(mut self, egress: Egress) -> Self {
        self.egress = Some((Arc::new(egress), Arc::from(self.name.as_str())));
        self
    }

    /// Sends outgoing requests through `client` (to share its connections).
    pub fn client(mut self, client: Arc<Client>) -> Self {
        self.client = client;
        self
    }

    /// What each request may use.
    pub fn request_limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// Waits for a turn to run a guest; `None` when too many already wait.
    async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.admission.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.admission.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }

    /// Copies the baggage entries named by `keys` onto every span of each
    /// request, as `baggage.KEY`.
    pub fn baggage_attributes(mut self, keys: Vec<String>) -> Self {
        self.baggage_attributes = keys.into();
        self
    }

    /// The component requests are served from now.
    pub fn current(&self) -> ProxyPre<RequestState> {
        // A poisoned lock only means a panic elsewhere while swapping; the
        // value inside is still a whole component.
        match self.pre.read() {
            Ok(pre) => pre.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `pre` from the next request on.
    pub fn replace(&self, pre: ProxyPre<RequestState>) {
        match self.pre.write() {
            Ok(mut current) => *current = pre,
            Err(poisoned) => *poisoned.into_inner() = pre,
        }
    }

    /// Turns the one-line-per-request log off (or on).
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }

    /// A state for calls outside any request (reading `service-info` at
    /// start-up): no spans, environment `env`.
    pub fn scratch_state(env: &[(String, String)]) -> RequestState {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr().envs(env);
        RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            spans: RequestSpans::new(
                HostTracer::Disabled,
                Arc::new(Propagator::new(&[])),
                Context::new(),
                Vec::new(),
                String::new(),
            ),
            limits: store_limits(&RequestLimits::default()),
        }
    }

    /// The state for a request whose SERVER span is in `server`.
    pub fn request_state(
        &self,
        server: Context,
        attributes: Vec<KeyValue>,
        method: String,
        incoming: Extracted,
    ) -> RequestState {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr().envs(&self.env);
        let mut spans = RequestSpans::new(
            self.tracer.clone(),
            self.propagator.clone(),
            server,
            attributes,
            method,
        )
        .with_incoming(
            incoming.tracestate,
            incoming.baggage,
            self.baggage_attributes.clone(),
        )
        .with_span_limit(self.limits.spans)
        .with_attribute_limits(self.limits.attributes)
        .with_client(self.client.clone());
        if let Some((egress, name)) = &self.egress {
            spans = spans.with_egress(egress.clone(), name.clone());
        }
        RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            spans,
            limits: store_limits(&self.limits),
        }
    }

    /// Serves one request. Never fails: a guest failure is a 500 response and
    /// an ERROR span.
    ///
    /// Generic over the body so that the micro-benchmark can drive it
    /// without a socket; the server passes hyper's `Incoming`.
    pub async fn handle<B>(
        self: Arc<Self>,
        request: Request<B>,
        connection: Connection,
    ) -> Result<Response<HyperOutgoingBody>, Infallible>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = std::time::Instant::now();
        let incoming = self.propagator.extract(request.headers());
        let parent = incoming.cx.clone();
        let (name, attributes) = server_span(&request, connection);
        let target = format!("{} {}", request.method(), request.uri().path());
        // The attributes are written when the span ends (see `spans`), so
        // that the guest can override them.
        let builder = SpanBuilder::from_name(name.clone()).with_kind(SpanKind::Server);
        let server = self.tracer.start(builder, &parent);
        let span_context = server.span().span_context().clone();
        let trace_id = span_context.trace_id().to_string();

        let state = self.request_state(server, attributes, name, incoming);
        // The body is read up to the limit before the guest runs, so that an
        // oversized one is refused whole (413) and the guest never sees part.
        let (parts, body) = request.into_parts();
        let too_large = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > self.limits.body as u64);
        let body = if too_large {
            Err(BodyRefused::TooLarge)
        } else {
            Limited::new(body, self.limits.body)
                .collect()
                .await
                .map_err(BodyRefused::from)
        };
        let body = match body {
            Ok(body) => body,
            Err(refused) => {
                let (status, error_type, message) = refused.describe(self.limits.body);
                let mut state = state;
                state
                    .spans
                    .set_server_attributes(vec![KeyValue::new("error.type", error_type)]);
                state.spans.finish(Outcome {
                    status: status.as_u16(),
                    failure: None,
                });
                return Ok(json_response(
                    status,
                    &serde_json::json!({"error": message, "trace_id": trace_id}),
                ));
            }
        };
        let body = Full::new(body.to_bytes())
            .map_err(|never| -> wasmtime_wasi_http::Error { match never {} });
        let request = Request::from_parts(parts, body);

        let Some(permit) = self.admit().await else {
            let mut state = state;
            state
                .spans
                .set_server_attributes(vec![KeyValue::new("error.type", OVERLOADED)]);
            state.spans.finish(Outcome {
                status: 503,
                failure: None,
            });
            let mut response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({
                    "error": format!(
                        "too many requests: {} running and {} waiting (--max-concurrent, --max-queue); retry shortly",
                        self.limits.concurrent, self.limits.queue
                    ),
                    "trace_id": trace_id,
                }),
            );
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("1"),
            );
            return Ok(response);
        };

        let pre = self.current();
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(component::deadline_ticks(self.limits.deadline));
        store.epoch_deadline_trap();
        let (sender, receiver) = oneshot::channel();
        let status = Arc::new(AtomicU16::new(0));
        let sent = status.clone();
        let outparam =
            store
                .data_mut()
                .http()
                .new_response_outparam_from_callback(move |response| {
                    if let Ok(response) = &response {
                        sent.store(response.status().as_u16(), Ordering::Relaxed);
                    }
                    // The client may be gone; the guest still finishes and is traced.
                    let _ = sender.send(response);
                });
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request);
        let (outparam, incoming) = match (outparam, incoming) {
            (Ok(outparam), Ok(incoming)) => (outparam, incoming),
            (Err(error), _) | (_, Err(error)) => {
                let message = format!("{error:#}");
                store.data_mut().spans.finish(Outcome {
                    status: 400,
                    failure: None,
                });
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"error": message, "trace_id": trace_id}),
                ));
            }
        };

        let guard = self.in_flight.enter();
        let deadline = self.limits.deadline;
        // The guest runs on this request's own task (no hand-off to another
        // task per request): polled here until it answers, then by the
        // response body while it writes it (see [`Driven`]).
        let mut guest = Running(Some(Box::pin(async move {
            let _guard = guard;
            let _permit = permit;
            let mut instantiated = None;
            let call = async {
                let started = std::time::Instant::now();
                let proxy = pre.instantiate_async(&mut store).await?;
                instantiated = Some(started.elapsed());
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            // Epoch interruption stops a guest computing past its deadline;
            // this outer timeout stops one waiting in a host call.
            let result = match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::from(wasmtime::Trap::Interrupt)),
            };
            let failure = result
                .as_ref()
                .err()
                .map(|error| failure(error, store.data().limits.hit, deadline));
            // What the sandbox cost this request, on its server span.
            let mut sandbox = vec![KeyValue::new(
                "wasm.memory.peak_bytes",
                i64::try_from(store.data().limits.peak_memory).unwrap_or(i64::MAX),
            )];
            if let Some(took) = instantiated {
                sandbox.push(KeyValue::new(
                    "wasm.instantiate.duration_us",
                    i64::try_from(took.as_micros()).unwrap_or(i64::MAX),
                ));
            }
            store.data_mut().spans.set_host_attributes(sandbox);
            let answered = status.load(Ordering::Relaxed);
            let status = match (&failure, answered) {
                (_, sent) if sent != 0 => sent,
                (Some(failure), _) if failure.error_type == DEADLINE_EXCEEDED => 504,
                _ => 500,
            };
            store.data_mut().spans.finish(Outcome {
                status,
                failure: failure.clone(),
            });
            match failure {
                Some(failure) if answered == 0 => Some((status, failure.message)),
                _ => None,
            }
        })));

        let mut receiver = receiver;
        let (answer, guest) = tokio::select! {
            biased;
            answer = &mut receiver => (answer.ok(), guest),
            outcome = &mut guest => match receiver.try_recv() {
                Ok(answer) => (Some(answer), Running(None)),
                Err(_) => (None, Running(Some(Box::pin(std::future::ready(outcome))))),
            },
        };
        let mut response = match (answer, guest) {
            (Some(Ok(response)), guest) => {
                response.map(|body| Driven { body, guest }.boxed_unsync())
            }
            (Some(Err(code)), guest) => {
                drop(guest);
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"error": format!("component failed the request: {code:?}"), "trace_id": trace_id}),
                )
            }
            (None, guest) => {
                let outcome = guest.await;
                let (status, why) = match outcome {
                    Some((status, message)) => (status, format!("component failed: {message}")),
                    None => (
                        500,
                        "component returned without sending a response".to_string(),
                    ),
                };
                eprintln!("{}: {why} (trace {trace_id})", self.name);
                json_response(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &serde_json::json!({"error": why, "trace_id": trace_id}),
                )
            }
        };
        // A remote context means the host made no span (telemetry disabled):
        // there is nothing of ours to report.
        if span_context.is_valid() && !span_context.is_remote() {
            propagation::respond(&span_context, response.headers_mut());
        }
        if self.log_requests {
            let link = if span_context.is_sampled() {
                format!("  {JAEGER_TRACE_URL}{trace_id}")
            } else {
                String::new()
            };
            println!(
                "{} {target} {} {} trace {trace_id}{link}",
                self.name,
                response.status().as_u16(),
                duration(started.elapsed()),
            );
        }
        Ok(response)
    }

    /// Waits until every request's guest has finished and its spans ended.
    pub async fn idle(&self) {
        self.in_flight.idle().await;
    }
}

/// The span name and the HTTP server semantic conventions' attributes.
pub(crate) fn server_span<B>(
    request: &Request<B>,
    connection: Connection,
) -> (String, Vec<KeyValue>) {
    let method = request.method().as_str();
    let mut attributes = Vec::with_capacity(12);
    let name = if KNOWN_METHODS.contains(&method) {
        attributes.push(KeyValue::new("http.request.method", method.to_string()));
        method.to_string()
    } else {
        attributes.push(KeyValue::new("http.request.method", "_OTHER"));
        attributes.push(KeyValue::new(
            "http.request.method_original",
            method.to_string(),
        ));
        "HTTP".to_string()
    };
    let uri = request.uri();
    attributes.push(KeyValue::new("url.path", uri.path().to_string()));
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new("url.query", query.to_string()));
    }
    attributes.push(KeyValue::new("url.scheme", "http"));
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|host| host.parse::<hyper::http::uri::Authority>().ok())
        // `Host: :8000` parses with an empty host: no server address then.
        .filter(|authority| !authority.host().is_empty());
    let (address, port) = match &host {
        Some(authority) => (
            authority.host().to_string(),
            authority.port_u16().unwrap_or(80),
        ),
        None => (connection.local.ip().to_string(), connection.local.port()),
    };
    attributes.push(KeyValue::new("server.address", address));
    attributes.push(KeyValue::new("server.port", i64::from(port)));
    let version = match request.version() {
        hyper::Version::HTTP_09 => "0.9",
        hyper::Version::HTTP_10 => "1.0",
        hyper::Version::HTTP_2 => "2",
        hyper::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    attributes.push(KeyValue::new("network.protocol.version", version));
    if let Some(agent) = request
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
    }
    attributes.push(KeyValue::new(
        "client.address",
        connection.peer.ip().to_string(),
    ));
    attributes.push(KeyValue::new(
        "network.peer.address",
        connection.peer.ip().to_string(),
    ));
    attributes.push(KeyValue::new(
        "network.peer.port",
        i64::from(connection.peer.port()),
    ));
    (name, attributes)
}

/// The first line of a guest error: the trap or error message.
fn error_message(error: &wasmtime::Error) -> String {
    error.to_string()
}

/// `error.type` of a request stopped at its deadline.
pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
/// `error.type` of a request whose guest hit its memory or table cap.
pub const LIMIT_EXCEEDED: &str = "resource_limit_exceeded";

/// Describes a guest failure for the `exception` event: a trap's code as
/// `error.type` (or the deadline, or the memory cap, when that is what
/// stopped it), its message, and the guest's Wasm backtrace.
fn failure(error: &wasmtime::Error, limit_hit: bool, deadline: Duration) -> Failure {
    let trap = error.downcast_ref::<wasmtime::Trap>();
    let (error_type, message) = if trap == Some(&wasmtime::Trap::Interrupt) {
        (
            DEADLINE_EXCEEDED.to_string(),
            format!("stopped after the {deadline:?} request deadline (--deadline-ms)"),
        )
    } else if limit_hit {
        (
            LIMIT_EXCEEDED.to_string(),
            format!(
                "{} (a memory or table cap was reached: --memory-limit-mib)",
                error_message(error)
            ),
        )
    } else {
        match trap {
            Some(trap) => (error_type_name(&format!("{trap:?}")), error_message(error)),
            None => ("guest_error".to_string(), error_message(error)),
        }
    };
    let exception_type = if trap.is_some() {
        "wasmtime::Trap"
    } else {
        "wasmtime::Error"
    };
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    Failure {
        error_type,
        exception_type: exception_type.to_string(),
        message,
        stacktrace: backtrace.or_else(|| Some(format!("{error:?}"))),
    }
}

/// `error.type` of a request whose body is over `--max-body-bytes` (413).
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// `error.type` of a request whose body is not valid HTTP/1.1 framing, such
/// as a malformed chunk size (400).
pub const MALFORMED_BODY: &str = "malformed_body";
/// `error.type` of a request whose body ended before its announced length
/// (the client went; 400, which it will not read).
pub const INCOMPLETE_BODY: &str = "incomplete_body";

/// Why a request body was not read whole before the guest ran.
#[derive(Debug)]
enum BodyRefused {
    /// Over the limit, by its `Content-Length` or as read.
    TooLarge,
    /// Malformed framing (hyper's body error wraps the decoder's
    /// `InvalidInput`/`InvalidData` I/O error, with its message).
    Malformed(String),
    /// Ended early, or the connection failed while it was read.
    Incomplete(String),
}

impl From<Box<dyn std::error::Error + Send + Sync>> for BodyRefused {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        if error.is::<http_body_util::LengthLimitError>() {
            return BodyRefused::TooLarge;
        }
        // hyper reports a body it cannot decode as an error "reading a body
        // from connection" whose source is the decoder's I/O error.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                        BodyRefused::Malformed(io.to_string())
                    }
                    _ => BodyRefused::Incomplete(io.to_string()),
                };
            }
            source = cause.source();
        }
        BodyRefused::Incomplete(error.to_string())
    }
}

impl BodyRefused {
    /// The status, `error.type` and message of the response.
    fn describe(self, limit: usize) -> (StatusCode, &'static str, String) {
        match self {
            BodyRefused::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                BODY_TOO_LARGE,
                format!("request body larger than {limit} bytes (--max-body-bytes)"),
            ),
            BodyRefused::Malformed(why) => (
                StatusCode::BAD_REQUEST,
                MALFORMED_BODY,
                format!("malformed request body: {why}"),
            ),
            BodyRefused::Incomplete(why) => (
                StatusCode::BAD_REQUEST,
                INCOMPLETE_BODY,
                format!("request body not received whole: {why}"),
            ),
        }
    }
}

/// wasmtime's limits for one instance.
fn store_limits(limits: &RequestLimits) -> Limits {
    Limits::new(
        StoreLimitsBuilder::new()
            .memory_size(limits.memory)
            .table_elements(component::TABLE_ELEMENT_LIMIT)
            .trap_on_grow_failure(true)
            .build(),
    )
}

/// A JSON response the host writes itself (for failures the guest could not
/// answer).
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A request's guest, from instantiation to its spans ended: `Some((status,
/// message))` when it failed without sending a response.
type Guest = std::pin::Pin<Box<dyn Future<Output = Option<(u16, String)>> + Send>>;

/// A request's guest while it runs. Dropped before it finished (the client
/// went, or its response was sent while it still runs), it moves to a task
/// of its own: a guest always finishes and its spans always end.
struct Running(Option<Guest>);

impl Running {
    fn detach(&mut self) {
        if let Some(guest) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(guest)),
                // Outside a runtime nothing can drive it: dropping it ends
                // its spans where it stopped.
                Err(_) => drop(guest),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.detach();
    }
}

impl Future for Running {
    type Output = Option<(u16, String)>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(guest) = &mut self.0 else {
            return std::task::Poll::Ready(None);
        };
        let outcome = guest.as_mut().poll(cx);
        if outcome.is_ready() {
            self.0 = None;
        }
        outcome
    }
}

/// The guest's response body, which also drives the guest while it writes
/// that body; when the body ends with the guest still running, the guest
/// finishes on a task of its own.
struct Driven {
    body: HyperOutgoingBody,
    guest: Running,
}

impl hyper::body::Body for Driven {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.guest.0.is_some() {
            let _ = std::pin::Pin::new(&mut self.guest).poll(cx);
        }
        let frame = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = frame {
            self.guest.detach();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Counts the guest tasks still running, so that shutdown can wait for them.
#[derive(Default)]
struct InFlight(Arc<(AtomicUsize, Notify)>);

struct InFlightGuard(Arc<(AtomicUsize, Notify)>);

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.0.clone())
    }

    async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest dropped before it finished (its response sent, or its
    /// client gone) finishes on a task of its own.
    #[tokio::test]
    async fn a_dropped_guest_runs_to_its_end() {
        let (finished, done) = oneshot::channel();
        let mut guest = Running(Some(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = finished.send(());
            None
        })));
        // Started, not finished.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut guest)
                .await
                .is_err()
        );
        drop(guest);
        let ran = tokio::time::timeout(Duration::from_secs(5), done).await;
        assert!(matches!(ran, Ok(Ok(()))), "{ran:?}");
    }
}
