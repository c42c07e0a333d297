//! The request's side of a guest's outgoing HTTP (`WasiHttpHooks`): its
//! CLIENT span opens under the innermost open span, then
//! [`crate::outbound`] checks, injects, sends and records.

use opentelemetry::trace::SpanKind;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::spans::RequestSpans;
use crate::outbound::{self, SendFuture};

impl WasiHttpHooks for RequestSpans {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let span = outbound::client_span(&request);
        let cx = self.start_child(span.name, SpanKind::Client, span.attributes);
        self.outbound.send(
            cx,
            &self.tracestate,
            &self.baggage,
            request,
            options,
            span.measured,
        )
    }
}
