//! Components the host did not see written: one built for the standard
//! `wasi:http/proxy` world alone (`forwarder`), and one that reports spans
//! from its own SDK through the WASI proposal `wasi:otel`
//! (`wasi_otel_guest`). Both must join the same traces as the host's spans.

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue};
use wasmparser::{Parser, Payload};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE}-{PARENT}-01")
}

/// `GET path` under the test's `traceparent`; the reply must be 200.
async fn traced_get(host: &Host, path: &str) -> Reply {
    let reply = send(
        "GET",
        &host.url(path),
        &[("traceparent", &traceparent())],
        "",
    )
    .await;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status, 200, "{body}");
    reply
}

/// The names of what the component (not its inner modules) imports.
fn component_imports(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut depth = 0;
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(import.unwrap().name.name.to_string());
                }
            }
            _ => {}
        }
    }
    imports
}

fn only(spans: &[Received], kind: i32) -> &Received {
    let matching: Vec<&Received> = spans.iter().filter(|s| s.span.kind == kind).collect();
    assert_eq!(matching.len(), 1, "{:#?}", names(spans));
    matching[0]
}

/// A component built only for `wasi:http/proxy` (it imports nothing but
/// standard WASI) gets the SERVER span, a CLIENT span for its outgoing
/// request, and W3C propagation both ways, without a line of tracing code.
#[tokio::test]
async fn a_plain_wasi_http_component_is_traced_for_free() {
    let imports = component_imports(&component("forwarder"));
    assert!(
        imports
            .iter()
            .any(|name| name.starts_with("wasi:http/outgoing-handler@0.2")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .all(|name| name.starts_with("wasi:") && !name.starts_with("wasi:otel")),
        "the forwarder must import standard WASI only: {imports:?}"
    );

    let (receiver, endpoint) = Receiver::start().await;
    let (recorder, url) = Recorder::start().await;
    let host = Host::start(
        "forwarder",
        &endpoint,
        HostOptions {
            args: vec!["--allow-outbound".into(), url.clone()],
            env: vec![],
        },
    )
    .await;
    let target = format!("{url}/next?x=1");
    let reply = traced_get(&host, &format!("/?to={target}")).await;
    assert_eq!(reply.body, b"forwarded: 200\n");

    let spans = receiver.trace(TRACE, 2).await;
    let server = only(&spans, SPAN_KIND_SERVER);
    let client = only(&spans, SPAN_KIND_CLIENT);
    assert_eq!(server.service, "forwarder");
    assert_eq!(server.span.name, "GET");
    assert_eq!(server.parent_id(), PARENT);
    assert_eq!(
        server.str_attr("http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(server.str_attr("url.path").as_deref(), Some("/"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert!(server.int_attr("wasm.instantiate.duration_us").is_some());
    assert!(server.int_attr("wasm.memory.peak_bytes").unwrap() > 0);

    assert_eq!(client.span.name, "GET");
    assert_eq!(client.parent_id(), server.span_id());
    assert_eq!(
        client.str_attr("url.full").as_deref(),
        Some(target.as_str())
    );
    assert_eq!(
        client.str_attr("server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(client.int_attr("http.response.status_code"), Some(200));
    assert_eq!(client.status().0, STATUS_UNSET);

    let sent = recorder.headers();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["traceparent"].to_str().unwrap(),
        format!("00-{TRACE}-{}-01", client.span_id())
    );
    let answered = reply.headers["traceresponse"].to_str().unwrap();
    assert_eq!(answered, format!("00-{TRACE}-{}-01", server.span_id()));
}

async fn wasi_otel_guest(args: Vec<String>) -> (Receiver, Host) {
    wasi_otel_guest_with(HostOptions { args, env: vec![] }).await
}

/// `wasi_otel_guest` started with `options`, exporting to a fresh receiver.
async fn wasi_otel_guest_with(options: HostOptions) -> (Receiver, Host) {
    let (receiver, endpoint) = Receiver::start().await;
    let host = Host::start("wasi_otel_guest", &endpoint, options).await;
    (receiver, host)
}

fn strings(items: &[&str]) -> Value {
    Value::ArrayValue(ArrayValue {
        values: items
            .iter()
            .map(|s| opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(Value::StringValue(s.to_string())),
            })
            .collect(),
    })
}

fn attr_of(attributes: &[KeyValue], key: &str) -> Option<Value> {
    attr(attributes, key)
}

/// Serves the guest with `args`, asks for `/work` (which calls a recorder)
/// under the test's `traceparent`; returns the receiver, the recorder, the
/// ids the guest answered with and the host (serving until dropped).
async fn work(args: &[&str]) -> (Receiver, Recorder, serde_json::Value, Host) {
    let (recorder, url) = Recorder::start().await;
    let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    args.extend(["--allow-outbound".to_string(), url.clone()]);
    let (receiver, host) = wasi_otel_guest(args).await;
    let ids = traced_get(&host, &format!("/work?to={url}/stock"))
        .await
        .json();
    (receiver, recorder, ids, host)
}

/// Spans a guest reports through `wasi:otel` keep its ids, times, kind,
/// attributes (typed from their JSON), events, links, status and scope;
/// its root span nests under the host's SERVER span (`outer-span-context`),
/// and the host's CLIENT span nests under the guest span open at the time.
#[tokio::test]
async fn wasi_otel_spans_join_the_trace() {
    let (receiver, recorder, ids, _host) = work(&[]).await;
    assert_eq!(ids["trace_id"], TRACE);
    assert_eq!(ids["fetched"], true);

    let spans = receiver.trace(TRACE, 4).await;
    let by_id = by_id(&spans);
    let server = only(&spans, SPAN_KIND_SERVER);
    let client = only(&spans, SPAN_KIND_CLIENT);
    assert_eq!(
        ids["outer"],
        server.span_id(),
        "outer-span-context is the SERVER span"
    );
    assert_eq!(server.parent_id(), PARENT);

    let work = by_id[ids["work"].as_str().unwrap()];
    let fetch = by_id[ids["fetch"].as_str().unwrap()];
    assert_eq!(work.span.name, "work");
    assert_eq!(work.parent_id(), server.span_id());
    assert_eq!(fetch.span.name, "fetch");
    assert_eq!(fetch.parent_id(), work.span_id());
    assert_eq!(
        client.parent_id(),
        fetch.span_id(),
        "CLIENT under the open guest span"
    );
    assert_eq!(
        recorder.headers()[0]["traceparent"].to_str().unwrap(),
        format!("00-{TRACE}-{}-01", client.span_id())
    );

    // Nesting in time, as the guest reported it.
    assert!(work.span.start_time_unix_nano <= fetch.span.start_time_unix_nano);
    assert!(fetch.span.start_time_unix_nano <= client.span.start_time_unix_nano);
    assert!(client.span.end_time_unix_nano <= fetch.span.end_time_unix_nano);
    assert!(fetch.span.end_time_unix_nano <= work.span.end_time_unix_nano);
    assert!(work.span.end_time_unix_nano <= server.span.end_time_unix_nano);

    assert_eq!(work.span.kind, SPAN_KIND_INTERNAL);
    assert_eq!(work.service, "wasi-otel-guest");
    assert_eq!(
        work.scope,
        ("wasi-otel-guest".to_string(), "0.1.0".to_string())
    );
    assert_eq!(server.scope.0, "wasm-otel-host");
    assert_eq!(work.str_attr("order.item").as_deref(), Some("widget"));
    assert_eq!(work.int_attr("order.quantity"), Some(3));
    assert_eq!(work.float_attr("order.amount"), Some(59.97));
    assert_eq!(work.attr("order.express"), Some(Value::BoolValue(true)));
    assert_eq!(work.attr("order.tags"), Some(strings(&["a", "b"])));
    assert_eq!(work.str_attr("order.meta").as_deref(), Some(r#"{"k":1}"#));
    assert_eq!(fetch.int_attr("http.response.status_code"), Some(200));
    let done = work.event("work.done").unwrap();
    assert_eq!(attr_of(&done.attributes, "items"), Some(Value::IntValue(1)));
    assert_eq!(work.span.links.len(), 1);
    assert_eq!(hex(&work.span.links[0].span_id), server.span_id());
    assert_eq!(
        attr_of(&work.span.links[0].attributes, "link.reason"),
        Some(Value::StringValue("outer".into()))
    );
    assert_eq!(work.status(), (STATUS_ERROR, "out of widgets".to_string()));
    assert_eq!(fetch.status().0, STATUS_UNSET);
}

/// The span link limits bind a guest's reported spans: its `work` span
/// has one link with one attribute; `OTEL_SPAN_LINK_COUNT_LIMIT=0` drops
/// the link, `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT=0` (or the general
/// `OTEL_ATTRIBUTE_COUNT_LIMIT=0`) its attribute, each counted.
#[tokio::test]
async fn link_limits_bind_reported_spans() {
    // (variables, links kept, dropped links, link attributes kept, dropped)
    type Case<'a> = (&'a [(&'a str, &'a str)], usize, u32, usize, u32);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[],                                         1, 0, 1, 0),
        (&[("OTEL_SPAN_LINK_COUNT_LIMIT", "0")],      0, 1, 0, 0),
        (&[("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "0")], 1, 0, 0, 1),
        (&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "0"), ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "128"), ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "128")], 1, 0, 0, 1),
    ];
    for &(env, links, dropped_links, attributes, dropped_attributes) in cases {
        // Held to the end of the case: the guest's `fetch` calls it.
        let (_recorder, url) = Recorder::start().await;
        let options = HostOptions {
            args: vec!["--allow-outbound".to_string(), url.clone()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let (receiver, host) = wasi_otel_guest_with(options).await;
        let ids = traced_get(&host, &format!("/work?to={url}/stock"))
            .await
            .json();
        let spans = receiver.trace(TRACE, 4).await;
        let work = by_id(&spans)[ids["work"].as_str().unwrap()];
        let span = &work.span;
        assert_eq!(
            (span.links.len(), span.dropped_links_count),
            (links, dropped_links),
            "{env:?}"
        );
        if let Some(link) = span.links.first() {
            assert_eq!(
                (link.attributes.len(), link.dropped_attributes_count),
                (attributes, dropped_attributes),
                "{env:?}"
            );
        }
    }
}

/// One stack of open spans across both interfaces: a `wasi:otel` span
/// started inside a `wasm-otel` span nests under it (`outer-span-context`
/// is the innermost open span), and a `wasm-otel` span started while the
/// `wasi:otel` one is open nests under that.
#[tokio::test]
async fn both_interfaces_share_one_stack_of_open_spans() {
    let (receiver, host) = wasi_otel_guest(vec![]).await;
    let ids = traced_get(&host, "/mixed").await.json();
    let spans = receiver.trace(TRACE, 4).await;
    let by_id = by_id(&spans);
    let server = only(&spans, SPAN_KIND_SERVER);
    let ours = by_id[ids["ours"].as_str().unwrap()];
    let theirs = by_id[ids["theirs"].as_str().unwrap()];
    let inner = by_id[ids["inner"].as_str().unwrap()];
    assert_eq!(ids["outer"], ours.span_id());
    assert_eq!(
        (ours.span.name.as_str(), ours.parent_id()),
        ("ours", server.span_id())
    );
    assert_eq!(
        (theirs.span.name.as_str(), theirs.parent_id()),
        ("theirs", ours.span_id())
    );
    assert_eq!(
        (inner.span.name.as_str(), inner.parent_id()),
        ("inner", theirs.span_id())
    );
    assert_eq!(theirs.status().0, 1, "ok");
    assert_eq!(ours.scope.0, "wasm-otel-host");
    assert_eq!(theirs.scope.0, "wasi-otel-guest");
}

/// The random trace-id flag (W3C Trace Context § "Random Trace ID Flag")
/// survives every path a span context takes: `wasi:otel` span contexts
/// (whose `trace-flags` name only `sampled`) take it from their trace, spans
/// of our tracing interface inherit it, the CLIENT span's injected
/// `traceparent` carries it, and every exported span has it in OTLP
/// `flags`: for an incoming `03` and for a trace the host starts.
#[tokio::test]
async fn the_random_flag_survives_both_interfaces() {
    let (recorder, url) = Recorder::start().await;
    let (receiver, host) = wasi_otel_guest(vec!["--allow-outbound".to_string(), url.clone()]).await;
    let continued = "1bf92f3577b34da6a3ce929d0e0e4736";
    let mixed = "2bf92f3577b34da6a3ce929d0e0e4736";
    let work = format!("/work?to={url}/stock");
    for (path, trace) in [(work.as_str(), continued), ("/mixed", mixed)] {
        let incoming = format!("00-{trace}-{PARENT}-03");
        let reply = send("GET", &host.url(path), &[("traceparent", &incoming)], "").await;
        assert_eq!(reply.status, 200);
        for span in receiver.trace(trace, 4).await {
            assert_eq!(span.span.flags & 0xff, 0x03, "{path}: {}", span.span.name);
        }
    }
    let reply = send("GET", &host.url(&work), &[], "").await;
    let started = reply.json()["trace_id"].as_str().unwrap().to_string();
    for span in receiver.trace(&started, 4).await {
        assert_eq!(
            span.span.flags & 0xff,
            0x03,
            "new trace: {}",
            span.span.name
        );
    }
    let sent = recorder.headers();
    assert_eq!(sent.len(), 2);
    for (headers, trace) in sent.iter().zip([continued, started.as_str()]) {
        let traceparent = headers["traceparent"].to_str().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{trace}-")) && traceparent.ends_with("-03"),
            "{traceparent}"
        );
    }
}

/// Spans reported with ids that are not valid W3C ids (not hex, all zero,
/// uppercase) are ignored; the request is served as if they were not sent.
#[tokio::test]
async fn wasi_otel_spans_with_invalid_ids_are_ignored() {
    let (receiver, host) = wasi_otel_guest(vec![]).await;
    traced_get(&host, "/invalid").await;
    let spans = receiver.trace(TRACE, 1).await;
    assert_eq!(spans[0].span.kind, SPAN_KIND_SERVER);
    assert!(
        receiver.spans().iter().all(|s| s.span.name != "invalid"),
        "{:#?}",
        names(&receiver.spans())
    );
}

/// `--max-spans` counts spans reported through `wasi:otel` like the others.
#[tokio::test]
async fn wasi_otel_spans_count_against_the_span_limit() {
    let (receiver, recorder, ids, _host) = work(&["--max-spans", "1"]).await;
    // fetch (reported first) is kept; work is dropped and counted.
    let spans = receiver.trace(TRACE, 3).await;
    let server = only(&spans, SPAN_KIND_SERVER);
    assert_eq!(server.int_attr("wasm.guest_spans_dropped"), Some(1));
    let fetch = by_id(&spans)[ids["fetch"].as_str().unwrap()];
    assert_eq!(fetch.span.name, "fetch");
    assert_eq!(recorder.headers().len(), 1);
}
