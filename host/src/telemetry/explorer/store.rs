//! The explorer's store: the spans of the last traces, whole, as OTLP
//! protobuf messages, within two bounds (a trace count and a byte budget),
//! the oldest trace evicted first.
//!
//! Every span is charged what it costs to keep: its protobuf encoding plus
//! [`SPAN_OVERHEAD`] for the record and the indexes; a resource or scope is
//! charged once per trace that refers to it (they are shared, by `Arc`,
//! between the spans of one export). The byte figure is therefore an
//! estimate of the heap the store holds, within a small factor, and the
//! bound holds whatever a sender sends: a span that would take a single
//! trace past the whole budget is refused and counted, never stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// The traces kept unless `--ui-max-traces` says otherwise.
pub const DEFAULT_MAX_TRACES: usize = 10_000;
/// The MiB kept unless `--ui-max-mib` says otherwise.
pub const DEFAULT_MAX_MIB: usize = 64;

/// What a stored span costs beyond its encoding: the record, its `Arc`s
/// and its trace's index entries.
pub const SPAN_OVERHEAD: usize = std::mem::size_of::<Record>() + 64;

/// A trace id as stored.
pub type TraceKey = [u8; 16];

/// The store's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Traces kept at most.
    pub max_traces: usize,
    /// Bytes kept at most (see the module docs for what is counted).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_traces: DEFAULT_MAX_TRACES,
            max_bytes: DEFAULT_MAX_MIB << 20,
        }
    }
}

/// One stored span with the resource and scope it was reported under.
#[derive(Debug, Clone)]
pub struct Record {
    /// The resource (`service.name` and the rest), shared within an export.
    pub resource: Arc<Resource>,
    /// The instrumentation scope, shared within an export.
    pub scope: Arc<InstrumentationScope>,
    /// The span as OTLP has it.
    pub span: Span,
}

/// One trace's spans, in arrival order.
#[derive(Debug, Default)]
pub struct Trace {
    /// Its spans.
    pub spans: Vec<Record>,
    bytes: usize,
    /// The resources and scopes already charged to this trace, by address.
    charged: Vec<usize>,
}

/// Counters shown on the pages and by `/api/explorer/stats`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    /// Traces held now.
    pub traces: usize,
    /// Spans held now.
    pub spans: usize,
    /// Bytes charged now.
    pub bytes: usize,
    /// Spans accepted since start (a new one bumps it: pages poll it).
    pub spans_received: u64,
    /// Traces evicted to stay within the bounds.
    pub traces_evicted: u64,
    /// Spans those traces held.
    pub spans_evicted: u64,
    /// Spans refused: invalid ids, or a single trace past the byte budget.
    pub spans_rejected: u64,
    /// OTLP requests refused as malformed or oversized.
    pub otlp_rejected: u64,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<TraceKey, Trace>,
    /// Trace ids, oldest first: the eviction order.
    order: VecDeque<TraceKey>,
    counts: Counts,
}

/// The store, shared by the span processor, the receivers and the API.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    inner: Mutex<Inner>,
}

/// What [`Store::insert`] did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// Spans stored.
    pub accepted: u64,
    /// Spans refused (counted in [`Counts::spans_rejected`]).
    pub rejected: u64,
}

impl Store {
    /// An empty store within `limits`.
    pub fn new(limits: Limits) -> Store {
        Store {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The bounds in effect.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts, not broken
        // invariants that matter more than showing traces: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores `spans`, reported under `resource` and `scope`, evicting the
    /// oldest traces as needed.
    pub fn insert(
        &self,
        resource: Arc<Resource>,
        scope: Arc<InstrumentationScope>,
        spans: impl IntoIterator<Item = Span>,
    ) -> Inserted {
        let resource_cost = resource.encoded_len();
        let scope_cost = scope.encoded_len();
        // Sizes are computed before taking the lock, which every span of
        // every service in the process passes through.
        let sized: Vec<(usize, Span)> = spans
            .into_iter()
            .map(|span| (span.encoded_len() + SPAN_OVERHEAD, span))
            .collect();
        let mut inner = self.lock();
        let mut inserted = Inserted::default();
        for (span_cost, span) in sized {
            let (Ok(key), 8) = (TraceKey::try_from(&span.trace_id[..]), span.span_id.len()) else {
                inserted.rejected += 1;
                continue;
            };
            if key == [0; 16] {
                inserted.rejected += 1;
                continue;
            }
            let mut cost = span_cost;
            let existing = inner.traces.get(&key);
            let charged = existing.map_or(&[][..], |t| &t.charged[..]);
            let resource_at = Arc::as_ptr(&resource) as usize;
            let scope_at = Arc::as_ptr(&scope) as usize;
            let new_resource = !charged.contains(&resource_at);
            let new_scope = !charged.contains(&scope_at);
            cost += if new_resource { resource_cost } else { 0 };
            cost += if new_scope { scope_cost } else { 0 };
            if existing.map_or(0, |t| t.bytes) + cost > self.limits.max_bytes {
                inserted.rejected += 1;
                continue;
            }
            if existing.is_none() {
                inner.order.push_back(key);
                inner.counts.traces += 1;
            }
            let trace = inner.traces.entry(key).or_default();
            trace.bytes += cost;
            if new_resource {
                trace.charged.push(resource_at);
            }
            if new_scope {
                trace.charged.push(scope_at);
            }
            trace.spans.push(Record {
                resource: resource.clone(),
                scope: scope.clone(),
                span,
            });
            inner.counts.bytes += cost;
            inner.counts.spans += 1;
            inner.counts.spans_received += 1;
            inserted.accepted += 1;
            self.evict(&mut inner, key);
        }
        inner.counts.spans_rejected += inserted.rejected;
        inserted
    }

    /// Evicts the oldest traces other than `keep` while over a bound.
    fn evict(&self, inner: &mut Inner, keep: TraceKey) {
        while inner.counts.traces > self.limits.max_traces
            || inner.counts.bytes > self.limits.max_bytes
        {
            let Some(oldest) = inner.order.pop_front() else {
                return;
            };
            if oldest == keep {
                // The trace being added is the oldest: evict the next one
                // and keep this one at the front.
                if inner.order.is_empty() {
                    inner.order.push_front(oldest);
                    return;
                }
                let next = inner.order.pop_front();
                inner.order.push_front(oldest);
                if let Some(next) = next {
                    Self::drop_trace(inner, next);
                }
                continue;
            }
            Self::drop_trace(inner, oldest);
        }
    }

    fn drop_trace(inner: &mut Inner, key: TraceKey) {
        if let Some(trace) = inner.traces.remove(&key) {
            inner.counts.traces -= 1;
            inner.counts.spans -= trace.spans.len();
            inner.counts.bytes -= trace.bytes;
            inner.counts.traces_evicted += 1;
            inner.counts.spans_evicted += trace.spans.len() as u64;
        }
    }

    /// Counts one refused OTLP request.
    pub fn count_rejected_request(&self) {
        self.lock().counts.otlp_rejected += 1;
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// The spans of one trace, if it is held.
    pub fn trace(&self, key: &TraceKey) -> Option<Vec<Record>> {
        self.lock().traces.get(key).map(|t| t.spans.clone())
    }

    /// Calls `visit` with every trace, newest first, until it returns false.
    pub fn scan(&self, mut visit: impl FnMut(&TraceKey, &Trace) -> bool) {
        let inner = self.lock();
        for key in inner.order.iter().rev() {
            if let Some(trace) = inner.traces.get(key)
                && !visit(key, trace)
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn span(trace: u8, id: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: name.to_string(),
            ..Default::default()
        }
    }

    fn put(store: &Store, spans: Vec<Span>) -> Inserted {
        store.insert(Default::default(), Default::default(), spans)
    }

    /// Past the trace bound, the oldest trace goes first and is counted.
    #[test]
    fn evicts_oldest_trace_first() {
        let store = Store::new(Limits {
            max_traces: 2,
            max_bytes: 1 << 20,
        });
        put(&store, vec![span(1, 1, "a"), span(1, 2, "b")]);
        put(&store, vec![span(2, 1, "c")]);
        put(&store, vec![span(1, 3, "late")]);
        put(&store, vec![span(3, 1, "d")]);
        assert!(store.trace(&[1; 16]).is_none());
        assert_eq!(store.trace(&[2; 16]).unwrap().len(), 1);
        let counts = store.counts();
        assert_eq!((counts.traces, counts.spans), (2, 2));
        assert_eq!((counts.traces_evicted, counts.spans_evicted), (1, 3));
    }

    /// The byte budget holds: many small traces evict each other, and one
    /// trace larger than the whole budget is cut off, its surplus counted.
    #[test]
    fn byte_budget_holds() {
        let limits = Limits {
            max_traces: 1_000_000,
            max_bytes: 64 << 10,
        };
        let store = Store::new(limits);
        for i in 0..10_000u32 {
            let mut s = span(1, 1, "x");
            s.trace_id[..4].copy_from_slice(&i.to_be_bytes());
            put(&store, vec![s]);
            assert!(store.counts().bytes <= limits.max_bytes);
        }
        assert!(store.counts().traces_evicted > 9_000);
        let big: Vec<Span> = (0..10_000u64)
            .map(|_| span(9, 9, &"y".repeat(100)))
            .collect();
        let inserted = put(&store, big);
        assert!(inserted.rejected > 0 && inserted.accepted > 0);
        assert!(store.counts().bytes <= limits.max_bytes);
        assert_eq!(store.counts().traces, 1);
    }

    /// Spans without a valid trace or span id are refused, not stored.
    #[test]
    fn invalid_ids_are_rejected() {
        let store = Store::new(Limits::default());
        let mut short = span(1, 1, "a");
        short.span_id.pop();
        let inserted = put(&store, vec![short, span(0, 1, "zero"), Span::default()]);
        assert_eq!(
            inserted,
            Inserted {
                accepted: 0,
                rejected: 3
            }
        );
        assert_eq!(store.counts().spans_rejected, 3);
    }
}
