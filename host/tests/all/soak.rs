//! Soak: many orders through both services in one host process (order on
//! one port, payment on another, as `cargo xtask up` runs them) with a real
//! OTLP receiver, then a second run stopped by a real SIGTERM part-way.
//!
//! Checks that every order got the answer its index calls for (201 valid,
//! 402 fraud, 422 invalid), that every trace arrived whole (6 spans for 201
//! and 402, 2 for 422), connected (one root, every parent present) and
//! without duplicate span ids, and that SIGTERM loses no span of a request
//! that was answered. Bounded: a fixed count (`SOAK_ORDERS`, default 200;
//! `SOAK_CLIENTS` concurrent clients, default 4) and a time budget
//! (`SOAK_SECONDS`, default 300) past which it stops and fails; 127.0.0.1
//! only. `cargo xtask soak [N]` runs it with a larger N and prints the summary.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;

fn env_number(key: &str, default: usize) -> usize {
    match std::env::var(key) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{key}=`{value}` is not a count: {e}")),
        _ => default,
    }
}

/// What order `i` is: its body, the status it must get, and how many spans
/// its trace must have.
fn order(i: usize) -> (String, u16, usize) {
    match i % 5 {
        // Valid: 201, six spans across both services.
        0..=2 => (
            format!(
                r#"{{"customer_id":"soak-{i}","item":"widget","quantity":{},"amount":{}.5}}"#,
                1 + i % 7,
                1 + i % 9000
            ),
            201,
            6,
        ),
        // Fraud: 402, the payment call still happens: six spans.
        3 => (
            format!(
                r#"{{"customer_id":"soak-{i}","item":"yacht","quantity":1,"amount":{}.0}}"#,
                10_001 + i
            ),
            402,
            6,
        ),
        // Invalid: 422 before any payment call: two spans.
        _ => (
            format!(r#"{{"customer_id":"soak-{i}","item":"widget","quantity":0,"amount":1.0}}"#),
            422,
            2,
        ),
    }
}

/// The spans a trace must have, by the status its order got: 201 and 402
/// pass through payment (6), 422 stops at validation (2). No other status
/// is expected, not even during shutdown: the host stops the order port,
/// drains it, and only then stops payment, so an order in flight never
/// finds payment gone.
fn spans_for(status: u16) -> Option<usize> {
    match status {
        201 | 402 => Some(6),
        422 => Some(2),
        _ => None,
    }
}

/// One answered order.
#[derive(Debug, Clone)]
struct Answer {
    index: usize,
    status: u16,
    trace_id: String,
}

/// `POST /orders` over a fresh loopback connection; an error instead of a
/// panic when the host is gone (the SIGTERM run).
async fn post_order(addr: &str, body: String) -> Result<(u16, serde_json::Value), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::post("/orders")
        .header("host", addr)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .map_err(|e| format!("{status} body is not JSON ({e}): {body:?}"))?;
    Ok((status, json))
}

/// Sends orders `first..first + count` from `clients` concurrent clients;
/// once `stop` is set no new order starts. Returns the answered ones and
/// the number that failed without an answer.
async fn send_orders(
    addr: &str,
    first: usize,
    count: usize,
    clients: usize,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> (Vec<Answer>, usize) {
    let next = Arc::new(AtomicUsize::new(first));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (addr, next, stop, answered) = (
            addr.to_string(),
            next.clone(),
            stop.clone(),
            answered.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut answers, mut failed) = (Vec::new(), 0);
            loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= first + count {
                    break;
                }
                match post_order(&addr, order(index).0).await {
                    Ok((status, body)) => {
                        let trace_id = body["trace_id"].as_str().unwrap_or_default().to_string();
                        answers.push(Answer {
                            index,
                            status,
                            trace_id,
                        });
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => failed += 1,
                }
            }
            (answers, failed)
        }));
    }
    let (mut answers, mut failed) = (Vec::new(), 0);
    for task in tasks {
        let (a, f) = task.await.unwrap();
        answers.extend(a);
        failed += f;
    }
    answers.sort_by_key(|a| a.index);
    (answers, failed)
}

/// What the receiver holds for a set of answers.
#[derive(Debug, Default)]
struct Audit {
    spans: usize,
    traces: usize,
    /// Spans expected and not received.
    missing: usize,
    /// Spans more than expected.
    extra: usize,
    /// Spans whose parent is not in their trace (roots excepted).
    orphans: usize,
    /// Traces without exactly one root.
    rootless: usize,
    /// Span ids seen more than once.
    duplicates: usize,
    /// Spans of traces no answer names.
    strays: usize,
}

impl Audit {
    /// Nothing missing, extra, orphaned, rootless or duplicated; strays too
    /// unless `allow_strays`.
    fn clean(&self, allow_strays: bool) -> bool {
        self.missing == 0
            && self.extra == 0
            && self.orphans == 0
            && self.rootless == 0
            && self.duplicates == 0
            && (allow_strays || self.strays == 0)
    }
}

fn audit(spans: &[Received], answers: &[Answer]) -> Audit {
    let mut by_trace: HashMap<String, Vec<&Received>> = HashMap::new();
    for span in spans {
        by_trace.entry(span.trace_id()).or_default().push(span);
    }
    let mut result = Audit {
        spans: spans.len(),
        traces: by_trace.len(),
        ..Audit::default()
    };
    let mut seen = HashSet::new();
    for span in spans {
        if !seen.insert(span.span_id()) {
            result.duplicates += 1;
        }
    }
    let expected: HashMap<&str, usize> = answers
        .iter()
        .map(|a| (a.trace_id.as_str(), spans_for(a.status).unwrap_or(0)))
        .collect();
    for answer in answers {
        let want = spans_for(answer.status).unwrap_or(0);
        let trace = by_trace.get(&answer.trace_id).map_or(&[][..], |t| &t[..]);
        result.missing += want.saturating_sub(trace.len());
        result.extra += trace.len().saturating_sub(want);
        let ids: HashSet<String> = trace.iter().map(|s| s.span_id()).collect();
        let roots = trace
            .iter()
            .filter(|s| s.span.parent_span_id.is_empty())
            .count();
        if !trace.is_empty() && roots != 1 {
            result.rootless += 1;
        }
        result.orphans += trace
            .iter()
            .filter(|s| !s.span.parent_span_id.is_empty() && !ids.contains(&s.parent_id()))
            .count();
    }
    result.strays = by_trace
        .iter()
        .filter(|(id, _)| !expected.contains_key(id.as_str()))
        .map(|(_, t)| t.len())
        .sum();
    result
}

/// Waits until the receiver holds `want` spans for `answers`' traces (or
/// `patience` passes), then a little longer for strays; returns them all.
async fn collect(receiver: &Receiver, want: usize, patience: Duration) -> Vec<Received> {
    let deadline = Instant::now() + patience;
    while receiver.spans().len() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Batches go out every 100 ms here: anything extra shows up by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.spans()
}

fn mix(answers: &[Answer]) -> String {
    let mut counts: Vec<(u16, usize)> = answers
        .iter()
        .fold(HashMap::new(), |mut m: HashMap<u16, usize>, a| {
            *m.entry(a.status).or_default() += 1;
            m
        })
        .into_iter()
        .collect();
    counts.sort();
    counts
        .iter()
        .map(|(status, n)| format!("{n}×{status}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// N orders with the expected status mix and every trace whole, connected
/// and unique; then SIGTERM part-way through a second run loses no answered
/// request's spans. Prints one summary line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_orders_then_sigterm_loses_nothing() {
    let orders = env_number("SOAK_ORDERS", 200).max(10);
    let clients = env_number("SOAK_CLIENTS", 4).max(1);
    let budget = Duration::from_secs(env_number("SOAK_SECONDS", 300) as u64);
    let started = Instant::now();
    let within_budget = tokio::time::timeout(budget, async {
        // Run 1: every order answered as its index says, every trace whole.
        let (receiver, endpoint) = Receiver::start().await;
        let mut host = one_process(&endpoint, &[], &["--quiet"]).await;
        let order_addr = host.addrs["order-api"].clone();
        let sending = Instant::now();
        let (answers, failed) = send_orders(
            &order_addr,
            0,
            orders,
            clients,
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        )
        .await;
        let sent_in = sending.elapsed();
        assert_eq!(failed, 0, "orders without an answer");
        assert_eq!(answers.len(), orders);
        let wrong: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.status != order(a.index).1 || a.trace_id.len() != 32)
            .collect();
        assert!(wrong.is_empty(), "unexpected answers: {wrong:?}");
        let want: usize = answers.iter().map(|a| order(a.index).2).sum();
        let spans = collect(&receiver, want, PATIENCE * 3).await;
        let run = audit(&spans, &answers);
        assert!(host.terminate().await.success());

        // Run 2: SIGTERM once half the orders are answered; clients keep
        // sending until the host stops answering.
        let (receiver2, endpoint2) = Receiver::start().await;
        let mut host2 = one_process(&endpoint2, &[], &["--quiet"]).await;
        let order_addr2 = host2.addrs["order-api"].clone();
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let sending = tokio::spawn({
            let (stop, answered) = (stop.clone(), answered.clone());
            async move { send_orders(&order_addr2, orders, orders, clients, stop, answered).await }
        });
        let half = orders / 2;
        while answered.load(Ordering::SeqCst) < half && !sending.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let at_sigterm = answered.load(Ordering::SeqCst);
        let status = host2.terminate().await;
        stop.store(true, Ordering::SeqCst);
        let (answers2, failed2) = sending.await.unwrap();
        assert!(status.success(), "host exits 0 on SIGTERM: {status:?}");
        // Answered during shutdown or not, every order gets its own status.
        let unexpected: Vec<&Answer> = answers2
            .iter()
            .filter(|a| a.status != order(a.index).1)
            .collect();
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
        // The host has exited: whatever it flushed is at the receiver.
        let spans2 = receiver2.spans();
        let run2 = audit(&spans2, &answers2);
        let lost = run2.missing;

        println!(
            "soak: {orders} orders ({clients} clients, sent in {:.1}s), {}, {} spans in {} traces, {} missing, {} orphans, {} rootless, {} duplicates, {} extra, {} strays; \
             sigterm after {at_sigterm} answered: {} answered in all ({}), {} refused after, {} spans in {} traces, {lost} lost, {} orphans, {} duplicates; {:.1}s in all",
            sent_in.as_secs_f64(),
            mix(&answers),
            run.spans,
            run.traces,
            run.missing,
            run.orphans,
            run.rootless,
            run.duplicates,
            run.extra,
            run.strays,
            answers2.len(),
            mix(&answers2),
            failed2,
            run2.spans,
            run2.traces,
            run2.orphans,
            run2.duplicates,
            started.elapsed().as_secs_f64(),
        );
        assert!(run.clean(false), "run 1: {run:?}");
        assert_eq!(run.traces, orders, "one trace per order");
        // Requests cut off by the shutdown got no answer; spans of theirs
        // that arrived are strays here, allowed.
        assert!(run2.clean(true), "after SIGTERM: {run2:?}");
        assert!(at_sigterm >= half.min(1), "SIGTERM came mid-run");
    })
    .await;
    assert!(
        within_budget.is_ok(),
        "soak did not finish within SOAK_SECONDS={}s",
        budget.as_secs()
    );
}
