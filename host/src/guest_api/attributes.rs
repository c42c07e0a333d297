//! A span's attributes as the host holds them until the span ends: unique
//! keys, the last value set winning, within the `OTEL_*` limits; and the
//! semantic conventions' `exception` event, the one way it is written.

use opentelemetry::KeyValue;

use crate::telemetry::config::DEFAULT_COUNT_LIMIT;
use crate::telemetry::semconv;

/// How many attributes a span keeps and how long a string value may be
/// (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
#[derive(Debug, Clone, Copy)]
pub struct AttributeLimits {
    /// Attributes per span; the SDK's span limit is the same number.
    pub count: usize,
    /// Characters per string value, `None` for no limit.
    pub value_length: Option<usize>,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            count: DEFAULT_COUNT_LIMIT as usize,
            value_length: None,
        }
    }
}

impl AttributeLimits {
    /// Cuts string values (and each string of an array) to the length limit.
    pub fn truncate(&self, kv: KeyValue) -> KeyValue {
        use opentelemetry::{Array, StringValue, Value};
        let Some(max) = self.value_length else {
            return kv;
        };
        let cut = |s: &str| -> Option<String> {
            (s.chars().count() > max).then(|| s.chars().take(max).collect())
        };
        let value = match &kv.value {
            Value::String(s) => match cut(s.as_str()) {
                Some(short) => Value::from(short),
                None => return kv,
            },
            Value::Array(Array::String(items)) => Value::Array(Array::String(
                items
                    .iter()
                    .map(|item| {
                        StringValue::from(cut(item.as_str()).unwrap_or_else(|| item.to_string()))
                    })
                    .collect(),
            )),
            _ => return kv,
        };
        KeyValue::new(kv.key, value)
    }
}

/// Attributes with unique keys, in the order first set, within the limits:
/// memory stays bounded however many a guest sets.
#[derive(Debug)]
pub struct Attributes {
    pub(super) kvs: Vec<KeyValue>,
    limits: AttributeLimits,
    /// New keys refused at the count limit.
    dropped: u64,
}

impl Attributes {
    /// An empty set within `limits`.
    pub fn new(limits: AttributeLimits) -> Attributes {
        Attributes {
            kvs: Vec::new(),
            limits,
            dropped: 0,
        }
    }

    /// Sets `kv`, replacing any earlier value of its key.
    pub fn set(&mut self, kv: KeyValue) {
        let kv = self.limits.truncate(kv);
        if let Some(old) = self.kvs.iter_mut().find(|old| old.key == kv.key) {
            *old = kv;
        } else if self.kvs.len() < self.limits.count {
            self.kvs.push(kv);
        } else {
            self.dropped += 1;
        }
    }

    /// Sets each of `attributes`.
    pub fn extend(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        for kv in attributes {
            self.set(kv);
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.kvs.iter().any(|kv| kv.key.as_str() == key)
    }

    /// Writes the attributes to `span`. Those refused here are offered to
    /// the SDK past its (equal) limit, which counts them in the span's
    /// dropped-attributes count without storing them.
    pub(super) fn write_to(&mut self, span: &opentelemetry::trace::SpanRef<'_>) {
        span.set_attributes(std::mem::take(&mut self.kvs));
        for _ in 0..std::mem::take(&mut self.dropped) {
            span.set_attribute(KeyValue::new("dropped", false));
        }
    }
}

/// The attributes of the semantic conventions' `exception` event.
pub fn exception(
    exception_type: String,
    message: String,
    stacktrace: Option<String>,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::EXCEPTION_TYPE, exception_type),
        KeyValue::new(semconv::EXCEPTION_MESSAGE, message),
    ];
    if let Some(stacktrace) = stacktrace {
        attributes.push(KeyValue::new(semconv::EXCEPTION_STACKTRACE, stacktrace));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key set twice keeps its last value, in its first position.
    #[test]
    fn attributes_replace_by_key() {
        let mut attributes = Attributes::new(AttributeLimits::default());
        attributes.extend([
            KeyValue::new("a", 1),
            KeyValue::new("b", 2),
            KeyValue::new("a", 3),
        ]);
        assert_eq!(
            attributes.kvs,
            vec![KeyValue::new("a", 3), KeyValue::new("b", 2)]
        );
        assert!(attributes.contains("b") && !attributes.contains("c"));
    }

    /// Past the count limit new keys are counted, not kept; existing keys
    /// still update; strings are cut to the length limit.
    #[test]
    fn attributes_within_limits() {
        let limits = AttributeLimits {
            count: 2,
            value_length: Some(3),
        };
        let mut attributes = Attributes::new(limits);
        attributes.extend([
            KeyValue::new("a", "abcdef"),
            KeyValue::new("b", 1),
            KeyValue::new("c", 2),
            KeyValue::new("d", 3),
            KeyValue::new("b", 9),
        ]);
        assert_eq!(
            attributes.kvs,
            vec![KeyValue::new("a", "abc"), KeyValue::new("b", 9)]
        );
        assert_eq!(attributes.dropped, 2);
        let array = limits.truncate(KeyValue::new(
            "s",
            opentelemetry::Value::Array(
                vec![opentelemetry::StringValue::from("long"), "ok".into()].into(),
            ),
        ));
        assert_eq!(array.value.as_str(), "[\"lon\",\"ok\"]");
    }
}
