//! The Endpoints controller's shell: Service and Pod informers feed a work queue of Service
//! keys; each is synced by the pure core in `controllers/endpoints.rs` against the stored
//! Endpoints, and a Service that is gone has its Endpoints deleted.
//!
//! Triggers, as kube's: a Service's own changes; a pod's changes, for every Service of its
//! namespace whose selector matches its labels now or matched them before (the previous labels
//! are kept per pod, so a pod relabelled out of a Service still updates it); an Endpoints
//! object deleted (it is recreated if its Service still selects pods); and, once at start, every
//! existing Endpoints (kube's `checkLeftoverEndpoints`: those whose Service went while the
//! controller was down are deleted).

use std::sync::Arc;
use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::endpoint_slices::PodTriggers;
use super::informer::{Informer, Queue, sleep_until};
use super::write::modify;
use crate::api::registry::{DeleteOptions, WriteOptions};
use crate::api::resources::{ResourceInfo, find};
use crate::api::{Api, ApiError};
use crate::controllers::endpoints::{self, Effect, OVER_CAPACITY_ANNOTATION, Snapshot};
use crate::events;

/// The pause before a Service whose sync failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Who reports this controller's events (kube's name for it).
const COMPONENT: events::Component = "endpoint-controller";

/// Endpoints carrying this annotation are leader-election locks, not a Service's: the
/// leftover sweep leaves them alone, as kube's does.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

fn res(plural: &str) -> &'static ResourceInfo {
    find("", "v1", plural).expect("served resource")
}

fn key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The Endpoints controller.
pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let mut services = Informer::<Service>::start(&api, res("services")).await?;
    let mut pods = Informer::<Pod>::start(&api, res("pods")).await?;
    let mut endpoints = Informer::<Endpoints>::start(&api, res("endpoints")).await?;
    let mut queue = Queue::default();
    let mut triggers = PodTriggers::default();
    let mut swept = false;
    loop {
        tokio::select! {
            change = services.next() => {
                let Some(change) = change else { return Ok(()) };
                queue.add(key(&change.object.metadata));
            }
            change = pods.next() => {
                let Some(change) = change else { return Ok(()) };
                for k in triggers.services(change.kind, &change.object, &services) {
                    queue.add(k);
                }
            }
            change = endpoints.next() => {
                let Some(change) = change else { return Ok(()) };
                if change.kind == "DELETED" {
                    queue.add(key(&change.object.metadata));
                }
            }
            () = sleep_until(queue.next_due()) => {}
        }
        if !(services.synced() && pods.synced() && endpoints.synced()) {
            continue;
        }
        if !swept {
            swept = true;
            for (k, ep) in &endpoints.items {
                let annotations = ep.metadata.annotations.as_ref();
                if !annotations.is_some_and(|a| a.contains_key(LEADER_ANNOTATION)) {
                    queue.add(k.clone());
                }
            }
        }
        for k in queue.take_ready() {
            let Some((ns, name)) = k.split_once('/') else {
                continue;
            };
            let (ns, name) = (ns.to_owned(), name.to_owned());
            let synced = match services.items.get(&k).cloned() {
                // Kube deletes the Endpoints of that name, whoever wrote it.
                None => api.call(move |a| apply(a, &ns, vec![Effect::Delete { name }])).await,
                Some(svc) => {
                    let Some(selector) = endpoints::managed_selector(&svc) else {
                        continue;
                    };
                    // Only the pods the selector matches matter; skip cloning the rest.
                    let selected: Vec<Pod> = pods
                        .in_namespace(&ns)
                        .filter(|p| endpoints::selects(selector, p.metadata.labels.as_ref()))
                        .map(|p| (**p).clone())
                        .collect();
                    api.call(move |a| sync(a, &ns, &name, &svc, &selected)).await
                }
            };
            if let Err(e) = synced {
                tracing::debug!(service = %k, error = %e, "endpoints sync failed");
                queue.add_after(k, RETRY_AFTER);
            }
        }
    }
}

/// Reads the stored Endpoints (fresh, so the core never compares with a cache older than this
/// controller's own last write), reconciles, and writes the effects.
fn sync(api: &Api, ns: &str, name: &str, service: &Service, pods: &[Pod]) -> Result<(), ApiError> {
    let current = match api.get(res("endpoints"), Some(ns), name) {
        Ok(value) => Some(serde_json::from_value::<Endpoints>(value).map_err(|e| ApiError::Internal(e.to_string()))?),
        Err(ApiError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let effects = endpoints::reconcile(&Snapshot {
        service,
        pods,
        current: current.as_ref(),
    });
    apply(api, ns, effects)
}

/// Writes the effects in order, stopping at the first failure (recorded as kube's
/// `FailedToCreateEndpoint`/`FailedToUpdateEndpoint` warnings).
fn apply(api: &Api, ns: &str, effects: Vec<Effect>) -> Result<(), ApiError> {
    let info = res("endpoints");
    for effect in effects {
        match effect {
            Effect::Create(ep) => {
                let value = serde_json::to_value(&ep).map_err(|e| ApiError::Internal(e.to_string()))?;
                match api.create(info, Some(ns), value.clone(), &WriteOptions::default()) {
                    Ok(_) => {}
                    // Written since it was read: make it what it should be.
                    Err(ApiError::AlreadyExists { .. }) => update(api, ns, &ep)?,
                    Err(e) => {
                        let message = format!("Failed to create endpoint for service {ns}/{}: {e}", name(&ep));
                        events::record(
                            api,
                            &value,
                            "Endpoints",
                            "Warning",
                            "FailedToCreateEndpoint",
                            &message,
                            COMPONENT,
                        );
                        return Err(e);
                    }
                }
            }
            Effect::Update(ep) => {
                if let Err(e) = update(api, ns, &ep) {
                    let value = serde_json::to_value(&ep).unwrap_or(Value::Null);
                    let message = format!("Failed to update endpoint {ns}/{}: {e}", name(&ep));
                    events::record(
                        api,
                        &value,
                        "Endpoints",
                        "Warning",
                        "FailedToUpdateEndpoint",
                        &message,
                        COMPONENT,
                    );
                    return Err(e);
                }
            }
            Effect::Delete { name } => match api.delete(info, Some(ns), &name, &DeleteOptions::default()) {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(())
}

fn name(ep: &Endpoints) -> &str {
    ep.metadata.name.as_deref().unwrap_or_default()
}

/// Replaces the stored object's subsets, labels and over-capacity mark with `ep`'s (kube
/// updates a copy of the stored object, so other annotations and fields stay).
fn update(api: &Api, ns: &str, ep: &Endpoints) -> Result<(), ApiError> {
    let subsets = ep.subsets.as_ref().map(|s| json!(s));
    let labels = ep.metadata.labels.as_ref().map(|l| json!(l));
    let over_capacity = ep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OVER_CAPACITY_ANNOTATION))
        .map(|v| json!(v));
    modify(api, res("endpoints"), Some(ns), name(ep), None, false, |o| {
        set_or_remove(o, "subsets", subsets.clone());
        let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        match &labels {
            Some(l) => meta.insert("labels".to_owned(), l.clone()),
            None => meta.remove("labels"),
        };
        match &over_capacity {
            Some(v) => {
                let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = annotations.as_object_mut() {
                    a.insert(OVER_CAPACITY_ANNOTATION.to_owned(), v.clone());
                }
            }
            None => {
                let emptied = meta
                    .get_mut("annotations")
                    .and_then(Value::as_object_mut)
                    .is_some_and(|a| a.remove(OVER_CAPACITY_ANNOTATION).is_some() && a.is_empty());
                if emptied {
                    meta.remove("annotations");
                }
            }
        }
    })?;
    Ok(())
}

/// Sets `object[field]`, or removes it when `value` is `None` (as the API stores an empty list).
fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    match value {
        Some(v) => {
            map.insert(field.to_owned(), v);
        }
        None => {
            map.remove(field);
        }
    }
}
