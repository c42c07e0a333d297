//! The fuzz corpus of the request decoders as a regression suite on stable
//! Rust: every input kept under `fuzz/corpus/{order,payment}_request/` (and
//! `fuzz/regressions/…`) is
//! checked again with the properties the fuzz targets check
//! (`otel_guest::fuzzing`): a valid request, or a 415/422 refusal that says why.

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>` (the minimised corpus, which must
/// not be empty: a corpus that went missing would make these tests pass
/// without checking anything) and of `fuzz/regressions/<target>` (seeds and
/// the crashes found, fixed, kept by name where `cargo fuzz cmin` cannot
/// drop them).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
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
