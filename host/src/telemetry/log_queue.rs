//! The log queue: the records of every service, encoded as they are
//! written (a served request's when it is exported: see [`Request`]),
//! waiting for export (see `logs` for what a record holds).
//!
//! A record goes into the writing thread's part of the queue (one part per
//! recording thread, as the metrics number them), beside the records of
//! the same service and scope: what waits is the bytes of
//! `ScopeLogs.log_records` fields. An export copies them, under their
//! resource and scope, into one `ExportLogsServiceRequest` of at most a
//! batch of records. The queue holds `OTEL_BLRP_MAX_QUEUE_SIZE` records
//! in all; past that a record is dropped and counted, never waited for.
//! A part reserves room in that count for a few records at a time
//! ([`RESERVED`]), so that the recording threads do not write the count
//! at every record.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::Notify;

use super::config::LogRecordLimits;
use super::logs::Origin;
use super::metrics::{EXPORT_QUEUE, ServiceMetrics, shard_count, shard_of};
use super::push::{Payload, Source};
use super::wire::{delimited_len, put_bytes, put_header};

/// A buffer emptied by an export keeps its memory for the next records,
/// up to this many bytes (a burst of long guest lines is not held on to).
const KEPT_BYTES: usize = 1 << 20;

/// Records a part reserves room for in the queue's count at once, at
/// most. The count is the one place every recording thread writes:
/// updated for each record, it passed from one processor's cache to the
/// other's at nearly every record. Room reserved and not yet used is
/// counted as records: near full, the queue may refuse a record while
/// other parts hold room for a few that did not come, and the pusher may
/// be signalled a little before a full batch waits. So a part reserves
/// less when batches are small: all the parts' room together is at most
/// half a batch (and one record each).
pub(super) const RESERVED: usize = 16;

/// One OTLP `ExportLogsServiceRequest`, encoded.
#[derive(Debug, Clone)]
pub struct EncodedLogs {
    /// The message's bytes.
    pub bytes: Bytes,
    /// The log records in it.
    pub records: usize,
}

/// Records of one service in one scope, waiting, in the order written:
/// most encoded, a served request's as its fields (see [`Request`]).
#[derive(Debug, Default)]
struct Records {
    /// Each encoded record as a `ScopeLogs.log_records` field (key,
    /// length, `LogRecord`), one after the other.
    bytes: Vec<u8>,
    /// The records, in order.
    items: Vec<Item>,
    /// The methods and paths of the requests in `items`, one after
    /// another.
    text: String,
}

/// One record waiting.
#[derive(Debug)]
enum Item {
    /// Encoded, ending where this says in `Records::bytes`.
    Encoded(usize),
    /// A served request's, encoded when taken; its method and path are
    /// the next `method` and `path` bytes of `Records::text`.
    Request {
        request: Request,
        method: u32,
        path: u32,
    },
}

/// A served request's record (the host's request log) as the request
/// path leaves it: the fields its body and ids are made of, written out
/// and encoded by the export that takes it (see `logs::encode_request`).
/// Formatting the body and encoding the record take a few hundred
/// instructions, and their code, run once a request between two guests,
/// is out of the instruction cache every time; an export runs it for a
/// batch of records in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Request {
    /// When it ended: the record's time and observed time.
    pub time: u64,
    /// Its SERVER span's trace id, span id and trace flags.
    pub span: Option<([u8; 16], [u8; 8], u8)>,
    pub status: u16,
    pub took: std::time::Duration,
}

impl Records {
    /// Appends a record of `len` bytes that `encode` writes.
    fn push(&mut self, len: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        put_header(&mut self.bytes, 2, len);
        encode(&mut self.bytes);
        self.items.push(Item::Encoded(self.bytes.len()));
    }

    /// Appends a served request's record, with its `method` and `path`.
    fn push_request(&mut self, request: Request, method: &str, path: &str) {
        self.text.push_str(method);
        self.text.push_str(path);
        self.items.push(Item::Request {
            request,
            method: u32::try_from(method.len()).unwrap_or(0),
            path: u32::try_from(path.len()).unwrap_or(0),
        });
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Moves out the first records, `most` at most, as they wait (a
    /// request's still as its fields): a copy, all the part's lock is held
    /// for; [`Records::encode`] then encodes them with the lock released.
    /// The part keeps its buffers.
    fn take(&mut self, most: usize) -> Records {
        let taken = self.items.len().min(most);
        let mut front = Records::default();
        if taken == 0 {
            return front;
        }
        let (mut cut, mut used) = (0, 0);
        for item in &self.items[..taken] {
            match *item {
                Item::Encoded(end) => cut = end,
                Item::Request { method, path, .. } => used += method as usize + path as usize,
            }
        }
        let used = used.min(self.text.len());
        front.bytes.extend_from_slice(&self.bytes[..cut]);
        front
            .text
            .push_str(self.text.get(..used).unwrap_or_default());
        front.items.extend(self.items.drain(..taken));
        if self.items.is_empty() {
            if self.bytes.capacity() > KEPT_BYTES {
                self.bytes = Vec::new();
            } else {
                self.bytes.clear();
            }
            if self.text.capacity() > KEPT_BYTES {
                self.text = String::new();
            } else {
                self.text.clear();
            }
        } else {
            self.bytes.drain(..cut);
            self.text.drain(..used);
            for item in &mut self.items {
                if let Item::Encoded(end) = item {
                    *end -= cut;
                }
            }
        }
        front
    }

    /// Appends every record, in order, to `into`, each a
    /// `ScopeLogs.log_records` field: the encoded ones as they are (those
    /// in a row at once), a request's encoded now.
    fn encode(&self, into: &mut Vec<u8>) {
        let (mut copied, mut cut) = (0, 0);
        let mut text = self.text.as_str();
        let mut body = String::new();
        for item in &self.items {
            match *item {
                Item::Encoded(end) => cut = end,
                Item::Request {
                    request,
                    method,
                    path,
                } => {
                    into.extend_from_slice(&self.bytes[copied..cut]);
                    copied = cut;
                    // Cut where they were written, so always at a
                    // boundary; were they not, they would read empty.
                    let (method, rest) =
                        text.split_at_checked(method as usize).unwrap_or(("", text));
                    let (path, rest) = rest.split_at_checked(path as usize).unwrap_or(("", rest));
                    text = rest;
                    super::logs::encode_request(into, &mut body, &request, method, path);
                }
            }
        }
        into.extend_from_slice(&self.bytes[copied..cut]);
    }
}

/// What waits in one part of the queue.
#[derive(Debug, Default)]
struct Waiting {
    /// The records of the host's scopes, at their [`slot`].
    lines: Vec<Records>,
    /// Records guests built in scopes they named: each with its service
    /// and its scope, encoded.
    own: Vec<(usize, Vec<u8>, Records)>,
    /// Records this part may still take: room it reserved in the queue's
    /// count and has not used.
    room: usize,
}

/// One part of the queue, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Part(Mutex<Waiting>);

/// A scope of one export: the host's for an origin, or one a guest named
/// (encoded).
#[derive(Debug, PartialEq)]
enum Scope {
    Of(Origin),
    Own(Vec<u8>),
}

/// Records taken for one export: per service, its scopes, each with its
/// records' bytes.
type Taken = Vec<(usize, Vec<(Scope, Vec<u8>)>)>;

/// Where the records of `service` in `scope` go in `taken`, services in
/// the order they were made, scopes in the order first taken.
fn taken_records(taken: &mut Taken, service: usize, scope: Scope) -> &mut Vec<u8> {
    let at = match taken.iter().position(|(s, _)| *s == service) {
        Some(at) => at,
        None => {
            let at = taken.partition_point(|(s, _)| *s < service);
            taken.insert(at, (service, Vec::new()));
            at
        }
    };
    let scopes = &mut taken[at].1;
    let at = match scopes.iter().position(|(s, _)| *s == scope) {
        Some(at) => at,
        None => {
            scopes.push((scope, Vec::new()));
            scopes.len() - 1
        }
    };
    &mut scopes[at].1
}

/// The process's log queue.
#[derive(Debug)]
pub struct Logs {
    /// The records waiting, one part per recording thread (as the
    /// metrics number them), each behind its own lock.
    parts: Box<[Part]>,
    /// Records waiting in all the parts, and the room the parts reserved
    /// for records to come (at most [`RESERVED`] each).
    queued: AtomicUsize,
    /// Each service's resource, encoded once, where its records name it.
    resources: Mutex<Vec<Arc<[u8]>>>,
    /// The scopes of the host's own records, encoded once: by origin.
    scopes: [Vec<u8>; 2],
    capacity: usize,
    /// Records a part reserves room for at once (see [`RESERVED`]).
    reserve: usize,
    /// Records per export request, at most; this many waiting wake the
    /// pusher.
    batch: usize,
    /// Wakes the pusher when a full batch waits.
    ready: Arc<Notify>,
    /// Records dropped because the queue was full, in all.
    pub dropped: AtomicU64,
    /// Records whose export failed, in all.
    pub undelivered: AtomicU64,
    /// Prints each record as it is written (`OTEL_LOGS_EXPORTER=console`).
    pub(super) console: bool,
    /// Queues records for OTLP (`OTEL_LOGS_EXPORTER=otlp`).
    pub(super) exports: bool,
    /// `OTEL_LOGRECORD_ATTRIBUTE_*_LIMIT`, applied to every record.
    pub(super) limits: LogRecordLimits,
}

impl Logs {
    /// A queue of at most `capacity` records for OTLP, exported in requests
    /// of at most `batch`, each record's attributes within `limits`, when
    /// `exports`; `console` prints each record.
    pub fn new(
        capacity: usize,
        batch: usize,
        limits: LogRecordLimits,
        console: bool,
        exports: bool,
    ) -> Logs {
        Logs {
            parts: (0..shard_count()).map(|_| Part::default()).collect(),
            queued: AtomicUsize::new(0),
            resources: Mutex::new(Vec::new()),
            scopes: [Origin::Host, Origin::Guest].map(|o| o.scope().encode_to_vec()),
            capacity,
            reserve: (batch.min(capacity) / (2 * shard_count())).clamp(1, RESERVED),
            batch: batch.clamp(1, capacity.max(1)),
            ready: Arc::new(Notify::new()),
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            console,
            exports,
            limits,
        }
    }

    /// The place of a service with `resource` (encoded), which its
    /// records name.
    pub(super) fn register(&self, resource: Vec<u8>) -> usize {
        let mut resources = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        resources.push(resource.into());
        resources.len() - 1
    }

    /// Queues a record with `write`, which encodes it into the records it
    /// is given (this thread's of its service and scope), when there is
    /// room; else counts it dropped (a guest's in `metrics`, its
    /// service's).
    fn push(
        &self,
        origin: Origin,
        metrics: Option<&ServiceMetrics>,
        write: impl FnOnce(&mut Waiting),
    ) {
        if !self.exports {
            return;
        }
        let Some(mut waiting) = self.local() else {
            return;
        };
        if waiting.room == 0 {
            waiting.room = self.reserve();
        }
        if waiting.room == 0 {
            drop(waiting);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let (Origin::Guest, Some(metrics)) = (origin, metrics) {
                metrics.logs_dropped(1, EXPORT_QUEUE);
            }
            return;
        }
        waiting.room -= 1;
        write(&mut waiting);
    }

    /// Reserves room for a few records (see [`RESERVED`]) in the queue's count,
    /// as much as the capacity leaves: how many. Signals the pusher when
    /// the count reaches a full batch.
    fn reserve(&self) -> usize {
        let mut queued = self.queued.load(Ordering::Relaxed);
        loop {
            let room = self.reserve.min(self.capacity.saturating_sub(queued));
            if room == 0 {
                return 0;
            }
            match self.queued.compare_exchange_weak(
                queued,
                queued + room,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if queued < self.batch && queued + room >= self.batch {
                        self.ready.notify_one();
                    }
                    return room;
                }
                Err(now) => queued = now,
            }
        }
    }

    /// Queues a record of service `service` in the host's scope for
    /// `origin`: `len` bytes, which `encode` writes.
    pub(super) fn push_line(
        &self,
        service: usize,
        origin: Origin,
        metrics: Option<&ServiceMetrics>,
        len: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        self.push(origin, metrics, |waiting| {
            lines(waiting, slot(service, origin)).push(len, encode);
        });
    }

    /// Queues the record of a request service `service` served
    /// (`request`, `method`, `path`), encoded when it is exported.
    pub(super) fn push_request(
        &self,
        service: usize,
        metrics: Option<&ServiceMetrics>,
        request: Request,
        method: &str,
        path: &str,
    ) {
        self.push(Origin::Host, metrics, |waiting| {
            lines(waiting, slot(service, Origin::Host)).push_request(request, method, path);
        });
    }

    /// Queues a record a guest of service `service` built whole, in the
    /// scope it named (`scope`, encoded) or else its guests' scope: `len`
    /// bytes, which `encode` writes.
    pub(super) fn push_record(
        &self,
        service: usize,
        scope: Option<Vec<u8>>,
        metrics: Option<&ServiceMetrics>,
        len: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        self.push(Origin::Guest, metrics, |waiting| {
            let records = match scope {
                None => lines(waiting, slot(service, Origin::Guest)),
                Some(scope) => {
                    let at = match waiting
                        .own
                        .iter()
                        .position(|(s, own, _)| *s == service && *own == scope)
                    {
                        Some(at) => at,
                        None => {
                            waiting.own.push((service, scope, Records::default()));
                            waiting.own.len() - 1
                        }
                    };
                    &mut waiting.own[at].2
                }
            };
            records.push(len, encode);
        });
    }

    /// Records waiting now: the count, less the room reserved and unused.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        let unused: usize = self
            .parts
            .iter()
            .map(|part| part.0.lock().map_or(0, |waiting| waiting.room))
            .sum();
        self.queued.load(Ordering::Relaxed) - unused
    }

    /// The encoded scope `scope` stands for.
    fn scope_bytes<'a>(&'a self, scope: &'a Scope) -> &'a [u8] {
        match scope {
            Scope::Of(origin) => &self.scopes[*origin as usize],
            Scope::Own(encoded) => encoded,
        }
    }

    /// This thread's part.
    fn local(&self) -> Option<MutexGuard<'_, Waiting>> {
        self.parts[shard_of()].0.lock().ok()
    }

    /// Up to a batch of records, grouped by service and scope, encoded:
    /// per service (in the order they were made) the host's scope, the
    /// guests', then the scopes guests named.
    pub(super) fn batch(&self) -> Option<EncodedLogs> {
        let mut services: Taken = Vec::new();
        let mut records = 0;
        for part in &self.parts {
            if records == self.batch {
                break;
            }
            // Taken under the part's lock, which the request path takes
            // for every record; encoded once it is released.
            let mut fronts = Vec::new();
            {
                let Ok(mut waiting) = part.0.lock() else {
                    continue;
                };
                let waiting = &mut *waiting;
                for (slot, lines) in waiting.lines.iter_mut().enumerate() {
                    if !lines.is_empty() {
                        let (service, origin) = of_slot(slot);
                        let front = lines.take(self.batch - records);
                        records += front.items.len();
                        fronts.push((service, Scope::Of(origin), front));
                    }
                }
                for (service, scope, own) in &mut waiting.own {
                    if !own.is_empty() {
                        let front = own.take(self.batch - records);
                        records += front.items.len();
                        fronts.push((*service, Scope::Own(scope.clone()), front));
                    }
                }
                waiting.own.retain(|(_, _, own)| !own.is_empty());
            }
            for (service, scope, front) in fronts {
                front.encode(taken_records(&mut services, service, scope));
            }
        }
        if records == 0 {
            return None;
        }
        self.queued.fetch_sub(records, Ordering::Relaxed);
        // Host scopes before named ones, in origin order.
        for (_, scopes) in &mut services {
            scopes.sort_by_key(|(scope, _)| match scope {
                Scope::Of(Origin::Host) => 0,
                Scope::Of(Origin::Guest) => 1,
                Scope::Own(_) => 2,
            });
        }
        let resources = self.resources.lock().ok()?.clone();
        // `ExportLogsServiceRequest.resource_logs` (1) → `ResourceLogs`:
        // `resource` (1), `scope_logs` (2) → `ScopeLogs`: `scope` (1),
        // `log_records` (2), which wait encoded. Lengths first, then the
        // bytes.
        let mut resource_lens = Vec::with_capacity(services.len());
        for (service, scopes) in &services {
            let mut len = delimited_len(1, resources.get(*service)?.len());
            for (scope, bytes) in scopes {
                len += delimited_len(
                    2,
                    delimited_len(1, self.scope_bytes(scope).len()) + bytes.len(),
                );
            }
            resource_lens.push(len);
        }
        let total = resource_lens.iter().map(|len| delimited_len(1, *len)).sum();
        let mut buf = Vec::with_capacity(total);
        for ((service, scopes), resource_len) in services.iter().zip(resource_lens) {
            put_header(&mut buf, 1, resource_len);
            put_bytes(&mut buf, 1, &resources[*service]);
            for (scope, bytes) in scopes {
                let scope = self.scope_bytes(scope);
                put_header(&mut buf, 2, delimited_len(1, scope.len()) + bytes.len());
                put_bytes(&mut buf, 1, scope);
                buf.extend_from_slice(bytes);
            }
        }
        debug_assert_eq!(buf.len(), total);
        Some(EncodedLogs {
            bytes: Bytes::from(buf),
            records,
        })
    }
}

impl Source for Logs {
    fn ready(&self) -> Option<Arc<Notify>> {
        Some(self.ready.clone())
    }

    fn collect(&self) -> Vec<Payload> {
        std::iter::from_fn(|| self.batch())
            .map(Payload::Logs)
            .collect()
    }

    fn undelivered(&self, log_records: usize) {
        self.undelivered
            .fetch_add(log_records as u64, Ordering::Relaxed);
    }
}

/// Where the records of `service` in the host's scope for `origin` are
/// in [`Waiting::lines`].
fn slot(service: usize, origin: Origin) -> usize {
    2 * service + origin as usize
}

/// The service and origin of the records at `slot` (see [`slot`]).
fn of_slot(slot: usize) -> (usize, Origin) {
    let origin = [Origin::Host, Origin::Guest][slot % 2];
    (slot / 2, origin)
}

/// The records at `slot` of `waiting`'s host scopes.
fn lines(waiting: &mut Waiting, slot: usize) -> &mut Records {
    if waiting.lines.len() <= slot {
        waiting.lines.resize_with(slot + 1, Records::default);
    }
    &mut waiting.lines[slot]
}
