use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, metric, number_data_point,
};

use super::*;
use crate::telemetry::config::{ExemplarFilter, HistogramAggregation};

const TEST: Descriptor = Descriptor::of("test", "s", "a test instrument");

fn attrs(route: &'static str) -> Attributes {
    Attributes::new([(Cow::Borrowed("http.route"), Value::from(route))])
}

fn histogram_points(metric: Metric) -> Vec<HistogramDataPoint> {
    match metric.data {
        Some(metric::Data::Histogram(h)) => h.data_points,
        _ => panic!("not a histogram"),
    }
}

/// A value falls in the first bucket whose upper bound it does not
/// exceed (bounds are inclusive); a bucket keeps one sampled span of
/// those that fell in it as its exemplar; count, sum, min and max add
/// up.
#[test]
fn histogram_buckets_and_exemplars() {
    static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
    let h = Histogram::new(TEST.clone(), &BOUNDS, HistogramOptions::default());
    let span = |n: u8| SpanRef {
        trace_id: [n; 16],
        span_id: [n; 8],
        sampled: true,
    };
    h.record(0.1, attrs("/a"), Some(span(1)));
    h.record(0.5, attrs("/a"), Some(span(2)));
    h.record(0.7, attrs("/a"), Some(span(3)));
    h.record(100.0, attrs("/a"), None);
    h.record(f64::NAN, attrs("/a"), Some(span(9)));
    let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
    assert_eq!(points.len(), 1);
    let p = &points[0];
    assert_eq!(p.bucket_counts, vec![1, 2, 0, 1]);
    assert_eq!(p.count, 4);
    assert_eq!(p.sum, Some(101.3));
    assert_eq!((p.min, p.max), (Some(0.1), Some(100.0)));
    let exemplar_traces: Vec<Vec<u8>> = p.exemplars.iter().map(|e| e.trace_id.clone()).collect();
    assert_eq!(exemplar_traces.len(), 2);
    assert_eq!(exemplar_traces[0], vec![1; 16]);
    assert!(
        [vec![2; 16], vec![3; 16]].contains(&exemplar_traces[1]),
        "{exemplar_traces:?}"
    );
    // Cumulative keeps counting; delta starts again.
    h.record(0.5, attrs("/a"), None);
    let points = histogram_points(h.collect(Collect::Delta).unwrap());
    assert_eq!(points[0].count, 5);
    assert!(h.collect(Collect::Delta).is_none());
}

/// A bucket's exemplar is chosen uniformly among the measurements of
/// a collection cycle (not always the last): over 4,000 cycles of four
/// measurements each is kept about 1,000 times. A cycle with no
/// measurement in the bucket keeps the exemplar it had.
#[test]
fn exemplars_are_sampled_uniformly_each_cycle() {
    static BOUNDS: [f64; 1] = [1.0];
    let h = Histogram::new(TEST.clone(), &BOUNDS, HistogramOptions::default());
    let span = |n: u8| SpanRef {
        trace_id: [n; 16],
        span_id: [n; 8],
        sampled: true,
    };
    let mut kept = [0u32; 4];
    for _ in 0..4000 {
        for n in 0..4 {
            h.record(0.5, attrs("/a"), Some(span(n)));
        }
        let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
        let chosen = points[0].exemplars[0].trace_id[0];
        kept[usize::from(chosen)] += 1;
    }
    // Binomial(4000, 1/4): a standard deviation of 27.
    assert!(kept.iter().all(|n| (850..=1150).contains(n)), "{kept:?}");
    h.record(5.0, attrs("/a"), Some(span(9)));
    let points = histogram_points(h.collect(Collect::Cumulative).unwrap());
    assert_eq!(points[0].exemplars.len(), 2, "the first bucket's stays");
}

/// The exemplar filter: `always_off` keeps none, `trace_based` only
/// measurements in sampled spans, `always_on` every one, an unsampled
/// span's with its ids and one outside any span without.
#[test]
fn exemplar_filter() {
    static BOUNDS: [f64; 2] = [1.0, 2.0];
    let sampled = SpanRef {
        trace_id: [1; 16],
        span_id: [1; 8],
        sampled: true,
    };
    let unsampled = SpanRef {
        trace_id: [2; 16],
        span_id: [2; 8],
        sampled: false,
    };
    type Case = (ExemplarFilter, HistogramAggregation, &'static [u8]);
    use ExemplarFilter as F;
    use HistogramAggregation as A;
    // (filter, aggregation, first byte of each exemplar's trace id:
    // 0 for no trace)
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (F::AlwaysOff,  A::ExplicitBucket,   &[]),
        (F::TraceBased, A::ExplicitBucket,   &[1]),
        (F::AlwaysOn,   A::ExplicitBucket,   &[1, 2, 0]),
        (F::AlwaysOff,  A::Base2Exponential, &[]),
        (F::TraceBased, A::Base2Exponential, &[1]),
        (F::AlwaysOn,   A::Base2Exponential, &[1, 2, 0]),
    ];
    for &(filter, aggregation, expected) in cases {
        let h = Histogram::new(
            TEST.clone(),
            &BOUNDS,
            HistogramOptions {
                filter,
                aggregation,
            },
        );
        // One value per explicit bucket, so that none replaces another.
        h.record(0.5, attrs("/a"), Some(sampled));
        h.record(1.5, attrs("/a"), Some(unsampled));
        h.record(2.5, attrs("/a"), None);
        let metric = h.collect(Collect::Cumulative).unwrap();
        let exemplars = match metric.data {
            Some(metric::Data::Histogram(h)) => h.data_points[0].exemplars.clone(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points[0].exemplars.clone(),
            other => panic!("not a histogram: {other:?}"),
        };
        let traces: Vec<u8> = exemplars
            .iter()
            .map(|e| e.trace_id.first().copied().unwrap_or(0))
            .collect();
        assert_eq!(traces, expected, "{filter:?} {aggregation:?}");
    }
}

/// The exponential aggregation: count, sum, min and max as for explicit
/// buckets, zeros in the zero count, the rest in positive buckets that
/// add up to the count; delta starts again at the finest scale.
#[test]
fn exponential_histogram_points() {
    let options = HistogramOptions {
        filter: ExemplarFilter::TraceBased,
        aggregation: HistogramAggregation::Base2Exponential,
    };
    let h = Histogram::new(TEST.clone(), &[], options);
    for value in [0.0, 1.0, 2.0, 1024.0, -1.0, f64::NAN] {
        h.record(value, attrs("/a"), None);
    }
    let points = |metric: Metric| match metric.data {
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points,
        other => panic!("not an exponential histogram: {other:?}"),
    };
    let p = &points(h.collect(Collect::Delta).unwrap())[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (4, Some(1027.0), Some(0.0), Some(1024.0))
    );
    assert_eq!((p.scale, p.zero_count, p.zero_threshold), (3, 1, 0.0));
    let positive = p.positive.as_ref().unwrap();
    assert_eq!(positive.offset, -1);
    assert_eq!(positive.bucket_counts.iter().sum::<u64>(), 3);
    assert!(p.negative.is_none());
    h.record(1.0, attrs("/a"), None);
    let p = &points(h.collect(Collect::Delta).unwrap())[0];
    assert_eq!((p.count, p.scale), (1, 20));
}

/// Threads record into parts of their own; collection gives the
/// points of all of them, as one part would: counts, sums, buckets,
/// exemplars, a counter's total, and the cardinality limit over the
/// merged sets.
#[test]
fn parts_recorded_by_threads_merge() {
    let histogram = Histogram::new(TEST.clone(), &[1.0, 10.0], HistogramOptions::default());
    let sum = Sum::counter(TEST.clone());
    let threads = 2 * shard_count();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (histogram, sum) = (&histogram, &sum);
            scope.spawn(move || {
                let span = SpanRef {
                    trace_id: [thread as u8 + 1; 16],
                    span_id: [1; 8],
                    sampled: true,
                };
                for n in 0..100 {
                    histogram.record(0.5, attrs("/a"), Some(span));
                    histogram.record((n % 20) as f64, attrs("/b"), None);
                    // Sets of their own past the limit: 400 a thread.
                    let own = (thread * 1000 + n) as i64;
                    for k in 0..4 {
                        sum.add(
                            1,
                            Attributes::new([(Cow::Borrowed("n"), Value::Int(own * 4 + k))]),
                        );
                    }
                }
            });
        }
    });
    let points = histogram_points(histogram.collect(Collect::Cumulative).unwrap());
    assert_eq!(points.len(), 2);
    let route = |p: &HistogramDataPoint| p.attributes[0].value.clone().unwrap().value.unwrap();
    let a = points
        .iter()
        .find(|p| route(p) == any_value::Value::StringValue("/a".into()))
        .unwrap();
    let b = points
        .iter()
        .find(|p| route(p) == any_value::Value::StringValue("/b".into()))
        .unwrap();
    let n = threads as u64 * 100;
    assert_eq!(
        (a.count, a.sum, a.bucket_counts.clone()),
        (n, Some(0.5 * n as f64), vec![n, 0, 0])
    );
    assert_eq!(a.exemplars.len(), 1);
    assert!(
        a.exemplars[0]
            .trace_id
            .iter()
            .all(|b| *b >= 1 && usize::from(*b) <= threads)
    );
    // n % 20 for n in 0..100: 0 and 1 in (.., 1], 2 to 10 in (1, 10], 11 to 19 above.
    let each = threads as u64 * 5;
    assert_eq!(b.bucket_counts, vec![2 * each, 9 * each, 9 * each]);
    assert_eq!((b.min, b.max), (Some(0.0), Some(19.0)));
    assert!(b.exemplars.is_empty());

    let Some(metric::Data::Sum(data)) = sum.collect(Collect::Delta).unwrap().data else {
        panic!("not a sum");
    };
    assert_eq!(data.data_points.len(), CARDINALITY_LIMIT);
    let total: i64 = data
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(n)) => n,
            _ => panic!("not an int"),
        })
        .sum();
    assert_eq!(total, threads as i64 * 400);
    assert!(
        sum.collect(Collect::Delta).is_none(),
        "delta: taken from every part"
    );
}

/// Past the cardinality limit, new attribute sets land in the one
/// `otel.metric.overflow=true` point; known sets still count as theirs.
#[test]
fn cardinality_is_bounded_with_an_overflow_point() {
    let sum = Sum::counter(TEST.clone());
    for n in 0..3000 {
        let set = Attributes::new([(Cow::Borrowed("n"), Value::Int(n))]);
        sum.add(1, set);
    }
    sum.add(5, Attributes::new([(Cow::Borrowed("n"), Value::Int(0))]));
    let Some(metric::Data::Sum(data)) = sum.collect(Collect::Cumulative).unwrap().data else {
        panic!("not a sum");
    };
    assert_eq!(data.data_points.len(), CARDINALITY_LIMIT);
    let value = |p: &NumberDataPoint| match p.value {
        Some(number_data_point::Value::AsInt(n)) => n,
        _ => panic!("not an int"),
    };
    let overflow: Vec<&NumberDataPoint> = data
        .data_points
        .iter()
        .filter(|p| p.attributes.iter().any(|kv| kv.key == OVERFLOW))
        .collect();
    assert_eq!(overflow.len(), 1);
    assert_eq!(value(overflow[0]), 3000 - (CARDINALITY_LIMIT as i64 - 1));
    let total: i64 = data.data_points.iter().map(value).sum();
    assert_eq!(total, 3005);
}

/// A borrowed set finds the point its built set made, and the other
/// way round; a new one is kept as its own point, past the cardinality
/// limit in the overflow point.
#[test]
fn borrowed_sets_are_the_sets_they_stand_for() {
    let histogram = Histogram::new(TEST.clone(), &[1.0], HistogramOptions::default());
    let built = Attributes::new([
        (Cow::Borrowed("http.route"), Value::from("/orders")),
        (Cow::Borrowed("http.response.status_code"), Value::Int(201)),
    ]);
    let pairs = [
        ("http.response.status_code", ValueRef::Int(201)),
        ("http.route", ValueRef::Str("/orders")),
    ];
    histogram.record(0.5, built.clone(), None);
    histogram.record(0.5, Pairs(&pairs), None);
    let other = [("http.route", ValueRef::Str("/health"))];
    histogram.record(2.0, Pairs(&other), None);
    histogram.record(2.0, attrs("/health"), None);
    histogram.record(2.0, Pairs(&[]), None);
    let points = histogram_points(histogram.collect(Collect::Cumulative).unwrap());
    let count = |route: Option<&str>| {
        points
            .iter()
            .filter(|p| {
                p.attributes
                    .iter()
                    .find(|kv| kv.key == "http.route")
                    .map(|kv| {
                        kv.value.as_ref().and_then(|v| v.value.clone())
                            == Some(any_value::Value::StringValue(route.unwrap_or("").into()))
                    })
                    == Some(true)
                    || (route.is_none() && p.attributes.is_empty())
            })
            .map(|p| p.count)
            .collect::<Vec<_>>()
    };
    assert_eq!(points.len(), 3);
    assert_eq!(count(Some("/orders")), [2]);
    assert_eq!(count(Some("/health")), [2]);
    assert_eq!(count(None), [1]);

    let mut points = Points::<i64>::new();
    for n in 0..3000 {
        *points.entry(Pairs(&[("n", ValueRef::Int(n))]), || 0) += 1;
    }
    *points.entry_of(
        Attributes::new([(Cow::Borrowed("n"), Value::Int(0))]).into(),
        || 0,
    ) += 5;
    assert_eq!(points.sets.len(), CARDINALITY_LIMIT);
    assert_eq!(
        count_of(&mut points, Attributes::overflow()),
        [3000 - (CARDINALITY_LIMIT as i64 - 1)]
    );
    assert_eq!(
        count_of(
            &mut points,
            Attributes::new([(Cow::Borrowed("n"), Value::Int(0))])
        ),
        [6]
    );
}

/// A guest's borrowed set, made canonical (sorted, the last value of a
/// repeated key kept), finds the point of the set `Attributes::new`
/// builds from the same pairs, and the other way round; a different
/// value or key is another point.
#[test]
fn guest_sets_are_the_sets_they_stand_for() {
    let mut points = Points::<i64>::new();
    let built = Attributes::new([
        (Cow::Owned("outcome".into()), Value::from("paid")),
        (Cow::Owned("amount".into()), Value::Int(1)),
        (Cow::Owned("amount".into()), Value::Int(3)),
    ]);
    *points.entry(built.clone(), || 0) += 1;
    let mut pairs = [
        ("outcome", ValueRef::Str("paid")),
        ("amount", ValueRef::Int(1)),
        ("amount", ValueRef::Int(3)),
    ];
    let len = GuestPairs::canonical(&mut pairs);
    assert_eq!(len, 2);
    assert_eq!(
        pairs[..len],
        [
            ("amount", ValueRef::Int(3)),
            ("outcome", ValueRef::Str("paid"))
        ]
    );
    // Found last, then found by hash after another set came between.
    *points.entry(GuestPairs(&pairs[..len]), || 0) += 1;
    let other = [
        ("amount", ValueRef::Int(1)),
        ("outcome", ValueRef::Str("paid")),
    ];
    *points.entry(GuestPairs(&other), || 0) += 1;
    *points.entry(GuestPairs(&pairs[..len]), || 0) += 1;
    let renamed = [
        ("amounts", ValueRef::Int(3)),
        ("outcome", ValueRef::Str("paid")),
    ];
    *points.entry(GuestPairs(&renamed), || 0) += 1;
    assert_eq!(points.sets.len(), 3);
    assert_eq!(count_of(&mut points, built), [3]);
    assert_eq!(
        count_of(
            &mut points,
            Attributes::new([
                (Cow::Owned("amount".into()), Value::Int(1)),
                (Cow::Owned("outcome".into()), Value::from("paid")),
            ])
        ),
        [1]
    );
}

/// The counts of every point `points` keeps for `set`: one, unless the
/// set was kept twice.
fn count_of(points: &mut Points<i64>, set: Attributes) -> Vec<i64> {
    points
        .read(|n| *n)
        .into_iter()
        .filter(|(kept, _)| *kept == set)
        .map(|(_, n)| n)
        .collect()
}

/// A route and status set, its keys and value copied (not the same
/// pointers as the host's constants).
fn built(route: &str, status: Option<i64>) -> Attributes {
    let mut pairs = vec![(
        Cow::Owned("http.route".to_string()),
        Value::from(route.to_string()),
    )];
    if let Some(status) = status {
        pairs.push((
            Cow::Owned("http.response.status_code".to_string()),
            Value::Int(status),
        ));
    }
    Attributes::new(pairs)
}

/// Measurements alternating between sets, repeating one, or giving the
/// last one again built separately (owned or borrowed, keys copied or
/// the same constants), each count in its own set's one point: the
/// set found last is taken only when it is the measurement's, not for
/// a set with the same keys and another value, nor for one of its
/// pairs alone.
#[test]
fn the_set_found_last_is_only_taken_for_itself() {
    const STATUS: &str = "http.response.status_code";
    const ROUTE: &str = "http.route";
    let orders = [
        (STATUS, ValueRef::Int(201)),
        (ROUTE, ValueRef::Str("/orders")),
    ];
    let refused = [
        (STATUS, ValueRef::Int(500)),
        (ROUTE, ValueRef::Str("/orders")),
    ];
    let route = [(ROUTE, ValueRef::Str("/orders"))];
    let mut points = Points::<i64>::new();
    for _ in 0..100 {
        *points.entry(Pairs(&orders), || 0) += 1;
        *points.entry(Pairs(&orders), || 0) += 1;
        *points.entry(built("/orders", Some(201)), || 0) += 1;
        *points.entry(Pairs(&refused), || 0) += 10;
        *points.entry(Pairs(&route), || 0) += 100;
        *points.entry(built("/orders", None), || 0) += 100;
        *points.entry(Pairs(&[]), || 0) += 1000;
        *points.entry(Pairs(&orders), || 0) += 1;
    }
    assert_eq!(points.sets.len(), 3, "three sets, each kept once");
    assert_eq!(count_of(&mut points, built("/orders", Some(201))), [400]);
    assert_eq!(count_of(&mut points, built("/orders", Some(500))), [1000]);
    assert_eq!(count_of(&mut points, built("/orders", None)), [20_000]);
    assert_eq!(count_of(&mut points, Attributes::default()), [100_000]);
}

/// After a delta collection, a measurement of the set found last
/// before it lands in a new point that counts from zero, whichever
/// place the set takes now, and the next collection has each set's
/// count since the last one, no more, no less.
#[test]
fn a_delta_collection_forgets_the_set_found_last() {
    let counter = Sum::counter(TEST.clone());
    let value = |metric: Option<Metric>, route: &'static str| {
        let Some(metric::Data::Sum(data)) = metric.and_then(|m| m.data) else {
            panic!("not a sum");
        };
        let set = attrs(route).to_proto();
        let found: Vec<_> = data
            .data_points
            .iter()
            .filter(|p| p.attributes == set)
            .map(|p| p.value)
            .collect();
        (data.data_points.len(), found)
    };
    let int = |n| Some(number_data_point::Value::AsInt(n));
    counter.add(1, attrs("/a"));
    counter.add(2, attrs("/b"));
    counter.add(3, attrs("/b"));
    let taken = counter.collect(Collect::Delta);
    assert_eq!(value(taken, "/b"), (2, vec![int(5)]));
    // "/b" was found last, in the second place; it now takes the first.
    counter.add(7, attrs("/b"));
    counter.add(1, attrs("/a"));
    counter.add(7, attrs("/b"));
    let taken = counter.collect(Collect::Delta);
    assert_eq!(value(taken, "/b"), (2, vec![int(14)]));
    counter.add(4, attrs("/a"));
    let taken = counter.collect(Collect::Delta);
    assert_eq!(value(taken, "/a"), (1, vec![int(4)]));

    let histogram = Histogram::new(TEST.clone(), &[1.0], HistogramOptions::default());
    let route = [("http.route", ValueRef::Str("/a"))];
    histogram.record(0.5, Pairs(&route), None);
    histogram.collect(Collect::Delta);
    histogram.record(0.5, Pairs(&route), None);
    histogram.record(0.5, Pairs(&route), None);
    let points = histogram_points(histogram.collect(Collect::Delta).unwrap());
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 2);
}

/// Past the cardinality limit, with the overflow set found last: a new
/// set still goes to the overflow point (and is not kept), a known set
/// still to its own, and the overflow set given as such to the
/// overflow point; the limit holds.
#[test]
fn overflow_works_when_the_overflow_set_was_found_last() {
    let n = |n: i64| Attributes::new([(Cow::Borrowed("n"), Value::Int(n))]);
    let mut points = Points::<i64>::new();
    *points.entry(Attributes::default(), || 0) += 1;
    for k in 0..CARDINALITY_LIMIT as i64 - 2 {
        *points.entry(n(k), || 0) += 1;
    }
    let overflow = [(OVERFLOW, ValueRef::Bool(true))];
    *points.entry(n(5000), || 0) += 1;
    *points.entry(n(5000), || 0) += 1;
    *points.entry(n(3), || 0) += 1;
    *points.entry(Pairs(&[("n", ValueRef::Int(6000))]), || 0) += 1;
    *points.entry(Pairs(&overflow), || 0) += 10;
    *points.entry(Attributes::overflow(), || 0) += 10;
    *points.entry(n(7000), || 0) += 1;
    *points.entry(n(3), || 0) += 1;
    assert_eq!(points.sets.len() + 1, CARDINALITY_LIMIT);
    assert_eq!(count_of(&mut points, Attributes::overflow()), [24]);
    assert_eq!(count_of(&mut points, n(3)), [3]);
    assert_eq!(count_of(&mut points, n(5000)), [0; 0]);
    assert_eq!(count_of(&mut points, Attributes::default()), [1]);
}

/// The same pairs in another order are the same set; a key repeated
/// keeps its last value.
#[test]
fn attribute_sets_are_order_free() {
    let a = Attributes::new([
        (Cow::Borrowed("b"), Value::Int(1)),
        (Cow::Borrowed("a"), Value::Int(2)),
        (Cow::Borrowed("a"), Value::Int(3)),
    ]);
    let b = Attributes::new([
        (Cow::Borrowed("a"), Value::Int(3)),
        (Cow::Borrowed("b"), Value::Int(1)),
    ]);
    assert_eq!(a, b);
    assert_eq!(a.get("a"), Some(&Value::Int(3)));
}

/// Levels added and taken back by more threads than there are parts,
/// past the first sixteen sets, read as their sums: what every thread
/// still holds, and nothing for a set whose holders all let go.
#[test]
fn levels_in_parts_are_summed() {
    let sets: Vec<Attributes> = (0..20)
        .map(|n| Attributes::new([(Cow::Borrowed("http.route"), Value::from(format!("/{n}")))]))
        .collect();
    let levels = Levels::new(TEST.clone(), sets.clone());
    let threads = 2 * shard_count() + 1;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..100 {
                    levels.add(17, 1);
                    levels.add(3, 1);
                    levels.add(3, -1);
                }
                levels.add(17, -99);
            });
        }
    });
    let Some(metric::Data::Sum(data)) = levels.collect().unwrap().data else {
        panic!("not a sum");
    };
    let value = |set: &Attributes| {
        data.data_points
            .iter()
            .find(|point| point.attributes == set.to_proto())
            .and_then(|point| point.value)
    };
    assert_eq!(data.data_points.len(), 2, "only the sets that changed");
    assert_eq!(
        value(&sets[17]),
        Some(number_data_point::Value::AsInt(threads as i64))
    );
    assert_eq!(value(&sets[3]), Some(number_data_point::Value::AsInt(0)));
}

/// A counter ignores negative additions; levels stay cumulative and
/// export only the sets that changed.
#[test]
fn sums() {
    let counter = Sum::counter(TEST.clone());
    counter.add(-1, Attributes::default());
    assert!(counter.collect(Collect::Cumulative).is_none());
    let levels = Levels::new(TEST.clone(), vec![attrs("/a"), attrs("/b")]);
    assert!(levels.collect().is_none());
    levels.add(1, 2);
    levels.add(1, -1);
    levels.add(7, 1);
    let Some(metric::Data::Sum(data)) = levels.collect().unwrap().data else {
        panic!("not a sum");
    };
    assert_eq!(data.data_points.len(), 1);
    assert_eq!(data.data_points[0].attributes, attrs("/b").to_proto());
    assert_eq!(
        data.data_points[0].value,
        Some(number_data_point::Value::AsInt(1))
    );
    assert_eq!(
        data.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert!(!data.is_monotonic);
}

/// Texts are the same exactly when their bytes are, whatever their length
/// and wherever they differ; a text is the same as itself by address.
#[test]
fn same_text_compares_every_byte() {
    for len in 0..40 {
        let a: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let b = a.clone();
        assert!(same_text(&a, &b), "{a:?}");
        assert!(same_text(&a, &a));
        for at in 0..len {
            let mut c = a.clone().into_bytes();
            c[at] = b'Z';
            let c = String::from_utf8(c).unwrap();
            assert!(!same_text(&a, &c), "{a:?} and {c:?}");
        }
        assert!(!same_text(&a, &format!("{a}a")));
    }
}
