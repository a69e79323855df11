use super::*;

fn owner_ref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Owner".into(),
        name: format!("name-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn node(uid: &str, owners: &[&str]) -> Node {
    Node {
        uid: uid.into(),
        api_version: "v1".into(),
        kind: "Thing".into(),
        namespace: Some("ns".into()),
        name: uid.into(),
        owners: owners.iter().map(|o| owner_ref(o, true)).collect(),
        ..Default::default()
    }
}

fn deleting(mut n: Node, finalizer: &str) -> Node {
    n.deleting = true;
    n.finalizers.push(finalizer.into());
    n
}

/// Apply effects as the API server would, until the collector has nothing left to do.
fn settle(mut objects: Vec<Node>) -> (Vec<Node>, usize) {
    for round in 1..=20 {
        let effects = collect(&objects);
        if effects.is_empty() {
            return (objects, round);
        }
        for e in effects {
            match e {
                Effect::Delete { target, propagation } => {
                    let Some(n) = objects.iter_mut().find(|n| n.uid == target.uid) else {
                        continue;
                    };
                    n.deleting = true;
                    match propagation {
                        Propagation::Foreground => n.finalizers.push(FOREGROUND_DELETION.into()),
                        Propagation::Orphan => n.finalizers.push(ORPHAN.into()),
                        Propagation::Background => {}
                    }
                    n.finalizers.dedup();
                }
                Effect::RemoveOwnerReferences { target, owner_uids } => {
                    if let Some(n) = objects.iter_mut().find(|n| n.uid == target.uid) {
                        n.owners.retain(|r| !owner_uids.contains(&r.uid));
                    }
                }
                Effect::RemoveFinalizer { target, finalizer } => {
                    if let Some(n) = objects.iter_mut().find(|n| n.uid == target.uid) {
                        n.finalizers.retain(|f| *f != finalizer);
                    }
                }
            }
            objects.retain(|n| !(n.deleting && n.finalizers.is_empty()));
        }
    }
    panic!("did not settle: {objects:?}");
}

fn uids(objects: &[Node]) -> Vec<&str> {
    objects.iter().map(|n| n.uid.as_str()).collect()
}

#[test]
fn background_deletes_objects_whose_owners_are_all_gone() {
    let objects = [
        node("rs", &[]),
        node("pod-kept", &["rs"]),
        node("pod-orphaned", &["gone-rs"]),
        node("pod-two-gone", &["gone-a", "gone-b"]),
        node("unowned", &[]),
    ];
    let deleted: Vec<_> = collect(&objects)
        .into_iter()
        .map(|e| match e {
            Effect::Delete {
                target,
                propagation: Propagation::Background,
            } => target.uid,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(deleted, ["pod-orphaned", "pod-two-gone"]);
}

#[test]
fn a_living_owner_keeps_a_dependent_and_loses_dead_references() {
    let objects = [node("a", &[]), node("dep", &["a", "gone"])];
    assert_eq!(
        collect(&objects),
        [Effect::RemoveOwnerReferences {
            target: objects[1].target(),
            owner_uids: vec!["gone".into()]
        }]
    );
}

#[test]
fn an_owner_in_another_namespace_does_not_count() {
    let mut owner = node("owner", &[]);
    owner.namespace = Some("elsewhere".into());
    let mut cluster_owner = node("cluster-owner", &[]);
    cluster_owner.namespace = None;
    let objects = [
        owner,
        cluster_owner,
        node("dep", &["owner"]),
        node("dep2", &["cluster-owner"]),
    ];
    let effects = collect(&objects);
    assert_eq!(
        effects,
        [Effect::Delete {
            target: objects[2].target(),
            propagation: Propagation::Background
        }]
    );
}

#[test]
fn objects_already_being_deleted_are_left_alone() {
    let mut dep = node("dep", &["gone"]);
    dep.deleting = true;
    dep.finalizers.push("example.com/hold".into());
    assert!(collect(&[dep]).is_empty());
}

#[test]
fn foreground_deletes_the_tree_bottom_up() {
    // Deployment (foreground) -> ReplicaSet -> two pods; an unrelated pod stays.
    let objects = vec![
        deleting(node("deploy", &[]), FOREGROUND_DELETION),
        node("rs", &["deploy"]),
        node("pod-1", &["rs"]),
        node("pod-2", &["rs"]),
        node("other", &[]),
    ];
    let first = collect(&objects);
    assert_eq!(
        first,
        [Effect::Delete {
            target: objects[1].target(),
            propagation: Propagation::Foreground
        }],
        "the ReplicaSet goes in foreground (it has pods); the deployment is blocked by it"
    );
    let (left, rounds) = settle(objects);
    assert_eq!(uids(&left), ["other"]);
    assert!(
        rounds >= 4,
        "rs, then pods, then rs finalizer, then deployment finalizer: {rounds}"
    );
}

#[test]
fn foreground_owner_is_released_when_only_non_blocking_dependents_remain() {
    let mut dep = node("dep", &[]);
    dep.owners = vec![owner_ref("owner", false), owner_ref("keeper", true)];
    let objects = [
        deleting(node("owner", &[]), FOREGROUND_DELETION),
        node("keeper", &[]),
        dep,
    ];
    let effects = collect(&objects);
    assert_eq!(
        effects,
        [
            Effect::RemoveFinalizer {
                target: objects[0].target(),
                finalizer: FOREGROUND_DELETION.into()
            },
            Effect::RemoveOwnerReferences {
                target: objects[2].target(),
                owner_uids: vec!["owner".into()]
            },
        ]
    );
}

#[test]
fn orphan_removes_references_then_the_finalizer() {
    let objects = vec![
        deleting(node("rs", &[]), ORPHAN),
        node("pod-1", &["rs"]),
        node("pod-2", &["rs"]),
    ];
    let effects = collect(&objects);
    assert_eq!(
        effects,
        [
            Effect::RemoveOwnerReferences {
                target: objects[1].target(),
                owner_uids: vec!["rs".into()]
            },
            Effect::RemoveOwnerReferences {
                target: objects[2].target(),
                owner_uids: vec!["rs".into()]
            },
            Effect::RemoveFinalizer {
                target: objects[0].target(),
                finalizer: ORPHAN.into()
            },
        ]
    );
    let (left, _) = settle(objects);
    assert_eq!(uids(&left), ["pod-1", "pod-2"]);
    assert!(left.iter().all(|n| n.owners.is_empty()));
}

#[test]
fn a_dependent_with_the_orphan_finalizer_is_deleted_orphaning() {
    let mut dep = node("rs", &["gone"]);
    dep.finalizers.push(ORPHAN.into());
    assert_eq!(
        collect(&[dep.clone()]),
        [Effect::Delete {
            target: dep.target(),
            propagation: Propagation::Orphan
        }]
    );
}

#[test]
fn an_owner_of_a_kind_not_followed_counts_as_present() {
    // `a` is owned by an Owner (followed) that is gone, `b` by a Job, a kind the collector
    // does not follow, which it cannot look up; `c` by both.
    let mut job = owner_ref("job-1", true);
    job.api_version = "batch/v1".into();
    job.kind = "Job".into();
    let a = node("a", &["gone"]);
    let mut b = node("b", &[]);
    b.owners.push(job.clone());
    let mut c = node("c", &["gone"]);
    c.owners.push(job);
    let follows = |r: &OwnerReference| r.kind != "Job";
    let effects = collect_following(&[a, b, c], follows);
    let deleted: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Delete { target, .. } => Some(target.uid.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, ["a"], "{effects:?}");
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::RemoveOwnerReferences { target, owner_uids } if target.uid == "c" && owner_uids == &["gone".to_owned()])),
        "c keeps only its unverifiable owner: {effects:?}"
    );
}
