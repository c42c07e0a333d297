//! The benchmark's OTLP receiver: accepts OTLP/gRPC exports of all three
//! signals and only counts them (spans, distinct traces and trace export
//! calls; log records; metrics), so that the benchmark can compare what
//! arrived with what the requests should have produced, while costing the
//! machine as little as possible. Logs and metrics are accepted, as a
//! collector would, so that a host exporting them does the whole of that
//! work (a refused export costs less than a delivered one).
//!
//! It stands in for a collector that would run on another machine, so it
//! decodes each export only as deep as counting needs: the nesting of the
//! OTLP envelope (resource, scope, span) and each span's trace id, skipping
//! every other field in place. A full decode of each span (names,
//! attributes, events) cost 36 µs of CPU per order (six spans) on the
//! benchmark's 2-core machine, the CPU the services under test compete for.
//!
//! The counts are served as JSON on a tiny HTTP endpoint:
//! `GET /counts` → `{"spans":N,"traces":N,"exports":N,"log_records":N,"metrics":N}`,
//! `POST /reset` → zeroes them.
//!
//! ```sh
//! span-counter --grpc-port 4317 --http-port 4390
//! ```

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tokio::net::TcpListener;
use tonic::codegen::{BoxFuture, Service, StdError};

/// Count the spans, log records and metrics exported to it over OTLP/gRPC.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The OTLP/gRPC port, on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = 4317)]
    grpc_port: u16,
    /// The port of the counts endpoint (`GET /counts`, `POST /reset`), on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = 4390)]
    http_port: u16,
}

/// What has arrived since the last reset.
#[derive(Default)]
struct Counts {
    spans: u64,
    exports: u64,
    traces: HashSet<[u8; 16]>,
    log_records: u64,
    metrics: u64,
}

/// The counts, shared by the gRPC service and the HTTP endpoint.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<Counts>>);

impl Counter {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        // Counting cannot leave the counts half-updated: a poisoned lock is fine.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn count_logs(&self, request: &LogsRequest) {
        let records = request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum::<u64>();
        self.with(|counts| counts.log_records += records);
    }

    fn count_metrics(&self, request: &MetricsRequest) {
        let metrics = request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .map(|s| s.metrics.len() as u64)
            .sum::<u64>();
        self.with(|counts| counts.metrics += metrics);
    }

    fn count(&self, request: &ExportRequest) {
        self.with(|counts| {
            counts.exports += 1;
            let spans = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans);
            for span in spans {
                counts.spans += 1;
                if let Ok(id) = <[u8; 16]>::try_from(span.trace_id.as_slice()) {
                    counts.traces.insert(id);
                }
            }
        });
    }
}

/// `ExportTraceServiceRequest` as far as counting needs it: the field
/// numbers are those of `opentelemetry/proto/collector/trace/v1` and
/// `opentelemetry/proto/trace/v1`; prost skips the fields not named here.
#[derive(Clone, PartialEq, prost::Message)]
struct ExportRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// `ResourceSpans`, its `scope_spans` only.
#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

/// `ScopeSpans`, its `spans` only.
#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<SpanId>,
}

/// `Span`, its `trace_id` only.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanId {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
}

/// `ExportLogsServiceRequest` as far as counting needs it (the nesting of
/// `opentelemetry/proto/logs/v1` down to each record, whose fields are
/// skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct LogsRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`, its `scope_logs` only.
#[derive(Clone, PartialEq, prost::Message)]
struct ResourceLogs {
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<ScopeLogs>,
}

/// `ScopeLogs`, its `log_records`, each skipped whole.
#[derive(Clone, PartialEq, prost::Message)]
struct ScopeLogs {
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<Skipped>,
}

/// `ExportMetricsServiceRequest` as far as counting needs it (the nesting
/// of `opentelemetry/proto/metrics/v1` down to each metric).
#[derive(Clone, PartialEq, prost::Message)]
struct MetricsRequest {
    #[prost(message, repeated, tag = "1")]
    resource_metrics: Vec<ResourceMetrics>,
}

/// `ResourceMetrics`, its `scope_metrics` only.
#[derive(Clone, PartialEq, prost::Message)]
struct ResourceMetrics {
    #[prost(message, repeated, tag = "2")]
    scope_metrics: Vec<ScopeMetrics>,
}

/// `ScopeMetrics`, its `metrics`, each skipped whole.
#[derive(Clone, PartialEq, prost::Message)]
struct ScopeMetrics {
    #[prost(message, repeated, tag = "2")]
    metrics: Vec<Skipped>,
}

/// A message counted, none of its fields read.
#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

/// One export method: counts each request with `count`, answers the empty
/// response `Resp`.
struct Export<Req, Resp> {
    count: Arc<dyn Fn(&Req) + Send + Sync>,
    response: std::marker::PhantomData<fn() -> Resp>,
}

impl<Req: Send + 'static, Resp: Default + Send + 'static> tonic::server::UnaryService<Req>
    for Export<Req, Resp>
{
    type Response = Resp;
    type Future = BoxFuture<tonic::Response<Resp>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        (self.count)(request.get_ref());
        Box::pin(std::future::ready(Ok(
            tonic::Response::new(Resp::default()),
        )))
    }
}

/// Serves `request` if it is the `Export` call of `service`, decoding it as
/// the lean `Req` (what a generated server does, with the lean message in
/// place of the full one).
fn export<Req, Resp, B>(
    service: &'static str,
    request: hyper::http::Request<B>,
    count: impl Fn(&Req) + Send + Sync + 'static,
) -> BoxFuture<hyper::http::Response<tonic::body::Body>, Infallible>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    if request
        .uri()
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(service))
        != Some("/Export")
    {
        return Box::pin(async {
            Ok(tonic::Status::unimplemented("only Export is counted here").into_http())
        });
    }
    let method = Export::<Req, Resp> {
        count: Arc::new(count),
        response: std::marker::PhantomData,
    };
    Box::pin(async move {
        let codec = tonic_prost::ProstCodec::<Resp, Req>::default();
        Ok(tonic::server::Grpc::new(codec).unary(method, request).await)
    })
}

/// An OTLP service, `$name`, whose exports `$count` counts.
macro_rules! otlp_service {
    ($service:ident, $name:literal, $request:ty, $response:ty, $count:ident) => {
        #[derive(Clone)]
        struct $service(Counter);

        impl<B> Service<hyper::http::Request<B>> for $service
        where
            B: hyper::body::Body + Send + 'static,
            B::Error: Into<StdError> + Send + 'static,
        {
            type Response = hyper::http::Response<tonic::body::Body>;
            type Error = Infallible;
            type Future = BoxFuture<Self::Response, Self::Error>;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: hyper::http::Request<B>) -> Self::Future {
                let counter = self.0.clone();
                export::<$request, $response, B>($name, request, move |r| counter.$count(r))
            }
        }

        impl tonic::server::NamedService for $service {
            const NAME: &'static str = $name;
        }
    };
}

otlp_service!(
    Traces,
    "opentelemetry.proto.collector.trace.v1.TraceService",
    ExportRequest,
    ExportTraceServiceResponse,
    count
);
otlp_service!(
    Logs,
    "opentelemetry.proto.collector.logs.v1.LogsService",
    LogsRequest,
    ExportLogsServiceResponse,
    count_logs
);
otlp_service!(
    Metrics,
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    MetricsRequest,
    ExportMetricsServiceResponse,
    count_metrics
);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let counter = Counter::default();
    let grpc = SocketAddr::from(([127, 0, 0, 1], cli.grpc_port));
    let http = SocketAddr::from(([127, 0, 0, 1], cli.http_port));
    let grpc_listener = TcpListener::bind(grpc)
        .await
        .with_context(|| format!("cannot listen on `{grpc}` for OTLP/gRPC: is the port taken?"))?;
    let http_listener = TcpListener::bind(http)
        .await
        .with_context(|| format!("cannot listen on `{http}` for the counts: is the port taken?"))?;
    println!("span-counter: OTLP/gRPC on http://{grpc}, counts on http://{http}/counts");
    let endpoint = counter.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = http_listener.accept().await else {
                continue;
            };
            let counter = endpoint.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(counter.clone(), request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    tonic::transport::Server::builder()
        .add_service(Traces(counter.clone()))
        .add_service(Logs(counter.clone()))
        .add_service(Metrics(counter))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc_listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await
        .context("the OTLP/gRPC server failed")
}

/// `GET /counts` and `POST /reset`.
async fn answer<B>(
    counter: Counter,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reset = match (request.method(), request.uri().path()) {
        (&Method::GET, "/counts") => false,
        (&Method::POST, "/reset") => true,
        _ => {
            let mut response = Response::new(Full::new(Bytes::from_static(
                b"GET /counts or POST /reset\n",
            )));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        }
    };
    let body = counter.with(|counts| {
        let body = format!(
            "{{\"spans\":{},\"traces\":{},\"exports\":{},\"log_records\":{},\"metrics\":{}}}\n",
            counts.spans,
            counts.traces.len(),
            counts.exports,
            counts.log_records,
            counts.metrics
        );
        if reset {
            *counts = Counts::default();
        }
        body
    });
    Ok(Response::new(Full::new(Bytes::from(body))))
}
