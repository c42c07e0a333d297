//! The properties the fuzz targets check (`fuzz/`), shared with the test
//! that replays their corpus (`tests/fuzz_corpus.rs`), so that the corpus is
//! a regression suite on stable Rust. Each function takes the raw fuzz input
//! and panics when a property fails; inputs are lines (`\n`), since headers
//! are lines.

use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Request};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry::{KeyValue, Value};

use crate::propagation::{
    self, Baggage, MAX_TRACESTATE_MEMBERS, Propagator, parse_traceparent, parse_tracestate,
    percent::decode as percent_decode, valid_tracestate_key, valid_tracestate_value,
};
use crate::serve::{Connection, server_span};
use crate::telemetry::semconv::KNOWN_METHODS;

/// The UTF-8 lines of `data`; lines that are not UTF-8 are left out.
fn lines(data: &[u8]) -> impl Iterator<Item = &str> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
}

/// `traceparent` on the first line, `tracestate` fields on the others.
pub fn trace_context(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    if let Some(Ok(first)) = lines.next().map(std::str::from_utf8) {
        traceparent(first);
    }
    let fields: Vec<&str> = lines.filter_map(|l| std::str::from_utf8(l).ok()).collect();
    tracestate(&fields);
}

/// `00-…` fields, each lowercase hex of exactly `len` digits.
fn hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The specification's grammar written a second way (split on `-`), to
/// check the parser against.
fn spec_accepts_traceparent(value: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    let mut fields = value.splitn(5, '-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    value.is_ascii()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        // Only a later version may carry more fields, after a `-`.
        && (fields.next().is_none() || version != "00")
}

/// A `traceparent` is accepted exactly when the grammar allows it, and an
/// accepted one re-serialises to the canonical version-00 form of the same
/// ids (the very input, for version 00 with known flags).
pub fn traceparent(value: &str) {
    let parsed = parse_traceparent(value);
    assert_eq!(
        parsed.is_some(),
        spec_accepts_traceparent(value),
        "traceparent `{value}`"
    );
    let Some((trace_id, span_id, flags)) = parsed else {
        return;
    };
    let trimmed = value.trim_matches([' ', '\t']);
    assert_eq!(trace_id.to_string(), trimmed[3..35]);
    assert_eq!(span_id.to_string(), trimmed[36..52]);
    assert_eq!(format!("{flags:02x}"), trimmed[53..55]);
    let canonical = format!("00-{trace_id}-{span_id}-{:02x}", flags & 0x03);
    assert_eq!(
        parse_traceparent(&canonical),
        Some((trace_id, span_id, flags & 0x03))
    );
    if trimmed.starts_with("00-") && flags & !0x03 == 0 {
        assert_eq!(canonical, trimmed);
    }
}

/// The draft's `key` rule written a second way, from its ABNF (§
/// "tracestate Header Field Values", Key), to check the parser against:
/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn spec_accepts_key(key: &str) -> bool {
    let lcalpha_or_digit = |c: char| matches!(c, 'a'..='z' | '0'..='9');
    let keychar = |c: char| lcalpha_or_digit(c) || matches!(c, '_' | '-' | '*' | '/' | '@');
    let mut chars = key.chars();
    chars.next().is_some_and(lcalpha_or_digit) && chars.clone().count() <= 255 && chars.all(keychar)
}

/// The draft's `value` rule, the same way (§ Value):
/// `value = 0*255(chr) nblk-chr`, `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`,
/// `chr = %x20 / nblk-chr`.
fn spec_accepts_value(value: &str) -> bool {
    let nblk_chr = |c: char| matches!(c, '\x21'..='\x2b' | '\x2d'..='\x3c' | '\x3e'..='\x7e');
    let chr = |c: char| c == ' ' || nblk_chr(c);
    value.chars().last().is_some_and(nblk_chr)
        && value.chars().count() <= 256
        && value.chars().all(chr)
}

/// Combined `tracestate` fields are accepted exactly when every member is
/// valid by the draft's grammar and there are at most 32; duplicate keys
/// are allowed and kept. An accepted list keeps every member, in order,
/// and re-serialises to a list that parses to the same members.
pub fn tracestate(fields: &[&str]) {
    let members: Vec<&str> = fields
        .iter()
        .flat_map(|field| field.split(','))
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty())
        .collect();
    let split: Option<Vec<(String, String)>> = members
        .iter()
        .map(|member| {
            let (key, value) = member.split_once('=')?;
            (spec_accepts_key(key) && spec_accepts_value(value))
                .then(|| (key.to_string(), value.to_string()))
        })
        .collect();
    let valid = split.is_some() && members.len() <= MAX_TRACESTATE_MEMBERS;
    let parsed = parse_tracestate(fields.iter().copied());
    assert_eq!(parsed.is_some(), valid, "tracestate {fields:?}");
    let Some(parsed) = parsed else {
        return;
    };
    assert_eq!(Some(&parsed), split.as_ref(), "tracestate {fields:?}");
    for (key, value) in &parsed {
        assert!(valid_tracestate_key(key) && valid_tracestate_value(value));
    }
    let header = join_tracestate(&parsed);
    assert_eq!(parse_tracestate([header.as_str()]), Some(parsed));
    assert!(header.is_empty() || HeaderValue::from_str(&header).is_ok());
}

fn join_tracestate(members: &[(String, String)]) -> String {
    members
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `baggage` header values, one a line: what is kept stays within the
/// limits, has unique keys, re-serialises to a header that parses to the same
/// baggage and is a valid header value; an entry a guest sets (the first
/// line, split at its first `=`) reads back as set, or changes nothing.
pub fn baggage(data: &[u8]) {
    let values: Vec<&str> = lines(data).collect();
    let parsed = Baggage::parse(values.iter().copied());
    baggage_invariants(&parsed);
    for value in &values {
        decoding(value);
    }
    if let Some((key, value)) = values.first().and_then(|line| line.split_once('=')) {
        let mut set = parsed.clone();
        if set.set(key, value) {
            assert_eq!(set.get(key).as_deref(), Some(value), "set `{key}`");
            baggage_invariants(&set);
        } else {
            assert_eq!(set, parsed, "a refused set changed the baggage");
        }
    }
}

fn baggage_invariants(baggage: &Baggage) {
    let header = baggage.header();
    let entries = baggage.entries();
    assert!(header.len() <= propagation::MAX_BYTES);
    assert!(entries.len() <= propagation::MAX_MEMBERS);
    for (i, (key, value)) in entries.iter().enumerate() {
        assert!(
            entries[..i].iter().all(|(k, _)| k != key),
            "duplicate `{key}`"
        );
        assert_eq!(baggage.get(key).as_ref(), Some(value));
    }
    assert_eq!(&Baggage::parse([header.as_str()]), baggage, "`{header}`");
    assert!(HeaderValue::from_str(&header).is_ok(), "`{header}`");
}

/// Percent-decoding succeeds only when every `%` starts an escape of two
/// hex digits.
fn decoding(value: &str) {
    if percent_decode(value).is_some() {
        let bytes = value.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'%' {
                let escape = bytes.get(i + 1..i + 3);
                assert!(
                    escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)),
                    "`{value}` decoded with a bad escape"
                );
            }
        }
    }
}

/// A request as the host receives it: `METHOD TARGET` on the first line,
/// then `name: value` headers, one a line (names and values hyper would
/// refuse are left out, as hyper refuses the request). The host extracts
/// the trace context and baggage, names the server span, and injects the
/// context into an outgoing request; what it extracts is what the headers
/// say, and what it sends is valid.
pub fn headers(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.trim_ascii();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    let propagator = Propagator::default();
    let extracted = propagator.extract(&headers);
    let span = extracted.cx.span();
    let sc = span.span_context();
    let traceparents: Vec<&HeaderValue> =
        headers.get_all(propagation::TRACEPARENT).iter().collect();
    if sc.is_valid() {
        assert!(sc.is_remote());
        assert_eq!(traceparents.len(), 1);
        let value = traceparents[0]
            .to_str()
            .expect("an accepted traceparent is text");
        let (trace_id, span_id, flags) = parse_traceparent(value).expect("accepted");
        assert_eq!((sc.trace_id(), sc.span_id()), (trace_id, span_id));
        assert_eq!(sc.trace_flags().to_u8(), flags & 0x03);
        // The tracestate kept is the canonical form of the fields received.
        let fields: Option<Vec<&str>> = headers
            .get_all(propagation::TRACESTATE)
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        let expected = fields
            .and_then(parse_tracestate)
            .map(|members| join_tracestate(&members))
            .unwrap_or_default();
        assert_eq!(extracted.tracestate, expected);
    } else {
        assert!(extracted.tracestate.is_empty());
        assert_eq!(sc.trace_id(), TraceId::INVALID);
    }
    baggage_invariants(&extracted.baggage);

    // What the host sends on: exactly what it extracted, as valid headers.
    let mut out = HeaderMap::new();
    propagator.inject(
        &extracted.cx,
        &extracted.tracestate,
        &extracted.baggage,
        &mut out,
    );
    assert_eq!(
        out.get(propagation::TRACEPARENT)
            .map(|v| v.as_bytes().to_vec()),
        sc.is_valid()
            .then(|| propagation::traceparent(sc).into_bytes())
    );
    assert_eq!(
        out.get(propagation::TRACESTATE)
            .map(|v| v.as_bytes().to_vec()),
        (sc.is_valid() && !extracted.tracestate.is_empty())
            .then(|| extracted.tracestate.clone().into_bytes())
    );
    assert_eq!(
        out.get(propagation::BAGGAGE).map(|v| v.as_bytes().to_vec()),
        (!extracted.baggage.is_empty()).then(|| extracted.baggage.header().into_bytes())
    );

    server_span_of(request_line, headers);
}

/// The server span's name and attributes follow HTTP semconv for any
/// request hyper accepts. The keys are spelled out here rather than taken
/// from `telemetry::semconv`: the check pins the names on the wire, so a
/// wrong constant there would fail it.
fn server_span_of(request_line: &[u8], headers: HeaderMap) {
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(space) => (&request_line[..space], &request_line[space + 1..]),
        None => (request_line, &b"/"[..]),
    };
    let Ok(mut request) = Request::builder().method(method).uri(target).body(()) else {
        return;
    };
    *request.headers_mut() = headers;
    let connection = Connection {
        local: ([127, 0, 0, 1], 8000).into(),
        peer: ([127, 0, 0, 1], 50000).into(),
    };
    let (name, attributes) = server_span(&request, connection);
    let get = |key: &str| -> Option<&Value> {
        attributes
            .iter()
            .find(|kv: &&KeyValue| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    };
    let method = request.method().as_str();
    if KNOWN_METHODS.contains(&method) {
        assert_eq!(name, method);
        assert_eq!(
            get("http.request.method").map(Value::as_str).as_deref(),
            Some(method)
        );
    } else {
        assert_eq!(name, "HTTP");
        assert_eq!(
            get("http.request.method").map(Value::as_str).as_deref(),
            Some("_OTHER")
        );
        assert_eq!(
            get("http.request.method_original")
                .map(Value::as_str)
                .as_deref(),
            Some(method)
        );
    }
    assert_eq!(
        get("url.path").map(Value::as_str).as_deref(),
        Some(request.uri().path())
    );
    match get("server.port") {
        Some(Value::I64(port)) => assert!((0..=65535).contains(port)),
        other => panic!("server.port is {other:?}"),
    }
    assert!(get("server.address").is_some_and(|a| !a.as_str().is_empty()));
    let agent = request
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        get("user_agent.original").map(Value::as_str).as_deref(),
        agent
    );
}
