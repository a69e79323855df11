//! A pod's in-memory TCP network: containers of one pod reach each other at
//! `localhost` (or the pod IP), and other pods by pod IP, Service cluster IP or Service
//! name, with no host socket for pods of this process; nothing else. A pod on a node in
//! another process is reached through a tunnel to that node (`tunnel.rs`), which is the
//! only host traffic a guest's connect can cause, and only to the cluster's nodes.
//!
//! Why Capstan's own: wasmtime-wasi's TCP wraps OS sockets and has no pluggable
//! network, so two containers of a pod would share the host's port space and other
//! pods could reach them. Here each pod has a [`PodNet`]: a port registry
//! (`loopback.rs`) whose connections (`conn.rs`) are in-memory pipes (`pipe.rs`), and,
//! when it runs in a cluster, its view of the other pods and the Services
//! (`cluster.rs`).
//! Guests hold [`TcpSocket`]s (`socket.rs`) through `wasi:sockets/tcp`,
//! `tcp-create-socket` and `ip-name-lookup` (`tcp.rs`, `lookup.rs`, generated
//! `bindings.rs`), which [`add_to_linker`] puts over wasmtime-wasi's versions; host
//! code (probes, `--publish`, an HTTP client) uses [`PodNet::connect`].
//!
//! Deny by default: a guest can bind only the pod's addresses and connect only to
//! them, to the cluster's pods and to Services; any other destination is
//! `access-denied` before anything leaves the process. Names resolve to `localhost`
//! and Services only (`name-unresolvable` otherwise).

mod bindings;
pub mod cluster;
mod conn;
mod lookup;
pub mod loopback;
pub mod pipe;
mod socket;
mod tcp;
mod tunnel;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, Network};

pub use cluster::Cluster;
pub use lookup::ResolveAddressStream;
pub use loopback::NetError;
pub use socket::TcpSocket;

use crate::store::ContainerData;
use loopback::{Loopback, PortLease};
use pipe::{PipeReader, PipeWriter};
use tunnel::Dialing;

/// The network of one pod. Cloning shares it: every store of the pod holds one.
#[derive(Clone)]
pub struct PodNet {
    loopback: Arc<Loopback>,
    /// The other pods and the Services; none for a pod run outside a cluster.
    cluster: Option<Arc<Cluster>>,
}

/// Where a guest's connection goes, decided when it starts.
pub(crate) enum Destination {
    /// One of the pod's own addresses.
    Pod,
    /// Outside the pod: these listeners, in the order to try them.
    Cluster(cluster::Peers),
}

impl Default for PodNet {
    /// A network with loopback addresses only (no pod IP).
    fn default() -> Self {
        Self::new(None)
    }
}

impl PodNet {
    /// A fresh, empty network; `pod_ip` is reachable besides loopback.
    pub fn new(pod_ip: Option<IpAddr>) -> Self {
        Self {
            loopback: Loopback::new(pod_ip),
            cluster: None,
        }
    }

    /// A fresh network of a pod in a cluster: besides its own addresses, its guests
    /// reach other pods and Services, and resolve Service names, through `cluster`.
    pub fn with_cluster(pod_ip: Option<IpAddr>, cluster: Cluster) -> Self {
        Self {
            loopback: Loopback::new(pod_ip),
            cluster: Some(Arc::new(cluster)),
        }
    }

    pub fn pod_ip(&self) -> Option<IpAddr> {
        self.loopback.pod_ip()
    }

    pub(crate) fn loopback(&self) -> &Arc<Loopback> {
        &self.loopback
    }

    /// What cluster DNS answers for a Service name in the pod's namespace; `None` when
    /// it names no Service or the pod runs outside a cluster.
    pub fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.cluster.as_ref()?.lookup(name)
    }

    /// Where a guest's connection to `to` goes. An error here is one the guest gets at
    /// once: an invalid destination, or one neither the pod nor the cluster has
    /// (`access-denied`: there is no host network).
    pub(crate) fn destination(&self, to: SocketAddr) -> Result<Destination, NetError> {
        match self.loopback.check_destination(to) {
            Ok(()) => Ok(Destination::Pod),
            Err(NetError::AccessDenied(ip)) => self
                .cluster
                .as_ref()
                .and_then(|c| c.route(to))
                .map(Destination::Cluster)
                .ok_or(NetError::AccessDenied(ip)),
            Err(e) => Err(e),
        }
    }

    /// Connects a guest socket (holding `lease` if it bound one) to `to`, which
    /// [`PodNet::destination`] led to `dest`: at once, unless a peer is a pod in another
    /// process (`tunnel.rs`).
    pub(crate) fn dial(&self, dest: Destination, lease: Option<PortLease>, to: SocketAddr) -> Dialing {
        match dest {
            Destination::Pod => Dialing::Done(self.loopback.connect(lease, to)),
            Destination::Cluster(peers) => tunnel::dial_out(&self.loopback, self.cluster.as_ref(), lease, to, peers),
        }
    }

    /// Whether a container of the pod listens on `port`.
    pub fn is_listening(&self, port: u16) -> bool {
        self.loopback.is_listening(port)
    }

    /// Opens a connection from the host to the guest listening on `port` (bound to
    /// any pod address), as the guest's `accept` will see it. No host socket is
    /// involved. Fails with [`NetError::ConnectionRefused`] when nothing listens or
    /// the listener's backlog is full.
    pub async fn connect(&self, port: u16) -> Result<HostStream, NetError> {
        let (end, lease) = self.loopback.connect_from_host(port)?;
        Ok(HostStream {
            input: end.input,
            output: end.output,
            _lease: Some(lease),
        })
    }

    /// Takes a connection from a pod on a node in another process (`from`: its pod
    /// address) to whatever listens on `port` at this pod's IP, as a connection from a
    /// pod of this process would arrive: the guest's `accept` sees `from`. The returned
    /// stream carries the connection's bytes (a node endpoint copies them to and from its
    /// tunnel). Fails with [`NetError::ConnectionRefused`] when nothing listens on
    /// the pod IP there or the backlog is full.
    pub fn accept_from(&self, from: SocketAddr, port: u16) -> Result<HostStream, NetError> {
        let end = self.loopback.connect_from_peer(from, port)?;
        Ok(HostStream {
            input: end.input,
            output: end.output,
            _lease: None,
        })
    }
}

/// The host's end of a connection into the pod. Shutting down writes is an EOF for
/// the guest; dropping it closes both directions.
pub struct HostStream {
    input: PipeReader,
    output: PipeWriter,
    /// The client port it holds in the pod, for a connection from the host; none for one
    /// from another pod (the port is that pod's).
    _lease: Option<PortLease>,
}

impl AsyncRead for HostStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.output).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_shutdown(cx)
    }
}

/// What the socket host functions borrow from a store: the pod's network and the
/// store's resource table.
pub struct NetView<'a> {
    pub net: &'a PodNet,
    pub table: &'a mut ResourceTable,
}

/// The `HasData` marker for [`NetView`].
struct Net;

impl HasData for Net {
    type Data<'a> = NetView<'a>;
}

fn view(data: &mut ContainerData) -> NetView<'_> {
    NetView {
        net: &data.net,
        table: &mut data.table,
    }
}

/// Puts Capstan's TCP and name lookup over wasmtime-wasi's in `linker`, which must
/// already hold all of WASI 0.2 and allow shadowing. Interface by interface (not the
/// world), so the rest of `wasi:sockets` (network, instance-network, UDP) stays
/// wasmtime-wasi's: the `network` resource the guest passes in is wasmtime-wasi's.
pub fn add_to_linker(linker: &mut Linker<ContainerData>) -> wasmtime::Result<()> {
    bindings::tcp::add_to_linker::<_, Net>(linker, view)?;
    bindings::tcp_create_socket::add_to_linker::<_, Net>(linker, view)?;
    bindings::ip_name_lookup::add_to_linker::<_, Net>(linker, view)?;
    Ok(())
}

/// The generated glue turns a `SocketError` into the guest's `error-code` through
/// the `network` interface's host trait, so the view implements it as
/// wasmtime-wasi's does (it is never linked: wasmtime-wasi's `network` stays).
impl network::Host for NetView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<ErrorCode>().copied())
    }
}

impl network::HostNetwork for NetView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
