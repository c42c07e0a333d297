//! What a request's store holds: WASI, wasi-http, the resource table and the
//! request's spans. One per request, dropped with the instance.

use std::sync::Arc;

use opentelemetry::Context;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::engine::{DEFAULT_MEMORY_LIMIT, TABLE_ELEMENT_LIMIT};
use crate::guest_api::{RequestSpans, Stream};
use crate::outbound::Outbound;
use crate::propagation::Propagator;
use crate::telemetry::ServiceTracer;

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
    pub limits: InstanceLimiter,
}

impl RequestState {
    /// The state of a request whose spans are `spans`, whose guest sees the
    /// environment `env` and may grow its linear memory to `memory` bytes.
    pub fn new(env: &[(String, String)], spans: RequestSpans, memory: usize) -> RequestState {
        let mut wasi = WasiCtx::builder();
        match spans.output() {
            Some(output) => {
                wasi.stdout(output.stream(Stream::Stdout))
                    .stderr(output.stream(Stream::Stderr));
            }
            None => {
                wasi.inherit_stdout().inherit_stderr();
            }
        }
        wasi.envs(env);
        RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            spans,
            limits: InstanceLimiter::new(memory),
        }
    }

    /// A state for calls outside any request (reading `service-info` at
    /// start-up): no spans, environment `env`.
    pub fn scratch(env: &[(String, String)]) -> RequestState {
        let spans = RequestSpans::new(
            ServiceTracer::Disabled,
            Outbound::new(Arc::new(Propagator::new(&[]))),
            Context::new(),
            Vec::new(),
            String::new(),
        );
        RequestState::new(env, spans, DEFAULT_MEMORY_LIMIT)
    }
}

/// wasmtime's caps on what one instance may allocate, remembering whether a
/// cap was hit so that the failure is named in the span rather than guessed
/// from a trap.
pub struct InstanceLimiter {
    inner: StoreLimits,
    /// A memory or table growth was refused.
    pub hit: bool,
    /// The largest linear memory the instance reached, in bytes.
    pub peak_memory: usize,
}

impl InstanceLimiter {
    /// Linear memory up to `memory` bytes, tables up to
    /// [`TABLE_ELEMENT_LIMIT`] elements; growing past either traps.
    pub fn new(memory: usize) -> InstanceLimiter {
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory)
            .table_elements(TABLE_ELEMENT_LIMIT)
            .trap_on_grow_failure(true)
            .build();
        InstanceLimiter {
            inner,
            hit: false,
            peak_memory: 0,
        }
    }
}

impl ResourceLimiter for InstanceLimiter {
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
