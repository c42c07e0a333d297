//! Finding, compiling and pre-instantiating a component, and reading what it
//! says about itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::bail;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::cache::{CompileCache, Source, compile};
use super::engine::deadline_ticks;
use super::language;
use super::state::RequestState;
use crate::guest_api::{self, Info, ServiceInfoIndices};

/// Where a bare component file name is looked up, relative to the current
/// directory and to the workspace root: the build outputs of
/// `cargo build --target wasm32-wasip2` and of `cargo component build`.
const BUILD_OUTPUTS: [&str; 4] = [
    "target/wasm32-wasip2/release",
    "target/wasm32-wasip2/debug",
    "target/wasm32-wasip1/release",
    "target/wasm32-wasip1/debug",
];

/// Resolves the component argument: an existing path as given; a bare file
/// name (`order.wasm`, or `order`) in the build output folders.
pub fn resolve(arg: &Path) -> wasmtime::Result<PathBuf> {
    if arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    let mut tried = vec![arg.display().to_string()];
    if arg.components().count() == 1 {
        let file = if arg.extension().is_some() {
            arg.to_path_buf()
        } else {
            arg.with_extension("wasm")
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut roots = vec![PathBuf::from(".")];
        if let Ok(target) = std::env::var("CARGO_TARGET_DIR") {
            roots.push(PathBuf::from(target).join(".."));
        }
        roots.push(workspace);
        for root in &roots {
            for dir in BUILD_OUTPUTS {
                let candidate = root.join(dir).join(&file);
                if candidate.is_file() {
                    return Ok(candidate);
                }
                tried.push(candidate.display().to_string());
            }
        }
    }
    bail!(
        "component `{}` not found (looked in: {}): build it with `cargo build-components` \
         (or `cargo build --target wasm32-wasip2 --release -p <crate>`)",
        arg.display(),
        tried.join(", ")
    )
}

/// The imports every component gets: WASI (environment, clocks, random,
/// stdio), wasi:http, the host's tracing and metrics interfaces and
/// `wasi:otel`'s tracing, metrics and logs.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    guest_api::add_to_linker(&mut linker, |state: &mut RequestState| &mut state.spans)?;
    Ok(linker)
}

/// A component compiled, linked and ready to instantiate per request.
pub struct Loaded {
    /// The file it came from.
    pub path: PathBuf,
    /// The pre-instantiated component.
    pub pre: ProxyPre<RequestState>,
    /// Its `service-info`, when it exports one.
    pub info: Option<Info>,
    /// The language it was written in, from its `producers` section.
    pub language: Option<String>,
    /// Whether it was compiled now or loaded from the compile cache.
    pub source: Source,
    /// How long compiling (or loading from the cache) took.
    pub prepared: Duration,
}

/// Compiles the component at `path` (or loads it from `cache`) and links
/// it.
pub fn load(
    engine: &Engine,
    linker: &Linker<RequestState>,
    cache: Option<&CompileCache>,
    path: &Path,
) -> wasmtime::Result<Loaded> {
    let started = Instant::now();
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read component `{}`", path.display()))?;
    let (component, source) = match cache {
        Some(cache) => cache.load(engine, path, &bytes)?,
        None => (compile(engine, path, &bytes)?, Source::Compiled),
    };
    let prepared = started.elapsed();
    let language = language::of_component(&bytes);
    let instance_pre = linker.instantiate_pre(&component).with_context(|| {
        format!(
            "component `{}` imports something this host does not provide (it provides WASI 0.2 \
             cli, clocks, random, io and http, `wasm-otel:host/tracing`, \
             `wasm-otel:host/metrics` and `wasi:otel` tracing, metrics and logs at 0.2.0-rc.2): \
             build it for the `wasi:http/proxy` world or one of `wit/world.wit`",
            path.display()
        )
    })?;
    let pre = ProxyPre::new(instance_pre).with_context(|| {
        format!(
            "component `{}` is not a wasi:http component: it must export `wasi:http/incoming-handler@0.2.x`",
            path.display()
        )
    })?;
    Ok(Loaded {
        path: path.to_path_buf(),
        pre,
        info: None,
        language,
        source,
        prepared,
    })
}

/// The versioned name of our self-description interface.
const SERVICE_INFO: &str = "wasm-otel:host/service-info@0.1.0";

/// Whether `component` exports [`SERVICE_INFO`], in any shape.
fn exports_service_info(component: &wasmtime::component::Component) -> bool {
    component.get_export_index(None, SERVICE_INFO).is_some()
}

/// Calls the component's `service-info.describe`, if it exports it, in a
/// throwaway instance with `state`.
pub async fn describe(loaded: &mut Loaded, state: RequestState) -> wasmtime::Result<()> {
    let instance_pre = loaded.pre.instance_pre();
    let indices = match ServiceInfoIndices::new(instance_pre) {
        Ok(indices) => indices,
        // Exported, but not in the shape this host reads: say so rather
        // than silently serve it under its file name with no egress.
        Err(error) if exports_service_info(instance_pre.component()) => {
            return Err(error.context(format!(
                "component `{}` exports `{SERVICE_INFO}` in another shape than this host's \
                 `wit/service-info.wit` (which has `name`, `version` and `outbound`): rebuild it \
                 against this repository's `wit/`",
                loaded.path.display()
            )));
        }
        Err(_) => return Ok(()),
    };
    let mut store = Store::new(instance_pre.engine(), state);
    // A component that loops while describing itself must not hang start-up.
    store.set_epoch_deadline(deadline_ticks(Duration::from_secs(10)));
    store.epoch_deadline_trap();
    let instance = instance_pre
        .instantiate_async(&mut store)
        .await
        .with_context(|| format!("failed to instantiate `{}`", loaded.path.display()))?;
    let guest = indices.load(&mut store, &instance)?;
    let info = guest.call_describe(&mut store).await.with_context(|| {
        format!(
            "`service-info.describe` of `{}` failed",
            loaded.path.display()
        )
    })?;
    loaded.info = Some(info);
    Ok(())
}
