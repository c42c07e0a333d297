//! The one wasmtime engine of the process: its allocator (a pool of
//! pre-reserved instance slots), its epoch ticker (guest deadlines) and the
//! caps every instance shares.

use std::time::Duration;

use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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

/// The default linear-memory cap per instance (`--memory-limit-mib`): 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

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
            memory_limit: DEFAULT_MEMORY_LIMIT,
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
