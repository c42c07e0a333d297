//! `host <component.wasm> --port 8000`, or `host order.wasm:8000
//! payment.wasm:8001`: serve wasi-http components, traced.
//!
//! `main` parses the command line (`cli.rs`), loads every component, serves
//! each on its port until SIGTERM or Ctrl-C, stops them in order, and flushes
//! the last spans.

mod cli;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cli::{Cli, plan};
use host::{
    Allocation, AttributeLimits, Client, CompileCache, Egress, EngineOptions, Linger, Loaded,
    OtelConfig, RequestLimits, RequestState, Service, ServiceIdentity, Telemetry, explorer,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;

/// mimalloc: per-thread free lists suit a request's many small allocations,
/// freed on whichever worker finishes it (see the README's benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match serve(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What every component of the process shares at run time.
struct Runtime {
    engine: Engine,
    linker: Arc<Linker<RequestState>>,
    cache: Option<Arc<CompileCache>>,
}

/// A server task and the switch that stops it.
type Server = (watch::Sender<bool>, JoinHandle<()>);

async fn serve(cli: Cli) -> wasmtime::Result<()> {
    let config = OtelConfig::from_process_env()?;
    let plans = plan(&cli)?;
    let shutdown = shutdown_signal()?;
    if let Some(addr) = cli.health_addr {
        host::health::serve(addr).await?;
    }
    let runtime = runtime(&cli)?;
    let mut loaded = Vec::new();
    for plan in &plans {
        loaded.push((plan.port, load(&cli, &runtime, &plan.arg).await?));
    }

    let explorer = explorer(&cli).await?;
    let telemetry = Arc::new(Telemetry::new(
        config,
        cli.traces_file.as_deref(),
        explorer,
    )?);
    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    // One client for every service: a component calling another in the same
    // process reuses connections like any other caller.
    let client = Client::new();
    for (port, component) in loaded {
        let identity = identity(&cli, telemetry.config(), &component);
        let listener = bind(&cli, port, &component, &identity).await?;
        let egress = egress(&cli, &identity, &component)?;
        let service = service(&cli, &telemetry, &client, &component, &identity, egress)?;
        servers.push(serve_on(
            &cli, &runtime, listener, component, service, &stopped,
        ));
    }
    println!("{}", telemetry.summary());
    host::health::ready();

    shutdown.await;
    host::health::drain(Duration::from_millis(cli.shutdown_delay_ms)).await;
    let _ = stop.send(true);
    stop_in_order(servers).await;
    flush(telemetry).await
}

/// The engine, the linker and the compile cache.
fn runtime(cli: &Cli) -> wasmtime::Result<Runtime> {
    let (engine, allocation) = host::engine(EngineOptions {
        pool_instances: cli.pool_instances,
        memory_limit: cli.memory_limit_mib << 20,
        perfmap: cli.perfmap,
    })?;
    let linker = Arc::new(host::linker(&engine)?);
    let cache = match (&cli.compile_cache, cli.no_compile_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => CompileCache::default_dir(),
    }
    .map(|dir| Arc::new(CompileCache::new(dir)));
    match allocation {
        Allocation::Fallback(_) => eprintln!("{allocation}"),
        _ if !cli.quiet => println!("{allocation}"),
        _ => {}
    }
    Ok(Runtime {
        engine,
        linker,
        cache,
    })
}

/// Finds, compiles (or loads from the cache) and describes one component.
async fn load(cli: &Cli, runtime: &Runtime, arg: &Path) -> wasmtime::Result<Loaded> {
    let path = host::resolve(arg)?;
    let mut component = host::load(
        &runtime.engine,
        &runtime.linker,
        runtime.cache.as_deref(),
        &path,
    )?;
    if !cli.quiet {
        println!(
            "{}: {} in {} ms",
            path.display(),
            component.source,
            component.prepared.as_millis()
        );
    }
    // The component's self-description names the service, so it is read
    // before its tracer provider (whose resource carries the name) exists.
    host::describe(&mut component, RequestState::scratch(&cli.env)).await?;
    Ok(component)
}

/// `--ui`: the trace explorer, started and said on a line.
async fn explorer(cli: &Cli) -> wasmtime::Result<Option<explorer::Explorer>> {
    let Some(ui) = cli.ui else {
        return Ok(None);
    };
    let explorer = explorer::Explorer::start(explorer::Options {
        ui,
        grpc: cli.ui_otlp_grpc.0,
        http: cli.ui_otlp_http.0,
        limits: explorer::Limits {
            max_traces: cli.ui_max_traces,
            max_bytes: cli.ui_max_mib << 20,
        },
    })
    .await?;
    if let Some(explorer) = &explorer {
        println!("{}", explorer.summary());
    }
    Ok(explorer)
}

/// Binds `port` for `component` and says where it listens.
async fn bind(
    cli: &Cli,
    port: u16,
    component: &Loaded,
    identity: &ServiceIdentity,
) -> wasmtime::Result<TcpListener> {
    let addr = SocketAddr::new(cli.addr, port);
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on `{addr}` for `{}`: is the port in use? Pick another",
            component.path.display()
        )
    })?;
    let bound = listener.local_addr()?;
    let version = identity
        .version
        .as_deref()
        .map(|version| format!(" {version}"))
        .unwrap_or_default();
    println!(
        "{}{version} ({}) listening on http://{bound}",
        identity.name,
        component.path.display(),
    );
    Ok(listener)
}

/// Where `component` may send requests: what it declares in its
/// service-info, unless `--allow-outbound` says otherwise; said on a line.
fn egress(cli: &Cli, identity: &ServiceIdentity, component: &Loaded) -> wasmtime::Result<Egress> {
    let declared = component
        .info
        .as_ref()
        .map_or(&[][..], |info| &info.outbound[..]);
    let egress = Egress::grant(&identity.name, declared, &cli.allow_outbound)
        .map_err(wasmtime::Error::msg)?;
    println!("{}", egress.summary(&identity.name));
    Ok(egress)
}

/// The service serving `component`, with its tracer and every limit.
fn service(
    cli: &Cli,
    telemetry: &Telemetry,
    client: &Arc<Client>,
    component: &Loaded,
    identity: &ServiceIdentity,
    egress: Egress,
) -> wasmtime::Result<Arc<Service>> {
    let limits = RequestLimits {
        deadline: Duration::from_millis(cli.deadline_ms),
        memory: cli.memory_limit_mib << 20,
        body: cli.max_body_bytes,
        spans: cli.max_spans,
        log_lines: cli.max_log_lines,
        attributes: AttributeLimits {
            count: telemetry.config().limits.attribute_count as usize,
            value_length: telemetry.config().limits.attribute_value_length,
        },
        concurrent: cli.max_concurrent,
        queue: cli.max_queue,
        header_timeout: Duration::from_millis(cli.header_timeout_ms),
        linger: Linger {
            time: Duration::from_millis(cli.linger_ms),
            bytes: cli.linger_bytes,
        },
    };
    let metrics = telemetry.metrics(identity);
    let service = Service::new(
        identity.name.clone(),
        component.pre.clone(),
        telemetry.tracer(identity)?,
        telemetry.propagator(),
        cli.env.clone(),
    )
    .log_requests(!cli.quiet)
    .baggage_attributes(cli.baggage_attributes.clone())
    .limits(limits)
    .egress(egress)
    .client(client.clone())
    .metrics(metrics)
    .logs(telemetry.logs(identity, metrics));
    Ok(Arc::new(service))
}

/// Serves `service` on `listener` (and watches its file with `--watch`)
/// until told to stop.
fn serve_on(
    cli: &Cli,
    runtime: &Runtime,
    listener: TcpListener,
    component: Loaded,
    service: Arc<Service>,
    stopped: &watch::Receiver<bool>,
) -> Server {
    if cli.watch {
        let reloaded = service.clone();
        tokio::spawn(host::watch(
            component.path.clone(),
            runtime.engine.clone(),
            runtime.linker.clone(),
            runtime.cache.clone(),
            service.name.clone(),
            move |pre| reloaded.replace(pre),
            stop_on(stopped.clone()),
        ));
    }
    let (stop_this, this_stopped) = watch::channel(false);
    let server = tokio::spawn(host::run(listener, service, stop_on(this_stopped)));
    (stop_this, server)
}

/// Completes once `stopped` says stop.
async fn stop_on(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One component after the other, in the order given, each once the one
/// before has drained: an order still in flight can reach payment (listed
/// after it) instead of finding its port closed. List callers first.
async fn stop_in_order(servers: Vec<Server>) {
    for (stop_this, server) in servers {
        let _ = stop_this.send(true);
        let _ = server.await;
    }
}

/// Flushes the last spans and stops the exporters.
async fn flush(telemetry: Arc<Telemetry>) -> wasmtime::Result<()> {
    // The SDK's shutdown blocks while it flushes: keep it off the async workers.
    // A collector that is gone is reported, not a failed shutdown: every
    // request was served, and the exit status says so.
    if let Err(error) = tokio::task::spawn_blocking(move || telemetry.shutdown()).await? {
        eprintln!("warning: {error:#}");
    }
    println!("stopped");
    Ok(())
}

fn identity(cli: &Cli, config: &OtelConfig, component: &Loaded) -> ServiceIdentity {
    let file_stem = Path::new(&component.path)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    ServiceIdentity {
        name: host::service_name(
            cli.service_name.as_deref(),
            config,
            component.info.as_ref().map(|info| info.name.as_str()),
            &file_stem,
        ),
        version: component.info.as_ref().map(|info| info.version.clone()),
        language: component.language.clone(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when it is awaited: `serve` calls it before binding the first port, so a
/// SIGTERM that arrives as soon as the host listens stops it gracefully
/// (spans flushed, exit 0) rather than killing it.
fn shutdown_signal() -> wasmtime::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
