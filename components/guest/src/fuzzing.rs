//! The properties the fuzz targets `order_request` and `payment_request`
//! check (`fuzz/`), shared with the tests that replay their corpus
//! (`tests/fuzz_corpus.rs`), so that the corpus is a regression suite on
//! stable Rust. Each function panics when a property fails.
//!
//! An input is a request: its `content-type` on the first line, the body
//! after the first `\n`; without a `\n` there is no `content-type` and the
//! whole input is the body.

use serde_json::Value as Json;

use crate::http::Refusal;
use crate::json::is_json_content_type;
use crate::requests::{decode_order, decode_payment};
use crate::trace::Value;

/// Splits a fuzz input into `content-type` and body. A non-UTF-8 first line
/// is a header the guest cannot read, as `Request::header` gives `None`.
pub fn split_request(data: &[u8]) -> (Option<&str>, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (
            std::str::from_utf8(&data[..newline]).ok(),
            &data[newline + 1..],
        ),
        None => (None, data),
    }
}

/// The order decoder accepts exactly the valid orders, reports each field
/// as it accepts it, and refuses everything else with 415 or 422 and a
/// message.
pub fn order_request(data: &[u8]) {
    let (content_type, body) = split_request(data);
    let mut reported: Vec<(&'static str, Value)> = Vec::new();
    let decoded = decode_order(content_type, body, |key, value| reported.push((key, value)));
    let names = [
        "order.customer_id",
        "order.item",
        "order.quantity",
        "order.amount",
    ];
    match decoded {
        Ok(order) => {
            assert!(is_json_content_type(content_type));
            assert!(!order.customer_id.trim().is_empty());
            assert!(!order.item.trim().is_empty());
            assert!(order.quantity >= 1);
            assert!(order.amount.is_finite() && order.amount > 0.0);
            // What was accepted is what the body says, read independently.
            let object = reread(body);
            assert_eq!(object["customer_id"].as_str(), Some(&*order.customer_id));
            assert_eq!(object["item"].as_str(), Some(&*order.item));
            assert_eq!(object["quantity"].as_i64(), Some(order.quantity));
            assert_eq!(object["amount"].as_f64(), Some(order.amount));
            assert_eq!(reported.iter().map(|(k, _)| *k).collect::<Vec<_>>(), names);
            assert!(matches!(&reported[0].1, Value::String(s) if *s == order.customer_id));
            assert!(matches!(&reported[1].1, Value::String(s) if *s == order.item));
            assert!(matches!(reported[2].1, Value::S64(q) if q == order.quantity));
            assert!(matches!(reported[3].1, Value::F64(a) if a == order.amount));
        }
        Err(refusal) => refused(content_type, &refusal, &reported, &names),
    }
}

/// The payment decoder accepts exactly the valid payments, reports each
/// field as it accepts it, and refuses everything else with 415 or 422 and
/// a message.
pub fn payment_request(data: &[u8]) {
    let (content_type, body) = split_request(data);
    let mut reported: Vec<(&'static str, Value)> = Vec::new();
    let decoded = decode_payment(content_type, body, |key, value| reported.push((key, value)));
    let names = ["payment.order_id", "payment.customer_id", "payment.amount"];
    match decoded {
        Ok(payment) => {
            assert!(is_json_content_type(content_type));
            assert!(!payment.order_id.trim().is_empty());
            assert!(!payment.customer_id.trim().is_empty());
            assert!(payment.amount.is_finite() && payment.amount > 0.0);
            let object = reread(body);
            assert_eq!(object["order_id"].as_str(), Some(&*payment.order_id));
            assert_eq!(object["customer_id"].as_str(), Some(&*payment.customer_id));
            assert_eq!(object["amount"].as_f64(), Some(payment.amount));
            assert_eq!(reported.iter().map(|(k, _)| *k).collect::<Vec<_>>(), names);
            assert!(matches!(&reported[0].1, Value::String(s) if *s == payment.order_id));
            assert!(matches!(&reported[1].1, Value::String(s) if *s == payment.customer_id));
            assert!(matches!(reported[2].1, Value::F64(a) if a == payment.amount));
        }
        Err(refusal) => refused(content_type, &refusal, &reported, &names),
    }
}

/// An accepted body, parsed again by plain `serde_json`: it must be an object.
fn reread(body: &[u8]) -> serde_json::Map<String, Json> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(object)) => object,
        other => panic!("accepted a body serde_json reads as {other:?}"),
    }
}

/// A refusal is 415 exactly when the content type is not JSON (then no field
/// was read), else 422; it says why; the fields reported before it are a
/// proper prefix of the expected ones.
fn refused(
    content_type: Option<&str>,
    refusal: &Refusal,
    reported: &[(&'static str, Value)],
    names: &[&str],
) {
    let status = refusal.status();
    if is_json_content_type(content_type) {
        assert_eq!(status, 422, "{refusal:?}");
    } else {
        assert_eq!(status, 415, "{refusal:?}");
        assert!(reported.is_empty());
    }
    assert!(!refusal.message().is_empty());
    assert!(reported.len() < names.len());
    for ((key, _), name) in reported.iter().zip(names) {
        assert_eq!(key, name);
    }
}
