//! The explorer's store: the spans of the last traces, whole, within two
//! bounds (a trace count and a byte budget), the oldest trace evicted
//! first; and the OTLP log records waiting for a span that has not arrived
//! yet.
//!
//! Spans are kept as they arrived ([`Record`]): this process's as the SDK
//! ended them, moved in, others' as OTLP protobuf. Every span is charged
//! what it costs to keep, plus [`SPAN_OVERHEAD`] for the record and the
//! indexes: an SDK span an estimate of the heap it owns ([`sdk_cost`], a
//! walk with no allocation), an OTLP span its protobuf encoding; a
//! resource or received scope is charged once per trace that refers to it
//! (they are shared, by `Arc`). The byte figure is therefore an estimate of
//! the heap the store holds, within a small factor, and the bound holds
//! whatever a sender sends: a span that would take a single trace past the
//! whole budget is refused and counted, never stored.
//!
//! A log record received before its span waits, by span, in a pending map
//! of at most [`PENDING_SHARE`] of the byte budget (charged to it), the
//! oldest dropped and counted when it is full; one received after its span
//! joins it at once.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;

pub use super::record::{Body, Lines, LogLine, Record, sdk_cost};

/// The traces kept unless `--ui-max-traces` says otherwise.
pub const DEFAULT_MAX_TRACES: usize = 10_000;
/// The MiB kept unless `--ui-max-mib` says otherwise.
pub const DEFAULT_MAX_MIB: usize = 64;

/// What a stored span costs beyond its contents: the record and its
/// trace's index entries.
pub const SPAN_OVERHEAD: usize = std::mem::size_of::<Record>() + 64;

/// The share of the byte budget that log records waiting for their span
/// may take (one part in this many).
pub const PENDING_SHARE: usize = 8;

/// What a pending entry costs beyond its lines: its map and queue entries.
const PENDING_OVERHEAD: usize = std::mem::size_of::<Lines>() + 64;

/// A trace id as stored.
pub type TraceKey = [u8; 16];

/// The store's maps: trace ids arrive on every span's path, and a keyed
/// fast hash is a fraction of SipHash's cost.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A span as log records name it: its trace and its id.
pub type SpanKey = (TraceKey, [u8; 8]);

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
    /// Log records received over OTLP.
    pub logs_received: u64,
    /// Of those, records not shown: without a trace and span id, waiting
    /// for a span that did not come while newer records filled the pending
    /// share, or past a trace's byte budget.
    pub logs_dropped: u64,
    /// Log records waiting for their span now.
    pub logs_pending: usize,
}

/// Log records waiting for their span.
#[derive(Debug, Default)]
struct Pending {
    by_span: HashMap<SpanKey, Lines>,
    /// Spans in the order their first record came: the drop order. An
    /// entry whose span has come since stays here until it is reached or
    /// the queue is compacted.
    order: VecDeque<SpanKey>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<TraceKey, Trace>,
    /// Trace ids, oldest first: the eviction order.
    order: VecDeque<TraceKey>,
    pending: Pending,
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

/// A span ready to be stored: its keys, its record and what it costs, the
/// shared parts' costs apart (charged once per trace).
struct Arriving {
    key: TraceKey,
    record: Record,
    cost: usize,
    /// The resource's and the received scope's address and cost.
    shared: [(usize, usize); 2],
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

    /// Stores `spans`, received over OTLP under `resource` and `scope`,
    /// evicting the oldest traces as needed.
    pub fn insert(
        &self,
        resource: Arc<Resource>,
        scope: Arc<InstrumentationScope>,
        spans: impl IntoIterator<Item = Span>,
    ) -> Inserted {
        let resource_shared = (Arc::as_ptr(&resource) as usize, resource.encoded_len());
        let scope_shared = (Arc::as_ptr(&scope) as usize, scope.encoded_len());
        let mut inserted = Inserted::default();
        // Sizes are computed before taking the lock, which every span of
        // every service in the process passes through.
        let arriving: Vec<Arriving> = spans
            .into_iter()
            .filter_map(|span| {
                let (Ok(key), 8) = (TraceKey::try_from(&span.trace_id[..]), span.span_id.len())
                else {
                    inserted.rejected += 1;
                    return None;
                };
                Some(Arriving {
                    key,
                    cost: span.encoded_len() + SPAN_OVERHEAD,
                    record: Record {
                        resource: resource.clone(),
                        body: Body::Otlp {
                            span: Box::new(span),
                            scope: scope.clone(),
                        },
                        lines: Lines::default(),
                    },
                    shared: [resource_shared, scope_shared],
                })
            })
            .collect();
        let mut inner = self.lock();
        for span in arriving {
            if self.add(&mut inner, span) {
                inserted.accepted += 1;
            } else {
                inserted.rejected += 1;
            }
        }
        inner.counts.spans_rejected += inserted.rejected;
        inserted
    }

    /// Stores one span of this process, as its provider ended it, under
    /// `resource` (the provider's, converted once, and what it costs), with
    /// the log lines written in it; false when it is refused (and counted).
    pub fn insert_sdk(
        &self,
        resource: &(Arc<Resource>, usize),
        span: Box<SpanData>,
        lines: Lines,
    ) -> bool {
        let key = span.span_context.trace_id().to_bytes();
        let (resource, resource_cost) = resource;
        let arriving = Arriving {
            key,
            cost: sdk_cost(&span) + lines.cost() + SPAN_OVERHEAD,
            shared: [(Arc::as_ptr(resource) as usize, *resource_cost), (0, 0)],
            record: Record {
                resource: resource.clone(),
                body: Body::Sdk(span),
                lines,
            },
        };
        let mut inner = self.lock();
        let added = self.add(&mut inner, arriving);
        if !added {
            inner.counts.spans_rejected += 1;
        }
        added
    }

    /// Adds one span under the lock, with the log lines waiting for it:
    /// false when its ids are invalid or it would take its trace past the
    /// byte budget.
    fn add(&self, inner: &mut Inner, mut span: Arriving) -> bool {
        let span_id = span.record.span_id();
        if span.key == [0; 16] || !super::record::valid_span_id(span_id) {
            return false;
        }
        let mut waited = 0;
        if !inner.pending.by_span.is_empty()
            && let Some(waiting) = inner.pending.take(&(span.key, span_id))
        {
            inner.counts.bytes -= waiting.cost() + PENDING_OVERHEAD;
            inner.counts.logs_pending -= waiting.kept.len();
            waited = waiting.kept.len() as u64 + waiting.more;
            span.cost += span.record.lines.append(waiting);
        }
        let trace = match inner.traces.entry(span.key) {
            Entry::Occupied(held) => held.into_mut(),
            Entry::Vacant(new) => {
                inner.order.push_back(span.key);
                inner.counts.traces += 1;
                new.insert(Trace::default())
            }
        };
        let new_shared = span
            .shared
            .map(|(at, cost)| (at != 0 && !trace.charged.contains(&at)).then_some((at, cost)));
        let cost = span.cost + new_shared.iter().flatten().map(|(_, c)| c).sum::<usize>();
        if trace.bytes + cost > self.limits.max_bytes {
            inner.counts.logs_dropped += waited;
            if trace.spans.is_empty() {
                // Made for this span alone: not a trace after all.
                inner.traces.remove(&span.key);
                inner.order.pop_back();
                inner.counts.traces -= 1;
            }
            return false;
        }
        trace.bytes += cost;
        trace
            .charged
            .extend(new_shared.iter().flatten().map(|(at, _)| at));
        trace.spans.push(span.record);
        inner.counts.bytes += cost;
        inner.counts.spans += 1;
        inner.counts.spans_received += 1;
        self.evict(inner, span.key);
        true
    }

    /// Adds log records received over OTLP to their spans: at once when the
    /// span is held, else waiting for it (see the module docs).
    pub fn insert_logs(&self, records: impl IntoIterator<Item = (Option<SpanKey>, LogLine)>) {
        let mut inner = self.lock();
        for (span, line) in records {
            inner.counts.logs_received += 1;
            match span {
                Some(span) => self.add_line(&mut inner, span, line),
                None => inner.counts.logs_dropped += 1,
            }
        }
    }

    fn add_line(&self, inner: &mut Inner, span: SpanKey, line: LogLine) {
        let held = inner.traces.get_mut(&span.0).and_then(|trace| {
            let at = trace.spans.iter().position(|r| r.span_id() == span.1)?;
            Some((trace, at))
        });
        if let Some((trace, at)) = held {
            if trace.bytes + line.cost() > self.limits.max_bytes {
                inner.counts.logs_dropped += 1;
                return;
            }
            let cost = trace.spans[at].lines.push(line);
            trace.bytes += cost;
            inner.counts.bytes += cost;
            self.evict(inner, span.0);
            return;
        }
        let share = self.limits.max_bytes / PENDING_SHARE;
        let pending = &mut inner.pending;
        let entry_cost = if pending.by_span.contains_key(&span) {
            0
        } else {
            PENDING_OVERHEAD
        };
        if line.cost() + entry_cost > share {
            inner.counts.logs_dropped += 1;
            return;
        }
        while pending.bytes + line.cost() + entry_cost > share {
            let Some(oldest) = pending.order.pop_front() else {
                break;
            };
            if let Some(dropped) = pending.by_span.remove(&oldest) {
                let cost = dropped.cost() + PENDING_OVERHEAD;
                pending.bytes -= cost;
                inner.counts.bytes -= cost;
                inner.counts.logs_pending -= dropped.kept.len();
                inner.counts.logs_dropped += dropped.kept.len() as u64 + dropped.more;
            }
        }
        let lines = pending.by_span.entry(span).or_insert_with(|| {
            pending.order.push_back(span);
            Lines::default()
        });
        let kept_before = lines.kept.len();
        let cost = lines.push(line) + entry_cost;
        inner.counts.logs_pending += lines.kept.len() - kept_before;
        pending.bytes += cost;
        inner.counts.bytes += cost;
        pending.compact();
        self.evict(inner, [0; 16]);
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

impl Pending {
    /// The lines waiting for `span`, which has come.
    fn take(&mut self, span: &SpanKey) -> Option<Lines> {
        let lines = self.by_span.remove(span)?;
        self.bytes -= lines.cost() + PENDING_OVERHEAD;
        Some(lines)
    }

    /// Forgets the spans in the drop order that are no longer waiting,
    /// once they outnumber those that are: the queue stays within twice
    /// the map.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.by_span.len() + 64 {
            let by_span = &self.by_span;
            self.order.retain(|span| by_span.contains_key(span));
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

    fn line(message: &str) -> LogLine {
        LogLine {
            time: 1,
            level: "INFO".into(),
            message: message.into(),
        }
    }

    fn messages(store: &Store, trace: u8) -> Vec<String> {
        store.trace(&[trace; 16]).unwrap()[0]
            .lines
            .kept
            .iter()
            .map(|l| l.message.clone())
            .collect()
    }

    /// This process's spans are stored as the SDK ended them, within the
    /// same bounds: the byte figure never passes the budget, and the
    /// oldest traces go first.
    #[test]
    fn sdk_spans_keep_the_bounds() {
        use super::super::record::tests::sdk_span;
        let limits = Limits {
            max_traces: 1_000_000,
            max_bytes: 64 << 10,
        };
        let store = Store::new(limits);
        let resource = (Arc::new(Resource::default()), 0);
        for i in 0..2_000u32 {
            let mut span = sdk_span(1, 1);
            let mut id = [1u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            span.span_context = opentelemetry::trace::SpanContext::new(
                opentelemetry::trace::TraceId::from_bytes(id),
                span.span_context.span_id(),
                span.span_context.trace_flags(),
                false,
                Default::default(),
            );
            assert!(store.insert_sdk(&resource, Box::new(span), Lines::default()));
            assert!(store.counts().bytes <= limits.max_bytes);
        }
        let counts = store.counts();
        assert!(counts.traces_evicted > 1_000, "{counts:?}");
        assert_eq!(counts.spans_received, 2_000);
        let key = |i: u32| {
            let mut id = [1u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id
        };
        assert!(store.trace(&key(0)).is_none(), "the first trace went first");
        assert!(store.trace(&key(1_999)).is_some(), "the last is held");
    }

    /// A log record joins its span whether it comes before the span (it
    /// waits) or after it; one without ids is counted, not shown.
    #[test]
    fn log_records_join_their_span_either_way() {
        let store = Store::new(Limits::default());
        store.insert_logs([(Some(([1; 16], [1; 8])), line("before"))]);
        assert_eq!(store.counts().logs_pending, 1);
        put(&store, vec![span(1, 1, "a")]);
        store.insert_logs([
            (Some(([1; 16], [1; 8])), line("after")),
            (None, line("no span")),
        ]);
        assert_eq!(messages(&store, 1), ["before", "after"]);
        let counts = store.counts();
        assert_eq!(
            (
                counts.logs_received,
                counts.logs_pending,
                counts.logs_dropped
            ),
            (3, 0, 1)
        );
        // What waited is now charged to the trace, not twice.
        let bytes = counts.bytes;
        store.insert_logs([(Some(([1; 16], [1; 8])), line("third"))]);
        assert_eq!(store.counts().bytes, bytes + line("third").cost());
    }

    /// Records waiting for spans that never come take at most their share
    /// of the budget: the oldest are dropped and counted, the newest still
    /// join their span when it comes.
    #[test]
    fn waiting_log_records_are_bounded() {
        let limits = Limits {
            max_traces: 100,
            max_bytes: 64 << 10,
        };
        let store = Store::new(limits);
        for i in 0..10_000u32 {
            let mut trace = [2u8; 16];
            trace[..4].copy_from_slice(&i.to_be_bytes());
            store.insert_logs([(Some((trace, [2; 8])), line("waiting for nothing"))]);
            assert!(store.counts().bytes <= limits.max_bytes / PENDING_SHARE);
        }
        let mut last = [2u8; 16];
        last[..4].copy_from_slice(&9_999u32.to_be_bytes());
        let mut s = span(2, 2, "late");
        s.trace_id = last.to_vec();
        put(&store, vec![s]);
        let counts = store.counts();
        assert!(counts.logs_dropped > 9_000, "{counts:?}");
        assert_eq!(
            counts.logs_dropped + counts.logs_pending as u64 + 1,
            10_000,
            "every record is waiting, shown or counted: {counts:?}"
        );
        assert_eq!(
            store.trace(&last).unwrap()[0].lines.kept[0].message,
            "waiting for nothing"
        );
    }
}
