//! The Payment Service (`payment-service`): authorizes a payment, or declines
//! it as suspected fraud above a threshold.
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | 200 `{"status":"ok"}` |
//! | `POST /payments` | 200 authorized, 402 declined (fraud), 422 invalid payment |
//!
//! Span: `process_payment` under the host's SERVER span. Every failure maps
//! to its status in [`Failure::into_response`].

use otel_guest::ServiceInfo;
use otel_guest::bindings::exports::wasi::http::incoming_handler::Guest;
use otel_guest::bindings::exports::wasm_otel::host::service_info;
use otel_guest::bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use otel_guest::bindings::wasi::random::random::get_random_u64;
use otel_guest::http::{Refusal, Request, respond_json};
use otel_guest::metrics;
use otel_guest::requests::{decode_payment, exception_type};
use otel_guest::trace::{Span, kv, set_route, trace_id};
use serde_json::{Value, json};

/// Amounts above this are declined as suspected fraud.
const FRAUD_THRESHOLD: f64 = 10_000.0;
/// The message a declined payment carries, word for word.
const FRAUD_MESSAGE: &str = "payment declined: suspected fraud";
/// The largest payment body read; a larger one is refused with 413.
const MAX_PAYMENT_BODY: usize = 64 * 1024;

struct PaymentService;

impl Guest for PaymentService {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut request = Request::from_wasi(request);
        let (status, body) = match route(&mut request) {
            Ok((status, body)) => (status, body),
            Err(failure) => failure.into_response(),
        };
        respond_json(out, status, &body);
    }
}

impl service_info::Guest for PaymentService {
    fn describe() -> ServiceInfo {
        ServiceInfo {
            name: "payment-service".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // It calls nothing.
            outbound: Vec::new(),
        }
    }
}

otel_guest::bindings::export!(PaymentService with_types_in otel_guest::bindings);

/// Everything that can go wrong with a request, and nothing else.
enum Failure {
    Refused(Refusal),
    Fraud,
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
            Failure::Fraud => (402, json!({"error": FRAUD_MESSAGE, "trace_id": trace_id})),
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
        "/payments" => {
            set_route("/payments");
            request.require_method("POST")?;
            process_payment(request)
        }
        other => Err(Refusal::NotFound(other.to_string()).into()),
    }
}

/// Counts a payment by `payment.outcome` (`authorized`, `fraud_declined`)
/// through the host's `metrics` interface.
fn count_payment(outcome: &str) {
    metrics::add(
        "payments",
        "{payment}",
        "Payments processed, by outcome.",
        1,
        &[kv("payment.outcome", outcome)],
    );
}

fn process_payment(request: &mut Request) -> Result<(u16, Value), Failure> {
    let body = request.read_body(MAX_PAYMENT_BODY).map_err(Refusal::from)?;
    let span = Span::start("process_payment", &[]);
    let content_type = request.header("content-type");
    let payment = decode_payment(content_type, &body, |key, value| {
        span.set_attribute(key, value)
    })
    .map_err(|refusal| {
        span.fail(exception_type(&refusal), &refusal.message());
        Failure::from(refusal)
    })?;
    let amount = payment.amount;
    if amount > FRAUD_THRESHOLD {
        span.set_attribute("payment.fraud_threshold", FRAUD_THRESHOLD);
        span.fail("FraudSuspected", FRAUD_MESSAGE);
        count_payment("fraud_declined");
        return Err(Failure::Fraud);
    }
    count_payment("authorized");
    let payment_id = format!("pay_{:016x}", get_random_u64());
    span.set_attribute("payment.id", payment_id.as_str());
    span.add_event(
        "payment.authorized",
        &[kv("payment.id", payment_id.as_str())],
    );
    Ok((
        200,
        json!({"payment_id": payment_id, "status": "authorized"}),
    ))
}
