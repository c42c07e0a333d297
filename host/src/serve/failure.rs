//! What a failed guest means: the `exception` event's contents and
//! `error.type` from wasmtime's error, and the status the client gets. The
//! one place a guest failure becomes an HTTP status.

use std::time::Duration;

use hyper::StatusCode;

use crate::guest_api::Failure;
use crate::telemetry::semconv::{
    self, BODY_TOO_LARGE, DEADLINE_EXCEEDED, INCOMPLETE_BODY, LIMIT_EXCEEDED, MALFORMED_BODY,
};

/// The first line of a guest error: the trap or error message.
fn error_message(error: &wasmtime::Error) -> String {
    error.to_string()
}

/// Describes a guest failure for the `exception` event: a trap's code as
/// `error.type` (or the deadline, or the memory cap, when that is what
/// stopped it), its message, and the guest's Wasm backtrace.
pub(super) fn failure(error: &wasmtime::Error, limit_hit: bool, deadline: Duration) -> Failure {
    let trap = error.downcast_ref::<wasmtime::Trap>();
    let (error_type, message) = if trap == Some(&wasmtime::Trap::Interrupt) {
        (
            DEADLINE_EXCEEDED.to_string(),
            format!("stopped after the {deadline:?} request deadline (--deadline-ms)"),
        )
    } else if limit_hit {
        (
            LIMIT_EXCEEDED.to_string(),
            format!(
                "{} (a memory or table cap was reached: --memory-limit-mib)",
                error_message(error)
            ),
        )
    } else {
        match trap {
            Some(trap) => (
                semconv::error_type_name(&format!("{trap:?}")),
                error_message(error),
            ),
            None => (semconv::GUEST_ERROR.to_string(), error_message(error)),
        }
    };
    let exception_type = if trap.is_some() {
        "wasmtime::Trap"
    } else {
        "wasmtime::Error"
    };
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    Failure {
        error_type,
        exception_type: exception_type.to_string(),
        message,
        stacktrace: backtrace.or_else(|| Some(format!("{error:?}"))),
    }
}

/// The status the client gets: the guest's own, when it sent one; else 504
/// for a guest stopped at its deadline, 500 for any other failure.
pub(super) fn status(failure: Option<&Failure>, answered: u16) -> u16 {
    match (failure, answered) {
        (_, sent) if sent != 0 => sent,
        (Some(failure), _) if failure.error_type == DEADLINE_EXCEEDED => 504,
        _ => 500,
    }
}

/// Why a request body was not read whole before the guest ran.
#[derive(Debug)]
pub(super) enum BodyRefused {
    /// Over the limit, by its `Content-Length` or as read.
    TooLarge,
    /// Malformed framing (hyper's body error wraps the decoder's
    /// `InvalidInput`/`InvalidData` I/O error, with its message).
    Malformed(String),
    /// Ended early, or the connection failed while it was read.
    Incomplete(String),
}

impl From<Box<dyn std::error::Error + Send + Sync>> for BodyRefused {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        if error.is::<http_body_util::LengthLimitError>() {
            return BodyRefused::TooLarge;
        }
        // hyper reports a body it cannot decode as an error "reading a body
        // from connection" whose source is the decoder's I/O error.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                        BodyRefused::Malformed(io.to_string())
                    }
                    _ => BodyRefused::Incomplete(io.to_string()),
                };
            }
            source = cause.source();
        }
        BodyRefused::Incomplete(error.to_string())
    }
}

impl BodyRefused {
    /// The status, `error.type` and message of the response.
    pub(super) fn describe(self, limit: usize) -> (StatusCode, &'static str, String) {
        match self {
            BodyRefused::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                BODY_TOO_LARGE,
                format!("request body larger than {limit} bytes (--max-body-bytes)"),
            ),
            BodyRefused::Malformed(why) => (
                StatusCode::BAD_REQUEST,
                MALFORMED_BODY,
                format!("malformed request body: {why}"),
            ),
            BodyRefused::Incomplete(why) => (
                StatusCode::BAD_REQUEST,
                INCOMPLETE_BODY,
                format!("request body not received whole: {why}"),
            ),
        }
    }
}
