//! A component built for the standard `wasi:http/proxy` world and nothing
//! else, as one would build it for `wasmtime serve`: it knows nothing of the
//! host's tracing interface, so the integration tests can check that such a
//! component is traced all the same (SERVER span, CLIENT span, propagation).
//!
//! `GET /?to=http://HOST:PORT/PATH` sends `GET` to that URL and answers
//! `200` with `forwarded: STATUS`, or `502` with the error; any other
//! request gets `200` and a line of usage.

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::outgoing_handler;
use bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasi:http/proxy@0.2.12",
        generate_all,
    });

    use super::Forwarder;
    export!(Forwarder with_types_in crate::bindings);
}

struct Forwarder;

impl Guest for Forwarder {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        let (status, body) = match query.split_once("?to=") {
            Some((_, url)) => match forward(url) {
                Ok(status) => (200, format!("forwarded: {status}\n")),
                Err(error) => (502, format!("{error}\n")),
            },
            None => (
                200,
                "forwarder: GET /?to=http://HOST:PORT/PATH forwards a GET\n".to_string(),
            ),
        };
        let response = OutgoingResponse::new(Fields::new());
        let _ = response.set_status_code(status);
        let Ok(outgoing) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(body.as_bytes());
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

/// Sends `GET url` (plain http) and returns the response's status.
fn forward(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let body = request.body().map_err(|()| "no request body".to_string())?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(error))) => Err(format!("{error:?}")),
        _ => Err("the response was not ready".to_string()),
    }
}
