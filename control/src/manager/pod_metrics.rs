//! Pod metrics for autoscaling, from the nodes' usage counters: what metrics-server and a
//! custom metrics adapter give the HPA controller in Kubernetes, in one small piece.
//!
//! Every [`PodMetricsOptions::interval`] the sampler reads each in-process node's
//! `Runtime::pod_usage()` (cumulative CPU time and finished requests, memory and requests in
//! flight now), keeps each pod's samples of the last [`PodMetricsOptions::window`], and turns
//! them into per-pod values ([`rates`], pure):
//!
//! - CPU, millicores: Δcpu_nanos / Δt;
//! - memory, bytes: the latest sample's;
//! - requests per second: Δrequests / Δt;
//! - concurrency: the mean of the sampled `in_flight` counts. Little's law (concurrency =
//!   throughput × mean latency) would be exact but needs the requests' cumulative latency,
//!   which the counters do not carry; sampling the gauge is unbiased for requests that last
//!   longer than the interval and reads near 0 for short ones.
//!
//! A pod has values once two samples of it span some time. A pod whose uid changes (deleted
//! and created again under its name) starts over, as does one whose counters go back. Nodes
//! that joined from other processes are read through the poll of their endpoints
//! (`node_stats.rs`), each pod's sample timed when its node answered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use capstan_core::k8s_openapi::jiff::Timestamp;
use capstan_runtime::Runtime;
use capstan_runtime::usage::{PodUsage, UsageSample};
use tokio::task::JoinHandle;

pub use crate::controllers::hpa::PodMetricValues;

/// How often the nodes are sampled by default: often enough that a 10 s window holds ten.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The span rates are computed over by default: long enough to smooth a burst of requests,
/// short enough that the HPA (every 15 s) sees a change of load within one sync.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// Where the HPA controller reads pods' metric values (tests give fixed ones).
pub trait PodMetricsSource: Send + Sync {
    /// The pod's values over the latest window; `None` until it has some.
    fn pod(&self, namespace: &str, name: &str) -> Option<PodMetricValues>;
}

/// Where the sampler reads a node's pods' counters: its runtime.
pub trait NodeUsage: Send + Sync {
    fn pod_usage(&self) -> Vec<PodUsage>;

    /// The counters with when they were read, where that is not now (a node of another
    /// process, read by a poll); `None` is now.
    fn timed_usage(&self) -> Vec<(Option<Timestamp>, PodUsage)> {
        self.pod_usage().into_iter().map(|p| (None, p)).collect()
    }
}

impl NodeUsage for Runtime {
    fn pod_usage(&self) -> Vec<PodUsage> {
        Runtime::pod_usage(self)
    }
}

/// How the sampler samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodMetricsOptions {
    pub interval: Duration,
    pub window: Duration,
}

impl Default for PodMetricsOptions {
    fn default() -> Self {
        PodMetricsOptions {
            interval: DEFAULT_INTERVAL,
            window: DEFAULT_WINDOW,
        }
    }
}

/// The current time with its fraction of a second (`registry::now` keeps whole seconds, as
/// stored timestamps do; rates and windows need finer).
pub fn wall_clock() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    Timestamp::new(secs, since.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// One sample of a pod's counters and when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    pub at: Timestamp,
    pub sample: UsageSample,
}

/// The values a window of samples (oldest first) gives; `None` with fewer than two samples
/// or no time between the first and the last.
pub fn rates(samples: &[Timed]) -> Option<PodMetricValues> {
    let (first, last) = (samples.first()?, samples.last()?);
    let span = last.at.duration_since(first.at);
    let nanos = u128::try_from(span.as_nanos()).ok().filter(|n| *n > 0)?;
    let per_second_milli = |delta: u64| {
        let v = u128::from(delta) * 1_000 * 1_000_000_000 / nanos;
        i64::try_from(v).unwrap_or(i64::MAX)
    };
    let cpu = last.sample.cpu_nanos.saturating_sub(first.sample.cpu_nanos);
    let requests = last.sample.requests.saturating_sub(first.sample.requests);
    let in_flight: u128 = samples.iter().map(|s| u128::from(s.sample.in_flight)).sum();
    let concurrency_milli = in_flight * 1_000 / samples.len() as u128;
    Some(PodMetricValues {
        // Δcpu_nanos / Δt_nanos is cores; a thousandth of a core is a millicore.
        cpu_millicores: i64::try_from(u128::from(cpu) * 1_000 / nanos).unwrap_or(i64::MAX),
        memory_bytes: i64::try_from(last.sample.memory_bytes).unwrap_or(i64::MAX),
        requests_per_second_milli: per_second_milli(requests),
        concurrency_milli: i64::try_from(concurrency_milli).unwrap_or(i64::MAX),
        timestamp: last.at,
        window: Duration::try_from(span).unwrap_or_default(),
    })
}

/// One pod's recent samples.
#[derive(Debug, Default)]
struct PodWindow {
    uid: String,
    samples: VecDeque<Timed>,
}

impl PodWindow {
    /// Adds a sample, starting over for a new pod or counters that went back, and forgets
    /// samples older than `window` before it. A sample no newer than the last is one already
    /// taken (a node of another process not polled again since): it is left out.
    fn push(&mut self, uid: &str, sample: Timed, window: Duration) {
        if self.uid == uid && self.samples.back().is_some_and(|last| sample.at <= last.at) {
            return;
        }
        let went_back = self.samples.back().is_some_and(|last| {
            sample.sample.cpu_nanos < last.sample.cpu_nanos || sample.sample.requests < last.sample.requests
        });
        if self.uid != uid || went_back {
            self.uid = uid.to_owned();
            self.samples.clear();
        }
        self.samples.push_back(sample);
        let cutoff = capstan_core::k8s_openapi::jiff::SignedDuration::try_from(window)
            .ok()
            .and_then(|w| sample.at.checked_sub(w).ok())
            .unwrap_or(Timestamp::MIN);
        while self.samples.front().is_some_and(|s| s.at < cutoff) {
            self.samples.pop_front();
        }
    }
}

type PodKey = (String, String);

/// The pods' latest values, and the sampler that keeps them.
pub struct PodMetrics {
    nodes: Vec<Arc<dyn NodeUsage>>,
    options: PodMetricsOptions,
    windows: std::sync::Mutex<HashMap<PodKey, PodWindow>>,
    values: RwLock<HashMap<PodKey, PodMetricValues>>,
}

impl PodMetrics {
    pub fn new(nodes: Vec<Arc<dyn NodeUsage>>, options: PodMetricsOptions) -> Arc<Self> {
        Arc::new(PodMetrics {
            nodes,
            options,
            windows: Default::default(),
            values: Default::default(),
        })
    }

    /// Samples every node once, at `at`, and recomputes the values. Pods no node runs any
    /// more are forgotten.
    pub fn sample(&self, at: Timestamp) {
        let usage: Vec<(Option<Timestamp>, PodUsage)> = self.nodes.iter().flat_map(|n| n.timed_usage()).collect();
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut seen = std::collections::HashSet::new();
        for (read_at, pod) in usage {
            let key = (pod.namespace, pod.name);
            let at = read_at.unwrap_or(at);
            windows.entry(key.clone()).or_default().push(
                &pod.uid,
                Timed { at, sample: pod.sample },
                self.options.window,
            );
            seen.insert(key);
        }
        windows.retain(|k, _| seen.contains(k));
        let values: HashMap<PodKey, PodMetricValues> = windows
            .iter_mut()
            .filter_map(|(k, w)| rates(w.samples.make_contiguous()).map(|v| (k.clone(), v)))
            .collect();
        *self.values.write().unwrap_or_else(std::sync::PoisonError::into_inner) = values;
    }

    /// Samples every `interval` until the task is aborted.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.options.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.sample(wall_clock());
            }
        })
    }
}

impl PodMetricsSource for PodMetrics {
    fn pod(&self, namespace: &str, name: &str) -> Option<PodMetricValues> {
        self.values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(namespace.to_owned(), name.to_owned()))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn t(secs: i64, millis: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + secs * 1000 + millis).unwrap()
    }

    fn sample(cpu_nanos: u64, memory_bytes: u64, requests: u64, in_flight: u64) -> UsageSample {
        UsageSample {
            cpu_nanos,
            memory_bytes,
            requests,
            in_flight,
        }
    }

    #[test]
    fn rates_over_a_window() {
        /// (what, samples, (millicores, bytes, milli-requests/s, milli-concurrency)).
        type Case = (&'static str, Vec<Timed>, Option<(i64, i64, i64, i64)>);
        let cases: &[Case] = &[
            ("no samples", vec![], None),
            (
                "one sample",
                vec![Timed {
                    at: t(0, 0),
                    sample: sample(5, 5, 5, 5),
                }],
                None,
            ),
            (
                "half a core, 25 requests a second, 2 in flight on average",
                vec![
                    Timed {
                        at: t(0, 0),
                        sample: sample(1_000_000_000, 100, 10, 1),
                    },
                    Timed {
                        at: t(1, 0),
                        sample: sample(1_500_000_000, 200, 35, 2),
                    },
                    Timed {
                        at: t(2, 0),
                        sample: sample(2_000_000_000, 300, 60, 3),
                    },
                ],
                Some((500, 300, 25_000, 2_000)),
            ),
            (
                "sub-second spans keep fractions: 3 requests in 400 ms",
                vec![
                    Timed {
                        at: t(0, 0),
                        sample: sample(0, 0, 0, 0),
                    },
                    Timed {
                        at: t(0, 400),
                        sample: sample(0, 0, 3, 1),
                    },
                ],
                Some((0, 0, 7_500, 500)),
            ),
            (
                "no time between samples",
                vec![
                    Timed {
                        at: t(1, 0),
                        sample: sample(0, 0, 0, 0),
                    },
                    Timed {
                        at: t(1, 0),
                        sample: sample(9, 0, 9, 0),
                    },
                ],
                None,
            ),
        ];
        for (name, samples, want) in cases {
            let got = rates(samples).map(|v| {
                (
                    v.cpu_millicores,
                    v.memory_bytes,
                    v.requests_per_second_milli,
                    v.concurrency_milli,
                )
            });
            assert_eq!(got, *want, "{name}");
        }
        let v = rates(&[
            Timed {
                at: t(0, 0),
                sample: sample(0, 0, 0, 0),
            },
            Timed {
                at: t(3, 0),
                sample: sample(0, 0, 0, 0),
            },
        ])
        .unwrap();
        assert_eq!((v.timestamp, v.window), (t(3, 0), Duration::from_secs(3)));
    }

    /// A node whose pods' counters the test sets.
    struct FakeNode(Mutex<Vec<PodUsage>>);

    impl NodeUsage for FakeNode {
        fn pod_usage(&self) -> Vec<PodUsage> {
            self.0.lock().unwrap().clone()
        }
    }

    fn usage(uid: &str, requests: u64) -> PodUsage {
        PodUsage {
            namespace: "default".into(),
            name: "web".into(),
            uid: uid.into(),
            sample: sample(0, 0, requests, 0),
        }
    }

    #[test]
    fn the_sampler_windows_restarts_and_forgets() {
        let node = Arc::new(FakeNode(Mutex::new(vec![usage("a", 0)])));
        let metrics = PodMetrics::new(
            vec![Arc::clone(&node) as Arc<dyn NodeUsage>],
            PodMetricsOptions {
                interval: Duration::from_secs(1),
                window: Duration::from_secs(2),
            },
        );
        metrics.sample(t(0, 0));
        assert_eq!(metrics.pod("default", "web"), None, "one sample is no rate");
        *node.0.lock().unwrap() = vec![usage("a", 10)];
        metrics.sample(t(1, 0));
        assert_eq!(metrics.pod("default", "web").unwrap().requests_per_second_milli, 10_000);
        *node.0.lock().unwrap() = vec![usage("a", 12)];
        metrics.sample(t(2, 0));
        *node.0.lock().unwrap() = vec![usage("a", 14)];
        metrics.sample(t(3, 0));
        // The window holds t=1..3 only: (14 - 10) / 2 s.
        assert_eq!(metrics.pod("default", "web").unwrap().requests_per_second_milli, 2_000);
        // The same name, a new pod: its counters start over, and so do its samples.
        *node.0.lock().unwrap() = vec![usage("b", 1)];
        metrics.sample(t(4, 0));
        assert_eq!(metrics.pod("default", "web"), None);
        *node.0.lock().unwrap() = vec![];
        metrics.sample(t(5, 0));
        assert!(metrics.windows.lock().unwrap().is_empty(), "gone pods are forgotten");
        assert_eq!(metrics.pod("other", "web"), None);
    }

    /// A node read by a poll: its counters come with the time they were read.
    struct PolledNode(Mutex<Vec<(Option<Timestamp>, PodUsage)>>);

    impl NodeUsage for PolledNode {
        fn pod_usage(&self) -> Vec<PodUsage> {
            self.0.lock().unwrap().iter().map(|(_, p)| p.clone()).collect()
        }

        fn timed_usage(&self) -> Vec<(Option<Timestamp>, PodUsage)> {
            self.0.lock().unwrap().clone()
        }
    }

    #[test]
    fn polled_counters_count_at_their_reading_and_once() {
        let node = Arc::new(PolledNode(Mutex::new(vec![(Some(t(0, 500)), usage("a", 0))])));
        let metrics = PodMetrics::new(
            vec![Arc::clone(&node) as Arc<dyn NodeUsage>],
            PodMetricsOptions::default(),
        );
        metrics.sample(t(1, 0));
        // Sampled again before the next poll: the same reading is not a second sample.
        metrics.sample(t(2, 0));
        assert_eq!(metrics.pod("default", "web"), None, "one reading is no rate");
        *node.0.lock().unwrap() = vec![(Some(t(2, 500)), usage("a", 40))];
        metrics.sample(t(3, 0));
        let values = metrics.pod("default", "web").unwrap();
        // 40 requests between the readings, 2 s apart (not the sampler's 3 s).
        assert_eq!(values.requests_per_second_milli, 20_000);
        assert_eq!(values.timestamp, t(2, 500));
    }
}
