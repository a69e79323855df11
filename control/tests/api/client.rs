//! The harness of the API tests: an in-process API server over a [`MemStore`] on a loopback
//! port, and a minimal HTTP/1 client (one connection per request) that returns status, headers
//! and body, or reads a watch response event by event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capstan_control::api::Api;
use capstan_control::store::{MemStore, Store};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How long a test waits for anything the server should do promptly (an event, a response).
/// Generous, because the machine is shared; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(10);

pub const JSON: &str = "application/json";
pub const MERGE: &str = "application/merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
}

/// A bootstrapped server over a fresh in-memory store.
pub async fn server() -> Server {
    server_over(MemStore::new()).await
}

/// A bootstrapped server over `store` (e.g. one with a short watch history).
pub async fn server_over(store: MemStore) -> Server {
    let store: Arc<dyn Store> = Arc::new(store);
    let api = Api::new(store);
    api.bootstrap().expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(capstan_control::api::server::serve(listener, api));
    Server { addr }
}

/// A whole response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// The body as JSON; panics with the body text if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Asserts the status code, showing the body when it differs; returns the JSON body.
    #[track_caller]
    pub fn expect(&self, code: u16) -> Value {
        assert_eq!(
            self.code(),
            code,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts a `Status` failure body with this code and reason; returns the body.
    #[track_caller]
    pub fn expect_status(&self, code: u16, reason: &str) -> Value {
        let body = self.expect(code);
        assert_eq!(body["kind"], "Status", "{body}");
        assert_eq!(body["apiVersion"], "v1", "{body}");
        assert_eq!(body["status"], "Failure", "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["reason"], reason, "{body}");
        body
    }
}

/// A request under construction.
pub struct Req<'a> {
    server: &'a Server,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Server {
    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            server: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path).send().await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::POST, path).json(body).send().await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PUT, path).json(body).send().await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Resp {
        self.request(Method::PATCH, path)
            .header("content-type", content_type)
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path).send().await
    }

    /// Starts a watch; panics unless the server answers 200.
    pub async fn watch(&self, path: &str) -> Watch {
        let resp = self.request(Method::GET, path).open().await;
        assert_eq!(resp.status(), StatusCode::OK, "watch {path}");
        Watch {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }
}

impl Req<'_> {
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", JSON)
            .body(serde_json::to_vec(body).unwrap())
    }

    /// Sends the request and returns the response with its body still streaming.
    async fn open(self) -> hyper::Response<Incoming> {
        let stream = TcpStream::connect(self.server.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .header("host", self.server.addr.to_string());
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        let req = req.body(Full::new(self.body)).expect("request");
        tokio::time::timeout(WAIT, sender.send_request(req))
            .await
            .expect("response in time")
            .expect("response")
    }

    /// Sends the request and reads the whole response.
    pub async fn send(self) -> Resp {
        let resp = self.open().await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(WAIT, resp.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        Resp { status, headers, body }
    }
}

/// A watch response, read one newline-delimited event at a time.
pub struct Watch {
    body: Incoming,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event, or `None` when the server ended the response. Panics if nothing comes
    /// within [`WAIT`].
    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("a watch event or the end of the watch in time")
    }

    /// The next event, which must be there.
    #[track_caller]
    pub fn next_event(&mut self) -> impl Future<Output = Value> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            self.next()
                .await
                .unwrap_or_else(|| panic!("the watch ended early (awaited at {caller})"))
        }
    }

    /// `(type, metadata.name)` of the next event.
    pub async fn next_kind_name(&mut self) -> (String, String) {
        let e = self.next_event().await;
        (
            e["type"].as_str().unwrap_or_default().to_owned(),
            e["object"]["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn next_inner(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(serde_json::from_slice(&line).expect("a watch event is JSON"));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => panic!("reading the watch: {e}"),
                None => {
                    assert!(
                        self.buf.iter().all(u8::is_ascii_whitespace),
                        "partial event at the end of the watch"
                    );
                    return None;
                }
            }
        }
    }
}

/// A ConfigMap body.
pub fn config_map(name: &str, labels: Value, data: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    })
}

/// A one-container pod body.
pub fn pod(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}]},
    })
}

/// A Deployment body selecting `app: web`.
pub fn deployment(name: &str, replicas: i64) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}]},
            },
        },
    })
}

pub const CM: &str = "/api/v1/namespaces/default/configmaps";
pub const PODS: &str = "/api/v1/namespaces/default/pods";
pub const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// The `metadata.resourceVersion` of an object as a string.
pub fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no resourceVersion in {object}"))
        .to_owned()
}
