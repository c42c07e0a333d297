//! The Order API (`order-api`): validates an order, saves it, and charges it
//! through the Payment Service.
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | 200 `{"status":"ok"}` |
//! | `POST /orders` | 201 confirmed, 402 payment declined, 422 invalid order, 502/504 payment service failed |
//!
//! Spans: `validate_order` and `save_order` under the host's SERVER span; the
//! host adds the CLIENT span of the call to the Payment Service. Every
//! failure maps to its status in [`Failure::into_response`], the one place
//! that does.
//!
//! Metrics (through the host's `metrics` interface): `orders` by
//! `order.outcome` (`confirmed`, `fraud_rejected`, `invalid`,
//! `payment_failed`) and `order.amount`, the amount of every valid order,
//! by the same outcome.

use otel_guest::ServiceInfo;
use otel_guest::bindings::exports::wasi::http::incoming_handler::Guest;
use otel_guest::bindings::exports::wasm_otel::host::service_info;
use otel_guest::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use otel_guest::bindings::wasi::random::random::get_random_u64;
use otel_guest::http::{BaseUrl, Refusal, Request, post_json, respond_json};
use otel_guest::metrics;
use otel_guest::requests::{Order, decode_order, exception_type};
use otel_guest::trace::{Span, kv, set_route, set_server_attributes, trace_id};
use serde_json::{Value, json};

/// Where the Payment Service listens unless `PAYMENT_URL` says otherwise.
const DEFAULT_PAYMENT_URL: &str = "http://127.0.0.1:8001";
/// How long to wait for the Payment Service unless `PAYMENT_TIMEOUT_MS` says otherwise.
const DEFAULT_PAYMENT_TIMEOUT_MS: u64 = 5_000;
/// The largest order body read; a larger one is refused with 413.
const MAX_ORDER_BODY: usize = 64 * 1024;

struct OrderApi;

impl Guest for OrderApi {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut request = Request::from_wasi(request);
        let (status, body) = match route(&mut request) {
            Ok((status, body)) => (status, body),
            Err(failure) => failure.into_response(),
        };
        respond_json(out, status, &body);
    }
}

impl service_info::Guest for OrderApi {
    fn describe() -> ServiceInfo {
        ServiceInfo {
            name: "order-api".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // The one origin this service calls; the host grants it and
            // nothing else. A request cannot change it: it comes from the
            // environment the operator passed with `--env`.
            outbound: vec![payment_url()],
        }
    }
}

otel_guest::bindings::export!(OrderApi with_types_in otel_guest::bindings);

/// Everything that can go wrong with a request, and nothing else.
enum Failure {
    Refused(Refusal),
    Declined { order_id: String, reason: String },
    PaymentFailed { order_id: String, reason: String },
    PaymentTimeout { order_id: String, reason: String },
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

impl Failure {
    /// The status and JSON body for each failure.
    fn into_response(self) -> (u16, Value) {
        let trace_id = trace_id();
        match self {
            Failure::Refused(refusal) => (
                refusal.status(),
                json!({"error": refusal.message(), "trace_id": trace_id}),
            ),
            Failure::Declined { order_id, reason } => (
                402,
                json!({"order_id": order_id, "status": "rejected", "error": reason, "trace_id": trace_id}),
            ),
            Failure::PaymentFailed { order_id, reason } => {
                set_server_attributes(&[kv("error.type", "payment_unavailable")]);
                (
                    502,
                    json!({"order_id": order_id, "status": "failed", "error": reason, "trace_id": trace_id}),
                )
            }
            Failure::PaymentTimeout { order_id, reason } => {
                set_server_attributes(&[kv("error.type", "payment_timeout")]);
                (
                    504,
                    json!({"order_id": order_id, "status": "failed", "error": reason, "trace_id": trace_id}),
                )
            }
        }
    }
}

fn route(request: &mut Request) -> Result<(u16, Value), Failure> {
    match request.path.as_str() {
        "/health" => {
            set_route("/health");
            request.require_method("GET")?;
            Ok((200, json!({"status": "ok"})))
        }
        "/orders" => {
            set_route("/orders");
            request.require_method("POST")?;
            create_order(request)
        }
        other => Err(Refusal::NotFound(other.to_string()).into()),
    }
}

fn create_order(request: &mut Request) -> Result<(u16, Value), Failure> {
    let order = request
        .read_body(MAX_ORDER_BODY)
        .map_err(|refusal| Failure::from(Refusal::from(refusal)))
        .and_then(|body| validate_order(&body, request.header("content-type")))
        .inspect_err(|_| count_order(OUTCOME_INVALID, None))?;
    let order_id = save_order(&order);
    let charged = charge(&order_id, &order);
    let outcome = match &charged {
        Ok(_) => OUTCOME_CONFIRMED,
        Err(Failure::Declined { .. }) => OUTCOME_FRAUD_REJECTED,
        Err(_) => OUTCOME_PAYMENT_FAILED,
    };
    count_order(outcome, Some(order.amount));
    let payment_id = charged?;
    Ok((
        201,
        json!({
            "order_id": order_id,
            "status": "confirmed",
            "payment_id": payment_id,
            "trace_id": trace_id(),
        }),
    ))
}

fn validate_order(body: &[u8], content_type: Option<&str>) -> Result<Order, Failure> {
    let span = Span::start("validate_order", &[]);
    decode_order(content_type, body, |key, value| {
        span.set_attribute(key, value)
    })
    .map_err(|refusal| {
        span.fail(exception_type(&refusal), &refusal.message());
        Failure::from(refusal)
    })
}

/// `order.outcome` of an order charged.
const OUTCOME_CONFIRMED: &str = "confirmed";
/// `order.outcome` of an order the payment service declined as fraud.
const OUTCOME_FRAUD_REJECTED: &str = "fraud_rejected";
/// `order.outcome` of an order refused before it was saved.
const OUTCOME_INVALID: &str = "invalid";
/// `order.outcome` of an order whose payment failed (not declined).
const OUTCOME_PAYMENT_FAILED: &str = "payment_failed";

/// Counts an order by `outcome`, and records its amount when it was valid.
fn count_order(outcome: &str, amount: Option<f64>) {
    let attributes = [kv("order.outcome", outcome)];
    metrics::add(
        "orders",
        "{order}",
        "Orders received, by outcome.",
        1,
        &attributes,
    );
    if let Some(amount) = amount {
        metrics::record(
            "order.amount",
            "{USD}",
            "The amount of each valid order, by outcome.",
            amount,
            &attributes,
        );
    }
}

/// Stands in for a database write: the span is what a real one would record.
fn save_order(order: &Order) -> String {
    let order_id = format!("ord_{:016x}", get_random_u64());
    let span = Span::start(
        "save_order",
        &[
            kv("order.id", order_id.as_str()),
            kv("db.system.name", "in-memory"),
            kv("db.operation.name", "INSERT"),
            kv("db.collection.name", "orders"),
        ],
    );
    span.add_event(
        "order.saved",
        &[
            kv("order.id", order_id.as_str()),
            kv("order.item", order.item.as_str()),
            kv("order.quantity", order.quantity),
        ],
    );
    order_id
}

/// The Payment Service's base URL: `PAYMENT_URL`, else the default.
fn payment_url() -> String {
    std::env::var("PAYMENT_URL").unwrap_or_else(|_| DEFAULT_PAYMENT_URL.to_string())
}

fn charge(order_id: &str, order: &Order) -> Result<String, Failure> {
    let payment_url = payment_url();
    let timeout_ms = std::env::var("PAYMENT_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(DEFAULT_PAYMENT_TIMEOUT_MS);
    let failed = |reason: String| Failure::PaymentFailed {
        order_id: order_id.to_string(),
        reason,
    };
    let base = BaseUrl::parse(&payment_url)
        .map_err(|why| failed(format!("PAYMENT_URL is invalid: {why}")))?;
    let request = json!({
        "order_id": order_id,
        "customer_id": order.customer_id,
        "amount": order.amount,
    });
    let response = post_json(
        &base,
        "/payments",
        request.to_string().as_bytes(),
        timeout_ms,
    )
    .map_err(|e| {
        let reason = format!("payment service at {payment_url} failed: {e}");
        if e.is_timeout() {
            Failure::PaymentTimeout {
                order_id: order_id.to_string(),
                reason,
            }
        } else {
            failed(reason)
        }
    })?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    match response.status {
        200 | 201 => answer
            .get("payment_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| failed("payment service answered without a payment_id".to_string())),
        402 => Err(Failure::Declined {
            order_id: order_id.to_string(),
            reason: answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("payment declined")
                .to_string(),
        }),
        status => Err(failed(format!(
            "payment service answered {status}: {}",
            String::from_utf8_lossy(&response.body)
        ))),
    }
}
