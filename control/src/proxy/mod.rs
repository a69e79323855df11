//! The service proxy (kube-proxy's role) for the nodes of this process: follows Services and
//! Endpoints through the API, keeps the routing [`table`], and opens a real host listener for
//! every NodePort (and LoadBalancer) port, whose requests go to a ready endpoint's pod through
//! the in-memory pod network — no host socket between the listener and the pod. It also keeps
//! the [`ServiceTable`] the runtime resolves guests' requests to Service names through.
//!
//! A request whose endpoint no longer serves (its pod is stopping and the Endpoints have not
//! caught up yet) is tried on the next endpoint: nothing of it reached a guest, so the retry
//! is safe, and a rolling update loses no request.

pub mod ingress;
pub mod table;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Service};
use capstan_core::k8s_openapi::api::networking::v1::Ingress;
use capstan_runtime::container::{plain, serve_connection};
use capstan_runtime::directory::PodDirectory;
use capstan_runtime::services::ServiceResolver;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use self::ingress::IngressTable;
use self::table::{Backend, backends};
use crate::api::resources::find;
use crate::api::{Api, ApiError};
use crate::manager::informer::Informer;

/// The routing table the listeners read: node port → backend.
type Routes = Arc<RwLock<HashMap<u16, Backend>>>;

/// Every Service port and its ready endpoints, as the runtime's guests look them up (their
/// outgoing requests to Service names and cluster IPs).
#[derive(Default)]
pub struct ServiceTable {
    backends: RwLock<Vec<Backend>>,
}

impl ServiceTable {
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
            Ok(Some(backend)) => Some(backend.endpoints.clone()),
            Ok(None) => Some(Vec::new()),
            Err(()) => None,
        }
    }
}

/// Runs the proxy until the task is dropped; node ports listen on `address`, and `services`
/// is kept current for the guests.
pub async fn run(
    api: Arc<Api>,
    directory: Arc<PodDirectory>,
    address: IpAddr,
    services_table: Arc<ServiceTable>,
    ingress_table: Arc<RwLock<IngressTable>>,
) -> Result<(), ApiError> {
    let mut services = Informer::<Service>::start(&api, find("", "v1", "services").expect("served")).await?;
    let mut endpoints = Informer::<Endpoints>::start(&api, find("", "v1", "endpoints").expect("served")).await?;
    let mut ingresses =
        Informer::<Ingress>::start(&api, find("networking.k8s.io", "v1", "ingresses").expect("served")).await?;
    let routes: Routes = Arc::default();
    let mut listeners: HashMap<u16, JoinHandle<()>> = HashMap::new();
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            c = services.next() => if c.is_none() { break },
            c = endpoints.next() => if c.is_none() { break },
            c = ingresses.next() => if c.is_none() { break },
        }
        if !(services.synced() && endpoints.synced() && ingresses.synced()) {
            continue;
        }
        let ing: Vec<Ingress> = ingresses.items.values().map(|i| (**i).clone()).collect();
        *ingress_table.write().unwrap_or_else(|e| e.into_inner()) = IngressTable::new(&ing);
        let svc: Vec<Service> = services.items.values().map(|s| (**s).clone()).collect();
        let eps: Vec<Endpoints> = endpoints.items.values().map(|e| (**e).clone()).collect();
        let all = backends(&svc, &eps);
        let table: HashMap<u16, Backend> = all.iter().filter_map(|b| b.node_port.map(|p| (p, b.clone()))).collect();
        *services_table.backends.write().unwrap_or_else(|e| e.into_inner()) = all;
        listeners.retain(|port, task| {
            let keep = table.contains_key(port);
            if !keep {
                task.abort();
            }
            keep
        });
        for port in table.keys() {
            if !listeners.contains_key(port) {
                let addr = SocketAddr::new(address, *port);
                match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        let task = tokio::spawn(listen(
                            listener,
                            *port,
                            Arc::clone(&routes),
                            Arc::clone(&directory),
                            Arc::clone(&turn),
                        ));
                        listeners.insert(*port, task);
                    }
                    Err(e) => tracing::warn!(%addr, error = %e, "cannot open the node port"),
                }
            }
        }
        *routes.write().unwrap_or_else(|e| e.into_inner()) = table;
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
    directory: Arc<PodDirectory>,
    turn: Arc<AtomicUsize>,
) {
    loop {
        let Ok((io, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = io.set_nodelay(true);
        let (routes, directory, turn) = (Arc::clone(&routes), Arc::clone(&directory), Arc::clone(&turn));
        let client = peer.ip().to_string();
        serve_connection(io, move |req| {
            let backend = routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&node_port)
                .cloned();
            let (directory, turn, client) = (
                Arc::clone(&directory),
                turn.fetch_add(1, Ordering::Relaxed),
                client.clone(),
            );
            Box::pin(async move {
                match backend {
                    Some(backend) => forward(&backend, &directory, turn, &client, req).await,
                    None => plain(503, &format!("no service uses node port {node_port}\n")),
                }
            })
        });
    }
}

/// Sends a request to a ready endpoint of `backend`, trying the next one when an endpoint
/// no longer serves (nothing of the request has reached a guest then, so it is safe).
async fn forward(
    backend: &Backend,
    directory: &PodDirectory,
    turn: usize,
    client: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> capstan_runtime::container::Response {
    for attempt in 0..backend.endpoints.len() {
        let Some((ip, port)) = backend.pick(turn, Some(client), attempt) else {
            break;
        };
        let Some(network) = directory.get(ip) else { continue };
        if let Some(server) = network.route(*port) {
            return server.handle(req).await;
        }
        if network.net().is_listening(*port) {
            return match network.http(*port, req).await {
                Ok(resp) => resp,
                Err(_) => plain(
                    502,
                    &format!("endpoint {ip}:{port} of {} refused\n", backend.describe()),
                ),
            };
        }
    }
    plain(503, &format!("no ready endpoint for service {}\n", backend.describe()))
}

/// Serves the ingress gateway on `listener`: each request goes to the Service port its
/// host and path route to (see [`ingress`]), then to a ready endpoint.
pub async fn gateway(
    listener: TcpListener,
    ingresses: Arc<RwLock<IngressTable>>,
    services: Arc<ServiceTable>,
    directory: Arc<PodDirectory>,
) {
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((io, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = io.set_nodelay(true);
        let (ingresses, services, directory, turn) = (
            Arc::clone(&ingresses),
            Arc::clone(&services),
            Arc::clone(&directory),
            Arc::clone(&turn),
        );
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
            let backend = target.as_ref().and_then(|t| services.backend_for(t));
            let (directory, turn, client) = (
                Arc::clone(&directory),
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
                    (Some(_), Some(backend)) => forward(&backend, &directory, turn, &client, req).await,
                }
            })
        });
    }
}
