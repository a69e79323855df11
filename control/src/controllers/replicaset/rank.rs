//! Which pods a shrinking ReplicaSet deletes first: kube's `ActivePodsWithRanks` order
//! (`controller_utils.go`), with `LogarithmicScaleDown` and `PodDeletionCost` on (their defaults
//! since 1.22).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::jiff::Timestamp;

use crate::controllers::pods::{created, is_active, is_ready, phase, ready_since};

/// The annotation that lets users order deletions (`controller.kubernetes.io/pod-deletion-cost`,
/// an int32; invalid or absent counts as 0).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The sort key of one pod; smaller keys are deleted first. Kube's `Less` compares criteria in
/// turn; a key makes the order total (Rust's sort requires it) and agrees with kube's except in
/// one tie: kube breaks a same-bucket ready time by uid before looking at restarts, this key
/// looks at restarts first.
type Key<'a> = (
    bool,
    u8,
    bool,
    i32,
    Reverse<usize>,
    (bool, i64),
    Reverse<i32>,
    (bool, i64),
    &'a str,
);

/// The `count` pods to delete, most deletable first: unassigned < assigned; Pending < Unknown <
/// Running; not ready < ready; lower deletion cost; more active sibling pods on the same node
/// (doubled up); ready for less time; more container restarts; newer. Times are compared in
/// log2 buckets of their age (so that equally old pods are picked pseudo-randomly, by uid).
/// `related` are the pods counted as siblings on a node (kube counts all pods of the owning
/// Deployment's ReplicaSets; callers pass what they have).
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], count: usize, now: Timestamp) -> Vec<&'a Pod> {
    let mut on_node: BTreeMap<&str, usize> = BTreeMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node(p)).or_default() += 1;
    }
    let mut ranked: Vec<(Key<'a>, &'a Pod)> = pods.iter().map(|&p| (key(p, &on_node, now), p)).collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().take(count).map(|(_, p)| p).collect()
}

fn node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn key<'a>(pod: &'a Pod, on_node: &BTreeMap<&str, usize>, now: Timestamp) -> Key<'a> {
    let phase_ordinal = match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        // Kube's map gives 0 to anything else (the phase is unset before the kubelet reports).
        _ => 0,
    };
    let ready = is_ready(pod);
    let ready_time = if ready {
        log_age(ready_since(pod), now)
    } else {
        (false, 0)
    };
    (
        !node(pod).is_empty(),
        phase_ordinal,
        ready,
        deletion_cost(pod),
        Reverse(on_node.get(node(pod)).copied().unwrap_or(0)),
        ready_time,
        Reverse(max_restarts(pod)),
        log_age(created(&pod.metadata), now),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    )
}

/// A time as (known, log2 bucket of its age in nanoseconds): an unknown (zero) time first, then
/// recent before old (kube's `afterOrZero` and `logarithmicRankDiff`).
fn log_age(t: Option<Timestamp>, now: Timestamp) -> (bool, i64) {
    let Some(t) = t else { return (false, 0) };
    let nanos = now.duration_since(t).as_nanos();
    if nanos <= 0 {
        (true, -1)
    } else {
        (true, (nanos as f64).log2() as i64)
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}
