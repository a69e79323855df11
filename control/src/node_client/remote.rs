//! The node agent's client of an API server in another process, over HTTP: what a kubelet
//! does with client-go, for the verbs the agent needs.

use std::time::Duration;

use capstan_core::env::{ConfigObjects, References};
use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use capstan_runtime::agent::{ClientError, ClusterClient, PodChange};
use http::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::{Client, ClientError as HttpError};

/// How long to wait before listing again after a watch could not start.
const RELIST_DELAY: Duration = Duration::from_secs(1);

/// How many status writes are retried when the pod changed in between.
const STATUS_RETRIES: usize = 5;

const JSON: &str = "application/json";

fn err(e: HttpError) -> ClientError {
    ClientError(e.to_string())
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ClientError> {
    serde_json::to_value(v).map_err(|e| ClientError(e.to_string()))
}

fn items<T: DeserializeOwned>(list: &Value) -> Vec<T> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| serde_json::from_value(i.clone()).ok())
        .collect()
}

fn decoded<T: DeserializeOwned>(objects: Vec<Value>) -> Vec<T> {
    objects
        .into_iter()
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect()
}

/// A node's client of a remote API server.
pub struct RemoteClient {
    client: Client,
}

impl RemoteClient {
    pub fn new(client: Client) -> std::sync::Arc<Self> {
        std::sync::Arc::new(RemoteClient { client })
    }
}

fn pod_path(pod: &Pod) -> String {
    format!(
        "/api/v1/namespaces/{}/pods/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

impl ClusterClient for RemoteClient {
    async fn register_node(&self, node: Node) -> Result<(), ClientError> {
        let value = to_value(&node)?;
        let name = node.metadata.name.clone().unwrap_or_default();
        let path = format!("/api/v1/nodes/{name}");
        match self
            .client
            .request(Method::POST, "/api/v1/nodes", JSON, Some(&value))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(409) => {
                let mut current = self.client.get(&path).await.map_err(err)?;
                for (k, v) in value["metadata"]["labels"].as_object().into_iter().flatten() {
                    current["metadata"]["labels"][k] = v.clone();
                }
                current["spec"]["taints"] = value["spec"]["taints"].clone();
                let mut updated = self
                    .client
                    .request(Method::PUT, &path, JSON, Some(&current))
                    .await
                    .map_err(err)?;
                updated["status"] = value["status"].clone();
                self.client
                    .request(Method::PUT, &format!("{path}/status"), JSON, Some(&updated))
                    .await
                    .map_err(err)?;
                Ok(())
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn renew_lease(&self, lease: Lease) -> Result<(), ClientError> {
        let value = to_value(&lease)?;
        let ns = lease.metadata.namespace.clone().unwrap_or_default();
        let name = lease.metadata.name.clone().unwrap_or_default();
        let collection = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
        let path = format!("{collection}/{name}");
        match self.client.get(&path).await {
            Ok(mut current) => {
                current["spec"] = value["spec"].clone();
                self.client
                    .request(Method::PUT, &path, JSON, Some(&current))
                    .await
                    .map_err(err)?;
            }
            Err(e) if e.is_not_found() => {
                self.client
                    .request(Method::POST, &collection, JSON, Some(&value))
                    .await
                    .map_err(err)?;
            }
            Err(e) => return Err(err(e)),
        }
        Ok(())
    }

    async fn watch_pods(&self, node: &str) -> Result<mpsc::Receiver<PodChange>, ClientError> {
        let (tx, rx) = mpsc::channel(256);
        let client = self.client.clone();
        let selector = format!("spec.nodeName%3D{node}");
        tokio::spawn(async move {
            loop {
                let list = match client.get(&format!("/api/v1/pods?fieldSelector={selector}")).await {
                    Ok(list) => list,
                    Err(_) => {
                        tokio::time::sleep(RELIST_DELAY).await;
                        continue;
                    }
                };
                let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_owned();
                if tx.send(PodChange::Snapshot(items(&list))).await.is_err() {
                    return;
                }
                let path = format!("/api/v1/pods?watch=true&fieldSelector={selector}&resourceVersion={rv}");
                let Ok(mut events) = client.watch(&path).await else {
                    tokio::time::sleep(RELIST_DELAY).await;
                    continue;
                };
                while let Some(event) = events.recv().await {
                    let Ok(pod) = serde_json::from_value::<Pod>(event["object"].clone()) else {
                        continue;
                    };
                    let change = match event["type"].as_str() {
                        Some("DELETED") => PodChange::Deleted(pod),
                        Some("ADDED" | "MODIFIED") => PodChange::Applied(pod),
                        // An ERROR (410) or anything else: list again.
                        _ => break,
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
        let path = pod_path(pod);
        for _ in 0..STATUS_RETRIES {
            let mut current = match self.client.get(&path).await {
                Ok(current) => current,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(err(e)),
            };
            if current["metadata"]["uid"].as_str() != pod.metadata.uid.as_deref() {
                return Ok(());
            }
            current["status"] = status.clone();
            match self
                .client
                .request(Method::PUT, &format!("{path}/status"), JSON, Some(&current))
                .await
            {
                Err(e) if e.code() == Some(409) => continue,
                Err(e) if e.is_not_found() => return Ok(()),
                other => return other.map(|_| ()).map_err(err),
            }
        }
        Ok(())
    }

    async fn remove_pod(&self, pod: &Pod) -> Result<(), ClientError> {
        let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
            "preconditions": {"uid": pod.metadata.uid}});
        match self
            .client
            .request(Method::DELETE, &pod_path(pod), JSON, Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn config_for(&self, pod: &Pod) -> Result<ConfigObjects, ClientError> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let refs = References::of(pod);
        // A missing object is the pod's to report (or to skip, when optional).
        let named =
            async |plural: &str, names: &std::collections::BTreeSet<String>| -> Result<Vec<Value>, ClientError> {
                let mut found = Vec::new();
                for name in names {
                    match self
                        .client
                        .get(&format!("/api/v1/namespaces/{ns}/{plural}/{name}"))
                        .await
                    {
                        Ok(object) => found.push(object),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(err(e)),
                    }
                }
                Ok(found)
            };
        let config_maps = decoded(named("configmaps", &refs.config_maps).await?);
        let secrets = decoded(named("secrets", &refs.secrets).await?);
        let services = if refs.services {
            let list = self
                .client
                .get(&format!("/api/v1/namespaces/{ns}/services"))
                .await
                .map_err(err)?;
            items(&list)
        } else {
            Vec::new()
        };
        Ok(ConfigObjects {
            config_maps,
            secrets,
            services,
        })
    }
}
