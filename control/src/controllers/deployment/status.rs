//! Deployment status and conditions: `sync.go`'s `calculateStatus` and
//! `checkPausedConditions`, `progress.go`'s `syncRolloutStatus` and `requeueStuckDeployment`,
//! and the condition helpers of `deployment_util.go`.

use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::Plan;
use super::util::*;
use crate::controllers::Action;
use crate::controllers::pods::{duration_between, name, time};

/// A condition with both times set to `now` (`NewDeploymentCondition`).
pub fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of this type.
pub fn condition<'s>(status: &'s DeploymentStatus, type_: &str) -> Option<&'s DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: nothing when status and reason are unchanged; the transition time
/// is kept when only the reason changes; the condition moves to the end.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(current) = condition(status, &c.type_) {
        if current.status == c.status && current.reason == c.reason {
            return;
        }
        if current.status == c.status {
            c.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &c.type_);
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

/// `RemoveDeploymentCondition` (an emptied list is unset, as the API stores it).
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(list) = status.conditions.as_mut() {
        list.retain(|c| c.type_ != type_);
        if list.is_empty() {
            status.conditions = None;
        }
    }
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// `DeploymentComplete`: every desired replica is updated and available, nothing else runs,
/// and the status is of the current generation.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    n(s.updated_replicas) == want
        && n(s.replicas) == want
        && n(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: compared with the stored status, more updated, ready or available
/// replicas, or fewer old ones.
fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// When the Progressing condition's deadline passes: its last update plus
/// `progressDeadlineSeconds`.
fn deadline(d: &Deployment, c: &DeploymentCondition) -> Option<Timestamp> {
    let seconds = progress_deadline(d)?;
    time(&c.last_update_time)?
        .checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .ok()
}

/// `DeploymentTimedOut`: the Progressing condition (not a completed one) was last updated more
/// than `progressDeadlineSeconds` ago, or already says so.
fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(c) = condition(new, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => deadline(d, c).is_some_and(|t| t < now),
    }
}

fn count(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

impl Plan<'_> {
    /// Kube's `calculateStatus` over all the deployment's ReplicaSets, with the Available
    /// condition (at least `replicas - maxUnavailable` available).
    fn calculate_status(&self) -> DeploymentStatus {
        let available: i32 = self.rss.iter().map(available_replicas).sum();
        let total: i32 = self.rss.iter().map(spec_replicas).sum();
        let mut s = DeploymentStatus {
            observed_generation: self.d.metadata.generation.filter(|g| *g != 0),
            replicas: count(self.rss.iter().map(status_replicas).sum()),
            updated_replicas: count(self.new_rs.map_or(0, |i| status_replicas(&self.rss[i]))),
            ready_replicas: count(self.rss.iter().map(ready_replicas).sum()),
            available_replicas: count(available),
            unavailable_replicas: count((total - available).max(0)),
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
            terminating_replicas: None,
        };
        let (_, max_unavailable) = max_surge_unavailable(self.d);
        let c = if available >= replicas(self.d) - max_unavailable {
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                self.now,
            )
        } else {
            let message = "Deployment does not have minimum availability.".into();
            new_condition("Available", "False", "MinimumReplicasUnavailable", message, self.now)
        };
        set_condition(&mut s, c);
        s
    }

    /// Kube's `syncDeploymentStatus`: status without progress estimation (paused, scaling,
    /// being deleted).
    pub(super) fn sync_deployment_status(&mut self) {
        self.final_status = Some(self.calculate_status());
    }

    /// Kube's `syncRolloutStatus`: status plus the Progressing condition (complete, progressing
    /// or timed out) and ReplicaFailure conditions promoted from the ReplicaSets; and a requeue
    /// for when the progress deadline would pass.
    pub(super) fn sync_rollout_status(&mut self) {
        let d = self.d;
        let mut new = self.calculate_status();
        if progress_deadline(d).is_none() {
            remove_condition(&mut new, "Progressing");
        }
        let current = condition(&self.status, "Progressing");
        let already_complete = n(new.replicas) == n(new.updated_replicas)
            && current.is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let new_rs_name = self.new_rs.map(|i| name(&self.rss[i].metadata).to_string());
        let subject = |what: &str| match &new_rs_name {
            Some(rs) => format!("ReplicaSet {rs:?} {what}"),
            None => format!("Deployment {:?} {what}", name(&d.metadata)),
        };
        if progress_deadline(d).is_some() && !already_complete {
            if deployment_complete(d, &new) {
                let message = subject("has successfully progressed.");
                set_condition(
                    &mut new,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", message, self.now),
                );
            } else if deployment_progressing(d, &new) {
                // Progress refreshes lastUpdateTime even with an unchanged reason (which
                // set_condition alone would not), keeping the transition time while True.
                let mut c = new_condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    subject("is progressing."),
                    self.now,
                );
                if let Some(cur) = current.filter(|c| c.status == "True") {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut new, "Progressing");
                set_condition(&mut new, c);
            } else if deployment_timed_out(d, &new, self.now) {
                let message = subject("has timed out progressing.");
                set_condition(
                    &mut new,
                    new_condition("Progressing", "False", "ProgressDeadlineExceeded", message, self.now),
                );
            }
        }
        match self.replica_failure() {
            Some(c) => set_condition(&mut new, c),
            None => remove_condition(&mut new, "ReplicaFailure"),
        }
        self.requeue = self.requeue.earliest(stuck_requeue(d, &new, self.now));
        self.final_status = Some(new);
    }

    /// `getReplicaFailures`: the new ReplicaSet's ReplicaFailure condition, else an old one's.
    fn replica_failure(&self) -> Option<DeploymentCondition> {
        let order = self.new_rs.into_iter().chain(self.old());
        order
            .flat_map(|i| self.rss[i].status.iter().flat_map(|s| s.conditions.iter().flatten()))
            .find_map(|c| {
                (c.type_ == "ReplicaFailure").then(|| DeploymentCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
            })
    }

    /// Kube's `checkPausedConditions`: record pausing and resuming in the Progressing condition
    /// (Unknown), so that time spent paused never counts against the progress deadline; a
    /// timed-out condition is left as is.
    pub(super) fn check_paused_conditions(&mut self) {
        if progress_deadline(self.d).is_none() {
            return;
        }
        let reason = condition(&self.status, "Progressing").and_then(|c| c.reason.as_deref());
        if reason == Some("ProgressDeadlineExceeded") {
            return;
        }
        let paused_recorded = reason == Some("DeploymentPaused");
        let c = match (paused(self.d), paused_recorded) {
            (true, false) => new_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                self.now,
            ),
            (false, true) => new_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
                self.now,
            ),
            _ => return,
        };
        set_condition(&mut self.status, c);
    }
}

/// Kube's `requeueStuckDeployment`: a rollout that is neither complete nor timed out is looked
/// at again one second after its deadline would pass (at once when that is under a second
/// away).
fn stuck_requeue(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> Action {
    let Some(c) = condition(new, "Progressing") else {
        return Action::await_change();
    };
    if deployment_complete(d, new) || c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
        return Action::await_change();
    }
    match deadline(d, c) {
        Some(t) => {
            let after = duration_between(now, t);
            Action::requeue(if after < Duration::from_secs(1) {
                Duration::ZERO
            } else {
                after + Duration::from_secs(1)
            })
        }
        None => Action::await_change(),
    }
}
