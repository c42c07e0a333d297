//! Outbound: a guest's outgoing HTTP once its CLIENT span is open. Which
//! destinations it may reach (`egress`, `--allow-outbound`), the trace
//! context and baggage injected into its headers, the keep-alive `client`,
//! and the CLIENT span's attributes, status and `error.type` (`send`, the
//! one mapping of wasi-http errors).
//!
//! Owns: everything on the wire of an outgoing request.
//! May use: [`crate::propagation`] (injection) and [`crate::telemetry`]
//! (attribute keys). Where the CLIENT span sits in the request's span tree
//! is `guest_api`'s business, which calls [`Outbound::send`].

mod client;
mod egress;
mod send;

pub use client::Client;
pub use egress::{Egress, OutboundFlag};
pub use send::{Outbound, SendFuture, client_span};
