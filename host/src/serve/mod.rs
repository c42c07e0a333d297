//! Serving: the accept loop (`accept`), with the lingering close of a
//! connection answered before its body was read (`linger`) and a replica's
//! probes and drain at SIGTERM (`health`); one request as a short pipeline
//! of named steps (`handler`): SERVER span, body within its limit,
//! admission, the guest task (`guest_task`), the response (`response`).
//! `service` holds what every request of a component shares, `limits` what
//! one request may use, `server_span` the SERVER span's semantic
//! conventions, `failure` what a failed guest or a refused body means for
//! the status.
//!
//! The top of the host: it may use every other module; none uses it.

mod accept;
mod failure;
mod guest_task;
mod handler;
pub mod health;
mod limits;
mod linger;
mod response;
mod server_span;
mod service;

pub use accept::run;
pub use limits::{
    DEFAULT_BODY_LIMIT, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_LOG_LINE_LIMIT, DEFAULT_MEMORY_LIMIT, DEFAULT_QUEUE, DEFAULT_SPAN_LIMIT, RequestLimits,
};
pub use linger::{DEFAULT_LINGER_BYTES, DEFAULT_LINGER_TIME, Linger};
pub use server_span::server_span;
pub use service::{Connection, Service};
