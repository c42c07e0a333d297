//! The compiled-component cache: a component is compiled once, and a
//! restart (or a `--watch` reload) of the same bytes on the same engine
//! loads the machine code from disk in milliseconds instead of compiling
//! it again.
//!
//! An entry's file name is the SHA-256 of the component's bytes and of the
//! engine's compatibility hash (wasmtime version, target, every setting that
//! changes the code), so a changed component or a changed engine never finds
//! an old entry. The entry itself starts with a magic line and the SHA-256 of
//! what follows: a truncated, corrupted or foreign file fails that check and
//! is ignored (and replaced), never handed to wasmtime.

use std::hash::Hasher;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::error::Context as _;

/// The first bytes of every entry; a new format gets a new line.
const MAGIC: &[u8] = b"wasm-otel compiled component v1\n";
/// The length of a SHA-256 digest.
const DIGEST_LEN: usize = 32;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Where a component came from, for the start-up line and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled now (and stored, when there is a cache).
    Compiled,
    /// Loaded from the cache.
    Cached,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Compiled => "compiled",
            Source::Cached => "loaded from the compile cache",
        })
    }
}

impl CompileCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: PathBuf) -> Self {
        CompileCache { dir }
    }

    /// The cache directory used unless `--compile-cache` names another:
    /// `$XDG_CACHE_HOME/wasm-otel-host`, else `~/.cache/wasm-otel-host`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
        };
        Some(base.join("wasm-otel-host"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component in `bytes` (read from `path`), from the cache when an
    /// intact entry for these bytes and this engine exists, else compiled
    /// and stored. A cache that cannot be read or written only costs the
    /// compilation, with a line saying why.
    pub fn load(
        &self,
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Source)> {
        let entry = self.dir.join(format!("{}.cwasm", key(engine, bytes)));
        if let Some(component) = self.read(engine, &entry) {
            return Ok((component, Source::Cached));
        }
        let component = compile(engine, path, bytes)?;
        if let Err(error) = self.write(&component, &entry) {
            eprintln!(
                "compile cache: cannot store `{}`: {error:#} (start-up compiles it again next time; \
                 pick another directory with --compile-cache, or --no-compile-cache)",
                entry.display()
            );
        }
        Ok((component, Source::Compiled))
    }

    /// The entry's component, if the file exists, is intact and was made by
    /// a compatible engine.
    fn read(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let data = std::fs::read(entry).ok()?;
        let Some(code) = verified(&data) else {
            eprintln!(
                "compile cache: ignoring `{}`: not an intact entry (it will be replaced)",
                entry.display()
            );
            return None;
        };
        // SAFETY: `Component::deserialize` trusts its input to be wasmtime's
        // own output for a compatible engine. `code` is exactly what
        // `Component::serialize` wrote to this entry: `verified` checked its
        // SHA-256 against the digest stored beside it, so it is neither
        // truncated nor altered since, and the entry's name covers the
        // engine's compatibility hash (wasmtime also re-checks its version
        // and settings in the header and errors on a mismatch). Only someone
        // who can already write this user's cache directory could forge an
        // entry, which is the same trust as in the host binary itself.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, code) };
        match component {
            Ok(component) => Some(component),
            Err(error) => {
                eprintln!(
                    "compile cache: ignoring `{}`: {error:#} (it will be replaced)",
                    entry.display()
                );
                None
            }
        }
    }

    /// Stores `component` in `entry`, atomically: a reader sees the whole
    /// entry or none.
    fn write(&self, component: &Component, entry: &Path) -> wasmtime::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", self.dir.display()))?;
        let code = component.serialize()?;
        let digest = Sha256::digest(&code);
        let temporary = entry.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(MAGIC)?;
        file.write_all(&digest)?;
        file.write_all(&code)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, entry).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })?;
        Ok(())
    }
}

/// Compiles `bytes` (from `path`, for the error message).
pub fn compile(engine: &Engine, path: &Path, bytes: &[u8]) -> wasmtime::Result<Component> {
    Component::new(engine, bytes)
        .with_context(|| format!("failed to compile component `{}`", path.display()))
}

/// The code stored in an entry, if the entry is whole and unaltered.
fn verified(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(MAGIC)?;
    if rest.len() < DIGEST_LEN {
        return None;
    }
    let (digest, code) = rest.split_at(DIGEST_LEN);
    (Sha256::digest(code).as_slice() == digest).then_some(code)
}

/// The entry name for `bytes` compiled by `engine`: hex SHA-256 of both.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.update(bytes);
    hasher
        .0
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Feeds what `Hash` writes into SHA-256 (the engine's compatibility hash
/// is only available through `Hash`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        // Never called: the digest is read with `finalize`.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry is its own digest's witness: any change to the code, a
    /// truncation or a foreign header makes it not intact.
    #[test]
    fn only_intact_entries_are_verified() {
        let code = b"compiled code".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(&code));
        entry.extend_from_slice(&code);
        assert_eq!(verified(&entry), Some(code.as_slice()));

        let mut altered = entry.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&altered), None);
        assert_eq!(verified(&entry[..entry.len() - 1]), None);
        assert_eq!(verified(&entry[..MAGIC.len() + 5]), None);
        assert_eq!(verified(b"\x7fELF not ours"), None);
    }

    /// The key changes with the component's bytes and with the engine's
    /// configuration, and not otherwise.
    #[test]
    fn keys_cover_bytes_and_engine() {
        let engine = Engine::default();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        assert_eq!(key(&engine, b"a"), key(&engine, b"a"));
        assert_ne!(key(&engine, b"a"), key(&engine, b"b"));
        assert_ne!(key(&engine, b"a"), key(&other, b"a"));
        assert_eq!(key(&engine, b"a").len(), 64);
    }
}
