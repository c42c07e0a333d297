//! The span processor that copies this process's finished spans into the
//! store as they end: no batching, so a trace is on the pages the moment
//! its spans end, and no OTLP round trip through the process's own
//! receiver.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::Store;

/// Feeds one tracer provider's spans to the store.
#[derive(Debug)]
pub struct Feed {
    store: Arc<Store>,
    /// The provider's resource, converted once (the SDK hands it over in
    /// [`SpanProcessor::set_resource`] when the provider is built).
    resource: Arc<Resource>,
}

impl Feed {
    pub(super) fn new(store: Arc<Store>) -> Feed {
        Feed {
            store,
            resource: Arc::default(),
        }
    }
}

impl SpanProcessor for Feed {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        crate::telemetry::random_root(&mut span);
        let scope = InstrumentationScope::from((&span.instrumentation_scope, None));
        self.store.insert(
            self.resource.clone(),
            Arc::new(scope),
            [ProtoSpan::from(span)],
        );
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        let converted = ResourceAttributesWithSchema::from(resource);
        self.resource = Arc::new(Resource {
            attributes: converted.attributes.0,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        });
    }
}
