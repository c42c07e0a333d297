//! Strict reading of JSON request bodies.
//!
//! Each check names the field and the value that failed it, so that a 422
//! response and its span say exactly what to fix.

use serde_json::{Map, Value};

/// A JSON object taken from a request body.
pub struct Object(Map<String, Value>);

/// Parses `body` as one JSON object.
pub fn parse_object(body: &[u8]) -> Result<Object, String> {
    if body.is_empty() {
        return Err("request body is empty: expected a JSON object".to_string());
    }
    let text =
        std::str::from_utf8(body).map_err(|e| format!("request body is not valid UTF-8: {e}"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Object(map)),
        Ok(other) => Err(format!(
            "request body must be a JSON object, got {}",
            type_name(&other)
        )),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
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
