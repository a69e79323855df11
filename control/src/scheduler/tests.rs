//! Whole-decision tests: `schedule`, the aggregated message, the book's Automated Placement
//! examples, the queue order and preemption.

use serde_json::{Value, json};

use super::testkit::{node, node_from, pod};
use super::*;

fn incoming(spec: Value) -> Pod {
    pod(json!({"metadata": {"name": "incoming", "labels": {"app": "web"}}, "spec": spec}))
}

fn requests(cpu: &str, memory: &str) -> Value {
    json!([{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}])
}

fn bound(name: &str, node: &str, cpu: &str, priority: i32) -> Pod {
    pod(
        json!({"metadata": {"name": name}, "spec": {"nodeName": node, "priority": priority, "containers": requests(cpu, "0")}}),
    )
}

#[test]
fn aggregated_message_reads_like_kube_scheduler() {
    let nodes = [
        node("n1", json!({"disktype": "ssd"}), "1", "1Gi"),
        node("n2", json!({}), "4", "4Gi"),
        node("n3", json!({}), "4", "4Gi"),
    ];
    let snapshot = Snapshot::new(&nodes, &[]);
    let err = schedule(
        &incoming(json!({"containers": requests("2", "100Mi"), "nodeSelector": {"disktype": "ssd"}})),
        &snapshot,
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    );
    assert_eq!(err.to_string(), err.message);

    let nodes = [
        node_from(
            json!({"metadata": {"name": "m"}, "spec": {"taints": [{"key": "node-role.kubernetes.io/master", "value": "true", "effect": "NoSchedule"}]}}),
        ),
        node("small", json!({}), "1", "1Gi"),
    ];
    let err = schedule(
        &incoming(json!({"containers": requests("2", "2Gi")})),
        &Snapshot::new(&nodes, &[]),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) had untolerated taint {node-role.kubernetes.io/master: true}."
    );
    assert_eq!(
        schedule(
            &incoming(json!({"containers": requests("1", "1")})),
            &Snapshot::new(&[], &[])
        )
        .unwrap_err()
        .message,
        "no nodes available to schedule pods"
    );
}

#[test]
fn scores_order_the_feasible_nodes() {
    let nodes = [
        node("a", json!({}), "4", "4Gi"),
        node("b", json!({}), "4", "4Gi"),
        node("c", json!({"disk": "ssd"}), "4", "4Gi"),
    ];
    let plain = incoming(json!({"containers": requests("1", "1Gi")}));
    // Equal nodes: the first name wins the tie.
    assert_eq!(schedule(&plain, &Snapshot::new(&nodes, &[])).unwrap(), "a");
    // Less allocated wins.
    let busy = [bound("x", "a", "3", 0)];
    assert_eq!(schedule(&plain, &Snapshot::new(&nodes, &busy)).unwrap(), "b");
    // Preferred node affinity outweighs a little load.
    let prefers_ssd = incoming(
        json!({"containers": requests("1", "1Gi"), "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}),
    );
    assert_eq!(
        schedule(&prefers_ssd, &Snapshot::new(&nodes, &[bound("y", "c", "1", 0)])).unwrap(),
        "c"
    );
    // An untolerated PreferNoSchedule taint is avoided when another node fits.
    let soft = [
        node_from(
            json!({"metadata": {"name": "a"}, "spec": {"taints": [{"key": "spot", "effect": "PreferNoSchedule"}]}, "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"}}}),
        ),
        node("b", json!({}), "4", "4Gi"),
    ];
    assert_eq!(schedule(&plain, &Snapshot::new(&soft, &[])).unwrap(), "b");
}

#[test]
fn snapshot_updates_as_pods_bind() {
    let nodes = [node("a", json!({}), "2", "2Gi"), node("b", json!({}), "1", "1Gi")];
    let mut snapshot = Snapshot::new(&nodes, &[]);
    let mut placed = Vec::new();
    for i in 0..3 {
        let p = pod(json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": requests("1", "512Mi")}}));
        let node = schedule(&p, &snapshot).unwrap();
        assert!(snapshot.add_pod(&p, &node));
        placed.push(node);
    }
    placed.sort();
    assert_eq!(placed, ["a", "a", "b"]);
    let p = pod(json!({"metadata": {"name": "p3"}, "spec": {"containers": requests("1", "512Mi")}}));
    assert_eq!(
        schedule(&p, &snapshot).unwrap_err().message,
        "0/2 nodes are available: 2 Insufficient cpu."
    );
}

/// The book's three-node examples: nodeSelector, node affinity, pod affinity, tolerations.
fn book_nodes() -> Vec<Node> {
    vec![
        node_from(
            json!({"metadata": {"name": "master", "labels": {"kubernetes.io/hostname": "master", "numberCores": "8", "security-zone": "z1"}},
            "spec": {"taints": [{"key": "node-role.kubernetes.io/master", "value": "true", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"}}}),
        ),
        node(
            "node1",
            json!({"kubernetes.io/hostname": "node1", "disktype": "ssd", "numberCores": "2", "security-zone": "z1"}),
            "2",
            "4Gi",
        ),
        node(
            "node2",
            json!({"kubernetes.io/hostname": "node2", "disktype": "hdd", "numberCores": "4", "security-zone": "z2"}),
            "4",
            "4Gi",
        ),
    ]
}

use capstan_core::k8s_openapi::api::core::v1::Node;

#[test]
fn book_node_selector() {
    let p = incoming(
        json!({"containers": [{"name": "random-generator", "image": "k8spatterns/random-generator:1.0"}], "nodeSelector": {"disktype": "ssd"}}),
    );
    assert_eq!(schedule(&p, &Snapshot::new(&book_nodes(), &[])).unwrap(), "node1");
}

#[test]
fn book_node_affinity() {
    let p = incoming(
        json!({"containers": [{"name": "random-generator"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "numberCores", "operator": "Gt", "values": ["3"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["master"]}]}}],
        }}}),
    );
    // master has 8 cores but is tainted; node1 has 2; node2 has 4.
    assert_eq!(schedule(&p, &Snapshot::new(&book_nodes(), &[])).unwrap(), "node2");
}

#[test]
fn book_pod_affinity_and_anti_affinity() {
    let confidential = |name: &str, node: &str, level: &str| {
        pod(
            json!({"metadata": {"name": name, "labels": {"confidential": level}}, "spec": {"nodeName": node, "containers": [{"name": "c"}]}}),
        )
    };
    let p = incoming(json!({"containers": [{"name": "random-generator"}], "affinity": {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"confidential": "high"}}, "topologyKey": "security-zone"}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"confidential": "none"}}, "topologyKey": "kubernetes.io/hostname"}}]},
    }}));
    // confidential=high runs in zone z2 → node2.
    let snapshot = Snapshot::new(&book_nodes(), &[confidential("secret", "node2", "high")]);
    assert_eq!(schedule(&p, &snapshot).unwrap(), "node2");
    // In zone z1 (master is tainted) → node1; the non-confidential pod on node1 only lowers its score.
    let snapshot = Snapshot::new(
        &book_nodes(),
        &[
            confidential("secret", "master", "high"),
            confidential("public", "node1", "none"),
        ],
    );
    assert_eq!(schedule(&p, &snapshot).unwrap(), "node1");
    // Nothing confidential anywhere: unschedulable.
    let err = schedule(&p, &Snapshot::new(&book_nodes(), &[])).unwrap_err();
    assert_eq!(
        err.message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: true}, 2 node(s) didn't match pod affinity rules."
    );
}

#[test]
fn book_toleration() {
    let tolerant = incoming(
        json!({"containers": requests("6", "1Gi"), "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}]}),
    );
    assert_eq!(
        schedule(&tolerant, &Snapshot::new(&book_nodes(), &[])).unwrap(),
        "master"
    );
    let intolerant = incoming(json!({"containers": requests("6", "1Gi")}));
    assert!(schedule(&intolerant, &Snapshot::new(&book_nodes(), &[])).is_err());
}

#[test]
fn queue_orders_by_priority_then_age() {
    let p = |name: &str, priority: Option<i32>, created: &str| {
        let mut v =
            json!({"metadata": {"name": name, "creationTimestamp": created}, "spec": {"containers": [{"name": "c"}]}});
        if let Some(priority) = priority {
            v["spec"]["priority"] = json!(priority);
        }
        pod(v)
    };
    let mut pending = vec![
        p("old-low", None, "2024-01-01T00:00:00Z"),
        p("new-high", Some(1000), "2024-01-03T00:00:00Z"),
        p("old-high", Some(1000), "2024-01-02T00:00:00Z"),
        p("negative", Some(-5), "2023-01-01T00:00:00Z"),
        p("same-b", Some(10), "2024-01-01T00:00:00Z"),
        p("same-a", Some(10), "2024-01-01T00:00:00Z"),
    ];
    sort_pending(&mut pending);
    let names: Vec<_> = pending.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        ["old-high", "new-high", "same-a", "same-b", "old-low", "negative"]
    );
}

#[test]
fn preemption_evicts_the_fewest_lowest_priority_pods() {
    let nodes = [
        node("a", json!({}), "2", "4Gi"),
        node("b", json!({}), "2", "4Gi"),
        node("gpu", json!({"gpu": "yes"}), "2", "4Gi"),
    ];
    let pods = [
        bound("a-low", "a", "1", 1),
        bound("a-mid", "a", "1", 5),
        bound("b-3", "b", "1", 3),
        bound("b-4", "b", "1", 4),
        bound("g-2", "gpu", "2", 2),
    ];
    let snapshot = Snapshot::new(&nodes, &pods);
    let wants = |cpu: &str, priority: i32, extra: Value| {
        let mut spec = json!({"containers": requests(cpu, "1Mi"), "priority": priority});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        incoming(spec)
    };
    let cases = [
        // One CPU: a single victim, the lowest priority one (1 on a, not 2 on gpu).
        (
            wants("1", 10, json!({"nodeSelector": {}})),
            Some(("a", vec!["default/a-low"])),
        ),
        // One CPU on non-gpu nodes only.
        (
            wants(
                "1",
                10,
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}}),
            ),
            Some(("a", vec!["default/a-low"])),
        ),
        // Two CPUs: the gpu node's single priority-2 pod beats two victims elsewhere.
        (wants("2", 10, json!({})), Some(("gpu", vec!["default/g-2"]))),
        // Two CPUs off the gpu node: b's highest victim (4) is lower than a's (5).
        (
            wants(
                "2",
                10,
                json!({"nodeSelector": {}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}}),
            ),
            Some(("b", vec!["default/b-3", "default/b-4"])),
        ),
        // Priority 4 may evict only a-low and b-3: one CPU fits, two do not.
        (wants("1", 4, json!({"nodeSelector": {"gpu": "no"}})), None),
        (
            wants(
                "2",
                4,
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}}),
            ),
            None,
        ),
        // Equal priority is never preempted.
        (wants("2", 0, json!({})), None),
        (wants("1", 10, json!({"preemptionPolicy": "Never"})), None),
    ];
    for (p, want) in cases {
        let got = preempt(&p, &snapshot);
        let want = want.map(|(n, v)| (n.to_string(), v.into_iter().map(String::from).collect::<Vec<_>>()));
        assert_eq!(
            got,
            want,
            "{:?}",
            p.spec
                .as_ref()
                .map(|s| (&s.priority, &s.node_selector, &s.preemption_policy))
        );
    }
    // After evicting the victims the pod schedules there.
    let p = wants("2", 10, json!({}));
    let (node, victims) = preempt(&p, &snapshot).unwrap();
    let mut after = snapshot.clone();
    victims.iter().for_each(|v| _ = after.remove_pod(&node, v));
    assert_eq!(schedule(&p, &after).unwrap(), node);
}
