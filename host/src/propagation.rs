//! W3C Trace Context (level 2) and W3C Baggage in and out of HTTP headers,
//! to the letter of the specifications' processing models, as
//! `OTEL_PROPAGATORS` selects.
//!
//! The rules are those of the Trace Context Level 2 editor's draft as
//! published (`w3c/trace-context` at `acab820`, 2026-06-30): `tracestate`
//! keys of up to 256 characters with any number of `@`, duplicate keys
//! kept, and the random trace-id flag (`0x02`).
//!
//! The SDK's `TraceContextPropagator` is close but not exact (it accepts a
//! repeated `traceparent`, does not combine repeated `tracestate` fields,
//! and keeps flags it does not know), and its `TraceState` still applies the
//! older `tenant@system` key split (one `@`, a system id of at most 14
//! characters), so the parsing here is our own. The result is an ordinary
//! OpenTelemetry remote `SpanContext`, so the SDK's sampler and span
//! parenting work unchanged; the validated `tracestate` travels beside it,
//! since this host forwards it without changing it (a list the SDK's
//! `TraceState` refuses is forwarded all the same, and only missing from
//! the spans' recorded trace state).

use hyper::HeaderMap;
use hyper::header::HeaderValue;
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use crate::baggage::Baggage;
use crate::config;

/// The header that carries the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header that carries vendor trace state.
pub const TRACESTATE: &str = "tracestate";
/// The response header naming the trace and span that served a request.
pub const TRACERESPONSE: &str = "traceresponse";
/// The response header that carries the `trace` metric.
pub const SERVER_TIMING: &str = "server-timing";
/// The W3C Baggage header.
pub const BAGGAGE: &str = "baggage";
/// The most `tracestate` list members.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// The random trace-id flag (W3C Trace Context § "Random Trace ID Flag");
/// the SDK (0.33) names only `TraceFlags::SAMPLED`.
pub const RANDOM: u8 = 0x02;
/// The flags this host understands: sampled (`0x01`) and random (`0x02`);
/// "Other Flags … Vendors MUST set those to zero".
const KNOWN_FLAGS: u8 = 0x03;

/// What came in with a request.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// The remote parent, when the request carried a valid one.
    pub cx: Context,
    /// The validated `tracestate` of that parent (members joined by `,`),
    /// empty when there is none or it was invalid.
    pub tracestate: String,
    /// The request's baggage.
    pub baggage: Baggage,
}

/// Extracts and injects trace context and baggage.
#[derive(Debug, Clone)]
pub struct Propagator {
    trace_context: bool,
    baggage: bool,
}

impl Default for Propagator {
    /// Trace Context and Baggage, the `OTEL_PROPAGATORS` default.
    fn default() -> Self {
        Propagator::new(&[
            config::Propagator::TraceContext,
            config::Propagator::Baggage,
        ])
    }
}

impl Propagator {
    /// The propagators named; none for an empty list.
    pub fn new(propagators: &[config::Propagator]) -> Propagator {
        Propagator {
            trace_context: propagators.contains(&config::Propagator::TraceContext),
            baggage: propagators.contains(&config::Propagator::Baggage),
        }
    }

    /// The remote parent and baggage carried by `headers`. An invalid
    /// `traceparent` (or none) yields an empty context, which starts a new
    /// trace; the `tracestate` is then discarded with it.
    pub fn extract(&self, headers: &HeaderMap) -> Extracted {
        let mut extracted = Extracted::default();
        if self.trace_context
            && let Some((sc, tracestate)) = extract_span_context(headers)
        {
            extracted.cx = Context::new().with_remote_span_context(sc);
            extracted.tracestate = tracestate;
        }
        if self.baggage {
            extracted.baggage = Baggage::parse(
                headers
                    .get_all(BAGGAGE)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
        }
        extracted
    }

    /// Writes `cx`'s span as `traceparent`, the request's `tracestate` and
    /// `baggage` into `headers`. Headers the guest set itself are kept.
    pub fn inject(
        &self,
        cx: &Context,
        tracestate: &str,
        baggage: &Baggage,
        headers: &mut HeaderMap,
    ) {
        if self.trace_context && !headers.contains_key(TRACEPARENT) {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                if let Ok(value) = HeaderValue::from_str(&traceparent(sc)) {
                    headers.insert(TRACEPARENT, value);
                }
                if !tracestate.is_empty()
                    && !headers.contains_key(TRACESTATE)
                    && let Ok(value) = HeaderValue::from_str(tracestate)
                {
                    headers.insert(TRACESTATE, value);
                }
            }
        }
        if self.baggage
            && !baggage.is_empty()
            && !headers.contains_key(BAGGAGE)
            && let Ok(value) = HeaderValue::from_str(&baggage.header())
        {
            headers.insert(BAGGAGE, value);
        }
    }
}

/// `00-<trace id>-<span id>-<flags>`, always version 00, unknown flags zeroed.
pub fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8() & KNOWN_FLAGS
    )
}

/// Tells the caller which trace, span and flags served it, in the response
/// `headers`, unless the guest already did:
///
/// - `traceresponse: <value>`, the header the draft's processing model names
///   (§ "Processing Model for Working with Trace Context Response Header");
/// - `server-timing: trace;desc=<value>`, the binding the draft now defines
///   for responses (§ "Trace Context Server Timing Metric Format"), added
///   as a field of its own so a guest's other metrics stay as they are.
///
/// `<value>` is [`traceparent`]'s: version 00, the sampled and random flags
/// of the host's span (the random one the incoming trace's, or set on a
/// trace the host started: § "Random Trace ID Flag"), other flags zero.
pub fn respond(sc: &SpanContext, headers: &mut HeaderMap) {
    let value = traceparent(sc);
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.entry(TRACERESPONSE).or_insert(value);
    }
    let has_trace_metric = headers
        .get_all(SERVER_TIMING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|metric| {
            let name = metric.split(';').next().unwrap_or("");
            name.trim_matches([' ', '\t']).eq_ignore_ascii_case("trace")
        });
    if !has_trace_metric && let Ok(metric) = HeaderValue::from_str(&format!("trace;desc={value}")) {
        headers.append(SERVER_TIMING, metric);
    }
}

fn extract_span_context(headers: &HeaderMap) -> Option<(SpanContext, String)> {
    // Header names are case-insensitive (HeaderMap lowercases them); a
    // repeated traceparent is invalid.
    let mut values = headers.get_all(TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (trace_id, span_id, flags) = parse_traceparent(value.to_str().ok()?)?;
    let members = parse_tracestate(
        headers
            .get_all(TRACESTATE)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{0}")),
    )
    .unwrap_or_default();
    let header = members
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    // Recorded on the spans when the SDK accepts it; forwarded regardless.
    let state = TraceState::from_key_value(members).unwrap_or_default();
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & KNOWN_FLAGS),
        true,
        state,
    );
    Some((sc, header))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `traceparent` value: trace id, parent id, flags. `None` when
/// invalid by the specification's rules.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, u8)> {
    // Optional whitespace around the value is allowed.
    let value = value.trim_matches([' ', '\t']);
    if value.len() < 55 || !value.is_ascii() {
        return None;
    }
    let version = &value[0..2];
    if !is_lower_hex(version) || version == "ff" {
        return None;
    }
    // Version 00 is exactly 55 characters. A later version may append
    // fields, after a `-`; its known fields are parsed as version 00's.
    if version == "00" && value.len() != 55 {
        return None;
    }
    if value.len() > 55 && value.as_bytes()[55] != b'-' {
        return None;
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(parent).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags))
}

/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b)
}

/// The longest `tracestate` key (and value): 256 characters.
const MAX_KEY_LEN: usize = 256;

/// A `tracestate` key, `( lcalpha / DIGIT ) 0*255 ( keychar )` (draft §
/// "tracestate Header Field Values", Key): up to 256 characters, the first a
/// lowercase letter or digit, any number of `@` after it. The draft no
/// longer splits a key into tenant and system ids.
pub fn valid_tracestate_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    (1..=MAX_KEY_LEN).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| key_char(b))
}

/// A `tracestate` value: 1 to 256 printable ASCII characters other than `,`
/// and `=`, not ending in a space.
pub fn valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && bytes[bytes.len() - 1] != b' '
}

/// Parses the `tracestate` header fields, combined in order. Empty members
/// and empty fields are allowed; a member that breaks the grammar or more
/// than 32 members (`list = list-member 0*31( OWS "," OWS list-member )`)
/// make the whole list invalid (`None`), to be discarded rather than
/// forwarded (draft § "Processing Model", step 3: "MAY discard the entire
/// header").
///
/// Duplicate keys are kept, in place: uniqueness is the sender's duty
/// ("Adding a key/value pair MUST NOT result in the same key being present
/// multiple times"), a receiver "MAY also discard duplicate keys that were
/// not generated by them" (§ "Mutating the tracestate Field"), and this host
/// generates no key and does not change `traceparent`'s trace, so it
/// forwards the list as it came.
pub fn parse_tracestate<'a>(
    fields: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<(String, String)>> {
    let mut members: Vec<(String, String)> = Vec::new();
    for field in fields {
        for member in field.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=')?;
            if !valid_tracestate_key(key) || !valid_tracestate_value(value) {
                return None;
            }
            members.push((key.to_string(), value.to_string()));
            if members.len() > MAX_TRACESTATE_MEMBERS {
                return None;
            }
        }
    }
    Some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// What leaves after extracting `incoming` and injecting the same
    /// context (the traceparent's parent id is then the incoming one).
    fn round_trip(incoming: &[(&str, &str)]) -> (Option<String>, Option<String>) {
        let p = Propagator::default();
        let extracted = p.extract(&headers(incoming));
        let mut out = HeaderMap::new();
        p.inject(
            &extracted.cx,
            &extracted.tracestate,
            &extracted.baggage,
            &mut out,
        );
        let get = |k: &str| out.get(k).map(|v| v.to_str().unwrap().to_string());
        (get(TRACEPARENT), get(TRACESTATE))
    }

    /// Each row: the draft's rule (its section in brackets), the incoming
    /// headers, and the `traceparent` / `tracestate` that must leave (None:
    /// a new trace, or the tracestate discarded).
    #[rustfmt::skip]
    #[test]
    fn trace_context_processing_model() {
        let long_tracestate: String = (0..32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let too_long: String = (0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let padded = format!(" \t{TP}\t ");
        let extended = format!("{TP}-extra");
        // From the W3C test suite (test/test.py) and issue #14: the key's limits.
        let key_256 = format!("foo=1,{}=1", "z".repeat(256));
        let key_257 = format!("foo=1,{}=1", "z".repeat(257));
        let at_key_256 = format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(14));
        let at_key_257 = format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(15));
        let after_at_15 = format!("foo=1,t@{}=1", "v".repeat(15));
        let tenant_242 = format!("foo=1,{}@v=1", "t".repeat(242));
        let many_at_256 = format!("foo=1,a{}=1", "@".repeat(255));
        let all_key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";
        let all_value: String = (0x20u8..=0x2b).chain(0x2d..=0x3c).chain(0x3e..=0x7e).map(char::from).collect();
        let all_chars = format!("{all_key}={all_value},0{all_key}@a-z0-9_-*/={all_value}");
        const F00: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        const F02: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";
        const F03: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        // (rule, incoming headers, traceparent out, tracestate out)
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("a valid traceparent is continued", vec![("traceparent", TP)], Some(TP), None),
            ("header names are case-insensitive [Header Name]", vec![("TraceParent", TP)], Some(TP), None),
            ("optional whitespace around the value is allowed", vec![("traceparent", &padded)], Some(TP), None),
            ("a repeated traceparent is invalid", vec![("traceparent", TP), ("traceparent", TP)], None, None),
            ("version 00 must be exactly 55 characters [version-format]", vec![("traceparent", &extended)], None, None),
            ("version ff is invalid [version]", vec![("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], None, None),
            ("a higher version is parsed by its known fields and re-emitted as 00 [Versioning of traceparent]", vec![("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")], Some(TP), None),
            ("a higher version of exactly 55 characters is parsed [Versioning of traceparent]", vec![("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], Some(TP), None),
            ("a higher version must have `-` after the known fields", vec![("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x")], None, None),
            ("a higher version keeps the random flag, zeroes unknown flags [Processing Model 2.2]", vec![("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-07-x")], Some(F03), None),
            ("hex must be lowercase", vec![("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")], None, None),
            ("an all-zero trace id is invalid [trace-id]", vec![("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")], None, None),
            ("an all-zero parent id is invalid [parent-id]", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")], None, None),
            ("a malformed value is invalid", vec![("traceparent", "00-xyz")], None, None),
            ("invalid separators", vec![("traceparent", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01")], None, None),
            ("flags 00 are kept [trace-flags]", vec![("traceparent", F00)], Some(F00), None),
            ("flags 01 (sampled) are kept [Sampled flag]", vec![("traceparent", TP)], Some(TP), None),
            ("flags 02 (random) are kept [Random Trace ID Flag]", vec![("traceparent", F02)], Some(F02), None),
            ("flags 03 (sampled, random) are kept [Random Trace ID Flag]", vec![("traceparent", F03)], Some(F03), None),
            ("unknown flags are zeroed [Other Flags]", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff")], Some(F03), None),
            ("an invalid traceparent discards the tracestate [Processing Model 2.3]", vec![("traceparent", "00-xyz"), ("tracestate", "a=1")], None, None),
            ("tracestate is kept with its traceparent", vec![("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")], Some(TP), Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")),
            ("repeated tracestate fields are combined in order [RFC9110 5.3]", vec![("traceparent", TP), ("tracestate", "a=1"), ("tracestate", "b=2")], Some(TP), Some("a=1,b=2")),
            ("keys with one `@` are valid [Key]", vec![("traceparent", TP), ("tracestate", "fw529a3039@dt=abc,1tenant@sys-1=x")], Some(TP), Some("fw529a3039@dt=abc,1tenant@sys-1=x")),
            ("a key ending in `@` is valid [Key]", vec![("traceparent", TP), ("tracestate", "foo@=1,bar=2")], Some(TP), Some("foo@=1,bar=2")),
            ("a key with `@@` is valid [Key]", vec![("traceparent", TP), ("tracestate", "foo@@bar=1,bar=2")], Some(TP), Some("foo@@bar=1,bar=2")),
            ("a key with two `@` is valid [Key]", vec![("traceparent", TP), ("tracestate", "foo@bar@baz=1,bar=2")], Some(TP), Some("foo@bar@baz=1,bar=2")),
            ("a key of one letter and 255 `@` is valid [Key]", vec![("traceparent", TP), ("tracestate", &many_at_256)], Some(TP), Some(&many_at_256)),
            ("242 characters before `@` are valid (244 in all) [Key]", vec![("traceparent", TP), ("tracestate", &tenant_242)], Some(TP), Some(&tenant_242)),
            ("15 characters after `@` are valid [Key]", vec![("traceparent", TP), ("tracestate", &after_at_15)], Some(TP), Some(&after_at_15)),
            ("a 256-character key with `@` is valid [Key]", vec![("traceparent", TP), ("tracestate", &at_key_256)], Some(TP), Some(&at_key_256)),
            ("a 257-character key with `@` invalidates the list [Key]", vec![("traceparent", TP), ("tracestate", &at_key_257)], Some(TP), None),
            ("a key starting with `@` invalidates the list [Key]", vec![("traceparent", TP), ("tracestate", "@foo=1,bar=2")], Some(TP), None),
            ("a key of `@` alone invalidates the list [Key]", vec![("traceparent", TP), ("tracestate", "@=1,bar=2")], Some(TP), None),
            ("a key starting with `_` invalidates the list [Key]", vec![("traceparent", TP), ("tracestate", "_foo=1")], Some(TP), None),
            ("a key starting with a digit is valid [Key]", vec![("traceparent", TP), ("tracestate", "1foo=1")], Some(TP), Some("1foo=1")),
            ("empty members and OWS are allowed", vec![("traceparent", TP), ("tracestate", " a=1 ,, \t,b=2 ")], Some(TP), Some("a=1,b=2")),
            ("an empty tracestate header is allowed", vec![("traceparent", TP), ("tracestate", "")], Some(TP), None),
            ("32 members are kept [list]", vec![("traceparent", TP), ("tracestate", &long_tracestate)], Some(TP), Some(&long_tracestate)),
            ("more than 32 members: the list is discarded [list; Processing Model 3]", vec![("traceparent", TP), ("tracestate", &too_long)], Some(TP), None),
            ("a duplicate key with the same value is kept [Mutating the tracestate Field]", vec![("traceparent", TP), ("tracestate", "foo=1,foo=1")], Some(TP), Some("foo=1,foo=1")),
            ("a duplicate key with another value is kept [Mutating the tracestate Field]", vec![("traceparent", TP), ("tracestate", "foo=1,foo=2")], Some(TP), Some("foo=1,foo=2")),
            ("a duplicate key across fields is kept [Mutating the tracestate Field]", vec![("traceparent", TP), ("tracestate", "foo=1"), ("tracestate", "foo=1")], Some(TP), Some("foo=1,foo=1")),
            ("an uppercase key invalidates the list", vec![("traceparent", TP), ("tracestate", "a=1,B=2")], Some(TP), None),
            ("a member without `=` invalidates the list", vec![("traceparent", TP), ("tracestate", "a=1,b")], Some(TP), None),
            ("a value with `=` invalidates the list [Value]", vec![("traceparent", TP), ("tracestate", "a=1=2")], Some(TP), None),
            ("a 256-character key is valid [Key]", vec![("traceparent", TP), ("tracestate", &key_256)], Some(TP), Some(&key_256)),
            ("a 257-character key invalidates the list [Key]", vec![("traceparent", TP), ("tracestate", &key_257)], Some(TP), None),
            ("every allowed key and value character is kept [Key, Value]", vec![("traceparent", TP), ("tracestate", &all_chars)], Some(TP), Some(&all_chars)),
            ("an empty value invalidates the list [Value]", vec![("traceparent", TP), ("tracestate", "foo=,bar=3")], Some(TP), None),
            ("a value's leading spaces are kept [Value]", vec![("traceparent", TP), ("tracestate", "foo=  1")], Some(TP), Some("foo=  1")),
            ("a space before `=` invalidates the list", vec![("traceparent", TP), ("tracestate", "foo =1")], Some(TP), None),
            ("a dot in a key invalidates the list", vec![("traceparent", TP), ("tracestate", "foo.bar=1")], Some(TP), None),
            ("an empty field among others is allowed", vec![("traceparent", TP), ("tracestate", ""), ("tracestate", "foo=1")], Some(TP), Some("foo=1")),
            ("tracestate without traceparent is discarded [Processing Model, No traceparent 3]", vec![("tracestate", "foo=1")], None, None),
            ("version 00 with a trailing character is invalid", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.")], None, None),
            ("a higher version with a non-`-` after the known fields is invalid", vec![("traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what")], None, None),
            ("a three-digit version is invalid", vec![("traceparent", "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], None, None),
            ("a one-digit version is invalid", vec![("traceparent", "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], None, None),
            ("a 33-digit trace id is invalid", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01")], None, None),
            ("a 17-digit parent id is invalid", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b71-01")], None, None),
            ("three-digit flags are invalid", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001")], None, None),
            ("illegal characters in flags are invalid", vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-.0")], None, None),
            ("wrong header names are not traceparent", vec![("trace-parent", TP), ("trace.parent", TP)], None, None),
        ];
        for (rule, incoming, traceparent, tracestate) in cases {
            let (got_parent, got_state) = round_trip(&incoming);
            assert_eq!(got_parent.as_deref(), traceparent, "traceparent: {rule}");
            assert_eq!(got_state.as_deref(), tracestate, "tracestate: {rule}");
        }
    }

    /// `traceresponse` and the Server-Timing `trace` metric carry the one
    /// formatted value; a guest's own are kept, its other metrics too.
    #[test]
    fn response_headers() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::new(0x03),
            false,
            TraceState::default(),
        );
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        let mut out = HeaderMap::new();
        respond(&sc, &mut out);
        assert_eq!(out[TRACERESPONSE], value);
        assert_eq!(out[SERVER_TIMING], format!("trace;desc={value}"));
        let mut own = headers(&[("traceresponse", "mine"), ("server-timing", "db;dur=53")]);
        respond(&sc, &mut own);
        assert_eq!(own[TRACERESPONSE], "mine");
        let timing: Vec<_> = own
            .get_all(SERVER_TIMING)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(timing, ["db;dur=53", &format!("trace;desc={value}")]);
        let mut own_trace = headers(&[("server-timing", "db;dur=53, Trace;desc=x")]);
        respond(&sc, &mut own_trace);
        assert_eq!(own_trace.get_all(SERVER_TIMING).iter().count(), 1);
    }

    /// Incoming flags reach the span context: sampled for the parent-based
    /// sampler, random kept.
    #[test]
    fn flags_reach_the_span_context() {
        let extracted = Propagator::default().extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
        )]));
        let span = extracted.cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote() && !sc.is_sampled());
        assert_eq!(sc.trace_flags().to_u8(), 0x02);
    }

    /// A guest's own `traceparent` and `baggage` are kept.
    #[test]
    fn inject_keeps_guest_headers() {
        let p = Propagator::default();
        let extracted = p.extract(&headers(&[("traceparent", TP), ("baggage", "a=1")]));
        let mut own = headers(&[
            (
                "traceparent",
                "00-11111111111111111111111111111111-2222222222222222-01",
            ),
            ("baggage", "mine=1"),
        ]);
        p.inject(
            &extracted.cx,
            &extracted.tracestate,
            &extracted.baggage,
            &mut own,
        );
        assert_eq!(
            own["traceparent"],
            "00-11111111111111111111111111111111-2222222222222222-01"
        );
        assert_eq!(own["baggage"], "mine=1");
    }

    /// `OTEL_PROPAGATORS=none` extracts and injects nothing; `baggage` alone
    /// carries baggage but no trace context.
    #[test]
    fn selected_propagators_only() {
        let incoming = headers(&[("traceparent", TP), ("baggage", "a=1")]);
        let none = Propagator::new(&[]);
        let extracted = none.extract(&incoming);
        assert!(!extracted.cx.span().span_context().is_valid());
        assert!(extracted.baggage.is_empty());
        let only_baggage = Propagator::new(&[config::Propagator::Baggage]);
        let extracted = only_baggage.extract(&incoming);
        let mut out = HeaderMap::new();
        only_baggage.inject(
            &Propagator::default().extract(&incoming).cx,
            "",
            &extracted.baggage,
            &mut out,
        );
        assert!(out.get("traceparent").is_none());
        assert_eq!(out["baggage"], "a=1");
    }
}
