//! Preemption as a pure function: when no node fits a pod, which lower-priority pods to evict,
//! and from which node, so that it does.

use std::sync::Arc;

use capstan_core::k8s_openapi::api::core::v1::Pod;

use super::cycle::PodCtx;
use super::snapshot::{PodInfo, Snapshot};
use super::{Fit, run_filters};

/// How a candidate node ranks, lower is better: highest victim priority, shifted sum of
/// victim priorities, number of victims.
type Rank = (i32, i64, usize);

/// Finds a node where evicting pods of lower priority than `pod` makes it pass every filter,
/// and the victims there (`namespace/name`, lowest priority first). `None` when no node can be
/// freed up this way, or the pod's `preemptionPolicy` is `Never`.
///
/// As kube-scheduler: on each node, remove every lower-priority pod; if the pod then fits,
/// put them back one at a time from the most important down, keeping each that still lets the
/// pod fit; the rest are victims. Among candidate nodes pick the one whose most important
/// victim has the lowest priority, then the lowest sum of victim priorities, then the fewest
/// victims, then the first name. A node that needs no victims wins outright.
///
/// Cost: each check rebuilds the pod's cycle state on a working copy of the snapshot, so this
/// is O(nodes × victims × cycle state) — fine for the rare pod that needs it.
pub fn preempt(pod: &Pod, snapshot: &Snapshot) -> Option<(String, Vec<String>)> {
    if pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return None;
    }
    let priority = PodInfo::new(pod).priority;
    let fits = |work: &Snapshot, i: usize| run_filters(&PodCtx::new(pod, work), &work.nodes()[i]) == Fit::Fits;
    let mut work = snapshot.clone();
    let mut best: Option<(Rank, String, Vec<Arc<PodInfo>>)> = None;
    for i in 0..work.nodes().len() {
        let name = work.nodes()[i].name.clone();
        let mut lower: Vec<Arc<PodInfo>> = work.nodes()[i]
            .pods
            .iter()
            .filter(|p| p.priority < priority)
            .cloned()
            .collect();
        for p in &lower {
            work.remove_pod(&name, &p.key);
        }
        if !fits(&work, i) {
            lower.iter().for_each(|p| _ = work.add_pod_info(p.clone(), &name));
            continue;
        }
        // Reprieve the most important first, so the victims are the least important.
        lower.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.key.cmp(&b.key)));
        let mut victims = Vec::new();
        for p in lower {
            work.add_pod_info(p.clone(), &name);
            if !fits(&work, i) {
                work.remove_pod(&name, &p.key);
                victims.push(p);
            }
        }
        victims.iter().for_each(|p| _ = work.add_pod_info(p.clone(), &name));
        let rank = (
            victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN),
            // Shifted to be positive, as kube-scheduler does, so more victims never sum lower.
            victims.iter().map(|v| i64::from(v.priority) + (1 << 31)).sum::<i64>(),
            victims.len(),
        );
        if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
            best = Some((rank, name, victims));
        }
    }
    best.map(|(_, node, mut victims)| {
        victims.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.key.cmp(&b.key)));
        (node, victims.iter().map(|v| v.key.clone()).collect())
    })
}
