//! `nodes/{name}/proxy/metrics`: the apiserver passes a request to the node, as it does to the
//! kubelet, and answers with what the node answers. A node in this process registers its
//! [`NodeMetrics`]; a node in another process (`capstan node`) is asked at the endpoint its
//! Node object advertises, where `node_endpoint.rs` serves `/metrics`. A node of the API
//! server's own process advertises an endpoint too (for pod traffic from other processes);
//! its registered metrics are found first, so it is never asked over HTTP.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;

use super::error::ApiError;
use super::registry::Api;
use crate::metrics::NodeMetrics;

/// How long a remote node has to answer a proxied request: a scrape must not hang on a node
/// that is gone (Prometheus itself gives up after 10 s by default).
const NODE_PROXY_TIMEOUT: Duration = Duration::from_secs(10);

/// The paths under `nodes/{name}/proxy/` that are passed on; the node serves nothing else.
pub const PROXIED_PATHS: &[&str] = &["metrics"];

impl Api {
    /// Registers the metrics of a node this process runs.
    pub fn register_node_metrics(&self, node: &str, metrics: Arc<NodeMetrics>) {
        self.metrics().register_node(node, metrics);
    }

    /// The node's metrics, as `GET /api/v1/nodes/{node}/proxy/metrics` answers them: from
    /// the node's registry if this process runs it, else from the node's endpoint.
    pub async fn node_metrics(self: &Arc<Self>, node: &str) -> Result<String, ApiError> {
        if let Some(local) = self.metrics().node(node) {
            return Ok(local.encode());
        }
        let node = node.to_owned();
        let base = self.call(move |a| a.node_endpoint(&node)).await?;
        let client = crate::client::Client::new(&base).map_err(|e| ApiError::Internal(e.to_string()))?;
        let fetched = client.request_raw(Method::GET, "/metrics", "text/plain", "text/plain", Bytes::new());
        match tokio::time::timeout(NODE_PROXY_TIMEOUT, fetched).await {
            Ok(Ok(serde_json::Value::String(text))) => Ok(text),
            Ok(Ok(other)) => Ok(other.to_string()),
            Ok(Err(e)) => Err(ApiError::Internal(format!(
                "error trying to reach the node at {base}: {e}"
            ))),
            Err(_) => Err(ApiError::Timeout(format!(
                "the node at {base} did not answer within {}s",
                NODE_PROXY_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The base URL of a node in another process: the `InternalIP` and
    /// `daemonEndpoints.kubeletEndpoint.Port` its Node object advertises, where the apiserver
    /// reaches the kubelet.
    pub(super) fn node_endpoint(&self, node: &str) -> Result<String, ApiError> {
        let nodes = super::resources::find("", "v1", "nodes").expect("nodes are served");
        let node_obj = self.get(nodes, None, node)?;
        let ip = node_obj["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str());
        let port = node_obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_i64();
        let (Some(ip), Some(port)) = (ip, port) else {
            return Err(ApiError::Internal(format!("node {node:?} advertises no endpoint")));
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        Ok(format!("http://{host}:{port}"))
    }
}
