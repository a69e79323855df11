//! A guest's TCP connection beyond its pod. To a pod of this process it is an in-memory
//! connection, made at once. To a pod on a node in another process it is a tunnel through
//! that node's endpoint (the control plane's resolver opens it over real TCP), bridged to
//! an in-memory connection the guest holds.
//!
//! Why bridged rather than handing the guest the tunnel: a guest's socket streams are the
//! pod network's pipes whatever the peer, so `shutdown`, the stream pollables, back-pressure
//! and teardown (a container's store dropping its pipes) work one way for every peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::HostStream;
use super::cluster::{Cluster, Peer, Peers};
use super::conn::{ConnEnd, connection};
use super::loopback::{Loopback, NetError, PortLease};
use crate::services::Duplex;

/// How long opening a tunnel may take before the guest's connect fails as unreachable: a
/// node that accepts TCP but never answers must not hold a guest's connect forever.
const TUNNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection once made, and the client port it holds.
pub(crate) type Dialed = Result<(ConnEnd, PortLease), NetError>;

/// A guest's connect in progress.
pub(crate) enum Dialing {
    /// Decided at once: every peer is in this process (or the connect failed before any
    /// peer was tried).
    Done(Dialed),
    /// Waiting on a tunnel to another process; a task of its own sends the outcome, so the
    /// handshake goes on whether or not the guest polls.
    Pending(oneshot::Receiver<Dialed>),
}

/// Connects a guest socket (holding `lease` if it bound one) of the pod whose registry is
/// `loopback` to `to`, an address outside the pod, through the first of `peers` that takes
/// it. The connection leaves from the pod IP and names `to` as its remote address, which
/// for a Service is its cluster IP while the peer sees its own pod IP, as after kube-proxy's
/// DNAT. No peer taking it is a refusal; only unreachable nodes, unreachable.
pub(crate) fn dial_out(
    loopback: &Arc<Loopback>,
    cluster: Option<&Arc<Cluster>>,
    lease: Option<PortLease>,
    to: SocketAddr,
    peers: Peers,
) -> Dialing {
    let (lease, local) = match loopback.outbound(lease, to) {
        Ok(outbound) => outbound,
        Err(e) => return Dialing::Done(Err(e)),
    };
    let remote = peers.iter().any(|p| matches!(p, Peer::Remote(..)));
    let (Some(cluster), true) = (cluster, remote) else {
        let end = peers.iter().find_map(|peer| local_connect(peer, local, to));
        return Dialing::Done(end.map(|end| (end, lease)).ok_or(NetError::ConnectionRefused));
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Dialing::Done(Err(NetError::Unreachable));
    };
    let cluster = Arc::clone(cluster);
    let (tx, rx) = oneshot::channel();
    runtime.spawn(async move {
        let outcome = connect(&cluster, local, to, peers).await.map(|end| (end, lease));
        // A guest that dropped its socket meanwhile drops the connection here.
        let _ = tx.send(outcome);
    });
    Dialing::Pending(rx)
}

/// The client end of a connection from `local` to a peer of this process, if it takes it.
fn local_connect(peer: &Peer, local: SocketAddr, to: SocketAddr) -> Option<ConnEnd> {
    let Peer::Local(registry, port) = peer else {
        return None;
    };
    let mut end = registry.connect_from_peer(local, *port).ok()?;
    end.remote = to;
    Some(end)
}

/// Tries `peers` in order, opening tunnels to those in other processes.
async fn connect(cluster: &Cluster, local: SocketAddr, to: SocketAddr, peers: Peers) -> Result<ConnEnd, NetError> {
    let mut refused = false;
    for peer in &peers {
        let Peer::Remote(ip, port) = peer else {
            match local_connect(peer, local, to) {
                Some(end) => return Ok(end),
                None => refused = true,
            }
            continue;
        };
        let opened = tokio::time::timeout(TUNNEL_TIMEOUT, cluster.tunnel(*ip, *port, local)).await;
        match opened {
            Ok(Ok(stream)) => {
                let (client, server) = connection(local, to);
                tokio::spawn(bridge(server, stream));
                return Ok(client);
            }
            Ok(Err(NetError::Unreachable)) | Err(_) => {}
            Ok(Err(_)) => refused = true,
        }
    }
    // A refusal says more than an unreachable node: something answered for the address.
    Err(if refused || peers.is_empty() {
        NetError::ConnectionRefused
    } else {
        NetError::Unreachable
    })
}

/// Copies between the pod's end of an in-memory connection and a tunnel, each direction
/// until its EOF, which it
/// passes on as a shutdown of the other side's writes. Ends when both directions have, or
/// either side fails; dropping both ends then closes the guest's pipes and the stream.
async fn bridge(end: ConnEnd, mut stream: impl Duplex) {
    let mut pod = HostStream {
        input: end.input,
        output: end.output,
        _lease: None,
    };
    let _ = tokio::io::copy_bidirectional(&mut pod, &mut stream).await;
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use wasmtime_wasi::p2::Pollable as _;
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};

    use super::super::cluster::tests::{listen, process};
    use super::super::{PodNet, TcpSocket};
    use super::*;
    use crate::services::{ServiceResolver, Tunneled};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Another process as its node endpoint would answer: pod 10.99.0.5 echoes what port 7
    /// receives (after the client's address), refuses port 8; pod 10.99.0.6's node does not
    /// answer. Service 10.96.0.7:80 has endpoints (refusing remote, then a local pod),
    /// 10.96.0.8:80 only the unreachable one. Records each tunnel's source.
    #[derive(Default)]
    struct OtherProcess {
        sources: Arc<Mutex<Vec<SocketAddr>>>,
    }

    impl ServiceResolver for OtherProcess {
        fn endpoints(&self, host: &str, port: u16, _namespace: &str) -> Option<Vec<(String, u16)>> {
            let endpoints = match (host, port) {
                ("10.96.0.7", 80) => vec![("10.99.0.5".into(), 8), ("10.88.0.3".into(), 8080)],
                ("10.96.0.8", 80) => vec![("10.99.0.6".into(), 7)],
                _ => return None,
            };
            Some(endpoints)
        }

        fn remote(&self, ip: &str) -> bool {
            ip == "10.99.0.5" || ip == "10.99.0.6"
        }

        fn tunnel(&self, ip: &str, port: u16, from: SocketAddr) -> Tunneled {
            self.sources.lock().unwrap().push(from);
            let outcome = match (ip, port) {
                ("10.99.0.5", 7) => {
                    let (near, mut far) = tokio::io::duplex(64);
                    tokio::spawn(async move {
                        let mut got = Vec::new();
                        far.read_to_end(&mut got).await.unwrap();
                        let reply = format!("{from} said {}", String::from_utf8_lossy(&got));
                        far.write_all(reply.as_bytes()).await.unwrap();
                        far.shutdown().await.unwrap();
                    });
                    Ok(Box::new(near) as Box<dyn Duplex>)
                }
                ("10.99.0.5", _) => Err(NetError::ConnectionRefused),
                _ => Err(NetError::Unreachable),
            };
            Box::pin(async move { outcome })
        }
    }

    /// Connects a guest socket of `net` to `to` as a guest does: start, wait on its
    /// pollable, finish.
    async fn connect(net: &PodNet, to: &str) -> Result<(ConnEnd, PortLease), ErrorCode> {
        let mut socket = TcpSocket::new(IpAddressFamily::Ipv4);
        socket.start_connect(net, addr(to))?;
        socket.ready().await;
        socket.finish_connect()
    }

    /// Writes `message`, shuts the write half, reads to the end.
    async fn exchange(end: ConnEnd, message: &str) -> String {
        let (mut input, mut output) = (end.input, end.output);
        output.write_all(message.as_bytes()).await.unwrap();
        output.shutdown().await.unwrap();
        let mut back = String::new();
        input.read_to_string(&mut back).await.unwrap();
        back
    }

    #[tokio::test]
    async fn a_pod_in_another_process_is_reached_through_a_tunnel_both_ways() {
        let far = OtherProcess::default();
        let sources = Arc::clone(&far.sources);
        let (_dir, nets) = process(&["10.88.0.2"], far);
        let mut socket = TcpSocket::new(IpAddressFamily::Ipv4);
        socket.start_connect(&nets[0], addr("10.99.0.5:7")).unwrap();
        assert!(
            matches!(socket.finish_connect(), Ok(_) | Err(ErrorCode::WouldBlock)),
            "a connect still opening its tunnel says would-block"
        );
        let (end, lease) = connect(&nets[0], "10.99.0.5:7").await.unwrap();
        assert_eq!(end.remote, addr("10.99.0.5:7"));
        assert_eq!(
            end.local.ip(),
            "10.88.0.2".parse::<IpAddr>().unwrap(),
            "leaves from the pod IP"
        );
        assert_eq!(end.local, lease.addr(), "holding its ephemeral port");
        let local = end.local;
        assert_eq!(exchange(end, "hello").await, format!("{local} said hello"));
        assert_eq!(
            sources.lock().unwrap().last(),
            Some(&local),
            "the far pod sees the client pod"
        );
    }

    #[tokio::test]
    async fn refusals_and_unreachable_nodes_fail_the_connect_with_their_codes() {
        let (_dir, nets) = process(&["10.88.0.2"], OtherProcess::default());
        assert_eq!(
            connect(&nets[0], "10.99.0.5:8").await.err(),
            Some(ErrorCode::ConnectionRefused)
        );
        assert_eq!(
            connect(&nets[0], "10.99.0.6:7").await.err(),
            Some(ErrorCode::RemoteUnreachable)
        );
        assert_eq!(
            connect(&nets[0], "10.96.0.8:80").await.err(),
            Some(ErrorCode::RemoteUnreachable),
            "a Service whose only endpoint's node is gone"
        );
        assert_eq!(
            connect(&nets[0], "10.99.0.7:7").await.err(),
            Some(ErrorCode::AccessDenied),
            "an IP no node runs stays denied"
        );
    }

    #[tokio::test]
    async fn a_service_connect_moves_on_from_a_refusing_remote_endpoint_to_a_local_one() {
        let (_dir, nets) = process(&["10.88.0.2", "10.88.0.3"], OtherProcess::default());
        let (_lease, queue) = listen(&nets[1], "0.0.0.0:8080");
        let (end, _lease) = connect(&nets[0], "10.96.0.7:80").await.unwrap();
        assert_eq!(end.remote, addr("10.96.0.7:80"), "the client sees the Service");
        let accepted = queue.accept().expect("the local endpoint took it");
        assert_eq!(accepted.remote, end.local);
    }

    #[tokio::test]
    async fn a_connection_from_another_process_arrives_at_the_pods_listener() {
        let (_dir, nets) = process(&["10.88.0.3"], OtherProcess::default());
        let (_lease, queue) = listen(&nets[0], "0.0.0.0:9000");
        let from = addr("10.99.0.5:50000");
        let stream = nets[0].accept_from(from, 9000).unwrap();
        let accepted = queue.accept().expect("queued at the listener");
        assert_eq!(accepted.remote, from, "the guest sees the far pod");
        assert_eq!(accepted.local, addr("10.88.0.3:9000"));
        // The node endpoint bridges the stream to its tunnel; a duplex stands for it.
        let (tunnel, mut far) = tokio::io::duplex(64);
        let bridged = tokio::spawn(async move {
            let mut stream = stream;
            let mut tunnel = tunnel;
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tunnel).await;
        });
        far.write_all(b"ping").await.unwrap();
        far.shutdown().await.unwrap();
        let (mut input, mut output) = (accepted.input, accepted.output);
        let mut got = String::new();
        input.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "ping");
        output.write_all(b"pong").await.unwrap();
        drop(output);
        let mut back = String::new();
        far.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "pong");
        bridged.await.unwrap();
        assert!(
            nets[0].accept_from(from, 9001).is_err(),
            "nothing listens on 9001: refused"
        );
    }
}
