//! Strict reading of JSON request bodies.
//!
//! Each check names the field and the value that failed it, so that a 422
//! response and its span say exactly what to fix.

use serde_json::{Map, Value};

/// A JSON object taken from a request body.
pub struct Object(Map<String, Value>);

/// Whether a request's `content-type` is JSON: absent (curl and many
/// clients omit it), `application/json`, or any `+json` type.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(value) => {
            let essence = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        }
    }
}

/// Parses `body` as one JSON object. Refuses duplicate keys at any depth:
/// which of two values a parser keeps differs between parsers, and a
/// request that means two things is not one to act on.
pub fn parse_object(body: &[u8]) -> Result<Object, String> {
    if body.is_empty() {
        return Err("request body is empty: expected a JSON object".to_string());
    }
    let text =
        std::str::from_utf8(body).map_err(|e| format!("request body is not valid UTF-8: {e}"))?;
    let mut check = serde_json::Deserializer::from_str(text);
    if let Err(e) = serde::de::Deserializer::deserialize_any(&mut check, NoDuplicates) {
        return Err(format!("request body is not valid JSON: {e}"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Object(map)),
        Ok(other) => Err(format!(
            "request body must be a JSON object, got {}",
            type_name(&other)
        )),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
    }
}

/// A visitor that walks a whole JSON document and fails on the first
/// object with a repeated key.
struct NoDuplicates;

impl<'de> serde::de::Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Object {
    fn field(&self, name: &str) -> Result<&Value, String> {
        self.0
            .get(name)
            .ok_or_else(|| format!("missing field `{name}`"))
    }

    /// A non-empty string field.
    pub fn string(&self, name: &str) -> Result<String, String> {
        match self.field(name)? {
            Value::String(s) if s.trim().is_empty() => {
                Err(format!("field `{name}` must not be empty"))
            }
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "field `{name}` must be a string, got {} `{other}`",
                type_name(other)
            )),
        }
    }

    /// An integer field no smaller than `min`.
    pub fn integer_at_least(&self, name: &str, min: i64) -> Result<i64, String> {
        let value = self.field(name)?;
        let Some(n) = value.as_i64() else {
            return Err(format!(
                "field `{name}` must be an integer, got {} `{value}`",
                type_name(value)
            ));
        };
        if n < min {
            return Err(format!("field `{name}` must be at least {min}, got {n}"));
        }
        Ok(n)
    }

    /// A finite number field greater than zero.
    pub fn positive_number(&self, name: &str) -> Result<f64, String> {
        let value = self.field(name)?;
        let Some(n) = value.as_f64().filter(|n| n.is_finite()) else {
            return Err(format!(
                "field `{name}` must be a number, got {} `{value}`",
                type_name(value)
            ));
        };
        if n <= 0.0 {
            return Err(format!(
                "field `{name}` must be greater than 0, got {value}"
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of bad body is refused with a message naming the problem.
    #[test]
    fn bad_bodies_say_why() {
        let err = |body: &[u8]| parse_object(body).err().expect("refused");
        assert!(err(b"").contains("empty"));
        assert!(err(b"{").contains("not valid JSON"));
        assert!(err(b"[1]").contains("got an array"));
        assert!(err(b"\xff\xfe").contains("UTF-8"));
        assert!(err(br#"{"a":1,"a":2}"#).contains("duplicate key `a`"));
        assert!(err(br#"{"a":{"b":1,"b":1}}"#).contains("duplicate key `b`"));
        assert!(err(b"NaN").contains("not valid JSON"));
        assert!(err(br#"{"a":Infinity}"#).contains("not valid JSON"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(err(deep.as_bytes()).contains("recursion limit"));
    }

    /// JSON content types are accepted, others refused; none is accepted.
    #[test]
    fn content_types() {
        assert!(is_json_content_type(None));
        assert!(is_json_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(is_json_content_type(Some("application/vnd.api+json")));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(Some(
            "application/x-www-form-urlencoded"
        )));
    }

    /// Field checks accept good values and name the field and value otherwise.
    #[test]
    fn field_checks() {
        let obj = parse_object(
            br#"{"s":"x","blank":" ","n":2,"f":1.5,"neg":-1,"zero":0,"t":"2","big":1e400}"#,
        );
        // 1e400 overflows f64: serde_json refuses it as invalid JSON.
        assert!(obj.is_err());
        let obj = parse_object(br#"{"s":"x","blank":" ","n":2,"f":1.5,"neg":-1,"zero":0,"t":"2"}"#)
            .expect("object");
        assert_eq!(obj.string("s").unwrap(), "x");
        assert!(
            obj.string("blank")
                .unwrap_err()
                .contains("must not be empty")
        );
        assert!(
            obj.string("n")
                .unwrap_err()
                .contains("must be a string, got a number `2`")
        );
        assert!(
            obj.string("absent")
                .unwrap_err()
                .contains("missing field `absent`")
        );
        assert_eq!(obj.integer_at_least("n", 1).unwrap(), 2);
        assert!(
            obj.integer_at_least("f", 1)
                .unwrap_err()
                .contains("must be an integer")
        );
        assert!(
            obj.integer_at_least("zero", 1)
                .unwrap_err()
                .contains("at least 1, got 0")
        );
        assert!(
            obj.integer_at_least("t", 1)
                .unwrap_err()
                .contains("a string `\"2\"`")
        );
        assert_eq!(obj.positive_number("f").unwrap(), 1.5);
        assert!(
            obj.positive_number("neg")
                .unwrap_err()
                .contains("greater than 0, got -1")
        );
        assert!(
            obj.positive_number("zero")
                .unwrap_err()
                .contains("greater than 0")
        );
    }
}
