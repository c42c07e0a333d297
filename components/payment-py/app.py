"""The Payment Service (`payment-service`) in Python: the same service as
`components/payment` (Rust), compiled to a wasi:http component with
componentize-py against the same WIT world (`wit/`, world `service`).

A client cannot tell the two apart: same routes, statuses, JSON bodies and
spans. Only the resource attribute naming the language differs, which the
host reads from the component's `producers` section (see the README).

| route | answer |
|---|---|
| `GET /health` | 200 `{"status":"ok"}` |
| `POST /payments` | 200 authorized, 402 declined (fraud), 422 invalid payment |

Also 404 (no route), 405 (wrong method), 413 (body over 64 KiB), 400
(unreadable body), 415 (content type not JSON). Span: `process_payment` under
the host's SERVER span. Every failure maps to its status in `Refusal.status`
and `Fraud`, as in the Rust crate's `Failure::into_response`.

Build: `cargo xtask build` (it installs the pinned componentize-py into a venv
under the target directory); output `target/wasm32-wasip2/release/payment-py.wasm`.

JSON syntax errors are refused the same way (422, "request body is not valid
JSON: ...") but their detail comes from Python's parser, not serde_json's.
"""

import json
import math

import wit_world
from componentize_py_types import Err, Ok
from wit_world.exports import service_info
from wit_world.imports import random, tracing, types
from wit_world.imports.streams import StreamError_Closed

# The service identity the host reports; the version follows the Rust
# workspace's (`Cargo.toml` `[workspace.package] version`).
SERVICE_NAME = "payment-service"
SERVICE_VERSION = "0.1.0"
# Amounts above this are declined as suspected fraud.
FRAUD_THRESHOLD = 10_000.0
# The message a declined payment carries, word for word.
FRAUD_MESSAGE = "payment declined: suspected fraud"
# The largest payment body read; a larger one is refused with 413.
MAX_PAYMENT_BODY = 64 * 1024
# serde_json's nesting limit, so that both services refuse the same bodies.
MAX_DEPTH = 128


class Refusal(Exception):
    """A request refused for what it is; `status` is its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Fraud(Exception):
    """A payment declined as suspected fraud (402)."""


class IncomingHandler(wit_world.exports.IncomingHandler):
    def handle(self, request: types.IncomingRequest, out: types.ResponseOutparam) -> None:
        try:
            status, body = route(Request(request))
        except Refusal as refusal:
            status, body = refusal.status, error_body(refusal.message)
        except Fraud:
            status, body = 402, error_body(FRAUD_MESSAGE)
        respond_json(out, status, body)


class ServiceInfo(wit_world.exports.ServiceInfo):
    def describe(self) -> service_info.Info:
        # It calls nothing, so it asks for no outbound origin.
        return service_info.Info(name=SERVICE_NAME, version=SERVICE_VERSION, outbound=[])


def error_body(message: str) -> dict:
    return {"error": message, "trace_id": tracing.current_span_context().trace_id}


def route(request: "Request") -> tuple:
    if request.path == "/health":
        tracing.set_route("/health")
        request.require_method("GET")
        return 200, {"status": "ok"}
    if request.path == "/payments":
        tracing.set_route("/payments")
        request.require_method("POST")
        return process_payment(request)
    raise Refusal(404, f"no route for `{request.path}`")


def process_payment(request: "Request") -> tuple:
    body = request.read_body(MAX_PAYMENT_BODY)
    with tracing.Span("process_payment", tracing.SpanKind.INTERNAL, []) as span:
        content_type = request.header("content-type")
        if not is_json_content_type(content_type):
            why = f"content-type `{content_type or ''}` is not JSON: send `application/json`"
            fail(span, "UnsupportedMediaType", why)
            raise Refusal(415, why)
        try:
            payment = parse_object(body)
            order_id = string_field(payment, "order_id")
            set_attribute(span, "payment.order_id", tracing.Value_String(order_id))
            customer_id = string_field(payment, "customer_id")
            set_attribute(span, "payment.customer_id", tracing.Value_String(customer_id))
            amount = positive_number(payment, "amount")
            set_attribute(span, "payment.amount", tracing.Value_F64(amount))
        except Invalid as invalid:
            fail(span, "ValidationError", str(invalid))
            raise Refusal(422, str(invalid))
        if amount > FRAUD_THRESHOLD:
            set_attribute(span, "payment.fraud_threshold", tracing.Value_F64(FRAUD_THRESHOLD))
            fail(span, "FraudSuspected", FRAUD_MESSAGE)
            raise Fraud()
        payment_id = f"pay_{random.get_random_u64():016x}"
        set_attribute(span, "payment.id", tracing.Value_String(payment_id))
        span.add_event(
            "payment.authorized",
            [tracing.KeyValue("payment.id", tracing.Value_String(payment_id))],
        )
    return 200, {"payment_id": payment_id, "status": "authorized"}


def set_attribute(span: tracing.Span, key: str, value: tracing.Value) -> None:
    span.set_attributes([tracing.KeyValue(key, value)])


def fail(span: tracing.Span, exception_type: str, message: str) -> None:
    """Records an `exception` event and marks the span as failed."""
    span.record_exception(exception_type, message, None)
    span.set_status(tracing.Status_Error(message))


# --- HTTP over wasi:http (the Rust crate's `otel_guest::http`) -------------

METHODS = {
    types.Method_Get: "GET",
    types.Method_Head: "HEAD",
    types.Method_Post: "POST",
    types.Method_Put: "PUT",
    types.Method_Delete: "DELETE",
    types.Method_Connect: "CONNECT",
    types.Method_Options: "OPTIONS",
    types.Method_Trace: "TRACE",
    types.Method_Patch: "PATCH",
}


class Request:
    """An incoming request, with its body not yet read."""

    def __init__(self, request: types.IncomingRequest):
        method = request.method()
        if isinstance(method, types.Method_Other):
            self.method = method.value
        else:
            self.method = METHODS[type(method)]
        self.path = (request.path_with_query() or "/").split("?", 1)[0]
        with request.headers() as headers:
            self.headers = headers.entries()
        try:
            self.body = request.consume()
        except Err:
            self.body = None

    def require_method(self, allowed: str) -> None:
        if self.method != allowed:
            raise Refusal(405, f"method `{self.method}` not allowed; use {allowed}")

    def header(self, name: str):
        """The first value of header `name` (case-insensitive), if UTF-8."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return None
        return None

    def read_body(self, limit: int) -> bytes:
        """Reads the whole body, refusing more than `limit` bytes (413)."""
        if self.body is None:
            return b""
        body, self.body = self.body, None
        try:
            stream = body.stream()
        except Err:
            raise Refusal(400, "body stream already taken")
        data = bytearray()
        with stream:
            while True:
                try:
                    chunk = stream.blocking_read(64 * 1024)
                except Err as error:
                    if isinstance(error.value, StreamError_Closed):
                        break
                    raise Refusal(400, error.value.value.to_debug_string())
                if len(data) + len(chunk) > limit:
                    raise Refusal(413, f"request body larger than {limit} bytes")
                data.extend(chunk)
        return bytes(data)


def respond_json(out: types.ResponseOutparam, status: int, body: dict) -> None:
    """Sends `status` with `body` as compact `application/json`, keys sorted
    as serde_json writes them."""
    data = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    headers = types.Fields.from_list(
        [("content-type", b"application/json"), ("content-length", str(len(data)).encode())]
    )
    response = types.OutgoingResponse(headers)
    response.set_status_code(status)
    outgoing = response.body()
    types.ResponseOutparam.set(out, Ok(response))
    try:
        with outgoing.write() as stream:
            # `blocking-write-and-flush` takes at most 4096 bytes a call.
            for start in range(0, len(data), 4096):
                stream.blocking_write_and_flush(data[start : start + 4096])
    except Err:
        pass  # A client that went away is not the service's failure.
    types.OutgoingBody.finish(outgoing, None)


# --- Strict JSON (the Rust crate's `otel_guest::json`) ---------------------


class Invalid(Exception):
    """A body that breaks a rule; the message says which (422)."""


def is_json_content_type(content_type) -> bool:
    """Absent, `application/json`, or any `application/...+json` type."""
    if content_type is None:
        return True
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or (
        essence.startswith("application/") and essence.endswith("+json")
    )


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise Invalid(f"request body is not valid JSON: duplicate key `{key}`")
        seen[key] = value
    return seen


def _no_constant(name):
    # JSON has no NaN or Infinity; Python's parser accepts them unless told.
    raise ValueError(f"expected value, got `{name}`")


def _finite(text):
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _integer(text):
    # serde_json keeps integers that fit 64 bits and reads others as floats.
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    return _finite(text)


def _check(value, depth: int = 1) -> None:
    """Refuses what serde_json refuses and Python's parser accepts: nesting
    deeper than serde_json's limit and unpaired surrogates (which are not
    UTF-8 and could not cross the component boundary)."""
    if depth > MAX_DEPTH:
        raise Invalid("request body is not valid JSON: recursion limit exceeded")
    if isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise Invalid("request body is not valid JSON: lone surrogate in string")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def parse_object(body: bytes) -> dict:
    """Parses `body` as one JSON object, refusing duplicate keys at any depth."""
    if not body:
        raise Invalid("request body is empty: expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Invalid(
            f"request body is not valid UTF-8: invalid utf-8 sequence of "
            f"{error.end - error.start} bytes from index {error.start}"
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_integer,
        )
    except Invalid:
        raise
    except RecursionError:
        raise Invalid("request body is not valid JSON: recursion limit exceeded")
    except ValueError as error:
        raise Invalid(f"request body is not valid JSON: {error}")
    _check(value)
    if not isinstance(value, dict):
        raise Invalid(f"request body must be a JSON object, got {type_name(value)}")
    return value


def type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def show(value) -> str:
    """A value as serde_json's `Display` writes it: compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def field(obj: dict, name: str):
    if name not in obj:
        raise Invalid(f"missing field `{name}`")
    return obj[name]


def string_field(obj: dict, name: str) -> str:
    """A non-empty string field."""
    value = field(obj, name)
    if not isinstance(value, str):
        raise Invalid(f"field `{name}` must be a string, got {type_name(value)} `{show(value)}`")
    if not value.strip():
        raise Invalid(f"field `{name}` must not be empty")
    return value


def positive_number(obj: dict, name: str) -> float:
    """A finite number field greater than zero, as a float."""
    value = field(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"field `{name}` must be a number, got {type_name(value)} `{show(value)}`")
    number = float(value)
    if number <= 0.0:
        raise Invalid(f"field `{name}` must be greater than 0, got {show(value)}")
    return number
