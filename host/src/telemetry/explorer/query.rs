//! Search over the store with the parameters of Jaeger's `GET /api/traces`
//! (`service`, `operation`, `tags`/`tag`, `minDuration`, `maxDuration`,
//! `start`, `end`, `lookback`, `limit`, `traceID`), plus the explorer's
//! own `status` (`error`/`ok`) and `sort` (`recent`, `longest`, `spans`);
//! and the per-service figures of the services page.
//!
//! As in Jaeger, a trace matches when one of its spans has the service,
//! the operation, a duration in range and every tag (a span attribute, a
//! resource attribute, an event attribute, or one of the tags Jaeger
//! derives: `error`, `span.kind`, `otel.status_code`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::KeyValue;

pub use super::record::{STATUS_ERROR, value_text};
use super::store::{Record, Store, TraceKey};

/// Traces returned unless `limit` says otherwise (Jaeger's default).
pub const DEFAULT_LIMIT: usize = 100;

/// A parameter the caller got wrong: answered with 400 naming it.
#[derive(Debug, Clone, PartialEq)]
pub struct BadParameter {
    /// The parameter's name, as in the query string.
    pub name: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl std::fmt::Display for BadParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parameter '{}': {}", self.name, self.message)
    }
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sort {
    /// Latest start first.
    #[default]
    Recent,
    /// Longest duration first.
    Longest,
    /// Most spans first.
    Spans,
}

/// A parsed search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `service.name` of a matching span.
    pub service: Option<String>,
    /// Name of a matching span.
    pub operation: Option<String>,
    /// Tags a matching span carries, as strings.
    pub tags: Vec<(String, String)>,
    /// Bounds on a matching span's duration, in nanoseconds.
    pub min_duration: Option<u64>,
    /// See `min_duration`.
    pub max_duration: Option<u64>,
    /// Bounds on the trace's start, in nanoseconds since the epoch.
    pub start: Option<u64>,
    /// See `start`.
    pub end: Option<u64>,
    /// Traces returned at most.
    pub limit: usize,
    /// `Some(true)`: traces with an error span; `Some(false)`: without.
    pub error: Option<bool>,
    /// The order of the results.
    pub sort: Sort,
    /// Explicit trace ids (Jaeger's `traceID`), which bypass the filters.
    pub trace_ids: Vec<TraceKey>,
    /// Bounds on a matching span's own start, in nanoseconds since the
    /// epoch: api/v3's `query.startTimeMin` and `query.startTimeMax`,
    /// which Jaeger applies to the span, not the trace.
    pub span_start: Option<(u64, u64)>,
    /// Attributes a matching span carries, as api/v3's `query.attributes`
    /// matches them (see [`has_attribute`]).
    pub attributes: Vec<(String, String)>,
}

/// Parses a trace id as Jaeger does: up to 32 hex digits, left-padded.
pub fn parse_trace_id(text: &str) -> Option<TraceKey> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = u128::from_str_radix(text, 16).ok()?;
    Some(value.to_be_bytes())
}

/// Parses a Go duration (`1.5s`, `250ms`, `10us`, `1m30s`), as Jaeger's
/// `minDuration` takes it; nanoseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        // Go's `time.ParseDuration` takes a bare zero, and only that, without a unit.
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    (total.is_finite() && total >= 0.0 && total < u64::MAX as f64).then_some(total as u64)
}

fn bad(name: &'static str, message: impl Into<String>) -> BadParameter {
    BadParameter {
        name,
        message: message.into(),
    }
}

fn micros(name: &'static str, value: &str) -> Result<u64, BadParameter> {
    value
        .parse::<u64>()
        .map(|us| us.saturating_mul(1000))
        .map_err(|_| {
            bad(
                name,
                format!("`{value}` is not a time in microseconds since the epoch"),
            )
        })
}

fn duration(name: &'static str, value: &str) -> Result<u64, BadParameter> {
    parse_duration(value).ok_or_else(|| {
        bad(
            name,
            format!("`{value}` is not a duration such as 250ms or 1.5s"),
        )
    })
}

/// `tags`: a JSON object of tag values (Jaeger's UI sends strings).
fn tags(value: &str) -> Result<Vec<(String, String)>, BadParameter> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(value).map_err(|_| {
        bad(
            "tags",
            format!(
                "`{value}` is not a JSON object such as {{\"http.response.status_code\":\"201\"}}"
            ),
        )
    })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// `tag`: one `key:value` (or `key=value`).
fn tag(value: &str) -> Result<(String, String), BadParameter> {
    let (k, v) = value
        .split_once(':')
        .or_else(|| value.split_once('='))
        .ok_or_else(|| bad("tag", format!("`{value}` is not key:value")))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// `limit`: a positive number of traces.
fn limit(value: &str) -> Result<usize, BadParameter> {
    value
        .parse::<usize>()
        .ok()
        .filter(|limit| *limit > 0)
        .ok_or_else(|| bad("limit", format!("`{value}` is not a positive whole number")))
}

/// `status`: `error`, `ok` or `any`.
fn status(value: &str) -> Result<Option<bool>, BadParameter> {
    match value {
        "error" => Ok(Some(true)),
        "ok" => Ok(Some(false)),
        "any" => Ok(None),
        _ => Err(bad("status", format!("`{value}` is not error, ok or any"))),
    }
}

/// `sort`: `recent`, `longest` or `spans`.
fn sort(value: &str) -> Result<Sort, BadParameter> {
    match value {
        "recent" => Ok(Sort::Recent),
        "longest" => Ok(Sort::Longest),
        "spans" => Ok(Sort::Spans),
        _ => Err(bad(
            "sort",
            format!("`{value}` is not recent, longest or spans"),
        )),
    }
}

/// `traceID`: a trace id of up to 32 hex digits (repeatable).
fn trace_id(value: &str) -> Result<TraceKey, BadParameter> {
    parse_trace_id(value).ok_or_else(|| {
        bad(
            "traceID",
            format!("`{value}` is not a trace id of up to 32 hex digits"),
        )
    })
}

impl Query {
    /// Parses a query string (`service=order&limit=20`), one function per
    /// parameter below.
    pub fn parse(query: &str) -> Result<Query, BadParameter> {
        let mut q = Query {
            limit: DEFAULT_LIMIT,
            ..Query::default()
        };
        let mut lookback = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            match &*key {
                "service" if !value.is_empty() => q.service = Some(value.to_string()),
                "operation" if !value.is_empty() => q.operation = Some(value.to_string()),
                "tags" if !value.is_empty() => q.tags.extend(tags(value)?),
                "tag" if !value.is_empty() => q.tags.push(tag(value)?),
                "minDuration" if !value.is_empty() => {
                    q.min_duration = Some(duration("minDuration", value)?)
                }
                "maxDuration" if !value.is_empty() => {
                    q.max_duration = Some(duration("maxDuration", value)?)
                }
                "start" if !value.is_empty() => q.start = Some(micros("start", value)?),
                "end" if !value.is_empty() => q.end = Some(micros("end", value)?),
                "lookback" if !value.is_empty() && value != "custom" => {
                    lookback = Some(duration("lookback", value)?)
                }
                "limit" if !value.is_empty() => q.limit = limit(value)?,
                "status" if !value.is_empty() => q.error = status(value)?,
                "sort" if !value.is_empty() => q.sort = sort(value)?,
                "traceID" => q.trace_ids.push(trace_id(value)?),
                _ => {}
            }
        }
        q.check(lookback)
    }

    /// The checks across parameters, and `lookback` turned into a start.
    fn check(mut self, lookback: Option<u64>) -> Result<Query, BadParameter> {
        if let (Some(min), Some(max)) = (self.min_duration, self.max_duration)
            && min > max
        {
            return Err(bad("maxDuration", "is less than minDuration"));
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && start > end
        {
            return Err(bad("end", "is before start"));
        }
        if let (Some(lookback), None) = (lookback, self.start) {
            self.start = Some(now_nanos().saturating_sub(lookback));
        }
        Ok(self)
    }

    fn span_matches(&self, record: &Record) -> bool {
        let duration = record.end().saturating_sub(record.start());
        self.service
            .as_deref()
            .is_none_or(|s| record.service() == s)
            && self.operation.as_deref().is_none_or(|o| record.name() == o)
            && self.min_duration.is_none_or(|min| duration >= min)
            && self.max_duration.is_none_or(|max| duration <= max)
            && self.tags.iter().all(|(k, v)| has_tag(record, k, v))
            && self
                .span_start
                .is_none_or(|(min, max)| (min..=max).contains(&record.start()))
            && self
                .attributes
                .iter()
                .all(|(k, v)| has_attribute(record, k, v))
    }

    /// The matching traces, ordered and limited, with their spans.
    pub fn run(&self, store: &Store) -> Vec<(TraceKey, Vec<Record>)> {
        if !self.trace_ids.is_empty() {
            return self
                .trace_ids
                .iter()
                .filter_map(|key| store.trace(key).map(|spans| (*key, spans)))
                .collect();
        }
        // (key, start, duration, spans)
        let mut matched: Vec<(TraceKey, u64, u64, usize)> = Vec::new();
        store.scan(|key, trace| {
            let (start, end) = bounds(&trace.spans);
            if self.start.is_some_and(|s| start < s) || self.end.is_some_and(|e| start > e) {
                return true;
            }
            if let Some(error) = self.error
                && trace.spans.iter().any(is_error) != error
            {
                return true;
            }
            if trace.spans.iter().any(|r| self.span_matches(r)) {
                matched.push((*key, start, end - start, trace.spans.len()));
            }
            true
        });
        match self.sort {
            Sort::Recent => matched.sort_by_key(|m| std::cmp::Reverse(m.1)),
            Sort::Longest => matched.sort_by_key(|m| std::cmp::Reverse(m.2)),
            Sort::Spans => matched.sort_by_key(|m| std::cmp::Reverse(m.3)),
        }
        matched.truncate(self.limit);
        matched
            .into_iter()
            .filter_map(|(key, ..)| store.trace(&key).map(|spans| (key, spans)))
            .collect()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The earliest start and latest end of `spans`, in nanoseconds.
pub fn bounds(spans: &[Record]) -> (u64, u64) {
    let start = spans.iter().map(Record::start).min().unwrap_or(0);
    let end = spans.iter().map(Record::end).max().unwrap_or(0);
    (start, end.max(start))
}

/// Whether a span's status is an error.
pub fn is_error(record: &Record) -> bool {
    record.status_code() == STATUS_ERROR
}

/// The `service.name` of the span's resource (empty when it has none).
pub fn service_of(record: &Record) -> &str {
    record.service()
}

/// The name Jaeger gives an OTLP span kind, when it has one.
pub fn kind_name(kind: i32) -> Option<&'static str> {
    match kind {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    }
}

fn has_tag(record: &Record, key: &str, value: &str) -> bool {
    let status = record.status_code();
    match key {
        "error" if value == "true" && status == STATUS_ERROR => return true,
        "span.kind" if kind_name(record.kind()) == Some(value) => return true,
        "otel.status_code" if matches!((status, value), (1, "OK") | (2, "ERROR")) => return true,
        _ => {}
    }
    record.has_attribute(key, value)
}

/// Whether a span has attribute `key` = `value` as Jaeger's api/v3 search
/// (its in-memory store's `validSpan`) has it: `error` (`true`: an error
/// status; `false`: any other), `span.status` (`OK`, `ERROR`, `UNSET`),
/// `span.kind`, `scope.name` and `scope.version` are the span's own fields;
/// `resource.KEY` is the resource's attribute `KEY`; any other key is an
/// attribute of the span, its scope, its resource, an event or a link.
pub fn has_attribute(record: &Record, key: &str, value: &str) -> bool {
    let status = record.status_code();
    let kind = record.kind();
    let in_list = |list: &[KeyValue], key: &str| {
        list.iter()
            .any(|kv| kv.key == key && value_text(kv.value.as_ref()) == value)
    };
    match key {
        "error" => match go_bool(value) {
            Some(true) => status == STATUS_ERROR,
            Some(false) => status != STATUS_ERROR,
            None => false,
        },
        "span.status" => {
            let wanted = match value.to_ascii_uppercase().as_str() {
                "OK" => 1,
                "ERROR" => STATUS_ERROR,
                _ => 0,
            };
            status == wanted
        }
        "span.kind" => {
            let lower = value.to_ascii_lowercase();
            kind_name(kind) == Some(lower.as_str())
                || (kind == 0 && kind_name_known(&lower).is_none())
        }
        "scope.name" => record.scope().name == value,
        "scope.version" => record.scope().version == value,
        _ => match key.strip_prefix("resource.") {
            Some(resource_key) => in_list(&record.resource.attributes, resource_key),
            None => {
                record.has_attribute(key, value)
                    || in_list(&record.scope().attributes, key)
                    || record.has_link_attribute(key, value)
            }
        },
    }
}

/// Go's `strconv.ParseBool`, as Jaeger reads booleans.
pub fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The OTLP kind Jaeger reads `name` as, when it names one.
fn kind_name_known(name: &str) -> Option<i32> {
    (1..=5).find(|kind| kind_name(*kind) == Some(name))
}

/// Every service name held, sorted.
pub fn services(store: &Store) -> Vec<String> {
    let mut names = BTreeSet::new();
    store.scan(|_, trace| {
        for record in &trace.spans {
            if !names.contains(service_of(record)) {
                names.insert(service_of(record).to_string());
            }
        }
        true
    });
    names.into_iter().collect()
}

/// Every operation (span name) of `service` with its span kinds, sorted.
pub fn operations(store: &Store, service: &str) -> Vec<(String, Option<&'static str>)> {
    let mut names = BTreeSet::new();
    store.scan(|_, trace| {
        for record in trace.spans.iter().filter(|r| service_of(r) == service) {
            names.insert((record.name().to_string(), kind_name(record.kind())));
        }
        true
    });
    names.into_iter().collect()
}

/// One row of the services page.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct OperationFigures {
    /// `service.name`.
    pub service: String,
    /// The span name; empty for the row of the whole service.
    pub operation: String,
    /// Spans held.
    pub count: usize,
    /// Of which errors.
    pub errors: usize,
    /// Spans per second over the window the held spans cover.
    pub rate: f64,
    /// Fraction of `count` that are errors.
    pub error_rate: f64,
    /// Duration percentiles (nearest rank), in milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p95_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
}

/// Figures per service (a row with an empty operation) and per operation,
/// over every span held.
pub fn figures(store: &Store) -> Vec<OperationFigures> {
    // (service, operation) -> (durations ns, errors, first start, last end)
    type Group = (Vec<u64>, usize, u64, u64);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    store.scan(|_, trace| {
        for record in &trace.spans {
            let (start, end) = (record.start(), record.end());
            let duration = end.saturating_sub(start);
            let service = service_of(record).to_string();
            for key in [
                (service.clone(), String::new()),
                (service, record.name().to_string()),
            ] {
                let entry = groups.entry(key).or_insert((Vec::new(), 0, u64::MAX, 0));
                entry.0.push(duration);
                entry.1 += usize::from(is_error(record));
                entry.2 = entry.2.min(start);
                entry.3 = entry.3.max(end);
            }
        }
        true
    });
    groups
        .into_iter()
        .map(
            |((service, operation), (mut durations, errors, first, last))| {
                durations.sort_unstable();
                let count = durations.len();
                let rank = |p: f64| {
                    let index = ((p * count as f64).ceil() as usize).clamp(1, count) - 1;
                    durations[index] as f64 / 1e6
                };
                // At least a second, so that a single span is not "a million a second".
                let window = (last.saturating_sub(first) as f64 / 1e9).max(1.0);
                OperationFigures {
                    service,
                    operation,
                    count,
                    errors,
                    rate: count as f64 / window,
                    error_rate: errors as f64 / count as f64,
                    p50_ms: rank(0.50),
                    p95_ms: rank(0.95),
                    p99_ms: rank(0.99),
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Go durations as Jaeger's minDuration takes them.
    #[rustfmt::skip]
    #[test]
    fn durations() {
        let cases = [
            ("250ms", Some(250_000_000)), ("1.5s", Some(1_500_000_000)), ("10us", Some(10_000)),
            ("10µs", Some(10_000)), ("1m30s", Some(90_000_000_000)), ("7ns", Some(7)),
            ("0", Some(0)), ("", None), ("10", None), ("ms", None), ("1x", None), ("-1s", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), expected, "{text}");
        }
    }

    /// Each bad parameter is named.
    #[rustfmt::skip]
    #[test]
    fn bad_parameters_are_named() {
        let cases = [
            ("limit=abc", "limit"), ("limit=0", "limit"), ("minDuration=5", "minDuration"),
            ("maxDuration=x", "maxDuration"), ("start=yesterday", "start"), ("end=-1", "end"),
            ("tags=notjson", "tags"), ("tag=novalue", "tag"), ("status=maybe", "status"),
            ("sort=name", "sort"), ("traceID=xyz", "traceID"), ("lookback=2d", "lookback"),
            ("minDuration=2s&maxDuration=1s", "maxDuration"), ("start=10&end=5", "end"),
        ];
        for (query, name) in cases {
            assert_eq!(Query::parse(query).unwrap_err().name, name, "{query}");
        }
    }

    /// Every parameter Jaeger's UI sends parses.
    #[test]
    fn jaeger_ui_query_parses() {
        let q = Query::parse(
            "service=order-api&operation=POST%20%2Forders&tags=%7B%22a%22%3A%22b%22%7D&tag=c:d\
             &minDuration=1ms&maxDuration=2s&start=1000&end=2000&limit=20&lookback=custom",
        )
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("order-api"));
        assert_eq!(q.operation.as_deref(), Some("POST /orders"));
        assert_eq!(q.tags, [("a".into(), "b".into()), ("c".into(), "d".into())]);
        assert_eq!(
            (q.min_duration, q.max_duration),
            (Some(1_000_000), Some(2_000_000_000))
        );
        assert_eq!(
            (q.start, q.end, q.limit),
            (Some(1_000_000), Some(2_000_000), 20)
        );
    }

    #[test]
    fn trace_ids_pad_like_jaeger() {
        assert_eq!(parse_trace_id("1").unwrap()[15], 1);
        assert!(parse_trace_id(&"f".repeat(33)).is_none());
    }
}
