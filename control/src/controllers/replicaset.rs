//! The ReplicaSet controller's core (`pkg/controller/replicaset/replica_set.go`): claim the pods
//! the ReplicaSet owns (adopting orphans its selector matches, releasing owned pods it no longer
//! matches), create or delete pods until `spec.replicas` are active, and report status.
//!
//! Left to the shell, as they depend on what is in flight rather than on the snapshot:
//! - expectations: kube skips creating/deleting while earlier creates/deletes have not been
//!   observed yet; the shell must not reconcile a ReplicaSet again until the pods it created or
//!   deleted show up in its cache (or it will over-create);
//! - slow start: [`Effect::CreatePods`] asks for all missing pods at once (at most
//!   [`BURST_REPLICAS`]); kube creates them in batches of 1, 2, 4, … and stops at the first
//!   failed batch, which the shell should do too;
//! - the `SuccessfulCreate` event ("Created pod: <name>"), since only the API server names a pod
//!   created from `generateName`; failures (`FailedCreate`, `FailedDelete`) likewise.

use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use capstan_core::k8s_openapi::jiff::Timestamp;

use super::pods::{
    being_deleted, controller_of, controller_ref, is_active, is_available, is_ready, name, selects, until_available,
};
use super::{Action, EventNote};

mod rank;
#[cfg(test)]
mod tests;

pub use rank::POD_DELETION_COST;

/// At most this many pods are created or deleted in one sync (kube's `BurstReplicas`), so that
/// one huge ReplicaSet cannot flood the API server.
pub const BURST_REPLICAS: usize = 500;

/// What the ReplicaSet controller sees.
pub struct Snapshot<'a> {
    pub rs: &'a ReplicaSet,
    /// All pods in the ReplicaSet's namespace; the core decides which it owns.
    pub pods: &'a [Pod],
    pub now: Timestamp,
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a handful of effects per sync; boxing would only burden the shell"
)]
pub enum Effect {
    /// Create `count` pods from `template` (a Pod with `generateName: "<rs>-"`, the template's
    /// labels, annotations, finalizers and spec, and a controller reference to the ReplicaSet).
    CreatePods { count: usize, template: Pod },
    /// Delete this owned pod.
    DeletePod { name: String },
    /// Add [`controller_reference`] to this orphan pod (patch with a `uid` precondition, as
    /// kube does, so that a recreated pod of the same name is not adopted by mistake).
    AdoptPod { name: String, uid: String },
    /// Remove the ReplicaSet's owner reference (by the ReplicaSet's uid) from this pod, which
    /// no longer matches the selector (patch with a `uid` precondition).
    ReleasePod { name: String, uid: String },
    /// Replace `status` (via the status subresource).
    UpdateStatus(ReplicaSetStatus),
    /// Record an event on the ReplicaSet.
    Event(EventNote),
}

impl Effect {
    /// A write of the ReplicaSet's own status.
    pub fn is_status(&self) -> bool {
        matches!(self, Effect::UpdateStatus(_))
    }

    /// A write to the pods (creating, deleting, adopting or releasing one).
    pub fn writes_dependents(&self) -> bool {
        !matches!(self, Effect::UpdateStatus(_) | Effect::Event(_))
    }
}

/// The owner reference a ReplicaSet puts on the pods it creates or adopts.
pub fn controller_reference(rs: &ReplicaSet) -> OwnerReference {
    controller_ref("apps/v1", "ReplicaSet", &rs.metadata)
}

/// One sync of a ReplicaSet (kube's `syncReplicaSet`). A ReplicaSet being deleted neither
/// creates, deletes, adopts nor releases pods, but still reports status, as kube does (so that a
/// foreground deletion shows its pods going away).
pub fn reconcile(s: &Snapshot) -> (Vec<Effect>, Action) {
    let rs = s.rs;
    let Some(spec) = rs.spec.as_ref() else {
        return (Vec::new(), Action::await_change());
    };
    let deleting = being_deleted(&rs.metadata);
    let mut effects = Vec::new();

    let owned = claim_pods(s, &mut effects);

    if !deleting {
        let want = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        if owned.len() < want {
            let count = (want - owned.len()).min(BURST_REPLICAS);
            effects.push(Effect::CreatePods {
                count,
                template: pod_from_template(rs),
            });
        } else if owned.len() > want {
            let count = (owned.len() - want).min(BURST_REPLICAS);
            for pod in rank::pods_to_delete(&owned, &owned, count, s.now) {
                let pod_name = name(&pod.metadata).to_string();
                effects.push(Effect::DeletePod { name: pod_name.clone() });
                effects.push(Effect::Event(EventNote::normal(
                    "SuccessfulDelete",
                    format!("Deleted pod: {pod_name}"),
                )));
            }
        }
    }

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let status = calculate_status(rs, &owned, s.now);
    if rs.status.as_ref() != Some(&status) {
        effects.push(Effect::UpdateStatus(status));
    }

    // Look again when the first ready pod passes minReadySeconds (its availability changes with
    // time alone, not with any watched object).
    let requeue = owned
        .iter()
        .filter_map(|p| until_available(p, min_ready, s.now))
        .filter(|d| *d > Duration::ZERO)
        .min();
    (effects, Action { requeue_after: requeue })
}

/// Kube's `ClaimPods` over the active pods (inactive ones are neither adopted nor released):
/// owned pods that match are kept, owned pods that do not are released, orphans that match are
/// adopted; pods controlled by someone else are left alone. A ReplicaSet being deleted keeps
/// what it owns as is and adopts nothing.
fn claim_pods<'a>(s: &Snapshot<'a>, effects: &mut Vec<Effect>) -> Vec<&'a Pod> {
    let rs = s.rs;
    let Some(spec) = rs.spec.as_ref() else {
        return Vec::new();
    };
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let deleting = being_deleted(&rs.metadata);
    let namespace = rs.metadata.namespace.as_deref();
    let mut owned = Vec::new();
    for pod in s
        .pods
        .iter()
        .filter(|p| is_active(p) && p.metadata.namespace.as_deref() == namespace)
    {
        let matches = selects(&spec.selector, &pod.metadata);
        let pod_uid = || pod.metadata.uid.clone().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    effects.push(Effect::ReleasePod {
                        name: name(&pod.metadata).to_string(),
                        uid: pod_uid(),
                    });
                }
            }
            Some(_) => {}
            None if matches && !deleting => {
                effects.push(Effect::AdoptPod {
                    name: name(&pod.metadata).to_string(),
                    uid: pod_uid(),
                });
                owned.push(pod);
            }
            None => {}
        }
    }
    owned
}

/// Kube's `GetPodFromTemplate`: the pod to create, named by the API server from `<rs>-`.
fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", name(&rs.metadata))),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_reference(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Kube's `calculateStatus` over the owned active pods (before this sync's creates and
/// deletes). Counts of zero are left unset, as the API's `omitempty` round trip stores them, so
/// an unchanged status compares equal.
fn calculate_status(rs: &ReplicaSet, owned: &[&Pod], now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let fully_labeled = owned
        .iter()
        .filter(|p| {
            template_labels
                .into_iter()
                .flatten()
                .all(|(k, v)| p.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = owned.iter().filter(|p| is_ready(p)).count();
    let available = owned.iter().filter(|p| is_available(p, min_ready, now)).count();
    let mut status = rs.status.clone().unwrap_or_default();
    status.replicas = count(owned.len()).unwrap_or(0);
    status.fully_labeled_replicas = count(fully_labeled);
    status.ready_replicas = count(ready);
    status.available_replicas = count(available);
    status.observed_generation = rs.metadata.generation.filter(|g| *g != 0);
    status
}

/// A count as stored by the API (`omitempty`: zero is absent).
fn count(n: usize) -> Option<i32> {
    (n != 0).then(|| i32::try_from(n).unwrap_or(i32::MAX))
}
