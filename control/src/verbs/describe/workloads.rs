//! Deployments and ReplicaSets as kubectl describes them: replicas, strategy, the pod template,
//! and what they own (a Deployment's new and old ReplicaSets, a ReplicaSet's pods).

use serde_json::Value;

use super::pod::{controller, pod_template};
use super::{Out, annotations, header, labels, s, scalar, selector_text, time};

/// Pod templates equal but for the `pod-template-hash` label the controller adds.
pub fn same_template(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
            labels.remove("pod-template-hash");
        }
        t
    };
    strip(a) == strip(b)
}

/// The objects `owner` controls (by owner uid): a Deployment's ReplicaSets, a ReplicaSet's pods.
pub fn owned_by<'a>(owner: &Value, objects: &'a [Value]) -> Vec<&'a Value> {
    let uid = &owner["metadata"]["uid"];
    objects
        .iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == *uid && o["controller"] == true)
        })
        .collect()
}

pub(super) fn deployment(w: &mut Out, d: &Value, replica_sets: &[Value]) {
    let (meta, spec, status) = (&d["metadata"], &d["spec"], &d["status"]);
    header(w, meta);
    w.w(
        0,
        &format!("CreationTimestamp:\t{}\n", time(&meta["creationTimestamp"])),
    );
    labels(w, "", "Labels", &meta["labels"]);
    annotations(w, "", "Annotations", &meta["annotations"]);
    w.w(0, &format!("Selector:\t{}\n", selector_text(&spec["selector"])));
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    w.w(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            spec["replicas"].as_i64().unwrap_or(1),
            n(&status["updatedReplicas"]),
            n(&status["replicas"]),
            n(&status["availableReplicas"]),
            n(&status["unavailableReplicas"])
        ),
    );
    w.w(0, &format!("StrategyType:\t{}\n", s(&spec["strategy"]["type"])));
    w.w(0, &format!("MinReadySeconds:\t{}\n", n(&spec["minReadySeconds"])));
    let ru = &spec["strategy"]["rollingUpdate"];
    if ru.is_object() {
        let text = |v: &Value| if v.is_null() { "25%".to_owned() } else { scalar(v) };
        w.w(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                text(&ru["maxUnavailable"]),
                text(&ru["maxSurge"])
            ),
        );
    }
    pod_template(w, &spec["template"]);
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.w(1, "----\t------\t------\n");
        for c in conditions {
            w.w(
                1,
                &format!("{} \t{}\t{}\n", s(&c["type"]), s(&c["status"]), s(&c["reason"])),
            );
        }
    }
    let owned = owned_by(d, replica_sets);
    let (new, old): (Vec<&Value>, Vec<&Value>) = owned
        .into_iter()
        .partition(|rs| same_template(&rs["spec"]["template"], &spec["template"]));
    let old: Vec<&Value> = old
        .into_iter()
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0) != 0)
        .collect();
    w.w(0, &format!("OldReplicaSets:\t{}\n", replica_set_list(&old)));
    w.w(
        0,
        &format!("NewReplicaSet:\t{}\n", replica_set_list(&new[..new.len().min(1)])),
    );
}

/// `printReplicaSetsByLabels`.
fn replica_set_list(list: &[&Value]) -> String {
    if list.is_empty() {
        return "<none>".into();
    }
    list.iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                s(&rs["metadata"]["name"]),
                rs["status"]["replicas"].as_i64().unwrap_or(0),
                rs["spec"]["replicas"].as_i64().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn replica_set(w: &mut Out, rs: &Value, pods: &[Value]) {
    let (meta, spec, status) = (&rs["metadata"], &rs["spec"], &rs["status"]);
    header(w, meta);
    w.w(0, &format!("Selector:\t{}\n", selector_text(&spec["selector"])));
    labels(w, "", "Labels", &meta["labels"]);
    annotations(w, "", "Annotations", &meta["annotations"]);
    if let Some(owner) = controller(meta) {
        w.w(0, &format!("Controlled By:\t{owner}\n"));
    }
    w.w(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            status["replicas"].as_i64().unwrap_or(0),
            spec["replicas"].as_i64().unwrap_or(1)
        ),
    );
    let owned = owned_by(rs, pods);
    let phase = |p: &str| owned.iter().filter(|pod| pod["status"]["phase"] == p).count();
    w.w(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            phase("Running"),
            phase("Pending"),
            phase("Succeeded"),
            phase("Failed")
        ),
    );
    pod_template(w, &spec["template"]);
}
