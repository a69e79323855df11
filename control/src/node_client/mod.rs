//! The control plane's side of the node agent's [`capstan_runtime::agent::ClusterClient`]:
//! [`LocalClient`] for a node in the same process (calls the API directly), [`RemoteClient`]
//! for `capstan node --server URL` (the same verbs over HTTP).

mod local;
mod remote;

pub use local::LocalClient;
pub use remote::RemoteClient;
