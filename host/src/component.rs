//! Finding, compiling and pre-instantiating a component, and reading what it
//! says about itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::bail;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{self, Info, ServiceInfoIndices};
use crate::cache::{CompileCache, Source, compile};
use crate::state::RequestState;

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

/// How often the engine's epoch advances: the resolution of guest deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The epoch deadline, in ticks, for a wall-clock `deadline`.
pub fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

/// How instances get their memory, tables and stacks.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Slots in the pooling allocator: component instances alive at once
    /// across every service of the process; 0 turns pooling off.
    pub pool_instances: u32,
    /// The most linear memory one instance may have (`--memory-limit-mib`);
    /// pool slots are sized to it.
    pub memory_limit: usize,
    /// Write `/tmp/perf-PID.map` so that `perf` names guest functions
    /// (`--perfmap`).
    pub perfmap: bool,
}

/// The default number of pool slots: room for the default concurrency of a
/// few services, in virtual address space only (a slot costs no memory
/// until an instance uses it).
pub const DEFAULT_POOL_INSTANCES: u32 = 1000;
/// Core module instances per pool slot: a Rust component has a handful,
/// a Python one built by componentize-py a dozen or so.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Tables per pool slot, for the same reason.
const TABLES_PER_COMPONENT: u32 = 32;
/// Linear memory (and table) bytes a pool slot resets with `memset` rather
/// than returning to the kernel with `madvise` after each request: the
/// kernel path costs TLB shootdowns across cores and page faults when the
/// next instance touches the memory again. The Rust services here peak
/// under 2 MiB (each SERVER span's `wasm.memory.peak_bytes` says by how
/// much), so it covers them, for at most 2 MiB × the slots in use of
/// resident memory.
const KEEP_RESIDENT: usize = 2 << 20;
/// Table elements per table: far above what a Rust, Python or JS guest
/// uses, far below what would exhaust the host.
pub const TABLE_ELEMENT_LIMIT: usize = 100_000;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            pool_instances: DEFAULT_POOL_INSTANCES,
            memory_limit: crate::handler::DEFAULT_MEMORY_LIMIT,
            perfmap: false,
        }
    }
}

/// Which allocator the engine got, for the start-up line.
#[derive(Debug, Clone)]
pub enum Allocation {
    /// Pooled slots, reused with copy-on-write memory images.
    Pooling(u32),
    /// Memory mapped per instance (`--pool-instances 0`).
    OnDemand,
    /// Pooling was asked for but the machine could not reserve its address
    /// space (a `ulimit -v`, say); the reason.
    Fallback(String),
}

impl std::fmt::Display for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocation::Pooling(slots) => write!(f, "pooling allocator, {slots} instance slots"),
            Allocation::OnDemand => write!(f, "on-demand allocator (--pool-instances 0)"),
            Allocation::Fallback(why) => write!(
                f,
                "on-demand allocator: the pooling allocator could not reserve its address space \
                 ({why}); each slot reserves 4 GiB of it: lower --pool-instances, or raise `ulimit -v`"
            ),
        }
    }
}

/// The engine every component of this process runs on, with epoch
/// interruption driven by one ticker thread (not a timer per request); the
/// thread ends with the engine. Instances come from a pool of pre-reserved
/// slots (falling back to on-demand allocation, and saying so, where the
/// pool cannot be reserved), with copy-on-write memory images, so that
/// instantiating per request costs microseconds.
pub fn engine(options: EngineOptions) -> wasmtime::Result<(Engine, Allocation)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    if options.perfmap {
        // Names every compiled guest function in /tmp/perf-PID.map, where
        // `perf report` looks for code it cannot find in a file.
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let (engine, allocation) = if options.pool_instances == 0 {
        (Engine::new(&config), Allocation::OnDemand)
    } else {
        let slots = options.pool_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(slots)
            .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
            .total_stacks(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(TABLES_PER_COMPONENT)
            .table_elements(TABLE_ELEMENT_LIMIT)
            .max_memory_size(options.memory_limit)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            // Linux 6.7+: reset only the pages the instance dirtied.
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut pooled = config.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => (Ok(engine), Allocation::Pooling(slots)),
            Err(error) => (
                Engine::new(&config),
                Allocation::Fallback(format!("{error:#}")),
            ),
        }
    };
    let engine = engine.context("failed to create the wasmtime engine")?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("failed to start the epoch ticker thread")?;
    Ok((engine, allocation))
}

/// The imports every component gets: WASI (environment, clocks, random,
/// stdio), wasi:http, the host's tracing interface and `wasi:otel/tracing`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::tracing::add_to_linker::<_, wasmtime::component::HasSelf<crate::spans::RequestSpans>>(
        &mut linker,
        |state: &mut RequestState| &mut state.spans,
    )?;
    bindings::wasi::otel::tracing::add_to_linker::<
        _,
        wasmtime::component::HasSelf<crate::spans::RequestSpans>,
    >(&mut linker, |state: &mut RequestState| &mut state.spans)?;
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
    let language = crate::language::of_component(&bytes);
    let instance_pre = linker.instantiate_pre(&component).with_context(|| {
        format!(
            "component `{}` imports something this host does not provide (it provides WASI 0.2 \
             cli, clocks, random, io and http, `wasm-otel:host/tracing` and \
             `wasi:otel/tracing@0.2.0-rc.2`, not wasi:otel logs or metrics): build it for the \
             `wasi:http/proxy` world or one of `wit/world.wit`",
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
