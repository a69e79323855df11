//! How a guest's traffic reaches a Service: the control plane's service table, seen by the
//! runtime through [`ServiceResolver`] (the runtime knows nothing of the API). Set once per
//! process; every node's runtime shares it, as they share the [`crate::directory::PodDirectory`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

/// Resolves when a Service that had no ready endpoint has one (`true`), or when waiting
/// for it has failed or timed out (`false`).
pub type Activation = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Answers which endpoints serve a Service address.
pub trait ServiceResolver: Send + Sync {
    /// The ready endpoints (pod IP, target port) behind `host:port` as a client in
    /// `namespace` names it — a Service name (`web`, `web.ns`, `web.ns.svc`,
    /// `web.ns.svc.cluster.local`) or cluster IP. `None` when `host` is no Service;
    /// `Some(vec![])` for a Service with no ready endpoint.
    fn endpoints(&self, host: &str, port: u16, namespace: &str) -> Option<Vec<(String, u16)>>;

    /// The addresses cluster DNS answers for `name` as a client in `namespace` writes it
    /// (`web`, `web.ns`, `web.ns.svc`, `web.ns.svc.cluster.local`): the Service's cluster IP,
    /// or for a headless Service the pod IPs of its ready endpoints (all of them, as CoreDNS
    /// returns A records). `None` when `name` is no Service. The default knows no names, so a
    /// resolver that only routes keeps guests' lookups to `localhost`.
    fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<std::net::IpAddr>> {
        let _ = (name, namespace);
        None
    }

    /// The outside host `host` stands for when, as a client in `namespace` names it, it is an
    /// ExternalName Service whose `externalName` is no Service of the cluster (an alias of a
    /// cluster Service is answered by [`ServiceResolver::endpoints`] instead). `None` for
    /// anything else; the default knows no aliases.
    fn external_name(&self, host: &str, namespace: &str) -> Option<String> {
        let _ = (host, namespace);
        None
    }

    /// For a Service with no ready endpoint whose workload scales up on demand (scaled to
    /// zero): wakes it and waits, as the activator does for requests from outside. `None`
    /// when the Service does not scale on demand; the default knows none.
    fn activate(&self, host: &str, port: u16, namespace: &str) -> Option<Activation> {
        let _ = (host, port, namespace);
        None
    }
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

    /// See [`ServiceResolver::lookup`]; `None` before the control plane has set a resolver.
    pub fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<std::net::IpAddr>> {
        let resolver = self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        resolver.lookup(name, namespace)
    }

    /// See [`ServiceResolver::external_name`]; `None` before the control plane has set a
    /// resolver.
    pub fn external_name(&self, host: &str, namespace: &str) -> Option<String> {
        let resolver = self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        resolver.external_name(host, namespace)
    }

    /// See [`ServiceResolver::activate`]; `None` before the control plane has set a resolver.
    pub fn activate(&self, host: &str, port: u16, namespace: &str) -> Option<Activation> {
        let resolver = self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        resolver.activate(host, port, namespace)
    }
}
