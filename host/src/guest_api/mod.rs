//! The guest API: what a component calls on the host, and the request's
//! spans those calls act on.
//!
//! - `bindings`: what `wit/` generates (only `bindgen!`).
//! - `spans`: [`RequestSpans`], the request's SERVER span and its one stack
//!   of open guest spans, of either interface.
//! - `attributes`: a span's attributes within the `OTEL_*` limits.
//! - `convert`: every WIT → OpenTelemetry conversion, once, as `From`
//!   (`wasi:otel` metrics and log records straight to OTLP, checked).
//! - `wasm_otel`: the host side of our `wasm-otel:host/tracing`.
//! - `wasi_otel`: the host side of `wasi:otel/tracing`.
//! - `wasi_otel_metrics`: the host side of `wasi:otel/metrics`.
//! - `wasi_otel_logs`: the host side of `wasi:otel/logs`.
//! - `wasm_metrics`: the host side of our `wasm-otel:host/metrics`.
//! - `outgoing`: where a guest's outgoing request's CLIENT span opens.
//! - `output`: the guest's stdout and stderr, as log records in the span
//!   that was innermost when each line was written.
//!
//! A new guest interface: its WIT in `wit/`, a file here with its `impl
//! Host`, a line in [`add_to_linker`].
//!
//! May use: [`crate::outbound`], [`crate::propagation`], [`crate::telemetry`].
//! Nothing of the runtime or of serving: the store that holds
//! [`RequestSpans`] is `runtime`'s.

mod attributes;
mod bindings;
mod convert;
mod outgoing;
mod output;
mod spans;
mod wasi_otel;
mod wasi_otel_logs;
mod wasi_otel_metrics;
mod wasm_metrics;
mod wasm_otel;

use wasmtime::component::{HasSelf, Linker};

pub use attributes::AttributeLimits;
pub use bindings::{Info, ServiceInfoIndices};
pub use output::{GuestOutput, Stream};
pub use spans::{Failure, Outcome, RequestSpans};

/// Adds our tracing and metrics interfaces and `wasi:otel`'s tracing,
/// metrics and logs to `linker`, all served by the request's spans, which
/// `spans` finds in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    spans: fn(&mut T) -> &mut RequestSpans,
) -> wasmtime::Result<()> {
    bindings::tracing::add_to_linker::<T, HasSelf<RequestSpans>>(linker, spans)?;
    bindings::metrics::add_to_linker::<T, HasSelf<RequestSpans>>(linker, spans)?;
    bindings::wasi::otel::tracing::add_to_linker::<T, HasSelf<RequestSpans>>(linker, spans)?;
    bindings::wasi::otel::metrics::add_to_linker::<T, HasSelf<RequestSpans>>(linker, spans)?;
    bindings::wasi::otel::logs::add_to_linker::<T, HasSelf<RequestSpans>>(linker, spans)?;
    Ok(())
}
