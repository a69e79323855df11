//! The node agent's [`ClusterClient`] for a node in the control plane's own process: the same
//! API verbs (and admission) HTTP clients get, called directly.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use capstan_core::env::{ConfigObjects, References};
use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use capstan_runtime::agent::{ClientError, ClusterClient, PodChange};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::registry::{DeleteOptions, ListOptions, WriteOptions};
use crate::api::resources::{ResourceInfo, find};
use crate::api::selector::FieldSelector;
use crate::api::watch::WatchOptions;
use crate::api::{Api, ApiError};
use crate::manager::informer::Informer;

/// How many status writes are retried when the pod changed in between.
const STATUS_RETRIES: usize = 5;

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    find(group, "v1", plural).expect("served resource")
}

fn err(e: ApiError) -> ClientError {
    ClientError(e.to_string())
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ClientError> {
    serde_json::to_value(v).map_err(|e| ClientError(e.to_string()))
}

fn from_value<T: DeserializeOwned>(v: Value) -> Option<T> {
    serde_json::from_value(v).ok()
}

/// A node's client of an API server in the same process.
pub struct LocalClient {
    api: Arc<Api>,
    /// The node's watch of Services, made at the first pod start (see [`LocalClient::services`]).
    services: tokio::sync::Mutex<Option<Informer<Service>>>,
}

impl LocalClient {
    pub fn new(api: Arc<Api>) -> Arc<Self> {
        Arc::new(LocalClient {
            api,
            services: tokio::sync::Mutex::new(None),
        })
    }
}

impl ClusterClient for LocalClient {
    async fn register_node(&self, node: Node) -> Result<(), ClientError> {
        let value = to_value(&node)?;
        let name = node.metadata.name.clone().unwrap_or_default();
        self.api
            .call(move |api| {
                let nodes = res("", "nodes");
                match api.create(nodes, None, value.clone(), &WriteOptions::default()) {
                    Ok(_) => Ok(()),
                    Err(ApiError::AlreadyExists { .. }) => {
                        // A node that comes back keeps what others set (unschedulable, extra
                        // labels) and refreshes what it reports itself.
                        let mut current = api.get(nodes, None, &name)?;
                        for (k, v) in value["metadata"]["labels"].as_object().into_iter().flatten() {
                            current["metadata"]["labels"][k] = v.clone();
                        }
                        current["spec"]["taints"] = value["spec"]["taints"].clone();
                        let updated = api.update(nodes, None, &name, current, false, &WriteOptions::default())?;
                        let mut status = updated.object;
                        status["status"] = value["status"].clone();
                        api.update(nodes, None, &name, status, true, &WriteOptions::default())?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(err)
    }

    async fn renew_lease(&self, lease: Lease) -> Result<(), ClientError> {
        let value = to_value(&lease)?;
        let name = lease.metadata.name.clone().unwrap_or_default();
        let ns = lease.metadata.namespace.clone().unwrap_or_default();
        self.api
            .call(move |api| {
                let leases = res("coordination.k8s.io", "leases");
                match api.get(leases, Some(&ns), &name) {
                    Ok(mut current) => {
                        current["spec"] = value["spec"].clone();
                        api.update(leases, Some(&ns), &name, current, false, &WriteOptions::default())?;
                    }
                    Err(ApiError::NotFound { .. }) => {
                        api.create(leases, Some(&ns), value, &WriteOptions::default())?;
                    }
                    Err(e) => return Err(e),
                }
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn watch_pods(&self, node: &str) -> Result<mpsc::Receiver<PodChange>, ClientError> {
        let (tx, rx) = mpsc::channel(256);
        let api = Arc::clone(&self.api);
        let selector = format!("spec.nodeName={node}");
        FieldSelector::parse("Pod", &selector).map_err(|e| ClientError(e.to_string()))?;
        tokio::spawn(async move {
            let pods = res("", "pods");
            let fields = || FieldSelector::parse("Pod", &selector).ok();
            // List, then watch from the list; relist whenever the watch ends.
            loop {
                let opts = ListOptions {
                    labels: None,
                    fields: fields(),
                };
                let Ok((items, rev)) = api.call(move |a| a.list_items(pods, None, &opts)).await else {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                };
                let snapshot = items.into_iter().filter_map(from_value).collect();
                if tx.send(PodChange::Snapshot(snapshot)).await.is_err() {
                    return;
                }
                let opts = WatchOptions {
                    list: ListOptions {
                        labels: None,
                        fields: fields(),
                    },
                    resource_version: Some(rev.to_string()),
                    ..Default::default()
                };
                let Ok(mut watch) = api.call(move |a| a.watch(pods, None, opts)).await else {
                    continue;
                };
                while let Some(event) = watch.next().await {
                    let Some(pod) = from_value::<Pod>(event.object) else {
                        continue;
                    };
                    let change = match event.kind {
                        "DELETED" => PodChange::Deleted(pod),
                        _ => PodChange::Applied(pod),
                    };
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn write_status(&self, pod: &Pod) -> Result<(), ClientError> {
        let status = to_value(&pod.status)?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone();
        self.api
            .call(move |api| {
                let pods = res("", "pods");
                for _ in 0..STATUS_RETRIES {
                    let written = api.modify(pods, Some(&ns), &name, true, |current| {
                        // Another pod of the same name is not ours to report on.
                        if current["metadata"]["uid"].as_str() != uid.as_deref() {
                            return Ok(None);
                        }
                        let mut next = current.clone();
                        next["status"] = status.clone();
                        Ok(Some(next))
                    });
                    match written {
                        Err(ApiError::Conflict { .. }) => continue,
                        other => return other.map(|_| ()),
                    }
                }
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn remove_pod(&self, pod: &Pod) -> Result<(), ClientError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: pod.metadata.uid.clone(),
            ..Default::default()
        };
        self.api
            .call(move |api| match api.delete(res("", "pods"), Some(&ns), &name, &opts) {
                Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            })
            .await
            .map_err(err)
    }

    async fn config_for(&self, pod: &Pod) -> Result<ConfigObjects, ClientError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let refs = References::of(pod);
        let services = match refs.services {
            true => self.services(&ns).await?,
            false => Vec::new(),
        };
        if refs.config_maps.is_empty() && refs.secrets.is_empty() {
            return Ok(ConfigObjects {
                services,
                ..ConfigObjects::default()
            });
        }
        self.api
            .call(move |api| {
                // A missing object is the pod's to report (or to skip, when optional).
                let named = |plural, names: &std::collections::BTreeSet<String>| -> Result<Vec<Value>, ApiError> {
                    let mut found = Vec::new();
                    for name in names {
                        match api.get(res("", plural), Some(&ns), name) {
                            Ok(object) => found.push(object),
                            Err(ApiError::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(found)
                };
                let maps = named("configmaps", &refs.config_maps)?;
                let secrets = named("secrets", &refs.secrets)?;
                Ok(ConfigObjects {
                    config_maps: maps.into_iter().filter_map(from_value::<ConfigMap>).collect(),
                    secrets: secrets.into_iter().filter_map(from_value::<Secret>).collect(),
                    services,
                })
            })
            .await
            .map_err(err)
    }
}

impl LocalClient {
    /// The Services of `ns` now, from the node's watch of them (the kubelet's service
    /// lister), so that starting a pod lists nothing.
    ///
    /// The watch is drained first, without waiting: every Service written before the pod was
    /// bound is in its channel by then, because the store publishes events in revision order
    /// and the pod came later, so the view is as complete as a list read at the pod's start.
    /// A watch that ended (it fell behind, or the store went away) is replaced, and the
    /// Services are listed that once.
    async fn services(&self, ns: &str) -> Result<Vec<Service>, ClientError> {
        let mut watch = self.services.lock().await;
        if watch.is_none() {
            *watch = Informer::<Service>::start(&self.api, res("", "services")).await.ok();
        }
        if let Some(informer) = watch.as_mut() {
            if drain(informer) && informer.synced() {
                return Ok(informer.in_namespace(ns).map(|s| (**s).clone()).collect());
            }
            *watch = None;
        }
        drop(watch);
        let ns = ns.to_owned();
        let listed = self
            .api
            .call(move |api| api.list_items(res("", "services"), Some(&ns), &ListOptions::default()))
            .await
            .map_err(err)?;
        Ok(listed.0.into_iter().filter_map(from_value::<Service>).collect())
    }
}

/// Applies every change the informer has waiting, without waiting for more. `false` when its
/// watch has ended.
fn drain(informer: &mut Informer<Service>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match std::pin::pin!(informer.next()).poll(&mut cx) {
            Poll::Ready(Some(_)) => continue,
            Poll::Ready(None) => return false,
            Poll::Pending => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn service(ns: &str, name: &str) -> Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"port": 80}]}})
    }

    fn pod(links: bool) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"enableServiceLinks": links, "containers": [{"name": "c", "image": "i"}]}}))
        .unwrap()
    }

    async fn names(client: &LocalClient, pod: &Pod) -> Vec<String> {
        let config = client.config_for(pod).await.unwrap();
        config
            .services
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn pods_see_the_services_of_their_namespace_written_before_they_start() {
        let api = Api::new(Arc::new(MemStore::new()));
        for ns in ["shop", "other"] {
            let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            api.create(res("", "namespaces"), None, namespace, &WriteOptions::default())
                .unwrap();
        }
        let services = res("", "services");
        let create = |ns, name| {
            api.create(services, Some(ns), service(ns, name), &WriteOptions::default())
                .unwrap()
        };
        create("shop", "a");
        create("other", "x");
        let client = LocalClient::new(Arc::clone(&api));
        assert_eq!(
            names(&client, &pod(true)).await,
            ["a"],
            "the first start lists through a new watch"
        );
        assert!(client.services.lock().await.is_some());
        // Later writes are drained from the watch at the next start, with no wait.
        create("shop", "b");
        assert_eq!(names(&client, &pod(true)).await, ["a", "b"]);
        api.delete(services, Some("shop"), "a", &DeleteOptions::default())
            .unwrap();
        assert_eq!(names(&client, &pod(true)).await, ["b"]);
        assert!(
            names(&client, &pod(false)).await.is_empty(),
            "enableServiceLinks: false"
        );
    }
}
