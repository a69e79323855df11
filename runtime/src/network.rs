//! A pod's network as seen from the host and from other containers' HTTP: each
//! port of the pod is served either by an HTTP component (an in-process handler,
//! in the table here) or by a guest listening through `wasi:sockets` (the pod's
//! in-memory loopback, `net/`). `--publish`, probes and outgoing HTTP to
//! `localhost` reach a pod port only through this type; no host socket is used.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http_body_util::BodyExt;
use wasmtime_wasi_http::io::TokioIo;

use crate::container::{HttpServer, Response};
use crate::error::RuntimeError;
use crate::net::PodNet;

/// The ports of one pod. Cloning shares the table.
#[derive(Clone, Default)]
pub struct PodNetwork {
    ports: Arc<RwLock<HashMap<u16, Arc<HttpServer>>>>,
    net: PodNet,
}

/// Nothing in the pod serves the port.
#[derive(Debug, thiserror::Error)]
#[error("dial tcp port {0}: connection refused")]
pub struct Refused(pub u16);

impl PodNetwork {
    pub fn new(net: PodNet) -> Self {
        Self {
            ports: Default::default(),
            net,
        }
    }

    /// The pod's in-memory loopback (guest sockets).
    pub fn net(&self) -> &PodNet {
        &self.net
    }

    /// Whether anything serves `port`: an HTTP component or a listening socket.
    pub fn is_served(&self, port: u16) -> bool {
        self.route(port).is_some() || self.net.is_listening(port)
    }

    /// Sends one HTTP request to whatever serves `port`: the HTTP component's
    /// handler directly, or a guest's socket listener over an in-memory connection.
    pub async fn http<B>(&self, port: u16, req: hyper::Request<B>) -> Result<Response, Refused>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(server) = self.route(port) {
            return Ok(server.handle(req).await);
        }
        let stream = self.net.connect(port).await.map_err(|_| Refused(port))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Refused(port))?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|_| Refused(port))?;
        Ok(resp.map(|b| b.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()))
    }

    /// Serves `port` with `server`; a port already served is refused.
    pub fn bind(&self, port: u16, server: Arc<HttpServer>) -> Result<(), RuntimeError> {
        let mut ports = self.ports.write().unwrap_or_else(|p| p.into_inner());
        if ports.contains_key(&port) {
            return Err(RuntimeError::PortInUse {
                port,
                container: server.container().to_string(),
            });
        }
        ports.insert(port, server);
        Ok(())
    }

    /// Stops serving `port`, if `container` is the one serving it.
    pub fn unbind(&self, port: u16, container: &str) {
        let mut ports = self.ports.write().unwrap_or_else(|p| p.into_inner());
        if ports.get(&port).is_some_and(|s| s.container() == container) {
            ports.remove(&port);
        }
    }

    /// Stops all routing into the pod (the first step of termination).
    pub fn close(&self) -> Vec<Arc<HttpServer>> {
        let mut ports = self.ports.write().unwrap_or_else(|p| p.into_inner());
        ports.drain().map(|(_, s)| s).collect()
    }

    /// The container serving `port`, if any.
    pub fn route(&self, port: u16) -> Option<Arc<HttpServer>> {
        self.ports.read().unwrap_or_else(|p| p.into_inner()).get(&port).cloned()
    }
}
