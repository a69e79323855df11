//! Small readings of objects the controllers share: pod activity, readiness and availability
//! (`k8s.io/kubernetes/pkg/api/v1/pod` and `controller_utils.go`), controller references and
//! times.

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::{Pod, PodCondition};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Labels of an object (empty when it has none).
pub fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// apimachinery's label selector match on an object's labels.
pub fn selects(selector: &LabelSelector, meta: &ObjectMeta) -> bool {
    crate::scheduler::label_selector_matches(selector, &labels(meta))
}

/// The owner reference with `controller: true`, if any (`metav1.GetControllerOf`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether the object is controlled by the owner with this uid.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// Whether the object has a deletion timestamp.
pub fn being_deleted(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// `metav1.NewControllerRef`: the reference a controller puts on what it creates or adopts.
pub fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The pod's phase (empty when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// `controller.IsPodActive`: not terminal (Succeeded/Failed) and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !being_deleted(&pod.metadata)
}

/// The pod's `Ready` condition.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
}

/// `podutil.IsPodReady`: the `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When a ready pod became ready (the `Ready` condition's lastTransitionTime); `None` when the
/// pod is not ready or the time is unset.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| time(&c.last_transition_time))
}

/// How long until a ready pod becomes available (`podutil.IsPodAvailable`: ready, and with
/// `minReadySeconds` > 0 its Ready transition strictly more than that long ago). `Some(ZERO)`:
/// available now; `None`: not ready, or ready with an unknown transition time (never available
/// by time alone).
pub fn until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    if !is_ready(pod) {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let since = ready_since(pod)?;
    let deadline = since
        .saturating_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .ok()?;
    if deadline < now {
        Some(Duration::ZERO)
    } else {
        // Available strictly after the deadline: one second past it (object times have second
        // granularity, and kube also pads requeues by a second against clock skew).
        Some(duration_between(now, deadline) + Duration::from_secs(1))
    }
}

/// `podutil.IsPodAvailable`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    until_available(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// A meta/v1 time as a timestamp.
pub fn time(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

/// `to - from`, zero when negative.
pub fn duration_between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// The object's creation time; `None` sorts first, as Go's zero time does.
pub fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    time(&meta.creation_timestamp)
}

/// The object's name (empty when unset).
pub fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ready: &str, since: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": ready, "lastTransitionTime": since}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn availability_waits_strictly_past_min_ready_seconds() {
        let now: Timestamp = "2025-01-01T00:00:10Z".parse().unwrap();
        let p = pod("True", "2025-01-01T00:00:00Z");
        assert_eq!(until_available(&p, 0, now), Some(Duration::ZERO));
        assert_eq!(until_available(&p, 5, now), Some(Duration::ZERO));
        assert_eq!(until_available(&p, 10, now), Some(Duration::from_secs(1)));
        assert_eq!(until_available(&p, 30, now), Some(Duration::from_secs(21)));
        assert_eq!(until_available(&pod("False", "2025-01-01T00:00:00Z"), 0, now), None);
        assert!(is_available(&p, 9, now));
        assert!(!is_available(&p, 10, now));
    }
}
