//! A native host that serves `wasi:http` components on wasmtime and traces
//! every request with OpenTelemetry.
//!
//! The host owns the OpenTelemetry SDK. Around every incoming request it opens
//! a SERVER span (continuing the caller's W3C Trace Context), around every
//! outgoing request a CLIENT span (injecting the context into the headers),
//! and it gives guests the `wasm-otel:host/tracing` interface to add their own
//! spans to the same trace.

pub mod guest_api;
pub mod outbound;
pub mod propagation;
pub mod runtime;
pub mod serve;
pub mod telemetry;
#[doc(hidden)]
pub mod fuzzing;
