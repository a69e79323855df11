//! Score plugins: each rates a feasible node for a pod, then normalizes the ratings of all
//! feasible nodes to 0–100 ([`MAX_SCORE`]). Raw scores are `i64` because preferred
//! anti-affinity subtracts.

use super::cycle::PodCtx;
use capstan_core::k8s_openapi::api::core::v1::Toleration;

use super::selectors::{term_matches, tolerates};
use super::snapshot::NodeInfo;
use super::{MAX_SCORE, ScorePlugin};

/// kube-scheduler's `DefaultNormalizeScore`: scale so the best is 100 (all 0 stays 0), or with
/// `reverse` so the *lowest* is 100 (all 0 becomes 100).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        let scaled = if max == 0 { 0 } else { *s * MAX_SCORE / max };
        *s = if reverse { MAX_SCORE - scaled } else { scaled };
    }
}

/// CPU and memory fractions of allocatable requested once the pod is added (non-zero defaults).
fn fractions(cx: &PodCtx<'_>, node: &NodeInfo) -> [(i64, i64); 2] {
    let want = &cx.info.non_zero_requests;
    let used = &node.non_zero_requested;
    [
        (used.milli_cpu + want.milli_cpu, node.allocatable.milli_cpu),
        (used.memory + want.memory, node.allocatable.memory),
    ]
}

/// `NodeResourcesFit` with the `LeastAllocated` strategy: the more CPU and memory stay free,
/// the better (spreads load). Already 0–100.
pub struct LeastAllocated;

impl ScorePlugin for LeastAllocated {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64 {
        let per = |(requested, allocatable): (i64, i64)| {
            if allocatable <= 0 || requested > allocatable {
                0
            } else {
                (allocatable - requested) * MAX_SCORE / allocatable
            }
        };
        let [cpu, memory] = fractions(cx, node);
        (per(cpu) + per(memory)) / 2
    }

    fn normalize(&self, _scores: &mut [i64]) {}
}

/// `NodeResourcesBalancedAllocation`: CPU and memory used in similar proportions is better
/// (`(1 − std dev of the fractions) × 100`). Already 0–100.
pub struct BalancedAllocation;

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64 {
        let fraction = |(requested, allocatable): (i64, i64)| {
            if allocatable <= 0 {
                1.0
            } else {
                (requested as f64 / allocatable as f64).min(1.0)
            }
        };
        let [cpu, memory] = fractions(cx, node);
        // With two resources the standard deviation is half their difference.
        let std = (fraction(cpu) - fraction(memory)).abs() / 2.0;
        ((1.0 - std) * MAX_SCORE as f64) as i64
    }

    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Preferred node affinity: the summed weights of the preference terms the node matches,
/// scaled so the best node gets 100.
pub struct NodeAffinity;

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        !cx.preferred_node_affinity.is_empty()
    }

    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64 {
        cx.preferred_node_affinity
            .iter()
            .filter(|p| term_matches(&p.preference, &node.labels, &node.name))
            .map(|p| i64::from(p.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

/// Fewer untolerated `PreferNoSchedule` taints is better (reverse-normalized: a node with none
/// gets 100).
pub struct TaintToleration;

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64 {
        // Only tolerations naming this effect (or none) count, as kube-scheduler has it.
        let relevant = |tol: &&Toleration| {
            tol.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        };
        let untolerated = node
            .taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| !cx.tolerations.iter().filter(relevant).any(|tol| tolerates(tol, t)));
        untolerated.count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

/// Preferred pod affinity (+weight) and anti-affinity (−weight) per matching bound pod in the
/// node's topology domain, min–max normalized to 0–100. (Bound pods' own preferred terms
/// towards the incoming pod are not counted yet.)
pub struct InterPodAffinity;

impl ScorePlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn relevant(&self, cx: &PodCtx<'_>) -> bool {
        !cx.preferred_scores.is_empty()
    }

    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64 {
        cx.preferred_scores.iter().filter_map(|c| c.for_node(node)).sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        let (min, max) = (
            scores.iter().copied().min().unwrap_or(0),
            scores.iter().copied().max().unwrap_or(0),
        );
        for s in scores.iter_mut() {
            *s = if max > min {
                (*s - min) * MAX_SCORE / (max - min)
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{node, node_from, pod, scores_of};
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize() {
        let cases: &[(&[i64], bool, &[i64])] = &[
            (&[0, 5, 10], false, &[0, 50, 100]),
            (&[0, 0], false, &[0, 0]),
            (&[0, 1, 2], true, &[100, 50, 0]),
            (&[0, 0], true, &[100, 100]),
        ];
        for (input, reverse, want) in cases {
            let mut scores = input.to_vec();
            default_normalize(&mut scores, *reverse);
            assert_eq!(scores, *want, "{input:?} reverse={reverse}");
        }
    }

    #[test]
    fn resources_prefer_free_and_balanced_nodes() {
        let nodes = [
            node("busy", json!({}), "4", "4Gi"),
            node("idle", json!({}), "4", "4Gi"),
            node("lopsided", json!({}), "4", "4Gi"),
        ];
        let bound = [
            pod(
                json!({"metadata": {"name": "b"}, "spec": {"nodeName": "busy", "containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}),
            ),
            pod(
                json!({"metadata": {"name": "l"}, "spec": {"nodeName": "lopsided", "containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "100Mi"}}}]}}),
            ),
        ];
        let incoming = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}),
        );
        let least = scores_of(&LeastAllocated, &incoming, &nodes, &bound);
        // idle: 1/4 CPU and 1/4 memory after the pod; busy: 3/4 and 3/4; lopsided: 4/4 and ~1/4.
        assert_eq!((least["idle"], least["busy"], least["lopsided"]), (75, 25, 36));
        let balanced = scores_of(&BalancedAllocation, &incoming, &nodes, &bound);
        assert_eq!(balanced["idle"], 100);
        assert_eq!(balanced["busy"], 100);
        assert!(balanced["lopsided"] < 80, "{balanced:?}");
    }

    #[test]
    fn preferred_node_affinity_sums_weights() {
        let nodes = [
            node("both", json!({"disk": "ssd", "zone": "a"}), "1", "1Gi"),
            node("ssd", json!({"disk": "ssd"}), "1", "1Gi"),
            node("none", json!({}), "1", "1Gi"),
        ];
        let incoming = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 75, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 25, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
            ]}}}}),
        );
        let scores = scores_of(&NodeAffinity, &incoming, &nodes, &[]);
        assert_eq!((scores["both"], scores["ssd"], scores["none"]), (100, 75, 0));
    }

    #[test]
    fn fewer_untolerated_prefer_no_schedule_taints_is_better() {
        let tainted = |name: &str, n: usize| {
            let taints: Vec<_> = (0..n)
                .map(|i| json!({"key": format!("soft{i}"), "effect": "PreferNoSchedule"}))
                .collect();
            node_from(json!({"metadata": {"name": name}, "spec": {"taints": taints}}))
        };
        let nodes = [tainted("zero", 0), tainted("one", 1), tainted("two", 2)];
        let plain = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}));
        let scores = scores_of(&TaintToleration, &plain, &nodes, &[]);
        assert_eq!((scores["zero"], scores["one"], scores["two"]), (100, 50, 0));
        let tolerant = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "tolerations": [{"key": "soft0", "operator": "Exists", "effect": "PreferNoSchedule"}]}}),
        );
        let scores = scores_of(&TaintToleration, &tolerant, &nodes, &[]);
        assert_eq!((scores["zero"], scores["one"], scores["two"]), (100, 100, 0));
    }

    #[test]
    fn preferred_pod_affinity_and_anti_affinity() {
        let nodes = [
            node("a1", json!({"zone": "a"}), "4", "4Gi"),
            node("b1", json!({"zone": "b"}), "4", "4Gi"),
            node("c1", json!({"zone": "c"}), "4", "4Gi"),
        ];
        let bound = [
            pod(
                json!({"metadata": {"name": "cache", "labels": {"app": "cache"}}, "spec": {"nodeName": "a1", "containers": [{"name": "c"}]}}),
            ),
            pod(
                json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"nodeName": "b1", "containers": [{"name": "c"}]}}),
            ),
        ];
        let incoming = pod(
            json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}], "affinity": {
                "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "cache"}}}}]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}}}}]},
            }}}),
        );
        let scores = scores_of(&InterPodAffinity, &incoming, &nodes, &bound);
        assert_eq!((scores["a1"], scores["c1"], scores["b1"]), (100, 33, 0));
    }
}
