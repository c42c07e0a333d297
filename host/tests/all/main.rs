//! The host's integration tests, one binary with a module per topic (one
//! link of wasmtime instead of one per file): real host processes serving
//! the real components, a real OTLP receiver, loopback sockets.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

mod common;

mod any_component;
mod collector_faults;
mod explorer;
mod fuzz_corpus;
mod guest_spans;
mod limits;
mod logs;
mod metrics;
mod order_system;
mod otlp_tls;
mod payment_py;
mod propagation;
mod replica;
mod soak;
mod startup;
mod telemetry;
mod wasi_otel_signals;
