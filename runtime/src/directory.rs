//! The pods of every node in this process, by pod IP: where traffic addressed to a pod (a
//! Service endpoint's HTTP request, a guest's TCP connection to a pod IP or a Service's
//! cluster IP) finds the pod's network. Shared by the sibling runtimes of one process; a pod
//! is listed while it runs.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::network::PodNetwork;

/// Pod IP → the pod's network.
#[derive(Default)]
pub struct PodDirectory {
    pods: RwLock<HashMap<String, PodNetwork>>,
}

impl PodDirectory {
    /// The network of the pod at `ip`, if one runs in this process.
    pub fn get(&self, ip: &str) -> Option<PodNetwork> {
        self.pods.read().unwrap_or_else(|e| e.into_inner()).get(ip).cloned()
    }

    pub(crate) fn insert(&self, ip: String, network: PodNetwork) {
        self.pods.write().unwrap_or_else(|e| e.into_inner()).insert(ip, network);
    }

    pub(crate) fn remove(&self, ip: &str) {
        self.pods.write().unwrap_or_else(|e| e.into_inner()).remove(ip);
    }

    /// How many pods are listed.
    pub fn len(&self) -> usize {
        self.pods.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
