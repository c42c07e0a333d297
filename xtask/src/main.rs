//! Project automation, so that every workflow is one `cargo xtask …` command
//! with nothing to install beyond Rust.
//!
//! - `cargo xtask up`: build everything and run the whole system in one
//!   process: `order-api` on 8000, `payment-service` on 8001, every trace
//!   drawn in the terminal and sent to a collector if one listens.
//! - `cargo xtask build`: the service components (wasm32-wasip2, release),
//!   and the Python payment service `payment-py.wasm` (see [`python`]).
//! - `cargo xtask test`: build the components, then run every test.
//! - `cargo xtask scenarios [ORDER_URL]`: the four classic requests against a
//!   running Order API, with trace ids and Jaeger links.
//! - `cargo xtask ci`: what CI runs: formatting, clippy (host and components,
//!   `-D warnings`), then `test`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod python;
mod scenarios;

/// The components the tests and the quickstart serve (`testbed` is only for
/// the tests, `conformance` for W3C trace-context harnesses).
const COMPONENTS: [&str; 4] = ["order", "payment", "testbed", "conformance"];
/// The target components are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "build" => build_components(),
        "up" => build_components().and_then(|()| up(std::env::args().skip(2).collect())),
        "test" => build_components().and_then(|()| test()),
        "ci" => ci(),
        "scenarios" => {
            let url = std::env::args().nth(2);
            scenarios::run(url.as_deref().unwrap_or(scenarios::DEFAULT_ORDER_URL))
        }
        _ => {
            eprintln!("usage: cargo xtask <up [HOST FLAGS…]|build|test|scenarios [ORDER_URL]|ci>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask {task}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A `cargo` command with the environment of a user's shell: without what
/// `cargo run` set for this xtask (its package variables and library path),
/// which build scripts of the host's dependencies watch and would rebuild for.
fn cargo_command() -> (String, Command) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(&cargo);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key == "LD_LIBRARY_PATH"
            || key == "DYLD_FALLBACK_LIBRARY_PATH"
        {
            command.env_remove(key.as_ref());
        }
    }
    (cargo, command)
}

fn cargo(args: &[&str]) -> Result<(), String> {
    let (cargo, mut command) = cargo_command();
    eprintln!("$ cargo {}", args.join(" "));
    let status = command
        .args(args)
        .status()
        .map_err(|e| format!("cannot run `{cargo}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn component_args(first: &[&'static str]) -> Vec<&'static str> {
    let mut args = first.to_vec();
    for component in COMPONENTS {
        args.extend(["-p", component]);
    }
    args
}

fn build_components() -> Result<(), String> {
    cargo(&component_args(&[
        "build",
        "--target",
        WASM_TARGET,
        "--release",
    ]))?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    python::build(&workspace, &target_dir)
}

/// Runs the host with both components; extra arguments go to the host.
/// Unless `OTEL_TRACES_EXPORTER` says otherwise, traces are drawn in the
/// terminal and also sent over OTLP (to Jaeger, when it runs).
fn up(extra: Vec<String>) -> Result<(), String> {
    let (cargo, mut command) = cargo_command();
    command.args([
        "run",
        "--quiet",
        "-p",
        "host",
        "--",
        "order.wasm:8000",
        "payment.wasm:8001",
        // The order service calls the payment service; nothing else may leave.
        "--allow-outbound",
        "http://127.0.0.1:8001",
    ]);
    command.args(&extra);
    if std::env::var("OTEL_TRACES_EXPORTER").map_or(true, |v| v.trim().is_empty()) {
        command.env("OTEL_TRACES_EXPORTER", "console,otlp");
    }
    eprintln!(
        "$ cargo run -p host -- order.wasm:8000 payment.wasm:8001 --allow-outbound http://127.0.0.1:8001 {}",
        extra.join(" ")
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run `{cargo}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the host stopped with {status}"))
    }
}

fn test() -> Result<(), String> {
    cargo(&["test", "--workspace"])
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    let mut wasm = component_args(&["clippy", "--target", WASM_TARGET]);
    wasm.extend(["-p", "otel-guest", "--", "-D", "warnings"]);
    cargo(&wasm)?;
    build_components()?;
    test()
}
