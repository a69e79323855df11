//! `--publish HOST:CONTAINER`: a real host listener (hyper) whose requests go
//! through the pod's routing table to the container serving the port.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::container::{plain, serve_connection};
use crate::error::RuntimeError;
use crate::network::PodNetwork;

/// A published port; dropping it closes the listener.
pub struct Published {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `addr` and forwards every request to `port` of the pod.
pub async fn publish(addr: SocketAddr, network: PodNetwork, port: u16) -> Result<Published, RuntimeError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| RuntimeError::Io {
        path: addr.to_string().into(),
        source: e,
    })?;
    let addr = listener.local_addr().map_err(|e| RuntimeError::Io {
        path: addr.to_string().into(),
        source: e,
    })?;
    let network = Arc::new(network);
    let task = tokio::spawn(async move {
        loop {
            let io = match listener.accept().await {
                Ok((io, _)) => io,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!("accept on {addr}: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = io.set_nodelay(true);
            let network = network.clone();
            // A guest listening through wasi:sockets gets the raw connection; an HTTP
            // component (or nothing) gets HTTP, so a client sees a clear 503.
            if network.route(port).is_none() && network.net().is_listening(port) {
                let net = network.net().clone();
                tokio::spawn(async move {
                    let mut io = io;
                    if let Ok(mut guest) = net.connect(port).await {
                        let _ = tokio::io::copy_bidirectional(&mut io, &mut guest).await;
                    }
                });
                continue;
            }
            serve_connection(io, move |req| {
                let network = network.clone();
                Box::pin(async move {
                    match network.route(port) {
                        Some(server) => server.handle(req).await,
                        None => plain(503, &format!("no container of the pod is serving port {port}\n")),
                    }
                })
            });
        }
    });
    Ok(Published { addr, task })
}
