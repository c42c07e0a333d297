//! What one request may use: [`RequestLimits`], one field per command-line
//! flag, and their defaults. A new per-request limit goes here (its flag in
//! `cli.rs`, its enforcement in the pipeline step it bounds).

use std::time::Duration;

use super::linger::Linger;
use crate::guest_api::AttributeLimits;
pub use crate::runtime::DEFAULT_MEMORY_LIMIT;

/// What one request may use. Each has a command-line flag.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Wall-clock time for the guest to finish; past it, 504.
    pub deadline: Duration,
    /// Linear memory per instance, in bytes; past it, 500.
    pub memory: usize,
    /// Request body, in bytes; past it, 413 before the guest runs.
    pub body: usize,
    /// Guest spans per request; more are silently not recorded.
    pub spans: usize,
    /// Guest stdout and stderr lines and `wasi:otel` log records recorded
    /// per request, together; more are dropped and counted.
    pub log_lines: usize,
    /// Attributes per span and string length (from the `OTEL_*` limits).
    pub attributes: AttributeLimits,
    /// Requests run at once; more wait in a queue.
    pub concurrent: usize,
    /// Requests that may wait; past that, 503 at once.
    pub queue: usize,
    /// How long a connection may take to send a request's headers, and how
    /// long an idle keep-alive connection stays open (slow-loris defence).
    pub header_timeout: Duration,
    /// How long and how much a connection answered before its body was
    /// read is drained before it is closed, so that the client gets the
    /// response (see [`Linger`]).
    pub linger: Linger,
}

/// The default request deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// The default cap on guest spans per request.
pub const DEFAULT_SPAN_LIMIT: usize = 1000;
/// The default cap on guest output lines per request.
pub const DEFAULT_LOG_LINE_LIMIT: usize = 1000;

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            deadline: DEFAULT_DEADLINE,
            memory: DEFAULT_MEMORY_LIMIT,
            body: DEFAULT_BODY_LIMIT,
            spans: DEFAULT_SPAN_LIMIT,
            log_lines: DEFAULT_LOG_LINE_LIMIT,
            attributes: AttributeLimits::default(),
            concurrent: DEFAULT_CONCURRENCY,
            queue: DEFAULT_QUEUE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            linger: Linger::default(),
        }
    }
}

/// The default time to send a request's headers (and to stay idle).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default number of requests run at once.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// The default number of requests that may wait for a turn.
pub const DEFAULT_QUEUE: usize = 1024;
