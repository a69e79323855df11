//! The control plane's and nodes' metrics, in the Prometheus text format (OpenMetrics 1.0, as
//! `prometheus-client` encodes it), served at `/metrics` and at
//! `/api/v1/nodes/{name}/proxy/metrics`.
//!
//! One [`ControlMetrics`] per cluster, owned by the [`Api`](crate::api::Api) and reached
//! through `api.metrics()`: no process-wide registry, so two clusters in one process (tests)
//! never mix their figures. Components record into it (`request.rs` labels API requests,
//! `store.rs` instruments store writes); figures that exist elsewhere already (pods by phase,
//! a node's pods) are read when scraped, by collectors, so recording them costs nothing.
//!
//! Names and labels follow kube-apiserver and kube-scheduler where they have a counterpart
//! (`apiserver_request_total`, `scheduler_schedule_attempts_total`), so dashboards and queries
//! written for Kubernetes read them; Capstan's own figures are prefixed `capstan_`.

mod node;
mod request;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use node::{NodeMetrics, UsageSource};
pub use request::RequestKind;

use crate::store::Store;
use request::{DurationLabels, RequestLabels};
use store::{MeteredStore, ObjectLabels, PodsByPhase, StoreLabels, WriteLabels};

/// The media type of what [`ControlMetrics::encode`] and [`NodeMetrics::encode`] write:
/// `prometheus-client` writes OpenMetrics text (ending in `# EOF`), which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// kube-apiserver's `apiserver_request_duration_seconds` buckets: fine below a second, where
/// requests should be, coarse up to its 60 s request timeout.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0,
];

/// A store write is a transaction and a log sync: sub-millisecond in memory, milliseconds on a
/// disk, seconds only when something is wrong.
const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cold start is an instance compiled or loaded, instantiated and answering: milliseconds
/// from the code cache, seconds when a component is compiled first.
const COLD_START_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The outcome of one scheduling attempt (kube-scheduler's `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleResult {
    /// The pod was bound to a node.
    Scheduled,
    /// No node fits the pod.
    Unschedulable,
    /// A node was chosen but binding failed.
    Error,
}

impl ScheduleResult {
    fn label(self) -> &'static str {
        match self {
            ScheduleResult::Scheduled => "scheduled",
            ScheduleResult::Unschedulable => "unschedulable",
            ScheduleResult::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The control plane's metrics: one per cluster (see the module docs).
pub struct ControlMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<DurationLabels>,
    schedule_attempts: Family<ResultLabels, Counter>,
    scheduling_duration: HistogramFamily<ResultLabels>,
    store_writes: Family<WriteLabels, Counter>,
    store_write_duration: HistogramFamily<StoreLabels>,
    store_objects: Family<ObjectLabels, Gauge>,
    pods: Arc<PodsByPhase>,
    cold_start: Histogram,
    requests_held: Counter,
    /// The metrics of the nodes this process runs, by node name, for
    /// `/api/v1/nodes/{name}/proxy/metrics`.
    nodes: RwLock<HashMap<String, Arc<NodeMetrics>>>,
}

impl std::fmt::Debug for ControlMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlMetrics").finish_non_exhaustive()
    }
}

impl ControlMetrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, resource, subresource and HTTP response code",
            requests.clone(),
        );
        let request_duration: HistogramFamily<DurationLabels> =
            Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS.iter().copied()));
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, resource and subresource (long-running requests excluded)",
            request_duration.clone(),
        );
        let schedule_attempts = Family::<ResultLabels, Counter>::default();
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result: 'unschedulable' means a pod could not be scheduled, while 'error' means a binding failed",
            schedule_attempts.clone(),
        );
        // kube-scheduler's buckets: 1 ms doubling to about 16 s.
        let scheduling_duration: HistogramFamily<ResultLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 15)));
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            scheduling_duration.clone(),
        );
        let store_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "capstan_store_writes",
            "Writes to the object store, by operation (create, update, delete) and result",
            store_writes.clone(),
        );
        let store_write_duration: HistogramFamily<StoreLabels> =
            Family::new_with_constructor(|| Histogram::new(STORE_BUCKETS.iter().copied()));
        registry.register(
            "capstan_store_write_duration_seconds",
            "Latency of object store writes in seconds (one transaction and its log sync), by operation",
            store_write_duration.clone(),
        );
        let store_objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "capstan_store_objects",
            "Number of stored objects at the time of last check, by resource",
            store_objects.clone(),
        );
        let pods = Arc::new(PodsByPhase::default());
        registry.register_collector(Box::new(Arc::clone(&pods)));
        let cold_start = Histogram::new(COLD_START_BUCKETS.iter().copied());
        registry.register(
            "capstan_activator_cold_start_seconds",
            "Time from a request held for a scaled-to-zero workload to a pod ready to serve it",
            cold_start.clone(),
        );
        let requests_held = Counter::default();
        registry.register(
            "capstan_activator_requests_held",
            "Requests the activator held while their workload had no ready pod",
            requests_held.clone(),
        );
        Arc::new(ControlMetrics {
            registry,
            requests,
            request_duration,
            schedule_attempts,
            scheduling_duration,
            store_writes,
            store_write_duration,
            store_objects,
            pods,
            cold_start,
            requests_held,
            nodes: RwLock::default(),
        })
    }

    /// Every metric, in the text format of [`CONTENT_TYPE`]. Reads the store (pods by phase),
    /// so async callers run it on the blocking pool, as they do the API's other reads.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and the collectors fail only when writing does.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one API request, and times it unless it is long-running.
    pub fn observe_request(&self, kind: RequestKind, code: u16, elapsed: Duration) {
        self.requests.get_or_create(&kind.labels(code)).inc();
        if !kind.long_running {
            self.request_duration
                .get_or_create(&kind.duration_labels())
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts and times one scheduling attempt.
    pub fn schedule_attempt(&self, result: ScheduleResult, elapsed: Duration) {
        let labels = ResultLabels { result: result.label() };
        self.schedule_attempts.get_or_create(&labels).inc();
        self.scheduling_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The activator: a held request's wait for its workload's first ready pod.
    pub fn observe_cold_start(&self, d: Duration) {
        self.cold_start.observe(d.as_secs_f64());
    }

    /// The activator: a request held because its workload had no ready pod.
    pub fn request_held(&self) {
        self.requests_held.inc();
    }

    /// Counts the writes to `inner` (and the objects it holds), and reads its pods for
    /// `capstan_pods`. The store to give the API is the one returned. One store per
    /// `ControlMetrics`: a second call moves `capstan_pods` to the new store.
    pub fn instrument_store(self: &Arc<Self>, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        self.pods.read_from(Arc::clone(&inner));
        Arc::new(MeteredStore::new(inner, Arc::clone(self)))
    }

    /// Registers the metrics of a node this process runs.
    pub fn register_node(&self, node: &str, metrics: Arc<NodeMetrics>) {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_owned(), metrics);
    }

    /// The metrics of a node this process runs, if it is one.
    pub fn node(&self, node: &str) -> Option<Arc<NodeMetrics>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).get(node).cloned()
    }
}

/// The value of the sample whose name and labels are exactly `series` in Prometheus or
/// OpenMetrics text (for the benchmarks and tests that read `/metrics`).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::path::route;

    #[test]
    fn requests_are_counted_by_code_and_timed_unless_long_running() {
        let m = ControlMetrics::new();
        let create = RequestKind::of(&http::Method::POST, &route("/api/v1/namespaces/a/pods"), None);
        let watch = RequestKind::of(&http::Method::GET, &route("/api/v1/pods"), Some("watch=true"));
        m.observe_request(create, 201, Duration::from_millis(3));
        m.observe_request(create, 201, Duration::from_millis(30));
        m.observe_request(create, 409, Duration::from_millis(1));
        m.observe_request(watch, 200, Duration::from_secs(600));
        let text = m.encode();
        let created = r#"apiserver_request_total{verb="create",resource="pods",subresource="",code="201"}"#;
        assert_eq!(sample(&text, created), Some(2.0), "{text}");
        let conflict = r#"apiserver_request_total{verb="create",resource="pods",subresource="",code="409"}"#;
        assert_eq!(sample(&text, conflict), Some(1.0));
        let watched = r#"apiserver_request_total{verb="watch",resource="pods",subresource="",code="200"}"#;
        assert_eq!(sample(&text, watched), Some(1.0));
        let timed = r#"apiserver_request_duration_seconds_count{verb="create",resource="pods",subresource=""}"#;
        assert_eq!(sample(&text, timed), Some(3.0));
        let fast =
            r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="create",resource="pods",subresource=""}"#;
        assert_eq!(sample(&text, fast), Some(2.0), "{text}");
        assert!(
            !text.contains(r#"apiserver_request_duration_seconds_count{verb="watch""#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn scheduler_and_activator_figures() {
        let m = ControlMetrics::new();
        m.schedule_attempt(ScheduleResult::Scheduled, Duration::from_millis(2));
        m.schedule_attempt(ScheduleResult::Scheduled, Duration::from_millis(2));
        m.schedule_attempt(ScheduleResult::Unschedulable, Duration::from_millis(1));
        m.observe_cold_start(Duration::from_millis(40));
        m.request_held();
        m.request_held();
        let text = m.encode();
        assert_eq!(
            sample(&text, r#"scheduler_schedule_attempts_total{result="scheduled"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"scheduler_schedule_attempts_total{result="unschedulable"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"scheduler_scheduling_attempt_duration_seconds_count{result="scheduled"}"#
            ),
            Some(2.0)
        );
        assert_eq!(sample(&text, "capstan_activator_cold_start_seconds_count"), Some(1.0));
        assert_eq!(
            sample(&text, r#"capstan_activator_cold_start_seconds_bucket{le="0.05"}"#),
            Some(1.0)
        );
        assert_eq!(sample(&text, "capstan_activator_requests_held_total"), Some(2.0));
    }
}
