//! The measurements made while requests are served, written down as they
//! are made and aggregated later, in batches.
//!
//! Aggregating a measurement at once finds the instrument's part, locks
//! it, looks the point up by its set and updates the buckets and the
//! exemplar: code and data that a guest's instance and the runtime, run
//! since the last request, have pushed out of the caches. So a request
//! only appends each measurement's values to its thread's part of the
//! journal, after the last one; when a part holds [`DRAIN_AT`] bytes, the
//! thread that filled it aggregates them all, one after another, with the
//! code and the points warm after the first. Collection first aggregates
//! what every part holds, so a measurement is in the first collection
//! after it was made, as it would be if aggregated at once, and in no
//! other. What it trades (fewer cache misses for instructions, more
//! instructions): `bench/signals-cost --cache`, in docs/metrics-logs.md.

use std::sync::Mutex;

use super::aggregate::{SpanRef, ValueRef, shard_count, shard_of};
use super::business::{Kind, Measurement};

/// Bytes a part holds before the thread that filled it aggregates them:
/// about twenty orders' measurements.
pub const DRAIN_AT: usize = 16 * 1024;

/// Attributes of one measurement, at most (what a guest may pass; the
/// host's own sets have fewer).
pub const MAX_PAIRS: usize = 16;

/// When and in which span a measurement was made: its exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Made {
    /// Nanoseconds since the Unix epoch.
    pub time: u64,
    pub span: Option<SpanRef>,
}

/// One measurement, as the request path makes it and aggregation reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `http.server.active_requests`: `delta` to the level of the set at
    /// `set`.
    Active { set: u8, delta: i8 },
    /// `http.server.request.duration`, or with `client`
    /// `http.client.request.duration`, keyed by `pairs`, each key named by
    /// its place in `instruments::DURATION_KEYS`.
    Duration {
        client: bool,
        seconds: f64,
        pairs: &'a [(u8, ValueRef<'a>)],
        made: Made,
    },
    /// What the sandbox cost a request: instantiation (when it happened)
    /// and the instance's peak linear memory.
    Sandbox {
        instantiated: Option<f64>,
        peak_bytes: f64,
        made: Made,
    },
    /// A guest's measurement through `wasm-otel:host/metrics`.
    Guest {
        measurement: Measurement<'a>,
        pairs: &'a [(&'a str, ValueRef<'a>)],
        made: Made,
    },
}

const ACTIVE: u8 = 0;
const SERVER: u8 = 1;
const CLIENT: u8 = 2;
const SANDBOX: u8 = 3;
const COUNTER: u8 = 4;
const HISTOGRAM: u8 = 5;

const STR: u8 = 0;
const INT: u8 = 1;
const BOOL: u8 = 2;

impl Entry<'_> {
    /// Appends the entry to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Entry::Active { set, delta } => {
                out.extend_from_slice(&[ACTIVE, *set, delta.to_le_bytes()[0]]);
            }
            Entry::Duration {
                client,
                seconds,
                pairs,
                made,
            } => {
                out.push(if *client { CLIENT } else { SERVER });
                out.extend_from_slice(&seconds.to_le_bytes());
                write_made(out, made);
                let pairs = &pairs[..pairs.len().min(MAX_PAIRS)];
                out.push(pairs.len() as u8);
                for (key, value) in pairs {
                    out.push(*key);
                    write_value(out, value);
                }
            }
            Entry::Sandbox {
                instantiated,
                peak_bytes,
                made,
            } => {
                out.push(SANDBOX);
                // A negative instantiation time stands for none.
                out.extend_from_slice(&instantiated.unwrap_or(-1.0).to_le_bytes());
                out.extend_from_slice(&peak_bytes.to_le_bytes());
                write_made(out, made);
            }
            Entry::Guest {
                measurement,
                pairs,
                made,
            } => {
                out.push(match measurement.kind {
                    Kind::Counter => COUNTER,
                    Kind::Histogram => HISTOGRAM,
                });
                out.extend_from_slice(&measurement.value.to_le_bytes());
                write_made(out, made);
                let Measurement {
                    name,
                    unit,
                    description,
                    ..
                } = measurement;
                for text in [name, unit, description] {
                    write_str(out, text);
                }
                let pairs = &pairs[..pairs.len().min(MAX_PAIRS)];
                out.push(pairs.len() as u8);
                for (key, value) in pairs {
                    write_str(out, key);
                    write_value(out, value);
                }
            }
        }
    }
}

fn write_made(out: &mut Vec<u8>, made: &Made) {
    out.extend_from_slice(&made.time.to_le_bytes());
    match made.span {
        None => out.push(0),
        Some(span) => {
            out.push(1 + u8::from(span.sampled));
            out.extend_from_slice(&span.trace_id);
            out.extend_from_slice(&span.span_id);
        }
    }
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &ValueRef<'_>) {
    match value {
        ValueRef::Str(text) => {
            out.push(STR);
            write_str(out, text);
        }
        ValueRef::Int(n) => {
            out.push(INT);
            out.extend_from_slice(&n.to_le_bytes());
        }
        ValueRef::Bool(b) => out.extend_from_slice(&[BOOL, u8::from(*b)]),
    }
}

/// Where the pairs of the entry being read are put.
struct Room<'a> {
    host: [(u8, ValueRef<'a>); MAX_PAIRS],
    guest: [(&'a str, ValueRef<'a>); MAX_PAIRS],
}

/// Reads entries back from the bytes [`Entry::write`] wrote.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_bits(self.u64()?))
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        std::str::from_utf8(self.take(len as usize)?).ok()
    }

    fn value(&mut self) -> Option<ValueRef<'a>> {
        Some(match self.u8()? {
            STR => ValueRef::Str(self.str()?),
            INT => ValueRef::Int(self.u64()? as i64),
            BOOL => ValueRef::Bool(self.u8()? != 0),
            _ => return None,
        })
    }

    fn made(&mut self) -> Option<Made> {
        let time = self.u64()?;
        let span = match self.u8()? {
            0 => None,
            flag => Some(SpanRef {
                trace_id: self.take(16)?.try_into().ok()?,
                span_id: self.take(8)?.try_into().ok()?,
                sampled: flag == 2,
            }),
        };
        Some(Made { time, span })
    }

    /// The next entry, its pairs put in `room`; `None` at the end.
    fn entry<'r>(&mut self, room: &'r mut Room<'a>) -> Option<Entry<'r>>
    where
        'a: 'r,
    {
        let tag = self.u8()?;
        Some(match tag {
            ACTIVE => {
                let set = self.u8()?;
                let delta = i8::from_le_bytes([self.u8()?]);
                Entry::Active { set, delta }
            }
            SERVER | CLIENT => {
                let seconds = self.f64()?;
                let made = self.made()?;
                let len = usize::from(self.u8()?).min(MAX_PAIRS);
                for pair in &mut room.host[..len] {
                    *pair = (self.u8()?, self.value()?);
                }
                Entry::Duration {
                    client: tag == CLIENT,
                    seconds,
                    pairs: &room.host[..len],
                    made,
                }
            }
            SANDBOX => {
                let instantiated = self.f64()?;
                Entry::Sandbox {
                    instantiated: (instantiated >= 0.0).then_some(instantiated),
                    peak_bytes: self.f64()?,
                    made: self.made()?,
                }
            }
            COUNTER | HISTOGRAM => {
                let value = self.f64()?;
                let made = self.made()?;
                let (name, unit, description) = (self.str()?, self.str()?, self.str()?);
                let len = usize::from(self.u8()?).min(MAX_PAIRS);
                for pair in &mut room.guest[..len] {
                    *pair = (self.str()?, self.value()?);
                }
                Entry::Guest {
                    measurement: Measurement {
                        kind: if tag == COUNTER {
                            Kind::Counter
                        } else {
                            Kind::Histogram
                        },
                        name,
                        unit,
                        description,
                        value,
                    },
                    pairs: &room.guest[..len],
                    made,
                }
            }
            _ => return None,
        })
    }
}

/// Measurements not yet aggregated, in parts, one for each of a few
/// threads (as an instrument's points are: see `aggregate::shard_of`).
#[derive(Debug)]
pub struct Journal {
    parts: Box<[Part]>,
}

/// One part, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Part(Mutex<Vec<u8>>);

impl Default for Journal {
    fn default() -> Self {
        Journal {
            parts: (0..shard_count()).map(|_| Part::default()).collect(),
        }
    }
}

impl Journal {
    /// Writes `entry` in this thread's part; when the part is full,
    /// aggregates what it holds with `apply`.
    pub fn write(&self, entry: &Entry<'_>, apply: &dyn Fn(Entry<'_>)) {
        let part = &self.parts[shard_of(self.parts.len())];
        let Ok(mut bytes) = part.0.lock() else {
            return;
        };
        entry.write(&mut bytes);
        if bytes.len() >= DRAIN_AT {
            drain(&mut bytes, apply);
        }
    }

    /// Aggregates, with `apply`, what every part holds.
    pub fn drain(&self, apply: &dyn Fn(Entry<'_>)) {
        for part in &self.parts {
            if let Ok(mut bytes) = part.0.lock() {
                drain(&mut bytes, apply);
            }
        }
    }
}

/// Applies each entry `bytes` holds, in the order written, and empties it.
#[cold]
fn drain(bytes: &mut Vec<u8>, apply: &dyn Fn(Entry<'_>)) {
    let mut reader = Reader {
        bytes: bytes.as_slice(),
    };
    let mut room = Room {
        host: [(0, ValueRef::Bool(false)); MAX_PAIRS],
        guest: [("", ValueRef::Bool(false)); MAX_PAIRS],
    };
    while let Some(entry) = reader.entry(&mut room) {
        apply(entry);
    }
    debug_assert!(reader.bytes.is_empty(), "a journal entry did not read back");
    bytes.clear();
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn made(time: u64, sampled: Option<bool>) -> Made {
        Made {
            time,
            span: sampled.map(|sampled| SpanRef {
                trace_id: [7; 16],
                span_id: [9; 8],
                sampled,
            }),
        }
    }

    /// Every entry [`Reader`] reads back, as the entries it owns.
    fn read_all(bytes: &[u8]) -> Vec<String> {
        let mut reader = Reader { bytes };
        let mut room = Room {
            host: [(0, ValueRef::Bool(false)); MAX_PAIRS],
            guest: [("", ValueRef::Bool(false)); MAX_PAIRS],
        };
        let mut read = Vec::new();
        while let Some(entry) = reader.entry(&mut room) {
            read.push(format!("{entry:?}"));
        }
        assert!(reader.bytes.is_empty(), "bytes left over");
        read
    }

    /// Each kind of entry, with and without a span, strings of several
    /// bytes a character, every kind of value and the most pairs, reads
    /// back as it was written.
    #[test]
    fn every_entry_reads_back_as_written() {
        let host = [
            (1, ValueRef::Str("POST")),
            (2, ValueRef::Int(-201)),
            (3, ValueRef::Str("/orders/ü")),
            (7, ValueRef::Int(i64::MAX)),
        ];
        let keys: Vec<String> = (0..MAX_PAIRS).map(|n| format!("k{n}é")).collect();
        let guest: Vec<(&str, ValueRef)> = keys
            .iter()
            .enumerate()
            .map(|(n, key)| {
                let value = match n % 3 {
                    0 => ValueRef::Str("värde"),
                    1 => ValueRef::Int(n as i64 - 8),
                    _ => ValueRef::Bool(n % 2 == 0),
                };
                (key.as_str(), value)
            })
            .collect();
        let entries = [
            Entry::Active { set: 19, delta: -1 },
            Entry::Active { set: 0, delta: 1 },
            Entry::Duration {
                client: false,
                seconds: 0.001_25,
                pairs: &host,
                made: made(1, Some(true)),
            },
            Entry::Duration {
                client: true,
                seconds: 3.5,
                pairs: &[],
                made: made(u64::MAX, None),
            },
            Entry::Sandbox {
                instantiated: Some(0.000_04),
                peak_bytes: 1_114_112.0,
                made: made(2, Some(false)),
            },
            Entry::Sandbox {
                instantiated: None,
                peak_bytes: 0.0,
                made: made(3, None),
            },
            Entry::Guest {
                measurement: Measurement {
                    kind: Kind::Counter,
                    name: "orders",
                    unit: "{order}",
                    description: "Orders, by outcome: bekräftad",
                    value: 1.0,
                },
                pairs: &guest,
                made: made(4, Some(true)),
            },
            Entry::Guest {
                measurement: Measurement {
                    kind: Kind::Histogram,
                    name: "order.amount",
                    unit: "",
                    description: "",
                    value: f64::MAX,
                },
                pairs: &[],
                made: made(5, None),
            },
        ];
        let mut bytes = Vec::new();
        for entry in &entries {
            entry.write(&mut bytes);
        }
        let written: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(read_all(&bytes), written);
    }

    /// A thread's part is aggregated by the thread that fills it past
    /// [`DRAIN_AT`], and what remains by `drain`: from four threads, every
    /// entry once, each thread's in the order it wrote them.
    #[test]
    fn every_entry_is_applied_once_in_order() {
        const PER_THREAD: u64 = 2000;
        let journal = Journal::default();
        let applied = Mutex::new(Vec::new());
        let apply = |entry: Entry<'_>| {
            let Entry::Sandbox { made, .. } = entry else {
                panic!("not written: {entry:?}");
            };
            applied.lock().unwrap().push(made.time);
        };
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (journal, apply) = (&journal, &apply);
                scope.spawn(move || {
                    for n in 0..PER_THREAD {
                        let entry = Entry::Sandbox {
                            instantiated: None,
                            peak_bytes: 0.0,
                            made: made(thread * PER_THREAD + n, Some(true)),
                        };
                        journal.write(&entry, apply);
                    }
                });
            }
        });
        // Each part was filled past DRAIN_AT several times, and holds
        // fewer entries than fill it.
        let mut one = Vec::new();
        let entry = Entry::Sandbox {
            instantiated: None,
            peak_bytes: 0.0,
            made: made(0, Some(true)),
        };
        entry.write(&mut one);
        let waiting = (DRAIN_AT / one.len()) as u64;
        let before = applied.lock().unwrap().len() as u64;
        assert!(before >= 4 * (PER_THREAD - waiting), "{before} applied");
        assert!(before < 4 * PER_THREAD, "nothing waits");
        journal.drain(&apply);
        let applied = applied.into_inner().unwrap();
        for thread in 0..4 {
            let own: Vec<u64> = applied
                .iter()
                .copied()
                .filter(|time| time / PER_THREAD == thread)
                .collect();
            let expected: Vec<u64> = (thread * PER_THREAD..(thread + 1) * PER_THREAD).collect();
            assert_eq!(own, expected, "thread {thread}");
        }
        journal.drain(&|entry| panic!("applied twice: {entry:?}"));
    }
}
