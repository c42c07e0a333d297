//! The OpenTelemetry SDK the host owns: one tracer provider per served
//! service (each with its own resource), all sharing the process's
//! configuration, exporters' delivery reporting, terminal view and traces
//! file, and shut down together.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use wasmtime::error::Context as _;

use super::config::{self, Compression, Exporter, OtelConfig, Protocol};
use super::console::Console;
use super::delivery::{Reporter, report_drops};
use super::explorer::Explorer;
use super::export_queue::{self, QueueStats};
use super::log_queue::Logs;
use super::logs::ServiceLogs;
use super::metrics::{Metrics, ServiceMetrics};
use super::push::{Destination, Payload, Print, Pusher};
use super::semconv;
use super::tracer::{HOST_SCOPE, Ids, ServiceTracer};
use super::traces_file::TracesFile;
use super::transport::{self, SpanHttpClient, Tls};
use crate::propagation::{Propagator, PropagatorName};

/// How long shutdown may take to flush the last spans of each service.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a service's spans say they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceIdentity {
    /// `service.name`.
    pub name: String,
    /// `service.version`, when known.
    pub version: Option<String>,
    /// The component's source language (`rust`, `python`, …), when it says:
    /// the resource attribute [`semconv::WASM_COMPONENT_LANGUAGE`].
    pub language: Option<String>,
}

/// Chooses a service's name the way OpenTelemetry users expect: the
/// `--service-name` flag, else `OTEL_SERVICE_NAME`, else `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, else what the component declares, else the
/// component's file name.
pub fn service_name(
    flag: Option<&str>,
    config: &OtelConfig,
    declared: Option<&str>,
    file_stem: &str,
) -> String {
    flag.or_else(|| config.env_service_name())
        .or(declared)
        .unwrap_or(file_stem)
        .to_string()
}

/// The process's telemetry.
pub struct Telemetry {
    config: OtelConfig,
    console: Option<Arc<Console>>,
    traces_file: Option<TracesFile>,
    /// Shared by every service's OTLP exporter, so that "spans are not
    /// reaching the collector" is said once per process, not per service.
    failing: Arc<AtomicBool>,
    /// Spans whose export failed, over the process's life.
    undelivered: Arc<AtomicU64>,
    /// Spans through every service's OTLP export queue: what it dropped
    /// when full is reported every [`DROP_REPORT_INTERVAL`] and at shutdown.
    queue: Arc<QueueStats>,
    providers: Mutex<Vec<(String, SdkTracerProvider)>>,
    propagator: Arc<Propagator>,
    /// `--ui`: the explorer every provider feeds in process.
    explorer: Option<Explorer>,
    /// Every service's instruments, when metrics are exported.
    metrics: Option<Arc<Metrics>>,
    /// Exports `metrics` every `OTEL_METRIC_EXPORT_INTERVAL`.
    metrics_pusher: Option<Pusher>,
    /// Every service's log records, when logs are exported.
    logs: Option<Arc<Logs>>,
    /// Exports `logs` every `OTEL_BLRP_SCHEDULE_DELAY`.
    logs_pusher: Option<Pusher>,
    /// Each service's count of spans its export queue dropped, by service
    /// name: its processor counts, its `wasm.spans.dropped` reads.
    export_dropped: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// The spans' TLS, its files read once at start-up and shared by every
    /// service's exporter; `None` for an `http://` endpoint.
    span_tls: Option<Tls>,
    /// OTLP/HTTP: the client every service's span exporter sends through.
    span_http: Option<SpanHttpClient>,
}

impl Telemetry {
    /// Sets up what `config` asks for, and `--traces-file` when given;
    /// feeds every service's spans to `explorer` (`--ui`) in process, when
    /// given, skipping any OTLP exporter whose endpoint is the explorer's
    /// own receiver (see [`Explorer::receives`]): spans and the guests'
    /// log lines reach it in process, and it keeps no metrics.
    pub fn new(
        config: OtelConfig,
        traces_file: Option<&Path>,
        explorer: Option<Explorer>,
    ) -> wasmtime::Result<Telemetry> {
        let failing = Arc::new(AtomicBool::new(false));
        let console = if config.disabled {
            None
        } else if config.exporters.contains(&Exporter::Console) {
            Some(Console::stdout())
        } else if !config.exporters_chosen {
            // The default exporter: with no collector, the terminal view
            // takes over, so a machine without one still shows every trace.
            Some(Console::stdout_fallback(failing.clone()))
        } else {
            None
        };
        let traces_file = match traces_file {
            Some(path) if !config.disabled => Some(TracesFile::open(path)?),
            _ => None,
        };
        let propagator = Arc::new(if config.disabled {
            // Disabled: nothing of ours is added, but what came in goes on.
            Propagator::new(&[PropagatorName::TraceContext, PropagatorName::Baggage])
        } else {
            Propagator::new(&config.propagators)
        });
        let queue = Arc::new(QueueStats::default());
        let (mut span_tls, mut span_http) = (None, None);
        if !config.disabled && config.exporters.contains(&Exporter::Otlp) {
            let otlp = config.traces_otlp();
            span_tls = Tls::load(&otlp)?;
            if otlp.protocol == Protocol::HttpProtobuf {
                span_http = Some(SpanHttpClient::new(&otlp, span_tls.clone())?);
            }
            report_drops(Arc::downgrade(&queue), config.endpoint.clone())?;
        }
        let (metrics, metrics_pusher) = match start_metrics(&config, explorer.as_ref())? {
            Some((metrics, pusher)) => (Some(metrics), Some(pusher)),
            None => (None, None),
        };
        let (logs, logs_pusher) = match start_logs(&config, explorer.as_ref())? {
            Some((logs, pusher)) => (Some(logs), pusher),
            None => (None, None),
        };
        Ok(Telemetry {
            config,
            console,
            traces_file,
            failing,
            undelivered: Arc::new(AtomicU64::new(0)),
            queue,
            providers: Mutex::new(Vec::new()),
            propagator,
            explorer,
            metrics,
            metrics_pusher,
            logs,
            logs_pusher,
            export_dropped: Mutex::new(HashMap::new()),
            span_tls,
            span_http,
        })
    }

    /// The count of spans the export queue dropped for `service`.
    fn export_dropped(&self, service: &str) -> Arc<AtomicU64> {
        match self.export_dropped.lock() {
            Ok(mut counts) => counts.entry(service.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The log records' way in for `identity`'s service, under the same
    /// resource as its spans (counting what it drops in `metrics`); `None`
    /// when logs are off.
    pub fn logs(
        &self,
        identity: &ServiceIdentity,
        metrics: Option<&'static ServiceMetrics>,
    ) -> Option<&'static ServiceLogs> {
        let logs = self.logs.as_ref()?;
        // Leaked once, as the service's instruments are (see
        // `Metrics::service`): every request refers to it.
        Some(Box::leak(Box::new(ServiceLogs::new(
            identity.name.clone(),
            self.proto_resource(identity),
            logs.clone(),
            metrics,
            self.console.clone(),
            self.explorer.as_ref().map(Explorer::span_logs),
        ))))
    }

    /// `identity`'s resource, as OTLP carries it.
    fn proto_resource(
        &self,
        identity: &ServiceIdentity,
    ) -> opentelemetry_proto::tonic::resource::v1::Resource {
        let resource =
            opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema::from(
                &self.resource(identity),
            );
        opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: resource.attributes.0,
            ..Default::default()
        }
    }

    /// The instruments of `identity`'s service, under the same resource as
    /// its spans; `None` when metrics are off.
    pub fn metrics(&self, identity: &ServiceIdentity) -> Option<&'static ServiceMetrics> {
        let metrics = self.metrics.as_ref()?;
        Some(metrics.service(
            self.proto_resource(identity),
            self.export_dropped(&identity.name),
        ))
    }

    /// Whether the OTLP exporter is skipped: its endpoint is this process's
    /// own explorer, which gets the spans in process.
    fn exports_to_self(&self) -> bool {
        self.explorer
            .as_ref()
            .is_some_and(|e| e.receives(&self.config))
    }

    /// The configuration in effect.
    pub fn config(&self) -> &OtelConfig {
        &self.config
    }

    /// The propagator every service uses.
    pub fn propagator(&self) -> Arc<Propagator> {
        self.propagator.clone()
    }

    /// One line saying what is in effect, for start-up.
    pub fn summary(&self) -> String {
        let c = &self.config;
        if c.disabled {
            return "telemetry: disabled (OTEL_SDK_DISABLED=true): no spans, no exporters"
                .to_string();
        }
        let mut exporters: Vec<String> = c
            .exporters
            .iter()
            .map(|exporter| match exporter {
                Exporter::Otlp if self.exports_to_self() => {
                    format!("explorer (in process; {} is its own receiver)", c.endpoint)
                }
                Exporter::Otlp => format!(
                    "otlp ({} to {}{})",
                    c.protocol,
                    c.endpoint,
                    gzip_note(c.compression)
                ),
                Exporter::Console => "console (waterfall)".to_string(),
            })
            .collect();
        if !c.exporters_chosen && self.console.is_some() && !self.exports_to_self() {
            exporters.push("console while the collector is unreachable".to_string());
        }
        if let Some(file) = &self.traces_file {
            exporters.push(format!("file ({})", file.path().display()));
        }
        if exporters.is_empty() {
            exporters.push("none".to_string());
        }
        let propagators: Vec<&str> = c.propagators.iter().map(|p| p.as_str()).collect();
        format!(
            "telemetry: exporters {} · sampler {} · propagators {} · metrics {} · logs {}",
            exporters.join(", "),
            c.sampler,
            if propagators.is_empty() {
                "none".to_string()
            } else {
                propagators.join(",")
            },
            self.signal_summary(Signal::Metrics, &c.metrics.exporters, &c.metrics.otlp),
            self.signal_summary(Signal::Logs, &c.logs.exporters, &c.logs.otlp),
        )
    }

    /// A tracer for `identity`'s spans, with a provider of its own (the
    /// resource is per provider) feeding the process's exporters.
    pub fn tracer(&self, identity: &ServiceIdentity) -> wasmtime::Result<ServiceTracer> {
        if self.config.disabled {
            return Ok(ServiceTracer::Disabled);
        }
        let limits = self.config.limits;
        let mut builder = SdkTracerProvider::builder()
            .with_resource(self.resource(identity))
            .with_sampler(sampler(&self.config.sampler))
            .with_id_generator(Ids::default())
            .with_span_limits(opentelemetry_sdk::trace::SpanLimits {
                max_attributes_per_span: limits.attribute_count,
                max_events_per_span: limits.event_count,
                max_attributes_per_event: limits.event_attribute_count,
                max_links_per_span: limits.link_count,
                max_attributes_per_link: limits.link_attribute_count,
            });
        if let Some(explorer) = &self.explorer {
            builder = builder.with_span_processor(explorer.processor());
        }
        if self.config.exporters.contains(&Exporter::Otlp) && !self.exports_to_self() {
            let delivery = Reporter {
                endpoint: self.config.endpoint.clone(),
                failing: self.failing.clone(),
                undelivered: self.undelivered.clone(),
                fallback: self
                    .console
                    .clone()
                    .filter(|_| !self.config.exporters.contains(&Exporter::Console)),
                cause: self.span_http.as_ref().map(SpanHttpClient::last_error),
            };
            builder = builder.with_span_processor(export_queue::processor(
                self.otlp_exporter()?,
                self.queue.clone(),
                self.export_dropped(&identity.name),
                delivery,
                &self.config.batch,
            ));
        }
        if let Some(console) = &self.console {
            builder = builder.with_span_processor(console.processor(&identity.name));
        }
        if let Some(file) = &self.traces_file {
            builder =
                builder.with_span_processor(BatchSpanProcessor::builder(file.exporter()).build());
        }
        let provider = builder.build();
        let tracer = provider.tracer(HOST_SCOPE);
        if let Ok(mut providers) = self.providers.lock() {
            providers.push((identity.name.clone(), provider.clone()));
        }
        Ok(ServiceTracer::Sdk { tracer, provider })
    }

    /// A service's OTLP span exporter: over gRPC, on a channel built here
    /// (its endpoint and TLS the host's, so the SDK's own reading of
    /// `…_ENDPOINT` and `…_INSECURE` never applies), over HTTP, through the
    /// host's client; TLS and gzip as configured, the same as for metrics
    /// and logs.
    fn otlp_exporter(&self) -> wasmtime::Result<opentelemetry_otlp::SpanExporter> {
        let c = &self.config;
        let gzip = c.compression == Compression::Gzip;
        let built = match c.protocol {
            Protocol::Grpc => {
                let metadata = super::push::grpc_metadata(&c.headers)?;
                let channel = transport::grpc_endpoint(&c.traces_otlp(), self.span_tls.as_ref())?
                    .connect_lazy();
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_channel(channel)
                    .with_timeout(c.timeout)
                    .with_metadata(metadata);
                if gzip {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build()
            }
            Protocol::HttpProtobuf => {
                // Started with the OTLP exporter in `Telemetry::new`.
                let client = self
                    .span_http
                    .clone()
                    .context("the OTLP/HTTP span client was not started")?;
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(c.endpoint.clone())
                    .with_timeout(c.timeout)
                    .with_headers(c.headers.iter().cloned().collect::<HashMap<_, _>>());
                if gzip {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build()
            }
        };
        built.with_context(|| format!("failed to build the OTLP exporter for `{}`", c.endpoint))
    }

    /// `service.name`, `service.version`, the component's language, the
    /// `telemetry.sdk.*` attributes and `OTEL_RESOURCE_ATTRIBUTES`
    /// (percent-decoded).
    fn resource(&self, identity: &ServiceIdentity) -> Resource {
        let mut builder =
            Resource::builder_empty().with_detector(Box::new(TelemetryResourceDetector));
        builder = builder.with_attributes(
            self.config
                .resource_attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        );
        if let (Some(version), false) = (
            &identity.version,
            self.config
                .sets_resource_attribute(semconv::SERVICE_VERSION),
        ) {
            builder =
                builder.with_attribute(KeyValue::new(semconv::SERVICE_VERSION, version.clone()));
        }
        let language = semconv::WASM_COMPONENT_LANGUAGE;
        if let (Some(value), false) = (
            &identity.language,
            self.config.sets_resource_attribute(language),
        ) {
            builder = builder.with_attribute(KeyValue::new(language, value.clone()));
        }
        builder.with_service_name(identity.name.clone()).build()
    }

    /// Flushes the spans still queued and stops every exporter, each giving
    /// up after [`SHUTDOWN_TIMEOUT`]; says how many spans never reached the
    /// collector. Blocks: call it off the async workers.
    pub fn shutdown(&self) -> wasmtime::Result<()> {
        let flushed = self.flush_all();
        if let Some(pusher) = &self.metrics_pusher
            && !pusher.flush(SHUTDOWN_TIMEOUT)
        {
            eprintln!("warning: the last metrics were not exported within {SHUTDOWN_TIMEOUT:?}");
        }
        if let Some(pusher) = &self.logs_pusher
            && !pusher.flush(SHUTDOWN_TIMEOUT)
        {
            eprintln!("warning: the last logs were not exported within {SHUTDOWN_TIMEOUT:?}");
        }
        if let Some(logs) = &self.logs {
            let dropped = logs.dropped.load(Ordering::Relaxed);
            let undelivered = logs.undelivered.load(Ordering::Relaxed);
            if dropped + undelivered > 0 {
                eprintln!(
                    "warning: {dropped} log record(s) were dropped because the log queue was full \
                     (OTEL_BLRP_MAX_QUEUE_SIZE), {undelivered} could not be delivered to `{}`",
                    self.config.logs.otlp.endpoint
                );
            }
        }
        let dropped = self.queue.dropped();
        if dropped > 0 {
            eprintln!(
                "warning: {dropped} span(s) were dropped because the export queue was full \
                 (OTEL_BSP_MAX_QUEUE_SIZE): the collector at `{}` did not keep up",
                self.config.endpoint
            );
        }
        let undelivered = self.undelivered.load(Ordering::Relaxed);
        if undelivered > 0 {
            eprintln!(
                "warning: {undelivered} span(s) could not be delivered to the collector at `{}`",
                self.config.endpoint
            );
        }
        flushed
    }

    fn flush_all(&self) -> wasmtime::Result<()> {
        let providers = match self.providers.lock() {
            Ok(mut providers) => std::mem::take(&mut *providers),
            Err(_) => return Ok(()),
        };
        let mut failures = Vec::new();
        for (name, provider) in providers {
            if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                failures.push(format!("{name}: {error}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            wasmtime::bail!("failed to flush spans: {}", failures.join("; "))
        }
    }
}

/// A signal beside traces, for [`Telemetry::signal_summary`].
#[derive(Clone, Copy, PartialEq)]
enum Signal {
    Metrics,
    Logs,
}

impl Telemetry {
    /// Where a signal goes, in words: its OTLP destination only when it is not
    /// the spans' (over HTTP, the same base with the signal's own path).
    fn signal_summary(
        &self,
        signal: Signal,
        exporters: &[Exporter],
        otlp: &config::OtlpSettings,
    ) -> String {
        let c = &self.config;
        let base = |url: &str| {
            url.trim_end_matches("/v1/traces")
                .trim_end_matches("/v1/metrics")
                .trim_end_matches("/v1/logs")
                .to_string()
        };
        let same = otlp.protocol == c.protocol
            && otlp.compression == c.compression
            && base(&otlp.endpoint) == base(&c.endpoint);
        let named: Vec<String> = exporters
            .iter()
            .map(|exporter| match exporter {
                Exporter::Otlp if skipped(self.explorer.as_ref(), otlp) => match signal {
                    Signal::Logs => {
                        format!(
                            "explorer (in process; {} is its own receiver)",
                            otlp.endpoint
                        )
                    }
                    Signal::Metrics => format!(
                        "not exported ({} is the explorer's, which keeps no metrics)",
                        otlp.endpoint
                    ),
                },
                Exporter::Otlp if same => "otlp".to_string(),
                Exporter::Otlp => format!(
                    "otlp ({} to {}{})",
                    otlp.protocol,
                    otlp.endpoint,
                    gzip_note(otlp.compression)
                ),
                Exporter::Console => "console".to_string(),
            })
            .collect();
        if named.is_empty() {
            "none".to_string()
        } else {
            named.join(", ")
        }
    }
}

/// What the start-up line adds to an OTLP destination for its compression.
fn gzip_note(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => ", gzip",
        Compression::None => "",
    }
}

/// Whether a signal's OTLP export is skipped: its endpoint is this
/// process's own explorer, which has the guests' log lines in process and
/// keeps no metrics.
fn skipped(explorer: Option<&Explorer>, otlp: &config::OtlpSettings) -> bool {
    explorer.is_some_and(|e| e.receives_at(otlp.protocol, &otlp.endpoint))
}

/// The log queue and, for OTLP, its pusher, when `OTEL_LOGS_EXPORTER`
/// asks for any (`console` prints each record as it is written).
fn start_logs(
    config: &OtelConfig,
    explorer: Option<&Explorer>,
) -> wasmtime::Result<Option<(Arc<Logs>, Option<Pusher>)>> {
    let settings = &config.logs;
    if config.disabled || settings.exporters.is_empty() {
        return Ok(None);
    }
    let console = settings.exporters.contains(&Exporter::Console);
    let exports =
        settings.exporters.contains(&Exporter::Otlp) && !skipped(explorer, &settings.otlp);
    let logs = Arc::new(Logs::new(
        settings.max_queue_size,
        settings.max_export_batch_size,
        settings.limits,
        console,
        exports,
    ));
    if !exports {
        return Ok(Some((logs, None)));
    }
    let mut otlp = settings.otlp.clone();
    otlp.timeout = otlp.timeout.min(settings.export_timeout);
    let otlp = Destination::new(otlp)?;
    let pusher = Pusher::start(
        "logs",
        settings.schedule_delay,
        logs.clone(),
        Some(otlp),
        None,
    )?;
    Ok(Some((logs, Some(pusher))))
}

/// The metrics and their pusher, when `OTEL_METRICS_EXPORTER` asks for any.
fn start_metrics(
    config: &OtelConfig,
    explorer: Option<&Explorer>,
) -> wasmtime::Result<Option<(Arc<Metrics>, Pusher)>> {
    let settings = &config.metrics;
    if config.disabled || settings.exporters.is_empty() {
        return Ok(None);
    }
    let metrics = Arc::new(Metrics::new(settings));
    let otlp = if settings.exporters.contains(&Exporter::Otlp) && !skipped(explorer, &settings.otlp)
    {
        let mut otlp = settings.otlp.clone();
        otlp.timeout = otlp.timeout.min(settings.export_timeout);
        Some(Destination::new(otlp)?)
    } else {
        None
    };
    let print: Option<Print> = settings.exporters.contains(&Exporter::Console).then(|| {
        Arc::new(|payload: &Payload| {
            if let Payload::Metrics(export) = payload {
                for line in super::metrics::describe(export) {
                    println!("{line}");
                }
            }
        }) as Print
    });
    let pusher = Pusher::start("metrics", settings.interval, metrics.clone(), otlp, print)?;
    Ok(Some((metrics, pusher)))
}

fn sampler(sampler: &config::Sampler) -> opentelemetry_sdk::trace::Sampler {
    use config::{Root, Sampler as S};
    use opentelemetry_sdk::trace::Sampler;
    match *sampler {
        S::AlwaysOn => Sampler::AlwaysOn,
        S::AlwaysOff => Sampler::AlwaysOff,
        S::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        S::ParentBased(root) => Sampler::ParentBased(Box::new(match root {
            Root::AlwaysOn => Sampler::AlwaysOn,
            Root::AlwaysOff => Sampler::AlwaysOff,
            Root::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flag, then OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the
    /// component's declaration, then the file name.
    #[test]
    fn service_name_precedence() {
        let env = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            OtelConfig::from_env(move |key| {
                pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
            })
            .unwrap()
        };
        let declared = Some("order-api");
        let named = env(&[("OTEL_SERVICE_NAME", "env")]);
        assert_eq!(
            service_name(Some("flag"), &named, declared, "order"),
            "flag"
        );
        assert_eq!(service_name(None, &named, declared, "order"), "env");
        let attrs = env(&[("OTEL_RESOURCE_ATTRIBUTES", "a=b,service.name=res")]);
        assert_eq!(service_name(None, &attrs, declared, "order"), "res");
        assert_eq!(
            service_name(None, &env(&[]), declared, "order"),
            "order-api"
        );
        assert_eq!(service_name(None, &env(&[]), None, "order"), "order");
    }
}
