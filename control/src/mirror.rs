//! A collection of the API server mirrored over HTTP, for a process that has no store of its
//! own (a node joined with `capstan node --server URL`): list, then watch from the list's
//! resourceVersion; a watch that ends is resumed from the last resourceVersion seen, and an
//! `ERROR` event (410 Gone: the version is too old) or a failure lists again — client-go's
//! reflector, for the few kinds such a process follows. The in-process counterpart is
//! [`crate::manager::informer::Informer`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::Client;

/// How long to wait before listing again after a failure, so a server that is away is not
/// asked in a busy loop.
const RELIST_DELAY: Duration = Duration::from_secs(1);

/// How many updates may wait for the consumer before the reader waits too.
const BACKLOG: usize = 256;

/// A change to the mirrored collection, keyed by `namespace/name`.
#[derive(Debug, PartialEq)]
pub enum Update<T> {
    /// A complete list: replaces everything.
    Listed(Vec<(String, T)>),
    /// Added or modified.
    Applied(String, T),
    /// Deleted.
    Deleted(String),
}

/// What one watch event asks of the reader. Pure.
#[derive(Debug, PartialEq)]
enum Watched {
    /// An object changed: its update, and the resourceVersion to resume from.
    Change(Update<Value>, Option<String>),
    /// Nothing changed, but the stream has reached this resourceVersion (a bookmark), or the
    /// event carried nothing usable.
    Progress(Option<String>),
    /// The watch cannot go on from here (an `ERROR` event, such as 410 Gone): list again.
    Relist,
}

fn key_of(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default()
    )
}

fn version_of(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"].as_str().map(str::to_owned)
}

fn classify(mut event: Value) -> Watched {
    let object = event["object"].take();
    let version = version_of(&object);
    match event["type"].as_str() {
        Some("ADDED" | "MODIFIED") => Watched::Change(Update::Applied(key_of(&object), object), version),
        Some("DELETED") => Watched::Change(Update::Deleted(key_of(&object)), version),
        Some("BOOKMARK") => Watched::Progress(version),
        _ => Watched::Relist,
    }
}

/// Applies an update to the mirrored objects. Pure.
pub fn apply<T>(items: &mut BTreeMap<String, Arc<T>>, update: Update<T>) {
    match update {
        Update::Listed(list) => *items = list.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        Update::Applied(key, object) => {
            items.insert(key, Arc::new(object));
        }
        Update::Deleted(key) => {
            items.remove(&key);
        }
    }
}

/// Objects of one collection, kept from the API server by a reader task that ends when the
/// mirror is dropped.
pub struct Mirror<T> {
    pub items: BTreeMap<String, Arc<T>>,
    synced: bool,
    updates: mpsc::Receiver<Update<T>>,
}

impl<T: DeserializeOwned + Send + 'static> Mirror<T> {
    /// Mirrors the collection at `path` (`/api/v1/services`: every namespace).
    pub fn start(client: Client, path: &str) -> Self {
        let (tx, updates) = mpsc::channel(BACKLOG);
        tokio::spawn(read(client, path.to_owned(), tx));
        Mirror {
            items: BTreeMap::new(),
            synced: false,
            updates,
        }
    }

    /// Whether a complete list has been applied.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Applies the next update; `None` when the reader has ended.
    pub async fn next(&mut self) -> Option<()> {
        let update = self.updates.recv().await?;
        self.synced |= matches!(update, Update::Listed(_));
        apply(&mut self.items, update);
        Some(())
    }
}

/// Objects that decode as `T`, by key; others are left out.
fn decode<T: DeserializeOwned>(update: Update<Value>) -> Option<Update<T>> {
    Some(match update {
        Update::Listed(list) => Update::Listed(
            list.into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
                .collect(),
        ),
        Update::Applied(key, object) => Update::Applied(key, serde_json::from_value(object).ok()?),
        Update::Deleted(key) => Update::Deleted(key),
    })
}

/// Lists and watches `path` for ever, sending updates until the receiver is dropped.
async fn read<T: DeserializeOwned>(client: Client, path: String, tx: mpsc::Sender<Update<T>>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let mut list = match client.get(&path).await {
            Ok(list) => list,
            Err(e) => {
                tracing::debug!(%path, error = %e, "listing failed; listing again");
                tokio::time::sleep(RELIST_DELAY).await;
                continue;
            }
        };
        let mut version = version_of(&list).unwrap_or_else(|| "0".into());
        let items = match list["items"].take() {
            Value::Array(items) => items.into_iter().map(|i| (key_of(&i), i)).collect(),
            _ => Vec::new(),
        };
        if let Some(update) = decode(Update::Listed(items))
            && tx.send(update).await.is_err()
        {
            return;
        }
        // Watch, resuming after a watch that ends, until one cannot go on.
        loop {
            let watch = format!("{path}{separator}watch=true&resourceVersion={version}");
            let Ok(mut events) = client.watch(&watch).await else {
                break;
            };
            let mut delivered = false;
            let mut relist = false;
            while let Some(event) = events.recv().await {
                delivered = true;
                let (update, seen) = match classify(event) {
                    Watched::Change(update, seen) => (Some(update), seen),
                    Watched::Progress(seen) => (None, seen),
                    Watched::Relist => {
                        relist = true;
                        break;
                    }
                };
                if let Some(seen) = seen {
                    version = seen;
                }
                if let Some(update) = update.and_then(decode)
                    && tx.send(update).await.is_err()
                {
                    return;
                }
            }
            if relist {
                break;
            }
            if !delivered {
                // A watch that ends at once: the server is going away, or will not keep it.
                tokio::time::sleep(RELIST_DELAY).await;
            }
        }
        tokio::time::sleep(RELIST_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn watch_events_become_updates_or_a_relist() {
        let obj = json!({"metadata": {"namespace": "a", "name": "web", "resourceVersion": "7"}});
        let cases = [
            (
                json!({"type": "ADDED", "object": obj}),
                Watched::Change(Update::Applied("a/web".into(), obj.clone()), Some("7".into())),
            ),
            (
                json!({"type": "MODIFIED", "object": obj}),
                Watched::Change(Update::Applied("a/web".into(), obj.clone()), Some("7".into())),
            ),
            (
                json!({"type": "DELETED", "object": obj}),
                Watched::Change(Update::Deleted("a/web".into()), Some("7".into())),
            ),
            (
                json!({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}),
                Watched::Progress(Some("9".into())),
            ),
            (
                json!({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}),
                Watched::Relist,
            ),
            (json!({"unexpected": true}), Watched::Relist),
        ];
        for (event, want) in cases {
            assert_eq!(classify(event.clone()), want, "{event}");
        }
    }

    #[test]
    fn updates_replace_add_and_remove() {
        let mut items: BTreeMap<String, Arc<u32>> = BTreeMap::new();
        apply(&mut items, Update::Applied("a/stale".into(), 9));
        apply(&mut items, Update::Listed(vec![("a/x".into(), 1), ("b/y".into(), 2)]));
        assert_eq!(items.keys().collect::<Vec<_>>(), ["a/x", "b/y"], "a list replaces all");
        apply(&mut items, Update::Applied("a/x".into(), 3));
        apply(&mut items, Update::Deleted("b/y".into()));
        apply(&mut items, Update::Deleted("c/never".into()));
        assert_eq!(items.len(), 1);
        assert_eq!(*items["a/x"], 3);
    }

    #[test]
    fn objects_that_do_not_decode_are_left_out() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Named {
            name: String,
        }
        let listed = Update::Listed(vec![
            ("a".into(), json!({"name": "ok"})),
            ("b".into(), json!({"name": 7})),
        ]);
        let Some(Update::Listed(list)) = decode::<Named>(listed) else {
            panic!("a list stays a list");
        };
        assert_eq!(list, vec![("a".to_owned(), Named { name: "ok".into() })]);
        assert_eq!(decode::<Named>(Update::Applied("b".into(), json!(1))), None);
    }
}
