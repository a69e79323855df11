//! The EndpointSlice controller's shell: Service, Pod and EndpointSlice informers feed a work
//! queue of Service keys; each is synced by the pure core in `controllers/endpoint_slices.rs`
//! against the Service's slices as stored (listed fresh, so the plan never rests on a cache
//! older than this controller's own last write).
//!
//! Triggers, as kube's: a Service's own changes; a pod's changes, for the Services whose
//! selector matches its labels now or matched them before; a change to a slice this controller
//! manages (someone edited or deleted it), for the Service it names; and, once at start, every
//! managed slice (a Service deleted while the controller was down has its slices removed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::{Pod, Service};
use capstan_core::k8s_openapi::api::discovery::v1::EndpointSlice;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as ApiLabelSelector, ObjectMeta};
use serde_json::{Value, json};

use super::informer::{Informer, Queue, sleep_until};
use super::write::modify;
use crate::api::registry::{DeleteOptions, ListOptions, WriteOptions};
use crate::api::resources::{ResourceInfo, find};
use crate::api::selector::LabelSelector;
use crate::api::{Api, ApiError};
use crate::controllers::endpoint_slices::{
    self, CONTROLLER_NAME, Effect, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Snapshot,
};
use crate::controllers::endpoints::{managed_selector, selects};
use crate::events;

/// The pause before a Service whose sync failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Who reports this controller's events (kube's name for it).
const COMPONENT: events::Component = "endpoint-slice-controller";

fn slices_info() -> &'static ResourceInfo {
    find("discovery.k8s.io", "v1", "endpointslices").expect("served resource")
}

/// `namespace/name`, as the informers key objects.
fn key(meta: &ObjectMeta) -> String {
    [&meta.namespace, &meta.name]
        .map(|part| part.as_deref().unwrap_or_default())
        .join("/")
}

/// The key of the Service a slice this controller manages belongs to.
fn owner_key(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(CONTROLLER_NAME) {
        return None;
    }
    let service = labels.get(SERVICE_NAME_LABEL)?;
    Some(format!(
        "{}/{service}",
        slice.metadata.namespace.as_deref().unwrap_or_default()
    ))
}

/// Which Services a pod's change concerns, as kube's endpoint controllers find them: those of
/// its namespace whose selector matches its labels now or matched them before. Each pod's
/// labels are kept as last seen, so a pod relabelled out of a Service still updates it. Both
/// the Endpoints and the EndpointSlice shells use it.
#[derive(Default)]
pub(super) struct PodTriggers {
    labels: HashMap<String, BTreeMap<String, String>>,
}

impl PodTriggers {
    /// The keys of the Services concerned by a change (`kind`: the watch event type) of `pod`.
    pub(super) fn services(&mut self, kind: &str, pod: &Pod, services: &Informer<Service>) -> Vec<String> {
        let meta = &pod.metadata;
        let now = meta.labels.clone().unwrap_or_default();
        let before = if kind == "DELETED" {
            self.labels.remove(&key(meta))
        } else {
            self.labels.insert(key(meta), now.clone())
        };
        let matched = |labels: &BTreeMap<String, String>, svc: &Service| {
            managed_selector(svc).is_some_and(|s| selects(s, Some(labels)))
        };
        services
            .in_namespace(meta.namespace.as_deref().unwrap_or_default())
            .filter(|svc| matched(&now, svc) || before.as_ref().is_some_and(|b| matched(b, svc)))
            .map(|svc| key(&svc.metadata))
            .collect()
    }
}

/// The EndpointSlice controller.
pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let core = |plural| find("", "v1", plural).expect("served resource");
    let mut services = Informer::<Service>::start(&api, core("services")).await?;
    let mut pods = Informer::<Pod>::start(&api, core("pods")).await?;
    let mut slices = Informer::<EndpointSlice>::start(&api, slices_info()).await?;
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
            change = slices.next() => {
                let Some(change) = change else { return Ok(()) };
                if let Some(k) = owner_key(&change.object) {
                    queue.add(k);
                }
            }
            () = sleep_until(queue.next_due()) => {}
        }
        if !(services.synced() && pods.synced() && slices.synced()) {
            continue;
        }
        if !swept {
            swept = true;
            for k in slices.items.values().filter_map(|s| owner_key(s)) {
                queue.add(k);
            }
        }
        for k in queue.take_ready() {
            let Some((ns, _)) = k.split_once('/') else {
                continue;
            };
            // A Service that is gone takes its slices with it through their owner reference
            // (the garbage collector's), or leaves them if it was deleted orphaning them, as
            // in Kubernetes: nothing to do here.
            let Some(svc) = services.items.get(&k).cloned() else {
                continue;
            };
            let Some(selector) = managed_selector(&svc) else {
                continue;
            };
            let selected: Vec<Pod> = pods
                .in_namespace(ns)
                .filter(|p| selects(selector, p.metadata.labels.as_ref()))
                .map(|p| (**p).clone())
                .collect();
            let synced = api.call(move |a| sync(a, &svc, &selected)).await;
            if let Err(e) = synced {
                tracing::debug!(service = %k, error = %e, "endpoint slice sync failed");
                queue.add_after(k, RETRY_AFTER);
            }
        }
    }
}

/// The slices labelled as this controller's for the Service `name` of `ns`, as stored now.
fn managed_slices(api: &Api, ns: &str, name: &str) -> Result<Vec<EndpointSlice>, ApiError> {
    let wanted = ApiLabelSelector {
        match_labels: Some(BTreeMap::from([
            (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
            (MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned()),
        ])),
        ..Default::default()
    };
    let labels = LabelSelector::from_label_selector(&wanted).map_err(|e| ApiError::Internal(e.to_string()))?;
    let options = ListOptions {
        labels: Some(labels),
        fields: None,
    };
    let (items, _) = api.list_items(slices_info(), Some(ns), &options)?;
    items
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| ApiError::Internal(e.to_string())))
        .collect()
}

/// Reconciles one Service against its stored slices and writes the effects; a failure is
/// recorded on the Service as kube's `FailedToUpdateEndpointSlices` warning.
fn sync(api: &Api, service: &Service, pods: &[Pod]) -> Result<(), ApiError> {
    let ns = service.metadata.namespace.as_deref().unwrap_or_default();
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let slices = managed_slices(api, ns, name)?;
    let effects = endpoint_slices::reconcile(&Snapshot {
        service,
        pods,
        slices: &slices,
    });
    apply(api, ns, effects).inspect_err(|e| {
        let object = serde_json::to_value(service).unwrap_or(Value::Null);
        let message = format!("Error updating Endpoint Slices for Service {ns}/{name}: {e}");
        events::record(
            api,
            &object,
            "Service",
            "Warning",
            "FailedToUpdateEndpointSlices",
            &message,
            COMPONENT,
        );
    })
}

/// Writes the effects in order, stopping at the first failure.
fn apply(api: &Api, ns: &str, effects: Vec<Effect>) -> Result<(), ApiError> {
    let info = slices_info();
    for effect in effects {
        match effect {
            Effect::Create(slice) => {
                let value = serde_json::to_value(&slice).map_err(|e| ApiError::Internal(e.to_string()))?;
                api.create(info, Some(ns), value, &WriteOptions::default())?;
            }
            Effect::Update(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                let endpoints = json!(slice.endpoints);
                let ports = slice.ports.as_ref().map(|p| json!(p));
                let labels = json!(slice.metadata.labels);
                let uid = slice.metadata.uid.as_deref();
                modify(api, info, Some(ns), &name, uid, false, |o| {
                    o["endpoints"] = endpoints.clone();
                    match &ports {
                        Some(p) => o["ports"] = p.clone(),
                        None => {
                            if let Some(map) = o.as_object_mut() {
                                map.remove("ports");
                            }
                        }
                    }
                    o["metadata"]["labels"] = labels.clone();
                })?;
            }
            Effect::Delete { name, uid } => {
                let options = DeleteOptions {
                    precondition_uid: uid,
                    ..Default::default()
                };
                match api.delete(info, Some(ns), &name, &options) {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}
