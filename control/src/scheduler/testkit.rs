//! Builders for the scheduler's table tests: objects from JSON, as manifests read.

use std::collections::HashMap;

use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::{FilterPlugin, Fit, PodCtx, ScorePlugin, Snapshot};

/// A node from its full JSON.
pub fn node_from(value: Value) -> Node {
    serde_json::from_value(value).expect("node JSON")
}

/// A node with labels and allocatable CPU and memory (110 pods).
pub fn node(name: &str, labels: Value, cpu: &str, memory: &str) -> Node {
    node_from(json!({
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}},
    }))
}

/// A pod from its JSON.
pub fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("pod JSON")
}

/// One filter plugin's verdict for `pod` on `node_name`.
pub fn run_filter(plugin: &dyn FilterPlugin, pod: &Pod, nodes: &[Node], bound: &[Pod], node_name: &str) -> Fit {
    let snapshot = Snapshot::new(nodes, bound);
    let cx = PodCtx::new(pod, &snapshot);
    let node = snapshot.node(node_name).expect("node in the table");
    let fit = plugin.filter(&cx, node);
    // The fast path and the skip must agree with the full verdict.
    assert_eq!(
        plugin.fits(&cx, node),
        fit == Fit::Fits,
        "{}: fits() disagrees with filter()",
        plugin.name()
    );
    assert!(
        plugin.relevant(&cx) || fit == Fit::Fits,
        "{}: skipped but would reject",
        plugin.name()
    );
    fit
}

/// One score plugin's normalized scores for `pod` over every node.
pub fn scores_of(plugin: &dyn ScorePlugin, pod: &Pod, nodes: &[Node], bound: &[Pod]) -> HashMap<String, i64> {
    let snapshot = Snapshot::new(nodes, bound);
    let cx = PodCtx::new(pod, &snapshot);
    let mut scores: Vec<i64> = snapshot.nodes().iter().map(|n| plugin.score(&cx, n)).collect();
    plugin.normalize(&mut scores);
    snapshot.nodes().iter().map(|n| n.name.clone()).zip(scores).collect()
}
