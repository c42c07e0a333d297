//! A test-only component (not part of the order system) whose routes each
//! exercise one guarantee of the host, for the integration tests:
//!
//! | route | does |
//! |---|---|
//! | `/leak` | starts `outer` and `inner` and forgets both: the host must end them |
//! | `/nested` | `a` ⊃ (`b`, then `c`), then `d` after `a` ended: default parents |
//! | `/attributes` | one span with every attribute type, an event, status ok |
//! | `/context` | returns the current span context, inside a span and outside |
//! | `/trap` | panics: the host answers 500 and records the trap |
//! | `/loop` | never returns: the deadline must stop it |
//! | `/wait` | blocks in a host call (a 1-hour sleep): the deadline must stop it |
//! | `/alloc` | allocates without bound: the memory cap must stop it |
//! | `/flood` | starts 5000 spans: the span cap must hold |
//! | `/many` | one span with 20 attributes of 8 characters and 5 events: the `OTEL_*` limits must hold |
//! | `/print` | writes a line on stdout, then in span `work` one on stdout and one on stderr, then an unfinished line: each must become a log record in its span |
//! | `/shout` | writes one line of 20000 bytes and 5000 more on stdout: the line limits must hold |
//! | `/baggage` | adds `added.by=testbed` to the baggage, calls `FORWARD_URL` if set, returns the entries |

use otel_guest::ServiceInfo;
use otel_guest::bindings::exports::wasi::http::incoming_handler::Guest;
use otel_guest::bindings::exports::wasm_otel::host::service_info;
use otel_guest::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use otel_guest::http::{Request, respond_json};
use otel_guest::trace::{Span, SpanKind, Status, Value, kv, set_route};
use serde_json::json;

struct Testbed;

impl Guest for Testbed {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let request = Request::from_wasi(request);
        set_route(&request.path);
        let body = match request.path.as_str() {
            "/leak" => {
                let outer = Span::start("outer", &[]);
                let inner = Span::start("inner", &[]);
                std::mem::forget(inner);
                std::mem::forget(outer);
                json!({"leaked": 2})
            }
            "/nested" => {
                let a = Span::start("a", &[]);
                drop(Span::start("b", &[]));
                let c = Span::start_with_kind("c", SpanKind::Producer, &[]);
                c.end();
                a.end();
                drop(Span::start("d", &[]));
                json!({"spans": 4})
            }
            "/attributes" => {
                let span = Span::start(
                    "typed",
                    &[
                        kv("s", "text"),
                        kv("b", true),
                        kv("i", -42i64),
                        kv("f", 2.5f64),
                        kv("sa", vec!["x".to_string(), "y".to_string()]),
                        otel_guest::trace::KeyValue {
                            key: "ba".into(),
                            value: Value::BoolArray(vec![true, false]),
                        },
                        otel_guest::trace::KeyValue {
                            key: "ia".into(),
                            value: Value::S64Array(vec![1, 2, 3]),
                        },
                        otel_guest::trace::KeyValue {
                            key: "fa".into(),
                            value: Value::F64Array(vec![0.5, 1.5]),
                        },
                    ],
                );
                span.set_attribute("s", "overwritten");
                span.add_event("checkpoint", &[kv("step", 1i64)]);
                span.record_exception("Recovered", "handled", Some("frame 1\nframe 2"));
                span.set_status(Status::Ok);
                // Ignored: ok is final.
                span.set_status(Status::Error("too late".into()));
                json!({"ok": true})
            }
            "/context" => {
                let outside = otel_guest::trace::trace_id();
                let span = Span::start("inside", &[]);
                let inside = span.context();
                json!({"outside_trace_id": outside, "inside_trace_id": inside.trace_id,
                       "inside_span_id": inside.span_id, "sampled": inside.sampled})
            }
            "/trap" => panic!("testbed asked to trap"),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/wait" => {
                otel_guest::bindings::wasi::clocks::monotonic_clock::subscribe_duration(
                    3_600_000_000_000,
                )
                .block();
                json!({"waited": true})
            }
            "/alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "/many" => {
                let span = Span::start("many", &[]);
                for i in 0..20i64 {
                    span.set_attribute(&format!("k{i:02}"), "abcdefgh");
                }
                for i in 0..5i64 {
                    span.add_event("tick", &[kv("i", i)]);
                }
                json!({"attributes": 20, "events": 5})
            }
            "/print" => {
                println!("printed before any span");
                let work = Span::start("work", &[]);
                println!("printed in work");
                eprintln!("warned in work");
                work.end();
                print!("unfinished line");
                // Written now, without its newline: the host ends the line
                // when the request finishes.
                let _ = std::io::Write::flush(&mut std::io::stdout());
                json!({"lines": 4})
            }
            "/shout" => {
                println!("{}", "x".repeat(20_000));
                for i in 0..5000 {
                    println!("shout {i}");
                }
                json!({"lines": 5001})
            }
            "/flood" => {
                for i in 0..5000i64 {
                    let span = Span::start("flood", &[kv("i", i)]);
                    span.end();
                }
                json!({"started": 5000})
            }
            "/baggage" => {
                let added = otel_guest::trace::set_baggage("added.by", "testbed");
                let forwarded = match std::env::var("FORWARD_URL") {
                    Ok(url) => match otel_guest::http::BaseUrl::parse(&url) {
                        Ok(base) => otel_guest::http::post_json(&base, "", b"{}", 5_000)
                            .map(|r| r.status)
                            .unwrap_or(0),
                        Err(_) => 0,
                    },
                    Err(_) => 0,
                };
                let entries: serde_json::Map<String, serde_json::Value> =
                    otel_guest::trace::baggage()
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect();
                json!({"added": added, "forwarded": forwarded, "baggage": entries})
            }
            other => json!({"unknown": other}),
        };
        respond_json(out, 200, &body);
    }
}

impl service_info::Guest for Testbed {
    fn describe() -> ServiceInfo {
        ServiceInfo {
            name: "testbed".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // `/baggage` forwards to `FORWARD_URL` when the test sets it.
            outbound: std::env::var("FORWARD_URL").into_iter().collect(),
        }
    }
}

otel_guest::bindings::export!(Testbed with_types_in otel_guest::bindings);
