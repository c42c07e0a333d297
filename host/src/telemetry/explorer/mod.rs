//! `--ui`: a trace explorer served by the host itself, on the Jaeger UI's
//! port, so that every trace link the host prints opens with nothing else
//! installed.
//!
//! # What it owns
//! - [`store`]: the bounded store of the last traces, the one place spans
//!   are kept, and the log records waiting for their span;
//! - [`record`]: one stored span, as the SDK ended it or as OTLP delivered
//!   it, with its log lines; what search reads from it, and its OTLP form;
//! - [`feed`]: the span processor that hands this process's own finished
//!   spans to the store, in process;
//! - [`otlp_in`]: OTLP receivers (gRPC and HTTP, on Jaeger's ports 4317 and
//!   4318) for the spans and log records of other processes;
//! - [`query`] and [`jaeger`]: search over the store and Jaeger's JSON shapes;
//! - [`api`]: the HTTP server: Jaeger's query API and the pages;
//! - [`v3`]: Jaeger's `api/v3` (OTLP/JSON traces), parameters to answers;
//! - [`pages`]: the HTML, CSS and JavaScript, embedded in the binary.
//!
//! # What it may use
//! The OpenTelemetry SDK and `opentelemetry-proto` types, hyper and tonic;
//! from this crate only [`crate::telemetry::random_root`] (so a stored root
//! carries the flags its OTLP export would) and the OTLP endpoint settings
//! in [`crate::telemetry::config`]. Nothing else of the host reaches in: main starts an
//! [`Explorer`], and telemetry adds its [`Explorer::processor`] to each
//! tracer provider and asks [`Explorer::receives`] whether its OTLP
//! exporter would only be sending spans back to this process.

pub mod api;
pub mod feed;
pub mod jaeger;
pub mod otlp_in;
pub mod pages;
pub mod query;
pub mod record;
pub mod store;
pub mod v3;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use feed::SpanLogs;
pub use store::{Limits, Store};

use crate::telemetry::config::{OtelConfig, Protocol};

/// The explorer's address unless `--ui ADDR` says otherwise.
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:16686";
/// The OTLP/gRPC receiver's address unless `--ui-otlp-grpc` says otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:4317";
/// The OTLP/HTTP receiver's address unless `--ui-otlp-http` says otherwise.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:4318";

/// How long a client of the pages or of OTLP/HTTP may take to send a
/// request's headers, and an idle connection may stay open: a client that
/// holds connections open without sending cannot pile them up.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where to serve and what to keep.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pages and the API.
    pub ui: SocketAddr,
    /// The OTLP/gRPC receiver; `None` receives no gRPC.
    pub grpc: Option<SocketAddr>,
    /// The OTLP/HTTP receiver; `None` receives no OTLP/HTTP.
    pub http: Option<SocketAddr>,
    /// The store's bounds.
    pub limits: Limits,
}

/// A running explorer.
#[derive(Debug, Clone)]
pub struct Explorer {
    store: Arc<Store>,
    /// The guests' log lines of spans still open in this process, attached
    /// to their span (as Jaeger logs) when it is stored.
    logs: Arc<feed::SpanLogs>,
    ui: SocketAddr,
    /// The receivers' bound addresses (`None`: not receiving).
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
}

impl Explorer {
    /// Binds the explorer and its receivers and serves them for the life of
    /// the process. `None` when the explorer's port is taken (Jaeger is
    /// running, most likely): one line says so and the host carries on
    /// without it; a receiver whose port is taken is left out the same way.
    pub async fn start(options: Options) -> wasmtime::Result<Option<Explorer>> {
        let ui = match tokio::net::TcpListener::bind(options.ui).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!(
                    "explorer: `{}` is taken ({error}; Jaeger?): serving no explorer",
                    options.ui
                );
                return Ok(None);
            }
        };
        if !is_loopback(options.ui.ip()) {
            eprintln!(
                "warning: the explorer listens on `{}`, beyond this machine: anyone who can \
                 reach it reads every trace and may send spans (no authentication)",
                options.ui
            );
        }
        let store = Arc::new(Store::new(options.limits));
        let grpc = match options.grpc {
            Some(addr) => otlp_in::start_grpc(addr, store.clone()).await,
            None => None,
        };
        let http = match options.http {
            Some(addr) => otlp_in::start_http(addr, store.clone()).await,
            None => None,
        };
        let explorer = Explorer {
            store,
            logs: Arc::default(),
            ui: ui.local_addr()?,
            grpc,
            http,
        };
        tokio::spawn(api::serve(ui, explorer.store.clone()));
        Ok(Some(explorer))
    }

    /// The store, for tests and tools in this process.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The span processor that copies a provider's finished spans into the
    /// store.
    pub fn processor(&self) -> feed::Feed {
        feed::Feed::new(self.store.clone(), self.logs.clone())
    }

    /// Where the guests' log lines go to be shown under their span.
    pub fn span_logs(&self) -> Arc<feed::SpanLogs> {
        self.logs.clone()
    }

    /// Whether an OTLP exporter configured by `config` would deliver to one
    /// of this explorer's own receivers: same protocol, same port, and a
    /// host that is this machine. Such an exporter is skipped, since the
    /// process's spans already reach the store in process; every other
    /// endpoint (a Jaeger, a collector, another host) is exported to as
    /// configured.
    pub fn receives(&self, config: &OtelConfig) -> bool {
        self.receives_at(config.protocol, &config.endpoint)
    }

    /// Whether `endpoint` over `protocol` is one of this explorer's own
    /// receivers (see [`Explorer::receives`]).
    pub fn receives_at(&self, protocol: Protocol, endpoint: &str) -> bool {
        let bound = match protocol {
            Protocol::Grpc => self.grpc,
            Protocol::HttpProtobuf => self.http,
        };
        let Some(bound) = bound else { return false };
        let Some((host, port)) = host_and_port(endpoint) else {
            return false;
        };
        if port != bound.port() {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Some(IpAddr::from([127, 0, 0, 1]))
        } else {
            host.parse::<IpAddr>().ok()
        };
        ip.is_some_and(|ip| {
            ip == bound.ip()
                || (ip.is_loopback() && (bound.ip().is_loopback() || bound.ip().is_unspecified()))
        })
    }

    /// One line for start-up: where the pages are and what is received.
    pub fn summary(&self) -> String {
        let mut receiving = Vec::new();
        if let Some(addr) = self.grpc {
            receiving.push(format!("grpc {addr}"));
        }
        if let Some(addr) = self.http {
            receiving.push(format!("http {addr}"));
        }
        let limits = self.store.limits();
        format!(
            "explorer: http://{} · OTLP in (traces, logs): {} · keeps {} traces or {} MiB",
            self.ui,
            if receiving.is_empty() {
                "none".to_string()
            } else {
                receiving.join(", ")
            },
            limits.max_traces,
            limits.max_bytes >> 20
        )
    }
}

/// A receiver's address, or `none`: the value of `--ui-otlp-grpc` and
/// `--ui-otlp-http`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Receiving(pub Option<SocketAddr>);

impl Receiving {
    /// Parses `ADDR` or `none`.
    pub fn parse(text: &str) -> Result<Receiving, String> {
        if text == "none" {
            return Ok(Receiving(None));
        }
        text.parse()
            .map(|addr| Receiving(Some(addr)))
            .map_err(|_| format!("`{text}` is neither IP:PORT nor none"))
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// The host and port of an endpoint URL such as `http://localhost:4317/x`;
/// the port defaults to the scheme's.
fn host_and_port(endpoint: &str) -> Option<(&str, u16)> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => {
            Some((host, port.parse().ok()?))
        }
        _ => Some((authority, default)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The exporter is skipped only for an endpoint that is this very
    /// receiver: loopback (or its own address), its port, its protocol.
    #[rustfmt::skip]
    #[test]
    fn self_export_rule() {
        let explorer = Explorer {
            store: Arc::new(Store::new(Limits::default())),
            logs: Arc::default(),
            ui: "127.0.0.1:16686".parse().unwrap(),
            grpc: Some("127.0.0.1:4317".parse().unwrap()),
            http: Some("127.0.0.1:4318".parse().unwrap()),
        };
        let config = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            OtelConfig::from_env(move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())).unwrap()
        };
        let endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let protocol = "OTEL_EXPORTER_OTLP_PROTOCOL";
        // (environment, skipped)
        let cases: [(&[(&str, &str)], bool); 9] = [
            (&[], true),
            (&[(endpoint, "http://127.0.0.1:4317")], true),
            (&[(endpoint, "http://[::1]:4317")], true),
            (&[(endpoint, "http://localhost:4318"), (protocol, "http/protobuf")], true),
            (&[(endpoint, "http://localhost:4317"), (protocol, "http/protobuf")], false),
            (&[(endpoint, "http://localhost:4318")], false),
            (&[(endpoint, "http://collector:4317")], false),
            (&[(endpoint, "http://10.0.0.9:4317")], false),
            (&[(endpoint, "http://localhost:14317")], false),
        ];
        for (env, skipped) in cases {
            assert_eq!(explorer.receives(&config(env)), skipped, "{env:?}");
        }
    }

    #[test]
    fn endpoint_host_and_port() {
        assert_eq!(
            host_and_port("http://localhost:4317"),
            Some(("localhost", 4317))
        );
        assert_eq!(
            host_and_port("http://[::1]:4318/v1/traces"),
            Some(("[::1]", 4318))
        );
        assert_eq!(host_and_port("https://c/v1/traces"), Some(("c", 443)));
    }
}
