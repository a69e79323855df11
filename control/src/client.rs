//! A small Kubernetes API client over HTTP/1.1 (hyper): requests with JSON bodies, `Status`
//! errors decoded, and watches read line by line. Used by the `capstan` CLI verbs and by a
//! node in another process (`capstan node --server URL`). Plain HTTP, no authentication:
//! what `capstan up` serves.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the API server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server answered with an error `Status`.
    #[error("{message}")]
    Status { code: u16, reason: String, message: String },
    /// The server's answer was not what the API promises.
    #[error("unexpected answer from the API server: {0}")]
    Protocol(String),
}

impl ClientError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
}

/// A client of one API server.
#[derive(Clone, Debug)]
pub struct Client {
    /// `host:port`
    authority: String,
    server: String,
}

impl Client {
    /// A client of `server` (`http://host:port`).
    pub fn new(server: &str) -> Result<Self, ClientError> {
        let authority = server
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Unreachable {
                server: server.to_owned(),
                reason: "only http:// servers are supported".into(),
            })?
            .trim_end_matches('/')
            .to_owned();
        Ok(Client {
            authority,
            server: server.trim_end_matches('/').to_owned(),
        })
    }

    /// The server of the kubeconfig's current context.
    pub fn from_kubeconfig(path: &std::path::Path) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            server: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| unreachable(e.to_string()))?;
        let config: Value = serde_saphyr::from_str(&text).map_err(|e| unreachable(e.to_string()))?;
        // The entry of a kubeconfig list (`contexts`, `clusters`) with this name.
        let named = |list: &str, name: &str| -> Option<Value> {
            config[list].as_array()?.iter().find(|c| c["name"] == name).cloned()
        };
        let context = config["current-context"].as_str().unwrap_or_default();
        let cluster = named("contexts", context)
            .and_then(|c| c["context"]["cluster"].as_str().map(str::to_owned))
            .ok_or_else(|| unreachable(format!("no context {context:?}")))?;
        let server = named("clusters", &cluster)
            .and_then(|c| c["cluster"]["server"].as_str().map(str::to_owned))
            .ok_or_else(|| unreachable(format!("no cluster {cluster:?}")))?;
        Client::new(&server)
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            server: self.server.clone(),
            reason: e.to_string(),
        };
        let stream = TcpStream::connect(&self.authority).await.map_err(|e| unreachable(&e))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, accept)
            .header(header::USER_AGENT, concat!("capstan/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        sender.send_request(request).await.map_err(|e| unreachable(&e))
    }

    /// One request; the decoded JSON answer, or the error `Status` as [`ClientError::Status`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let body = body
            .map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()))
            .unwrap_or_default();
        self.request_raw(method, path, content_type, "application/json", body)
            .await
    }

    /// One request with a raw body and `Accept` header.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Bytes,
    ) -> Result<Value, ClientError> {
        let response = self.send(method, path, content_type, accept, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Unreachable {
                server: self.server.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_success() {
            Ok(value)
        } else {
            Err(status_error(status, &value))
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(Method::GET, path, "application/json", None).await
    }

    /// A streaming GET (watch or followed log): each chunk as it arrives, until the server
    /// ends the response or the receiver is dropped.
    pub async fn stream(&self, path: &str) -> Result<mpsc::Receiver<Bytes>, ClientError> {
        self.stream_accepting(path, "application/json").await
    }

    /// [`Client::stream`] asking for `accept` (a Table watch, say).
    pub async fn stream_accepting(&self, path: &str, accept: &str) -> Result<mpsc::Receiver<Bytes>, ClientError> {
        let response = self
            .send(Method::GET, path, "application/json", accept, Bytes::new())
            .await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(status_error(status, &value));
        }
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data()
                    && tx.send(data).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// A watch: each event (`{"type", "object"}`) as it arrives.
    pub async fn watch(&self, path: &str) -> Result<mpsc::Receiver<Value>, ClientError> {
        self.watch_accepting(path, "application/json").await
    }

    /// [`Client::watch`] asking for `accept`: with `as=Table`, each event's object is a
    /// one-row Table (`get -w`).
    pub async fn watch_accepting(&self, path: &str, accept: &str) -> Result<mpsc::Receiver<Value>, ClientError> {
        let mut chunks = self.stream_accepting(path, accept).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::new();
            while let Some(chunk) = chunks.recv().await {
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(event) = serde_json::from_slice::<Value>(&line)
                        && tx.send(event).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

fn status_error(status: StatusCode, body: &Value) -> ClientError {
    ClientError::Status {
        code: status.as_u16(),
        reason: body["reason"].as_str().unwrap_or_default().to_owned(),
        message: body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered {status}")),
    }
}
