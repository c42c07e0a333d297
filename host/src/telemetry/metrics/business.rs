//! The instruments a guest records through `wasm-otel:host/metrics`: a
//! counter or a histogram by name, created on first use, each under the
//! guest's own scope. Bounded like the host's: at most
//! [`MAX_INSTRUMENTS`] names per service (a measurement under a new name
//! past that is dropped and counted), and [`super::CARDINALITY_LIMIT`]
//! attribute sets per instrument.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::ScopeMetrics;

use super::aggregate::{
    Attributes, Collect, Descriptor, Histogram, HistogramOptions, Key, SpanRef, Sum, same_text,
};

/// Instrument names one service's guests may create.
pub const MAX_INSTRUMENTS: usize = 64;
/// The longest instrument name the API allows (the specification's 255).
pub const MAX_NAME: usize = 255;
/// Attributes one guest measurement keeps, at most (the rest are
/// dropped): a metric's attributes are its dimensions, and a few are
/// plenty.
pub const MAX_ATTRIBUTES: usize = 16;
/// The scope of the guests' instruments.
pub const GUEST_SCOPE: &str = "wasm-otel-guest";
/// The SDK's default explicit bucket boundaries, for guest histograms.
pub const DEFAULT_BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// One guest instrument.
#[derive(Debug)]
enum Instrument {
    Counter(Sum),
    Histogram(Histogram),
}

/// What a guest asks to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic sum of whole numbers.
    Counter,
    /// An explicit-bucket histogram.
    Histogram,
}

/// Why a guest's measurement was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The name is empty, too long or not of the API's characters.
    BadName,
    /// The name is already an instrument of the other kind.
    KindMismatch,
    /// The service has [`MAX_INSTRUMENTS`] already.
    TooManyInstruments,
    /// The value is not a finite, non-negative number (or, for a counter,
    /// not whole).
    BadValue,
}

/// A service's guest instruments.
#[derive(Debug)]
pub struct Business {
    /// The instruments by name, in the order they were made (the first
    /// empty slot ends them); never removed, so that a measurement finds
    /// its instrument with no lock (nor any write to memory another
    /// thread reads).
    instruments: Box<[OnceLock<(String, Instrument)>]>,
    /// Held while an instrument is made.
    making: Mutex<()>,
    /// Measurements refused: `wasm.guest.measurements.refused`.
    refused: Sum,
    /// How the guests' histograms aggregate, as the host's do.
    histograms: HistogramOptions,
}

impl Business {
    /// No instruments yet; histograms made per `histograms`.
    pub fn new(histograms: HistogramOptions) -> Self {
        Business {
            instruments: (0..MAX_INSTRUMENTS).map(|_| OnceLock::new()).collect(),
            making: Mutex::new(()),
            histograms,
            refused: Sum::counter(Descriptor::of(
                crate::telemetry::semconv::WASM_GUEST_MEASUREMENTS_REFUSED,
                "{measurement}",
                "Guest measurements not recorded: a bad name or value, or too many instruments.",
            )),
        }
    }
}

/// Whether `name` is an instrument name the API accepts: a letter first,
/// then letters, digits, `_ . - /`, at most [`MAX_NAME`].
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

/// A guest's measurement, as its WIT call passes it: `value`, for the
/// instrument `name` of `kind`, made with `unit` and `description` on
/// first use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement<'a> {
    pub kind: Kind,
    pub name: &'a str,
    pub unit: &'a str,
    pub description: &'a str,
    pub value: f64,
}

/// A guest instrument, found or made: its place among the service's.
/// What the journal keeps of a measurement in place of the name, unit and
/// description it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentId(u8);

// Every place fits in an `InstrumentId`.
const _: () = assert!(MAX_INSTRUMENTS <= 1 << u8::BITS);

#[cfg(test)]
impl InstrumentId {
    /// The instrument at `at`, made or not.
    pub fn at(at: u8) -> Self {
        InstrumentId(at)
    }
}

impl Business {
    /// Records `measurement` with `attributes`, in `span` (a histogram's
    /// exemplar).
    #[cfg(test)]
    pub fn record<'a>(
        &self,
        measurement: Measurement<'_>,
        attributes: impl Into<Key<'a>>,
        span: Option<SpanRef>,
    ) -> Result<(), Refused> {
        let id = self.resolve(&measurement)?;
        let time = super::aggregate::now_nanos();
        self.record_at(id, measurement.value, attributes.into(), span, time);
        Ok(())
    }

    /// The instrument `measurement` is for, made on first use, if its
    /// value is one the instrument takes; a refusal is counted.
    pub fn resolve(&self, measurement: &Measurement<'_>) -> Result<InstrumentId, Refused> {
        let outcome = self.try_resolve(measurement);
        if outcome.is_err() {
            self.count_refused();
        }
        outcome
    }

    #[cold]
    #[inline(never)]
    fn count_refused(&self) {
        self.refused.add(1, Attributes::default());
    }

    fn try_resolve(&self, measurement: &Measurement<'_>) -> Result<InstrumentId, Refused> {
        let Measurement { kind, value, .. } = *measurement;
        if !value.is_finite() || value < 0.0 || (kind == Kind::Counter && value.fract() != 0.0) {
            return Err(Refused::BadValue);
        }
        let at = self.instrument(measurement)?;
        Ok(InstrumentId(at as u8))
    }

    /// Records `value`, which [`Business::resolve`] accepted for
    /// `instrument`, with `attributes`, made in `span` at `time` (an
    /// exemplar's).
    pub fn record_at(
        &self,
        instrument: InstrumentId,
        value: f64,
        attributes: Key<'_>,
        span: Option<SpanRef>,
        time: u64,
    ) {
        match self.instruments[usize::from(instrument.0)].get() {
            Some((_, Instrument::Counter(sum))) => sum.add(value as i64, attributes),
            Some((_, Instrument::Histogram(histogram))) => {
                histogram.record_at(value, attributes, span, time);
            }
            None => debug_assert!(false, "instrument {instrument:?} not made"),
        }
    }

    /// The place of the instrument `measurement` names, of its kind, made
    /// with its unit and description if it is new.
    fn instrument(&self, measurement: &Measurement<'_>) -> Result<usize, Refused> {
        // Looked up before the name is checked: only valid names are kept.
        match self.find(measurement.name) {
            Some(found) => self.of_kind(found, measurement.kind),
            None => self.make(measurement),
        }
    }

    /// [`Business::instrument`] for a name not found: made once, on the
    /// first measurement, so kept out of the way of the code that runs
    /// for every one.
    #[cold]
    #[inline(never)]
    fn make(&self, measurement: &Measurement<'_>) -> Result<usize, Refused> {
        let Measurement {
            kind,
            name,
            unit,
            description,
            ..
        } = *measurement;
        if !valid_name(name) {
            return Err(Refused::BadName);
        }
        let _making = self
            .making
            .lock()
            .map_err(|_| Refused::TooManyInstruments)?;
        // Another thread may have made it meanwhile.
        if let Some(found) = self.find(name) {
            return self.of_kind(found, kind);
        }
        let at = self
            .instruments
            .iter()
            .position(|slot| slot.get().is_none())
            .ok_or(Refused::TooManyInstruments)?;
        let descriptor = Descriptor {
            name: Cow::Owned(name.to_string()),
            unit: Cow::Owned(unit.chars().take(63).collect()),
            description: Cow::Owned(description.chars().take(1023).collect()),
        };
        let instrument = match kind {
            Kind::Counter => Instrument::Counter(Sum::counter(descriptor)),
            Kind::Histogram => {
                Instrument::Histogram(Histogram::new(descriptor, &DEFAULT_BOUNDS, self.histograms))
            }
        };
        let _ = self.instruments[at].set((name.to_string(), instrument));
        Ok(at)
    }

    /// `at`, if the instrument there is of `kind`.
    fn of_kind(&self, at: usize, kind: Kind) -> Result<usize, Refused> {
        match (&self.instruments[at].get(), kind) {
            (Some((_, Instrument::Counter(_))), Kind::Counter)
            | (Some((_, Instrument::Histogram(_))), Kind::Histogram) => Ok(at),
            _ => Err(Refused::KindMismatch),
        }
    }

    /// The instruments made so far, in order.
    fn made(&self) -> impl Iterator<Item = &(String, Instrument)> {
        self.instruments.iter().map_while(OnceLock::get)
    }

    /// The place of the instrument named `name`, if it is made.
    fn find(&self, name: &str) -> Option<usize> {
        self.made().position(|(own, _)| same_text(own, name))
    }

    /// Measurements refused so far, as the host's own metric.
    pub fn refused(
        &self,
        collect: Collect,
    ) -> Option<opentelemetry_proto::tonic::metrics::v1::Metric> {
        self.refused.collect(collect)
    }

    /// The guest scope's metrics; `None` while the guests recorded nothing.
    pub fn collect(&self, collect: Collect) -> Option<ScopeMetrics> {
        let metrics: Vec<_> = self
            .made()
            .filter_map(|(_, instrument)| match instrument {
                Instrument::Counter(sum) => sum.collect(collect),
                Instrument::Histogram(histogram) => histogram.collect(collect),
            })
            .collect();
        (!metrics.is_empty()).then(|| ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: GUEST_SCOPE.to_string(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` for the instrument `name` of `kind`, with no unit or
    /// description.
    fn measured(kind: Kind, name: &str, value: f64) -> Measurement<'_> {
        Measurement {
            kind,
            name,
            unit: "",
            description: "",
            value,
        }
    }

    /// Names are checked, kinds cannot change, values must be finite and
    /// non-negative (whole for a counter), and the number of instruments
    /// is bounded; every refusal is counted.
    #[test]
    fn guest_instruments_are_bounded_and_checked() {
        let b = Business::new(HistogramOptions::default());
        let none = Attributes::default;
        let record = |kind, name: &str, value| b.record(measured(kind, name, value), none(), None);
        assert_eq!(record(Kind::Counter, "orders", 1.0), Ok(()));
        assert_eq!(
            record(Kind::Histogram, "orders", 1.0),
            Err(Refused::KindMismatch)
        );
        assert_eq!(record(Kind::Counter, "9lives", 1.0), Err(Refused::BadName));
        assert_eq!(record(Kind::Counter, "a b", 1.0), Err(Refused::BadName));
        assert_eq!(record(Kind::Counter, "orders", 0.5), Err(Refused::BadValue));
        assert_eq!(
            record(Kind::Histogram, "amount", f64::NAN),
            Err(Refused::BadValue)
        );
        assert_eq!(
            record(Kind::Histogram, "amount", -1.0),
            Err(Refused::BadValue)
        );
        for n in 1..MAX_INSTRUMENTS {
            assert_eq!(record(Kind::Counter, &format!("c{n}"), 1.0), Ok(()));
        }
        assert_eq!(
            record(Kind::Counter, "one.too.many", 1.0),
            Err(Refused::TooManyInstruments)
        );
        let refused = b.refused(Collect::Cumulative).unwrap();
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) = refused.data
        else {
            panic!("not a sum");
        };
        assert_eq!(
            sum.data_points[0].value,
            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(7))
        );
        let scope = b.collect(Collect::Cumulative).unwrap();
        assert_eq!(scope.metrics.len(), MAX_INSTRUMENTS);
    }

    /// Threads that name the same instruments at once share one of each,
    /// and every measurement lands in it; names past the limit are refused
    /// however the threads race for the last places.
    #[test]
    fn instruments_made_at_once_are_made_once() {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;

        let b = Business::new(HistogramOptions::default());
        let threads = 8;
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let b = &b;
                scope.spawn(move || {
                    for n in 0..MAX_INSTRUMENTS {
                        let _ = b.record(
                            measured(Kind::Counter, &format!("shared{n}"), 1.0),
                            Attributes::default(),
                            None,
                        );
                    }
                    let own = b.record(
                        measured(Kind::Counter, &format!("own{thread}"), 1.0),
                        Attributes::default(),
                        None,
                    );
                    assert_eq!(own, Err(Refused::TooManyInstruments));
                });
            }
        });
        let scope = b.collect(Collect::Cumulative).unwrap();
        assert_eq!(scope.metrics.len(), MAX_INSTRUMENTS);
        for (n, metric) in scope.metrics.iter().enumerate() {
            assert_eq!(metric.name, format!("shared{n}"));
            let Some(Data::Sum(sum)) = &metric.data else {
                panic!("not a sum");
            };
            assert_eq!(sum.data_points[0].value, Some(Number::AsInt(threads)));
        }
    }
}
