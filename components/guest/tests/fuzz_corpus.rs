//! The fuzz corpus of the request decoders as a regression suite on stable
//! Rust: every input kept under `fuzz/corpus/{order,payment}_request/` is
//! checked again with the properties the fuzz targets check
//! (`otel_guest::fuzzing`): a valid request, or a 415/422 refusal that says why.

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>`, which must not be empty: a corpus
/// that went missing would make these tests pass without checking anything.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus `{}`: {e}", dir.display()));
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
            (path, data)
        })
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "the corpus `{}` is empty: run `cargo xtask fuzz {target}`",
        dir.display()
    );
    inputs
}

/// Runs `check` on every input of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(target) {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!(
                "fuzz/corpus/{target}/{} fails its properties",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
        }
    }
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
