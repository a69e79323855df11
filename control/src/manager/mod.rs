//! The controller manager: the shells that run the controllers' pure cores (`controllers/`)
//! against the API — informers, work queues, expectations, writes — and the controllers
//! that are all shell (namespace deletion, node lifecycle).

pub mod endpoint_slices;
pub mod endpoints;
pub mod gc;
pub mod hpa;
pub mod informer;
pub mod namespaces;
pub mod nodes;
pub mod pod_metrics;
pub mod quotas;
pub mod workloads;
pub mod write;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::api::Api;

/// Starts every controller; each restarts its watches if they end.
pub fn spawn_all(api: &Arc<Api>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(workloads::forever(
            "replicaset",
            Arc::clone(api),
            workloads::replica_sets,
        )),
        tokio::spawn(workloads::forever(
            "deployment",
            Arc::clone(api),
            workloads::deployments,
        )),
        tokio::spawn(workloads::forever("garbage-collector", Arc::clone(api), gc::run)),
        tokio::spawn(workloads::forever("namespace", Arc::clone(api), namespaces::run)),
        tokio::spawn(workloads::forever("node-lifecycle", Arc::clone(api), nodes::run)),
        tokio::spawn(workloads::forever("resourcequota", Arc::clone(api), quotas::run)),
        tokio::spawn(workloads::forever("endpoints", Arc::clone(api), endpoints::run)),
        tokio::spawn(workloads::forever(
            "endpointslice",
            Arc::clone(api),
            endpoint_slices::run,
        )),
    ]
}
