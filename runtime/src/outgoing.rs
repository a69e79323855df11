//! Where a guest's outgoing `wasi:http` requests go. Requests to `localhost`, the
//! loopback addresses or the pod's own IP are delivered in-process to the
//! container serving that port of the pod (no host socket). Requests to another pod's IP
//! or to a Service (by name or cluster IP) go in-process to that pod, or to a ready endpoint
//! of the Service; a pod of a node in another process (not in this process's directory) is
//! reached over TCP through the control plane's resolver ([`crate::services::ServiceResolver::forward`]).
//! Requests to other hosts are refused, unless the pod grants them with the
//! `capstan.dev/allow-hosts` annotation (for ambassadors that talk to the outside); a grant
//! wins over local delivery, so `127.0.0.1:PORT` can be granted to reach a host service.
//! An ExternalName Service is an alias: of a cluster Service, it is answered as that Service;
//! of an outside host, the request goes to that host only if the pod's grants allow it.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::directory::PodDirectory;
use crate::hops::Hops;
use crate::network::PodNetwork;
use crate::services::{ForwardError, ServiceLink};

/// The annotation listing the hosts a pod may reach: `host[:port]`, comma-separated
/// (`*` as the host allows every host on that port; no port allows every port).
pub const ALLOW_HOSTS_ANNOTATION: &str = "capstan.dev/allow-hosts";

/// One granted destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostGrant {
    pub host: String,
    pub port: Option<u16>,
}

/// Parses the annotation's value; errors name the bad entry.
pub fn parse_grants(value: &str) -> Result<Vec<HostGrant>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("{entry:?}: {p:?} is not a port"))?,
                    ),
                ),
                _ => (entry, None),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            if host.is_empty() {
                return Err(format!("{entry:?}: no host"));
            }
            Ok(HostGrant { host, port })
        })
        .collect()
}

/// Where one request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// To the container serving this port of the pod.
    Pod(u16),
    /// Out over the host network (granted).
    Host,
    /// Anywhere else: another pod or a Service of the cluster, if the host names one;
    /// refused otherwise.
    Cluster,
}

/// Decides a request's route from its host and port. Pure.
pub fn route(host: &str, port: u16, pod_ip: &str, grants: &[HostGrant]) -> Route {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let granted = grants
        .iter()
        .any(|g| (g.host == "*" || g.host == host) && g.port.is_none_or(|p| p == port));
    if granted {
        return Route::Host;
    }
    if host == "localhost" || host == "127.0.0.1" || host == "::1" || host == pod_ip {
        return Route::Pod(port);
    }
    Route::Cluster
}

/// What a container's outgoing HTTP may reach. Cloning shares it.
#[derive(Clone, Default)]
pub struct OutgoingPolicy {
    pub network: PodNetwork,
    pub pod_ip: String,
    pub grants: Arc<Vec<HostGrant>>,
    /// The pod's namespace: where a bare Service name is looked up.
    pub namespace: String,
    /// The pods of this process, by IP.
    pub pods: Arc<PodDirectory>,
    /// The cluster's Services.
    pub services: Arc<ServiceLink>,
    /// Spreads the container's requests over a Service's endpoints (its instances share it).
    pub next_endpoint: Arc<AtomicUsize>,
}

/// Where a request into the cluster goes.
enum Target {
    /// A pod of this process: its network, and the port.
    Local(PodNetwork, u16),
    /// A pod of a node in another process: its IP and port.
    Remote(String, u16),
}

impl Target {
    /// Sends `request` to the pod; refused when nothing serves the port. A pod of this
    /// process is run as a hop on the caller's task (`hops`) when given.
    fn send(self, services: &ServiceLink, request: http::Request<WasiBody>, hops: Option<&Hops>) -> SendFuture {
        match self {
            Target::Local(network, port) => local(network, port, request, hops),
            Target::Remote(ip, port) => answered(services.forward(&ip, port, request)),
        }
    }
}

/// The response another process gives, as `wasi:http` reports it: nothing reaching a guest
/// is a refusal, an exchange that broke a terminated connection.
fn answered(forwarded: crate::services::Forwarded) -> SendFuture {
    Box::new(async move {
        let response = forwarded.await.map_err(|e| match e {
            ForwardError::Unserved(_) => Error::ConnectionRefused,
            ForwardError::Broken(_) => Error::ConnectionTerminated,
        })?;
        Ok((response, Box::new(async { Ok(()) }) as IoFuture))
    })
}

/// Sends `request` to `port` of a pod of this process. With `hops`, the callee runs on
/// the caller's task and the returned future only waits for its response (see `hops`).
fn local(network: PodNetwork, port: u16, request: http::Request<WasiBody>, hops: Option<&Hops>) -> SendFuture {
    let Some(hops) = hops else {
        return Box::new(async move {
            let response = network
                .http(port, request)
                .await
                .map_err(|_| Error::ConnectionRefused)?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        });
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    hops.start(Box::pin(async move {
        let _ = tx.send(network.http(port, request).await);
    }));
    Box::new(async move {
        let response = rx
            .await
            .map_err(|_| Error::ConnectionTerminated)?
            .map_err(|_| Error::ConnectionRefused)?;
        Ok((response, Box::new(async { Ok(()) }) as IoFuture))
    })
}

impl OutgoingPolicy {
    /// Where a request to `host:port` outside the pod goes: another pod by IP, or a ready
    /// endpoint of a Service that serves now (spreading requests by a counter), in this
    /// process or, when not here, in another that the resolver reaches; `None` when nothing
    /// in the cluster answers to it. The resolver is asked about other processes only once
    /// this process's directory has no such pod.
    fn cluster_target(&self, host: &str, port: u16) -> Option<Target> {
        self.cluster_target_from(host, port, || self.next_endpoint.fetch_add(1, Ordering::Relaxed))
    }

    /// [`Self::cluster_target`], trying a Service's endpoints from the one `start` picks.
    fn cluster_target_from(&self, host: &str, port: u16, start: impl FnOnce() -> usize) -> Option<Target> {
        if let Some(network) = self.pods.get(host) {
            return Some(Target::Local(network, port));
        }
        let Some(endpoints) = self.services.endpoints(host, port, &self.namespace) else {
            if self.services.remote(host) {
                return Some(Target::Remote(host.to_owned(), port));
            }
            // A pod's own DNS name (an endpoint of a headless Service by its hostname, or
            // `a-b-c-d.ns.pod`): the pod at the address it resolves to.
            let addresses = self.services.lookup(host, &self.namespace)?;
            return addresses.iter().find_map(|ip| {
                let ip = ip.to_string();
                match self.pods.get(&ip) {
                    Some(network) => Some(Target::Local(network, port)),
                    None => self.services.remote(&ip).then_some(Target::Remote(ip, port)),
                }
            });
        };
        let start = start();
        (0..endpoints.len()).find_map(|i| {
            let (ip, target) = &endpoints[(start + i) % endpoints.len()];
            match self.pods.get(ip) {
                Some(network) => network.is_served(*target).then_some(Target::Local(network, *target)),
                None => self.services.remote(ip).then(|| Target::Remote(ip.clone(), *target)),
            }
        })
    }

    /// The outside host a request to `host:port` goes to when `host` is an ExternalName alias
    /// of one and the pod's grants allow that host, as they would a request naming it.
    fn outside_alias(&self, host: &str, port: u16) -> Option<String> {
        let name = self.services.external_name(host, &self.namespace)?;
        (route(&name, port, &self.pod_ip, &self.grants) == Route::Host).then_some(name)
    }
}

/// The request sent on to `name:port` in place of the alias the guest named: only where it
/// connects changes (and the TLS server name); the `Host` header stays as the guest set it,
/// as a DNS CNAME changes where a client connects, not what it asks for.
fn to_alias_target<B>(request: http::Request<B>, name: &str, port: u16) -> Option<http::Request<B>> {
    let (mut parts, body) = request.into_parts();
    let mut uri = parts.uri.into_parts();
    uri.authority = Some(http::uri::Authority::try_from(format!("{name}:{port}")).ok()?);
    parts.uri = http::Uri::from_parts(uri).ok()?;
    Some(http::Request::from_parts(parts, body))
}

/// Sends a request out over the host network.
fn send_out(request: http::Request<WasiBody>, options: Option<RequestOptions>) -> SendFuture {
    Box::new(async move {
        let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
        Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
    })
}

/// The `WasiHttpHooks` of one instance.
pub struct OutgoingHttp {
    policy: OutgoingPolicy,
    hops: Hops,
}

impl OutgoingHttp {
    pub fn new(policy: OutgoingPolicy, hops: Hops) -> Self {
        Self { policy, hops }
    }

    /// Where requests to this process's pods queue for the guest's driver.
    pub fn hops(&self) -> &Hops {
        &self.hops
    }

    /// The pod of this process a request to `host:port` goes to, and its port, when it
    /// goes to one that serves now (as [`WasiHttpHooks::send_request`] would send it).
    /// Only a hop moves the Service endpoint counter on: a request that is not one goes on
    /// to `send_request`, which picks from the same endpoint.
    pub fn hop_to(&self, host: &str, port: u16) -> Option<(PodNetwork, u16)> {
        match route(host, port, &self.policy.pod_ip, &self.policy.grants) {
            Route::Pod(port) => Some((self.policy.network.clone(), port)),
            Route::Host => None,
            Route::Cluster => {
                let next = &self.policy.next_endpoint;
                match self
                    .policy
                    .cluster_target_from(host, port, || next.load(Ordering::Relaxed))?
                {
                    Target::Local(network, port) => {
                        next.fetch_add(1, Ordering::Relaxed);
                        Some((network, port))
                    }
                    Target::Remote(..) => None,
                }
            }
        }
    }
}

type IoFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;
type SendFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>> + Send>;

impl OutgoingHttp {
    /// Sends a request to a Service that was scaled to zero once `activation` says it has
    /// woken: the request waits as one from outside would in the activator.
    fn after_activation(
        &self,
        activation: crate::services::Activation,
        host: String,
        port: u16,
        request: http::Request<WasiBody>,
    ) -> SendFuture {
        let policy = self.policy.clone();
        Box::new(async move {
            if !activation.await {
                return Err(Error::ConnectionTimeout);
            }
            let target = policy.cluster_target(&host, port).ok_or(Error::ConnectionRefused)?;
            Box::into_pin(target.send(&policy.services, request, None)).await
        })
    }
}

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let uri = request.uri();
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        match route(&host, port, &self.policy.pod_ip, &self.policy.grants) {
            Route::Pod(port) => local(self.policy.network.clone(), port, request, Some(&self.hops)),
            Route::Host => send_out(request, options),
            Route::Cluster => match self.policy.cluster_target(&host, port) {
                Some(target) => target.send(&self.policy.services, request, Some(&self.hops)),
                None => {
                    if let Some(name) = self.policy.outside_alias(&host, port) {
                        return match to_alias_target(request, &name, port) {
                            Some(request) => send_out(request, options),
                            None => Box::new(async { Err(Error::HttpRequestDenied) }),
                        };
                    }
                    let services = &self.policy.services;
                    if let Some(activation) = services.activate(&host, port, &self.policy.namespace) {
                        return self.after_activation(activation, host, port, request);
                    }
                    match services.relay(&host, port, &self.policy.namespace, request) {
                        Ok(relayed) => answered(relayed),
                        Err(_) => Box::new(async { Err(Error::HttpRequestDenied) }),
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_local_granted_and_denied() {
        let grants = parse_grants("api.example.com:443, logs.internal, 127.0.0.1:7777").unwrap();
        let cases = [
            ("localhost", 9009, Route::Pod(9009)),
            ("127.0.0.1", 8080, Route::Pod(8080)),
            ("[::1]", 80, Route::Pod(80)),
            ("10.88.0.7", 8080, Route::Pod(8080)),
            ("api.example.com", 443, Route::Host),
            ("API.example.com", 443, Route::Host),
            ("api.example.com", 80, Route::Cluster),
            ("logs.internal", 1234, Route::Host),
            ("127.0.0.1", 7777, Route::Host),
            ("example.org", 80, Route::Cluster),
        ];
        for (host, port, want) in cases {
            assert_eq!(route(host, port, "10.88.0.7", &grants), want, "{host}:{port}");
        }
        assert_eq!(
            route("anything", 80, "10.88.0.7", &parse_grants("*:80").unwrap()),
            Route::Host
        );
    }

    #[test]
    fn an_alias_target_changes_where_the_request_connects_not_its_host_header() {
        let request = http::Request::builder()
            .uri("https://ext-svc:8443/v1/items?x=1")
            .header(http::header::HOST, "ext-svc:8443")
            .body(())
            .unwrap();
        let sent = to_alias_target(request, "api.example.com", 8443).unwrap();
        assert_eq!(sent.uri().to_string(), "https://api.example.com:8443/v1/items?x=1");
        assert_eq!(sent.headers()[http::header::HOST], "ext-svc:8443");
    }

    #[test]
    fn pods_and_endpoints_not_in_this_process_go_to_the_resolver() {
        struct Elsewhere;
        impl crate::services::ServiceResolver for Elsewhere {
            fn endpoints(&self, host: &str, _port: u16, _namespace: &str) -> Option<Vec<(String, u16)>> {
                (host == "web").then(|| vec![("10.100.0.2".into(), 8080)])
            }
            fn remote(&self, ip: &str) -> bool {
                ip.starts_with("10.100.")
            }
            fn lookup(&self, name: &str, _namespace: &str) -> Option<Vec<std::net::IpAddr>> {
                let ip = match name {
                    "db-0.db" => "10.88.0.5",
                    "db-1.db" => "10.100.0.4",
                    "db-2.db" => "10.101.0.9",
                    _ => return None,
                };
                Some(vec![ip.parse().unwrap()])
            }
        }
        let policy = OutgoingPolicy::default();
        policy.pods.insert(
            "10.88.0.5".into(),
            PodNetwork::default(),
            tokio::sync::watch::channel(Default::default()).1,
        );
        policy.services.set(Arc::new(Elsewhere));
        let cases = [
            ("10.88.0.5", 80, Some("local:80")),
            ("10.100.0.3", 80, Some("remote 10.100.0.3:80")),
            ("web", 80, Some("remote 10.100.0.2:8080")),
            ("10.101.0.9", 80, None),
            ("other", 80, None),
            // Pods by their DNS names: where the name resolves, in this process or another.
            ("db-0.db", 5432, Some("local:5432")),
            ("db-1.db", 5432, Some("remote 10.100.0.4:5432")),
            ("db-2.db", 5432, None),
        ];
        for (host, port, want) in cases {
            let found = policy.cluster_target(host, port).map(|t| match t {
                Target::Local(_, port) => format!("local:{port}"),
                Target::Remote(ip, port) => format!("remote {ip}:{port}"),
            });
            assert_eq!(found.as_deref(), want, "{host}:{port}");
        }
    }

    /// Requests to a Service whose endpoints are all in other processes are not hops, and
    /// asking whether one is a hop does not skip an endpoint: they still alternate.
    #[test]
    fn deciding_on_a_hop_keeps_the_spread_over_remote_endpoints() {
        struct TwoRemote;
        impl crate::services::ServiceResolver for TwoRemote {
            fn endpoints(&self, host: &str, _port: u16, _namespace: &str) -> Option<Vec<(String, u16)>> {
                (host == "web").then(|| vec![("10.100.0.2".into(), 8080), ("10.100.0.3".into(), 8080)])
            }
            fn remote(&self, ip: &str) -> bool {
                ip.starts_with("10.100.")
            }
        }
        let policy = OutgoingPolicy::default();
        policy.services.set(Arc::new(TwoRemote));
        let hooks = OutgoingHttp::new(policy.clone(), Hops::default());
        let sent: Vec<String> = (0..4)
            .map(|_| {
                assert!(hooks.hop_to("web", 80).is_none());
                match policy.cluster_target("web", 80) {
                    Some(Target::Remote(ip, _)) => ip,
                    _ => panic!("a remote endpoint"),
                }
            })
            .collect();
        assert_eq!(sent, ["10.100.0.2", "10.100.0.3", "10.100.0.2", "10.100.0.3"]);
    }

    #[test]
    fn bad_grants_name_the_entry() {
        let err = parse_grants("ok.example.com, bad:port").unwrap_err();
        assert!(err.contains("bad:port"), "{err}");
        assert!(parse_grants(":80").is_err());
    }
}
