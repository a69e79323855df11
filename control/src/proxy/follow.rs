//! The service table of a node in another process (`capstan node --server URL`): Services,
//! Endpoints, Pods and Nodes mirrored from the API server over HTTP ([`crate::mirror`]), and
//! the same computations as the control plane's proxy ([`table::backends`],
//! [`remote::places`]), so the node's guests reach Services by name and cluster IP, and pods
//! by IP — in memory when the pod runs on this node, over TCP to its node's endpoint
//! otherwise. Node ports and the activator stay with the control plane's process.

use std::collections::HashSet;
use std::sync::Arc;

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};

use super::{ServiceTable, remote, table};
use crate::client::Client;
use crate::mirror::Mirror;

/// Keeps `services` current from the API server `client` talks to, until the task is
/// dropped. `local_node` is this process's node, whose pods the pod directory has.
pub async fn follow(client: Client, services: Arc<ServiceTable>, local_node: String) {
    let mut svc = Mirror::<Service>::start(client.clone(), "/api/v1/services");
    let mut eps = Mirror::<Endpoints>::start(client.clone(), "/api/v1/endpoints");
    let mut pods = Mirror::<Pod>::start(client.clone(), "/api/v1/pods");
    let mut nodes = Mirror::<Node>::start(client, "/api/v1/nodes");
    let local = HashSet::from([local_node]);
    loop {
        let routes = tokio::select! {
            c = svc.next() => c.map(|()| true),
            c = eps.next() => c.map(|()| true),
            c = pods.next() => c.map(|()| false),
            c = nodes.next() => c.map(|()| false),
        };
        match routes {
            None => return,
            Some(true) if svc.synced() && eps.synced() => {
                let listed: Vec<Service> = svc.items.values().map(|s| (**s).clone()).collect();
                let ready: Vec<Endpoints> = eps.items.values().map(|e| (**e).clone()).collect();
                services.replace(table::backends(&listed, &ready));
            }
            Some(false) if pods.synced() && nodes.synced() => {
                let placed = remote::places(
                    pods.items.values().map(|p| &**p),
                    nodes.items.values().map(|n| &**n),
                    &local,
                );
                services.remote.replace(placed);
            }
            Some(_) => {}
        }
    }
}
