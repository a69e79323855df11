//! A connection's two ends, and a listener's queue of connections not yet
//! accepted. Split from the port registry (`loopback.rs`) because both the guest
//! socket and the host API hold these while the registry only routes them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::loopback::{MAX_BACKLOG, NetError};
use super::pipe::{PipeReader, PipeWriter, pipe};

/// One end of an established connection: what a connector or an acceptor gets.
pub struct ConnEnd {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub input: PipeReader,
    pub output: PipeWriter,
}

/// Two connected ends: bytes written to one's `output` are read from the other's
/// `input`.
pub fn connection(client: SocketAddr, server: SocketAddr) -> (ConnEnd, ConnEnd) {
    let (c_out, s_in) = pipe();
    let (s_out, c_in) = pipe();
    let client_end = ConnEnd {
        local: client,
        remote: server,
        input: c_in,
        output: c_out,
    };
    let server_end = ConnEnd {
        local: server,
        remote: client,
        input: s_in,
        output: s_out,
    };
    (client_end, server_end)
}

/// Connections made to a listener and not yet accepted, oldest first.
pub struct AcceptQueue(Mutex<Queue>);

struct Queue {
    conns: VecDeque<ConnEnd>,
    backlog: usize,
    closed: bool,
    waker: Option<Waker>,
}

impl AcceptQueue {
    pub(super) fn new(backlog: usize) -> Self {
        Self(Mutex::new(Queue {
            conns: VecDeque::new(),
            backlog: clamp_backlog(backlog),
            closed: false,
            waker: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a new connection; a full or closed queue refuses it (Linux drops the
    /// SYN and the client times out; refusing at once says the same sooner).
    pub(super) fn push(&self, conn: ConnEnd) -> Result<(), NetError> {
        let mut q = self.lock();
        if q.closed || q.conns.len() >= q.backlog {
            return Err(NetError::ConnectionRefused);
        }
        q.conns.push_back(conn);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// The oldest waiting connection, if any.
    pub fn accept(&self) -> Option<ConnEnd> {
        self.lock().conns.pop_front()
    }

    /// Ready when a connection waits (or the queue is closed).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.lock();
        if !q.conns.is_empty() || q.closed {
            return Poll::Ready(());
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub fn set_backlog(&self, backlog: usize) {
        self.lock().backlog = clamp_backlog(backlog);
    }

    /// Refuses further connections and hands back those still waiting.
    pub(super) fn close(&self) -> VecDeque<ConnEnd> {
        let mut q = self.lock();
        q.closed = true;
        std::mem::take(&mut q.conns)
    }
}

fn clamp_backlog(backlog: usize) -> usize {
    backlog.clamp(1, MAX_BACKLOG)
}
