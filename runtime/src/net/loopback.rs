//! A pod's port registry: which ports are bound and listening, the accept queues,
//! and how a connect finds its listener. No wasmtime here: the guest-facing socket
//! (`socket.rs`) and the host API (`PodNet`) both drive this one core.
//!
//! Model: a pod is one network namespace with one TCP port space. Its addresses are
//! loopback (`127.0.0.0/8`, `::1`) and the pod IP; a bind to any of them, or to the
//! unspecified address, takes the port for the whole pod, so a second bind fails
//! with address-in-use whatever address it names. A connect to a pod address reaches
//! a listener whose bound address covers it (unspecified covers all; loopback covers
//! loopback of either family; the pod IP covers itself). A connect beyond the pod leaves
//! from the pod IP ([`Loopback::outbound`]) and arrives at another pod's registry
//! ([`Loopback::connect_from_peer`]) at that pod's IP, as over a pod network (`cluster.rs`
//! says which pods an address leads to, `tunnel.rs` makes the connection); any other
//! destination is denied before anything leaves the process: the host network is off by
//! default.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

pub use super::conn::{AcceptQueue, ConnEnd, connection};

/// First and last port handed out for port 0 and for a connect without a bind
/// (IANA's dynamic range, the same one Linux hands out by default since 2.6).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// Connections waiting for `accept` when the guest sets no backlog (Rust std's
/// `listen(128)`, and wasmtime-wasi's default).
pub const DEFAULT_BACKLOG: usize = 128;

/// Largest accepted backlog: a guest cannot make a pod hold unbounded connections.
pub const MAX_BACKLOG: usize = 4096;

/// Why a socket operation on the pod's network failed. Each maps to one WASI
/// `error-code` (`socket.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The port is taken in this pod, or no ephemeral port is free.
    #[error("address in use")]
    AddressInUse,
    /// The address is none of the pod's (loopback, unspecified, the pod IP).
    #[error("address not bindable in this pod")]
    AddressNotBindable,
    /// Nothing in the pod listens there, or the listener's backlog is full.
    #[error("connection refused")]
    ConnectionRefused,
    /// The destination is outside the pod, and pods have no host network.
    #[error("access denied: {0} is outside the pod and the host network is off")]
    AccessDenied(IpAddr),
    /// The destination is the unspecified address, a multicast one, or port 0.
    #[error("invalid destination address")]
    InvalidArgument,
    /// The destination pod runs on a node in another process, which did not answer.
    #[error("the destination pod's node cannot be reached")]
    Unreachable,
}

/// The registry of one pod. Shared (`Arc`) by every store of the pod.
pub struct Loopback {
    pod_ip: Option<IpAddr>,
    ports: Mutex<Ports>,
}

struct Ports {
    used: HashMap<u16, PortUse>,
    next_ephemeral: u16,
}

enum PortUse {
    Bound,
    Listening { ip: IpAddr, queue: Arc<AcceptQueue> },
}

impl Loopback {
    pub fn new(pod_ip: Option<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            pod_ip,
            ports: Mutex::new(Ports {
                used: HashMap::new(),
                next_ephemeral: *EPHEMERAL_PORTS.start(),
            }),
        })
    }

    pub fn pod_ip(&self) -> Option<IpAddr> {
        self.pod_ip
    }

    fn lock(&self) -> MutexGuard<'_, Ports> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is one of the pod's own addresses (not the unspecified one).
    pub fn is_local(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || Some(ip) == self.pod_ip
    }

    /// Takes `addr`'s port for the pod (port 0: a free ephemeral one). The port is
    /// the pod's until the returned lease is dropped.
    pub fn bind(self: &Arc<Self>, addr: SocketAddr) -> Result<PortLease, NetError> {
        let ip = addr.ip().to_canonical();
        if !ip.is_unspecified() && !self.is_local(ip) {
            return Err(NetError::AddressNotBindable);
        }
        let mut ports = self.lock();
        let port = match addr.port() {
            0 => ports.free_ephemeral()?,
            p if ports.used.contains_key(&p) => return Err(NetError::AddressInUse),
            p => p,
        };
        ports.used.insert(port, PortUse::Bound);
        Ok(PortLease {
            net: self.clone(),
            addr: SocketAddr::new(addr.ip(), port),
        })
    }

    /// Turns a bound port into a listener with an accept queue of `backlog`.
    pub fn listen(&self, lease: &PortLease, backlog: usize) -> Result<Arc<AcceptQueue>, NetError> {
        let mut ports = self.lock();
        let entry = ports.used.get_mut(&lease.addr.port()).ok_or(NetError::AddressInUse)?;
        let queue = Arc::new(AcceptQueue::new(backlog));
        *entry = PortUse::Listening {
            ip: lease.addr.ip(),
            queue: queue.clone(),
        };
        Ok(queue)
    }

    /// Whether something in the pod listens on `port`.
    pub fn is_listening(&self, port: u16) -> bool {
        matches!(self.lock().used.get(&port), Some(PortUse::Listening { .. }))
    }

    /// Connects a guest socket to `to`. `lease` is the socket's own bound port, if
    /// it bound one; otherwise an ephemeral port is taken. Returns the client end
    /// and the lease the client holds for the connection's life.
    pub fn connect(
        self: &Arc<Self>,
        lease: Option<PortLease>,
        to: SocketAddr,
    ) -> Result<(ConnEnd, PortLease), NetError> {
        self.check_destination(to)?;
        let ip = to.ip().to_canonical();
        let queue = self.listener(to.port(), |bound| covers(bound, ip, self.pod_ip))?;
        let lease = match lease {
            Some(l) => l,
            None => self.bind(SocketAddr::new(source_for(ip), 0))?,
        };
        let local = match lease.addr.ip() {
            unspecified if unspecified.is_unspecified() => SocketAddr::new(source_for(ip), lease.addr.port()),
            _ => lease.addr,
        };
        let (client, server) = connection(local, to);
        queue.push(server)?;
        Ok((client, lease))
    }

    /// The port and source address a guest socket leaves the pod from to reach `to`,
    /// an address outside the pod: `lease`'s port, or an ephemeral one, at the pod IP.
    /// A socket bound to loopback cannot leave the pod (Linux drops such packets as
    /// martians): said at once rather than left to hang.
    pub fn outbound(
        self: &Arc<Self>,
        lease: Option<PortLease>,
        to: SocketAddr,
    ) -> Result<(PortLease, SocketAddr), NetError> {
        // Without a pod IP there is no address to leave the pod from.
        let source = self.pod_ip.ok_or(NetError::AccessDenied(to.ip()))?;
        let lease = match lease {
            Some(l) => l,
            None => self.bind(SocketAddr::new(source, 0))?,
        };
        match lease.addr.ip() {
            ip if ip.is_unspecified() || ip.to_canonical() == source => {
                let local = SocketAddr::new(source, lease.addr.port());
                Ok((lease, local))
            }
            _ => Err(NetError::InvalidArgument),
        }
    }

    /// Takes a connection from another pod (`from`: its pod IP and port) to whatever
    /// listens on `port` at this pod's IP (bound to it or to the unspecified address;
    /// a loopback listener is not reachable from outside). Returns the client's end.
    pub fn connect_from_peer(&self, from: SocketAddr, port: u16) -> Result<ConnEnd, NetError> {
        let pod_ip = self.pod_ip.ok_or(NetError::ConnectionRefused)?;
        let queue = self.listener(port, |bound| covers(bound, pod_ip, self.pod_ip))?;
        let (client, server) = connection(from, SocketAddr::new(pod_ip, port));
        queue.push(server)?;
        Ok(client)
    }

    /// Whether a guest may connect to `to` at all: a pod address and a real port.
    /// Anything else is refused here, before any host traffic could happen.
    pub fn check_destination(&self, to: SocketAddr) -> Result<(), NetError> {
        let ip = to.ip().to_canonical();
        if ip.is_unspecified() || ip.is_multicast() || to.port() == 0 || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err(NetError::InvalidArgument);
        }
        if !self.is_local(ip) {
            return Err(NetError::AccessDenied(to.ip()));
        }
        Ok(())
    }

    /// Connects from the host (probes, `--publish`, host clients) to whatever
    /// listens on `port`, bound to any of the pod's addresses: the kubelet's probes
    /// reach the pod IP and `port-forward` reaches localhost, so the host reaches
    /// both. The client side holds an ephemeral port while `lease` lives.
    pub fn connect_from_host(self: &Arc<Self>, port: u16) -> Result<(ConnEnd, PortLease), NetError> {
        let mut bound_ip = None;
        let queue = self.listener(port, |ip| {
            bound_ip = Some(ip);
            true
        })?;
        let to_ip = match bound_ip {
            Some(ip) if !ip.is_unspecified() => ip,
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let lease = self.bind(SocketAddr::new(source_for(to_ip), 0))?;
        let (client, server) = connection(lease.addr, SocketAddr::new(to_ip, port));
        queue.push(server)?;
        Ok((client, lease))
    }

    /// The accept queue listening on `port` whose bound address `reaches`.
    fn listener(&self, port: u16, mut reaches: impl FnMut(IpAddr) -> bool) -> Result<Arc<AcceptQueue>, NetError> {
        match self.lock().used.get(&port) {
            Some(PortUse::Listening { ip, queue }) if reaches(*ip) => Ok(queue.clone()),
            _ => Err(NetError::ConnectionRefused),
        }
    }

    fn release(&self, port: u16) {
        let removed = self.lock().used.remove(&port);
        if let Some(PortUse::Listening { queue, .. }) = removed {
            // Connections nobody accepted are reset: their ends drop here, which
            // closes both pipes, so the connector reads EOF and its writes fail.
            drop(queue.close());
        }
    }
}

impl Ports {
    fn free_ephemeral(&mut self) -> Result<u16, NetError> {
        let (first, last) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
        for _ in EPHEMERAL_PORTS {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == last { first } else { port + 1 };
            if !self.used.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(NetError::AddressInUse)
    }
}

/// Whether a listener bound to `bound` is reached by a connect to `to`.
/// Whether a listener bound to `bound` takes a connection to `to`, as on Linux: a
/// loopback listener takes loopback connections of its own family only (127.0.0.1 is
/// not ::1, so a client that tries both addresses of `localhost` is refused on the
/// wrong one and moves on); `0.0.0.0` takes IPv4, `::` (dual-stack) takes both.
fn covers(bound: IpAddr, to: IpAddr, pod_ip: Option<IpAddr>) -> bool {
    let bound = bound.to_canonical();
    let same_family = bound.is_ipv4() == to.is_ipv4();
    if bound.is_unspecified() {
        return same_family || bound.is_ipv6();
    }
    if bound.is_loopback() {
        return same_family && to.is_loopback();
    }
    Some(bound) == pod_ip && to == bound
}

/// The source address of a connection to `to`: loopback of the same family, or
/// the pod IP itself.
fn source_for(to: IpAddr) -> IpAddr {
    match to {
        IpAddr::V4(ip) if ip.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// A port the pod holds for one socket; dropping it frees the port (and, for a
/// listener, resets the connections still waiting in its queue).
pub struct PortLease {
    net: Arc<Loopback>,
    addr: SocketAddr,
}

impl PortLease {
    /// The bound address, with the port an ephemeral bind picked.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn net(&self) -> &Arc<Loopback> {
        &self.net
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.net.release(self.addr.port());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn pod() -> Arc<Loopback> {
        Loopback::new(Some("10.88.0.7".parse().unwrap()))
    }

    #[test]
    fn a_port_is_bound_once_per_pod_whatever_the_address() {
        let net = pod();
        let first = net.bind(addr("127.0.0.1:8080")).unwrap();
        for again in ["127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080", "10.88.0.7:8080"] {
            assert_eq!(net.bind(addr(again)).err(), Some(NetError::AddressInUse), "{again}");
        }
        assert_eq!(
            net.bind(addr("192.168.1.1:80")).err(),
            Some(NetError::AddressNotBindable)
        );
        drop(first);
        assert!(
            net.bind(addr("0.0.0.0:8080")).is_ok(),
            "dropping the lease frees the port"
        );
    }

    #[test]
    fn port_zero_takes_distinct_ephemeral_ports() {
        let net = pod();
        let a = net.bind(addr("127.0.0.1:0")).unwrap();
        let b = net.bind(addr("127.0.0.1:0")).unwrap();
        assert!(EPHEMERAL_PORTS.contains(&a.addr().port()));
        assert!(EPHEMERAL_PORTS.contains(&b.addr().port()));
        assert_ne!(a.addr().port(), b.addr().port());
    }

    #[test]
    fn ephemeral_ports_run_out_with_address_in_use() {
        let net = pod();
        let leases: Vec<_> = EPHEMERAL_PORTS
            .map(|_| net.bind(addr("127.0.0.1:0")).unwrap())
            .collect();
        assert_eq!(net.bind(addr("127.0.0.1:0")).err(), Some(NetError::AddressInUse));
        drop(leases);
        assert!(net.bind(addr("127.0.0.1:0")).is_ok());
    }

    #[test]
    fn connect_is_refused_without_a_listener_and_denied_outside_the_pod() {
        let net = pod();
        assert_eq!(
            net.connect(None, addr("127.0.0.1:9")).err(),
            Some(NetError::ConnectionRefused)
        );
        let bound = net.bind(addr("127.0.0.1:9")).unwrap();
        assert_eq!(
            net.connect(None, addr("127.0.0.1:9")).err(),
            Some(NetError::ConnectionRefused),
            "bound, not listening"
        );
        let far: IpAddr = "93.184.216.34".parse().unwrap();
        assert_eq!(
            net.connect(None, SocketAddr::new(far, 80)).err(),
            Some(NetError::AccessDenied(far))
        );
        assert_eq!(
            net.connect(None, addr("0.0.0.0:9")).err(),
            Some(NetError::InvalidArgument)
        );
        drop(bound);
    }

    #[test]
    fn the_bound_address_decides_who_reaches_a_listener() {
        let net = pod();
        let lo = net.bind(addr("127.0.0.1:80")).unwrap();
        let _q = net.listen(&lo, 8).unwrap();
        assert!(net.connect(None, addr("127.0.0.1:80")).is_ok());
        // As on Linux, 127.0.0.1 is not ::1: a client trying both addresses of
        // `localhost` must be refused on the other family, not queued unseen.
        assert_eq!(
            net.connect(None, addr("[::1]:80")).err(),
            Some(NetError::ConnectionRefused)
        );
        assert_eq!(
            net.connect(None, addr("10.88.0.7:80")).err(),
            Some(NetError::ConnectionRefused)
        );
        let any = net.bind(addr("0.0.0.0:81")).unwrap();
        let _q = net.listen(&any, 8).unwrap();
        assert!(net.connect(None, addr("10.88.0.7:81")).is_ok());
        assert_eq!(
            net.connect(None, addr("[::1]:81")).err(),
            Some(NetError::ConnectionRefused)
        );
        let dual = net.bind(addr("[::]:82")).unwrap();
        let _q = net.listen(&dual, 8).unwrap();
        assert!(net.connect(None, addr("[::1]:82")).is_ok());
        assert!(
            net.connect(None, addr("127.0.0.1:82")).is_ok(),
            "an IPv6 wildcard listener is dual-stack"
        );
        assert!(net.connect_from_host(80).is_ok(), "the host reaches any listener");
    }

    #[test]
    fn accept_hands_out_connections_in_order_with_matching_addresses() {
        let net = pod();
        let lease = net.bind(addr("127.0.0.1:7000")).unwrap();
        let queue = net.listen(&lease, 8).unwrap();
        assert!(net.is_listening(7000));
        let (c1, l1) = net.connect(None, addr("127.0.0.1:7000")).unwrap();
        let (c2, _l2) = net.connect(None, addr("127.0.0.1:7000")).unwrap();
        let s1 = queue.accept().unwrap();
        let s2 = queue.accept().unwrap();
        assert!(queue.accept().is_none());
        assert_eq!((s1.remote, s1.local), (c1.local, c1.remote));
        assert_eq!(s2.remote, c2.local);
        assert_eq!(c1.local, l1.addr());
        assert_eq!(c1.remote, addr("127.0.0.1:7000"));
    }

    #[test]
    fn a_full_backlog_refuses_and_closing_the_listener_frees_the_port() {
        let net = pod();
        let lease = net.bind(addr("127.0.0.1:7001")).unwrap();
        let queue = net.listen(&lease, 1).unwrap();
        let _first = net.connect(None, addr("127.0.0.1:7001")).unwrap();
        assert_eq!(
            net.connect(None, addr("127.0.0.1:7001")).err(),
            Some(NetError::ConnectionRefused)
        );
        queue.set_backlog(2);
        assert!(net.connect(None, addr("127.0.0.1:7001")).is_ok());
        drop(lease);
        assert!(!net.is_listening(7001));
        assert_eq!(
            net.connect(None, addr("127.0.0.1:7001")).err(),
            Some(NetError::ConnectionRefused)
        );
    }
}
