//! The OpenTelemetry SDK the host owns: resource, tracer provider, batch
//! span processor and OTLP/gRPC exporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use wasmtime::error::Context as _;

/// Where spans go when `OTEL_EXPORTER_OTLP_ENDPOINT` is not set.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4317";
/// How long shutdown may take to flush the last spans.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the spans say they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceIdentity {
    /// `service.name`.
    pub name: String,
    /// `service.version`, when known.
    pub version: Option<String>,
}

/// Chooses the service name the way OpenTelemetry users expect: the
/// `--service-name` flag, else `OTEL_SERVICE_NAME`, else `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, else what the component declares, else the
/// component's file name.
pub fn service_name(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    declared: Option<&str>,
    file_stem: &str,
) -> String {
    let non_empty = |s: &String| !s.trim().is_empty();
    flag.map(str::to_string)
        .or_else(|| env("OTEL_SERVICE_NAME").filter(non_empty))
        .or_else(|| {
            env("OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
                attrs.split(',').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    (key.trim() == "service.name").then(|| value.trim().to_string())
                })
            })
        })
        .filter(non_empty)
        .or_else(|| declared.map(str::to_string))
        .unwrap_or_else(|| file_stem.to_string())
}

/// The endpoint the OTLP exporter sends to: the traces-specific variable,
/// else the general one, else the default.
pub fn otlp_endpoint(env: impl Fn(&str) -> Option<String>) -> String {
    env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_OTLP_ENDPOINT.to_string())
}

/// The tracer provider and what start-up reports about it.
pub struct Telemetry {
    provider: SdkTracerProvider,
    /// Where spans are exported.
    pub endpoint: String,
}

impl Telemetry {
    /// A tracer for the host's spans.
    pub fn tracer(&self) -> SdkTracer {
        use opentelemetry::trace::TracerProvider as _;
        self.provider.tracer("wasm-otel-host")
    }

    /// Flushes the spans still queued and stops the exporter, giving up after
    /// [`SHUTDOWN_TIMEOUT`]. Blocks: call it off the async workers.
    pub fn shutdown(&self) -> wasmtime::Result<()> {
        self.provider
            .shutdown_with_timeout(SHUTDOWN_TIMEOUT)
            .with_context(|| format!("failed to flush spans to `{}`", self.endpoint))
    }
}

/// Builds the provider: resource, batch processor, OTLP/gRPC exporter.
/// Must run inside the tokio runtime, which the gRPC channel uses.
pub fn init(identity: &ServiceIdentity) -> wasmtime::Result<Telemetry> {
    let env = |key: &str| std::env::var(key).ok();
    let endpoint = otlp_endpoint(env);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .with_context(|| format!("failed to build the OTLP exporter for `{endpoint}`"))?;
    let exporter = ReportingExporter {
        inner: exporter,
        endpoint: endpoint.clone(),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(identity))
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build();
    Ok(Telemetry { provider, endpoint })
}

/// `service.name`, `service.version`, the `telemetry.sdk.*` attributes and
/// whatever `OTEL_RESOURCE_ATTRIBUTES` adds.
fn resource(identity: &ServiceIdentity) -> Resource {
    let mut builder = Resource::builder().with_service_name(identity.name.clone());
    let version_from_env = std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attrs| {
        attrs
            .split(',')
            .any(|pair| pair.trim_start().starts_with("service.version="))
    });
    if let (Some(version), false) = (&identity.version, version_from_env) {
        builder = builder.with_attribute(KeyValue::new("service.version", version.clone()));
    }
    builder.build()
}

/// Wraps the OTLP exporter to say, once, when spans stop reaching the
/// collector and, once, when they reach it again, instead of failing quietly
/// or on every batch.
#[derive(Debug)]
struct ReportingExporter<E> {
    inner: E,
    endpoint: String,
    failing: Arc<AtomicBool>,
}

impl<E: SpanExporter> SpanExporter for ReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => eprintln!(
                "warning: spans are not reaching the collector at `{}` ({count} dropped): {error}. \
                 Requests are still served. Start one (`docker compose up -d`) or point \
                 OTEL_EXPORTER_OTLP_ENDPOINT at yours; a line follows when delivery resumes.",
                self.endpoint
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                eprintln!(
                    "spans are reaching the collector at `{}` again",
                    self.endpoint
                );
            }
            _ => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    /// Flag, then OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the
    /// component's declaration, then the file name.
    #[test]
    fn service_name_precedence() {
        let declared = Some("order-api");
        assert_eq!(
            service_name(
                Some("flag"),
                env(&[("OTEL_SERVICE_NAME", "env")]),
                declared,
                "order"
            ),
            "flag"
        );
        assert_eq!(
            service_name(
                None,
                env(&[("OTEL_SERVICE_NAME", "env")]),
                declared,
                "order"
            ),
            "env"
        );
        assert_eq!(
            service_name(
                None,
                env(&[("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=res")]),
                declared,
                "order"
            ),
            "res"
        );
        assert_eq!(
            service_name(None, env(&[("OTEL_SERVICE_NAME", " ")]), declared, "order"),
            "order-api"
        );
        assert_eq!(service_name(None, env(&[]), None, "order"), "order");
    }

    /// The traces-specific endpoint wins over the general one.
    #[test]
    fn endpoint_precedence() {
        assert_eq!(otlp_endpoint(env(&[])), DEFAULT_OTLP_ENDPOINT);
        assert_eq!(
            otlp_endpoint(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1")])),
            "http://a:1"
        );
        assert_eq!(
            otlp_endpoint(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2")
            ])),
            "http://b:2"
        );
    }
}
