//! The specification's Base2 Exponential Bucket Histogram Aggregation
//! (`OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=base2_exponential_bucket_histogram`):
//! bucket `index` at `scale` holds the values in
//! `(base^index, base^(index+1)]`, `base = 2^(2^-scale)` (upper-inclusive,
//! so an exact power of two ends its bucket). A point starts at
//! [`MAX_SCALE`] and halves its resolution (scale − 1 merges buckets in
//! pairs) whenever the values seen would need more than [`MAX_SIZE`]
//! buckets. The host's values are never negative: zeros are counted in
//! `zero_count`, the rest in positive buckets.
//!
//! Exemplars: the specification's default for this aggregation, a
//! `SimpleFixedSizeExemplarReservoir` of `min(20, MaxSize)` slots filled
//! by reservoir sampling.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

/// The most buckets a point holds (the specification's default MaxSize).
pub const MAX_SIZE: usize = 160;
/// The finest scale (the specification's default MaxScale).
pub const MAX_SCALE: i32 = 20;
/// Exemplar slots per point: `min(20, MAX_SIZE)`.
pub const EXEMPLAR_SLOTS: usize = 20;

/// The index of the bucket `value` (finite, positive) falls in at `scale`.
pub fn index(value: f64, scale: i32) -> i32 {
    // An exact power of two is the upper bound of the bucket below it
    // (upper-inclusive): computed exactly, as a logarithm might land on
    // either side.
    let exponent = exponent(value);
    if mantissa_is_zero(value) {
        return if scale >= 0 {
            (exponent << scale) - 1
        } else {
            // (exponent - 1) is the index at scale 0; a coarser scale
            // groups 2^-scale of them (an arithmetic shift floors).
            (exponent - 1) >> -scale
        };
    }
    if scale <= 0 {
        // At scale 0 the value is in (2^exponent, 2^(exponent+1)]: index
        // `exponent`.
        return exponent >> -scale;
    }
    let scale_factor = std::f64::consts::LOG2_E * f64::from(1u32 << scale);
    // Rounding can put a value just above a boundary one bucket off;
    // the specification allows it, and the exact boundaries (powers of
    // two) are handled above.
    (value.ln() * scale_factor).ceil() as i32 - 1
}

/// The binary exponent of `value`: `value` is `1.m × 2^exponent`
/// (subnormals normalised).
fn exponent(value: f64) -> i32 {
    let bits = value.to_bits();
    let raw = ((bits >> 52) & 0x7ff) as i32;
    if raw == 0 {
        // Subnormal: 0.m × 2^-1022, the leading one of m sets the exponent.
        let mantissa = bits & ((1u64 << 52) - 1);
        return -1022 - (mantissa.leading_zeros() as i32 - 11);
    }
    raw - 1023
}

/// Whether `value` is an exact power of two.
fn mantissa_is_zero(value: f64) -> bool {
    let bits = value.to_bits();
    if (bits >> 52) & 0x7ff == 0 {
        let mantissa = bits & ((1u64 << 52) - 1);
        return mantissa.is_power_of_two();
    }
    bits & ((1u64 << 52) - 1) == 0
}

/// One exponential histogram point's buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Exponential {
    /// The current scale.
    pub scale: i32,
    /// Values equal to zero.
    pub zero_count: u64,
    /// The index of `counts[0]`.
    offset: i32,
    /// Counts of consecutive buckets from `offset`; empty until a positive
    /// value arrives.
    counts: Vec<u64>,
}

impl Default for Exponential {
    fn default() -> Self {
        Exponential {
            scale: MAX_SCALE,
            zero_count: 0,
            offset: 0,
            counts: Vec::new(),
        }
    }
}

impl Exponential {
    /// Counts `value` (finite, non-negative), downscaling first when its
    /// bucket and the others would span more than [`MAX_SIZE`].
    pub fn record(&mut self, value: f64) {
        if value == 0.0 {
            self.zero_count += 1;
            return;
        }
        let mut at = index(value, self.scale);
        if self.counts.is_empty() {
            self.offset = at;
            self.counts.push(1);
            return;
        }
        let low = self.offset.min(at);
        let high = (self.offset + self.counts.len() as i32 - 1).max(at);
        let change = downscale_needed(low, high, MAX_SIZE);
        if change > 0 {
            self.downscale(change);
            at = index(value, self.scale);
        }
        self.add_at(at, 1);
    }

    /// Adds `count` to bucket `at` of the current scale, extending the
    /// buckets down or up to it (the caller has made sure they fit).
    fn add_at(&mut self, at: i32, count: u64) {
        if at < self.offset {
            let grow = (self.offset - at) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = at;
        }
        let slot = (at - self.offset) as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += count;
    }

    /// Lowers the scale by `change`, merging each 2^change buckets into one.
    fn downscale(&mut self, change: u32) {
        let shift = change as i32;
        let offset = self.offset >> shift;
        let mut counts: Vec<u64> = Vec::new();
        for (n, count) in self.counts.iter().enumerate() {
            let slot = (((self.offset + n as i32) >> shift) - offset) as usize;
            if slot >= counts.len() {
                counts.resize(slot + 1, 0);
            }
            counts[slot] += count;
        }
        self.offset = offset;
        self.counts = counts;
        self.scale -= shift;
    }

    /// Adds `other`'s counts, both at the coarser of the two scales, and
    /// coarser still if together they need more than [`MAX_SIZE`] buckets.
    pub fn merge(&mut self, other: &Exponential) {
        self.zero_count += other.zero_count;
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.scale = other.scale;
            self.offset = other.offset;
            self.counts = other.counts.clone();
            return;
        }
        if other.scale < self.scale {
            self.downscale((self.scale - other.scale) as u32);
        }
        let shift = other.scale - self.scale;
        let other_low = other.offset >> shift;
        let other_high = (other.offset + other.counts.len() as i32 - 1) >> shift;
        let low = self.offset.min(other_low);
        let high = (self.offset + self.counts.len() as i32 - 1).max(other_high);
        let change = downscale_needed(low, high, MAX_SIZE);
        if change > 0 {
            self.downscale(change);
        }
        let shift = other.scale - self.scale;
        for (n, count) in other.counts.iter().enumerate() {
            self.add_at((other.offset + n as i32) >> shift, *count);
        }
    }

    /// The positive buckets as OTLP has them.
    pub fn positive(&self) -> Buckets {
        Buckets {
            offset: self.offset,
            bucket_counts: self.counts.clone(),
        }
    }
}

/// How many halvings of the scale make buckets `low..=high` fit in `size`.
fn downscale_needed(low: i32, high: i32, size: usize) -> u32 {
    // In i64: at scale 20 the smallest and largest doubles are about 2^31
    // buckets apart, past what an i32 difference holds (a guest's
    // histogram takes any finite value).
    let (mut low, mut high) = (i64::from(low), i64::from(high));
    let mut change = 0;
    while high - low >= size as i64 {
        low >>= 1;
        high >>= 1;
        change += 1;
    }
    change
}

/// At most [`EXEMPLAR_SLOTS`] items, chosen uniformly among those offered
/// (a small xorshift generator: the choice needs to be uniform, not
/// unpredictable).
#[derive(Debug, Clone)]
pub struct Reservoir<T> {
    slots: Vec<T>,
    /// Measurements offered since the last collection.
    seen: u64,
    state: u64,
}

impl<T: Clone> Reservoir<T> {
    /// An empty reservoir of [`EXEMPLAR_SLOTS`], seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Reservoir {
            slots: Vec::new(),
            seen: 0,
            state: seed | 1,
        }
    }

    /// Offers `item`: kept with probability `slots / seen` (the
    /// specification's simple reservoir sampling).
    pub fn offer(&mut self, item: T) {
        let slot = if (self.seen as usize) < EXEMPLAR_SLOTS {
            self.seen as usize
        } else {
            (self.next() % (self.seen + 1)) as usize
        };
        self.seen += 1;
        if slot < self.slots.len() {
            self.slots[slot] = item;
        } else if slot < EXEMPLAR_SLOTS {
            self.slots.push(item);
        }
    }

    /// The kept items; the count of offers starts again (the
    /// specification: reset every collection cycle), the items stay until
    /// replaced.
    pub fn collect(&mut self) -> Vec<T> {
        self.seen = 0;
        self.slots.clone()
    }

    /// Offers each of `other`'s kept items, as if they had been offered
    /// here (the same point's exemplars from another part).
    pub fn absorb(&mut self, other: Reservoir<T>) {
        for item in other.slots {
            self.offer(item);
        }
    }

    fn next(&mut self) -> u64 {
        xorshift(&mut self.state)
    }
}

/// The next number of the xorshift generator whose state is `state`
/// (never zero): uniform enough to sample exemplars, and a few
/// instructions.
pub fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indices worked out by hand from `(base^i, base^(i+1)]`: at scale 0
    /// the base is 2, so 1 ends bucket −1, 2 ends bucket 0, 3 and 4 are in
    /// bucket 1; at scale 1 the base is √2 (bounds 1, 1.414, 2, 2.83, 4);
    /// at scale −1 the base is 4; at scale 20 a power of two 2^k ends
    /// bucket k·2^20 − 1.
    #[test]
    fn bucket_index_is_upper_inclusive() {
        #[rustfmt::skip]
        let cases: &[(f64, i32, i32)] = &[
            // value, scale, index
            (1.0,   0, -1),
            (2.0,   0,  0),
            (3.0,   0,  1),
            (4.0,   0,  1),
            (4.5,   0,  2),
            (0.5,   0, -2),
            (0.75,  0, -1),
            (1.0,   1, -1),
            (1.4,   1,  0),
            (1.5,   1,  1),
            (2.0,   1,  1),
            (2.5,   1,  2),
            (4.0,   1,  3),
            (4.0,  -1,  0),
            (5.0,  -1,  1),
            (16.0, -1,  1),
            (17.0, -1,  2),
            (1.0,  -1, -1),
            (0.25, -1, -2),
            (2.0,  20, (1 << 20) - 1),
            (1.0,  20, -1),
            (0.5,  20, -(1 << 20) - 1),
            (f64::MIN_POSITIVE, 0, -1023),
            (f64::MIN_POSITIVE / 2.0, 0, -1024),
            (f64::MAX, 0, 1023),
        ];
        for &(value, scale, expected) in cases {
            assert_eq!(index(value, scale), expected, "index({value}, {scale})");
        }
    }

    /// A value just above a power of two is in the next bucket at the
    /// finest scale: the boundary is exact.
    #[test]
    fn just_above_a_power_of_two_is_the_next_bucket() {
        let above = f64::from_bits(2.0f64.to_bits() + 1);
        assert_eq!(index(above, 20), 1 << 20);
        let below = f64::from_bits(2.0f64.to_bits() - 1);
        assert_eq!(index(below, 20), (1 << 20) - 1);
    }

    /// Values at scale 20 that need more than 160 buckets lower the scale
    /// until they fit: 1 and 2 at scale 20 are 2^20 buckets apart, so
    /// they fit only at scale 20 − 13 = 7 (bucket −1 and 127: 129
    /// buckets; at scale 8 they would be −1 and 255, 257 buckets).
    #[test]
    fn downscales_as_values_arrive() {
        let mut h = Exponential::default();
        h.record(1.0);
        assert_eq!((h.scale, h.positive().offset), (20, -1));
        h.record(2.0);
        assert_eq!(h.scale, 7);
        let positive = h.positive();
        assert_eq!(positive.offset, -1);
        assert_eq!(positive.bucket_counts.len(), 129);
        assert_eq!(positive.bucket_counts[0], 1);
        assert_eq!(positive.bucket_counts[128], 1);
        assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 2);
        // 1024 = 2^10 at scale 7 is bucket 10·128 − 1 = 1279: −1 to 1279 is
        // 1281 buckets; three halvings leave −1 … 159 (161), four make
        // −1 … 79 (81 buckets), scale 3.
        h.record(1024.0);
        assert_eq!(h.scale, 3);
        let positive = h.positive();
        assert_eq!(positive.offset, -1);
        assert_eq!(positive.bucket_counts.len(), 81);
        assert_eq!(positive.bucket_counts[0], 1); // 1: bucket −1
        assert_eq!(positive.bucket_counts[8], 1); // 2: bucket 2^3 − 1 = 7
        assert_eq!(positive.bucket_counts[80], 1); // 1024: bucket 79
        h.record(0.0);
        assert_eq!(h.zero_count, 1);
    }

    /// Values within 160 buckets at scale 20 keep it; a value below the
    /// lowest bucket extends the buckets downwards.
    #[test]
    fn close_values_keep_the_finest_scale() {
        let mut h = Exponential::default();
        h.record(1.000_01);
        h.record(1.0);
        assert_eq!(h.scale, 20);
        let positive = h.positive();
        assert_eq!(positive.offset, -1);
        // ln(1.00001)·2^20/ln 2 = 15.13: bucket 15, 17 buckets from −1.
        assert_eq!(positive.bucket_counts.len(), 17);
        assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 2);
    }

    /// The smallest and the largest doubles, about 2^31 buckets apart at
    /// scale 20, fit in 160 buckets at scale −4, without the arithmetic
    /// overflowing on the way.
    #[test]
    fn extreme_values_fit() {
        let mut h = Exponential::default();
        h.record(f64::from_bits(1)); // the smallest subnormal, 2^-1074
        h.record(f64::MAX);
        let positive = h.positive();
        assert!(positive.bucket_counts.len() <= MAX_SIZE);
        assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 2);
        // 2^-1074 ends bucket −1075 at scale 0, f64::MAX is in bucket 1023:
        // 2099 buckets; at scale −4 (÷16) −68 … 63 is 132 buckets, at −3
        // −135 … 127 would be 263.
        assert_eq!(h.scale, -4);
        assert_eq!(positive.offset, -68);
    }

    /// Two points merged are the point of all their values: the same
    /// scale, offset and counts, whichever scale each part reached and
    /// whichever is merged into which, an empty part included.
    #[test]
    fn merged_parts_are_the_whole() {
        let parts: [&[f64]; 4] = [&[1.0, 1.5, 0.0], &[2.0, 1024.0, 3.0], &[1e-3, 7.0], &[]];
        for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 1), (1, 2), (3, 1), (0, 3)] {
            let mut whole = Exponential::default();
            for value in parts[a].iter().chain(parts[b]) {
                whole.record(*value);
            }
            let mut merged = Exponential::default();
            let mut other = Exponential::default();
            parts[a].iter().for_each(|v| merged.record(*v));
            parts[b].iter().for_each(|v| other.record(*v));
            merged.merge(&other);
            assert_eq!(merged, whole, "parts {a} and {b}");
        }
    }

    /// The reservoir keeps the first 20 offered, then at most 20; a
    /// collection starts the count again.
    #[test]
    fn reservoir_holds_at_most_twenty() {
        let mut r = Reservoir::new(42);
        for n in 0..20 {
            r.offer(n);
        }
        assert_eq!(r.collect(), (0..20).collect::<Vec<_>>());
        for n in 100..1100 {
            r.offer(n);
        }
        let kept = r.collect();
        assert_eq!(kept.len(), 20);
        // Right after a collection the first 20 offers fill the slots in
        // order.
        for n in 0..20 {
            r.offer(1000 + n);
        }
        assert_eq!(r.collect(), (1000..1020).collect::<Vec<_>>());
    }
}
