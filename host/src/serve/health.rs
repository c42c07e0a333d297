//! The host as one replica among several behind a load balancer: liveness
//! and readiness probes on a port of their own (`--health-addr`), and the
//! drain a SIGTERM starts.
//!
//! The drain, in order: readiness turns 503 at once; the components keep
//! serving for `--shutdown-delay-ms`, each response closing its keep-alive
//! connection so that callers reconnect (through their Service, to a replica
//! that is still ready); then the graceful shutdown of [`accept`](super::accept)
//! stops accepting and finishes the requests in flight. The delay covers
//! the seconds a Kubernetes rollout takes to remove a terminating pod from
//! its Service's endpoints: the pod is told to stop at the same time as the
//! endpoints are updated, not after, so a listener closed at once would
//! refuse the connections still routed to it.
//!
//! The probes are not routes of the components: a component owns its whole
//! URL space (the order service's `/health` is its own, traced route), a
//! probe every few seconds would fill the traces with spans nobody reads,
//! and a probe must answer when the component is saturated (a liveness
//! probe queued behind `--max-concurrent` would restart a busy replica).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wasmtime::error::Context as _;

/// The drain delay unless `--shutdown-delay-ms` says otherwise: none, as on
/// a developer's machine, where nothing routes by readiness.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::ZERO;
/// The liveness probe's path: 200 while the process answers at all.
pub const LIVENESS_PATH: &str = "/livez";
/// The readiness probe's path: 200 once every component listens, 503
/// before that and from the moment a drain starts.
pub const READINESS_PATH: &str = "/readyz";
/// How long a probe's client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loading components; not every port listens yet.
    Starting,
    /// Every component listens.
    Ready,
    /// A SIGTERM (or Ctrl-C) arrived: still serving, leaving soon.
    Draining,
}

/// The process's phase. Process-wide on purpose: a SIGTERM drains every
/// component of the process at once, and each accept loop reads it per
/// response without a handle threaded through the servers.
static PHASE: AtomicU8 = AtomicU8::new(Phase::Starting as u8);

/// The current phase.
pub fn phase() -> Phase {
    match PHASE.load(Ordering::Acquire) {
        0 => Phase::Starting,
        1 => Phase::Ready,
        _ => Phase::Draining,
    }
}

fn set_phase(phase: Phase) {
    PHASE.store(phase as u8, Ordering::Release);
}

/// Every component listens: readiness turns 200 (unless a drain started).
pub fn ready() {
    let _ = PHASE.compare_exchange(
        Phase::Starting as u8,
        Phase::Ready as u8,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}

/// Starts the drain: readiness turns 503 now, and this returns after
/// `delay` (or at a second SIGTERM or Ctrl-C, for someone who does not
/// want to wait), while the components keep serving. The caller then
/// closes the listeners.
pub async fn drain(delay: Duration) {
    set_phase(Phase::Draining);
    if delay.is_zero() {
        return;
    }
    // Listening before saying so: a second signal sent as soon as the line
    // below shows is caught, not lost.
    let second = another_signal();
    println!(
        "draining: readiness is 503; serving {} ms more before closing the listeners",
        delay.as_millis()
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = second => println!("draining: second signal, closing the listeners now"),
    }
}

/// Completes on the next SIGTERM or Ctrl-C after this call (the handlers
/// are installed by the call, not when it is awaited); never, where they
/// cannot be handled, and the delay then runs its course.
fn another_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut term, mut interrupt)) = signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// `response` as the components' servers send it: while draining, with
/// `connection: close`, so that a caller keeping connections alive (the
/// order service's client does) opens its next one through the Service,
/// to a replica that is ready, rather than finding this one gone.
pub fn close_if_draining<B>(mut response: Response<B>) -> Response<B> {
    if phase() == Phase::Draining {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Binds the probes' port and serves it until the process exits; returns
/// the bound address (`--health-addr 127.0.0.1:0` picks a free port).
pub async fn serve(addr: SocketAddr) -> wasmtime::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on `{addr}` for --health-addr: is the port in use? Pick another")
    })?;
    let bound = listener.local_addr()?;
    // Not the components' "listening on" wording: scripts and tests count
    // those lines to know when every component is up.
    println!("health probes on http://{bound}{LIVENESS_PATH} and {READINESS_PATH}");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off, go on.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(|request| async move { Ok::<_, Infallible>(answer(&request)) }),
                );
            tokio::spawn(async move {
                // A probe that hangs up early is not the server's failure.
                let _ = conn.await;
            });
        }
    });
    Ok(bound)
}

/// The answer to a probe.
fn answer<B>(request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, body) = if request.method() != Method::GET && request.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n")
    } else {
        match (request.uri().path(), phase()) {
            (LIVENESS_PATH, _) => (StatusCode::OK, "alive\n"),
            (READINESS_PATH, Phase::Ready) => (StatusCode::OK, "ready\n"),
            (READINESS_PATH, Phase::Starting) => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            (READINESS_PATH, Phase::Draining) => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            _ => (StatusCode::NOT_FOUND, "/livez or /readyz\n"),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probe answers by path and method; the phase itself is exercised over
    /// a real process in `tests/replica.rs` (it is process-wide, and unit
    /// tests share a process).
    #[test]
    fn probes_answer_by_path_and_method() {
        let get = |path: &str| {
            let request = Request::get(path).body(()).expect("valid request");
            answer(&request).status()
        };
        assert_eq!(get(LIVENESS_PATH), StatusCode::OK);
        assert_eq!(get("/health"), StatusCode::NOT_FOUND);
        let post = Request::post(LIVENESS_PATH)
            .body(())
            .expect("valid request");
        assert_eq!(answer(&post).status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
