//! The node lifecycle controller: a node whose Lease is not renewed in time becomes
//! `Ready=Unknown` and is tainted `node.kubernetes.io/unreachable` (NoSchedule, so nothing new
//! goes there; NoExecute, so its pods that do not tolerate that are evicted and their
//! controllers replace them elsewhere). A node that renews again is restored. Any NoExecute
//! taint evicts the pods that do not tolerate it, as the taint eviction controller does.

use std::sync::Arc;
use std::time::Duration;

use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::write::modify;
use crate::api::registry::{DeleteOptions, ListOptions, now, timestamp};
use crate::api::resources::{ResourceInfo, find};
use crate::api::{Api, ApiError};
use crate::events;
use crate::scheduler::selectors::tolerates;

/// How often leases are checked (kube-controller-manager's node monitor period is 5 s).
const MONITOR_PERIOD: Duration = Duration::from_secs(2);

/// The taint of a node that stopped renewing its Lease.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    find(group, "v1", plural).expect("served resource")
}

/// Whether a node's Lease has run out at `now` (no Lease at all counts as run out once the
/// node is older than one lease duration; a new node gets that long to renew).
pub fn lease_expired(lease: Option<&Lease>, node_created: Option<Timestamp>, now: Timestamp) -> bool {
    let spec = lease.and_then(|l| l.spec.as_ref());
    let duration = SignedDuration::from_secs(
        spec.and_then(|s| s.lease_duration_seconds)
            .unwrap_or(capstan_runtime::agent::node::LEASE_DURATION_SECONDS)
            .into(),
    );
    let since = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0).or(node_created);
    match since.and_then(|t| t.checked_add(duration).ok()) {
        Some(deadline) => now > deadline,
        None => false,
    }
}

/// Whether a pod on an unreachable node is to be evicted now: unless a toleration of the
/// NoExecute taint holds it (for ever, or for `tolerationSeconds` after the taint was added).
pub fn should_evict(tolerations: &[Toleration], taint: &Taint, now: Timestamp) -> bool {
    let added = taint.time_added.as_ref().map_or(now, |t| t.0);
    !tolerations.iter().any(|t| {
        tolerates(t, taint)
            && match t.toleration_seconds {
                None => true,
                Some(secs) => added
                    .checked_add(SignedDuration::from_secs(secs.max(0)))
                    .is_ok_and(|end| now < end),
            }
    })
}

fn unreachable_taints(now_value: &Value) -> Value {
    json!([
        {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now_value},
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now_value},
    ])
}

pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    loop {
        tick.tick().await;
        api.call(check).await?;
    }
}

/// One pass over every node.
fn check(api: &Api) -> Result<(), ApiError> {
    let (nodes, _) = api.list_items(res("", "nodes"), None, &ListOptions::default())?;
    let (leases, _) = api.list_items(
        res("coordination.k8s.io", "leases"),
        Some("kube-node-lease"),
        &ListOptions::default(),
    )?;
    let leases: Vec<Lease> = leases
        .into_iter()
        .filter_map(|l| serde_json::from_value(l).ok())
        .collect();
    let t = now();
    for value in nodes {
        let Ok(node) = serde_json::from_value::<Node>(value.clone()) else {
            continue;
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let lease = leases
            .iter()
            .find(|l| l.metadata.name.as_deref() == Some(name.as_str()));
        let expired = lease_expired(lease, node.metadata.creation_timestamp.as_ref().map(|c| c.0), t);
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let tainted = taints.iter().any(|taint| taint.key == UNREACHABLE);
        if expired && !tainted {
            mark_unreachable(api, &name, &value)?;
        } else if !expired && tainted {
            restore(api, &name)?;
        }
        evict(api, &name, &taints, t)?;
    }
    Ok(())
}

fn mark_unreachable(api: &Api, name: &str, node: &Value) -> Result<(), ApiError> {
    let stamp = timestamp(now());
    modify(api, res("", "nodes"), None, name, None, false, |n| {
        let mut taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| t["key"] != UNREACHABLE);
        taints.extend(unreachable_taints(&stamp).as_array().cloned().unwrap_or_default());
        n["spec"]["taints"] = Value::Array(taints);
    })?;
    modify(api, res("", "nodes"), None, name, None, true, |n| {
        for c in n["status"]["conditions"].as_array_mut().into_iter().flatten() {
            if c["type"] == "Ready" {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = stamp.clone();
            }
        }
    })?;
    events::record(
        api,
        node,
        "Node",
        "Normal",
        "NodeNotReady",
        &format!("Node {name} status is now: NodeNotReady"),
        "node-controller",
    );
    Ok(())
}

fn restore(api: &Api, name: &str) -> Result<(), ApiError> {
    let stamp = timestamp(now());
    modify(api, res("", "nodes"), None, name, None, false, |n| {
        if let Some(taints) = n["spec"]["taints"].as_array_mut() {
            taints.retain(|t| t["key"] != UNREACHABLE);
        }
    })?;
    modify(api, res("", "nodes"), None, name, None, true, |n| {
        for c in n["status"]["conditions"].as_array_mut().into_iter().flatten() {
            if c["type"] == "Ready" && c["status"] != "True" {
                c["status"] = json!("True");
                c["reason"] = json!("KubeletReady");
                c["message"] = json!("capstan node agent is posting ready status");
                c["lastTransitionTime"] = stamp.clone();
            }
        }
    })?;
    Ok(())
}

/// Evicts the pods of a node that do not tolerate one of its NoExecute taints (the
/// unreachable one, or any a user set), as Kubernetes' taint eviction controller.
fn evict(api: &Api, node: &str, taints: &[Taint], t: Timestamp) -> Result<(), ApiError> {
    let no_execute: Vec<&Taint> = taints.iter().filter(|taint| taint.effect == "NoExecute").collect();
    if no_execute.is_empty() {
        return Ok(());
    }
    let fields = crate::api::selector::FieldSelector::parse("Pod", &format!("spec.nodeName={node}")).ok();
    let (pods, _) = api.list_items(res("", "pods"), None, &ListOptions { labels: None, fields })?;
    for value in pods {
        let Ok(pod) = serde_json::from_value::<Pod>(value.clone()) else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        if !no_execute.iter().any(|taint| should_evict(&tolerations, taint, t)) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        events::record(
            api,
            &value,
            "Pod",
            "Normal",
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
            "taint-eviction-controller",
        );
        match api.delete(res("", "pods"), Some(&ns), &name, &DeleteOptions::default()) {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use capstan_core::k8s_openapi::api::coordination::v1::LeaseSpec;
    use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let lease = Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(at(0))),
                lease_duration_seconds: Some(40),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!lease_expired(Some(&lease), None, at(40)));
        assert!(lease_expired(Some(&lease), None, at(41)));
        // No lease yet: a new node gets one lease duration from its creation.
        assert!(!lease_expired(None, Some(at(0)), at(30)));
        assert!(lease_expired(None, Some(at(0)), at(50)));
        assert!(!lease_expired(None, None, at(50)));
    }

    #[test]
    fn tolerations_hold_pods_for_their_seconds() {
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(at(0))),
            ..Default::default()
        };
        let tolerate = |secs: Option<i64>| Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            ..Default::default()
        };
        assert!(should_evict(&[], &taint, at(1)));
        assert!(!should_evict(&[tolerate(None)], &taint, at(1000)));
        assert!(!should_evict(&[tolerate(Some(30))], &taint, at(10)));
        assert!(should_evict(&[tolerate(Some(30))], &taint, at(31)));
    }
}
