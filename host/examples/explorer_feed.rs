//! What the trace explorer (`--ui`) costs per span, in a form callgrind can
//! count: the six spans of one `POST /orders` (as the order and payment
//! services produce them: two SERVER spans with the HTTP semantic-convention
//! attributes and the sandbox's `wasm.*` ones, three guest INTERNAL spans,
//! one with an event, a CLIENT span), from two tracer providers (one per
//! service, each with its own resource, as the host builds them), ended
//! through the SDK, with or without the explorer's span processor feeding a
//! store kept at its trace bound (so eviction is part of every figure).
//!
//! ```sh
//! cargo build --release -p host --example explorer_feed
//! bench/explorer-feed          # callgrind, with and without the feed
//! ```
//!
//! `explorer_feed feed N` sends N orders through the feed; `explorer_feed
//! off N` the same spans without it. The difference of the two instruction
//! counts, over 6 N spans, is what the explorer adds to a span. It also
//! prints the store's own byte figure per span held and how much the
//! process's resident memory grew per span held (with the host's
//! allocator; `explorer_feed feed 10000 10000` keeps every trace, for that
//! figure at a realistic size).

use std::sync::Arc;

use host::explorer::{Limits, SpanLogs, Store, feed::Feed};
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

// The host's allocator, so that the resident memory per span is the host's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The process's resident memory, in bytes (`VmRSS`; 0 where there is no
/// `/proc`).
fn resident() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kib| kib << 10)
}

/// The traces the store keeps here: small, so that the store is at its
/// bound (and evicting) for most of a run of a few thousand orders.
const MAX_TRACES: usize = 1_000;

fn provider(service: &str, feed: Option<Feed>) -> SdkTracerProvider {
    let resource = Resource::builder()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("service.version", "0.1.0"))
        .with_attribute(KeyValue::new("wasm.component.language", "rust"))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(feed) = feed {
        builder = builder.with_span_processor(feed);
    }
    builder.build()
}

/// A SERVER span's attributes, as `serve/server_span.rs` and
/// `serve/guest_task.rs` set them.
fn server_attributes(path: &'static str, port: i64) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", "POST"),
        KeyValue::new("url.path", path.to_string()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("server.address", "127.0.0.1".to_string()),
        KeyValue::new("server.port", port),
        KeyValue::new("network.protocol.version", "1.1"),
        KeyValue::new("user_agent.original", "wrk/4.2.0".to_string()),
        KeyValue::new("client.address", "127.0.0.1".to_string()),
        KeyValue::new("network.peer.address", "127.0.0.1".to_string()),
        KeyValue::new("network.peer.port", 51234_i64),
        KeyValue::new("http.route", path),
        KeyValue::new("wasm.component", "order.wasm".to_string()),
        KeyValue::new("wasm.instantiate.duration_us", 21_i64),
        KeyValue::new("wasm.memory.peak_bytes", 1_179_648_i64),
        KeyValue::new("http.response.status_code", 201_i64),
    ]
}

fn span(
    tracer: &SdkTracer,
    parent: &Context,
    name: &'static str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    parent.with_span(span)
}

/// One order's six spans, ended children first as the host ends them.
fn order(order: &SdkTracer, payment: &SdkTracer, n: u64) {
    let root = span(
        order,
        &Context::new(),
        "POST /orders",
        SpanKind::Server,
        server_attributes("/orders", 8000),
    );
    let validate = span(
        order,
        &root,
        "validate_order",
        SpanKind::Internal,
        vec![
            KeyValue::new("order.items", 2_i64),
            KeyValue::new("order.customer", format!("customer-{}", n % 100)),
        ],
    );
    validate.span().end();
    let save = span(
        order,
        &root,
        "save_order",
        SpanKind::Internal,
        vec![KeyValue::new("order.id", format!("ord-{n}"))],
    );
    save.span().add_event(
        "order.saved",
        vec![KeyValue::new("order.id", format!("ord-{n}"))],
    );
    save.span().end();
    let client = span(
        order,
        &root,
        "POST",
        SpanKind::Client,
        vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", "http://127.0.0.1:8001/payments".to_string()),
            KeyValue::new("server.address", "127.0.0.1".to_string()),
            KeyValue::new("server.port", 8001_i64),
            KeyValue::new("http.response.status_code", 200_i64),
        ],
    );
    let payment_root = span(
        payment,
        &client,
        "POST /payments",
        SpanKind::Server,
        server_attributes("/payments", 8001),
    );
    let process = span(
        payment,
        &payment_root,
        "process_payment",
        SpanKind::Internal,
        vec![
            KeyValue::new("payment.amount", 42.5),
            KeyValue::new("payment.currency", "EUR".to_string()),
        ],
    );
    process.span().add_event(
        "payment.authorized",
        vec![KeyValue::new("payment.id", format!("pay-{n}"))],
    );
    process.span().end();
    payment_root.span().set_status(Status::Ok);
    payment_root.span().end();
    client.span().end();
    root.span().end();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let feeding = match args.next().as_deref() {
        Some("feed") => true,
        Some("off") => false,
        _ => {
            eprintln!("usage: explorer_feed feed|off ORDERS [MAX_TRACES]");
            std::process::exit(2);
        }
    };
    let orders: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(3_000);
    let max_traces = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MAX_TRACES);
    let store = Arc::new(Store::new(Limits {
        max_traces,
        ..Limits::default()
    }));
    let logs = Arc::new(SpanLogs::default());
    let feed = || feeding.then(|| Feed::new(store.clone(), logs.clone()));
    let order_provider = provider("order-api", feed());
    let payment_provider = provider("payment-service", feed());
    let order_tracer = order_provider.tracer("wasm-otel-host");
    let payment_tracer = payment_provider.tracer("wasm-otel-host");
    let before = resident();
    for n in 0..orders {
        order(&order_tracer, &payment_tracer, n);
    }
    let held = resident().saturating_sub(before);
    let counts = store.counts();
    println!(
        "{} orders, {} spans ended{}",
        orders,
        orders * 6,
        if feeding { ", fed to the store" } else { "" }
    );
    if feeding && counts.spans > 0 {
        println!(
            "store: {} traces, {} spans held; {} bytes charged per span; resident memory grew by {} bytes per span held",
            counts.traces,
            counts.spans,
            counts.bytes / counts.spans,
            held / counts.spans
        );
    }
}
