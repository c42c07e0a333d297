//! W3C Trace Context and Baggage.

pub mod baggage;
pub mod trace_context;
