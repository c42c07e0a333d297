//! `--watch`: reload a component when its file changes, without dropping a
//! request. A rebuild that fails to load is reported and the old component
//! keeps serving.
//!
//! Polling (twice a second) rather than filesystem events: it needs no extra
//! dependency, works the same on every platform and filesystem, and waits
//! for the file to stop changing, so a half-written `.wasm` is never loaded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::cache::CompileCache;
use super::component;
use super::state::RequestState;

/// How often the file is checked.
const POLL: Duration = Duration::from_millis(500);

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches `path` until `stop` completes, handing each new component to
/// `reload` after each change; `name` names the service in the log lines.
pub async fn watch(
    path: PathBuf,
    engine: Engine,
    linker: Arc<Linker<RequestState>>,
    cache: Option<Arc<CompileCache>>,
    name: String,
    reload: impl Fn(ProxyPre<RequestState>),
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut served = stamp(&path);
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = &mut stop => return,
        }
        let now = stamp(&path);
        if now.is_none() || now == served {
            continue;
        }
        // Still being written? Wait until two polls agree.
        tokio::time::sleep(POLL).await;
        if stamp(&path) != now {
            continue;
        }
        served = now;
        let (engine, linker, cache, file) =
            (engine.clone(), linker.clone(), cache.clone(), path.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            component::load(&engine, &linker, cache.as_deref(), &file)
        })
        .await;
        match loaded {
            Ok(Ok(loaded)) => {
                reload(loaded.pre);
                println!(
                    "{}: reloaded `{}` ({} in {} ms)",
                    name,
                    path.display(),
                    loaded.source,
                    loaded.prepared.as_millis()
                );
            }
            Ok(Err(error)) => eprintln!(
                "{}: `{}` changed but cannot be loaded; still serving the previous version: {error:#}",
                name,
                path.display()
            ),
            Err(join) => eprintln!("{}: reloading `{}` failed: {join}", name, path.display()),
        }
    }
}
