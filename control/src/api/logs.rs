//! `pods/{name}/log`: the apiserver asks the pod's node for the container's log, as it asks
//! the kubelet. Nodes register a [`NodeLogs`] source under their name; a node in the same
//! process reads the log files its runtime writes ([`FileLogs`]).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::registry::Api;

/// How often a followed log is checked for new output. Logs are for people; a fifth of a
/// second is immediate to them and costs nothing.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The query options of a log request.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    pub previous: bool,
}

impl LogOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let number = |name: &str| -> Result<Option<usize>, ApiError> {
            q.get(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| ApiError::BadRequest(format!("{name} must be a non-negative integer, got {v:?}")))
                })
                .transpose()
        };
        Ok(LogOptions {
            container: q.get("container").cloned().filter(|c| !c.is_empty()),
            follow: matches!(q.get("follow").map(String::as_str), Some("true" | "1")),
            tail_lines: number("tailLines")?,
            limit_bytes: number("limitBytes")?,
            previous: matches!(q.get("previous").map(String::as_str), Some("true" | "1")),
        })
    }
}

/// Where a node's container logs come from.
pub trait NodeLogs: Send + Sync {
    /// Streams one container's log; the receiver ends when the log does (or, following, when
    /// the request is dropped).
    fn open(&self, pod: &Value, container: &str, opts: &LogOptions) -> Result<mpsc::Receiver<Bytes>, ApiError>;
}

impl Api {
    /// Registers the log source of a node.
    pub fn register_node_logs(&self, node: &str, source: Arc<dyn NodeLogs>) {
        self.node_logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_owned(), source);
    }

    /// A pod's container log, from the node that runs it; `None` for a pod no node runs yet,
    /// which has no log to stream (kube-apiserver's `LogLocation` has no location for it and
    /// the request is answered 204 No Content). The container is checked either way.
    pub fn logs(&self, pod: &Value, opts: LogOptions) -> Result<Option<mpsc::Receiver<Bytes>>, ApiError> {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let containers: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(pod["spec"]["initContainers"].as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match (&opts.container, containers.as_slice()) {
            (Some(c), _) if containers.contains(&c.as_str()) => c.clone(),
            (Some(c), _) => {
                return Err(ApiError::BadRequest(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            (None, [one]) => (*one).to_owned(),
            (None, _) => {
                let app: Vec<&str> = pod["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str())
                    .collect();
                if let [one] = app.as_slice() {
                    (*one).to_owned()
                } else {
                    return Err(ApiError::BadRequest(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        app.join(" ")
                    )));
                }
            }
        };
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        if node.is_empty() {
            return Ok(None);
        }
        let local = self
            .node_logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .cloned();
        match local {
            Some(source) => source.open(pod, &container, &opts).map(Some),
            None => self.remote_logs(node, pod, &container, &opts).map(Some),
        }
    }

    /// Forwards a log request to a node in another process, at the endpoint its Node object
    /// advertises (`InternalIP`, `daemonEndpoints.kubeletEndpoint.port`; `node_proxy.rs`), as
    /// the apiserver asks the kubelet.
    fn remote_logs(
        &self,
        node: &str,
        pod: &Value,
        container: &str,
        opts: &LogOptions,
    ) -> Result<mpsc::Receiver<Bytes>, ApiError> {
        let base = self.node_endpoint(node)?;
        let meta = &pod["metadata"];
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("uid", meta["uid"].as_str().unwrap_or_default());
        if opts.follow {
            query.append_pair("follow", "true");
        }
        if opts.previous {
            query.append_pair("previous", "true");
        }
        if let Some(n) = opts.tail_lines {
            query.append_pair("tailLines", &n.to_string());
        }
        if let Some(n) = opts.limit_bytes {
            query.append_pair("limitBytes", &n.to_string());
        }
        let path = format!(
            "/containerLogs/{}/{}/{container}?{}",
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            query.finish()
        );
        let client = crate::client::Client::new(&base).map_err(|e| ApiError::Internal(e.to_string()))?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            match client.stream(&path).await {
                Ok(mut chunks) => {
                    while let Some(chunk) = chunks.recv().await {
                        if tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx
                        .send(Bytes::from(format!("error reading the log from the node: {e}\n")))
                        .await;
                }
            }
        });
        Ok(rx)
    }
}

/// The logs a node's runtime writes under its data directory.
pub struct FileLogs {
    pub data_dir: PathBuf,
}

impl NodeLogs for FileLogs {
    fn open(&self, pod: &Value, container: &str, opts: &LogOptions) -> Result<mpsc::Receiver<Bytes>, ApiError> {
        let meta = &pod["metadata"];
        let dir = capstan_runtime::runtime::pod_dir(
            &self.data_dir,
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            meta["uid"].as_str().unwrap_or_default(),
        );
        let path = dir.join("containers").join(container).join("current.log");
        let mut file = std::fs::File::open(&path).map_err(|_| {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
                meta["name"].as_str().unwrap_or_default()
            ))
        })?;
        let mut text = Vec::new();
        if !opts.previous
            && let Ok(old) = std::fs::read(capstan_runtime::logs::rotated_path(&path))
        {
            text = old;
        }
        file.read_to_end(&mut text)
            .map_err(|e| ApiError::Internal(format!("reading {}: {e}", path.display())))?;
        let mut pos = file.stream_position().unwrap_or(0);
        if let Some(n) = opts.tail_lines {
            text = tail(&text, n).to_vec();
        }
        if let Some(limit) = opts.limit_bytes {
            text.truncate(limit);
        }
        let (tx, rx) = mpsc::channel(16);
        let follow = opts.follow;
        tokio::spawn(async move {
            if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
                return;
            }
            while follow && !tx.is_closed() {
                tokio::time::sleep(FOLLOW_POLL).await;
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len < pos {
                    // Rotated: continue from the start of the new file.
                    match std::fs::File::open(&path) {
                        Ok(f) => file = f,
                        Err(_) => break,
                    }
                    pos = 0;
                }
                if len > pos {
                    let mut chunk = Vec::new();
                    if file.seek(SeekFrom::Start(pos)).is_err() || file.read_to_end(&mut chunk).is_err() {
                        break;
                    }
                    pos += chunk.len() as u64;
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// The last `n` lines of `text`.
fn tail(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc\n", 5), b"a\nb\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\n", 0), b"");
    }
}
