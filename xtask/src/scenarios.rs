//! The four classic requests against a running Order API, each printed with
//! its status, trace id and Jaeger link: the equivalent of the original
//! practice's `test_tracing.py`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where the Order API listens unless `--order-url` says otherwise.
pub const DEFAULT_ORDER_URL: &str = "http://127.0.0.1:8000";
/// Where Jaeger's UI shows a trace.
const JAEGER_TRACE_URL: &str = "http://localhost:16686/trace/";

/// One request and the status it must get.
pub struct Scenario {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub body: &'static str,
    pub expected: u16,
}

/// Health, a valid order, an invalid order, a suspected fraud.
pub const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "health",
        method: "GET",
        path: "/health",
        body: "",
        expected: 200,
    },
    Scenario {
        name: "valid order",
        method: "POST",
        path: "/orders",
        body: r#"{"customer_id":"cust-42","item":"widget","quantity":3,"amount":59.97}"#,
        expected: 201,
    },
    Scenario {
        name: "invalid order",
        method: "POST",
        path: "/orders",
        body: r#"{"customer_id":"cust-42","item":"widget","quantity":0,"amount":59.97}"#,
        expected: 422,
    },
    Scenario {
        name: "fraud order",
        method: "POST",
        path: "/orders",
        body: r#"{"customer_id":"cust-666","item":"yacht","quantity":1,"amount":25000.0}"#,
        expected: 402,
    },
];

/// Runs every scenario against `base` (`http://host:port`); fails if any
/// response is not the expected one.
pub fn run(base: &str) -> Result<(), String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{base}` is not an http:// URL"))?
        .trim_end_matches('/');
    let mut failures = 0;
    for scenario in &SCENARIOS {
        match send(authority, scenario) {
            Ok((status, traceresponse, body)) => {
                let trace_id = trace_id(&body).or(traceresponse);
                let verdict = if status == scenario.expected {
                    "ok "
                } else {
                    "BAD"
                };
                if status != scenario.expected {
                    failures += 1;
                }
                println!(
                    "{verdict} {:<14} {} {:<8} -> {status} (expected {})",
                    scenario.name, scenario.method, scenario.path, scenario.expected
                );
                match trace_id {
                    Some(id) => println!("    trace {id}  {JAEGER_TRACE_URL}{id}"),
                    None => println!("    body {body}"),
                }
            }
            Err(error) => {
                failures += 1;
                println!(
                    "BAD {:<14} {} {}: {error}",
                    scenario.name, scenario.method, scenario.path
                );
            }
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failures} of {} scenarios failed",
            SCENARIOS.len()
        ))
    }
}

/// The `trace_id` field of a JSON body.
fn trace_id(body: &str) -> Option<String> {
    let start = body.find("\"trace_id\":\"")? + "\"trace_id\":\"".len();
    let id = &body[start..];
    let end = id.find('"')?;
    Some(id[..end].to_string())
}

/// One HTTP/1.1 request over a fresh connection; returns the status, the
/// trace id of the `traceresponse` header, and the body.
fn send(authority: &str, scenario: &Scenario) -> Result<(u16, Option<String>, String), String> {
    let mut stream = TcpStream::connect(authority).map_err(|e| {
        format!("cannot connect to `{authority}`: {e} (is the order service running?)")
    })?;
    let timeout = Some(Duration::from_secs(30));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{} {} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: wasm-otel-scenarios\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        scenario.method,
        scenario.path,
        scenario.body.len(),
        scenario.body
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("cannot read the response: {e}"))?;
    parse_response(&response)
}

fn parse_response(response: &str) -> Result<(u16, Option<String>, String), String> {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: `{response}`"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    // traceresponse: 00-<trace id>-<span id>-<flags>
    let traceresponse = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("traceresponse") {
            return None;
        }
        value.trim().split('-').nth(1).map(str::to_string)
    });
    Ok((status, traceresponse, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, trace id and body come out of a raw response.
    #[test]
    fn parses_responses() {
        let raw = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                   TraceResponse: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n\
                   {\"trace_id\":\"abc\"}";
        let (status, traceresponse, body) = parse_response(raw).unwrap();
        assert_eq!(status, 201);
        assert_eq!(
            traceresponse.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(trace_id(&body).as_deref(), Some("abc"));
        assert!(parse_response("garbage").is_err());
    }
}
