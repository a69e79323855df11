use std::time::Duration;

use serde_json::json;

use super::sim::{Cluster, deployment, secs};
use super::*;
use crate::controllers::pods::{is_active, is_ready};

fn rolling(surge: serde_json::Value, unavailable: serde_json::Value) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

fn events(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Event(e) = e {
                Some(e.message.clone())
            } else {
                None
            }
        })
        .collect()
}

fn cond(status: &str, reason: &str, message: &str) -> Option<(String, String, String)> {
    Some((status.into(), reason.into(), message.into()))
}

/// A cluster whose deployment has rolled out `image` completely.
fn running(replicas: i32, strategy: serde_json::Value) -> Cluster {
    let mut c = Cluster::new(deployment(replicas, "v1", strategy));
    c.settle();
    c
}

#[test]
fn first_rollout_creates_a_hashed_replicaset() {
    let mut c = Cluster::new(deployment(3, "v1", json!({})));
    let (effects, action) = c.sync_deployment();
    let Effect::CreateReplicaSet(rs) = &effects[0] else {
        panic!("{effects:?}")
    };
    let hash = crate::controllers::pod_template_hash(&c.deployment.spec.as_ref().unwrap().template, None);
    let name = format!("web-{hash}");
    let v = serde_json::to_value(rs).unwrap();
    assert_eq!(v["metadata"]["name"], name.as_str());
    assert_eq!(
        v["metadata"]["labels"],
        json!({"app": "web", "pod-template-hash": hash})
    );
    assert_eq!(
        v["metadata"]["annotations"],
        json!({REVISION: "1", DESIRED_REPLICAS: "3", MAX_REPLICAS: "4"}),
        "25% surge of 3 rounds up to 1"
    );
    assert_eq!(
        v["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
                 "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(v["spec"]["replicas"], 3);
    assert_eq!(
        v["spec"]["selector"]["matchLabels"],
        json!({"app": "web", "pod-template-hash": hash})
    );
    assert_eq!(
        v["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web", "pod-template-hash": hash})
    );
    assert_eq!(events(&effects), [format!("Scaled up replica set {name} from 0 to 3")]);
    assert_eq!(c.annotation(REVISION).as_deref(), Some("1"));
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set {name:?}")
        )
    );
    assert_eq!(
        c.condition("Available"),
        cond(
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability."
        )
    );
    assert_eq!(
        secs(action),
        Some(601),
        "checked again one second after the 600s progress deadline"
    );

    c.settle();
    let s = c.deployment.status.clone().unwrap();
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3), None)
    );
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(
        c.condition("Available"),
        cond(
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability."
        )
    );
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet {name:?} has successfully progressed.")
        )
    );
    assert_eq!(c.pods.len(), 3);
}

/// Roll to "v2" one step at a time (a Deployment sync, the ReplicaSet controller, then all
/// pods ready), checking surge and availability bounds after every step; the ReplicaSet sizes
/// (old, new) after each step that resized something.
fn roll_step_by_step(c: &mut Cluster, max_pods: usize, min_ready: usize) -> Vec<(i32, i32)> {
    c.set_image("v2");
    let mut steps = Vec::new();
    for _ in 0..30 {
        let (effects, _) = c.sync_deployment();
        c.sync_replica_sets();
        let active = c.pods.iter().filter(|p| is_active(p)).count();
        assert!(active <= max_pods, "{active} pods exceed the surge: {:?}", c.sizes());
        assert!(
            c.ready_pods() >= min_ready,
            "{} ready is under the minimum: {:?}",
            c.ready_pods(),
            c.sizes()
        );
        if effects
            .iter()
            .any(|e| matches!(e, Effect::ScaleReplicaSet { .. } | Effect::CreateReplicaSet(_)))
        {
            steps.push((c.sizes()[0], c.sizes()[1]));
        }
        c.make_ready(None);
        c.sync_replica_sets();
        if effects.is_empty() {
            return steps;
        }
    }
    panic!("rollout did not finish: {steps:?}");
}

#[test]
fn rolling_update_surge_one_unavailable_zero() {
    let mut c = running(4, rolling(json!(1), json!(0)));
    let steps = roll_step_by_step(&mut c, 5, 4);
    assert_eq!(steps, [(4, 1), (3, 1), (3, 2), (2, 2), (2, 3), (1, 3), (1, 4), (0, 4)]);
    let new = c.rss[1].metadata.name.clone().unwrap();
    let old = c.rss[0].metadata.name.clone().unwrap();
    assert_eq!(c.annotation(REVISION).as_deref(), Some("2"));
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet {new:?} has successfully progressed.")
        )
    );
    assert!(
        c.events
            .contains(&format!("ScalingReplicaSet: Scaled up replica set {new} from 0 to 1"))
    );
    assert!(
        c.events
            .contains(&format!("ScalingReplicaSet: Scaled down replica set {old} from 1 to 0"))
    );
    assert!(
        c.pods
            .iter()
            .all(|p| p.metadata.name.as_deref().unwrap().starts_with(&new))
    );
}

#[test]
fn rolling_update_quarter_surge_quarter_unavailable() {
    let mut c = running(4, json!({}));
    let steps = roll_step_by_step(&mut c, 5, 3);
    assert_eq!(steps, [(3, 1), (3, 2), (1, 2), (1, 4), (0, 4)]);
    assert_eq!(c.deployment.status.as_ref().unwrap().updated_replicas, Some(4));
}

#[test]
fn recreate_waits_for_old_pods_to_stop() {
    let mut c = running(3, json!({"type": "Recreate"}));
    let old = c.rss[0].metadata.name.clone().unwrap();
    c.graceful = true;
    c.set_image("v2");
    let (effects, _) = c.sync_deployment();
    assert_eq!(events(&effects), [format!("Scaled down replica set {old} from 3 to 0")]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::CreateReplicaSet(_))));
    c.sync_replica_sets();

    // The old pods are terminating but still running: no new ReplicaSet yet.
    let (effects, _) = c.sync_deployment();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::CreateReplicaSet(_) | Effect::ScaleReplicaSet { .. }))
    );
    assert_eq!(c.rss.len(), 1);

    c.reap();
    let (effects, _) = c.sync_deployment();
    let Some(Effect::CreateReplicaSet(rs)) = effects.iter().find(|e| matches!(e, Effect::CreateReplicaSet(_))) else {
        panic!("{effects:?}")
    };
    let new = rs.metadata.name.clone().unwrap();
    assert_eq!(
        rs.spec.as_ref().unwrap().replicas,
        Some(3),
        "Recreate starts the new ReplicaSet at full size"
    );
    assert_eq!(events(&effects), [format!("Scaled up replica set {new} from 0 to 3")]);
    c.graceful = false;
    c.settle();
    assert_eq!(c.sizes(), [0, 3]);
    assert_eq!(c.condition("Available").unwrap().1, "MinimumReplicasAvailable");
}

#[test]
fn rollback_reuses_the_old_replicaset_with_a_new_revision() {
    let mut c = running(2, json!({}));
    c.set_image("v2");
    c.settle();
    assert_eq!(c.sizes(), [0, 2]);
    let first = c.rss[0].metadata.name.clone().unwrap();

    // `kubectl rollout undo` patches the template back.
    c.set_image("v1");
    let (effects, _) = c.sync_deployment();
    let Effect::UpdateReplicaSetAnnotations { name, annotations, .. } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(name, &first);
    assert_eq!(annotations.get(REVISION).map(String::as_str), Some("3"));
    assert_eq!(annotations.get(REVISION_HISTORY).map(String::as_str), Some("1"));
    c.settle();
    assert_eq!(c.rss.len(), 2, "no third ReplicaSet");
    assert_eq!(c.sizes(), [2, 0]);
    assert_eq!(c.annotation(REVISION).as_deref(), Some("3"));
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet {first:?} has successfully progressed.")
        )
    );
}

#[test]
fn paused_deployments_scale_but_do_not_roll() {
    let mut c = running(4, json!({}));
    let rs = c.rss[0].metadata.name.clone().unwrap();
    c.edit(|d| d.spec.as_mut().unwrap().paused = Some(true));
    c.set_image("v2");
    let (effects, _) = c.sync_deployment();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::CreateReplicaSet(_) | Effect::ScaleReplicaSet { .. }))
    );
    assert_eq!(
        c.condition("Progressing"),
        cond("Unknown", "DeploymentPaused", "Deployment is paused")
    );

    c.edit(|d| d.spec.as_mut().unwrap().replicas = Some(6));
    let (effects, _) = c.sync_deployment();
    assert_eq!(events(&effects), [format!("Scaled up replica set {rs} from 4 to 6")]);
    c.settle();
    assert_eq!(c.sizes(), [6]);
    assert_eq!(c.deployment.status.as_ref().unwrap().available_replicas, Some(6));
    assert_eq!(
        c.condition("Progressing").unwrap().1,
        "DeploymentPaused",
        "status kept, still paused"
    );

    c.edit(|d| d.spec.as_mut().unwrap().paused = Some(false));
    let (effects, _) = c.sync_deployment();
    assert!(effects.iter().any(|e| matches!(e, Effect::CreateReplicaSet(_))));
    c.settle();
    assert_eq!(c.sizes(), [0, 6]);
    assert_eq!(c.condition("Progressing").unwrap().1, "NewReplicaSetAvailable");
}

#[test]
fn scaling_during_a_rollout_is_proportional() {
    // Kube's example: 10 replicas, maxSurge 3, maxUnavailable 2, the new pods never ready.
    let mut c = running(10, rolling(json!(3), json!(2)));
    c.set_image("v2");
    c.sync_deployment();
    c.sync_replica_sets();
    assert_eq!(
        c.sizes(),
        [8, 3],
        "created within the surge, the old shrunk within maxUnavailable"
    );
    c.sync_deployment();
    c.sync_replica_sets();
    assert_eq!(c.sizes(), [8, 5]);
    c.edit(|d| d.spec.as_mut().unwrap().replicas = Some(20));
    let (effects, _) = c.sync_deployment();
    // 13 -> 23: the old gets round(8*23/13)-8 = 6, the new round(5*23/13)-5 = 4.
    assert_eq!(c.sizes(), [14, 9]);
    let (old, new) = (
        c.rss[0].metadata.name.clone().unwrap(),
        c.rss[1].metadata.name.clone().unwrap(),
    );
    assert_eq!(
        events(&effects),
        [
            format!("Scaled up replica set {old} from 8 to 14"),
            format!("Scaled up replica set {new} from 5 to 9")
        ]
    );
    assert_eq!(c.rs(&old).metadata.annotations.as_ref().unwrap()[MAX_REPLICAS], "23");
}

#[test]
fn history_beyond_the_limit_is_deleted_oldest_first() {
    let mut c = running(1, json!({}));
    c.edit(|d| d.spec.as_mut().unwrap().revision_history_limit = Some(2));
    for image in ["v2", "v3", "v4", "v5"] {
        c.set_image(image);
        c.settle();
    }
    let revisions: Vec<String> = c
        .rss
        .iter()
        .map(|r| r.metadata.annotations.as_ref().unwrap()[REVISION].clone())
        .collect();
    assert_eq!(
        revisions,
        ["3", "4", "5"],
        "the new ReplicaSet plus two old ones remain"
    );
    assert_eq!(c.annotation(REVISION).as_deref(), Some("5"));
}

#[test]
fn history_keeps_replicasets_that_still_have_pods() {
    let mut c = running(1, json!({}));
    c.edit(|d| d.spec.as_mut().unwrap().revision_history_limit = Some(0));
    c.set_image("v2");
    c.settle();
    assert_eq!(c.rss.len(), 1, "limit 0 keeps only the new ReplicaSet");

    // An old ReplicaSet that still reports a pod is kept even beyond the limit.
    let mut stale = c.rss[0].clone();
    stale.metadata.name = Some("web-stale".into());
    stale.metadata.uid = Some("stale-uid".into());
    stale
        .spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("v0".into());
    stale.spec.as_mut().unwrap().replicas = Some(0);
    stale.status.as_mut().unwrap().replicas = 1;
    c.rss.insert(0, stale);
    let (effects, _) = c.sync_deployment();
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::DeleteReplicaSet { .. })),
        "{effects:?}"
    );
}

#[test]
fn progress_deadline_is_reported_and_requeued() {
    let mut c = running(2, json!({}));
    c.edit(|d| d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60));
    c.set_image("broken");
    let (_, action) = c.sync_deployment();
    assert_eq!(secs(action), Some(61));
    c.sync_replica_sets();
    // The new ReplicaSet's pod shows up: that is progress, observed at once.
    c.sync_deployment();
    c.sync_replica_sets();
    let new = c.rss[1].metadata.name.clone().unwrap();
    assert_eq!(c.condition("Progressing").unwrap().1, "ReplicaSetUpdated");

    c.advance(30);
    let (effects, action) = c.sync_deployment();
    assert!(effects.is_empty(), "no progress, not yet late: {effects:?}");
    assert_eq!(secs(action), Some(31));

    c.advance(31);
    let (effects, action) = c.sync_deployment();
    assert!(matches!(effects.last(), Some(Effect::UpdateStatus(_))), "{effects:?}");
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet {new:?} has timed out progressing.")
        )
    );
    assert_eq!(action, Action::await_change());
    assert_eq!(c.condition("Available").unwrap().0, "True", "the old pods still serve");
}

#[test]
fn progress_resets_the_deadline() {
    let mut c = running(2, rolling(json!(1), json!(0)));
    c.edit(|d| d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60));
    c.set_image("v2");
    c.sync_deployment();
    c.sync_replica_sets();
    c.advance(50);
    c.make_ready(None);
    c.sync_replica_sets();
    let (_, action) = c.sync_deployment();
    let new = c.rss[1].metadata.name.clone().unwrap();
    assert_eq!(
        c.condition("Progressing"),
        cond(
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet {new:?} is progressing.")
        )
    );
    assert_eq!(secs(action), Some(61), "the deadline counts from the last progress");
}

#[test]
fn hash_collision_bumps_the_collision_count() {
    let d = deployment(1, "v1", json!({}));
    let hash = crate::controllers::pod_template_hash(&d.spec.as_ref().unwrap().template, None);
    let squatter: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": format!("web-{hash}"), "namespace": "ns", "uid": "x", "labels": {"other": "app"}},
        "spec": {"selector": {"matchLabels": {"other": "app"}}, "template": {"metadata": {"labels": {"other": "app"}}}}
    }))
    .unwrap();
    let snapshot = Snapshot {
        deployment: &d,
        replica_sets: std::slice::from_ref(&squatter),
        pods: &[],
        now: super::sim::start(),
    };
    let (effects, action) = reconcile(&snapshot);
    assert!(!effects.iter().any(|e| matches!(e, Effect::CreateReplicaSet(_))));
    let Some(Effect::UpdateStatus(status)) = effects.last() else {
        panic!("{effects:?}")
    };
    assert_eq!(status.collision_count, Some(1));
    assert_eq!(action.requeue_after, Some(Duration::ZERO));

    let mut d = d;
    d.status = Some(status.clone());
    let snapshot = Snapshot {
        deployment: &d,
        replica_sets: std::slice::from_ref(&squatter),
        pods: &[],
        now: super::sim::start(),
    };
    let (effects, _) = reconcile(&snapshot);
    let Effect::CreateReplicaSet(rs) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_ne!(rs.metadata.name, squatter.metadata.name);
}

#[test]
fn adopts_orphan_replicasets_and_selecting_all_warns() {
    let mut c = running(2, json!({}));
    c.rss[0].metadata.owner_references = None;
    let name = c.rss[0].metadata.name.clone().unwrap();
    let uid = c.rss[0].metadata.uid.clone().unwrap();
    let (effects, _) = c.sync_deployment();
    assert_eq!(effects, [Effect::AdoptReplicaSet { name, uid }]);

    let mut d = deployment(1, "v1", json!({}));
    d.spec.as_mut().unwrap().selector = Default::default();
    let (effects, _) = reconcile(&Snapshot {
        deployment: &d,
        replica_sets: &[],
        pods: &[],
        now: super::sim::start(),
    });
    assert_eq!(
        effects[0],
        Effect::Event(EventNote::warning(
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".into()
        ))
    );
    assert!(matches!(&effects[1], Effect::UpdateStatus(s) if s.observed_generation == Some(1)));
}

#[test]
fn a_deployment_being_deleted_only_reports_status() {
    let mut c = running(2, json!({}));
    c.edit(|d| {
        d.metadata.deletion_timestamp = Some(capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            super::sim::start(),
        ));
        d.spec.as_mut().unwrap().replicas = Some(5);
    });
    c.set_image("v2");
    let (effects, _) = c.sync_deployment();
    assert!(
        effects.iter().all(|e| matches!(e, Effect::UpdateStatus(_))),
        "{effects:?}"
    );
    assert!(c.pods.iter().all(is_ready));
}

#[test]
fn min_ready_seconds_holds_the_rollout_until_pods_are_available() {
    let mut c = running(2, rolling(json!(1), json!(0)));
    let old = c.rss[0].metadata.name.clone().unwrap();
    c.edit(|d| d.spec.as_mut().unwrap().min_ready_seconds = Some(10));
    let (effects, _) = c.sync_deployment();
    assert!(
        matches!(&effects[0], Effect::UpdateReplicaSetAnnotations { name, min_ready_seconds: 10, .. } if *name == old),
        "the current ReplicaSet takes the new minReadySeconds: {effects:?}"
    );
    c.settle();

    c.set_image("v2");
    c.sync_deployment();
    c.sync_replica_sets();
    c.make_ready(None);
    c.sync_replica_sets();
    assert_eq!(c.sizes(), [2, 1]);
    let (effects, _) = c.sync_deployment();
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::ScaleReplicaSet { .. })),
        "ready is not yet available"
    );

    // The ReplicaSet controller asks to look again once the pod has been ready long enough.
    let new = c.rss[1].clone();
    let (_, action) = crate::controllers::replicaset::reconcile(&crate::controllers::replicaset::Snapshot {
        rs: &new,
        pods: &c.pods,
        now: c.now,
    });
    assert_eq!(secs(action), Some(11));
    c.advance(11);
    c.sync_replica_sets();
    c.sync_deployment();
    assert_eq!(
        c.sizes(),
        [1, 1],
        "the old ReplicaSet shrinks once the new pod is available"
    );
}

#[test]
fn only_replica_set_writes_count_as_writes_to_dependents() {
    let status = Effect::UpdateStatus(Default::default());
    assert!(status.is_status() && !status.writes_dependents());
    assert!(!Effect::UpdateDeploymentAnnotations(Default::default()).writes_dependents());
    let scale = Effect::ScaleReplicaSet {
        name: "web-1".into(),
        replicas: 1,
        desired_replicas: 1,
        max_replicas: 2,
    };
    assert!(scale.writes_dependents() && !scale.is_status());
    assert!(Effect::DeleteReplicaSet { name: "web-0".into() }.writes_dependents());
}
