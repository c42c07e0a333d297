//! The host as a replica behind a load balancer (`--health-addr`,
//! `--shutdown-delay-ms`), over the real host binary and a real SIGTERM.

use std::time::{Duration, Instant};

use crate::common::{Host, HostOptions, Receiver, send};

/// The drain delay the tests run with: long enough to probe and send
/// requests inside it, short enough to keep the suite quick.
const DELAY: Duration = Duration::from_millis(1500);

/// A host serving `payment` with the probes on a free port and `delay` of
/// drain; returns it and the probes' base URL.
async fn replica(endpoint: &str, delay: Duration) -> (Host, String) {
    let options = HostOptions {
        args: vec![
            "--health-addr".into(),
            "127.0.0.1:0".into(),
            "--shutdown-delay-ms".into(),
            delay.as_millis().to_string(),
        ],
        ..HostOptions::default()
    };
    let host = Host::start("payment", endpoint, options).await;
    let out = host.wait_for_stdout("health probes on http://").await;
    let probes = out
        .lines()
        .find_map(|line| line.strip_prefix("health probes on http://"))
        .and_then(|rest| rest.split('/').next())
        .map(|addr| format!("http://{addr}"))
        .unwrap();
    (host, probes)
}

/// Sends SIGTERM and returns at once (the host keeps running for its delay).
fn sigterm(host: &Host) {
    let pid = host.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// What a rollout relies on: readiness is 200 while serving; from the
/// moment SIGTERM arrives it is 503 while the component still answers every
/// request (each with `connection: close`, so that callers reconnect
/// elsewhere) for the whole delay; then the host exits 0. Liveness stays
/// 200 throughout.
#[tokio::test]
async fn sigterm_turns_readiness_off_and_keeps_serving_for_the_delay() {
    let (_receiver, endpoint) = Receiver::start().await;
    let (mut host, probes) = replica(&endpoint, DELAY).await;

    // As a kubelet does: poll until ready ("starting" until every
    // component listens, which the host prints just before).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = send("GET", &format!("{probes}/readyz"), &[], "").await;
        match (ready.status, ready.body.as_slice()) {
            (200, b"ready\n") => break,
            (503, b"starting\n") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("readiness before SIGTERM: {other:?}"),
        }
    }
    assert_eq!(
        send("GET", &format!("{probes}/livez"), &[], "")
            .await
            .status,
        200
    );
    let before = send("GET", &host.url("/health"), &[], "").await;
    assert_eq!(before.status, 200);
    assert!(
        before.headers.get("connection").is_none(),
        "{:?}",
        before.headers
    );

    let terminated = Instant::now();
    sigterm(&host);
    host.wait_for_stdout("draining: readiness is 503").await;
    let draining = send("GET", &format!("{probes}/readyz"), &[], "").await;
    assert_eq!(
        (draining.status, draining.body.as_slice()),
        (503, &b"draining\n"[..])
    );
    assert_eq!(
        send("GET", &format!("{probes}/livez"), &[], "")
            .await
            .status,
        200
    );

    // Requests keep succeeding until the delay is nearly over.
    let mut served = 0;
    while terminated.elapsed() < DELAY - Duration::from_millis(300) {
        let reply = send("GET", &host.url("/health"), &[], "").await;
        assert_eq!(reply.status, 200, "request {served} during the drain");
        assert_eq!(reply.headers["connection"], "close");
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served >= 5, "only {served} requests inside the delay");

    let status = tokio::time::timeout(Duration::from_secs(30), host.child.wait())
        .await
        .expect("host exits after its delay")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        terminated.elapsed() >= DELAY,
        "exited {:?} after SIGTERM, before the {DELAY:?} delay",
        terminated.elapsed()
    );
}

/// A second SIGTERM ends the delay at once: whoever sends it (an operator,
/// a supervisor that escalates) does not wait for a drain they gave up on.
/// The exit is still graceful (status 0).
#[tokio::test]
async fn a_second_sigterm_cuts_the_delay_short() {
    let (_receiver, endpoint) = Receiver::start().await;
    let (mut host, _probes) = replica(&endpoint, Duration::from_secs(60)).await;
    let terminated = Instant::now();
    sigterm(&host);
    host.wait_for_stdout("draining: readiness is 503").await;
    sigterm(&host);
    let status = tokio::time::timeout(Duration::from_secs(20), host.child.wait())
        .await
        .expect("host exits soon after the second SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(terminated.elapsed() < Duration::from_secs(20));
}
