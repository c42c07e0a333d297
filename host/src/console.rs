//! `OTEL_TRACES_EXPORTER=console`: every finished trace drawn in the terminal
//! as a [waterfall](crate::waterfall), with no backend at all.
//!
//! A span processor (not a batch exporter) so that a trace appears the moment
//! its root ends. One [`Console`] is shared by every service of the process:
//! when order and payment run together, the payment's local root (whose
//! parent is the order's CLIENT span, still open in this process) does not
//! trigger a drawing; the whole cross-service trace is drawn once, when the
//! order's root ends. A span that ends after its trace was drawn is drawn on
//! its own, marked late, never dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::waterfall::{SpanLine, render};

/// Traces waiting for their root at most; beyond, the oldest is drawn as it is.
const MAX_PENDING_TRACES: usize = 1024;
/// Drawn traces remembered, to recognise late spans.
const MAX_DRAWN_TRACES: usize = 4096;

/// The terminal trace view shared by the services of one process.
pub struct Console {
    state: Mutex<State>,
    color: bool,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("color", &self.color)
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Spans started in this process and not yet ended.
    open: HashSet<SpanId>,
    pending: HashMap<TraceId, Vec<SpanLine>>,
    /// Pending traces, oldest first.
    arrival: VecDeque<TraceId>,
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

    /// Draws on `out`.
    pub fn new(out: Box<dyn Write + Send>, color: bool) -> Arc<Console> {
        Arc::new(Console {
            state: Mutex::new(State::default()),
            color,
            out: Mutex::new(out),
        })
    }

    /// A processor that feeds this console with the spans of `service`.
    pub fn processor(self: &Arc<Self>, service: &str) -> ConsoleProcessor {
        ConsoleProcessor {
            console: self.clone(),
            service: service.to_string(),
        }
    }

    fn started(&self, span_id: SpanId) {
        if let Ok(mut state) = self.state.lock() {
            state.open.insert(span_id);
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
        };
        let mut drawings = Vec::new();
        {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state.open.remove(&line.span_id);
            if state.drawn.contains(&trace_id) {
                drawings.push(render(trace_id, &[line], self.color, true));
            } else {
                let local_root = line.parent_id == SpanId::INVALID
                    || (line.parent_is_remote && !state.open.contains(&line.parent_id));
                if !state.pending.contains_key(&trace_id) {
                    state.arrival.push_back(trace_id);
                }
                state.pending.entry(trace_id).or_default().push(line);
                if local_root {
                    drawings.push(state.draw(trace_id, self.color));
                }
                while state.arrival.len() > MAX_PENDING_TRACES {
                    if let Some(oldest) = state.arrival.front().copied() {
                        drawings.push(state.draw(oldest, self.color));
                    }
                }
            }
        }
        if let Ok(mut out) = self.out.lock() {
            for drawing in drawings {
                let _ = out.write_all(drawing.as_bytes());
            }
            let _ = out.flush();
        }
    }
}

impl Console {
    /// Draws every trace still waiting for its root: at shutdown, nothing
    /// recorded goes unseen.
    pub fn draw_pending(&self) {
        let drawings: Vec<String> = match self.state.lock() {
            Ok(mut state) => {
                let waiting: Vec<TraceId> = state.arrival.iter().copied().collect();
                waiting
                    .into_iter()
                    .map(|id| state.draw(id, self.color))
                    .collect()
            }
            Err(_) => return,
        };
        if let Ok(mut out) = self.out.lock() {
            for drawing in drawings {
                let _ = out.write_all(drawing.as_bytes());
            }
            let _ = out.flush();
        }
    }
}

impl State {
    fn draw(&mut self, trace_id: TraceId, color: bool) -> String {
        let spans = self.pending.remove(&trace_id).unwrap_or_default();
        self.arrival.retain(|id| *id != trace_id);
        self.drawn.insert(trace_id);
        self.drawn_order.push_back(trace_id);
        while self.drawn_order.len() > MAX_DRAWN_TRACES {
            if let Some(old) = self.drawn_order.pop_front() {
                self.drawn.remove(&old);
            }
        }
        render(trace_id, &spans, color, false)
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
        self.console.started(span.span_context().span_id());
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
