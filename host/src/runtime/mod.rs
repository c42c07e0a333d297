//! The Wasm runtime: engine, components, compile cache, store state, watch.

pub mod cache;
pub mod component;
pub mod language;
pub mod state;
pub mod watch;
