//! The workload controllers' pure cores: each reconcile compares desired with observed state
//! and returns the effects to apply (plan, then act); the shells that watch and apply live
//! beside them.
//!
//! Every core here is a plain function of a snapshot (the object, what it owns, and `now`) to
//! `(Vec<Effect>, Action)`: no I/O, no clock, no async. The contract with a shell is the same for
//! all of them: apply the effects **in order** and stop at the first one that fails (then requeue
//! with backoff), as kube-controller-manager's sync functions return at their first error. An
//! `Event` effect follows the action it reports, so stopping early never records an event for an
//! action that did not happen.
//!
//! - [`replicaset`]: keeps `spec.replicas` pods running, adopts and releases pods, reports status.
//! - [`deployment`]: rolls ReplicaSets forward (RollingUpdate, Recreate), scales proportionally,
//!   prunes history and reports progress.
//! - [`gc`]: the garbage collector's owner-reference resolution (background, foreground, orphan).
//! - [`hpa`]: the HorizontalPodAutoscaler's replica calculation, stabilization and rate limits.
//! - [`scale_to_zero`]: which workloads are opted into scale to zero, and which are idle.

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::PodTemplateSpec;

pub mod deployment;
pub mod endpoint_slices;
pub mod endpoints;
pub mod gc;
pub mod hpa;
mod pods;
pub mod replicaset;
pub mod scale_to_zero;

/// When to reconcile this object again even if nothing changes (e.g. minReadySeconds elapsing,
/// progress deadline). `None`: only when a watched object changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    pub requeue_after: Option<Duration>,
}

impl Action {
    /// Nothing is time-driven: wait for the next change.
    pub fn await_change() -> Self {
        Action { requeue_after: None }
    }

    /// Look again after `d` even if nothing changes.
    pub fn requeue(d: Duration) -> Self {
        Action { requeue_after: Some(d) }
    }

    /// The earlier of two requeues (a `None` never wins over a time).
    pub fn earliest(self, other: Action) -> Action {
        match (self.requeue_after, other.requeue_after) {
            (Some(a), Some(b)) => Action::requeue(a.min(b)),
            (a, b) => Action { requeue_after: a.or(b) },
        }
    }
}

/// An event to record (core/v1 Event), as the controllers' recorders emit them: type
/// Normal/Warning, reason, message. The shell fills in the involved object (the reconciled one)
/// and the source component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl EventNote {
    /// A `Normal` event.
    pub fn normal(reason: &'static str, message: String) -> Self {
        EventNote {
            type_: "Normal",
            reason,
            message,
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: &'static str, message: String) -> Self {
        EventNote {
            type_: "Warning",
            reason,
            message,
        }
    }
}

/// The alphabet of apimachinery's `rand.SafeEncodeString`: no vowels (no words) and no
/// look-alikes (0/o, 1/l, 3/e).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Stable hash of a pod template for the `pod-template-hash` label: kube's `ComputeHash` (FNV-32a
/// over the template's printed form, plus `collisionCount` as 8 little-endian bytes) encoded
/// with `rand.SafeEncodeString`'s alphabet (each decimal digit of the 32-bit sum mapped to a
/// letter).
///
/// Kubernetes hashes Go's `%#v` printing, which cannot be reproduced, so this hashes the
/// template's JSON instead: struct fields in declaration order and maps sorted (k8s-openapi
/// uses `BTreeMap`), hence deterministic. The value differs from Kubernetes' for the same
/// template; only equality between Capstan's own values matters (ReplicaSet names, selectors).
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serialising plain data cannot fail; an empty input would still give a stable hash.
    let json = serde_json::to_vec(template).unwrap_or_default();
    let mut hash = fnv1a32(FNV32_OFFSET, &json);
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a32(hash, &bytes);
    }
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// FNV-1a, 32 bits (Go's `hash/fnv.New32a`), continuing from `hash`.
fn fnv1a32(mut hash: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(FNV32_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn fnv_matches_known_vectors() {
        // Go: fnv.New32a() over "" and "a".
        assert_eq!(fnv1a32(FNV32_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(FNV32_OFFSET, b"a"), 0xe40c_292c);
    }

    #[test]
    fn hash_is_stable_and_changes_with_template_and_collisions() {
        let a = pod_template_hash(&template("a"), None);
        assert_eq!(a, pod_template_hash(&template("a"), None));
        assert_ne!(a, pod_template_hash(&template("b"), None));
        assert_ne!(a, pod_template_hash(&template("a"), Some(1)));
        assert_ne!(
            pod_template_hash(&template("a"), Some(1)),
            pod_template_hash(&template("a"), Some(2))
        );
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{a}");
        assert!((1..=10).contains(&a.len()));
    }

    #[test]
    fn earliest_action() {
        let s = |n| Action::requeue(Duration::from_secs(n));
        assert_eq!(s(3).earliest(s(2)), s(2));
        assert_eq!(Action::await_change().earliest(s(2)), s(2));
        assert_eq!(
            Action::await_change().earliest(Action::await_change()),
            Action::await_change()
        );
    }
}
