//! `wasi:sockets/tcp` and `tcp-create-socket`: the adapter from the generated
//! host traits to the socket state machine (`socket.rs`).
//!
//! What lives here is the resource-table work: sockets are table entries (the
//! table is the only registry of guest handles), and a connection's streams are
//! pushed as children of their socket, so the guest must drop them first and a
//! store's teardown closes them with it.

use std::net::{Shutdown, SocketAddr};

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Network};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketResult};

use super::NetView;
use super::bindings::tcp::{self, ShutdownType};
use super::bindings::tcp_create_socket;
use super::loopback::ConnEnd;
use super::socket::TcpSocket;

type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);

/// Moves a connection's pipe ends into the table as children of `socket`.
fn push_streams(view: &mut NetView<'_>, socket: &Resource<TcpSocket>, end: ConnEnd) -> SocketResult<Streams> {
    let input: DynInputStream = Box::new(end.input);
    let output: DynOutputStream = Box::new(end.output);
    let input = view.table.push_child(input, socket)?;
    let output = view.table.push_child(output, socket)?;
    Ok((input, output))
}

/// WASI refuses 0 for every option it lets a guest set.
fn nonzero<T: Default + PartialEq>(value: T) -> SocketResult<T> {
    if value == T::default() {
        Err(ErrorCode::InvalidArgument.into())
    } else {
        Ok(value)
    }
}

impl tcp_create_socket::Host for NetView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        Ok(self.table.push(TcpSocket::new(family))?)
    }
}

impl tcp::Host for NetView<'_> {}

impl tcp::HostTcpSocket for NetView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        net: Resource<Network>,
        at: IpSocketAddress,
    ) -> SocketResult<()> {
        // The network handle is only a capability: check that it is one.
        self.table.get(&net)?;
        let loopback = self.net.loopback().clone();
        Ok(self.table.get_mut(&this)?.start_bind(&loopback, SocketAddr::from(at))?)
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        Ok(self.table.get_mut(&this)?.finish_bind()?)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        net: Resource<Network>,
        to: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&net)?;
        Ok(self
            .table
            .get_mut(&this)?
            .start_connect(self.net, SocketAddr::from(to))?)
    }

    fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<Streams> {
        let socket = self.table.get_mut(&this)?;
        let (end, lease) = socket.finish_connect()?;
        socket.set_connected(&end, Some(lease));
        push_streams(self, &this, end)
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        Ok(self.table.get_mut(&this)?.start_listen()?)
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        Ok(self.table.get_mut(&this)?.finish_listen()?)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<TcpSocket>, Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let (mut socket, end) = self.table.get(&this)?.accept()?;
        socket.set_connected(&end, None);
        let socket = self.table.push(socket)?;
        let (input, output) = push_streams(self, &socket, end)?;
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get(&this)?.local_address()?.into())
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get(&this)?.remote_address()?.into())
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&this)?.is_listening())
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family())
    }

    fn set_listen_backlog_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        let backlog = nonzero(value)?.try_into().unwrap_or(usize::MAX);
        Ok(self.table.get_mut(&this)?.set_backlog(backlog)?)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        Ok(self.table.get(&this)?.options.keep_alive)
    }

    fn set_keep_alive_enabled(&mut self, this: Resource<TcpSocket>, value: bool) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.keep_alive_idle)
    }

    fn set_keep_alive_idle_time(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.keep_alive_idle = nonzero(value)?;
        Ok(())
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.keep_alive_interval)
    }

    fn set_keep_alive_interval(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.keep_alive_interval = nonzero(value)?;
        Ok(())
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        Ok(self.table.get(&this)?.options.keep_alive_count)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.keep_alive_count = nonzero(value)?;
        Ok(())
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        Ok(self.table.get(&this)?.options.hop_limit)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.hop_limit = nonzero(value)?;
        Ok(())
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.receive_buffer)
    }

    fn set_receive_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.receive_buffer = nonzero(value)?;
        Ok(())
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.table.get(&this)?.options.send_buffer)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get_mut(&this)?.options.send_buffer = nonzero(value)?;
        Ok(())
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let how = match how {
            ShutdownType::Receive => Shutdown::Read,
            ShutdownType::Send => Shutdown::Write,
            ShutdownType::Both => Shutdown::Both,
        };
        Ok(self.table.get(&this)?.shutdown(how)?)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
