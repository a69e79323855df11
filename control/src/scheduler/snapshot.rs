//! The scheduler's view of the cluster: every node with what it offers and the pods already
//! bound to it, built once per cycle from `&[Node]` and `&[Pod]`.
//!
//! What the plugins need is computed here once rather than on every filter call: a pod's
//! requests (containers, init containers and sidecars, overhead), host ports and affinity
//! terms ([`PodInfo`]); a node's allocatable, requested and used ports ([`NodeInfo`]). A
//! scheduling decision reads the snapshot only; once a pod binds, [`Snapshot::add_pod`] adds
//! it in O(1) (amortised) so the next pod sees it without a rebuild.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use capstan_core::k8s_openapi::api::core::v1::{Container, Node, Pod, PodAffinityTerm, Taint, WeightedPodAffinityTerm};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use capstan_core::quantity;

use super::selectors::{Labels, label_selector_matches};

/// The scheduler's defaults for a container that requests no CPU or memory, used only for
/// scoring so that zero-request pods still spread (kube-scheduler's `DefaultMilliCPURequest`
/// and `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// 200 MiB, as kube-scheduler's `DefaultMemoryRequest`.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// The resources the scheduler accounts for: CPU, memory and the pod count. (Extended resources
/// and ephemeral storage are not tracked yet.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Pods (1 for a pod's own request).
    pub pods: i64,
}

impl Resources {
    fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.pods += other.pods;
    }

    fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.pods -= other.pods;
    }

    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
    }

    /// CPU and memory (and pods) read from a resource list; unparsable quantities count as zero
    /// (admission rejects them before they reach the scheduler).
    fn from_list(list: Option<&BTreeMap<String, K8sQuantity>>) -> Resources {
        let get = |name: &str| list.and_then(|l| l.get(name)).and_then(|q| quantity::parse(&q.0).ok());
        let clamp = |v: i128| v.clamp(0, i64::MAX as i128) as i64;
        Resources {
            milli_cpu: get("cpu").map_or(0, |q| clamp(q.as_millis_ceil())),
            memory: get("memory").map_or(0, |q| clamp(q.as_bytes_ceil())),
            pods: get("pods").map_or(0, |q| clamp(q.as_bytes_ceil())),
        }
    }
}

/// Which namespaces an affinity term selects pods from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// An empty `namespaceSelector` (`{}`): every namespace.
    All,
    /// `namespaces`, or the pod's own namespace when that is empty.
    Listed(Vec<String>),
}

/// A pod (anti-)affinity term with its namespaces resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    /// The node label whose value defines the topology domain.
    pub topology_key: String,
    /// The namespaces the term looks at.
    pub namespaces: Namespaces,
    /// The selector; a missing one matches no pod.
    pub selector: Option<LabelSelector>,
}

impl AffinityTerm {
    /// Resolves a term of a pod in `namespace`. A non-empty `namespaceSelector` needs Namespace
    /// objects, which the snapshot does not carry; its namespaces are not added (only the
    /// listed ones, or the pod's own).
    fn new(term: &PodAffinityTerm, namespace: &str) -> AffinityTerm {
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|l| l.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        let namespaces = match &term.namespaces {
            _ if all => Namespaces::All,
            Some(listed) if !listed.is_empty() => Namespaces::Listed(listed.clone()),
            _ => Namespaces::Listed(vec![namespace.to_string()]),
        };
        AffinityTerm {
            topology_key: term.topology_key.clone(),
            namespaces,
            selector: term.label_selector.clone(),
        }
    }

    /// Whether the term selects `pod`.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        let in_namespace = match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Listed(listed) => listed.contains(&pod.namespace),
        };
        in_namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| label_selector_matches(s, &pod.labels))
    }
}

/// A preferred term with its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTerm {
    /// 1–100.
    pub weight: i64,
    /// The term.
    pub term: AffinityTerm,
}

/// A host port a pod claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host IP, `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// kube-scheduler's `HostPortInfo` rule: same protocol and port, and the same IP or either
    /// one the wildcard `0.0.0.0`.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == WILDCARD || other.ip == WILDCARD)
    }
}

const WILDCARD: &str = "0.0.0.0";

/// What the scheduler needs to know of a pod, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    /// The namespace (`default` when unset).
    pub namespace: String,
    /// The pod's labels.
    pub labels: Labels,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// What the pod requests (pods = 1).
    pub requests: Resources,
    /// Requests with the scheduler's defaults for containers that request nothing (scoring).
    pub non_zero_requests: Resources,
    /// Host ports the pod claims.
    pub host_ports: Vec<HostPort>,
    /// `podAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub required_affinity: Vec<AffinityTerm>,
    /// `podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// `podAffinity.preferredDuringSchedulingIgnoredDuringExecution`.
    pub preferred_affinity: Vec<WeightedTerm>,
    /// `podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution`.
    pub preferred_anti_affinity: Vec<WeightedTerm>,
}

impl PodInfo {
    /// Reads a pod.
    pub fn new(pod: &Pod) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let key = format!("{namespace}/{}", pod.metadata.name.as_deref().unwrap_or_default());
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedTerm {
                    weight: i64::from(t.weight),
                    term: AffinityTerm::new(&t.pod_affinity_term, &namespace),
                })
                .collect()
        };
        let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        let init_containers = spec.and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
        let host_ports = containers
            .iter()
            .chain(init_containers)
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.is_some_and(|h| h > 0))
            .map(|p| HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| WILDCARD.to_string()),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port: p.host_port.unwrap_or_default(),
            })
            .collect();
        let overhead = Resources::from_list(spec.and_then(|s| s.overhead.as_ref()));
        PodInfo {
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: pod_requests(containers, init_containers, &overhead, false),
            non_zero_requests: pod_requests(containers, init_containers, &overhead, true),
            host_ports,
            required_affinity: required(
                pod_affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            required_anti_affinity: required(
                anti.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_affinity: preferred(
                pod_affinity.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_anti_affinity: preferred(
                anti.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            key,
            namespace,
        }
    }

    /// Whether the pod has any pod (anti-)affinity term, required or preferred.
    pub fn has_affinity_terms(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }
}

/// Kubernetes' `PodRequests`: the larger of the containers' sum (with sidecars, i.e. init
/// containers with `restartPolicy: Always`, running alongside) and the largest init container
/// (plus the sidecars started before it), plus the pod overhead. `non_zero` substitutes the
/// scheduler's defaults for a container that requests no CPU or memory.
fn pod_requests(
    containers: &[Container],
    init_containers: &[Container],
    overhead: &Resources,
    non_zero: bool,
) -> Resources {
    let container = |c: &Container| {
        let mut r = Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
        r.pods = 0;
        if non_zero {
            if r.milli_cpu == 0 {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if r.memory == 0 {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut sum = Resources::default();
    containers.iter().for_each(|c| sum.add(&container(c)));
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in init_containers {
        let mut r = container(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sum.add(&r);
            sidecars.add(&r);
            r = sidecars;
        } else {
            r.add(&sidecars);
        }
        init_max.max(&r);
    }
    sum.max(&init_max);
    sum.milli_cpu += overhead.milli_cpu;
    sum.memory += overhead.memory;
    sum.pods = 1;
    sum
}

/// One node and the pods bound to it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node's position in [`Snapshot::nodes`].
    pub index: usize,
    /// `metadata.name`.
    pub name: String,
    /// The node's labels.
    pub labels: Labels,
    /// `spec.taints`.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `status.allocatable` (falling back to `status.capacity` per resource).
    pub allocatable: Resources,
    /// The sum of the bound pods' requests.
    pub requested: Resources,
    /// The same with the scheduler's non-zero defaults (scoring).
    pub non_zero_requested: Resources,
    /// The bound pods.
    pub pods: Vec<Arc<PodInfo>>,
    /// Host ports the bound pods claim.
    pub used_ports: Vec<HostPort>,
    /// How many bound pods have required pod anti-affinity.
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    /// Reads a node with no pods.
    pub fn new(node: &Node) -> NodeInfo {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let allocatable = Resources::from_list(status.and_then(|s| s.allocatable.as_ref()));
        let capacity = Resources::from_list(status.and_then(|s| s.capacity.as_ref()));
        let or = |a: i64, c: i64| if a == 0 { c } else { a };
        NodeInfo {
            index: 0,
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            allocatable: Resources {
                milli_cpu: or(allocatable.milli_cpu, capacity.milli_cpu),
                memory: or(allocatable.memory, capacity.memory),
                pods: or(allocatable.pods, capacity.pods),
            },
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            pods_with_required_anti_affinity: 0,
        }
    }

    /// Accounts for a pod bound here.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes a bound pod by key and returns it.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let at = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(at);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(pod)
    }
}

/// A bound pod with its node's index.
type PlacedPod = (usize, Arc<PodInfo>);

/// The cluster as one scheduling cycle sees it. Nodes are kept sorted by name, which is also
/// the scheduler's tie-break order.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
    /// Bound pods with required anti-affinity and their node's index: every pod being
    /// scheduled checks these, so they are listed rather than searched for.
    with_required_anti_affinity: Vec<(usize, Arc<PodInfo>)>,
    pods_with_affinity_terms: usize,
    /// Label key → value → indices of the nodes so labelled (the topology domains).
    domains: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Bound pods by label (`key`, `value`), with their node's index: the only pods an
    /// affinity term's `matchLabels` can select, so a term looks at those rather than at every
    /// bound pod.
    by_label: HashMap<(String, String), Vec<PlacedPod>>,
}

impl Snapshot {
    /// Builds the snapshot: a pod counts as bound when `spec.nodeName` names a known node and
    /// it has not terminated (phase `Succeeded` or `Failed`).
    pub fn new(nodes: &[Node], pods: &[Pod]) -> Snapshot {
        let mut infos: Vec<NodeInfo> = nodes.iter().map(NodeInfo::new).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let mut domains: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, node) in infos.iter_mut().enumerate() {
            node.index = i;
            for (key, value) in &node.labels {
                domains
                    .entry(key.clone())
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .push(i);
            }
        }
        let by_name = infos.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        let mut snapshot = Snapshot {
            nodes: infos,
            by_name,
            domains,
            ..Snapshot::default()
        };
        for pod in pods {
            let terminated = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed");
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                && !terminated
            {
                snapshot.add_pod(pod, node);
            }
        }
        snapshot
    }

    /// The nodes, sorted by name.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }

    /// The indices of the nodes labelled `key=value`: one topology domain.
    pub fn domain(&self, key: &str, value: &str) -> &[usize] {
        self.domains
            .get(key)
            .and_then(|d| d.get(value))
            .map_or(&[], Vec::as_slice)
    }

    /// Bound pods with required pod anti-affinity, each with its node.
    pub fn pods_with_required_anti_affinity(&self) -> impl Iterator<Item = (&NodeInfo, &PodInfo)> {
        self.with_required_anti_affinity
            .iter()
            .map(|(i, p)| (&self.nodes[*i], p.as_ref()))
    }

    /// How many bound pods carry pod (anti-)affinity terms.
    pub fn pods_with_affinity_terms(&self) -> usize {
        self.pods_with_affinity_terms
    }

    /// Records `pod` as bound to `node` (whatever its `spec.nodeName` says); false when the node
    /// is unknown. This is how a scheduler keeps one snapshot across pods it binds.
    pub fn add_pod(&mut self, pod: &Pod, node: &str) -> bool {
        self.add_pod_info(Arc::new(PodInfo::new(pod)), node)
    }

    /// [`Snapshot::add_pod`] for an already read pod.
    pub fn add_pod_info(&mut self, pod: Arc<PodInfo>, node: &str) -> bool {
        let Some(&i) = self.by_name.get(node) else {
            return false;
        };
        if !pod.required_anti_affinity.is_empty() {
            self.with_required_anti_affinity.push((i, pod.clone()));
        }
        if pod.has_affinity_terms() {
            self.pods_with_affinity_terms += 1;
        }
        for (k, v) in &pod.labels {
            self.by_label
                .entry((k.clone(), v.clone()))
                .or_default()
                .push((i, pod.clone()));
        }
        self.nodes[i].add_pod(pod);
        true
    }

    /// Calls `f` with every bound pod `term` could select (and its node), a superset of those
    /// it does: the pods carrying the rarest of its `matchLabels`, or every bound pod when it
    /// has none. Callers still check `term.matches`.
    pub fn for_each_candidate(&self, term: &AffinityTerm, mut f: impl FnMut(&NodeInfo, &PodInfo)) {
        let indexed = term
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                self.by_label
                    .get(&(k.clone(), v.clone()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|list| list.len());
        match indexed {
            Some(list) => list.iter().for_each(|(i, pod)| f(&self.nodes[*i], pod)),
            None => {
                for node in &self.nodes {
                    node.pods.iter().for_each(|pod| f(node, pod));
                }
            }
        }
    }

    /// Removes a bound pod (by `namespace/name`) from `node` and returns it.
    pub fn remove_pod(&mut self, node: &str, key: &str) -> Option<Arc<PodInfo>> {
        let &i = self.by_name.get(node)?;
        let pod = self.nodes[i].remove_pod(key)?;
        if !pod.required_anti_affinity.is_empty()
            && let Some(at) = self
                .with_required_anti_affinity
                .iter()
                .position(|(n, p)| *n == i && p.key == key)
        {
            self.with_required_anti_affinity.swap_remove(at);
        }
        if pod.has_affinity_terms() {
            self.pods_with_affinity_terms -= 1;
        }
        for (k, v) in &pod.labels {
            if let Some(list) = self.by_label.get_mut(&(k.clone(), v.clone()))
                && let Some(at) = list.iter().position(|(n, p)| *n == i && p.key == key)
            {
                list.swap_remove(at);
            }
        }
        Some(pod)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{node, pod};
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers() {
        let cases = [
            // (containers, init containers, overhead, cpu millis, memory bytes)
            (
                json!([{"cpu": "100m", "memory": "1Mi"}, {"cpu": "200m"}]),
                json!([]),
                json!(null),
                300,
                1 << 20,
            ),
            (
                json!([{"cpu": "100m"}]),
                json!([{"cpu": "1", "memory": "2Mi"}]),
                json!(null),
                1000,
                2 << 20,
            ),
            (
                json!([{"cpu": "2"}]),
                json!([{"cpu": "1"}]),
                json!({"cpu": "250m"}),
                2250,
                0,
            ),
            // A sidecar runs alongside the containers and the init containers after it.
            (
                json!([{"cpu": "100m"}]),
                json!([{"cpu": "50m", "sidecar": true}, {"cpu": "500m"}]),
                json!(null),
                550,
                0,
            ),
        ];
        for (containers, inits, overhead, cpu, memory) in cases {
            let container = |(i, r): (usize, &serde_json::Value)| {
                let mut requests = r.clone();
                let sidecar = requests.as_object_mut().unwrap().remove("sidecar").is_some();
                let mut c = json!({"name": format!("c{i}"), "resources": {"requests": requests}});
                if sidecar {
                    c["restartPolicy"] = json!("Always");
                }
                c
            };
            let spec = json!({
                "containers": containers.as_array().unwrap().iter().enumerate().map(container).collect::<Vec<_>>(),
                "initContainers": inits.as_array().unwrap().iter().enumerate().map(container).collect::<Vec<_>>(),
                "overhead": overhead,
            });
            let info = PodInfo::new(&pod(json!({"metadata": {"name": "p"}, "spec": spec})));
            assert_eq!(
                (info.requests.milli_cpu, info.requests.memory, info.requests.pods),
                (cpu, memory, 1),
                "{containers} {inits}"
            );
        }
    }

    #[test]
    fn zero_requests_get_defaults_for_scoring_only() {
        let info = PodInfo::new(&pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}),
        ));
        assert_eq!(
            info.requests,
            Resources {
                milli_cpu: 0,
                memory: 0,
                pods: 1
            }
        );
        assert_eq!(
            info.non_zero_requests,
            Resources {
                milli_cpu: DEFAULT_MILLI_CPU_REQUEST,
                memory: DEFAULT_MEMORY_REQUEST,
                pods: 1
            }
        );
    }

    #[test]
    fn snapshot_counts_bound_running_pods_and_updates_incrementally() {
        let nodes = [node("b", json!({}), "4", "8Gi"), node("a", json!({}), "4", "8Gi")];
        let bound = |name: &str, node: &str, phase: &str| {
            pod(
                json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}, "status": {"phase": phase}}),
            )
        };
        let pods = [
            bound("p1", "a", "Running"),
            bound("p2", "a", "Succeeded"),
            bound("p3", "gone", "Running"),
            bound("p4", "b", "Pending"),
        ];
        let mut snapshot = Snapshot::new(&nodes, &pods);
        assert_eq!(
            snapshot.nodes().iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            snapshot.node("a").unwrap().requested,
            Resources {
                milli_cpu: 1000,
                memory: 0,
                pods: 1
            }
        );
        assert_eq!(snapshot.node("b").unwrap().requested.milli_cpu, 1000);
        assert!(snapshot.add_pod(&bound("p5", "", "Pending"), "a"));
        assert_eq!(snapshot.node("a").unwrap().requested.milli_cpu, 2000);
        assert!(!snapshot.add_pod(&bound("p6", "", "Pending"), "zz"));
        assert_eq!(
            snapshot.remove_pod("a", "default/p1").map(|p| p.key.clone()).as_deref(),
            Some("default/p1")
        );
        assert_eq!(
            snapshot.node("a").unwrap().requested,
            Resources {
                milli_cpu: 1000,
                memory: 0,
                pods: 1
            }
        );
    }

    #[test]
    fn host_port_conflicts() {
        let port = |ip: &str, protocol: &str, port: i32| HostPort {
            ip: ip.into(),
            protocol: protocol.into(),
            port,
        };
        assert!(port("0.0.0.0", "TCP", 80).conflicts(&port("10.0.0.1", "TCP", 80)));
        assert!(port("10.0.0.1", "TCP", 80).conflicts(&port("10.0.0.1", "TCP", 80)));
        assert!(!port("10.0.0.1", "TCP", 80).conflicts(&port("10.0.0.2", "TCP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts(&port("0.0.0.0", "UDP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts(&port("0.0.0.0", "TCP", 81)));
    }
}
