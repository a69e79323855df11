//! Scaling without rolling and pruning history: `sync.go`'s `sync`, `scale`, `isScalingEvent`
//! and `cleanupDeployment`.

use std::cmp::Reverse;

use super::Plan;
use super::util::*;
use crate::controllers::pods::being_deleted;

impl Plan<'_> {
    /// Kube's `syncStatusOnly` (a deployment being deleted): bring the new ReplicaSet's
    /// annotations up to date and report status; nothing is created or scaled.
    pub(super) fn sync_status_only(&mut self) {
        // Without `create` there is no collision to stop at.
        let _ = self.sync_revision(false);
        self.sync_deployment_status();
    }

    /// Kube's `sync` (paused, or a scaling event): scale proportionally, prune history when
    /// paused, report status without estimating progress.
    pub(super) fn sync(&mut self) {
        let _ = self.sync_revision(false);
        self.scale();
        if paused(self.d) {
            self.cleanup();
        }
        self.sync_deployment_status();
    }

    /// Kube's `isScalingEvent`: an active ReplicaSet recorded a different `desired-replicas`
    /// than the deployment's `spec.replicas` now.
    pub(super) fn is_scaling_event(&mut self) -> bool {
        let _ = self.sync_revision(false);
        let want = replicas(self.d);
        let all: Vec<usize> = (0..self.rss.len()).collect();
        self.active(&all)
            .iter()
            .any(|&i| int_annotation(&self.rss[i], DESIRED_REPLICAS).is_some_and(|n| n != want))
    }

    /// Kube's `scale`: a lone active (or else the newest) ReplicaSet takes `spec.replicas`; a
    /// saturated new ReplicaSet retires the old ones; otherwise, for RollingUpdate, the
    /// difference between `replicas + maxSurge` and the current total is spread over the active
    /// ReplicaSets in proportion to their size (largest first; the remainder goes to the
    /// first).
    fn scale(&mut self) {
        let d = self.d;
        let want = replicas(d);
        let mut old = self.old();
        old.sort_by(|&a, &b| by_creation(&self.rss[b], &self.rss[a]));
        let mut candidates = old.clone();
        candidates.extend(self.new_rs);
        let active = self.active(&candidates);
        let lone = match active.as_slice() {
            [] => self.new_rs.or(old.first().copied()),
            [one] => Some(*one),
            _ => None,
        };
        if let Some(i) = lone {
            if spec_replicas(&self.rss[i]) != want {
                self.scale_rs_and_record(i, want);
            }
            return;
        }
        if self.new_rs.is_some_and(|i| is_saturated(d, &self.rss[i])) {
            for i in self.active(&old) {
                self.scale_rs_and_record(i, 0);
            }
            return;
        }
        if !is_rolling(d) {
            return;
        }
        let mut all = self.active(&candidates);
        let current: i32 = all.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        let allowed = if want > 0 { want + max_surge_unavailable(d).0 } else { 0 };
        let to_add = allowed - current;
        let operation = match to_add.signum() {
            1 => {
                // ReplicaSetsBySizeNewer: larger first, then newer first.
                all.sort_by(|&a, &b| {
                    let (ra, rb) = (&self.rss[a], &self.rss[b]);
                    Reverse(spec_replicas(ra))
                        .cmp(&Reverse(spec_replicas(rb)))
                        .then_with(|| by_creation(rb, ra))
                });
                "up"
            }
            -1 => {
                // ReplicaSetsBySizeOlder: larger first, then older first.
                all.sort_by(|&a, &b| {
                    let (ra, rb) = (&self.rss[a], &self.rss[b]);
                    Reverse(spec_replicas(ra))
                        .cmp(&Reverse(spec_replicas(rb)))
                        .then_with(|| by_creation(ra, rb))
                });
                "down"
            }
            _ => "",
        };
        let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for &i in &all {
            let size = spec_replicas(&self.rss[i]);
            if to_add == 0 {
                sizes.push(size);
                continue;
            }
            let share = proportion(d, &self.rss[i], to_add, added, status_replicas);
            sizes.push(size + share);
            added += share;
        }
        for (k, &i) in all.iter().enumerate() {
            let mut size = sizes[k];
            if k == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_rs(i, size, operation);
        }
    }

    /// Kube's `cleanupDeployment`: delete the oldest old ReplicaSets (by revision) beyond
    /// `revisionHistoryLimit`, skipping any that still has or wants pods, has not been observed
    /// at its generation yet, or is already being deleted.
    pub(super) fn cleanup(&mut self) {
        let Some(limit) = revision_history_limit(self.d) else {
            return;
        };
        let mut alive: Vec<usize> = self
            .old()
            .into_iter()
            .filter(|&i| !being_deleted(&self.rss[i].metadata))
            .collect();
        let excess = alive.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return;
        }
        alive.sort_by(|&a, &b| by_revision(&self.rss[a], &self.rss[b]));
        for &i in alive.iter().take(excess as usize) {
            let rs = &self.rss[i];
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if status_replicas(rs) != 0 || spec_replicas(rs) != 0 || rs.metadata.generation.unwrap_or(0) > observed {
                continue;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            self.effects.push(super::Effect::DeleteReplicaSet { name });
        }
    }
}
