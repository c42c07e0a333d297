//! Replays the fuzz corpus with a target's property checks: shared by the
//! corpus tests of the two crates whose code is fuzzed
//! (`host/tests/fuzz_corpus.rs`, `components/guest/tests/fuzz_corpus.rs`),
//! which include this file. Not part of the fuzz targets' build.

use std::path::{Path, PathBuf};

/// Every file of `<fuzz>/corpus/<target>` (the minimised corpus, which must
/// not be empty: a corpus that went missing would make these tests pass
/// without checking anything) and of `<fuzz>/regressions/<target>` (seeds
/// and the crashes found, fixed, kept by name where `cargo fuzz cmin`
/// cannot drop them).
fn corpus(fuzz: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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

/// Runs `check` on every input of `target` under the `fuzz` folder, naming
/// the file that fails.
pub fn replay(fuzz: &Path, target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(fuzz, target) {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!(
                "`{}` fails the properties of fuzz target `{target}`",
                path.display()
            );
        }
    }
}
