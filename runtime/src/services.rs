//! How a guest's traffic reaches a Service: the control plane's service table, seen by the
//! runtime through [`ServiceResolver`] (the runtime knows nothing of the API). Set once per
//! process; every node's runtime shares it, as they share the [`crate::directory::PodDirectory`].
//!
//! A pod of a node in another process is not in the directory: the resolver knows where it
//! runs and carries HTTP requests to it ([`ServiceResolver::forward`]), over real TCP.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::net::NetError;

/// The body of HTTP requests and responses between pods (wasmtime's `wasi:http` body), and
/// its error: what a resolver forwarding to another process takes and gives back.
pub use wasmtime_wasi_http::{Error as BodyError, WasiBody};

/// Resolves when a Service that had no ready endpoint has one (`true`), or when waiting
/// for it has failed or timed out (`false`).
pub type Activation = Pin<Box<dyn Future<Output = bool> + Send>>;

/// The answer of a pod in another process to a forwarded request.
pub type Forwarded = Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, ForwardError>> + Send>>;

/// A byte stream to a pod port on a node in another process: a guest's TCP connection,
/// carried through that node's endpoint ([`ServiceResolver::tunnel`]).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// The stream [`ServiceResolver::tunnel`] opens once the pod's node has taken the
/// connection, or why it could not: [`NetError::ConnectionRefused`] when nothing listens
/// there, [`NetError::Unreachable`] when the node did not answer.
pub type Tunneled = Pin<Box<dyn Future<Output = Result<Box<dyn Duplex>, NetError>> + Send>>;

/// Why a forwarded request got no answer from the pod.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Nothing of the request reached a guest: no node of another process runs the pod, its
    /// node did not answer, or the pod no longer serves the port there.
    #[error("{0}")]
    Unserved(String),
    /// The exchange with the pod's node broke after the request was sent.
    #[error("{0}")]
    Broken(String),
}

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

    /// Whether the pod at `ip` runs on a node in another process that
    /// [`ServiceResolver::forward`] reaches. Asked only for IPs that are not in this process's
    /// directory; the default knows no other process.
    fn remote(&self, ip: &str) -> bool {
        let _ = ip;
        false
    }

    /// Sends `request` to port `port` of the pod at `ip` on a node in another process, over
    /// TCP to that node's endpoint. The default reaches no other process.
    fn forward(&self, ip: &str, port: u16, request: http::Request<WasiBody>) -> Forwarded {
        drop(request);
        let ip = ip.to_owned();
        Box::pin(async move { Err(ForwardError::Unserved(format!("pod {ip}:{port} runs in no known node"))) })
    }

    /// For a request to `host:port` (a Service with no ready endpoint that
    /// [`ServiceResolver::activate`] does not wake here) as a client in `namespace` names it:
    /// another process that holds it while the Service's workload wakes and answers it (the
    /// control plane's activator, for a node in a process of its own). The request comes back
    /// when there is none; the default knows none.
    #[allow(clippy::result_large_err, reason = "the request is handed back, not an error")]
    fn relay(
        &self,
        host: &str,
        port: u16,
        namespace: &str,
        request: http::Request<WasiBody>,
    ) -> Result<Forwarded, http::Request<WasiBody>> {
        let _ = (host, port, namespace);
        Err(request)
    }

    /// Opens a TCP connection from `from` (a pod address of this process) to port `port` of
    /// the pod at `ip` on a node in another process, through that node's endpoint. The
    /// default reaches no other process.
    fn tunnel(&self, ip: &str, port: u16, from: SocketAddr) -> Tunneled {
        let _ = (ip, port, from);
        Box::pin(async { Err(NetError::Unreachable) })
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

    /// The resolver, once set.
    fn resolver(&self) -> Option<Arc<dyn ServiceResolver>> {
        self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn endpoints(&self, host: &str, port: u16, namespace: &str) -> Option<Vec<(String, u16)>> {
        let resolver = self.resolver()?;
        resolver.endpoints(host, port, namespace)
    }

    /// See [`ServiceResolver::lookup`]; `None` before the control plane has set a resolver.
    pub fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<std::net::IpAddr>> {
        let resolver = self.resolver()?;
        resolver.lookup(name, namespace)
    }

    /// See [`ServiceResolver::external_name`]; `None` before the control plane has set a
    /// resolver.
    pub fn external_name(&self, host: &str, namespace: &str) -> Option<String> {
        let resolver = self.resolver()?;
        resolver.external_name(host, namespace)
    }

    /// See [`ServiceResolver::activate`]; `None` before the control plane has set a resolver.
    pub fn activate(&self, host: &str, port: u16, namespace: &str) -> Option<Activation> {
        let resolver = self.resolver()?;
        resolver.activate(host, port, namespace)
    }

    /// See [`ServiceResolver::remote`]; `false` before the control plane has set a resolver.
    pub fn remote(&self, ip: &str) -> bool {
        self.resolver().is_some_and(|r| r.remote(ip))
    }

    /// See [`ServiceResolver::forward`]; unserved before the control plane has set a
    /// resolver.
    pub fn forward(&self, ip: &str, port: u16, request: http::Request<WasiBody>) -> Forwarded {
        match self.resolver() {
            Some(resolver) => resolver.forward(ip, port, request),
            None => Box::pin(async { Err(ForwardError::Unserved("no cluster to forward to".into())) }),
        }
    }

    /// See [`ServiceResolver::relay`]; the request comes back before the control plane has
    /// set a resolver.
    #[allow(clippy::result_large_err, reason = "the request is handed back, not an error")]
    pub fn relay(
        &self,
        host: &str,
        port: u16,
        namespace: &str,
        request: http::Request<WasiBody>,
    ) -> Result<Forwarded, http::Request<WasiBody>> {
        match self.resolver() {
            Some(resolver) => resolver.relay(host, port, namespace, request),
            None => Err(request),
        }
    }

    /// See [`ServiceResolver::tunnel`]; unreachable before the control plane has set a
    /// resolver.
    pub fn tunnel(&self, ip: &str, port: u16, from: SocketAddr) -> Tunneled {
        match self.resolver() {
            Some(resolver) => resolver.tunnel(ip, port, from),
            None => Box::pin(async { Err(NetError::Unreachable) }),
        }
    }
}
