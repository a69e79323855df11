//! The Deployment controller's core (`pkg/controller/deployment`): one sync of a Deployment as
//! `syncDeployment` does it, returned as effects.
//!
//! The order of decisions is kube's: an empty selector only warns; a Deployment being deleted
//! only reports status; the Progressing condition records pausing and resuming; a paused
//! Deployment or a scaling event (`spec.replicas` differs from a ReplicaSet's
//! `desired-replicas`) scales proportionally without rolling; otherwise the strategy rolls
//! (`rollout.rs`: RollingUpdate, Recreate). Every path ends with status (`status.rs`).
//!
//! Where kube writes several times in one sync (the revision and a Progressing condition while
//! finding the new ReplicaSet, then the status), this core returns one
//! [`Effect::UpdateDeploymentAnnotations`] and one [`Effect::UpdateStatus`] at the end, from the
//! same working state. A hash collision (a ReplicaSet of the new name exists with another
//! template) is detected here rather than by a failed create: the status gets
//! `collisionCount + 1` and the sync stops with an immediate requeue.

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use capstan_core::k8s_openapi::jiff::Timestamp;

use super::pods::{being_deleted, controlled_by, controller_of, controller_ref, name, selects};
use super::{Action, EventNote};

mod rollout;
mod scale;
mod status;
pub mod util;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use util::max_surge_unavailable;
use util::*;

/// What the Deployment controller sees.
pub struct Snapshot<'a> {
    pub deployment: &'a Deployment,
    /// All ReplicaSets in the deployment's namespace; the core claims its own.
    pub replica_sets: &'a [ReplicaSet],
    /// All pods in the namespace (Recreate waits for the old ones to stop).
    pub pods: &'a [Pod],
    pub now: Timestamp,
}

/// What the shell must do, in order (stopping at the first failure).
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a handful of effects per sync; boxing would only burden the shell"
)]
pub enum Effect {
    /// Adopt an orphan ReplicaSet the selector matches: add [`controller_reference`] (patch with
    /// a `uid` precondition).
    AdoptReplicaSet { name: String, uid: String },
    /// Remove the deployment's owner reference from an owned ReplicaSet the selector no longer
    /// matches (patch with a `uid` precondition).
    ReleaseReplicaSet { name: String, uid: String },
    /// Create this ReplicaSet (named `<deployment>-<hash>`).
    CreateReplicaSet(ReplicaSet),
    /// Set `spec.replicas` and the `desired-replicas` / `max-replicas` annotations (one update,
    /// as kube's `scaleReplicaSet`).
    ScaleReplicaSet {
        name: String,
        replicas: i32,
        desired_replicas: i32,
        max_replicas: i32,
    },
    /// Sync the new ReplicaSet with the deployment: set these annotations (the complete map:
    /// copied deployment annotations, revision, revision history) and `spec.minReadySeconds`.
    UpdateReplicaSetAnnotations {
        name: String,
        annotations: BTreeMap<String, String>,
        min_ready_seconds: i32,
    },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit`.
    DeleteReplicaSet { name: String },
    /// Set the deployment's annotations to this complete map (the `revision` annotation changed).
    UpdateDeploymentAnnotations(BTreeMap<String, String>),
    /// Replace the deployment's `status` (status subresource). Also carries a raised
    /// `collisionCount` after a hash collision.
    UpdateStatus(DeploymentStatus),
    /// Record an event on the deployment.
    Event(EventNote),
}

impl Effect {
    /// A write of the deployment's own status.
    pub fn is_status(&self) -> bool {
        matches!(self, Effect::UpdateStatus(_))
    }

    /// A write to the ReplicaSets (creating, scaling, annotating, deleting, adopting or
    /// releasing one); not the deployment's own annotations, status or events.
    pub fn writes_dependents(&self) -> bool {
        !matches!(
            self,
            Effect::UpdateStatus(_) | Effect::Event(_) | Effect::UpdateDeploymentAnnotations(_)
        )
    }
}

/// The owner reference a Deployment puts on its ReplicaSets.
pub fn controller_reference(
    d: &Deployment,
) -> capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    controller_ref("apps/v1", "Deployment", &d.metadata)
}

/// One sync of a deployment (kube's `syncDeployment`).
pub fn reconcile(s: &Snapshot) -> (Vec<Effect>, Action) {
    let d = s.deployment;
    let Some(spec) = d.spec.as_ref() else {
        return (Vec::new(), Action::await_change());
    };
    let selector = &spec.selector;
    if selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
    {
        let mut effects = vec![Effect::Event(EventNote::warning(
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".to_string(),
        ))];
        let mut status = d.status.clone().unwrap_or_default();
        if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            status.observed_generation = d.metadata.generation;
            effects.push(Effect::UpdateStatus(status));
        }
        return (effects, Action::await_change());
    }

    let mut plan = Plan::new(s);
    let outcome = if being_deleted(&d.metadata) {
        plan.sync_status_only();
        Ok(())
    } else {
        plan.check_paused_conditions();
        if paused(d) || plan.is_scaling_event() {
            plan.sync();
            Ok(())
        } else {
            match strategy(d) {
                Strategy::Recreate => plan.rollout_recreate(),
                Strategy::RollingUpdate { .. } => plan.rollout_rolling(),
            }
        }
    };
    if outcome.is_err() {
        plan.requeue = plan.requeue.earliest(Action::requeue(Duration::ZERO));
    }
    plan.finish()
}

/// A hash collision stopped the sync (the status carries the raised collision count).
pub(super) struct Collision;

/// The working state of one sync: the deployment's ReplicaSets as they will be after the
/// effects planned so far, and the deployment's annotations and status likewise.
pub(super) struct Plan<'a> {
    d: &'a Deployment,
    now: Timestamp,
    /// Every ReplicaSet in the namespace (to detect name collisions).
    all_in_namespace: &'a [ReplicaSet],
    /// The deployment's ReplicaSets, updated as effects are planned.
    rss: Vec<ReplicaSet>,
    /// Which of `rss` is the new one (its template is the deployment's).
    new_rs: Option<usize>,
    /// Pods of the deployment's ReplicaSets, as observed.
    pods: Vec<&'a Pod>,
    annotations: BTreeMap<String, String>,
    /// The status as kube holds it in memory during the sync (conditions change early).
    status: DeploymentStatus,
    /// The status to write, once computed.
    final_status: Option<DeploymentStatus>,
    effects: Vec<Effect>,
    requeue: Action,
}

impl<'a> Plan<'a> {
    /// Claim ReplicaSets (kube's `ClaimReplicaSets` by the deployment's selector on their
    /// labels) and the pods they control.
    fn new(s: &Snapshot<'a>) -> Self {
        let d = s.deployment;
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let deleting = being_deleted(&d.metadata);
        let selector = d.spec.as_ref().map(|s| &s.selector);
        let mut effects = Vec::new();
        let mut rss = Vec::new();
        for rs in s
            .replica_sets
            .iter()
            .filter(|rs| rs.metadata.namespace == d.metadata.namespace)
        {
            let matches = selector.is_some_and(|sel| selects(sel, &rs.metadata));
            let rs_uid = || rs.metadata.uid.clone().unwrap_or_default();
            match controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        rss.push(rs.clone());
                    } else if !deleting {
                        effects.push(Effect::ReleaseReplicaSet {
                            name: name(&rs.metadata).into(),
                            uid: rs_uid(),
                        });
                    }
                }
                Some(_) => {}
                None if matches && !deleting && !being_deleted(&rs.metadata) => {
                    effects.push(Effect::AdoptReplicaSet {
                        name: name(&rs.metadata).into(),
                        uid: rs_uid(),
                    });
                    let mut adopted = rs.clone();
                    adopted
                        .metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(controller_reference(d));
                    rss.push(adopted);
                }
                None => {}
            }
        }
        let pods = s
            .pods
            .iter()
            .filter(|p| p.metadata.namespace == d.metadata.namespace)
            .filter(|p| selector.is_some_and(|sel| selects(sel, &p.metadata)))
            .filter(|p| {
                rss.iter().any(|rs| {
                    rs.metadata
                        .uid
                        .as_deref()
                        .is_some_and(|u| controlled_by(&p.metadata, u))
                })
            })
            .collect();
        Plan {
            d,
            now: s.now,
            all_in_namespace: s.replica_sets,
            rss,
            new_rs: None,
            pods,
            annotations: d.metadata.annotations.clone().unwrap_or_default(),
            status: d.status.clone().unwrap_or_default(),
            final_status: None,
            effects,
            requeue: Action::await_change(),
        }
    }

    /// The effects and when to look again: the deployment's annotations and status last, when
    /// they differ from what is stored.
    fn finish(mut self) -> (Vec<Effect>, Action) {
        if Some(&self.annotations) != self.d.metadata.annotations.as_ref()
            && !(self.annotations.is_empty() && self.d.metadata.annotations.is_none())
        {
            self.effects
                .push(Effect::UpdateDeploymentAnnotations(self.annotations.clone()));
        }
        let status = self.final_status.take().unwrap_or_else(|| self.status.clone());
        if self.d.status.clone().unwrap_or_default() != status {
            self.effects.push(Effect::UpdateStatus(status));
        }
        (self.effects, self.requeue)
    }

    /// Indices of the old ReplicaSets (all but the new one).
    fn old(&self) -> Vec<usize> {
        (0..self.rss.len()).filter(|i| Some(*i) != self.new_rs).collect()
    }

    /// Indices of the ReplicaSets with replicas (`FilterActiveReplicaSets`).
    fn active(&self, of: &[usize]) -> Vec<usize> {
        of.iter()
            .copied()
            .filter(|&i| spec_replicas(&self.rss[i]) > 0)
            .collect()
    }

    /// Sort indices by creation (`ReplicaSetsByCreationTimestamp`).
    fn sort_by_creation(&self, of: &mut [usize]) {
        of.sort_by(|&a, &b| by_creation(&self.rss[a], &self.rss[b]));
    }

    /// Kube's `getAllReplicaSetsAndSyncRevision` / `getNewReplicaSet`: find the new ReplicaSet
    /// (the oldest whose template equals the deployment's) and bring its annotations, revision
    /// and minReadySeconds up to date, or create it when `create` and there is none.
    fn sync_revision(&mut self, create: bool) -> Result<(), Collision> {
        let d = self.d;
        let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let mut by_age: Vec<usize> = (0..self.rss.len()).collect();
        self.sort_by_creation(&mut by_age);
        self.new_rs = by_age.into_iter().find(|&i| {
            self.rss[i]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let new_revision = max_revision(self.old().iter().map(|&i| &self.rss[i])) + 1;

        if let Some(i) = self.new_rs {
            let mut rs = self.rss[i].clone();
            let annotations_changed = set_new_rs_annotations(d, &mut rs, new_revision, true);
            let spec = rs.spec.get_or_insert_with(Default::default);
            if annotations_changed || spec.min_ready_seconds.unwrap_or(0) != min_ready_seconds(d) {
                spec.min_ready_seconds = Some(min_ready_seconds(d));
                self.effects.push(Effect::UpdateReplicaSetAnnotations {
                    name: name(&rs.metadata).to_string(),
                    annotations: rs.metadata.annotations.clone().unwrap_or_default(),
                    min_ready_seconds: min_ready_seconds(d),
                });
                // As kube, the deployment's revision is recorded on a later pass, once this is applied.
                self.rss[i] = rs;
                return Ok(());
            }
            let revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            self.annotations.insert(REVISION.to_string(), revision);
            if progress_deadline(d).is_some() && status::condition(&self.status, "Progressing").is_none() {
                let message = format!("Found new replica set {:?}", name(&rs.metadata));
                let c = status::new_condition("Progressing", "True", "FoundNewReplicaSet", message, self.now);
                status::set_condition(&mut self.status, c);
            }
            return Ok(());
        }
        if !create {
            return Ok(());
        }
        self.create_new_rs(template, new_revision)
    }

    /// Create the new ReplicaSet: `<deployment>-<hash>`, the hash label added to its labels,
    /// selector and template, sized by `NewRSNewReplicas`.
    fn create_new_rs(
        &mut self,
        mut template: capstan_core::k8s_openapi::api::core::v1::PodTemplateSpec,
        new_revision: i64,
    ) -> Result<(), Collision> {
        let d = self.d;
        let hash = super::pod_template_hash(&template, self.status.collision_count);
        let rs_name = format!("{}-{hash}", name(&d.metadata));
        if self.all_in_namespace.iter().any(|rs| {
            rs.metadata.namespace == d.metadata.namespace && rs.metadata.name.as_deref() == Some(rs_name.as_str())
        }) {
            self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
            return Err(Collision);
        }
        let labels = template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default);
        labels.insert(POD_TEMPLATE_HASH.to_string(), hash.clone());
        let labels = labels.clone();
        let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_string(), hash);

        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels: Some(labels),
                owner_references: Some(vec![controller_reference(d)]),
                ..Default::default()
            },
            spec: Some(capstan_core::k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(d)),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let total: i32 = self.rss.iter().map(spec_replicas).sum();
        let count = new_rs_new_replicas(d, total, 0);
        rs.spec.get_or_insert_with(Default::default).replicas = Some(count);
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        self.effects.push(Effect::CreateReplicaSet(rs.clone()));
        if count > 0 {
            let message = format!("Scaled up replica set {rs_name} from 0 to {count}");
            self.effects
                .push(Effect::Event(EventNote::normal("ScalingReplicaSet", message)));
        }
        self.annotations.insert(REVISION.to_string(), new_revision.to_string());
        if progress_deadline(d).is_some() {
            let message = format!("Created new replica set {rs_name:?}");
            let c = status::new_condition("Progressing", "True", "NewReplicaSetCreated", message, self.now);
            status::set_condition(&mut self.status, c);
        }
        // The working copy is the newest ReplicaSet from now on.
        rs.metadata.creation_timestamp = Some(Time(self.now));
        self.rss.push(rs);
        self.new_rs = Some(self.rss.len() - 1);
        Ok(())
    }

    /// Kube's `scaleReplicaSet`: set the size and the replica annotations when either differs;
    /// an event when the size changes. Whether the size changed.
    fn scale_rs(&mut self, i: usize, to: i32, operation: &str) -> bool {
        let (surge, _) = max_surge_unavailable(self.d);
        let desired = replicas(self.d);
        let from = spec_replicas(&self.rss[i]);
        let resize = from != to;
        if !resize && !replicas_annotations_need_update(&self.rss[i], desired, desired + surge) {
            return false;
        }
        let rs = &mut self.rss[i];
        rs.spec.get_or_insert_with(Default::default).replicas = Some(to);
        set_replicas_annotations(rs, desired, desired + surge);
        let rs_name = name(&rs.metadata).to_string();
        self.effects.push(Effect::ScaleReplicaSet {
            name: rs_name.clone(),
            replicas: to,
            desired_replicas: desired,
            max_replicas: desired + surge,
        });
        if resize {
            let message = format!("Scaled {operation} replica set {rs_name} from {from} to {to}");
            self.effects
                .push(Effect::Event(EventNote::normal("ScalingReplicaSet", message)));
        }
        resize
    }

    /// Kube's `scaleReplicaSetAndRecordEvent`: scale when the size differs.
    fn scale_rs_and_record(&mut self, i: usize, to: i32) -> bool {
        let from = spec_replicas(&self.rss[i]);
        if from == to {
            return false;
        }
        self.scale_rs(i, to, if from < to { "up" } else { "down" })
    }
}
