//! The host's metrics: its own aggregation (`aggregate`: sums and
//! histograms with exemplars, bounded cardinality; `exponential`: the
//! base-2 exponential buckets), one service's
//! instruments by name (`instruments`), the guests' own (`business`), what
//! guests aggregated themselves and export through `wasi:otel/metrics`
//! (`forwarded`, sent on as they are), and
//! [`Metrics`], every service's instruments, which the metrics pusher
//! (`super::push`) collects every `OTEL_METRIC_EXPORT_INTERVAL` into one
//! OTLP `ExportMetricsServiceRequest`, a `ResourceMetrics` per service.
//!
//! Why the host aggregates and encodes OTLP itself rather than using the
//! SDK's meter provider: opentelemetry-rust 0.33 records no exemplars (its
//! issue #3369), and the point of these histograms is that a slow bucket
//! leads to the trace that explains it. See `docs/metrics-logs.md`.

mod aggregate;
mod business;
mod exponential;
mod forwarded;
mod instruments;
mod journal;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use aggregate::{
    Collect, GuestPairs, HistogramOptions, SpanRef, ValueRef, now_nanos, shard_count, shard_of,
};
pub use business::{GUEST_SCOPE, Kind, MAX_ATTRIBUTES, Measurement};
pub use forwarded::{INVALID, MAX_PENDING_POINTS, TOO_LARGE};
pub use instruments::{ActiveRequest, ClientRequest, EXPORT_QUEUE, REQUEST_LIMIT, ServiceMetrics};
pub use journal::Sandbox;

use super::config::{MetricsSettings, TemporalityPreference};
use super::push::{Payload, Source};

/// Every service's instruments, collected together.
#[derive(Debug)]
pub struct Metrics {
    services: Mutex<Vec<&'static ServiceMetrics>>,
    collect: Collect,
    /// Every histogram's aggregation and exemplar filter.
    histograms: HistogramOptions,
}

impl Metrics {
    /// No services yet; points collected as `settings` prefer, histograms
    /// aggregated and exemplars chosen as they say.
    pub fn new(settings: &MetricsSettings) -> Metrics {
        Metrics {
            services: Mutex::new(Vec::new()),
            histograms: HistogramOptions {
                filter: settings.exemplar_filter,
                aggregation: settings.histogram_aggregation,
            },
            collect: match settings.temporality {
                TemporalityPreference::Cumulative => Collect::Cumulative,
                // The host has no asynchronous instrument that `lowmemory`
                // would keep cumulative apart from its dropped-span count,
                // which reads as a delta like its synchronous twin.
                TemporalityPreference::Delta | TemporalityPreference::LowMemory => Collect::Delta,
            },
        }
    }

    /// The instruments of a service whose resource is `resource`; its
    /// export queue counts what it drops into `export_dropped`.
    pub fn service(
        &self,
        resource: Resource,
        export_dropped: Arc<AtomicU64>,
    ) -> &'static ServiceMetrics {
        // A service's instruments last as long as the process, so they
        // are leaked once: a request refers to them with no reference
        // count, which both workers would update on every request,
        // passing its cache line between the cores.
        let metrics: &'static ServiceMetrics = Box::leak(Box::new(ServiceMetrics::new(
            resource,
            export_dropped,
            self.histograms,
        )));
        if let Ok(mut services) = self.services.lock() {
            services.push(metrics);
        }
        metrics
    }

    /// One export of every service's points, if any has one.
    pub fn export(&self) -> Option<ExportMetricsServiceRequest> {
        let services: Vec<&'static ServiceMetrics> = self.services.lock().ok()?.clone();
        let resource_metrics: Vec<_> = services
            .iter()
            .flat_map(|service| service.collect(self.collect))
            .collect();
        (!resource_metrics.is_empty()).then_some(ExportMetricsServiceRequest { resource_metrics })
    }
}

impl Source for Metrics {
    fn collect(&self) -> Vec<Payload> {
        self.export().map(Payload::Metrics).into_iter().collect()
    }
}

/// The console view of one export: a line per point, with its service.
pub fn describe(export: &ExportMetricsServiceRequest) -> Vec<String> {
    let mut lines = Vec::new();
    for resource in &export.resource_metrics {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .map(|value| match value {
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in &resource.scope_metrics {
            for metric in &scope.metrics {
                for (attributes, value) in points(metric.data.as_ref()) {
                    lines.push(format!(
                        "metric {service} {} {{{attributes}}} {value}",
                        metric.name
                    ));
                }
            }
        }
    }
    lines
}

/// A histogram point in words: its count, mean, max and exemplars.
fn distribution(count: u64, sum: Option<f64>, max: Option<f64>, exemplars: usize) -> String {
    let mean = if count > 0 {
        sum.unwrap_or(0.0) / count as f64
    } else {
        0.0
    };
    format!(
        "count={count} mean={mean:.6} max={:.6} exemplars={exemplars}",
        max.unwrap_or(0.0)
    )
}

/// Each point's attributes (`k=v,…`) and value, in words.
fn points(data: Option<&Data>) -> Vec<(String, String)> {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
    let attributes = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
        kvs.iter()
            .map(|kv| {
                let value = kv
                    .value
                    .as_ref()
                    .and_then(|v| v.value.as_ref())
                    .map(|v| {
                        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
                        match v {
                            V::StringValue(s) => s.clone(),
                            V::IntValue(n) => n.to_string(),
                            V::BoolValue(b) => b.to_string(),
                            other => format!("{other:?}"),
                        }
                    })
                    .unwrap_or_default();
                format!("{}={value}", kv.key)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let numbers = |points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint]| {
        points
            .iter()
            .map(|p| {
                let value = match p.value {
                    Some(Number::AsInt(n)) => n.to_string(),
                    Some(Number::AsDouble(x)) => x.to_string(),
                    None => String::new(),
                };
                (attributes(&p.attributes), value)
            })
            .collect()
    };
    match data {
        Some(Data::Sum(sum)) => numbers(&sum.data_points),
        Some(Data::Gauge(gauge)) => numbers(&gauge.data_points),
        Some(Data::Histogram(histogram)) => histogram
            .data_points
            .iter()
            .map(|p| {
                let summary = distribution(p.count, p.sum, p.max, p.exemplars.len());
                (attributes(&p.attributes), summary)
            })
            .collect(),
        Some(Data::ExponentialHistogram(histogram)) => histogram
            .data_points
            .iter()
            .map(|p| {
                let summary = distribution(p.count, p.sum, p.max, p.exemplars.len());
                (
                    attributes(&p.attributes),
                    format!("{summary} scale={}", p.scale),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}
