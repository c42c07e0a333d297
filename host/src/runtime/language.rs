//! The language a component was written in, for its service's resource.
//!
//! Read from the WebAssembly tool conventions' `producers` custom section,
//! field `language`, which toolchains write and no component has to opt into:
//! first the component's own section (what the toolchain that made the whole
//! component says; the Python build adds `language: Python` there), else the
//! first `language` of the core modules and components inside it, in order
//! (a Rust component has none of its own; its main module says `Rust`).
//!
//! The attribute is `wasm.component.language`
//! ([`crate::telemetry::semconv::WASM_COMPONENT_LANGUAGE`]), beside
//! the host's other `wasm.*` attributes, with the lowercase names of
//! `telemetry.sdk.language` (`rust`, `python`, `go`, …). No semantic
//! convention fits: `telemetry.sdk.language` names the SDK that produced the
//! telemetry, which is the host's (opentelemetry-rust) for every component,
//! and `process.runtime.*` describes the process, which is the host on
//! wasmtime whatever the component's language.

use wasmparser::{KnownCustom, Parser, Payload};

/// The language of the component (or core module) `bytes`, if it says one;
/// a binary that does not parse has none (the host refuses it elsewhere).
pub fn of_component(bytes: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut nested = None;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(section) => {
                let KnownCustom::Producers(reader) = section.as_known() else {
                    continue;
                };
                let Some(language) = first_language(reader) else {
                    continue;
                };
                if depth == 0 {
                    return Some(language);
                }
                nested.get_or_insert(language);
            }
            _ => {}
        }
    }
    nested
}

/// The first value of a producers section's `language` field, normalised.
fn first_language(reader: wasmparser::ProducersSectionReader<'_>) -> Option<String> {
    for field in reader {
        let field = field.ok()?;
        if field.name != "language" {
            continue;
        }
        let value = field.values.into_iter().next()?.ok()?;
        return Some(normalise(value.name));
    }
    None
}

/// The `telemetry.sdk.language` spelling of a producers language name:
/// lowercase, without a standard's year (`C11` is `c`), `C++` as `cpp`.
fn normalise(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    match base {
        "c++" => "cpp".to_string(),
        "" => lower,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producers section with `field: values…`, encoded by hand.
    fn producers(fields: &[(&str, &[&str])]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        let mut body = Vec::new();
        string(&mut body, "producers");
        body.push(fields.len() as u8);
        for (name, values) in fields {
            string(&mut body, name);
            body.push(values.len() as u8);
            for value in *values {
                string(&mut body, value);
                string(&mut body, "");
            }
        }
        let mut section = vec![0, body.len() as u8];
        section.extend(body);
        section
    }

    const MODULE_HEADER: [u8; 8] = [0, b'a', b's', b'm', 1, 0, 0, 0];
    const COMPONENT_HEADER: [u8; 8] = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];

    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MODULE_HEADER.to_vec();
        sections.iter().for_each(|s| out.extend(s));
        out
    }

    fn component(nested_module: Option<Vec<u8>>, own: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = COMPONENT_HEADER.to_vec();
        if let Some(module) = nested_module {
            out.push(1); // core module section
            out.push(module.len() as u8);
            out.extend(module);
        }
        if let Some(section) = own {
            out.extend(section);
        }
        out
    }

    /// A Rust component: only its core module names a language.
    #[test]
    fn nested_module_language() {
        let inner = module(&[producers(&[
            ("language", &["Rust", "C11"]),
            ("processed-by", &["rustc"]),
        ])]);
        let bytes = component(
            Some(inner),
            Some(producers(&[("processed-by", &["wit-component"])])),
        );
        assert_eq!(of_component(&bytes).as_deref(), Some("rust"));
    }

    /// The component's own section wins over its modules' (the Python
    /// component's runtime glue is a Rust module).
    #[test]
    fn own_language_wins() {
        let inner = module(&[producers(&[("language", &["Rust"])])]);
        let bytes = component(Some(inner), Some(producers(&[("language", &["Python"])])));
        assert_eq!(of_component(&bytes).as_deref(), Some("python"));
    }

    /// No language anywhere, or not a wasm binary: no attribute.
    #[test]
    fn none_without_language() {
        let bytes = component(None, Some(producers(&[("processed-by", &["x"])])));
        assert_eq!(of_component(&bytes), None);
        assert_eq!(of_component(b"not wasm"), None);
    }

    /// Producers names become `telemetry.sdk.language` spellings.
    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("Rust"), "rust");
        assert_eq!(normalise("C11"), "c");
        assert_eq!(normalise("C++"), "cpp");
        assert_eq!(normalise("Python"), "python");
        assert_eq!(normalise("TinyGo"), "tinygo");
    }
}
