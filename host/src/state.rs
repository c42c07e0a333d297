//! What a request's store holds: WASI, wasi-http, the resource table and the
//! request's spans. One per request, dropped with the instance.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::spans::RequestSpans;

/// The data of one request's `Store`.
pub struct RequestState {
    /// The guest's WASI context: its environment (`--env`), stdout, stderr.
    pub wasi: WasiCtx,
    /// wasi-http limits.
    pub http: WasiHttpCtx,
    /// WASI and wasi-http resources (streams, requests, bodies).
    pub table: ResourceTable,
    /// The request's spans; also the wasi-http hooks, which open the CLIENT
    /// span of every outgoing request under the innermost open span.
    pub spans: RequestSpans,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.spans,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}
