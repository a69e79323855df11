//! What a node in a process of its own tells the control plane at `GET /stats` of its
//! endpoint: its pods' usage counters, for the HorizontalPodAutoscalers' pod metrics, and the
//! Services its guests sent requests to, for the activator's idle check (the kubelet's
//! `/stats/summary`, reduced to what those two read). And the poller in the control plane's
//! process that asks every such node once a [`POLL_INTERVAL`].
//!
//! Why a poll: the nodes of the control plane's own process are read in memory; a node of
//! another process is only known by its endpoint, as the apiserver knows a kubelet's. A node
//! that does not answer a round counts for nothing in it: its pods have no new sample, and its
//! guests' requests in flight no longer hold a Service awake.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use capstan_core::k8s_openapi::jiff::Timestamp;
use capstan_runtime::Runtime;
use capstan_runtime::usage::{PodUsage, UsageSample};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::manager::pod_metrics::{NodeUsage, wall_clock};
use crate::proxy::ServiceTable;
use crate::proxy::activator::ServiceTraffic;

/// How often the nodes of other processes are asked: as often as the pod metrics sample.
pub const POLL_INTERVAL: Duration = crate::manager::pod_metrics::DEFAULT_INTERVAL;

/// The path of a node endpoint that answers [`NodeStats`].
pub const STATS_PATH: &str = "/stats";

/// A node's answer at [`STATS_PATH`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub pods: Vec<PodStats>,
    pub services: Vec<ServiceTraffic>,
}

/// One pod's cumulative counters ([`PodUsage`] on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
    pub requests: u64,
    pub in_flight: u64,
}

impl From<PodUsage> for PodStats {
    fn from(pod: PodUsage) -> Self {
        PodStats {
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
            cpu_nanos: pod.sample.cpu_nanos,
            memory_bytes: pod.sample.memory_bytes,
            requests: pod.sample.requests,
            in_flight: pod.sample.in_flight,
        }
    }
}

impl From<PodStats> for PodUsage {
    fn from(pod: PodStats) -> Self {
        PodUsage {
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
            sample: UsageSample {
                cpu_nanos: pod.cpu_nanos,
                memory_bytes: pod.memory_bytes,
                requests: pod.requests,
                in_flight: pod.in_flight,
            },
        }
    }
}

/// What a node endpoint reads its stats from: the node's runtime, and the service table its
/// guests' requests are counted in.
pub struct StatsSource {
    pub runtime: Runtime,
    pub services: Arc<ServiceTable>,
}

impl StatsSource {
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            pods: self.runtime.pod_usage().into_iter().map(PodStats::from).collect(),
            services: self.services.traffic.seen(),
        }
    }
}

/// The pods of the nodes in other processes, as the poller last received them: one more
/// node of the pod metrics sampler.
#[derive(Default)]
pub struct RemoteUsage {
    latest: RwLock<HashMap<String, (Timestamp, Vec<PodUsage>)>>,
}

impl RemoteUsage {
    fn replace(&self, latest: HashMap<String, (Timestamp, Vec<PodUsage>)>) {
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = latest;
    }
}

impl NodeUsage for RemoteUsage {
    fn pod_usage(&self) -> Vec<PodUsage> {
        self.timed_usage().into_iter().map(|(_, pod)| pod).collect()
    }

    /// Each pod with when its node's answer arrived: the sampler's rates divide by the time
    /// between the counters' readings, not between its own ticks.
    fn timed_usage(&self) -> Vec<(Option<Timestamp>, PodUsage)> {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        latest
            .values()
            .flat_map(|(at, pods)| pods.iter().map(|p| (Some(*at), p.clone())))
            .collect()
    }
}

/// Asks every node of another process for its stats once a [`POLL_INTERVAL`]: their pods go to
/// `usage`, their guests' traffic to `services`' log. Runs until aborted.
pub fn spawn_poller(services: Arc<ServiceTable>, usage: Arc<RemoteUsage>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            poll_once(&services, &usage).await;
        }
    })
}

/// One round: every node asked at once; what each answered is recorded as it was received.
pub async fn poll_once(services: &Arc<ServiceTable>, usage: &RemoteUsage) {
    let mut asked = tokio::task::JoinSet::new();
    let nodes = services.remote.nodes();
    let known: std::collections::HashSet<String> = nodes.keys().cloned().collect();
    for (node, addr) in nodes {
        let services = Arc::clone(services);
        asked.spawn(async move {
            let answer =
                services.remote.fetch(addr, STATS_PATH).await.and_then(|body| {
                    serde_json::from_slice::<NodeStats>(&body).map_err(|e| format!("a bad answer: {e}"))
                });
            (node, answer, wall_clock(), std::time::Instant::now())
        });
    }
    let mut pods = HashMap::new();
    let mut traffic = HashMap::new();
    while let Some(done) = asked.join_next().await {
        let Ok((node, answer, at, received)) = done else {
            continue;
        };
        match answer {
            Ok(stats) => {
                pods.insert(node.clone(), (at, stats.pods.into_iter().map(PodUsage::from).collect()));
                traffic.insert(node, (received, stats.services));
            }
            Err(e) => tracing::debug!(%node, "node stats: {e}"),
        }
    }
    usage.replace(pods);
    services.traffic.report(&known, traffic);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[tokio::test]
    async fn a_poll_takes_each_nodes_pods_and_traffic_and_drops_a_node_that_does_not_answer() {
        let stats = NodeStats {
            pods: vec![PodStats {
                namespace: "default".into(),
                name: "web".into(),
                uid: "u1".into(),
                cpu_nanos: 5,
                memory_bytes: 6,
                requests: 7,
                in_flight: 1,
            }],
            services: vec![ServiceTraffic {
                namespace: "default".into(),
                name: "web".into(),
                idle_millis: 0,
                in_flight: 3,
                last: 0,
            }],
        };
        let json = serde_json::to_string(&stats).unwrap();
        assert!(
            json.contains("\"cpuNanos\":5") && json.contains("\"idleMillis\":0"),
            "{json}"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                let json = json.clone();
                capstan_runtime::container::serve_connection(io, move |req| {
                    let json = json.clone();
                    Box::pin(async move {
                        match req.uri().path() {
                            STATS_PATH => capstan_runtime::container::plain(200, &json),
                            _ => capstan_runtime::container::plain(404, ""),
                        }
                    })
                });
            }
        });
        let services = Arc::new(ServiceTable::default());
        services.remote.set_nodes(HashMap::from([("far-1".to_owned(), node)]));
        let usage = RemoteUsage::default();
        poll_once(&services, &usage).await;
        let pods = usage.timed_usage();
        assert_eq!(pods.len(), 1);
        assert!(pods[0].0.is_some(), "timed at the answer");
        assert_eq!(PodStats::from(pods[0].1.clone()), stats.pods[0]);
        let key = crate::controllers::scale_to_zero::ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        };
        assert_eq!(services.traffic.traffic(&key).in_flight, 3);
        // The node stops answering (a fresh pool: the kept connection still has its server
        // task): its pods have no sample, and its requests in flight no longer count.
        server.abort();
        let _ = server.await;
        let gone = Arc::new(ServiceTable::default());
        gone.remote.set_nodes(HashMap::from([("far-1".to_owned(), node)]));
        poll_once(&gone, &usage).await;
        assert!(usage.pod_usage().is_empty());
        assert_eq!(gone.traffic.traffic(&key).in_flight, 0);
        // Polled again where it answered, after it left the cluster: forgotten.
        services.remote.set_nodes(HashMap::new());
        poll_once(&services, &usage).await;
        assert_eq!(services.traffic.traffic(&key).in_flight, 0);
    }
}
