//! The export queue: the SDK's batch span processor with its queue bounded
//! and every span it could not hold counted exactly.
//!
//! The SDK drops a span when its queue is full, logs the first drop and
//! keeps the count to itself. Here the queue is guarded in front: a span is
//! accepted only while fewer than `OTEL_BSP_MAX_QUEUE_SIZE` accepted spans
//! are still unexported (queued or in the batch being sent), so the SDK's
//! own queue never overflows, and a span past that is dropped and counted.
//! [`QueueStats`] carries the counts to the periodic report and to the
//! shutdown summary: memory stays bounded, and nothing is lost silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};

use super::config::BatchSettings;

/// Spans through one queue.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Spans handed to the batch processor.
    accepted: AtomicU64,
    /// Accepted spans whose export finished (delivered or not).
    settled: AtomicU64,
    /// Spans dropped because the queue was full.
    dropped: AtomicU64,
    /// `dropped` when it was last reported.
    reported: AtomicU64,
}

impl QueueStats {
    /// Spans dropped because the queue was full, in all.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans dropped since the last call (for the periodic report).
    pub fn dropped_since_last_report(&self) -> u64 {
        let dropped = self.dropped.load(Ordering::Relaxed);
        dropped - self.reported.swap(dropped, Ordering::Relaxed)
    }
}

/// What becomes of each exported batch, once its export returns: how the
/// host says that delivery failed or resumed.
pub trait Delivery: std::fmt::Debug + Send + Sync + 'static {
    /// `count` spans were exported with `result`.
    fn settled(&self, count: usize, result: &OTelSdkResult);
}

/// A batch span processor exporting through `exporter`, configured by
/// `batch` (the `OTEL_BSP_*` variables, read in [`super::config`]),
/// counting into `stats` (and this service's drops into `dropped`, which
/// its `wasm.spans.dropped` reads) and telling `delivery` how each batch
/// went.
pub fn processor<E: SpanExporter + 'static, D: Delivery>(
    exporter: E,
    stats: Arc<QueueStats>,
    dropped: Arc<AtomicU64>,
    delivery: D,
    batch: &BatchSettings,
) -> CountedBatch {
    // Every setting is given, so the builder's own reading of the
    // `OTEL_BSP_*` variables (which ignores invalid values) never decides.
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(batch.max_queue_size)
        .with_scheduled_delay(batch.schedule_delay)
        .with_max_export_batch_size(batch.max_export_batch_size)
        .build();
    let inner = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        stats: stats.clone(),
        delivery,
    })
    .with_batch_config(config)
    .build();
    CountedBatch {
        inner,
        stats,
        dropped,
        capacity: batch.max_queue_size as u64,
    }
}

/// The batch processor behind its counted guard.
#[derive(Debug)]
pub struct CountedBatch {
    inner: BatchSpanProcessor,
    stats: Arc<QueueStats>,
    /// This service's spans dropped by the full queue.
    dropped: Arc<AtomicU64>,
    capacity: u64,
}

impl SpanProcessor for CountedBatch {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        super::tracer::random_root(&mut span);
        // The batch processor ignores unsampled spans; so does the count.
        if !span.span_context.is_sampled() {
            return;
        }
        let stats = &self.stats;
        let accepted = stats.accepted.fetch_add(1, Ordering::AcqRel);
        if accepted - stats.settled.load(Ordering::Acquire) >= self.capacity {
            stats.accepted.fetch_sub(1, Ordering::AcqRel);
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts each batch as settled once its export returns, and tells the
/// delivery reporter how it went.
#[derive(Debug)]
struct Counted<E, D> {
    inner: E,
    stats: Arc<QueueStats>,
    delivery: D,
}

impl<E: SpanExporter, D: Delivery> SpanExporter for Counted<E, D> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.stats.settled.fetch_add(count as u64, Ordering::AcqRel);
        self.delivery.settled(count, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
