//! The measurements made while requests are served, written down as they
//! are made and aggregated later, in batches.
//!
//! Aggregating a measurement at once finds the instrument's part, locks
//! it, looks the point up by its set and updates the buckets and the
//! exemplar: code and data that a guest's instance and the runtime, run
//! since the last request, have pushed out of the caches. So a request
//! only appends each measurement to its thread's part of the journal, as
//! it is (its strings copied), after the last one; when a part holds
//! [`DRAIN_AT`] entries (or [`DRAIN_TEXT_AT`] bytes of their strings),
//! the thread that filled it aggregates them all, one after another, with
//! the code and the points warm after the first.
//! Collection first aggregates what every part holds, so a measurement is
//! in the first collection after it was made, as it would be if
//! aggregated at once, and in no other. What it costs and saves:
//! `bench/signals-cost --cache`, in docs/metrics-logs.md.

use std::sync::Mutex;

use super::aggregate::{SpanRef, ValueRef, shard_count, shard_of};
use super::business::{InstrumentId, MAX_ATTRIBUTES};

/// Entries a part holds before the thread that filled it aggregates them:
/// about 27 orders' measurements (six entries an order).
const DRAIN_AT: usize = 160;

/// Bytes of strings a part holds before it is aggregated, whatever the
/// count: a guest's attribute keys and values may be long (up to 16 pairs
/// of a 255-byte key and a 256-character value). An order's take about
/// 120 bytes (the guests' three sets about 70 of it), so 160 entries
/// about 3 KiB.
const DRAIN_TEXT_AT: usize = 16 * 1024;

/// Attributes of one measurement, at most: what a guest's keeps (the
/// host's own sets have fewer).
const MAX_PAIRS: usize = MAX_ATTRIBUTES;

/// When and in which span a measurement was made: its exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Made {
    /// Nanoseconds since the Unix epoch.
    pub time: u64,
    pub span: Option<SpanRef>,
}

/// What the sandbox cost a request: the time to instantiate (when it
/// did), in seconds, and the instance's peak linear memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sandbox {
    pub instantiated: Option<f64>,
    pub peak_bytes: f64,
}

impl Sandbox {
    /// What a sandbox that took `instantiated` to instantiate (when it
    /// did) and peaked at `peak_bytes` of linear memory cost.
    pub fn of(instantiated: Option<std::time::Duration>, peak_bytes: usize) -> Sandbox {
        Sandbox {
            instantiated: instantiated.map(|took| took.as_secs_f64()),
            peak_bytes: peak_bytes as f64,
        }
    }
}

/// One measurement, as the request path makes it and aggregation reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `http.server.request.duration`, or with `client`
    /// `http.client.request.duration`, keyed by `pairs` (the host's own
    /// keys, sorted: a set as `aggregate::Pairs` takes it); a served request's with
    /// what its sandbox cost, when its guest ran. One entry for the
    /// request's three measurements: one note, one clock read.
    Duration {
        client: bool,
        seconds: f64,
        pairs: &'a [(&'static str, ValueRef<'a>)],
        sandbox: Option<Sandbox>,
        made: Made,
    },
    /// A guest's measurement through `wasm-otel:host/metrics`, `value`
    /// for `instrument` (found, and the value checked, as it was made: the
    /// journal keeps no name, unit or description).
    Guest {
        instrument: InstrumentId,
        value: f64,
        pairs: &'a [(&'a str, ValueRef<'a>)],
        made: Made,
    },
}

/// A value as the journal keeps it: a string as its length in the
/// part's text.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Str(u32),
    Int(i64),
    Bool(bool),
}

/// An entry as the journal keeps it: its numbers as they are, its strings
/// (lengths) in the part's text, its pairs (how many) in the part's pairs.
#[derive(Debug)]
enum Noted {
    Duration {
        client: bool,
        seconds: f64,
        sandbox: Option<Sandbox>,
        made: Made,
        pairs: u8,
    },
    Guest {
        instrument: InstrumentId,
        value: f64,
        made: Made,
        pairs: u8,
    },
}

/// The entries of one part, as written: each in `entries`, its pairs in
/// `host_pairs` (a key, one of the host's constants, and its value) or
/// `guest_pairs` (a key's length and its value), and every
/// string one after another in `text`. Written as they are, read back as
/// they are: nothing is encoded, and a string read back is validated by
/// nothing but a boundary check (its bytes were a `str` already).
#[derive(Debug, Default)]
struct Notes {
    entries: Vec<Noted>,
    host_pairs: Vec<(&'static str, Kept)>,
    guest_pairs: Vec<(u32, Kept)>,
    text: String,
}

impl Notes {
    /// Appends `entry`.
    fn write(&mut self, entry: &Entry<'_>) {
        let noted = match entry {
            Entry::Duration {
                client,
                seconds,
                pairs,
                sandbox,
                made,
            } => {
                let pairs = &pairs[..pairs.len().min(MAX_PAIRS)];
                for (key, value) in pairs {
                    let value = self.keep(value);
                    self.host_pairs.push((*key, value));
                }
                Noted::Duration {
                    client: *client,
                    seconds: *seconds,
                    sandbox: *sandbox,
                    made: *made,
                    pairs: pairs.len() as u8,
                }
            }
            Entry::Guest {
                instrument,
                value,
                pairs,
                made,
            } => {
                let pairs = &pairs[..pairs.len().min(MAX_PAIRS)];
                for (key, value) in pairs {
                    let key = self.keep_str(key);
                    let value = self.keep(value);
                    self.guest_pairs.push((key, value));
                }
                Noted::Guest {
                    instrument: *instrument,
                    value: *value,
                    made: *made,
                    pairs: pairs.len() as u8,
                }
            }
        };
        self.entries.push(noted);
    }

    fn keep_str(&mut self, string: &str) -> u32 {
        self.text.push_str(string);
        string.len() as u32
    }

    fn keep(&mut self, value: &ValueRef<'_>) -> Kept {
        match value {
            ValueRef::Str(string) => Kept::Str(self.keep_str(string)),
            ValueRef::Int(n) => Kept::Int(*n),
            ValueRef::Bool(b) => Kept::Bool(*b),
        }
    }

    /// Applies each entry, in the order written, and empties the notes.
    fn drain(&mut self, apply: &dyn Fn(Entry<'_>)) {
        let mut text = self.text.as_str();
        let mut take = |len: u32| -> &str {
            // Cut where it was written, so always at a boundary; were it
            // not, the string would read empty rather than panic.
            let (string, rest) = text.split_at_checked(len as usize).unwrap_or(("", text));
            text = rest;
            string
        };
        let mut host_pairs = self.host_pairs.iter();
        let mut guest_pairs = self.guest_pairs.iter();
        let mut host = [("", ValueRef::Bool(false)); MAX_PAIRS];
        let mut guest = [("", ValueRef::Bool(false)); MAX_PAIRS];
        for noted in &self.entries {
            let entry = match *noted {
                Noted::Duration {
                    client,
                    seconds,
                    sandbox,
                    made,
                    pairs,
                } => {
                    let len = usize::from(pairs);
                    for (to, (key, value)) in host.iter_mut().zip(host_pairs.by_ref().take(len)) {
                        *to = (*key, value.read(&mut take));
                    }
                    Entry::Duration {
                        client,
                        seconds,
                        pairs: &host[..len],
                        sandbox,
                        made,
                    }
                }
                Noted::Guest {
                    instrument,
                    value,
                    made,
                    pairs,
                } => {
                    let len = usize::from(pairs);
                    for (to, (key, value)) in guest.iter_mut().zip(guest_pairs.by_ref().take(len)) {
                        let key = take(*key);
                        *to = (key, value.read(&mut take));
                    }
                    Entry::Guest {
                        instrument,
                        value,
                        pairs: &guest[..len],
                        made,
                    }
                }
            };
            apply(entry);
        }
        debug_assert!(
            text.is_empty() && host_pairs.next().is_none() && guest_pairs.next().is_none(),
            "a journal entry did not read back"
        );
        self.entries.clear();
        self.host_pairs.clear();
        self.guest_pairs.clear();
        // One very long string is not kept for the next notes.
        if self.text.capacity() > 4 * DRAIN_TEXT_AT {
            self.text = String::new();
        } else {
            self.text.clear();
        }
    }
}

impl Kept {
    fn read<'a>(self, take: &mut impl FnMut(u32) -> &'a str) -> ValueRef<'a> {
        match self {
            Kept::Str(len) => ValueRef::Str(take(len)),
            Kept::Int(n) => ValueRef::Int(n),
            Kept::Bool(b) => ValueRef::Bool(b),
        }
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
struct Part(Mutex<Notes>);

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
        let part = &self.parts[shard_of()];
        let Ok(mut notes) = part.0.lock() else {
            return;
        };
        notes.write(entry);
        if notes.entries.len() >= DRAIN_AT || notes.text.len() >= DRAIN_TEXT_AT {
            notes.drain(apply);
        }
    }

    /// Aggregates, with `apply`, what every part holds.
    pub fn drain(&self, apply: &dyn Fn(Entry<'_>)) {
        for part in &self.parts {
            if let Ok(mut notes) = part.0.lock() {
                notes.drain(apply);
            }
        }
    }
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

    /// Every entry `notes` holds, as drained, each as it prints; and
    /// that draining left nothing behind.
    fn read_all(notes: &mut Notes) -> Vec<String> {
        let read = Mutex::new(Vec::new());
        notes.drain(&|entry| read.lock().unwrap().push(format!("{entry:?}")));
        assert!(
            notes.entries.is_empty() && notes.text.is_empty(),
            "notes left over"
        );
        notes.drain(&|entry| panic!("read twice: {entry:?}"));
        read.into_inner().unwrap()
    }

    /// Each kind of entry, with and without a span, strings of several
    /// bytes a character, every kind of value and the most pairs, reads
    /// back as it was written.
    #[test]
    fn every_entry_reads_back_as_written() {
        let host = [
            ("http.request.method", ValueRef::Str("POST")),
            ("http.response.status_code", ValueRef::Int(-201)),
            ("http.route", ValueRef::Str("/orders/ü")),
            ("server.port", ValueRef::Int(i64::MAX)),
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
            Entry::Duration {
                client: false,
                seconds: 0.001_25,
                pairs: &host,
                sandbox: Some(Sandbox {
                    instantiated: Some(0.000_04),
                    peak_bytes: 1_114_112.0,
                }),
                made: made(1, Some(true)),
            },
            Entry::Duration {
                client: true,
                seconds: 3.5,
                pairs: &[],
                sandbox: None,
                made: made(u64::MAX, None),
            },
            Entry::Duration {
                client: false,
                seconds: 0.0,
                pairs: &host[..1],
                sandbox: Some(Sandbox {
                    instantiated: None,
                    peak_bytes: 0.0,
                }),
                made: made(2, Some(false)),
            },
            Entry::Guest {
                instrument: InstrumentId::at(0),
                value: 1.0,
                pairs: &guest,
                made: made(4, Some(true)),
            },
            Entry::Guest {
                instrument: InstrumentId::at(63),
                value: f64::MAX,
                pairs: &[],
                made: made(5, None),
            },
        ];
        let mut notes = Notes::default();
        for entry in &entries {
            notes.write(entry);
        }
        let written: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(read_all(&mut notes), written);
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
            let Entry::Duration { made, .. } = entry else {
                panic!("not written: {entry:?}");
            };
            applied.lock().unwrap().push(made.time);
        };
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (journal, apply) = (&journal, &apply);
                scope.spawn(move || {
                    for n in 0..PER_THREAD {
                        let entry = Entry::Duration {
                            client: n % 2 == 0,
                            seconds: 0.001,
                            pairs: &[],
                            sandbox: None,
                            made: made(thread * PER_THREAD + n, Some(true)),
                        };
                        journal.write(&entry, apply);
                    }
                });
            }
        });
        // Each part was filled past DRAIN_AT several times, and holds
        // fewer entries than fill it.
        let waiting = DRAIN_AT as u64;
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

    /// Long strings drain a part before its count would: measurements
    /// with a 5 KiB attribute value are aggregated at the fourth, not the
    /// 160th, so a part holds at most [`DRAIN_TEXT_AT`] bytes of strings
    /// and one entry's; a very long string's room is not kept after.
    #[test]
    fn long_strings_drain_a_part_early() {
        let journal = Journal::default();
        let long_value = "v".repeat(5 * 1024);
        let pairs = [("outcome", ValueRef::Str(&long_value))];
        let applied = Mutex::new(Vec::new());
        let apply = |entry: Entry<'_>| {
            let Entry::Guest { value, pairs, .. } = entry else {
                panic!("not written: {entry:?}");
            };
            assert_eq!(pairs, [("outcome", ValueRef::Str(&long_value))]);
            applied.lock().unwrap().push(value);
        };
        for n in 0..4 {
            let entry = Entry::Guest {
                instrument: InstrumentId::at(0),
                value: f64::from(n),
                pairs: &pairs,
                made: made(0, None),
            };
            journal.write(&entry, &apply);
            let held = journal
                .parts
                .iter()
                .map(|part| part.0.lock().unwrap().text.len())
                .max();
            assert!(
                held.unwrap() < DRAIN_TEXT_AT,
                "{held:?} bytes of strings held"
            );
        }
        // The fourth took the part past the bound: the writer aggregated
        // all four, in order.
        assert_eq!(applied.into_inner().unwrap(), [0.0, 1.0, 2.0, 3.0]);
        // One very long string is aggregated at once, and its room is not
        // kept.
        let long = "d".repeat(1 << 20);
        let entry = Entry::Guest {
            instrument: InstrumentId::at(0),
            value: 1.0,
            pairs: &[("long", ValueRef::Str(&long))],
            made: made(0, None),
        };
        journal.write(&entry, &|_| {});
        let kept = journal
            .parts
            .iter()
            .map(|part| part.0.lock().unwrap().text.capacity())
            .max();
        assert!(kept.unwrap() <= 4 * DRAIN_TEXT_AT, "{kept:?} bytes kept");
    }
}
