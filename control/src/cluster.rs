//! The all-in-one cluster `capstan up` starts: the API server on its embedded store, the
//! scheduler, the controllers, and one or more nodes in the same process. Every component
//! talks to the others through the API, so a node could as well be in another process.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use capstan_core::k8s_openapi::api::core::v1::Taint;
use capstan_core::quantity;
use capstan_runtime::agent::{Agent, NodeOptions};
use capstan_runtime::{Runtime, RuntimeConfig};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::api::logs::FileLogs;
use crate::metrics::NodeMetrics;
use crate::node_client::LocalClient;
use crate::node_endpoint::NodeEndpoint;
use crate::store::{RedbStore, Store};

/// One node of an all-in-one cluster, as `--node-config` files list them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// CPU capacity as a quantity (`4`, `2500m`); the machine's when absent.
    pub cpu: Option<String>,
    /// Memory capacity as a quantity (`8Gi`); the machine's when absent.
    pub memory: Option<String>,
    pub max_pods: Option<i64>,
    /// How long the node's Lease lasts without renewal (40 s by default, as the kubelet's).
    pub lease_duration_seconds: Option<i32>,
}

/// Why a cluster could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("node {node:?}: {field}: {reason}")]
    Node {
        node: String,
        field: &'static str,
        reason: String,
    },
    #[error("reading the node file {path}: {reason}")]
    NodeFile { path: PathBuf, reason: String },
    #[error("node names must be unique: {0:?} appears twice")]
    DuplicateNode(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("API: {0}")]
    Api(#[from] crate::api::ApiError),
    #[error("runtime: {0}")]
    Runtime(#[from] capstan_runtime::RuntimeError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

impl NodeConfig {
    /// `count` identical nodes: `capstan` alone, or `capstan-1`, `capstan-2`... (none for 0).
    pub fn numbered(count: usize) -> Vec<NodeConfig> {
        if count == 1 {
            return vec![NodeConfig {
                name: "capstan".into(),
                ..Default::default()
            }];
        }
        (1..=count)
            .map(|i| NodeConfig {
                name: format!("capstan-{i}"),
                ..Default::default()
            })
            .collect()
    }

    /// Reads a YAML list of nodes.
    pub fn from_file(path: &Path) -> Result<Vec<NodeConfig>, ClusterError> {
        let fail = |reason: String| ClusterError::NodeFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))
    }

    /// The (CPU millicores, memory bytes) override, if the node sets both or either (the
    /// other is the machine's).
    fn capacity(&self, machine: (i64, i64)) -> Result<Option<(i64, i64)>, ClusterError> {
        let parse = |field: &'static str, v: &str| {
            quantity::parse(v).map_err(|e| ClusterError::Node {
                node: self.name.clone(),
                field,
                reason: e.to_string(),
            })
        };
        if self.cpu.is_none() && self.memory.is_none() {
            return Ok(None);
        }
        let cpu = match &self.cpu {
            Some(v) => parse("cpu", v)?.as_millis_ceil() as i64,
            None => machine.0,
        };
        let memory = match &self.memory {
            Some(v) => parse("memory", v)?.as_bytes_ceil() as i64,
            None => machine.1,
        };
        Ok(Some((cpu, memory)))
    }
}

impl NodeConfig {
    /// The node's runtime: a sibling of `base` (sharing its engine and images) with the
    /// node's name, data directory, capacity and pod address block.
    fn runtime(
        &self,
        base: &Runtime,
        node_dir: &Path,
        allow_host_path: bool,
        pod_network: std::net::Ipv4Addr,
        host_ip: Option<std::net::IpAddr>,
    ) -> Result<Runtime, ClusterError> {
        let machine = (base.allocatable().0, base.allocatable().1);
        let mut rc = RuntimeConfig::new(node_dir);
        if let Some(ip) = host_ip {
            rc.host_ip = ip.to_string();
        }
        rc.node_name = self.name.clone();
        rc.allow_host_path = allow_host_path;
        rc.capacity = self.capacity(machine)?;
        rc.pod_network = pod_network;
        Ok(base.sibling(rc))
    }

    /// What the node agent publishes about the node; `endpoint_port` is where its node
    /// endpoint listens (pod traffic from other processes, and logs and metrics for a node in
    /// a process of its own).
    fn options(&self, endpoint_port: Option<i32>) -> NodeOptions {
        NodeOptions {
            name: self.name.clone(),
            labels: self.labels.clone(),
            taints: self.taints.clone(),
            max_pods: self.max_pods,
            lease_duration_seconds: self.lease_duration_seconds,
            endpoint_port,
        }
    }
}

/// What `capstan up` is asked to start.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Where the Ingress gateway listens (`None`: no gateway).
    pub ingress_listen: Option<SocketAddr>,
    pub nodes: Vec<NodeConfig>,
    pub allow_host_path: bool,
}

/// A running all-in-one cluster. Dropping it stops every component.
pub struct Cluster {
    pub api: Arc<Api>,
    /// Where the API server listens.
    pub addr: SocketAddr,
    /// Where the Ingress gateway listens, if it does.
    pub ingress_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// Each node's agent task, by node name.
    nodes: Vec<(String, JoinHandle<()>)>,
    /// The HorizontalPodAutoscaler controller's settings (its sync period...).
    pub autoscaler: crate::manager::hpa::HpaHandle,
}

impl Cluster {
    /// Stops a node's agent, as a node that loses power: its pods stop with it and its Lease
    /// is no longer renewed. Returns whether the node was running.
    pub fn stop_node(&mut self, name: &str) -> bool {
        match self.nodes.iter().position(|(n, _)| n == name) {
            Some(i) => {
                self.nodes.remove(i).1.abort();
                true
            }
            None => false,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(self.nodes.iter().map(|(_, t)| t)) {
            t.abort();
        }
    }
}

/// Starts the cluster: store, API server, scheduler, controllers and nodes.
pub async fn up(config: ClusterConfig) -> Result<Cluster, ClusterError> {
    let mut seen = std::collections::HashSet::new();
    for node in &config.nodes {
        if !seen.insert(node.name.clone()) {
            return Err(ClusterError::DuplicateNode(node.name.clone()));
        }
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| ClusterError::NodeFile {
        path: config.data_dir.clone(),
        reason: e.to_string(),
    })?;
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(config.data_dir.join("store.redb"))?);
    let api = Api::new(store);
    let boot = Arc::clone(&api);
    api.call(move |_| boot.bootstrap()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ClusterError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ClusterError::Listen {
        addr: config.listen,
        source,
    })?;
    let mut tasks = vec![tokio::spawn(crate::api::server::serve(listener, Arc::clone(&api)))];
    tasks.push(tokio::spawn(crate::scheduler::shell::run(Arc::clone(&api))));
    tasks.push(tokio::spawn(crate::events::sink(Arc::clone(&api))));
    tasks.extend(crate::manager::spawn_all(&api));

    // One engine and image store for every node; each node has its own pods and addresses.
    let mut base = RuntimeConfig::new(&config.data_dir);
    base.allow_host_path = config.allow_host_path;
    let base = Runtime::new(base)?;
    // Node ports listen where the API server does (loopback unless told otherwise).
    let (directory, address) = (base.directory(), config.listen.ip());
    // One node endpoint for every node of this process, where nodes in other processes send
    // traffic for its pods; their logs and metrics the API server reads in this process.
    let endpoint = SocketAddr::new(address, 0);
    let endpoint_listener = tokio::net::TcpListener::bind(endpoint)
        .await
        .map_err(|source| ClusterError::Listen { addr: endpoint, source })?;
    let endpoint_port = endpoint_listener
        .local_addr()
        .map_err(|source| ClusterError::Listen { addr: endpoint, source })?
        .port();
    tasks.push(tokio::spawn(crate::node_endpoint::serve(
        endpoint_listener,
        Arc::new(NodeEndpoint {
            pods: Arc::clone(&directory),
            logs: None,
            metrics: None,
            stats: None,
        }),
    )));
    // The nodes' address, where other processes reach that endpoint: the API server's, or
    // the runtime's default (loopback) when it listens on every address.
    let host_ip = (!address.is_unspecified()).then_some(address);
    let local_nodes: Arc<HashSet<String>> = Arc::new(config.nodes.iter().map(|n| n.name.clone()).collect());
    let services = Arc::new(crate::proxy::ServiceTable::default());
    let ingresses = Arc::new(std::sync::RwLock::new(crate::proxy::ingress::IngressTable::default()));
    base.set_service_resolver(Arc::clone(&services) as Arc<dyn capstan_runtime::services::ServiceResolver>);
    // The nodes of other processes are polled for their pods' usage and their guests'
    // Service traffic.
    let remote_usage = Arc::new(crate::node_stats::RemoteUsage::default());
    tasks.push(crate::node_stats::spawn_poller(
        Arc::clone(&services),
        Arc::clone(&remote_usage),
    ));
    let activator = crate::proxy::activator::Activator::new(Arc::clone(&api), Arc::clone(&services));
    services.set_activator(&activator);
    let forwarder = Arc::new(crate::proxy::Forwarder {
        directory,
        services: Arc::clone(&services),
        activator: Arc::clone(&activator),
    });
    // The API server's `services/{name}/proxy` sends requests as the ingress does.
    api.register_service_proxy(Arc::clone(&forwarder) as Arc<dyn crate::api::service_proxy::ServiceProxy>);
    tasks.push(tokio::spawn(crate::manager::workloads::forever(
        "activator",
        Arc::clone(&api),
        move |_| Arc::clone(&activator).run(),
    )));
    let ingress_addr = match config.ingress_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ClusterError::Listen { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ClusterError::Listen { addr, source })?;
            tasks.push(tokio::spawn(crate::proxy::gateway(
                listener,
                Arc::clone(&ingresses),
                Arc::clone(&forwarder),
            )));
            Some(bound)
        }
        None => None,
    };
    tasks.push(tokio::spawn(crate::manager::workloads::forever(
        "service-proxy",
        Arc::clone(&api),
        move |api| {
            crate::proxy::run(
                api,
                Arc::clone(&forwarder),
                address,
                Arc::clone(&services),
                Arc::clone(&ingresses),
                Arc::clone(&local_nodes),
            )
        },
    )));
    let client = LocalClient::new(Arc::clone(&api));
    let mut agents = Vec::new();
    let mut usage: Vec<Arc<dyn crate::manager::pod_metrics::NodeUsage>> = Vec::new();
    for (i, node) in config.nodes.iter().enumerate() {
        let node_dir = config.data_dir.join("nodes").join(&node.name);
        // Each node hands out addresses from its own /16: 10.88.0.0, 10.89.0.0, ...
        let network = std::net::Ipv4Addr::new(10, 88u8.saturating_add(i as u8), 0, 0);
        let runtime = node.runtime(&base, &node_dir, config.allow_host_path, network, host_ip)?;
        api.register_node_logs(&node.name, Arc::new(FileLogs { data_dir: node_dir }));
        api.register_node_metrics(&node.name, Arc::new(NodeMetrics::new(runtime.clone())));
        usage.push(Arc::new(runtime.clone()));
        let agent = Agent::new(
            Arc::clone(&client),
            runtime,
            node.options(Some(i32::from(endpoint_port))),
        );
        agents.push((node.name.clone(), tokio::spawn(agent.run())));
    }
    usage.push(remote_usage);
    // Pod metrics from these nodes' usage counters, for the HorizontalPodAutoscalers.
    let pod_metrics = crate::manager::pod_metrics::PodMetrics::new(usage, Default::default());
    tasks.push(pod_metrics.spawn());
    let (autoscaler, hpa_task) = crate::manager::hpa::spawn(&api, pod_metrics, Default::default());
    tasks.push(hpa_task);
    Ok(Cluster {
        api,
        addr,
        ingress_addr,
        tasks,
        nodes: agents,
        autoscaler,
    })
}

/// A node of a cluster served by another process (`capstan node --server URL`): the same
/// agent, talking to the API server over HTTP; its node endpoint at `endpoint` (logs,
/// metrics, and pod traffic from other processes); and its guests' view of the cluster's
/// Services, kept from the API server, reaching pods elsewhere through their nodes' endpoints.
pub async fn join(
    server: &str,
    node: NodeConfig,
    data_dir: &Path,
    allow_host_path: bool,
    pod_network: std::net::Ipv4Addr,
    endpoint: SocketAddr,
) -> Result<JoinHandle<()>, ClusterError> {
    let client = crate::client::Client::new(server).map_err(|e| ClusterError::Node {
        node: node.name.clone(),
        field: "server",
        reason: e.to_string(),
    })?;
    let mut base = RuntimeConfig::new(data_dir);
    base.allow_host_path = allow_host_path;
    let base = Runtime::new(base)?;
    let node_dir = data_dir.join("nodes").join(&node.name);
    let runtime = node.runtime(&base, &node_dir, allow_host_path, pod_network, Some(endpoint.ip()))?;
    // The endpoint the API server reaches for this node's container logs and metrics, and
    // other processes for its pods.
    let listener = tokio::net::TcpListener::bind(endpoint)
        .await
        .map_err(|source| ClusterError::Listen { addr: endpoint, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| ClusterError::Listen { addr: endpoint, source })?
        .port();
    let services = Arc::new(crate::proxy::ServiceTable::default());
    let served = tokio::spawn(crate::node_endpoint::serve(
        listener,
        Arc::new(NodeEndpoint {
            pods: runtime.directory(),
            logs: Some(Arc::new(FileLogs {
                data_dir: node_dir.clone(),
            })),
            metrics: Some(Arc::new(NodeMetrics::new(runtime.clone()))),
            stats: Some(Arc::new(crate::node_stats::StatsSource {
                runtime: runtime.clone(),
                services: Arc::clone(&services),
            })),
        }),
    ));
    // Guests' requests to a Service without a ready endpoint go to the API server's service
    // proxy, where the activator wakes a Service that scales on demand.
    if let Some(server) = api_server_address(server).await {
        services.relay_through(server);
    }
    runtime.set_service_resolver(Arc::clone(&services) as Arc<dyn capstan_runtime::services::ServiceResolver>);
    let followed = tokio::spawn(crate::proxy::follow::follow(
        client.clone(),
        services,
        node.name.clone(),
    ));
    let agent = Agent::new(
        crate::node_client::RemoteClient::new(client),
        runtime,
        node.options(Some(i32::from(port))),
    );
    Ok(tokio::spawn(async move {
        agent.run().await;
        served.abort();
        followed.abort();
    }))
}

/// The address of the API server at `server` (`http://host:port`), if it resolves.
async fn api_server_address(server: &str) -> Option<SocketAddr> {
    let authority = server.strip_prefix("http://")?.trim_end_matches('/');
    let authority = authority.split('/').next()?;
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut found = tokio::net::lookup_host(with_port).await.ok()?;
    found.next()
}

/// A pod address block for a node joining from elsewhere, from its name: one of
/// 10.100.0.0/16 … 10.227.0.0/16, away from the all-in-one nodes' 10.88 onwards.
pub fn pod_network_for(name: &str) -> std::net::Ipv4Addr {
    let hash = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    std::net::Ipv4Addr::new(10, 100 + (hash % 128) as u8, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_files_name_bad_fields() {
        let dir = std::env::temp_dir().join(format!("capstan-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.yaml");
        std::fs::write(
            &path,
            "- name: a\n  labels: {disktype: ssd}\n  cpu: '2'\n  memory: 4Gi\n- name: b\n",
        )
        .unwrap();
        let nodes = NodeConfig::from_file(&path).unwrap();
        assert_eq!(nodes[0].labels["disktype"], "ssd");
        assert_eq!(nodes[0].capacity((8000, 1)).unwrap(), Some((2000, 4 << 30)));
        assert_eq!(nodes[1].capacity((8000, 1)).unwrap(), None);
        std::fs::write(&path, "- name: a\n  cpuu: 2\n").unwrap();
        let err = NodeConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("cpuu"), "{err}");
        let bad = NodeConfig {
            name: "a".into(),
            cpu: Some("lots".into()),
            ..Default::default()
        };
        assert!(
            bad.capacity((1, 1))
                .unwrap_err()
                .to_string()
                .contains("node \"a\": cpu")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbered_nodes() {
        assert_eq!(NodeConfig::numbered(1)[0].name, "capstan");
        let three: Vec<String> = NodeConfig::numbered(3).into_iter().map(|n| n.name).collect();
        assert_eq!(three, ["capstan-1", "capstan-2", "capstan-3"]);
    }
}
