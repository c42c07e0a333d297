//! A native host that serves `wasi:http` components on wasmtime and traces
//! every request with OpenTelemetry.
//!
//! The host owns the OpenTelemetry SDK. Around every incoming request it opens
//! a SERVER span (continuing the caller's W3C Trace Context), around every
//! outgoing request a CLIENT span (injecting the context into the headers),
//! and it gives guests the `wasm-otel:host/tracing` interface to add their own
//! spans to the same trace.
//!
//! # Layout
//! Follow a request top to bottom; no module reaches back up.
//! - [`server`]: the accept loop, connections, graceful shutdown.
//! - [`linger`]: the lingering close of a connection answered before its
//!   request body was read.
//! - [`health`]: liveness and readiness probes, and the drain at SIGTERM.
//! - [`handler`]: one request: store, instance, server span, guest call, response.
//! - [`state`]: what a request's store holds.
//! - [`spans`]: a request's spans: the server span and the guest's spans.
//! - [`tracing_host`]: the host side of the WIT `tracing` interface.
//! - [`wasi_otel`]: the host side of `wasi:otel/tracing`, for guests that
//!   report spans from an OpenTelemetry SDK of their own.
//! - [`outgoing`]: a guest's outgoing HTTP: the CLIENT span and header injection.
//! - [`client`]: the outgoing HTTP client, with keep-alive.
//! - [`egress`]: which destinations a guest may reach (`--allow-outbound`).
//! - [`propagation`]: W3C Trace Context in and out of HTTP headers.
//! - [`baggage`]: W3C Baggage, member by member, within its limits.
//! - [`telemetry`]: tracer providers, exporters, resources, shutdown.
//! - [`export_queue`]: the bounded export queue and its exact drop count.
//! - [`config`]: the standard `OTEL_*` variables.
//! - [`console`] and [`waterfall`]: the terminal trace view.
//! - [`explorer`]: `--ui`, the trace explorer on the Jaeger UI's port.
//! - [`traces_file`]: `--traces-file`, OTLP/JSON lines.
//! - [`watch`]: `--watch`, reloading a rebuilt component.
//! - [`component`]: finding, compiling and pre-instantiating a component.
//! - [`cache`]: the compiled-component cache.
//! - [`language`]: a component's source language, from its `producers` section.
//! - [`bindings`]: what `wit/` generates for the host.
//! - `fuzzing` (hidden): the properties the fuzz targets and the corpus tests check.

pub mod baggage;
pub mod bindings;
pub mod cache;
pub mod client;
pub mod component;
pub mod config;
pub mod console;
pub mod egress;
pub mod explorer;
pub mod export_queue;
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
pub mod health;
pub mod language;
pub mod linger;
pub mod outgoing;
pub mod propagation;
pub mod server;
pub mod spans;
pub mod state;
pub mod telemetry;
pub mod traces_file;
pub mod tracing_host;
pub mod wasi_otel;
pub mod watch;
pub mod waterfall;
