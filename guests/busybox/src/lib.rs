//! Small in-process utilities for WASI 0.2 (there are no processes): an `sh` interpreter and
//! applets that read and write the streams they are given.

pub mod applets;
mod date;
pub mod io;
pub mod shell;
mod test_cmd;
#[cfg(test)]
mod testutil;

pub use applets::{find, run_multicall};

/// Where Capstan signals a stop request: the file appears in the container's
/// root filesystem when the pod is stopping (the Wasm stand-in for SIGTERM; see
/// docs/ARCHITECTURE.md). A standard WASI guest polls it; busybox does between
/// loop iterations and while sleeping, and then exits 143 as a shell does on SIGTERM.
pub const TERMINATION_SIGNAL: &str = "/dev/termination-signal";

/// The exit status of a process ended by SIGTERM.
pub const TERMINATED_STATUS: i32 = 128 + 15;

/// True once the host has asked this container to stop.
pub fn termination_requested() -> bool {
    std::path::Path::new(TERMINATION_SIGNAL).exists()
}
