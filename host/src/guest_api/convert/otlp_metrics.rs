//! `wasi:otel/metrics` → OTLP: a guest's `resource-metrics` as
//! `opentelemetry-proto` types, point by point, each checked against OTLP's
//! rules and the size bounds below and forwarded whole or refused with its
//! [`Refusal`] (see `wasi_otel_metrics` for the request's budget).

use opentelemetry_proto::tonic::common::v1 as otlp;
use opentelemetry_proto::tonic::metrics::v1 as metrics;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;

use super::super::bindings::wasi::otel::metrics as wasi_metrics;
use super::super::bindings::wasi::otel::types as wasi_types;
use super::{hex_id, kvs, nanos};

/// Attributes one data point (or exemplar) may carry; more make it too
/// large (OpenTelemetry's default attribute count limit).
pub const MAX_POINT_ATTRIBUTES: usize = 128;
/// Bytes of one attribute's key or value text, at most.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;
/// Buckets of an explicit histogram point, or of either side of an
/// exponential one, at most (the SDK's exponential default size, 160).
pub const MAX_BUCKETS: usize = 160;
/// Exemplars of one data point, at most.
pub const MAX_EXEMPLARS: usize = 64;

/// Why a guest's data point was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks OTLP's rules: a value that is not finite or does not fit,
    /// bucket counts that do not add up to the count or do not match the
    /// bounds, bounds out of order, malformed exemplar ids.
    Invalid,
    /// More attributes, buckets or exemplars than the bounds above, or an
    /// attribute longer than [`MAX_ATTRIBUTE_BYTES`].
    TooLarge,
}

/// A point's attributes, within the bounds.
fn point_attributes(attributes: Vec<wasi_types::KeyValue>) -> Result<Vec<otlp::KeyValue>, Refusal> {
    if attributes.len() > MAX_POINT_ATTRIBUTES
        || attributes
            .iter()
            .any(|kv| kv.key.len() > MAX_ATTRIBUTE_BYTES || kv.value.len() > MAX_ATTRIBUTE_BYTES)
    {
        return Err(Refusal::TooLarge);
    }
    Ok(attributes.into_iter().map(otlp::KeyValue::from).collect())
}

/// A finite float, else the point is invalid.
fn finite(x: f64) -> Result<f64, Refusal> {
    x.is_finite().then_some(x).ok_or(Refusal::Invalid)
}

/// A metric number as a float (histogram sums, minima and maxima are
/// doubles in OTLP).
fn float(number: wasi_metrics::MetricNumber) -> Result<f64, Refusal> {
    match number {
        wasi_metrics::MetricNumber::F64(x) => finite(x),
        wasi_metrics::MetricNumber::S64(n) => Ok(n as f64),
        wasi_metrics::MetricNumber::U64(n) => Ok(n as f64),
    }
}

/// A metric number as OTLP's: integers stay integers; a `u64` past
/// `i64::MAX` cannot be carried, and a float that is not finite is invalid.
impl TryFrom<wasi_metrics::MetricNumber> for number_data_point::Value {
    type Error = Refusal;

    fn try_from(number: wasi_metrics::MetricNumber) -> Result<Self, Refusal> {
        match number {
            wasi_metrics::MetricNumber::F64(x) => Ok(Self::AsDouble(finite(x)?)),
            wasi_metrics::MetricNumber::S64(n) => Ok(Self::AsInt(n)),
            wasi_metrics::MetricNumber::U64(n) => i64::try_from(n)
                .map(Self::AsInt)
                .map_err(|_| Refusal::Invalid),
        }
    }
}

/// An exemplar, its ids kept (both empty when no sampled span was active,
/// else valid W3C ids).
impl TryFrom<wasi_metrics::Exemplar> for metrics::Exemplar {
    type Error = Refusal;

    fn try_from(exemplar: wasi_metrics::Exemplar) -> Result<Self, Refusal> {
        let (trace_id, span_id) = if exemplar.trace_id.is_empty() && exemplar.span_id.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                hex_id::<16>(&exemplar.trace_id)
                    .ok_or(Refusal::Invalid)?
                    .to_vec(),
                hex_id::<8>(&exemplar.span_id)
                    .ok_or(Refusal::Invalid)?
                    .to_vec(),
            )
        };
        let value = match number_data_point::Value::try_from(exemplar.value)? {
            number_data_point::Value::AsDouble(x) => metrics::exemplar::Value::AsDouble(x),
            number_data_point::Value::AsInt(n) => metrics::exemplar::Value::AsInt(n),
        };
        Ok(metrics::Exemplar {
            filtered_attributes: point_attributes(exemplar.filtered_attributes)?,
            time_unix_nano: nanos(exemplar.time),
            span_id,
            trace_id,
            value: Some(value),
        })
    }
}

fn exemplars(exemplars: Vec<wasi_metrics::Exemplar>) -> Result<Vec<metrics::Exemplar>, Refusal> {
    if exemplars.len() > MAX_EXEMPLARS {
        return Err(Refusal::TooLarge);
    }
    exemplars
        .into_iter()
        .map(metrics::Exemplar::try_from)
        .collect()
}

/// OTLP's temporality. `low-memory` is a preference, not a temporality: as
/// the SDK reads it, delta for what only grows, cumulative for an up-down
/// sum.
fn temporality(temporality: wasi_metrics::Temporality, monotonic: bool) -> i32 {
    use metrics::AggregationTemporality as A;
    match temporality {
        wasi_metrics::Temporality::Cumulative => A::Cumulative as i32,
        wasi_metrics::Temporality::Delta => A::Delta as i32,
        wasi_metrics::Temporality::LowMemory if monotonic => A::Delta as i32,
        wasi_metrics::Temporality::LowMemory => A::Cumulative as i32,
    }
}

/// A gauge's or sum's point, at `start` (0: unknown) and `time`; a
/// monotonic sum cannot be negative.
fn number_point(
    attributes: Vec<wasi_types::KeyValue>,
    value: wasi_metrics::MetricNumber,
    sampled: Vec<wasi_metrics::Exemplar>,
    (start, time): (u64, u64),
    monotonic: bool,
) -> Result<metrics::NumberDataPoint, Refusal> {
    let value = number_data_point::Value::try_from(value)?;
    let negative = match value {
        number_data_point::Value::AsDouble(x) => x < 0.0,
        number_data_point::Value::AsInt(n) => n < 0,
    };
    if monotonic && negative {
        return Err(Refusal::Invalid);
    }
    Ok(metrics::NumberDataPoint {
        attributes: point_attributes(attributes)?,
        start_time_unix_nano: start,
        time_unix_nano: time,
        exemplars: exemplars(sampled)?,
        flags: 0,
        value: Some(value),
    })
}

/// The least and greatest values, finite and in order.
fn min_max(
    min: Option<wasi_metrics::MetricNumber>,
    max: Option<wasi_metrics::MetricNumber>,
) -> Result<(Option<f64>, Option<f64>), Refusal> {
    let min = min.map(float).transpose()?;
    let max = max.map(float).transpose()?;
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(Refusal::Invalid);
    }
    Ok((min, max))
}

/// The sum of `counts`, or `None` past `u64`.
fn total(counts: &[u64]) -> Option<u64> {
    counts.iter().try_fold(0u64, |sum, n| sum.checked_add(*n))
}

/// A guest's data point with its metric's start and end times (ns), which
/// OTLP carries on every point.
#[derive(Debug)]
struct Timed<P> {
    point: P,
    start: u64,
    time: u64,
}

/// An explicit-bucket histogram point: bounds finite and strictly
/// increasing, one more bucket than bounds (or no buckets at all), the
/// buckets adding up to the count.
impl TryFrom<Timed<wasi_metrics::HistogramDataPoint>> for metrics::HistogramDataPoint {
    type Error = Refusal;

    fn try_from(
        Timed { point, start, time }: Timed<wasi_metrics::HistogramDataPoint>,
    ) -> Result<Self, Refusal> {
        if point.bounds.len() > MAX_BUCKETS || point.bucket_counts.len() > MAX_BUCKETS + 1 {
            return Err(Refusal::TooLarge);
        }
        let ordered = point.bounds.iter().all(|b| b.is_finite())
            && point.bounds.windows(2).all(|pair| pair[0] < pair[1]);
        let matched = point.bucket_counts.is_empty()
            || (point.bucket_counts.len() == point.bounds.len() + 1
                && total(&point.bucket_counts) == Some(point.count));
        if !ordered || !matched {
            return Err(Refusal::Invalid);
        }
        let (min, max) = min_max(point.min, point.max)?;
        Ok(metrics::HistogramDataPoint {
            attributes: point_attributes(point.attributes)?,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count: point.count,
            sum: Some(float(point.sum)?),
            bucket_counts: point.bucket_counts,
            explicit_bounds: point.bounds,
            exemplars: exemplars(point.exemplars)?,
            flags: 0,
            min,
            max,
        })
    }
}

/// An exponential histogram point: a scale OTLP defines (−10 to 20), a
/// finite non-negative zero threshold, the zero count and both sides'
/// buckets adding up to the count.
impl TryFrom<Timed<wasi_metrics::ExponentialHistogramDataPoint>>
    for metrics::ExponentialHistogramDataPoint
{
    type Error = Refusal;

    fn try_from(
        Timed { point, start, time }: Timed<wasi_metrics::ExponentialHistogramDataPoint>,
    ) -> Result<Self, Refusal> {
        let (positive, negative) = (point.positive_bucket, point.negative_bucket);
        if positive.counts.len() > MAX_BUCKETS || negative.counts.len() > MAX_BUCKETS {
            return Err(Refusal::TooLarge);
        }
        let counted = total(&positive.counts)
            .zip(total(&negative.counts))
            .and_then(|(p, n)| p.checked_add(n)?.checked_add(point.zero_count));
        let valid = (-10..=20).contains(&point.scale)
            && point.zero_threshold.is_finite()
            && point.zero_threshold >= 0.0
            && counted == Some(point.count);
        if !valid {
            return Err(Refusal::Invalid);
        }
        let (min, max) = min_max(point.min, point.max)?;
        let buckets = |bucket: wasi_metrics::ExponentialBucket| Buckets {
            offset: bucket.offset,
            bucket_counts: bucket.counts,
        };
        Ok(metrics::ExponentialHistogramDataPoint {
            attributes: point_attributes(point.attributes)?,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count: point.count,
            sum: Some(float(point.sum)?),
            scale: i32::from(point.scale),
            zero_count: point.zero_count,
            positive: Some(buckets(positive)),
            negative: Some(buckets(negative)),
            flags: 0,
            exemplars: exemplars(point.exemplars)?,
            min,
            max,
            zero_threshold: point.zero_threshold,
        })
    }
}

/// The number of data points in `data`.
fn point_count(data: &wasi_metrics::MetricData) -> usize {
    use wasi_metrics::MetricData as M;
    match data {
        M::F64Gauge(g) | M::U64Gauge(g) | M::S64Gauge(g) => g.data_points.len(),
        M::F64Sum(s) | M::U64Sum(s) | M::S64Sum(s) => s.data_points.len(),
        M::F64Histogram(h) | M::U64Histogram(h) | M::S64Histogram(h) => h.data_points.len(),
        M::F64ExponentialHistogram(h)
        | M::U64ExponentialHistogram(h)
        | M::S64ExponentialHistogram(h) => h.data_points.len(),
    }
}

/// What became of a guest's `resource-metrics`: its scopes as OTLP, and
/// the points kept and refused.
#[derive(Debug, Default)]
pub struct Converted {
    /// The guest's resource attributes (the host merges them with the
    /// service's).
    pub resource: Vec<otlp::KeyValue>,
    /// The resource's schema URL.
    pub schema_url: String,
    /// The scopes with the points kept (scopes and metrics left with none
    /// are left out).
    pub scopes: Vec<metrics::ScopeMetrics>,
    /// Points kept.
    pub kept: usize,
    /// Points refused as [`Refusal::Invalid`].
    pub invalid: u64,
    /// Points refused as [`Refusal::TooLarge`].
    pub too_large: u64,
    /// Points past the budget.
    pub over_budget: u64,
}

impl Converted {
    /// Keeps each point that converts, while the budget lasts.
    fn points<W, P>(
        &mut self,
        points: Vec<W>,
        budget: usize,
        convert: impl Fn(W) -> Result<P, Refusal>,
    ) -> Vec<P> {
        let mut kept = Vec::new();
        for point in points {
            if self.kept >= budget {
                self.over_budget += 1;
                continue;
            }
            match convert(point) {
                Ok(point) => {
                    self.kept += 1;
                    kept.push(point);
                }
                Err(Refusal::Invalid) => self.invalid += 1,
                Err(Refusal::TooLarge) => self.too_large += 1,
            }
        }
        kept
    }

    /// One metric's data as OTLP, its points converted one by one; `None`
    /// when none is kept.
    fn data(
        &mut self,
        data: wasi_metrics::MetricData,
        budget: usize,
    ) -> Option<metrics::metric::Data> {
        use metrics::metric::Data;
        use wasi_metrics::MetricData as M;
        let data = match data {
            M::F64Gauge(gauge) | M::U64Gauge(gauge) | M::S64Gauge(gauge) => {
                let times = (gauge.start_time.map_or(0, nanos), nanos(gauge.time));
                Data::Gauge(metrics::Gauge {
                    data_points: self.points(gauge.data_points, budget, |p| {
                        number_point(p.attributes, p.value, p.exemplars, times, false)
                    }),
                })
            }
            M::F64Sum(sum) | M::U64Sum(sum) | M::S64Sum(sum) => {
                let times = (nanos(sum.start_time), nanos(sum.time));
                let monotonic = sum.is_monotonic;
                Data::Sum(metrics::Sum {
                    data_points: self.points(sum.data_points, budget, |p| {
                        number_point(p.attributes, p.value, p.exemplars, times, monotonic)
                    }),
                    aggregation_temporality: temporality(sum.temporality, monotonic),
                    is_monotonic: monotonic,
                })
            }
            M::F64Histogram(h) | M::U64Histogram(h) | M::S64Histogram(h) => {
                let (start, time) = (nanos(h.start_time), nanos(h.time));
                Data::Histogram(metrics::Histogram {
                    data_points: self.points(h.data_points, budget, |point| {
                        metrics::HistogramDataPoint::try_from(Timed { point, start, time })
                    }),
                    aggregation_temporality: temporality(h.temporality, true),
                })
            }
            M::F64ExponentialHistogram(h)
            | M::U64ExponentialHistogram(h)
            | M::S64ExponentialHistogram(h) => {
                let (start, time) = (nanos(h.start_time), nanos(h.time));
                Data::ExponentialHistogram(metrics::ExponentialHistogram {
                    data_points: self.points(h.data_points, budget, |point| {
                        metrics::ExponentialHistogramDataPoint::try_from(Timed {
                            point,
                            start,
                            time,
                        })
                    }),
                    aggregation_temporality: temporality(h.temporality, true),
                })
            }
        };
        let empty = match &data {
            Data::Gauge(g) => g.data_points.is_empty(),
            Data::Sum(s) => s.data_points.is_empty(),
            Data::Histogram(h) => h.data_points.is_empty(),
            Data::ExponentialHistogram(h) => h.data_points.is_empty(),
            Data::Summary(s) => s.data_points.is_empty(),
        };
        (!empty).then_some(data)
    }

    /// A guest's `resource-metrics` as OTLP, keeping at most `budget`
    /// points, every point checked (a metric whose name is empty or over
    /// 255 bytes has all its points refused as invalid).
    pub fn resource_metrics(rm: wasi_metrics::ResourceMetrics, budget: usize) -> Converted {
        let mut converted = Converted {
            resource: kvs(rm.resource.attributes),
            schema_url: rm.resource.schema_url.unwrap_or_default(),
            ..Default::default()
        };
        for scope in rm.scope_metrics {
            let schema_url = scope.scope.schema_url.clone().unwrap_or_default();
            let mut kept = Vec::new();
            for metric in scope.metrics {
                let named = !metric.name.is_empty() && metric.name.len() <= 255;
                let data = if named {
                    converted.data(metric.data, budget)
                } else {
                    converted.invalid += point_count(&metric.data) as u64;
                    None
                };
                if let Some(data) = data {
                    kept.push(metrics::Metric {
                        name: metric.name,
                        description: metric.description.chars().take(1023).collect(),
                        unit: metric.unit.chars().take(63).collect(),
                        metadata: Vec::new(),
                        data: Some(data),
                    });
                }
            }
            if !kept.is_empty() {
                converted.scopes.push(metrics::ScopeMetrics {
                    scope: Some(otlp::InstrumentationScope::from(scope.scope)),
                    metrics: kept,
                    schema_url,
                });
            }
        }
        converted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

    const T: Datetime = Datetime {
        seconds: 1,
        nanoseconds: 2,
    };

    fn histogram(
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
    ) -> wasi_metrics::HistogramDataPoint {
        wasi_metrics::HistogramDataPoint {
            attributes: vec![],
            count,
            bounds,
            bucket_counts: counts,
            min: None,
            max: None,
            sum: wasi_metrics::MetricNumber::F64(1.0),
            exemplars: vec![],
        }
    }

    fn timed<P>(point: P) -> Timed<P> {
        Timed {
            point,
            start: 0,
            time: nanos(T),
        }
    }

    /// A histogram point is forwarded only if its buckets match its
    /// bounds and add up to its count, its bounds ascend and its floats
    /// are finite; too many buckets make it too large.
    #[test]
    #[rustfmt::skip]
    fn histogram_points_are_checked() {
        use metrics::HistogramDataPoint as H;
        let check = |p| H::try_from(timed(p)).map(|_| ());
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 0, 2], 3)), Ok(()));
        assert_eq!(check(histogram(vec![], vec![], 3)), Ok(()));
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 0, 2], 4)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![1.0, 2.0], vec![1, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![2.0, 1.0], vec![1, 0, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![f64::NAN], vec![1, 2], 3)), Err(Refusal::Invalid));
        assert_eq!(check(histogram(vec![1.0], vec![u64::MAX, 2], 1)), Err(Refusal::Invalid));
        assert_eq!(check(wasi_metrics::HistogramDataPoint { sum: wasi_metrics::MetricNumber::F64(f64::INFINITY), ..histogram(vec![], vec![], 0) }), Err(Refusal::Invalid));
        let many: Vec<f64> = (0..=MAX_BUCKETS).map(|n| n as f64).collect();
        let counts = vec![0; many.len() + 1];
        assert_eq!(check(histogram(many, counts, 0)), Err(Refusal::TooLarge));
    }

    /// Numbers keep their type; what OTLP cannot carry is refused.
    #[test]
    #[rustfmt::skip]
    fn metric_numbers() {
        use number_data_point::Value as V;
        use wasi_metrics::MetricNumber as N;
        assert_eq!(V::try_from(N::S64(-3)), Ok(V::AsInt(-3)));
        assert_eq!(V::try_from(N::U64(7)), Ok(V::AsInt(7)));
        assert_eq!(V::try_from(N::F64(2.5)), Ok(V::AsDouble(2.5)));
        assert_eq!(V::try_from(N::U64(u64::MAX)), Err(Refusal::Invalid));
        assert_eq!(V::try_from(N::F64(f64::NAN)), Err(Refusal::Invalid));
    }

    /// A call keeps at most its budget of points; the rest are counted,
    /// as are invalid points, which do not spend the budget.
    #[test]
    fn points_past_the_budget_are_counted() {
        let point = |value: f64| wasi_metrics::GaugeDataPoint {
            attributes: vec![],
            value: wasi_metrics::MetricNumber::F64(value),
            exemplars: vec![],
        };
        let mut points = vec![point(f64::NAN)];
        points.extend((0..10).map(|n| point(f64::from(n))));
        let rm = wasi_metrics::ResourceMetrics {
            resource: wasi_types::Resource {
                attributes: vec![],
                schema_url: None,
            },
            scope_metrics: vec![wasi_metrics::ScopeMetrics {
                scope: wasi_types::InstrumentationScope {
                    name: "s".into(),
                    version: None,
                    schema_url: None,
                    attributes: vec![],
                },
                metrics: vec![wasi_metrics::Metric {
                    name: "g".into(),
                    description: String::new(),
                    unit: String::new(),
                    data: wasi_metrics::MetricData::F64Gauge(wasi_metrics::Gauge {
                        data_points: points,
                        start_time: None,
                        time: T,
                    }),
                }],
            }],
        };
        let converted = Converted::resource_metrics(rm, 4);
        assert_eq!(
            (converted.kept, converted.invalid, converted.over_budget),
            (4, 1, 6)
        );
        assert_eq!(converted.scopes[0].metrics.len(), 1);
    }

    /// `low-memory` is delta, except for an up-down sum.
    #[test]
    fn low_memory_temporality() {
        use metrics::AggregationTemporality as A;
        use wasi_metrics::Temporality as W;
        assert_eq!(temporality(W::LowMemory, true), A::Delta as i32);
        assert_eq!(temporality(W::LowMemory, false), A::Cumulative as i32);
        assert_eq!(temporality(W::Cumulative, true), A::Cumulative as i32);
    }
}
