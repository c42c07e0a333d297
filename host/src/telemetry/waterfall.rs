//! The terminal trace view: a finished trace drawn as a waterfall, one line
//! per span, indented by parent, with a time bar proportional to the trace.
//!
//! Rendering is a pure function of the spans, so that tests can compare exact
//! text; [`crate::telemetry::console`] decides when a trace is complete enough to draw.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};

use super::display::{JAEGER_TRACE_URL, duration};
use super::semconv;

/// Width of the time bar, in characters.
const BAR_WIDTH: usize = 30;
/// Longest attribute value shown before it is cut with `…`.
const MAX_VALUE: usize = 48;

/// What the waterfall needs of a span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLine {
    /// The `service.name` of the span's resource.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub span_id: SpanId,
    /// `SpanId::INVALID` for a root.
    pub parent_id: SpanId,
    /// The parent is in another process (it came in a `traceparent`).
    pub parent_is_remote: bool,
    pub start: SystemTime,
    pub end: SystemTime,
    pub status: Status,
    pub attributes: Vec<KeyValue>,
    /// Events: name and attributes.
    pub events: Vec<(String, Vec<KeyValue>)>,
    /// The log lines the guest wrote while this span was innermost
    /// (`SEVERITY body`), and how many more there were.
    pub logs: (Vec<String>, usize),
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn error(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    fn service(&self, text: &str) -> String {
        self.paint("36", text)
    }
    fn bar(&self, text: &str, failed: bool) -> String {
        self.paint(if failed { "31" } else { "32" }, text)
    }
}

/// Draws `spans` (one trace, or the part of it this process recorded) as a
/// waterfall. `late` marks spans that ended after their trace was drawn.
pub fn render(trace_id: TraceId, spans: &[SpanLine], color: bool, late: bool) -> String {
    let style = Style { color };
    let Some(start) = spans.iter().map(|s| s.start).min() else {
        return String::new();
    };
    let end = spans.iter().map(|s| s.end).max().unwrap_or(start);
    let total = end.duration_since(start).unwrap_or_default();
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let rows = rows(spans, &ids);
    let layout = Layout {
        start,
        total,
        service_width: spans
            .iter()
            .map(|s| s.service.chars().count())
            .max()
            .unwrap_or(0),
        name_width: rows
            .iter()
            .map(|(prefix, span)| prefix.chars().count() + span.name.chars().count())
            .max()
            .unwrap_or(0),
    };
    let mut out = header(trace_id, spans, total, late, &style);
    for (prefix, span) in &rows {
        draw_span(&mut out, prefix, span, &layout, &ids, &style);
        draw_events(&mut out, prefix, span, &layout, &style);
        draw_logs(&mut out, prefix, span, &layout, &style);
    }
    out
}

/// Where a trace's spans sit: its start and length, and the columns' widths.
struct Layout {
    start: SystemTime,
    total: Duration,
    service_width: usize,
    name_width: usize,
}

/// The spans in drawing order, each with its tree prefix: parent before
/// children, each list in start order; roots are spans whose parent is not
/// among these spans.
fn rows<'a>(spans: &'a [SpanLine], ids: &HashSet<SpanId>) -> Vec<(String, &'a SpanLine)> {
    let mut children: HashMap<SpanId, Vec<&SpanLine>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if span.parent_id != SpanId::INVALID && ids.contains(&span.parent_id) {
            children.entry(span.parent_id).or_default().push(span);
        } else {
            roots.push(span);
        }
    }
    let by_start = |a: &&SpanLine, b: &&SpanLine| {
        a.start
            .cmp(&b.start)
            .then(a.span_id.to_bytes().cmp(&b.span_id.to_bytes()))
    };
    roots.sort_by(by_start);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }
    let mut rows = Vec::new();
    for root in &roots {
        walk(root, "", None, &children, &mut rows);
    }
    rows
}

/// The trace's first line: its id, length, span count, whether it failed,
/// and its link.
fn header(
    trace_id: TraceId,
    spans: &[SpanLine],
    total: Duration,
    late: bool,
    style: &Style,
) -> String {
    let mut out = String::new();
    let failed = spans
        .iter()
        .any(|s| matches!(s.status, Status::Error { .. }));
    let _ = writeln!(
        out,
        "{} trace {trace_id} · {} · {} span{}{} · {JAEGER_TRACE_URL}{trace_id}",
        if late {
            "── late span of"
        } else {
            "──"
        },
        duration(total),
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        if failed {
            format!(" · {}", style.error("ERROR"))
        } else {
            String::new()
        },
    );
    out
}

/// One span's line: service, name in the tree, kind, duration, time bar,
/// details.
fn draw_span(
    out: &mut String,
    prefix: &str,
    span: &SpanLine,
    layout: &Layout,
    ids: &HashSet<SpanId>,
    style: &Style,
) {
    let span_failed = matches!(span.status, Status::Error { .. });
    let label = format!("{prefix}{}", span.name);
    let offset = span.start.duration_since(layout.start).unwrap_or_default();
    let length = span.end.duration_since(span.start).unwrap_or_default();
    let service_width = layout.service_width;
    let _ = write!(
        out,
        "{}  {}  {:<8} {:>9} │{}│",
        style.service(&format!("{:<service_width$}", span.service)),
        pad(&label, layout.name_width),
        kind(&span.kind),
        duration(length),
        style.bar(&bar(offset, length, layout.total), span_failed),
    );
    for detail in details(span, style) {
        let _ = write!(out, " {detail}");
    }
    if span.parent_is_remote && !ids.contains(&span.parent_id) {
        let _ = write!(
            out,
            " {}",
            style.dim(&format!("↖ remote parent {}", span.parent_id))
        );
    }
    out.push('\n');
}

/// A span's events, a line each under it; an exception in red.
fn draw_events(out: &mut String, prefix: &str, span: &SpanLine, layout: &Layout, style: &Style) {
    let continuation = prefix.replace("├─ ", "│  ").replace("└─ ", "   ");
    let indent = format!("{}{continuation}", " ".repeat(layout.service_width + 2));
    for (name, attributes) in &span.events {
        let text = if name == semconv::EXCEPTION_EVENT {
            let kind = string(attributes, semconv::EXCEPTION_TYPE).unwrap_or_default();
            let message = string(attributes, semconv::EXCEPTION_MESSAGE).unwrap_or_default();
            style.error(&format!("◆ exception {kind}: {message}"))
        } else {
            let mut text = format!("◆ {name}");
            for kv in attributes {
                let _ = write!(text, " {}={}", kv.key, value(&kv.value));
            }
            style.dim(&text)
        };
        let _ = writeln!(out, "{indent}{text}");
    }
}

/// The span's log lines, under its events.
fn draw_logs(out: &mut String, prefix: &str, span: &SpanLine, layout: &Layout, style: &Style) {
    let continuation = prefix.replace("├─ ", "│  ").replace("└─ ", "   ");
    let indent = format!("{}{continuation}", " ".repeat(layout.service_width + 2));
    let (lines, more) = &span.logs;
    for line in lines {
        let _ = writeln!(out, "{indent}{}", style.dim(&format!("▸ {line}")));
    }
    if *more > 0 {
        let _ = writeln!(
            out,
            "{indent}{}",
            style.dim(&format!("▸ … {more} more line(s)"))
        );
    }
}

fn walk<'a>(
    span: &'a SpanLine,
    prefix: &str,
    last: Option<bool>,
    children: &HashMap<SpanId, Vec<&'a SpanLine>>,
    rows: &mut Vec<(String, &'a SpanLine)>,
) {
    let own = match last {
        None => String::new(),
        Some(true) => format!("{prefix}└─ "),
        Some(false) => format!("{prefix}├─ "),
    };
    rows.push((own, span));
    let child_prefix = match last {
        None => String::new(),
        Some(true) => format!("{prefix}   "),
        Some(false) => format!("{prefix}│  "),
    };
    if let Some(list) = children.get(&span.span_id) {
        for (i, child) in list.iter().enumerate() {
            walk(
                child,
                &child_prefix,
                Some(i + 1 == list.len()),
                children,
                rows,
            );
        }
    }
}

fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

fn bar(offset: Duration, length: Duration, total: Duration) -> String {
    let total = total.as_secs_f64();
    let (from, width) = if total <= 0.0 {
        (0, BAR_WIDTH)
    } else {
        let from = ((offset.as_secs_f64() / total) * BAR_WIDTH as f64).floor() as usize;
        let from = from.min(BAR_WIDTH - 1);
        let width = ((length.as_secs_f64() / total) * BAR_WIDTH as f64).round() as usize;
        (from, width.clamp(1, BAR_WIDTH - from))
    };
    format!(
        "{}{}{}",
        " ".repeat(from),
        "█".repeat(width),
        " ".repeat(BAR_WIDTH - from - width)
    )
}

/// The attributes worth a glance: the outcome of HTTP spans, everything a
/// guest chose to record on its own spans.
fn details(span: &SpanLine, style: &Style) -> Vec<String> {
    let mut out = Vec::new();
    if let Status::Error { description } = &span.status {
        out.push(style.error(&if description.is_empty() {
            "ERROR".to_string()
        } else {
            format!("ERROR: {description}")
        }));
    }
    let shown: &[&str] = match span.kind {
        SpanKind::Server => &[
            semconv::HTTP_RESPONSE_STATUS_CODE,
            semconv::ERROR_TYPE,
            semconv::WASM_INSTANTIATE_DURATION_US,
            semconv::WASM_MEMORY_PEAK_BYTES,
        ],
        SpanKind::Client => &[
            semconv::HTTP_RESPONSE_STATUS_CODE,
            semconv::URL_FULL,
            semconv::ERROR_TYPE,
        ],
        _ => &[],
    };
    let mut attributes: Vec<&KeyValue> = if shown.is_empty() {
        span.attributes.iter().collect()
    } else {
        shown
            .iter()
            .filter_map(|key| span.attributes.iter().find(|kv| kv.key.as_str() == *key))
            .collect()
    };
    if shown.is_empty() {
        attributes.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    }
    for kv in attributes {
        out.push(style.dim(&format!("{}={}", kv.key, value(&kv.value))));
    }
    out
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn value(value: &Value) -> String {
    let text = value.as_str();
    if text.chars().count() > MAX_VALUE {
        let cut: String = text.chars().take(MAX_VALUE - 1).collect();
        format!("{cut}…")
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + Duration::from_micros(ms * 100)
    }

    fn span(
        service: &str,
        name: &str,
        kind: SpanKind,
        id: u64,
        parent: u64,
        from: u64,
        to: u64,
    ) -> SpanLine {
        SpanLine {
            service: service.to_string(),
            name: name.to_string(),
            kind,
            span_id: SpanId::from(id),
            parent_id: SpanId::from(parent),
            parent_is_remote: false,
            start: at(from),
            end: at(to),
            status: Status::Unset,
            attributes: Vec::new(),
            events: Vec::new(),
            logs: (Vec::new(), 0),
        }
    }

    const TRACE: TraceId = TraceId::from_bytes([0x4b; 16]);

    /// A span's log lines are drawn under it (after its events), in the
    /// tree's indentation, with the count of those not drawn.
    #[test]
    fn log_lines_under_their_span() {
        let root = span("testbed", "GET /print", SpanKind::Server, 1, 0, 0, 10);
        let mut work = span("testbed", "work", SpanKind::Internal, 2, 1, 2, 5);
        work.logs = (vec!["INFO printed in work".into()], 3);
        let text = render(TRACE, &[work, root], false, false);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.contains("work")).unwrap();
        assert!(
            lines[at + 1].ends_with("   ▸ INFO printed in work"),
            "{text}"
        );
        assert!(lines[at + 2].ends_with("   ▸ … 3 more line(s)"), "{text}");
    }

    /// A whole cross-service trace, as drawn when both services share a
    /// process: tree glyphs, proportional bars, key attributes, events.
    #[test]
    fn cross_service_trace() {
        let mut root = span("order-api", "POST /orders", SpanKind::Server, 1, 0, 0, 100);
        root.attributes = vec![
            KeyValue::new("http.response.status_code", 201),
            KeyValue::new("url.path", "/orders"),
        ];
        let mut validate = span(
            "order-api",
            "validate_order",
            SpanKind::Internal,
            2,
            1,
            2,
            5,
        );
        validate.attributes = vec![
            KeyValue::new("order.quantity", 3),
            KeyValue::new("order.item", "widget"),
        ];
        let mut save = span("order-api", "save_order", SpanKind::Internal, 3, 1, 6, 8);
        save.events = vec![(
            "order.saved".into(),
            vec![KeyValue::new("order.id", "ord_1")],
        )];
        let mut client = span("order-api", "POST", SpanKind::Client, 4, 1, 10, 95);
        client.attributes = vec![
            KeyValue::new("url.full", "http://127.0.0.1:8001/payments"),
            KeyValue::new("http.response.status_code", 200),
        ];
        let mut server = span(
            "payment-service",
            "POST /payments",
            SpanKind::Server,
            5,
            4,
            20,
            90,
        );
        server.parent_is_remote = true;
        let process = span(
            "payment-service",
            "process_payment",
            SpanKind::Internal,
            6,
            5,
            30,
            60,
        );
        let text = render(
            TRACE,
            &[process, server, client, save, validate, root],
            false,
            false,
        );
        let expected = "\
── trace 4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b · 10.00ms · 6 spans · http://localhost:16686/trace/4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b
order-api        POST /orders              server     10.00ms │██████████████████████████████│ http.response.status_code=201
order-api        ├─ validate_order         internal    0.30ms │█                             │ order.item=widget order.quantity=3
order-api        ├─ save_order             internal    0.20ms │ █                            │
                 │  ◆ order.saved order.id=ord_1
order-api        └─ POST                   client      8.50ms │   ██████████████████████████ │ http.response.status_code=200 url.full=http://127.0.0.1:8001/payments
payment-service     └─ POST /payments      server      7.00ms │      █████████████████████   │
payment-service        └─ process_payment  internal    3.00ms │         █████████            │
";
        assert_eq!(text, expected, "\n{text}");
    }

    /// One process's part of a trace: the local root is marked as joining a
    /// remote parent; errors and exceptions stand out (here without colour).
    #[test]
    fn partial_trace_with_error() {
        let mut server = span(
            "payment-service",
            "POST /payments",
            SpanKind::Server,
            5,
            4,
            0,
            10,
        );
        server.parent_is_remote = true;
        server.attributes = vec![KeyValue::new("http.response.status_code", 402)];
        let mut process = span(
            "payment-service",
            "process_payment",
            SpanKind::Internal,
            6,
            5,
            2,
            8,
        );
        process.status = Status::error("payment declined: suspected fraud");
        process.events = vec![(
            "exception".into(),
            vec![
                KeyValue::new("exception.type", "FraudSuspected"),
                KeyValue::new("exception.message", "payment declined: suspected fraud"),
            ],
        )];
        let text = render(TRACE, &[server, process], false, false);
        let expected = "\
── trace 4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b · 1.00ms · 2 spans · ERROR · http://localhost:16686/trace/4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b
payment-service  POST /payments      server      1.00ms │██████████████████████████████│ http.response.status_code=402 ↖ remote parent 0000000000000004
payment-service  └─ process_payment  internal    0.60ms │      ██████████████████      │ ERROR: payment declined: suspected fraud
                    ◆ exception FraudSuspected: payment declined: suspected fraud
";
        assert_eq!(text, expected, "\n{text}");
    }

    /// With colour, an error is bold red and the bar of a failed span red.
    #[test]
    fn colour_marks_errors() {
        let mut failed = span("order-api", "POST /orders", SpanKind::Server, 1, 0, 0, 10);
        failed.status = Status::error("boom");
        let text = render(TRACE, &[failed], true, false);
        assert!(text.contains("\x1b[1;31mERROR: boom\x1b[0m"), "{text:?}");
        assert!(
            text.contains("\x1b[31m██████████████████████████████\x1b[0m"),
            "{text:?}"
        );
    }

    /// A late span says so in its header.
    #[test]
    fn late_span_header() {
        let text = render(
            TRACE,
            &[span(
                "order-api",
                "leftover",
                SpanKind::Internal,
                9,
                1,
                0,
                1,
            )],
            false,
            true,
        );
        assert!(text.starts_with("── late span of trace 4b4b"), "{text}");
    }
}
