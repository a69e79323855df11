//! Capstan's control plane: the Kubernetes-compatible API server, the durable object store it
//! keeps its state in, the scheduler, the controllers and the `capstan` CLI.
//!
//! It must not touch Wasm execution: compiling, instantiating and running components, pod
//! sandboxes and the pod network belong to `runtime/`. The control plane talks to nodes only
//! through the API (watches and requests), never by reaching into the runtime.

pub mod admission;
pub mod api;
pub mod client;
pub mod cluster;
pub mod controllers;
pub mod events;
pub mod kubeconfig;
pub mod manager;
pub mod metrics;
pub mod mirror;
pub mod node_client;
pub mod node_endpoint;
pub mod node_stats;
pub mod proxy;
pub mod scheduler;
pub mod store;
