//! OTLP receivers on Jaeger's ports, so that the host serving the explorer
//! also collects the spans of the others (each exports to localhost:4317 by
//! default): gRPC (`TraceService/Export`, tonic) and HTTP (`POST
//! /v1/traces`, protobuf or JSON), each plain or gzip-compressed, as
//! exporters send them with `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` (and the
//! Collector's OTLP exporters by default).
//!
//! A request larger than [`MAX_REQUEST_BYTES`] is refused before it is
//! decoded (gRPC: tonic's `OUT_OF_RANGE`; HTTP: 413), and so is one that
//! inflates past it (gRPC: tonic's `RESOURCE_EXHAUSTED`; HTTP: 413); an
//! unknown compression gets gRPC `UNIMPLEMENTED` or HTTP 415; a malformed one gets
//! gRPC `INTERNAL` (tonic's decode error) or HTTP 400 with a
//! `google.rpc.Status`, as the OTLP specification has it; both are counted.
//! Spans the store refuses are reported in `partial_success`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::Store;

/// The largest export request accepted, encoded: the gRPC default, so a
/// default exporter's batches always fit.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Stores every span of `request`; returns the OTLP response.
fn store_request(store: &Store, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse {
    let mut rejected = 0;
    for resource_spans in request.resource_spans {
        let resource = Arc::new(resource_spans.resource.unwrap_or_default());
        for scope_spans in resource_spans.scope_spans {
            let scope = Arc::new(scope_spans.scope.unwrap_or_default());
            rejected += store
                .insert(resource.clone(), scope, scope_spans.spans)
                .rejected;
        }
    }
    ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: "spans without valid trace and span ids, or past the explorer's \
                            byte budget for one trace, were not stored"
                .to_string(),
        }),
    }
}

struct Grpc(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(store_request(
            &self.0,
            request.into_inner(),
        )))
    }
}

/// Serves OTLP/gRPC on `addr`; `None` (said in one line) when it is taken.
pub async fn start_grpc(addr: SocketAddr, store: Arc<Store>) -> Option<SocketAddr> {
    let listener = bind(addr, "OTLP/gRPC").await?;
    let bound = listener.local_addr().ok()?;
    let counting = store.clone();
    // tonic answers a malformed or oversized request itself, before the
    // service runs, with a trailers-only response: the status is in the
    // headers, where this layer counts it.
    let count =
        tower::util::MapResponseLayer::new(move |response: hyper::Response<tonic::body::Body>| {
            let failed = response
                .headers()
                .get("grpc-status")
                .is_some_and(|status| status.as_bytes() != b"0");
            if failed {
                counting.count_rejected_request();
            }
            response
        });
    // The limit bounds the message after inflating too (tonic stops
    // inflating at it), so a small compressed bomb is refused like a large
    // plain request.
    let service = TraceServiceServer::new(Grpc(store))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .layer(count)
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await;
        if let Err(error) = served {
            eprintln!("explorer: the OTLP/gRPC receiver stopped: {error}");
        }
    });
    Some(bound)
}

async fn bind(addr: SocketAddr, what: &str) -> Option<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            eprintln!(
                "explorer: `{addr}` is taken ({error}; a collector or Jaeger?): receiving no {what}"
            );
            None
        }
    }
}

/// Serves OTLP/HTTP on `addr`; `None` (said in one line) when it is taken.
pub async fn start_http(addr: SocketAddr, store: Arc<Store>) -> Option<SocketAddr> {
    let listener = bind(addr, "OTLP/HTTP").await?;
    let bound = listener.local_addr().ok()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let store = store.clone();
            let service = hyper::service::service_fn(move |request| {
                let store = store.clone();
                async move { Ok::<_, std::convert::Infallible>(http_export(&store, request).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(super::HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    Some(bound)
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The encodings OTLP/HTTP defines.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// One OTLP/HTTP request.
async fn http_export(
    store: &Store,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match content_type.as_str() {
        "application/json" => Encoding::Json,
        _ => Encoding::Protobuf,
    };
    let export = match read_export(request, &content_type, encoding).await {
        Ok(export) => export,
        Err((status, message)) => {
            store.count_rejected_request();
            return error_response(encoding, status, message);
        }
    };
    let reply = store_request(store, export);
    let body = match encoding {
        Encoding::Protobuf => reply.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&reply).unwrap_or_else(|_| b"{}".to_vec()),
    };
    respond(StatusCode::OK, encoding.content_type(), body)
}

/// Why an OTLP/HTTP request is refused: its status and message.
type Refusal = (StatusCode, String);

/// The export a request carries, read within [`MAX_REQUEST_BYTES`].
async fn read_export(
    request: Request<hyper::body::Incoming>,
    content_type: &str,
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, Refusal> {
    let gzip = check_request(&request, content_type)?;
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        Err(error) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {error}"),
            ));
        }
    };
    let body = if gzip { inflate(&body)? } else { body };
    let decoded = match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|error| error.to_string())
        }
        Encoding::Json => serde_json::from_slice(&body).map_err(|error| error.to_string()),
    };
    decoded.map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("not an ExportTraceServiceRequest: {error}"),
        )
    })
}

/// The path, method, content type and encoding OTLP/HTTP asks for; whether
/// the body is gzip-compressed.
fn check_request<B>(request: &Request<B>, content_type: &str) -> Result<bool, Refusal> {
    if request.uri().path() != "/v1/traces" {
        return Err((
            StatusCode::NOT_FOUND,
            "OTLP/HTTP traces are POSTed to /v1/traces".into(),
        ));
    }
    if request.method() != hyper::Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "use POST".into()));
    }
    if !matches!(content_type, "application/x-protobuf" | "application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content-type `{content_type}` is neither application/x-protobuf nor application/json"
            ),
        ));
    }
    match request.headers().get(hyper::header::CONTENT_ENCODING) {
        None => Ok(false),
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => Ok(false),
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"gzip") => Ok(true),
        Some(other) => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content-encoding `{}` is not supported: send gzip or identity",
                String::from_utf8_lossy(other.as_bytes())
            ),
        )),
    }
}

/// Inflates a gzip body, within [`MAX_REQUEST_BYTES`] of output: a body
/// that inflates past it is refused (413) as a plain one that size is, and
/// never held whole.
fn inflate(body: &[u8]) -> Result<Bytes, Refusal> {
    use std::io::Read as _;
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                format!("the body is not valid gzip: {error}"),
            )
        })?;
    if inflated.len() > MAX_REQUEST_BYTES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request inflates to more than {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    Ok(Bytes::from(inflated))
}

fn error_response(
    encoding: Encoding,
    status: StatusCode,
    message: String,
) -> Response<Full<Bytes>> {
    // google.rpc.Code: INVALID_ARGUMENT for what the client must fix.
    let rpc = RpcStatus { code: 3, message };
    let body = match encoding {
        Encoding::Protobuf => rpc.encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": rpc.code, "message": rpc.message})
            .to_string()
            .into_bytes(),
    };
    respond(status, encoding.content_type(), body)
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
