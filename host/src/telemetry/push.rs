//! Pushing metrics and logs over OTLP, off the request path: one thread per
//! signal, with a runtime of its own, collects from its [`Source`] every
//! interval (and, for logs, as soon as a full batch is waiting) and sends what it got over gRPC (tonic, the generated
//! `opentelemetry-proto` clients) or HTTP/protobuf (hyper), one export at a
//! time, each bounded by the signal's timeout. A collector that is down
//! costs requests nothing: measurements keep aggregating (metrics) or are
//! bounded by their queue (logs); failures are said once, and once again
//! when delivery resumes, as for spans. At shutdown [`Pusher::flush`]
//! exports what is left.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message as _;
use tokio::sync::{Notify, mpsc};
use wasmtime::error::Context as _;

use super::config::{OtlpSettings, Protocol};

/// One export's contents.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Metric points.
    Metrics(ExportMetricsServiceRequest),
    /// Log records.
    Logs(ExportLogsServiceRequest),
}

/// Where a pusher gets what it exports.
pub trait Source: Send + Sync + 'static {
    /// What to export now, in one or more requests (none when there is
    /// nothing to send).
    fn collect(&self) -> Vec<Payload>;
    /// What it failed to send, when an export failed (logs count the
    /// records; metrics lose nothing, the next export carries the totals).
    fn undelivered(&self, _payload: &Payload) {}
    /// Signalled when there is a full batch to export before the interval
    /// is up (the log queue at `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`); `None`
    /// exports on the interval only.
    fn ready(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Where an export goes besides OTLP: printed on standard output.
pub type Print = Arc<dyn Fn(&Payload) + Send + Sync>;

/// OTLP request headers (`OTEL_EXPORTER_OTLP_*HEADERS`) as gRPC metadata,
/// for every signal's exporter; a name or value gRPC cannot carry is a
/// start-up error naming the header.
pub(super) fn grpc_metadata(
    headers: &[(String, String)],
) -> wasmtime::Result<tonic::metadata::MetadataMap> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (key, value) in headers {
        let name = tonic::metadata::MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("OTLP header name `{key}` is not valid gRPC metadata"))?;
        let value = value
            .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
            .with_context(|| {
                format!("OTLP header `{key}` has a value that is not valid gRPC metadata")
            })?;
        metadata.insert(name, value);
    }
    Ok(metadata)
}

/// A signal's OTLP destination, checked at start-up.
#[derive(Debug, Clone)]
pub struct Destination {
    settings: OtlpSettings,
    metadata: tonic::metadata::MetadataMap,
}

impl Destination {
    /// `settings`, with its headers checked as gRPC metadata.
    pub fn new(settings: OtlpSettings) -> wasmtime::Result<Destination> {
        let metadata = grpc_metadata(&settings.headers)?;
        let uri = settings
            .endpoint
            .parse::<hyper::Uri>()
            .with_context(|| format!("invalid OTLP endpoint `{}`", settings.endpoint))?;
        if settings.protocol == Protocol::HttpProtobuf && uri.scheme_str() != Some("http") {
            wasmtime::bail!(
                "OTLP/HTTP endpoint `{}`: only http:// is supported for metrics and logs",
                settings.endpoint
            );
        }
        Ok(Destination { settings, metadata })
    }
}

/// A running pusher: its thread exports every interval until flushed.
pub struct Pusher {
    commands: mpsc::UnboundedSender<std::sync::mpsc::SyncSender<()>>,
}

impl Pusher {
    /// Starts the thread exporting `signal` ("metrics", "logs") from
    /// `source` every `interval` to `otlp` (when given) and `print` (when
    /// given).
    pub fn start(
        signal: &'static str,
        interval: Duration,
        source: Arc<dyn Source>,
        otlp: Option<Destination>,
        print: Option<Print>,
    ) -> wasmtime::Result<Pusher> {
        let (commands, mut received) = mpsc::unbounded_channel::<std::sync::mpsc::SyncSender<()>>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("cannot start the {signal} exporter's runtime"))?;
        std::thread::Builder::new()
            .name(format!("{signal}-export"))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut sender = otlp.map(|destination| Sender::new(signal, destination));
                    let mut ticks = tokio::time::interval(interval);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks.tick().await;
                    let export = async |sender: &mut Option<Sender>| {
                        for payload in source.collect() {
                            if let Some(print) = &print {
                                print(&payload);
                            }
                            if let Some(sender) = sender
                                && !sender.send(&payload).await
                            {
                                source.undelivered(&payload);
                            }
                        }
                    };
                    let ready = source.ready().unwrap_or_default();
                    loop {
                        tokio::select! {
                            _ = ticks.tick() => export(&mut sender).await,
                            () = ready.notified() => {
                                export(&mut sender).await;
                                // The delay runs between two exports.
                                ticks.reset();
                            }
                            command = received.recv() => {
                                export(&mut sender).await;
                                if let Some(done) = command {
                                    let _ = done.send(());
                                }
                                return;
                            }
                        }
                    }
                });
            })
            .with_context(|| format!("cannot start the {signal} exporter's thread"))?;
        Ok(Pusher { commands })
    }

    /// Exports what is left and stops; gives up after `timeout`. Blocks.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, finished) = std::sync::mpsc::sync_channel(1);
        if self.commands.send(done).is_err() {
            return false;
        }
        finished.recv_timeout(timeout).is_ok()
    }
}

/// Sends exports to one OTLP destination and says when delivery fails and
/// resumes.
struct Sender {
    signal: &'static str,
    destination: Destination,
    grpc: Option<tonic::transport::Channel>,
    failing: bool,
}

impl Sender {
    fn new(signal: &'static str, destination: Destination) -> Sender {
        let grpc = match destination.settings.protocol {
            Protocol::Grpc => {
                tonic::transport::Endpoint::from_shared(destination.settings.endpoint.clone())
                    .ok()
                    .map(|endpoint| {
                        endpoint
                            .connect_timeout(destination.settings.timeout)
                            .timeout(destination.settings.timeout)
                            .connect_lazy()
                    })
            }
            Protocol::HttpProtobuf => None,
        };
        Sender {
            signal,
            destination,
            grpc,
            failing: false,
        }
    }

    /// Sends `payload`; whether it was delivered.
    async fn send(&mut self, payload: &Payload) -> bool {
        let timeout = self.destination.settings.timeout;
        let result = match tokio::time::timeout(timeout, self.try_send(payload)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        let endpoint = &self.destination.settings.endpoint;
        match result {
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    eprintln!(
                        "warning: {} export to `{endpoint}` is failing: {error}. Requests are \
                         still served. A line follows when it works again.",
                        self.signal
                    );
                }
                false
            }
            Ok(()) => {
                if std::mem::replace(&mut self.failing, false) {
                    eprintln!("{} export to `{endpoint}` works again", self.signal);
                }
                true
            }
        }
    }

    async fn try_send(&self, payload: &Payload) -> Result<(), String> {
        match &self.grpc {
            Some(channel) => self.send_grpc(channel.clone(), payload).await,
            None => self.send_http(payload).await,
        }
    }

    async fn send_grpc(
        &self,
        channel: tonic::transport::Channel,
        payload: &Payload,
    ) -> Result<(), String> {
        let metadata = &self.destination.metadata;
        match payload {
            Payload::Metrics(message) => MetricsServiceClient::new(channel)
                .export(with_metadata(metadata, message.clone()))
                .await
                .map(drop),
            Payload::Logs(message) => LogsServiceClient::new(channel)
                .export(with_metadata(metadata, message.clone()))
                .await
                .map(drop),
        }
        .map_err(|status| format!("{}: {}", status.code(), status.message()))
    }

    async fn send_http(&self, payload: &Payload) -> Result<(), String> {
        let uri: hyper::Uri = self
            .destination
            .settings
            .endpoint
            .parse()
            .map_err(|e| format!("{e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| "the endpoint has no host".to_string())?
            .clone();
        let stream =
            tokio::net::TcpStream::connect((authority.host(), authority.port_u16().unwrap_or(80)))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let body = match payload {
            Payload::Metrics(message) => message.encode_to_vec(),
            Payload::Logs(message) => message.encode_to_vec(),
        };
        let mut request = hyper::Request::post(
            uri.path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string(),
        )
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/x-protobuf");
        for (key, value) in &self.destination.settings.headers {
            request = request.header(key.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the reply whole so that the connection closes cleanly.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

/// `message` as a gRPC request carrying `metadata` (the OTLP headers).
fn with_metadata<T>(metadata: &tonic::metadata::MetadataMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request
}
