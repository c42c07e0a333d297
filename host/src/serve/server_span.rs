//! The SERVER span's name and its HTTP server semantic-convention
//! attributes, from the request as it arrived.

use hyper::Request;
use opentelemetry::KeyValue;

use super::service::Connection;
use crate::telemetry::semconv;

/// The span name and the HTTP server semantic conventions' attributes.
pub fn server_span<B>(request: &Request<B>, connection: Connection) -> (String, Vec<KeyValue>) {
    let method = request.method().as_str();
    let mut attributes = Vec::with_capacity(12);
    let name = if let Some(known) = semconv::known_method(method) {
        attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, known));
        known.to_string()
    } else {
        attributes.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD,
            semconv::OTHER_METHOD,
        ));
        attributes.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD_ORIGINAL,
            method.to_string(),
        ));
        semconv::OTHER_METHOD_NAME.to_string()
    };
    let uri = request.uri();
    attributes.push(KeyValue::new(semconv::URL_PATH, uri.path().to_string()));
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new(
            semconv::URL_QUERY,
            semconv::redacted_query(query).into_owned(),
        ));
    }
    attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|host| host.parse::<hyper::http::uri::Authority>().ok())
        // `Host: :8000` parses with an empty host: no server address then.
        .filter(|authority| !authority.host().is_empty());
    let (address, port) = match &host {
        Some(authority) => (
            authority.host().to_string(),
            authority.port_u16().unwrap_or(80),
        ),
        None => (connection.local.ip().to_string(), connection.local.port()),
    };
    attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, address));
    attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
    let version = match request.version() {
        hyper::Version::HTTP_09 => "0.9",
        hyper::Version::HTTP_10 => "1.0",
        hyper::Version::HTTP_2 => "2",
        hyper::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    attributes.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
    if let Some(agent) = request
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_string(),
        ));
    }
    attributes.push(KeyValue::new(
        semconv::CLIENT_ADDRESS,
        connection.peer.ip().to_string(),
    ));
    attributes.push(KeyValue::new(
        semconv::NETWORK_PEER_ADDRESS,
        connection.peer.ip().to_string(),
    ));
    attributes.push(KeyValue::new(
        semconv::NETWORK_PEER_PORT,
        i64::from(connection.peer.port()),
    ));
    (name, attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `url.query` keeps the query but the values the conventions call
    /// sensitive; a query with none is kept as it came.
    #[test]
    fn sensitive_query_values_are_redacted() {
        let query = |target: &str| {
            let request = Request::builder().uri(target).body(()).unwrap();
            let connection = Connection {
                local: ([127, 0, 0, 1], 8000).into(),
                peer: ([127, 0, 0, 1], 50000).into(),
            };
            let (_, attributes) = server_span(&request, connection);
            attributes
                .into_iter()
                .find(|kv| kv.key.as_str() == semconv::URL_QUERY)
                .map(|kv| kv.value.as_str().into_owned())
        };
        assert_eq!(
            query("/search?q=wasm&X-Goog-Signature=abc&X-Amz-Security-Token=t").as_deref(),
            Some("q=wasm&X-Goog-Signature=REDACTED&X-Amz-Security-Token=REDACTED")
        );
        assert_eq!(query("/search?q=wasm&sig").as_deref(), Some("q=wasm&sig"));
        assert_eq!(query("/orders"), None);
    }
}
