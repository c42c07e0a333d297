//! The request bodies of the Order API (`POST /orders`) and the Payment
//! Service (`POST /payments`), decoded and validated.
//!
//! Pure code, no host call: it compiles natively, so the same decoding that
//! runs in the components is unit-tested and fuzzed (see `fuzz/`). Each
//! field accepted is reported to `accepted` as it is read, so a component can
//! put it on its span before a later field fails.

use crate::http::Refusal;
use crate::json::{is_json_content_type, parse_object};
use crate::trace::Value;

/// A valid order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Who orders (non-blank).
    pub customer_id: String,
    /// What is ordered (non-blank).
    pub item: String,
    /// How many, at least 1.
    pub quantity: i64,
    /// The total, finite and greater than 0.
    pub amount: f64,
}

/// A valid payment.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// The order it pays (non-blank).
    pub order_id: String,
    /// Who pays (non-blank).
    pub customer_id: String,
    /// How much, finite and greater than 0.
    pub amount: f64,
}

/// The exception type a span records for a refused body: `UnsupportedMediaType`
/// for a content type that is not JSON, `ValidationError` otherwise.
pub fn exception_type(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::UnsupportedMediaType(_) => "UnsupportedMediaType",
        _ => "ValidationError",
    }
}

/// Refuses a `content-type` that is not JSON (415).
fn require_json(content_type: Option<&str>) -> Result<(), Refusal> {
    if is_json_content_type(content_type) {
        Ok(())
    } else {
        Err(Refusal::UnsupportedMediaType(format!(
            "content-type `{}` is not JSON: send `application/json`",
            content_type.unwrap_or_default()
        )))
    }
}

/// Decodes an order: a JSON object with `customer_id`, `item` (non-blank
/// strings), `quantity` (integer ≥ 1) and `amount` (number > 0). Reports
/// `order.customer_id`, `order.item`, `order.quantity`, `order.amount` to
/// `accepted` in that order, each once it is valid. A refusal is 415 or 422.
pub fn decode_order(
    content_type: Option<&str>,
    body: &[u8],
    mut accepted: impl FnMut(&'static str, Value),
) -> Result<Order, Refusal> {
    require_json(content_type)?;
    let decoded = (|| {
        let object = parse_object(body)?;
        let customer_id = object.string("customer_id")?;
        accepted("order.customer_id", Value::String(customer_id.clone()));
        let item = object.string("item")?;
        accepted("order.item", Value::String(item.clone()));
        let quantity = object.integer_at_least("quantity", 1)?;
        accepted("order.quantity", Value::S64(quantity));
        let amount = object.positive_number("amount")?;
        accepted("order.amount", Value::F64(amount));
        Ok(Order {
            customer_id,
            item,
            quantity,
            amount,
        })
    })();
    decoded.map_err(Refusal::Invalid)
}

/// Decodes a payment: a JSON object with `order_id`, `customer_id`
/// (non-blank strings) and `amount` (number > 0). Reports
/// `payment.order_id`, `payment.customer_id`, `payment.amount` to `accepted`
/// in that order, each once it is valid. A refusal is 415 or 422.
pub fn decode_payment(
    content_type: Option<&str>,
    body: &[u8],
    mut accepted: impl FnMut(&'static str, Value),
) -> Result<Payment, Refusal> {
    require_json(content_type)?;
    let decoded = (|| {
        let object = parse_object(body)?;
        let order_id = object.string("order_id")?;
        accepted("payment.order_id", Value::String(order_id.clone()));
        let customer_id = object.string("customer_id")?;
        accepted("payment.customer_id", Value::String(customer_id.clone()));
        let amount = object.positive_number("amount")?;
        accepted("payment.amount", Value::F64(amount));
        Ok(Payment {
            order_id,
            customer_id,
            amount,
        })
    })();
    decoded.map_err(Refusal::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid order decodes and reports its four attributes in order; a bad
    /// field is a 422 naming it, after the fields before it were reported;
    /// a content type that is not JSON is a 415 before anything is read.
    #[test]
    fn orders_decode_or_say_why() {
        let mut keys = Vec::new();
        let order = decode_order(
            Some("application/json"),
            br#"{"customer_id":"cust-42","item":"widget","quantity":3,"amount":59.97}"#,
            |key, _| keys.push(key),
        )
        .expect("valid");
        assert_eq!(
            order,
            Order {
                customer_id: "cust-42".into(),
                item: "widget".into(),
                quantity: 3,
                amount: 59.97
            }
        );
        assert_eq!(
            keys,
            [
                "order.customer_id",
                "order.item",
                "order.quantity",
                "order.amount"
            ]
        );

        let mut keys = Vec::new();
        let refusal = decode_order(
            None,
            br#"{"customer_id":"c","item":"i","quantity":0,"amount":1}"#,
            |key, _| keys.push(key),
        )
        .expect_err("quantity 0");
        assert_eq!(refusal.status(), 422);
        assert_eq!(exception_type(&refusal), "ValidationError");
        assert_eq!(
            refusal.message(),
            "field `quantity` must be at least 1, got 0"
        );
        assert_eq!(keys, ["order.customer_id", "order.item"]);

        let refusal =
            decode_order(Some("text/plain"), b"{}", |_, _| panic!("read")).expect_err("not JSON");
        assert_eq!(refusal.status(), 415);
        assert_eq!(exception_type(&refusal), "UnsupportedMediaType");
    }

    /// A payment decodes with its three attributes; a missing field is 422.
    #[test]
    fn payments_decode_or_say_why() {
        let mut keys = Vec::new();
        let payment = decode_payment(
            None,
            br#"{"order_id":"ord_1","customer_id":"c","amount":25000.0}"#,
            |key, _| keys.push(key),
        )
        .expect("valid");
        assert_eq!(payment.amount, 25000.0);
        assert_eq!(
            keys,
            ["payment.order_id", "payment.customer_id", "payment.amount"]
        );
        let refusal = decode_payment(None, br#"{"order_id":"o"}"#, |_, _| {}).expect_err("missing");
        assert_eq!(refusal.status(), 422);
        assert_eq!(refusal.message(), "missing field `customer_id`");
    }
}
