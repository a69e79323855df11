//! The scheduler's pure core (Automated Placement): which node a pending pod goes to, why none
//! fits, which pending pod goes first, and which pods to preempt. No I/O, no clocks: plain
//! functions over a [`Snapshot`] of the cluster, tested with tables.
//!
//! As kube-scheduler's framework, a decision is Filter then Score plugins over an immutable
//! snapshot built once per cycle. [`PodCtx`] is the cycle state (PreFilter/PreScore): what the
//! pod asks for, read once, and pod (anti-)affinity counts per topology domain. Every filter
//! plugin ([`filter_plugins`]) must pass on a node, in order, the first failure naming the
//! reason; the feasible nodes are then rated by every score plugin ([`score_plugins`]),
//! normalized to 0–100, and summed with the plugins' weights. Ties go to the node whose name
//! sorts first — deterministic, so tests and replays agree (kube-scheduler picks at random).
//!
//! What is not here yet: extended resources and ephemeral storage, `namespaceSelector` beyond
//! the empty one (no Namespace objects in the snapshot), topology spread constraints, bound
//! pods' preferred affinity towards the incoming pod in scoring, PodDisruptionBudgets in
//! preemption, and `percentageOfNodesToScore` as a setting (the adaptive default is built in).

mod cycle;
pub mod filters;
mod preempt;
pub mod scores;
pub mod selectors;
pub mod shell;
mod snapshot;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use capstan_core::k8s_openapi::api::core::v1::Pod;

pub use cycle::{PodCtx, TopologyCounts};
pub use preempt::preempt;
pub use selectors::{
    field_requirement_matches, label_selector_matches, node_selector_matches, requirement_matches, term_matches,
    tolerates,
};
pub use snapshot::{AffinityTerm, HostPort, Namespaces, NodeInfo, PodInfo, Resources, Snapshot, WeightedTerm};

/// The top of every normalized score.
pub const MAX_SCORE: i64 = 100;

/// A reason a node does not fit, in kube-scheduler's words.
pub type Reason = Cow<'static, str>;

/// Whether a pod fits a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// The node passes this filter.
    Fits,
    /// It does not, for these reasons (usually one; NodeResourcesFit names every shortfall).
    Unschedulable(Vec<Reason>),
}

/// A Filter plugin: can `cx.pod` run on `node`?
pub trait FilterPlugin: Sync {
    /// The plugin's name, as kube-scheduler's.
    fn name(&self) -> &'static str;
    /// Whether the plugin can reject any node for this pod at all (PreFilter's "skip").
    fn relevant(&self, _cx: &PodCtx<'_>) -> bool {
        true
    }
    /// The verdict for one node.
    fn filter(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> Fit;
    /// `filter(..) == Fits` without building the reasons: the hot path, since reasons are only
    /// needed when no node fits.
    fn fits(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> bool {
        self.filter(cx, node) == Fit::Fits
    }
}

/// A Score plugin: how good is a feasible `node` for `cx.pod`?
pub trait ScorePlugin: Sync {
    /// The plugin's name, as kube-scheduler's.
    fn name(&self) -> &'static str;
    /// Whether the plugin can tell nodes apart for this pod at all (PreScore's "skip"); a
    /// skipped plugin adds nothing to any node.
    fn relevant(&self, _cx: &PodCtx<'_>) -> bool {
        true
    }
    /// The raw score of one node.
    fn score(&self, cx: &PodCtx<'_>, node: &NodeInfo) -> i64;
    /// Maps the raw scores of all feasible nodes to 0–[`MAX_SCORE`].
    fn normalize(&self, scores: &mut [i64]);
}

/// The filter plugins, in kube-scheduler's default order (cheap and decisive ones first).
pub fn filter_plugins() -> &'static [&'static dyn FilterPlugin] {
    static FILTERS: [&dyn FilterPlugin; 7] = [
        &filters::NodeUnschedulable,
        &filters::NodeName,
        &filters::TaintToleration,
        &filters::NodeAffinity,
        &filters::NodePorts,
        &filters::NodeResourcesFit,
        &filters::InterPodAffinity,
    ];
    &FILTERS
}

/// The score plugins with their weights (kube-scheduler's default profile).
pub fn score_plugins() -> &'static [(&'static dyn ScorePlugin, i64)] {
    static SCORES: [(&dyn ScorePlugin, i64); 5] = [
        (&scores::TaintToleration, 3),
        (&scores::NodeAffinity, 2),
        (&scores::InterPodAffinity, 2),
        (&scores::LeastAllocated, 1),
        (&scores::BalancedAllocation, 1),
    ];
    &SCORES
}

/// Runs every filter on one node; the first failure decides.
pub fn run_filters(cx: &PodCtx<'_>, node: &NodeInfo) -> Fit {
    for plugin in filter_plugins() {
        let fit = plugin.filter(cx, node);
        if fit != Fit::Fits {
            return fit;
        }
    }
    Fit::Fits
}

/// No node fits: the message for the `PodScheduled=False` condition and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
    /// affinity/selector.`
    pub message: String,
    /// How many nodes gave each reason.
    pub reasons: BTreeMap<String, usize>,
}

impl Unschedulable {
    /// kube-scheduler's `FitError` message: counts and reasons as `"<n> <reason>"`, sorted as
    /// strings, comma-joined.
    fn new(num_nodes: usize, reasons: BTreeMap<String, usize>) -> Unschedulable {
        if num_nodes == 0 {
            return Unschedulable {
                message: "no nodes available to schedule pods".to_string(),
                reasons,
            };
        }
        let mut parts: Vec<String> = reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
        parts.sort();
        Unschedulable {
            message: format!("0/{num_nodes} nodes are available: {}.", parts.join(", ")),
            reasons,
        }
    }
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unschedulable {}

/// Below this many nodes every node is checked; above, the search stops once this many (or
/// the adaptive share below) are feasible — kube-scheduler's `minFeasibleNodesToFind`.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;

/// How many feasible nodes to find before scoring, as kube-scheduler's adaptive
/// `percentageOfNodesToScore`: 50% less 1% per 125 nodes, at least 5%, at least
/// [`MIN_FEASIBLE_NODES_TO_FIND`]. A large cluster has many equally good nodes; checking all of
/// them for every pod costs throughput and buys nothing.
pub fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return nodes;
    }
    let percent = 50usize.saturating_sub(nodes / 125).max(5);
    (nodes * percent / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Picks the node for `pod`: filter the nodes, score the feasible ones, take the highest
/// weighted sum (ties to the first name). Checks every node; see [`schedule_from`] for the
/// sampled search a running scheduler uses.
pub fn schedule(pod: &Pod, snapshot: &Snapshot) -> Result<String, Unschedulable> {
    schedule_from(pod, snapshot, 0, usize::MAX).map(|(node, _)| node)
}

/// [`schedule`] that starts at node index `start` (wrapping) and stops filtering once `want`
/// feasible nodes are found (pass [`feasible_nodes_to_find`]); returns the node and how many
/// nodes were examined, so the caller starts the next pod where this one stopped and every
/// node gets its turn, as kube-scheduler's `nextStartNodeIndex`.
pub fn schedule_from(
    pod: &Pod,
    snapshot: &Snapshot,
    start: usize,
    want: usize,
) -> Result<(String, usize), Unschedulable> {
    let cx = PodCtx::new(pod, snapshot);
    let nodes = snapshot.nodes();
    let active: Vec<&dyn FilterPlugin> = filter_plugins().iter().copied().filter(|p| p.relevant(&cx)).collect();
    let len = nodes.len();
    let mut feasible: Vec<usize> = Vec::new();
    let mut examined = 0;
    for offset in 0..len {
        if feasible.len() >= want {
            break;
        }
        let i = (start + offset) % len;
        examined += 1;
        if active.iter().all(|p| p.fits(&cx, &nodes[i])) {
            feasible.push(i);
        }
    }
    // Ties go to the first name, whatever the search order.
    feasible.sort_unstable();
    match feasible.as_slice() {
        [] => {
            // Only now are the reasons worth building.
            let mut reasons: HashMap<Reason, usize> = HashMap::new();
            for node in nodes {
                if let Fit::Unschedulable(why) = run_filters(&cx, node) {
                    why.into_iter().for_each(|r| *reasons.entry(r).or_default() += 1);
                }
            }
            Err(Unschedulable::new(
                nodes.len(),
                reasons.into_iter().map(|(r, n)| (r.into_owned(), n)).collect(),
            ))
        }
        [only] => Ok((nodes[*only].name.clone(), examined)),
        _ => {
            let totals = score(&cx, nodes, &feasible);
            // max_by keeps the last maximum; iterate in reverse so the first name wins a tie.
            let best = feasible
                .iter()
                .zip(&totals)
                .rev()
                .max_by_key(|(_, total)| **total)
                .map(|(i, _)| *i);
            Ok((nodes[best.unwrap_or(feasible[0])].name.clone(), examined))
        }
    }
}

/// The weighted, normalized total of every relevant score plugin for each feasible node.
pub fn score(cx: &PodCtx<'_>, nodes: &[NodeInfo], feasible: &[usize]) -> Vec<i64> {
    let mut totals = vec![0; feasible.len()];
    let mut raw = Vec::with_capacity(feasible.len());
    for (plugin, weight) in score_plugins().iter().filter(|(p, _)| p.relevant(cx)) {
        raw.clear();
        raw.extend(feasible.iter().map(|&i| plugin.score(cx, &nodes[i])));
        plugin.normalize(&mut raw);
        totals.iter_mut().zip(&raw).for_each(|(t, s)| *t += weight * s);
    }
    totals
}

/// The scheduling queue's order: higher `spec.priority` first, then older
/// `metadata.creationTimestamp`, then `namespace/name` so the order is total.
pub fn queue_order(a: &Pod, b: &Pod) -> Ordering {
    let priority = |p: &Pod| p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    priority(b)
        .cmp(&priority(a))
        .then_with(
            || match (&a.metadata.creation_timestamp, &b.metadata.creation_timestamp) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        )
        .then_with(|| key(a).cmp(&key(b)))
}

/// Sorts pending pods into [`queue_order`].
pub fn sort_pending<P: Borrow<Pod>>(pods: &mut [P]) {
    pods.sort_by(|a, b| queue_order(a.borrow(), b.borrow()));
}
