//! Pushing metrics and logs over OTLP, off the request path: one thread per
//! signal, with a runtime of its own, collects from its [`Source`] every
//! interval (and, for logs, as soon as a full batch is waiting) and sends
//! what it got over gRPC (tonic, the generated `opentelemetry-proto`
//! clients) or HTTP/protobuf (hyper), through `transport` (TLS for
//! `https://`, gzip when asked), one export at a
//! time, each bounded by the signal's timeout. A collector that is down
//! costs requests nothing: measurements keep aggregating (metrics) or are
//! bounded by their queue (logs); failures are said once, and once again
//! when delivery resumes, as for spans. At shutdown [`Pusher::flush`]
//! exports what is left.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message as _;
use tokio::sync::{Notify, mpsc};
use wasmtime::error::Context as _;

use super::config::{Compression, OtlpSettings, Protocol};
use super::log_queue::EncodedLogs;
use super::transport::{self, HttpConnection, Tls};
use super::wire::Encoded;

/// One export's contents.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Metric points.
    Metrics(ExportMetricsServiceRequest),
    /// Log records, encoded (see `logs`).
    Logs(EncodedLogs),
}

impl Payload {
    /// The log records it carries (none for metrics).
    pub fn log_records(&self) -> usize {
        match self {
            Payload::Metrics(_) => 0,
            Payload::Logs(export) => export.records,
        }
    }
}

/// Where a pusher gets what it exports.
pub trait Source: Send + Sync + 'static {
    /// What to export now, in one or more requests (none when there is
    /// nothing to send).
    fn collect(&self) -> Vec<Payload>;
    /// An export of `log_records` records failed (logs count them;
    /// metrics lose nothing, the next export carries the totals).
    fn undelivered(&self, _log_records: usize) {}
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
    /// The TLS of an `https://` endpoint, its files read at start-up.
    tls: Option<Tls>,
    /// Over gRPC, the endpoint (with its TLS) the channel connects to.
    grpc: Option<tonic::transport::Endpoint>,
}

impl Destination {
    /// `settings`, with its headers checked as gRPC metadata and its TLS
    /// files read.
    pub fn new(settings: OtlpSettings) -> wasmtime::Result<Destination> {
        let metadata = grpc_metadata(&settings.headers)?;
        settings
            .endpoint
            .parse::<hyper::Uri>()
            .with_context(|| format!("invalid OTLP endpoint `{}`", settings.endpoint))?;
        let tls = Tls::load(&settings)?;
        let grpc = match settings.protocol {
            Protocol::Grpc => Some(transport::grpc_endpoint(&settings, tls.as_ref())?),
            Protocol::HttpProtobuf => None,
        };
        Ok(Destination {
            settings,
            metadata,
            tls,
            grpc,
        })
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
                            // Counted before the payload is sent, which
                            // moves it: no copy of any export is made.
                            let records = payload.log_records();
                            if let Some(sender) = sender
                                && !sender.send(payload).await
                            {
                                source.undelivered(records);
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
    /// Over HTTP, the kept-alive connection.
    http: Option<HttpConnection>,
    failing: bool,
}

impl Sender {
    /// A sender to `destination`. Runs on the pusher's runtime: a gRPC
    /// channel spawns its connection there.
    fn new(signal: &'static str, destination: Destination) -> Sender {
        let grpc = destination
            .grpc
            .as_ref()
            .map(tonic::transport::Endpoint::connect_lazy);
        let http = match destination.settings.protocol {
            Protocol::HttpProtobuf => Some(HttpConnection::new(destination.tls.clone())),
            Protocol::Grpc => None,
        };
        Sender {
            signal,
            destination,
            grpc,
            http,
            failing: false,
        }
    }

    /// Sends `payload`; whether it was delivered.
    async fn send(&mut self, payload: Payload) -> bool {
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

    async fn try_send(&self, payload: Payload) -> Result<(), String> {
        match (&self.grpc, &self.http) {
            (Some(channel), _) => self.send_grpc(channel.clone(), payload).await,
            (None, Some(http)) => self.send_http(http, &payload).await,
            (None, None) => Err("no OTLP transport".to_string()),
        }
    }

    async fn send_grpc(
        &self,
        channel: tonic::transport::Channel,
        payload: Payload,
    ) -> Result<(), String> {
        let metadata = &self.destination.metadata;
        let gzip = self.destination.settings.compression == Compression::Gzip;
        match payload {
            Payload::Metrics(message) => {
                let mut client = MetricsServiceClient::new(channel);
                if gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                client
                    .export(with_metadata(metadata, message))
                    .await
                    .map(drop)
            }
            Payload::Logs(logs) => {
                // What the generated client's `export` does, with the
                // message already encoded.
                let mut grpc = tonic::client::Grpc::new(channel);
                if gzip {
                    grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                match grpc.ready().await {
                    Err(error) => Err(tonic::Status::unavailable(format!(
                        "the channel is not ready: {error}"
                    ))),
                    Ok(()) => {
                        let codec =
                            tonic_prost::ProstCodec::<Encoded, ExportLogsServiceResponse>::default(
                            );
                        let path = hyper::http::uri::PathAndQuery::from_static(
                            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                        );
                        let request = with_metadata(metadata, Encoded(logs.bytes));
                        grpc.unary(request, path, codec).await.map(drop)
                    }
                }
            }
        }
        .map_err(|status| {
            // The message alone can be "operation was canceled": the cause
            // (a TLS alert, a refused connection) is in the source.
            let mut text = format!("{}: {}", status.code(), status.message());
            if let Some(source) = std::error::Error::source(&status) {
                text.push_str(": ");
                text.push_str(&transport::error_chain(source));
            }
            text
        })
    }

    async fn send_http(&self, http: &HttpConnection, payload: &Payload) -> Result<(), String> {
        let settings = &self.destination.settings;
        let body = match payload {
            Payload::Metrics(message) => Bytes::from(message.encode_to_vec()),
            Payload::Logs(logs) => logs.bytes.clone(),
        };
        let mut request = hyper::Request::post(settings.endpoint.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/x-protobuf");
        let body = match settings.compression {
            Compression::Gzip => {
                request = request.header(hyper::header::CONTENT_ENCODING, "gzip");
                Bytes::from(transport::gzip(&body))
            }
            Compression::None => body,
        };
        for (key, value) in &settings.headers {
            request = request.header(key.as_str(), value.as_str());
        }
        let request = request.body(body).map_err(|e| e.to_string())?;
        let status = http.post(request).await?.status();
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
