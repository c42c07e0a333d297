//! The guest side of the `wasm-otel:host/service` world, for Rust components.
//!
//! Components depend on this crate instead of generating bindings themselves,
//! so that their code reads as the service it is rather than as WIT plumbing.
//!
//! # Layout
//! - [`bindings`]: the `wit-bindgen` output for the world in `wit/`, and the
//!   `export!` macro a component uses to export its handler.
//! - [`trace`]: RAII spans over the host's `tracing` interface (a span ends
//!   when dropped) and the request-level calls (route, server attributes).
//! - [`http`]: reading an incoming request, writing a JSON response, and a
//!   blocking JSON `POST` over `wasi:http/outgoing-handler`.
//! - [`metrics`]: counters and histograms over the host's `metrics`
//!   interface.
//! - [`json`]: strict validation of JSON request bodies into clear messages.
//! - [`requests`]: the Order API's and the Payment Service's request bodies,
//!   decoded and validated (pure, so tested and fuzzed natively).
//! - [`fuzzing`]: the properties the fuzz targets and the corpus tests check.

#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod json;
pub mod metrics;
pub mod requests;
pub mod trace;

/// Bindings for the `wasm-otel:host/service` world.
///
/// A component implements `bindings::exports::wasi::http::incoming_handler::Guest`
/// and `bindings::exports::wasm_otel::host::service_info::Guest`, then calls
/// `otel_guest::bindings::export!(MyService with_types_in otel_guest::bindings);`.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasm-otel:host/service",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "otel_guest::bindings",
    });
}

pub use bindings::exports::wasm_otel::host::service_info::Info as ServiceInfo;
