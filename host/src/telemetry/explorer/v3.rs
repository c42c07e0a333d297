//! Jaeger's `api/v3` over HTTP, as its query service's HTTP gateway serves
//! it (jaegertracing/jaeger,
//! `cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/`:
//! `http_gateway.go` and `query_parser.go`): the same paths, parameter
//! names (the camelCase ones and their deprecated snake_case aliases),
//! answers and error messages, so a script written against Jaeger's v3 API
//! works unchanged.
//!
//! - `GET /api/v3/services`: `{"services": [..]}`;
//! - `GET /api/v3/operations?service=S&spanKind=K`: `{"operations": [{name, spanKind}]}`;
//! - `GET /api/v3/traces?query.serviceName=..&query.startTimeMin=..&..`: the
//!   matching traces' `ResourceSpans` in one `{"result": TracesData}`;
//! - `GET /api/v3/traces/{trace_id}?startTime=..&endTime=..&rawTraces=..`:
//!   one trace, the same way.
//!
//! Traces are OTLP/JSON as Jaeger writes them: hex ids, lowerCamelCase
//! names, enums as numbers, 64-bit integers as strings, fields at their
//! default value left out. No traces is 404 `No traces found`; a bad
//! parameter is 400 `malformed parameter NAME: …`; both as
//! `{"error": {"httpCode", "message"}}`, grpc-gateway's error shape.
//!
//! The explorer adjusts no trace (no clock-skew correction, no
//! de-duplication), so every trace is "raw": `rawTraces` is checked and
//! has nothing to change.

use hyper::StatusCode;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use serde_json::{Value, json};

use super::Store;
use super::query::{self, Query};

/// What a v3 request gets: its status and JSON body.
pub type Answer = (StatusCode, Value);

/// Traces returned unless `query.searchDepth` says otherwise (Jaeger's
/// `defaultSearchDepth`).
pub const DEFAULT_SEARCH_DEPTH: usize = 100;

/// Answers `GET /api/v3/{rest}` with `query`, the raw query string.
pub fn route(store: &Store, rest: &[&str], query: &str) -> Answer {
    let params = Params::new(query);
    let answer = match rest {
        ["services"] => Ok(services(store)),
        ["operations"] => Ok(operations(store, &params)),
        ["traces"] => find_traces(store, &params),
        ["traces", id] => get_trace(store, id, &params),
        _ => return error(StatusCode::NOT_FOUND, "404 page not found"),
    };
    answer.unwrap_or_else(|message| error(StatusCode::BAD_REQUEST, &message))
}

/// `{"error": {"httpCode", "message"}}`, as Jaeger's gateway answers a
/// failure.
pub fn error(status: StatusCode, message: &str) -> Answer {
    (
        status,
        json!({"error": {"httpCode": status.as_u16(), "message": message}}),
    )
}

/// A query string's parameters, first value of each (Go's `url.Values.Get`).
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: &str) -> Params {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The value of `canonical`, else of its deprecated alias, with the name
    /// it came under (Jaeger's `getQueryParam`).
    fn either<'a>(&'a self, canonical: &'a str, deprecated: &'a str) -> (&'a str, &'a str) {
        match self.get(canonical) {
            "" => (self.get(deprecated), deprecated),
            value => (value, canonical),
        }
    }
}

/// Jaeger's message for a parameter that does not parse.
fn malformed(name: &str, problem: impl std::fmt::Display) -> String {
    format!("malformed parameter {name}: {problem}")
}

fn services(store: &Store) -> Answer {
    (StatusCode::OK, json!({"services": query::services(store)}))
}

/// The operations of `service`, of kind `spanKind` when given. As in
/// Jaeger, a span of unspecified kind is listed as `internal` but matches
/// no `spanKind`.
fn operations(store: &Store, params: &Params) -> Answer {
    let (kind, _) = params.either("spanKind", "span_kind");
    let operations: Vec<Value> = query::operations(store, params.get("service"))
        .into_iter()
        .filter(|(_, stored)| kind.is_empty() || *stored == Some(kind))
        .map(|(name, stored)| json!({"name": name, "spanKind": stored.unwrap_or("internal")}))
        .collect();
    (StatusCode::OK, json!({"operations": operations}))
}

fn get_trace(store: &Store, id: &str, params: &Params) -> Result<Answer, String> {
    let key = parse_trace_id(id).ok_or_else(|| {
        malformed(
            "trace_id",
            format!("`{id}` is neither up to 32 hex digits nor 16 bytes in base64"),
        )
    })?;
    // The window is a hint for storage that indexes by time; a held trace
    // is found by its id alone, as Jaeger's in-memory store finds it.
    for (canonical, deprecated) in [("startTime", "start_time"), ("endTime", "end_time")] {
        let (value, name) = params.either(canonical, deprecated);
        if !value.is_empty() {
            rfc3339(name, value)?;
        }
    }
    raw_traces(params.either("rawTraces", "raw_traces"))?;
    Ok(traces(store.trace(&key).into_iter().collect()))
}

fn find_traces(store: &Store, params: &Params) -> Result<Answer, String> {
    let q = parse_find(params)?;
    let found = q.run(store).into_iter().map(|(_, spans)| spans).collect();
    Ok(traces(found))
}

/// The answer for `found`, each a trace's spans: 404 when there are none.
fn traces(found: Vec<Vec<super::store::Record>>) -> Answer {
    if found.is_empty() {
        return error(StatusCode::NOT_FOUND, "No traces found");
    }
    let mut resource_spans: Vec<ResourceSpans> = found
        .iter()
        .flat_map(|spans| super::jaeger::resource_spans(spans))
        .collect();
    // Jaeger's spans always carry a status, `{}` when unset.
    for scope_spans in resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans) {
        for span in &mut scope_spans.spans {
            span.status.get_or_insert_default();
        }
    }
    let mut data = json!({"resourceSpans": resource_spans});
    omit_defaults(&mut data);
    (StatusCode::OK, json!({"result": data}))
}

/// Parses `GET /api/v3/traces`' parameters as Jaeger's `parseFindTracesQuery`
/// does, into a search with Jaeger's per-span semantics.
fn parse_find(params: &Params) -> Result<Query, String> {
    let mut q = Query {
        limit: DEFAULT_SEARCH_DEPTH,
        ..Query::default()
    };
    let non_empty = |value: &str| Some(value.to_string()).filter(|v| !v.is_empty());
    q.service = non_empty(params.either("query.serviceName", "query.service_name").0);
    q.operation = non_empty(
        params
            .either("query.operationName", "query.operation_name")
            .0,
    );
    let value = params.get("query.attributes");
    if !value.is_empty() {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(value).map_err(|e| {
                malformed(
                    "query.attributes",
                    format!("`{value}` is not a JSON object of strings ({e})"),
                )
            })?;
        q.attributes = map.into_iter().collect();
    }
    if !params.get("query.filter").is_empty() {
        return Err(malformed(
            "query.filter",
            "structured filters are not supported here; use query.attributes",
        ));
    }
    let (min, min_name) = params.either("query.startTimeMin", "query.start_time_min");
    let (max, max_name) = params.either("query.startTimeMax", "query.start_time_max");
    if min.is_empty() || max.is_empty() {
        return Err("query.startTimeMin and query.startTimeMax are required".into());
    }
    let (min, max) = (rfc3339(min_name, min)?, rfc3339(max_name, max)?);
    if min >= max {
        return Err("query.startTimeMin must be before query.startTimeMax".into());
    }
    q.span_start = Some((min, max));
    let (mut depth, mut depth_name) = params.either("query.searchDepth", "query.search_depth");
    if depth.is_empty() {
        (depth, depth_name) = (params.get("query.num_traces"), "query.num_traces");
    }
    if !depth.is_empty() {
        q.limit = depth
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                malformed(
                    depth_name,
                    format!("`{depth}` is not a positive whole number"),
                )
            })?;
    }
    for (canonical, deprecated, bound) in [
        (
            "query.durationMin",
            "query.duration_min",
            &mut q.min_duration,
        ),
        (
            "query.durationMax",
            "query.duration_max",
            &mut q.max_duration,
        ),
    ] {
        let (value, name) = params.either(canonical, deprecated);
        if !value.is_empty() {
            let nanos = query::parse_duration(value).ok_or_else(|| {
                malformed(
                    name,
                    format!("`{value}` is not a duration such as 250ms or 1.5s"),
                )
            })?;
            // As in Jaeger, a zero duration is no bound.
            *bound = Some(nanos).filter(|n| *n > 0);
        }
    }
    raw_traces(params.either("query.rawTraces", "query.raw_traces"))?;
    Ok(q)
}

/// `rawTraces`: a Go boolean (`strconv.ParseBool`); every trace here is raw.
fn raw_traces((value, name): (&str, &str)) -> Result<(), String> {
    match value {
        "" => Ok(()),
        _ => query::go_bool(value)
            .map(|_| ())
            .ok_or_else(|| malformed(name, format!("`{value}` is not true or false"))),
    }
}

fn rfc3339(name: &str, value: &str) -> Result<u64, String> {
    parse_rfc3339(value).ok_or_else(|| {
        malformed(
            name,
            format!("`{value}` is not an RFC 3339 time such as 2026-12-06T01:30:00Z"),
        )
    })
}

/// Parses an RFC 3339 time (`2026-12-06T01:30:00.123456789+01:00`), as Go's
/// `time.RFC3339Nano` layout reads it; nanoseconds since the epoch, times
/// before it clamped to 0.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if at(i, b'.') {
        let len = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        nanos = digits(i + 1, len)? * 10i64.pow(9 - len as u32);
        i += 1 + len;
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 60 + m) * 60 * if *sign == b'+' { 1 } else { -1 }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    Some(total.clamp(0, i128::from(u64::MAX)) as u64)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses a trace id as Jaeger's gateway does: up to 32 hex digits, or
/// its 16 (or 8) bytes in base64, standard or URL-safe, padded or not.
pub fn parse_trace_id(text: &str) -> Option<super::store::TraceKey> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if let Some(key) = query::parse_trace_id(text) {
        return Some(key);
    }
    if text.len() > 24 {
        return None;
    }
    let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())?;
    let mut key = [0u8; 16];
    match bytes.len() {
        16 => key.copy_from_slice(&bytes),
        8 => key[8..].copy_from_slice(&bytes),
        _ => return None,
    }
    Some(key)
}

/// Leaves out the fields at their default value (`""`, `0`, `"0"`, `[]`,
/// `null`, `false`), as protobuf's JSON mapping and Jaeger's answers do;
/// an attribute's value is kept whatever it is (`{"intValue": "0"}` says
/// which field of the `oneof` is set), and empty messages stay `{}`.
fn omit_defaults(value: &mut Value) {
    const ANY_VALUE: [&str; 7] = [
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
    ];
    match value {
        Value::Array(items) => items.iter_mut().for_each(omit_defaults),
        Value::Object(map) => {
            let is_any_value = map.keys().any(|k| ANY_VALUE.contains(&k.as_str()));
            for field in map.values_mut() {
                omit_defaults(field);
            }
            if !is_any_value {
                map.retain(|key, field| match field {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !(s.is_empty() || (s == "0" && key.ends_with("UnixNano"))),
                    Value::Array(items) => !items.is_empty(),
                    Value::Object(_) => true,
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 3339 as Go's `time.RFC3339Nano` reads it.
    #[rustfmt::skip]
    #[test]
    fn rfc3339_times() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-12-06T01:30:00Z", Some(1_796_520_600_000_000_000)),
            ("2026-12-06T02:30:00+01:00", Some(1_796_520_600_000_000_000)),
            ("2026-12-05T20:00:00-05:30", Some(1_796_520_600_000_000_000)),
            ("2026-12-06T01:30:00.5Z", Some(1_796_520_600_500_000_000)),
            ("2026-12-06T01:30:00.000000001Z", Some(1_796_520_600_000_000_001)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000_000_000)),
            ("1969-12-31T23:59:59Z", Some(0)),
            ("2023-02-29T00:00:00Z", None), ("2026-13-01T00:00:00Z", None),
            ("2026-12-06T24:00:00Z", None), ("2026-12-06T01:30:00", None),
            ("2026-12-06 01:30:00Z", None), ("2026-12-06T01:30:00.Z", None),
            ("2026-12-06T01:30:00.1234567890Z", None), ("2026-12-06T01:30:00+0100", None),
            ("1796520600", None), ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }

    /// Trace ids in hex or base64, as Jaeger's gateway takes them.
    #[test]
    fn trace_ids_in_hex_or_base64() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        let hex = super::super::jaeger::hex(&key);
        assert_eq!(parse_trace_id(&hex), Some(key));
        assert_eq!(parse_trace_id("AQIDBAUGBwgJCgsMDQ4PEA=="), Some(key));
        assert_eq!(parse_trace_id("AQIDBAUGBwgJCgsMDQ4PEA"), Some(key));
        assert_eq!(parse_trace_id("not an id"), None);
        assert_eq!(parse_trace_id(&"f".repeat(33)), None);
    }

    /// Each bad parameter of find-traces is named, canonical or alias, in
    /// Jaeger's words.
    #[rustfmt::skip]
    #[test]
    fn find_traces_bad_parameters() {
        let window = "query.startTimeMin=2026-01-01T00:00:00Z&query.startTimeMax=2026-01-02T00:00:00Z";
        let cases: [(String, &str); 12] = [
            ("".into(), "query.startTimeMin and query.startTimeMax are required"),
            ("query.startTimeMin=2026-01-01T00:00:00Z".into(), "query.startTimeMin and query.startTimeMax are required"),
            ("query.startTimeMin=yesterday&query.startTimeMax=2026-01-01T00:00:00Z".into(), "malformed parameter query.startTimeMin: "),
            ("query.start_time_min=2026-01-01T00:00:00Z&query.start_time_max=x".into(), "malformed parameter query.start_time_max: "),
            ("query.startTimeMin=2026-01-02T00:00:00Z&query.startTimeMax=2026-01-01T00:00:00Z".into(), "query.startTimeMin must be before query.startTimeMax"),
            (format!("{window}&query.searchDepth=x"), "malformed parameter query.searchDepth: "),
            (format!("{window}&query.num_traces=0"), "malformed parameter query.num_traces: "),
            (format!("{window}&query.durationMin=5"), "malformed parameter query.durationMin: "),
            (format!("{window}&query.duration_max=x"), "malformed parameter query.duration_max: "),
            (format!("{window}&query.attributes=%7B%22a%22%3A1%7D"), "malformed parameter query.attributes: "),
            (format!("{window}&query.rawTraces=maybe"), "malformed parameter query.rawTraces: "),
            (format!("{window}&query.filter=x"), "malformed parameter query.filter: "),
        ];
        for (query, expected) in cases {
            let error = parse_find(&Params::new(&query)).unwrap_err();
            assert!(error.starts_with(expected), "{query}: {error}");
        }
    }

    /// The canonical names win over the deprecated ones; both are read.
    #[test]
    fn find_traces_parameters() {
        let q = parse_find(&Params::new(
            "query.service_name=a&query.serviceName=b&query.operation_name=op\
             &query.start_time_min=1970-01-01T00:00:01Z&query.startTimeMax=1970-01-01T00:00:02Z\
             &query.search_depth=7&query.durationMin=1ms&query.duration_max=2s\
             &query.attributes=%7B%22k%22%3A%22v%22%7D&query.raw_traces=true",
        ))
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("b"));
        assert_eq!(q.operation.as_deref(), Some("op"));
        assert_eq!(q.span_start, Some((1_000_000_000, 2_000_000_000)));
        assert_eq!(q.limit, 7);
        assert_eq!(q.min_duration, Some(1_000_000));
        assert_eq!(q.max_duration, Some(2_000_000_000));
        assert_eq!(q.attributes, [("k".to_string(), "v".to_string())]);
    }

    /// A zero duration bounds nothing, as in Jaeger.
    #[test]
    fn zero_durations_are_no_bound() {
        let q = parse_find(&Params::new(
            "query.startTimeMin=1970-01-01T00:00:01Z&query.startTimeMax=1970-01-01T00:00:02Z\
             &query.durationMin=0&query.durationMax=0s",
        ))
        .unwrap();
        assert_eq!((q.min_duration, q.max_duration), (None, None));
    }

    /// Default fields are left out, attribute values kept.
    #[test]
    fn defaults_are_omitted() {
        let mut value = json!({
            "traceState": "", "kind": 0, "flags": 0, "startTimeUnixNano": "0", "name": "0",
            "events": [], "status": {"code": 0, "message": ""}, "droppedAttributesCount": 0,
            "attributes": [{"key": "n", "value": {"intValue": "0"}, "keyStrindex": 0},
                           {"key": "b", "value": {"boolValue": false}}],
        });
        omit_defaults(&mut value);
        assert_eq!(
            value,
            json!({
                "name": "0", "status": {},
                "attributes": [{"key": "n", "value": {"intValue": "0"}},
                               {"key": "b", "value": {"boolValue": false}}],
            })
        );
    }
}
