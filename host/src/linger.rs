//! Lingering close: a connection answered before its request body was read
//! to the end is half-closed and drained for a bounded time and byte count
//! before it is closed, so that the client receives the response.
//!
//! Closing a socket with unread data in its receive buffer makes the kernel
//! reset the connection, and a reset destroys the response still on its way
//! to the client (RFC 9112 §9.6). curl reads while it sends and sees the 413
//! anyway; a client that writes its whole body before reading (Python's
//! `urllib` and `requests`) sees a broken pipe instead. So, like nginx's
//! `lingering_close`: say `Connection: close` on such a response, and once
//! hyper has flushed it and shuts the connection down, shut down the write
//! side only and read and discard what the client still sends until it
//! closes, or [`Linger::time`] passes, or [`Linger::bytes`] have been
//! discarded.
//!
//! hyper 1.12 itself does not linger: when the service drops a request body
//! before its end, hyper reads what is already buffered and, if the body is
//! not done, closes the read side and then the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The default longest time a connection lingers after its response:
/// nginx's `lingering_timeout`. Shorter than nginx's 30 s `lingering_time`
/// because the host refuses bodies over 1 MiB by default: a client still
/// sending after 5 s is sending far more than that, or very slowly.
pub const DEFAULT_LINGER_TIME: Duration = Duration::from_secs(5);
/// The default most bytes discarded while lingering: 16 MiB, sixteen times
/// the default body limit, so that an oversized upload of that size is
/// absorbed whole and its client reads the 413.
pub const DEFAULT_LINGER_BYTES: u64 = 16 << 20;

/// How long and how much a connection may be drained before it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linger {
    /// From the half-close on; past it, the connection is closed.
    pub time: Duration,
    /// Bytes read and discarded; past them, the connection is closed.
    pub bytes: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Linger {
            time: DEFAULT_LINGER_TIME,
            bytes: DEFAULT_LINGER_BYTES,
        }
    }
}

/// Whether a connection's current request has a body not read to its end.
/// Shared by the connection's IO ([`Lingering`]) and its requests' bodies
/// ([`Tracked`]); hyper serves one request at a time on a connection.
#[derive(Debug, Clone, Default)]
pub struct Unread(Arc<AtomicBool>);

impl Unread {
    /// Watches `body`: unread from now until it yields its end.
    pub fn track<B: Body>(&self, body: B) -> Tracked<B> {
        self.0.store(!body.is_end_stream(), Ordering::Relaxed);
        Tracked {
            body,
            unread: self.clone(),
        }
    }

    /// Whether the current request's body has not been read to its end.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds `Connection: close` to a response sent while its request body is
    /// unread: hyper will not reuse such a connection, and the client should
    /// know before it tries.
    pub fn close_if_unread<B>(&self, response: &mut hyper::Response<B>) {
        if self.is_set() {
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
    }
}

/// A request body that clears its connection's [`Unread`] when read to its
/// end (a body that fails, a malformed chunk say, stays unread).
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    unread: Unread,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        let ended = match &frame {
            None => true,
            Some(Ok(_)) => self.body.is_end_stream(),
            Some(Err(_)) => false,
        };
        if ended {
            self.unread.0.store(false, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Read and discarded per poll while lingering.
const DRAIN_CHUNK: usize = 16 << 10;

/// A connection's stream that lingers on shutdown when its last request's
/// body is unread, and shuts down at once otherwise (an idle keep-alive
/// connection closed at server shutdown must not wait).
pub struct Lingering<S> {
    stream: S,
    unread: Unread,
    linger: Linger,
    state: Shutdown,
}

enum Shutdown {
    Open,
    /// Write side shut down; reading and discarding.
    Draining {
        deadline: Pin<Box<Sleep>>,
        discarded: u64,
        buffer: Box<[u8]>,
    },
    Done,
}

impl<S> Lingering<S> {
    /// `stream`, lingering within `linger` when `unread` is set at shutdown.
    pub fn new(stream: S, unread: Unread, linger: Linger) -> Self {
        Lingering {
            stream,
            unread,
            linger,
            state: Shutdown::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> Lingering<S> {
    /// Discards what the client sends until it closes, errs, or a bound is
    /// reached. Every outcome is the end of lingering, never an error: the
    /// response has been flushed already.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Shutdown::Draining {
            deadline,
            discarded,
            buffer,
        } = &mut self.state
        else {
            return Poll::Ready(());
        };
        loop {
            if *discarded >= self.linger.bytes || deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut read = ReadBuf::new(buffer);
            match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut read)) {
                Ok(()) if read.filled().is_empty() => return Poll::Ready(()),
                Ok(()) => *discarded += read.filled().len() as u64,
                Err(_) => return Poll::Ready(()),
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.state {
                Shutdown::Open => {
                    // The half-close tells the client the response is whole
                    // (it reads end-of-file after it) while its data still
                    // has somewhere to go.
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.state = if this.unread.is_set() {
                        Shutdown::Draining {
                            deadline: Box::pin(tokio::time::sleep(this.linger.time)),
                            discarded: 0,
                            buffer: vec![0; DRAIN_CHUNK].into_boxed_slice(),
                        }
                    } else {
                        Shutdown::Done
                    };
                }
                Shutdown::Draining { .. } => {
                    ready!(this.poll_drain(cx));
                    this.state = Shutdown::Done;
                }
                Shutdown::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair(unread: bool, linger: Linger) -> (Lingering<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let flag = Unread::default();
        flag.0.store(unread, Ordering::Relaxed);
        (Lingering::new(server, flag, linger), client)
    }

    /// With the body unread, shutdown half-closes (the client reads the
    /// response, then end-of-file) and waits for the client to finish
    /// sending and close, discarding what it sends.
    #[tokio::test]
    async fn an_unread_body_is_drained_until_the_client_closes() {
        let (mut server, mut client) = pair(true, Linger::default()).await;
        server.write_all(b"response").await.unwrap();
        let shutdown = tokio::spawn(async move {
            server.shutdown().await.unwrap();
            server.state
        });
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        assert_eq!(response, b"response");
        client.write_all(&[7; 100_000]).await.unwrap();
        drop(client);
        let state = tokio::time::timeout(Duration::from_secs(20), shutdown).await;
        assert!(matches!(state, Ok(Ok(Shutdown::Done))));
    }

    /// A client that keeps sending is cut off at the byte bound.
    #[tokio::test]
    async fn draining_stops_at_the_byte_bound() {
        let linger = Linger {
            time: Duration::from_secs(600),
            bytes: 1 << 20,
        };
        let (mut server, mut client) = pair(true, linger).await;
        let sender = tokio::spawn(async move {
            let chunk = [7; 64 << 10];
            while client.write_all(&chunk).await.is_ok() {}
        });
        let drained = tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await;
        assert!(matches!(drained, Ok(Ok(()))));
        let Shutdown::Done = server.state else {
            panic!("still draining")
        };
        drop(server);
        // The reset that follows ends the client's sending.
        assert!(
            tokio::time::timeout(Duration::from_secs(20), sender)
                .await
                .is_ok()
        );
    }

    /// With nothing unread, shutdown does not wait for the client.
    #[tokio::test]
    async fn a_read_body_does_not_linger() {
        let (mut server, _client) = pair(false, Linger::default()).await;
        let shut = tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await;
        assert!(matches!(shut, Ok(Ok(()))));
    }

    /// The flag follows a body: set while it has more, cleared at its end.
    #[tokio::test]
    async fn a_tracked_body_clears_the_flag_at_its_end() {
        use http_body_util::{BodyExt, Full};
        let unread = Unread::default();
        let empty = unread.track(http_body_util::Empty::<Bytes>::new());
        assert!(!unread.is_set());
        drop(empty);
        let dropped = unread.track(Full::new(Bytes::from_static(b"order")));
        assert!(unread.is_set());
        drop(dropped);
        assert!(unread.is_set(), "dropped before its end");
        let body = unread.track(Full::new(Bytes::from_static(b"order")));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"order");
        assert!(!unread.is_set());
    }
}
