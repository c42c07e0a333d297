//! The fuzz corpus as a regression suite on stable Rust: every input kept
//! under `fuzz/corpus/<target>/` (the interesting ones `cargo xtask fuzz`
//! found) and `fuzz/regressions/<target>/` (seeds, and each crash found,
//! fixed) is checked again with the very properties the fuzz target checks
//! (`host::fuzzing`).

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>` (the minimised corpus, which must
/// not be empty: a corpus that went missing would make these tests pass
/// without checking anything) and of `fuzz/regressions/<target>` (seeds and
/// the crashes found, fixed, kept by name where `cargo fuzz cmin` cannot
/// drop them).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let read = |dir: PathBuf| -> Vec<(PathBuf, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .map(|entry| {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
                (path, data)
            })
            .collect()
    };
    let mut inputs = read(fuzz.join("corpus").join(target));
    assert!(
        !inputs.is_empty(),
        "the corpus `fuzz/corpus/{target}` is missing or empty: run `cargo xtask fuzz {target}`"
    );
    inputs.extend(read(fuzz.join("regressions").join(target)));
    inputs.sort();
    inputs
}

/// Runs `check` on every input of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(target) {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!(
                "`{}` fails the properties of fuzz target `{target}`",
                path.display()
            );
        }
    }
}

/// `traceparent` and `tracestate`: accepted exactly by the grammar,
/// re-serialised canonically, at most 32 valid members.
#[test]
fn trace_context_corpus() {
    replay("trace_context", host::fuzzing::trace_context);
}

/// `baggage`: within its limits, round-trips, a guest's entry reads back.
#[test]
fn baggage_corpus() {
    replay("baggage", host::fuzzing::baggage);
}

/// Incoming headers: what is extracted is what they say, what is injected
/// is valid, the server span follows semconv.
#[test]
fn headers_corpus() {
    replay("headers", host::fuzzing::headers);
}
