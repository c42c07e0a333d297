//! The OpenTelemetry SDK the host owns: one tracer provider per served
//! service (each with its own resource), all sharing the process's
//! configuration, exporters' delivery reporting, terminal view and traces
//! file, and shut down together.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt,
    TraceFlags, TraceId, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider,
};
use wasmtime::error::Context as _;

use crate::config::{self, Exporter, OtelConfig, Protocol};
use crate::console::Console;
use crate::export_queue::{self, QueueStats};
use crate::propagation::{Propagator, RANDOM};
use crate::traces_file::TracesFile;

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
    /// the resource attribute [`crate::language::RESOURCE_ATTRIBUTE`].
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

/// Starts the host's spans; a no-op when the SDK is disabled.
#[derive(Clone, Debug)]
pub enum HostTracer {
    /// Spans are recorded and exported.
    Sdk {
        /// The host's own tracer (scope `wasm-otel-host`).
        tracer: SdkTracer,
        /// For the tracers of the scopes guests report spans in.
        provider: SdkTracerProvider,
    },
    /// `OTEL_SDK_DISABLED=true`: no span is created; the context passed in
    /// is passed on, so an incoming `traceparent` travels on unchanged.
    Disabled,
}

/// A span a guest created and ended itself and reported whole (through
/// `wasi:otel`): its ids, times and contents are the guest's.
pub struct ReportedSpan {
    /// Its trace and span id, sampled flag and `tracestate`.
    pub context: SpanContext,
    /// Its parent in the same trace; `None` for a root span.
    pub parent: Option<SpanId>,
    /// Its name, kind, start and end.
    pub name: String,
    /// See `name`.
    pub kind: SpanKind,
    /// See `name`.
    pub start: SystemTime,
    /// See `name`.
    pub end: SystemTime,
    /// What the guest recorded on it, within the attribute limits.
    pub attributes: Vec<KeyValue>,
    /// See `attributes`.
    pub events: Vec<Event>,
    /// See `attributes`.
    pub links: Vec<Link>,
    /// See `attributes`.
    pub status: Status,
    /// The library that produced it.
    pub scope: InstrumentationScope,
}

impl HostTracer {
    /// Starts `builder` as a child of `parent`; returns the context holding it.
    pub fn start(&self, builder: SpanBuilder, parent: &Context) -> Context {
        match self {
            HostTracer::Sdk { tracer, .. } => {
                let span = builder.start_with_context(tracer, parent);
                match RandomTrace::of(parent, &span) {
                    Some(context) => parent.with_span(RandomTrace { span, context }),
                    None => parent.with_span(span),
                }
            }
            HostTracer::Disabled => parent.clone(),
        }
    }

    /// Records `span` through the SDK, so it is sampled, limited, batched
    /// and exported like the host's own, with the guest's ids and times.
    pub fn record(&self, span: ReportedSpan) {
        let HostTracer::Sdk { provider, .. } = self else {
            return;
        };
        let tracer = provider.tracer_with_scope(span.scope);
        let parent = match span.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                span.context.trace_id(),
                parent,
                span.context.trace_flags(),
                false,
                span.context.trace_state().clone(),
            )),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(span.name)
            .with_kind(span.kind)
            .with_start_time(span.start)
            .with_attributes(span.attributes)
            .with_events(span.events)
            .with_links(span.links);
        REPORTED_IDS.set(Some((span.context.trace_id(), span.context.span_id())));
        let mut recorded = builder.start_with_context(&tracer, &parent);
        REPORTED_IDS.set(None);
        recorded.set_status(span.status);
        recorded.end_with_timestamp(span.end);
    }
}

/// The scope of the host's own spans.
pub const HOST_SCOPE: &str = "wasm-otel-host";

/// An SDK span whose context carries the random trace-id flag (`0x02`) the
/// SDK left off. W3C Trace Context § "Random Trace ID Flag": a trace this
/// host starts has random ids (the SDK's `RandomIdGenerator`: all 16 bytes),
/// so the flag SHOULD be set; a continued trace keeps the incoming flag on
/// every outgoing `traceparent` with its trace id (MUST). The SDK (0.33,
/// `SdkTracer::build_with_context`) takes a span's flags from its parent
/// only and zeroes them on a dropped span, and has no way to set a root's
/// flags, so the host puts the flag on the context it hands on: children
/// then inherit it (the SDK copies a sampled parent's flags), and the
/// `traceparent` and `traceresponse` formatted from it carry it.
struct RandomTrace {
    span: opentelemetry_sdk::trace::Span,
    /// The SDK span's context with the random flag set.
    context: SpanContext,
}

impl RandomTrace {
    /// `span`'s context with the random flag, when its trace has one and
    /// the SDK left it off; `None` when the SDK's context is already right.
    fn of(parent: &Context, span: &opentelemetry_sdk::trace::Span) -> Option<SpanContext> {
        let parent_span = parent.span();
        let parent = parent_span.span_context();
        let random = !parent.is_valid() || parent.trace_flags().to_u8() & RANDOM != 0;
        let sc = span.span_context();
        (random && sc.is_valid() && sc.trace_flags().to_u8() & RANDOM == 0).then(|| {
            SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                TraceFlags::new(sc.trace_flags().to_u8() | RANDOM),
                sc.is_remote(),
                sc.trace_state().clone(),
            )
        })
    }
}

impl opentelemetry::trace::Span for RandomTrace {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<std::borrow::Cow<'static, str>>,
    {
        self.span
            .add_event_with_timestamp(name, timestamp, attributes);
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.span.set_attribute(attribute);
    }

    fn set_status(&mut self, status: Status) {
        self.span.set_status(status);
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<std::borrow::Cow<'static, str>>,
    {
        self.span.update_name(new_name);
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.span.add_link(span_context, attributes);
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.span.end_with_timestamp(timestamp);
    }
}

/// Sets the random flag on the exported copy of a root span of this host's
/// scope: the trace is one the host started (its ids random, see
/// [`RandomTrace`]), but the SDK records the root with its own flags. OTLP
/// writes the low byte of a span's `flags` from these trace flags.
pub fn random_root(span: &mut opentelemetry_sdk::trace::SpanData) {
    if span.parent_span_id == SpanId::INVALID && span.instrumentation_scope.name() == HOST_SCOPE {
        let sc = &span.span_context;
        span.span_context = SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            TraceFlags::new(sc.trace_flags().to_u8() | RANDOM),
            sc.is_remote(),
            sc.trace_state().clone(),
        );
    }
}

thread_local! {
    /// The ids of the reported span being built on this thread, if one is.
    static REPORTED_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// The SDK's id generator: random ids, except while a reported span is
/// being built ([`HostTracer::record`]), which keeps the ids its guest gave
/// it. The SDK asks for ids synchronously on the building thread, and the
/// SDK has no other way to take a span's ids from outside.
#[derive(Debug, Default)]
struct Ids(RandomIdGenerator);

impl IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        match REPORTED_IDS.get() {
            Some((trace_id, _)) => trace_id,
            None => self.0.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match REPORTED_IDS.get() {
            Some((_, span_id)) => span_id,
            None => self.0.new_span_id(),
        }
    }
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
    explorer: Option<crate::explorer::Explorer>,
}

impl Telemetry {
    /// Sets up what `config` asks for, and `--traces-file` when given.
    pub fn new(config: OtelConfig, traces_file: Option<&Path>) -> wasmtime::Result<Telemetry> {
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
            Propagator::new(&[
                config::Propagator::TraceContext,
                config::Propagator::Baggage,
            ])
        } else {
            Propagator::new(&config.propagators)
        });
        let queue = Arc::new(QueueStats::default());
        if !config.disabled && config.exporters.contains(&Exporter::Otlp) {
            report_drops(Arc::downgrade(&queue), config.endpoint.clone())?;
        }
        Ok(Telemetry {
            config,
            console,
            traces_file,
            failing,
            undelivered: Arc::new(AtomicU64::new(0)),
            queue,
            providers: Mutex::new(Vec::new()),
            propagator,
            explorer: None,
        })
    }

    /// Feeds every service's spans to `explorer` in process; an OTLP
    /// exporter whose endpoint is the explorer's own receiver is then
    /// skipped (see [`crate::explorer::Explorer::receives`]).
    pub fn with_explorer(mut self, explorer: Option<crate::explorer::Explorer>) -> Telemetry {
        self.explorer = explorer;
        self
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
                Exporter::Otlp => format!("otlp ({} to {})", c.protocol, c.endpoint),
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
        let propagators: Vec<&str> = c
            .propagators
            .iter()
            .map(|p| match p {
                config::Propagator::TraceContext => "tracecontext",
                config::Propagator::Baggage => "baggage",
            })
            .collect();
        format!(
            "telemetry: exporters {} · sampler {} · propagators {}",
            exporters.join(", "),
            c.sampler,
            if propagators.is_empty() {
                "none".to_string()
            } else {
                propagators.join(",")
            }
        )
    }

    /// A tracer for `identity`'s spans, with a provider of its own (the
    /// resource is per provider) feeding the process's exporters.
    pub fn tracer(&self, identity: &ServiceIdentity) -> wasmtime::Result<HostTracer> {
        if self.config.disabled {
            return Ok(HostTracer::Disabled);
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
                ..Default::default()
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
            };
            builder = builder.with_span_processor(export_queue::processor(
                self.otlp_exporter()?,
                self.queue.clone(),
                delivery,
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
        Ok(HostTracer::Sdk { tracer, provider })
    }

    fn otlp_exporter(&self) -> wasmtime::Result<opentelemetry_otlp::SpanExporter> {
        let c = &self.config;
        let built = match c.protocol {
            Protocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (key, value) in &c.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(
                        key.to_ascii_lowercase().as_bytes(),
                    )
                    .with_context(|| {
                        format!("OTLP header name `{key}` is not valid gRPC metadata")
                    })?;
                    let value = value
                        .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                        .with_context(|| {
                            format!(
                                "OTLP header `{key}` has a value that is not valid gRPC metadata"
                            )
                        })?;
                    metadata.insert(key, value);
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(c.endpoint.clone())
                    .with_timeout(c.timeout)
                    .with_metadata(metadata)
                    .build()
            }
            Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(c.endpoint.clone())
                .with_timeout(c.timeout)
                .with_headers(c.headers.iter().cloned().collect::<HashMap<_, _>>())
                .build(),
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
            self.config.sets_resource_attribute("service.version"),
        ) {
            builder = builder.with_attribute(KeyValue::new("service.version", version.clone()));
        }
        let language = crate::language::RESOURCE_ATTRIBUTE;
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

/// How often spans dropped by a full export queue are reported (once per
/// interval with the count, never per span).
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Starts the thread that reports drops every [`DROP_REPORT_INTERVAL`]; it
/// ends with `queue`.
fn report_drops(queue: std::sync::Weak<QueueStats>, endpoint: String) -> wasmtime::Result<()> {
    std::thread::Builder::new()
        .name("export-drop-report".into())
        .spawn(move || {
            loop {
                std::thread::sleep(DROP_REPORT_INTERVAL);
                let Some(queue) = queue.upgrade() else { return };
                let dropped = queue.dropped_since_last_report();
                if dropped > 0 {
                    eprintln!(
                        "warning: {dropped} span(s) dropped in the last {}s because the export queue \
                         was full (OTEL_BSP_MAX_QUEUE_SIZE); the collector at `{endpoint}` is not \
                         keeping up ({} in all)",
                        DROP_REPORT_INTERVAL.as_secs(),
                        queue.dropped()
                    );
                }
            }
        })
        .map(drop)
        .context("cannot start the thread that reports dropped spans")
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

/// Says, once, when spans stop reaching the collector and, once, when they
/// reach it again, instead of failing quietly or on every batch; counts the
/// spans not delivered.
#[derive(Debug)]
struct Reporter {
    endpoint: String,
    failing: Arc<AtomicBool>,
    undelivered: Arc<AtomicU64>,
    /// The terminal view that takes over while delivery fails.
    fallback: Option<Arc<Console>>,
}

impl export_queue::Delivery for Reporter {
    fn settled(&self, count: usize, result: &OTelSdkResult) {
        match result {
            Err(error) => {
                self.undelivered.fetch_add(count as u64, Ordering::Relaxed);
                if self.failing.swap(true, Ordering::Relaxed) {
                    return;
                }
                let instead = if self.fallback.is_some() {
                    "Traces are drawn in the terminal meanwhile."
                } else {
                    "See them in the terminal with OTEL_TRACES_EXPORTER=console."
                };
                eprintln!(
                    "warning: spans are not reaching the collector at `{}` ({count} dropped): {error}. \
                     Requests are still served. Start one (`docker compose up -d`) or point \
                     OTEL_EXPORTER_OTLP_ENDPOINT at yours. {instead} A line follows when delivery resumes.",
                    self.endpoint
                );
                if let Some(console) = &self.fallback {
                    console.delivery_failed();
                }
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                eprintln!(
                    "spans are reaching the collector at `{}` again",
                    self.endpoint
                );
                if let Some(console) = &self.fallback {
                    console.delivery_resumed();
                }
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags of the context a host span hands on: the SDK's sampled
    /// decision, with the random flag of the trace (incoming, or set on a
    /// trace the host starts), on the span and on its children.
    #[rustfmt::skip]
    #[test]
    fn host_spans_carry_the_random_flag_of_their_trace() {
        use opentelemetry_sdk::trace::Sampler;
        let parent = |flags: u8| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(1u128), SpanId::from(1u64), TraceFlags::new(flags), true, Default::default(),
            ))
        };
        // (sampler, parent, flags handed on)
        let cases = [
            (Sampler::AlwaysOn, Context::new(), 0x03),
            (Sampler::AlwaysOff, Context::new(), 0x02),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x00), 0x00),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x01), 0x01),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x02), 0x02),
            (Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), parent(0x03), 0x03),
            (Sampler::AlwaysOn, parent(0x02), 0x03),
        ];
        for (sampler, parent, expected) in cases {
            let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
            let tracer = HostTracer::Sdk { tracer: provider.tracer(HOST_SCOPE), provider };
            let cx = tracer.start(SpanBuilder::from_name("s"), &parent);
            let child = tracer.start(SpanBuilder::from_name("c"), &cx);
            for cx in [cx, child] {
                assert_eq!(cx.span().span_context().trace_flags().to_u8(), expected, "{:?}", parent.span().span_context());
            }
        }
    }

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
