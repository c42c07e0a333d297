//! The Wasm runtime: the engine (allocator pool, epoch ticker), finding,
//! compiling (through the compile cache) and pre-instantiating a component,
//! reading what it says about itself (`service-info`, its language), what a
//! request's store holds, and `--watch`.
//!
//! Owns: everything wasmtime-specific below a request: a new per-instance
//! cap goes in `engine` (its default) and `state` (its enforcement).
//! May use: [`crate::guest_api`] (the store holds the request's spans, the
//! linker adds the guest interfaces), [`crate::outbound`],
//! [`crate::propagation`], [`crate::telemetry`]. Never `serve`:
//! `watch` hands a reloaded component to a callback.

mod cache;
mod component;
mod engine;
mod language;
mod state;
mod watch;

pub use cache::CompileCache;
pub use component::{Loaded, describe, linker, load, resolve};
pub use engine::{
    Allocation, DEFAULT_MEMORY_LIMIT, DEFAULT_POOL_INSTANCES, EngineOptions, deadline_ticks, engine,
};
pub use state::RequestState;
pub use watch::watch;
