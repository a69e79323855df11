//! The activator (Knative's, in the proxy): counts each Service's traffic, scales idle
//! opted-in workloads to zero, and holds a request that finds no ready endpoint of such a
//! workload until it has woken. What is opted in and what is idle is decided by the pure
//! [`crate::controllers::scale_to_zero`]; this file does the counting, waiting and writing.
//!
//! A held request is forwarded exactly once, when a pod serves: nothing of it has reached a
//! guest before, so it is neither lost nor duplicated. However many requests arrive at zero,
//! the workload is scaled up once per wake. A request that waits longer than the workload's
//! timeout gets 504; one whose workload cannot be scaled gets 503, saying why.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use capstan_core::k8s_openapi::api::apps::v1::Deployment;
use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use capstan_core::k8s_openapi::api::core::v1::Service;
use capstan_runtime::container::{Response, plain};
use capstan_runtime::directory::PodDirectory;

use super::ServiceTable;
use crate::api::resources::find;
use crate::api::{Api, ApiError};
use crate::controllers::scale_to_zero::{self, Routes, ServiceKey, Traffic, Workload};
use crate::manager::informer::Informer;
use crate::manager::write::modify;

/// How often idle workloads are looked for.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// How often a held request looks again for a ready endpoint, besides when the service
/// table changes (a pod's port can start serving just after its Endpoints did).
const RECHECK: Duration = Duration::from_millis(20);
const COMPONENT: &str = "activator";

/// Each Service's request counters, by namespace and name. Once a Service has been seen, a
/// request costs a read lock, two hash lookups by `&str` (no allocation) and two atomics.
///
/// Guests on nodes in other processes reach Services without passing here; their nodes
/// report what their guests sent ([`TrafficLog::report`]), which counts as this process's
/// own traffic does.
pub struct TrafficLog {
    epoch: Instant,
    counters: RwLock<HashMap<String, HashMap<String, Arc<Counter>>>>,
    /// The latest report of each node in another process, by node name.
    reported: RwLock<HashMap<String, Vec<ServiceTraffic>>>,
}

/// A Service's traffic as one node saw it: what a node reports to the activator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTraffic {
    pub namespace: String,
    pub name: String,
    /// How long ago the last request was, in milliseconds.
    pub idle_millis: u64,
    /// Requests under way (held ones included).
    pub in_flight: u64,
    /// Milliseconds on the activator's clock: set where the report is received.
    #[serde(skip)]
    pub last: u64,
}

impl Default for TrafficLog {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            counters: RwLock::default(),
            reported: RwLock::default(),
        }
    }
}

struct Counter {
    /// Milliseconds since the log's epoch.
    last: AtomicU64,
    in_flight: AtomicU64,
}

/// A request in flight on a Service; counted until dropped.
pub struct InFlight(Arc<Counter>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TrafficLog {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn counter(&self, namespace: &str, service: &str) -> Arc<Counter> {
        let counters = self.counters.read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = counters.get(namespace).and_then(|n| n.get(service)) {
            return Arc::clone(c);
        }
        drop(counters);
        let mut counters = self.counters.write().unwrap_or_else(|e| e.into_inner());
        let counter = counters
            .entry(namespace.to_owned())
            .or_default()
            .entry(service.to_owned())
            .or_insert_with(|| {
                Arc::new(Counter {
                    last: AtomicU64::new(0),
                    in_flight: AtomicU64::new(0),
                })
            });
        Arc::clone(counter)
    }

    /// Notes a request that is answered elsewhere (a guest's, sent straight to an endpoint).
    pub fn touch(&self, namespace: &str, service: &str) {
        self.counter(namespace, service)
            .last
            .store(self.now(), Ordering::Relaxed);
    }

    /// Notes a request and counts it in flight until the guard drops.
    pub fn track(&self, namespace: &str, service: &str) -> InFlight {
        let counter = self.counter(namespace, service);
        counter.last.store(self.now(), Ordering::Relaxed);
        counter.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }

    /// A Service's traffic on the log's clock, this process's and what the nodes of others
    /// last reported together; one never seen counts as idle since the epoch.
    pub(crate) fn traffic(&self, key: &ServiceKey) -> Traffic {
        let counters = self.counters.read().unwrap_or_else(|e| e.into_inner());
        let mut traffic = match counters.get(&key.namespace).and_then(|n| n.get(&key.name)) {
            Some(c) => Traffic {
                last: Duration::from_millis(c.last.load(Ordering::Relaxed)),
                in_flight: c.in_flight.load(Ordering::Relaxed),
            },
            None => Traffic::default(),
        };
        drop(counters);
        let reported = self.reported.read().unwrap_or_else(|e| e.into_inner());
        for seen in reported.values().flatten() {
            if seen.namespace == key.namespace && seen.name == key.name {
                traffic.last = traffic.last.max(Duration::from_millis(seen.last));
                traffic.in_flight += seen.in_flight;
            }
        }
        traffic
    }

    /// Every Service this log has seen a request for, as a node reports it.
    pub fn seen(&self) -> Vec<ServiceTraffic> {
        let now = self.now();
        let counters = self.counters.read().unwrap_or_else(|e| e.into_inner());
        counters
            .iter()
            .flat_map(|(namespace, services)| {
                services.iter().map(move |(name, c)| ServiceTraffic {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    idle_millis: now.saturating_sub(c.last.load(Ordering::Relaxed)),
                    in_flight: c.in_flight.load(Ordering::Relaxed),
                    last: 0,
                })
            })
            .collect()
    }

    /// Takes the reports of the nodes in other processes, each with when it was received:
    /// each replaces that node's previous one. A node of `known` that did not answer this
    /// round keeps its last requests' times, but none in flight (nothing says they still
    /// are); a node no longer known is forgotten.
    pub fn report(&self, known: &HashSet<String>, reports: HashMap<String, (Instant, Vec<ServiceTraffic>)>) {
        let mut reported = self.reported.write().unwrap_or_else(|e| e.into_inner());
        reported.retain(|node, _| known.contains(node));
        for services in reported.values_mut() {
            for s in services.iter_mut() {
                s.in_flight = 0;
            }
        }
        for (node, (received, mut services)) in reports {
            let at = received.saturating_duration_since(self.epoch).as_millis() as u64;
            for s in &mut services {
                s.last = at.saturating_sub(s.idle_millis);
            }
            reported.insert(node, services);
        }
    }
}

/// One scale-up from zero, shared by every request that arrives while it goes on.
struct Wake {
    started: Instant,
    /// Why scaling up failed, if it did.
    failed: OnceLock<String>,
    /// How long after `started` a held request first found a ready pod.
    ready_after: OnceLock<Duration>,
    /// Told when a held request found a ready pod (a permit is kept if nobody waits yet).
    done: tokio::sync::Notify,
}

/// Why a held request is not forwarded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HoldError {
    #[error("activator: no pod of {workloads} became ready within {timeout:?}")]
    Timeout { workloads: String, timeout: Duration },
    #[error("activator: cannot scale {workloads} up from zero: {reason}")]
    Scale { workloads: String, reason: String },
}

impl HoldError {
    pub fn response(&self) -> Response {
        let status = match self {
            HoldError::Timeout { .. } => 504,
            HoldError::Scale { .. } => 503,
        };
        plain(status, &format!("{self}\n"))
    }
}

/// The activator of one cluster.
pub struct Activator {
    api: Arc<Api>,
    services: Arc<ServiceTable>,
    routes: RwLock<Routes>,
    wakes: Mutex<HashMap<Workload, Arc<Wake>>>,
}

impl Activator {
    pub fn new(api: Arc<Api>, services: Arc<ServiceTable>) -> Arc<Self> {
        Arc::new(Self {
            api,
            services,
            routes: RwLock::default(),
            wakes: Mutex::default(),
        })
    }

    /// The service table whose changes wake held requests.
    pub fn services(&self) -> &Arc<ServiceTable> {
        &self.services
    }

    /// The workloads behind a Service and how long to hold its requests, if any is opted in.
    pub fn hold_policy(&self, namespace: &str, service: &str) -> Option<(Vec<Workload>, Duration)> {
        let key = ServiceKey {
            namespace: namespace.to_owned(),
            name: service.to_owned(),
        };
        self.routes.read().unwrap_or_else(|e| e.into_inner()).hold_policy(&key)
    }

    /// Holds a request that arrived at `since` until `ready()` says an endpoint serves,
    /// waking `workloads`. `ready` is asked again whenever the service table or the status of
    /// a pod in `pods` changes, and every few milliseconds.
    pub async fn hold(
        &self,
        workloads: &[Workload],
        timeout: Duration,
        since: Instant,
        pods: Option<&PodDirectory>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), HoldError> {
        let names = || {
            workloads
                .iter()
                .map(|w| format!("deployment {}/{}", w.namespace, w.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.api.metrics().request_held();
        let wakes: Vec<Arc<Wake>> = workloads.iter().map(|w| self.wake(w, timeout)).collect();
        let deadline = tokio::time::Instant::from_std(since + timeout);
        loop {
            let changed = self.services.changed.notified();
            let pod_changed = async {
                match pods {
                    Some(pods) => pods.changed().await,
                    None => std::future::pending().await,
                }
            };
            if ready() {
                self.woken(workloads, &wakes);
                return Ok(());
            }
            if let Some(reason) = wakes.iter().find_map(|w| w.failed.get()) {
                return Err(HoldError::Scale {
                    workloads: names(),
                    reason: reason.clone(),
                });
            }
            tokio::select! {
                _ = changed => {}
                _ = pod_changed => {}
                _ = tokio::time::sleep(RECHECK) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(HoldError::Timeout { workloads: names(), timeout });
                }
            }
        }
    }

    /// The wake of `workload` under way, or a new one that scales it up (once).
    fn wake(&self, workload: &Workload, timeout: Duration) -> Arc<Wake> {
        let mut wakes = self.wakes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wake) = wakes.get(workload)
            && wake.started.elapsed() < timeout
        {
            return Arc::clone(wake);
        }
        let wake = Arc::new(Wake {
            started: Instant::now(),
            failed: OnceLock::new(),
            ready_after: OnceLock::new(),
            done: tokio::sync::Notify::new(),
        });
        wakes.insert(workload.clone(), Arc::clone(&wake));
        let (api, workload, task_wake) = (Arc::clone(&self.api), workload.clone(), Arc::clone(&wake));
        tokio::spawn(async move {
            let target = workload.clone();
            match api.call(move |api| rescale(api, &target, |r| r == 0, 1)).await {
                Err(e) => {
                    let _ = task_wake.failed.set(e.to_string());
                }
                // The cold start is counted, and the event written, once the wake is over:
                // on the way the event would only hold up the writes that bring the pod up.
                // A wake that found the workload already scaled up (`Ok(false)`) is no cold
                // start.
                Ok(true) => {
                    let woken = tokio::time::timeout(timeout, task_wake.done.notified()).await;
                    let message = match (woken, task_wake.ready_after.get()) {
                        (Ok(()), Some(after)) => {
                            api.metrics().observe_cold_start(*after);
                            format!(
                                "Scaled up to 1 replica from zero: a request arrived; a pod was ready after {} ms",
                                after.as_millis()
                            )
                        }
                        _ => "Scaled up to 1 replica from zero: a request arrived".to_owned(),
                    };
                    let _ = api
                        .call(move |api| note(api, &workload, "ScaledFromZero", &message))
                        .await;
                }
                Ok(false) => {}
            }
        });
        wake
    }

    /// A held request found a ready endpoint: the wakes are over; their cold start (from the
    /// wake's first held request to its first ready endpoint) is taken once.
    fn woken(&self, workloads: &[Workload], wakes: &[Arc<Wake>]) {
        let mut current = self.wakes.lock().unwrap_or_else(|e| e.into_inner());
        for (workload, wake) in workloads.iter().zip(wakes) {
            if wake.ready_after.set(wake.started.elapsed()).is_ok() {
                wake.done.notify_one();
            }
            if current.get(workload).is_some_and(|w| Arc::ptr_eq(w, wake)) {
                current.remove(workload);
            }
        }
    }

    /// Follows Services, Deployments and (when served) HorizontalPodAutoscalers, and scales
    /// idle opted-in workloads to zero. Runs until its watches end.
    pub async fn run(self: Arc<Self>) -> Result<(), ApiError> {
        let info = |g, v, r| find(g, v, r).ok_or_else(|| ApiError::Internal(format!("{r} is not served")));
        let mut services = Informer::<Service>::start(&self.api, info("", "v1", "services")?).await?;
        let mut deployments = Informer::<Deployment>::start(&self.api, info("apps", "v1", "deployments")?).await?;
        let mut hpas = match find("autoscaling", "v2", "horizontalpodautoscalers") {
            Some(info) => Some(Informer::<HorizontalPodAutoscaler>::start(&self.api, info).await?),
            None => None,
        };
        let mut reported: HashMap<Workload, String> = HashMap::new();
        let mut tick = tokio::time::interval(IDLE_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hpa_change = async {
                match hpas.as_mut() {
                    Some(h) => h.next().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            let mut changed = false;
            tokio::select! {
                c = services.next() => { if c.is_none() { break } changed = true }
                c = deployments.next() => { if c.is_none() { break } changed = true }
                c = hpa_change => { if c.is_none() { break } changed = true }
                _ = tick.tick() => {}
            }
            if !(services.synced() && deployments.synced() && hpas.as_ref().is_none_or(|h| h.synced())) {
                continue;
            }
            if changed {
                let svc: Vec<Service> = services.items.values().map(|s| (**s).clone()).collect();
                let deps: Vec<Deployment> = deployments.items.values().map(|d| (**d).clone()).collect();
                let hpa: Vec<HorizontalPodAutoscaler> = hpas
                    .as_ref()
                    .map(|h| h.items.values().map(|x| (**x).clone()).collect())
                    .unwrap_or_default();
                let routes = Routes::new(&svc, &deps, &hpa);
                self.report_invalid(&routes, &deployments, &mut reported).await;
                *self.routes.write().unwrap_or_else(|e| e.into_inner()) = routes;
                continue;
            }
            let idle = {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                let log = &self.services.traffic;
                scale_to_zero::idle(&routes, |s| log.traffic(s), log.epoch.elapsed())
            };
            for workload in idle {
                let api = Arc::clone(&self.api);
                let result = api.call(move |api| scale_down(api, &workload)).await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "scaling an idle workload to zero failed");
                }
            }
        }
        Ok(())
    }

    /// A Warning event, once per message, on each workload whose annotations do not parse.
    async fn report_invalid(
        &self,
        routes: &Routes,
        deployments: &Informer<Deployment>,
        reported: &mut HashMap<Workload, String>,
    ) {
        reported.retain(|w, _| routes.invalid.contains_key(w));
        for (workload, why) in &routes.invalid {
            if reported.get(workload) == Some(why) {
                continue;
            }
            reported.insert(workload.clone(), why.clone());
            let key = format!("{}/{}", workload.namespace, workload.name);
            let Some(object) = deployments
                .items
                .get(&key)
                .and_then(|d| serde_json::to_value(&**d).ok())
            else {
                continue;
            };
            let message = why.clone();
            let _ = self
                .api
                .call(move |api| {
                    crate::events::record(
                        api,
                        &object,
                        "Deployment",
                        "Warning",
                        "InvalidScaleToZero",
                        &message,
                        COMPONENT,
                    );
                    Ok(())
                })
                .await;
        }
    }
}

fn deployments() -> Result<&'static crate::api::resources::ResourceInfo, ApiError> {
    find("apps", "v1", "deployments").ok_or_else(|| ApiError::Internal("deployments are not served".into()))
}

/// Sets a workload's replicas to `to` if `wanted(current)` holds; `Ok(false)` when it did not.
/// One read and one write, as a `/scale` PUT (retried over a controller's status write that
/// came between, as the controllers' writes are).
fn rescale(api: &Api, workload: &Workload, wanted: impl Fn(i64) -> bool, to: i64) -> Result<bool, ApiError> {
    let written = modify(
        api,
        deployments()?,
        Some(&workload.namespace),
        &workload.name,
        None,
        false,
        |d| {
            if wanted(d["spec"]["replicas"].as_i64().unwrap_or(0)) {
                d["spec"]["replicas"] = serde_json::Value::from(to);
            }
        },
    )?;
    Ok(written.is_some())
}

/// Records a Normal event about a workload.
fn note(api: &Api, workload: &Workload, reason: &str, message: &str) -> Result<(), ApiError> {
    let object = api.get(deployments()?, Some(&workload.namespace), &workload.name)?;
    crate::events::record(api, &object, "Deployment", "Normal", reason, message, COMPONENT);
    Ok(())
}

/// Sets an idle workload to zero replicas.
fn scale_down(api: &Api, workload: &Workload) -> Result<(), ApiError> {
    if rescale(api, workload, |r| r > 0, 0)? {
        note(
            api,
            workload,
            "ScaledToZero",
            "Scaled down to 0 replicas: no request within the grace period",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_counts_requests_in_flight_and_the_last_one() {
        let log = TrafficLog::default();
        let key = ServiceKey {
            namespace: "default".into(),
            name: "fn".into(),
        };
        assert_eq!(log.traffic(&key), Traffic::default());
        let a = log.track("default", "fn");
        let b = log.track("default", "fn");
        assert_eq!(log.traffic(&key).in_flight, 2);
        drop(a);
        drop(b);
        assert_eq!(log.traffic(&key).in_flight, 0);
        std::thread::sleep(Duration::from_millis(5));
        log.touch("default", "fn");
        assert!(log.traffic(&key).last >= Duration::from_millis(5));
        assert_eq!(log.traffic(&key).in_flight, 0);
    }

    #[test]
    fn hold_errors_say_what_and_answer_504_or_503() {
        let timeout = HoldError::Timeout {
            workloads: "deployment default/fn".into(),
            timeout: Duration::from_secs(30),
        };
        assert_eq!(timeout.response().status(), 504);
        assert!(timeout.to_string().contains("default/fn"));
        let scale = HoldError::Scale {
            workloads: "deployment default/fn".into(),
            reason: "forbidden".into(),
        };
        assert_eq!(scale.response().status(), 503);
    }

    #[test]
    fn reports_of_other_nodes_count_as_traffic_until_the_next_replaces_them() {
        let log = TrafficLog::default();
        let key = ServiceKey {
            namespace: "default".into(),
            name: "fn".into(),
        };
        let report = |idle_millis, in_flight| ServiceTraffic {
            namespace: "default".into(),
            name: "fn".into(),
            idle_millis,
            in_flight,
            last: 0,
        };
        let received = log.epoch + Duration::from_secs(10);
        let reports = HashMap::from([
            ("far-1".to_owned(), (received, vec![report(4_000, 2)])),
            ("far-2".to_owned(), (received, vec![report(1_000, 0)])),
        ]);
        let known: HashSet<String> = ["far-1".to_owned(), "far-2".to_owned()].into();
        log.report(&known, reports);
        let seen = log.traffic(&key);
        assert_eq!(seen.in_flight, 2, "in flight on every node together");
        assert_eq!(seen.last, Duration::from_secs(9), "the latest request of any node");
        // This process's own request adds to them.
        let local = log.track("default", "fn");
        assert_eq!(log.traffic(&key).in_flight, 3);
        // A round far-1 did not answer: its last request still counts, its requests in
        // flight no longer do.
        let later = received + Duration::from_secs(5);
        log.report(
            &known,
            HashMap::from([("far-2".to_owned(), (later, vec![report(1_000, 0)]))]),
        );
        let seen = log.traffic(&key);
        assert_eq!(seen.in_flight, 1);
        assert_eq!(
            seen.last,
            Duration::from_secs(14),
            "far-2's request 1 s before the later round"
        );
        log.report(&known, HashMap::new());
        assert!(log.traffic(&key).last >= Duration::from_secs(14), "still known: kept");
        // far-1 and far-2 gone from the nodes: forgotten.
        log.report(&HashSet::new(), HashMap::new());
        assert_eq!(log.traffic(&key).in_flight, 1);
        assert!(
            log.traffic(&key).last < Duration::from_secs(9),
            "only this process's request"
        );
        let exported = log.seen();
        assert_eq!(exported.len(), 1);
        assert_eq!((exported[0].name.as_str(), exported[0].in_flight), ("fn", 1));
        drop(local);
    }
}
