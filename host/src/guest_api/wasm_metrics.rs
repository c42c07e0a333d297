//! The host side of our WIT interface `wasm-otel:host/metrics`: a guest's
//! counters and histograms, recorded with the service's instruments (see
//! `telemetry::metrics`), each histogram point's exemplar the innermost
//! open span. Calls never fail; what cannot be recorded is dropped.

use opentelemetry::trace::TraceContextExt;

use super::bindings::metrics;
use super::bindings::tracing::{KeyValue as WitKeyValue, Value as WitValue};
use super::spans::RequestSpans;
use crate::telemetry::metrics::{GuestPairs, Kind, MAX_ATTRIBUTES, Measurement, SpanRef, ValueRef};

/// Characters of a string attribute value kept, at most.
const MAX_VALUE_CHARS: usize = 256;
/// Bytes of an attribute key, at most (the longest instrument name): a
/// longer key is dropped with its value. A key is kept in every set it is
/// part of, for as long as the set is.
const MAX_KEY_BYTES: usize = 255;

/// A guest's attributes as a metric attribute set, borrowed, in `pairs`:
/// strings, whole numbers and booleans are metric keys, other values are
/// dropped, and so is every attribute past [`MAX_ATTRIBUTES`] and every
/// key longer than [`MAX_KEY_BYTES`]; a string is cut to
/// [`MAX_VALUE_CHARS`]. Sorted by key, the last value of a key
/// repeated kept: how many pairs the set has. Nothing is copied unless the
/// set is new to the instrument.
fn attributes<'a>(
    attrs: &'a [WitKeyValue],
    pairs: &mut [(&'a str, ValueRef<'a>); MAX_ATTRIBUTES],
) -> usize {
    let mut len = 0;
    for kv in attrs.iter().take(MAX_ATTRIBUTES) {
        if kv.key.len() > MAX_KEY_BYTES {
            continue;
        }
        let value = match &kv.value {
            // No more bytes than the limit's characters: nothing to cut,
            // without counting characters.
            WitValue::String(s) if s.len() > MAX_VALUE_CHARS => {
                match s.char_indices().nth(MAX_VALUE_CHARS) {
                    Some((cut, _)) => ValueRef::Str(&s[..cut]),
                    None => ValueRef::Str(s),
                }
            }
            WitValue::String(s) => ValueRef::Str(s),
            WitValue::S64(n) => ValueRef::Int(*n),
            WitValue::Bool(b) => ValueRef::Bool(*b),
            _ => continue,
        };
        pairs[len] = (kv.key.as_str(), value);
        len += 1;
    }
    GuestPairs::canonical(&mut pairs[..len])
}

impl RequestSpans {
    /// Records a guest measurement in the service's instruments.
    fn record_guest_metric(&self, measurement: Measurement<'_>, attrs: Vec<WitKeyValue>) {
        let Some((metrics, _)) = self.metrics() else {
            return;
        };
        let span = SpanRef::of(self.current().span().span_context());
        let mut pairs = [("", ValueRef::Bool(false)); MAX_ATTRIBUTES];
        let len = attributes(&attrs, &mut pairs);
        // Refused measurements are counted by the instruments; calls never
        // fail (see the WIT).
        metrics.record_guest(measurement, &pairs[..len], span);
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
        let measurement = Measurement {
            kind: Kind::Counter,
            name: &name,
            unit: &unit,
            description: &description,
            value: value as f64,
        };
        self.record_guest_metric(measurement, attrs);
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
        let measurement = Measurement {
            kind: Kind::Histogram,
            name: &name,
            unit: &unit,
            description: &description,
            value,
        };
        self.record_guest_metric(measurement, attrs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: WitValue) -> WitKeyValue {
        WitKeyValue {
            key: key.to_string(),
            value,
        }
    }

    /// A key past the limit is dropped with its value, one at the limit
    /// kept; a long string value is cut, not dropped; a value of another
    /// kind is dropped; the rest come sorted.
    #[test]
    fn long_keys_are_dropped_and_long_values_cut() {
        let at_limit = "k".repeat(MAX_KEY_BYTES);
        let attrs = [
            kv(&"x".repeat(MAX_KEY_BYTES + 1), WitValue::S64(1)),
            kv("outcome", WitValue::String("é".repeat(MAX_VALUE_CHARS + 5))),
            kv(&at_limit, WitValue::Bool(true)),
            kv("ratio", WitValue::F64(0.5)),
        ];
        let mut pairs = [("", ValueRef::Bool(false)); MAX_ATTRIBUTES];
        let len = attributes(&attrs, &mut pairs);
        let cut = "é".repeat(MAX_VALUE_CHARS);
        assert_eq!(
            pairs[..len],
            [
                (at_limit.as_str(), ValueRef::Bool(true)),
                ("outcome", ValueRef::Str(&cut)),
            ]
        );
    }
}
