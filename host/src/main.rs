//! `host <component.wasm> --port 8000`, or `host order.wasm:8000
//! payment.wasm:8001`: serve wasi-http components, traced.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use host::cache::CompileCache;
use host::component::{self, EngineOptions};
use host::config::OtelConfig;
use host::egress::{Egress, OutboundFlag};
use host::explorer;
use host::handler::{self, RequestLimits, Service};
use host::linger::{self, Linger};
use host::spans::AttributeLimits;
use host::telemetry::{self, ServiceIdentity, Telemetry};
use wasmtime::error::Context as _;

/// mimalloc: per-thread free lists suit a request's many small allocations,
/// freed on whichever worker finishes it (see the README's benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The port served unless `--port` says otherwise.
const DEFAULT_PORT: u16 = 8000;
/// The address served unless `--addr` says otherwise: loopback only.
const DEFAULT_ADDR: &str = "127.0.0.1";

/// Serve wasi:http components, each on its own port, tracing every request
/// with OpenTelemetry. Configured by the standard OTEL_* variables
/// (OTEL_TRACES_EXPORTER=otlp|console|none, OTEL_EXPORTER_OTLP_ENDPOINT,
/// OTEL_EXPORTER_OTLP_PROTOCOL=grpc|http/protobuf, OTEL_TRACES_SAMPLER, …).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The components to serve: a path, or a bare file name such as
    /// `order.wasm` looked up in target/wasm32-wasip2/release (and the other
    /// build output folders), optionally followed by `:PORT`. With several
    /// components, each needs its port: `order.wasm:8000 payment.wasm:8001`.
    #[arg(value_name = "COMPONENT[:PORT]", required = true)]
    components: Vec<String>,

    /// The TCP port of a single component given without `:PORT` (0 picks a
    /// free one).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    port: u16,

    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: IpAddr,

    /// The `service.name` of a single component's spans; by default
    /// `OTEL_SERVICE_NAME`, else the name the component declares, else its
    /// file name.
    #[arg(long, value_name = "NAME")]
    service_name: Option<String>,

    /// An environment variable for the components (repeatable), such as
    /// `--env PAYMENT_URL=http://127.0.0.1:8001`.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Also append every span to PATH as OTLP/JSON, one
    /// ExportTraceServiceRequest per line.
    #[arg(long, value_name = "PATH")]
    traces_file: Option<PathBuf>,

    /// Let components send HTTP requests to this origin (scheme, host and
    /// port; repeatable), such as `http://127.0.0.1:8001`, instead of the
    /// origins each component declares in its service-info; `none` grants
    /// nothing. Everything not granted is denied.
    #[arg(long = "allow-outbound", value_name = "URL|none", value_parser = OutboundFlag::parse)]
    allow_outbound: Vec<OutboundFlag>,

    /// Copy these W3C Baggage entries onto every span of a request, as
    /// `baggage.KEY` attributes (off by default: baggage may carry data that
    /// should not be recorded).
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    baggage_attributes: Vec<String>,

    /// Wall-clock milliseconds a request's guest may run (epoch interruption
    /// plus a timeout around host calls); past it the client gets 504.
    #[arg(long, value_name = "MS", default_value_t = handler::DEFAULT_DEADLINE.as_millis() as u64)]
    deadline_ms: u64,

    /// Linear memory per instance, in MiB; a guest that needs more fails
    /// that request (500).
    #[arg(long, value_name = "MIB", default_value_t = handler::DEFAULT_MEMORY_LIMIT >> 20)]
    memory_limit_mib: usize,

    /// The largest request body, in bytes; larger ones get 413 before the
    /// guest runs.
    #[arg(long, value_name = "BYTES", default_value_t = handler::DEFAULT_BODY_LIMIT)]
    max_body_bytes: usize,

    /// The most spans a guest records per request; more are not recorded
    /// (counted in the server span's `wasm.guest_spans_dropped`).
    #[arg(long, value_name = "N", default_value_t = handler::DEFAULT_SPAN_LIMIT)]
    max_spans: usize,

    /// Requests run at once per component; more wait for a turn.
    #[arg(long, value_name = "N", default_value_t = handler::DEFAULT_CONCURRENCY)]
    max_concurrent: usize,

    /// Requests that may wait for a turn; past that, 503 at once.
    #[arg(long, value_name = "N", default_value_t = handler::DEFAULT_QUEUE)]
    max_queue: usize,

    /// Milliseconds a client may take to send a request's headers, and an
    /// idle keep-alive connection may stay open.
    #[arg(long, value_name = "MS", default_value_t = handler::DEFAULT_HEADER_TIMEOUT.as_millis() as u64)]
    header_timeout_ms: u64,

    /// Milliseconds a connection answered before its request body was read
    /// (413, 400) keeps reading and discarding what the client still sends
    /// before it is closed, so that a client that writes its whole body
    /// before reading gets the response instead of a reset.
    #[arg(long, value_name = "MS", default_value_t = linger::DEFAULT_LINGER_TIME.as_millis() as u64)]
    linger_ms: u64,

    /// The most bytes discarded while lingering (see `--linger-ms`); a
    /// client sending more is cut off.
    #[arg(long, value_name = "BYTES", default_value_t = linger::DEFAULT_LINGER_BYTES)]
    linger_bytes: u64,

    /// Instance slots of the pooling allocator, shared by every component of
    /// the process (virtual address space only until used); 0 allocates per
    /// instance instead. Where the pool cannot be reserved the host says so
    /// and allocates per instance.
    #[arg(long, value_name = "N", default_value_t = component::DEFAULT_POOL_INSTANCES)]
    pool_instances: u32,

    /// Where compiled components are kept, so that a restart of the same
    /// component loads in milliseconds [default: $XDG_CACHE_HOME/wasm-otel-host,
    /// else ~/.cache/wasm-otel-host].
    #[arg(long, value_name = "DIR", conflicts_with = "no_compile_cache")]
    compile_cache: Option<PathBuf>,

    /// Compile every component at start-up; read and write no cache.
    #[arg(long)]
    no_compile_cache: bool,

    /// Write /tmp/perf-PID.map, so that `perf record -p PID` and
    /// `perf report` name the guests' own functions instead of `[JIT]`.
    #[arg(long)]
    perfmap: bool,

    /// Serve the probes of a replica on this address, apart from the
    /// components' ports: `/livez` (200 while the process answers) and
    /// `/readyz` (200 once every component listens, 503 while starting and
    /// from the moment a SIGTERM arrives), such as `0.0.0.0:9090`.
    #[arg(long, value_name = "ADDR:PORT")]
    health_addr: Option<SocketAddr>,

    /// After SIGTERM, keep serving for this many milliseconds with readiness
    /// 503 (and `connection: close` on every response), so that load
    /// balancers stop routing here before the listeners close; then finish
    /// the requests in flight and exit. A second SIGTERM cuts it short.
    #[arg(long, value_name = "MS", default_value_t = host::health::DEFAULT_SHUTDOWN_DELAY.as_millis() as u64)]
    shutdown_delay_ms: u64,

    /// Serve the trace explorer (pages and Jaeger's query API) on ADDR
    /// [default: 127.0.0.1:16686, the Jaeger UI's port], and receive the
    /// OTLP of other processes (--ui-otlp-grpc, --ui-otlp-http). Write
    /// `--ui=ADDR` to choose the address. This process's own spans reach it
    /// in process; an OTLP exporter pointed at its own receiver is skipped.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true,
          default_missing_value = explorer::DEFAULT_UI_ADDR)]
    ui: Option<SocketAddr>,

    /// With --ui: where OTLP/gRPC is received, or `none`.
    #[arg(long, value_name = "ADDR|none", default_value = explorer::DEFAULT_GRPC_ADDR,
          value_parser = explorer::Receiving::parse)]
    ui_otlp_grpc: explorer::Receiving,

    /// With --ui: where OTLP/HTTP (`POST /v1/traces`) is received, or `none`.
    #[arg(long, value_name = "ADDR|none", default_value = explorer::DEFAULT_HTTP_ADDR,
          value_parser = explorer::Receiving::parse)]
    ui_otlp_http: explorer::Receiving,

    /// With --ui: the most traces kept; the oldest is evicted first.
    #[arg(long, value_name = "N", default_value_t = explorer::store::DEFAULT_MAX_TRACES)]
    ui_max_traces: usize,

    /// With --ui: the most MiB of spans kept; the oldest trace is evicted first.
    #[arg(long, value_name = "MIB", default_value_t = explorer::store::DEFAULT_MAX_MIB)]
    ui_max_mib: usize,

    /// Do not log a line per request.
    #[arg(long)]
    quiet: bool,

    /// Reload a component when its file changes (after a rebuild), without
    /// dropping requests; one that fails to load leaves the old one serving.
    #[arg(long)]
    watch: bool,
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{arg}` is not KEY=VALUE")),
    }
}

/// Splits `order.wasm:8000` into the component and its port.
fn split_port(arg: &str) -> (PathBuf, Option<u16>) {
    if let Some((path, port)) = arg.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && let Ok(port) = port.parse()
    {
        return (PathBuf::from(path), Some(port));
    }
    (PathBuf::from(arg), None)
}

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

/// One component to serve, before it is bound.
struct Plan {
    arg: PathBuf,
    port: u16,
}

fn plan(cli: &Cli) -> wasmtime::Result<Vec<Plan>> {
    let split: Vec<(PathBuf, Option<u16>)> = cli.components.iter().map(|c| split_port(c)).collect();
    if split.len() > 1 {
        if let Some((path, _)) = split.iter().find(|(_, port)| port.is_none()) {
            wasmtime::bail!(
                "component `{}` has no port: with several components, give each its own, \
                 as in `order.wasm:8000 payment.wasm:8001`",
                path.display()
            );
        }
        if cli.service_name.is_some() {
            wasmtime::bail!(
                "--service-name names a single component; with several, each is named by \
                 its own declaration (or OTEL_SERVICE_NAME)"
            );
        }
    }
    Ok(split
        .into_iter()
        .map(|(arg, port)| Plan {
            arg,
            port: port.unwrap_or(cli.port),
        })
        .collect())
}

async fn serve(cli: Cli) -> wasmtime::Result<()> {
    let config = OtelConfig::from_process_env()?;
    let plans = plan(&cli)?;
    let shutdown = shutdown_signal()?;
    if let Some(addr) = cli.health_addr {
        host::health::serve(addr).await?;
    }
    let (engine, allocation) = component::engine(EngineOptions {
        pool_instances: cli.pool_instances,
        memory_limit: cli.memory_limit_mib << 20,
        perfmap: cli.perfmap,
    })?;
    let linker = Arc::new(component::linker(&engine)?);
    let cache = match (&cli.compile_cache, cli.no_compile_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => CompileCache::default_dir(),
    }
    .map(|dir| Arc::new(CompileCache::new(dir)));
    match allocation {
        component::Allocation::Fallback(_) => eprintln!("{allocation}"),
        _ if !cli.quiet => println!("{allocation}"),
        _ => {}
    }

    let mut loaded = Vec::new();
    for plan in &plans {
        let path = component::resolve(&plan.arg)?;
        let mut component = component::load(&engine, &linker, cache.as_deref(), &path)?;
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
        component::describe(&mut component, Service::scratch_state(&cli.env)).await?;
        loaded.push((plan.port, component));
    }

    let explorer = match cli.ui {
        Some(ui) => {
            explorer::Explorer::start(explorer::Options {
                ui,
                grpc: cli.ui_otlp_grpc.0,
                http: cli.ui_otlp_http.0,
                limits: explorer::Limits {
                    max_traces: cli.ui_max_traces,
                    max_bytes: cli.ui_max_mib << 20,
                },
            })
            .await?
        }
        None => None,
    };
    if let Some(explorer) = &explorer {
        println!("{}", explorer.summary());
    }
    let telemetry =
        Arc::new(Telemetry::new(config, cli.traces_file.as_deref())?.with_explorer(explorer));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    // One client for every service: a component calling another in the same
    // process reuses connections like any other caller.
    let client = host::client::Client::new();
    for (port, component) in loaded {
        let identity = identity(&cli, telemetry.config(), &component);
        let addr = SocketAddr::new(cli.addr, port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
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
        let declared = component
            .info
            .as_ref()
            .map_or(&[][..], |info| &info.outbound[..]);
        let egress = Egress::grant(&identity.name, declared, &cli.allow_outbound)
            .map_err(wasmtime::Error::msg)?;
        println!("{}", egress.summary(&identity.name));
        let service = Service::new(
            identity.name.clone(),
            component.pre,
            telemetry.tracer(&identity)?,
            telemetry.propagator(),
            cli.env.clone(),
        )
        .log_requests(!cli.quiet)
        .baggage_attributes(cli.baggage_attributes.clone())
        .limits(RequestLimits {
            deadline: std::time::Duration::from_millis(cli.deadline_ms),
            memory: cli.memory_limit_mib << 20,
            body: cli.max_body_bytes,
            spans: cli.max_spans,
            attributes: AttributeLimits {
                count: telemetry.config().limits.attribute_count as usize,
                value_length: telemetry.config().limits.attribute_value_length,
            },
            concurrent: cli.max_concurrent,
            queue: cli.max_queue,
            header_timeout: std::time::Duration::from_millis(cli.header_timeout_ms),
            linger: Linger {
                time: std::time::Duration::from_millis(cli.linger_ms),
                bytes: cli.linger_bytes,
            },
        })
        .egress(egress)
        .client(client.clone());
        let service = Arc::new(service);
        let stop_on = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if cli.watch {
            tokio::spawn(host::watch::watch(
                component.path.clone(),
                engine.clone(),
                linker.clone(),
                cache.clone(),
                service.clone(),
                stop_on(stopped.clone()),
            ));
        }
        let (stop_this, this_stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(host::server::run(listener, service, stop_on(this_stopped)));
        servers.push((stop_this, server));
    }
    println!("{}", telemetry.summary());
    host::health::ready();

    shutdown.await;
    host::health::drain(std::time::Duration::from_millis(cli.shutdown_delay_ms)).await;
    let _ = stop.send(true);
    // One component after the other, in the order given, each once the one
    // before has drained: an order still in flight can reach payment (listed
    // after it) instead of finding its port closed. List callers first.
    for (stop_this, server) in servers {
        let _ = stop_this.send(true);
        let _ = server.await;
    }

    // The SDK's shutdown blocks while it flushes: keep it off the async workers.
    let flushing = telemetry.clone();
    // A collector that is gone is reported, not a failed shutdown: every
    // request was served, and the exit status says so.
    if let Err(error) = tokio::task::spawn_blocking(move || flushing.shutdown()).await? {
        eprintln!("warning: {error:#}");
    }
    println!("stopped");
    Ok(())
}

fn identity(cli: &Cli, config: &OtelConfig, component: &component::Loaded) -> ServiceIdentity {
    let file_stem = Path::new(&component.path)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    ServiceIdentity {
        name: telemetry::service_name(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `:PORT` is split off only when it is a port number.
    #[test]
    fn component_port_suffix() {
        assert_eq!(
            split_port("order.wasm:8000"),
            (PathBuf::from("order.wasm"), Some(8000))
        );
        assert_eq!(
            split_port("order.wasm"),
            (PathBuf::from("order.wasm"), None)
        );
        assert_eq!(
            split_port("dir:x/order.wasm"),
            (PathBuf::from("dir:x/order.wasm"), None)
        );
        assert_eq!(
            split_port("order.wasm:99999"),
            (PathBuf::from("order.wasm:99999"), None)
        );
    }
}
