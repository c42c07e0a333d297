//! Log records: the lines guests write to stdout and stderr, the host's
//! request log and its per-request warnings, as OpenTelemetry log records
//! with the service's resource and the trace and span they were written in.
//!
//! [`ServiceLogs`] is one service's way in: it bounds a record's
//! attributes, shows it where records are shown as they are written (the
//! console exporter, the terminal view, the explorer), encodes it and
//! queues it in the process's queue (`log_queue`), which the logs pusher
//! (`super::push`) drains every `OTEL_BLRP_SCHEDULE_DELAY`, or as soon as
//! `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` records wait (as the specification's
//! batch processor does).
//!
//! A record is encoded as it is written, into its thread's part of the
//! queue: kept as a structure in a shared queue until export, it cost a
//! copy, a lock both workers took in turn, and a second pass at export over
//! memory another processor wrote. The one exception is the request log's
//! record, one every request: its fields (a clock read, the ids, the
//! status, the method and path copied) wait in the part, in order with the
//! others, and the export writes its body and encodes it, with the code
//! warm, a batch of them in a row (`log_queue::Request`). The host's own
//! records (a guest's lines, the request log, warnings) are encoded by hand
//! (`wire`), byte for byte as prost would; a record a guest built whole
//! (`wasi:otel/logs`) is encoded by prost.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::config::LogRecordLimits;
use super::console::Console;
use super::display::write_request_summary;
use super::explorer::SpanLogs;
use super::log_queue::{Logs, Request};
use super::metrics::ServiceMetrics;
use super::wire::{
    FIXED32, FIXED64, VARINT, delimited_len, put_bytes, put_header, put_key, put_varint, varint_len,
};

/// Who wrote a record: the scope it is exported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The host (scope `wasm-otel-host`).
    Host,
    /// The guest, on stdout or stderr (scope `wasm-otel-guest`).
    Guest,
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

/// A record the host makes of a line, as its OTLP `LogRecord` holds it,
/// borrowed while it is encoded.
#[derive(Debug)]
struct Line<'a> {
    /// When it was written: the record's time and observed time.
    time: u64,
    severity: Severity,
    body: &'a str,
    /// The trace id, span id and trace flags of the span it was written in.
    span: Option<([u8; 16], [u8; 8], u8)>,
    /// String attributes, each value within the length limit.
    attributes: &'a [(&'static str, &'a str)],
    dropped_attributes_count: u32,
}

/// Bytes of a `KeyValue` of `key` holding the string `value`.
fn string_kv_len(key: &str, value: &str) -> usize {
    let key = if key.is_empty() {
        0
    } else {
        delimited_len(1, key.len())
    };
    // `value` (2): an `AnyValue` whose `string_value` (1) is a oneof
    // member, written even when empty.
    key + delimited_len(2, delimited_len(1, value.len()))
}

impl Line<'_> {
    /// Its `LogRecord`'s encoded length.
    fn encoded_len(&self) -> usize {
        let mut len = delimited_len(5, delimited_len(1, self.body.len()));
        if self.time != 0 {
            // `time_unix_nano` (1) and `observed_time_unix_nano` (11).
            len += 2 * (1 + 8);
        }
        len += 1 + varint_len(self.severity.number() as i32 as u64);
        len += delimited_len(3, self.severity.text().len());
        len += self
            .attributes
            .iter()
            .map(|(key, value)| delimited_len(6, string_kv_len(key, value)))
            .sum::<usize>();
        if self.dropped_attributes_count != 0 {
            len += 1 + varint_len(u64::from(self.dropped_attributes_count));
        }
        if let Some((_, _, flags)) = self.span {
            if flags != 0 {
                len += 1 + 4;
            }
            len += delimited_len(9, 16) + delimited_len(10, 8);
        }
        len
    }

    /// Appends its `LogRecord`'s fields, in the order of their numbers, as
    /// prost does; a field at its default value is left out, as proto3
    /// says.
    fn encode(&self, buf: &mut Vec<u8>) {
        if self.time != 0 {
            put_key(buf, 1, FIXED64);
            buf.extend_from_slice(&self.time.to_le_bytes());
        }
        put_key(buf, 2, VARINT);
        put_varint(buf, self.severity.number() as i32 as u64);
        put_bytes(buf, 3, self.severity.text().as_bytes());
        // `body`: an `AnyValue` holding `string_value` (1).
        put_header(buf, 5, delimited_len(1, self.body.len()));
        put_bytes(buf, 1, self.body.as_bytes());
        for (key, value) in self.attributes {
            put_header(buf, 6, string_kv_len(key, value));
            if !key.is_empty() {
                put_bytes(buf, 1, key.as_bytes());
            }
            put_header(buf, 2, delimited_len(1, value.len()));
            put_bytes(buf, 1, value.as_bytes());
        }
        if self.dropped_attributes_count != 0 {
            put_key(buf, 7, VARINT);
            put_varint(buf, u64::from(self.dropped_attributes_count));
        }
        if let Some((trace_id, span_id, flags)) = &self.span {
            if *flags != 0 {
                put_key(buf, 8, FIXED32);
                buf.extend_from_slice(&u32::from(*flags).to_le_bytes());
            }
            put_bytes(buf, 9, trace_id);
            put_bytes(buf, 10, span_id);
        }
        if self.time != 0 {
            put_key(buf, 11, FIXED64);
            buf.extend_from_slice(&self.time.to_le_bytes());
        }
    }
}

impl Origin {
    /// The scope of the records the host makes for `self`.
    pub(super) fn scope(self) -> InstrumentationScope {
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

/// One service's way into the log queue.
#[derive(Debug)]
pub struct ServiceLogs {
    name: String,
    /// Its place in the queue's resources.
    service: usize,
    logs: Arc<Logs>,
    /// Where dropped guest lines are counted.
    metrics: Option<&'static ServiceMetrics>,
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
        metrics: Option<&'static ServiceMetrics>,
        console: Option<Arc<Console>>,
        explorer: Option<Arc<SpanLogs>>,
    ) -> ServiceLogs {
        ServiceLogs {
            name,
            service: logs.register(resource.encode_to_vec()),
            logs,
            metrics,
            console,
            explorer,
        }
    }

    /// The service's instruments, to count what a request's limit cut.
    pub fn metrics(&self) -> Option<&'static ServiceMetrics> {
        self.metrics
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
        &self,
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
        self.logs.push_record(
            self.service,
            scope.map(|scope| scope.encode_to_vec()),
            self.metrics(),
            record.encoded_len(),
            |buf| record.encode_raw(buf),
        );
    }

    /// Queues the record of a request this service served: `method`,
    /// `path`, `status` and `took`, as [`write_request_summary`] writes
    /// them, in its SERVER span `server`. Its body is written and the
    /// record encoded when it is exported, off the request path (see
    /// `log_queue::Request`); the console exporter prints it now.
    pub fn request_ended(
        &self,
        method: &str,
        path: &str,
        status: u16,
        took: Duration,
        server: &SpanContext,
    ) {
        if self.logs.console {
            let mut body = String::new();
            write_request_summary(&mut body, method, path, status, took);
            self.show(Origin::Host, Severity::Info.text(), &body, Some(server));
        }
        if !self.logs.exports {
            return;
        }
        let request = Request {
            time: super::metrics::now_nanos(),
            span: ids(server),
            status,
            took,
        };
        self.logs
            .push_request(self.service, self.metrics(), request, method, path);
    }

    /// Queues one record written by `origin` at `severity`, in the span
    /// `span` (when valid), with the string `attributes`.
    pub fn emit(
        &self,
        origin: Origin,
        severity: Severity,
        body: &str,
        span: Option<&SpanContext>,
        attributes: &[(&'static str, &str)],
    ) {
        if self.logs.console || origin == Origin::Guest {
            self.show(origin, severity.text(), body, span);
        }
        if !self.logs.exports {
            return;
        }
        let span = span.and_then(ids);
        let (attributes, dropped_attributes_count) = limited(attributes, self.logs.limits);
        let line = Line {
            time: super::metrics::now_nanos(),
            severity,
            body,
            span,
            attributes: &attributes,
            dropped_attributes_count,
        };
        self.logs.push_line(
            self.service,
            origin,
            self.metrics(),
            line.encoded_len(),
            |buf| line.encode(buf),
        );
    }
}

/// The trace id, span id and trace flags a record in `span` carries, when
/// `span` is valid.
fn ids(span: &SpanContext) -> Option<([u8; 16], [u8; 8], u8)> {
    span.is_valid().then(|| {
        (
            span.trace_id().to_bytes(),
            span.span_id().to_bytes(),
            span.trace_flags().to_u8(),
        )
    })
}

/// Appends to `buf` the record of a served `request` with `method` and
/// `path` (see [`ServiceLogs::request_ended`]), as a `ScopeLogs.log_records`
/// field, writing its body in `body` first.
pub(super) fn encode_request(
    buf: &mut Vec<u8>,
    body: &mut String,
    request: &Request,
    method: &str,
    path: &str,
) {
    body.clear();
    write_request_summary(body, method, path, request.status, request.took);
    let line = Line {
        time: request.time,
        severity: Severity::Info,
        body,
        span: request.span,
        attributes: &[],
        dropped_attributes_count: 0,
    };
    put_header(buf, 2, line.encoded_len());
    line.encode(buf);
}

/// `attributes` within `limits`: the first `attribute_count` kept, string
/// values cut to `attribute_value_length` characters; with the number of
/// attributes left out (a record's `dropped_attributes_count`).
fn limited<'a>(
    attributes: &[(&'static str, &'a str)],
    limits: LogRecordLimits,
) -> (Vec<(&'static str, &'a str)>, u32) {
    let keep = usize::try_from(limits.attribute_count).unwrap_or(usize::MAX);
    let dropped = u32::try_from(attributes.len().saturating_sub(keep)).unwrap_or(u32::MAX);
    let kept = attributes
        .iter()
        .take(keep)
        .map(|&(key, value)| match limits.attribute_value_length {
            Some(max) => match value.char_indices().nth(max) {
                Some((cut, _)) => (key, &value[..cut]),
                None => (key, value),
            },
            None => (key, value),
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
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::telemetry::log_queue::{EncodedLogs, RESERVED};
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(s.to_string())),
        }
    }

    /// The export the host encodes by hand is, byte for byte, what prost
    /// encodes for the same message, and holds what was emitted: records
    /// of two services, grouped by service and scope in the order first
    /// seen; lines in a sampled span, an unsampled one and none, with and
    /// without attributes, an empty body; a guest's own record in its own
    /// scope beside them.
    #[test]
    fn hand_encoding_is_prosts() {
        use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        // One attribute a record: the stderr line's second is dropped and
        // counted.
        let limits = LogRecordLimits {
            attribute_count: 1,
            attribute_value_length: None,
        };
        let logs = Arc::new(Logs::new(100, 100, limits, false, true));
        let service = |name: &str| {
            let resource = Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(string(name)),
                    key_strindex: 0,
                }],
                ..Default::default()
            };
            Arc::new(ServiceLogs::new(
                name.to_string(),
                resource,
                logs.clone(),
                None,
                None,
                None,
            ))
        };
        let (a, b) = (service("order-api"), service("payment-service"));
        let context = |trace: u128, span: u64, flags| {
            SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                flags,
                false,
                TraceState::default(),
            )
        };
        let sampled = context(
            0x0af7_651e_ae45_4236_b0f7_dd01_2345_6789,
            7,
            TraceFlags::SAMPLED,
        );
        let unsampled = context(3, 9, TraceFlags::default());
        // Kept as its fields, encoded by the export, in order with the
        // records encoded as they were written.
        a.request_ended(
            "POST",
            "/orders",
            201,
            Duration::from_micros(1_050),
            &sampled,
        );
        let stderr = [(LOG_IOSTREAM, "stderr"), ("extra", "x")];
        a.emit(
            Origin::Guest,
            Severity::Warn,
            &"é".repeat(200),
            None,
            &stderr,
        );
        b.emit(
            Origin::Guest,
            Severity::Info,
            "",
            Some(&unsampled),
            &[(LOG_IOSTREAM, "stdout")],
        );
        let own = LogRecord {
            time_unix_nano: 5,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(string("own")),
            event_name: "order.failed".into(),
            ..Default::default()
        };
        let sdk = InstrumentationScope {
            name: "guest-sdk".into(),
            version: "1.0".into(),
            ..Default::default()
        };
        a.emit_record(own.clone(), Some(sdk.clone()), None, "own");
        a.emit(Origin::Host, Severity::Warn, "warning", Some(&sampled), &[]);

        let encoded = logs.batch().expect("a batch");
        assert_eq!(encoded.records, 5);
        assert!(logs.batch().is_none(), "the queue is drained");
        let decoded = ExportLogsServiceRequest::decode(encoded.bytes.clone()).expect("decodes");
        assert_eq!(decoded.encode_to_vec(), encoded.bytes.to_vec());

        // Per service, its scopes, each with its records' first characters.
        type Shape = Vec<(String, Vec<(String, Vec<String>)>)>;
        let shape: Shape = decoded
            .resource_logs
            .iter()
            .map(|r| {
                let service = r.resource.as_ref().unwrap().attributes[0].clone();
                let Some(any_value::Value::StringValue(service)) = service.value.unwrap().value
                else {
                    panic!("no service name");
                };
                let scopes = r
                    .scope_logs
                    .iter()
                    .map(|s| {
                        let bodies = s
                            .log_records
                            .iter()
                            .map(|l| match l.body.as_ref().and_then(|b| b.value.as_ref()) {
                                Some(any_value::Value::StringValue(s)) => {
                                    s.chars().take(3).collect()
                                }
                                other => panic!("body {other:?}"),
                            })
                            .collect();
                        (s.scope.as_ref().unwrap().name.clone(), bodies)
                    })
                    .collect();
                (service, scopes)
            })
            .collect();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shape,
            vec![
                (
                    "order-api".to_string(),
                    vec![
                        ("wasm-otel-host".to_string(), owned(&["POS", "war"])),
                        ("wasm-otel-guest".to_string(), owned(&["ééé"])),
                        ("guest-sdk".to_string(), owned(&["own"])),
                    ]
                ),
                (
                    "payment-service".to_string(),
                    vec![("wasm-otel-guest".to_string(), owned(&[""]))]
                ),
            ]
        );
        let order = &decoded.resource_logs[0].scope_logs;
        let request = &order[0].log_records[0];
        assert_eq!(
            request.body,
            Some(string("POST /orders 201 1.05ms")),
            "the request's summary"
        );
        assert_eq!(request.trace_id, sampled.trace_id().to_bytes().to_vec());
        assert_eq!(request.span_id, sampled.span_id().to_bytes().to_vec());
        assert_eq!(request.flags, 1);
        assert_eq!(request.severity_number, SeverityNumber::Info as i32);
        assert_eq!(request.severity_text, "INFO");
        assert!(request.time_unix_nano > 0);
        assert_eq!(request.observed_time_unix_nano, request.time_unix_nano);
        assert!(request.attributes.is_empty());
        let line = &order[1].log_records[0];
        assert!(line.trace_id.is_empty() && line.span_id.is_empty() && line.flags == 0);
        assert_eq!(line.severity_text, "WARN");
        assert_eq!(line.attributes.len(), 1);
        assert_eq!(line.attributes[0].key, LOG_IOSTREAM);
        assert_eq!(line.dropped_attributes_count, 1);
        assert_eq!(order[2].log_records[0], own);
        assert_eq!(order[2].scope.as_ref(), Some(&sdk));
        let unsampled_line = &decoded.resource_logs[1].scope_logs[0].log_records[0];
        assert_eq!(
            unsampled_line.trace_id,
            unsampled.trace_id().to_bytes().to_vec()
        );
        assert_eq!(unsampled_line.flags, 0);
    }

    /// The service and bodies of every record in `export`, in order.
    fn bodies(export: &EncodedLogs) -> Vec<(String, String)> {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        let decoded = ExportLogsServiceRequest::decode(export.bytes.clone()).expect("decodes");
        let mut bodies = Vec::new();
        for resource in decoded.resource_logs {
            let service = format!("{:?}", resource.resource.expect("a resource").attributes);
            for scope in resource.scope_logs {
                for record in scope.log_records {
                    let Some(any_value::Value::StringValue(body)) =
                        record.body.and_then(|b| b.value)
                    else {
                        panic!("not a string body");
                    };
                    bodies.push((service.clone(), body));
                }
            }
        }
        assert_eq!(bodies.len(), export.records, "records as counted");
        bodies
    }

    /// A queue of `capacity` records exported `batch` at a time, and one
    /// service's way into it.
    fn queue(capacity: usize, batch: usize) -> (Arc<Logs>, ServiceLogs) {
        let logs = Arc::new(Logs::new(
            capacity,
            batch,
            LogRecordLimits::default(),
            false,
            true,
        ));
        let service = ServiceLogs::new(
            "order-api".into(),
            Resource::default(),
            logs.clone(),
            None,
            None,
            None,
        );
        (logs, service)
    }

    /// The body of the record of a request to `path` that [`write`] makes.
    fn request_body(path: &str) -> String {
        format!("GET {path} 200 1.00ms")
    }

    /// Writes record `n` of `thread` to `service`: a guest's line, a
    /// host's line or a served request's (encoded at export), in turn.
    fn write(service: &ServiceLogs, thread: usize, n: usize) {
        let body = format!("{thread}-{n}");
        match n % 3 {
            0 => service.emit(
                Origin::Guest,
                Severity::Warn,
                &body,
                None,
                &[(LOG_IOSTREAM, "x")],
            ),
            1 => service.emit(Origin::Host, Severity::Info, &body, None, &[]),
            _ => service.request_ended(
                "GET",
                &format!("/{body}"),
                200,
                Duration::from_millis(1),
                &SpanContext::empty_context(),
            ),
        }
    }

    /// Records written on several threads at once land in their threads'
    /// parts and are all exported, each once, in exports of at most a
    /// batch: a part holding more than an export takes is cut between two
    /// records (encoded ones and requests' alike) and the rest waits for
    /// the next.
    #[test]
    fn every_threads_records_are_exported_once_in_batches() {
        let (logs, service) = queue(1000, 7);
        let service = Arc::new(service);
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let service = service.clone();
                std::thread::spawn(move || {
                    for n in 0..25 {
                        write(&service, thread, n);
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .for_each(|t| t.join().expect("no panic"));
        let mut seen = Vec::new();
        let mut exports = 0;
        while let Some(export) = logs.batch() {
            assert!(
                export.records <= 7,
                "{} records in one export",
                export.records
            );
            seen.extend(bodies(&export).into_iter().map(|(_, body)| body));
            exports += 1;
        }
        assert_eq!(exports, 100usize.div_ceil(7));
        seen.sort();
        let mut sent: Vec<_> = (0..4)
            .flat_map(|t| {
                (0..25).map(move |n| match n % 3 {
                    2 => request_body(&format!("/{t}-{n}")),
                    _ => format!("{t}-{n}"),
                })
            })
            .collect();
        sent.sort();
        assert_eq!(seen, sent);
        assert_eq!(logs.queued(), 0);
        // A thread's order is kept within its scope, requests' records
        // among the others, also when an export takes part of them.
        let (logs, service) = queue(1000, 2);
        service.emit(Origin::Host, Severity::Info, "a", None, &[]);
        write(&service, 0, 2);
        service.emit(Origin::Host, Severity::Info, "b", None, &[]);
        write(&service, 0, 5);
        let mut order = Vec::new();
        while let Some(export) = logs.batch() {
            order.extend(bodies(&export).into_iter().map(|(_, b)| b));
        }
        assert_eq!(
            order,
            ["a", &request_body("/0-2"), "b", &request_body("/0-5")]
        );
    }

    /// Past the queue's capacity a record is dropped and counted, not
    /// waited for; an export makes room again.
    #[test]
    fn a_full_queue_drops_and_counts() {
        let (logs, service) = queue(3, 512);
        for n in 0..5 {
            service.emit(Origin::Host, Severity::Info, &n.to_string(), None, &[]);
        }
        assert_eq!(logs.dropped.load(Ordering::Relaxed), 2);
        let export = logs.batch().expect("the first three");
        let kept: Vec<_> = bodies(&export).into_iter().map(|(_, b)| b).collect();
        assert_eq!(kept, ["0", "1", "2"]);
        service.emit(Origin::Host, Severity::Info, "5", None, &[]);
        assert_eq!(logs.batch().map(|e| e.records), Some(1));
        assert_eq!(logs.dropped.load(Ordering::Relaxed), 2);
    }

    /// Threads writing at once into a queue too small for them all: it
    /// never holds more than its capacity, refuses (and counts) only what
    /// does not fit less the room other parts reserved and did not use,
    /// and exports every record it kept; the pusher is signalled once a
    /// batch is reserved.
    #[test]
    fn threads_at_once_keep_within_capacity() {
        use crate::telemetry::push::Source as _;
        let (logs, service) = queue(100, 60);
        let ready = logs.ready().expect("the logs pusher is signalled");
        let service = Arc::new(service);
        let threads: Vec<_> = (0..3)
            .map(|thread| {
                let service = service.clone();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        let body = format!("{thread}-{n}");
                        service.emit(Origin::Host, Severity::Info, &body, None, &[]);
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .for_each(|t| t.join().expect("no panic"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let signalled = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::ZERO, ready.notified()).await
        });
        assert!(signalled.is_ok(), "the pusher was not signalled");
        let kept = logs.queued();
        let dropped = logs.dropped.load(Ordering::Relaxed) as usize;
        assert_eq!(kept + dropped, 150);
        assert!(kept <= 100, "{kept} kept");
        assert!(kept >= 100 - 2 * RESERVED, "{kept} kept");
        let mut exported = 0;
        while let Some(export) = logs.batch() {
            assert!(export.records <= 60, "{} in one export", export.records);
            exported += bodies(&export).len();
        }
        assert_eq!(exported, kept);
    }

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
        let strings = |kvs: &[(&str, &str)]| -> Vec<String> {
            kvs.iter().map(|(k, v)| format!("{k}={v}")).collect()
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
            let (kvs, n) = limited(&[("a", "stdout"), ("b", "élan")], limits(count, length));
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
