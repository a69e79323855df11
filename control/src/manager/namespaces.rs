//! The namespace controller: a namespace being deleted has everything in it deleted (pods
//! gracefully), and goes itself once nothing is left.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::informer::{Informer, Queue, sleep_until};
use crate::api::registry::{DeleteOptions, ListOptions};
use crate::api::resources::{RESOURCES, find};
use crate::api::{Api, ApiError};

/// How soon a namespace still emptying is looked at again (pods take their grace period).
const RECHECK: Duration = Duration::from_millis(500);

pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let mut namespaces = Informer::<Value>::start(&api, find("", "v1", "namespaces").expect("served")).await?;
    let mut queue = Queue::default();
    loop {
        tokio::select! {
            change = namespaces.next() => {
                let Some(change) = change else { return Ok(()) };
                if change.kind != "DELETED" && change.object["metadata"].get("deletionTimestamp").is_some() {
                    queue.add(change.object["metadata"]["name"].as_str().unwrap_or_default().to_owned());
                }
            }
            () = sleep_until(queue.next_due()) => {}
        }
        for name in queue.take_ready() {
            let ns = name.clone();
            match api.call(move |a| empty(a, &ns)).await {
                Ok(true) => {
                    let ns = name.clone();
                    if let Err(e) = api.call(move |a| a.finalize_namespace(&ns)).await {
                        tracing::debug!(namespace = %name, error = %e, "removing the namespace failed");
                        queue.add_after(name, RECHECK);
                    }
                }
                Ok(false) => queue.add_after(name, RECHECK),
                Err(e) => {
                    tracing::debug!(namespace = %name, error = %e, "emptying the namespace failed");
                    queue.add_after(name, RECHECK);
                }
            }
        }
    }
}

/// Deletes what is left in the namespace; whether it was already empty.
fn empty(api: &Api, ns: &str) -> Result<bool, ApiError> {
    let mut empty = true;
    for info in RESOURCES.iter().filter(|r| r.namespaced) {
        let (items, _) = api.list_items(info, Some(ns), &ListOptions::default())?;
        if items.is_empty() {
            continue;
        }
        empty = false;
        api.delete_collection(info, Some(ns), &ListOptions::default(), &DeleteOptions::default())?;
    }
    Ok(empty)
}
