//! How the host shows a trace to a person: the link to it in Jaeger and
//! durations, the same in the request log and in the terminal waterfall.

use std::time::Duration;

/// Where Jaeger's UI shows a trace.
pub const JAEGER_TRACE_URL: &str = "http://localhost:16686/trace/";

/// `0.05ms`, `12.35ms`, `1.20s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.2}ms")
    }
}
