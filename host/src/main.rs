//! `host <component.wasm> --port 8000`: serve one wasi-http component, traced.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use host::component;
use host::handler::Service;
use host::telemetry::{self, ServiceIdentity};
use wasmtime::error::Context as _;

/// The port served unless `--port` says otherwise.
const DEFAULT_PORT: u16 = 8000;
/// The address served unless `--addr` says otherwise: loopback only.
const DEFAULT_ADDR: &str = "127.0.0.1";

/// Serve a wasi:http component on one port, tracing every request with
/// OpenTelemetry (OTLP/gRPC, `OTEL_EXPORTER_OTLP_ENDPOINT`, default
/// http://localhost:4317).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The component to serve: a path, or a bare file name such as
    /// `order.wasm`, looked up in target/wasm32-wasip2/release (and the other
    /// build output folders).
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,

    /// The TCP port to listen on (0 picks a free one).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    port: u16,

    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: IpAddr,

    /// The `service.name` of the spans; by default `OTEL_SERVICE_NAME`, else
    /// the name the component declares, else its file name.
    #[arg(long, value_name = "NAME")]
    service_name: Option<String>,

    /// An environment variable for the component (repeatable), such as
    /// `--env PAYMENT_URL=http://127.0.0.1:8001`.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{arg}` is not KEY=VALUE")),
    }
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

async fn serve(cli: Cli) -> wasmtime::Result<()> {
    let path = component::resolve(&cli.component)?;
    let engine = component::engine()?;
    let linker = component::linker(&engine)?;
    let mut loaded = component::load(&engine, &linker, &path)?;

    // The component's self-description names the service, so it is read
    // before the tracer provider (whose resource carries the name) exists.
    let unexported = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let scratch = Service::new(
        String::new(),
        loaded.pre.clone(),
        opentelemetry::trace::TracerProvider::tracer(&unexported, "describe"),
        cli.env.clone(),
    );
    let state = scratch.request_state(opentelemetry::Context::new(), String::new());
    component::describe(&mut loaded, state).await?;

    let file_stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let identity = ServiceIdentity {
        name: telemetry::service_name(
            cli.service_name.as_deref(),
            |key| std::env::var(key).ok(),
            loaded.info.as_ref().map(|info| info.name.as_str()),
            &file_stem,
        ),
        version: loaded.info.as_ref().map(|info| info.version.clone()),
    };
    let telemetry = telemetry::init(&identity)?;

    let addr = SocketAddr::new(cli.addr, cli.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on `{addr}`: is the port in use? Pick another with --port")
    })?;
    let bound = listener.local_addr()?;
    println!(
        "{} {} ({}) listening on http://{bound}",
        identity.name,
        identity.version.as_deref().unwrap_or(""),
        path.display(),
    );
    println!("tracing: OTLP/gRPC to {}", telemetry.endpoint);

    let service = Arc::new(Service::new(
        identity.name.clone(),
        loaded.pre,
        telemetry.tracer(),
        cli.env,
    ));
    host::server::run(listener, service, shutdown_signal()).await;

    // The SDK's shutdown blocks while it flushes: keep it off the async workers.
    let flushed = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    flushed?;
    println!("{} stopped", identity.name);
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
