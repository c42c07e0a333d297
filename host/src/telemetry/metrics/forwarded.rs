//! Metrics a guest aggregated itself and exported through
//! `wasi:otel/metrics`: already OTLP (`guest_api` converts and checks
//! them), they wait here for the service's next export, which carries each
//! of them once, as the guest's SDK aggregated it (its temporality, its
//! start times), beside the host's own instruments.
//!
//! Bounded: at most [`MAX_PENDING_POINTS`] points wait between two exports
//! per service; a guest's export that does not fit whole is dropped whole
//! and counted (`wasm.guest.points.dropped`, `export_queue`). The queue is
//! emptied at every collection whether or not the collector takes it, so a
//! collector that is down costs memory no more than one interval's points.

use std::borrow::Cow;
use std::sync::Mutex;

use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::aggregate::{Attributes, Collect, Descriptor, Sum, Value};
use crate::telemetry::semconv;

/// Data points waiting for the next export, per service, at most.
pub const MAX_PENDING_POINTS: usize = 50_000;

/// `wasm.drop.reason` of a guest's point that breaks OTLP's rules (a
/// non-finite value, bucket counts that do not add up, malformed ids).
pub const INVALID: &str = "invalid";
/// `wasm.drop.reason` of a guest's point too large to keep (too many
/// attributes, buckets or exemplars, an attribute too long).
pub const TOO_LARGE: &str = "too_large";

const POINTS_DROPPED: Descriptor = Descriptor::of(
    semconv::WASM_GUEST_POINTS_DROPPED,
    "{point}",
    "Data points a guest exported through wasi:otel/metrics that were not forwarded.",
);

/// One guest export, converted: the merged resource and its scopes.
#[derive(Debug)]
struct Export {
    resource: Resource,
    schema_url: String,
    scopes: Vec<ScopeMetrics>,
}

#[derive(Debug, Default)]
struct Pending {
    exports: Vec<Export>,
    points: usize,
}

/// A service's guest-exported metrics waiting for export, and what was
/// dropped of them.
#[derive(Debug)]
pub struct Forwarded {
    pending: Mutex<Pending>,
    /// `wasm.guest.points.dropped`, by reason.
    dropped: Sum,
}

impl Default for Forwarded {
    fn default() -> Self {
        Forwarded {
            pending: Mutex::new(Pending::default()),
            dropped: Sum::counter(POINTS_DROPPED),
        }
    }
}

impl Forwarded {
    /// Queues `scopes` (holding `points` data points) under `resource`,
    /// for the next export; a queue that cannot take them all drops them
    /// all, counted. Returns whether they were queued.
    pub fn offer(
        &self,
        resource: Resource,
        schema_url: String,
        scopes: Vec<ScopeMetrics>,
        points: usize,
    ) -> bool {
        if points == 0 {
            return true;
        }
        let queued = match self.pending.lock() {
            Ok(mut pending) if pending.points + points <= MAX_PENDING_POINTS => {
                pending.points += points;
                pending.exports.push(Export {
                    resource,
                    schema_url,
                    scopes,
                });
                true
            }
            _ => false,
        };
        if !queued {
            self.dropped(points as u64, super::EXPORT_QUEUE);
        }
        queued
    }

    /// Counts `count` points dropped for `reason`.
    pub fn dropped(&self, count: u64, reason: &'static str) {
        if count > 0 {
            self.dropped.add(
                i64::try_from(count).unwrap_or(i64::MAX),
                Attributes::new([(
                    Cow::Borrowed(semconv::WASM_DROP_REASON),
                    Value::from(reason),
                )]),
            );
        }
    }

    /// `wasm.guest.points.dropped`, as the host's own metric.
    pub fn dropped_metric(&self, collect: Collect) -> Option<Metric> {
        self.dropped.collect(collect)
    }

    /// Takes what waits: one `ResourceMetrics` per distinct resource, in
    /// the order exported.
    pub fn take(&self) -> Vec<ResourceMetrics> {
        let exports = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).exports,
            Err(_) => return Vec::new(),
        };
        let mut merged: Vec<ResourceMetrics> = Vec::new();
        for export in exports {
            let same = merged.iter_mut().find(|r| {
                r.resource.as_ref() == Some(&export.resource) && r.schema_url == export.schema_url
            });
            match same {
                Some(into) => into.scope_metrics.extend(export.scopes),
                None => merged.push(ResourceMetrics {
                    resource: Some(export.resource),
                    scope_metrics: export.scopes,
                    schema_url: export.schema_url,
                }),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str) -> ScopeMetrics {
        ScopeMetrics {
            scope: Some(
                opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                    name: name.to_string(),
                    ..Default::default()
                },
            ),
            ..Default::default()
        }
    }

    /// Exports under one resource are sent as one `ResourceMetrics`, each
    /// once; a queue that is full drops a whole export and counts its
    /// points.
    #[test]
    fn pending_exports_are_bounded_and_taken_once() {
        let forwarded = Forwarded::default();
        let resource = Resource::default();
        assert!(forwarded.offer(resource.clone(), String::new(), vec![scope("a")], 10));
        assert!(forwarded.offer(resource.clone(), String::new(), vec![scope("b")], 10));
        assert!(!forwarded.offer(
            resource.clone(),
            String::new(),
            vec![scope("c")],
            MAX_PENDING_POINTS
        ));
        let taken = forwarded.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].scope_metrics.len(), 2);
        assert!(forwarded.take().is_empty());
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) =
            forwarded.dropped_metric(Collect::Cumulative).unwrap().data
        else {
            panic!("not a sum");
        };
        assert_eq!(
            sum.data_points[0].value,
            Some(
                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                    MAX_PENDING_POINTS as i64
                )
            )
        );
    }
}
