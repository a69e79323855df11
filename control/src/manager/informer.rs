//! The pieces every controller shell shares, as client-go's: an informer (a watch feeding a
//! local cache of typed objects), a de-duplicating work queue with delayed requeues, and
//! expectations (the revision a controller's own writes must be seen at before it acts on
//! that key again, so a slow watch never makes it create the same pods twice).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::api::resources::ResourceInfo;
use crate::api::watch::{ApiWatch, WatchOptions};
use crate::api::{Api, ApiError};

/// A change an informer applied: the event type and the object (for DELETED, its last state).
pub struct Change<T> {
    pub kind: &'static str,
    pub object: Arc<T>,
}

/// A watch of one resource (all namespaces) and the objects it has delivered, by
/// `namespace/name`.
pub struct Informer<T> {
    watch: ApiWatch,
    pub items: BTreeMap<String, Arc<T>>,
    /// The highest resourceVersion delivered.
    pub seen: u64,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Informer<T> {
    pub async fn start(api: &Arc<Api>, info: &'static ResourceInfo) -> Result<Self, ApiError> {
        let watch = api.call(move |a| a.watch(info, None, WatchOptions::default())).await?;
        Ok(Informer {
            watch,
            items: BTreeMap::new(),
            seen: 0,
        })
    }

    /// Whether the initial state has been delivered.
    pub fn synced(&self) -> bool {
        self.watch.synced()
    }

    /// The next change, applied to the cache; `None` when the watch ended. The object is
    /// shared with the other informers of `T` (decoded once per write).
    pub async fn next(&mut self) -> Option<Change<T>> {
        let event = self.watch.next_shared::<T>().await?;
        self.seen = self.seen.max(event.rev);
        if event.kind == "DELETED" {
            self.items.remove(&event.key);
        } else {
            self.items.insert(event.key, Arc::clone(&event.object));
        }
        Some(Change {
            kind: event.kind,
            object: event.object,
        })
    }
}

impl<T> Informer<T> {
    /// The cached objects of one namespace.
    pub fn in_namespace<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a Arc<T>> + 'a {
        let prefix = format!("{ns}/");
        self.items
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
    }
}

/// Keys to reconcile: each at most once in the queue, some after a delay.
#[derive(Default)]
pub struct Queue {
    ready: BTreeSet<String>,
    delayed: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Queue {
    pub fn add(&mut self, key: String) {
        self.ready.insert(key);
    }

    pub fn add_after(&mut self, key: String, after: Duration) {
        self.delayed.push(Reverse((Instant::now() + after, key)));
    }

    /// Moves due delayed keys to ready and takes every ready key.
    pub fn take_ready(&mut self) -> Vec<String> {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, key))) = self.delayed.pop() {
                self.ready.insert(key);
            }
        }
        std::mem::take(&mut self.ready).into_iter().collect()
    }

    /// When the next delayed key is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.peek().map(|Reverse((at, _))| *at)
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The revisions of a controller's own writes, per key, that its informer must have seen
/// before the key is reconciled again.
#[derive(Default)]
pub struct Expectations {
    revs: HashMap<String, u64>,
}

impl Expectations {
    pub fn expect(&mut self, key: &str, rev: u64) {
        let slot = self.revs.entry(key.to_owned()).or_default();
        *slot = (*slot).max(rev);
    }

    /// Whether `key` may be reconciled now that the informer has seen `seen`.
    pub fn satisfied(&mut self, key: &str, seen: u64) -> bool {
        match self.revs.get(key) {
            Some(rev) if *rev > seen => false,
            Some(_) => {
                self.revs.remove(key);
                true
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_hold_a_key_until_its_writes_are_seen() {
        let mut e = Expectations::default();
        e.expect("ns/a", 10);
        assert!(!e.satisfied("ns/a", 9));
        assert!(e.satisfied("ns/b", 0));
        assert!(e.satisfied("ns/a", 10));
        assert!(e.satisfied("ns/a", 0), "met expectations are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_deduplicates_and_delays() {
        let mut q = Queue::default();
        q.add("a".into());
        q.add("a".into());
        q.add_after("b".into(), Duration::from_secs(5));
        assert_eq!(q.take_ready(), vec!["a".to_string()]);
        assert!(q.take_ready().is_empty());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(q.take_ready(), vec!["b".to_string()]);
        assert_eq!(q.next_due(), None);
    }
}
