//! Test harness: a real OTLP/gRPC receiver, real host processes serving the
//! real components, and a small HTTP client over loopback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, metric,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// How long a test waits for spans or a process before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One span as received, with the `service.name` of its resource.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope's name and version.
    pub scope: (String, String),
    pub span: Span,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    pub fn attr(&self, key: &str) -> Option<any_value::Value> {
        attr(&self.span.attributes, key)
    }
    pub fn str_attr(&self, key: &str) -> Option<String> {
        match self.attr(key)? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            any_value::Value::IntValue(n) => Some(n),
            _ => None,
        }
    }
    pub fn float_attr(&self, key: &str) -> Option<f64> {
        match self.attr(key)? {
            any_value::Value::DoubleValue(n) => Some(n),
            _ => None,
        }
    }
    /// The status code (0 unset, 1 ok, 2 error) and message.
    pub fn status(&self) -> (i32, String) {
        let status = self.span.status.clone().unwrap_or_default();
        (status.code, status.message)
    }
    pub fn event(&self, name: &str) -> Option<&opentelemetry_proto::tonic::trace::v1::span::Event> {
        self.span.events.iter().find(|e| e.name == name)
    }
}

pub fn attr(attributes: &[KeyValue], key: &str) -> Option<any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v: AnyValue| v.value)
}

pub fn str_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attr(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub const SPAN_KIND_INTERNAL: i32 = 1;
pub const SPAN_KIND_SERVER: i32 = 2;
pub const SPAN_KIND_CLIENT: i32 = 3;
pub const STATUS_UNSET: i32 = 0;
pub const STATUS_ERROR: i32 = 2;

/// One log record as received, with the `service.name` of its resource
/// and its scope's name.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    pub service: String,
    pub scope: String,
    pub record: LogRecord,
}

impl ReceivedLog {
    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }
    pub fn body(&self) -> String {
        match self.record.body.clone().and_then(|b| b.value) {
            Some(any_value::Value::StringValue(s)) => s,
            other => format!("{other:?}"),
        }
    }
    pub fn str_attr(&self, key: &str) -> Option<String> {
        str_of(&self.record.attributes, key)
    }
}

/// A real OTLP receiver on 127.0.0.1 (traces, metrics and logs; gRPC, or
/// HTTP/protobuf with [`Receiver::start_http`]).
#[derive(Clone, Default)]
pub struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    /// Every metrics export, in the order received.
    pub metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    logs: Arc<Mutex<Vec<ReceivedLog>>>,
    /// The request headers (gRPC metadata) of every export.
    pub headers: Arc<Mutex<Vec<hyper::HeaderMap>>>,
    /// Every export of every signal: the signal (`traces`, `metrics`,
    /// `logs`) and its request headers (`grpc-encoding`,
    /// `content-encoding`: how its body came).
    pub exports: Arc<Mutex<Vec<(&'static str, hyper::HeaderMap)>>>,
    /// Connections accepted by the OTLP/HTTP receiver.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// While set, every export is refused with `UNAVAILABLE`.
    pub unavailable: Arc<std::sync::atomic::AtomicBool>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver is unavailable (test)"));
        }
        let headers = request.metadata().clone().into_headers();
        self.exports
            .lock()
            .unwrap()
            .push(("traces", headers.clone()));
        self.headers.lock().unwrap().push(headers);
        self.record(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver is unavailable (test)"));
        }
        let headers = request.metadata().clone().into_headers();
        self.exports.lock().unwrap().push(("metrics", headers));
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("receiver is unavailable (test)"));
        }
        let headers = request.metadata().clone().into_headers();
        self.exports.lock().unwrap().push(("logs", headers));
        self.record_logs(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The last cumulative value of one metric of one service, as received.
#[derive(Debug, Clone)]
pub enum Points {
    Histogram(Vec<HistogramDataPoint>),
    Exponential(Vec<ExponentialHistogramDataPoint>),
    Sum(Vec<NumberDataPoint>),
}

impl Receiver {
    /// Stores the log records of one export request.
    pub fn record_logs(&self, request: ExportLogsServiceRequest) {
        let mut logs = self.logs.lock().unwrap();
        for resource_logs in request.resource_logs {
            let resource = resource_logs
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = str_of(&resource, "service.name").unwrap_or_default();
            for scope_logs in resource_logs.scope_logs {
                let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
                for record in scope_logs.log_records {
                    logs.push(ReceivedLog {
                        service: service.clone(),
                        scope: scope.clone(),
                        record,
                    });
                }
            }
        }
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.logs.lock().unwrap().clone()
    }

    /// The points of metric `name` of `service` in the last export that
    /// has it (cumulative: the totals so far).
    pub fn last_points(&self, service: &str, name: &str) -> Option<Points> {
        let exports = self.metrics.lock().unwrap();
        for export in exports.iter().rev() {
            for resource in &export.resource_metrics {
                let attributes = resource
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                if str_of(&attributes, "service.name").as_deref() != Some(service) {
                    continue;
                }
                for scope in &resource.scope_metrics {
                    for metric in &scope.metrics {
                        if metric.name != name {
                            continue;
                        }
                        return match metric.data.clone() {
                            Some(metric::Data::Histogram(h)) => {
                                Some(Points::Histogram(h.data_points))
                            }
                            Some(metric::Data::ExponentialHistogram(h)) => {
                                Some(Points::Exponential(h.data_points))
                            }
                            Some(metric::Data::Sum(s)) => Some(Points::Sum(s.data_points)),
                            _ => None,
                        };
                    }
                }
            }
        }
        None
    }

    /// [`Receiver::last_points`] of a histogram.
    pub fn histogram(&self, service: &str, name: &str) -> Vec<HistogramDataPoint> {
        match self.last_points(service, name) {
            Some(Points::Histogram(points)) => points,
            other => panic!("no histogram `{name}` of {service}: {other:?}"),
        }
    }

    /// [`Receiver::last_points`] of an exponential histogram.
    pub fn exponential(&self, service: &str, name: &str) -> Vec<ExponentialHistogramDataPoint> {
        match self.last_points(service, name) {
            Some(Points::Exponential(points)) => points,
            other => panic!("no exponential histogram `{name}` of {service}: {other:?}"),
        }
    }

    /// [`Receiver::last_points`] of a sum: each point's attributes and value.
    pub fn sum(&self, service: &str, name: &str) -> Vec<(Vec<KeyValue>, i64)> {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
        match self.last_points(service, name) {
            Some(Points::Sum(points)) => points
                .into_iter()
                .map(|p| {
                    let value = match p.value {
                        Some(Value::AsInt(n)) => n,
                        other => panic!("not an int: {other:?}"),
                    };
                    (p.attributes, value)
                })
                .collect(),
            None => Vec::new(),
            other => panic!("`{name}` of {service} is not a sum: {other:?}"),
        }
    }

    /// Stores the spans of one export request.
    pub fn record(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = str_of(&resource, "service.name").unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                let scope = scope_spans
                    .scope
                    .map(|scope| (scope.name, scope.version))
                    .unwrap_or_default();
                for span in scope_spans.spans {
                    spans.push(Received {
                        service: service.clone(),
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span,
                    });
                }
            }
        }
    }

    /// Starts a receiver; returns it and its endpoint URL.
    pub async fn start() -> (Receiver, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::start_on(listener, Receiver::default()).await
    }

    /// Starts serving `receiver` on `listener` (to bring a receiver back on
    /// the port it had).
    pub async fn start_on(listener: TcpListener, receiver: Receiver) -> (Receiver, String) {
        Receiver::serve_grpc(listener, receiver, None).await
    }

    /// Serves `receiver` over gRPC on `listener`, with TLS when `tls` is
    /// given (the endpoint is then `https://`); gzip-compressed exports are
    /// accepted.
    pub async fn serve_grpc(
        listener: TcpListener,
        receiver: Receiver,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> (Receiver, String) {
        use tonic::codec::CompressionEncoding::Gzip;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(receiver.clone()).accept_compressed(Gzip);
        let metrics = MetricsServiceServer::new(receiver.clone()).accept_compressed(Gzip);
        let logs = LogsServiceServer::new(receiver.clone()).accept_compressed(Gzip);
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).unwrap();
        }
        tokio::spawn(async move {
            server
                .add_service(service)
                .add_service(metrics)
                .add_service(logs)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        (receiver, endpoint)
    }

    /// Starts an OTLP/HTTP (protobuf) receiver; returns it and its base URL
    /// (the exporters append `/v1/traces`, `/v1/metrics`, `/v1/logs`).
    pub async fn start_http() -> (Receiver, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve_http(listener, None).await
    }

    /// Serves a new receiver over OTLP/HTTP on `listener`, with TLS when
    /// `tls` is given (the base URL is then `https://`); a body with
    /// `content-encoding: gzip` is decompressed.
    pub async fn serve_http(
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> (Receiver, String) {
        use prost::Message as _;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        let receiver = Receiver::default();
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let receiver = serving.clone();
                receiver
                    .connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let receiver = receiver.clone();
                        async move {
                            let path = request.uri().path().to_string();
                            let ok = request.headers().get("content-type").map(|v| v.as_bytes())
                                == Some(b"application/x-protobuf");
                            let headers = request.headers().clone();
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let body = match headers.get("content-encoding") {
                                Some(encoding) if encoding == "gzip" => {
                                    use std::io::Read as _;
                                    let mut decoded = Vec::new();
                                    flate2::read::GzDecoder::new(&body[..])
                                        .read_to_end(&mut decoded)
                                        .unwrap();
                                    Bytes::from(decoded)
                                }
                                _ => body,
                            };
                            let signal = match path.as_str() {
                                "/v1/traces" => "traces",
                                "/v1/metrics" => "metrics",
                                _ => "logs",
                            };
                            receiver
                                .exports
                                .lock()
                                .unwrap()
                                .push((signal, headers.clone()));
                            let status = match (ok, path.as_str()) {
                                (false, _) => 400,
                                (true, "/v1/traces") => {
                                    match ExportTraceServiceRequest::decode(body) {
                                        Ok(export) => {
                                            receiver.headers.lock().unwrap().push(headers);
                                            receiver.record(export);
                                            200
                                        }
                                        Err(_) => 400,
                                    }
                                }
                                (true, "/v1/metrics") => {
                                    match ExportMetricsServiceRequest::decode(body) {
                                        Ok(export) => {
                                            receiver.metrics.lock().unwrap().push(export);
                                            200
                                        }
                                        Err(_) => 400,
                                    }
                                }
                                (true, "/v1/logs") => {
                                    match ExportLogsServiceRequest::decode(body) {
                                        Ok(export) => {
                                            receiver.record_logs(export);
                                            200
                                        }
                                        Err(_) => 400,
                                    }
                                }
                                _ => 404,
                            };
                            let reply = ExportTraceServiceResponse::default().encode_to_vec();
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::from(reply)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let tls = tls.clone();
                tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        }
                        // A refused handshake (no client certificate) ends
                        // the connection, as a collector's would.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        (receiver, base)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until trace `trace_id` has at least `count` spans and returns
    /// them; then waits a little more and checks no extra span arrives.
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let spans: Vec<Received> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id() == trace_id)
                .collect();
            if spans.len() >= count {
                // Batches arrive every 100 ms in tests: a stray span would
                // show up within a few of them.
                tokio::time::sleep(Duration::from_millis(400)).await;
                let spans: Vec<Received> = self
                    .spans()
                    .into_iter()
                    .filter(|s| s.trace_id() == trace_id)
                    .collect();
                assert_eq!(
                    spans.len(),
                    count,
                    "trace {trace_id}: expected {count} spans, got {:#?}",
                    names(&spans)
                );
                return spans;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "trace {trace_id}: expected {count} spans, got {:?} after {PATIENCE:?}",
                names(&spans)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn names(spans: &[Received]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{}:{}", s.service, s.span.name))
        .collect()
}

/// Finds the one span named `name` of `service`.
pub fn find<'a>(spans: &'a [Received], service: &str, name: &str) -> &'a Received {
    let matching: Vec<&Received> = spans
        .iter()
        .filter(|s| s.service == service && s.span.name == name)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one `{name}` span from {service}, got {:?}",
        names(spans)
    );
    matching[0]
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The path of a built component, such as `order`.
pub fn component(name: &str) -> PathBuf {
    let path = target_dir().join(format!("wasm32-wasip2/release/{name}.wasm"));
    assert!(
        path.is_file(),
        "component `{}` not built: run `cargo xtask build` first (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// A host process serving one component.
pub struct Host {
    pub child: Child,
    /// The address of the first (or only) component.
    pub addr: String,
    /// Every component's address, by service name.
    pub addrs: HashMap<String, String>,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

/// Options for [`Host::start`].
#[derive(Default, Clone)]
pub struct HostOptions {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Host {
    /// Starts `host <component> --port 0` exporting to `endpoint`, and waits
    /// until it listens.
    pub async fn start(component: &str, endpoint: &str, options: HostOptions) -> Host {
        let mut args = vec![
            self::component(component).display().to_string(),
            "--port".into(),
            "0".into(),
        ];
        args.extend(options.args.iter().cloned());
        Host::start_with(&args, 1, endpoint, &options.env).await
    }

    /// A `host` command with `args`, exporting to `endpoint` with test-speed
    /// batching, and `env` on top.
    pub fn command(args: &[String], endpoint: &str, env: &[(String, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
        command
            .args(args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            // Compiled components are cached beside the build, not in the
            // user's cache: every test after the first starts in milliseconds.
            .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
            .env("NO_COLOR", "1");
        for key in [
            "OTEL_SERVICE_NAME",
            "OTEL_RESOURCE_ATTRIBUTES",
            "OTEL_TRACES_EXPORTER",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_SDK_DISABLED",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_PROPAGATORS",
            "OTEL_METRICS_EXPORTER",
            "OTEL_METRIC_EXPORT_INTERVAL",
            "OTEL_LOGS_EXPORTER",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_INSECURE",
            "OTEL_METRIC_EXPORT_TIMEOUT",
            "OTEL_METRICS_EXEMPLAR_FILTER",
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_SPAN_LINK_COUNT_LIMIT",
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
        ] {
            command.env_remove(key);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// Starts `host ARGS…` and waits until `listeners` components listen.
    pub async fn start_with(
        args: &[String],
        listeners: usize,
        endpoint: &str,
        env: &[(String, String)],
    ) -> Host {
        Host::spawn(Host::command(args, endpoint, env), listeners).await
    }

    /// [`Host::start`] for a component that takes long to compile (the
    /// Python one is 18 MB of wasm), waiting up to `patience` for it.
    pub async fn start_patiently(
        component: &str,
        endpoint: &str,
        options: HostOptions,
        patience: Duration,
    ) -> Host {
        let mut args = vec![
            self::component(component).display().to_string(),
            "--port".into(),
            "0".into(),
        ];
        args.extend(options.args.iter().cloned());
        Host::spawn_patiently(Host::command(&args, endpoint, &options.env), 1, patience).await
    }

    /// Runs `command` (a host, possibly wrapped) and waits until `listeners`
    /// components listen.
    pub async fn spawn(command: Command, listeners: usize) -> Host {
        Host::spawn_patiently(command, listeners, PATIENCE).await
    }

    /// [`Host::spawn`], waiting up to `patience` for the listeners.
    pub async fn spawn_patiently(command: Command, listeners: usize, patience: Duration) -> Host {
        match Host::try_spawn(command, listeners, patience).await {
            Ok(host) => host,
            Err(stderr) => panic!("host exited before listening: {stderr}"),
        }
    }

    /// [`Host::spawn_patiently`], or the host's stderr when it exited
    /// before listening.
    pub async fn try_spawn(
        mut command: Command,
        listeners: usize,
        patience: Duration,
    ) -> Result<Host, String> {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("host binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("[host stderr] {line}");
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = HashMap::new();
        let mut first = None;
        let listening = tokio::time::timeout(patience, async {
            while addrs.len() < listeners {
                let Some(line) = lines.next_line().await.unwrap() else {
                    // Its stderr is read on another task: give it a moment
                    // to take the last lines.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Err(stderr.lock().unwrap().clone());
                };
                stdout.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some((_, addr)) = line.split_once("listening on http://") {
                    let name = line.split(' ').next().unwrap().to_string();
                    first.get_or_insert_with(|| addr.trim().to_string());
                    addrs.insert(name, addr.trim().to_string());
                }
            }
            Ok(())
        })
        .await
        .expect("host listens in time");
        listening?;
        let sink = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[host stdout] {line}");
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Ok(Host {
            child,
            addr: first.unwrap(),
            addrs,
            stdout,
            stderr,
        })
    }

    /// Waits until the host's standard output contains `text`.
    pub async fn wait_for_stdout(&self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if out.contains(text) {
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stdout never showed `{text}`:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("host exits after SIGTERM")
            .unwrap()
    }
}

/// A response, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one HTTP/1.1 request over a fresh loopback connection.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send_bytes(method, url, headers, body.as_bytes()).await
}

/// [`send`] with any bytes as the body; `content-type: application/json` is
/// added to a non-empty body unless `headers` name one.
pub async fn send_bytes(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let stream = TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority);
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        request = request.header("content-type", "application/json");
    }
    for (key, value) in headers {
        request = request.header(*key, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Indexes spans by span id.
pub fn by_id(spans: &[Received]) -> HashMap<String, &Received> {
    spans.iter().map(|s| (s.span_id(), s)).collect()
}

pub const VALID_ORDER: &str =
    r#"{"customer_id":"cust-42","item":"widget","quantity":3,"amount":59.97}"#;
pub const FRAUD_ORDER: &str =
    r#"{"customer_id":"cust-666","item":"yacht","quantity":1,"amount":25000.0}"#;
pub const INVALID_ORDER: &str =
    r#"{"customer_id":"cust-42","item":"widget","quantity":0,"amount":59.97}"#;

/// A port that was free a moment ago (for commands that need it up front).
pub async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Both services in one process (`host order.wasm:P payment.wasm:Q`), as
/// the one-command mode runs them: order calls payment (the origin it
/// declares, and nothing else),
/// spans go to `endpoint`, with `extra_env` and `extra_args` added.
///
/// The ports are picked before the host binds them (order must be told
/// payment's), so another test can take one in between: that start is
/// tried again on new ports, a few times.
pub async fn one_process(endpoint: &str, extra_env: &[(&str, &str)], extra_args: &[&str]) -> Host {
    let env: Vec<(String, String)> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut tries = 0;
    loop {
        let (order_port, payment_port) = (free_port().await, free_port().await);
        let mut list = vec![
            format!("{}:{order_port}", component("order").display()),
            format!("{}:{payment_port}", component("payment").display()),
            "--env".to_string(),
            format!("PAYMENT_URL=http://127.0.0.1:{payment_port}"),
        ];
        list.extend(extra_args.iter().map(|s| s.to_string()));
        match Host::try_spawn(Host::command(&list, endpoint, &env), 2, PATIENCE).await {
            Ok(host) => return host,
            Err(stderr) if stderr.contains("Address already in use") && tries < 5 => tries += 1,
            Err(stderr) => panic!("host exited before listening: {stderr}"),
        }
    }
}

/// A server that accepts connections and never answers (it holds them open
/// for the rest of the test): a hanging collector or service. Returns its URL.
pub async fn silent_server() -> String {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    endpoint
}

/// An HTTP server that records the headers of every request it gets and
/// answers 200 `{}`: what left the host, exactly.
#[derive(Clone, Default)]
pub struct Recorder {
    pub requests: Arc<Mutex<Vec<hyper::HeaderMap>>>,
}

impl Recorder {
    /// Starts a recorder; returns it and its URL.
    pub async fn start() -> (Recorder, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let recorder = Recorder::default();
        let serving = recorder.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorder = serving.clone();
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let recorder = recorder.clone();
                        async move {
                            recorder
                                .requests
                                .lock()
                                .unwrap()
                                .push(request.headers().clone());
                            let _ = request.into_body().collect().await;
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"{}"),
                            )))
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (recorder, url)
    }

    /// The headers of every request so far.
    pub fn headers(&self) -> Vec<hyper::HeaderMap> {
        self.requests.lock().unwrap().clone()
    }
}

/// A response read off a plain blocking socket (see [`write_whole_then_read`]).
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A blocking loopback connection that gives up on any read or write after
/// [`PATIENCE`], so that a hang fails the test instead of stalling it.
pub fn blocking_connect(addr: &str) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends `head` (request line and headers, ending in the blank line) and
/// then all of `body` before reading anything, as Python's `urllib` and
/// `requests` do, then reads the final response (skipping any `100
/// Continue`). Blocking std sockets, like theirs. An `Err` is what such a
/// client's user sees: a broken pipe or a reset instead of the response.
pub fn write_whole_then_read(addr: &str, head: &str, body: &[u8]) -> std::io::Result<RawReply> {
    use std::io::Write;
    let mut stream = blocking_connect(addr);
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let reply = read_response(&mut reader)?;
        if reply.status != 100 {
            return Ok(reply);
        }
    }
}

/// Sends `head` (which carries `Expect: 100-continue`) and waits, as curl
/// does: on `100 Continue` sends `body` and reads the final response; on a
/// final response sends nothing and returns it.
pub fn expect_continue_then_send(addr: &str, head: &str, body: &[u8]) -> std::io::Result<RawReply> {
    use std::io::Write;
    let mut stream = blocking_connect(addr);
    stream.write_all(head.as_bytes())?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let first = read_response(&mut reader)?;
    if first.status != 100 {
        return Ok(first);
    }
    stream.write_all(body)?;
    read_response(&mut reader)
}

/// Reads one HTTP/1.1 response: status line, headers, and a body of its
/// `Content-Length` (the host's responses always have one).
pub fn read_response(reader: &mut impl std::io::BufRead) -> std::io::Result<RawReply> {
    use std::io::{Error, ErrorKind};
    let mut line = String::new();
    let mut next_line = |reader: &mut dyn std::io::BufRead| -> std::io::Result<String> {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed before a whole response",
            ));
        }
        Ok(line.trim_end().to_string())
    };
    let status_line = next_line(reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, status_line.clone()))?;
    let mut headers = Vec::new();
    loop {
        let header = next_line(reader)?;
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(RawReply {
        status,
        headers,
        body,
    })
}

/// `body` in HTTP/1.1 chunked encoding, `chunk` bytes a chunk.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(body.len() + body.len() / chunk * 8 + 8);
    for piece in body.chunks(chunk) {
        encoded.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        encoded.extend_from_slice(piece);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    encoded
}
