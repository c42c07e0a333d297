//! The pages: one HTML shell, one script and one style sheet, embedded in
//! the binary (no build step, no CDN: the explorer works offline). The
//! script routes by path (`/search`, `/trace/{id}`, `/compare/{a}/{b}`,
//! `/services`) and builds every element from span data with
//! `textContent`, never `innerHTML`; the Content-Security-Policy allows
//! only these files, so even a mistake there could not run a script that
//! came in a span.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Only this origin's files; no inline script or style.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                      form-action 'self'; frame-ancestors 'none'";

/// The page or asset at `path`; 404 for anything else.
pub fn page(path: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = match path {
        "/assets/app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/assets/app.css" => ("text/css; charset=utf-8", STYLE),
        "/" | "/search" | "/services" => ("text/html; charset=utf-8", INDEX),
        _ if path.starts_with("/trace/") || path.starts_with("/compare") => {
            ("text/html; charset=utf-8", INDEX)
        }
        _ => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    let set = |headers: &mut hyper::HeaderMap, name, value: &'static str| {
        headers.insert(name, hyper::header::HeaderValue::from_static(value));
    };
    set(headers, hyper::header::CONTENT_TYPE, content_type);
    set(headers, hyper::header::CONTENT_SECURITY_POLICY, POLICY);
    set(headers, hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, hyper::header::CACHE_CONTROL, "no-cache");
    response
}
