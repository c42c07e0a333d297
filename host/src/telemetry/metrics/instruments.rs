//! The host's instruments for one service, by name, each recorded through a
//! method that says when: the HTTP server and client semantic conventions'
//! (`http.server.request.duration`, `http.server.active_requests`,
//! `http.client.request.duration`) and the sandbox's under `wasm.`. Every
//! name, unit and attribute is listed in `docs/metrics-logs.md`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::aggregate::{
    Attributes, Collect, Descriptor, GuestPairs, Histogram, HistogramOptions, Levels, Observed,
    Pairs, ReadLevel, SpanRef, Sum, Value, ValueRef, now_nanos, same_text,
};
use super::business::{Business, Kind, Measurement};
use super::forwarded::Forwarded;
use super::journal::{Entry, Journal, Made, Sandbox};
use crate::telemetry::semconv;

/// The HTTP semantic conventions' explicit bucket boundaries for request
/// durations, in seconds.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Instantiation takes tens of microseconds from the pool: buckets from
/// 10 µs to 100 ms, in seconds.
pub const INSTANTIATE_BOUNDS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];
/// Linear memory in bytes: 64 KiB (one Wasm page) to 4 GiB, by fours.
pub const MEMORY_BOUNDS: [f64; 9] = [
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// `wasm.drop.reason` of spans the request's `--max-spans` cut.
pub const SPAN_LIMIT: &str = "span_limit";
/// `wasm.drop.reason` of spans (or log records) a full export queue cut.
pub const EXPORT_QUEUE: &str = "export_queue";
/// `wasm.drop.reason` of log lines over the request's line limit.
pub const REQUEST_LIMIT: &str = "request_limit";

const SERVER_DURATION: Descriptor = Descriptor::of(
    semconv::HTTP_SERVER_REQUEST_DURATION,
    "s",
    "Duration of HTTP server requests.",
);
const ACTIVE_REQUESTS: Descriptor = Descriptor::of(
    semconv::HTTP_SERVER_ACTIVE_REQUESTS,
    "{request}",
    "Number of active HTTP server requests.",
);
const CLIENT_DURATION: Descriptor = Descriptor::of(
    semconv::HTTP_CLIENT_REQUEST_DURATION,
    "s",
    "Duration of HTTP client requests.",
);
const INSTANTIATE: Descriptor = Descriptor::of(
    semconv::WASM_INSTANTIATE_DURATION,
    "s",
    "Time to instantiate the component for one request.",
);
const MEMORY_PEAK: Descriptor = Descriptor::of(
    semconv::WASM_MEMORY_PEAK,
    "By",
    "Peak linear memory of one request's instance.",
);
const POOL_SLOTS: Descriptor = Descriptor::of(
    semconv::WASM_POOL_SLOTS_USED,
    "{instance}",
    "Instances of the pooling allocator this service holds now.",
);
const GUEST_FAILURES: Descriptor = Descriptor::of(
    semconv::WASM_GUEST_FAILURES,
    "{failure}",
    "Requests whose guest trapped, hit its deadline or its memory cap.",
);
const ADMISSION_REFUSED: Descriptor = Descriptor::of(
    semconv::WASM_ADMISSION_REFUSED,
    "{request}",
    "Requests refused with 503 because too many were running and waiting.",
);
const SPANS_DROPPED: Descriptor = Descriptor::of(
    semconv::WASM_SPANS_DROPPED,
    "{span}",
    "Spans not exported: past a request's span limit, or a full export queue.",
);
const LOGS_DROPPED: Descriptor = Descriptor::of(
    semconv::WASM_LOGS_DROPPED,
    "{record}",
    "Guest log lines not exported: past a request's limit, or a full export queue.",
);
const LOGS_TRUNCATED: Descriptor = Descriptor::of(
    semconv::WASM_LOGS_TRUNCATED,
    "{record}",
    "Guest log lines cut to the line length limit.",
);

/// The keys of the two durations' attributes, in the order an attribute
/// set keeps them (a measurement's pairs are made in this order, so its set
/// needs no sorting). The first
/// six are `http.server.request.duration`'s, as the convention lists them
/// (required, conditionally required, recommended; `server.address` and
/// `server.port` are opt-in there, and left out);
/// `http.client.request.duration` has the first three and the last two.
pub const DURATION_KEYS: [&str; 8] = [
    semconv::ERROR_TYPE,
    semconv::HTTP_REQUEST_METHOD,
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::HTTP_ROUTE,
    semconv::NETWORK_PROTOCOL_VERSION,
    semconv::URL_SCHEME,
    semconv::SERVER_ADDRESS,
    semconv::SERVER_PORT,
];

/// How many of [`DURATION_KEYS`] are the server duration's.
const SERVER_KEYS: usize = 6;

/// Where `key` is among the server duration's keys, if it is one of
/// them. It runs for every attribute of every request's SERVER span, most
/// of which are none of them: each key's length (and, among those of ten
/// bytes, its first byte) names the one candidate it is compared with.
fn server_key(key: &str) -> Option<usize> {
    let at = match (key.len(), key.as_bytes().first()) {
        (10, Some(b'e')) => 0,
        (19, _) => 1,
        (25, _) => 2,
        (10, Some(b'h')) => 3,
        (24, _) => 4,
        (10, Some(b'u')) => 5,
        _ => return None,
    };
    same_text(DURATION_KEYS[at], key).then_some(at)
}

/// One service's instruments and the resource its points carry.
#[derive(Debug)]
pub struct ServiceMetrics {
    resource: Resource,
    server_duration: Histogram,
    /// A level per method and scheme (see [`active_sets`]).
    active_requests: Levels,
    client_duration: Histogram,
    instantiate: Histogram,
    memory_peak: Histogram,
    /// Read at collection from the service's count of running guests,
    /// each of which holds an instance.
    pool_slots: ReadLevel,
    guest_failures: Sum,
    admission_refused: Sum,
    spans_dropped: Sum,
    /// Read at collection from the service's export queue, which counts
    /// the spans it dropped whole.
    export_dropped: Observed,
    logs_dropped: Sum,
    logs_truncated: Sum,
    /// What the guest records through `wasm-otel:host/metrics`.
    business: Business,
    /// What the guest exports through `wasi:otel/metrics`, until the next
    /// export.
    pub(crate) forwarded: Forwarded,
    /// What requests measured (durations, the sandbox, active requests,
    /// the guests' measurements), until it is aggregated.
    journal: Journal,
}

/// A request being served, with its service's instruments: counted in
/// `http.server.active_requests` until it ends or is dropped.
#[derive(Debug)]
pub struct ActiveRequest {
    metrics: &'static ServiceMetrics,
    /// Its set's place in [`active_sets`], until it ends.
    set: Option<u8>,
}

impl ActiveRequest {
    /// The service's instruments.
    pub fn metrics(&self) -> &'static ServiceMetrics {
        self.metrics
    }

    /// The request is no longer active (it may still record).
    pub fn end(&mut self) {
        if let Some(set) = self.set.take() {
            self.metrics.active_requests.add(usize::from(set), -1);
        }
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.end();
    }
}

/// The schemes of `http.server.active_requests`' sets: the host serves
/// `http` (and a server behind TLS would be `https`).
const ACTIVE_SCHEMES: [&str; 2] = ["http", "https"];

/// Every attribute set `http.server.active_requests` can take, known in
/// advance: each method the convention names, and `_OTHER`, with each
/// scheme. The set of `method` and `scheme` is at [`active_set`].
fn active_sets() -> Vec<Attributes> {
    let methods = semconv::KNOWN_METHODS
        .iter()
        .chain([&semconv::OTHER_METHOD]);
    methods
        .flat_map(|method| {
            ACTIVE_SCHEMES.iter().map(|scheme| {
                set([
                    (semconv::HTTP_REQUEST_METHOD, Value::from(*method)),
                    (semconv::URL_SCHEME, Value::from(*scheme)),
                ])
            })
        })
        .collect()
}

/// Where the set of `method` and `scheme` is in [`active_sets`]: a method
/// the convention does not name counts as `_OTHER`, a scheme other than
/// `https` as `http`.
fn active_set(method: &str, scheme: &str) -> u8 {
    let method = semconv::KNOWN_METHODS
        .iter()
        .position(|known| *known == method)
        .unwrap_or(semconv::KNOWN_METHODS.len());
    // At most 10 methods by 2 schemes.
    (method * ACTIVE_SCHEMES.len() + usize::from(scheme == "https")) as u8
}

/// The attribute set of `pairs` with static keys.
fn set<const N: usize>(pairs: [(&'static str, Value); N]) -> Attributes {
    Attributes::new(pairs.map(|(k, v)| (Cow::Borrowed(k), v)))
}

/// The value of an OpenTelemetry attribute as a metric attribute (strings,
/// whole numbers and booleans; nothing else is a metric key here).
pub fn value_of(value: &opentelemetry::Value) -> Option<ValueRef<'_>> {
    match value {
        opentelemetry::Value::String(s) => Some(ValueRef::Str(s.as_str())),
        opentelemetry::Value::I64(n) => Some(ValueRef::Int(*n)),
        opentelemetry::Value::Bool(b) => Some(ValueRef::Bool(*b)),
        _ => None,
    }
}

impl ServiceMetrics {
    /// The instruments of a service whose resource is `resource`, reading
    /// what its export queue dropped from `export_dropped`, its histograms
    /// (the guests' too) per `histograms`.
    pub fn new(
        resource: Resource,
        export_dropped: Arc<AtomicU64>,
        histograms: HistogramOptions,
    ) -> ServiceMetrics {
        ServiceMetrics {
            resource,
            server_duration: Histogram::new(SERVER_DURATION, &DURATION_BOUNDS, histograms),
            active_requests: Levels::new(ACTIVE_REQUESTS, active_sets()),
            client_duration: Histogram::new(CLIENT_DURATION, &DURATION_BOUNDS, histograms),
            instantiate: Histogram::new(INSTANTIATE, &INSTANTIATE_BOUNDS, histograms),
            memory_peak: Histogram::new(MEMORY_PEAK, &MEMORY_BOUNDS, histograms),
            pool_slots: ReadLevel::new(POOL_SLOTS),
            guest_failures: Sum::counter(GUEST_FAILURES),
            admission_refused: Sum::counter(ADMISSION_REFUSED),
            spans_dropped: Sum::counter(SPANS_DROPPED),
            export_dropped: Observed::new(
                SPANS_DROPPED,
                set([(semconv::WASM_DROP_REASON, Value::from(EXPORT_QUEUE))]),
                export_dropped,
            ),
            logs_dropped: Sum::counter(LOGS_DROPPED),
            logs_truncated: Sum::counter(LOGS_TRUNCATED),
            business: Business::new(histograms),
            forwarded: Forwarded::default(),
            journal: Journal::default(),
        }
    }

    /// Notes a measurement, aggregated later (see `journal`).
    fn note(&self, entry: &Entry<'_>) {
        self.journal.write(entry, &|entry| self.apply(entry));
    }

    /// Aggregates a measurement noted before.
    fn apply(&self, entry: Entry<'_>) {
        match entry {
            Entry::Duration {
                client,
                seconds,
                pairs,
                sandbox,
                made,
            } => {
                let histogram = if client {
                    &self.client_duration
                } else {
                    &self.server_duration
                };
                histogram.record_at(seconds, Pairs(pairs), made.span, made.time);
                if let Some(Sandbox {
                    instantiated,
                    peak_bytes,
                }) = sandbox
                {
                    let none = || Attributes::default();
                    if let Some(seconds) = instantiated {
                        self.instantiate
                            .record_at(seconds, none(), made.span, made.time);
                    }
                    self.memory_peak
                        .record_at(peak_bytes, none(), made.span, made.time);
                }
            }
            Entry::Guest {
                instrument,
                value,
                pairs,
                made,
            } => {
                self.business.record_at(
                    instrument,
                    value,
                    GuestPairs(pairs).into(),
                    made.span,
                    made.time,
                );
            }
        }
    }

    /// Records a guest's `measurement` with the set `pairs` (as
    /// `GuestPairs::canonical` leaves them), in `span`. Its instrument is
    /// found (or made) and its value checked now, so that the journal
    /// keeps neither name, unit nor description; a refused measurement
    /// is counted, and not noted.
    pub fn record_guest(
        &self,
        measurement: Measurement<'_>,
        pairs: &[(&str, ValueRef<'_>)],
        span: Option<SpanRef>,
    ) {
        let Ok(instrument) = self.business.resolve(&measurement) else {
            return;
        };
        // A counter keeps no exemplars: no clock read for it.
        let time = match measurement.kind {
            Kind::Histogram => now_nanos(),
            Kind::Counter => 0,
        };
        self.note(&Entry::Guest {
            instrument,
            value: measurement.value,
            pairs,
            made: Made { time, span },
        });
    }

    /// Queues a guest's `wasi:otel` export (`scopes`, holding `points`
    /// data points) for the next export, under the service's resource
    /// merged with the guest's `attributes`: the service's keys win
    /// (`service.name`, `service.version`, ... are what joins the three
    /// signals), the guest's other keys are kept.
    pub fn forward(
        &self,
        attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
        schema_url: String,
        scopes: Vec<ScopeMetrics>,
        points: usize,
    ) -> bool {
        let mut resource = self.resource.clone();
        for kv in attributes {
            if !resource.attributes.iter().any(|own| own.key == kv.key) {
                resource.attributes.push(kv);
            }
        }
        self.forwarded.offer(resource, schema_url, scopes, points)
    }

    /// A request with `method` (`http.request.method`: one the convention
    /// names, or `_OTHER`) and `scheme` started: counted active until the
    /// guard is dropped.
    pub fn request_started(&'static self, method: &str, scheme: &str) -> ActiveRequest {
        let set = active_set(method, scheme);
        // Added at once, not noted: one atomic add on the thread's own
        // line takes fewer instructions than a note and its aggregation,
        // and a level is read as it is now.
        self.active_requests.add(usize::from(set), 1);
        ActiveRequest {
            metrics: self,
            set: Some(set),
        }
    }

    /// A request ended after `duration`, with the SERVER span's final
    /// attributes `server` (those the convention names are kept), in the
    /// span `span` (the exemplar); `sandbox` is what its sandbox cost, when
    /// its guest ran (see [`Sandbox::of`]).
    pub fn request_ended(
        &self,
        duration: Duration,
        server: &[KeyValue],
        sandbox: Option<Sandbox>,
        span: &SpanContext,
    ) {
        // Each key in its place (the last value of a key wins), so the set
        // is made in order, with no sorting, and borrowed: nothing is
        // copied unless the set is new.
        let mut values: [Option<ValueRef>; SERVER_KEYS] = [None; SERVER_KEYS];
        for kv in server {
            if let Some(at) = server_key(kv.key.as_str())
                && let Some(value) = value_of(&kv.value)
            {
                values[at] = Some(value);
            }
        }
        let mut pairs = [("", ValueRef::Bool(false)); SERVER_KEYS];
        let mut len = 0;
        for (key, value) in DURATION_KEYS.into_iter().zip(values) {
            if let Some(value) = value {
                pairs[len] = (key, value);
                len += 1;
            }
        }
        self.duration_ended(false, duration, &pairs[..len], sandbox, span);
    }

    /// Notes a server's (or, with `client`, a client's) request duration
    /// keyed by `pairs`, with what the request's `sandbox` cost, in `span`.
    fn duration_ended(
        &self,
        client: bool,
        duration: Duration,
        pairs: &[(&'static str, ValueRef<'_>)],
        sandbox: Option<Sandbox>,
        span: &SpanContext,
    ) {
        self.note(&Entry::Duration {
            client,
            seconds: duration.as_secs_f64(),
            pairs,
            sandbox,
            made: Made {
                time: now_nanos(),
                span: SpanRef::of(span),
            },
        });
    }

    /// An outgoing request ended after `duration`: its method, server
    /// address and port, status (when a response came) and `error.type`
    /// (when it failed), in the CLIENT span `span`.
    pub fn client_request_ended(
        &self,
        duration: Duration,
        request: ClientRequest,
        span: &SpanContext,
    ) {
        // In key order (`error.type`, `http.request.method`,
        // `http.response.status_code`, `server.address`, `server.port`), so
        // the set is made without sorting.
        let mut pairs = [("", ValueRef::Bool(false)); 5];
        let mut len = 0;
        let mut push = |key, value| {
            pairs[len] = (key, value);
            len += 1;
        };
        if let Some(error_type) = &request.error_type {
            push(semconv::ERROR_TYPE, ValueRef::Str(error_type));
        }
        push(semconv::HTTP_REQUEST_METHOD, ValueRef::Str(request.method));
        if let Some(status) = request.status {
            push(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                ValueRef::Int(i64::from(status)),
            );
        }
        if let Some(address) = &request.address {
            push(semconv::SERVER_ADDRESS, ValueRef::Str(address));
        }
        push(semconv::SERVER_PORT, ValueRef::Int(i64::from(request.port)));
        self.duration_ended(true, duration, &pairs[..len], None, span);
    }

    /// Reads `wasm.pool.slots.used` with `running`: the service's guests
    /// running now, each holding its instance's slot.
    pub fn count_pool_slots(&self, running: impl Fn() -> usize + Send + Sync + 'static) {
        self.pool_slots
            .read_from(move || i64::try_from(running()).unwrap_or(i64::MAX));
    }

    /// A guest failed with `error_type` (a trap's code, the deadline, the
    /// memory cap).
    pub fn guest_failed(&self, error_type: &str) {
        self.guest_failures.add(
            1,
            set([(semconv::ERROR_TYPE, Value::from(error_type.to_string()))]),
        );
    }

    /// A request was refused by admission (503).
    pub fn admission_refused(&self) {
        self.admission_refused.add(1, Attributes::default());
    }

    /// `count` guest spans were cut by the request's span limit.
    pub fn spans_over_limit(&self, count: u64) {
        self.spans_dropped.add(
            i64::try_from(count).unwrap_or(i64::MAX),
            set([(semconv::WASM_DROP_REASON, Value::from(SPAN_LIMIT))]),
        );
    }

    /// `count` guest log lines were not exported, for `reason`
    /// ([`REQUEST_LIMIT`] or [`EXPORT_QUEUE`]).
    pub fn logs_dropped(&self, count: u64, reason: &'static str) {
        self.logs_dropped.add(
            i64::try_from(count).unwrap_or(i64::MAX),
            set([(semconv::WASM_DROP_REASON, Value::from(reason))]),
        );
    }

    /// `count` guest log lines were cut to the line length limit.
    pub fn logs_truncated(&self, count: u64) {
        self.logs_truncated.add(
            i64::try_from(count).unwrap_or(i64::MAX),
            Attributes::default(),
        );
    }

    /// Every instrument's points, under the service's resource, then what
    /// the guests exported through `wasi:otel` since the last collection;
    /// empty while there is nothing.
    pub fn collect(&self, collect: Collect) -> Vec<ResourceMetrics> {
        let mut all: Vec<ResourceMetrics> = self.collect_own(collect).into_iter().collect();
        all.extend(self.forwarded.take());
        all
    }

    fn collect_own(&self, collect: Collect) -> Option<ResourceMetrics> {
        // What requests measured since the last collection is in it.
        self.journal.drain(&|entry| self.apply(entry));
        let mut metrics: Vec<Metric> = [
            self.server_duration.collect(collect),
            self.active_requests.collect(),
            self.client_duration.collect(collect),
            self.instantiate.collect(collect),
            self.memory_peak.collect(collect),
            self.pool_slots.collect(),
            self.guest_failures.collect(collect),
            self.admission_refused.collect(collect),
            self.logs_dropped.collect(collect),
            self.logs_truncated.collect(collect),
            self.business.refused(collect),
            self.forwarded.dropped_metric(collect),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Both causes of dropped spans are one instrument: their points go
        // in one metric.
        merge_sums(
            &mut metrics,
            [
                self.spans_dropped.collect(collect),
                self.export_dropped.collect(collect),
            ],
        );
        let mut scopes = vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: crate::telemetry::tracer::HOST_SCOPE.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }];
        if let Some(guest) = self.business.collect(collect) {
            scopes.push(guest);
        }
        scopes.retain(|scope| !scope.metrics.is_empty());
        if scopes.is_empty() {
            return None;
        }
        Some(ResourceMetrics {
            resource: Some(self.resource.clone()),
            scope_metrics: scopes,
            schema_url: String::new(),
        })
    }
}

/// Appends the points of `parts` (sums of one instrument) as one metric.
fn merge_sums(metrics: &mut Vec<Metric>, parts: [Option<Metric>; 2]) {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let mut merged: Option<Metric> = None;
    for part in parts.into_iter().flatten() {
        match (&mut merged, part.data) {
            (
                Some(Metric {
                    data: Some(Data::Sum(into)),
                    ..
                }),
                Some(Data::Sum(from)),
            ) => into.data_points.extend(from.data_points),
            (_, data) => {
                merged = Some(Metric { data, ..part });
            }
        }
    }
    metrics.extend(merged);
}

/// What `http.client.request.duration` is keyed by, for one request.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// `http.request.method`: one the convention knows, or `_OTHER`.
    pub method: &'static str,
    /// `server.address`, when the URL has a host (shared with the CLIENT
    /// span's attribute).
    pub address: Option<Arc<str>>,
    /// `server.port`.
    pub port: u16,
    /// `http.response.status_code`, when a response came.
    pub status: Option<u16>,
    /// `error.type`, when it failed (a 4xx or 5xx, or no response).
    pub error_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    use super::*;

    /// What collection found for the metric `name`: each point's count
    /// (a histogram's) or value (a sum's), and the exemplars' trace ids
    /// and times.
    fn found(collected: &[ResourceMetrics], name: &str) -> (Vec<i64>, Vec<(Vec<u8>, u64)>) {
        let mut values = Vec::new();
        let mut exemplars = Vec::new();
        let metrics = collected
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| m.name == name);
        for metric in metrics {
            match &metric.data {
                Some(Data::Histogram(h)) => {
                    for point in &h.data_points {
                        values.push(point.count as i64);
                        exemplars.extend(
                            point
                                .exemplars
                                .iter()
                                .map(|e| (e.trace_id.clone(), e.time_unix_nano)),
                        );
                    }
                }
                Some(Data::Sum(sum)) => {
                    values.extend(sum.data_points.iter().map(|p| {
                        match p.value {
                    Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(n),
                    ) => n,
                    _ => panic!("{name}: not a whole number"),
                }
                    }))
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        (values, exemplars)
    }

    /// What a request measures is in the next collection, with the
    /// exemplar's span and the time it was measured (not the time it was
    /// aggregated), and, with delta temporality, in no later one; the
    /// active level counts until the request ends.
    #[test]
    fn measurements_are_in_the_next_collection_only() {
        let metrics: &'static ServiceMetrics = Box::leak(Box::new(ServiceMetrics::new(
            Resource::default(),
            Arc::new(AtomicU64::new(0)),
            HistogramOptions::default(),
        )));
        let span = SpanContext::new(
            TraceId::from_bytes([3; 16]),
            SpanId::from_bytes([4; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let before = now_nanos();
        let mut active = metrics.request_started("POST", "http");
        let server = [
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, "POST"),
            KeyValue::new(semconv::HTTP_ROUTE, "/orders"),
            KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, 201),
        ];
        let sandbox = Sandbox::of(Some(Duration::from_micros(40)), 1 << 20);
        metrics.request_ended(Duration::from_millis(3), &server, Some(sandbox), &span);
        metrics.client_request_ended(
            Duration::from_millis(1),
            ClientRequest {
                method: "POST",
                address: Some("127.0.0.1".into()),
                port: 8001,
                status: Some(201),
                error_type: None,
            },
            &span,
        );
        let outcome = [("outcome", ValueRef::Str("confirmed"))];
        let orders = Measurement {
            kind: Kind::Counter,
            name: "orders",
            unit: "{order}",
            description: "Orders, by outcome.",
            value: 2.0,
        };
        metrics.record_guest(orders, &outcome, None);
        // Refused as they are recorded, and counted; not journaled.
        for refused in [
            Measurement {
                value: 0.5,
                ..orders
            },
            Measurement {
                name: "9lives",
                ..orders
            },
            Measurement {
                kind: Kind::Histogram,
                ..orders
            },
        ] {
            metrics.record_guest(refused, &outcome, None);
        }
        let after = now_nanos();

        let first = metrics.collect(Collect::Delta);
        for name in [
            semconv::HTTP_SERVER_REQUEST_DURATION,
            semconv::HTTP_CLIENT_REQUEST_DURATION,
            semconv::WASM_INSTANTIATE_DURATION,
            semconv::WASM_MEMORY_PEAK,
        ] {
            let (counts, exemplars) = found(&first, name);
            assert_eq!(counts, [1], "{name}");
            assert_eq!(exemplars.len(), 1, "{name}");
            let (trace_id, time) = &exemplars[0];
            assert_eq!(trace_id, &[3; 16], "{name}");
            assert!((before..=after).contains(time), "{name}: {time}");
        }
        assert_eq!(found(&first, "orders").0, [2]);
        assert_eq!(
            found(&first, semconv::WASM_GUEST_MEASUREMENTS_REFUSED).0,
            [3]
        );
        // The instrument keeps what its first measurement named; the
        // journal held only its place.
        let orders = first
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .find(|m| m.name == "orders")
            .unwrap();
        assert_eq!(
            (orders.unit.as_str(), orders.description.as_str()),
            ("{order}", "Orders, by outcome.")
        );
        assert_eq!(found(&first, semconv::HTTP_SERVER_ACTIVE_REQUESTS).0, [1]);

        active.end();
        let second = metrics.collect(Collect::Delta);
        assert_eq!(
            found(&second, semconv::HTTP_SERVER_REQUEST_DURATION).0,
            [0; 0]
        );
        assert_eq!(found(&second, "orders").0, [0; 0]);
        assert_eq!(found(&second, semconv::HTTP_SERVER_ACTIVE_REQUESTS).0, [0]);
    }

    /// Each of the server duration's keys is found at its place, and no
    /// other key is, not even one of the same length and first byte.
    #[test]
    fn server_keys_are_found_by_length_then_text() {
        for (at, key) in DURATION_KEYS[..SERVER_KEYS].iter().enumerate() {
            assert_eq!(server_key(key), Some(at), "{key}");
        }
        for other in [
            semconv::URL_PATH,
            semconv::SERVER_PORT,
            semconv::CLIENT_ADDRESS,
            "error.typo",
            "http.routs",
            "url.schema",
            "",
        ] {
            assert_eq!(server_key(other), None, "{other}");
        }
    }
}
