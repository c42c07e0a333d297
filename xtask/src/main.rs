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
//! - `cargo xtask fuzz [TARGET] [SECONDS]`: run the cargo-fuzz targets
//!   (all, or one) for a bounded time each, then minimise their corpus.
//! - `cargo xtask soak [N]`: N orders through both services, traces audited,
//!   then a SIGTERM mid-run; prints the summary.
//! - `cargo xtask dist [--out DIR] [--profile release|dev]`: the runtime
//!   tree a container image ships (see [`dist`]).
//! - `cargo xtask browser`: the trace explorer's pages in headless Chromium
//!   (installs Debian's `chromium` and `chromium-driver` if missing).
//! - `cargo xtask ci`: what CI runs: formatting, clippy (host and components,
//!   `-D warnings`), then `test`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod dist;
mod python;
mod scenarios;
mod toolchain;

/// The components the tests and the quickstart serve (`testbed`,
/// `forwarder` and `wasi-otel-guest` are only for the tests, `conformance`
/// for W3C trace-context harnesses).
const COMPONENTS: [&str; 6] = [
    "order",
    "payment",
    "testbed",
    "conformance",
    "forwarder",
    "wasi-otel-guest",
];
/// The target components are built for.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";
/// The components `cargo xtask up` serves: the two services, nothing else,
/// so that the first start builds no more than it runs.
const SERVICES: [&str; 2] = ["order", "payment"];
/// The fuzz targets in `fuzz/fuzz_targets`, each with a corpus in
/// `fuzz/corpus/<target>` that the workspace's tests replay.
const FUZZ_TARGETS: [&str; 5] = [
    "trace_context",
    "baggage",
    "headers",
    "order_request",
    "payment_request",
];
/// The cargo-fuzz release `cargo xtask fuzz` installs when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.1";
/// Seconds each target runs unless `cargo xtask fuzz TARGET SECONDS` says.
const DEFAULT_FUZZ_SECONDS: u64 = 60;
/// Orders `cargo xtask soak` sends unless `cargo xtask soak N` says.
const DEFAULT_SOAK_ORDERS: usize = 2000;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "build" => build_components(),
        "up" => build_services().and_then(|()| up(std::env::args().skip(2).collect())),
        "test" => build_components().and_then(|()| test()),
        "ci" => ci(),
        "dist" => dist::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "browser" => build_services().and_then(|()| browser()),
        "fuzz" => fuzz(std::env::args().nth(2), std::env::args().nth(3)),
        "soak" => build_components().and_then(|()| soak(std::env::args().nth(2))),
        "scenarios" => {
            let url = std::env::args().nth(2);
            scenarios::run(url.as_deref().unwrap_or(scenarios::DEFAULT_ORDER_URL))
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <up [HOST FLAGS…]|build|test|dist [--out DIR] [--profile release|dev]|scenarios [ORDER_URL]|fuzz [TARGET] [SECONDS]|soak [N]|browser|ci>"
            );
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
fn cargo_command() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
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
    command
}

fn cargo(args: &[&str]) -> Result<(), String> {
    let mut command = cargo_command();
    run(command.args(args), &format!("cargo {}", args.join(" ")))
}

/// Runs `command`, shown as `shown` (printed first, and named in errors),
/// and fails unless it exits successfully.
fn run(command: &mut Command, shown: &str) -> Result<(), String> {
    eprintln!("$ {shown}");
    let status = command.status().map_err(|e| {
        format!(
            "cannot run `{shown}` (`{}`): {e}",
            command.get_program().to_string_lossy()
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

fn component_args(first: &[&'static str]) -> Vec<&'static str> {
    let mut args = first.to_vec();
    for component in COMPONENTS {
        args.extend(["-p", component]);
    }
    args
}

/// Every component, for release: the services, the test components and the
/// Python payment service.
fn build_components() -> Result<(), String> {
    toolchain::ensure_target(WASM_TARGET)?;
    cargo(&component_args(&[
        "build",
        "--target",
        WASM_TARGET,
        "--release",
    ]))?;
    python::build(&workspace_root(), &target_dir())
}

/// The two service components `up` serves, built for release, with a word
/// first when this is the first build (it takes minutes, and cargo's own
/// progress is what shows it is working).
fn build_services() -> Result<(), String> {
    toolchain::ensure_target(WASM_TARGET)?;
    let target_dir = target_dir();
    let host = target_dir
        .join("debug")
        .join(format!("host{}", std::env::consts::EXE_SUFFIX));
    let first = !host.is_file()
        || SERVICES.iter().any(|name| {
            !target_dir
                .join(WASM_TARGET)
                .join("release")
                .join(format!("{name}.wasm"))
                .is_file()
        });
    if first {
        eprintln!(
            "first start: building the components, wasmtime and the host takes several \
             minutes (cargo's progress follows); later starts take seconds"
        );
    }
    let mut args = vec!["build", "--target", WASM_TARGET, "--release"];
    for name in SERVICES {
        args.extend(["-p", name]);
    }
    cargo(&args)
}

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Runs the host with both components and the trace explorer (`--ui`);
/// extra arguments go to the host. Unless `OTEL_TRACES_EXPORTER` says
/// otherwise, traces are drawn in the terminal and also sent over OTLP (to
/// Jaeger when it runs and holds the explorer's ports; otherwise the spans
/// reach the explorer in process). The order
/// component declares the payment service's origin itself, so no
/// `--allow-outbound` is needed.
fn up(extra: Vec<String>) -> Result<(), String> {
    let mut command = cargo_command();
    // Not `--quiet`: on a first start cargo's progress is the only sign
    // that the build is working; later, cargo prints one `Finished` line.
    command.args([
        "run",
        "-p",
        "host",
        "--",
        "order.wasm:8000",
        "payment.wasm:8001",
        // The trace explorer on the Jaeger UI's port, where every printed
        // trace link points (it says so and carries on if Jaeger has it).
        "--ui",
    ]);
    command.args(&extra);
    if std::env::var("OTEL_TRACES_EXPORTER").map_or(true, |v| v.trim().is_empty()) {
        command.env("OTEL_TRACES_EXPORTER", "console,otlp");
    }
    let shown = format!(
        "cargo run -p host -- order.wasm:8000 payment.wasm:8001 --ui {}",
        extra.join(" ")
    );
    run(&mut command, shown.trim_end())
}

/// Every test: the host's, then the guest crate's and xtask's. Two
/// commands, not `--workspace`: with the guests' `wit-bindgen` macros in the
/// same build, cargo unifies the features of the proc-macro dependencies
/// the host shares with them and compiles wasmtime a second time, minutes
/// on 2 cores, instead of reusing what `cargo run -p host` (`cargo xtask
/// up`) built.
fn test() -> Result<(), String> {
    cargo(&["test", "-p", "host"])?;
    cargo(&["test", "-p", "otel-guest", "-p", "xtask"])
}

/// The explorer's browser test (ignored by plain `cargo test`: it needs
/// Chromium), after installing Chromium and chromedriver from the Debian
/// packages when they are missing. `EXPLORER_SCREENSHOTS=docs` refreshes
/// the screenshots in docs/images.
fn browser() -> Result<(), String> {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    if !(on_path("chromium") && on_path("chromedriver")) {
        let mut install = Command::new("apt-get");
        install
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive");
        let hint = |error: String| {
            format!(
                "{error}: install Chromium and chromedriver (Debian: chromium, chromium-driver)"
            )
        };
        println!("xtask: installing chromium and chromium-driver for the browser test");
        if run(&mut install, "apt-get install -y chromium chromium-driver").is_err() {
            // A fresh machine's package lists may be missing or stale.
            run(Command::new("apt-get").arg("update"), "apt-get update").map_err(hint)?;
            run(&mut install, "apt-get install -y chromium chromium-driver").map_err(hint)?;
        }
    }
    cargo(&[
        "test",
        "-p",
        "host",
        "--test",
        "all",
        "--",
        "explorer::",
        "--ignored",
    ])
}

/// Runs `cargo fuzz`, from the workspace root, with the environment it needs
/// on a stable toolchain.
fn cargo_fuzz(args: &[&str]) -> Result<(), String> {
    let mut command = cargo_command();
    // cargo-fuzz passes nightly-only flags (`-Z…`); RUSTC_BOOTSTRAP lets the
    // stable compiler take them, so no nightly toolchain is needed.
    command.env("RUSTC_BOOTSTRAP", "1");
    // Its own directory beside the workspace's builds: the instrumented
    // artifacts share nothing with them.
    command.env("CARGO_TARGET_DIR", target_dir().join("fuzz"));
    command.current_dir(workspace_root());
    run(
        command.arg("fuzz").args(args),
        &format!("RUSTC_BOOTSTRAP=1 cargo fuzz {}", args.join(" ")),
    )
}

/// The workspace root: the xtask crate's parent.
fn workspace_root() -> std::path::PathBuf {
    let xtask = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map(|p| p.to_path_buf()).unwrap_or(xtask)
}

/// Fuzzes `target` (every target if none) for `seconds` each, then
/// minimises its corpus (`cargo fuzz cmin`) so that what is committed under
/// `fuzz/corpus/` stays small. A crash stops with the input saved under
/// `fuzz/artifacts/`: fix it, then copy the input into
/// `fuzz/regressions/<target>/` under a name that says what it was.
fn fuzz(target: Option<String>, seconds: Option<String>) -> Result<(), String> {
    let targets: Vec<&str> = match target.as_deref() {
        None | Some("all") => FUZZ_TARGETS.to_vec(),
        Some(name) if FUZZ_TARGETS.contains(&name) => vec![name],
        Some(name) => {
            return Err(format!(
                "no fuzz target `{name}`: pick one of {}",
                FUZZ_TARGETS.join(", ")
            ));
        }
    };
    let seconds = match seconds {
        None => DEFAULT_FUZZ_SECONDS,
        Some(s) => s
            .parse()
            .map_err(|e| format!("SECONDS `{s}` is not a number of seconds: {e}"))?,
    };
    let mut probe = cargo_command();
    let installed = probe
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        cargo(&[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            &format!("={CARGO_FUZZ_VERSION}"),
        ])?;
    }
    let max_time = format!("-max_total_time={seconds}");
    for target in targets {
        // No sanitizer: the code fuzzed is safe Rust (`unsafe_code = deny`),
        // where AddressSanitizer finds nothing and halves the speed; debug
        // assertions stay on, so overflow panics.
        let corpus = format!("fuzz/corpus/{target}");
        // Read, never written: seeds and fixed crashes, kept by name.
        let regressions = format!("fuzz/regressions/{target}");
        cargo_fuzz(&[
            "run",
            "-s",
            "none",
            "-a",
            target,
            &corpus,
            &regressions,
            "--",
            &max_time,
        ])?;
        // Edges only, not hit counts: a corpus of hundreds of inputs, not
        // thousands, that still reaches every edge the run reached.
        cargo_fuzz(&["cmin", "-s", "none", "-a", target, "--", "-use_counters=0"])?;
    }
    Ok(())
}

/// The soak test with `n` orders (default 2000), its summary printed.
fn soak(n: Option<String>) -> Result<(), String> {
    let orders = n.unwrap_or_else(|| DEFAULT_SOAK_ORDERS.to_string());
    orders
        .parse::<usize>()
        .map_err(|e| format!("N `{orders}` is not a number of orders: {e}"))?;
    let mut command = cargo_command();
    command.env("SOAK_ORDERS", &orders).args([
        "test",
        "-p",
        "host",
        "--test",
        "all",
        "--",
        "soak::",
        "--nocapture",
    ]);
    run(
        &mut command,
        &format!("SOAK_ORDERS={orders} cargo test -p host --test all -- soak:: --nocapture"),
    )
}

fn ci() -> Result<(), String> {
    toolchain::ensure_component("rustfmt")?;
    toolchain::ensure_component("clippy")?;
    toolchain::ensure_target(WASM_TARGET)?;
    cargo(&["fmt", "--all", "--check"])?;
    // Per package, for the reason `test` gives.
    cargo(&[
        "clippy",
        "-p",
        "host",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "host",
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
