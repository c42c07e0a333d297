//! The benchmark's OTLP receiver: accepts OTLP/gRPC trace exports and only
//! counts them (spans, distinct traces, export calls), so that the benchmark
//! can compare what arrived with what the requests should have produced,
//! while costing the machine as little as possible.
//!
//! It stands in for a collector that would run on another machine, so it
//! decodes each export only as deep as counting needs: the nesting of the
//! OTLP envelope (resource, scope, span) and each span's trace id, skipping
//! every other field in place. A full decode of each span (names,
//! attributes, events) cost 36 µs of CPU per order (six spans) on the
//! benchmark's 2-core machine, the CPU the services under test compete for.
//!
//! The counts are served as JSON on a tiny HTTP endpoint:
//! `GET /counts` → `{"spans":N,"traces":N,"exports":N}`, `POST /reset` → zeroes them.
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
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tokio::net::TcpListener;
use tonic::codegen::{BoxFuture, Service, StdError};

/// Count the spans exported to it over OTLP/gRPC.
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
}

/// The counts, shared by the gRPC service and the HTTP endpoint.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<Counts>>);

impl Counter {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        // Counting cannot leave the counts half-updated: a poisoned lock is fine.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
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

/// The gRPC method of the OTLP trace service.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl tonic::server::UnaryService<ExportRequest> for Counter {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportRequest>) -> Self::Future {
        self.count(request.get_ref());
        Box::pin(std::future::ready(Ok(tonic::Response::new(
            ExportTraceServiceResponse::default(),
        ))))
    }
}

/// The trace service with the lean request type: what the generated
/// `TraceServiceServer` does, with [`ExportRequest`] in place of the full
/// message.
impl<B> Service<hyper::http::Request<B>> for Counter
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
        let counter = self.clone();
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("only trace exports are counted here").into_http())
            });
        }
        Box::pin(async move {
            let codec =
                tonic_prost::ProstCodec::<ExportTraceServiceResponse, ExportRequest>::default();
            Ok(tonic::server::Grpc::new(codec)
                .unary(counter, request)
                .await)
        })
    }
}

impl tonic::server::NamedService for Counter {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

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
        .add_service(counter)
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
            "{{\"spans\":{},\"traces\":{},\"exports\":{}}}\n",
            counts.spans,
            counts.traces.len(),
            counts.exports
        );
        if reset {
            *counts = Counts::default();
        }
        body
    });
    Ok(Response::new(Full::new(Bytes::from(body))))
}
