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
//!
//! The records the host makes itself (a guest's lines, the request log,
//! warnings) wait as [`Line`]s and are encoded by hand at export (`wire`):
//! two of them go with every order, and prost's way (a `LogRecord` each,
//! its length taken once per level of nesting) was most of what logs
//! cost. A record a guest built whole (`wasi:otel/logs`) waits as it came
//! and is encoded by prost, in the same message.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use bytes::Bytes;
use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::config::LogRecordLimits;
use super::console::Console;
use super::explorer::SpanLogs;
use super::metrics::{EXPORT_QUEUE, ServiceMetrics};
use super::push::{Payload, Source};
use super::wire::{
    FIXED32, FIXED64, VARINT, delimited_len, put_bytes, put_header, put_key, put_varint, varint_len,
};

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

/// One record waiting for export, with its service. About a hundred
/// bytes: the queue holds a batch of them and is taken whole.
#[derive(Debug)]
struct Queued {
    /// The service's place in [`Logs`]'s resources.
    service: usize,
    origin: Origin,
    entry: Entry,
}

/// A record waiting for export.
#[derive(Debug)]
enum Entry {
    /// A line the host made a record of, in its origin's scope.
    Line(Line),
    /// A record a guest built whole (`wasi:otel/logs`), in the scope it
    /// named (`None`: its origin's). Boxed: rarer and larger than a line.
    Record(Box<(LogRecord, Option<InstrumentationScope>)>),
}

/// The most bytes of a body kept inline in the queue.
const INLINE: usize = 46;

/// A record's body as the host holds it until export. A short one (a
/// request log line: `POST /orders 201 1.05ms`) lies inline in the queue,
/// so that a request allocates nothing that the exporter's thread frees
/// later; a longer one is a `String`.
#[derive(Debug, Clone)]
pub enum Text {
    /// `len` bytes of UTF-8 in `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer body.
    Heap(String),
}

impl Text {
    /// An empty body, inline.
    pub fn new() -> Text {
        Text::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    /// The body's text.
    pub fn as_str(&self) -> &str {
        match self {
            // Only whole `&str`s are written in (`write_str`).
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Heap(text) => text,
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

/// Appends; past [`INLINE`] bytes the body moves to a `String`.
impl std::fmt::Write for Text {
    fn write_str(&mut self, more: &str) -> std::fmt::Result {
        match self {
            Text::Inline { len, bytes } => {
                let at = usize::from(*len);
                if let Some(room) = bytes.get_mut(at..at + more.len()) {
                    room.copy_from_slice(more.as_bytes());
                    *len += more.len() as u8;
                } else {
                    let mut text = String::with_capacity(at + more.len());
                    text.push_str(std::str::from_utf8(&bytes[..at]).unwrap_or_default());
                    text.push_str(more);
                    *self = Text::Heap(text);
                }
            }
            Text::Heap(text) => text.push_str(more),
        }
        Ok(())
    }
}

/// A short `String` is copied inline (and freed here, on the thread that
/// made it); a longer one is kept as it is.
impl From<String> for Text {
    fn from(text: String) -> Text {
        if text.len() <= INLINE {
            let mut inline = Text::new();
            let _ = std::fmt::Write::write_str(&mut inline, &text);
            inline
        } else {
            Text::Heap(text)
        }
    }
}

/// A record the host makes of a line: what its OTLP `LogRecord` holds,
/// before it is encoded.
#[derive(Debug)]
struct Line {
    /// When it was written: the record's time and observed time.
    time: u64,
    severity: Severity,
    body: Text,
    /// The trace id, span id and trace flags of the span it was written in.
    span: Option<([u8; 16], [u8; 8], u8)>,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

impl Line {
    /// Its `LogRecord`'s encoded length.
    fn encoded_len(&self) -> usize {
        let mut len = delimited_len(5, delimited_len(1, self.body.as_str().len()));
        if self.time != 0 {
            // `time_unix_nano` (1) and `observed_time_unix_nano` (11).
            len += 2 * (1 + 8);
        }
        len += 1 + varint_len(self.severity.number() as i32 as u64);
        len += delimited_len(3, self.severity.text().len());
        len += self
            .attributes
            .iter()
            .map(|kv| delimited_len(6, kv.encoded_len()))
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
        let body = self.body.as_str();
        put_header(buf, 5, delimited_len(1, body.len()));
        put_bytes(buf, 1, body.as_bytes());
        for kv in &self.attributes {
            put_header(buf, 6, kv.encoded_len());
            kv.encode_raw(buf);
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

impl Entry {
    fn encoded_len(&self) -> usize {
        match self {
            Entry::Line(line) => line.encoded_len(),
            Entry::Record(record) => record.0.encoded_len(),
        }
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Entry::Line(line) => line.encode(buf),
            Entry::Record(record) => record.0.encode_raw(buf),
        }
    }
}

/// One OTLP `ExportLogsServiceRequest`, encoded.
#[derive(Debug, Clone)]
pub struct EncodedLogs {
    /// The message's bytes.
    pub bytes: Bytes,
    /// The log records in it.
    pub records: usize,
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
    /// Each service's resource, encoded once, where its records name it.
    resources: Mutex<Vec<Arc<[u8]>>>,
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
            resources: Mutex::new(Vec::new()),
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

    /// The place of a service with `resource` (encoded), which its
    /// records name.
    fn register(&self, resource: Vec<u8>) -> usize {
        let mut resources = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        resources.push(resource.into());
        resources.len() - 1
    }

    /// Queues `queued`, from `metrics`'s service (where a guest's record
    /// dropped for a full queue is counted).
    fn push(&self, queued: Queued, metrics: Option<&ServiceMetrics>) {
        if !self.exports {
            return;
        }
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        if queue.len() >= self.capacity {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let (Origin::Guest, Some(metrics)) = (queued.origin, metrics) {
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

    /// Up to a batch of records, grouped by service and scope, encoded.
    fn batch(&self) -> Option<EncodedLogs> {
        // Most often the queue is one batch or less: it is taken whole, for
        // an empty one made before the lock, so that the workers wait for
        // no copy. Only this exporter takes records out, so a queue found
        // with records still has them after the allocation.
        if self.queue.lock().ok()?.is_empty() {
            return None;
        }
        let mut spare = VecDeque::with_capacity(self.batch);
        let taken: VecDeque<Queued> = {
            let mut queue = self.queue.lock().ok()?;
            if queue.len() <= self.batch {
                std::mem::swap(&mut *queue, &mut spare);
                spare
            } else {
                queue.drain(..self.batch).collect()
            }
        };
        if taken.is_empty() {
            return None;
        }
        let records = taken.len();
        let resources = self.resources.lock().ok()?.clone();
        // Per service, its scopes, each with its records. A host scope is
        // found by its origin, so that it is built once a batch.
        #[derive(PartialEq)]
        enum Named<'a> {
            /// The scope the host makes for an origin.
            By(Origin),
            /// A scope a guest named.
            Own(&'a InstrumentationScope),
        }
        struct Scope<'a> {
            named: Named<'a>,
            encoded: Vec<u8>,
            /// Its records: each one's encoded length and the record.
            entries: Vec<(usize, &'a Entry)>,
            /// The encoded length of its `ScopeLogs`, once all are in.
            len: usize,
        }
        let mut services: Vec<(usize, Vec<Scope>)> = Vec::new();
        for queued in &taken {
            let at = match services
                .iter()
                .position(|(service, _)| *service == queued.service)
            {
                Some(at) => at,
                None => {
                    services.push((queued.service, Vec::new()));
                    services.len() - 1
                }
            };
            let scopes = &mut services[at].1;
            let named = match &queued.entry {
                Entry::Record(record) if let Some(own) = &record.1 => Named::Own(own),
                _ => Named::By(queued.origin),
            };
            let scope = match scopes.iter().position(|s| s.named == named) {
                Some(at) => &mut scopes[at],
                None => {
                    let encoded = match &named {
                        Named::By(origin) => origin.scope().encode_to_vec(),
                        Named::Own(own) => own.encode_to_vec(),
                    };
                    scopes.push(Scope {
                        named,
                        encoded,
                        entries: Vec::new(),
                        len: 0,
                    });
                    scopes.last_mut()?
                }
            };
            scope
                .entries
                .push((queued.entry.encoded_len(), &queued.entry));
        }
        // `ExportLogsServiceRequest.resource_logs` (1) → `ResourceLogs`:
        // `resource` (1), `scope_logs` (2) → `ScopeLogs`: `scope` (1),
        // `log_records` (2). Lengths first, inside out, each once, then
        // the bytes.
        let mut resource_lens = Vec::with_capacity(services.len());
        for (service, scopes) in &mut services {
            let mut resource_len = delimited_len(1, resources.get(*service)?.len());
            for scope in scopes.iter_mut() {
                scope.len = delimited_len(1, scope.encoded.len())
                    + scope
                        .entries
                        .iter()
                        .map(|(len, _)| delimited_len(2, *len))
                        .sum::<usize>();
                resource_len += delimited_len(2, scope.len);
            }
            resource_lens.push(resource_len);
        }
        let total = resource_lens.iter().map(|len| delimited_len(1, *len)).sum();
        let mut buf = Vec::with_capacity(total);
        for ((service, scopes), resource_len) in services.iter().zip(resource_lens) {
            put_header(&mut buf, 1, resource_len);
            put_bytes(&mut buf, 1, &resources[*service]);
            for scope in scopes {
                put_header(&mut buf, 2, scope.len);
                put_bytes(&mut buf, 1, &scope.encoded);
                for (len, entry) in &scope.entries {
                    put_header(&mut buf, 2, *len);
                    entry.encode(&mut buf);
                }
            }
        }
        debug_assert_eq!(buf.len(), total);
        Some(EncodedLogs {
            bytes: Bytes::from(buf),
            records,
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
    /// Its place in the queue's resources.
    service: usize,
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
            service: logs.register(resource.encode_to_vec()),
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
        self.logs.push(
            Queued {
                service: self.service,
                origin: Origin::Guest,
                entry: Entry::Record(Box::new((record, scope))),
            },
            self.metrics(),
        );
    }

    /// Queues one record written by `origin` at `severity`, in the span
    /// `span` (when valid), with `attributes`.
    pub fn emit(
        &self,
        origin: Origin,
        severity: Severity,
        body: impl Into<Text>,
        span: Option<&SpanContext>,
        attributes: Vec<(&'static str, String)>,
    ) {
        let body = body.into();
        self.show(origin, severity.text(), body.as_str(), span);
        let span = span.filter(|s| s.is_valid()).map(|span| {
            (
                span.trace_id().to_bytes(),
                span.span_id().to_bytes(),
                span.trace_flags().to_u8(),
            )
        });
        let (attributes, dropped_attributes_count) = limited(attributes, self.logs.limits);
        self.logs.push(
            Queued {
                service: self.service,
                origin,
                entry: Entry::Line(Line {
                    time: super::metrics::now_nanos(),
                    severity,
                    body,
                    span,
                    attributes,
                    dropped_attributes_count,
                }),
            },
            self.metrics(),
        );
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

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(s.to_string())),
        }
    }

    /// A body stays inline up to its room, whole characters only, and
    /// moves to a `String` past it with nothing lost; a short `String`
    /// becomes inline, a long one is kept.
    #[test]
    fn bodies_inline_until_they_do_not_fit() {
        use std::fmt::Write as _;
        let mut text = Text::new();
        let _ = text.write_str(&"a".repeat(INLINE - 1));
        assert!(matches!(text, Text::Inline { .. }));
        let _ = text.write_str("é");
        assert!(matches!(text, Text::Heap(_)), "two bytes past the room");
        assert_eq!(text.as_str(), format!("{}é", "a".repeat(INLINE - 1)));
        let _ = text.write_str(" more");
        assert!(text.as_str().ends_with("é more"));
        let short = Text::from("POST /orders 201 1.05ms".to_string());
        assert!(matches!(short, Text::Inline { .. }));
        assert_eq!(short.as_str(), "POST /orders 201 1.05ms");
        let long = Text::from("x".repeat(INLINE + 1));
        assert!(matches!(long, Text::Heap(_)));
        assert_eq!(long.as_str().len(), INLINE + 1);
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
        let request_log = "POST /orders 201 1.05ms".to_string();
        a.emit(
            Origin::Host,
            Severity::Info,
            request_log,
            Some(&sampled),
            vec![],
        );
        let stderr = vec![
            (LOG_IOSTREAM, "stderr".to_string()),
            ("extra", "x".to_string()),
        ];
        a.emit(Origin::Guest, Severity::Warn, "é".repeat(200), None, stderr);
        let stdout = vec![(LOG_IOSTREAM, "stdout".to_string())];
        b.emit(
            Origin::Guest,
            Severity::Info,
            String::new(),
            Some(&unsampled),
            stdout,
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
        a.emit(
            Origin::Host,
            Severity::Warn,
            "warning".to_string(),
            Some(&sampled),
            vec![],
        );

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
