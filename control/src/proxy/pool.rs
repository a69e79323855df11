//! Kept-alive HTTP/1.1 connections to the endpoints of nodes in other processes, so a request
//! carried to a pod there does not pay a TCP handshake each time (hyper-util's legacy client
//! pool, reduced to what one hop needs: one address per node, HTTP/1.1, no TLS).
//!
//! A connection goes back to the pool as soon as the response head has arrived; it is lent
//! again only once hyper says it is ready (its response fully read), so a streaming response
//! never holds up another request. A kept connection the node has closed meanwhile hands an
//! unsent request back, which then goes over a fresh connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use capstan_runtime::services::WasiBody;

/// How many idle connections are kept per node: enough for the concurrency one process sends
/// to another in the tests and benchmarks; more are closed after their exchange.
const MAX_IDLE_PER_NODE: usize = 32;

/// How long connecting to a node may take: a node on another machine that is gone must not
/// hold a request (it goes to another endpoint) for the kernel's minutes-long SYN retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a request got no response from a node.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The node did not accept a connection: nothing was sent.
    #[error("cannot connect to the node endpoint {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The connection broke during the exchange.
    #[error("the exchange with the node endpoint {addr} failed: {source}")]
    Exchange { addr: SocketAddr, source: hyper::Error },
}

/// Idle connections by node endpoint. Cloning shares them.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<HashMap<SocketAddr, Vec<SendRequest<WasiBody>>>>>,
}

/// A connection lent by the pool, for one request.
pub struct Connection {
    pool: Pool,
    addr: SocketAddr,
    sender: SendRequest<WasiBody>,
    /// Whether it served an earlier request (and may have been closed by the node since).
    reused: bool,
}

impl Pool {
    /// A connection to `addr`: an idle one that is ready, else a new one. An error means the
    /// node does not answer.
    pub async fn connection(&self, addr: SocketAddr) -> Result<Connection, PoolError> {
        let (sender, reused) = match self.take(addr) {
            Some(sender) => (sender, true),
            None => (dial(addr).await?, false),
        };
        Ok(Connection {
            pool: self.clone(),
            addr,
            sender,
            reused,
        })
    }

    /// An idle connection to `addr` that can take a request now; closed ones are dropped.
    fn take(&self, addr: SocketAddr) -> Option<SendRequest<WasiBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        list.retain(|s| !s.is_closed());
        let ready = list.iter().position(SendRequest::is_ready)?;
        Some(list.swap_remove(ready))
    }

    /// Keeps a connection for later requests, if it is open and the node has room.
    fn put(&self, addr: SocketAddr, sender: SendRequest<WasiBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < MAX_IDLE_PER_NODE {
            list.push(sender);
        }
    }

    /// How many connections to `addr` are kept (busy or idle).
    pub fn kept(&self, addr: SocketAddr) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get(&addr)
            .map_or(0, |l| l.iter().filter(|s| !s.is_closed()).count())
    }
}

impl Connection {
    /// Sends `request`; its response head once it arrives. A kept connection the node closed
    /// before the request went out is replaced by a fresh one.
    pub async fn send(mut self, request: hyper::Request<WasiBody>) -> Result<hyper::Response<Incoming>, PoolError> {
        let exchange = |source| PoolError::Exchange {
            addr: self.addr,
            source,
        };
        let request = match self.sender.try_send_request(request).await {
            Ok(response) => {
                self.pool.put(self.addr, self.sender);
                return Ok(response);
            }
            Err(mut e) => match (self.reused, e.take_message()) {
                (true, Some(request)) => request,
                _ => return Err(exchange(e.into_error())),
            },
        };
        let mut sender = dial(self.addr).await?;
        let response = sender.send_request(request).await.map_err(exchange)?;
        self.pool.put(self.addr, sender);
        Ok(response)
    }
}

/// A TCP connection to the node endpoint at `addr`, within [`CONNECT_TIMEOUT`].
pub async fn connect(addr: SocketAddr) -> Result<tokio::net::TcpStream, PoolError> {
    let fail = |reason: String| PoolError::Connect { addr, reason };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Err(_) => return Err(fail(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A new HTTP/1.1 connection to `addr`, its I/O driven by a task of its own.
async fn dial(addr: SocketAddr) -> Result<SendRequest<WasiBody>, PoolError> {
    let fail = |reason: String| PoolError::Connect { addr, reason };
    let stream = connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    use super::*;
    use capstan_runtime::services::BodyError;

    /// An HTTP/1.1 server answering `hello`, counting the connections it accepts.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                capstan_runtime::container::serve_connection(io, |_req| {
                    Box::pin(async { capstan_runtime::container::plain(200, "hello") })
                });
            }
        });
        (addr, accepted, task)
    }

    fn get() -> hyper::Request<WasiBody> {
        let body = Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        hyper::Request::get("/").body(body).unwrap()
    }

    async fn text(response: hyper::Response<Incoming>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (addr, accepted, task) = server().await;
        let pool = Pool::default();
        for _ in 0..5 {
            let response = pool.connection(addr).await.unwrap().send(get()).await.unwrap();
            assert_eq!(text(response).await, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.kept(addr), 1);
        task.abort();
    }

    #[tokio::test]
    async fn a_connection_whose_response_is_still_streaming_is_not_lent_again() {
        // Answers `/stream` with a body that ends only when the test says so.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (count, finish) = (Arc::clone(&accepted), Arc::new(tokio::sync::Notify::new()));
        let finished = Arc::clone(&finish);
        let task = tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let finished = Arc::clone(&finished);
                capstan_runtime::container::serve_connection(io, move |req| {
                    let finished = Arc::clone(&finished);
                    Box::pin(async move {
                        if req.uri().path() != "/stream" {
                            return capstan_runtime::container::plain(200, "hello");
                        }
                        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, BodyError>::new(1);
                        tokio::spawn(async move {
                            let _ = tx.send_data(Bytes::from_static(b"part ")).await;
                            finished.notified().await;
                            let _ = tx.send_data(Bytes::from_static(b"end")).await;
                        });
                        hyper::Response::new(body.boxed_unsync())
                    })
                });
            }
        });
        let pool = Pool::default();
        let stream = hyper::Request::get("/stream").body(get().into_body()).unwrap();
        let streaming = pool.connection(addr).await.unwrap().send(stream).await.unwrap();
        let other = pool.connection(addr).await.unwrap().send(get()).await.unwrap();
        assert_eq!(text(other).await, "hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the streaming one is still busy");
        finish.notify_one();
        assert_eq!(text(streaming).await, "part end");
        task.abort();
    }

    #[tokio::test]
    async fn a_node_that_does_not_listen_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = Pool::default().connection(addr).await.err().unwrap();
        assert!(matches!(err, PoolError::Connect { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_kept_connection_the_node_closed_is_replaced() {
        // A node that closes each connection after one answer, without saying so.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                let (mut io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = io.read(&mut buf).await.unwrap();
                    head.extend_from_slice(&buf[..n]);
                }
                io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                    .await
                    .unwrap();
            }
        });
        let pool = Pool::default();
        for _ in 0..3 {
            let response = pool.connection(addr).await.unwrap().send(get()).await.unwrap();
            assert_eq!(text(response).await, "hello");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while pool.kept(addr) > 0 {
                assert!(std::time::Instant::now() < deadline, "the closed connection is noticed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        task.abort();
    }
}
