//! `OTEL_TRACES_EXPORTER=console`: every finished trace drawn in the terminal
//! as a [waterfall](crate::telemetry::waterfall), with no backend at all.
//!
//! A span processor (not a batch exporter) so that a trace appears the moment
//! its root ends. One [`Console`] is shared by every service of the process:
//! when order and payment run together, the payment's local root (whose
//! parent is the order's CLIENT span, still open in this process) does not
//! trigger a drawing; the whole cross-service trace is drawn once, when the
//! order's root ends. A span that ends after its trace was drawn is drawn on
//! its own, marked late, never dropped.
//!
//! With the default exporter (`OTEL_TRACES_EXPORTER` unset) the console runs
//! in fallback mode: silent while spans reach the collector, drawing every
//! trace (including the last ones held before the failure was known) while
//! they do not.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::waterfall::{SpanLine, render};

/// Traces waiting for their root at most; beyond, the oldest is drawn as it is.
const MAX_PENDING_TRACES: usize = 1024;
/// Drawn traces remembered, to recognise late spans.
const MAX_DRAWN_TRACES: usize = 4096;
/// Log lines drawn under one span; more are counted.
const MAX_LOG_LINES_PER_SPAN: usize = 10;

/// The terminal trace view shared by the services of one process.
pub struct Console {
    state: Mutex<State>,
    color: bool,
    out: Mutex<Box<dyn Write + Send>>,
    /// In fallback mode (the default exporter, no `console` asked for), the
    /// OTLP exporter's "spans are not being delivered" flag: traces are drawn
    /// only while it is set, and the last few are held until it is, so that
    /// a host with no collector still shows every trace it served.
    fallback: Option<Arc<AtomicBool>>,
    held: Mutex<VecDeque<Drawing>>,
}

/// A trace (or a late span of one) to draw: rendered only when written, so
/// that holding the latest traces in fallback mode costs no rendering.
struct Drawing {
    trace_id: TraceId,
    spans: Vec<SpanLine>,
    late: bool,
}

/// Drawings held in fallback mode until delivery is known to fail.
const MAX_HELD: usize = 64;

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("color", &self.color)
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Spans started in this process and not yet ended, with their trace.
    open: HashMap<SpanId, TraceId>,
    /// How many spans of each trace are open in this process.
    open_per_trace: HashMap<TraceId, usize>,
    /// Pending traces whose root (or local root) has ended: drawn as soon
    /// as none of their spans is still open here.
    rooted: HashSet<TraceId>,
    pending: HashMap<TraceId, Vec<SpanLine>>,
    /// Pending traces, oldest first.
    arrival: VecDeque<TraceId>,
    /// The log lines of spans still open here (only those: bounded by the
    /// open spans), and how many more were written.
    logs: HashMap<SpanId, (Vec<String>, usize)>,
    drawn: HashSet<TraceId>,
    drawn_order: VecDeque<TraceId>,
}

impl Console {
    /// Draws on standard output, in colour when it is a terminal and
    /// `NO_COLOR` is not set.
    pub fn stdout() -> Arc<Console> {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Console::new(Box::new(std::io::stdout()), color)
    }

    /// Draws on standard output only while `failing` says spans are not
    /// reaching the collector.
    pub fn stdout_fallback(failing: Arc<AtomicBool>) -> Arc<Console> {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut console = Console::unshared(Box::new(std::io::stdout()), color);
        console.fallback = Some(failing);
        Arc::new(console)
    }

    /// Draws on `out`.
    pub fn new(out: Box<dyn Write + Send>, color: bool) -> Arc<Console> {
        Arc::new(Console::unshared(out, color))
    }

    fn unshared(out: Box<dyn Write + Send>, color: bool) -> Console {
        Console {
            state: Mutex::new(State::default()),
            color,
            out: Mutex::new(out),
            fallback: None,
            held: Mutex::new(VecDeque::new()),
        }
    }

    /// Writes `drawings` now, or, in fallback mode while spans are being
    /// delivered, holds the latest of them.
    fn emit(&self, drawings: Vec<Drawing>) {
        if drawings.is_empty() {
            return;
        }
        if let Some(failing) = &self.fallback
            && !failing.load(Ordering::Relaxed)
        {
            if let Ok(mut held) = self.held.lock() {
                held.extend(drawings);
                while held.len() > MAX_HELD {
                    held.pop_front();
                }
            }
            return;
        }
        self.write(drawings);
    }

    fn write(&self, drawings: Vec<Drawing>) {
        if let Ok(mut out) = self.out.lock() {
            for drawing in drawings {
                let text = render(drawing.trace_id, &drawing.spans, self.color, drawing.late);
                let _ = out.write_all(text.as_bytes());
            }
            let _ = out.flush();
        }
    }

    /// Delivery just failed: draw the traces held meanwhile (fallback mode).
    pub fn delivery_failed(&self) {
        let held: Vec<Drawing> = match self.held.lock() {
            Ok(mut held) => held.drain(..).collect(),
            Err(_) => return,
        };
        self.write(held);
    }

    /// Delivery works again: what is held from now on was delivered.
    pub fn delivery_resumed(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
    }

    /// A processor that feeds this console with the spans of `service`.
    pub fn processor(self: &Arc<Self>, service: &str) -> ConsoleProcessor {
        ConsoleProcessor {
            console: self.clone(),
            service: service.to_string(),
        }
    }

    /// A log line written while `span_id` was innermost, drawn under it
    /// when its trace is; ignored unless the span is open in this process.
    pub fn log(&self, span_id: SpanId, line: String) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !state.open.contains_key(&span_id) {
            return;
        }
        let (lines, more) = state.logs.entry(span_id).or_default();
        if lines.len() < MAX_LOG_LINES_PER_SPAN {
            lines.push(line);
        } else {
            *more += 1;
        }
    }

    fn started(&self, span_id: SpanId, trace_id: TraceId) {
        if let Ok(mut state) = self.state.lock() {
            state.open.insert(span_id, trace_id);
            *state.open_per_trace.entry(trace_id).or_default() += 1;
        }
    }

    fn ended(&self, service: &str, data: SpanData) {
        let trace_id = data.span_context.trace_id();
        let line = SpanLine {
            service: service.to_string(),
            name: data.name.into_owned(),
            kind: data.span_kind,
            span_id: data.span_context.span_id(),
            parent_id: data.parent_span_id,
            parent_is_remote: data.parent_span_is_remote,
            start: data.start_time,
            end: data.end_time,
            status: data.status,
            attributes: data.attributes,
            events: data
                .events
                .events
                .into_iter()
                .map(|event| (event.name.into_owned(), event.attributes))
                .collect(),
            logs: (Vec::new(), 0),
        };
        let mut line = line;
        let mut drawings = Vec::new();
        {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if let Some(logs) = state.logs.remove(&line.span_id) {
                line.logs = logs;
            }
            if state.open.remove(&line.span_id).is_some()
                && let Some(count) = state.open_per_trace.get_mut(&trace_id)
            {
                *count -= 1;
                if *count == 0 {
                    state.open_per_trace.remove(&trace_id);
                }
            }
            if state.drawn.contains(&trace_id) {
                drawings.push(Drawing {
                    trace_id,
                    spans: vec![line],
                    late: true,
                });
            } else {
                let local_root = line.parent_id == SpanId::INVALID
                    || (line.parent_is_remote && !state.open.contains_key(&line.parent_id));
                if local_root {
                    state.rooted.insert(trace_id);
                }
                if !state.pending.contains_key(&trace_id) {
                    state.arrival.push_back(trace_id);
                }
                state.pending.entry(trace_id).or_default().push(line);
                // In one process the other service's spans of the trace may
                // end just after the root (its guest is still finishing):
                // wait for them, so the trace is drawn once, whole.
                if state.rooted.contains(&trace_id) && !state.open_per_trace.contains_key(&trace_id)
                {
                    drawings.push(state.draw(trace_id));
                }
                while state.arrival.len() > MAX_PENDING_TRACES {
                    if let Some(oldest) = state.arrival.front().copied() {
                        drawings.push(state.draw(oldest));
                    }
                }
            }
        }
        self.emit(drawings);
    }
}

impl Console {
    /// Draws every trace still waiting for its root: at shutdown, nothing
    /// recorded goes unseen.
    pub fn draw_pending(&self) {
        let drawings: Vec<Drawing> = match self.state.lock() {
            Ok(mut state) => {
                let waiting: Vec<TraceId> = state.arrival.iter().copied().collect();
                waiting.into_iter().map(|id| state.draw(id)).collect()
            }
            Err(_) => return,
        };
        self.emit(drawings);
    }
}

impl State {
    fn draw(&mut self, trace_id: TraceId) -> Drawing {
        let spans = self.pending.remove(&trace_id).unwrap_or_default();
        self.arrival.retain(|id| *id != trace_id);
        self.rooted.remove(&trace_id);
        self.drawn.insert(trace_id);
        self.drawn_order.push_back(trace_id);
        while self.drawn_order.len() > MAX_DRAWN_TRACES {
            if let Some(old) = self.drawn_order.pop_front() {
                self.drawn.remove(&old);
            }
        }
        Drawing {
            trace_id,
            spans,
            late: false,
        }
    }
}

/// Feeds one service's spans to the shared [`Console`].
#[derive(Debug)]
pub struct ConsoleProcessor {
    console: Arc<Console>,
    service: String,
}

impl SpanProcessor for ConsoleProcessor {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        use opentelemetry::trace::Span as _;
        let sc = span.span_context();
        self.console.started(sc.span_id(), sc.trace_id());
    }

    fn on_end(&self, span: SpanData) {
        self.console.ended(&self.service, span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.console.draw_pending();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Both services in one process, the payment side's server span ending
    /// after the order's root (its guest still finishing): the trace is
    /// drawn once, whole, when the last of its spans ends.
    #[test]
    fn waits_for_the_other_services_spans() {
        let out = Buffer::default();
        let console = Console::new(Box::new(out.clone()), false);
        let order = SdkTracerProvider::builder()
            .with_span_processor(console.processor("order-api"))
            .build()
            .tracer("t");
        let payment = SdkTracerProvider::builder()
            .with_span_processor(console.processor("payment-service"))
            .build()
            .tracer("t");

        let root = order
            .span_builder("POST /orders")
            .with_kind(SpanKind::Server)
            .start(&order);
        let root_cx = Context::new().with_span(root);
        let client = order
            .span_builder("POST")
            .with_kind(SpanKind::Client)
            .start_with_context(&order, &root_cx);
        let client_cx = root_cx.with_span(client);
        // The payment host sees the client span only as a remote parent.
        let remote =
            Context::new().with_remote_span_context(client_cx.span().span_context().clone());
        let server = payment
            .span_builder("POST /payments")
            .with_kind(SpanKind::Server)
            .start_with_context(&payment, &remote);
        let server_cx = remote.with_span(server);

        client_cx.span().end();
        root_cx.span().end();
        assert!(
            out.0.lock().unwrap().is_empty(),
            "not drawn while a span is open"
        );
        server_cx.span().end();

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("── trace").count(), 1, "{text}");
        assert!(text.contains("3 spans") && !text.contains("late"), "{text}");
        assert!(
            text.contains("└─ POST /payments") && !text.contains("remote parent"),
            "{text}"
        );
    }
}
