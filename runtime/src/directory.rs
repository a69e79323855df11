//! The pods of every node in this process, by pod IP: where traffic addressed to a pod (a
//! Service endpoint's HTTP request, a guest's TCP connection to a pod IP or a Service's
//! cluster IP) finds the pod's network. Shared by the sibling runtimes of one process; a pod
//! is listed while it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use capstan_core::k8s_openapi::api::core::v1::Pod;
use tokio::sync::{Notify, watch};

use crate::network::PodNetwork;

/// Pod IP → the pod's network and its status as the runtime last published it.
#[derive(Default)]
pub struct PodDirectory {
    pods: RwLock<HashMap<String, Listed>>,
    /// Woken whenever a listed pod's status changes.
    changed: Notify,
}

struct Listed {
    network: PodNetwork,
    status: watch::Receiver<Pod>,
}

impl PodDirectory {
    /// The network of the pod at `ip`, if one runs in this process.
    pub fn get(&self, ip: &str) -> Option<PodNetwork> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        pods.get(ip).map(|l| l.network.clone())
    }

    pub(crate) fn insert(&self, ip: String, network: PodNetwork, status: watch::Receiver<Pod>) {
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        pods.insert(ip, Listed { network, status });
        drop(pods);
        self.changed.notify_waiters();
    }

    /// A listed pod's status changed (its worker published a new one).
    pub(crate) fn status_changed(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves at the next status change of any listed pod (or a pod listed); create it
    /// before looking, so that no change between the look and the wait is missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The pods of `namespace` whose labels include `selector` and whose `Ready` condition is
    /// true, as their runtime sees them now: (pod IP, network, pod). What the Endpoints will
    /// list once the status has reached the API — the activator forwards a woken workload's
    /// first request without waiting for that.
    pub fn ready(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<(String, PodNetwork, Pod)> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        pods.iter()
            .filter_map(|(ip, listed)| {
                let pod = listed.status.borrow();
                let meta = &pod.metadata;
                let labels = meta.labels.as_ref();
                let matches = meta.namespace.as_deref().unwrap_or("default") == namespace
                    && selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                (matches && ready).then(|| (ip.clone(), listed.network.clone(), pod.clone()))
            })
            .collect()
    }

    pub(crate) fn remove(&self, ip: &str) {
        self.pods.write().unwrap_or_else(|e| e.into_inner()).remove(ip);
    }

    /// How many pods are listed.
    pub fn len(&self) -> usize {
        self.pods.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, app: &str, ready: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "labels": {"app": app, "tier": "web"}},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        }))
        .unwrap()
    }

    #[test]
    fn ready_pods_are_those_selected_in_the_namespace_with_ready_true() {
        let directory = PodDirectory::default();
        let mut senders = Vec::new();
        for (ip, p) in [
            ("10.88.0.1", pod("shop", "cart", "True")),
            ("10.88.0.2", pod("shop", "cart", "False")),
            ("10.88.0.3", pod("shop", "till", "True")),
            ("10.88.0.4", pod("other", "cart", "True")),
        ] {
            let (tx, rx) = watch::channel(p);
            directory.insert(ip.into(), PodNetwork::default(), rx);
            senders.push(tx);
        }
        let select = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let ips = |sel| -> Vec<String> {
            let mut ips: Vec<String> = directory.ready("shop", &sel).into_iter().map(|r| r.0).collect();
            ips.sort();
            ips
        };
        assert_eq!(ips(select(&[("app", "cart")])), ["10.88.0.1"]);
        assert_eq!(ips(select(&[("tier", "web")])), ["10.88.0.1", "10.88.0.3"]);
        assert!(ips(select(&[("app", "cart"), ("tier", "db")])).is_empty());
        // Its status turns Ready: now it counts, as the runtime publishes it.
        senders[1].send_replace(pod("shop", "cart", "True"));
        assert_eq!(ips(select(&[("app", "cart")])), ["10.88.0.1", "10.88.0.2"]);
    }
}
