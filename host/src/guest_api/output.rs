//! A guest's stdout and stderr as log records: the WASI streams of a
//! request's store write here, each complete line becoming one record (see
//! `telemetry::logs`) in the span that was innermost when it was written,
//! and, as before, also printed on the host's own stdout or stderr. The
//! records a guest emits through `wasi:otel/logs` come through here too,
//! for the same budget.
//!
//! Bounded per request: at most `--max-log-lines` lines and records are
//! recorded (and printed); more are dropped and counted, in the request's SERVER span
//! (`wasm.logs.dropped`) and in the `wasm.logs.dropped` metric. A line over
//! [`MAX_LINE_BYTES`] is cut there (`wasm.logs.truncated`). A flood costs
//! only its own request.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::telemetry::logs::{LOG_IOSTREAM, Origin, ServiceLogs, Severity};
use crate::telemetry::metrics::REQUEST_LIMIT;

/// The longest line recorded, in bytes; the rest of a longer line is cut.
pub const MAX_LINE_BYTES: usize = 8192;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout: `INFO`.
    Stdout,
    /// stderr: `WARN`.
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// A line being written.
#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    /// Past [`MAX_LINE_BYTES`]: the rest of the line is ignored.
    cut: bool,
}

/// What the request wrote so far.
#[derive(Debug, Default)]
struct Capture {
    partial: [Partial; 2],
    lines: usize,
    dropped: u64,
    truncated: u64,
}

/// One request's guest output.
#[derive(Debug)]
pub struct GuestOutput {
    logs: &'static ServiceLogs,
    max_lines: usize,
    capture: Mutex<Capture>,
    /// The innermost open span, kept current by the request's spans: its
    /// trace id (two words), span id, and trace flags with bit 8 set when
    /// there is one. Plain words, not a lock: the request's spans change
    /// it several times a request and a line is rarely written.
    current: [AtomicU64; 4],
}

/// What the request's output limit cut, for its SERVER span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCounts {
    /// Lines past `--max-log-lines`.
    pub dropped: u64,
    /// Lines cut to [`MAX_LINE_BYTES`].
    pub truncated: u64,
}

impl GuestOutput {
    /// A request's output into `logs`, at most `max_lines` lines.
    pub fn new(logs: &'static ServiceLogs, max_lines: usize) -> Arc<GuestOutput> {
        Arc::new(GuestOutput {
            logs,
            max_lines,
            capture: Mutex::new(Capture::default()),
            current: Default::default(),
        })
    }

    /// The span lines are written in from now on.
    pub fn set_current(&self, span: &SpanContext) {
        let trace = u128::from_be_bytes(span.trace_id().to_bytes());
        let words = [
            (trace >> 64) as u64,
            trace as u64,
            u64::from_be_bytes(span.span_id().to_bytes()),
            u64::from(span.trace_flags().to_u8()) | u64::from(span.is_valid()) << 8,
        ];
        for (word, value) in self.current.iter().zip(words) {
            word.store(value, Ordering::Relaxed);
        }
    }

    /// The WASI stream `stream` of this output.
    pub fn stream(self: &Arc<Self>, stream: Stream) -> GuestStream {
        GuestStream {
            output: self.clone(),
            stream,
        }
    }

    /// Takes `bytes` written to `stream`: each completed line is recorded.
    fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let mut lines = Vec::new();
        {
            let Ok(mut capture) = self.capture.lock() else {
                return;
            };
            let capture = &mut *capture;
            while !bytes.is_empty() {
                let (piece, complete) = match bytes.iter().position(|b| *b == b'\n') {
                    Some(at) => {
                        let piece = &bytes[..at];
                        bytes = &bytes[at + 1..];
                        (piece, true)
                    }
                    None => (std::mem::take(&mut bytes), false),
                };
                let partial = &mut capture.partial[stream.index()];
                if !partial.cut {
                    let room = MAX_LINE_BYTES - partial.bytes.len();
                    partial
                        .bytes
                        .extend_from_slice(&piece[..piece.len().min(room)]);
                    if piece.len() > room {
                        partial.cut = true;
                        capture.truncated += 1;
                    }
                }
                if complete {
                    let line = std::mem::take(&mut capture.partial[stream.index()]);
                    if let Some(line) = capture.admit(line.bytes, self.max_lines) {
                        lines.push(line);
                    }
                }
            }
        }
        for line in lines {
            self.record(stream, line);
        }
    }

    /// Records what is left of unfinished lines and returns what the
    /// limits cut; the metrics count it too.
    pub fn finish(&self) -> OutputCounts {
        let mut lines = Vec::new();
        let counts = {
            let Ok(mut capture) = self.capture.lock() else {
                return OutputCounts::default();
            };
            for stream in [Stream::Stdout, Stream::Stderr] {
                let line = std::mem::take(&mut capture.partial[stream.index()]);
                if !line.bytes.is_empty()
                    && let Some(line) = capture.admit(line.bytes, self.max_lines)
                {
                    lines.push((stream, line));
                }
            }
            OutputCounts {
                dropped: capture.dropped,
                truncated: capture.truncated,
            }
        };
        for (stream, line) in lines {
            self.record(stream, line);
        }
        if let Some(metrics) = self.logs.metrics() {
            if counts.dropped > 0 {
                metrics.logs_dropped(counts.dropped, REQUEST_LIMIT);
            }
            if counts.truncated > 0 {
                metrics.logs_truncated(counts.truncated);
            }
        }
        counts
    }

    /// Records a log record the guest emitted whole (`wasi:otel/logs`)
    /// within the same budget as its lines (`--max-log-lines` lines and
    /// records together), counting it dropped past that and, when `cut`,
    /// truncated. `span` and `body` are for the views that show it (see
    /// [`ServiceLogs::emit_record`]).
    pub fn emit_record(
        &self,
        record: LogRecord,
        scope: Option<InstrumentationScope>,
        span: Option<&SpanContext>,
        body: &str,
        cut: bool,
    ) {
        let admitted = match self.capture.lock() {
            Ok(mut capture) => {
                let admitted = capture.admit(Vec::new(), self.max_lines).is_some();
                if admitted && cut {
                    capture.truncated += 1;
                }
                admitted
            }
            Err(_) => false,
        };
        if admitted {
            self.logs.emit_record(record, scope, span, body);
        }
    }

    /// The span lines are written in now: the innermost open span.
    pub fn current(&self) -> SpanContext {
        let [high, low, span, flags] = self.current.each_ref().map(|w| w.load(Ordering::Relaxed));
        if flags >> 8 == 0 {
            return SpanContext::empty_context();
        }
        SpanContext::new(
            TraceId::from(u128::from(high) << 64 | u128::from(low)),
            SpanId::from(span),
            TraceFlags::new(flags as u8),
            false,
            TraceState::default(),
        )
    }

    fn record(&self, stream: Stream, line: Vec<u8>) {
        // As before: the guest's output also goes to the host's own.
        let echoed = match stream {
            Stream::Stdout => std::io::stdout()
                .lock()
                .write_all(&[&line[..], b"\n"].concat()),
            Stream::Stderr => std::io::stderr()
                .lock()
                .write_all(&[&line[..], b"\n"].concat()),
        };
        drop(echoed);
        let body = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line));
        let (severity, name) = match stream {
            Stream::Stdout => (Severity::Info, "stdout"),
            Stream::Stderr => (Severity::Warn, "stderr"),
        };
        let span = self.current();
        self.logs.emit(
            Origin::Guest,
            severity,
            &body,
            Some(&span),
            &[(LOG_IOSTREAM, name)],
        );
    }
}

impl Capture {
    /// `line` if the request may still record one; else counted dropped.
    fn admit(&mut self, line: Vec<u8>, max_lines: usize) -> Option<Vec<u8>> {
        if self.lines >= max_lines {
            self.dropped += 1;
            return None;
        }
        self.lines += 1;
        Some(line)
    }
}

/// One of a request's WASI output streams.
#[derive(Debug, Clone)]
pub struct GuestStream {
    output: Arc<GuestOutput>,
    stream: Stream,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.output.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
