//! The object store: Kubernetes objects as JSON bytes under keys, a cluster-wide revision that
//! is every object's `resourceVersion`, optimistic concurrency and watches — the role etcd3
//! plays for kube-apiserver.
//!
//! Keys look like `/{group}/{resource}/{namespace}/{name}` (cluster-scoped objects have no
//! namespace segment; the core group is spelled `core`), see [`object_key`]. Every write
//! (create, update, delete) bumps the revision by exactly one and records one [`WatchEvent`] in
//! a bounded history, so a watch can resume from any revision still in that history and gets
//! [`StoreError::Compacted`] (the API server's 410 Gone) for an older one.
//!
//! Two backends: [`RedbStore`] (the default: one redb file and its write-ahead log, every
//! write synced to disk before it returns) and [`MemStore`] (tests and pure-logic callers).
//!
//! The [`Store`] methods are synchronous. redb is a synchronous library and a write is one
//! transaction plus one log sync; an async trait would only wrap that. Async callers on a tokio
//! runtime (the API server) should call writes through `tokio::task::spawn_blocking` so an
//! fsync never stalls a worker thread; reads are short MVCC snapshots. Watching is async:
//! [`WatchStream::next`] awaits the next event.

mod mem;
mod redb_store;
#[cfg(test)]
mod tests;
mod wal;
mod watch;

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;

pub use mem::MemStore;
pub use redb_store::RedbStore;
pub use watch::{WatchError, WatchStream};

/// How many recent events a store keeps for watches to resume from. Kubernetes' watch cache
/// and etcd's default compaction keep minutes of history; 10,000 writes is several minutes of a
/// busy single-machine cluster, and bounds the events table and the replay a watch may need.
pub const HISTORY_LIMIT: usize = 10_000;

/// How many live events a watcher may fall behind before it is cut off with
/// [`WatchError::Lagged`]. Writers never wait for watchers; a watcher that cannot keep up
/// re-lists or resumes from the last revision it saw, as a Kubernetes client does after a 410.
pub const WATCH_BUFFER: usize = 1024;

/// What a write did to an object, as a watch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted; the event carries its last value.
    Deleted,
}

/// One change to one object, at the revision the change was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub key: String,
    /// The new value, or for [`EventKind::Deleted`] the last value before deletion.
    pub value: Bytes,
    pub rev: u64,
    /// What watchers decoded from `value`, shared by every watcher of this event.
    pub decoded: Decoded,
}

impl WatchEvent {
    pub fn new(kind: EventKind, key: String, value: Bytes, rev: u64) -> Self {
        WatchEvent {
            kind,
            key,
            value,
            rev,
            decoded: Decoded::default(),
        }
    }
}

/// Objects decoded from one event's value, one per type, shared by the event's clones.
///
/// Every controller follows pods, so one pod write reaches half a dozen informers of the
/// same type in this process; decoding its JSON once for all of them (as client-go's shared
/// informers do) rather than once each takes that CPU off every write's path. A cache, not
/// part of the event: two events are equal whatever either has decoded.
///
/// It holds the objects weakly: the watch channels keep their last events for slow watchers,
/// and must not keep every decoded object of them alive too. An object lives as long as a
/// watcher holds it (an informer, while it is the current state); one decoded after that is
/// decoded again.
#[derive(Clone, Default)]
pub struct Decoded(Arc<Mutex<Vec<(TypeId, AnyObject)>>>);

/// One decoded object of some type, held weakly.
type AnyObject = Weak<dyn Any + Send + Sync>;

impl Decoded {
    /// The `T` decoded from this event, decoding it with `decode` if no watcher holds one.
    /// `None` (not cached) when `decode` fails.
    pub fn get_or_decode<T: Any + Send + Sync>(&self, decode: impl FnOnce() -> Option<T>) -> Option<Arc<T>> {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let id = TypeId::of::<T>();
        if let Some(found) = cache
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, weak)| weak.upgrade()?.downcast::<T>().ok())
        {
            return Some(found);
        }
        let decoded = Arc::new(decode()?);
        let weak: AnyObject = Arc::downgrade(&decoded) as AnyObject;
        cache.retain(|(t, _)| *t != id);
        cache.push((id, weak));
        Some(decoded)
    }
}

impl PartialEq for Decoded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Decoded {}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoded")
    }
}

/// One listed object: key, value, revision.
pub type Entry = (String, Bytes, u64);

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` found an object already stored under the key (HTTP 409 AlreadyExists).
    #[error("{key} already exists")]
    AlreadyExists { key: String },
    /// No object is stored under the key (HTTP 404).
    #[error("{key} not found")]
    NotFound { key: String },
    /// The caller's expected revision is not the object's current one (HTTP 409 Conflict).
    #[error("{key} has revision {current}, not the expected {expected}")]
    Conflict { key: String, expected: u64, current: u64 },
    /// The watch asked for changes after a revision the history no longer holds (HTTP 410 Gone);
    /// `oldest` is the smallest `from_rev` that can still be served.
    #[error("revision {requested} has been compacted; the oldest revision to watch from is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    /// The key or prefix is not a store key (see [`object_key`]).
    #[error("invalid store key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// A stored record could not be decoded; `key` names the object or event.
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The embedded database failed (I/O, lock held by another process, file damage).
    #[error("store database: {0}")]
    Backend(#[source] Box<redb::Error>),
    /// The write-ahead log could not be read, written or synced.
    #[error("store log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A failed write could not be cut back out of the write-ahead log; writes are refused
    /// until the store is reopened (which replays the log and cuts a torn tail).
    #[error("store refuses writes until it is reopened: {0}")]
    Broken(String),
}

impl StoreError {
    fn backend(e: impl Into<redb::Error>) -> Self {
        StoreError::Backend(Box::new(e.into()))
    }
}

/// The durable object store behind the API server. See the module docs for key layout,
/// revisions and why the methods are synchronous.
pub trait Store: Send + Sync {
    /// Stores a new object; returns its revision. Fails with `AlreadyExists`.
    fn create(&self, key: &str, value: Bytes) -> Result<u64, StoreError>;
    /// The object's value and revision, if there is one.
    fn get(&self, key: &str) -> Result<Option<(Bytes, u64)>, StoreError>;
    /// Every object whose key starts with `prefix`, in key order, with the store revision the
    /// list was read at (a consistent snapshot; watch from it to follow the list).
    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError>;
    /// Replaces the object's value; returns its new revision. With `expected_rev`, fails with
    /// `Conflict` unless the object is still at that revision. Fails with `NotFound`.
    fn update(&self, key: &str, value: Bytes, expected_rev: Option<u64>) -> Result<u64, StoreError>;
    /// Deletes the object; returns its last value and the revision of the deletion.
    /// `expected_rev` as for `update`.
    fn delete(&self, key: &str, expected_rev: Option<u64>) -> Result<(Bytes, u64), StoreError>;
    /// Changes to keys under `prefix` with a revision greater than `from_rev`: first those still
    /// in the history, in revision order, then live ones as they are written. Fails with
    /// `Compacted` if the history no longer reaches back to `from_rev`.
    fn watch(&self, prefix: &str, from_rev: u64) -> Result<WatchStream, StoreError>;
    /// The store's current revision: the revision of the latest write, 0 for an empty store.
    fn revision(&self) -> Result<u64, StoreError>;
}

/// The key of an object: `/{group}/{resource}/{namespace}/{name}`, or without the namespace
/// segment for a cluster-scoped object. The core API group (`""`) is spelled `core`.
pub fn object_key(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
    let mut key = collection_prefix(group, resource, namespace);
    key.push_str(name);
    key
}

/// The prefix under which every object of a resource (in one namespace, if given) lives,
/// ending in `/` so that namespace `a` does not match namespace `ab`.
pub fn collection_prefix(group: &str, resource: &str, namespace: Option<&str>) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("/{group}/{resource}/{ns}/"),
        None => format!("/{group}/{resource}/"),
    }
}

/// Checks that `key` can name an object: absolute, no empty segment, no trailing slash.
fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if !key.starts_with('/') {
        return invalid("must start with '/'");
    }
    if key.ends_with('/') {
        return invalid("must not end with '/'");
    }
    if key.contains("//") {
        return invalid("must not have an empty segment");
    }
    if key.contains('\0') {
        return invalid("must not contain NUL");
    }
    Ok(())
}

/// Checks that `prefix` can select keys for `list` and `watch`.
fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if !prefix.starts_with('/') {
        return Err(StoreError::InvalidKey {
            key: prefix.to_owned(),
            reason: "prefix must start with '/'",
        });
    }
    Ok(())
}

/// A write as both backends apply it.
#[derive(Clone, Debug)]
enum Write {
    Create(Bytes),
    Update(Bytes, Option<u64>),
    Delete(Option<u64>),
}

/// The outcome of a write, decided from the object currently stored (its revision and value)
/// before anything is written: the event kind and the value the event carries.
fn plan(key: &str, write: Write, current: Option<(u64, Bytes)>) -> Result<(EventKind, Bytes), StoreError> {
    let key = || key.to_owned();
    let check_rev = |expected: Option<u64>, current: u64| match expected {
        Some(expected) if expected != current => Err(StoreError::Conflict {
            key: key(),
            expected,
            current,
        }),
        _ => Ok(()),
    };
    match (write, current) {
        (Write::Create(_), Some(_)) => Err(StoreError::AlreadyExists { key: key() }),
        (Write::Create(value), None) => Ok((EventKind::Added, value)),
        (Write::Update(..) | Write::Delete(_), None) => Err(StoreError::NotFound { key: key() }),
        (Write::Update(value, expected), Some((rev, _))) => {
            check_rev(expected, rev)?;
            Ok((EventKind::Modified, value))
        }
        (Write::Delete(expected), Some((rev, last))) => {
            check_rev(expected, rev)?;
            Ok((EventKind::Deleted, last))
        }
    }
}
