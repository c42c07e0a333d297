//! What guests call: the bindings, the request's spans, our tracing
//! interface and `wasi:otel`.

pub mod bindings;
pub mod spans;
pub mod wasi_otel;
pub mod wasm_otel;
