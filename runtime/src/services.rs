//! How a guest's traffic reaches a Service: the control plane's service table, seen by the
//! runtime through [`ServiceResolver`] (the runtime knows nothing of the API). Set once per
//! process; every node's runtime shares it, as they share the [`crate::directory::PodDirectory`].

use std::sync::{Arc, RwLock};

/// Answers which endpoints serve a Service address.
pub trait ServiceResolver: Send + Sync {
    /// The ready endpoints (pod IP, target port) behind `host:port` as a client in
    /// `namespace` names it — a Service name (`web`, `web.ns`, `web.ns.svc`,
    /// `web.ns.svc.cluster.local`) or cluster IP. `None` when `host` is no Service;
    /// `Some(vec![])` for a Service with no ready endpoint.
    fn endpoints(&self, host: &str, port: u16, namespace: &str) -> Option<Vec<(String, u16)>>;
}

/// The process's resolver, once the control plane has set it.
#[derive(Default)]
pub struct ServiceLink {
    resolver: RwLock<Option<Arc<dyn ServiceResolver>>>,
}

impl ServiceLink {
    pub fn set(&self, resolver: Arc<dyn ServiceResolver>) {
        *self.resolver.write().unwrap_or_else(|e| e.into_inner()) = Some(resolver);
    }

    pub fn endpoints(&self, host: &str, port: u16, namespace: &str) -> Option<Vec<(String, u16)>> {
        let resolver = self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        resolver.endpoints(host, port, namespace)
    }
}
