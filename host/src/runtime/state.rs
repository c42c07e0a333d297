//! What a request's store holds: WASI, wasi-http, the resource table and the
//! request's spans. One per request, dropped with the instance.

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::guest_api::spans::RequestSpans;

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
    /// The instance's memory and table caps.
    pub limits: Limits,
}

/// Caps on what one instance may allocate, remembering whether a cap was hit
/// so that the failure is named in the span rather than guessed from a trap.
pub struct Limits {
    inner: StoreLimits,
    /// A memory or table growth was refused.
    pub hit: bool,
    /// The largest linear memory the instance reached, in bytes.
    pub peak_memory: usize,
}

impl Limits {
    /// Wraps wasmtime's limits.
    pub fn new(inner: StoreLimits) -> Limits {
        Limits {
            inner,
            hit: false,
            peak_memory: 0,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum);
        match allowed {
            Ok(true) => self.peak_memory = self.peak_memory.max(desired),
            _ => self.hit = true,
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.table_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.hit = true;
        }
        allowed
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
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
