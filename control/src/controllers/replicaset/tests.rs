use super::*;
use serde_json::{Value, json};

const UID: &str = "rs-uid";

fn now() -> Timestamp {
    "2025-01-01T01:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> String {
    now()
        .checked_sub(capstan_core::k8s_openapi::jiff::SignedDuration::from_secs(secs))
        .unwrap()
        .to_string()
}

fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": UID, "generation": 2},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "img"}]}
            }
        }
    }))
    .unwrap()
}

/// A pod described by a few knobs; `owner` is the controller uid ("" for an orphan).
struct P {
    name: &'static str,
    owner: &'static str,
    node: &'static str,
    phase: &'static str,
    ready_secs_ago: Option<i64>,
    restarts: i32,
    created_secs_ago: i64,
}

const BASE: P = P {
    name: "p",
    owner: UID,
    node: "n1",
    phase: "Running",
    ready_secs_ago: Some(3000),
    restarts: 0,
    created_secs_ago: 3500,
};

fn pod(p: P) -> Pod {
    let mut v = json!({
        "metadata": {
            "name": p.name, "namespace": "ns", "uid": format!("uid-{}", p.name),
            "labels": {"app": "web", "tier": "fe"},
            "creationTimestamp": ago(p.created_secs_ago)
        },
        "spec": {"nodeName": p.node, "containers": [{"name": "c", "image": "img"}]},
        "status": {
            "phase": p.phase,
            "containerStatuses": [{"name": "c", "image": "img", "imageID": "", "ready": true, "restartCount": p.restarts}]
        }
    });
    if !p.owner.is_empty() {
        v["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": p.owner, "controller": true}]);
    }
    v["status"]["conditions"] = match p.ready_secs_ago {
        Some(s) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": ago(s)}]),
        None => json!([{"type": "Ready", "status": "False"}]),
    };
    serde_json::from_value(v).unwrap()
}

fn run(rs: &ReplicaSet, pods: &[Pod]) -> (Vec<Effect>, Action) {
    reconcile(&Snapshot { rs, pods, now: now() })
}

fn deleted(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::DeletePod { name } = e {
                Some(name.as_str())
            } else {
                None
            }
        })
        .collect()
}

fn status(effects: &[Effect]) -> Option<&ReplicaSetStatus> {
    effects
        .iter()
        .find_map(|e| if let Effect::UpdateStatus(s) = e { Some(s) } else { None })
}

#[test]
fn scales_up_from_nothing_with_a_controlled_template() {
    let (effects, action) = run(&rs(3, 0), &[]);
    let Effect::CreatePods { count, template } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(*count, 3);
    let t: Value = serde_json::to_value(template).unwrap();
    assert_eq!(t["metadata"]["generateName"], "web-");
    assert_eq!(t["metadata"]["namespace"], "ns");
    assert_eq!(t["metadata"]["labels"], json!({"app": "web", "tier": "fe"}));
    assert_eq!(t["metadata"]["annotations"], json!({"a": "b"}));
    assert_eq!(
        t["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": UID,
                 "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(t["spec"]["containers"][0]["image"], "img");
    assert_eq!(
        status(&effects).unwrap(),
        &ReplicaSetStatus {
            observed_generation: Some(2),
            ..Default::default()
        }
    );
    assert_eq!(action, Action::await_change());
}

#[test]
fn creates_at_most_a_burst() {
    let (effects, _) = run(&rs(2000, 0), &[]);
    assert!(matches!(
        effects[0],
        Effect::CreatePods {
            count: BURST_REPLICAS,
            ..
        }
    ));
}

#[test]
fn scale_down_ranking() {
    // Each row: two pods differing in one criterion; with replicas 1 the first named is deleted.
    let cases: Vec<(&str, P, P)> = vec![
        ("unassigned before assigned", P { node: "", ..BASE }, P { ..BASE }),
        (
            "pending before running",
            P {
                phase: "Pending",
                ready_secs_ago: None,
                ..BASE
            },
            P {
                ready_secs_ago: None,
                ..BASE
            },
        ),
        (
            "pending before unknown",
            P {
                phase: "Pending",
                ..BASE
            },
            P {
                phase: "Unknown",
                ..BASE
            },
        ),
        (
            "unknown before running",
            P {
                phase: "Unknown",
                ..BASE
            },
            P { ..BASE },
        ),
        (
            "not ready before ready",
            P {
                ready_secs_ago: None,
                ..BASE
            },
            P { ..BASE },
        ),
        (
            "ready for less time first",
            P {
                ready_secs_ago: Some(10),
                ..BASE
            },
            P { ..BASE },
        ),
        (
            "more restarts first",
            P { restarts: 5, ..BASE },
            P { restarts: 1, ..BASE },
        ),
        (
            "newer first",
            P {
                created_secs_ago: 10,
                ..BASE
            },
            P { ..BASE },
        ),
    ];
    for (what, first, second) in cases {
        let pods = [
            pod(P {
                name: "second",
                ..second
            }),
            pod(P { name: "first", ..first }),
        ];
        let (effects, _) = run(&rs(1, 0), &pods);
        assert_eq!(deleted(&effects), ["first"], "{what}");
        assert!(
            effects.contains(&Effect::Event(EventNote::normal(
                "SuccessfulDelete",
                "Deleted pod: first".into()
            ))),
            "{what}"
        );
    }
}

#[test]
fn scale_down_prefers_doubled_up_nodes_and_respects_deletion_cost() {
    let pods = [
        pod(P {
            name: "alone",
            node: "n2",
            ..BASE
        }),
        pod(P {
            name: "pair-a",
            node: "n1",
            created_secs_ago: 3400,
            ..BASE
        }),
        pod(P {
            name: "pair-b",
            node: "n1",
            ..BASE
        }),
    ];
    let (effects, _) = run(&rs(2, 0), &pods);
    assert_eq!(
        deleted(&effects),
        ["pair-a"],
        "a pod sharing its node goes first, then the newer of the two"
    );

    let mut cheap = pod(P {
        name: "cheap",
        node: "n2",
        ..BASE
    });
    cheap.metadata.annotations = Some([(POD_DELETION_COST.to_string(), "-10".to_string())].into());
    let (effects, _) = run(&rs(2, 0), &[pods[1].clone(), pods[2].clone(), cheap]);
    assert_eq!(deleted(&effects), ["cheap"]);
}

#[test]
fn deletes_in_rank_order() {
    let pods = [
        pod(P {
            name: "old-ready",
            ..BASE
        }),
        pod(P {
            name: "unready",
            ready_secs_ago: None,
            ..BASE
        }),
        pod(P {
            name: "unassigned",
            node: "",
            phase: "Pending",
            ready_secs_ago: None,
            ..BASE
        }),
        pod(P {
            name: "crashy",
            restarts: 9,
            ..BASE
        }),
    ];
    let (effects, _) = run(&rs(1, 0), &pods);
    assert_eq!(deleted(&effects), ["unassigned", "unready", "crashy"]);
}

#[test]
fn adopts_orphans_and_releases_strays() {
    let mut stray = pod(P { name: "stray", ..BASE });
    stray.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    let mut finished = pod(P {
        name: "finished",
        owner: "",
        ..BASE
    });
    finished.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let mut leaving = pod(P {
        name: "leaving",
        owner: "",
        ..BASE
    });
    leaving.metadata.deletion_timestamp =
        Some(capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let pods = [
        pod(P { name: "mine", ..BASE }),
        pod(P {
            name: "orphan",
            owner: "",
            ..BASE
        }),
        pod(P {
            name: "theirs",
            owner: "someone-else",
            ..BASE
        }),
        stray,
        finished,
        leaving,
    ];
    let (effects, _) = run(&rs(2, 0), &pods);
    assert_eq!(
        effects[..2],
        [
            Effect::AdoptPod {
                name: "orphan".into(),
                uid: "uid-orphan".into()
            },
            Effect::ReleasePod {
                name: "stray".into(),
                uid: "uid-stray".into()
            },
        ]
    );
    assert!(deleted(&effects).is_empty());
    assert!(!effects.iter().any(|e| matches!(e, Effect::CreatePods { .. })));
    assert_eq!(status(&effects).unwrap().replicas, 2);
}

#[test]
fn a_replicaset_being_deleted_only_reports_status() {
    let mut r = rs(3, 0);
    r.metadata.deletion_timestamp = Some(capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let mut stray = pod(P { name: "stray", ..BASE });
    stray.metadata.labels = None;
    let pods = [
        pod(P { name: "mine", ..BASE }),
        pod(P {
            name: "orphan",
            owner: "",
            ..BASE
        }),
        stray,
    ];
    let (effects, _) = run(&r, &pods);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(status(&effects).unwrap().replicas, 1);
}

#[test]
fn availability_waits_for_min_ready_seconds_and_requeues() {
    let pods = [
        pod(P {
            name: "a",
            ready_secs_ago: Some(5),
            ..BASE
        }),
        pod(P {
            name: "b",
            ready_secs_ago: Some(8),
            ..BASE
        }),
        pod(P {
            name: "c",
            ready_secs_ago: Some(60),
            ..BASE
        }),
        pod(P {
            name: "d",
            ready_secs_ago: None,
            ..BASE
        }),
    ];
    let (effects, action) = run(&rs(4, 10), &pods);
    let s = status(&effects).unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas, s.available_replicas),
        (4, Some(3), Some(1))
    );
    assert_eq!(s.fully_labeled_replicas, Some(4));
    // "b" becomes available first: 10s after its Ready transition, strictly after (+1s).
    assert_eq!(action.requeue_after, Some(Duration::from_secs(3)));

    let (_, action) = run(&rs(4, 0), &pods);
    assert_eq!(action.requeue_after, None, "nothing waits without minReadySeconds");
}

#[test]
fn unchanged_status_is_not_written_and_labels_count() {
    let mut partial = pod(P {
        name: "partial",
        ..BASE
    });
    partial.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let pods = [pod(P { name: "full", ..BASE }), partial];
    let mut r = rs(2, 0);
    let (effects, _) = run(&r, &pods);
    let s = status(&effects).unwrap().clone();
    assert_eq!(
        s,
        ReplicaSetStatus {
            replicas: 2,
            fully_labeled_replicas: Some(1),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            observed_generation: Some(2),
            ..Default::default()
        }
    );
    r.status = Some(s);
    let (effects, _) = run(&r, &pods);
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn only_pod_writes_count_as_writes_to_dependents() {
    let status = Effect::UpdateStatus(Default::default());
    assert!(status.is_status() && !status.writes_dependents());
    let delete = Effect::DeletePod { name: "p".into() };
    assert!(delete.writes_dependents() && !delete.is_status());
    let adopt = Effect::AdoptPod {
        name: "p".into(),
        uid: "u".into(),
    };
    assert!(adopt.writes_dependents());
}
