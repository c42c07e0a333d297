//! The span processor that copies this process's finished spans into the
//! store as they end: no batching, so a trace is on the pages the moment
//! its spans end, and no OTLP round trip through the process's own
//! receiver. The guest log lines written in a span ([`SpanLogs`]) go with
//! it, as events named `log` (Jaeger's span logs, with `level` and
//! `message` fields), in the store only: exported spans are unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{Span as _, SpanId};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::Store;

/// Log lines drawn under one span, at most; more are counted in one last
/// event.
const MAX_LINES_PER_SPAN: usize = 20;

/// The log lines of the spans open in this process, by span: only open
/// spans have an entry, so what is held is bounded by them.
#[derive(Debug, Default)]
pub struct SpanLogs {
    open: Mutex<HashMap<SpanId, (Vec<Event>, usize)>>,
}

impl SpanLogs {
    /// A line written at `time` (Unix nanoseconds) while `span` was
    /// innermost; ignored unless that span is open in this process.
    pub fn log(&self, span: SpanId, time: u64, severity: &str, body: &str) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let Some((events, more)) = open.get_mut(&span) else {
            return;
        };
        if events.len() >= MAX_LINES_PER_SPAN {
            *more += 1;
            return;
        }
        let field = |key: &str, value: &str| KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            key_strindex: 0,
        };
        events.push(Event {
            time_unix_nano: time,
            name: "log".to_string(),
            attributes: vec![field("level", severity), field("message", body)],
            dropped_attributes_count: 0,
        });
    }

    fn opened(&self, span: SpanId) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(span, (Vec::new(), 0));
        }
    }

    /// The span's lines, and the count of those past the limit.
    fn closed(&self, span: SpanId) -> (Vec<Event>, usize) {
        self.open
            .lock()
            .ok()
            .and_then(|mut open| open.remove(&span))
            .unwrap_or_default()
    }
}

/// Feeds one tracer provider's spans to the store.
#[derive(Debug)]
pub struct Feed {
    store: Arc<Store>,
    logs: Arc<SpanLogs>,
    /// The provider's resource, converted once (the SDK hands it over in
    /// [`SpanProcessor::set_resource`] when the provider is built).
    resource: Arc<Resource>,
}

impl Feed {
    /// A feed of `store`, with the guests' log lines from `logs`.
    pub fn new(store: Arc<Store>, logs: Arc<SpanLogs>) -> Feed {
        Feed {
            store,
            logs,
            resource: Arc::default(),
        }
    }
}

impl SpanProcessor for Feed {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        let context = span.span_context();
        if context.is_sampled() {
            self.logs.opened(context.span_id());
        }
    }

    fn on_end(&self, mut span: SpanData) {
        let (lines, more) = self.logs.closed(span.span_context.span_id());
        if !span.span_context.is_sampled() {
            return;
        }
        crate::telemetry::random_root(&mut span);
        let scope = InstrumentationScope::from((&span.instrumentation_scope, None));
        let end = crate::telemetry::metrics::now_nanos();
        let mut proto = ProtoSpan::from(span);
        proto.events.extend(lines);
        if more > 0 {
            proto.events.push(Event {
                time_unix_nano: end,
                name: format!("{more} more log line(s)"),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            });
        }
        self.store
            .insert(self.resource.clone(), Arc::new(scope), [proto]);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        let converted = ResourceAttributesWithSchema::from(resource);
        self.resource = Arc::new(Resource {
            attributes: converted.attributes.0,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        });
    }
}
