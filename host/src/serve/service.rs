//! A component being served: what is built once at start-up and shared by
//! every request (its pre-instantiated component, tracer, propagator,
//! limits, admission), and how a request's store state is made from it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use opentelemetry::{Context, KeyValue};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::guest_task::InFlight;
use super::limits::{DEFAULT_CONCURRENCY, RequestLimits};
use crate::guest_api::{GuestOutput, RequestSpans};
use crate::outbound::{Client, Egress, Outbound};
use crate::propagation::{Extracted, Propagator};
use crate::runtime::RequestState;
use crate::telemetry::{ServiceLogs, ServiceMetrics, ServiceTracer};

/// The addresses of the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The host's address.
    pub local: SocketAddr,
    /// The client's address.
    pub peer: SocketAddr,
}

/// A component being served: everything built once at start-up and shared
/// by every request.
pub struct Service {
    /// The service name, for logs.
    pub name: String,
    /// Swapped whole by [`Service::replace`] (`--watch`); each request
    /// clones the one current when it starts, so a reload never disturbs a
    /// request in flight.
    pre: RwLock<ProxyPre<RequestState>>,
    pub(super) tracer: ServiceTracer,
    pub(super) propagator: Arc<Propagator>,
    env: Vec<(String, String)>,
    pub(super) in_flight: InFlight,
    /// Whether each request is logged on a line of its own.
    pub(super) log_requests: bool,
    /// Baggage keys copied onto every span (`--baggage-attributes`).
    baggage_attributes: Arc<[String]>,
    pub(super) limits: RequestLimits,
    /// Where guests may send requests (with the service name for its log
    /// lines); `None` lets them go anywhere.
    egress: Option<(Arc<Egress>, Arc<str>)>,
    /// Sends guests' outgoing requests; shared by every service of the
    /// process so that connections are reused across requests.
    client: Arc<Client>,
    /// Turns to run a guest: a burst beyond them waits (bounded) or gets 503.
    admission: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// The service's instruments; `None` with metrics off.
    pub(super) metrics: Option<&'static ServiceMetrics>,
    /// Where the guest's output and the host's request log go as log
    /// records; `None` with logs off.
    pub(super) logs: Option<&'static ServiceLogs>,
}

impl Service {
    /// A service running `pre`, tracing with `tracer`, propagating with
    /// `propagator`, passing `env` to the guest.
    pub fn new(
        name: String,
        pre: ProxyPre<RequestState>,
        tracer: ServiceTracer,
        propagator: Arc<Propagator>,
        env: Vec<(String, String)>,
    ) -> Self {
        Service {
            name,
            pre: RwLock::new(pre),
            tracer,
            propagator,
            env,
            in_flight: InFlight::default(),
            log_requests: true,
            baggage_attributes: Arc::from([]),
            limits: RequestLimits::default(),
            egress: None,
            client: Client::new(),
            admission: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY)),
            waiting: Arc::new(AtomicUsize::new(0)),
            metrics: None,
            logs: None,
        }
    }

    /// Makes the guest's output and the request log records in `logs`.
    pub fn logs(mut self, logs: Option<&'static ServiceLogs>) -> Self {
        self.logs = logs;
        self
    }

    /// Records the service's requests in `metrics`.
    pub fn metrics(mut self, metrics: Option<&'static ServiceMetrics>) -> Self {
        if let Some(metrics) = &metrics {
            metrics.count_pool_slots(self.in_flight.reader());
        }
        self.metrics = metrics;
        self
    }

    /// Sets what each request may use.
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.admission = Arc::new(tokio::sync::Semaphore::new(limits.concurrent.max(1)));
        self.limits = limits;
        self
    }

    /// Denies outgoing requests except to `egress`'s destinations.
    pub fn egress(mut self, egress: Egress) -> Self {
        self.egress = Some((Arc::new(egress), Arc::from(self.name.as_str())));
        self
    }

    /// Sends outgoing requests through `client` (to share its connections).
    pub fn client(mut self, client: Arc<Client>) -> Self {
        self.client = client;
        self
    }

    /// Copies the baggage entries named by `keys` onto every span of each
    /// request, as `baggage.KEY`.
    pub fn baggage_attributes(mut self, keys: Vec<String>) -> Self {
        self.baggage_attributes = keys.into();
        self
    }

    /// Turns the one-line-per-request log off (or on).
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }

    /// What each request may use.
    pub fn request_limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// Waits for a turn to run a guest; `None` when too many already wait.
    pub(super) async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.admission.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.admission.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }

    /// The component requests are served from now.
    pub fn current(&self) -> ProxyPre<RequestState> {
        // A poisoned lock only means a panic elsewhere while swapping; the
        // value inside is still a whole component.
        match self.pre.read() {
            Ok(pre) => pre.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `pre` from the next request on.
    pub fn replace(&self, pre: ProxyPre<RequestState>) {
        match self.pre.write() {
            Ok(mut current) => *current = pre,
            Err(poisoned) => *poisoned.into_inner() = pre,
        }
    }

    /// The state for a request whose SERVER span is in `server`.
    pub(super) fn request_state(
        &self,
        server: Context,
        attributes: Vec<KeyValue>,
        method: String,
        incoming: Extracted,
    ) -> RequestState {
        let mut outbound = Outbound::new(self.propagator.clone())
            .with_client(self.client.clone())
            .with_metrics(self.metrics);
        if let Some((egress, name)) = &self.egress {
            outbound = outbound.with_egress(egress.clone(), name.clone());
        }
        let spans = RequestSpans::new(self.tracer.clone(), outbound, server, attributes, method)
            .with_incoming(
                incoming.tracestate,
                incoming.baggage,
                self.baggage_attributes.clone(),
            )
            .with_span_limit(self.limits.spans)
            .with_attribute_limits(self.limits.attributes)
            .with_metrics(self.metrics)
            .with_output(
                self.logs
                    .as_ref()
                    .map(|logs| GuestOutput::new(logs, self.limits.log_lines)),
            );
        RequestState::new(&self.env, spans, self.limits.memory)
    }

    /// Waits until every request's guest has finished and its spans ended.
    pub async fn idle(&self) {
        self.in_flight.idle().await;
    }
}
