//! Jaeger's JSON shapes (its query service's `model/json`: `traceID`,
//! `spans`, `processes`, `references`, `tags`, `logs`, times in
//! microseconds) and the OTLP/JSON of its `api/v3`, built from stored spans.
//!
//! OTLP maps onto Jaeger as Jaeger's own OTLP translator maps it: the
//! resource becomes the process (`service.name` its `serviceName`, the rest
//! its tags), the parent a `CHILD_OF` reference, links `FOLLOWS_FROM`,
//! events logs (the name as the `event` field), and kind, scope and status
//! the tags `span.kind`, `otel.scope.name`, `otel.scope.version`,
//! `otel.status_code`, `otel.status_description` and `error`.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;
use serde_json::{Value, json};

use super::query::{STATUS_ERROR, kind_name, service_of, value_text};
use super::store::{Record, TraceKey};

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    crate::telemetry::write_hex(&mut out, bytes);
    out
}

/// Jaeger's `{key, type, value}`.
fn tag(key: &str, value: Option<&AnyValue>) -> Value {
    let (kind, value) = match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => ("string", json!(s)),
        Some(any_value::Value::BoolValue(b)) => ("bool", json!(b)),
        Some(any_value::Value::IntValue(i)) => ("int64", json!(i)),
        Some(any_value::Value::DoubleValue(d)) => ("float64", json!(d)),
        Some(any_value::Value::BytesValue(b)) => ("binary", json!(hex(b))),
        _ => ("string", json!(value_text(value))),
    };
    json!({"key": key, "type": kind, "value": value})
}

fn tags(list: &[KeyValue]) -> Vec<Value> {
    list.iter()
        .map(|kv| tag(&kv.key, kv.value.as_ref()))
        .collect()
}

fn string_tag(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
}

/// One trace in Jaeger's shape.
pub fn trace(key: &TraceKey, records: &[Record]) -> Value {
    let trace_id = hex(key);
    // Processes: one per distinct resource, numbered in order of first use.
    let mut process_ids: HashMap<Vec<u8>, String> = HashMap::new();
    let mut processes = serde_json::Map::new();
    let mut spans = Vec::with_capacity(records.len());
    for record in records {
        let encoded = record.resource.encode_to_vec();
        let next = format!("p{}", process_ids.len() + 1);
        let process_id = process_ids.entry(encoded).or_insert_with(|| {
            let others: Vec<KeyValue> = record
                .resource
                .attributes
                .iter()
                .filter(|kv| kv.key != "service.name")
                .cloned()
                .collect();
            processes.insert(
                next.clone(),
                json!({"serviceName": service_of(record), "tags": tags(&others)}),
            );
            next
        });
        spans.push(span(&trace_id, process_id, record));
    }
    json!({
        "traceID": trace_id,
        "spans": spans,
        "processes": processes,
        "warnings": null,
    })
}

fn span(trace_id: &str, process_id: &str, record: &Record) -> Value {
    let span = &record.otlp();
    let mut references = Vec::new();
    if !span.parent_span_id.is_empty() {
        references.push(json!({
            "refType": "CHILD_OF",
            "traceID": trace_id,
            "spanID": hex(&span.parent_span_id),
        }));
    }
    for link in &span.links {
        references.push(json!({
            "refType": "FOLLOWS_FROM",
            "traceID": hex(&link.trace_id),
            "spanID": hex(&link.span_id),
        }));
    }
    let mut span_tags = tags(&span.attributes);
    if let Some(kind) = kind_name(span.kind) {
        span_tags.push(string_tag("span.kind", kind));
    }
    if let Some(scope) = Some(record.scope()).filter(|s| !s.name.is_empty()) {
        span_tags.push(string_tag("otel.scope.name", &scope.name));
        if !scope.version.is_empty() {
            span_tags.push(string_tag("otel.scope.version", &scope.version));
        }
    }
    if let Some(status) = &span.status {
        match status.code {
            1 => span_tags.push(string_tag("otel.status_code", "OK")),
            STATUS_ERROR => {
                span_tags.push(string_tag("otel.status_code", "ERROR"));
                span_tags.push(json!({"key": "error", "type": "bool", "value": true}));
            }
            _ => {}
        }
        if !status.message.is_empty() {
            span_tags.push(string_tag("otel.status_description", &status.message));
        }
    }
    let logs: Vec<Value> = span
        .events
        .iter()
        .map(|event| {
            let mut fields = vec![string_tag("event", &event.name)];
            fields.extend(tags(&event.attributes));
            json!({"timestamp": event.time_unix_nano / 1000, "fields": fields})
        })
        .collect();
    let start = span.start_time_unix_nano / 1000;
    let duration = span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano)
        / 1000;
    json!({
        "traceID": trace_id,
        "spanID": hex(&span.span_id),
        "flags": span.flags & 0xff,
        "operationName": span.name,
        "references": references,
        "startTime": start,
        "duration": duration,
        "tags": span_tags,
        "logs": logs,
        "processID": process_id,
        "warnings": null,
    })
}

/// The spans of a trace regrouped as OTLP `ResourceSpans`, each resource and
/// scope once.
pub fn resource_spans(records: &[Record]) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut resources: HashMap<Vec<u8>, usize> = HashMap::new();
    for record in records {
        let r = *resources
            .entry(record.resource.encode_to_vec())
            .or_insert_with(|| {
                out.push(ResourceSpans {
                    resource: Some((*record.resource).clone()),
                    ..Default::default()
                });
                out.len() - 1
            });
        let scopes = &mut out[r].scope_spans;
        let scope = record.scope();
        let same = |s: &&mut ScopeSpans| s.scope.as_ref() == Some(&*scope);
        match scopes.iter_mut().find(|s| same(s)) {
            Some(found) => found.spans.push(record.otlp()),
            None => scopes.push(ScopeSpans {
                scope: Some(scope.into_owned()),
                spans: vec![record.otlp()],
                schema_url: String::new(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::store::{Body, Lines};
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};
    use std::sync::Arc;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    /// An OTLP span in Jaeger's shape: typed tags, the parent as CHILD_OF,
    /// a link as FOLLOWS_FROM, an event as a log, the derived tags, times
    /// in microseconds, the resource as the process.
    #[test]
    fn otlp_span_in_jaeger_shape() {
        use any_value::Value as V;
        let resource = Arc::new(Resource {
            attributes: vec![
                kv("service.name", V::StringValue("svc".into())),
                kv("host", V::StringValue("h".into())),
            ],
            ..Default::default()
        });
        let scope = Arc::new(InstrumentationScope {
            name: "lib".into(),
            version: "1".into(),
            ..Default::default()
        });
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "op".into(),
            kind: 2,
            start_time_unix_nano: 5_000_000,
            end_time_unix_nano: 7_500_000,
            attributes: vec![
                kv("s", V::StringValue("<b>".into())),
                kv("i", V::IntValue(7)),
                kv("f", V::DoubleValue(1.5)),
                kv("b", V::BoolValue(true)),
            ],
            events: vec![span::Event {
                time_unix_nano: 6_000_000,
                name: "exception".into(),
                ..Default::default()
            }],
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![8; 8],
                ..Default::default()
            }],
            status: Some(Status {
                code: 2,
                message: "bad".into(),
            }),
            flags: 0x301,
            ..Default::default()
        };
        let trace = trace(
            &[1; 16],
            &[Record {
                resource,
                body: Body::Otlp {
                    span: Box::new(span),
                    scope,
                },
                lines: Lines::default(),
            }],
        );
        let s = &trace["spans"][0];
        assert_eq!(s["processID"], "p1");
        assert_eq!(
            trace["processes"]["p1"],
            json!({"serviceName": "svc", "tags": [{"key": "host", "type": "string", "value": "h"}]})
        );
        assert_eq!(
            (
                s["startTime"].as_u64(),
                s["duration"].as_u64(),
                s["flags"].as_u64()
            ),
            (Some(5000), Some(2500), Some(1))
        );
        assert_eq!(
            s["references"][0],
            json!({"refType": "CHILD_OF", "traceID": hex(&[1; 16]), "spanID": hex(&[3; 8])})
        );
        assert_eq!(s["references"][1]["refType"], "FOLLOWS_FROM");
        assert_eq!(
            s["logs"][0],
            json!({"timestamp": 6000, "fields": [{"key": "event", "type": "string", "value": "exception"}]})
        );
        let tags: Vec<(String, String)> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_string(),
                    t["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected = [
            ("s", "string"),
            ("i", "int64"),
            ("f", "float64"),
            ("b", "bool"),
            ("span.kind", "string"),
            ("otel.scope.name", "string"),
            ("otel.scope.version", "string"),
            ("otel.status_code", "string"),
            ("error", "bool"),
            ("otel.status_description", "string"),
        ];
        assert_eq!(tags, expected.map(|(k, t)| (k.to_string(), t.to_string())));
    }
}
