//! Generated bindings (`wasmtime::component::bindgen!`) for the WASI interfaces
//! Capstan implements itself: `wasi:sockets/tcp`, `tcp-create-socket` and
//! `ip-name-lookup`, from the WASI 0.2.12 WIT in `wit/`. Everything they share with
//! the rest of WASI (streams, pollables, the network resource and its error code)
//! is mapped with `with:` to wasmtime-wasi's own types, so wasmtime-wasi's streams
//! and `poll` drive Capstan's sockets. Generated code only: the host logic is in
//! `socket.rs` (with its adapter `tcp.rs`) and `lookup.rs`.

wasmtime::component::bindgen!({
    path: "src/net/wit",
    world: "capstan:net/loopback",
    imports: { default: tracing | trappable },
    trappable_error_type: {
        "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
        "wasi:sockets/tcp.tcp-socket": super::socket::TcpSocket,
        "wasi:sockets/ip-name-lookup.resolve-address-stream": super::lookup::ResolveAddressStream,
    },
    require_store_data_send: true,
});

pub use self::wasi::sockets::{ip_name_lookup, tcp, tcp_create_socket};
