//! The outgoing HTTP client: HTTP/1.1 with keep-alive, so that the order
//! service's calls to payment reuse a connection instead of paying a TCP
//! handshake (and a TIME_WAIT socket) per request.
//!
//! It keeps wasi:http's semantics, which wasmtime-wasi-http's
//! `default_send_request` (one connection per request) defines: the guest's
//! connect, first-byte and between-bytes timeouts, and the same error codes.
//! `https` requests still go through `default_send_request` (it brings TLS).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// What `send` resolves to: the response, and a future the guest's
/// `future-trailers`/request-body plumbing waits on (here always `Ok`: the
/// connection is driven by its own task).
pub type Sent = (
    Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// How long an idle connection is kept for reuse. Shorter than the
/// keep-alive timeouts servers commonly use (5 s in Node.js, 10 s in this
/// host) so that a connection is rarely reused just as the server closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Idle connections kept per destination.
pub const MAX_IDLE_PER_ORIGIN: usize = 64;
/// wasi:http's default for each timeout a guest leaves unset (as in
/// wasmtime-wasi-http).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Connections kept open between requests, by `host:port`.
#[derive(Default)]
pub struct Client {
    idle: Mutex<HashMap<String, Vec<Idle>>>,
}

struct Idle {
    sender: SendRequest<WasiBody>,
    since: Instant,
}

impl Client {
    /// A client with no connections yet.
    pub fn new() -> Arc<Client> {
        Arc::new(Client::default())
    }

    /// Sends `request`, on an idle connection to its origin when there is
    /// one, else on a new one that is kept for the next request once this
    /// response has been read.
    pub async fn send(
        self: Arc<Self>,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let uri = request.uri();
        if uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) {
            return default_send(request, options).await;
        }
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let origin = match authority.port() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:80"),
        };
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let connect_timeout = timeout(|o| o.connect_timeout);
        let first_byte_timeout = timeout(|o| o.first_byte_timeout);
        let between_bytes_timeout = timeout(|o| o.between_bytes_timeout);

        // On the wire the request line holds only the path: the scheme and
        // authority are for proxies (the `host` header is already set).
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        *request.uri_mut() = path;

        let deadline = tokio::time::Instant::now() + first_byte_timeout;
        let (response, sender) = loop {
            let (mut sender, reused) = match self.take_idle(&origin) {
                Some(sender) => (sender, true),
                None => (connect(&origin, connect_timeout).await?, false),
            };
            match tokio::time::timeout_at(deadline, sender.try_send_request(request)).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(response)) => break (response, sender),
                Ok(Err(mut error)) => match error.take_message() {
                    // An idle connection the server had just closed: the
                    // request was not written, so it goes on another one.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(Error::from(error.into_error())),
                },
            }
        };
        // Once this response has been read whole the connection is free for
        // the next request; if the guest drops the body unread, hyper closes
        // the connection and it is not kept.
        let client = self.clone();
        tokio::spawn(async move {
            let mut sender = sender;
            if sender.ready().await.is_ok() {
                client.put_idle(origin, sender);
            }
        });
        let (parts, incoming) = response.into_parts();
        let body = ResponseBody {
            incoming,
            timeout: between_bytes(between_bytes_timeout),
        };
        Ok((
            Response::from_parts(parts, body.boxed_unsync()),
            Box::new(async { Ok(()) }),
        ))
    }

    fn take_idle(&self, origin: &str) -> Option<SendRequest<WasiBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(origin)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT && entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_idle(&self, origin: String, sender: SendRequest<WasiBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(origin).or_default();
        list.retain(|entry| entry.since.elapsed() < IDLE_TIMEOUT && !entry.sender.is_closed());
        if list.len() < MAX_IDLE_PER_ORIGIN {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// Sends `request` the way wasmtime-wasi-http does by default: on a
/// connection of its own (with TLS for `https`), its result in [`Sent`]'s
/// shape.
pub async fn default_send(
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Sent, Error> {
    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
    Ok((
        response.map(BodyExt::boxed_unsync),
        Box::new(io) as Box<dyn Future<Output = _> + Send>,
    ))
}

/// Opens a connection to `origin` (`host:port`) and starts the task that
/// drives it.
async fn connect(origin: &str, timeout: Duration) -> Result<SendRequest<WasiBody>, Error> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(origin)).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    // Small requests: send them now rather than wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = tokio::time::timeout(
        timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    tokio::spawn(async move {
        // A connection the server closes is simply not reused.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The between-bytes timer: tokio panics on a zero period, so a zero
/// timeout becomes 1 ns (as in wasmtime-wasi-http).
fn between_bytes(timeout: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(timeout.max(Duration::from_nanos(1)));
    interval.reset();
    interval
}

/// A response body that fails with `connection-read-timeout` when the
/// server pauses longer than the guest's between-bytes timeout.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) if error.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Error::from(error)))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}
