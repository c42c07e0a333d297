//! A native host that serves `wasi:http` components on wasmtime and traces
//! every request with OpenTelemetry.
//!
//! The host owns the OpenTelemetry SDK. Around every incoming request it opens
//! a SERVER span (continuing the caller's W3C Trace Context), around every
//! outgoing request a CLIENT span (injecting the context into the headers),
//! and it gives guests the `wasm-otel:host/tracing` interface (and
//! `wasi:otel/tracing`) to add their own spans to the same trace.
//!
//! # Layout
//!
//! Follow a request top to bottom; a module uses only those below it.
//!
//! - `serve`: the accept loop, the lingering close of a connection
//!   answered before its body was read, the replica's health probes and
//!   drain; one request as a pipeline of named
//!   steps (SERVER span, body limit, admission, guest task, response); the
//!   per-request limits.
//! - `runtime`: the engine, loading and compiling components, the compile
//!   cache, a request's store state, `--watch`.
//! - `guest_api`: the request's spans (one stack of open spans), their
//!   attributes, our tracing interface and `wasi:otel`, the WIT →
//!   OpenTelemetry conversions.
//! - `outbound`: a guest's outgoing HTTP: egress, injection, the CLIENT
//!   span's contents, the keep-alive client.
//! - `telemetry`: SDK set-up, every `OTEL_*` variable, the export queue,
//!   delivery reports, the traces file, semantic conventions, the console
//!   view and the trace explorer (`--ui`).
//! - `propagation`: W3C Trace Context, W3C Baggage, the percent codec.
//!
//! The modules are private; what the binary, the benchmarks and the fuzz
//! targets use is re-exported here.

#![warn(missing_docs)]

mod guest_api;
mod outbound;
mod propagation;
mod runtime;
mod serve;
mod telemetry;

/// The properties the fuzz targets check, shared with the corpus tests.
#[doc(hidden)]
pub mod fuzzing;

pub use guest_api::AttributeLimits;
pub use outbound::{Client, Egress, OutboundFlag};
pub use propagation::Propagator;
pub use runtime::{
    Allocation, CompileCache, DEFAULT_POOL_INSTANCES, EngineOptions, Loaded, RequestState,
    describe, engine, linker, load, resolve, watch,
};
pub use serve::health;
pub use serve::{
    Connection, DEFAULT_BODY_LIMIT, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_LINGER_BYTES, DEFAULT_LINGER_TIME, DEFAULT_LOG_LINE_LIMIT, DEFAULT_MEMORY_LIMIT,
    DEFAULT_QUEUE, DEFAULT_SPAN_LIMIT, Linger, RequestLimits, Service, run,
};
pub use telemetry::explorer;
pub use telemetry::{
    OtelConfig, ServiceIdentity, ServiceLogs, ServiceMetrics, ServiceTracer, Telemetry,
    service_name,
};
