//! What one request costs inside the host, without sockets: a fresh
//! instance from the pool, the guest's `handle`, the response read, the
//! instance dropped. `GET /health` on the payment component, through the
//! same `Service::handle` the server calls.
//!
//! `cargo xtask build && cargo bench -p host --bench instantiate`

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use host::{Connection, EngineOptions, Propagator, Service, ServiceTracer};
use http_body_util::{BodyExt, Full};
use opentelemetry::trace::TracerProvider as _;

/// The host binary's allocator (`src/main.rs`), so that this measures what
/// the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn service(tracer: ServiceTracer) -> Arc<Service> {
    let (engine, _) = host::engine(EngineOptions::default()).expect("engine");
    let linker = host::linker(&engine).expect("linker");
    let path = host::resolve(std::path::Path::new("payment.wasm"))
        .expect("payment.wasm: build it with `cargo xtask build`");
    let loaded = host::load(&engine, &linker, None, &path).expect("component loads");
    let service = Service::new(
        "payment-service".into(),
        loaded.pre,
        tracer,
        Arc::new(Propagator::new(&[])),
        Vec::new(),
    )
    .log_requests(false);
    Arc::new(service)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let connection = Connection {
        local: SocketAddr::from(([127, 0, 0, 1], 8001)),
        peer: SocketAddr::from(([127, 0, 0, 1], 50000)),
    };
    // Spans are created, filled and ended, with no exporter behind them:
    // the cost of tracing inside the request, not of shipping it.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let variants = [
        ("health, tracing off", ServiceTracer::Disabled),
        (
            "health, spans recorded",
            ServiceTracer::Sdk {
                tracer: provider.tracer("bench"),
                provider: provider.clone(),
            },
        ),
    ];
    let mut group = c.benchmark_group("instantiate + handle + drop");
    for (name, tracer) in variants {
        let service = runtime.block_on(async { service(tracer) });
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let request = hyper::Request::get("http://127.0.0.1:8001/health")
                        .header("host", "127.0.0.1:8001")
                        .body(Full::new(Bytes::new()))
                        .expect("request");
                    let response = service
                        .clone()
                        .handle(request, connection)
                        .await
                        .expect("infallible");
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.expect("body")
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
