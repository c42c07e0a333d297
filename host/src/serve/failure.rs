//! What a failed guest means: the `exception` event's contents and
//! `error.type` from wasmtime's error, and the status the client gets. The
//! one place a guest failure becomes an HTTP status.

use std::time::Duration;

use crate::guest_api::Failure;
use crate::telemetry::semconv::{self, DEADLINE_EXCEEDED, LIMIT_EXCEEDED};

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
