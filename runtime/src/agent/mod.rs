//! The node agent (the kubelet's role): registers the node, heartbeats its Lease, follows the
//! pods bound to it, runs them through the [`Runtime`], reports their status, and removes them
//! from the API once a deletion has stopped them.
//!
//! The agent speaks to the control plane only through [`ClusterClient`]: the control plane
//! implements it over its API in-process (`capstan up`) and over HTTP for a node in another
//! process, so the agent is the same either way. What to do about each pod is the pure
//! [`decide::decide`]; this module is the loop that applies it.

pub mod decide;
pub mod node;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use capstan_core::env::ConfigObjects;
use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use tokio::sync::mpsc;

use self::decide::{Action, Local, decide};
pub use self::node::NodeOptions;
use crate::{PodHandle, Runtime};

/// How long to wait before retrying the control plane after a failure. Edge nodes have flaky
/// links: the agent keeps its pods running and retries, it never gives up.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// A failed call to the control plane.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// A change to the set of pods bound to this node.
#[derive(Debug)]
pub enum PodChange {
    /// The complete set (after a list or relist): anything not in it is gone.
    Snapshot(Vec<Pod>),
    /// A pod was created or changed.
    Applied(Pod),
    /// A pod was removed from the API.
    Deleted(Pod),
}

/// The agent's view of the control plane.
pub trait ClusterClient: Send + Sync + 'static {
    /// Creates the node's Node object, or replaces its status and labels if it exists.
    fn register_node(&self, node: Node) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Creates or renews the node's Lease.
    fn renew_lease(&self, lease: Lease) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Follows the pods bound to `node`: a snapshot first, then changes; a new snapshot
    /// whenever the underlying watch had to restart. The stream ends if the control plane
    /// goes away.
    fn watch_pods(&self, node: &str) -> impl Future<Output = Result<mpsc::Receiver<PodChange>, ClientError>> + Send;
    /// Writes a pod's status.
    fn write_status(&self, pod: &Pod) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Removes a stopped pod from the API (a zero grace period, conditional on its uid).
    fn remove_pod(&self, pod: &Pod) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// The ConfigMaps and Secrets of the pod's namespace, for its env and volumes.
    fn config_for(&self, pod: &Pod) -> impl Future<Output = Result<ConfigObjects, ClientError>> + Send;
}

/// A pod this node runs.
struct Managed {
    handle: PodHandle,
    local: Local,
    /// The pod as the API last had it.
    pod: Pod,
}

/// One node's agent.
pub struct Agent<C> {
    client: Arc<C>,
    runtime: Runtime,
    opts: NodeOptions,
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl<C: ClusterClient> Agent<C> {
    pub fn new(client: Arc<C>, runtime: Runtime, opts: NodeOptions) -> Self {
        Agent { client, runtime, opts }
    }

    /// Runs the node until the task is dropped.
    pub async fn run(self) {
        let name = self.opts.name.clone();
        let node = node::node_object(
            &self.opts,
            self.runtime.allocatable(),
            &self.runtime.config().host_ip,
            crate::status::now(),
        );
        while let Err(e) = self.client.register_node(node.clone()).await {
            tracing::warn!(node = %name, error = %e, "registering the node failed; retrying");
            tokio::time::sleep(RETRY_DELAY).await;
        }
        let lease_duration = self.opts.lease_duration();
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            Arc::clone(&self.client),
            name.clone(),
            lease_duration,
        )));
        let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<String>();
        let mut managed: HashMap<String, Managed> = HashMap::new();
        loop {
            let mut changes = match self.client.watch_pods(&name).await {
                Ok(rx) => rx,
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "watching pods failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Some(change) => self.apply(change, &mut managed, &finished_tx).await,
                        None => break,
                    },
                    Some(uid) = finished_rx.recv() => {
                        if let Some(m) = managed.get_mut(&uid) {
                            m.local.finished = true;
                            let pod = m.pod.clone();
                            self.step(pod, &mut managed, &finished_tx).await;
                        }
                    }
                }
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }

    async fn apply(
        &self,
        change: PodChange,
        managed: &mut HashMap<String, Managed>,
        finished: &mpsc::UnboundedSender<String>,
    ) {
        match change {
            PodChange::Snapshot(pods) => {
                let present: std::collections::HashSet<String> = pods.iter().map(uid_of).collect();
                let gone: Vec<String> = managed.keys().filter(|u| !present.contains(*u)).cloned().collect();
                for uid in gone {
                    self.orphan(&uid, managed);
                }
                for pod in pods {
                    self.step(pod, managed, finished).await;
                }
            }
            PodChange::Applied(pod) => self.step(pod, managed, finished).await,
            PodChange::Deleted(pod) => self.orphan(&uid_of(&pod), managed),
        }
    }

    /// A pod the API no longer has: kill it, and forget it once it has stopped.
    fn orphan(&self, uid: &str, managed: &mut HashMap<String, Managed>) {
        let Some(m) = managed.get_mut(uid) else { return };
        if m.local.finished {
            managed.remove(uid);
            return;
        }
        if let Action::Stop { grace } = decide::orphaned() {
            m.handle.stop(Some(grace));
            m.local.stopping = true;
        }
        // Marked deleted so that `finished` forgets it instead of removing it again.
        m.pod.metadata.deletion_timestamp = None;
        m.pod.metadata.uid = None;
    }

    async fn step(&self, pod: Pod, managed: &mut HashMap<String, Managed>, finished: &mpsc::UnboundedSender<String>) {
        let uid = uid_of(&pod);
        if uid.is_empty() {
            return;
        }
        let local = managed.get(&uid).map(|m| m.local);
        // A pod we orphaned (the API dropped it) is forgotten when it finishes.
        if managed.get(&uid).is_some_and(|m| m.pod.metadata.uid.is_none()) {
            if local.is_some_and(|l| l.finished) {
                managed.remove(&uid);
            }
            return;
        }
        match decide(&pod, local) {
            Action::Start => self.start(pod, managed, finished).await,
            Action::Stop { grace } => {
                if let Some(m) = managed.get_mut(&uid) {
                    m.handle.stop(Some(grace));
                    m.local.stopping = true;
                    m.pod = pod;
                }
            }
            Action::Remove => {
                if let Err(e) = self.client.remove_pod(&pod).await {
                    tracing::debug!(pod = ?pod.metadata.name, error = %e, "removing the pod failed");
                }
                managed.remove(&uid);
            }
            Action::Nothing => {
                if let Some(m) = managed.get_mut(&uid) {
                    m.pod = pod;
                }
            }
        }
    }

    async fn start(&self, pod: Pod, managed: &mut HashMap<String, Managed>, finished: &mpsc::UnboundedSender<String>) {
        let uid = uid_of(&pod);
        let config = match self.client.config_for(&pod).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "reading the pod's ConfigMaps and Secrets failed");
                ConfigObjects::default()
            }
        };
        let handle = self.runtime.start_pod(pod.clone(), config);
        tokio::spawn(report(
            Arc::clone(&self.client),
            handle.status(),
            handle.done(),
            uid.clone(),
            finished.clone(),
        ));
        managed.insert(
            uid,
            Managed {
                handle,
                local: Local::default(),
                pod,
            },
        );
    }
}

/// Writes each status the pod reports, the latest one when several come at once, and tells
/// the agent when the pod has finished.
async fn report<C: ClusterClient>(
    client: Arc<C>,
    mut status: tokio::sync::watch::Receiver<Pod>,
    done: impl Future<Output = ()> + Send,
    uid: String,
    finished: mpsc::UnboundedSender<String>,
) {
    tokio::pin!(done);
    let mut last = None;
    loop {
        let pod = status.borrow_and_update().clone();
        if last.as_ref() != pod.status.as_ref() {
            if let Err(e) = client.write_status(&pod).await {
                tracing::debug!(pod = ?pod.metadata.name, error = %e, "writing pod status failed");
            }
            last = pod.status;
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { break },
            () = &mut done => {
                let pod = status.borrow_and_update().clone();
                if last.as_ref() != pod.status.as_ref() && let Err(e) = client.write_status(&pod).await {
                    tracing::debug!(pod = ?pod.metadata.name, error = %e, "writing pod status failed");
                }
                break;
            }
        }
    }
    let _ = finished.send(uid);
}

/// Aborts a task when dropped: the heartbeat lives exactly as long as the agent loop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the Lease every quarter of its duration, as the kubelet does.
async fn heartbeat<C: ClusterClient>(client: Arc<C>, node: String, duration_seconds: i32) {
    let every = Duration::from_millis(duration_seconds as u64 * 1000 / 4);
    loop {
        if let Err(e) = client
            .renew_lease(node::lease(&node, duration_seconds, crate::status::now()))
            .await
        {
            tracing::warn!(node = %node, error = %e, "renewing the node lease failed");
        }
        tokio::time::sleep(every).await;
    }
}
