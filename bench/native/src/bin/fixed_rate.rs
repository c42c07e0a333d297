//! A fixed-rate (open-loop) load loop for the benchmark: sends one request
//! every `1/rate` seconds for a fixed time, whatever the server's latency,
//! over keep-alive connections (as many as the requests in flight need), and
//! prints one JSON line: requests sent, statuses, achieved rate, p50/p99.
//!
//! `wrk` only runs closed-loop (each connection waits for its answer), which
//! measures the maximum throughput but cannot hold a load steady. Latency
//! here is measured from when a request was *due*, not when it was sent, so a
//! stalled server shows up in the percentiles rather than slowing the load.
//!
//! ```sh
//! fixed-rate --url http://127.0.0.1:8000/orders --rate 1000 --duration-s 30 \
//!   --body '{"customer_id":"cust-42","item":"widget","quantity":3,"amount":59.97}'
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// How long to wait for the requests still in flight when the time is up.
const DRAIN: Duration = Duration::from_secs(10);

/// Send requests at a fixed rate and report latency percentiles.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The URL to send to (loopback).
    #[arg(long, value_name = "URL")]
    url: hyper::Uri,
    /// Requests per second.
    #[arg(long, value_name = "N")]
    rate: f64,
    /// How long to send, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    duration_s: f64,
    /// A JSON body: the request is then a POST with `content-type: application/json`.
    #[arg(long, value_name = "JSON")]
    body: Option<String>,
}

/// One answered (or failed) request: its status (0 for no response) and
/// the microseconds from when it was due until its body was read.
type Sample = (u16, u64);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.rate > 0.0 && cli.rate.is_finite(),
        "--rate `{}` must be a positive number of requests per second",
        cli.rate
    );
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let body = cli.body.map(Bytes::from);
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / cli.rate);
    let total = (cli.rate * cli.duration_s).round() as u64;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let request = request(&cli.url, body.clone())?;
        let (client, samples) = (client.clone(), samples.clone());
        tasks.spawn(async move {
            let status = send(&client, request).await;
            let took = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
            samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((status, took));
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let sent_for = start.elapsed();
    let _ = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    println!("{}", report(total, sent_for, samples));
    Ok(())
}

fn request(url: &hyper::Uri, body: Option<Bytes>) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    let builder = hyper::Request::builder().uri(url.clone());
    let request = match body {
        Some(body) => builder
            .method(hyper::Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body)),
        None => builder.body(Full::new(Bytes::new())),
    };
    request.with_context(|| format!("cannot build a request to `{url}`"))
}

/// Sends `request` and reads the whole answer; its status, or 0 when none came.
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> u16 {
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.into_body().collect().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    }
}

/// The JSON summary line.
fn report(total: u64, sent_for: Duration, mut samples: Vec<Sample>) -> String {
    samples.sort_unstable_by_key(|&(_, took)| took);
    let percentile = |p: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1].1 as f64 / 1000.0
    };
    let mut statuses = BTreeMap::new();
    for (status, _) in &samples {
        *statuses.entry(status.to_string()).or_insert(0u64) += 1;
    }
    let ok = samples
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .count();
    serde_json::json!({
        "sent": total,
        "answered": samples.len(),
        "ok": ok,
        "statuses": statuses,
        "rate": total as f64 / sent_for.as_secs_f64(),
        "p50_ms": percentile(50.0),
        "p99_ms": percentile(99.0),
        "max_ms": samples.last().map_or(0.0, |&(_, took)| took as f64 / 1000.0),
    })
    .to_string()
}
