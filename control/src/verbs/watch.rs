//! Watches whose events carry server-rendered Tables (`get -w`).

use capstan_control::client::{Client, ClientError};
use serde_json::Value;
use tokio::sync::mpsc;

/// What kubectl sends to get `meta.k8s.io/v1` Tables, JSON as the fallback.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// A watch at `path` (which carries `watch=true`) asking for `accept`: each event as it
/// arrives, until the server ends it or the receiver is dropped.
pub async fn watch_with(client: &Client, path: &str, accept: &str) -> Result<mpsc::Receiver<Value>, ClientError> {
    client.watch_accepting(path, accept).await
}
