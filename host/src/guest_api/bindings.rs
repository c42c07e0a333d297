//! The host's view of `wit/`: only `bindgen!`, so that what the interface is
//! stays apart from how the host serves it.
//!
//! `wasi:*` interfaces map to wasmtime's own implementations; the
//! `wasm-otel:host` interfaces and `wasi:otel` are generated here. The world
//! is `service-otel`, the `service` world plus `wasi:otel`'s tracing,
//! metrics and logs.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasm-otel:host/service-otel",
    imports: { default: trappable },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

pub use exports::wasm_otel::host::service_info::{GuestIndices as ServiceInfoIndices, Info};
pub use wasm_otel::host::{metrics, tracing};
