//! An instrument's points: keyed by set and bounded, in parts, one per
//! recording thread, merged at collection.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;

use super::sets::{Attributes, Key, Lookup, Pairs, ValueRef};
use super::{CARDINALITY_LIMIT, OVERFLOW, now_nanos};

/// Points keyed by attribute set, bounded, with the time they count from.
/// The point of the empty set, which most of the sandbox's instruments
/// record into, is kept beside the others: no hashing for it. The others
/// lie in a vector, in the order their sets came, found by an index of
/// their places, and a measurement first compares its set with the one
/// found last: one thread records the same set over and over, and that
/// comparison costs less than hashing the set and probing the index.
#[derive(Debug)]
pub(super) struct Points<P> {
    /// Every point but the empty set's, with its set; a point keeps its
    /// place until the points are taken (then all are replaced).
    pub(super) sets: Vec<(Attributes, P)>,
    /// The places in `sets`, by the hash of their set.
    index: hashbrown::HashTable<usize>,
    /// foldhash's fast hasher, randomly seeded, so that a guest choosing
    /// attribute values cannot aim at one bucket of `index`.
    hasher: foldhash::fast::RandomState,
    /// The place in `sets` of the set found last.
    last: Option<usize>,
    empty: Option<P>,
    start: u64,
}

impl<P> Points<P> {
    pub(super) fn new() -> Self {
        Points {
            sets: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            last: None,
            empty: None,
            start: now_nanos(),
        }
    }

    /// The point of `set`, made with `new` if it is not there yet; past
    /// the cardinality limit, the overflow point.
    pub(super) fn entry(&mut self, set: impl Lookup, new: impl FnOnce() -> P) -> &mut P {
        if set.is_empty() {
            return self.empty.get_or_insert_with(new);
        }
        let at = match self.last {
            Some(at) if self.sets.get(at).is_some_and(|(kept, _)| set.is(kept)) => at,
            _ => {
                let at = self.place(set, new);
                self.last = Some(at);
                at
            }
        };
        &mut self.sets[at].1
    }

    /// The place of `set`'s point, found by its hash, or made with `new`:
    /// past the cardinality limit, the overflow point's.
    pub(super) fn place(&mut self, set: impl Lookup, new: impl FnOnce() -> P) -> usize {
        if let Some(at) = self.find(&set) {
            return at;
        }
        if !self.full() {
            return self.insert(set.into_set(), new());
        }
        let overflow = Pairs(&[(OVERFLOW, ValueRef::Bool(true))]);
        match self.find(&overflow) {
            Some(at) => at,
            None => self.insert(Attributes::overflow(), new()),
        }
    }

    /// The place of `set`'s point, if it has one.
    pub(super) fn find(&self, set: &impl Lookup) -> Option<usize> {
        let sets = &self.sets;
        self.index
            .find(self.hasher.hash_one(set), |&at| set.is(&sets[at].0))
            .copied()
    }

    /// Keeps `point` for `set`, not kept yet; its place.
    pub(super) fn insert(&mut self, set: Attributes, point: P) -> usize {
        let at = self.sets.len();
        let hash = self.hasher.hash_one(&set);
        self.sets.push((set, point));
        let (sets, hasher) = (&self.sets, &self.hasher);
        self.index
            .insert_unique(hash, at, |&at| hasher.hash_one(&sets[at].0));
        at
    }

    /// Whether a new set would pass the cardinality limit: every place
    /// but the overflow point's is taken.
    pub(super) fn full(&self) -> bool {
        let held = self.sets.len() + usize::from(self.empty.is_some());
        held >= CARDINALITY_LIMIT - 1
            && held
                - usize::from(
                    self.find(&Pairs(&[(OVERFLOW, ValueRef::Bool(true))]))
                        .is_some(),
                )
                >= CARDINALITY_LIMIT - 1
    }

    /// The point of `key`, however it is given.
    pub(super) fn entry_of(&mut self, key: Key, new: impl FnOnce() -> P) -> &mut P {
        match key {
            Key::Owned(attributes) => self.entry(attributes, new),
            Key::Borrowed(pairs) => self.entry(pairs, new),
            Key::Guest(pairs) => self.entry(pairs, new),
        }
    }

    /// Every point, each with its attribute set, as `read` makes it.
    pub(super) fn read<T>(&mut self, mut read: impl FnMut(&mut P) -> T) -> Vec<(Attributes, T)> {
        let empty = self
            .empty
            .as_mut()
            .map(|p| (Attributes::default(), read(p)));
        empty
            .into_iter()
            .chain(self.sets.iter_mut().map(|(k, v)| (k.clone(), read(v))))
            .collect()
    }

    /// Every point, taken: the next point of a set counts from now, in a
    /// place of its own (the set found last is forgotten with the rest).
    pub(super) fn take(&mut self) -> (u64, Vec<(Attributes, P)>) {
        let taken = std::mem::replace(self, Points::new());
        let empty = taken.empty.map(|p| (Attributes::default(), p));
        (taken.start, empty.into_iter().chain(taken.sets).collect())
    }
}

/// An instrument's points in parts, one for each of a few threads: a
/// thread records into its own, so that two workers recording the same
/// set do not pass the point's cache lines back and forth (that, not the
/// arithmetic, was most of a measurement's time). Collection merges the
/// parts, the cardinality limit applied to the merged points.
#[derive(Debug)]
pub(super) struct Sharded<P> {
    shards: Box<[Shard<P>]>,
}

/// One part, alone on its cache lines.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Shard<P>(Mutex<Points<P>>);

/// The part a thread records into, of the [`shard_count`] an instrument
/// (or the journal, or the log queue) keeps: threads are numbered as they
/// first record, and the parts are twice the processors (at least 2, at
/// most 32), so that the runtime's workers, which record first, each have
/// one. Worked out once a thread: a division is tens of cycles, and the
/// request path asks several times a request.
pub fn shard_of() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % shard_count();
    }
    SHARD.with(|n| *n)
}

/// The parts an instrument (or the log queue) keeps: twice the
/// processors, at least 2, at most 32.
pub fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let processors = std::thread::available_parallelism().map_or(1, |n| n.get());
        (2 * processors).clamp(2, 32)
    })
}

impl<P> Sharded<P> {
    pub(super) fn new() -> Self {
        Sharded {
            shards: (0..shard_count())
                .map(|_| Shard(Mutex::new(Points::new())))
                .collect(),
        }
    }

    /// This thread's part.
    pub(super) fn local(&self) -> Option<std::sync::MutexGuard<'_, Points<P>>> {
        self.shards[shard_of()].0.lock().ok()
    }

    /// Every point, the parts merged with `merge`: read with `read`
    /// (cumulative) or taken (delta); with the time they count from.
    pub(super) fn collect(
        &self,
        collect: Collect,
        mut read: impl FnMut(&mut P) -> P,
        merge: impl Fn(&mut P, P),
    ) -> (u64, Vec<(Attributes, P)>) {
        let mut start = u64::MAX;
        let mut merged = Points::<P>::new();
        for shard in &self.shards {
            let Ok(mut points) = shard.0.lock() else {
                continue;
            };
            let (from, part) = match collect {
                Collect::Cumulative => (points.start, points.read(&mut read)),
                Collect::Delta => points.take(),
            };
            drop(points);
            start = start.min(from);
            for (attributes, point) in part {
                let mut point = Some(point);
                let at = merged.entry(attributes, || point.take().expect("taken once"));
                if let Some(point) = point {
                    merge(at, point);
                }
            }
        }
        (start.min(merged.start), merged.take().1)
    }
}

/// How collection treats the points it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Kept: the next collection counts from the same start.
    Cumulative,
    /// Taken: the next collection counts from now.
    Delta,
}

impl Collect {
    pub(super) fn temporality(self) -> i32 {
        match self {
            Collect::Cumulative => AggregationTemporality::Cumulative as i32,
            Collect::Delta => AggregationTemporality::Delta as i32,
        }
    }
}
