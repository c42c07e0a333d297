//! A guest's outgoing request, once the request's span stack has opened its
//! CLIENT span: the egress check, the trace context injected into the
//! headers, the send, and the response (or the error) on the CLIENT span.

use std::sync::Arc;
use std::time::Instant;

use hyper::{Request, Response, Uri};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::client::{self, Client, Sent};
use super::egress::Egress;
use crate::propagation::{Baggage, Propagator};
use crate::telemetry::metrics::ClientRequest;
use crate::telemetry::{ServiceMetrics, semconv};

/// What `WasiHttpHooks::send_request` returns.
pub type SendFuture = Box<dyn Future<Output = Result<Sent, Error>> + Send>;

/// How a request's guest sends HTTP: where it may send, what context its
/// requests carry, and the client they go through.
pub struct Outbound {
    /// Writes the trace context into the guest's outgoing requests.
    propagator: Arc<Propagator>,
    /// Where the guest's outgoing requests may go, and the service's name
    /// for the log line saying what was denied; `None`: anywhere.
    egress: Option<(Arc<Egress>, Arc<str>)>,
    /// Sends the guest's outgoing requests, reusing connections; `None`
    /// sends each on a connection of its own.
    client: Option<Arc<Client>>,
    /// Where `http.client.request.duration` is recorded, when metrics are on.
    metrics: Option<&'static ServiceMetrics>,
}

impl Outbound {
    /// Requests that carry what `propagator` writes, sent anywhere, each on
    /// a connection of its own.
    pub fn new(propagator: Arc<Propagator>) -> Outbound {
        Outbound {
            propagator,
            egress: None,
            client: None,
            metrics: None,
        }
    }

    /// Records each request's duration in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<&'static ServiceMetrics>) -> Outbound {
        self.metrics = metrics;
        self
    }

    /// Restricts outgoing requests to what `egress` allows; `service` names
    /// the service in the log line saying what was denied.
    pub fn with_egress(mut self, egress: Arc<Egress>, service: Arc<str>) -> Outbound {
        self.egress = Some((egress, service));
        self
    }

    /// Sends outgoing requests through `client`.
    pub fn with_client(mut self, client: Arc<Client>) -> Outbound {
        self.client = Some(client);
        self
    }

    /// Sends `request` under the CLIENT span in `cx`, carrying the request's
    /// `tracestate` and `baggage`, and ends that span with the outcome;
    /// its duration is keyed by `measured` (see [`client_span`]).
    pub fn send(
        &self,
        cx: Context,
        tracestate: &str,
        baggage: &Baggage,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
        measured: ClientRequest,
    ) -> SendFuture {
        let started = Instant::now();
        let measured = self.metrics.map(|metrics| (metrics, measured));
        if let Some((egress, service)) = &self.egress
            && let Err(why) = egress.check(service, request.uri())
        {
            let error = Error::HttpRequestDenied;
            let span = cx.span();
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type(&error)));
            span.set_status(Status::error(why));
            if let Some((metrics, mut measured)) = measured {
                measured.error_type = Some(error_type(&error));
                metrics.client_request_ended(started.elapsed(), measured, span.span_context());
            }
            span.end();
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.propagator
            .inject(&cx, tracestate, baggage, request.headers_mut());
        let client = self.client.clone();
        Box::new(async move {
            let result = match client {
                Some(client) => client.send(request, options).await,
                None => client::default_send(request, options).await,
            };
            record_response(&cx, &result);
            if let Some((metrics, mut measured)) = measured {
                match &result {
                    Ok((response, _)) => {
                        let status = response.status().as_u16();
                        measured.status = Some(status);
                        measured.error_type = (status >= 400).then(|| status.to_string());
                    }
                    Err(error) => measured.error_type = Some(error_type(error)),
                }
                let span = cx.span();
                metrics.client_request_ended(started.elapsed(), measured, span.span_context());
            }
            cx.span().end();
            result
        })
    }
}

/// An outgoing request as its CLIENT span and `http.client.request.duration`
/// name it, read from the request once.
pub struct ClientSpan {
    /// The span's name: the method, or `HTTP` for one the conventions do
    /// not name.
    pub name: String,
    /// The HTTP client semantic conventions' request attributes.
    pub attributes: Vec<KeyValue>,
    /// What the duration is keyed by, as far as the request says (the
    /// outcome is filled in when it is known).
    pub measured: ClientRequest,
}

/// The CLIENT span of `request`, and what its duration is keyed by. A
/// method the conventions do not name is `_OTHER` in both (with the
/// original in `http.request.method_original` on the span), so that a guest
/// cannot grow the metric's cardinality with methods.
pub fn client_span<B>(request: &Request<B>) -> ClientSpan {
    let uri = request.uri();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let address: Option<Arc<str>> = uri.host().map(Arc::from);
    let original = request.method().as_str();
    let known = semconv::known_method(original);
    let method = known.unwrap_or(semconv::OTHER_METHOD);
    let mut attributes = Vec::with_capacity(5);
    attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method));
    if known.is_none() {
        attributes.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD_ORIGINAL,
            original.to_string(),
        ));
    }
    attributes.push(KeyValue::new(semconv::URL_FULL, full_url(uri)));
    attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
    if let Some(address) = &address {
        attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
    }
    ClientSpan {
        name: known.unwrap_or(semconv::OTHER_METHOD_NAME).to_string(),
        attributes,
        measured: ClientRequest {
            method,
            address,
            port,
            status: None,
            error_type: None,
        },
    }
}

/// `url.full` of `uri`, as the conventions require it: a user and
/// password in it replaced by `REDACTED` (`http://REDACTED:REDACTED@host/`),
/// and the values of the sensitive query keys too (see
/// [`semconv::redacted_query`]).
fn full_url(uri: &Uri) -> String {
    let mut full = String::new();
    if let Some(scheme) = uri.scheme_str() {
        full.push_str(scheme);
        full.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        match authority.as_str().rsplit_once('@') {
            Some((user, host)) => {
                full.push_str(semconv::REDACTED);
                if user.contains(':') {
                    full.push(':');
                    full.push_str(semconv::REDACTED);
                }
                full.push('@');
                full.push_str(host);
            }
            None => full.push_str(authority.as_str()),
        }
    }
    full.push_str(uri.path());
    if let Some(query) = uri.query() {
        full.push('?');
        full.push_str(&semconv::redacted_query(query));
    }
    full
}

fn record_response<B, I>(cx: &Context, result: &Result<(Response<B>, I), Error>) {
    let span = cx.span();
    match result {
        Ok((response, _)) => {
            let status = response.status().as_u16();
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
            // HTTP semconv: for a CLIENT span both 4xx and 5xx are errors.
            if status >= 400 {
                span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        Err(error) => {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type(error)));
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
    semconv::error_type_name(&format!("{error:?}"))
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

    fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<std::borrow::Cow<'a, str>> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str())
    }

    /// A method the conventions name is kept on the span and the metric;
    /// any other is `_OTHER` in both, the span named `HTTP` and keeping the
    /// original; the host and port are read once for both.
    #[test]
    fn client_spans_name_known_methods_and_hide_others() {
        let request =
            |method: &str, uri: &str| Request::builder().method(method).uri(uri).body(()).unwrap();
        let post = client_span(&request("POST", "http://127.0.0.1:8001/payments"));
        assert_eq!(post.name, "POST");
        assert_eq!(
            text(&post.attributes, semconv::HTTP_REQUEST_METHOD).as_deref(),
            Some("POST")
        );
        assert_eq!(
            text(&post.attributes, semconv::HTTP_REQUEST_METHOD_ORIGINAL),
            None
        );
        assert_eq!(
            text(&post.attributes, semconv::SERVER_ADDRESS).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(post.measured.method, "POST");
        assert_eq!(post.measured.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(post.measured.port, 8001);

        let purge = client_span(&request("PURGE", "https://cache.example/item"));
        assert_eq!(purge.name, "HTTP");
        assert_eq!(
            text(&purge.attributes, semconv::HTTP_REQUEST_METHOD).as_deref(),
            Some("_OTHER")
        );
        assert_eq!(
            text(&purge.attributes, semconv::HTTP_REQUEST_METHOD_ORIGINAL).as_deref(),
            Some("PURGE")
        );
        assert_eq!(purge.measured.method, "_OTHER");
        assert_eq!(purge.measured.port, 443);
        assert!(
            purge
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == semconv::SERVER_PORT && kv.value == 443.into())
        );
    }

    /// `url.full` keeps no credentials and no sensitive query value, and
    /// is the URL as it was otherwise.
    #[test]
    fn full_urls_redact_credentials_and_signatures() {
        let full = |uri: &str| full_url(&uri.parse().unwrap());
        assert_eq!(
            full("http://127.0.0.1:8001/payments"),
            "http://127.0.0.1:8001/payments"
        );
        assert_eq!(
            full("https://user:secret@store.example/b?q=1&sig=abc&X-Amz-Credential=k&Sig=x"),
            "https://REDACTED:REDACTED@store.example/b?q=1&sig=REDACTED&X-Amz-Credential=REDACTED&Sig=x"
        );
        assert_eq!(
            full("http://token@127.0.0.1:9/x?sig"),
            "http://REDACTED@127.0.0.1:9/x?sig"
        );
        let span = client_span(
            &Request::builder()
                .uri("http://user:pw@127.0.0.1:9/x")
                .body(())
                .unwrap(),
        );
        assert_eq!(
            text(&span.attributes, semconv::URL_FULL).as_deref(),
            Some("http://REDACTED:REDACTED@127.0.0.1:9/x")
        );
        assert_eq!(
            text(&span.attributes, semconv::SERVER_ADDRESS).as_deref(),
            Some("127.0.0.1")
        );
    }
}
