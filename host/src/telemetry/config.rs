//! Every `OTEL_*` environment variable the host reads, read once at
//! start-up, each by a function of its own.
//!
//! The rules are the OpenTelemetry specification's, including the parts the
//! Rust SDK leaves to applications: an empty variable counts as unset,
//! `OTEL_SERVICE_NAME` wins over `service.name` in `OTEL_RESOURCE_ATTRIBUTES`,
//! resource attribute and header values are percent-decoded, and a
//! signal-specific variable (`…_TRACES_…`) wins over the general one. Unlike
//! the specification's "log and fall back", an invalid value is a start-up
//! error naming the variable and the value: a typo in a sampler should not
//! silently record everything. That includes the batch span processor's
//! `OTEL_BSP_*`, which the SDK would otherwise read itself and silently
//! ignore when invalid.
//!
//! The exporter's transport security and compression are read here too
//! (`…_CERTIFICATE`, `…_CLIENT_KEY`, `…_CLIENT_CERTIFICATE`, `…_INSECURE`,
//! `…_COMPRESSION`): the files are only named here, and read once at
//! start-up by `transport`, whose errors name the variable that named them.
//!
//! A new variable: a field in [`OtelConfig`], a function below that reads
//! it, a row in the `every_invalid_value_is_a_startup_error` table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::propagation::{PropagatorName, percent};

/// Where OTLP/gRPC goes by default.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Where OTLP/HTTP goes by default.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// Where OTLP/HTTP metrics go by default.
pub const DEFAULT_HTTP_METRICS_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
/// Where OTLP/HTTP logs go by default.
pub const DEFAULT_HTTP_LOGS_ENDPOINT: &str = "http://localhost:4318/v1/logs";
/// The specification's default `OTEL_METRIC_EXPORT_INTERVAL`.
pub const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_millis(60_000);
/// The specification's default `OTEL_BLRP_SCHEDULE_DELAY`.
pub const DEFAULT_LOG_SCHEDULE_DELAY: Duration = Duration::from_millis(1_000);
/// The specification's default `OTEL_BLRP_MAX_QUEUE_SIZE`.
pub const DEFAULT_LOG_MAX_QUEUE_SIZE: usize = 2_048;
/// The specification's default `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`.
pub const DEFAULT_LOG_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// The specification's default `OTEL_BLRP_EXPORT_TIMEOUT`.
pub const DEFAULT_LOG_EXPORT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// The specification's default `OTEL_METRIC_EXPORT_TIMEOUT`.
pub const DEFAULT_METRIC_EXPORT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// How long one export may take by default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The specification's default count limit.
pub const DEFAULT_COUNT_LIMIT: u32 = 128;
/// The queue size unless `OTEL_BSP_MAX_QUEUE_SIZE` sets one. The
/// specification's 2048 holds well under a second of this host's full load
/// (six spans per order at the POST /orders rate `bench/run` measures, in
/// docs/benchmarks.md); eight times that rides out a collector pause of
/// about a second.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 16_384;
/// The specification's default `OTEL_BSP_SCHEDULE_DELAY`.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(5_000);
/// The specification's default `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;

/// A variable with a value this host cannot use.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong and what would be right.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}=`{}`: {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Where finished spans go (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// OTLP to a collector.
    Otlp,
    /// The waterfall in the terminal.
    Console,
}

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`, port 4317.
    Grpc,
    /// `http/protobuf`, port 4318.
    HttpProtobuf,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// The three signals, each with its own `OTEL_EXPORTER_OTLP_{SIGNAL}_*`
/// variables that win over the general ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`.
    fn protocol_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`.
    fn endpoint_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS`.
    fn headers_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`.
    fn timeout_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        }
    }

    /// The path OTLP/HTTP appends to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_COMPRESSION`.
    fn compression_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_CERTIFICATE`.
    fn certificate_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_KEY`.
    fn client_key_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_CERTIFICATE`.
    fn client_certificate_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE`.
    fn insecure_variable(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
        }
    }

    /// The OTLP/HTTP default URL.
    fn default_http_endpoint(self) -> &'static str {
        match self {
            Signal::Traces => DEFAULT_HTTP_ENDPOINT,
            Signal::Metrics => DEFAULT_HTTP_METRICS_ENDPOINT,
            Signal::Logs => DEFAULT_HTTP_LOGS_ENDPOINT,
        }
    }
}

/// Where one signal's OTLP export goes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The transport.
    pub protocol: Protocol,
    /// The URL (for HTTP, including the signal's path); always with its
    /// scheme (a scheme-less gRPC endpoint gets `https://`, or `http://`
    /// with `…_INSECURE=true`), `https://` meaning TLS.
    pub endpoint: String,
    /// Extra request headers (gRPC metadata), percent-decoded.
    pub headers: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_COMPRESSION`.
    pub compression: Compression,
    /// The files TLS uses for an `https://` endpoint.
    pub tls: TlsFiles,
}

/// How an export's body is compressed (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `none`, the default.
    None,
    /// `gzip`: `grpc-encoding: gzip` over gRPC, `Content-Encoding: gzip`
    /// over HTTP.
    Gzip,
}

/// A file an `OTEL_*` variable names, with that variable, so that failing
/// to read it can say which variable to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The variable that named it.
    pub variable: &'static str,
    /// Its path, as given.
    pub path: PathBuf,
}

/// The PEM files of one signal's TLS (each the signal's variable, else the
/// general one); used only for an `https://` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `…_CERTIFICATE`: the certificate authorities to trust instead of the
    /// built-in roots.
    pub certificate: Option<ConfigFile>,
    /// `…_CLIENT_KEY` and `…_CLIENT_CERTIFICATE`, for mutual TLS: always
    /// both or neither.
    pub client: Option<(ConfigFile, ConfigFile)>,
}

/// What a metric point's value covers
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalityPreference {
    /// Every point since the process started (the default).
    Cumulative,
    /// Counters and histograms since the last export; up-down counters
    /// stay cumulative, as the specification says.
    Delta,
    /// As `Delta` for synchronous counters and histograms; the observed
    /// counters stay cumulative.
    LowMemory,
}

/// Which measurements may become a histogram point's exemplar
/// (`OTEL_METRICS_EXEMPLAR_FILTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExemplarFilter {
    /// `always_on`: every measurement, sampled span or not.
    AlwaysOn,
    /// `always_off`: none; histogram points carry no exemplars.
    AlwaysOff,
    /// `trace_based` (the default): those recorded in a sampled span.
    TraceBased,
}

/// How histograms aggregate
/// (`OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramAggregation {
    /// `explicit_bucket_histogram` (the default): each instrument's bounds.
    ExplicitBucket,
    /// `base2_exponential_bucket_histogram`: buckets of powers of
    /// 2^(2^-scale), the scale chosen from the values seen.
    Base2Exponential,
}

/// The host's metrics (`OTEL_METRICS_EXPORTER` and the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    /// `OTEL_METRICS_EXPORTER`; empty for `none`.
    pub exporters: Vec<Exporter>,
    /// Where OTLP metrics go.
    pub otlp: OtlpSettings,
    /// `OTEL_METRIC_EXPORT_INTERVAL`: the time between two exports.
    pub interval: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
    pub temporality: TemporalityPreference,
    /// `OTEL_METRIC_EXPORT_TIMEOUT`: how long one export may take, at most
    /// (the shorter of it and the OTLP timeout bounds each export).
    pub export_timeout: Duration,
    /// `OTEL_METRICS_EXEMPLAR_FILTER`.
    pub exemplar_filter: ExemplarFilter,
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`.
    pub histogram_aggregation: HistogramAggregation,
}

/// The log record limits (`OTEL_LOGRECORD_ATTRIBUTE_*_LIMIT`, else
/// `OTEL_ATTRIBUTE_*_LIMIT`): what is cut is counted in the record's
/// `dropped_attributes_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecordLimits {
    /// Attributes per log record.
    pub attribute_count: u32,
    /// Characters per string attribute value; `None`: no limit.
    pub attribute_value_length: Option<usize>,
}

impl Default for LogRecordLimits {
    fn default() -> Self {
        LogRecordLimits {
            attribute_count: DEFAULT_COUNT_LIMIT,
            attribute_value_length: None,
        }
    }
}

/// The host's and the guests' log records (`OTEL_LOGS_EXPORTER` and the
/// rest).
#[derive(Debug, Clone, PartialEq)]
pub struct LogsSettings {
    /// `OTEL_LOGS_EXPORTER`; empty for `none`.
    pub exporters: Vec<Exporter>,
    /// Where OTLP logs go.
    pub otlp: OtlpSettings,
    /// `OTEL_BLRP_SCHEDULE_DELAY`: the time between two exports.
    pub schedule_delay: Duration,
    /// `OTEL_BLRP_MAX_QUEUE_SIZE`: records waiting for export, at most;
    /// more are dropped and counted.
    pub max_queue_size: usize,
    /// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`: records in one export, at most;
    /// a queue this long is exported without waiting for the delay. At
    /// most `max_queue_size`.
    pub max_export_batch_size: usize,
    /// `OTEL_BLRP_EXPORT_TIMEOUT`: how long one export may take, at most
    /// (the shorter of it and the OTLP timeout bounds each export).
    pub export_timeout: Duration,
    /// The attribute limits of every record.
    pub limits: LogRecordLimits,
}

/// The sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_*`: the parent's decision, else the root sampler.
    ParentBased(Root),
}

/// The sampler for root spans of a parent-based sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// `parentbased_always_on` (the default sampler).
    AlwaysOn,
    /// `parentbased_always_off`.
    AlwaysOff,
    /// `parentbased_traceidratio`.
    TraceIdRatio(f64),
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::AlwaysOn => write!(f, "always_on"),
            Sampler::AlwaysOff => write!(f, "always_off"),
            Sampler::TraceIdRatio(r) => write!(f, "traceidratio({r})"),
            Sampler::ParentBased(Root::AlwaysOn) => write!(f, "parentbased_always_on"),
            Sampler::ParentBased(Root::AlwaysOff) => write!(f, "parentbased_always_off"),
            Sampler::ParentBased(Root::TraceIdRatio(r)) => {
                write!(f, "parentbased_traceidratio({r})")
            }
        }
    }
}

/// The span limits (`OTEL_SPAN_*_LIMIT`, `OTEL_ATTRIBUTE_*_LIMIT`,
/// `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`): what is cut is counted in the span's
/// dropped counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanLimitSettings {
    /// Attributes per span.
    pub attribute_count: u32,
    /// Characters per string attribute value (each string of an array);
    /// `None`: no limit.
    pub attribute_value_length: Option<usize>,
    /// Events per span.
    pub event_count: u32,
    /// Attributes per event.
    pub event_attribute_count: u32,
    /// Links per span.
    pub link_count: u32,
    /// Attributes per link.
    pub link_attribute_count: u32,
}

/// The batch span processor in front of OTLP (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSettings {
    /// Spans accepted and not yet exported, at most; more are dropped and
    /// counted.
    pub max_queue_size: usize,
    /// How long the processor waits between two exports.
    pub schedule_delay: Duration,
    /// Spans per export, at most (never more than the queue holds).
    pub max_export_batch_size: usize,
}

/// Everything the `OTEL_*` variables say.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// `OTEL_SDK_DISABLED=true`: no spans, no exporters, no injection.
    pub disabled: bool,
    /// `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_TRACES_EXPORTER`; empty for `none`.
    pub exporters: Vec<Exporter>,
    /// Whether `OTEL_TRACES_EXPORTER` was set (rather than defaulted).
    pub exporters_chosen: bool,
    /// The OTLP transport.
    pub protocol: Protocol,
    /// The OTLP URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// Extra OTLP request headers (gRPC metadata), percent-decoded.
    pub headers: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
    /// How spans are compressed on the way.
    pub compression: Compression,
    /// The files TLS uses for an `https://` spans endpoint.
    pub tls: TlsFiles,
    /// The sampler.
    pub sampler: Sampler,
    /// The propagators, in order; empty for `none`.
    pub propagators: Vec<PropagatorName>,
    /// Span limits.
    pub limits: SpanLimitSettings,
    /// The batch span processor's settings.
    pub batch: BatchSettings,
    /// The metrics' exporters, endpoint, interval and temporality.
    pub metrics: MetricsSettings,
    /// The logs' exporters, endpoint and batching.
    pub logs: LogsSettings,
}

/// What an unparsable key=value list variable should look like.
const PAIRS: &str = "expected comma-separated key=value pairs with percent-encoded values";

impl OtelConfig {
    /// Reads the configuration from the process environment.
    pub fn from_process_env() -> Result<OtelConfig, ConfigError> {
        OtelConfig::from_env(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through `env`, which returns a variable's
    /// value. The first invalid variable (in the order below) is the error.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<OtelConfig, ConfigError> {
        let env = Env(&env);
        let disabled = sdk_disabled(&env)?;
        let resource_attributes = resource_attributes(&env)?;
        let exporters = traces_exporter(&env)?;
        let traces = otlp(&env, Signal::Traces)?;
        let sampler = sampler(&env)?;
        let propagators = propagators(&env)?;
        let limits = SpanLimitSettings {
            attribute_count: attribute_count_limit(&env)?,
            attribute_value_length: attribute_value_length_limit(&env)?,
            event_count: event_count_limit(&env)?,
            event_attribute_count: event_attribute_count_limit(&env)?,
            link_count: link_count_limit(&env)?,
            link_attribute_count: link_attribute_count_limit(&env)?,
        };
        let batch = BatchSettings {
            max_queue_size: bsp_max_queue_size(&env)?,
            schedule_delay: bsp_schedule_delay(&env)?,
            max_export_batch_size: bsp_max_export_batch_size(&env)?,
        };
        bsp_export_timeout(&env)?;
        let metrics = MetricsSettings {
            exporters: metrics_exporter(&env)?,
            otlp: otlp(&env, Signal::Metrics)?,
            interval: metric_export_interval(&env)?,
            temporality: metrics_temporality(&env)?,
            export_timeout: metric_export_timeout(&env)?,
            exemplar_filter: exemplar_filter(&env)?,
            histogram_aggregation: histogram_aggregation(&env)?,
        };
        let logs = LogsSettings {
            exporters: logs_exporter(&env)?,
            otlp: otlp(&env, Signal::Logs)?,
            schedule_delay: blrp_schedule_delay(&env)?,
            max_queue_size: blrp_max_queue_size(&env)?,
            max_export_batch_size: blrp_max_export_batch_size(&env)?,
            export_timeout: blrp_export_timeout(&env)?,
            limits: LogRecordLimits {
                attribute_count: logrecord_attribute_count_limit(&env)?,
                attribute_value_length: logrecord_attribute_value_length_limit(&env)?,
            },
        };
        Ok(OtelConfig {
            disabled,
            service_name: service_name(&env),
            resource_attributes,
            exporters,
            exporters_chosen: env.get("OTEL_TRACES_EXPORTER").is_some(),
            protocol: traces.protocol,
            endpoint: traces.endpoint,
            headers: traces.headers,
            timeout: traces.timeout,
            compression: traces.compression,
            tls: traces.tls,
            sampler,
            propagators,
            limits,
            batch,
            metrics,
            logs,
        })
    }

    /// `service.name` from the environment: `OTEL_SERVICE_NAME`, else the
    /// one in `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn env_service_name(&self) -> Option<&str> {
        self.service_name.as_deref().or_else(|| {
            self.resource_attributes
                .iter()
                .find(|(key, _)| key == crate::telemetry::semconv::SERVICE_NAME)
                .map(|(_, value)| value.as_str())
        })
    }

    /// Whether `OTEL_RESOURCE_ATTRIBUTES` sets `key`.
    pub fn sets_resource_attribute(&self, key: &str) -> bool {
        self.resource_attributes.iter().any(|(k, _)| k == key)
    }

    /// Where spans go over OTLP, in the form metrics and logs use.
    pub fn traces_otlp(&self) -> OtlpSettings {
        OtlpSettings {
            protocol: self.protocol,
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            timeout: self.timeout,
            compression: self.compression,
            tls: self.tls.clone(),
        }
    }
}

/// The environment as the specification reads it.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// `variable`'s value; an empty one is the same as unset.
    fn get(&self, variable: &str) -> Option<String> {
        (self.0)(variable).filter(|value| !value.trim().is_empty())
    }

    /// The first of `variables` that is set (the signal-specific one comes
    /// first), with its name; the general name when neither is.
    fn first(&self, variables: [&'static str; 2]) -> (&'static str, Option<String>) {
        for variable in variables {
            if let Some(value) = self.get(variable) {
                return (variable, Some(value));
            }
        }
        (variables[1], None)
    }
}

fn error(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// `OTEL_SDK_DISABLED`: `true` or `false`, in any case.
fn sdk_disabled(env: &Env) -> Result<bool, ConfigError> {
    let variable = "OTEL_SDK_DISABLED";
    match env.get(variable) {
        None => Ok(false),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(error(variable, &value, "expected `true` or `false`")),
        },
    }
}

/// `OTEL_SERVICE_NAME`: any name.
fn service_name(env: &Env) -> Option<String> {
    env.get("OTEL_SERVICE_NAME")
        .map(|name| name.trim().to_string())
}

/// `OTEL_RESOURCE_ATTRIBUTES`: key=value pairs.
fn resource_attributes(env: &Env) -> Result<Vec<(String, String)>, ConfigError> {
    let variable = "OTEL_RESOURCE_ATTRIBUTES";
    match env.get(variable) {
        None => Ok(Vec::new()),
        Some(value) => parse_pairs(&value).ok_or_else(|| error(variable, &value, PAIRS)),
    }
}

/// `OTEL_TRACES_EXPORTER`: `otlp`, `console`, `none`, comma-separated.
fn traces_exporter(env: &Env) -> Result<Vec<Exporter>, ConfigError> {
    exporters(env, "OTEL_TRACES_EXPORTER")
}

/// `OTEL_METRICS_EXPORTER`: `otlp`, `console`, `none`, comma-separated.
fn metrics_exporter(env: &Env) -> Result<Vec<Exporter>, ConfigError> {
    exporters(env, "OTEL_METRICS_EXPORTER")
}

/// `OTEL_LOGS_EXPORTER`: `otlp`, `console`, `none`, comma-separated.
fn logs_exporter(env: &Env) -> Result<Vec<Exporter>, ConfigError> {
    exporters(env, "OTEL_LOGS_EXPORTER")
}

/// An exporter list (`otlp` when unset).
fn exporters(env: &Env, variable: &'static str) -> Result<Vec<Exporter>, ConfigError> {
    let Some(value) = env.get(variable) else {
        return Ok(vec![Exporter::Otlp]);
    };
    names(&value, |name| match name {
        "otlp" => Some(Some(Exporter::Otlp)),
        "console" => Some(Some(Exporter::Console)),
        "none" => Some(None),
        _ => None,
    })
    .map_err(|name| {
        error(
            variable,
            &value,
            &format!(
                "unknown exporter `{name}`; expected `otlp`, `console` or `none`, comma-separated"
            ),
        )
    })
}

/// One signal's OTLP endpoint, protocol, headers, timeout, compression and
/// TLS files.
fn otlp(env: &Env, signal: Signal) -> Result<OtlpSettings, ConfigError> {
    let protocol = protocol(env, signal)?;
    let insecure = insecure(env, signal)?;
    Ok(OtlpSettings {
        protocol,
        endpoint: endpoint(env, signal, protocol, insecure)?,
        headers: headers(env, signal)?,
        timeout: timeout(env, signal)?,
        compression: compression(env, signal)?,
        tls: TlsFiles {
            certificate: certificate(env, signal),
            client: client_identity(env, signal)?,
        },
    })
}

/// `OTEL_METRIC_EXPORT_INTERVAL`: a positive number of milliseconds.
fn metric_export_interval(env: &Env) -> Result<Duration, ConfigError> {
    let variable = "OTEL_METRIC_EXPORT_INTERVAL";
    let value = env.get(variable);
    match milliseconds(variable, value.clone())? {
        None => Ok(DEFAULT_METRIC_EXPORT_INTERVAL),
        Some(interval) if !interval.is_zero() => Ok(interval),
        Some(_) => Err(error(
            variable,
            value.as_deref().unwrap_or_default(),
            "expected a positive whole number of milliseconds",
        )),
    }
}

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative`,
/// `delta` or `lowmemory`, in any case.
fn metrics_temporality(env: &Env) -> Result<TemporalityPreference, ConfigError> {
    let variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
    let Some(value) = env.get(variable) else {
        return Ok(TemporalityPreference::Cumulative);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "cumulative" => Ok(TemporalityPreference::Cumulative),
        "delta" => Ok(TemporalityPreference::Delta),
        "lowmemory" => Ok(TemporalityPreference::LowMemory),
        _ => Err(error(
            variable,
            &value,
            "expected `cumulative`, `delta` or `lowmemory`",
        )),
    }
}

/// `OTEL_METRIC_EXPORT_TIMEOUT`: milliseconds.
fn metric_export_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let variable = "OTEL_METRIC_EXPORT_TIMEOUT";
    Ok(milliseconds(variable, env.get(variable))?.unwrap_or(DEFAULT_METRIC_EXPORT_TIMEOUT))
}

/// `OTEL_METRICS_EXEMPLAR_FILTER`: `always_on`, `always_off` or
/// `trace_based`, in any case.
fn exemplar_filter(env: &Env) -> Result<ExemplarFilter, ConfigError> {
    let variable = "OTEL_METRICS_EXEMPLAR_FILTER";
    let Some(value) = env.get(variable) else {
        return Ok(ExemplarFilter::TraceBased);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "always_on" => Ok(ExemplarFilter::AlwaysOn),
        "always_off" => Ok(ExemplarFilter::AlwaysOff),
        "trace_based" => Ok(ExemplarFilter::TraceBased),
        _ => Err(error(
            variable,
            &value,
            "expected `always_on`, `always_off` or `trace_based`",
        )),
    }
}

/// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`:
/// `explicit_bucket_histogram` or `base2_exponential_bucket_histogram`, in
/// any case.
fn histogram_aggregation(env: &Env) -> Result<HistogramAggregation, ConfigError> {
    let variable = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
    let Some(value) = env.get(variable) else {
        return Ok(HistogramAggregation::ExplicitBucket);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "explicit_bucket_histogram" => Ok(HistogramAggregation::ExplicitBucket),
        "base2_exponential_bucket_histogram" => Ok(HistogramAggregation::Base2Exponential),
        _ => Err(error(
            variable,
            &value,
            "expected `explicit_bucket_histogram` or `base2_exponential_bucket_histogram`",
        )),
    }
}

/// `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT`.
fn logrecord_attribute_count_limit(env: &Env) -> Result<u32, ConfigError> {
    count(env.first([
        "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
    ]))
}

/// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; unset: no limit.
fn logrecord_attribute_value_length_limit(env: &Env) -> Result<Option<usize>, ConfigError> {
    length(env.first([
        "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    ]))
}

/// `OTEL_BLRP_SCHEDULE_DELAY`: milliseconds.
fn blrp_schedule_delay(env: &Env) -> Result<Duration, ConfigError> {
    let variable = "OTEL_BLRP_SCHEDULE_DELAY";
    Ok(milliseconds(variable, env.get(variable))?.unwrap_or(DEFAULT_LOG_SCHEDULE_DELAY))
}

/// `OTEL_BLRP_MAX_QUEUE_SIZE`: a positive number of log records.
fn blrp_max_queue_size(env: &Env) -> Result<usize, ConfigError> {
    let variable = "OTEL_BLRP_MAX_QUEUE_SIZE";
    Ok(positive(variable, env.get(variable))?.unwrap_or(DEFAULT_LOG_MAX_QUEUE_SIZE))
}

/// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`: a positive number of log records,
/// capped at the queue size as for spans (the specification: it "must be
/// less than or equal to" `OTEL_BLRP_MAX_QUEUE_SIZE`).
fn blrp_max_export_batch_size(env: &Env) -> Result<usize, ConfigError> {
    let variable = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE";
    let size = positive(variable, env.get(variable))?.unwrap_or(DEFAULT_LOG_MAX_EXPORT_BATCH_SIZE);
    Ok(size.min(blrp_max_queue_size(env)?))
}

/// `OTEL_BLRP_EXPORT_TIMEOUT`: milliseconds.
fn blrp_export_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let variable = "OTEL_BLRP_EXPORT_TIMEOUT";
    Ok(milliseconds(variable, env.get(variable))?.unwrap_or(DEFAULT_LOG_EXPORT_TIMEOUT))
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
fn protocol(env: &Env, signal: Signal) -> Result<Protocol, ConfigError> {
    let (variable, value) = env.first([signal.protocol_variable(), "OTEL_EXPORTER_OTLP_PROTOCOL"]);
    match value.as_deref().map(str::trim) {
        None | Some("grpc") => Ok(Protocol::Grpc),
        Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some(other) => Err(error(
            variable,
            other,
            "expected `grpc` or `http/protobuf` (`http/json` is not supported)",
        )),
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT` as it is, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` as a base (HTTP appends the signal's path),
/// else the protocol's default. A gRPC endpoint without a scheme
/// (`collector:4317`) uses TLS unless `insecure`, as the specification says.
fn endpoint(
    env: &Env,
    signal: Signal,
    protocol: Protocol,
    insecure: bool,
) -> Result<String, ConfigError> {
    let specific = signal.endpoint_variable();
    let general = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let scheme_less = match (protocol, insecure) {
        (Protocol::Grpc, false) => Some("https"),
        (Protocol::Grpc, true) => Some("http"),
        (Protocol::HttpProtobuf, _) => None,
    };
    match (env.get(specific), env.get(general)) {
        (Some(url), _) => check_url(specific, url, scheme_less),
        (None, Some(base)) => {
            let base = check_url(general, base, scheme_less)?;
            Ok(match protocol {
                Protocol::Grpc => base,
                Protocol::HttpProtobuf => {
                    format!("{}{}", base.trim_end_matches('/'), signal.http_path())
                }
            })
        }
        (None, None) => Ok(match protocol {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_string(),
            Protocol::HttpProtobuf => signal.default_http_endpoint().to_string(),
        }),
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`.
fn headers(env: &Env, signal: Signal) -> Result<Vec<(String, String)>, ConfigError> {
    let (variable, value) = env.first([signal.headers_variable(), "OTEL_EXPORTER_OTLP_HEADERS"]);
    match value {
        None => Ok(Vec::new()),
        Some(value) => parse_pairs(&value).ok_or_else(|| error(variable, &value, PAIRS)),
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`:
/// milliseconds.
fn timeout(env: &Env, signal: Signal) -> Result<Duration, ConfigError> {
    let (variable, value) = env.first([signal.timeout_variable(), "OTEL_EXPORTER_OTLP_TIMEOUT"]);
    Ok(milliseconds(variable, value)?.unwrap_or(DEFAULT_TIMEOUT))
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none`, in any case.
fn compression(env: &Env, signal: Signal) -> Result<Compression, ConfigError> {
    let (variable, value) = env.first([
        signal.compression_variable(),
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ]);
    let Some(value) = value else {
        return Ok(Compression::None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        _ => Err(error(variable, &value, "expected `gzip` or `none`")),
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE`, else `OTEL_EXPORTER_OTLP_INSECURE`:
/// `true` or `false`, in any case (default `false`). It only decides the
/// scheme of a gRPC endpoint given without one.
fn insecure(env: &Env, signal: Signal) -> Result<bool, ConfigError> {
    let (variable, value) = env.first([signal.insecure_variable(), "OTEL_EXPORTER_OTLP_INSECURE"]);
    let Some(value) = value else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(error(variable, &value, "expected `true` or `false`")),
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_CERTIFICATE`, else
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: a PEM file of certificate authorities.
fn certificate(env: &Env, signal: Signal) -> Option<ConfigFile> {
    file(env.first([
        signal.certificate_variable(),
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ]))
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_KEY`, else
/// `OTEL_EXPORTER_OTLP_CLIENT_KEY`: the PEM private key for mutual TLS.
fn client_key(env: &Env, signal: Signal) -> Option<ConfigFile> {
    file(env.first([
        signal.client_key_variable(),
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    ]))
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_CERTIFICATE`, else
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`: the PEM certificate chain for
/// mutual TLS.
fn client_certificate(env: &Env, signal: Signal) -> Option<ConfigFile> {
    file(env.first([
        signal.client_certificate_variable(),
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    ]))
}

/// The client key and certificate together: one without the other is an
/// error naming the one that is set and the one that is missing.
fn client_identity(
    env: &Env,
    signal: Signal,
) -> Result<Option<(ConfigFile, ConfigFile)>, ConfigError> {
    match (client_key(env, signal), client_certificate(env, signal)) {
        (Some(key), Some(certificate)) => Ok(Some((key, certificate))),
        (None, None) => Ok(None),
        (Some(set), None) => Err(half_identity(
            set,
            [
                signal.client_certificate_variable(),
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ],
        )),
        (None, Some(set)) => Err(half_identity(
            set,
            [
                signal.client_key_variable(),
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ],
        )),
    }
}

/// The error for a client key without its certificate or the reverse:
/// `set` is the one given, `missing` the variables that would complete it.
fn half_identity(set: ConfigFile, missing: [&str; 2]) -> ConfigError {
    error(
        set.variable,
        &set.path.display().to_string(),
        &format!(
            "mutual TLS needs the client key and its certificate: set {} (or {}) too, \
             or unset this one",
            missing[0], missing[1]
        ),
    )
}

/// A file name, when set (trimmed; kept with its variable).
fn file((variable, value): (&'static str, Option<String>)) -> Option<ConfigFile> {
    value.map(|path| ConfigFile {
        variable,
        path: PathBuf::from(path.trim()),
    })
}

/// `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG` for the ratio
/// samplers).
fn sampler(env: &Env) -> Result<Sampler, ConfigError> {
    let variable = "OTEL_TRACES_SAMPLER";
    match env.get(variable).as_deref().map(str::trim) {
        None | Some("parentbased_always_on") => Ok(Sampler::ParentBased(Root::AlwaysOn)),
        Some("always_on") => Ok(Sampler::AlwaysOn),
        Some("always_off") => Ok(Sampler::AlwaysOff),
        Some("traceidratio") => Ok(Sampler::TraceIdRatio(sampler_arg(env)?)),
        Some("parentbased_always_off") => Ok(Sampler::ParentBased(Root::AlwaysOff)),
        Some("parentbased_traceidratio") => {
            Ok(Sampler::ParentBased(Root::TraceIdRatio(sampler_arg(env)?)))
        }
        Some(other) => Err(error(
            variable,
            other,
            "expected always_on, always_off, traceidratio, parentbased_always_on, \
             parentbased_always_off or parentbased_traceidratio",
        )),
    }
}

/// `OTEL_TRACES_SAMPLER_ARG`: a ratio between 0 and 1 (default 1).
fn sampler_arg(env: &Env) -> Result<f64, ConfigError> {
    let variable = "OTEL_TRACES_SAMPLER_ARG";
    match env.get(variable) {
        None => Ok(1.0),
        Some(value) => match value.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(error(
                variable,
                &value,
                "expected a sampling ratio between 0 and 1",
            )),
        },
    }
}

/// `OTEL_PROPAGATORS`: `tracecontext`, `baggage`, `none`, comma-separated.
fn propagators(env: &Env) -> Result<Vec<PropagatorName>, ConfigError> {
    let variable = "OTEL_PROPAGATORS";
    let Some(value) = env.get(variable) else {
        return Ok(vec![PropagatorName::TraceContext, PropagatorName::Baggage]);
    };
    names(&value, |name| match name {
        "tracecontext" => Some(Some(PropagatorName::TraceContext)),
        "baggage" => Some(Some(PropagatorName::Baggage)),
        "none" => Some(None),
        _ => None,
    })
    .map_err(|name| {
        error(
            variable,
            &value,
            &format!(
                "unsupported propagator `{name}`; expected `tracecontext`, `baggage` or `none`"
            ),
        )
    })
}

/// `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT`.
fn attribute_count_limit(env: &Env) -> Result<u32, ConfigError> {
    count(env.first([
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
    ]))
}

/// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; unset: no limit.
fn attribute_value_length_limit(env: &Env) -> Result<Option<usize>, ConfigError> {
    length(env.first([
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    ]))
}

/// `OTEL_SPAN_EVENT_COUNT_LIMIT`.
fn event_count_limit(env: &Env) -> Result<u32, ConfigError> {
    let variable = "OTEL_SPAN_EVENT_COUNT_LIMIT";
    count((variable, env.get(variable)))
}

/// `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT`.
fn event_attribute_count_limit(env: &Env) -> Result<u32, ConfigError> {
    count(env.first([
        "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
    ]))
}

/// `OTEL_SPAN_LINK_COUNT_LIMIT` (no general variable covers links).
fn link_count_limit(env: &Env) -> Result<u32, ConfigError> {
    let variable = "OTEL_SPAN_LINK_COUNT_LIMIT";
    count((variable, env.get(variable)))
}

/// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT`.
fn link_attribute_count_limit(env: &Env) -> Result<u32, ConfigError> {
    count(env.first([
        "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
    ]))
}

/// `OTEL_BSP_MAX_QUEUE_SIZE`: a positive number of spans.
fn bsp_max_queue_size(env: &Env) -> Result<usize, ConfigError> {
    let variable = "OTEL_BSP_MAX_QUEUE_SIZE";
    Ok(positive(variable, env.get(variable))?.unwrap_or(DEFAULT_MAX_QUEUE_SIZE))
}

/// `OTEL_BSP_SCHEDULE_DELAY`: milliseconds.
fn bsp_schedule_delay(env: &Env) -> Result<Duration, ConfigError> {
    let variable = "OTEL_BSP_SCHEDULE_DELAY";
    Ok(milliseconds(variable, env.get(variable))?.unwrap_or(DEFAULT_SCHEDULE_DELAY))
}

/// `OTEL_BSP_EXPORT_TIMEOUT`: milliseconds. Checked only: the SDK's
/// thread-based batch processor ignores it (an export is bounded by
/// `OTEL_EXPORTER_OTLP_TIMEOUT`), but a typo in it is still a typo.
fn bsp_export_timeout(env: &Env) -> Result<(), ConfigError> {
    let variable = "OTEL_BSP_EXPORT_TIMEOUT";
    milliseconds(variable, env.get(variable)).map(drop)
}

/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: a positive number of spans (the SDK
/// caps it at the queue size).
fn bsp_max_export_batch_size(env: &Env) -> Result<usize, ConfigError> {
    let variable = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    Ok(positive(variable, env.get(variable))?.unwrap_or(DEFAULT_MAX_EXPORT_BATCH_SIZE))
}

/// A comma-separated list of names, each looked up by `lookup` (`Some(None)`
/// for `none`), duplicates dropped; the first unknown name is the error.
fn names<T: PartialEq>(
    value: &str,
    lookup: impl Fn(&str) -> Option<Option<T>>,
) -> Result<Vec<T>, String> {
    let mut found = Vec::new();
    for name in value.split(',').map(str::trim) {
        match lookup(name) {
            None => return Err(name.to_string()),
            Some(Some(item)) if !found.contains(&item) => found.push(item),
            Some(_) => {}
        }
    }
    Ok(found)
}

/// A non-negative whole number, when set.
fn whole(variable: &'static str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| error(variable, &value, "expected a non-negative whole number"))
        })
        .transpose()
}

/// A count limit, [`DEFAULT_COUNT_LIMIT`] when unset.
fn count((variable, value): (&'static str, Option<String>)) -> Result<u32, ConfigError> {
    Ok(whole(variable, value)?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(DEFAULT_COUNT_LIMIT))
}

/// A value length limit in characters, `None` (no limit) when unset.
fn length((variable, value): (&'static str, Option<String>)) -> Result<Option<usize>, ConfigError> {
    Ok(whole(variable, value)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// A whole number of milliseconds, when set.
fn milliseconds(
    variable: &'static str,
    value: Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|value| match value.trim().parse::<u64>() {
            Ok(ms) => Ok(Duration::from_millis(ms)),
            Err(_) => Err(error(
                variable,
                &value,
                "expected a whole number of milliseconds",
            )),
        })
        .transpose()
}

/// A positive whole number, when set.
fn positive(variable: &'static str, value: Option<String>) -> Result<Option<usize>, ConfigError> {
    value
        .map(|value| match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(error(variable, &value, "expected a positive whole number")),
        })
        .transpose()
}

/// An `http://` or `https://` URL with a host; one without a scheme gets
/// `scheme_less` when given (gRPC's `host:port`).
fn check_url(
    variable: &'static str,
    url: String,
    scheme_less: Option<&str>,
) -> Result<String, ConfigError> {
    let given = url.trim();
    let url = match scheme_less {
        Some(scheme) if !given.contains("://") => format!("{scheme}://{given}"),
        _ => given.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(url),
        _ => Err(error(
            variable,
            given,
            if scheme_less.is_some() {
                "expected an http:// or https:// URL with a host, or host:port, such as \
                 http://localhost:4317"
            } else {
                "expected an http:// or https:// URL with a host, such as http://localhost:4318"
            },
        )),
    }
}

/// Parses `key1=value1,key2=value2` (W3C Baggage-like, as the specification
/// says for `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`):
/// keys and values trimmed, values percent-decoded. `None` if malformed.
pub fn parse_pairs(value: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for member in value.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '%') {
            return None;
        }
        pairs.push((key.to_string(), percent::decode(value.trim())?));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<OtelConfig, ConfigError> {
        OtelConfig::from_env(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    /// With nothing set: OTLP/gRPC to localhost:4317, parent-based
    /// always-on, tracecontext and baggage, 10 s timeout.
    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert!(!c.disabled);
        assert_eq!(c.exporters, vec![Exporter::Otlp]);
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.sampler, Sampler::ParentBased(Root::AlwaysOn));
        assert_eq!(
            c.propagators,
            vec![PropagatorName::TraceContext, PropagatorName::Baggage]
        );
    }

    /// An empty variable is the same as an unset one.
    #[test]
    fn empty_is_unset() {
        let empty = config(&[
            ("OTEL_SDK_DISABLED", ""),
            ("OTEL_TRACES_EXPORTER", ""),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", " "),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ("OTEL_TRACES_SAMPLER", ""),
            ("OTEL_PROPAGATORS", ""),
            ("OTEL_SERVICE_NAME", ""),
        ])
        .unwrap();
        assert_eq!(empty, config(&[]).unwrap());
    }

    /// OTEL_SDK_DISABLED is case-insensitive `true`/`false`; anything else is an error.
    #[test]
    fn sdk_disabled() {
        assert!(config(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().disabled);
        assert!(!config(&[("OTEL_SDK_DISABLED", "false")]).unwrap().disabled);
        let e = config(&[("OTEL_SDK_DISABLED", "yes")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid OTEL_SDK_DISABLED=`yes`: expected `true` or `false`"
        );
    }

    /// OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES,
    /// whose values are percent-decoded.
    #[test]
    fn service_name_and_resource_attributes() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,team=pay%20ments, deployment.environment.name = prod%2Ceu ",
        )])
        .unwrap();
        assert_eq!(c.env_service_name(), Some("from-attrs"));
        assert_eq!(
            c.resource_attributes,
            vec![
                ("service.name".to_string(), "from-attrs".to_string()),
                ("team".to_string(), "pay ments".to_string()),
                (
                    "deployment.environment.name".to_string(),
                    "prod,eu".to_string()
                ),
            ]
        );
        let c = config(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ])
        .unwrap();
        assert_eq!(c.env_service_name(), Some("from-env"));
        for bad in ["novalue", "a=%zz", "=x", "a=%ff"] {
            let e = config(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]).unwrap_err();
            assert_eq!(e.variable, "OTEL_RESOURCE_ATTRIBUTES", "{bad}");
        }
    }

    /// Exporters: a comma-separated list of otlp, console, none.
    #[test]
    fn traces_exporter() {
        let c = config(&[("OTEL_TRACES_EXPORTER", "console, otlp")]).unwrap();
        assert_eq!(c.exporters, vec![Exporter::Console, Exporter::Otlp]);
        assert!(
            config(&[("OTEL_TRACES_EXPORTER", "none")])
                .unwrap()
                .exporters
                .is_empty()
        );
        let e = config(&[("OTEL_TRACES_EXPORTER", "otlp,zipkin")]).unwrap_err();
        assert!(e.to_string().contains("unknown exporter `zipkin`"), "{e}");
    }

    /// The protocol picks the default port; the traces variable wins; the
    /// general endpoint gets `/v1/traces` for HTTP, the traces one is kept.
    #[test]
    fn protocol_and_endpoint() {
        let c = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(
            (c.protocol, c.endpoint.as_str()),
            (Protocol::HttpProtobuf, "http://localhost:4318/v1/traces")
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://b:2/custom");
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).unwrap();
        assert_eq!(c.endpoint, "http://c:4317");
        let e = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert!(
            e.to_string().contains("`http/json` is not supported"),
            "{e}"
        );
        let e = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    /// Compression, the TLS files and a scheme-less gRPC endpoint, per
    /// signal: the signal's variable wins over the general one, and
    /// `…_INSECURE` only decides the scheme of a gRPC endpoint without one.
    #[test]
    fn compression_tls_and_insecure() {
        // (variables set, signal, compression, endpoint, variable naming the
        // CA file, variables naming the client key and certificate)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Signal,
            Compression,
            &'a str,
            Option<&'a str>,
            Option<(&'a str, &'a str)>,
        );
        const KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
        const CERT: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[], Signal::Traces, Compression::None, "http://localhost:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")], Signal::Traces, Compression::Gzip, "http://localhost:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")], Signal::Logs, Compression::Gzip, "http://localhost:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"), ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none")], Signal::Metrics, Compression::None, "http://localhost:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"), ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none")], Signal::Logs, Compression::Gzip, "http://localhost:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")], Signal::Traces, Compression::None, "https://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"), ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE")], Signal::Metrics, Compression::None, "http://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"), ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "true")], Signal::Logs, Compression::None, "http://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"), ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "true")], Signal::Traces, Compression::None, "https://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"), ("OTEL_EXPORTER_OTLP_INSECURE", "true")], Signal::Traces, Compression::None, "https://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"), ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "false")], Signal::Traces, Compression::None, "https://collector:4317", None, None),
            (&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")], Signal::Logs, Compression::None, "https://c:4318/v1/logs", None, None),
            (&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem")], Signal::Traces, Compression::None, "http://localhost:4317", Some("OTEL_EXPORTER_OTLP_CERTIFICATE"), None),
            (&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"), ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/m.pem")], Signal::Metrics, Compression::None, "http://localhost:4317", Some("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"), None),
            (&[("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "/l.pem")], Signal::Traces, Compression::None, "http://localhost:4317", None, None),
            (&[(KEY, "/k.pem"), (CERT, "/c.pem")], Signal::Logs, Compression::None, "http://localhost:4317", None, Some((KEY, CERT))),
            (&[(KEY, "/k.pem"), ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/t.pem"), (CERT, "/c.pem")], Signal::Traces, Compression::None, "http://localhost:4317", None, Some(("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", CERT))),
        ];
        for (env, signal, compression, endpoint, certificate, client) in cases {
            let c = config(env).unwrap();
            let otlp = match signal {
                Signal::Traces => c.traces_otlp(),
                Signal::Metrics => c.metrics.otlp,
                Signal::Logs => c.logs.otlp,
            };
            let found = (
                otlp.compression,
                otlp.endpoint.as_str(),
                otlp.tls.certificate.as_ref().map(|file| file.variable),
                otlp.tls
                    .client
                    .as_ref()
                    .map(|(key, cert)| (key.variable, cert.variable)),
            );
            assert_eq!(
                found,
                (*compression, *endpoint, *certificate, *client),
                "{env:?} {signal:?}"
            );
        }
    }

    /// A client key without its certificate names both variables: the one
    /// set and the one missing, and shows the path.
    #[test]
    fn half_an_identity_says_what_is_missing() {
        let e = config(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/otel/client.key")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid OTEL_EXPORTER_OTLP_CLIENT_KEY=`/etc/otel/client.key`: mutual TLS needs the \
             client key and its certificate: set OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE (or \
             OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE) too, or unset this one"
        );
    }

    /// Headers are percent-decoded pairs; the traces variable wins. Timeout
    /// is milliseconds.
    #[test]
    fn headers_and_timeout() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "api-key=a%3Db,x-tenant=t1",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap();
        assert_eq!(
            c.headers,
            vec![
                ("api-key".to_string(), "a=b".to_string()),
                ("x-tenant".to_string(), "t1".to_string())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        let e = config(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
    }

    /// Samplers by name, ratios checked.
    #[test]
    fn sampler() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert_eq!(c.sampler, Sampler::ParentBased(Root::TraceIdRatio(0.25)));
        assert_eq!(
            config(&[("OTEL_TRACES_SAMPLER", "traceidratio")])
                .unwrap()
                .sampler,
            Sampler::TraceIdRatio(1.0)
        );
        assert_eq!(
            config(&[("OTEL_TRACES_SAMPLER", "always_off")])
                .unwrap()
                .sampler,
            Sampler::AlwaysOff
        );
        let e = config(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER_ARG");
        let e = config(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER");
    }

    /// Span limits: the span-specific variable wins over the general one;
    /// defaults 128 and no value-length limit; invalid values are errors.
    #[test]
    fn span_limits() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.limits,
            SpanLimitSettings {
                attribute_count: 128,
                attribute_value_length: None,
                event_count: 128,
                event_attribute_count: 128,
                link_count: 128,
                link_attribute_count: 128,
            }
        );
        let c = config(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "3"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.limits,
            SpanLimitSettings {
                attribute_count: 5,
                attribute_value_length: Some(16),
                event_count: 3,
                event_attribute_count: 10,
                link_count: 2,
                link_attribute_count: 10,
            }
        );
        let c = config(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "1"),
        ])
        .unwrap();
        assert_eq!(
            (c.limits.link_count, c.limits.link_attribute_count),
            (128, 1)
        );
        let e = config(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    }

    /// Propagators: tracecontext, baggage, none.
    #[test]
    fn propagators() {
        assert_eq!(
            config(&[("OTEL_PROPAGATORS", "baggage")])
                .unwrap()
                .propagators,
            vec![PropagatorName::Baggage]
        );
        assert!(
            config(&[("OTEL_PROPAGATORS", "none")])
                .unwrap()
                .propagators
                .is_empty()
        );
        let e = config(&[("OTEL_PROPAGATORS", "tracecontext,b3")]).unwrap_err();
        assert!(e.to_string().contains("unsupported propagator `b3`"), "{e}");
    }

    /// The batch span processor: the host's queue size unless set, the
    /// specification's other defaults, each variable read.
    #[test]
    fn batch_processor() {
        assert_eq!(
            config(&[]).unwrap().batch,
            BatchSettings {
                max_queue_size: 16_384,
                schedule_delay: Duration::from_secs(5),
                max_export_batch_size: 512,
            }
        );
        let c = config(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
        ])
        .unwrap();
        assert_eq!(
            c.batch,
            BatchSettings {
                max_queue_size: 100,
                schedule_delay: Duration::from_millis(250),
                max_export_batch_size: 10,
            }
        );
    }

    /// Metrics and logs: `otlp` by default, to the same collector as
    /// traces (with their own path over HTTP); the per-signal variables win
    /// over the general ones; the export interval is 60 s unless set;
    /// cumulative unless a preference says otherwise.
    #[test]
    fn metrics_and_logs() {
        let c = config(&[]).unwrap();
        assert_eq!(c.metrics.exporters, vec![Exporter::Otlp]);
        assert_eq!(c.metrics.otlp.endpoint, "http://localhost:4317");
        assert_eq!(c.metrics.interval, Duration::from_secs(60));
        assert_eq!(c.metrics.temporality, TemporalityPreference::Cumulative);
        assert_eq!(c.logs.exporters, vec![Exporter::Otlp]);
        assert_eq!(c.logs.schedule_delay, Duration::from_secs(1));
        assert_eq!(c.logs.max_queue_size, 2048);
        assert_eq!(c.logs.max_export_batch_size, 512);
        assert_eq!(c.logs.export_timeout, Duration::from_secs(30));
        let c = config(&[
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "300"),
        ])
        .unwrap();
        assert_eq!(
            (c.logs.max_queue_size, c.logs.max_export_batch_size),
            (100, 100)
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-metrics=2"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "250"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
            ("OTEL_METRICS_EXPORTER", "console,none"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(c.metrics.otlp.endpoint, "http://collector:4318/v1/metrics");
        assert_eq!(c.logs.otlp.endpoint, "http://collector:4318/v1/logs");
        assert_eq!(
            c.metrics.otlp.headers,
            vec![("x-metrics".into(), "2".into())]
        );
        assert_eq!(c.logs.otlp.headers, vec![("x-general".into(), "1".into())]);
        assert_eq!(c.logs.otlp.timeout, Duration::from_millis(250));
        assert_eq!(c.metrics.interval, Duration::from_millis(1500));
        assert_eq!(c.metrics.exporters, vec![Exporter::Console]);
        assert!(c.logs.exporters.is_empty());
        assert_eq!(c.metrics.temporality, TemporalityPreference::Delta);
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/custom"),
        ])
        .unwrap();
        assert_eq!(c.metrics.otlp.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.metrics.otlp.endpoint, "http://m:9/custom");
        assert_eq!(c.protocol, Protocol::Grpc);
        let c = config(&[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(c.logs.otlp.endpoint, "http://localhost:4318/v1/logs");
    }

    /// The metrics SDK's variables: each value by name (in any case), the
    /// specification's defaults when unset.
    #[test]
    fn metrics_sdk_variables() {
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            ExemplarFilter,
            HistogramAggregation,
            u64,
        );
        use ExemplarFilter as F;
        use HistogramAggregation as H;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[], F::TraceBased, H::ExplicitBucket, 30_000),
            (&[("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")], F::AlwaysOn, H::ExplicitBucket, 30_000),
            (&[("OTEL_METRICS_EXEMPLAR_FILTER", "ALWAYS_OFF")], F::AlwaysOff, H::ExplicitBucket, 30_000),
            (&[("OTEL_METRICS_EXEMPLAR_FILTER", " trace_based ")], F::TraceBased, H::ExplicitBucket, 30_000),
            (&[("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")], F::TraceBased, H::Base2Exponential, 30_000),
            (&[("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "explicit_bucket_histogram")], F::TraceBased, H::ExplicitBucket, 30_000),
            (&[("OTEL_METRIC_EXPORT_TIMEOUT", "2500")], F::TraceBased, H::ExplicitBucket, 2_500),
        ];
        for &(env, filter, aggregation, timeout) in cases {
            let c = config(env).unwrap().metrics;
            assert_eq!(
                (c.exemplar_filter, c.histogram_aggregation, c.export_timeout),
                (filter, aggregation, Duration::from_millis(timeout)),
                "{env:?}"
            );
        }
    }

    /// Log record limits: the log-record variable wins over the general
    /// one; defaults 128 and no value-length limit.
    #[test]
    fn log_record_limits() {
        type Case<'a> = (&'a [(&'a str, &'a str)], u32, Option<usize>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[], 128, None),
            (&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "7"), ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "9")], 7, Some(9)),
            (&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "7"), ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "0")], 0, None),
            (&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "9"), ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3")], 128, Some(3)),
            (&[("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1"), ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1")], 128, None),
        ];
        for &(env, count, length) in cases {
            let limits = config(env).unwrap().logs.limits;
            assert_eq!(
                (limits.attribute_count, limits.attribute_value_length),
                (count, length),
                "{env:?}"
            );
        }
    }

    /// Each variable with a value the host cannot use is a start-up error
    /// that names the variable and shows the value (the other variables of
    /// a row only make the bad one matter).
    #[test]
    fn every_invalid_value_is_a_startup_error() {
        // (variable, invalid value, other variables set)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("OTEL_SDK_DISABLED", "yes", &[]),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue", &[]),
            ("OTEL_TRACES_EXPORTER", "zipkin", &[]),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift", &[]),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://", &[]),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=x", &[]),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1", &[]),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote", &[]),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5", &[("OTEL_TRACES_SAMPLER", "traceidratio")]),
            ("OTEL_TRACES_SAMPLER_ARG", "half", &[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")]),
            ("OTEL_PROPAGATORS", "b3", &[]),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "many", &[]),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "-5", &[]),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1", &[]),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1.5", &[]),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "ten", &[]),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "x", &[]),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", &[]),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0", &[]),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1", &[]),
            ("OTEL_BSP_SCHEDULE_DELAY", "5s", &[]),
            ("OTEL_BSP_EXPORT_TIMEOUT", "30s", &[]),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", &[]),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "all", &[]),
            ("OTEL_METRICS_EXPORTER", "prometheus", &[]),
            ("OTEL_METRICS_EXPORTER", "otlp,statsd", &[]),
            ("OTEL_METRIC_EXPORT_INTERVAL", "60s", &[]),
            ("OTEL_METRIC_EXPORT_INTERVAL", "0", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4318", &[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")]),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "novalue", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "5s", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", &[]),
            ("OTEL_LOGS_EXPORTER", "syslog", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "ftp://x", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "udp", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "a=%zz", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "soon", &[]),
            ("OTEL_BLRP_SCHEDULE_DELAY", "1s", &[]),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "0", &[]),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "-1", &[]),
            ("OTEL_BLRP_EXPORT_TIMEOUT", "30s", &[]),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "deflate", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "yes", &[]),
            ("OTEL_EXPORTER_OTLP_INSECURE", "yes", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "1", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "on", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "no", &[]),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/otel/client.key", &[]),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem", &[]),
            ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k.pem", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/c.pem", &[]),
            ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "/k.pem", &[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k.pem"), ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "/c.pem")]),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "30s", &[]),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "-1", &[]),
            ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", &[]),
            ("OTEL_METRICS_EXEMPLAR_FILTER", "tracebased", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "exponential", &[]),
            ("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2", &[]),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "many", &[]),
            ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1", &[]),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "1.5", &[]),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "x", &[]),
        ];
        for &(variable, value, others) in cases {
            let mut env = others.to_vec();
            env.push((variable, value));
            let e = config(&env).unwrap_err();
            assert_eq!((e.variable, e.value.as_str()), (variable, value), "{e}");
            assert!(
                e.to_string().contains(&format!("{variable}=`{value}`")),
                "{e}"
            );
        }
    }
}
