//! The accept loop: HTTP/1.1 connections with keep-alive, a lingering close
//! for a connection answered before its request body was read (see
//! [`linger`](super::linger)), and a graceful shutdown that finishes every
//! request in flight.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::linger::{Lingering, Unread};
use super::service::{Connection, Service};

/// How long shutdown waits for requests in flight before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `service` on `listener` until `shutdown` completes, then stops
/// accepting, lets every request in flight finish (up to [`DRAIN_TIMEOUT`])
/// and returns once their guests are done and their spans ended.
pub async fn run(listener: TcpListener, service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!(
                "{}: cannot read the listening address: {error}",
                service.name
            );
            return;
        }
    };
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: say so, back off,
                    // keep serving the connections already open.
                    eprintln!("{}: accept failed: {error}", service.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON responses: send them now rather than wait for Nagle.
        let _ = stream.set_nodelay(true);
        let connection = Connection { local, peer };
        let service = service.clone();
        // hyper closes a connection whose request body was dropped unread,
        // and closing over unread data resets the response away: the body is
        // tracked so that such a response says `Connection: close` and the
        // stream lingers when hyper shuts it down.
        let unread = Unread::default();
        let stream = Lingering::new(stream, unread.clone(), service.request_limits().linger);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            // Also bounds how long an idle keep-alive connection is kept:
            // hyper starts this timer whenever it waits for a request head.
            .header_read_timeout(service.request_limits().header_timeout)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |request: Request<Incoming>| {
                    let service = service.clone();
                    let unread = unread.clone();
                    async move {
                        let request = request.map(|body| unread.track(body));
                        let mut response = service.handle(request, connection).await?;
                        unread.close_if_unread(&mut response);
                        Ok::<_, Infallible>(super::health::close_if_draining(response))
                    }
                }),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that resets or times out is not the server's failure.
            let _ = conn.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "{}: connections still open after {DRAIN_TIMEOUT:?}; closing them",
            service.name
        );
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, service.idle()).await;
}
