//! Watches as the apiserver serves them: the initial state as ADDED events when the client
//! asks for it (no resourceVersion, `0`, or `sendInitialEvents`), then every change after a
//! resourceVersion, filtered by label and field selectors; an object that stops matching is
//! reported DELETED, one that starts matching ADDED.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;
use super::registry::{Api, ListOptions, decode_stored};
use super::resources::ResourceInfo;
use crate::store::{EventKind, WatchStream, collection_prefix};

/// The query options of a watch.
#[derive(Debug, Default)]
pub struct WatchOptions {
    pub list: ListOptions,
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`
    pub resource_version_match: Option<String>,
    /// `sendInitialEvents`
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
}

/// One event of a watch: its `type` and `object`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub object: Value,
}

impl Event {
    /// The newline-delimited JSON line a watch response carries.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(&json!({"type": self.kind, "object": self.object})).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// One event of a watch as an informer takes it: the object typed, and for a live event
/// shared with every other watcher of the same type in this process (decoded once).
pub struct SharedEvent<T> {
    pub kind: &'static str,
    /// `namespace/name`; `/name` for a cluster-scoped object.
    pub key: String,
    pub object: Arc<T>,
    pub rev: u64,
}

impl<T: DeserializeOwned> SharedEvent<T> {
    /// The typed event of one watch's own event; `None` when the object is not a `T`.
    fn decode(event: Event) -> Option<Self> {
        let (key, rev) = informer_key(&event.object);
        let object = serde_json::from_value::<T>(event.object).ok()?;
        Some(SharedEvent {
            kind: event.kind,
            key,
            object: Arc::new(object),
            rev,
        })
    }
}

/// An object's `namespace/name` and resourceVersion.
fn informer_key(object: &Value) -> (String, u64) {
    let meta = &object["metadata"];
    let key = format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default()
    );
    let rev = meta["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (key, rev)
}

/// An informer's key of the object stored at `key` (`/{group}/{resource}/{rest}`): `rest` is
/// `namespace/name`, or for a cluster-scoped object `name`, which an informer keys `/name`.
fn key_in_collection(key: &str) -> String {
    let rest = key.splitn(4, '/').nth(3).unwrap_or_default();
    if rest.contains('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

/// A watch in progress.
pub struct ApiWatch {
    initial: VecDeque<Event>,
    stream: WatchStream,
    list: ListOptions,
    /// Keys of objects this watch has reported as matching: only for these is a non-matching
    /// change a DELETED.
    matching: HashSet<String>,
    /// Whether `matching` is complete (the watch began with the current state), so an object
    /// not in it that now matches has just started to.
    complete: bool,
}

impl Api {
    /// Starts a watch of a collection (one namespace or all).
    pub fn watch(&self, info: &ResourceInfo, ns: Option<&str>, opts: WatchOptions) -> Result<ApiWatch, ApiError> {
        let rv = opts.resource_version.as_deref().filter(|rv| !rv.is_empty());
        if opts.send_initial_events.is_some() && opts.resource_version_match.as_deref() != Some("NotOlderThan") {
            // apimachinery's validateWatchOptions, reported as handlers/get.go does.
            return Err(ApiError::Invalid {
                kind: "ListOptions.meta.k8s.io".into(),
                name: String::new(),
                causes: vec![capstan_core::validate::FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            });
        }
        // No resourceVersion or "0": the current state first (unless sendInitialEvents=false).
        let initial_state = match opts.send_initial_events {
            Some(send) => send,
            None => rv.is_none_or(|rv| rv == "0"),
        };
        let mut initial = VecDeque::new();
        let mut matching = HashSet::new();
        let prefix = collection_prefix(info.group, info.plural, ns.filter(|_| info.namespaced));
        let from = if initial_state {
            let (items, rev) = self.list_items(info, ns, &opts.list)?;
            for object in items {
                matching.insert(key_of(info, &object));
                initial.push_back(Event { kind: "ADDED", object });
            }
            if opts.send_initial_events == Some(true) && opts.allow_bookmarks {
                initial.push_back(Event {
                    kind: "BOOKMARK",
                    object: json!({
                        "kind": info.kind,
                        "apiVersion": info.api_version(),
                        "metadata": {
                            "resourceVersion": rev.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    }),
                });
            }
            rev
        } else {
            match rv {
                Some(rv) => rv
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}: must be a number")))?,
                None => self.store().revision().map_err(|e| ApiError::from_store(info, "", e))?,
            }
        };
        let stream = self
            .store()
            .watch(&prefix, from)
            .map_err(|e| ApiError::from_store(info, "", e))?;
        Ok(ApiWatch {
            initial,
            stream,
            list: opts.list,
            matching,
            complete: initial_state,
        })
    }
}

fn key_of(info: &ResourceInfo, object: &Value) -> String {
    let ns = object["metadata"]["namespace"].as_str().filter(|_| info.namespaced);
    crate::store::object_key(
        info.group,
        info.plural,
        ns,
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

impl ApiWatch {
    /// Whether the initial state (if asked for) has all been delivered: a controller acts
    /// only on a complete view, or it would recreate what it has not yet seen.
    pub fn synced(&self) -> bool {
        self.initial.is_empty()
    }

    /// The next event; `None` when the watch has ended (the store went away or this watcher
    /// fell too far behind — the client resumes from the last resourceVersion it saw, as
    /// after any watch that ends).
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.initial.pop_front() {
            return Some(event);
        }
        loop {
            let event = self.stream.next().await?.ok()?;
            let object = match decode_stored(&event.key, &event.value, event.rev) {
                Ok(object) => object,
                Err(_) => continue,
            };
            let now = self.list.labels.as_ref().is_none_or(|s| s.matches_value(&object))
                && self.list.fields.as_ref().is_none_or(|s| s.matches(&object));
            let before = self.matching.contains(&event.key);
            let kind = match (event.kind, now, before) {
                (EventKind::Deleted, true, _) | (EventKind::Deleted, false, true) => "DELETED",
                (EventKind::Deleted, false, false) => continue,
                (EventKind::Added, true, _) => "ADDED",
                (EventKind::Modified, true, false) if self.complete => "ADDED",
                (EventKind::Modified, true, _) => "MODIFIED",
                (_, false, true) => "DELETED",
                (_, false, false) => continue,
            };
            if kind == "DELETED" {
                self.matching.remove(&event.key);
            } else {
                self.matching.insert(event.key);
            }
            return Some(Event { kind, object });
        }
    }

    /// The next event, typed, for an informer. A live event's object is decoded once for
    /// every watcher of `T` (see [`Decoded`](crate::store::Decoded)); objects that are not a
    /// `T` are skipped. Watches with selectors decode their own, as [`next`](Self::next).
    pub async fn next_shared<T: DeserializeOwned + Send + Sync + 'static>(&mut self) -> Option<SharedEvent<T>> {
        if self.list.labels.is_some() || self.list.fields.is_some() || !self.initial.is_empty() {
            loop {
                let event = self.next().await?;
                if let Some(shared) = SharedEvent::decode(event) {
                    return Some(shared);
                }
            }
        }
        loop {
            let event = self.stream.next().await?.ok()?;
            // The cache holds what informers keep (the `T` itself), so it stays shared while
            // they hold it.
            let decode = || serde_json::from_value::<T>(decode_stored(&event.key, &event.value, event.rev).ok()?).ok();
            let Some(object) = event.decoded.get_or_decode(decode) else {
                continue;
            };
            let key = key_in_collection(&event.key);
            // Without selectors every object matches: only ADDED for an object first seen
            // after a complete start differs from the store's kind.
            let kind = match event.kind {
                EventKind::Deleted => {
                    self.matching.remove(&event.key);
                    "DELETED"
                }
                EventKind::Added => "ADDED",
                EventKind::Modified if self.complete && !self.matching.contains(&event.key) => "ADDED",
                EventKind::Modified => "MODIFIED",
            };
            if kind != "DELETED" {
                self.matching.insert(event.key);
            }
            return Some(SharedEvent {
                kind,
                key,
                object,
                rev: event.rev,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_informer_keys_a_stored_object_as_from_its_metadata() {
        for (key, object) in [
            ("/core/pods/ns/p", json!({"metadata": {"namespace": "ns", "name": "p"}})),
            (
                "/apps/deployments/default/web",
                json!({"metadata": {"namespace": "default", "name": "web"}}),
            ),
            ("/core/nodes/node-1", json!({"metadata": {"name": "node-1"}})),
        ] {
            assert_eq!(key_in_collection(key), informer_key(&object).0, "{key}");
        }
    }
}
