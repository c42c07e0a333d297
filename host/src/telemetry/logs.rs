//! Log records: the lines guests write to stdout and stderr, the host's
//! request log and its per-request warnings, as OpenTelemetry log records
//! with the service's resource and the trace and span they were written in.
//!
//! [`Logs`] is the process's bounded queue (`OTEL_BLRP_MAX_QUEUE_SIZE`: a
//! record past it is dropped and counted, never waited for), which the logs
//! pusher (`super::push`) drains every `OTEL_BLRP_SCHEDULE_DELAY` into OTLP
//! `ExportLogsServiceRequest`s grouped by service. [`ServiceLogs`] is one
//! service's way in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::console::Console;
use super::explorer::SpanLogs;
use super::metrics::{EXPORT_QUEUE, ServiceMetrics};
use super::push::{Payload, Source};

/// Records per export request, at most.
const BATCH: usize = 512;

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

/// One record waiting for export, with its service.
#[derive(Debug)]
struct Queued {
    service: Arc<ServiceLogs>,
    origin: Origin,
    record: LogRecord,
}

/// The process's log queue.
#[derive(Debug)]
pub struct Logs {
    queue: Mutex<VecDeque<Queued>>,
    capacity: usize,
    /// Records dropped because the queue was full, in all.
    pub dropped: AtomicU64,
    /// Records whose export failed, in all.
    pub undelivered: AtomicU64,
    /// Prints each record as it is written (`OTEL_LOGS_EXPORTER=console`).
    console: bool,
    /// Queues records for OTLP (`OTEL_LOGS_EXPORTER=otlp`).
    exports: bool,
}

impl Logs {
    /// A queue of at most `capacity` records for OTLP when `exports`;
    /// `console` prints each record.
    pub fn new(capacity: usize, console: bool, exports: bool) -> Logs {
        Logs {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            console,
            exports,
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
    }

    /// Up to [`BATCH`] records, grouped by service and scope.
    fn batch(&self) -> Option<ExportLogsServiceRequest> {
        let taken: Vec<Queued> = {
            let mut queue = self.queue.lock().ok()?;
            let n = queue.len().min(BATCH);
            queue.drain(..n).collect()
        };
        if taken.is_empty() {
            return None;
        }
        let mut resource_logs: Vec<(Arc<ServiceLogs>, ResourceLogs)> = Vec::new();
        for queued in taken {
            let at = match resource_logs
                .iter()
                .position(|(service, _)| Arc::ptr_eq(service, &queued.service))
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
                    ));
                    resource_logs.len() - 1
                }
            };
            let scope_name = match queued.origin {
                Origin::Guest => super::metrics::GUEST_SCOPE,
                Origin::Host => super::tracer::HOST_SCOPE,
            };
            let scopes = &mut resource_logs[at].1.scope_logs;
            let scope = match scopes
                .iter()
                .position(|s| s.scope.as_ref().is_some_and(|s| s.name == scope_name))
            {
                Some(at) => &mut scopes[at],
                None => {
                    scopes.push(ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: scope_name.to_string(),
                            version: env!("CARGO_PKG_VERSION").to_string(),
                            ..Default::default()
                        }),
                        log_records: Vec::new(),
                        schema_url: String::new(),
                    });
                    scopes.last_mut()?
                }
            };
            scope.log_records.push(queued.record);
        }
        Some(ExportLogsServiceRequest {
            resource_logs: resource_logs.into_iter().map(|(_, r)| r).collect(),
        })
    }
}

impl Source for Logs {
    fn collect(&self) -> Vec<Payload> {
        std::iter::from_fn(|| self.batch())
            .map(Payload::Logs)
            .collect()
    }

    fn undelivered(&self, payload: &Payload) {
        if let Payload::Logs(export) = payload {
            let count: usize = export
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum();
            self.undelivered.fetch_add(count as u64, Ordering::Relaxed);
        }
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
        if self.logs.console {
            let ids = span
                .filter(|s| s.is_valid())
                .map(|s| format!(" trace={} span={}", s.trace_id(), s.span_id()))
                .unwrap_or_default();
            println!("log {} {}{ids} {body}", self.name, severity.text());
        }
        let now = super::metrics::now_nanos();
        if let (Origin::Guest, Some(span)) = (origin, span.filter(|s| s.is_valid())) {
            if let Some(console) = &self.console {
                console.log(span.span_id(), format!("{} {body}", severity.text()));
            }
            if let Some(explorer) = &self.explorer {
                explorer.log(span, now, severity.text(), &body);
            }
        }
        let (trace_id, span_id, flags) = match span.filter(|s| s.is_valid()) {
            Some(span) => (
                span.trace_id().to_bytes().to_vec(),
                span.span_id().to_bytes().to_vec(),
                u32::from(span.trace_flags().to_u8()),
            ),
            None => (Vec::new(), Vec::new(), 0),
        };
        let record = LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            severity_number: severity.number() as i32,
            severity_text: severity.text().to_string(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes: attributes
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key: key.to_string(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(value)),
                    }),
                    key_strindex: 0,
                })
                .collect(),
            dropped_attributes_count: 0,
            flags,
            trace_id,
            span_id,
            event_name: String::new(),
        };
        self.logs.push(Queued {
            service: self.clone(),
            origin,
            record,
        });
    }
}
