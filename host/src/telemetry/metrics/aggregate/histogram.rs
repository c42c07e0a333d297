//! Histograms, explicit-bucket or base-2 exponential, each bucket or point
//! keeping exemplars.

use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar as ProtoExemplar, ExponentialHistogram, ExponentialHistogramDataPoint,
    Histogram as ProtoHistogram, HistogramDataPoint, Metric, exemplar, metric,
};

use super::points::{Collect, Sharded};
use super::sets::Key;
use super::{Descriptor, SpanRef, metric_of, now_nanos};
use crate::telemetry::config::{ExemplarFilter, HistogramAggregation};
use crate::telemetry::metrics::exponential::{Exponential, Reservoir, xorshift};

/// How a histogram aggregates, and which measurements may be its
/// exemplars; the same for every histogram of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramOptions {
    /// `OTEL_METRICS_EXEMPLAR_FILTER`.
    pub filter: ExemplarFilter,
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`.
    pub aggregation: HistogramAggregation,
}

impl Default for HistogramOptions {
    /// The specification's defaults: `trace_based`, explicit buckets.
    fn default() -> Self {
        HistogramOptions {
            filter: ExemplarFilter::TraceBased,
            aggregation: HistogramAggregation::ExplicitBucket,
        }
    }
}

/// A measurement kept as an exemplar.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exemplar {
    value: f64,
    time: u64,
    /// The span it was made in; `None` outside any span (kept only by
    /// `always_on`), exported without ids.
    span: Option<SpanRef>,
}

impl Exemplar {
    pub(super) fn to_proto(self) -> ProtoExemplar {
        ProtoExemplar {
            filtered_attributes: Vec::new(),
            time_unix_nano: self.time,
            // The specification's exemplar carries "the associated trace id
            // and span id of the active Span", sampled or not: under
            // `always_on` an unsampled span's ids are kept too.
            span_id: self.span.map(|s| s.span_id.to_vec()).unwrap_or_default(),
            trace_id: self.span.map(|s| s.trace_id.to_vec()).unwrap_or_default(),
            value: Some(exemplar::Value::AsDouble(self.value)),
        }
    }
}

/// One explicit bucket: its count and at most one exemplar, side by side,
/// so that a measurement touches one place, not a count in one array and
/// an exemplar in another.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bucket {
    count: u64,
    /// The measurements offered as exemplars this collection cycle.
    seen: u64,
    /// Chosen uniformly among those offered this cycle (the
    /// specification's SHOULD for an aligned histogram reservoir: the
    /// n-th is kept with probability 1/n), or, when none was, the one
    /// kept last cycle.
    exemplar: Option<Exemplar>,
}

/// One histogram point's buckets and exemplars.
#[derive(Debug, Clone)]
pub(super) enum Buckets {
    /// One count and at most one exemplar per explicit bucket.
    Explicit {
        buckets: Vec<Bucket>,
        /// The state of the generator that samples exemplars.
        random: u64,
    },
    /// Base-2 exponential buckets, exemplars from a reservoir.
    Exponential {
        buckets: Exponential,
        exemplars: Reservoir<Exemplar>,
    },
}

/// One histogram point.
#[derive(Debug, Clone)]
pub(super) struct HistogramPoint {
    buckets: Buckets,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl HistogramPoint {
    pub(super) fn new(bounds: &[f64], aggregation: HistogramAggregation) -> HistogramPoint {
        let buckets = match aggregation {
            HistogramAggregation::ExplicitBucket => Buckets::Explicit {
                buckets: vec![Bucket::default(); bounds.len() + 1],
                random: now_nanos() | 1,
            },
            HistogramAggregation::Base2Exponential => Buckets::Exponential {
                buckets: Exponential::default(),
                exemplars: Reservoir::new(now_nanos()),
            },
        };
        HistogramPoint {
            buckets,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// A copy to export; the point itself starts a new sampling cycle.
    pub(super) fn snapshot(&mut self) -> HistogramPoint {
        let copy = self.clone();
        match &mut self.buckets {
            Buckets::Explicit { buckets, .. } => {
                for bucket in buckets {
                    bucket.seen = 0;
                }
            }
            Buckets::Exponential { exemplars, .. } => {
                exemplars.collect();
            }
        }
        copy
    }

    /// Adds `other`, the same set's point from another part: counts add,
    /// an explicit bucket keeps either part's exemplar in proportion to
    /// the measurements each was chosen among (so that the choice stays
    /// uniform over both), an exponential point rescales to the coarser
    /// scale and offers the other's exemplars.
    pub(super) fn merge(&mut self, other: HistogramPoint) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        match (&mut self.buckets, other.buckets) {
            (
                Buckets::Explicit { buckets, random },
                Buckets::Explicit {
                    buckets: others, ..
                },
            ) => {
                for (bucket, other) in buckets.iter_mut().zip(others) {
                    bucket.count += other.count;
                    let seen = bucket.seen + other.seen;
                    let take = match (bucket.exemplar, other.exemplar) {
                        (_, None) => false,
                        (None, Some(_)) => true,
                        // Neither was offered one this cycle: the later.
                        (Some(kept), Some(theirs)) if seen == 0 => kept.time <= theirs.time,
                        (Some(_), Some(_)) => xorshift(random) % seen.max(1) < other.seen,
                    };
                    if take {
                        bucket.exemplar = other.exemplar;
                    }
                    bucket.seen = seen;
                }
            }
            (
                Buckets::Exponential { buckets, exemplars },
                Buckets::Exponential {
                    buckets: other_buckets,
                    exemplars: other_exemplars,
                },
            ) => {
                buckets.merge(&other_buckets);
                exemplars.absorb(other_exemplars);
            }
            // One histogram aggregates one way: its parts cannot differ.
            _ => {}
        }
    }

    pub(super) fn exemplars(&mut self) -> Vec<ProtoExemplar> {
        let kept = match &mut self.buckets {
            Buckets::Explicit { buckets, .. } => {
                buckets.iter().filter_map(|b| b.exemplar).collect()
            }
            Buckets::Exponential { exemplars, .. } => exemplars.collect(),
        };
        kept.into_iter().map(Exemplar::to_proto).collect()
    }
}

/// A histogram of non-negative values: explicit buckets or base-2
/// exponential ones, per [`HistogramOptions`].
#[derive(Debug)]
pub struct Histogram {
    descriptor: Descriptor,
    /// The explicit buckets' upper bounds (inclusive, as OTLP reads them).
    bounds: &'static [f64],
    options: HistogramOptions,
    points: Sharded<HistogramPoint>,
}

impl Histogram {
    /// A histogram with the explicit buckets `bounds` (ascending upper
    /// bounds), used unless `options` asks for exponential ones.
    pub fn new(
        descriptor: Descriptor,
        bounds: &'static [f64],
        options: HistogramOptions,
    ) -> Histogram {
        Histogram {
            descriptor,
            bounds,
            options,
            points: Sharded::new(),
        }
    }

    /// Records `value` in the point of `attributes`, made in `span` (when
    /// there is one); the exemplar filter decides whether it may become an
    /// exemplar. A value that is not a finite non-negative number is
    /// ignored (the API's histograms take only those).
    #[cfg(test)]
    pub fn record<'a>(&self, value: f64, attributes: impl Into<Key<'a>>, span: Option<SpanRef>) {
        self.record_at(value, attributes, span, now_nanos());
    }

    /// [`Histogram::record`], made at `time` (nanoseconds since the Unix
    /// epoch: an exemplar's time).
    pub fn record_at<'a>(
        &self,
        value: f64,
        attributes: impl Into<Key<'a>>,
        span: Option<SpanRef>,
        time: u64,
    ) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let eligible = match self.options.filter {
            ExemplarFilter::AlwaysOn => true,
            ExemplarFilter::AlwaysOff => false,
            ExemplarFilter::TraceBased => span.is_some_and(|span| span.sampled),
        };
        let Some(mut points) = self.points.local() else {
            return;
        };
        let point = points.entry_of(attributes.into(), || {
            HistogramPoint::new(self.bounds, self.options.aggregation)
        });
        point.count += 1;
        point.sum += value;
        point.min = point.min.min(value);
        point.max = point.max.max(value);
        match &mut point.buckets {
            Buckets::Explicit { buckets, random } => {
                let bucket = &mut buckets[self.bounds.partition_point(|bound| *bound < value)];
                bucket.count += 1;
                if eligible {
                    // Chosen before it is made: most measurements are not
                    // kept, and cost neither a clock read nor a write.
                    bucket.seen += 1;
                    if bucket.seen == 1 || xorshift(random).is_multiple_of(bucket.seen) {
                        bucket.exemplar = Some(Exemplar { value, time, span });
                    }
                }
            }
            Buckets::Exponential { buckets, exemplars } => {
                buckets.record(value);
                if eligible {
                    exemplars.offer(Exemplar { value, time, span });
                }
            }
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        let now = now_nanos();
        let (start, points) =
            self.points
                .collect(collect, HistogramPoint::snapshot, HistogramPoint::merge);
        if points.is_empty() {
            return None;
        }
        let data = match self.options.aggregation {
            HistogramAggregation::ExplicitBucket => metric::Data::Histogram(ProtoHistogram {
                data_points: points
                    .into_iter()
                    .map(|(attributes, mut point)| HistogramDataPoint {
                        attributes: attributes.to_proto(),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: point.count,
                        sum: Some(point.sum),
                        exemplars: point.exemplars(),
                        bucket_counts: match point.buckets {
                            Buckets::Explicit { buckets, .. } => {
                                buckets.iter().map(|b| b.count).collect()
                            }
                            Buckets::Exponential { .. } => Vec::new(),
                        },
                        explicit_bounds: self.bounds.to_vec(),
                        flags: 0,
                        min: Some(point.min),
                        max: Some(point.max),
                    })
                    .collect(),
                aggregation_temporality: collect.temporality(),
            }),
            HistogramAggregation::Base2Exponential => {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: points
                        .into_iter()
                        .map(|(attributes, mut point)| {
                            let exemplars = point.exemplars();
                            let buckets = match point.buckets {
                                Buckets::Exponential { buckets, .. } => buckets,
                                Buckets::Explicit { .. } => Exponential::default(),
                            };
                            ExponentialHistogramDataPoint {
                                attributes: attributes.to_proto(),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: point.count,
                                sum: Some(point.sum),
                                scale: buckets.scale,
                                zero_count: buckets.zero_count,
                                positive: Some(buckets.positive()),
                                negative: None,
                                flags: 0,
                                exemplars,
                                min: Some(point.min),
                                max: Some(point.max),
                                zero_threshold: 0.0,
                            }
                        })
                        .collect(),
                    aggregation_temporality: collect.temporality(),
                })
            }
        };
        Some(metric_of(&self.descriptor, data))
    }
}
