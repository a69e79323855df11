//! The endpoint of a node, as the kubelet's: what other processes of the cluster ask a node
//! for. The API server forwards `pods/{name}/log` and `nodes/{name}/proxy/metrics` here for
//! nodes it does not host itself, and the proxies of other processes send pod traffic here
//! (a Service's endpoint, a guest's request to a pod IP) for the pods this process runs.
//!
//! - any request with `capstan-pod-target: IP:PORT` ([`POD_TARGET_HEADER`]): delivered to that
//!   port of the pod, without the header and otherwise unchanged, its body streamed; a 503
//!   marked [`UNSERVED_HEADER`] when the pod is not here or nothing serves the port.
//! - `CONNECT IP:PORT` with `capstan-pod-source: IP:PORT` ([`POD_SOURCE_HEADER`]): a guest's
//!   TCP connection from a pod of another process to that port of the pod, which its listener
//!   accepts from the source address; answered 200 and then carried both ways, or a 503
//!   marked [`UNSERVED_HEADER`] when nothing listens there.
//! - `GET /containerLogs/{namespace}/{pod}/{container}?uid=&follow=&tailLines=&limitBytes=&previous=`
//! - `GET /metrics`: the node's metrics ([`NodeMetrics`]).
//! - `GET /stats`: its pods' usage and its guests' Service traffic, for the control plane's
//!   pod metrics and activator ([`crate::node_stats`]).
//!
//! `capstan up` serves one endpoint for all the nodes of its process, for pod traffic only:
//! the API server reads the logs and metrics of its own nodes directly.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use capstan_runtime::container::{Response, plain, serve_connection};
use capstan_runtime::directory::PodDirectory;
use http::{StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use serde_json::json;
use tokio::net::TcpListener;

use crate::api::logs::{FileLogs, LogOptions, NodeLogs};
use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, NodeMetrics};
use crate::node_stats::StatsSource;
use crate::proxy::remote::{POD_SOURCE_HEADER, POD_TARGET_HEADER, UNSERVED_HEADER};

/// What a node endpoint serves.
pub struct NodeEndpoint {
    /// The pods of this process, by IP: where pod traffic goes.
    pub pods: Arc<PodDirectory>,
    /// The node's container logs (`None`: the API server reads them in its own process).
    pub logs: Option<Arc<FileLogs>>,
    /// The node's metrics (`None`: as for logs).
    pub metrics: Option<Arc<NodeMetrics>>,
    /// The node's stats (`None`: as for logs).
    pub stats: Option<Arc<StatsSource>>,
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, endpoint: Arc<NodeEndpoint>) {
    loop {
        let Ok((io, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = io.set_nodelay(true);
        let endpoint = Arc::clone(&endpoint);
        serve_connection(io, move |req| {
            let endpoint = Arc::clone(&endpoint);
            Box::pin(async move { endpoint.handle(req).await })
        });
    }
}

impl NodeEndpoint {
    async fn handle(&self, mut req: http::Request<Incoming>) -> Response {
        if req.method() == http::Method::CONNECT {
            return self.tunnel(req);
        }
        if let Some(target) = req.headers_mut().remove(POD_TARGET_HEADER) {
            let parsed = target.to_str().ok().and_then(|t| t.parse::<SocketAddr>().ok());
            return match parsed {
                Some(target) => self.to_pod(target, req).await,
                None => plain(400, &format!("{POD_TARGET_HEADER}: {target:?} is not IP:PORT\n")),
            };
        }
        let parts: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
        match (parts.as_slice(), &self.metrics, &self.logs) {
            (["metrics"], Some(metrics), _) => {
                let mut resp = text(StatusCode::OK, metrics.encode());
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                resp
            }
            (["containerLogs", ns, pod, container], _, Some(logs)) => container_log(logs, &req, ns, pod, container),
            (["stats"], _, _) if self.stats.is_some() => {
                let stats = self.stats.as_ref().map(|s| s.stats()).unwrap_or_default();
                match serde_json::to_vec(&stats) {
                    Ok(json) => {
                        let mut resp = text(StatusCode::OK, String::new());
                        *resp.body_mut() = Full::new(Bytes::from(json))
                            .map_err(|never| match never {})
                            .boxed_unsync();
                        resp.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static("application/json"),
                        );
                        resp
                    }
                    Err(e) => plain(500, &format!("encoding the stats: {e}\n")),
                }
            }
            _ => plain(404, "not found\n"),
        }
    }

    /// Delivers a request to a pod port of this process, as the service proxy does in memory:
    /// the HTTP component serving the port, else a guest's socket listener.
    async fn to_pod(&self, target: SocketAddr, req: http::Request<Incoming>) -> Response {
        let ip = target.ip().to_string();
        let Some(network) = self.pods.get(&ip) else {
            return unserved(&format!("pod {ip} does not run here\n"));
        };
        if let Some(server) = network.route(target.port()) {
            return server.handle(req).await;
        }
        if !network.net().is_listening(target.port()) {
            return unserved(&format!("nothing serves port {} of pod {ip}\n", target.port()));
        }
        match network.http(target.port(), req).await {
            Ok(resp) => resp,
            Err(e) => plain(502, &format!("pod {target}: {e}\n")),
        }
    }
}

impl NodeEndpoint {
    /// Takes a tunnelled TCP connection to a pod of this process (see the module doc).
    fn tunnel(&self, mut req: http::Request<Incoming>) -> Response {
        let target = req
            .uri()
            .authority()
            .and_then(|a| a.as_str().parse::<SocketAddr>().ok());
        let Some(target) = target else {
            return plain(400, &format!("CONNECT {}: the target is not IP:PORT\n", req.uri()));
        };
        let source = req.headers().get(POD_SOURCE_HEADER);
        let Some(source) = source.and_then(|s| s.to_str().ok()?.parse::<SocketAddr>().ok()) else {
            return plain(400, &format!("CONNECT {target}: {POD_SOURCE_HEADER} must be IP:PORT\n"));
        };
        let ip = target.ip().to_string();
        let Some(network) = self.pods.get(&ip) else {
            return unserved(&format!("pod {ip} does not run here\n"));
        };
        let mut stream = match network.net().accept_from(source, target.port()) {
            Ok(stream) => stream,
            Err(e) => return unserved(&format!("pod {target}: {e}\n")),
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            // The guest has the connection already; if the upgrade fails, dropping the
            // stream closes it, as a reset would.
            if let Ok(upgraded) = upgrade.await {
                let mut tunnel = hyper_util::rt::TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut tunnel).await;
            }
        });
        // No body and no length: the bytes after this head are the tunnel's.
        hyper::Response::new(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
}

/// A 503 saying that nothing of the request reached a guest.
fn unserved(message: &str) -> Response {
    let mut resp = plain(503, message);
    resp.headers_mut()
        .insert(UNSERVED_HEADER, header::HeaderValue::from_static("true"));
    resp
}

fn text(code: StatusCode, message: String) -> Response {
    let mut resp = plain(code.as_u16(), "");
    *resp.body_mut() = Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync();
    resp
}

fn container_log(logs: &FileLogs, req: &http::Request<Incoming>, ns: &str, pod: &str, container: &str) -> Response {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let opts = match LogOptions::from_query(&query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let pod_value = json!({"metadata": {"namespace": ns, "name": pod, "uid": query.get("uid")}});
    match logs.open(&pod_value, container, &opts) {
        Ok(rx) => {
            let mut resp = plain(200, "");
            *resp.body_mut() = body_of(rx).map_err(|never| match never {}).boxed_unsync();
            resp
        }
        Err(e) => text(
            StatusCode::from_u16(e.code()).unwrap_or(StatusCode::BAD_REQUEST),
            e.to_string(),
        ),
    }
}

/// The receiver as a body stream of data frames.
fn body_of(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static {
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(8);
    let mut rx = rx;
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if sender.send(Frame::data(chunk)).await.is_err() {
                break;
            }
        }
    });
    body
}

#[cfg(test)]
mod tests {
    use http_body_util::{Empty, Full};

    use super::*;
    use crate::proxy::remote::RemotePods;

    /// A node endpoint with no pods, and where it listens.
    async fn empty_node() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = Arc::new(NodeEndpoint {
            pods: Arc::default(),
            logs: None,
            metrics: None,
            stats: None,
        });
        (addr, tokio::spawn(serve(listener, endpoint)))
    }

    /// Sends `request` to the endpoint at `node` over a connection of its own.
    async fn send(node: SocketAddr, request: hyper::Request<Empty<Bytes>>) -> hyper::Response<Incoming> {
        let stream = tokio::net::TcpStream::connect(node).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    }

    async fn text(response: Response) -> (u16, String) {
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_request_for_a_pod_not_here_comes_back_to_the_sender_when_it_can_go_again() {
        let (node, task) = empty_node().await;
        let remote = RemotePods::default();
        let get = hyper::Request::get("/").body(Empty::<Bytes>::new()).unwrap();
        let back = remote.forward(node, "10.100.0.2", 8080, get).await;
        assert!(back.is_err(), "a GET that reached no guest can go to another endpoint");
        // A request with a body has been sent: the node's answer is the answer.
        let post = hyper::Request::post("/").body(Full::new(Bytes::from("7"))).unwrap();
        let answered = remote.forward(node, "10.100.0.2", 8080, post).await;
        let (status, body) = text(answered.ok().unwrap()).await;
        assert_eq!(status, 503);
        assert!(body.contains("pod 10.100.0.2 does not run here"), "{body}");
        // A node that does not answer (a fresh pool: the kept connection still has its
        // server task): the request comes back, body and all.
        task.abort();
        let _ = task.await;
        let post = hyper::Request::post("/").body(Full::new(Bytes::from("7"))).unwrap();
        let back = RemotePods::default().forward(node, "10.100.0.2", 8080, post).await;
        assert!(back.is_err());
    }

    #[tokio::test]
    async fn bad_targets_and_unknown_paths_are_refused() {
        let (node, task) = empty_node().await;
        let cases = [
            (Some("not-an-address"), "/", 400),
            (Some("10.100.0.2"), "/", 400),
            (None, "/metrics", 404),
            (None, "/containerLogs/default/p/c", 404),
            (None, "/elsewhere", 404),
        ];
        for (target, path, want) in cases {
            let mut request = hyper::Request::get(path)
                .header(http::header::HOST, node.to_string())
                .body(Empty::<Bytes>::new())
                .unwrap();
            if let Some(t) = target {
                request
                    .headers_mut()
                    .insert(POD_TARGET_HEADER, http::HeaderValue::from_static(t));
            }
            let response = send(node, request).await;
            assert_eq!(response.status().as_u16(), want, "{target:?} {path}");
        }
        task.abort();
    }

    #[tokio::test]
    async fn a_tunnel_to_a_pod_not_here_is_refused_and_one_to_a_node_that_is_gone_unreachable() {
        use capstan_runtime::net::NetError;
        let (node, task) = empty_node().await;
        let remote = RemotePods::default();
        remote.replace(HashMap::from([("10.100.0.2".to_owned(), node)]));
        let from: SocketAddr = "10.88.0.2:50000".parse().unwrap();
        let refused = remote.tunnel("10.100.0.2", 7000, from).await.err();
        assert_eq!(
            refused,
            Some(NetError::ConnectionRefused),
            "the node answered: nothing listens"
        );
        let unknown = remote.tunnel("10.100.0.3", 7000, from).await.err();
        assert_eq!(unknown, Some(NetError::Unreachable), "no node runs that IP");
        task.abort();
        let _ = task.await;
        let gone = remote.tunnel("10.100.0.2", 7000, from).await.err();
        assert_eq!(gone, Some(NetError::Unreachable), "the node does not answer");
    }

    #[tokio::test]
    async fn a_connect_without_a_source_or_a_target_address_is_a_bad_request() {
        let (node, task) = empty_node().await;
        let cases = [
            ("10.100.0.2:7000", None),
            ("10.100.0.2:7000", Some("somewhere")),
            ("web:7000", Some("10.88.0.2:50000")),
        ];
        for (target, source) in cases {
            let mut request = hyper::Request::connect(target)
                .header(http::header::HOST, target)
                .body(Empty::<Bytes>::new())
                .unwrap();
            if let Some(s) = source {
                request
                    .headers_mut()
                    .insert(POD_SOURCE_HEADER, http::HeaderValue::from_static(s));
            }
            let response = send(node, request).await;
            assert_eq!(response.status().as_u16(), 400, "{target} from {source:?}");
        }
        task.abort();
    }
}
