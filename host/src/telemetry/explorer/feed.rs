//! The span processor that hands this process's finished spans to the
//! store as they end: no batching, so a trace is on the pages the moment
//! its spans end, and no OTLP round trip through the process's own
//! receiver. A span is moved into the store as the SDK ended it (see
//! [`super::record`]): nothing is converted or encoded on the request's
//! path. The guest log lines written in a span ([`SpanLogs`]) go with it,
//! in the store only: exported spans are unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::Store;
use super::record::{Lines, LogLine};

/// Spans with log lines waiting for their end, at most: each is a span
/// open in this process that wrote a line, so this is far above what
/// `--max-concurrent` requests hold.
const MAX_SPANS_WITH_LINES: usize = 4_096;

/// How long the lines of a span that never ended (in this process: its
/// end was not sampled, or came before the line) are kept once the map is
/// full.
const STALE_AFTER_NANOS: u64 = 60_000_000_000;

/// The log lines of the spans open in this process, by span. An entry is
/// made by a span's first line, so a span that writes none costs its end
/// one atomic load, never the lock.
#[derive(Debug, Default)]
pub struct SpanLogs {
    open: Mutex<HashMap<SpanId, (u64, Lines)>>,
    /// Entries in `open`: read without the lock as each span ends.
    entries: AtomicUsize,
}

impl SpanLogs {
    /// A line written at `time` (Unix nanoseconds) while `span` was
    /// innermost; ignored unless that span is sampled (only sampled spans
    /// reach the store).
    pub fn log(&self, span: &SpanContext, time: u64, severity: &str, body: &str) {
        if !span.is_sampled() {
            return;
        }
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        if open.len() >= MAX_SPANS_WITH_LINES && !open.contains_key(&span.span_id()) {
            // Full: the lines of spans that ended before their line came
            // (or were never ended here) are the only ones old enough.
            open.retain(|_, (first, _)| time.saturating_sub(*first) < STALE_AFTER_NANOS);
            if open.len() >= MAX_SPANS_WITH_LINES {
                return;
            }
        }
        let (_, lines) = open
            .entry(span.span_id())
            .or_insert_with(|| (time, Lines::default()));
        lines.push(LogLine {
            time,
            level: severity.to_string(),
            message: body.to_string(),
        });
        self.entries.store(open.len(), Ordering::Release);
    }

    /// The span's lines (none, without taking the lock, when no span has
    /// any).
    fn closed(&self, span: SpanId) -> Lines {
        if self.entries.load(Ordering::Acquire) == 0 {
            return Lines::default();
        }
        let Ok(mut open) = self.open.lock() else {
            return Lines::default();
        };
        let lines = open.remove(&span).map(|(_, lines)| lines);
        self.entries.store(open.len(), Ordering::Release);
        lines.unwrap_or_default()
    }
}

/// Feeds one tracer provider's spans to the store.
#[derive(Debug)]
pub struct Feed {
    store: Arc<Store>,
    logs: Arc<SpanLogs>,
    /// The provider's resource, converted once (the SDK hands it over in
    /// [`SpanProcessor::set_resource`] when the provider is built) and
    /// shared by every span it stores, with what it costs the store.
    resource: (Arc<Resource>, usize),
}

impl Feed {
    /// A feed of `store`, with the guests' log lines from `logs`.
    pub fn new(store: Arc<Store>, logs: Arc<SpanLogs>) -> Feed {
        Feed {
            store,
            logs,
            resource: (Arc::default(), 0),
        }
    }
}

impl SpanProcessor for Feed {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        let lines = self.logs.closed(span.span_context.span_id());
        if !span.span_context.is_sampled() {
            return;
        }
        crate::telemetry::random_root(&mut span);
        self.store.insert_sdk(&self.resource, Box::new(span), lines);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        let converted = ResourceAttributesWithSchema::from(resource);
        let resource = Resource {
            attributes: converted.attributes.0,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        };
        let cost = prost::Message::encoded_len(&resource);
        self.resource = (Arc::new(resource), cost);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::trace::{TraceFlags, TraceId, TraceState};

    fn context(id: u64, flags: TraceFlags) -> SpanContext {
        SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(id),
            flags,
            false,
            TraceState::NONE,
        )
    }

    /// A span's lines are handed over once, at its end; an unsampled
    /// span's are not kept at all.
    #[test]
    fn lines_go_with_their_span_once() {
        let logs = SpanLogs::default();
        logs.log(&context(1, TraceFlags::SAMPLED), 10, "INFO", "a");
        logs.log(&context(1, TraceFlags::SAMPLED), 11, "WARN", "b");
        logs.log(&context(2, TraceFlags::default()), 12, "INFO", "unsampled");
        assert_eq!(logs.entries.load(Ordering::Acquire), 1);
        let lines = logs.closed(SpanId::from(1));
        let messages: Vec<&str> = lines.kept.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["a", "b"]);
        assert!(logs.closed(SpanId::from(1)).is_empty());
        assert_eq!(logs.entries.load(Ordering::Acquire), 0);
    }

    /// Full of spans that never ended, the map forgets those older than a
    /// minute for a new one, and never grows past its bound.
    #[test]
    fn stale_entries_make_room() {
        let logs = SpanLogs::default();
        for id in 1..=MAX_SPANS_WITH_LINES as u64 {
            logs.log(&context(id, TraceFlags::SAMPLED), 0, "INFO", "x");
        }
        let late = STALE_AFTER_NANOS / 2;
        logs.log(
            &context(u64::MAX, TraceFlags::SAMPLED),
            late,
            "INFO",
            "dropped",
        );
        assert!(logs.closed(SpanId::from(u64::MAX)).is_empty());
        logs.log(
            &context(u64::MAX, TraceFlags::SAMPLED),
            STALE_AFTER_NANOS,
            "INFO",
            "kept",
        );
        assert_eq!(logs.closed(SpanId::from(u64::MAX)).kept.len(), 1);
        assert!(logs.open.lock().unwrap().len() <= MAX_SPANS_WITH_LINES);
    }
}
