//! Propagation: what travels in HTTP headers between services, to the letter
//! of the W3C specifications. W3C Trace Context (`traceparent`,
//! `tracestate`) in [`trace_context`], W3C Baggage in [`baggage`], the
//! percent codec both baggage and the `OTEL_*` lists use in [`percent`].
//! The rule tables that pin each specification down are the tests beside
//! each file.
//!
//! Owns: parsing and formatting those headers, and the `traceparent`
//! formatter every header the host writes goes through (`traceparent`,
//! `traceresponse`, the Server-Timing `trace` metric).
//! May use: nothing else in the crate (it is the bottom of the host).

mod baggage;
pub(crate) mod percent;
mod trace_context;

pub use baggage::{Baggage, MAX_BYTES, MAX_MEMBERS};
pub use trace_context::{
    BAGGAGE, Extracted, MAX_TRACESTATE_MEMBERS, Propagator, PropagatorName, RANDOM, TRACEPARENT,
    TRACESTATE, parse_traceparent, parse_tracestate, respond, traceparent, valid_tracestate_key,
    valid_tracestate_value,
};
