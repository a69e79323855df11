//! What each pod uses, for autoscaling and metrics: the CPU time its guests ran, the linear
//! memory its live instances hold, and the HTTP requests its containers served and serve now.
//!
//! Counted where the work happens, so reading costs nothing and the hot path stays lean:
//! one [`PodUsageCounters`] per pod, shared by every container and instance of it, made of
//! relaxed atomics (each counter stands alone; a reader wants recent figures, not a
//! consistent cut across them). No lock and no allocation per request or per poll.
//!
//! - **CPU**: guest code runs synchronously inside the `poll` of the future that drives its
//!   instance (wasmtime's async support runs the guest on a fiber switched in by that poll,
//!   on the same OS thread). [`metered`] reads the thread's CPU clock before and after each
//!   poll and charges the difference: exact for guest code, and a guest blocked in the host
//!   (a sleep, an outgoing request, a CPU-quota pause) is charged nothing, as a blocked
//!   process is. The cost is two clock reads per poll; the kernel's vDSO does not serve
//!   thread CPU clocks, so each read is a system call (well under a microsecond).
//! - **Memory**: the store's `MemoryLimiter` (`store.rs`) already sees every growth of the
//!   instance's linear memories; it adds each growth to the pod and gives its total back when
//!   the store is dropped.
//! - **Requests**: `HttpServer::handle` (`container.rs`) counts a request in flight from
//!   the moment it is accepted until its response is ready (or the caller gives up), then
//!   counts it served.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use capstan_core::k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

/// A pod's usage counters at one instant. Cumulative counters only grow; rates are the reader's job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageSample {
    /// CPU time the pod's guests have run on host threads, in total since the pod started.
    pub cpu_nanos: u64,
    /// Bytes of linear memory the pod's live instances hold now.
    pub memory_bytes: u64,
    /// Requests its HTTP containers have finished serving, in total.
    pub requests: u64,
    /// Requests being served now.
    pub in_flight: u64,
}

/// One pod's usage, as `Runtime::pod_usage` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub sample: UsageSample,
}

/// The live counters of one pod, shared (in an `Arc`) by all its containers and instances.
#[derive(Debug, Default)]
pub struct PodUsageCounters {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
}

impl PodUsageCounters {
    /// The counters now.
    pub fn sample(&self) -> UsageSample {
        UsageSample {
            cpu_nanos: self.cpu_nanos.load(Ordering::Relaxed),
            memory_bytes: self.memory_bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_cpu(&self, nanos: u64) {
        self.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A linear memory of a live instance grew by `bytes` (or was created with that size).
    pub(crate) fn memory_grown(&self, bytes: u64) {
        self.memory_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// An instance holding `bytes` of linear memory is gone.
    pub(crate) fn memory_released(&self, bytes: u64) {
        self.memory_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counted served before it leaves the in-flight count, so a reader never sees it in
    /// neither.
    pub(crate) fn request_finished(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut`, charging to `usage` the CPU time the current thread spends inside each of its
/// polls (see the module docs). The future that runs a guest is wrapped once: a metered future
/// must not poll another metered future, or the inner one's time is charged twice.
pub(crate) async fn metered<F: Future>(usage: &PodUsageCounters, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        let start = thread_cpu_nanos();
        let poll = fut.as_mut().poll(cx);
        usage.add_cpu(thread_cpu_nanos().saturating_sub(start));
        poll
    })
    .await
}

/// The CPU time the calling thread has used, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64)
}

/// The pods one node's runtime runs now, for `Runtime::pod_usage`. Written when a pod starts
/// and when it is done (a lock then, never on a request's path); read at scrape time.
#[derive(Default)]
pub(crate) struct NodePods {
    pods: Mutex<HashMap<u64, RunningPod>>,
}

/// A listed pod: who it is, its counters and its latest status (for its phase).
pub(crate) struct RunningPod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) counters: Arc<PodUsageCounters>,
    pub(crate) status: watch::Receiver<Pod>,
}

impl NodePods {
    /// Lists a pod under `key`, which the caller makes unique for this node.
    pub(crate) fn insert(&self, key: u64, pod: RunningPod) {
        self.lock().insert(key, pod);
    }

    pub(crate) fn remove(&self, key: u64) {
        self.lock().remove(&key);
    }

    /// Each listed pod's usage, by namespace and name.
    pub(crate) fn usage(&self) -> Vec<PodUsage> {
        let mut out: Vec<PodUsage> = self
            .lock()
            .values()
            .map(|p| PodUsage {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                sample: p.counters.sample(),
            })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name, &a.uid).cmp(&(&b.namespace, &b.name, &b.uid)));
        out
    }

    /// How many listed pods are in each phase (`Pending` for a pod with no status yet).
    pub(crate) fn phases(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for p in self.lock().values() {
            let phase = p
                .status
                .borrow()
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into());
            *out.entry(phase).or_insert(0) += 1;
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, RunningPod>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use capstan_core::k8s_openapi::api::core::v1::PodStatus;

    use super::*;

    #[test]
    fn requests_move_from_in_flight_to_served() {
        let c = PodUsageCounters::default();
        c.request_started();
        c.request_started();
        assert_eq!((c.sample().in_flight, c.sample().requests), (2, 0));
        c.request_finished();
        assert_eq!((c.sample().in_flight, c.sample().requests), (1, 1));
        c.request_finished();
        assert_eq!((c.sample().in_flight, c.sample().requests), (0, 2));
    }

    #[test]
    fn memory_is_what_live_instances_hold() {
        let c = PodUsageCounters::default();
        c.memory_grown(64 << 10);
        c.memory_grown(128 << 10);
        assert_eq!(c.sample().memory_bytes, 192 << 10);
        c.memory_released(64 << 10);
        assert_eq!(c.sample().memory_bytes, 128 << 10);
    }

    /// Spins the thread for `d`: CPU time the meter must see.
    fn spin(d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::hint::black_box(0u64);
        }
    }

    #[tokio::test]
    async fn metered_charges_the_cpu_spent_inside_polls() {
        let c = PodUsageCounters::default();
        let out = metered(&c, async {
            spin(Duration::from_millis(30));
            tokio::task::yield_now().await;
            spin(Duration::from_millis(30));
            7
        })
        .await;
        assert_eq!(out, 7);
        let cpu = Duration::from_nanos(c.sample().cpu_nanos);
        // The thread may be descheduled while it spins, so CPU time can be below wall time;
        // it cannot be above it by much.
        assert!(cpu >= Duration::from_millis(20), "{cpu:?}");
        assert!(cpu < Duration::from_secs(2), "{cpu:?}");
    }

    #[tokio::test]
    async fn metered_charges_nothing_while_the_future_waits() {
        let c = PodUsageCounters::default();
        metered(&c, tokio::time::sleep(Duration::from_millis(100))).await;
        let cpu = Duration::from_nanos(c.sample().cpu_nanos);
        assert!(cpu < Duration::from_millis(50), "{cpu:?}");
    }

    fn running(name: &str, phase: Option<&str>) -> (RunningPod, watch::Sender<Pod>) {
        let pod = Pod {
            status: phase.map(|p| PodStatus {
                phase: Some(p.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (tx, rx) = watch::channel(pod);
        let entry = RunningPod {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            counters: Arc::default(),
            status: rx,
        };
        (entry, tx)
    }

    #[test]
    fn node_pods_list_usage_by_name_and_count_phases() {
        let pods = NodePods::default();
        let (b, _b) = running("b", Some("Running"));
        b.counters.request_started();
        let (a, _a) = running("a", None);
        let (c, _c) = running("c", Some("Running"));
        pods.insert(1, b);
        pods.insert(2, a);
        pods.insert(3, c);
        let listed = pods.usage();
        let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(listed[1].sample.in_flight, 1);
        assert_eq!(listed[1].uid, "uid-b");
        let phases: Vec<(String, u64)> = pods.phases().into_iter().collect();
        assert_eq!(phases, [("Pending".to_string(), 1), ("Running".to_string(), 2)]);
        pods.remove(1);
        assert_eq!(pods.usage().len(), 2);
    }
}
