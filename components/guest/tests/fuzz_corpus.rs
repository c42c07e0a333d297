//! The fuzz corpus of the request decoders as a regression suite on stable
//! Rust: every input kept under `fuzz/corpus/{order,payment}_request/` (and
//! `fuzz/regressions/…`) is
//! checked again with the properties the fuzz targets check
//! (`otel_guest::fuzzing`): a valid request, or a 415/422 refusal that says why.

#[path = "../../../fuzz/replay.rs"]
mod corpus;

/// Checks every input of fuzz target `target` with `check`.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    corpus::replay(&fuzz, target, check);
}

/// `POST /orders` bodies.
#[test]
fn order_request_corpus() {
    replay("order_request", otel_guest::fuzzing::order_request);
}

/// `POST /payments` bodies.
#[test]
fn payment_request_corpus() {
    replay("payment_request", otel_guest::fuzzing::payment_request);
}
