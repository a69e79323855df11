//! A pod's network as a routing table: which container serves each port of the
//! pod. `--publish` (and later Services and the in-memory sockets) reach a pod port
//! only through this table, so a port is served by exactly one container and a
//! second bind of it fails with `address in use`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::container::HttpServer;
use crate::error::RuntimeError;

/// The ports of one pod. Cloning shares the table.
#[derive(Clone, Default)]
pub struct PodNetwork {
    ports: Arc<RwLock<HashMap<u16, Arc<HttpServer>>>>,
}

impl PodNetwork {
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
