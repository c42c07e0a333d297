//! The host side of our WIT interface `wasm-otel:host/metrics`: a guest's
//! counters and histograms, recorded with the service's instruments (see
//! `telemetry::metrics`), each histogram point's exemplar the innermost
//! open span. Calls never fail; what cannot be recorded is dropped.

use std::borrow::Cow;

use opentelemetry::trace::TraceContextExt;

use super::bindings::metrics;
use super::bindings::tracing::{KeyValue as WitKeyValue, Value as WitValue};
use super::spans::RequestSpans;
use crate::telemetry::metrics::{Attributes, Kind, SpanRef, Value};

/// Attributes one measurement keeps, at most (the rest are dropped): a
/// metric's attributes are its dimensions, and a few are plenty.
const MAX_ATTRIBUTES: usize = 16;
/// Characters of a string attribute value kept, at most.
const MAX_VALUE_CHARS: usize = 256;

/// A guest's attributes as a metric attribute set, bounded: strings,
/// whole numbers and booleans are metric keys, other values are dropped.
/// The guest's strings are moved in, not copied.
fn attributes(attrs: Vec<WitKeyValue>) -> Attributes {
    Attributes::new(attrs.into_iter().take(MAX_ATTRIBUTES).filter_map(|kv| {
        let value = match kv.value {
            WitValue::String(mut s) => {
                // No more bytes than the limit's characters: nothing to cut,
                // without counting characters.
                if s.len() > MAX_VALUE_CHARS
                    && let Some((cut, _)) = s.char_indices().nth(MAX_VALUE_CHARS)
                {
                    s.truncate(cut);
                }
                Value::Str(Cow::Owned(s))
            }
            WitValue::S64(n) => Value::Int(n),
            WitValue::Bool(b) => Value::Bool(b),
            _ => return None,
        };
        Some((Cow::Owned(kv.key), value))
    }))
}

impl RequestSpans {
    /// Records a guest measurement in the service's instruments.
    fn record_guest_metric(
        &self,
        kind: Kind,
        name: &str,
        unit: &str,
        description: &str,
        value: f64,
        attrs: Vec<WitKeyValue>,
    ) {
        let Some((metrics, _)) = self.metrics() else {
            return;
        };
        let span = SpanRef::of(self.current().span().span_context());
        // Refused measurements are counted by the instruments; calls never
        // fail (see the WIT).
        let _ = metrics.business.record(
            kind,
            name,
            unit,
            description,
            value,
            attributes(attrs),
            span,
        );
    }
}

impl metrics::Host for RequestSpans {
    fn add_counter(
        &mut self,
        name: String,
        unit: String,
        description: String,
        value: u64,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<()> {
        self.record_guest_metric(
            Kind::Counter,
            &name,
            &unit,
            &description,
            value as f64,
            attrs,
        );
        Ok(())
    }

    fn record_histogram(
        &mut self,
        name: String,
        unit: String,
        description: String,
        value: f64,
        attrs: Vec<WitKeyValue>,
    ) -> wasmtime::Result<()> {
        self.record_guest_metric(Kind::Histogram, &name, &unit, &description, value, attrs);
        Ok(())
    }
}
