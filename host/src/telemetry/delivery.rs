//! Delivery reporting: says once when spans stop reaching the collector and
//! once when they reach it again, counts what was not delivered, and reports
//! what a full export queue dropped, periodically and never per span.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use wasmtime::error::Context as _;

use super::console::Console;
use super::export_queue::{Delivery, QueueStats};
use super::transport::LastError;

/// How often spans dropped by a full export queue are reported (once per
/// interval with the count, never per span).
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Starts the thread that reports drops every [`DROP_REPORT_INTERVAL`]; it
/// ends with `queue`.
pub(super) fn report_drops(
    queue: std::sync::Weak<QueueStats>,
    endpoint: String,
) -> wasmtime::Result<()> {
    std::thread::Builder::new()
        .name("export-drop-report".into())
        .spawn(move || {
            loop {
                std::thread::sleep(DROP_REPORT_INTERVAL);
                let Some(queue) = queue.upgrade() else { return };
                let dropped = queue.dropped_since_last_report();
                if dropped > 0 {
                    eprintln!(
                        "warning: {dropped} span(s) dropped in the last {}s because the export queue \
                         was full (OTEL_BSP_MAX_QUEUE_SIZE); the collector at `{endpoint}` is not \
                         keeping up ({} in all)",
                        DROP_REPORT_INTERVAL.as_secs(),
                        queue.dropped()
                    );
                }
            }
        })
        .map(drop)
        .context("cannot start the thread that reports dropped spans")
}

/// Says, once, when spans stop reaching the collector and, once, when they
/// reach it again, instead of failing quietly or on every batch; counts the
/// spans not delivered.
#[derive(Debug)]
pub(super) struct Reporter {
    pub(super) endpoint: String,
    pub(super) failing: Arc<AtomicBool>,
    pub(super) undelivered: Arc<AtomicU64>,
    /// The terminal view that takes over while delivery fails.
    pub(super) fallback: Option<Arc<Console>>,
    /// Over OTLP/HTTP, the client's last failure in full (a TLS alert, a
    /// refused connection): the SDK's error says only "network error".
    pub(super) cause: Option<LastError>,
}

impl Delivery for Reporter {
    fn settled(&self, count: usize, result: &OTelSdkResult) {
        match result {
            Err(error) => {
                self.undelivered.fetch_add(count as u64, Ordering::Relaxed);
                if self.failing.swap(true, Ordering::Relaxed) {
                    return;
                }
                let cause = self
                    .cause
                    .as_ref()
                    .and_then(|cause| cause.lock().ok()?.take());
                let error = match cause {
                    Some(cause) => format!("{error} ({cause})"),
                    None => error.to_string(),
                };
                let instead = if self.fallback.is_some() {
                    "Traces are drawn in the terminal meanwhile."
                } else {
                    "See them in the terminal with OTEL_TRACES_EXPORTER=console."
                };
                eprintln!(
                    "warning: spans are not reaching the collector at `{}` ({count} dropped): {error}. \
                     Requests are still served. Start one (`docker compose up -d`) or point \
                     OTEL_EXPORTER_OTLP_ENDPOINT at yours. {instead} A line follows when delivery resumes.",
                    self.endpoint
                );
                if let Some(console) = &self.fallback {
                    console.delivery_failed();
                }
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                eprintln!(
                    "spans are reaching the collector at `{}` again",
                    self.endpoint
                );
                if let Some(console) = &self.fallback {
                    console.delivery_resumed();
                }
            }
            Ok(()) => {}
        }
    }
}
