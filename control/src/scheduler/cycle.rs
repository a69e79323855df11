//! The per-pod state of one scheduling cycle (kube-scheduler's `CycleState` filled by the
//! PreFilter and PreScore extension points): what a pod asks for, read once, and the pod
//! (anti-)affinity counts per topology domain, gathered once over all bound pods so that each
//! node's check is a map lookup.

use std::collections::{BTreeMap, HashMap};

use capstan_core::k8s_openapi::api::core::v1::{NodeSelector, Pod, PreferredSchedulingTerm, Toleration};

use super::snapshot::{NodeInfo, PodInfo, Snapshot};

/// A bound pod's required anti-affinity excludes the node ([`PodCtx::anti_affinity_excluded`]).
pub const EXCLUDED_BY_EXISTING: u8 = 1;
/// The pod's own required anti-affinity excludes the node.
pub const EXCLUDED_BY_OWN: u8 = 2;

/// Counts of matching pods per value of one topology key.
#[derive(Debug, Clone, Default)]
pub struct TopologyCounts {
    /// The node label that defines the domains.
    pub topology_key: String,
    /// Domain value → count (or summed weight).
    pub counts: HashMap<String, i64>,
}

impl TopologyCounts {
    fn new(topology_key: &str) -> TopologyCounts {
        TopologyCounts {
            topology_key: topology_key.to_string(),
            counts: HashMap::new(),
        }
    }

    fn bump(&mut self, node: &NodeInfo, by: i64) {
        if let Some(value) = node.labels.get(&self.topology_key) {
            *self.counts.entry(value.clone()).or_default() += by;
        }
    }

    /// The count for `node`'s domain; `None` when the node lacks the topology label.
    pub fn for_node(&self, node: &NodeInfo) -> Option<i64> {
        node.labels
            .get(&self.topology_key)
            .map(|v| self.counts.get(v).copied().unwrap_or(0))
    }
}

/// One pod being scheduled, with what the plugins precompute for it.
#[derive(Debug)]
pub struct PodCtx<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The pod, read.
    pub info: PodInfo,
    /// `spec.nodeName`.
    pub node_name: Option<&'a str>,
    /// `spec.nodeSelector`.
    pub node_selector: Option<&'a BTreeMap<String, String>>,
    /// `nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub required_node_affinity: Option<&'a NodeSelector>,
    /// `nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution`.
    pub preferred_node_affinity: &'a [PreferredSchedulingTerm],
    /// `spec.tolerations`.
    pub tolerations: &'a [Toleration],
    /// Per required affinity term: bound pods matching *all* terms, per domain.
    pub affinity_counts: Vec<TopologyCounts>,
    /// Whether any bound pod matched the required affinity terms at all.
    pub any_affinity_match: bool,
    /// Per required anti-affinity term: bound pods matching it, per domain.
    pub anti_affinity_counts: Vec<TopologyCounts>,
    /// Bound pods whose required anti-affinity selects this pod, per (topology key, domain).
    pub existing_anti_affinity: Vec<TopologyCounts>,
    /// Per node index: 0 when no required anti-affinity (own or existing pods') excludes the
    /// node, else [`EXCLUDED_BY_EXISTING`] or [`EXCLUDED_BY_OWN`]; empty when none excludes any.
    /// Precomputed from the domains so each node's check is an index, not a lookup.
    pub anti_affinity_excluded: Vec<u8>,
    /// Preferred (anti-)affinity: summed weights (anti negative) per (topology key, domain).
    pub preferred_scores: Vec<TopologyCounts>,
}

impl<'a> PodCtx<'a> {
    /// Reads `pod` and gathers its affinity counts over `snapshot`.
    pub fn new(pod: &'a Pod, snapshot: &Snapshot) -> PodCtx<'a> {
        let spec = pod.spec.as_ref();
        let node_affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref());
        let info = PodInfo::new(pod);
        let mut cx = PodCtx {
            pod,
            node_name: spec.and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()),
            node_selector: spec.and_then(|s| s.node_selector.as_ref()).filter(|s| !s.is_empty()),
            required_node_affinity: node_affinity
                .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            preferred_node_affinity: node_affinity
                .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
                .unwrap_or_default(),
            tolerations: spec.and_then(|s| s.tolerations.as_deref()).unwrap_or_default(),
            affinity_counts: info
                .required_affinity
                .iter()
                .map(|t| TopologyCounts::new(&t.topology_key))
                .collect(),
            any_affinity_match: false,
            anti_affinity_counts: info
                .required_anti_affinity
                .iter()
                .map(|t| TopologyCounts::new(&t.topology_key))
                .collect(),
            existing_anti_affinity: Vec::new(),
            anti_affinity_excluded: Vec::new(),
            preferred_scores: Vec::new(),
            info,
        };
        cx.gather(snapshot);
        cx
    }

    fn gather(&mut self, snapshot: &Snapshot) {
        let info = &self.info;
        let mut existing: BTreeMap<&str, TopologyCounts> = BTreeMap::new();
        let mut preferred: BTreeMap<&str, TopologyCounts> = BTreeMap::new();
        if info.has_affinity_terms() {
            // Each term looks only at the pods it could select (see `for_each_candidate`).
            if let Some(first) = info.required_affinity.first() {
                let (terms, counts, any) = (
                    &info.required_affinity,
                    &mut self.affinity_counts,
                    &mut self.any_affinity_match,
                );
                snapshot.for_each_candidate(first, |node, other| {
                    if terms.iter().all(|t| t.matches(other)) {
                        *any = true;
                        counts.iter_mut().for_each(|c| c.bump(node, 1));
                    }
                });
            }
            for (term, counts) in info.required_anti_affinity.iter().zip(&mut self.anti_affinity_counts) {
                snapshot.for_each_candidate(term, |node, other| {
                    if term.matches(other) {
                        counts.bump(node, 1);
                    }
                });
            }
            let weighted = info
                .preferred_affinity
                .iter()
                .map(|w| (w, 1))
                .chain(info.preferred_anti_affinity.iter().map(|w| (w, -1)));
            for (w, sign) in weighted {
                let key = w.term.topology_key.as_str();
                snapshot.for_each_candidate(&w.term, |node, other| {
                    if w.term.matches(other) {
                        preferred
                            .entry(key)
                            .or_insert_with(|| TopologyCounts::new(key))
                            .bump(node, sign * w.weight);
                    }
                });
            }
        }
        for (node, other) in snapshot.pods_with_required_anti_affinity() {
            for term in other.required_anti_affinity.iter().filter(|t| t.matches(info)) {
                let key = term.topology_key.as_str();
                existing
                    .entry(key)
                    .or_insert_with(|| TopologyCounts::new(key))
                    .bump(node, 1);
            }
        }
        self.existing_anti_affinity = existing.into_values().collect();
        // Existing pods' anti-affinity is checked first, so it marks last and wins.
        let own = self.anti_affinity_counts.iter().map(|c| (c, EXCLUDED_BY_OWN));
        let marks = own.chain(self.existing_anti_affinity.iter().map(|c| (c, EXCLUDED_BY_EXISTING)));
        for (counts, mark) in marks {
            for (value, _) in counts.counts.iter().filter(|(_, n)| **n > 0) {
                for &i in snapshot.domain(&counts.topology_key, value) {
                    if self.anti_affinity_excluded.is_empty() {
                        self.anti_affinity_excluded = vec![0; snapshot.nodes().len()];
                    }
                    self.anti_affinity_excluded[i] = mark;
                }
            }
        }
        self.preferred_scores = preferred.into_values().collect();
    }
}
