//! The trace explorer (`--ui`) through real hosts serving the real
//! components: Jaeger's API over real HTTP, OTLP from a second host
//! process, the store's bounds, bad parameters, hostile OTLP, and the pages
//! in a real headless Chromium.

mod api;
mod browser;
mod otlp;

use crate::common::*;
use serde_json::Value;

/// A host serving the explorer, with the addresses it printed.
pub struct Explorer {
    pub host: Host,
    /// `http://127.0.0.1:PORT`, the pages and the API.
    pub ui: String,
    /// The OTLP/gRPC receiver's endpoint URL.
    pub grpc: String,
    /// The OTLP/HTTP receiver's base URL.
    pub http: String,
}

/// The explorer flags for free ports everywhere (no test takes 16686).
pub fn ui_args() -> Vec<&'static str> {
    vec![
        "--ui=127.0.0.1:0",
        "--ui-otlp-grpc",
        "127.0.0.1:0",
        "--ui-otlp-http",
        "127.0.0.1:0",
    ]
}

impl Explorer {
    /// Reads the explorer line of `host`'s start-up output.
    pub fn of(host: Host) -> Explorer {
        let out = host.stdout.lock().unwrap().clone();
        let line = out
            .lines()
            .find(|l| l.starts_with("explorer: "))
            .unwrap_or_else(|| panic!("no explorer line in:\n{out}"))
            .to_string();
        // An address after `prefix`, empty when the line has none.
        let field = |prefix: &str| match line.find(prefix) {
            Some(at) => line[at + prefix.len()..]
                .split([' ', ','])
                .next()
                .unwrap()
                .to_string(),
            None => String::new(),
        };
        let url = |prefix: &str| match field(prefix) {
            addr if addr.is_empty() => addr,
            addr => format!("http://{addr}"),
        };
        Explorer {
            ui: url("explorer: http://"),
            grpc: url("grpc "),
            http: url("http "),
            host,
        }
    }

    /// Both services in one process with the explorer, exporting to `endpoint`.
    pub async fn one_process(endpoint: &str, extra: &[&str]) -> Explorer {
        let mut args = ui_args();
        args.extend_from_slice(extra);
        Explorer::of(one_process(endpoint, &[], &args).await)
    }

    /// GET `path` from the explorer.
    pub async fn get(&self, path: &str) -> Reply {
        send("GET", &format!("{}{path}", self.ui), &[], "").await
    }

    /// GET `path` and its JSON, asserting 200.
    pub async fn json(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_eq!(
            reply.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }

    /// Waits until trace `id` holds `count` spans; returns the Jaeger trace.
    pub async fn trace(&self, id: &str, count: usize) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let reply = self.get(&format!("/api/traces/{id}")).await;
            if reply.status == 200 {
                let trace = reply.json()["data"][0].clone();
                let spans = trace["spans"].as_array().unwrap().len();
                if spans >= count {
                    assert_eq!(spans, count, "trace {id}: {trace:#}");
                    return trace;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "trace {id} never had {count} spans"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The store's counters.
    pub async fn stats(&self) -> Value {
        self.json("/api/explorer/stats").await
    }
}

/// The span named `name` in a Jaeger trace.
pub fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == name)
        .unwrap_or_else(|| panic!("no span `{name}` in {trace:#}"))
}

/// The value of the tag (or log field) `key` in a Jaeger list of them.
pub fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a Value> {
    tags.as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

/// The log lines (`event` `log`) of span `name` in a Jaeger trace, as
/// (`level`, `message`).
pub fn log_lines(trace: &Value, name: &str) -> Vec<(String, String)> {
    span(trace, name)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|log| tag(&log["fields"], "event").is_some_and(|e| e == "log"))
        .map(|log| {
            let field = |key| {
                tag(&log["fields"], key)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            (field("level"), field("message"))
        })
        .collect()
}

/// A (`level`, `message`) pair, as [`log_lines`] returns them.
pub fn line(level: &str, message: &str) -> (String, String) {
    (level.to_string(), message.to_string())
}

/// The trace id a response's `traceresponse` header names.
pub fn trace_of(reply: &Reply) -> String {
    reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string()
}

/// POSTs an order; returns its trace id.
pub async fn order(url: &str, body: &str) -> String {
    let reply = send("POST", &format!("{url}/orders"), &[], body).await;
    reply.json()["trace_id"].as_str().unwrap().to_string()
}
