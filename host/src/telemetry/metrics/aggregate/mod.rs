//! The host's own aggregation: sums and histograms keyed by attribute set,
//! each instrument bounded to [`CARDINALITY_LIMIT`] attribute sets.
//! Histograms are explicit-bucket (each bucket keeping one exemplar, chosen
//! uniformly among the measurements of an export interval that fell in it)
//! or base-2 exponential (`exponential`, up to 20 exemplars a point), as
//! `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` says; which
//! measurements may become exemplars is `OTEL_METRICS_EXEMPLAR_FILTER`'s.
//!
//! Why not the SDK's: opentelemetry-rust 0.33 collects no exemplars (its
//! issue #3369), and a histogram point that cannot lead to a trace is half
//! of what this host's metrics are for. The instruments are few and known,
//! so the aggregation is small. An instrument keeps its points in parts,
//! one per recording thread, each behind its own mutex, held for a look-up
//! and a few additions per measurement, never across an export: two
//! workers recording the same set would otherwise pass its cache lines
//! back and forth on every request, which cost more than all the rest of
//! a measurement. Collection merges the parts (cloned out, or taken under
//! delta). A measurement first compares its set with the one its part
//! found last (one thread records the same set over and over); only
//! another set is hashed, with foldhash, seeded per process (SipHash was
//! the largest single cost of recording), and looked up in the part's
//! index. A measurement of the host's own instruments looks its point up
//! by a borrowed set ([`Pairs`]): only a set not seen before is copied.
//!
//! In parts: attribute sets and how a measurement finds its point by one
//! (`sets`), an instrument's points in per-thread parts (`points`), sums
//! and levels (`sums`), histograms and their exemplars (`histogram`).

mod histogram;
mod points;
mod sets;
mod sums;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};

pub use histogram::*;
pub use points::*;
pub use sets::*;
pub use sums::*;

/// Attribute sets one instrument keeps, at most, the overflow set included
/// (the specification's default cardinality limit).
pub const CARDINALITY_LIMIT: usize = 2000;
/// The attribute of the one point that gathers every measurement past the
/// cardinality limit, as the specification names it.
pub const OVERFLOW: &str = "otel.metric.overflow";

/// What an instrument is called and measures.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// The instrument's name (`http.server.request.duration`).
    pub name: Cow<'static, str>,
    /// Its unit, UCUM (`s`, `By`, `{request}`).
    pub unit: Cow<'static, str>,
    /// One sentence.
    pub description: Cow<'static, str>,
}

impl Descriptor {
    /// A descriptor of static strings.
    pub const fn of(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        Descriptor {
            name: Cow::Borrowed(name),
            unit: Cow::Borrowed(unit),
            description: Cow::Borrowed(description),
        }
    }
}

/// The span a measurement was made in: its ids, and whether it was
/// sampled (what the `trace_based` exemplar filter asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
    /// Whether the span was sampled.
    pub sampled: bool,
}

impl SpanRef {
    /// The span `context` names, if it is valid (sampled or not).
    pub fn of(context: &SpanContext) -> Option<SpanRef> {
        context.is_valid().then(|| SpanRef {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        })
    }
}

/// Nanoseconds since the Unix epoch.
///
/// Read several times a request (exemplars, log records), so on Unix
/// straight from `clock_gettime`: `SystemTime::now().duration_since` adds
/// a checked subtraction and a 128-bit product that cost more than the
/// read itself (`bench/signals-cost`).
pub fn now_nanos() -> u64 {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid `timespec` for the call to write, and
        // CLOCK_REALTIME is a clock every Unix has.
        #[allow(unsafe_code)]
        let read = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &raw mut now) };
        let (0, Ok(secs), Ok(nanos)) =
            (read, u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec))
        else {
            return 0;
        };
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    }
    #[cfg(not(unix))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| {
                d.as_secs()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::from(d.subsec_nanos()))
            })
            .unwrap_or(0)
    }
}

fn metric_of(descriptor: &Descriptor, data: metric::Data) -> Metric {
    Metric {
        name: descriptor.name.to_string(),
        description: descriptor.description.to_string(),
        unit: descriptor.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    }
}
