//! The garbage collector's shell: follows every kind that has owners or dependents and, when
//! something is deleted (or starts being deleted), asks the pure [`crate::controllers::gc`]
//! what must go, lose a reference, or lose a finalizer.

use std::sync::Arc;
use std::time::Duration;

use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use super::informer::Informer;
use super::write::modify;
use crate::api::registry::DeleteOptions;
use crate::api::resources::{self, ResourceInfo, find};
use crate::api::{Api, ApiError};
use crate::controllers::gc::{self, Effect, Propagation, Target};

/// Deletions arrive in bursts (a Deployment takes its ReplicaSets, then their pods): collect
/// once the burst settles rather than once per event.
const SETTLE: Duration = Duration::from_millis(100);

/// The kinds the collector follows: every served kind that can own or be owned (events,
/// which churn and own nothing, are left out). An owner reference to any other kind is
/// taken on trust (see [`gc::collect_following`]).
const KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "pods"),
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("discovery.k8s.io", "v1", "endpointslices"),
    ("", "v1", "endpoints"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("", "v1", "nodes"),
    ("coordination.k8s.io", "v1", "leases"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("", "v1", "limitranges"),
    ("", "v1", "resourcequotas"),
    ("scheduling.k8s.io", "v1", "priorityclasses"),
];

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// The next change of any of `informers`; `None` once one of them ends.
async fn next_change(informers: &mut [Informer<Value>]) -> Option<crate::manager::informer::Change<Value>> {
    type Next<'a> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<crate::manager::informer::Change<Value>>> + Send + 'a>,
    >;
    let mut nexts: Vec<Next<'_>> = informers.iter_mut().map(|i| Box::pin(i.next()) as Next<'_>).collect();
    std::future::poll_fn(|cx| {
        for next in &mut nexts {
            if let std::task::Poll::Ready(change) = next.as_mut().poll(cx) {
                return std::task::Poll::Ready(change);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

fn node_of(info: &ResourceInfo, object: &Value) -> gc::Node {
    let meta = &object["metadata"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    gc::Node {
        uid: meta["uid"].as_str().unwrap_or_default().to_owned(),
        api_version: info.api_version(),
        kind: info.kind.to_owned(),
        namespace: meta["namespace"].as_str().map(str::to_owned),
        name: meta["name"].as_str().unwrap_or_default().to_owned(),
        owners: serde_json::from_value::<Vec<OwnerReference>>(meta["ownerReferences"].clone()).unwrap_or_default(),
        deleting: meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()),
        finalizers: strings(&meta["finalizers"]),
    }
}

/// The garbage collector.
pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let infos: Vec<&'static ResourceInfo> = KINDS.iter().filter_map(|(g, v, r)| find(g, v, r)).collect();
    let followed: std::collections::HashSet<(&str, &str)> = infos.iter().map(|i| (i.group, i.kind)).collect();
    let follows = |r: &OwnerReference| followed.contains(&(group_of(&r.api_version), r.kind.as_str()));
    let mut informers = Vec::with_capacity(infos.len());
    for info in &infos {
        informers.push(Informer::<Value>::start(&api, info).await?);
    }
    // Look once at startup: what a crash left half-collected is finished now.
    let mut dirty = true;
    loop {
        let settle = async {
            if dirty {
                tokio::time::sleep(SETTLE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let change = tokio::select! {
            c = next_change(&mut informers) => Some(c),
            () = settle => None,
        };
        match change {
            Some(None) => return Ok(()),
            Some(Some(c)) => {
                let deleting = c.object["metadata"]
                    .get("deletionTimestamp")
                    .is_some_and(|t| !t.is_null());
                let owned = c.object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty());
                if c.kind == "DELETED" || deleting || (c.kind == "ADDED" && owned) {
                    dirty = true;
                }
                continue;
            }
            None => {}
        }
        if !informers.iter().all(Informer::synced) {
            continue;
        }
        dirty = false;
        let mut nodes = Vec::new();
        for (informer, info) in informers.iter().zip(&infos) {
            nodes.extend(informer.items.values().map(|o| node_of(info, o)));
        }
        let effects = gc::collect_following(&nodes, follows);
        if effects.is_empty() {
            continue;
        }
        if let Err(e) = api.call(move |a| apply(a, effects)).await {
            tracing::debug!(error = %e, "garbage collection failed; will retry");
            dirty = true;
        }
    }
}

fn info_of(target: &Target) -> Option<&'static ResourceInfo> {
    resources::find_kind(&target.api_version, &target.kind)
}

fn apply(api: &Api, effects: Vec<Effect>) -> Result<(), ApiError> {
    for effect in effects {
        match effect {
            Effect::Delete { target, propagation } => {
                let Some(info) = info_of(&target) else { continue };
                let opts = DeleteOptions {
                    propagation_policy: Some(
                        match propagation {
                            Propagation::Background => "Background",
                            Propagation::Foreground => "Foreground",
                            Propagation::Orphan => "Orphan",
                        }
                        .to_owned(),
                    ),
                    precondition_uid: Some(target.uid.clone()),
                    ..Default::default()
                };
                match api.delete(info, target.namespace.as_deref(), &target.name, &opts) {
                    Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Effect::RemoveOwnerReferences { target, owner_uids } => change(api, &target, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| !owner_uids.iter().any(|u| r["uid"].as_str() == Some(u)));
                }
            })?,
            Effect::RemoveFinalizer { target, finalizer } => change(api, &target, |o| {
                if let Some(list) = o["metadata"]["finalizers"].as_array_mut() {
                    list.retain(|f| f.as_str() != Some(finalizer.as_str()));
                }
            })?,
        }
    }
    Ok(())
}

/// Changes the target object (if it is still the one with the target's uid).
fn change(api: &Api, target: &Target, f: impl FnMut(&mut Value)) -> Result<(), ApiError> {
    let Some(info) = info_of(target) else {
        return Ok(());
    };
    ignore_gone(modify(
        api,
        info,
        target.namespace.as_deref(),
        &target.name,
        Some(&target.uid),
        false,
        f,
    ))
}

/// An object that is already gone (or replaced) needs nothing more.
fn ignore_gone(result: Result<Option<u64>, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
