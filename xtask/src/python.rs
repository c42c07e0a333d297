//! The Python component (`components/payment-py`), built with
//! componentize-py from PyPI.
//!
//! The tool is installed at a pinned version into a virtual environment under
//! the target directory (`target/componentize-py/venv`), only when it is
//! missing or another version, so a fresh machine needs nothing beyond
//! CPython 3 with `venv` and `pip`. The component is rebuilt only when its
//! source, the WIT or the tool is newer than the output, then gets
//! `language: Python` in its `producers` section (see [`mark_language`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The componentize-py release the component is built with.
const COMPONENTIZE_PY: &str = "0.25.1";
/// The interpreter that creates the venv, unless `PYTHON` names another.
const DEFAULT_PYTHON: &str = "python3";
/// The Python app's folder, relative to the workspace root.
const SOURCE_DIR: &str = "components/payment-py";
/// The app's module (the file `app.py`).
const APP_MODULE: &str = "app";
/// The WIT world it implements (`wit/world.wit`).
const WORLD: &str = "service";
/// The component's file name in `target/wasm32-wasip2/release`.
const OUTPUT: &str = "payment-py.wasm";

/// Builds `payment-py.wasm`, installing componentize-py first if needed.
pub fn build(workspace: &Path, target_dir: &Path) -> Result<(), String> {
    let componentize_py = install(target_dir)?;
    let source = workspace.join(SOURCE_DIR);
    let wit = workspace.join("wit");
    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    let output = out_dir.join(OUTPUT);
    let inputs = [
        source.join(format!("{APP_MODULE}.py")),
        componentize_py.clone(),
    ];
    if is_fresh(&output, &inputs, &wit) {
        eprintln!("{OUTPUT} is up to date");
        return Ok(());
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create `{}`: {e}", out_dir.display()))?;
    // Written beside the output and renamed, so that a failed build never
    // leaves a half-written component for the host to find.
    let partial = out_dir.join(format!("{OUTPUT}.partial"));
    run(Command::new(&componentize_py)
        .arg("--wit-path")
        .arg(&wit)
        .args(["--world", WORLD, "--quiet", "componentize", APP_MODULE])
        .arg("--python-path")
        .arg(&source)
        .arg("--output")
        .arg(&partial))?;
    mark_language(&partial)?;
    std::fs::rename(&partial, &output).map_err(|e| {
        format!(
            "cannot move `{}` to `{}`: {e}",
            partial.display(),
            output.display()
        )
    })?;
    eprintln!("built {}", output.display());
    Ok(())
}

/// The venv's `componentize-py`, at [`COMPONENTIZE_PY`]: installed with pip
/// unless it already answers with that version.
fn install(target_dir: &Path) -> Result<PathBuf, String> {
    let venv = target_dir.join("componentize-py").join("venv");
    let bin = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let tool = bin.join("componentize-py");
    let wanted = format!("componentize-py {COMPONENTIZE_PY}");
    let installed = Command::new(&tool)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if installed.as_deref() == Some(wanted.as_str()) {
        return Ok(tool);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_string());
    let hint = format!(
        "the Python payment component needs CPython 3 with `venv` and `pip` \
         (Debian: `apt-get install python3 python3-venv python3-pip`; or set PYTHON to an \
         interpreter) and access to PyPI for `componentize-py=={COMPONENTIZE_PY}`"
    );
    if !bin.join("python").is_file() {
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e}: {hint}"))?;
    }
    run(Command::new(bin.join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("componentize-py=={COMPONENTIZE_PY}"),
    ]))
    .map_err(|e| format!("{e}: {hint}"))?;
    Ok(tool)
}

/// Adds `language: Python` (and the tool that built it) to the component's
/// own `producers` section, where the host reads a component's language.
/// componentize-py records only `processed-by` there, and its one core
/// module that names a language is its runtime glue, written in Rust.
fn mark_language(component: &Path) -> Result<(), String> {
    let bytes = std::fs::read(component)
        .map_err(|e| format!("cannot read `{}`: {e}", component.display()))?;
    let mut producers = wasm_metadata::Producers::empty();
    producers.add("language", "Python", "");
    producers.add("processed-by", "componentize-py", COMPONENTIZE_PY);
    let marked = producers.add_to_wasm(&bytes).map_err(|e| {
        format!(
            "cannot add a producers section to `{}`: {e:#}",
            component.display()
        )
    })?;
    std::fs::write(component, marked)
        .map_err(|e| format!("cannot write `{}`: {e}", component.display()))
}

/// Whether `output` is newer than every input file and every `.wit` file
/// under `wit`.
fn is_fresh(output: &Path, inputs: &[PathBuf], wit: &Path) -> bool {
    let Some(built) = modified(output) else {
        return false;
    };
    let mut files = inputs.to_vec();
    wit_files(wit, &mut files);
    files
        .iter()
        .all(|file| modified(file).is_some_and(|time| time < built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn wit_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            wit_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "wit") {
            files.push(path);
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    crate::run(command, &shown)
}
