//! `cargo xtask dist [--out DIR] [--profile release|dev]`: the runtime tree
//! a container image ships, built and laid out by one command, so that the
//! `Dockerfile` and CI run the same steps:
//!
//! ```text
//! DIR/bin/host                  the host binary
//! DIR/components/order.wasm     the service components (always release:
//! DIR/components/payment.wasm   the host compiles them again at load)
//! ```
//!
//! No compiled-component cache is shipped in the tree: the machine code
//! Cranelift emits depends on the CPU of the machine that compiles it and on
//! the host's flags (`--memory-limit-mib` changes the bounds checks), so a
//! cache filled at build time is only a hit where the build machine and the
//! flags match the node's. The Deployment gives the cache a writable volume
//! instead and pays one compilation per pod (docs/deploy.md).

use std::path::{Path, PathBuf};

/// Where the tree goes unless `--out` says otherwise.
const DEFAULT_OUT: &str = "target/dist";
/// The components a deployment serves.
const SERVICES: [&str; 2] = ["order", "payment"];

/// Cargo's profiles the host can be built with, by their `--profile` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Release,
    Dev,
}

impl Profile {
    /// The cargo command that builds the host binary in this profile.
    ///
    /// The dev host is the very binary the host's tests run, built by the
    /// command `cargo xtask test` starts with (`cargo test -p host`), so
    /// that after the tests (in CI) it is already there: a `cargo build -p
    /// host` would resolve features without the tests' dev-dependencies and
    /// compile wasmtime and the OpenTelemetry SDK a second time.
    fn host_build(self) -> &'static [&'static str] {
        match self {
            Profile::Release => &["build", "-p", "host", "--release"],
            Profile::Dev => &["test", "-p", "host", "--no-run"],
        }
    }

    /// The folder of `target/` cargo writes this profile's binaries to.
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        }
    }
}

/// Options of `cargo xtask dist`.
#[derive(Debug)]
struct Options {
    out: PathBuf,
    profile: Profile,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        out: PathBuf::from(DEFAULT_OUT),
        profile: Profile::Release,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("`{arg}` needs a value"))
                .cloned()
        };
        match arg.as_str() {
            "--out" => options.out = PathBuf::from(value()?),
            "--profile" => {
                options.profile = match value()?.as_str() {
                    "release" => Profile::Release,
                    "dev" => Profile::Dev,
                    other => return Err(format!("--profile `{other}`: pick release or dev")),
                }
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`: usage: cargo xtask dist [--out DIR] [--profile release|dev]"
                ));
            }
        }
    }
    Ok(options)
}

/// Builds the host and the service components, then lays out the tree.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let root = crate::workspace_root();
    let out = if options.out.is_absolute() {
        options.out.clone()
    } else {
        root.join(&options.out)
    };

    crate::toolchain::ensure_target(crate::WASM_TARGET)?;
    crate::cargo(options.profile.host_build())?;
    let mut components = vec!["build", "--target", crate::WASM_TARGET, "--release"];
    for service in SERVICES {
        components.extend(["-p", service]);
    }
    crate::cargo(&components)?;

    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    copy(
        &target.join(options.profile.dir()).join("host"),
        &out.join("bin/host"),
    )?;
    for service in SERVICES {
        let file = format!("{service}.wasm");
        copy(
            &target.join(crate::WASM_TARGET).join("release").join(&file),
            &out.join("components").join(&file),
        )?;
    }
    println!(
        "runtime tree in {}: bin/host, components/{{{}}}.wasm",
        out.display(),
        SERVICES.join(",")
    );
    Ok(())
}

/// Copies `from` to `to` (permissions included), creating `to`'s folder,
/// through a temporary beside it: a running `bin/host` is replaced, not
/// overwritten in place.
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    let dir = to
        .parent()
        .ok_or_else(|| format!("`{}` has no parent folder", to.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial).map_err(|e| {
        format!(
            "cannot copy `{}` to `{}`: {e}",
            from.display(),
            partial.display()
        )
    })?;
    std::fs::rename(&partial, to).map_err(|e| {
        format!(
            "cannot move `{}` to `{}`: {e}",
            partial.display(),
            to.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The defaults, both flags, and the errors a typo gets.
    #[test]
    fn parses_the_command_line() {
        let default = parse(&[]).unwrap();
        assert_eq!(
            (default.out, default.profile),
            (PathBuf::from(DEFAULT_OUT), Profile::Release)
        );
        let dev = parse(&args(&["--profile", "dev", "--out", "/tmp/d"])).unwrap();
        assert_eq!(
            (dev.out, dev.profile),
            (PathBuf::from("/tmp/d"), Profile::Dev)
        );
        assert!(
            parse(&args(&["--profile", "debug"]))
                .unwrap_err()
                .contains("release or dev")
        );
        assert!(
            parse(&args(&["--out"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&args(&["dist"]))
                .unwrap_err()
                .contains("unknown argument")
        );
    }
}
