//! The explorer's HTTP server: Jaeger's query API (same paths, same JSON
//! shapes, so scripts written against Jaeger work unchanged), two
//! endpoints of the explorer's own (`/api/explorer/stats`,
//! `/api/explorer/services`), and the pages.
//!
//! Jaeger's envelope is `{data, total, limit, offset, errors}`; a bad
//! parameter is 400 with `errors: [{code: 400, msg}]`, the message naming
//! the parameter; an unknown trace is 404. `api/v3` has its own shapes
//! ([`v3`]).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::query::{self, BadParameter, Query};
use super::store::{Record, TraceKey};
use super::{Store, jaeger, pages, v3};

type Reply = Response<Full<Bytes>>;

/// Serves `listener` for the life of the process.
pub async fn serve(listener: tokio::net::TcpListener, store: Arc<Store>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let store = store.clone();
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let store = store.clone();
            async move { Ok::<_, std::convert::Infallible>(route(&store, &request)) }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(super::HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
        );
    }
}

/// Answers one request (the API never reads a body).
pub fn route<B>(store: &Store, request: &Request<B>) -> Reply {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        if request.uri().path().starts_with("/api/v3/") {
            let (status, body) = v3::error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            return json_reply(status, &body);
        }
        return envelope_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the explorer only answers GET",
        );
    }
    let path = request.uri().path();
    let query = request.uri().query().unwrap_or("");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "services"] => data(json!(query::services(store))),
        ["api", "services", service, "operations"] => {
            let service = decode(service);
            let names: Vec<String> = query::operations(store, &service)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let mut names = names;
            names.dedup();
            data(json!(names))
        }
        ["api", "operations"] => {
            let service = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.into_owned());
            let Some(service) = service.filter(|s| !s.is_empty()) else {
                return bad_parameter(&BadParameter {
                    name: "service",
                    message: "is required".into(),
                });
            };
            let operations: Vec<Value> = query::operations(store, &service)
                .into_iter()
                .map(|(name, kind)| json!({"name": name, "spanKind": kind.unwrap_or("")}))
                .collect();
            data(json!(operations))
        }
        ["api", "traces"] => match Query::parse(query) {
            Ok(q) => {
                let traces: Vec<Value> = q
                    .run(store)
                    .iter()
                    .map(|(key, spans)| jaeger::trace(key, spans))
                    .collect();
                data(json!(traces))
            }
            Err(bad) => bad_parameter(&bad),
        },
        ["api", "traces", id] => match lookup(store, id) {
            Ok((key, spans)) => data(json!([jaeger::trace(&key, &spans)])),
            Err(reply) => *reply,
        },
        ["api", "v3", rest @ ..] => {
            // A base64 trace id comes with `/` and `+` percent-encoded.
            let rest: Vec<String> = rest.iter().map(|segment| decode(segment)).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            let (status, body) = v3::route(store, &rest, query);
            json_reply(status, &body)
        }
        ["api", "explorer", "stats"] => {
            let limits = store.limits();
            let mut stats = json!(store.counts());
            stats["max_traces"] = json!(limits.max_traces);
            stats["max_bytes"] = json!(limits.max_bytes);
            json_reply(StatusCode::OK, &stats)
        }
        ["api", "explorer", "services"] => data(json!(query::figures(store))),
        ["api", ..] => envelope_error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}")),
        _ => pages::page(path),
    }
}

fn decode(segment: &str) -> String {
    // A path segment is percent-encoded like a query value, except `+`.
    let plus_kept = segment.replace('+', "%2B");
    form_urlencoded::parse(format!("x={plus_kept}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The trace `id` names, or the reply saying why not (boxed: a response
/// is large).
fn lookup(store: &Store, id: &str) -> Result<(TraceKey, Vec<Record>), Box<Reply>> {
    let key = query::parse_trace_id(id).ok_or_else(|| {
        Box::new(bad_parameter(&BadParameter {
            name: "traceID",
            message: format!("`{id}` is not a trace id of up to 32 hex digits"),
        }))
    })?;
    match store.trace(&key) {
        Some(spans) => Ok((key, spans)),
        None => Err(Box::new(envelope_error(
            StatusCode::NOT_FOUND,
            "trace not found",
        ))),
    }
}

fn data(data: Value) -> Reply {
    let total = data.as_array().map_or(0, Vec::len);
    json_reply(
        StatusCode::OK,
        &json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}),
    )
}

fn bad_parameter(bad: &BadParameter) -> Reply {
    envelope_error(StatusCode::BAD_REQUEST, &bad.to_string())
}

fn envelope_error(status: StatusCode, message: &str) -> Reply {
    json_reply(
        status,
        &json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": status.as_u16(), "msg": message}],
        }),
    )
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
