//! HTTP over `wasi:http` without the plumbing: read a request, answer with
//! JSON, `POST` JSON to another service.
//!
//! All calls block the component's single thread, which is how a
//! `wasi:http` 0.2 guest waits; the host runs other requests meanwhile.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
};
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The most a response body this module reads may hold.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// An incoming request, with its body not yet read.
pub struct Request {
    /// The method, upper case (`GET`, `POST`, …).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<IncomingBody>,
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than the limit given (in bytes).
    TooLarge(usize),
    /// The stream failed.
    Stream(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "body larger than {limit} bytes"),
            BodyError::Stream(why) => write!(f, "body could not be read: {why}"),
        }
    }
}

/// A request refused for what it is (its route, method or body) rather than
/// for anything the service decided. Services wrap it in their own failure
/// type; each maps to one status here, in one place.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No route for this path (404).
    NotFound(String),
    /// The route exists, not for this method (405).
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The one the route takes.
        allowed: &'static str,
    },
    /// The body is over the service's limit, in bytes (413).
    TooLarge(usize),
    /// The body could not be read (400).
    Unreadable(String),
    /// The body's `content-type` is not one the route takes (415).
    UnsupportedMediaType(String),
    /// The body is malformed or breaks a rule; the message says how (422).
    Invalid(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotFound(_) => 404,
            Refusal::MethodNotAllowed { .. } => 405,
            Refusal::TooLarge(_) => 413,
            Refusal::Unreadable(_) => 400,
            Refusal::UnsupportedMediaType(_) => 415,
            Refusal::Invalid(_) => 422,
        }
    }

    /// What to tell the client.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotFound(path) => format!("no route for `{path}`"),
            Refusal::MethodNotAllowed { method, allowed } => {
                format!("method `{method}` not allowed; use {allowed}")
            }
            Refusal::TooLarge(limit) => format!("request body larger than {limit} bytes"),
            Refusal::Unreadable(why)
            | Refusal::UnsupportedMediaType(why)
            | Refusal::Invalid(why) => why.clone(),
        }
    }
}

impl From<BodyError> for Refusal {
    fn from(error: BodyError) -> Refusal {
        match error {
            BodyError::TooLarge(limit) => Refusal::TooLarge(limit),
            BodyError::Stream(why) => Refusal::Unreadable(why),
        }
    }
}

impl Request {
    /// `Ok` when the request uses `allowed`, the one method of its route.
    pub fn require_method(&self, allowed: &'static str) -> Result<(), Refusal> {
        if self.method == allowed {
            Ok(())
        } else {
            Err(Refusal::MethodNotAllowed {
                method: self.method.clone(),
                allowed,
            })
        }
    }

    /// Takes the parts of a `wasi:http` request.
    pub fn from_wasi(request: IncomingRequest) -> Request {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let path = match path_with_query.split_once('?') {
            Some((path, _query)) => path.to_string(),
            None => path_with_query,
        };
        let headers = request.headers().entries();
        Request {
            method: method_name(&request.method()),
            path,
            headers,
            body: request.consume().ok(),
        }
    }

    /// The first value of header `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        let Some(body) = self.body.take() else {
            return Ok(Vec::new());
        };
        let stream = body
            .stream()
            .map_err(|()| BodyError::Stream("body stream already taken".to_string()))?;
        let bytes = read_all(&stream, limit);
        drop(stream);
        bytes
    }
}

fn read_all(stream: &InputStream, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(BodyError::Stream(error.to_debug_string()));
            }
        }
    }
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other.as_str(),
    }
    .to_string()
}

/// Sends `status` with `body` as `application/json`.
pub fn respond_json(out: ResponseOutparam, status: u16, body: &serde_json::Value) {
    let bytes = body.to_string().into_bytes();
    let headers = json_headers(bytes.len());
    let response = OutgoingResponse::new(headers);
    // 100..=999 is all `set-status-code` refuses; our statuses are literals.
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        ResponseOutparam::set(
            out,
            Err(ErrorCode::InternalError(Some("response body taken".into()))),
        );
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        // A client that went away is not the service's failure.
        let _ = write_all(&stream, &bytes);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

fn json_headers(len: usize) -> Fields {
    let entries = [
        ("content-type".to_string(), b"application/json".to_vec()),
        ("content-length".to_string(), len.to_string().into_bytes()),
    ];
    // Both names and values are valid header fields, so this cannot fail.
    Fields::from_list(&entries).unwrap_or_else(|_| Fields::new())
}

fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    // `blocking-write-and-flush` takes at most 4096 bytes a call.
    while !bytes.is_empty() {
        let (chunk, rest) = bytes.split_at(bytes.len().min(4096));
        stream.blocking_write_and_flush(chunk)?;
        bytes = rest;
    }
    Ok(())
}

/// A base URL such as `http://127.0.0.1:8001` or `https://pay.example/api`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseUrl {
    https: bool,
    authority: String,
    path: String,
}

impl BaseUrl {
    /// Parses `http://host[:port][/path]` or `https://…`.
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(BaseUrl {
            https,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// A response to an outgoing request, body read in full.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Why an outgoing request got no response.
#[derive(Debug)]
pub enum SendError {
    /// The host or the network failed the request (`wasi:http` error code).
    Http(ErrorCode),
    /// The request could not be built (a bad URL or header).
    Build(String),
    /// The response body could not be read.
    Body(BodyError),
}

impl SendError {
    /// Whether the request ran out of time (connect or response deadline).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SendError::Http(
                ErrorCode::ConnectionTimeout
                    | ErrorCode::ConnectionReadTimeout
                    | ErrorCode::HttpResponseTimeout
                    | ErrorCode::DnsTimeout
            )
        )
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Http(code) => write!(f, "{code:?}"),
            SendError::Build(why) => write!(f, "{why}"),
            SendError::Body(error) => write!(f, "{error}"),
        }
    }
}

/// `POST`s `body` as JSON to `base` + `path` and reads the response.
/// `timeout_ms` bounds connecting and the wait for the response's first byte.
pub fn post_json(
    base: &BaseUrl,
    path: &str,
    body: &[u8],
    timeout_ms: u64,
) -> Result<Response, SendError> {
    let request = OutgoingRequest::new(json_headers(body.len()));
    let build = |what: &str| SendError::Build(format!("invalid {what} for {base:?}"));
    request
        .set_method(&Method::Post)
        .map_err(|()| build("method"))?;
    let scheme = if base.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| build("scheme"))?;
    request
        .set_authority(Some(&base.authority))
        .map_err(|()| build("authority"))?;
    request
        .set_path_with_query(Some(&format!("{}{path}", base.path)))
        .map_err(|()| build("path"))?;
    let outgoing = request.body().map_err(|()| build("body"))?;

    let options = RequestOptions::new();
    let timeout_ns = timeout_ms.saturating_mul(1_000_000);
    // The host may refuse to honour a timeout; then its own default applies.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    let future = outgoing_handler::handle(request, Some(options)).map_err(SendError::Http)?;
    if let Ok(stream) = outgoing.write() {
        // A write failure surfaces as the response's error code below.
        let _ = write_all(&stream, body);
    }
    let _ = OutgoingBody::finish(outgoing, None);

    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(SendError::Http(code)),
            Some(Err(())) => {
                return Err(SendError::Build("response already taken".to_string()));
            }
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| SendError::Build("response body already taken".to_string()))?;
    let stream = incoming
        .stream()
        .map_err(|()| SendError::Build("response stream already taken".to_string()))?;
    let body = read_all(&stream, MAX_RESPONSE_BODY).map_err(SendError::Body)?;
    drop(stream);
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base URLs parse into scheme, authority and path, and bad ones say why.
    #[test]
    fn base_url_parsing() {
        let url = BaseUrl::parse("http://127.0.0.1:8001").expect("valid");
        assert_eq!(
            url,
            BaseUrl {
                https: false,
                authority: "127.0.0.1:8001".into(),
                path: String::new()
            }
        );
        let url = BaseUrl::parse("https://pay.example/api/").expect("valid");
        assert_eq!(url.authority, "pay.example");
        assert_eq!(url.path, "/api");
        assert!(BaseUrl::parse("ftp://x").unwrap_err().contains("`ftp://x`"));
        assert!(BaseUrl::parse("http:///x").is_err());
    }
}
