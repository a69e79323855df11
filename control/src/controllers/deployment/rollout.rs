//! Rolling forward: `rolling.go` (RollingUpdate) and `recreate.go` (Recreate).

use super::util::*;
use super::{Collision, Plan};
use crate::controllers::pods::{controller_of, phase};

impl Plan<'_> {
    /// Kube's `rolloutRolling`: scale the new ReplicaSet up within maxSurge; if it did not
    /// grow, scale old ones down within maxUnavailable; once complete, prune history.
    pub(super) fn rollout_rolling(&mut self) -> Result<(), Collision> {
        self.sync_revision(true)?;
        if self.reconcile_new_rs() || self.reconcile_old_rss() {
            self.sync_rollout_status();
            return Ok(());
        }
        if self.complete_before_sync() {
            self.cleanup();
        }
        self.sync_rollout_status();
        Ok(())
    }

    /// Kube's `rolloutRecreate`: scale every old ReplicaSet to 0, wait until none of their pods
    /// runs, then create (or scale) the new one to full size.
    pub(super) fn rollout_recreate(&mut self) -> Result<(), Collision> {
        // No new ReplicaSet yet, so that nothing scales up before the old pods are gone.
        self.sync_revision(false)?;
        let mut scaled_down = false;
        for i in self.active(&self.old()) {
            scaled_down |= self.scale_rs_and_record(i, 0);
        }
        if scaled_down || self.old_pods_running() {
            self.sync_rollout_status();
            return Ok(());
        }
        if self.new_rs.is_none() {
            self.sync_revision(true)?;
        }
        if let Some(new) = self.new_rs {
            self.scale_rs_and_record(new, replicas(self.d));
        }
        if self.complete_before_sync() {
            self.cleanup();
        }
        self.sync_rollout_status();
        Ok(())
    }

    /// Kube's `oldPodsRunning`: an old ReplicaSet still reports pods, or a pod of one is not
    /// terminal (an Unknown pod may still run, so it counts).
    fn old_pods_running(&self) -> bool {
        if self.old().iter().map(|&i| status_replicas(&self.rss[i])).sum::<i32>() > 0 {
            return true;
        }
        let new_uid = self.new_rs.and_then(|i| self.rss[i].metadata.uid.as_deref());
        self.pods.iter().any(|p| {
            let owner = controller_of(&p.metadata).map(|r| r.uid.as_str());
            owner != new_uid && !matches!(phase(p), "Succeeded" | "Failed")
        })
    }

    /// `DeploymentComplete` against the status as observed at the start of the sync (kube
    /// checks `d.Status` before writing the new one).
    fn complete_before_sync(&self) -> bool {
        super::status::deployment_complete(self.d, &self.status)
    }

    /// Kube's `reconcileNewReplicaSet`: shrink a new ReplicaSet above `replicas`, otherwise
    /// grow it as far as maxSurge allows. Whether it was resized.
    fn reconcile_new_rs(&mut self) -> bool {
        let Some(new) = self.new_rs else { return false };
        let want = replicas(self.d);
        let current = spec_replicas(&self.rss[new]);
        if current == want {
            return false;
        }
        if current > want {
            return self.scale_rs_and_record(new, want);
        }
        let total: i32 = self.rss.iter().map(spec_replicas).sum();
        let to = new_rs_new_replicas(self.d, total, current);
        self.scale_rs_and_record(new, to)
    }

    /// Kube's `reconcileOldReplicaSets`: how far the old ReplicaSets may shrink is
    /// `all pods - minAvailable - unavailable new pods`; unhealthy old replicas go first, then
    /// old ReplicaSets shrink (oldest first) by what is available beyond minAvailable. Whether
    /// any shrank.
    fn reconcile_old_rss(&mut self) -> bool {
        let Some(new) = self.new_rs else { return false };
        let mut old = self.active(&self.old());
        if old.iter().map(|&i| spec_replicas(&self.rss[i])).sum::<i32>() == 0 {
            return false;
        }
        let all_pods: i32 = self.rss.iter().map(spec_replicas).sum();
        let (_, max_unavailable) = max_surge_unavailable(self.d);
        let min_available = replicas(self.d) - max_unavailable;
        let new_unavailable = spec_replicas(&self.rss[new]) - available_replicas(&self.rss[new]);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        self.sort_by_creation(&mut old);
        // Kube gives up on the step (without an error) when an old ReplicaSet reports more
        // available pods than it wants.
        let Some(cleaned) = self.cleanup_unhealthy_replicas(&old, max_scaled_down) else {
            return false;
        };
        let scaled = self.scale_down_old_for_rolling(&old, new, min_available);
        cleaned + scaled > 0
    }

    /// Kube's `cleanupUnhealthyReplicas`: shrink old ReplicaSets by their unavailable replicas,
    /// up to `max` in all; `None` when one reports more available pods than it wants.
    fn cleanup_unhealthy_replicas(&mut self, old: &[usize], max: i32) -> Option<i32> {
        let mut total = 0;
        for &i in old {
            if total >= max {
                break;
            }
            let (want, available) = (spec_replicas(&self.rss[i]), available_replicas(&self.rss[i]));
            if want == 0 || want == available {
                continue;
            }
            let by = (max - total).min(want - available);
            if by < 0 {
                return None;
            }
            self.scale_rs_and_record(i, want - by);
            total += by;
        }
        Some(total)
    }

    /// Kube's `scaleDownOldReplicaSetsForRollingUpdate`: shrink old ReplicaSets, oldest first,
    /// by the available pods (of the active old and the new ReplicaSets) beyond minAvailable.
    fn scale_down_old_for_rolling(&mut self, old: &[usize], new: usize, min_available: i32) -> i32 {
        let available: i32 = old
            .iter()
            .chain([&new])
            .map(|&i| available_replicas(&self.rss[i]))
            .sum();
        if available <= min_available {
            return 0;
        }
        let to_scale = available - min_available;
        let mut total = 0;
        for &i in old {
            if total >= to_scale {
                break;
            }
            let want = spec_replicas(&self.rss[i]);
            if want == 0 {
                continue;
            }
            let by = want.min(to_scale - total);
            self.scale_rs_and_record(i, want - by);
            total += by;
        }
        total
    }
}
