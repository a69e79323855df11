//! Nodes in an in-process cluster (`cluster::up`, real runtime): a node that stops renewing
//! its Lease becomes NotReady, is tainted unreachable, and its pods are evicted and replaced on
//! the nodes that remain.

mod common;

use std::sync::Arc;

use capstan_control::api::Api;
use capstan_control::api::registry::{ListOptions, WriteOptions};
use capstan_control::api::resources::find;
use capstan_control::cluster::NodeConfig;
use common::{start, until};
use serde_json::{Value, json};

fn pods(api: &Arc<Api>) -> Vec<Value> {
    let (items, _) = api
        .list_items(
            find("", "v1", "pods").unwrap(),
            Some("default"),
            &ListOptions::default(),
        )
        .unwrap();
    items
}

fn running_on(pod: &Value) -> Option<String> {
    let live = pod["metadata"].get("deletionTimestamp").is_none_or(Value::is_null);
    (live && pod["status"]["phase"] == "Running")
        .then(|| pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_renewing_its_lease_loses_its_pods_to_the_others() {
    let node = |name: &str| NodeConfig {
        name: name.into(),
        lease_duration_seconds: Some(2),
        ..Default::default()
    };
    let mut cluster = start("nodes-test", vec![node("edge-1"), node("edge-2")]).await;
    let api = Arc::clone(&cluster.api);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "k8spatterns/random-generator:1.0"}]}}}
    });
    api.create(
        find("apps", "v1", "deployments").unwrap(),
        Some("default"),
        deployment,
        &WriteOptions::default(),
    )
    .unwrap();
    // Both nodes get pods (the scheduler spreads by free capacity).
    let victim = until("pods running on both nodes", || {
        let nodes: Vec<String> = pods(&api).iter().filter_map(running_on).collect();
        (nodes.len() == 4 && nodes.iter().any(|n| n == "edge-1") && nodes.iter().any(|n| n == "edge-2"))
            .then(|| "edge-1".to_owned())
    })
    .await;

    assert!(cluster.stop_node(&victim));
    let node = until("the node to be marked unreachable", || {
        let node = api.get(find("", "v1", "nodes").unwrap(), None, &victim).unwrap();
        let tainted = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute");
        let unknown = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "Unknown");
        (tainted && unknown).then_some(node)
    })
    .await;
    let no_schedule = node["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoSchedule");
    assert!(no_schedule, "{node}");

    until("four pods running on the surviving node", || {
        let nodes: Vec<String> = pods(&api).iter().filter_map(running_on).collect();
        (nodes.len() == 4 && nodes.iter().all(|n| n == "edge-2")).then_some(())
    })
    .await;
    // The evicted pods are marked for deletion: nothing runs them to confirm it.
    let evicted = pods(&api)
        .iter()
        .filter(|p| p["spec"]["nodeName"] == victim.as_str())
        .all(|p| p["metadata"].get("deletionTimestamp").is_some());
    assert!(evicted);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_execute_taint_evicts_the_pods_that_do_not_tolerate_it() {
    let cluster = start("taint-test", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let pods_info = find("", "v1", "pods").unwrap();
    for (name, tolerations) in [
        ("plain", json!([])),
        (
            "tolerant",
            json!([{"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}]),
        ),
    ] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"tolerations": tolerations, "containers": [{"name": "c", "image": "k8spatterns/random-generator:1.0"}]}});
        api.create(pods_info, Some("default"), pod, &WriteOptions::default())
            .unwrap();
    }
    until("both pods running", || {
        (pods(&api).iter().filter_map(running_on).count() == 2).then_some(())
    })
    .await;

    // `kubectl taint node capstan maintenance=now:NoExecute`
    let nodes = find("", "v1", "nodes").unwrap();
    let mut node = api.get(nodes, None, "capstan").unwrap();
    node["spec"]["taints"] = json!([{"key": "maintenance", "value": "now", "effect": "NoExecute"}]);
    api.update(nodes, None, "capstan", node, false, &WriteOptions::default())
        .unwrap();

    until("the intolerant pod to be evicted", || {
        let all = pods(&api);
        let gone = !all.iter().any(|p| p["metadata"]["name"] == "plain");
        let tolerant_runs = all
            .iter()
            .any(|p| p["metadata"]["name"] == "tolerant" && running_on(p).is_some());
        (gone && tolerant_runs).then_some(())
    })
    .await;
    drop(cluster);
}
