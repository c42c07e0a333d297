//! One request, as a pipeline of named steps: open the SERVER span, read
//! the body within its limit, wait for a turn (admission), start the guest
//! on a fresh instance, wait for its answer, and respond (`traceresponse`,
//! the log line). Each step that refuses the request ends its spans and
//! says why in a JSON response of the host's own.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::MapErr;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, TraceContextExt};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use super::failure::BodyRefused;
use super::guest_task::{self, Driven, Running};
use super::response::{self, HostResponse, add_traceresponse, log_line, request_summary};
use super::server_span::server_span;
use super::service::{Connection, Service};
use crate::guest_api::Outcome;
use crate::runtime::{RequestState, deadline_ticks};
use crate::telemetry::logs::{Origin, Severity};
use crate::telemetry::semconv::{self, OVERLOADED};

/// The request body as the guest gets it: read whole, within its limit.
type GuestBody = MapErr<Full<Bytes>, fn(Infallible) -> wasmtime_wasi_http::Error>;

/// Where the guest's response arrives (or the error code it failed with).
type Answer = oneshot::Receiver<Result<HostResponse, ErrorCode>>;

impl Service {
    /// Serves one request. Never fails: a guest failure is a 500 response and
    /// an ERROR span.
    ///
    /// Generic over the body so that the micro-benchmark can drive it
    /// without a socket; the server passes hyper's `Incoming`.
    pub async fn handle<B>(
        self: Arc<Self>,
        request: Request<B>,
        connection: Connection,
    ) -> Result<HostResponse, Infallible>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        // The request's method and path, for its log line and record (both
        // cheap copies: a known method is a constant, a path shares its
        // bytes).
        let target = (self.log_requests || self.logs.is_some())
            .then(|| (request.method().clone(), request.uri().clone()));
        let (state, server) = self.start_server_span(&request, connection);
        // A request refused before its guest runs (413, 503, 400) is
        // answered as it is: no `traceresponse`, no log line.
        let mut response = match self.pipeline(request, state, &server).await {
            Ok(response) => response,
            Err(refused) => return Ok(refused),
        };
        add_traceresponse(&mut response, &server);
        let status = response.status();
        if let Some((method, uri)) = target {
            let took = started.elapsed();
            if self.log_requests {
                let summary = request_summary(&method, uri.path(), status, took);
                println!("{}", log_line(&self.name, &summary, &server));
            }
            if let Some(logs) = &self.logs {
                logs.request_ended(method.as_str(), uri.path(), status.as_u16(), took, &server);
            }
        }
        Ok(response)
    }

    /// The steps from the body to the guest's answer; `Err` is a refusal.
    async fn pipeline<B>(
        &self,
        request: Request<B>,
        mut state: RequestState,
        server: &SpanContext,
    ) -> Result<HostResponse, HostResponse>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let trace_id = &server.trace_id().to_string();
        let request = self.read_body(request, &mut state, trace_id).await?;
        let permit = self.admission(&mut state, trace_id).await?;
        let (guest, answer) = self.start_guest(request, state, permit, trace_id)?;
        Ok(self.answer(guest, answer, server).await)
    }

    /// Continues the caller's trace context in a new SERVER span, and makes
    /// the request's store state around it.
    fn start_server_span<B>(
        &self,
        request: &Request<B>,
        connection: Connection,
    ) -> (RequestState, SpanContext) {
        let incoming = self.propagator.extract(request.headers());
        let parent = incoming.cx.clone();
        let (name, attributes) = server_span(request, connection);
        // The attributes are written when the span ends (see `spans`), so
        // that the guest can override them.
        let builder = SpanBuilder::from_name(name.clone()).with_kind(SpanKind::Server);
        let server = self.tracer.start(builder, &parent);
        let span_context = server.span().span_context().clone();
        let state = self.request_state(server, attributes, name, incoming);
        (state, span_context)
    }

    /// Reads the body up to the limit before the guest runs, so that an
    /// oversized one is refused whole (413) and the guest never sees part;
    /// a malformed or incomplete one is refused with 400.
    async fn read_body<B>(
        &self,
        request: Request<B>,
        state: &mut RequestState,
        trace_id: &str,
    ) -> Result<Request<GuestBody>, HostResponse>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.limits.body;
        let (parts, body) = request.into_parts();
        let too_large = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > limit as u64);
        let body = if too_large {
            Err(BodyRefused::TooLarge)
        } else {
            Limited::new(body, limit)
                .collect()
                .await
                .map_err(BodyRefused::from)
        };
        let body = match body {
            Ok(body) => body,
            Err(refused) => {
                let (status, error_type, message) = refused.describe(limit);
                state
                    .spans
                    .set_server_attributes(vec![KeyValue::new(semconv::ERROR_TYPE, error_type)]);
                state.spans.finish(Outcome {
                    status: status.as_u16(),
                    failure: None,
                });
                return Err(response::error(status, &message, trace_id));
            }
        };
        let never: fn(Infallible) -> wasmtime_wasi_http::Error = |never| match never {};
        Ok(Request::from_parts(
            parts,
            Full::new(body.to_bytes()).map_err(never),
        ))
    }

    /// Waits for a turn to run the guest; past the queue, 503 at once.
    async fn admission(
        &self,
        state: &mut RequestState,
        trace_id: &str,
    ) -> Result<OwnedSemaphorePermit, HostResponse> {
        if let Some(permit) = self.admit().await {
            return Ok(permit);
        }
        if let Some(metrics) = &self.metrics {
            metrics.admission_refused();
        }
        state
            .spans
            .set_server_attributes(vec![KeyValue::new(semconv::ERROR_TYPE, OVERLOADED)]);
        state.spans.finish(Outcome {
            status: 503,
            failure: None,
        });
        let why = format!(
            "too many requests: {} running and {} waiting (--max-concurrent, --max-queue); retry shortly",
            self.limits.concurrent, self.limits.queue
        );
        let mut response = response::error(StatusCode::SERVICE_UNAVAILABLE, &why, trace_id);
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        Err(response)
    }

    /// Puts the request in a fresh store of the current component and
    /// starts its guest (see [`guest_task`]); a request wasi-http cannot
    /// take is refused with 400.
    // The refusal is the response itself, as in every step; it is built on
    // the refusal path only, where boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    fn start_guest(
        &self,
        request: Request<GuestBody>,
        state: RequestState,
        permit: OwnedSemaphorePermit,
        trace_id: &str,
    ) -> Result<(Running, Answer), HostResponse> {
        let pre = self.current();
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline));
        store.epoch_deadline_trap();
        let (sender, answer) = oneshot::channel();
        let status = Arc::new(AtomicU16::new(0));
        let sent = status.clone();
        let mut http = store.data_mut().http();
        let outparam = http.new_response_outparam_from_callback(move |response| {
            if let Ok(response) = &response {
                sent.store(response.status().as_u16(), Ordering::Relaxed);
            }
            // The client may be gone; the guest still finishes and is traced.
            let _ = sender.send(response);
        });
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request);
        let (outparam, incoming) = match (outparam, incoming) {
            (Ok(outparam), Ok(incoming)) => (outparam, incoming),
            (Err(error), _) | (_, Err(error)) => {
                let message = format!("{error:#}");
                store.data_mut().spans.finish(Outcome {
                    status: 400,
                    failure: None,
                });
                return Err(response::error(StatusCode::BAD_REQUEST, &message, trace_id));
            }
        };
        let in_flight = self.in_flight.enter();
        let deadline = self.limits.deadline;
        // The guest runs on this request's own task (no hand-off to another
        // task per request): polled here until it answers, then by the
        // response body while it writes it (see [`Driven`]).
        let guest = Running(Some(Box::pin(async move {
            let _in_flight = in_flight;
            let _turn = permit;
            guest_task::run(pre, store, incoming, outparam, deadline, status).await
        })));
        Ok((guest, answer))
    }

    /// The guest's response, its body driving the guest while it writes it;
    /// else the host's 500 (or 504) saying why there is none.
    async fn answer(
        &self,
        mut guest: Running,
        mut receiver: Answer,
        server: &SpanContext,
    ) -> HostResponse {
        let trace_id = &server.trace_id().to_string();
        let (answer, guest) = tokio::select! {
            biased;
            answer = &mut receiver => (answer.ok(), guest),
            outcome = &mut guest => match receiver.try_recv() {
                Ok(answer) => (Some(answer), Running(None)),
                Err(_) => (None, Running(Some(Box::pin(std::future::ready(outcome))))),
            },
        };
        match (answer, guest) {
            (Some(Ok(response)), guest) => {
                response.map(|body| Driven { body, guest }.boxed_unsync())
            }
            (Some(Err(code)), guest) => {
                drop(guest);
                let why = format!("component failed the request: {code:?}");
                response::error(StatusCode::INTERNAL_SERVER_ERROR, &why, trace_id)
            }
            (None, guest) => {
                let (status, why) = match guest.await {
                    Some((status, message)) => (status, format!("component failed: {message}")),
                    None => (
                        500,
                        "component returned without sending a response".to_string(),
                    ),
                };
                eprintln!("{}: {why} (trace {trace_id})", self.name);
                if let Some(logs) = &self.logs {
                    logs.emit(Origin::Host, Severity::Warn, &why, Some(server), &[]);
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                response::error(status, &why, trace_id)
            }
        }
    }
}
