//! Filter plugins: each says whether a pod fits a node, and if not why, in kube-scheduler's
//! words (the unschedulable message aggregates these reasons, and users search for them).

use std::borrow::Cow;

use capstan_core::k8s_openapi::api::core::v1::Taint;

use super::cycle::{EXCLUDED_BY_EXISTING, EXCLUDED_BY_OWN, PodCtx};
use super::selectors::{node_selector_matches, tolerated};
use super::snapshot::NodeInfo;
use super::{FilterPlugin, Fit};

/// `node(s) were unschedulable` unless the pod tolerates the cordon taint.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// `spec.nodeName` names another node.
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// nodeSelector or required node affinity.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// The node's pod count is at allocatable.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// Not enough CPU left.
pub const REASON_CPU: &str = "Insufficient cpu";
/// Not enough memory left.
pub const REASON_MEMORY: &str = "Insufficient memory";
/// Required pod affinity not satisfied.
pub const REASON_POD_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// The pod's own required anti-affinity not satisfied.
pub const REASON_POD_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// A bound pod's required anti-affinity excludes this pod.
pub const REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// A host port is taken.
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

fn unfit(reason: &'static str) -> Fit {
    Fit::Unschedulable(vec![Cow::Borrowed(reason)])
}

/// A cordoned node (`spec.unschedulable`) takes only pods tolerating
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        if !node.unschedulable {
            return Fit::Fits;
        }
        let cordon = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if tolerated(cx.tolerations, &cordon) {
            Fit::Fits
        } else {
            unfit(REASON_UNSCHEDULABLE)
        }
    }
}

/// A pod with `spec.nodeName` fits only that node.
pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        cx.node_name.is_some()
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        match cx.node_name {
            Some(name) if name != node.name => unfit(REASON_NODE_NAME),
            _ => Fit::Fits,
        }
    }
}

/// Taints with effect `NoSchedule` or `NoExecute` must be tolerated; the first one that is not
/// is named. (`PreferNoSchedule` only lowers the score.)
pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn fits(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> bool {
        untolerated(cx, node).is_none()
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        match untolerated(cx, node) {
            None => Fit::Fits,
            Some(t) => Fit::Unschedulable(vec![Cow::Owned(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or_default()
            ))]),
        }
    }
}

/// The first `NoSchedule` or `NoExecute` taint the pod does not tolerate.
fn untolerated<'n>(cx: &PodCtx<'_>, node: &'n NodeInfo) -> Option<&'n Taint> {
    node.taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerated(cx.tolerations, t))
}

/// `spec.nodeSelector` (every label present with that value) and required node affinity
/// (terms ORed; expressions and fields within a term ANDed).
pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        cx.node_selector.is_some() || cx.required_node_affinity.is_some()
    }

    fn fits(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> bool {
        cx.node_selector
            .is_none_or(|s| s.iter().all(|(k, v)| node.labels.get(k) == Some(v)))
            && cx
                .required_node_affinity
                .is_none_or(|s| node_selector_matches(s, &node.labels, &node.name))
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        if self.fits(cx, node) {
            Fit::Fits
        } else {
            unfit(REASON_NODE_AFFINITY)
        }
    }
}

/// The pod's host ports must be free on the node.
pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        !cx.info.host_ports.is_empty()
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        let conflict = cx
            .info
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict { unfit(REASON_PORTS) } else { Fit::Fits }
    }
}

/// The pod's requests must fit in allocatable minus what bound pods request, and one more pod
/// must be allowed. Every shortfall is named (kube-scheduler reports them all).
pub struct NodeResourcesFit;

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn fits(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> bool {
        let want = &cx.info.requests;
        let (free, used) = (&node.allocatable, &node.requested);
        used.pods < free.pods
            && (want.milli_cpu <= 0 || want.milli_cpu <= free.milli_cpu - used.milli_cpu)
            && (want.memory <= 0 || want.memory <= free.memory - used.memory)
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        let want = &cx.info.requests;
        let (free, used) = (&node.allocatable, &node.requested);
        let mut reasons = Vec::new();
        if used.pods + 1 > free.pods {
            reasons.push(Cow::Borrowed(REASON_TOO_MANY_PODS));
        }
        if want.milli_cpu > 0 && want.milli_cpu > free.milli_cpu - used.milli_cpu {
            reasons.push(Cow::Borrowed(REASON_CPU));
        }
        if want.memory > 0 && want.memory > free.memory - used.memory {
            reasons.push(Cow::Borrowed(REASON_MEMORY));
        }
        if reasons.is_empty() {
            Fit::Fits
        } else {
            Fit::Unschedulable(reasons)
        }
    }
}

/// Required pod affinity and anti-affinity by topology domain, and bound pods' required
/// anti-affinity against this pod. The first pod of a group that selects itself may go
/// anywhere that has the topology labels (otherwise it could never start).
pub struct InterPodAffinity;

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        !(cx.anti_affinity_excluded.is_empty() && cx.affinity_counts.is_empty())
    }

    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
        // Existing pods' anti-affinity first, then the pod's own (precomputed per node).
        match cx.anti_affinity_excluded.get(node.index) {
            Some(&EXCLUDED_BY_EXISTING) => return unfit(REASON_EXISTING_ANTI_AFFINITY),
            Some(&EXCLUDED_BY_OWN) => return unfit(REASON_POD_ANTI_AFFINITY),
            _ => {}
        }
        if cx.affinity_counts.is_empty() {
            return Fit::Fits;
        }
        let mut pods_exist = true;
        for counts in &cx.affinity_counts {
            match counts.for_node(node) {
                None => return unfit(REASON_POD_AFFINITY),
                Some(n) if n <= 0 => pods_exist = false,
                Some(_) => {}
            }
        }
        let first_of_group = !cx.any_affinity_match && cx.info.required_affinity.iter().all(|t| t.matches(&cx.info));
        if pods_exist || first_of_group {
            Fit::Fits
        } else {
            unfit(REASON_POD_AFFINITY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{node, node_from, pod, run_filter};
    use super::*;
    use serde_json::{Value, json};

    /// Runs `plugin` for each (pod spec, expected reason or None) against `nodes` bound with `bound`.
    fn table(
        plugin: &dyn FilterPlugin,
        nodes: &[capstan_core::k8s_openapi::api::core::v1::Node],
        bound: &[Value],
        cases: &[(Value, &str, Option<&str>)],
    ) {
        let bound: Vec<_> = bound.iter().map(|p| pod(p.clone())).collect();
        for (spec, node_name, want) in cases {
            let incoming = pod(json!({"metadata": {"name": "incoming", "labels": {"app": "web"}}, "spec": spec}));
            let got = run_filter(plugin, &incoming, nodes, &bound, node_name);
            let got = match &got {
                Fit::Fits => None,
                Fit::Unschedulable(r) => Some(r.join(", ")),
            };
            assert_eq!(got.as_deref(), *want, "{} on {node_name}: {spec}", plugin.name());
        }
    }

    fn containers() -> Value {
        json!([{"name": "c"}])
    }

    #[test]
    fn node_unschedulable() {
        let nodes = [
            node_from(json!({"metadata": {"name": "cordoned"}, "spec": {"unschedulable": true}})),
            node("open", json!({}), "1", "1Gi"),
        ];
        table(
            &NodeUnschedulable,
            &nodes,
            &[],
            &[
                (json!({"containers": containers()}), "open", None),
                (
                    json!({"containers": containers()}),
                    "cordoned",
                    Some(REASON_UNSCHEDULABLE),
                ),
                (
                    json!({"containers": containers(), "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
                    "cordoned",
                    None,
                ),
            ],
        );
    }

    #[test]
    fn node_name() {
        let nodes = [node("a", json!({}), "1", "1Gi"), node("b", json!({}), "1", "1Gi")];
        table(
            &NodeName,
            &nodes,
            &[],
            &[
                (json!({"containers": containers()}), "a", None),
                (json!({"containers": containers(), "nodeName": "a"}), "a", None),
                (
                    json!({"containers": containers(), "nodeName": "a"}),
                    "b",
                    Some(REASON_NODE_NAME),
                ),
            ],
        );
    }

    #[test]
    fn taint_toleration() {
        let tainted =
            |name: &str, taints: Value| node_from(json!({"metadata": {"name": name}, "spec": {"taints": taints}}));
        let nodes = [
            tainted(
                "master",
                json!([{"key": "node-role.kubernetes.io/master", "value": "true", "effect": "NoSchedule"}]),
            ),
            tainted("evicting", json!([{"key": "broken", "effect": "NoExecute"}])),
            tainted(
                "soft",
                json!([{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]),
            ),
        ];
        let c = containers();
        table(
            &TaintToleration,
            &nodes,
            &[],
            &[
                (
                    json!({"containers": c}),
                    "master",
                    Some("node(s) had untolerated taint {node-role.kubernetes.io/master: true}"),
                ),
                (
                    json!({"containers": c}),
                    "evicting",
                    Some("node(s) had untolerated taint {broken: }"),
                ),
                (json!({"containers": c}), "soft", None),
                // The book's toleration: key + Exists + effect.
                (
                    json!({"containers": c, "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}]}),
                    "master",
                    None,
                ),
                (
                    json!({"containers": c, "tolerations": [{"key": "node-role.kubernetes.io/master", "value": "true"}]}),
                    "master",
                    None,
                ),
                (
                    json!({"containers": c, "tolerations": [{"key": "node-role.kubernetes.io/master", "value": "false"}]}),
                    "master",
                    Some("node(s) had untolerated taint {node-role.kubernetes.io/master: true}"),
                ),
                (
                    json!({"containers": c, "tolerations": [{"key": "broken", "operator": "Exists", "effect": "NoSchedule"}]}),
                    "evicting",
                    Some("node(s) had untolerated taint {broken: }"),
                ),
                (
                    json!({"containers": c, "tolerations": [{"operator": "Exists"}]}),
                    "evicting",
                    None,
                ),
            ],
        );
    }

    #[test]
    fn node_affinity() {
        let nodes = [
            node("ssd", json!({"disktype": "ssd", "cores": "8"}), "1", "1Gi"),
            node("hdd", json!({"disktype": "hdd", "cores": "2"}), "1", "1Gi"),
        ];
        let c = containers();
        let required = |exprs: Value| json!({"containers": c, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}});
        table(
            &NodeAffinity,
            &nodes,
            &[],
            &[
                (json!({"containers": c}), "hdd", None),
                (
                    json!({"containers": c, "nodeSelector": {"disktype": "ssd"}}),
                    "ssd",
                    None,
                ),
                (
                    json!({"containers": c, "nodeSelector": {"disktype": "ssd"}}),
                    "hdd",
                    Some(REASON_NODE_AFFINITY),
                ),
                (
                    json!({"containers": c, "nodeSelector": {"disktype": "ssd", "gpu": "yes"}}),
                    "ssd",
                    Some(REASON_NODE_AFFINITY),
                ),
                (
                    required(json!([{"key": "cores", "operator": "Gt", "values": ["3"]}])),
                    "ssd",
                    None,
                ),
                (
                    required(json!([{"key": "cores", "operator": "Gt", "values": ["3"]}])),
                    "hdd",
                    Some(REASON_NODE_AFFINITY),
                ),
                (
                    required(json!([{"key": "cores", "operator": "Lt", "values": ["3"]}])),
                    "hdd",
                    None,
                ),
                (
                    required(json!([{"key": "disktype", "operator": "NotIn", "values": ["hdd"]}])),
                    "hdd",
                    Some(REASON_NODE_AFFINITY),
                ),
                (
                    required(json!([{"key": "gpu", "operator": "DoesNotExist"}])),
                    "hdd",
                    None,
                ),
                (
                    required(json!([{"key": "gpu", "operator": "Exists"}])),
                    "hdd",
                    Some(REASON_NODE_AFFINITY),
                ),
                (
                    json!({"containers": c, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd"]}]}]}}}}),
                    "hdd",
                    None,
                ),
                (
                    json!({"containers": c, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd"]}]}]}}}}),
                    "ssd",
                    Some(REASON_NODE_AFFINITY),
                ),
                // nodeSelector and affinity must both hold.
                (
                    json!({"containers": c, "nodeSelector": {"disktype": "hdd"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["3"]}]}]}}}}),
                    "hdd",
                    Some(REASON_NODE_AFFINITY),
                ),
            ],
        );
    }

    #[test]
    fn node_ports() {
        let nodes = [node("a", json!({}), "1", "1Gi"), node("b", json!({}), "1", "1Gi")];
        let with_port = |port: i32, ip: Option<&str>, protocol: &str| {
            let mut p = json!({"containerPort": 8080, "hostPort": port, "protocol": protocol});
            if let Some(ip) = ip {
                p["hostIP"] = json!(ip);
            }
            json!({"containers": [{"name": "c", "ports": [p]}]})
        };
        let bound = [
            json!({"metadata": {"name": "web"}, "spec": {"nodeName": "a", "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.1"}]}]}}),
        ];
        table(
            &NodePorts,
            &nodes,
            &bound,
            &[
                (with_port(80, None, "TCP"), "a", Some(REASON_PORTS)),
                (with_port(80, None, "TCP"), "b", None),
                (with_port(80, Some("10.0.0.2"), "TCP"), "a", None),
                (with_port(80, Some("10.0.0.1"), "TCP"), "a", Some(REASON_PORTS)),
                (with_port(80, None, "UDP"), "a", None),
                (with_port(81, None, "TCP"), "a", None),
                (
                    json!({"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}),
                    "a",
                    None,
                ),
            ],
        );
    }

    #[test]
    fn node_resources_fit() {
        let nodes = [
            node("small", json!({}), "1", "1Gi"),
            node_from(
                json!({"metadata": {"name": "full"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "1"}}}),
            ),
        ];
        let req = |cpu: &str, mem: &str| json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]});
        let bound = [
            json!({"metadata": {"name": "b1"}, "spec": {"nodeName": "small", "containers": [{"name": "c", "resources": {"requests": {"cpu": "600m", "memory": "512Mi"}}}]}}),
            json!({"metadata": {"name": "b2"}, "spec": {"nodeName": "full", "containers": [{"name": "c"}]}}),
        ];
        table(
            &NodeResourcesFit,
            &nodes,
            &bound,
            &[
                (req("400m", "512Mi"), "small", None),
                (req("401m", "100Mi"), "small", Some(REASON_CPU)),
                (req("100m", "513Mi"), "small", Some(REASON_MEMORY)),
                (req("2", "2Gi"), "small", Some("Insufficient cpu, Insufficient memory")),
                (req("100m", "1Mi"), "full", Some(REASON_TOO_MANY_PODS)),
                // Init containers: the larger of the init container and the containers' sum.
                (
                    json!({"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "500m"}}}], "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}),
                    "small",
                    Some(REASON_CPU),
                ),
                (json!({"containers": [{"name": "c"}]}), "small", None),
            ],
        );
    }

    #[test]
    fn inter_pod_affinity() {
        // Two zones: a (nodes a1, a2) and b (node b1); b2 has no zone label.
        let nodes = [
            node("a1", json!({"zone": "a", "kubernetes.io/hostname": "a1"}), "8", "8Gi"),
            node("a2", json!({"zone": "a", "kubernetes.io/hostname": "a2"}), "8", "8Gi"),
            node("b1", json!({"zone": "b", "kubernetes.io/hostname": "b1"}), "8", "8Gi"),
            node("b2", json!({"kubernetes.io/hostname": "b2"}), "8", "8Gi"),
        ];
        let bound = [
            json!({"metadata": {"name": "cache", "labels": {"app": "cache"}}, "spec": {"nodeName": "a1", "containers": [{"name": "c"}]}}),
            json!({"metadata": {"name": "other-ns-cache", "namespace": "other", "labels": {"app": "cache"}}, "spec": {"nodeName": "b1", "containers": [{"name": "c"}]}}),
            json!({"metadata": {"name": "loner", "labels": {"app": "loner"}}, "spec": {"nodeName": "b1", "containers": [{"name": "c"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}}}]}}}}),
        ];
        let c = containers();
        let affinity = |kind: &str, key: &str, selector: Value, namespaces: Option<Value>| {
            let mut term = json!({"topologyKey": key, "labelSelector": selector});
            if let Some(ns) = namespaces {
                term["namespaces"] = ns;
            }
            json!({"containers": c, "affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}})
        };
        let cache = json!({"matchLabels": {"app": "cache"}});
        let cache_expr = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["cache", "db"]}]});
        table(
            &InterPodAffinity,
            &nodes,
            &bound,
            &[
                (json!({"containers": c}), "a1", None),
                // Bound `loner` excludes app=web pods from zone b.
                (json!({"containers": c}), "b1", Some(REASON_EXISTING_ANTI_AFFINITY)),
                (json!({"containers": c}), "b2", None),
                // Affinity to the cache by zone: a1 and a2 share zone a.
                (affinity("podAffinity", "zone", cache.clone(), None), "a2", None),
                (affinity("podAffinity", "zone", cache_expr.clone(), None), "a1", None),
                (
                    affinity("podAffinity", "kubernetes.io/hostname", cache.clone(), None),
                    "a2",
                    Some(REASON_POD_AFFINITY),
                ),
                (
                    affinity("podAffinity", "zone", cache.clone(), None),
                    "b2",
                    Some(REASON_POD_AFFINITY),
                ),
                // The other namespace's cache counts only when its namespace is listed.
                (
                    affinity("podAffinity", "zone", cache.clone(), Some(json!(["other"]))),
                    "b1",
                    Some(REASON_EXISTING_ANTI_AFFINITY),
                ),
                (
                    affinity("podAffinity", "zone", cache.clone(), Some(json!(["other"]))),
                    "a1",
                    Some(REASON_POD_AFFINITY),
                ),
                // Anti-affinity to the cache by zone.
                (
                    affinity("podAntiAffinity", "zone", cache.clone(), None),
                    "a2",
                    Some(REASON_POD_ANTI_AFFINITY),
                ),
                (
                    affinity("podAntiAffinity", "kubernetes.io/hostname", cache.clone(), None),
                    "a2",
                    None,
                ),
                (affinity("podAntiAffinity", "zone", cache.clone(), None), "b2", None),
                // No pod matches, and the pod does not match its own term: nowhere.
                (
                    affinity("podAffinity", "zone", json!({"matchLabels": {"app": "nobody"}}), None),
                    "a1",
                    Some(REASON_POD_AFFINITY),
                ),
                // No pod matches, but the pod matches its own term: the first of its group.
                (
                    affinity("podAffinity", "zone", json!({"matchLabels": {"app": "web"}}), None),
                    "a1",
                    None,
                ),
                (
                    affinity("podAffinity", "zone", json!({"matchLabels": {"app": "web"}}), None),
                    "b2",
                    Some(REASON_POD_AFFINITY),
                ),
            ],
        );
    }
}
