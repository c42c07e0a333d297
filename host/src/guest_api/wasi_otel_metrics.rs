//! The host side of `wasi:otel/metrics@0.2.0-rc.2`: a guest whose
//! OpenTelemetry SDK aggregates its own instruments exports them here, and
//! the host forwards them with the service's next metrics export (same
//! destination, same `OTEL_METRICS_EXPORTER`), as the guest aggregated
//! them: every data kind, number, exemplar and temporality, under the
//! service's resource merged with the guest's (`ServiceMetrics::forward`).
//!
//! Bounded per request: at most [`MAX_POINTS_PER_REQUEST`] data points
//! over all of a request's calls; a point that breaks OTLP's rules or the
//! size bounds of `convert` is refused alone. What is not forwarded is
//! counted in `wasm.guest.points.dropped` (by reason) and on the SERVER
//! span, and said in the call's `error`; nothing else of the request, and
//! nothing of any other request, changes.

use super::bindings::wasi::otel::metrics::{Error, Host, ResourceMetrics};
use super::convert::Converted;
use super::spans::RequestSpans;
use crate::telemetry::metrics::{INVALID, MAX_PENDING_POINTS, REQUEST_LIMIT, TOO_LARGE};

/// Data points one request may export, over all its calls (the
/// specification's cardinality limit of one instrument: a request's SDK
/// exports its own few instruments, not thousands of series).
pub const MAX_POINTS_PER_REQUEST: usize = 2000;

impl Host for RequestSpans {
    fn export(&mut self, metrics: ResourceMetrics) -> wasmtime::Result<Result<(), Error>> {
        let Some((service, _)) = self.metrics() else {
            // Metrics are off (`OTEL_METRICS_EXPORTER=none`): nothing to do.
            return Ok(Ok(()));
        };
        let budget = MAX_POINTS_PER_REQUEST.saturating_sub(self.exported_points);
        let converted = Converted::resource_metrics(metrics, budget);
        let kept = converted.kept;
        let queued = service.forward(
            converted.resource,
            converted.schema_url,
            converted.scopes,
            kept,
        );
        let forwarded = &service.forwarded;
        forwarded.dropped(converted.invalid, INVALID);
        forwarded.dropped(converted.too_large, TOO_LARGE);
        forwarded.dropped(converted.over_budget, REQUEST_LIMIT);
        self.exported_points += kept;
        let unqueued = if queued { 0 } else { kept as u64 };
        let dropped = converted.invalid + converted.too_large + converted.over_budget + unqueued;
        self.points_dropped += dropped;
        if dropped == 0 {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "{dropped} data points not exported: {} invalid, {} too large, {} past the \
             request's {MAX_POINTS_PER_REQUEST}, {unqueued} past the service's queue of \
             {MAX_PENDING_POINTS}",
            converted.invalid, converted.too_large, converted.over_budget
        )))
    }
}
