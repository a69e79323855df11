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
