//! The TCP socket a guest holds: a state machine over the pod's loopback registry,
//! written once here and driven by the `wasi:sockets/tcp` adapter (`tcp.rs`).
//!
//! WASI splits each step into `start-*` / `finish-*`; in memory every step
//! completes at once, so a `start-*` does the work and its `finish-*` reports it.
//! Connecting decides the destination in `start-connect` (the pod itself, or another
//! pod or a Service's endpoints; a denied or invalid one is an immediate error,
//! leaving the socket as it was) and reports a refusal from `finish-connect`. The
//! ports a socket holds are [`PortLease`]s, so dropping it (or the whole store, when
//! a container ends) frees them.

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use tokio::sync::oneshot;

use wasmtime_wasi::p2::Pollable;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};

use super::PodNet;
use super::loopback::{AcceptQueue, ConnEnd, DEFAULT_BACKLOG, Loopback, NetError, PortLease};
use super::pipe::{PIPE_CAPACITY, Pipe};
use super::tunnel::Dialing;

/// Linux's defaults for the options a guest may read before setting them.
const DEFAULT_KEEP_ALIVE_IDLE_NS: u64 = 7200 * 1_000_000_000;
const DEFAULT_KEEP_ALIVE_INTERVAL_NS: u64 = 75 * 1_000_000_000;
const DEFAULT_KEEP_ALIVE_COUNT: u32 = 9;
const DEFAULT_HOP_LIMIT: u8 = 64;

/// A guest's TCP socket on the pod's in-memory network.
pub struct TcpSocket {
    family: IpAddressFamily,
    state: State,
    /// Option values: kept and reported back; a pipe has no use for them.
    pub options: Options,
}

enum State {
    Unbound,
    BindStarted(PortLease),
    Bound(PortLease),
    ListenStarted(Listener),
    Listening(Listener),
    /// `start-connect` ran; the outcome waits for `finish-connect` (and, for a pod in
    /// another process, for the tunnel there).
    Connecting(Dialing),
    Connected(Connected),
    /// After a failed connect (WASI sockets are single-use), or while a
    /// connection's streams are being handed to the table.
    Closed,
}

struct Listener {
    lease: PortLease,
    queue: Arc<AcceptQueue>,
}

struct Connected {
    local: SocketAddr,
    remote: SocketAddr,
    /// Handles on the pipes whose stream ends the table holds, for `shutdown`.
    input: Pipe,
    output: Pipe,
    /// The client's port (none for an accepted socket: it shares the listener's).
    _lease: Option<PortLease>,
}

#[derive(Clone)]
pub struct Options {
    pub backlog: usize,
    pub keep_alive: bool,
    pub keep_alive_idle: u64,
    pub keep_alive_interval: u64,
    pub keep_alive_count: u32,
    pub hop_limit: u8,
    pub receive_buffer: u64,
    pub send_buffer: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backlog: DEFAULT_BACKLOG,
            keep_alive: false,
            keep_alive_idle: DEFAULT_KEEP_ALIVE_IDLE_NS,
            keep_alive_interval: DEFAULT_KEEP_ALIVE_INTERVAL_NS,
            keep_alive_count: DEFAULT_KEEP_ALIVE_COUNT,
            hop_limit: DEFAULT_HOP_LIMIT,
            receive_buffer: PIPE_CAPACITY as u64,
            send_buffer: PIPE_CAPACITY as u64,
        }
    }
}

impl From<NetError> for ErrorCode {
    fn from(e: NetError) -> Self {
        match e {
            NetError::AddressInUse => Self::AddressInUse,
            NetError::AddressNotBindable => Self::AddressNotBindable,
            NetError::ConnectionRefused => Self::ConnectionRefused,
            NetError::AccessDenied(_) => Self::AccessDenied,
            NetError::InvalidArgument => Self::InvalidArgument,
            NetError::Unreachable => Self::RemoteUnreachable,
        }
    }
}

impl TcpSocket {
    pub fn new(family: IpAddressFamily) -> Self {
        Self {
            family,
            state: State::Unbound,
            options: Options::default(),
        }
    }

    pub fn family(&self) -> IpAddressFamily {
        self.family
    }

    pub fn start_bind(&mut self, net: &Arc<Loopback>, addr: SocketAddr) -> Result<(), ErrorCode> {
        self.check_idle()?;
        self.check_family(&addr)?;
        if !matches!(self.state, State::Unbound) {
            return Err(ErrorCode::InvalidState);
        }
        self.state = State::BindStarted(net.bind(addr)?);
        Ok(())
    }

    pub fn finish_bind(&mut self) -> Result<(), ErrorCode> {
        match self.take() {
            State::BindStarted(lease) => {
                self.state = State::Bound(lease);
                Ok(())
            }
            other => Err(self.restore(other, ErrorCode::NotInProgress)),
        }
    }

    pub fn start_connect(&mut self, net: &PodNet, to: SocketAddr) -> Result<(), ErrorCode> {
        self.check_idle()?;
        self.check_family(&to)?;
        if !matches!(self.state, State::Unbound | State::Bound(_)) {
            return Err(ErrorCode::InvalidState);
        }
        let dest = net.destination(to)?;
        let lease = match self.take() {
            State::Bound(lease) => Some(lease),
            _ => None,
        };
        self.state = State::Connecting(net.dial(dest, lease, to));
        Ok(())
    }

    /// The connection `start-connect` made (would-block while a tunnel to another
    /// process is still opening). The caller hands its streams to the table and then
    /// calls [`TcpSocket::set_connected`].
    pub fn finish_connect(&mut self) -> Result<(ConnEnd, PortLease), ErrorCode> {
        match self.take() {
            State::Connecting(Dialing::Done(outcome)) => Ok(outcome?),
            State::Connecting(Dialing::Pending(mut rx)) => match rx.try_recv() {
                Ok(outcome) => Ok(outcome?),
                Err(oneshot::error::TryRecvError::Empty) => {
                    Err(self.restore(State::Connecting(Dialing::Pending(rx)), ErrorCode::WouldBlock))
                }
                // The dialing task is gone without an answer: the runtime is stopping.
                Err(oneshot::error::TryRecvError::Closed) => Err(ErrorCode::RemoteUnreachable),
            },
            other => Err(self.restore(other, ErrorCode::NotInProgress)),
        }
    }

    /// Records an established connection (before its pipe ends move to the table).
    pub fn set_connected(&mut self, end: &ConnEnd, lease: Option<PortLease>) {
        self.state = State::Connected(Connected {
            local: end.local,
            remote: end.remote,
            input: end.input.pipe(),
            output: end.output.pipe(),
            _lease: lease,
        });
    }

    pub fn start_listen(&mut self) -> Result<(), ErrorCode> {
        self.check_idle()?;
        let lease = match self.take() {
            State::Bound(lease) => lease,
            // WASI 0.2 sockets must be bound explicitly before listening.
            other => return Err(self.restore(other, ErrorCode::InvalidState)),
        };
        match lease.net().listen(&lease, self.options.backlog) {
            Ok(queue) => {
                self.state = State::ListenStarted(Listener { lease, queue });
                Ok(())
            }
            Err(e) => Err(self.restore(State::Bound(lease), e.into())),
        }
    }

    pub fn finish_listen(&mut self) -> Result<(), ErrorCode> {
        match self.take() {
            State::ListenStarted(listener) => {
                self.state = State::Listening(listener);
                Ok(())
            }
            other => Err(self.restore(other, ErrorCode::NotInProgress)),
        }
    }

    /// The oldest waiting connection and a fresh socket (same family and options)
    /// to hold it.
    pub fn accept(&self) -> Result<(TcpSocket, ConnEnd), ErrorCode> {
        let State::Listening(listener) = &self.state else {
            return Err(ErrorCode::InvalidState);
        };
        let end = listener.queue.accept().ok_or(ErrorCode::WouldBlock)?;
        let socket = TcpSocket {
            family: self.family,
            state: State::Closed,
            options: self.options.clone(),
        };
        Ok((socket, end))
    }

    pub fn local_address(&self) -> Result<SocketAddr, ErrorCode> {
        match &self.state {
            State::Bound(l) => Ok(l.addr()),
            State::ListenStarted(l) | State::Listening(l) => Ok(l.lease.addr()),
            State::Connected(c) => Ok(c.local),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    pub fn remote_address(&self) -> Result<SocketAddr, ErrorCode> {
        Ok(self.connected()?.remote)
    }

    pub fn is_listening(&self) -> bool {
        matches!(self.state, State::Listening(_))
    }

    /// Applies at once to a listener's queue, as Linux's `listen` again would.
    pub fn set_backlog(&mut self, backlog: usize) -> Result<(), ErrorCode> {
        match &self.state {
            State::Connecting(_) | State::Connected(_) => return Err(ErrorCode::InvalidState),
            State::ListenStarted(l) | State::Listening(l) => l.queue.set_backlog(backlog),
            _ => {}
        }
        self.options.backlog = backlog;
        Ok(())
    }

    /// Shutting the send side is an EOF for the peer after what it has not read
    /// yet; shutting the receive side makes the peer's writes fail.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), ErrorCode> {
        let c = self.connected()?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            c.input.close_read();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            c.output.close_write();
        }
        Ok(())
    }

    fn connected(&self) -> Result<&Connected, ErrorCode> {
        match &self.state {
            State::Connected(c) => Ok(c),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    /// A `start-*` is refused while another operation is in progress.
    fn check_idle(&self) -> Result<(), ErrorCode> {
        match self.state {
            State::BindStarted(_) | State::ListenStarted(_) | State::Connecting(_) => {
                Err(ErrorCode::ConcurrencyConflict)
            }
            _ => Ok(()),
        }
    }

    /// The address must be of the socket's family; IPv4-mapped IPv6 addresses are
    /// refused as wasmtime-wasi does (no dual-stack sockets in WASI 0.2).
    fn check_family(&self, addr: &SocketAddr) -> Result<(), ErrorCode> {
        match (self.family, addr) {
            (IpAddressFamily::Ipv4, SocketAddr::V4(_)) => Ok(()),
            (IpAddressFamily::Ipv6, SocketAddr::V6(a)) if a.ip().to_ipv4_mapped().is_none() => Ok(()),
            _ => Err(ErrorCode::InvalidArgument),
        }
    }

    /// Takes the state out to move its leases; every path puts one back.
    fn take(&mut self) -> State {
        std::mem::replace(&mut self.state, State::Closed)
    }

    fn restore(&mut self, state: State, error: ErrorCode) -> ErrorCode {
        self.state = state;
        error
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    /// Ready when `finish-*` or `accept` would not say would-block: a listener
    /// waits for a connection, a connect for its tunnel to another process;
    /// everything else in memory completes at once.
    async fn ready(&mut self) {
        match &mut self.state {
            State::Listening(l) => std::future::poll_fn(|cx| l.queue.poll_ready(cx)).await,
            State::Connecting(Dialing::Pending(rx)) => {
                let outcome = rx.await.unwrap_or(Err(NetError::Unreachable));
                self.state = State::Connecting(Dialing::Done(outcome));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn listener(net: &Arc<Loopback>, at: &str) -> TcpSocket {
        let mut s = TcpSocket::new(IpAddressFamily::Ipv4);
        s.start_bind(net, addr(at)).unwrap();
        s.finish_bind().unwrap();
        s.start_listen().unwrap();
        s.finish_listen().unwrap();
        s
    }

    #[test]
    fn steps_out_of_order_are_refused_with_the_wasi_codes() {
        let net = Loopback::new(None);
        let mut s = TcpSocket::new(IpAddressFamily::Ipv4);
        assert_eq!(s.finish_bind().err(), Some(ErrorCode::NotInProgress));
        assert_eq!(
            s.start_listen().err(),
            Some(ErrorCode::InvalidState),
            "listen before bind"
        );
        assert_eq!(
            s.start_bind(&net, addr("[::1]:80")).err(),
            Some(ErrorCode::InvalidArgument)
        );
        s.start_bind(&net, addr("127.0.0.1:80")).unwrap();
        assert_eq!(
            s.start_bind(&net, addr("127.0.0.1:81")).err(),
            Some(ErrorCode::ConcurrencyConflict)
        );
        s.finish_bind().unwrap();
        assert_eq!(s.local_address(), Ok(addr("127.0.0.1:80")));
        assert_eq!(s.remote_address().err(), Some(ErrorCode::InvalidState));
    }

    #[test]
    fn connect_reports_denial_at_once_and_refusal_at_finish() {
        let net = PodNet::new(None);
        let mut s = TcpSocket::new(IpAddressFamily::Ipv4);
        assert_eq!(
            s.start_connect(&net, addr("93.184.216.34:80")).err(),
            Some(ErrorCode::AccessDenied)
        );
        s.start_connect(&net, addr("127.0.0.1:80")).unwrap();
        assert_eq!(s.finish_connect().err(), Some(ErrorCode::ConnectionRefused));
        assert_eq!(
            s.start_connect(&net, addr("127.0.0.1:80")).err(),
            Some(ErrorCode::InvalidState),
            "single use"
        );
    }

    #[test]
    fn a_connection_links_both_sockets_and_shutdown_is_eof_for_the_peer() {
        let net = PodNet::new(None);
        let server = listener(net.loopback(), "127.0.0.1:5000");
        assert!(server.is_listening());
        assert_eq!(server.accept().err(), Some(ErrorCode::WouldBlock));
        let mut client = TcpSocket::new(IpAddressFamily::Ipv4);
        client.start_connect(&net, addr("127.0.0.1:5000")).unwrap();
        let (end, lease) = client.finish_connect().unwrap();
        client.set_connected(&end, Some(lease));
        let (mut accepted, peer) = server.accept().unwrap();
        accepted.set_connected(&peer, None);
        assert_eq!(accepted.remote_address(), client.local_address());
        assert_eq!(client.remote_address(), Ok(addr("127.0.0.1:5000")));
        client.shutdown(Shutdown::Write).unwrap();
        let mut input = peer.input;
        assert!(
            wasmtime_wasi::p2::InputStream::read(&mut input, 10).is_err(),
            "EOF after shutdown"
        );
    }
}
