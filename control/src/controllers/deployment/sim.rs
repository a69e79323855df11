//! A tiny cluster for tests: one Deployment, its ReplicaSets and pods, with the effects of the
//! Deployment and ReplicaSet cores applied as the API server and kubelet would (pods become
//! ready only when a test says so; deleted pods terminate at once unless `graceful`).

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use capstan_core::k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::util::spec_replicas;
use super::{Effect, Snapshot, reconcile};
use crate::controllers::pods::{controller_of, is_active, is_ready};
use crate::controllers::{Action, replicaset};

pub struct Cluster {
    pub now: Timestamp,
    pub deployment: Deployment,
    pub rss: Vec<ReplicaSet>,
    pub pods: Vec<Pod>,
    /// Events recorded on the deployment, as "Reason: message".
    pub events: Vec<String>,
    /// Deleted pods linger (terminating, still Running) until `reap`.
    pub graceful: bool,
    next_id: u32,
}

/// A deployment named "web" in "ns" selecting `app: web`, running `image`.
pub fn deployment(replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
    .unwrap()
}

pub fn start() -> Timestamp {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

impl Cluster {
    pub fn new(deployment: Deployment) -> Self {
        Cluster {
            now: start(),
            deployment,
            rss: vec![],
            pods: vec![],
            events: vec![],
            graceful: false,
            next_id: 0,
        }
    }

    pub fn advance(&mut self, secs: i64) {
        self.now = self.now.checked_add(SignedDuration::from_secs(secs)).unwrap();
    }

    /// Change the deployment's spec as a client would (bumping the generation).
    pub fn edit(&mut self, f: impl FnOnce(&mut Deployment)) {
        f(&mut self.deployment);
        let g = self.deployment.metadata.generation.unwrap_or(0);
        self.deployment.metadata.generation = Some(g + 1);
    }

    pub fn set_image(&mut self, image: &str) {
        self.edit(|d| {
            let t = &mut d.spec.as_mut().unwrap().template;
            t.spec.as_mut().unwrap().containers[0].image = Some(image.to_string());
        });
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    pub fn rs(&self, name: &str) -> &ReplicaSet {
        self.rss
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    /// The deployment's ReplicaSets' `spec.replicas`, oldest first.
    pub fn sizes(&self) -> Vec<i32> {
        self.rss.iter().map(spec_replicas).collect()
    }

    /// One Deployment sync, its effects applied.
    pub fn sync_deployment(&mut self) -> (Vec<Effect>, Action) {
        let (effects, action) = reconcile(&Snapshot {
            deployment: &self.deployment,
            replica_sets: &self.rss,
            pods: &self.pods,
            now: self.now,
        });
        for e in effects.clone() {
            self.apply(e);
        }
        (effects, action)
    }

    fn apply(&mut self, e: Effect) {
        match e {
            Effect::CreateReplicaSet(mut rs) => {
                let id = self.id();
                rs.metadata.uid = Some(format!("rs-uid-{id}"));
                rs.metadata.creation_timestamp = Some(Time(self.now));
                rs.metadata.generation = Some(1);
                self.rss.push(rs);
            }
            Effect::ScaleReplicaSet {
                name,
                replicas,
                desired_replicas,
                max_replicas,
            } => {
                let rs = self
                    .rss
                    .iter_mut()
                    .find(|r| r.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                rs.spec.as_mut().unwrap().replicas = Some(replicas);
                let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
                a.insert(super::DESIRED_REPLICAS.into(), desired_replicas.to_string());
                a.insert(super::MAX_REPLICAS.into(), max_replicas.to_string());
                rs.metadata.generation = rs.metadata.generation.map(|g| g + 1);
            }
            Effect::UpdateReplicaSetAnnotations {
                name,
                annotations,
                min_ready_seconds,
            } => {
                let rs = self
                    .rss
                    .iter_mut()
                    .find(|r| r.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                rs.metadata.annotations = Some(annotations);
                rs.spec.as_mut().unwrap().min_ready_seconds = Some(min_ready_seconds);
            }
            Effect::DeleteReplicaSet { name } => self.rss.retain(|r| r.metadata.name.as_deref() != Some(&name)),
            Effect::UpdateDeploymentAnnotations(a) => self.deployment.metadata.annotations = Some(a),
            Effect::UpdateStatus(s) => self.deployment.status = Some(s),
            Effect::Event(e) => self.events.push(format!("{}: {}", e.reason, e.message)),
            Effect::AdoptReplicaSet { name, .. } => {
                let owner = super::controller_reference(&self.deployment);
                let rs = self
                    .rss
                    .iter_mut()
                    .find(|r| r.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                rs.metadata.owner_references = Some(vec![owner]);
            }
            Effect::ReleaseReplicaSet { name, .. } => {
                let rs = self
                    .rss
                    .iter_mut()
                    .find(|r| r.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                rs.metadata.owner_references = None;
            }
        }
    }

    /// ReplicaSet syncs until they change nothing (pods created or deleted, statuses written).
    pub fn sync_replica_sets(&mut self) {
        for _ in 0..10 {
            let mut changed = false;
            for i in 0..self.rss.len() {
                let (effects, _) = replicaset::reconcile(&replicaset::Snapshot {
                    rs: &self.rss[i],
                    pods: &self.pods,
                    now: self.now,
                });
                for e in effects {
                    changed = true;
                    self.apply_rs(i, e);
                }
            }
            if !self.graceful {
                self.reap();
            }
            if !changed {
                return;
            }
        }
        panic!("replica sets did not settle");
    }

    fn apply_rs(&mut self, i: usize, e: replicaset::Effect) {
        match e {
            replicaset::Effect::CreatePods { count, template } => {
                for _ in 0..count {
                    let id = self.id();
                    let mut pod = template.clone();
                    pod.metadata.name = Some(format!("{}{id}", pod.metadata.generate_name.clone().unwrap()));
                    pod.metadata.uid = Some(format!("pod-uid-{id:04}"));
                    pod.metadata.creation_timestamp = Some(Time(self.now));
                    pod.status = Some(PodStatus {
                        phase: Some("Pending".into()),
                        ..Default::default()
                    });
                    self.pods.push(pod);
                }
            }
            replicaset::Effect::DeletePod { name } => {
                let now = self.now;
                let pod = self
                    .pods
                    .iter_mut()
                    .find(|p| p.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                pod.metadata.deletion_timestamp = Some(Time(now));
            }
            replicaset::Effect::UpdateStatus(s) => self.rss[i].status = Some(s),
            replicaset::Effect::AdoptPod { .. } | replicaset::Effect::ReleasePod { .. } => {
                panic!("the simulation never orphans pods")
            }
            replicaset::Effect::Event(_) => {}
        }
    }

    /// Terminating pods finish.
    pub fn reap(&mut self) {
        self.pods.retain(|p| p.metadata.deletion_timestamp.is_none());
    }

    /// The kubelet: every active pod (of the ReplicaSets named, or all) runs and is Ready.
    pub fn make_ready(&mut self, only: Option<&str>) {
        let uids: Vec<String> = self
            .rss
            .iter()
            .filter(|r| only.is_none_or(|n| r.metadata.name.as_deref() == Some(n)))
            .filter_map(|r| r.metadata.uid.clone())
            .collect();
        let now = self.now;
        for pod in self.pods.iter_mut().filter(|p| is_active(p) && !is_ready(p)) {
            if !controller_of(&pod.metadata).is_some_and(|r| uids.contains(&r.uid)) {
                continue;
            }
            pod.spec.as_mut().unwrap().node_name = Some("node-1".into());
            let status = pod.status.get_or_insert_with(Default::default);
            status.phase = Some("Running".into());
            status.conditions = Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            }]);
        }
    }

    /// Ready pods, terminating ones included (they still serve until they stop).
    pub fn ready_pods(&self) -> usize {
        self.pods.iter().filter(|p| is_ready(p)).count()
    }

    /// Deployment and ReplicaSet syncs (pods made ready each round) until nothing changes.
    /// Returns the Deployment's last action.
    pub fn settle(&mut self) -> Action {
        for _ in 0..50 {
            let (effects, action) = self.sync_deployment();
            self.sync_replica_sets();
            let unready = self.pods.iter().any(|p| is_active(p) && !is_ready(p));
            self.make_ready(None);
            self.sync_replica_sets();
            if effects.is_empty() && !unready {
                return action;
            }
        }
        panic!("deployment did not settle: {:?}", self.sizes());
    }

    /// The deployment's condition of this type as (status, reason, message).
    pub fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        let s = self.deployment.status.as_ref()?;
        let c = s.conditions.iter().flatten().find(|c| c.type_ == type_)?;
        Some((
            c.status.clone(),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ))
    }

    pub fn annotation(&self, key: &str) -> Option<String> {
        self.deployment.metadata.annotations.as_ref()?.get(key).cloned()
    }
}

/// A requeue of whole seconds, for assertions.
pub fn secs(a: Action) -> Option<u64> {
    a.requeue_after.map(|d: Duration| d.as_secs())
}
