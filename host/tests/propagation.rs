//! W3C Trace Context and Baggage through real hosts: the exact headers that
//! leave the host (seen by a recording server), and the spans recorded.

// Tests fail loudly by design: an unwrap is an assertion here.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A conformance host calling the recorder `calls` times for one request
/// with `headers`; returns the headers that left, the response's trace id
/// and the host's spans of that trace.
async fn through_conformance(
    receiver: &Receiver,
    endpoint: &str,
    headers: &[(&str, &str)],
    calls: usize,
) -> (Vec<hyper::HeaderMap>, String, Vec<Received>) {
    let (recorder, url) = Recorder::start().await;
    let host = Host::start(
        "conformance",
        endpoint,
        HostOptions {
            args: vec!["--allow-outbound".into(), url.clone()],
            env: vec![],
        },
    )
    .await;
    let body = serde_json::Value::Array(
        (0..calls)
            .map(|i| serde_json::json!({"url": format!("{url}/call/{i}"), "arguments": {"n": i}}))
            .collect(),
    );
    let reply = send("POST", &host.url("/"), headers, &body.to_string()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    for result in reply.json().as_array().unwrap() {
        assert_eq!(result["status"], 200, "{result}");
    }
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 1 + calls).await;
    (recorder.headers(), trace_id, spans)
}

fn header(map: &hyper::HeaderMap, name: &str) -> Option<String> {
    map.get(name).map(|v| v.to_str().unwrap().to_string())
}

/// A valid context is continued: same trace id, a fresh parent id per
/// outgoing request (its CLIENT span), sampled and random flags kept,
/// `tracestate` forwarded exactly.
#[tokio::test]
async fn valid_context_is_continued_with_fresh_parent_ids() {
    let (receiver, endpoint) = Receiver::start().await;
    let (sent, trace_id, spans) = through_conformance(
        &receiver,
        &endpoint,
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("TraceState", "tenant@vendor=x"),
        ],
        2,
    )
    .await;
    assert_eq!(trace_id, TRACE);
    let server = find(&spans, "conformance", "POST /");
    assert_eq!(server.parent_id(), "00f067aa0ba902b7");
    let clients: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.kind == SPAN_KIND_CLIENT)
        .collect();
    assert_eq!(clients.len(), 2);
    let mut parents = Vec::new();
    for headers in &sent {
        let traceparent = header(headers, "traceparent").unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", TRACE, "03"),
            "{traceparent}"
        );
        assert!(
            clients.iter().any(|c| c.span_id() == parts[2]),
            "parent id is a CLIENT span"
        );
        assert_eq!(
            header(headers, "tracestate").as_deref(),
            Some("congo=t61rcWkgMzE,tenant@vendor=x")
        );
        parents.push(parts[2].to_string());
    }
    assert_ne!(parents[0], parents[1], "each request its own parent id");
}

/// Hostile or invalid incoming headers: a new trace starts and the incoming
/// `tracestate` does not leave the host; an invalid `tracestate` alone is
/// dropped while the trace continues.
#[tokio::test]
async fn hostile_headers_never_leak() {
    let too_many: String = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    // (rule, incoming headers, trace continued, tracestate out)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "uppercase hex",
            vec![
                (
                    "traceparent",
                    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                ),
                ("tracestate", "a=1"),
            ],
            false,
            None,
        ),
        (
            "repeated traceparent",
            vec![
                ("traceparent", TP),
                ("traceparent", TP),
                ("tracestate", "a=1"),
            ],
            false,
            None,
        ),
        (
            "version ff",
            vec![(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            false,
            None,
        ),
        (
            "33 tracestate members",
            vec![("traceparent", TP), ("tracestate", &too_many)],
            true,
            None,
        ),
        (
            "a tracestate key starting with `@`",
            vec![("traceparent", TP), ("tracestate", "@a=1,b=2")],
            true,
            None,
        ),
        (
            "unknown flags",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            )],
            true,
            None,
        ),
    ];
    for (rule, headers, continued, tracestate) in cases {
        // A receiver per case: several cases continue the same trace id.
        let (receiver, endpoint) = Receiver::start().await;
        let (sent, trace_id, _) = through_conformance(&receiver, &endpoint, &headers, 1).await;
        assert_eq!(trace_id == TRACE, continued, "{rule}");
        let traceparent = header(&sent[0], "traceparent").unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{trace_id}-")),
            "{rule}: {traceparent}"
        );
        // Continued: sampled, unknown flags zeroed; restarted: a trace of
        // the host's own, sampled and random.
        let flags = if continued { "-01" } else { "-03" };
        assert!(
            traceparent.ends_with(flags),
            "{rule}: flags {flags}: {traceparent}"
        );
        assert_eq!(
            header(&sent[0], "tracestate").as_deref(),
            tracestate,
            "{rule}"
        );
    }
}

/// A conformance host calling a recorder once per request: one host for a
/// table of cases whose spans need not be waited for.
struct Conformance {
    host: Host,
    recorder: Recorder,
    url: String,
}

impl Conformance {
    async fn start(endpoint: &str, env: &[(&str, &str)]) -> Conformance {
        let (recorder, url) = Recorder::start().await;
        let host = Host::start(
            "conformance",
            endpoint,
            HostOptions {
                args: vec!["--allow-outbound".into(), url.clone()],
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        )
        .await;
        Conformance {
            host,
            recorder,
            url,
        }
    }

    /// Sends one request with `headers`; returns the headers of the call
    /// that left for it and the response's headers.
    async fn call(&self, headers: &[(&str, &str)]) -> (hyper::HeaderMap, hyper::HeaderMap) {
        let before = self.recorder.headers().len();
        let body = serde_json::json!([{"url": format!("{}/call", self.url), "arguments": {}}]);
        let reply = send("POST", &self.host.url("/"), headers, &body.to_string()).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let sent = self.recorder.headers();
        assert_eq!(sent.len(), before + 1, "one call per request");
        (sent[before].clone(), reply.headers)
    }
}

/// The `tracestate` that leaves follows the current draft's key grammar
/// (§ "tracestate Header Field Values", Key: up to 256 characters, the first
/// a lowercase letter or digit, any number of `@`) and keeps duplicate keys
/// as they came (§ "Mutating the tracestate Field"); a list it refuses is
/// dropped whole while the trace continues.
#[rustfmt::skip]
#[tokio::test]
async fn tracestate_leaves_by_the_current_draft() {
    let (_receiver, endpoint) = Receiver::start().await;
    let conformance = Conformance::start(&endpoint, &[]).await;
    let tenant_242 = format!("foo=1,{}@v=1", "t".repeat(242));
    let key_256 = format!("foo=1,{}=1", "z".repeat(256));
    let key_257 = format!("foo=1,{}=1", "z".repeat(257));
    let at_key_256 = format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(14));
    let at_key_257 = format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(15));
    // (rule, tracestate fields in, tracestate out)
    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        ("a key ending in `@`", vec!["foo@=1,bar=2"], Some("foo@=1,bar=2")),
        ("a key with `@@`", vec!["foo@@bar=1,bar=2"], Some("foo@@bar=1,bar=2")),
        ("a key with two `@`", vec!["foo@bar@baz=1,bar=2"], Some("foo@bar@baz=1,bar=2")),
        ("242 characters before `@`, 244 in all", vec![&tenant_242], Some(&tenant_242)),
        ("a key starting with `@`", vec!["@foo=1,bar=2"], None),
        ("a 256-character key", vec![&key_256], Some(&key_256)),
        ("a 257-character key", vec![&key_257], None),
        ("a 256-character key with `@`", vec![&at_key_256], Some(&at_key_256)),
        ("a 257-character key with `@`", vec![&at_key_257], None),
        ("a duplicate key, same value", vec!["foo=1,foo=1"], Some("foo=1,foo=1")),
        ("a duplicate key, another value", vec!["foo=1,foo=2"], Some("foo=1,foo=2")),
        ("a duplicate key across fields", vec!["foo=1", "foo=1"], Some("foo=1,foo=1")),
    ];
    for (rule, fields, expected) in cases {
        let mut headers = vec![("traceparent", TP)];
        headers.extend(fields.iter().map(|field| ("tracestate", *field)));
        let (sent, _) = conformance.call(&headers).await;
        let traceparent = header(&sent, "traceparent").unwrap();
        assert!(traceparent.starts_with(&format!("00-{TRACE}-")) && traceparent.ends_with("-01"), "{rule}: {traceparent}");
        assert_eq!(header(&sent, "tracestate").as_deref(), expected, "{rule}");
        assert_eq!(sent.get_all("tracestate").iter().count(), usize::from(expected.is_some()), "{rule}: one field");
    }
}

/// Incoming flags `00`/`01`/`02`/`03` leave as they came on the outgoing
/// `traceparent` (with a new parent id), on `traceresponse` and on the
/// Server-Timing `trace` metric (§ "Random Trace ID Flag": the random flag
/// MUST stay set, or unset, on every `traceparent` with the same trace id;
/// § "Trace Context Server Timing Metric Format"). Sampled traces export
/// their spans with the same flags in OTLP's `flags`.
#[tokio::test]
async fn flags_leave_as_they_came() {
    let (receiver, endpoint) = Receiver::start().await;
    let conformance = Conformance::start(&endpoint, &[]).await;
    for flags in ["00", "01", "02", "03"] {
        // A trace of its own per case, so that each has its own spans.
        let trace = format!("{flags}{}", &TRACE[2..]);
        let trace = trace.as_str();
        let incoming = format!("00-{trace}-00f067aa0ba902b7-{flags}");
        let (sent, response) = conformance.call(&[("traceparent", &incoming)]).await;
        let out = header(&sent, "traceparent").unwrap();
        let parts: Vec<&str> = out.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", trace, flags),
            "{out}"
        );
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new parent id: {out}");
        let traceresponse = header(&response, "traceresponse").unwrap();
        let parts: Vec<&str> = traceresponse.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[3]),
            ("00", trace, flags),
            "{traceresponse}"
        );
        assert_eq!(
            header(&response, "server-timing"),
            Some(format!("trace;desc={traceresponse}"))
        );
        let byte = u32::from_str_radix(flags, 16).unwrap();
        if byte & 0x01 != 0 {
            for span in receiver.trace(trace, 2).await {
                assert_eq!(span.span.flags & 0xff, byte, "{}", span.span.name);
            }
        }
    }
}

/// A trace the host starts has random ids (the SDK's random generator), so
/// it is flagged random (§ "Random Trace ID Flag": SHOULD be set): `03` when
/// sampled, `02` when not, on the outgoing `traceparent` and the
/// `traceresponse`, and in every exported span's OTLP `flags`.
#[tokio::test]
async fn new_traces_are_flagged_random() {
    let (receiver, endpoint) = Receiver::start().await;
    let sampled = Conformance::start(&endpoint, &[]).await;
    let unsampled = Conformance::start(&endpoint, &[("OTEL_TRACES_SAMPLER", "always_off")]).await;
    for (conformance, flags) in [(&sampled, "03"), (&unsampled, "02")] {
        let (sent, response) = conformance.call(&[]).await;
        let out = header(&sent, "traceparent").unwrap();
        let traceresponse = header(&response, "traceresponse").unwrap();
        assert_eq!(out.len(), 55, "{out}");
        assert!(out.ends_with(&format!("-{flags}")), "{out}");
        assert_eq!(traceresponse[..36], out[..36], "the same trace");
        assert!(
            traceresponse.ends_with(&format!("-{flags}")),
            "{traceresponse}"
        );
        if flags == "03" {
            let spans = receiver.trace(&out[3..35], 2).await;
            for span in spans {
                assert_eq!(span.span.flags & 0xff, 0x03, "{}", span.span.name);
            }
        }
    }
}

/// `customer.tier=gold` sent to the order service shows on the payment
/// side's spans with `--baggage-attributes`, and on none without it.
#[tokio::test]
async fn baggage_reaches_the_payment_side_spans() {
    let (receiver, endpoint) = Receiver::start().await;
    let flag = |on: bool| {
        if on {
            vec![
                "--baggage-attributes".to_string(),
                "customer.tier".to_string(),
            ]
        } else {
            vec![]
        }
    };
    for on in [true, false] {
        let payment = Host::start(
            "payment",
            &endpoint,
            HostOptions {
                args: flag(on),
                env: vec![],
            },
        )
        .await;
        let mut args = flag(on);
        args.extend([
            "--env".to_string(),
            format!("PAYMENT_URL={}", payment.url("")),
            "--allow-outbound".to_string(),
            payment.url(""),
        ]);
        let order = Host::start("order", &endpoint, HostOptions { args, env: vec![] }).await;
        let reply = send(
            "POST",
            &order.url("/orders"),
            &[("baggage", "customer.tier=gold")],
            VALID_ORDER,
        )
        .await;
        assert_eq!(reply.status, 201);
        let trace_id = reply.json()["trace_id"].as_str().unwrap().to_string();
        let spans = receiver.trace(&trace_id, 6).await;
        for span in &spans {
            let expected = on.then(|| "gold".to_string());
            assert_eq!(
                span.str_attr("baggage.customer.tier"),
                expected,
                "{}:{}",
                span.service,
                span.span.name
            );
        }
    }
}

/// A guest reads the incoming baggage and adds an entry; both leave on its
/// outgoing request, encoding and properties as they came; the limits hold.
#[tokio::test]
async fn guests_read_and_add_baggage_within_limits() {
    let (receiver, endpoint) = Receiver::start().await;
    let (recorder, url) = Recorder::start().await;
    let host = Host::start(
        "testbed",
        &endpoint,
        HostOptions {
            args: vec![
                "--env".into(),
                format!("FORWARD_URL={url}/next"),
                "--allow-outbound".into(),
                url.clone(),
            ],
            env: vec![],
        },
    )
    .await;
    let reply = send(
        "GET",
        &host.url("/baggage"),
        &[("baggage", "note=a%20b;ttl=60, customer.tier=gold")],
        "",
    )
    .await;
    let body = reply.json();
    assert_eq!(body["added"], true);
    assert_eq!(body["forwarded"], 200);
    assert_eq!(body["baggage"]["note"], "a b");
    assert_eq!(body["baggage"]["added.by"], "testbed");
    assert_eq!(
        header(&recorder.headers()[0], "baggage").as_deref(),
        Some("note=a%20b;ttl=60,customer.tier=gold,added.by=testbed")
    );

    let many: String = (0..70)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let reply = send("GET", &host.url("/baggage"), &[("baggage", &many)], "").await;
    assert_eq!(reply.json()["added"], false, "the 65th entry does not fit");
    let sent = header(&recorder.headers()[1], "baggage").unwrap();
    assert_eq!(
        sent.split(',').count(),
        64,
        "whole members beyond 64 dropped"
    );
    assert!(sent.ends_with(",k63=v"));
    drop(receiver);
}
