//! The arithmetic and bookkeeping of `pkg/controller/deployment/util/deployment_util.go`:
//! defaults, surge and unavailability, revisions and the annotations the controller keeps on
//! ReplicaSets.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use capstan_core::k8s_openapi::api::core::v1::PodTemplateSpec;
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::pods::{created, name};

/// The revision of a Deployment's rollout, on its ReplicaSets and on the Deployment itself.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet served (kept when a rollback reuses it).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled (tells scaling events
/// from rollouts).
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when the ReplicaSet was last scaled (the base of
/// proportional scaling).
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Annotations of the Deployment that are not copied to its ReplicaSets (`annotationsToSkip`).
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The revision history annotation is capped at this many characters (about 100 revisions).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// The deployment's rollout strategy, with apps/v1 defaults applied (RollingUpdate, 25%/25%).
pub enum Strategy {
    Recreate,
    RollingUpdate {
        max_surge: IntOrString,
        max_unavailable: IntOrString,
    },
}

/// `spec.replicas`, defaulting to 1.
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.minReadySeconds`, defaulting to 0.
pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

/// `spec.paused`.
pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `spec.progressDeadlineSeconds` (default 600); `None` when unset to "never" (MaxInt32), as
/// `HasProgressDeadline`.
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    let v = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600);
    (v != i32::MAX).then_some(v)
}

/// `spec.revisionHistoryLimit` (default 10); `None` for "keep all" (MaxInt32).
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    let v = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
    (v != i32::MAX).then_some(v)
}

/// The strategy with defaults.
pub fn strategy(d: &Deployment) -> Strategy {
    let s = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if s.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return Strategy::Recreate;
    }
    let ru = s.and_then(|s| s.rolling_update.as_ref());
    let quarter = || IntOrString::String("25%".to_string());
    Strategy::RollingUpdate {
        max_surge: ru.and_then(|r| r.max_surge.clone()).unwrap_or_else(quarter),
        max_unavailable: ru.and_then(|r| r.max_unavailable.clone()).unwrap_or_else(quarter),
    }
}

/// Whether the deployment rolls (the other strategy is Recreate).
pub fn is_rolling(d: &Deployment) -> bool {
    matches!(strategy(d), Strategy::RollingUpdate { .. })
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, "N%" of `total` rounded up or down;
/// `None` for anything else (validation rejects it).
pub fn int_or_percent(v: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match v {
        IntOrString::Int(i) => Some(*i),
        IntOrString::String(s) => {
            let pct: i32 = s.strip_suffix('%')?.parse().ok()?;
            let exact = f64::from(pct) * f64::from(total) / 100.0;
            Some(if round_up { exact.ceil() } else { exact.floor() } as i32)
        }
    }
}

/// Kube's `MaxSurge` and `MaxUnavailable` for the deployment: `ResolveFenceposts` (surge rounds
/// up, unavailable down; when both resolve to 0, unavailable becomes 1 so that a rollout can
/// always proceed), unavailable capped at `spec.replicas`, and both 0 for Recreate. A value
/// validation would reject resolves both to 0, as kube ignores the error.
pub fn max_surge_unavailable(d: &Deployment) -> (i32, i32) {
    let Strategy::RollingUpdate {
        max_surge,
        max_unavailable,
    } = strategy(d)
    else {
        return (0, 0);
    };
    let desired = replicas(d);
    let (Some(surge), Some(mut unavailable)) = (
        int_or_percent(&max_surge, desired, true),
        int_or_percent(&max_unavailable, desired, false),
    ) else {
        return (0, 0);
    };
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let unavailable = if desired == 0 { 0 } else { unavailable.min(desired) };
    (surge, unavailable)
}

/// A ReplicaSet's `spec.replicas` (defaulting to 1, as the API does).
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().map_or(0, |s| s.replicas.unwrap_or(1))
}

/// A ReplicaSet's `status.replicas`.
pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// A ReplicaSet's `status.readyReplicas`.
pub fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
}

/// A ReplicaSet's `status.availableReplicas` (which already waits for minReadySeconds).
pub fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(&a.metadata)
        .cmp(&created(&b.metadata))
        .then_with(|| name(&a.metadata).cmp(name(&b.metadata)))
}

/// `ReplicaSetsByRevision`: lower revision first; unparsable or equal revisions by creation.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(a), revision(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}

/// The ReplicaSet's revision: 0 when unannotated, `None` when the annotation is not a number.
pub fn revision(rs: &ReplicaSet) -> Option<i64> {
    match rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// `MaxRevision`: the highest parsable revision (0 when none).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().filter_map(revision).max().unwrap_or(0).max(0)
}

/// An integer annotation of a ReplicaSet (`getIntFromAnnotation`).
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// `EqualIgnoreHash`: two templates are the same rollout when they are equal once the
/// `pod-template-hash` label is dropped (an empty label or annotation map counts as none).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    fn normalized(t: &PodTemplateSpec) -> PodTemplateSpec {
        let mut t = t.clone();
        let meta = t.metadata.get_or_insert_with(Default::default);
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
        }
        if meta.labels.as_ref().is_some_and(BTreeMap::is_empty) {
            meta.labels = None;
        }
        if meta.annotations.as_ref().is_some_and(BTreeMap::is_empty) {
            meta.annotations = None;
        }
        t
    }
    normalized(a) == normalized(b)
}

/// `SetReplicasAnnotations`: record the deployment's size and max size; whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    set_replicas_annotations(&mut rs.clone(), desired, max)
}

/// `SetNewReplicaSetAnnotations`: copy the deployment's annotations (but the controller's own
/// and kubectl's last-applied), raise the revision to `new_revision` when lower (keeping the old
/// one in the revision history: this is a rollback to this ReplicaSet), and for a ReplicaSet
/// about to be created record the replica annotations. Whether anything changed.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            // Kube gives up on a ReplicaSet with a garbled revision.
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        annotations.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotations.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY.to_string(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    entries.push(&old);
                    let joined = entries[start..].join(",");
                    annotations.insert(REVISION_HISTORY.to_string(), joined);
                }
            }
        }
    }
    if !exists {
        let (surge, _) = max_surge_unavailable(d);
        let desired = replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + surge);
    }
    changed
}

/// `IsSaturated`: the ReplicaSet has, wants and sees available all of the deployment's replicas.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let want = replicas(d);
    spec_replicas(rs) == want && int_annotation(rs, DESIRED_REPLICAS) == Some(want) && available_replicas(rs) == want
}

/// `NewRSNewReplicas`: the size the new ReplicaSet may grow to now. RollingUpdate: up to
/// `replicas + maxSurge` pods in all, never above `replicas`; Recreate: `replicas`.
pub fn new_rs_new_replicas(d: &Deployment, all_spec_total: i32, new_spec: i32) -> i32 {
    let want = replicas(d);
    match strategy(d) {
        Strategy::Recreate => want,
        Strategy::RollingUpdate { max_surge, .. } => {
            let surge = int_or_percent(&max_surge, want, true).unwrap_or(0);
            let max_total = want + surge;
            if all_spec_total >= max_total {
                return new_spec;
            }
            new_spec + (max_total - all_spec_total).min(want - new_spec)
        }
    }
}

/// `getReplicaSetFraction`: how many replicas this ReplicaSet gains (or loses) when the
/// deployment's maximum size changes from what its `max-replicas` annotation recorded.
/// `status_replicas` is the deployment's `status.replicas`, the fallback base.
pub fn replica_set_fraction(d: &Deployment, rs: &ReplicaSet, status_replicas: i32) -> i32 {
    let size = spec_replicas(rs);
    if replicas(d) == 0 {
        return -size;
    }
    let (surge, _) = max_surge_unavailable(d);
    let max_now = replicas(d) + surge;
    let base = match int_annotation(rs, MAX_REPLICAS) {
        Some(n) if n != 0 => n,
        _ if status_replicas == 0 => return 0,
        _ => status_replicas,
    };
    let scaled = f64::from(size) * f64::from(max_now) / f64::from(base);
    scaled.round() as i32 - size
}

/// `GetProportion`: the share of `to_add` (of which `added` is already handed out) this
/// ReplicaSet gets, never overshooting what is left.
pub fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32, status_replicas: i32) -> i32 {
    if spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(d, rs, status_replicas);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32, strategy: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "strategy": strategy}
        }))
        .unwrap()
    }

    fn rolling(surge: serde_json::Value, unavailable: serde_json::Value) -> serde_json::Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    #[test]
    fn fenceposts() {
        let cases = [
            (4, rolling(json!("25%"), json!("25%")), (1, 1)),
            (10, rolling(json!("25%"), json!("25%")), (3, 2)),
            (4, rolling(json!(1), json!(0)), (1, 0)),
            (2, rolling(json!(0), json!("1%")), (0, 1)),
            (1, rolling(json!("1%"), json!("25%")), (1, 0)),
            (3, rolling(json!(0), json!(5)), (0, 3)),
            (0, rolling(json!(1), json!(1)), (1, 0)),
            (4, json!({}), (1, 1)),
            (4, json!({"type": "Recreate"}), (0, 0)),
            (4, rolling(json!("lots"), json!(1)), (0, 0)),
        ];
        for (replicas, strategy, want) in cases {
            let d = deployment(replicas, strategy.clone());
            assert_eq!(max_surge_unavailable(&d), want, "{replicas} {strategy}");
        }
    }

    #[test]
    fn revision_history_is_kept_on_rollback() {
        let d = deployment(1, json!({}));
        let mut rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "r", "annotations": {REVISION: "2", REVISION_HISTORY: "1"}}
        }))
        .unwrap();
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        let a = rs.metadata.annotations.unwrap();
        assert_eq!((a[REVISION].as_str(), a[REVISION_HISTORY].as_str()), ("5", "1,2"));
    }
}
