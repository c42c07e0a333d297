//! A request's guest as a task: it runs on its request's own task, polled
//! by the pipeline until it answers and then by the response body
//! ([`Driven`]) while it writes it; dropped before it finishes (its client
//! gone, or its response sent while it still runs), it moves to a task of
//! its own ([`Running`]), so a guest always finishes and its spans always
//! end. [`InFlight`] counts them for shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry::KeyValue;
use tokio::sync::Notify;
use wasmtime::Store;
use wasmtime::component::Resource;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use super::failure;
use crate::guest_api::Outcome;
use crate::runtime::RequestState;
use crate::telemetry::semconv;

/// The guest's whole run: instantiates the component and calls its handler
/// within `deadline`, records what the sandbox cost and how it ended on the
/// SERVER span, and ends the request's spans. `answered` holds the status
/// the guest sent (0 for none yet).
pub(super) async fn run(
    pre: ProxyPre<RequestState>,
    mut store: Store<RequestState>,
    incoming: Resource<HostIncomingRequest>,
    outparam: Resource<HostResponseOutparam>,
    deadline: Duration,
    answered: Arc<AtomicU16>,
) -> Option<(u16, String)> {
    let (result, instantiated) = call(&pre, &mut store, incoming, outparam, deadline).await;
    let failure = result
        .as_ref()
        .err()
        .map(|error| failure::failure(error, store.data().limits.hit, deadline));
    record_sandbox(&mut store, instantiated);
    if let (Some(failure), Some((metrics, _))) = (&failure, store.data().spans.metrics()) {
        metrics.guest_failed(&failure.error_type);
    }
    let answered = answered.load(Ordering::Relaxed);
    let status = failure::status(failure.as_ref(), answered);
    store.data_mut().spans.finish(Outcome {
        status,
        failure: failure.clone(),
    });
    match failure {
        Some(failure) if answered == 0 => Some((status, failure.message)),
        _ => None,
    }
}

/// Instantiates and calls the guest's `handle`; how long instantiating
/// took, when it did.
async fn call(
    pre: &ProxyPre<RequestState>,
    store: &mut Store<RequestState>,
    incoming: Resource<HostIncomingRequest>,
    outparam: Resource<HostResponseOutparam>,
    deadline: Duration,
) -> (wasmtime::Result<()>, Option<Duration>) {
    let mut instantiated = None;
    let call = async {
        let started = Instant::now();
        let proxy = pre.instantiate_async(&mut *store).await?;
        instantiated = Some(started.elapsed());
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, incoming, outparam)
            .await
    };
    // Epoch interruption stops a guest computing past its deadline; this
    // outer timeout stops one waiting in a host call.
    let result = match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::from(wasmtime::Trap::Interrupt)),
    };
    (result, instantiated)
}

/// What the sandbox cost this request, on its server span and in its
/// metrics.
fn record_sandbox(store: &mut Store<RequestState>, instantiated: Option<Duration>) {
    let peak_memory = store.data().limits.peak_memory;
    let spans = &mut store.data_mut().spans;
    spans.sandbox_measured(instantiated, peak_memory);
    let peak = i64::try_from(peak_memory).unwrap_or(i64::MAX);
    let mut sandbox = vec![KeyValue::new(semconv::WASM_MEMORY_PEAK_BYTES, peak)];
    if let Some(took) = instantiated {
        sandbox.push(KeyValue::new(
            semconv::WASM_INSTANTIATE_DURATION_US,
            i64::try_from(took.as_micros()).unwrap_or(i64::MAX),
        ));
    }
    spans.set_host_attributes(sandbox);
}

/// A request's guest, from instantiation to its spans ended: `Some((status,
/// message))` when it failed without sending a response.
pub(super) type Guest = std::pin::Pin<Box<dyn Future<Output = Option<(u16, String)>> + Send>>;

/// A request's guest while it runs. Dropped before it finished (the client
/// went, or its response was sent while it still runs), it moves to a task
/// of its own: a guest always finishes and its spans always end.
pub(super) struct Running(pub(super) Option<Guest>);

impl Running {
    pub(super) fn detach(&mut self) {
        if let Some(guest) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(guest)),
                // Outside a runtime nothing can drive it: dropping it ends
                // its spans where it stopped.
                Err(_) => drop(guest),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.detach();
    }
}

impl Future for Running {
    type Output = Option<(u16, String)>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(guest) = &mut self.0 else {
            return std::task::Poll::Ready(None);
        };
        let outcome = guest.as_mut().poll(cx);
        if outcome.is_ready() {
            self.0 = None;
        }
        outcome
    }
}

/// The guest's response body, which also drives the guest while it writes
/// that body; when the body ends with the guest still running, the guest
/// finishes on a task of its own.
pub(super) struct Driven {
    pub(super) body: HyperOutgoingBody,
    pub(super) guest: Running,
}

impl hyper::body::Body for Driven {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.guest.0.is_some() {
            let _ = std::pin::Pin::new(&mut self.guest).poll(cx);
        }
        let frame = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = frame {
            self.guest.detach();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Counts the guest tasks still running, so that shutdown can wait for
/// them; each holds its instance's pool slot (`wasm.pool.slots.used`).
#[derive(Default)]
pub(super) struct InFlight(Arc<(AtomicUsize, Notify)>);

pub(super) struct InFlightGuard(Arc<(AtomicUsize, Notify)>);

impl InFlight {
    pub(super) fn enter(&self) -> InFlightGuard {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.0.clone())
    }

    /// How many are running now, read by `reader`.
    pub(super) fn reader(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let count = self.0.clone();
        move || count.0.load(Ordering::Relaxed)
    }

    pub(super) async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// A guest dropped before it finished (its response sent, or its
    /// client gone) finishes on a task of its own.
    #[tokio::test]
    async fn a_dropped_guest_runs_to_its_end() {
        let (finished, done) = oneshot::channel();
        let mut guest = Running(Some(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = finished.send(());
            None
        })));
        // Started, not finished.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut guest)
                .await
                .is_err()
        );
        drop(guest);
        let ran = tokio::time::timeout(Duration::from_secs(5), done).await;
        assert!(matches!(ran, Ok(Ok(()))), "{ran:?}");
    }
}
