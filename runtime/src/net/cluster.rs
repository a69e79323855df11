//! What a pod's sockets reach beyond the pod: the other pods of this process by pod
//! IP, the cluster's Services by cluster IP (a ready endpoint, round robin), and
//! Service names through `ip-name-lookup` (cluster DNS). The pod's own addresses stay
//! the port registry's (`loopback.rs`); anything this module does not know is denied.
//!
//! Why a separate piece: the registry is one pod and knows nothing of others; here is
//! the pod's view of the cluster (its namespace, the process's [`PodDirectory`] and the
//! control plane's [`ServiceLink`]), which a pod started without a cluster (tests,
//! `PodNet::default`) simply lacks.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::loopback::Loopback;
use crate::directory::PodDirectory;
use crate::services::{ServiceLink, Tunneled};

/// One pod's view of the cluster.
pub struct Cluster {
    /// Where a bare Service name is looked up.
    namespace: String,
    /// Weak: the directory lists this pod's own network, which holds this view, so a
    /// strong reference would be a cycle whenever a pod outlives its runtime.
    pods: Weak<PodDirectory>,
    services: Arc<ServiceLink>,
    /// Spreads this pod's connections to a Service over its endpoints.
    turn: AtomicUsize,
}

/// Where a connection beyond the pod may go.
pub enum Peer {
    /// A pod of this process: its registry, and the port there.
    Local(Arc<Loopback>, u16),
    /// A pod on a node in another process: its IP, and the port there. Reached through a
    /// tunnel to that node's endpoint (`tunnel.rs`).
    Remote(IpAddr, u16),
}

/// The peers a connection may go to, in the order to try them.
pub type Peers = Vec<Peer>;

impl Cluster {
    pub fn new(namespace: impl Into<String>, pods: &Arc<PodDirectory>, services: Arc<ServiceLink>) -> Self {
        Self {
            namespace: namespace.into(),
            pods: Arc::downgrade(pods),
            services,
            turn: AtomicUsize::new(0),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a connection to `to` (an address outside the pod) may go: the pod at that
    /// IP, in this process or on a node of another, or the ready endpoints of the
    /// Service with that cluster IP and port, from the next one in turn, leaving out
    /// endpoints no known node runs. `None`: nothing of the cluster has that address.
    /// `Some` of nothing: a Service without a ready endpoint (or without that port),
    /// which refuses as kube-proxy's reject rule does.
    pub fn route(&self, to: SocketAddr) -> Option<Peers> {
        let pods = self.pods.upgrade()?;
        let ip = to.ip().to_canonical();
        if let Some(peer) = self.peer(&pods, ip, to.port()) {
            return Some(vec![peer]);
        }
        let endpoints = self.services.endpoints(&ip.to_string(), to.port(), &self.namespace)?;
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        Some(
            (0..endpoints.len())
                .filter_map(|i| {
                    let (ip, port) = &endpoints[(start + i) % endpoints.len()];
                    self.peer(&pods, ip.parse().ok()?, *port)
                })
                .collect(),
        )
    }

    /// The pod at `ip` as a peer: in this process's directory, else on a node of another
    /// process the resolver knows.
    fn peer(&self, pods: &PodDirectory, ip: IpAddr, port: u16) -> Option<Peer> {
        let key = ip.to_string();
        if let Some(pod) = pods.get(&key) {
            return Some(Peer::Local(Arc::clone(pod.net().loopback()), port));
        }
        self.services.remote(&key).then_some(Peer::Remote(ip, port))
    }

    /// Opens a tunnel from `from` to `port` of the pod at `ip` in another process.
    pub fn tunnel(&self, ip: IpAddr, port: u16, from: SocketAddr) -> Tunneled {
        self.services.tunnel(&ip.to_string(), port, from)
    }

    /// What cluster DNS answers for `name` in this pod's namespace; `None` when it
    /// names no Service.
    pub fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.services.lookup(name, &self.namespace)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::loopback::{ConnEnd, NetError, PortLease};
    use super::super::tunnel::Dialing;
    use super::super::{Destination, PodNet};
    use super::*;
    use crate::network::PodNetwork;
    use crate::services::ServiceResolver;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A Service: name (in namespace `shop`), cluster IP (`None` when headless), and
    /// its ready endpoints on port 80.
    type FakeService = (&'static str, &'static str, Vec<(String, u16)>);

    #[derive(Default)]
    struct FakeServices(Vec<FakeService>);

    impl ServiceResolver for FakeServices {
        fn endpoints(&self, host: &str, port: u16, _namespace: &str) -> Option<Vec<(String, u16)>> {
            let (_, _, eps) = self.0.iter().find(|(_, ip, _)| *ip == host)?;
            Some(if port == 80 { eps.clone() } else { Vec::new() })
        }

        fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<IpAddr>> {
            let (_, ip, eps) = self.0.iter().find(|(n, _, _)| *n == name && namespace == "shop")?;
            Some(match ip.parse() {
                Ok(ip) => vec![ip],
                Err(_) => eps.iter().map(|(ip, _)| ip.parse().unwrap()).collect(),
            })
        }
    }

    /// A process with pods at the given IPs; returns their nets (the first is the
    /// client, in namespace `shop`).
    pub(crate) fn process(ips: &[&str], services: impl ServiceResolver + 'static) -> (Arc<PodDirectory>, Vec<PodNet>) {
        let directory = Arc::new(PodDirectory::default());
        let link = Arc::new(ServiceLink::default());
        link.set(Arc::new(services));
        let nets: Vec<PodNet> = ips
            .iter()
            .map(|ip| {
                let cluster = Cluster::new("shop", &directory, Arc::clone(&link));
                let net = PodNet::with_cluster(ip.parse().ok(), cluster);
                directory.insert(
                    ip.to_string(),
                    PodNetwork::new(net.clone()),
                    tokio::sync::watch::channel(Default::default()).1,
                );
                net
            })
            .collect();
        (directory, nets)
    }

    pub(crate) fn listen(net: &PodNet, at: &str) -> (PortLease, Arc<super::super::loopback::AcceptQueue>) {
        let lease = net.loopback().bind(addr(at)).unwrap();
        let queue = net.loopback().listen(&lease, 8).unwrap();
        (lease, queue)
    }

    fn dial(net: &PodNet, to: &str) -> Result<(ConnEnd, PortLease), NetError> {
        let to = addr(to);
        let dest = net.destination(to)?;
        done(net.dial(dest, None, to))
    }

    /// The outcome of a connect that only pods of this process took part in.
    fn done(dialing: Dialing) -> Result<(ConnEnd, PortLease), NetError> {
        match dialing {
            Dialing::Done(outcome) => outcome,
            Dialing::Pending(_) => panic!("a connect within the process waits on nothing"),
        }
    }

    #[test]
    fn a_pod_reaches_another_pods_listener_by_pod_ip_and_nothing_unknown() {
        let (_dir, nets) = process(&["10.88.0.2", "10.88.0.3"], FakeServices::default());
        let (client, server) = (&nets[0], &nets[1]);
        assert_eq!(
            dial(client, "10.88.0.3:7").err(),
            Some(NetError::ConnectionRefused),
            "a pod with no listener refuses"
        );
        let (_lo, _q) = listen(server, "127.0.0.1:7");
        assert_eq!(
            dial(client, "10.88.0.3:7").err(),
            Some(NetError::ConnectionRefused),
            "a loopback listener is the pod's own"
        );
        let (_any, queue) = listen(server, "0.0.0.0:8");
        let (end, lease) = dial(client, "10.88.0.3:8").unwrap();
        let accepted = queue.accept().expect("queued at the other pod");
        assert_eq!(end.remote, addr("10.88.0.3:8"));
        assert_eq!(end.local, lease.addr());
        assert_eq!(end.local.ip(), addr("10.88.0.2:1").ip(), "leaves from the pod IP");
        assert_eq!(accepted.remote, end.local, "the peer sees the client pod");
        assert_eq!(accepted.local, addr("10.88.0.3:8"));
        let far: IpAddr = "10.88.0.99".parse().unwrap();
        assert_eq!(
            dial(client, "10.88.0.99:8").err(),
            Some(NetError::AccessDenied(far)),
            "an address no pod or Service has stays denied"
        );
    }

    #[test]
    fn a_service_ip_spreads_over_ready_endpoints_skipping_gone_listeners() {
        let endpoints = vec![
            ("10.88.0.3".to_string(), 8080),
            ("10.88.0.4".to_string(), 8080),
            ("10.88.0.5".to_string(), 8080), // no listener
            ("10.88.0.9".to_string(), 8080), // no such pod
        ];
        let services = FakeServices(vec![
            ("web", "10.96.0.7", endpoints),
            ("empty", "10.96.0.8", Vec::new()),
        ]);
        let (_dir, nets) = process(&["10.88.0.2", "10.88.0.3", "10.88.0.4", "10.88.0.5"], services);
        let (_a, qa) = listen(&nets[1], "0.0.0.0:8080");
        let (_b, qb) = listen(&nets[2], "10.88.0.4:8080");
        let mut reached = Vec::new();
        for _ in 0..8 {
            let (end, _lease) = dial(&nets[0], "10.96.0.7:80").unwrap();
            assert_eq!(end.remote, addr("10.96.0.7:80"), "the client sees the Service");
            let accepted = qa.accept().or_else(|| qb.accept()).expect("an endpoint took it");
            assert_eq!(accepted.remote, end.local);
            reached.push(accepted.local);
        }
        for ep in ["10.88.0.3:8080", "10.88.0.4:8080"] {
            assert!(reached.contains(&addr(ep)), "{ep} never reached: {reached:?}");
        }
        assert_eq!(
            dial(&nets[0], "10.96.0.7:81").err(),
            Some(NetError::ConnectionRefused),
            "a port the Service lacks"
        );
        assert_eq!(
            dial(&nets[0], "10.96.0.8:80").err(),
            Some(NetError::ConnectionRefused),
            "no ready endpoint refuses rather than denies"
        );
    }

    #[test]
    fn a_socket_bound_to_loopback_cannot_leave_the_pod() {
        let (_dir, nets) = process(&["10.88.0.2", "10.88.0.3"], FakeServices::default());
        let (_l, _q) = listen(&nets[1], "0.0.0.0:8");
        let lease = nets[0].loopback().bind(addr("127.0.0.1:0")).unwrap();
        let to = addr("10.88.0.3:8");
        let dest = nets[0].destination(to).unwrap();
        assert!(matches!(dest, Destination::Cluster(_)));
        assert_eq!(
            done(nets[0].dial(dest, Some(lease), to)).err(),
            Some(NetError::InvalidArgument)
        );
        let bound = nets[0].loopback().bind(addr("0.0.0.0:4000")).unwrap();
        let dest = nets[0].destination(to).unwrap();
        let (end, _) = done(nets[0].dial(dest, Some(bound), to)).unwrap();
        assert_eq!(end.local, addr("10.88.0.2:4000"));
    }

    #[test]
    fn names_resolve_through_the_services_in_the_pods_namespace() {
        let services = FakeServices(vec![
            ("web", "10.96.0.7", Vec::new()),
            (
                "db",
                "None",
                vec![("10.88.0.4".to_string(), 5432), ("10.88.0.3".to_string(), 5432)],
            ),
        ]);
        let (_dir, nets) = process(&["10.88.0.2"], services);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(nets[0].lookup("web"), Some(vec![ip("10.96.0.7")]));
        assert_eq!(nets[0].lookup("db"), Some(vec![ip("10.88.0.4"), ip("10.88.0.3")]));
        assert_eq!(nets[0].lookup("nope"), None);
        assert_eq!(PodNet::new(None).lookup("web"), None, "no cluster, no names");
    }
}
