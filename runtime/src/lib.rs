//! The Capstan node runtime: runs Kubernetes pods whose containers are WebAssembly
//! components.
//!
//! Owns: the wasmtime engine (pooling allocator, epoch time-slicing), the image
//! store and compiled-code cache, each container's sandbox (WASI context, root
//! filesystem, volumes, logs, memory and CPU limits) and the spare directories new ones
//! start from, the pod lifecycle and the
//! worker that drives it, the pod's port routing, the process's pods by IP (`directory`)
//! with the seam through which guests resolve Services (`services`), and the node agent
//! (`agent`) that runs the pods bound to the node, through a `ClusterClient` the control
//! plane provides.
//!
//! Must not touch: the Kubernetes API server and store, scheduling or controllers (`control/`), and
//! Kubernetes object semantics that need no I/O (parsing, defaulting, validation,
//! env resolution: `capstan-core`). The lifecycle (`lifecycle`) and status
//! (`status`) modules are pure and tested without wasmtime or timers.

pub mod agent;
pub mod container;
pub mod directory;
pub mod engine;
pub mod error;
pub mod hop_http;
pub mod hops;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod net;
pub mod network;
pub mod outgoing;
pub mod pod;
pub mod probe;
pub mod prober;
pub mod publish;
pub mod runtime;
pub mod sandbox;
pub mod services;
pub mod spares;
pub mod status;
pub mod store;
pub mod usage;
pub mod volumes;

pub use error::RuntimeError;
pub use pod::PodHandle;
pub use runtime::{Runtime, RuntimeConfig};
