//! The fuzz corpus as a regression suite on stable Rust: every input kept
//! under `fuzz/corpus/<target>/` (the interesting ones `cargo xtask fuzz`
//! found) and `fuzz/regressions/<target>/` (seeds, and each crash found,
//! fixed) is checked again with the very properties the fuzz target checks
//! (`host::fuzzing`).

#[path = "../../fuzz/replay.rs"]
mod corpus;

/// Checks every input of fuzz target `target` with `check`.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    corpus::replay(&fuzz, target, check);
}

/// `traceparent` and `tracestate`: accepted exactly by the draft's grammar,
/// re-serialised canonically, at most 32 valid members, duplicates kept.
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
