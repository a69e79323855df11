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
        self.add_at(key, Instant::now() + after);
    }

    pub fn add_at(&mut self, key: String, at: Instant) {
        self.delayed.push(Reverse((at, key)));
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

/// How long a sync that wrote to a workload's dependents leaves its own status write to a
/// later sync.
pub const STATUS_AFTER: Duration = Duration::from_millis(25);

/// Status writes put off, by key, until when. A sync that creates, scales or deletes
/// dependents (pods, or a Deployment's ReplicaSets) starts the next controller's work with
/// those writes; its status write, and the status writes of the syncs those writes trigger
/// at once, would only hold that work up: the store takes one write at a time, and a status
/// write costs as much as any other. So status writes of the key wait until [`STATUS_AFTER`]
/// has passed, and a sync then (the controller queues one) computes the status afresh and
/// writes it, so nothing is lost. A status lags by at most that long.
#[derive(Default)]
pub struct DeferredStatus {
    until: HashMap<String, Instant>,
}

impl DeferredStatus {
    /// Whether this sync of `key` at `now` leaves its status write for later, and if so until
    /// when (the caller queues the key for then). `writes_dependents`: the sync writes other
    /// objects; `writes_status`: it has a status write at all.
    pub fn put_off(
        &mut self,
        key: &str,
        now: Instant,
        writes_dependents: bool,
        writes_status: bool,
    ) -> Option<Instant> {
        if !writes_status {
            return None;
        }
        match self.until.get(key) {
            Some(&until) if now < until => Some(until),
            Some(_) => {
                self.until.remove(key);
                None
            }
            None if writes_dependents => {
                // Keys whose time has passed without another sync (a deleted workload's)
                // are forgotten here.
                self.until.retain(|_, until| *until > now);
                let until = now + STATUS_AFTER;
                self.until.insert(key.to_owned(), until);
                Some(until)
            }
            None => None,
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

    #[test]
    fn status_writes_wait_behind_writes_to_dependents_for_a_while() {
        let mut d = DeferredStatus::default();
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            d.put_off("ns/a", t0, false, true),
            None,
            "a status-only sync writes at once"
        );
        assert_eq!(d.put_off("ns/a", t0, true, false), None, "nothing to put off");
        let until = t0 + STATUS_AFTER;
        assert_eq!(d.put_off("ns/a", t0, true, true), Some(until));
        assert_eq!(
            d.put_off("ns/a", later(5), false, true),
            Some(until),
            "the syncs that follow at once wait too, for the same time"
        );
        assert_eq!(d.put_off("ns/b", later(5), false, true), None, "keys are apart");
        assert_eq!(
            d.put_off("ns/a", until, true, true),
            None,
            "once due, the status is written"
        );
        assert_eq!(
            d.put_off("ns/a", until, true, true),
            Some(until + STATUS_AFTER),
            "and a later write to dependents puts the next one off again"
        );
        let much_later = until + STATUS_AFTER * 2;
        assert_eq!(
            d.put_off("ns/gone", much_later, true, true),
            Some(much_later + STATUS_AFTER)
        );
        assert_eq!(d.until.len(), 1, "a key whose time passed unsynced is forgotten");
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
