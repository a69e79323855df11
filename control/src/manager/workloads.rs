//! The ReplicaSet and Deployment controllers' shells: informers feed a work queue; each key
//! is reconciled by the pure core in `controllers/` and its effects are written in order,
//! stopping at the first failure (then retried after a pause).

use std::sync::Arc;
use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::informer::{DeferredStatus, Expectations, Informer, Queue, sleep_until};
use super::write::{modify, revision};
use crate::api::registry::{DeleteOptions, WriteOptions, now};
use crate::api::resources::{ResourceInfo, find};
use crate::api::{Api, ApiError};
use crate::controllers::{Action, EventNote, deployment, replicaset};
use crate::events;
use crate::scheduler::label_selector_matches;

/// The pause before a key whose effects failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    find(group, "v1", plural).expect("served resource")
}

fn key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

fn controller_of<'a>(meta: &'a ObjectMeta, kind: &str) -> Option<&'a OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.kind == kind)
}

fn labels(meta: &ObjectMeta) -> std::collections::BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// Keeps a controller running: restarts its watches whenever they end.
pub async fn forever<F, Fut>(name: &'static str, api: Arc<Api>, run: F)
where
    F: Fn(Arc<Api>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    loop {
        if let Err(e) = run(Arc::clone(&api)).await {
            tracing::warn!(controller = name, error = %e, "controller stopped; restarting");
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

fn record(api: &Api, object: &impl serde::Serialize, kind: &str, note: &EventNote, component: &'static str) {
    let value = serde_json::to_value(object).unwrap_or(Value::Null);
    events::record(api, &value, kind, note.type_, note.reason, &note.message, component);
}

/// Queues the controller of a changed dependent or, for an orphan, every owner whose
/// selector matches it (any of them may adopt it).
fn enqueue_owner<T>(
    queue: &mut Queue,
    dependent: &ObjectMeta,
    kind: &str,
    owners: &Informer<T>,
    selector: impl Fn(&T) -> Option<&LabelSelector>,
) where
    T: capstan_core::k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    let ns = dependent.namespace.as_deref().unwrap_or_default();
    match controller_of(dependent, kind) {
        Some(owner) => queue.add(format!("{ns}/{}", owner.name)),
        None => {
            let dependent_labels = labels(dependent);
            for owner in owners.in_namespace(ns) {
                if selector(owner).is_some_and(|s| label_selector_matches(s, &dependent_labels)) {
                    queue.add(key(owner.metadata()));
                }
            }
        }
    }
}

/// After a sync of `key`: expect its writes to be seen before the next, retry it after a
/// pause if a write failed, and look again when the core asked to.
fn settle(key: String, applied: Result<u64, ApiError>, action: Action, queue: &mut Queue, expect: &mut Expectations) {
    match applied {
        Ok(rev) => expect.expect(&key, rev),
        Err(e) => {
            tracing::debug!(key = %key, error = %e, "sync failed");
            queue.add_after(key.clone(), RETRY_AFTER);
        }
    }
    if let Some(after) = action.requeue_after {
        queue.add_after(key, after);
    }
}

/// The ReplicaSet controller.
pub async fn replica_sets(api: Arc<Api>) -> Result<(), ApiError> {
    let mut sets = Informer::<ReplicaSet>::start(&api, res("apps", "replicasets")).await?;
    let mut pods = Informer::<Pod>::start(&api, res("", "pods")).await?;
    let mut queue = Queue::default();
    let mut expect = Expectations::default();
    let mut deferred = DeferredStatus::default();
    loop {
        tokio::select! {
            change = sets.next() => {
                let Some(change) = change else { return Ok(()) };
                queue.add(key(&change.object.metadata));
            }
            change = pods.next() => {
                let Some(change) = change else { return Ok(()) };
                enqueue_owner(&mut queue, &change.object.metadata, "ReplicaSet", &sets, |rs| rs.spec.as_ref().map(|s| &s.selector));
            }
            () = sleep_until(queue.next_due()) => {}
        }
        if !(sets.synced() && pods.synced()) {
            continue;
        }
        for k in queue.take_ready() {
            if !expect.satisfied(&k, pods.seen) {
                continue;
            }
            let Some(rs) = sets.items.get(&k).cloned() else {
                continue;
            };
            let ns = rs.metadata.namespace.clone().unwrap_or_default();
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            let selector = rs.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
            // Only the pods it owns or could adopt matter; skip cloning the rest.
            let relevant: Vec<Pod> = pods
                .in_namespace(&ns)
                .filter(|p| match controller_of(&p.metadata, "ReplicaSet") {
                    Some(owner) => owner.uid == uid,
                    None => label_selector_matches(&selector, &labels(&p.metadata)),
                })
                .map(|p| (**p).clone())
                .collect();
            let (mut effects, action) = replicaset::reconcile(&replicaset::Snapshot {
                rs: &rs,
                pods: &relevant,
                now: now(),
            });
            let dependents = effects.iter().any(replicaset::Effect::writes_dependents);
            let status = effects.iter().any(replicaset::Effect::is_status);
            if let Some(until) = deferred.put_off(&k, Instant::now(), dependents, status) {
                effects.retain(|e| !e.is_status());
                queue.add_at(k.clone(), until);
            }
            let rs2 = Arc::clone(&rs);
            let applied = api.call(move |a| apply_rs(a, &rs2, effects)).await;
            settle(k, applied, action, &mut queue, &mut expect);
        }
    }
}

/// Writes a ReplicaSet's effects in order; returns the highest pod revision written.
fn apply_rs(api: &Api, rs: &ReplicaSet, effects: Vec<replicaset::Effect>) -> Result<u64, ApiError> {
    use replicaset::Effect;
    const COMPONENT: &str = "replicaset-controller";
    let pods = res("", "pods");
    let ns = rs.metadata.namespace.as_deref();
    let mut rev = 0;
    for effect in effects {
        match effect {
            Effect::CreatePods { count, template } => {
                let value = serde_json::to_value(&template).map_err(|e| ApiError::Internal(e.to_string()))?;
                for _ in 0..count {
                    let written = api.create(pods, ns, value.clone(), &WriteOptions::trusted())?;
                    rev = rev.max(revision(&written.object));
                }
            }
            Effect::DeletePod { name } => match api.delete(pods, ns, &name, &DeleteOptions::default()) {
                Ok(d) => rev = rev.max(revision(&d.body)),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
            Effect::AdoptPod { name, uid } => {
                let reference = serde_json::to_value(replicaset::controller_reference(rs)).unwrap_or(Value::Null);
                let written = modify(api, pods, ns, &name, Some(&uid), false, |pod| {
                    add_owner(pod, &reference);
                })?;
                rev = rev.max(written.unwrap_or(0));
            }
            Effect::ReleasePod { name, uid } => {
                let owner = rs.metadata.uid.clone().unwrap_or_default();
                let written = modify(api, pods, ns, &name, Some(&uid), false, |pod| remove_owner(pod, &owner))?;
                rev = rev.max(written.unwrap_or(0));
            }
            Effect::UpdateStatus(status) => {
                let status = serde_json::to_value(&status).map_err(|e| ApiError::Internal(e.to_string()))?;
                let name = rs.metadata.name.as_deref().unwrap_or_default();
                modify(
                    api,
                    res("apps", "replicasets"),
                    ns,
                    name,
                    rs.metadata.uid.as_deref(),
                    true,
                    |o| {
                        o["status"] = status.clone();
                    },
                )?;
            }
            Effect::Event(note) => record(api, rs, "ReplicaSet", &note, COMPONENT),
        }
    }
    Ok(rev)
}

fn add_owner(object: &mut Value, reference: &Value) {
    let refs = object["metadata"]
        .as_object_mut()
        .map(|m| m.entry("ownerReferences").or_insert_with(|| json!([])));
    if let Some(Value::Array(refs)) = refs {
        refs.retain(|r| r["uid"] != reference["uid"]);
        refs.push(reference.clone());
    }
}

fn remove_owner(object: &mut Value, owner_uid: &str) {
    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
    }
}

/// The Deployment controller.
pub async fn deployments(api: Arc<Api>) -> Result<(), ApiError> {
    let mut deploys = Informer::<Deployment>::start(&api, res("apps", "deployments")).await?;
    let mut sets = Informer::<ReplicaSet>::start(&api, res("apps", "replicasets")).await?;
    let mut pods = Informer::<Pod>::start(&api, res("", "pods")).await?;
    let mut queue = Queue::default();
    let mut expect = Expectations::default();
    let mut deferred = DeferredStatus::default();
    loop {
        tokio::select! {
            change = deploys.next() => {
                let Some(change) = change else { return Ok(()) };
                queue.add(key(&change.object.metadata));
            }
            change = sets.next() => {
                let Some(change) = change else { return Ok(()) };
                enqueue_owner(&mut queue, &change.object.metadata, "Deployment", &deploys, |d| d.spec.as_ref().map(|s| &s.selector));
            }
            change = pods.next() => {
                let Some(change) = change else { return Ok(()) };
                // Recreate waits for old pods to stop: a pod's change wakes its deployment.
                let meta = &change.object.metadata;
                let ns = meta.namespace.as_deref().unwrap_or_default();
                if let Some(rs) = controller_of(meta, "ReplicaSet").and_then(|o| sets.items.get(&format!("{ns}/{}", o.name)))
                    && let Some(owner) = controller_of(&rs.metadata, "Deployment")
                {
                    queue.add(format!("{ns}/{}", owner.name));
                }
            }
            () = sleep_until(queue.next_due()) => {}
        }
        if !(deploys.synced() && sets.synced() && pods.synced()) {
            continue;
        }
        for k in queue.take_ready() {
            if !expect.satisfied(&k, sets.seen) {
                continue;
            }
            let Some(d) = deploys.items.get(&k).cloned() else {
                continue;
            };
            let ns = d.metadata.namespace.clone().unwrap_or_default();
            let selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
            let replica_sets: Vec<ReplicaSet> = sets.in_namespace(&ns).map(|r| (**r).clone()).collect();
            let matching_pods: Vec<Pod> = pods
                .in_namespace(&ns)
                .filter(|p| label_selector_matches(&selector, &labels(&p.metadata)))
                .map(|p| (**p).clone())
                .collect();
            let (mut effects, action) = deployment::reconcile(&deployment::Snapshot {
                deployment: &d,
                replica_sets: &replica_sets,
                pods: &matching_pods,
                now: now(),
            });
            let dependents = effects.iter().any(deployment::Effect::writes_dependents);
            let status = effects.iter().any(deployment::Effect::is_status);
            if let Some(until) = deferred.put_off(&k, Instant::now(), dependents, status) {
                effects.retain(|e| !e.is_status());
                queue.add_at(k.clone(), until);
            }
            let d2 = Arc::clone(&d);
            let applied = api.call(move |a| apply_deployment(a, &d2, effects)).await;
            settle(k, applied, action, &mut queue, &mut expect);
        }
    }
}

/// Writes a Deployment's effects in order; returns the highest ReplicaSet revision written.
fn apply_deployment(api: &Api, d: &Deployment, effects: Vec<deployment::Effect>) -> Result<u64, ApiError> {
    use deployment::Effect;
    const COMPONENT: &str = "deployment-controller";
    let sets = res("apps", "replicasets");
    let deploys = res("apps", "deployments");
    let ns = d.metadata.namespace.as_deref();
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let uid = d.metadata.uid.as_deref();
    let mut rev = 0;
    let mut track = |r: Option<u64>| rev = rev.max(r.unwrap_or(0));
    for effect in effects {
        match effect {
            Effect::CreateReplicaSet(rs) => {
                let value = serde_json::to_value(&rs).map_err(|e| ApiError::Internal(e.to_string()))?;
                let written = api.create(sets, ns, value, &WriteOptions::trusted())?;
                track(Some(revision(&written.object)));
            }
            Effect::ScaleReplicaSet {
                name: rs,
                replicas,
                desired_replicas,
                max_replicas,
            } => track(modify(api, sets, ns, &rs, None, false, |o| {
                o["spec"]["replicas"] = json!(replicas);
                let meta = &mut o["metadata"];
                if !meta["annotations"].is_object() {
                    meta["annotations"] = json!({});
                }
                meta["annotations"]["deployment.kubernetes.io/desired-replicas"] = json!(desired_replicas.to_string());
                meta["annotations"]["deployment.kubernetes.io/max-replicas"] = json!(max_replicas.to_string());
            })?),
            Effect::UpdateReplicaSetAnnotations {
                name: rs,
                annotations,
                min_ready_seconds,
            } => track(modify(api, sets, ns, &rs, None, false, |o| {
                o["metadata"]["annotations"] = json!(annotations);
                o["spec"]["minReadySeconds"] = json!(min_ready_seconds);
            })?),
            Effect::DeleteReplicaSet { name: rs } => match api.delete(sets, ns, &rs, &DeleteOptions::default()) {
                Ok(deleted) => track(Some(revision(&deleted.body))),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
            Effect::AdoptReplicaSet { name: rs, uid: rs_uid } => {
                let reference = serde_json::to_value(deployment::controller_reference(d)).unwrap_or(Value::Null);
                track(modify(api, sets, ns, &rs, Some(&rs_uid), false, |o| {
                    add_owner(o, &reference)
                })?);
            }
            Effect::ReleaseReplicaSet { name: rs, uid: rs_uid } => {
                let owner = uid.unwrap_or_default().to_owned();
                track(modify(api, sets, ns, &rs, Some(&rs_uid), false, |o| {
                    remove_owner(o, &owner)
                })?);
            }
            Effect::UpdateDeploymentAnnotations(annotations) => {
                modify(api, deploys, ns, name, uid, false, |o| {
                    o["metadata"]["annotations"] = json!(annotations);
                })?;
            }
            Effect::UpdateStatus(status) => {
                let status = serde_json::to_value(&status).map_err(|e| ApiError::Internal(e.to_string()))?;
                modify(api, deploys, ns, name, uid, true, |o| o["status"] = status.clone())?;
            }
            Effect::Event(note) => record(api, d, "Deployment", &note, COMPONENT),
        }
    }
    Ok(rev)
}
