//! What the Rust toolchain must have before a build: the `wasm32-wasip2`
//! standard library, and `rustfmt` and `clippy` for `cargo xtask ci`.
//!
//! Each is added through rustup when missing, with one line saying so; a
//! toolchain without rustup (a distribution's Rust) gets a message saying
//! what to install instead.

use std::path::PathBuf;
use std::process::Command;

/// Adds the standard library for `target` through rustup unless the
/// active toolchain already has it.
pub fn ensure_target(target: &str) -> Result<(), String> {
    if has_target(target)? {
        return Ok(());
    }
    if !has_rustup() {
        return Err(format!(
            "the Rust standard library for `{target}` is not installed, and there is no rustup \
             to add it: install Rust through rustup (https://rustup.rs), or your distribution's \
             `{target}` standard library, then run this again"
        ));
    }
    eprintln!("the `{target}` target is missing: adding it with `rustup target add {target}`");
    crate::run(
        Command::new("rustup").args(["target", "add", target]),
        &format!("rustup target add {target}"),
    )
}

/// Adds the rustup component `name` (`rustfmt`, `clippy`) unless `cargo`
/// already runs it.
pub fn ensure_component(name: &str) -> Result<(), String> {
    let subcommand = match name {
        "rustfmt" => "fmt",
        other => other,
    };
    let works = crate::cargo_command()
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        return Ok(());
    }
    if !has_rustup() {
        return Err(format!(
            "`cargo {subcommand}` does not run and there is no rustup to add `{name}`: install \
             your distribution's `{name}` package, then run this again"
        ));
    }
    eprintln!("`{name}` is missing: adding it with `rustup component add {name}`");
    crate::run(
        Command::new("rustup").args(["component", "add", name]),
        &format!("rustup component add {name}"),
    )
}

/// Whether the active toolchain's sysroot holds the standard library for
/// `target`: asked of `rustc` itself, so it answers for rustup and
/// distribution toolchains alike.
fn has_target(target: &str) -> Result<bool, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run `{rustc} --print sysroot`: {e}: is Rust installed?"))?;
    if !out.status.success() {
        return Err(format!(
            "`{rustc} --print sysroot` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(sysroot
        .join("lib")
        .join("rustlib")
        .join(target)
        .join("lib")
        .is_dir())
}

fn has_rustup() -> bool {
    Command::new("rustup")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}
