//! Telemetry: the OpenTelemetry SDK the host owns and everything about
//! where spans go.
//!
//! - [`config`]: every `OTEL_*` variable, one function each; an invalid
//!   value is a start-up error. A new `OTEL_*` variable goes here.
//! - [`semconv`]: every attribute key the host writes, from the semantic
//!   conventions crate or named here. A new span attribute's key goes here.
//! - `sdk`: tracer providers, resources, exporters, shutdown.
//! - `tracer`: [`ServiceTracer`], which starts the host's spans and records
//!   the spans guests report whole.
//! - `random_flag`: the random trace-id flag the SDK leaves off.
//! - `export_queue`: the bounded OTLP queue and its exact drop count.
//! - `delivery`: saying when spans stop, and start again, reaching the
//!   collector.
//! - `traces_file`: `--traces-file`, OTLP/JSON lines.
//! - [`metrics`]: the host's instruments and the guests', aggregated here
//!   with exemplars (see its doc for why not the SDK's).
//! - [`logs`]: guest output and the host's request log as log records;
//!   `log_queue`: the bounded queue they wait in, encoded, until export.
//! - `transport`: how an export reaches the collector: TLS (the
//!   certificate files, read at start-up), the gRPC channel, the OTLP/HTTP
//!   POST and gzip, the same for every signal.
//! - `wire`: the Protocol Buffers wire format by hand, for the logs
//!   export of the host's own records.
//! - `push`: the thread that exports metrics (and logs) over OTLP gRPC or
//!   HTTP/protobuf every interval, and at shutdown.
//! - `console`, `waterfall`, `display`: the terminal view of traces.
//! - [`explorer`]: `--ui`, the trace explorer: a bounded store of the last
//!   traces fed by every tracer provider and by OTLP receivers, Jaeger's
//!   query API and pages.
//!
//! May use: [`crate::propagation`] (the propagators `OTEL_PROPAGATORS`
//! selects, the percent codec). Nothing above it: the request, the guest
//! and the runtime are not its business.

pub mod config;
mod console;
mod delivery;
mod display;
pub mod explorer;
mod export_queue;
mod log_queue;
pub mod logs;
pub mod metrics;
mod push;
mod random_flag;
mod sdk;
pub mod semconv;
mod tracer;
mod traces_file;
mod transport;
mod waterfall;
mod wire;

pub use config::OtelConfig;
pub use display::{JAEGER_TRACE_URL, write_hex, write_request_summary};
pub use logs::ServiceLogs;
pub use metrics::ServiceMetrics;
pub use sdk::{ServiceIdentity, Telemetry, service_name};
pub use tracer::{ReportedSpan, ServiceTracer, random_root};
