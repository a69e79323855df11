//! Pods of nodes in other processes: where each pod IP lives (a pure function of the Pods and
//! Nodes), and how traffic reaches such a pod — over real TCP (HTTP/1.1) to the endpoint its
//! node advertises (`InternalIP`, `daemonEndpoints.kubeletEndpoint.Port`, as the apiserver
//! finds a kubelet) (`node_endpoint.rs`):
//! - a request, which the endpoint delivers to the pod port the [`POD_TARGET_HEADER`] names;
//! - a guest's TCP connection, as an HTTP `CONNECT` to the pod's `IP:PORT` from the client
//!   pod's address ([`POD_SOURCE_HEADER`]); once the endpoint answers 200 the connection
//!   carries the bytes both ways, as through any HTTP proxy's tunnel.
//!
//! Pods of this process are not listed: the pod directory has them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use bytes::Bytes;
use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use capstan_runtime::container::{Response, plain};
use capstan_runtime::net::NetError;
use capstan_runtime::services::{BodyError, Duplex, ForwardError, Forwarded, Tunneled, WasiBody};
use http::HeaderValue;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::pool::{self, Pool};

/// The header that asks a node endpoint to deliver the request to a pod port, `IP:PORT`; the
/// endpoint removes it and passes everything else on unchanged.
pub const POD_TARGET_HEADER: &str = "capstan-pod-target";

/// The header of a `CONNECT` that names the connecting pod's address, `IP:PORT`: what the
/// guest that accepts the connection sees as its peer.
pub const POD_SOURCE_HEADER: &str = "capstan-pod-source";

/// The header a node endpoint sets on its 503 when the pod is not there or does not serve the
/// port: nothing of the request reached a guest, so the sender may try another endpoint.
pub const UNSERVED_HEADER: &str = "capstan-pod-unserved";

/// The endpoint a node advertises, if it advertises one with an address.
pub fn node_endpoint(node: &Node) -> Option<SocketAddr> {
    let status = node.status.as_ref()?;
    let port = status.daemon_endpoints.as_ref()?.kubelet_endpoint.as_ref()?.port;
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    let ip: IpAddr = status
        .addresses
        .iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The endpoints of the nodes that are not `local` (the nodes of this process), by node name.
pub fn node_endpoints<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    local: &HashSet<String>,
) -> HashMap<String, SocketAddr> {
    nodes
        .into_iter()
        .filter_map(|node| {
            let name = node.metadata.name.as_ref()?;
            if local.contains(name) {
                return None;
            }
            Some((name.clone(), node_endpoint(node)?))
        })
        .collect()
}

/// The pod IP of `pod` and the endpoint of its node, when the pod has an IP of its own on one
/// of `nodes` and has not ended (a pod that ended serves nothing, and its IP may be handed out
/// again). A host-network pod has its node's address, which is no pod IP to route.
pub fn place(pod: &Pod, nodes: &HashMap<String, SocketAddr>) -> Option<(String, SocketAddr)> {
    let spec = pod.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let node = nodes.get(spec.node_name.as_deref()?)?;
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    ip.parse::<IpAddr>().ok()?;
    Some((ip.to_owned(), *node))
}

/// Where each pod IP of a node in another process lives: pod IP → its node's endpoint.
/// `local` names the nodes of this process, whose pods are in the pod directory instead.
pub fn places<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    nodes: impl IntoIterator<Item = &'a Node>,
    local: &HashSet<String>,
) -> HashMap<String, SocketAddr> {
    let nodes = node_endpoints(nodes, local);
    if nodes.is_empty() {
        return HashMap::new();
    }
    pods.into_iter().filter_map(|pod| place(pod, &nodes)).collect()
}

/// The pods of nodes in other processes, and the connections to those nodes.
#[derive(Default)]
pub struct RemotePods {
    table: RwLock<HashMap<String, SocketAddr>>,
    /// The endpoints of the nodes in other processes, by node name.
    nodes: RwLock<HashMap<String, SocketAddr>>,
    pool: Pool,
}

/// How long a node has to answer a [`RemotePods::fetch`]: a node that is gone must not hold
/// up a round of polling.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl RemotePods {
    /// The endpoints of the nodes in other processes, by node name.
    pub fn nodes(&self) -> HashMap<String, SocketAddr> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the nodes (from [`node_endpoints`]).
    pub fn set_nodes(&self, nodes: HashMap<String, SocketAddr>) {
        *self.nodes.write().unwrap_or_else(|e| e.into_inner()) = nodes;
    }

    /// `GET path` of the node endpoint at `node`: its body when it answers 200.
    pub async fn fetch(&self, node: SocketAddr, path: &str) -> Result<Bytes, String> {
        let exchange = async {
            let request = hyper::Request::get(path).body(empty()).map_err(|e| e.to_string())?;
            let connection = self.pool.connection(node).await.map_err(|e| e.to_string())?;
            let response = connection.send(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
            if status != http::StatusCode::OK {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&body.to_bytes())));
            }
            Ok(body.to_bytes())
        };
        match tokio::time::timeout(FETCH_TIMEOUT, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())),
        }
    }

    /// The endpoint of the node running the pod at `ip`, if that node is in another process.
    pub fn node_of(&self, ip: &str) -> Option<SocketAddr> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).get(ip).copied()
    }

    /// Replaces the table (from [`places`]).
    pub fn replace(&self, table: HashMap<String, SocketAddr>) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
    }

    /// Sends `request` to port `port` of the pod at `ip` through `node`'s endpoint. The request
    /// comes back when nothing of it reached a guest: the node did not answer, or (for a
    /// request without a body, which can be sent again) the pod no longer serves the port
    /// there. Any other failure is answered with a 502.
    pub async fn forward<B>(
        &self,
        node: SocketAddr,
        ip: &str,
        port: u16,
        request: hyper::Request<B>,
    ) -> Result<Response, hyper::Request<B>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(target) = target_value(ip, port) else {
            return Err(request);
        };
        let Ok(connection) = self.pool.connection(node).await else {
            return Err(request);
        };
        let (parts, body) = request.into_parts();
        // A request without a body is sent as a copy of its head, so the original can go to
        // another endpoint if this one turns out not to serve.
        let (sent, kept) = if body.is_end_stream() {
            let mut copy = hyper::Request::new(empty());
            *copy.method_mut() = parts.method.clone();
            *copy.uri_mut() = parts.uri.clone();
            *copy.headers_mut() = parts.headers.clone();
            (copy, Some((parts, body)))
        } else {
            let body = body
                .map_err(|e| BodyError::InternalError(Some(e.into().to_string())))
                .boxed_unsync();
            (hyper::Request::from_parts(parts, body), None)
        };
        match connection.send(hop(sent, target)).await {
            Ok(response) if is_unserved(&response) => match kept {
                Some((parts, body)) => Err(hyper::Request::from_parts(parts, body)),
                None => Ok(boxed(response)),
            },
            Ok(response) => Ok(boxed(response)),
            Err(e) => Ok(plain(502, &format!("pod {ip}:{port}: {e}\n"))),
        }
    }

    /// [`RemotePods::forward`] for a guest's request ([`capstan_runtime::services::ServiceResolver::forward`]).
    pub fn forward_boxed(&self, ip: &str, port: u16, request: hyper::Request<WasiBody>) -> Forwarded {
        let (node, target) = (self.node_of(ip), target_value(ip, port));
        let (Some(node), Some(target)) = (node, target) else {
            let ip = ip.to_owned();
            return Box::pin(async move { Err(ForwardError::Unserved(format!("pod {ip} runs in no known node"))) });
        };
        let unserved = format!("the pod's node {node} does not serve it");
        exchange(self.pool.clone(), node, hop(request, target), unserved)
    }
}

/// Sends `request` to `addr` over a pooled connection. Nothing sent, or a 503 saying that
/// nothing reached a guest (`unserved` says why), is [`ForwardError::Unserved`]; an exchange
/// that broke is [`ForwardError::Broken`].
fn exchange(pool: Pool, addr: SocketAddr, request: hyper::Request<WasiBody>, unserved: String) -> Forwarded {
    Box::pin(async move {
        let connection = pool
            .connection(addr)
            .await
            .map_err(|e| ForwardError::Unserved(e.to_string()))?;
        let response = connection
            .send(request)
            .await
            .map_err(|e| ForwardError::Broken(e.to_string()))?;
        if is_unserved(&response) {
            return Err(ForwardError::Unserved(unserved));
        }
        Ok(boxed(response))
    })
}

impl RemotePods {
    /// Opens a TCP connection from `from` (a pod address of this process) to port `port` of
    /// the pod at `ip` on a node in another process: a `CONNECT` over a connection of its own
    /// (a tunnel holds it for its life, so it is never pooled). Refused when the node answers
    /// that nothing listens there; unreachable when the pod is on no known node or the node
    /// does not answer.
    pub fn tunnel(&self, ip: &str, port: u16, from: SocketAddr) -> Tunneled {
        let (node, target) = (self.node_of(ip), target_value(ip, port));
        Box::pin(async move {
            let (Some(node), Some(target)) = (node, target) else {
                return Err(NetError::Unreachable);
            };
            let unreachable = |e: &dyn std::fmt::Display| {
                tracing::debug!(%node, target = target.to_str().unwrap_or_default(), "tunnel: {e}");
                NetError::Unreachable
            };
            let stream = pool::connect(node).await.map_err(|e| unreachable(&e))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(&e))?;
            tokio::spawn(async move {
                let _ = connection.with_upgrades().await;
            });
            let request = connect_request(&target, from).map_err(|e| unreachable(&e))?;
            let response = sender.send_request(request).await.map_err(|e| unreachable(&e))?;
            if response.status() != http::StatusCode::OK {
                // The node answered: nothing listens there (or it would not connect).
                return Err(NetError::ConnectionRefused);
            }
            let upgraded = hyper::upgrade::on(response).await.map_err(|e| unreachable(&e))?;
            Ok(Box::new(TokioIo::new(upgraded)) as Box<dyn Duplex>)
        })
    }
}

impl RemotePods {
    /// Sends a guest's `request` to `path` (a `services/{name}:{port}/proxy/...` path) of the
    /// API server at `server`, whose activator holds it while the Service wakes. Nothing
    /// reaching a guest there (the server is gone, or the Service does not scale on demand
    /// and has no ready endpoint) is [`ForwardError::Unserved`].
    pub fn relay(&self, server: SocketAddr, path: &str, request: hyper::Request<WasiBody>) -> Forwarded {
        let (mut parts, body) = request.into_parts();
        match path.parse() {
            Ok(uri) => parts.uri = uri,
            Err(e) => {
                let message = format!("cannot relay to {path:?}: {e}");
                return Box::pin(async move { Err(ForwardError::Unserved(message)) });
            }
        }
        parts.version = http::Version::HTTP_11;
        let request = hyper::Request::from_parts(parts, body);
        let unserved = "the Service has no ready endpoint".to_owned();
        exchange(self.pool.clone(), server, request, unserved)
    }
}

/// The `CONNECT` a tunnel to `target` (`IP:PORT`) opens with, from the pod address `from`.
fn connect_request(target: &HeaderValue, from: SocketAddr) -> http::Result<hyper::Request<WasiBody>> {
    let authority = target.to_str().unwrap_or_default();
    hyper::Request::connect(authority)
        .header(http::header::HOST, target)
        .header(POD_SOURCE_HEADER, from.to_string())
        .body(empty())
}

/// `IP:PORT` as the header carries it; `None` for an IP that does not parse.
fn target_value(ip: &str, port: u16) -> Option<HeaderValue> {
    let ip: IpAddr = ip.parse().ok()?;
    HeaderValue::from_str(&SocketAddr::new(ip, port).to_string()).ok()
}

/// The request as it goes to the node: the target header added, over HTTP/1.1 (the hop's
/// protocol, whatever the client spoke).
fn hop(mut request: hyper::Request<WasiBody>, target: HeaderValue) -> hyper::Request<WasiBody> {
    request.headers_mut().insert(POD_TARGET_HEADER, target);
    *request.version_mut() = http::Version::HTTP_11;
    request
}

fn is_unserved(response: &hyper::Response<hyper::body::Incoming>) -> bool {
    response.status() == http::StatusCode::SERVICE_UNAVAILABLE && response.headers().contains_key(UNSERVED_HEADER)
}

fn boxed(response: hyper::Response<hyper::body::Incoming>) -> Response {
    response.map(|b| b.map_err(BodyError::from).boxed_unsync())
}

fn empty() -> WasiBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, ip: Option<&str>, port: Option<i32>) -> Node {
        let mut status = json!({});
        if let Some(ip) = ip {
            status["addresses"] = json!([{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]);
        }
        if let Some(port) = port {
            status["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": port}});
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    fn pod(name: &str, node: Option<&str>, ip: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [], "nodeName": node},
            "status": {"phase": phase, "podIP": ip},
        }))
        .unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nodes_of_other_processes_are_found_at_their_advertised_endpoint() {
        let local = HashSet::from(["here".to_owned()]);
        let cases = [
            (
                node("far", Some("192.0.2.5"), Some(10250)),
                Some(addr("192.0.2.5:10250")),
            ),
            (node("here", Some("127.0.0.1"), Some(4000)), None),
            (node("no-port", Some("192.0.2.6"), None), None),
            (node("no-address", None, Some(10250)), None),
            (node("port-zero", Some("192.0.2.7"), Some(0)), None),
            (node("port-too-big", Some("192.0.2.7"), Some(70000)), None),
            (node("bad-ip", Some("not-an-ip"), Some(10250)), None),
            (
                node("v6", Some("2001:db8::1"), Some(10250)),
                Some(addr("[2001:db8::1]:10250")),
            ),
        ];
        for (n, want) in cases {
            let name = n.metadata.name.clone().unwrap();
            let found = node_endpoints([&n], &local);
            assert_eq!(found.get(&name).copied(), want, "{name}");
        }
    }

    #[test]
    fn pod_ips_map_to_their_nodes_endpoint_except_this_processs_pods() {
        let nodes = [
            node("far-1", Some("192.0.2.5"), Some(10250)),
            node("far-2", Some("192.0.2.6"), Some(10251)),
            node("here", Some("127.0.0.1"), Some(4000)),
        ];
        let local = HashSet::from(["here".to_owned()]);
        let mut host_network = pod("host", Some("far-1"), Some("192.0.2.5"), "Running");
        host_network.spec.as_mut().unwrap().host_network = Some(true);
        let cases: Vec<(Pod, Option<SocketAddr>)> = vec![
            (
                pod("a", Some("far-1"), Some("10.100.0.2"), "Running"),
                Some(addr("192.0.2.5:10250")),
            ),
            (
                pod("b", Some("far-2"), Some("10.101.0.2"), "Pending"),
                Some(addr("192.0.2.6:10251")),
            ),
            (pod("local", Some("here"), Some("10.88.0.2"), "Running"), None),
            (pod("unbound", None, None, "Pending"), None),
            (pod("no-ip-yet", Some("far-1"), None, "Pending"), None),
            (pod("empty-ip", Some("far-1"), Some(""), "Pending"), None),
            (pod("done", Some("far-1"), Some("10.100.0.9"), "Succeeded"), None),
            (pod("failed", Some("far-1"), Some("10.100.0.10"), "Failed"), None),
            (pod("unknown-node", Some("gone"), Some("10.102.0.2"), "Running"), None),
            (host_network, None),
        ];
        for (p, want) in &cases {
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
            let table = places([p], &nodes, &local);
            assert_eq!(table.get(&ip).copied(), *want, "{:?}", p.metadata.name);
            assert!(table.len() <= 1);
        }
        let all = places(cases.iter().map(|(p, _)| p), &nodes, &local);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(places(cases.iter().map(|(p, _)| p), &nodes[2..], &local).is_empty());
    }

    #[test]
    fn the_target_header_names_the_pod_port() {
        assert_eq!(target_value("10.100.0.2", 8080).unwrap(), "10.100.0.2:8080");
        assert_eq!(target_value("fd00::2", 80).unwrap(), "[fd00::2]:80");
        assert!(target_value("web", 80).is_none());
        let request = hyper::Request::get("http://web/x").body(empty()).unwrap();
        let sent = hop(request, target_value("10.100.0.2", 8080).unwrap());
        assert_eq!(sent.headers()[POD_TARGET_HEADER], "10.100.0.2:8080");
        assert_eq!(sent.uri(), "http://web/x");
    }

    /// A node endpoint that takes every `CONNECT` and echoes, after the source header, what
    /// the tunnel carries until its EOF.
    async fn echoing_node() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                capstan_runtime::container::serve_connection(io, |mut req| {
                    Box::pin(async move {
                        assert_eq!(req.method(), http::Method::CONNECT);
                        let target = req.uri().to_string();
                        let source = req.headers()[POD_SOURCE_HEADER].to_str().unwrap().to_owned();
                        let upgrade = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let mut io = TokioIo::new(upgrade.await.unwrap());
                            let mut got = Vec::new();
                            io.read_to_end(&mut got).await.unwrap();
                            let reply = format!("{source} to {target}: {}", String::from_utf8_lossy(&got));
                            io.write_all(reply.as_bytes()).await.unwrap();
                            io.shutdown().await.unwrap();
                        });
                        hyper::Response::new(empty())
                    })
                });
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_tunnel_carries_bytes_both_ways_and_names_the_connecting_pod() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (node, task) = echoing_node().await;
        let remote = RemotePods::default();
        remote.replace(HashMap::from([("10.100.0.2".to_owned(), node)]));
        let from = addr("10.88.0.2:50000");
        let mut tunnel = remote.tunnel("10.100.0.2", 7000, from).await.ok().unwrap();
        tunnel.write_all(b"hello").await.unwrap();
        tunnel.shutdown().await.unwrap();
        let mut back = String::new();
        tunnel.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "10.88.0.2:50000 to 10.100.0.2:7000: hello");
        task.abort();
    }
}
