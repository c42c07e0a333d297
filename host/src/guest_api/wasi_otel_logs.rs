//! The host side of `wasi:otel/logs@0.2.0-rc.2`: each record a guest's
//! OpenTelemetry SDK emits becomes a log record in the host's logs
//! pipeline, beside the guest's stdout and stderr lines: under the
//! service's resource, with the guest's severity, body, attributes, times
//! and scope, in the trace and span it names, else in the span innermost
//! when it was emitted (see `convert::log_record`).
//!
//! Bounded per request with the guest's lines: at most `--max-log-lines`
//! lines and records together; past that, records are dropped and counted
//! (`wasm.logs.dropped`, on the SERVER span and in the metric).

use opentelemetry::trace::TraceContextExt;

use super::bindings::wasi::otel::logs::{Host, LogRecord};
use super::convert::log_record;
use super::spans::RequestSpans;

impl Host for RequestSpans {
    fn on_emit(&mut self, data: LogRecord) -> wasmtime::Result<()> {
        // Logs are off (`OTEL_LOGS_EXPORTER=none`): nothing to do.
        let Some(output) = self.output() else {
            return Ok(());
        };
        let current = self.current().span().span_context().clone();
        let guest = log_record(data, &current, self.attribute_limits);
        output.emit_record(
            guest.record,
            guest.scope,
            Some(&guest.span),
            &guest.body,
            guest.cut,
        );
        Ok(())
    }
}
