//! `wasi:otel` metrics and logs, as an SDK inside a component hands them
//! to the host: `/metrics` exports one metric of every kind the interface
//! has, `/logs` emits records in and out of spans, `/garbage` exports what
//! a broken or hostile SDK might. Times are fixed, so that the tests can
//! check the exact nanoseconds that arrive.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `queue.depth` | f64 gauge | 2.5, an exemplar |
//! | `requests` | u64 sum, monotonic, cumulative | 7 |
//! | `inflight` | s64 sum, not monotonic, delta | −3 |
//! | `latency` | f64 histogram, delta | bounds 0.1, 1, 10; counts 1, 2, 0, 1; two exemplars |
//! | `size` | u64 exponential histogram, cumulative | scale 2, zero count 1, positive 3:[1,0,2], negative −1:[1]; an exemplar |
//! | `tokens` | s64 sum, monotonic, low-memory | 11 |
//! | `level` | f64 sum, not monotonic, low-memory | −1.5 |

use serde_json::{Value, json};

use crate::bindings::wasi::otel::logs::{self, LogRecord};
use crate::bindings::wasi::otel::metrics::{
    self, Exemplar, ExponentialBucket, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    GaugeDataPoint, Histogram, HistogramDataPoint, Metric, MetricData, MetricNumber,
    ResourceMetrics, ScopeMetrics, Sum, SumDataPoint, Temporality,
};
use crate::bindings::wasi::otel::tracing::{self as otel, TraceFlags};
use crate::bindings::wasi::otel::types::{InstrumentationScope, KeyValue, Resource};
use crate::{Started, end, kv, start};
use otel_guest::bindings::wasi::clocks::wall_clock::Datetime;
use otel_guest::trace::Span as OurSpan;

/// When every series started: 2023-11-14T22:13:20Z.
pub const START: Datetime = Datetime {
    seconds: 1_700_000_000,
    nanoseconds: 0,
};
/// When every point was recorded: a minute and 500 ns later.
pub const TIME: Datetime = Datetime {
    seconds: 1_700_000_060,
    nanoseconds: 500,
};

fn scope(name: &str, version: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: name.to_string(),
        version: Some(version.to_string()),
        schema_url: None,
        attributes: vec![kv("scope.kind", r#""test""#)],
    }
}

fn exemplar(value: MetricNumber, span: &Started) -> Exemplar {
    Exemplar {
        filtered_attributes: vec![kv("user", r#""u1""#)],
        time: TIME,
        value,
        span_id: span.context.span_id.clone(),
        trace_id: span.context.trace_id.clone(),
    }
}

fn metric(name: &str, unit: &str, data: MetricData) -> Metric {
    Metric {
        name: name.to_string(),
        description: format!("the {name} of the test"),
        unit: unit.to_string(),
        data,
    }
}

fn sum(points: Vec<SumDataPoint>, temporality: Temporality, is_monotonic: bool) -> Sum {
    Sum {
        data_points: points,
        start_time: START,
        time: TIME,
        temporality,
        is_monotonic,
    }
}

fn number(attributes: Vec<KeyValue>, value: MetricNumber) -> SumDataPoint {
    SumDataPoint {
        attributes,
        value,
        exemplars: vec![],
    }
}

/// One metric of every kind, exemplars in the span `measure`.
fn every_kind(span: &Started) -> Vec<Metric> {
    vec![
        metric(
            "queue.depth",
            "{item}",
            MetricData::F64Gauge(Gauge {
                data_points: vec![GaugeDataPoint {
                    attributes: vec![kv("queue", r#""a""#)],
                    value: MetricNumber::F64(2.5),
                    exemplars: vec![exemplar(MetricNumber::F64(2.5), span)],
                }],
                start_time: None,
                time: TIME,
            }),
        ),
        metric(
            "requests",
            "{request}",
            MetricData::U64Sum(sum(
                vec![number(vec![kv("route", r#""/x""#)], MetricNumber::U64(7))],
                Temporality::Cumulative,
                true,
            )),
        ),
        metric(
            "inflight",
            "{request}",
            MetricData::S64Sum(sum(
                vec![number(vec![], MetricNumber::S64(-3))],
                Temporality::Delta,
                false,
            )),
        ),
        metric(
            "latency",
            "s",
            MetricData::F64Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("route", r#""/x""#)],
                    count: 4,
                    bounds: vec![0.1, 1.0, 10.0],
                    bucket_counts: vec![1, 2, 0, 1],
                    min: Some(MetricNumber::F64(0.05)),
                    max: Some(MetricNumber::F64(11.0)),
                    sum: MetricNumber::F64(12.5),
                    exemplars: vec![
                        exemplar(MetricNumber::F64(0.5), span),
                        exemplar(MetricNumber::F64(11.0), span),
                    ],
                }],
                start_time: START,
                time: TIME,
                temporality: Temporality::Delta,
            }),
        ),
        metric(
            "size",
            "By",
            MetricData::U64ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![],
                    count: 5,
                    min: Some(MetricNumber::S64(-1)),
                    max: Some(MetricNumber::U64(12)),
                    sum: MetricNumber::U64(30),
                    scale: 2,
                    zero_count: 1,
                    positive_bucket: ExponentialBucket {
                        offset: 3,
                        counts: vec![1, 0, 2],
                    },
                    negative_bucket: ExponentialBucket {
                        offset: -1,
                        counts: vec![1],
                    },
                    zero_threshold: 0.0,
                    exemplars: vec![exemplar(MetricNumber::U64(12), span)],
                }],
                start_time: START,
                time: TIME,
                temporality: Temporality::Cumulative,
            }),
        ),
        metric(
            "tokens",
            "{token}",
            MetricData::S64Sum(sum(
                vec![number(vec![], MetricNumber::S64(11))],
                Temporality::LowMemory,
                true,
            )),
        ),
        metric(
            "level",
            "1",
            MetricData::F64Sum(sum(
                vec![number(vec![], MetricNumber::F64(-1.5))],
                Temporality::LowMemory,
                false,
            )),
        ),
    ]
}

/// Exports `metrics` under the guest's own resource (whose `service.name`
/// the host overrides and whose other attributes it keeps); the error the
/// host returned, if any.
fn export(metrics: Vec<Metric>) -> Value {
    let exported = metrics::export(&ResourceMetrics {
        resource: Resource {
            attributes: vec![
                kv("service.name", r#""unknown_service""#),
                kv("deployment.environment", r#""test""#),
            ],
            schema_url: Some("https://opentelemetry.io/schemas/1.26.0".to_string()),
        },
        scope_metrics: vec![ScopeMetrics {
            scope: scope("guest-meter", "1.2.3"),
            metrics,
        }],
    });
    match exported {
        Ok(()) => Value::Null,
        Err(error) => Value::String(error),
    }
}

pub fn metrics() -> Value {
    let outer = otel::outer_span_context();
    let measure = start("measure", &outer);
    let exported = export(every_kind(&measure));
    let measure_id = measure.context.span_id.clone();
    end(measure, vec![], vec![], vec![], otel::Status::Unset);
    json!({
        "trace_id": outer.trace_id,
        "measure": measure_id,
        "error": exported,
    })
}

fn record(body: &str, severity: u8, text: &str) -> LogRecord {
    LogRecord {
        timestamp: Some(TIME),
        observed_timestamp: None,
        severity_text: Some(text.to_string()),
        severity_number: Some(severity),
        body: Some(body.to_string()),
        attributes: Some(vec![kv("k", r#""v""#)]),
        event_name: None,
        resource: None,
        instrumentation_scope: None,
        trace_id: None,
        span_id: None,
        trace_flags: None,
    }
}

pub fn logs() -> Value {
    let outer = otel::outer_span_context();
    logs::on_emit(&record(r#""outside any span""#, 9, "INFO"));
    let emit = start("emit", &outer);
    logs::on_emit(&LogRecord {
        event_name: Some("order.failed".to_string()),
        instrumentation_scope: Some(scope("guest-logger", "0.9")),
        trace_id: Some(emit.context.trace_id.clone()),
        span_id: Some(emit.context.span_id.clone()),
        trace_flags: Some(TraceFlags::SAMPLED),
        attributes: Some(vec![kv("order.id", "42"), kv("retry", "true")]),
        ..record(r#"{"order":{"id":42,"tags":["a","b"]}}"#, 17, "ERROR")
    });
    let emit_id = emit.context.span_id.clone();
    end(emit, vec![], vec![], vec![], otel::Status::Unset);
    let ours = OurSpan::start("ours", &[]);
    logs::on_emit(&record(r#""in ours""#, 5, "DEBUG"));
    let ours_id = ours.context().span_id;
    ours.end();
    logs::on_emit(&LogRecord {
        trace_id: Some("not a trace id".to_string()),
        span_id: Some("zz".to_string()),
        ..record(r#""invalid ids""#, 13, "WARN")
    });
    json!({
        "trace_id": outer.trace_id,
        "outer": outer.span_id,
        "emit": emit_id,
        "ours": ours_id,
    })
}

fn gauge(name: &str, points: Vec<GaugeDataPoint>) -> Metric {
    metric(
        name,
        "1",
        MetricData::F64Gauge(Gauge {
            data_points: points,
            start_time: None,
            time: TIME,
        }),
    )
}

fn point(attributes: Vec<KeyValue>, value: f64) -> GaugeDataPoint {
    GaugeDataPoint {
        attributes,
        value: MetricNumber::F64(value),
        exemplars: vec![],
    }
}

fn histogram(bounds: Vec<f64>, bucket_counts: Vec<u64>, count: u64) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![],
        count,
        bounds,
        bucket_counts,
        min: None,
        max: None,
        sum: MetricNumber::F64(1.0),
        exemplars: vec![],
    }
}

/// What a broken SDK might export: 9 invalid points, 2 too large, then a
/// flood of 100,000 (the request keeps 2000); and 1200 log records, the first
/// with a body of 20000 bytes.
pub fn garbage() -> Value {
    let outer = otel::outer_span_context();
    let bad_exemplar = GaugeDataPoint {
        exemplars: vec![Exemplar {
            filtered_attributes: vec![],
            time: TIME,
            value: MetricNumber::F64(1.0),
            span_id: "zz".to_string(),
            trace_id: outer.trace_id.clone(),
        }],
        ..point(vec![], 1.0)
    };
    let wide: Vec<KeyValue> = (0..200).map(|n| kv(&format!("k{n}"), "1")).collect();
    let long = vec![kv("long", &format!("\"{}\"", "x".repeat(5000)))];
    let flood: Vec<SumDataPoint> = (0..100_000)
        .map(|n| number(vec![kv("n", &n.to_string())], MetricNumber::U64(1)))
        .collect();
    let exported = export(vec![
        gauge(
            "garbage.gauge",
            vec![point(vec![], f64::NAN), point(vec![], f64::INFINITY)],
        ),
        metric(
            "garbage.histogram",
            "1",
            MetricData::F64Histogram(Histogram {
                data_points: vec![
                    histogram(vec![1.0, 2.0], vec![1, 1, 1], 5),
                    histogram(vec![1.0, 2.0], vec![1, 1], 2),
                    histogram(vec![2.0, 1.0], vec![1, 1, 1], 3),
                ],
                start_time: START,
                time: TIME,
                temporality: Temporality::Delta,
            }),
        ),
        metric(
            "garbage.exponential",
            "1",
            MetricData::F64ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![],
                    count: 10,
                    min: None,
                    max: None,
                    sum: MetricNumber::F64(3.0),
                    scale: 0,
                    zero_count: 1,
                    positive_bucket: ExponentialBucket {
                        offset: 0,
                        counts: vec![1, 1],
                    },
                    negative_bucket: ExponentialBucket {
                        offset: 0,
                        counts: vec![],
                    },
                    zero_threshold: 0.0,
                    exemplars: vec![],
                }],
                start_time: START,
                time: TIME,
                temporality: Temporality::Delta,
            }),
        ),
        metric(
            "garbage.sum",
            "1",
            MetricData::S64Sum(sum(
                vec![
                    number(vec![], MetricNumber::S64(-5)),
                    number(vec![], MetricNumber::U64(u64::MAX)),
                ],
                Temporality::Delta,
                true,
            )),
        ),
        gauge("garbage.exemplar", vec![bad_exemplar]),
        gauge("garbage.wide", vec![point(wide, 1.0), point(long, 1.0)]),
        metric(
            "garbage.flood",
            "1",
            MetricData::U64Sum(sum(flood, Temporality::Delta, true)),
        ),
    ]);
    logs::on_emit(&record(&format!("\"{}\"", "y".repeat(20_000)), 9, "INFO"));
    for n in 1..1200 {
        logs::on_emit(&record(&format!("\"record {n}\""), 9, "INFO"));
    }
    json!({"trace_id": outer.trace_id, "error": exported})
}
