//! A guest's outgoing HTTP: every request it sends through
//! `wasi:http/outgoing-handler` gets a CLIENT span, a child of the innermost
//! open span, and carries that span's W3C Trace Context in its headers.

use http_body_util::BodyExt;
use hyper::{Request, Response};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::guest_api::spans::{RequestSpans, error_type_name};

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for RequestSpans {
    fn send_request(
        &mut self,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let cx = self.start_child(
            request.method().as_str().to_string(),
            SpanKind::Client,
            client_attributes(&request),
        );
        if let Some((egress, service)) = &self.egress
            && let Err(why) = egress.check(service, request.uri())
        {
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                "error.type",
                error_type(&Error::HttpRequestDenied),
            ));
            span.set_status(Status::error(why));
            span.end();
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.propagator
            .inject(&cx, &self.tracestate, &self.baggage, request.headers_mut());
        let client = self.client.clone();
        Box::new(async move {
            let result = match client {
                Some(client) => client.send(request, options).await,
                None => wasmtime_wasi_http::default_send_request(request, options)
                    .await
                    .map(|(response, io)| {
                        (
                            response.map(BodyExt::boxed_unsync),
                            Box::new(io) as Box<dyn Future<Output = _> + Send>,
                        )
                    }),
            };
            record_response(&cx, &result);
            cx.span().end();
            result
        })
    }
}

/// The HTTP client semantic conventions' request attributes.
fn client_attributes<B>(request: &Request<B>) -> Vec<KeyValue> {
    let uri = request.uri();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut attributes = vec![
        KeyValue::new("http.request.method", request.method().as_str().to_string()),
        KeyValue::new("url.full", uri.to_string()),
        KeyValue::new("server.port", i64::from(port)),
    ];
    if let Some(host) = uri.host() {
        attributes.push(KeyValue::new("server.address", host.to_string()));
    }
    attributes
}

fn record_response<B, I>(cx: &Context, result: &Result<(Response<B>, I), Error>) {
    let span = cx.span();
    match result {
        Ok((response, _)) => {
            let status = response.status().as_u16();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            // HTTP semconv: for a CLIENT span both 4xx and 5xx are errors.
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        Err(error) => {
            span.set_attribute(KeyValue::new("error.type", error_type(error)));
            span.set_status(Status::error(error.to_string()));
        }
    }
}

/// A low-cardinality name for why a request got no response, as
/// `error.type` asks: the wasi-http error code in snake case.
pub fn error_type(error: &Error) -> String {
    if let Error::Connect(io) = error {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection_refused".to_string(),
            std::io::ErrorKind::TimedOut => "connection_timeout".to_string(),
            _ => "connect_error".to_string(),
        };
    }
    error_type_name(&format!("{error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `error.type` is the error code in snake case, refined for connects.
    #[test]
    fn error_types_are_snake_case_codes() {
        assert_eq!(
            error_type(&Error::ConnectionReadTimeout),
            "connection_read_timeout"
        );
        assert_eq!(error_type(&Error::HttpRequestDenied), "http_request_denied");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(error_type(&Error::Connect(refused)), "connection_refused");
    }
}
