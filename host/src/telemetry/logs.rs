//! Log records: the lines guests write to stdout and stderr, the host's
//! request log and its per-request warnings, as OpenTelemetry log records
//! with the service's resource and the trace and span they were written in.
//!
//! [`Logs`] is the process's bounded queue (`OTEL_BLRP_MAX_QUEUE_SIZE`: a
//! record past it is dropped and counted, never waited for), which the logs
//! pusher (`super::push`) drains every `OTEL_BLRP_SCHEDULE_DELAY`, or as
//! soon as `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` records wait (as the
//! specification's batch processor does), into OTLP
//! `ExportLogsServiceRequest`s of at most that many records, grouped by
//! service. [`ServiceLogs`] is one
//! service's way in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::config::LogRecordLimits;
use super::console::Console;
use super::explorer::SpanLogs;
use super::metrics::{EXPORT_QUEUE, ServiceMetrics};
use super::push::{Payload, Source};

/// Who wrote a record: the scope it is exported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The guest, on stdout or stderr (scope `wasm-otel-guest`).
    Guest,
    /// The host (scope `wasm-otel-host`).
    Host,
}

/// How grave a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `INFO` (9): a guest's stdout, the host's request log.
    Info,
    /// `WARN` (13): a guest's stderr, the host's warnings.
    Warn,
}

impl Severity {
    fn number(self) -> SeverityNumber {
        match self {
            Severity::Info => SeverityNumber::Info,
            Severity::Warn => SeverityNumber::Warn,
        }
    }

    /// The severity's text.
    pub fn text(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
        }
    }
}

/// One record waiting for export, with its service and scope.
#[derive(Debug)]
struct Queued {
    service: Arc<ServiceLogs>,
    origin: Origin,
    /// The scope a guest named (`wasi:otel/logs`); `None`: the origin's,
    /// made when the batch is, off the request's path.
    scope: Option<InstrumentationScope>,
    record: LogRecord,
}

impl Origin {
    /// The scope of the records the host makes for `self`.
    fn scope(self) -> InstrumentationScope {
        InstrumentationScope {
            name: match self {
                Origin::Guest => super::metrics::GUEST_SCOPE,
                Origin::Host => super::tracer::HOST_SCOPE,
            }
            .to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        }
    }
}

/// The process's log queue.
#[derive(Debug)]
pub struct Logs {
    queue: Mutex<VecDeque<Queued>>,
    capacity: usize,
    /// Records per export request, at most; a queue this long wakes the
    /// pusher.
    batch: usize,
    /// Wakes the pusher when a full batch waits.
    ready: Arc<Notify>,
    /// Records dropped because the queue was full, in all.
    pub dropped: AtomicU64,
    /// Records whose export failed, in all.
    pub undelivered: AtomicU64,
    /// Prints each record as it is written (`OTEL_LOGS_EXPORTER=console`).
    console: bool,
    /// Queues records for OTLP (`OTEL_LOGS_EXPORTER=otlp`).
    exports: bool,
    /// `OTEL_LOGRECORD_ATTRIBUTE_*_LIMIT`, applied to every record.
    limits: LogRecordLimits,
}

impl Logs {
    /// A queue of at most `capacity` records for OTLP, exported in requests
    /// of at most `batch`, each record's attributes within `limits`, when
    /// `exports`; `console` prints each record.
    pub fn new(
        capacity: usize,
        batch: usize,
        limits: LogRecordLimits,
        console: bool,
        exports: bool,
    ) -> Logs {
        Logs {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            batch: batch.clamp(1, capacity.max(1)),
            ready: Arc::new(Notify::new()),
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            console,
            exports,
            limits,
        }
    }

    fn push(&self, queued: Queued) {
        if !self.exports {
            return;
        }
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        if queue.len() >= self.capacity {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let (Origin::Guest, Some(metrics)) = (queued.origin, &queued.service.metrics) {
                metrics.logs_dropped(1, EXPORT_QUEUE);
            }
            return;
        }
        queue.push_back(queued);
        if queue.len() == self.batch {
            drop(queue);
            self.ready.notify_one();
        }
    }

    /// Up to a batch of records, grouped by service and scope.
    fn batch(&self) -> Option<ExportLogsServiceRequest> {
        let taken: Vec<Queued> = {
            let mut queue = self.queue.lock().ok()?;
            let n = queue.len().min(self.batch);
            queue.drain(..n).collect()
        };
        if taken.is_empty() {
            return None;
        }
        // Per service: its records, and for each of its scopes the origin
        // whose scope the host made (`None` for a guest's own scope), so
        // that a host scope is built once a batch, not once a record.
        let mut resource_logs: Vec<(Arc<ServiceLogs>, ResourceLogs, Vec<Option<Origin>>)> =
            Vec::new();
        for queued in taken {
            let at = match resource_logs
                .iter()
                .position(|(service, ..)| Arc::ptr_eq(service, &queued.service))
            {
                Some(at) => at,
                None => {
                    resource_logs.push((
                        queued.service.clone(),
                        ResourceLogs {
                            resource: Some(queued.service.resource.clone()),
                            scope_logs: Vec::new(),
                            schema_url: String::new(),
                        },
                        Vec::new(),
                    ));
                    resource_logs.len() - 1
                }
            };
            let (_, resource, made_by) = &mut resource_logs[at];
            let scopes = &mut resource.scope_logs;
            let found = match &queued.scope {
                None => made_by.iter().position(|by| *by == Some(queued.origin)),
                Some(own) => scopes.iter().position(|s| s.scope.as_ref() == Some(own)),
            };
            let scope = match found {
                Some(at) => &mut scopes[at],
                None => {
                    made_by.push(queued.scope.is_none().then_some(queued.origin));
                    scopes.push(ScopeLogs {
                        scope: Some(queued.scope.unwrap_or_else(|| queued.origin.scope())),
                        log_records: Vec::new(),
                        schema_url: String::new(),
                    });
                    scopes.last_mut()?
                }
            };
            scope.log_records.push(queued.record);
        }
        Some(ExportLogsServiceRequest {
            resource_logs: resource_logs.into_iter().map(|(_, r, _)| r).collect(),
        })
    }
}

impl Source for Logs {
    fn ready(&self) -> Option<Arc<Notify>> {
        Some(self.ready.clone())
    }

    fn collect(&self) -> Vec<Payload> {
        std::iter::from_fn(|| self.batch())
            .map(Payload::Logs)
            .collect()
    }

    fn undelivered(&self, log_records: usize) {
        self.undelivered
            .fetch_add(log_records as u64, Ordering::Relaxed);
    }
}

/// One service's way into the log queue.
#[derive(Debug)]
pub struct ServiceLogs {
    name: String,
    resource: Resource,
    logs: Arc<Logs>,
    /// Where dropped guest lines are counted.
    metrics: Option<Arc<ServiceMetrics>>,
    /// The terminal view, which draws a guest's lines under their span.
    console: Option<Arc<Console>>,
    /// The explorer (`--ui`), which shows them under their span too.
    explorer: Option<Arc<SpanLogs>>,
}

/// The `log.iostream` attribute of a guest's line.
pub const LOG_IOSTREAM: &str = "log.iostream";

impl ServiceLogs {
    /// The way in for service `name` with `resource`.
    pub fn new(
        name: String,
        resource: Resource,
        logs: Arc<Logs>,
        metrics: Option<Arc<ServiceMetrics>>,
        console: Option<Arc<Console>>,
        explorer: Option<Arc<SpanLogs>>,
    ) -> ServiceLogs {
        ServiceLogs {
            name,
            resource,
            logs,
            metrics,
            console,
            explorer,
        }
    }

    /// The service's instruments, to count what a request's limit cut.
    pub fn metrics(&self) -> Option<&ServiceMetrics> {
        self.metrics.as_deref()
    }

    /// Shows a record where it is shown as it is written: the console
    /// exporter's line and, for a guest's record in a span, the terminal
    /// view and the explorer.
    fn show(&self, origin: Origin, severity: &str, body: &str, span: Option<&SpanContext>) {
        if self.logs.console {
            let ids = span
                .filter(|s| s.is_valid())
                .map(|s| format!(" trace={} span={}", s.trace_id(), s.span_id()))
                .unwrap_or_default();
            println!("log {} {severity}{ids} {body}", self.name);
        }
        if let (Origin::Guest, Some(span)) = (origin, span.filter(|s| s.is_valid())) {
            if let Some(console) = &self.console {
                console.log(span.span_id(), format!("{severity} {body}"));
            }
            if let Some(explorer) = &self.explorer {
                explorer.log(span, super::metrics::now_nanos(), severity, body);
            }
        }
    }

    /// Queues a record a guest emitted whole (`wasi:otel/logs`), in the
    /// scope it names (`wasm-otel-guest` when it names none); `span` is
    /// the span its ids name, for the views that draw it under its span,
    /// and `body` its body as text, for the lines that print it.
    pub fn emit_record(
        self: &Arc<Self>,
        mut record: LogRecord,
        scope: Option<InstrumentationScope>,
        span: Option<&SpanContext>,
        body: &str,
    ) {
        let severity = if record.severity_text.is_empty() {
            "LOG"
        } else {
            record.severity_text.as_str()
        };
        self.show(Origin::Guest, severity, body, span);
        within_limits(&mut record, self.logs.limits);
        self.logs.push(Queued {
            service: self.clone(),
            origin: Origin::Guest,
            scope,
            record,
        });
    }

    /// Queues one record written by `origin` at `severity`, in the span
    /// `span` (when valid), with `attributes`.
    pub fn emit(
        self: &Arc<Self>,
        origin: Origin,
        severity: Severity,
        body: String,
        span: Option<&SpanContext>,
        attributes: Vec<(&'static str, String)>,
    ) {
        self.show(origin, severity.text(), &body, span);
        let now = super::metrics::now_nanos();
        let (trace_id, span_id, flags) = match span.filter(|s| s.is_valid()) {
            Some(span) => (
                span.trace_id().to_bytes().to_vec(),
                span.span_id().to_bytes().to_vec(),
                u32::from(span.trace_flags().to_u8()),
            ),
            None => (Vec::new(), Vec::new(), 0),
        };
        let (attributes, dropped_attributes_count) = limited(attributes, self.logs.limits);
        let record = LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            severity_number: severity.number() as i32,
            severity_text: severity.text().to_string(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes,
            dropped_attributes_count,
            flags,
            trace_id,
            span_id,
            event_name: String::new(),
        };
        self.logs.push(Queued {
            service: self.clone(),
            origin,
            scope: None,
            record,
        });
    }
}

/// `attributes` within `limits`: the first `attribute_count` kept, string
/// values cut to `attribute_value_length` characters; with the number of
/// attributes left out (a record's `dropped_attributes_count`).
fn limited(
    attributes: Vec<(&'static str, String)>,
    limits: LogRecordLimits,
) -> (Vec<KeyValue>, u32) {
    let keep = usize::try_from(limits.attribute_count).unwrap_or(usize::MAX);
    let dropped = u32::try_from(attributes.len().saturating_sub(keep)).unwrap_or(u32::MAX);
    let kept = attributes
        .into_iter()
        .take(keep)
        .map(|(key, mut value)| {
            if let Some(max) = limits.attribute_value_length
                && let Some((cut, _)) = value.char_indices().nth(max)
            {
                value.truncate(cut);
            }
            KeyValue {
                key: key.to_string(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(value)),
                }),
                key_strindex: 0,
            }
        })
        .collect();
    (kept, dropped)
}

/// A record a guest built (`wasi:otel/logs`) within `limits`, as
/// [`limited`] does for the host's own: attributes past the count left out
/// and added to its `dropped_attributes_count`, every string in a value
/// (inside arrays and maps too) cut to the length limit in characters.
fn within_limits(record: &mut LogRecord, limits: LogRecordLimits) {
    fn cut(value: &mut AnyValue, max: usize) {
        match &mut value.value {
            Some(any_value::Value::StringValue(s)) => {
                if let Some((at, _)) = s.char_indices().nth(max) {
                    s.truncate(at);
                }
            }
            Some(any_value::Value::ArrayValue(array)) => {
                array.values.iter_mut().for_each(|v| cut(v, max));
            }
            Some(any_value::Value::KvlistValue(list)) => list
                .values
                .iter_mut()
                .filter_map(|kv| kv.value.as_mut())
                .for_each(|v| cut(v, max)),
            _ => {}
        }
    }
    let keep = usize::try_from(limits.attribute_count).unwrap_or(usize::MAX);
    let excess = record.attributes.len().saturating_sub(keep);
    record.attributes.truncate(keep);
    record.dropped_attributes_count = record
        .dropped_attributes_count
        .saturating_add(u32::try_from(excess).unwrap_or(u32::MAX));
    if let Some(max) = limits.attribute_value_length {
        record
            .attributes
            .iter_mut()
            .filter_map(|kv| kv.value.as_mut())
            .for_each(|v| cut(v, max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest's record: attributes past the count limit are left out and
    /// added to what it already dropped; strings are cut wherever they are
    /// in a value, numbers untouched.
    #[test]
    fn guest_records_within_limits() {
        let string = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.to_string())),
        };
        let kv = |key: &str, value: AnyValue| KeyValue {
            key: key.to_string(),
            value: Some(value),
            key_strindex: 0,
        };
        let array = AnyValue {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![string("élan"), string("ok")],
                },
            )),
        };
        let int = AnyValue {
            value: Some(any_value::Value::IntValue(123_456)),
        };
        let mut record = LogRecord {
            attributes: vec![
                kv("a", string("stdout")),
                kv("b", array),
                kv("c", int.clone()),
                kv("d", string("x")),
            ],
            dropped_attributes_count: 2,
            ..Default::default()
        };
        within_limits(
            &mut record,
            LogRecordLimits {
                attribute_count: 3,
                attribute_value_length: Some(2),
            },
        );
        let cut_array = AnyValue {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![string("él"), string("ok")],
                },
            )),
        };
        assert_eq!(
            record.attributes,
            vec![kv("a", string("st")), kv("b", cut_array), kv("c", int)]
        );
        assert_eq!(record.dropped_attributes_count, 3);
    }

    /// Past the count limit attributes are left out and counted; string
    /// values are cut to the length limit in characters, not bytes.
    #[test]
    fn record_attributes_within_limits() {
        let limits = |count, length| LogRecordLimits {
            attribute_count: count,
            attribute_value_length: length,
        };
        let strings = |kvs: &[KeyValue]| -> Vec<String> {
            kvs.iter()
                .map(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => format!("{}={s}", kv.key),
                        other => panic!("not a string: {other:?}"),
                    },
                )
                .collect()
        };
        type Case<'a> = (u32, Option<usize>, &'a [&'a str], u32);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (128, None,    &["a=stdout", "b=élan"], 0),
            (1,   None,    &["a=stdout"],           1),
            (0,   None,    &[],                     2),
            (128, Some(3), &["a=std", "b=éla"],     0),
            (1,   Some(0), &["a="],                 1),
        ];
        for &(count, length, kept, dropped) in cases {
            let (kvs, n) = limited(
                vec![("a", "stdout".to_string()), ("b", "élan".to_string())],
                limits(count, length),
            );
            assert_eq!(
                (strings(&kvs), n),
                (
                    kept.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    dropped
                ),
                "{count} {length:?}"
            );
        }
    }
}
