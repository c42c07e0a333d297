//! W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage in and
//! out of HTTP headers, as `OTEL_PROPAGATORS` selects.

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use crate::config;

/// The header that carries the parent span.
pub const TRACEPARENT: &str = "traceparent";

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Extracts and injects the trace context (and baggage) of requests.
#[derive(Debug)]
pub struct Propagator {
    trace_context: Option<TraceContextPropagator>,
    baggage: Option<BaggagePropagator>,
}

impl Default for Propagator {
    /// Trace Context and Baggage, the `OTEL_PROPAGATORS` default.
    fn default() -> Self {
        Propagator::new(&[
            config::Propagator::TraceContext,
            config::Propagator::Baggage,
        ])
    }
}

impl Propagator {
    /// The propagators named, in any order; none for an empty list.
    pub fn new(propagators: &[config::Propagator]) -> Propagator {
        Propagator {
            trace_context: propagators
                .contains(&config::Propagator::TraceContext)
                .then(TraceContextPropagator::new),
            baggage: propagators
                .contains(&config::Propagator::Baggage)
                .then(BaggagePropagator::new),
        }
    }

    /// The remote parent carried by `headers`; an empty context when there is
    /// none or it is malformed, which starts a new trace.
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        let mut cx = Context::new();
        let extractor = HeaderExtractor(headers);
        if let Some(trace_context) = &self.trace_context {
            cx = trace_context.extract_with_context(&cx, &extractor);
        }
        if let Some(baggage) = &self.baggage {
            cx = baggage.extract_with_context(&cx, &extractor);
        }
        cx
    }

    /// Writes `cx`'s span into `headers`, unless the guest already set a
    /// `traceparent` of its own: a header the guest chose is kept.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        if let Some(trace_context) = &self.trace_context
            && !headers.contains_key(TRACEPARENT)
        {
            trace_context.inject_context(cx, &mut HeaderInjector(headers));
        }
        if let Some(baggage) = &self.baggage
            && !headers.contains_key("baggage")
        {
            baggage.inject_context(cx, &mut HeaderInjector(headers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    /// A valid `traceparent` becomes a remote parent with its ids and flag.
    #[test]
    fn extracts_a_valid_traceparent() {
        let cx = Propagator::default().extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    }

    /// Malformed values start a new trace (an invalid parent).
    #[test]
    fn malformed_traceparent_is_ignored() {
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            let cx = Propagator::default().extract(&headers(&[("traceparent", bad)]));
            assert!(!cx.span().span_context().is_valid(), "accepted `{bad}`");
        }
    }

    /// A guest's own `traceparent` is kept; otherwise the context is injected.
    #[test]
    fn inject_keeps_a_guest_traceparent() {
        let parent = Propagator::default().extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]));
        let mut out = HeaderMap::new();
        Propagator::default().inject(&parent, &mut out);
        assert_eq!(
            out["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let mut own = headers(&[(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01",
        )]);
        Propagator::default().inject(&parent, &mut own);
        assert_eq!(
            own["traceparent"],
            "00-11111111111111111111111111111111-2222222222222222-01"
        );
    }

    /// `OTEL_PROPAGATORS=none` extracts and injects nothing.
    #[test]
    fn no_propagators() {
        let none = Propagator::new(&[]);
        let cx = none.extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]));
        assert!(!cx.span().span_context().is_valid());
        let mut out = HeaderMap::new();
        Propagator::default().inject(
            &Propagator::default().extract(&headers(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )])),
            &mut out,
        );
        let mut nothing = HeaderMap::new();
        none.inject(&Propagator::default().extract(&out), &mut nothing);
        assert!(nothing.is_empty());
    }
}
