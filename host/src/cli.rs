//! The command line: one clap struct, every flag documented (its `///`
//! is the `--help` text), and the plan of what to serve that it makes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use host::{OutboundFlag, explorer};

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
pub struct Cli {
    /// The components to serve: a path, or a bare file name such as
    /// `order.wasm` looked up in target/wasm32-wasip2/release (and the other
    /// build output folders), optionally followed by `:PORT`. With several
    /// components, each needs its port: `order.wasm:8000 payment.wasm:8001`.
    #[arg(value_name = "COMPONENT[:PORT]", required = true)]
    pub components: Vec<String>,

    /// The TCP port of a single component given without `:PORT` (0 picks a
    /// free one).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    pub addr: IpAddr,

    /// The `service.name` of a single component's spans; by default
    /// `OTEL_SERVICE_NAME`, else the name the component declares, else its
    /// file name.
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,

    /// An environment variable for the components (repeatable), such as
    /// `--env PAYMENT_URL=http://127.0.0.1:8001`.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Also append every span to PATH as OTLP/JSON, one
    /// ExportTraceServiceRequest per line.
    #[arg(long, value_name = "PATH")]
    pub traces_file: Option<PathBuf>,

    /// Let components send HTTP requests to this origin (scheme, host and
    /// port; repeatable), such as `http://127.0.0.1:8001`, instead of the
    /// origins each component declares in its service-info; `none` grants
    /// nothing. Everything not granted is denied.
    #[arg(long = "allow-outbound", value_name = "URL|none", value_parser = OutboundFlag::parse)]
    pub allow_outbound: Vec<OutboundFlag>,

    /// Copy these W3C Baggage entries onto every span of a request, as
    /// `baggage.KEY` attributes (off by default: baggage may carry data that
    /// should not be recorded).
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub baggage_attributes: Vec<String>,

    /// Wall-clock milliseconds a request's guest may run (epoch interruption
    /// plus a timeout around host calls); past it the client gets 504.
    #[arg(long, value_name = "MS", default_value_t = host::DEFAULT_DEADLINE.as_millis() as u64)]
    pub deadline_ms: u64,

    /// Linear memory per instance, in MiB; a guest that needs more fails
    /// that request (500).
    #[arg(long, value_name = "MIB", default_value_t = host::DEFAULT_MEMORY_LIMIT >> 20)]
    pub memory_limit_mib: usize,

    /// The largest request body, in bytes; larger ones get 413 before the
    /// guest runs.
    #[arg(long, value_name = "BYTES", default_value_t = host::DEFAULT_BODY_LIMIT)]
    pub max_body_bytes: usize,

    /// The most spans a guest records per request; more are not recorded
    /// (counted in the server span's `wasm.guest_spans_dropped`).
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_SPAN_LIMIT)]
    pub max_spans: usize,

    /// The most lines a guest's stdout and stderr record per request (as
    /// log records, and on the host's own output), `wasi:otel` log records
    /// included; more are dropped and counted in the server span's
    /// `wasm.logs.dropped`.
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_LOG_LINE_LIMIT)]
    pub max_log_lines: usize,

    /// Requests run at once per component; more wait for a turn.
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_CONCURRENCY)]
    pub max_concurrent: usize,

    /// Requests that may wait for a turn; past that, 503 at once.
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_QUEUE)]
    pub max_queue: usize,

    /// Milliseconds a client may take to send a request's headers, and an
    /// idle keep-alive connection may stay open.
    #[arg(long, value_name = "MS", default_value_t = host::DEFAULT_HEADER_TIMEOUT.as_millis() as u64)]
    pub header_timeout_ms: u64,

    /// Milliseconds a connection answered before its request body was read
    /// (413, 400) keeps reading and discarding what the client still sends
    /// before it is closed, so that a client that writes its whole body
    /// before reading gets the response instead of a reset.
    #[arg(long, value_name = "MS", default_value_t = host::DEFAULT_LINGER_TIME.as_millis() as u64)]
    pub linger_ms: u64,

    /// The most bytes discarded while lingering (see `--linger-ms`); a
    /// client sending more is cut off.
    #[arg(long, value_name = "BYTES", default_value_t = host::DEFAULT_LINGER_BYTES)]
    pub linger_bytes: u64,

    /// Instance slots of the pooling allocator, shared by every component of
    /// the process (virtual address space only until used); 0 allocates per
    /// instance instead. Where the pool cannot be reserved the host says so
    /// and allocates per instance.
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_POOL_INSTANCES)]
    pub pool_instances: u32,

    /// Where compiled components are kept, so that a restart of the same
    /// component loads in milliseconds [default: $XDG_CACHE_HOME/wasm-otel-host,
    /// else ~/.cache/wasm-otel-host].
    #[arg(long, value_name = "DIR", conflicts_with = "no_compile_cache")]
    pub compile_cache: Option<PathBuf>,

    /// Compile every component at start-up; read and write no cache.
    #[arg(long)]
    pub no_compile_cache: bool,

    /// Write /tmp/perf-PID.map, so that `perf record -p PID` and
    /// `perf report` name the guests' own functions instead of `[JIT]`.
    #[arg(long)]
    pub perfmap: bool,

    /// Serve the probes of a replica on this address, apart from the
    /// components' ports: `/livez` (200 while the process answers) and
    /// `/readyz` (200 once every component listens, 503 while starting and
    /// from the moment a SIGTERM arrives), such as `0.0.0.0:9090`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub health_addr: Option<SocketAddr>,

    /// After SIGTERM, keep serving for this many milliseconds with readiness
    /// 503 (and `connection: close` on every response), so that load
    /// balancers stop routing here before the listeners close; then finish
    /// the requests in flight and exit. A second SIGTERM cuts it short.
    #[arg(long, value_name = "MS", default_value_t = host::health::DEFAULT_SHUTDOWN_DELAY.as_millis() as u64)]
    pub shutdown_delay_ms: u64,

    /// Serve the trace explorer (pages and Jaeger's query API) on ADDR
    /// [default: 127.0.0.1:16686, the Jaeger UI's port], and receive the
    /// OTLP spans and logs of other processes (--ui-otlp-grpc,
    /// --ui-otlp-http). Write `--ui=ADDR` to choose the address. This
    /// process's own spans reach it in process; an OTLP exporter pointed at
    /// its own receiver is skipped.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true,
          default_missing_value = explorer::DEFAULT_UI_ADDR)]
    pub ui: Option<SocketAddr>,

    /// With --ui: where OTLP/gRPC (traces and logs) is received, or `none`.
    #[arg(long, value_name = "ADDR|none", default_value = explorer::DEFAULT_GRPC_ADDR,
          value_parser = explorer::Receiving::parse)]
    pub ui_otlp_grpc: explorer::Receiving,

    /// With --ui: where OTLP/HTTP (`POST /v1/traces`, `POST /v1/logs`) is
    /// received, or `none`.
    #[arg(long, value_name = "ADDR|none", default_value = explorer::DEFAULT_HTTP_ADDR,
          value_parser = explorer::Receiving::parse)]
    pub ui_otlp_http: explorer::Receiving,

    /// With --ui: the most traces kept; the oldest is evicted first.
    #[arg(long, value_name = "N", default_value_t = explorer::store::DEFAULT_MAX_TRACES)]
    pub ui_max_traces: usize,

    /// With --ui: the most MiB of spans kept; the oldest trace is evicted first.
    #[arg(long, value_name = "MIB", default_value_t = explorer::store::DEFAULT_MAX_MIB)]
    pub ui_max_mib: usize,

    /// Do not log a line per request.
    #[arg(long)]
    pub quiet: bool,

    /// Reload a component when its file changes (after a rebuild), without
    /// dropping requests; one that fails to load leaves the old one serving.
    #[arg(long)]
    pub watch: bool,
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

/// One component to serve, before it is bound.
pub struct Plan {
    /// The component as given, without its port.
    pub arg: PathBuf,
    /// The port to serve it on.
    pub port: u16,
}

/// What to serve on which port, checked: with several components each
/// needs its own port, and `--service-name` names a single one.
pub fn plan(cli: &Cli) -> wasmtime::Result<Vec<Plan>> {
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
