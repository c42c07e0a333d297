//! Sums and levels: counters, up-down counters read as levels, and
//! instruments read at collection.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, Sum as ProtoSum, metric, number_data_point,
};

use super::points::{Collect, Sharded, shard_count, shard_of};
use super::sets::{Attributes, Key};
use super::{Descriptor, metric_of, now_nanos};

/// A counter: a monotonic sum of whole numbers.
#[derive(Debug)]
pub struct Sum {
    descriptor: Descriptor,
    points: Sharded<i64>,
}

impl Sum {
    /// A counter: only ever adds.
    pub fn counter(descriptor: Descriptor) -> Sum {
        Sum {
            descriptor,
            points: Sharded::new(),
        }
    }

    /// Adds `value` to the point of `attributes` (a negative value is
    /// ignored, as the API says of counters).
    pub fn add<'a>(&self, value: i64, attributes: impl Into<Key<'a>>) {
        if value < 0 {
            return;
        }
        if let Some(mut points) = self.points.local() {
            *points.entry_of(attributes.into(), || 0) += value;
        }
    }

    /// The metric, its points as of now; `None` without any point.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        let now = now_nanos();
        let (start, points) = self.points.collect(collect, |v| *v, |a, b| *a += b);
        if points.is_empty() {
            return None;
        }
        Some(sum_metric(
            &self.descriptor,
            points,
            start,
            now,
            collect,
            true,
        ))
    }
}

/// An up-down counter over attribute sets known when it is made, a few at
/// most: one atomic level per set in each thread's part (as [`Sharded`]
/// numbers them), so that a request adds and subtracts with no lock, no
/// hashing, no allocation and no cache line another processor writes too;
/// a set's level is the sum of its parts. A set's point is exported from
/// its first change on, always cumulative (a level is not a rate, and the
/// specification keeps up-down counters cumulative).
#[derive(Debug)]
pub struct Levels {
    descriptor: Descriptor,
    sets: Vec<Attributes>,
    /// The parts, one after the other, each `chunks` chunks long: set `i`
    /// of part `p` is level `i % 16` of chunk `p * chunks + i / 16`.
    parts: Vec<LevelChunk>,
    /// Chunks per part.
    chunks: usize,
    /// Whether each set has changed yet (written once, then only read).
    touched: Vec<AtomicBool>,
    start: u64,
}

/// Sixteen levels of one part, a cache-line pair of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct LevelChunk([AtomicI64; 16]);

impl Levels {
    /// Levels of `sets`, each at zero and not yet exported.
    pub fn new(descriptor: Descriptor, sets: Vec<Attributes>) -> Levels {
        let chunks = sets.len().div_ceil(16).max(1);
        Levels {
            descriptor,
            parts: (0..chunks * shard_count())
                .map(|_| LevelChunk::default())
                .collect(),
            chunks,
            touched: sets.iter().map(|_| AtomicBool::new(false)).collect(),
            sets,
            start: now_nanos(),
        }
    }

    /// Adds `value` to the level of the set at `index` (ignored past the
    /// last set), in this thread's part.
    pub fn add(&self, index: usize, value: i64) {
        let Some(touched) = self.touched.get(index) else {
            return;
        };
        let part = shard_of();
        self.parts[part * self.chunks + index / 16].0[index % 16]
            .fetch_add(value, Ordering::Relaxed);
        if !touched.load(Ordering::Relaxed) {
            touched.store(true, Ordering::Relaxed);
        }
    }

    /// The level of the set at `index`: its parts summed.
    pub(super) fn level(&self, index: usize) -> i64 {
        self.parts
            .chunks(self.chunks)
            .map(|part| part[index / 16].0[index % 16].load(Ordering::Relaxed))
            .sum()
    }

    /// The metric, every changed set's level as of now; `None` before any
    /// change.
    pub fn collect(&self) -> Option<Metric> {
        let points: Vec<(Attributes, i64)> = self
            .sets
            .iter()
            .zip(&self.touched)
            .enumerate()
            .filter(|(_, (_, touched))| touched.load(Ordering::Relaxed))
            .map(|(index, (set, _))| (set.clone(), self.level(index)))
            .collect();
        if points.is_empty() {
            return None;
        }
        Some(sum_metric(
            &self.descriptor,
            points,
            self.start,
            now_nanos(),
            Collect::Cumulative,
            false,
        ))
    }
}

/// An up-down counter whose level is kept elsewhere (a count some other
/// part of the host keeps anyway) and read at collection: an observable
/// up-down counter, one point with no attributes, which costs the request
/// path nothing. Nothing is exported until it is given its source.
pub struct ReadLevel {
    descriptor: Descriptor,
    source: OnceLock<Box<dyn Fn() -> i64 + Send + Sync>>,
    start: u64,
}

impl std::fmt::Debug for ReadLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadLevel")
            .field("descriptor", &self.descriptor)
            .field("read", &self.source.get().map(|read| read()))
            .finish()
    }
}

impl ReadLevel {
    /// A level with no source yet.
    pub fn new(descriptor: Descriptor) -> ReadLevel {
        ReadLevel {
            descriptor,
            source: OnceLock::new(),
            start: now_nanos(),
        }
    }

    /// Reads the level with `read` from now on (the first source given
    /// stays).
    pub fn read_from(&self, read: impl Fn() -> i64 + Send + Sync + 'static) {
        let _ = self.source.set(Box::new(read));
    }

    /// The metric, the level as of now; `None` without a source.
    pub fn collect(&self) -> Option<Metric> {
        let read = self.source.get()?;
        Some(sum_metric(
            &self.descriptor,
            vec![(Attributes::default(), read())],
            self.start,
            now_nanos(),
            Collect::Cumulative,
            false,
        ))
    }
}

/// A sum metric of `points`, counted from `start` to `now`.
pub(super) fn sum_metric(
    descriptor: &Descriptor,
    points: Vec<(Attributes, i64)>,
    start: u64,
    now: u64,
    collect: Collect,
    monotonic: bool,
) -> Metric {
    let data_points = points
        .into_iter()
        .map(|(attributes, value)| NumberDataPoint {
            attributes: attributes.to_proto(),
            start_time_unix_nano: start,
            time_unix_nano: now,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(number_data_point::Value::AsInt(value)),
        })
        .collect();
    metric_of(
        descriptor,
        metric::Data::Sum(ProtoSum {
            data_points,
            aggregation_temporality: collect.temporality(),
            is_monotonic: monotonic,
        }),
    )
}

/// A counter whose total is kept elsewhere (an atomic some other part of
/// the host counts into) and read at collection: an observable counter.
#[derive(Debug)]
pub struct Observed {
    descriptor: Descriptor,
    attributes: Attributes,
    source: std::sync::Arc<std::sync::atomic::AtomicU64>,
    start: u64,
    /// The total at the last delta collection.
    last: std::sync::atomic::AtomicU64,
}

impl Observed {
    /// A counter reading `source`, its one point carrying `attributes`.
    pub fn new(
        descriptor: Descriptor,
        attributes: Attributes,
        source: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Observed {
        Observed {
            descriptor,
            attributes,
            source,
            start: now_nanos(),
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The metric, or `None` while nothing was counted.
    pub fn collect(&self, collect: Collect) -> Option<Metric> {
        use std::sync::atomic::Ordering;
        let total = self.source.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        let value = match collect {
            Collect::Cumulative => total,
            Collect::Delta => total - self.last.swap(total, Ordering::Relaxed).min(total),
        };
        Some(metric_of(
            &self.descriptor,
            metric::Data::Sum(ProtoSum {
                data_points: vec![NumberDataPoint {
                    attributes: self.attributes.to_proto(),
                    start_time_unix_nano: self.start,
                    time_unix_nano: now_nanos(),
                    exemplars: Vec::new(),
                    flags: 0,
                    value: Some(number_data_point::Value::AsInt(
                        i64::try_from(value).unwrap_or(i64::MAX),
                    )),
                }],
                aggregation_temporality: collect.temporality(),
                is_monotonic: true,
            }),
        ))
    }
}
