//! The service proxy (kube-proxy's role) for the nodes of this process: follows Services and
//! Endpoints through the API, keeps the routing [`table`], and opens a real host listener for
//! every NodePort (and LoadBalancer) port, whose requests go to a ready endpoint's pod through
//! the in-memory pod network — no host socket between the listener and the pod. It also keeps
//! the [`ServiceTable`] the runtime resolves guests' requests to Service names through.
//!
//! A request whose endpoint no longer serves (its pod is stopping and the Endpoints have not
//! caught up yet) is tried on the next endpoint: nothing of it reached a guest, so the retry
//! is safe, and a rolling update loses no request.
//!
//! An endpoint whose pod runs on a node in another process ([`remote`]) is reached over TCP
//! through that node's endpoint, for requests from outside and guests' requests alike; a node
//! that does not answer is skipped as a pod that stopped serving. A node in another process
//! keeps its own [`ServiceTable`] from the API server over HTTP ([`follow`]).

pub mod activator;
pub mod dns;
pub mod follow;
pub mod ingress;
pub mod load_balancer;
pub mod pool;
pub mod remote;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use capstan_core::k8s_openapi::api::networking::v1::Ingress;
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use capstan_runtime::container::{Response, plain, serve_connection};
use capstan_runtime::directory::PodDirectory;
use capstan_runtime::services::{Activation, Forwarded, ServiceResolver, Tunneled, WasiBody};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::activator::{Activator, TrafficLog};
use self::ingress::IngressTable;
use self::remote::RemotePods;
use self::table::{Backend, backends};
use crate::api::resources::find;
use crate::api::service_proxy::{Proxied, ServicePort, ServiceProxy};
use crate::api::{Api, ApiError};
use crate::manager::informer::{Informer, sleep_until};

/// The routing table the listeners read: node port → backend.
type Routes = Arc<RwLock<HashMap<u16, Backend>>>;

/// Every Service port and its ready endpoints, as the runtime's guests look them up (their
/// outgoing requests to Service names and cluster IPs).
#[derive(Default)]
pub struct ServiceTable {
    backends: RwLock<Vec<Backend>>,
    /// Each Service's requests, for the activator's idle check.
    pub traffic: TrafficLog,
    /// Woken whenever the backends change (held requests look again).
    changed: tokio::sync::Notify,
    /// The activator that wakes a Service's workload for guests' requests (weak: the
    /// activator holds this table).
    activator: std::sync::OnceLock<std::sync::Weak<Activator>>,
    /// The pods of nodes in other processes, and the connections to those nodes.
    pub remote: RemotePods,
    /// For a node in a process of its own, which has no activator: the API server whose
    /// service proxy holds guests' requests to a Service without a ready endpoint.
    relay_to: std::sync::OnceLock<SocketAddr>,
}

impl ServiceTable {
    /// Lets guests' requests to a Service at zero replicas wake it through `activator`.
    pub fn set_activator(&self, activator: &Arc<Activator>) {
        let _ = self.activator.set(Arc::downgrade(activator));
    }

    /// Sends guests' requests to a Service without a ready endpoint to the service proxy of
    /// the API server at `server`, whose activator wakes the Service if it scales on demand.
    pub fn relay_through(&self, server: SocketAddr) {
        let _ = self.relay_to.set(server);
    }

    /// Port `port` of Service `namespace/service`, as it is now.
    fn backend(&self, namespace: &str, service: &str, port: u16) -> Option<Backend> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        backends
            .iter()
            .find(|b| b.namespace == namespace && b.service == service && b.port == port)
            .cloned()
    }

    /// Replaces the backends and wakes the requests waiting for a change.
    fn replace(&self, backends: Vec<Backend>) {
        *self.backends.write().unwrap_or_else(|e| e.into_inner()) = backends;
        self.changed.notify_waiters();
    }

    /// The backend an Ingress target names: the Service's port by number or name.
    fn backend_for(&self, target: &ingress::Target) -> Option<Backend> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        backends
            .iter()
            .find(|b| {
                b.namespace == target.namespace
                    && b.service == target.service
                    && match &target.port {
                        ingress::PortRef::Number(n) => b.port == *n,
                        ingress::PortRef::Name(name) => b.port_name.as_deref() == Some(name.as_str()),
                    }
            })
            .cloned()
    }
}

impl ServiceResolver for ServiceTable {
    fn endpoints(&self, host: &str, port: u16, namespace: &str) -> Option<Vec<(String, u16)>> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        match table::resolve(&backends, host, port, namespace) {
            Ok(Some(backend)) => {
                self.traffic.touch(&backend.namespace, &backend.service);
                Some(backend.endpoints.clone())
            }
            Ok(None) => Some(Vec::new()),
            Err(()) => None,
        }
    }

    fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<IpAddr>> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        dns::answer(&backends, name, namespace)
    }

    fn external_name(&self, host: &str, namespace: &str) -> Option<String> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        table::external_name(&backends, host, namespace).map(str::to_owned)
    }

    fn activate(&self, host: &str, port: u16, namespace: &str) -> Option<Activation> {
        let backend = {
            let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
            table::resolve(&backends, host, port, namespace).ok()??.clone()
        };
        let activator = self.activator.get()?.upgrade()?;
        let (workloads, timeout) = activator.hold_policy(&backend.namespace, &backend.service)?;
        Some(Box::pin(async move {
            let services = Arc::clone(activator.services());
            let _in_flight = services.traffic.track(&backend.namespace, &backend.service);
            // Endpoints list only ready pods: one listed serves (the guest's request picks
            // one that does, or is refused).
            let ready = || {
                services
                    .backend(&backend.namespace, &backend.service, backend.port)
                    .is_some_and(|b| !b.endpoints.is_empty())
            };
            activator
                .hold(&workloads, timeout, std::time::Instant::now(), None, ready)
                .await
                .is_ok()
        }))
    }

    fn remote(&self, ip: &str) -> bool {
        self.remote.node_of(ip).is_some()
    }

    fn forward(&self, ip: &str, port: u16, request: http::Request<WasiBody>) -> Forwarded {
        self.remote.forward_boxed(ip, port, request)
    }

    fn tunnel(&self, ip: &str, port: u16, from: std::net::SocketAddr) -> Tunneled {
        self.remote.tunnel(ip, port, from)
    }

    fn relay(
        &self,
        host: &str,
        port: u16,
        namespace: &str,
        request: http::Request<WasiBody>,
    ) -> Result<Forwarded, http::Request<WasiBody>> {
        let Some(server) = self.relay_to.get().copied() else {
            return Err(request);
        };
        let path = {
            let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
            match table::resolve(&backends, host, port, namespace) {
                Ok(Some(b)) if b.external_name.is_none() => {
                    let rest = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    format!(
                        "/api/v1/namespaces/{}/services/{}:{}/proxy{rest}",
                        b.namespace, b.service, b.port
                    )
                }
                _ => return Err(request),
            }
        };
        Ok(self.remote.relay(server, &path, request))
    }
}

/// How long a held request waits before trying again when a ready endpoint did not take it
/// (its node in another process did not answer): long enough not to spin on a node that is
/// gone, short next to a cold start.
const REMOTE_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a load-balancer port the host would not bind waits before the next try.
const REBIND_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the proxy until the task is dropped; node ports and load-balancer ports listen on
/// `address`, and `services` is kept current for the guests, with where the pods of nodes
/// other than `local_nodes` (the nodes of this process) live.
pub async fn run(
    api: Arc<Api>,
    forwarder: Arc<Forwarder>,
    address: IpAddr,
    services_table: Arc<ServiceTable>,
    ingress_table: Arc<RwLock<IngressTable>>,
    local_nodes: Arc<HashSet<String>>,
) -> Result<(), ApiError> {
    let mut services = Informer::<Service>::start(&api, find("", "v1", "services").expect("served")).await?;
    let mut endpoints = Informer::<Endpoints>::start(&api, find("", "v1", "endpoints").expect("served")).await?;
    let mut ingresses =
        Informer::<Ingress>::start(&api, find("networking.k8s.io", "v1", "ingresses").expect("served")).await?;
    let mut pods = Informer::<Pod>::start(&api, find("", "v1", "pods").expect("served")).await?;
    let mut nodes = Informer::<Node>::start(&api, find("", "v1", "nodes").expect("served")).await?;
    // The endpoints of the nodes in other processes, by name: while there is none, pod
    // changes cost nothing here.
    let mut remote_nodes: HashMap<String, SocketAddr> = HashMap::new();
    // Whether the table has been computed once, from complete views of the Pods and Nodes.
    let mut placed = false;
    let routes: Routes = Arc::default();
    let mut listeners: HashMap<u16, JoinHandle<()>> = HashMap::new();
    let turn = Arc::new(AtomicUsize::new(0));
    // Load-balancer ports the host would not bind: the error, and when to try again.
    let mut unbound: HashMap<u16, (String, Instant)> = HashMap::new();
    // Problems already reported as events, so a retry does not repeat them.
    let mut reported: HashSet<load_balancer::Problem> = HashSet::new();
    loop {
        let retry = unbound.values().map(|(_, at)| *at).min();
        let placement = tokio::select! {
            c = services.next() => if c.is_none() { break } else { None },
            c = endpoints.next() => if c.is_none() { break } else { None },
            c = ingresses.next() => if c.is_none() { break } else { None },
            c = pods.next() => match c { Some(c) => Some(Some(c.object)), None => break },
            c = nodes.next() => match c { Some(_) => Some(None), None => break },
            () = sleep_until(retry) => None,
        };
        if let Some(pod) = placement {
            if !(pods.synced() && nodes.synced()) {
                continue;
            }
            let first = !std::mem::replace(&mut placed, true);
            if first || pod.is_none() {
                remote_nodes = remote::node_endpoints(nodes.items.values().map(|n| &**n), &local_nodes);
                services_table.remote.set_nodes(remote_nodes.clone());
            }
            // A pod matters if it runs on a node of another process, or was listed before.
            let matters = first
                || pod.as_deref().is_none_or(|pod| {
                    let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
                    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
                    on.is_some_and(|n| remote_nodes.contains_key(n))
                        || ip.is_some_and(|ip| services_table.remote.node_of(ip).is_some())
                });
            if matters {
                let table = if remote_nodes.is_empty() {
                    HashMap::new()
                } else {
                    pods.items
                        .values()
                        .filter_map(|pod| remote::place(pod, &remote_nodes))
                        .collect()
                };
                services_table.remote.replace(table);
            }
            continue;
        }
        if !(services.synced() && endpoints.synced() && ingresses.synced()) {
            continue;
        }
        let ing: Vec<Ingress> = ingresses.items.values().map(|i| (**i).clone()).collect();
        *ingress_table.write().unwrap_or_else(|e| e.into_inner()) = IngressTable::new(&ing);
        let svc: Vec<Service> = services.items.values().map(|s| (**s).clone()).collect();
        let eps: Vec<Endpoints> = endpoints.items.values().map(|e| (**e).clone()).collect();
        let all = backends(&svc, &eps);
        let mut table: HashMap<u16, Backend> = all.iter().filter_map(|b| b.node_port.map(|p| (p, b.clone()))).collect();
        let balancers = load_balancer::plan(&svc, &all, &table);
        table.extend(balancers.ports.iter().map(|(p, b)| (*p, b.clone())));
        services_table.replace(all);
        listeners.retain(|port, task| {
            let keep = table.contains_key(port);
            if !keep {
                task.abort();
            }
            keep
        });
        unbound.retain(|port, _| balancers.ports.contains_key(port));
        for port in table.keys() {
            let waiting = unbound.get(port).is_some_and(|(_, at)| *at > Instant::now());
            if listeners.contains_key(port) || waiting {
                continue;
            }
            let addr = SocketAddr::new(address, *port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let task = tokio::spawn(listen(
                        listener,
                        *port,
                        Arc::clone(&routes),
                        Arc::clone(&forwarder),
                        Arc::clone(&turn),
                    ));
                    listeners.insert(*port, task);
                    unbound.remove(port);
                }
                Err(e) if balancers.ports.contains_key(port) => {
                    unbound.insert(*port, (e.to_string(), Instant::now() + REBIND_AFTER));
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot open the node port"),
            }
        }
        *routes.write().unwrap_or_else(|e| e.into_inner()) = table;

        let listening: HashSet<u16> = listeners.keys().copied().collect();
        let changes = load_balancer::changes(&svc, &balancers, address, &listening);
        let errors: HashMap<u16, String> = unbound.iter().map(|(p, (e, _))| (*p, e.clone())).collect();
        let problems = load_balancer::problems(&balancers, &errors);
        reported.retain(|p| problems.contains(p));
        let new: Vec<load_balancer::Problem> = problems.into_iter().filter(|p| reported.insert(p.clone())).collect();
        if !changes.is_empty() || !new.is_empty() {
            let written = api
                .call(move |a| load_balancer::write(a, &changes, &new, address))
                .await;
            if let Err(e) = written {
                tracing::debug!(error = %e, "load balancer status not written; next change retries");
            }
        }
    }
    for task in listeners.values() {
        task.abort();
    }
    Ok(())
}

async fn listen(
    listener: TcpListener,
    node_port: u16,
    routes: Routes,
    forwarder: Arc<Forwarder>,
    turn: Arc<AtomicUsize>,
) {
    loop {
        let Ok((io, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = io.set_nodelay(true);
        let (routes, forwarder, turn) = (Arc::clone(&routes), Arc::clone(&forwarder), Arc::clone(&turn));
        let client = peer.ip().to_string();
        serve_connection(io, move |req| {
            let backend = routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&node_port)
                .cloned();
            let (forwarder, turn, client) = (
                Arc::clone(&forwarder),
                turn.fetch_add(1, Ordering::Relaxed),
                client.clone(),
            );
            Box::pin(async move {
                match backend {
                    Some(backend) => forwarder.forward(&backend, turn, &client, req).await,
                    None => plain(503, &format!("no service uses node port {node_port}\n")),
                }
            })
        });
    }
}

/// Where the proxy's listeners send requests: a ready endpoint's pod, through the in-memory
/// pod network, or — for a Service whose workload scaled to zero — the activator first.
#[derive(Clone)]
pub struct Forwarder {
    pub directory: Arc<PodDirectory>,
    pub services: Arc<ServiceTable>,
    pub activator: Arc<Activator>,
}

type Request = hyper::Request<hyper::body::Incoming>;

/// Spreads requests through the API server's service proxy over a Service's endpoints.
static PROXY_TURN: AtomicUsize = AtomicUsize::new(0);

/// The client address the service proxy's requests count as, for `sessionAffinity`.
const SERVICE_PROXY_CLIENT: &str = "apiserver";

impl ServiceProxy for Forwarder {
    /// As the ingress sends a request: to a ready endpoint, or held while the workload wakes.
    fn proxy(&self, namespace: &str, name: &str, port: ServicePort, request: Request) -> Proxied {
        let backends: Vec<Backend> = {
            let all = self.services.backends.read().unwrap_or_else(|e| e.into_inner());
            all.iter()
                .filter(|b| b.namespace == namespace && b.service == name)
                .cloned()
                .collect()
        };
        if backends.is_empty() {
            let missing = ApiError::NotFound {
                resource: "services".into(),
                name: name.to_owned(),
            };
            return Box::pin(async move { Err(missing) });
        }
        let chosen = match &port {
            ServicePort::Number(n) => backends.iter().find(|b| b.port == *n),
            ServicePort::Name(p) => backends.iter().find(|b| b.port_name.as_deref() == Some(p.as_str())),
            ServicePort::Default if backends.len() == 1 => backends.first(),
            ServicePort::Default => backends
                .iter()
                .find(|b| b.port_name.as_deref().unwrap_or("").is_empty()),
        };
        let answer = |text: String| -> Proxied { Box::pin(async move { Err(ApiError::ServiceUnavailable(text)) }) };
        let Some(backend) = chosen.cloned() else {
            return answer(format!("no endpoints available for service \"{name}\" on port {port}"));
        };
        if backend.external_name.is_some() {
            return answer(format!(
                "service \"{name}\" is an ExternalName alias: nothing in the cluster to proxy to"
            ));
        }
        let forwarder = self.clone();
        let turn = PROXY_TURN.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(forwarder.forward(&backend, turn, SERVICE_PROXY_CLIENT, request).await) })
    }

    /// As to a Service's only endpoint: a pod of this process in memory, one of another
    /// process through its node.
    fn to_pod(&self, namespace: &str, name: &str, ip: String, port: u16, request: Request) -> Proxied {
        let forwarder = self.clone();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        Box::pin(async move {
            let pod = Backend {
                namespace: namespace.clone(),
                service: name.clone(),
                port_name: None,
                cluster_ip: None,
                port,
                node_port: None,
                endpoints: vec![(ip.clone(), port)],
                hostnames: Vec::new(),
                client_ip_affinity: false,
                selector: Default::default(),
                target_port: None,
                external_name: None,
            };
            match forwarder.to_endpoint(&pod, 0, SERVICE_PROXY_CLIENT, request).await {
                Ok(response) => Ok(response),
                Err(_) => Err(ApiError::ServiceUnavailable(format!(
                    "nothing serves port {port} of pod {namespace}/{name} ({ip})"
                ))),
            }
        })
    }
}

impl Forwarder {
    /// Sends a request to a ready endpoint of `backend`; with none, holds it in the
    /// activator while the workload behind the Service wakes, if it is opted in.
    async fn forward(&self, backend: &Backend, turn: usize, client: &str, req: Request) -> Response {
        let _in_flight = self.services.traffic.track(&backend.namespace, &backend.service);
        let req = match self.to_endpoint(backend, turn, client, req).await {
            Ok(resp) => return resp,
            Err(req) => req,
        };
        // Right after a wake the pod may be ready before its Endpoints are written: such a
        // request needs no hold (and is no cold start).
        let mut req = match self.to_ready_pod(backend, turn, client, req).await {
            Ok(resp) => return resp,
            Err(req) => req,
        };
        let Some((workloads, timeout)) = self.activator.hold_policy(&backend.namespace, &backend.service) else {
            // Marked: nothing reached a guest, so a relaying node refuses its guest's request as
            // it would a Service without endpoints of its own.
            let mut resp = plain(503, &format!("no ready endpoint for service {}\n", backend.describe()));
            resp.headers_mut()
                .insert(remote::UNSERVED_HEADER, http::HeaderValue::from_static("true"));
            return resp;
        };
        let held = std::time::Instant::now();
        let current = || {
            self.services
                .backend(&backend.namespace, &backend.service, backend.port)
        };
        loop {
            let ready = || current().is_some_and(|b| self.serving(&b)) || self.ready_pod(backend).is_some();
            if let Err(e) = self
                .activator
                .hold(&workloads, timeout, held, Some(&self.directory), ready)
                .await
            {
                return e.response();
            }
            // The endpoint that was ready may have gone again: then wait on.
            if let Some(backend) = current() {
                req = match self.to_endpoint(&backend, turn, client, req).await {
                    Ok(resp) => return resp,
                    Err(req) => req,
                };
            }
            // A pod of this process is ready before the Endpoints say so (its status is on
            // its way through the API): the first request of a wake goes to it directly.
            req = match self.to_ready_pod(backend, turn, client, req).await {
                Ok(resp) => return resp,
                Err(req) => req,
            };
            // An endpoint in another process counts as ready while it is listed, though its
            // node may not answer: look again after a pause, and only while the hold lasts.
            if held.elapsed() >= timeout {
                return plain(
                    503,
                    &format!("no endpoint of service {} answered\n", backend.describe()),
                );
            }
            tokio::time::sleep(REMOTE_RETRY).await;
        }
    }

    /// Sends `req` to a ready pod of this process that `backend`'s Service selects, if there
    /// is one (see [`ready_pod`](Self::ready_pod)); gives the request back otherwise.
    async fn to_ready_pod(
        &self,
        backend: &Backend,
        turn: usize,
        client: &str,
        req: Request,
    ) -> Result<Response, Request> {
        let Some(endpoint) = self.ready_pod(backend) else {
            return Err(req);
        };
        let direct = Backend {
            endpoints: vec![endpoint],
            ..backend.clone()
        };
        self.to_endpoint(&direct, turn, client, req).await
    }

    /// A ready pod of this process that `backend`'s Service selects and that serves its
    /// target port (by number, or by the pod's container port of that name): (pod IP, port).
    fn ready_pod(&self, backend: &Backend) -> Option<(String, u16)> {
        if backend.selector.is_empty() {
            return None;
        }
        self.directory
            .ready(&backend.namespace, &backend.selector)
            .into_iter()
            .find_map(|(ip, network, pod)| {
                let port = match &backend.target_port {
                    None => backend.port,
                    Some(IntOrString::Int(n)) => u16::try_from(*n).ok()?,
                    Some(IntOrString::String(name)) => named_port(&pod, name)?,
                };
                network.is_served(port).then_some((ip, port))
            })
    }

    /// Whether any endpoint of `backend` serves now.
    fn serving(&self, backend: &Backend) -> bool {
        backend.endpoints.iter().any(|(ip, port)| match self.directory.get(ip) {
            Some(network) => network.is_served(*port),
            // Listed ready; whether its node answers is seen when a request goes there.
            None => self.services.remote.node_of(ip).is_some(),
        })
    }

    /// Sends a request to a ready endpoint of `backend`, trying the next one when an endpoint
    /// no longer serves (nothing of the request has reached a guest then, so it is safe).
    /// An endpoint not in this process goes to its node's endpoint, when another process
    /// runs it; a node that does not answer is passed over the same way.
    /// The request comes back when no endpoint serves.
    async fn to_endpoint(
        &self,
        backend: &Backend,
        turn: usize,
        client: &str,
        mut req: Request,
    ) -> Result<Response, Request> {
        for attempt in 0..backend.endpoints.len() {
            let Some((ip, port)) = backend.pick(turn, Some(client), attempt) else {
                break;
            };
            let Some(network) = self.directory.get(ip) else {
                if let Some(node) = self.services.remote.node_of(ip) {
                    req = match self.services.remote.forward(node, ip, *port, req).await {
                        Ok(resp) => return Ok(resp),
                        Err(req) => req,
                    };
                }
                continue;
            };
            if let Some(server) = network.route(*port) {
                return Ok(server.handle(req).await);
            }
            if network.net().is_listening(*port) {
                return Ok(match network.http(*port, req).await {
                    Ok(resp) => resp,
                    Err(_) => plain(
                        502,
                        &format!("endpoint {ip}:{port} of {} refused\n", backend.describe()),
                    ),
                });
            }
        }
        Err(req)
    }
}

/// Serves the ingress gateway on `listener`: each request goes to the Service port its
/// host and path route to (see [`ingress`]), then to a ready endpoint.
pub async fn gateway(listener: TcpListener, ingresses: Arc<RwLock<IngressTable>>, forwarder: Arc<Forwarder>) {
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((io, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = io.set_nodelay(true);
        let (ingresses, forwarder, turn) = (Arc::clone(&ingresses), Arc::clone(&forwarder), Arc::clone(&turn));
        let client = peer.ip().to_string();
        serve_connection(io, move |req| {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().host())
                .unwrap_or_default()
                .to_owned();
            let path = req.uri().path().to_owned();
            let target = ingresses
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .route(&host, &path)
                .cloned();
            let backend = target.as_ref().and_then(|t| forwarder.services.backend_for(t));
            let (forwarder, turn, client) = (
                Arc::clone(&forwarder),
                turn.fetch_add(1, Ordering::Relaxed),
                client.clone(),
            );
            Box::pin(async move {
                match (target, backend) {
                    (None, _) => plain(404, &format!("no ingress rule for {host}{path}\n")),
                    (Some(t), None) => plain(
                        503,
                        &format!("service {}/{} has no port {:?}\n", t.namespace, t.service, t.port),
                    ),
                    (Some(_), Some(backend)) => forwarder.forward(&backend, turn, &client, req).await,
                }
            })
        });
    }
}

/// The container port of `pod` named `name`, as a Service's named `targetPort` resolves.
fn named_port(pod: &capstan_core::k8s_openapi::api::core::v1::Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}
