//! The Node and Lease objects a node agent publishes: what the scheduler places pods by, and
//! the heartbeat the control plane judges the node's health by.

use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use capstan_core::k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use capstan_core::k8s_openapi::jiff::Timestamp;

/// How long a Lease is valid without renewal: the kubelet's 40 s, after which the node
/// lifecycle controller marks the node NotReady.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// The namespace node Leases live in.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The pods a node accepts unless told otherwise. The kubelet's default is 110; a Wasm pod
/// costs far less than a container, and the design target is 10,000 on one node.
pub const DEFAULT_MAX_PODS: i64 = 10_000;

/// What a node says about itself beyond what the runtime measures.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub max_pods: Option<i64>,
    /// How long the node's Lease is valid without renewal; [`LEASE_DURATION_SECONDS`] when
    /// unset. Renewed every quarter of it.
    pub lease_duration_seconds: Option<i32>,
    /// The port of the node's own endpoint, as the kubelet's 10250: container logs and
    /// metrics for a node in a process of its own, and pod traffic from other processes for
    /// every node. `None`: the node is reached by no other process.
    pub endpoint_port: Option<i32>,
}

impl NodeOptions {
    pub fn lease_duration(&self) -> i32 {
        self.lease_duration_seconds.unwrap_or(LEASE_DURATION_SECONDS).max(1)
    }
}

/// The node's Node object, Ready, with its capacity and labels.
pub fn node_object(opts: &NodeOptions, allocatable: (i64, i64, i64), host_ip: &str, now: Timestamp) -> Node {
    let (cpu, memory, disk) = allocatable;
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), opts.name.clone()),
        ("kubernetes.io/os".to_owned(), "wasip2".to_owned()),
        ("kubernetes.io/arch".to_owned(), "wasm32".to_owned()),
    ]);
    labels.extend(opts.labels.clone());
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{cpu}m"))),
        ("memory".to_owned(), Quantity(memory.to_string())),
        ("ephemeral-storage".to_owned(), Quantity(disk.to_string())),
        (
            "pods".to_owned(),
            Quantity(opts.max_pods.unwrap_or(DEFAULT_MAX_PODS).to_string()),
        ),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(opts.name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!opts.taints.is_empty()).then(|| opts.taints.clone()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(vec![ready_condition(true, now)]),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: host_ip.to_owned(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: opts.name.clone(),
                },
            ]),
            daemon_endpoints: opts.endpoint_port.map(|port| NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: "wasm32".into(),
                container_runtime_version: format!("capstan://{} (wasmtime 48)", env!("CARGO_PKG_VERSION")),
                kubelet_version: format!("v1.34.0-capstan.{}", env!("CARGO_PKG_VERSION")),
                kube_proxy_version: String::new(),
                operating_system: "wasip2".into(),
                os_image: "Capstan".into(),
                kernel_version: std::env::consts::OS.into(),
                machine_id: String::new(),
                system_uuid: String::new(),
                boot_id: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// The node's `Ready` condition.
pub fn ready_condition(ready: bool, now: Timestamp) -> NodeCondition {
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "capstan node agent is posting ready status")
    } else {
        ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    NodeCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The node's heartbeat Lease, renewed now, valid for `duration_seconds`.
pub fn lease(node: &str, duration_seconds: i32, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            namespace: Some(LEASE_NAMESPACE.to_owned()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_owned()),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_reports_capacity_labels_and_taints() {
        let opts = NodeOptions {
            name: "n1".into(),
            labels: BTreeMap::from([("disktype".into(), "ssd".into())]),
            taints: vec![Taint {
                key: "dedicated".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }],
            max_pods: None,
            lease_duration_seconds: None,
            endpoint_port: None,
        };
        let node = node_object(&opts, (2000, 4 << 30, 1 << 40), "10.0.0.1", Timestamp::UNIX_EPOCH);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["disktype"], "ssd");
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        let status = node.status.unwrap();
        assert_eq!(status.allocatable.unwrap()["cpu"].0, "2000m");
        assert_eq!(status.conditions.unwrap()[0].status, "True");
        assert_eq!(node.spec.unwrap().taints.unwrap()[0].key, "dedicated");
    }
}
