//! Counters and histograms over the host's `metrics` interface: exported
//! with the host's own metrics, under the service's resource; a histogram
//! point's exemplar is the span open when it was recorded.

use crate::bindings::wasm_otel::host::metrics as wit;
use crate::trace::KeyValue;

/// Adds `value` to the counter `name` (created with `unit` and
/// `description` on first use).
pub fn add(name: &str, unit: &str, description: &str, value: u64, attributes: &[KeyValue]) {
    wit::add_counter(name, unit, description, value, attributes);
}

/// Records `value` in the histogram `name` (created with `unit` and
/// `description` on first use).
pub fn record(name: &str, unit: &str, description: &str, value: f64, attributes: &[KeyValue]) {
    wit::record_histogram(name, unit, description, value, attributes);
}
