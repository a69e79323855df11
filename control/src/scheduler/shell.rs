//! The scheduler's I/O shell: watches nodes and pods through the API, keeps the [`Snapshot`]
//! current, and for each pending pod (highest priority first) binds it to the node the core
//! picks, preempts lower-priority pods for it, or records why it cannot run (the
//! `PodScheduled=False` condition and a `FailedScheduling` event).
//!
//! Queues as kube-scheduler's: a pod is tried when it appears; one that does not fit waits
//! among the unschedulable until the cluster changes in a way that could help (a node added
//! or changed, a bound pod gone) or [`UNSCHEDULABLE_FLUSH`] passes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::{Snapshot, feasible_nodes_to_find, preempt, queue_order, schedule_from};
use crate::api::registry::{DeleteOptions, WriteOptions, now, timestamp};
use crate::api::resources::{ResourceInfo, find};
use crate::api::watch::{ApiWatch, WatchOptions};
use crate::api::{Api, ApiError};
use crate::events;
use crate::metrics::ScheduleResult;

/// The scheduler's name: pods with another `schedulerName` are left alone.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// How long an unschedulable pod waits at most before it is tried again (kube-scheduler
/// flushes its unschedulable queue after 5 minutes; a small cluster changes less visibly,
/// so we look again sooner).
pub const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(10);

fn pods() -> &'static ResourceInfo {
    find("", "v1", "pods").expect("pods are served")
}

fn nodes() -> &'static ResourceInfo {
    find("", "v1", "nodes").expect("nodes are served")
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// What the scheduler knows of the cluster.
#[derive(Default)]
struct State {
    nodes: BTreeMap<String, Node>,
    /// Bound, running pods by key, with their node.
    bound: HashMap<String, (String, Arc<Pod>)>,
    /// Pods waiting for a node, by key.
    pending: HashMap<String, Arc<Pod>>,
    /// Pending pods to try now.
    active: BTreeSet<String>,
    /// The last unschedulable message written per pod, so it is written once.
    reported: HashMap<String, String>,
    snapshot: Option<Snapshot>,
    /// Where the next pod's node search starts (kube-scheduler's `nextStartNodeIndex`).
    next_start: usize,
}

impl State {
    fn snapshot(&mut self) -> &mut Snapshot {
        self.snapshot.get_or_insert_with(|| {
            let nodes: Vec<Node> = self.nodes.values().cloned().collect();
            let pods: Vec<Pod> = self.bound.values().map(|(_, p)| (**p).clone()).collect();
            Snapshot::new(&nodes, &pods)
        })
    }

    /// Every pending pod becomes worth trying again.
    fn flush(&mut self) {
        self.active.extend(self.pending.keys().cloned());
    }

    fn node_event(&mut self, kind: &str, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        if kind == "DELETED" {
            self.nodes.remove(&name);
        } else {
            self.nodes.insert(name, node);
        }
        self.snapshot = None;
        self.flush();
    }

    /// Takes the pod as the informers share it: holding it keeps it shared (see
    /// [`Decoded`](crate::store::Decoded)), where a copy would make them decode it again.
    fn pod_event(&mut self, kind: &str, pod: Arc<Pod>) {
        let key = key_of(&pod);
        let wanted = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(SCHEDULER_NAME)
            == SCHEDULER_NAME;
        let gone = kind == "DELETED" || terminal(&pod);
        match node_of(&pod).map(str::to_owned) {
            Some(node) if !gone => {
                self.pending.remove(&key);
                self.active.remove(&key);
                self.reported.remove(&key);
                let known = self
                    .bound
                    .get(&key)
                    .is_some_and(|(_, p)| p.metadata.uid == pod.metadata.uid);
                if !known && let Some(snapshot) = self.snapshot.as_mut() {
                    snapshot.add_pod(&pod, &node);
                }
                self.bound.insert(key, (node, pod));
            }
            Some(_) => {
                if let Some((node, _)) = self.bound.remove(&key) {
                    if let Some(snapshot) = self.snapshot.as_mut() {
                        snapshot.remove_pod(&node, &key);
                    }
                    // Room was made: pods waiting for it may fit now.
                    self.flush();
                }
            }
            None if gone || !wanted || pod.metadata.deletion_timestamp.is_some() => {
                self.pending.remove(&key);
                self.active.remove(&key);
                self.reported.remove(&key);
            }
            None => {
                self.active.insert(key.clone());
                self.pending.insert(key, pod);
            }
        }
    }
}

/// Runs the scheduler until the task is dropped.
pub async fn run(api: Arc<Api>) {
    loop {
        if let Err(e) = run_once(&api).await {
            tracing::warn!(error = %e, "scheduler watch failed; restarting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn watch(api: &Arc<Api>, info: &'static ResourceInfo) -> Result<ApiWatch, ApiError> {
    api.call(move |a| a.watch(info, None, WatchOptions::default())).await
}

async fn run_once(api: &Arc<Api>) -> Result<(), ApiError> {
    let mut node_watch = watch(api, nodes()).await?;
    let mut pod_watch = watch(api, pods()).await?;
    let mut state = State::default();
    let mut flush = tokio::time::interval(UNSCHEDULABLE_FLUSH);
    loop {
        tokio::select! {
            // Decoded once for every informer of the type.
            event = node_watch.next_shared::<Node>() => {
                let Some(event) = event else { return Ok(()) };
                state.node_event(event.kind, Arc::unwrap_or_clone(event.object));
            }
            event = pod_watch.next_shared::<Pod>() => {
                let Some(event) = event else { return Ok(()) };
                state.pod_event(event.kind, event.object);
            }
            _ = flush.tick() => state.flush(),
        }
        if !state.active.is_empty() {
            cycle(api, &mut state).await;
        }
    }
}

/// Tries every active pending pod, most important first. Each try is one attempt in the
/// scheduler's metrics, timed as kube-scheduler times it: choosing the node and binding, or
/// choosing preemption victims for a pod that fits nowhere (the writes that report it are
/// not counted).
async fn cycle(api: &Arc<Api>, state: &mut State) {
    let mut batch: Vec<Arc<Pod>> = std::mem::take(&mut state.active)
        .into_iter()
        .filter_map(|k| state.pending.get(&k).cloned())
        .collect();
    batch.sort_by(|a, b| queue_order(a, b));
    for pod in batch {
        let key = key_of(&pod);
        let started = Instant::now();
        let nodes = state.snapshot().nodes().len();
        let start = state.next_start;
        let decision = schedule_from(&pod, state.snapshot(), start, feasible_nodes_to_find(nodes));
        match decision {
            Ok((node, examined)) => {
                state.next_start = (start + examined) % nodes.max(1);
                let (ns, name) = key
                    .split_once('/')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .unwrap_or_default();
                let target = node.clone();
                let bound = api
                    .call(move |a| a.bind(&ns, &name, &json!({"target": {"kind": "Node", "name": target}})))
                    .await;
                let result = if bound.is_ok() {
                    ScheduleResult::Scheduled
                } else {
                    ScheduleResult::Error
                };
                api.metrics().schedule_attempt(result, started.elapsed());
                match bound {
                    Ok(_) => {
                        // Assume the binding now, so the next pod sees the room it takes.
                        let mut assumed = (*pod).clone();
                        if let Some(spec) = assumed.spec.as_mut() {
                            spec.node_name = Some(node.clone());
                        }
                        state.pod_event("MODIFIED", Arc::new(assumed));
                        let message = format!("Successfully assigned {key} to {node}");
                        let value = serde_json::to_value(&*pod).unwrap_or(Value::Null);
                        let _ = api
                            .call(move |a| {
                                events::record(a, &value, "Pod", "Normal", "Scheduled", &message, SCHEDULER_NAME);
                                Ok(())
                            })
                            .await;
                    }
                    Err(e) => tracing::debug!(pod = %key, error = %e, "binding failed"),
                }
            }
            Err(unschedulable) => {
                let victims = preempt(&pod, state.snapshot());
                api.metrics()
                    .schedule_attempt(ScheduleResult::Unschedulable, started.elapsed());
                unschedulable_pod(api, state, &pod, &unschedulable.message, victims).await;
            }
        }
    }
}

/// Records why `pod` cannot run, and starts preempting `victims` for it if there are any.
async fn unschedulable_pod(
    api: &Arc<Api>,
    state: &mut State,
    pod: &Pod,
    message: &str,
    victims: Option<(String, Vec<String>)>,
) {
    let key = key_of(pod);
    if let Some((node, victims)) = &victims {
        for victim in victims {
            let Some((ns, name)) = victim.split_once('/').map(|(a, b)| (a.to_owned(), b.to_owned())) else {
                continue;
            };
            let message = format!("Preempted by pod {key} on node {node}");
            let _ = api
                .call(move |a| {
                    if let Ok(victim) = a.get(pods(), Some(&ns), &name) {
                        events::record(a, &victim, "Pod", "Normal", "Preempted", &message, SCHEDULER_NAME);
                    }
                    a.delete(pods(), Some(&ns), &name, &DeleteOptions::default())
                        .map(|_| ())
                })
                .await;
        }
    }
    if state.reported.get(&key).map(String::as_str) == Some(message) {
        return;
    }
    state.reported.insert(key.clone(), message.to_owned());
    let value = serde_json::to_value(pod).unwrap_or(Value::Null);
    let message = message.to_owned();
    let nominated = victims.map(|(node, _)| node);
    let (ns, name) = key
        .split_once('/')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap_or_default();
    let _ = api
        .call(move |a| {
            events::record(
                a,
                &value,
                "Pod",
                "Warning",
                "FailedScheduling",
                &message,
                SCHEDULER_NAME,
            );
            let mut current = a.get(pods(), Some(&ns), &name)?;
            let conditions = current["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(json!({
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": timestamp(now()),
            }));
            current["status"]["conditions"] = Value::Array(conditions);
            if let Some(node) = nominated {
                current["status"]["nominatedNodeName"] = Value::from(node);
            }
            a.update(pods(), Some(&ns), &name, current, true, &WriteOptions::default())
                .map(|_| ())
        })
        .await;
}
