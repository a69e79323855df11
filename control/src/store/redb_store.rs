//! [`RedbStore`]: the default store, one embedded redb database file.
//!
//! Each write is one redb write transaction, committed with `Durability::Immediate` (fsync)
//! before the call returns, so an acknowledged write survives `kill -9` or power loss. Tables:
//!
//! - `objects`: key → (revision, value bytes)
//! - `meta`: `revision` (the latest write's revision) and `compacted` (the newest revision whose
//!   event has been dropped from the history; watches must start at or after it)
//! - `events`: revision → (kind, key, value) for the last `history_limit` writes
//!
//! Opening the file recovers the revision and the history, so watches resume across restarts.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::watch::Hub;
use super::{
    Entry, EventKind, HISTORY_LIMIT, Store, StoreError, WatchEvent, WatchStream, Write, plan, validate_key,
    validate_prefix,
};

const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const EVENTS: TableDefinition<u64, (u8, &str, &[u8])> = TableDefinition::new("events");

const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// A [`Store`] in one redb database file.
pub struct RedbStore {
    db: Database,
    /// Held across each write transaction and the publication of its event, so events are
    /// published in revision order and a new watch sees no gap between replay and live events.
    state: Mutex<Counters>,
    hub: Hub,
    history_limit: u64,
}

/// The committed values of the `meta` table.
#[derive(Clone, Copy)]
struct Counters {
    rev: u64,
    compacted: u64,
}

impl RedbStore {
    /// Opens the database at `path`, creating it if needed, keeping [`HISTORY_LIMIT`] events.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_history_limit(path, HISTORY_LIMIT)
    }

    /// Opens the database at `path`, keeping the last `limit` events (at least one). A smaller
    /// limit than the file was written with takes effect at the next write.
    pub fn open_with_history_limit(path: impl AsRef<Path>, limit: usize) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(StoreError::backend)?;
        // Create the tables so reads never meet a missing one, and read the counters back.
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let counters = {
            txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            txn.open_table(EVENTS).map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            read_counters(&meta)?
        };
        txn.commit().map_err(StoreError::backend)?;
        Ok(RedbStore {
            db,
            state: Mutex::new(counters),
            hub: Hub::new(),
            history_limit: limit.max(1) as u64,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        // The counters change only after a commit succeeds, so they are valid even if a
        // holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, key: &str, write: Write) -> Result<WatchEvent, StoreError> {
        validate_key(key)?;
        let mut counters = self.lock();
        let mut txn = self.db.begin_write().map_err(StoreError::backend)?;
        txn.set_durability(Durability::Immediate).map_err(StoreError::backend)?;
        let rev = counters.rev + 1;
        let (event, compacted) = {
            let mut objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            let current = objects.get(key).map_err(StoreError::backend)?.map(|guard| {
                let (rev, value) = guard.value();
                (rev, Bytes::copy_from_slice(value))
            });
            let (kind, value) = plan(key, write, current)?;
            match kind {
                EventKind::Deleted => {
                    objects.remove(key).map_err(StoreError::backend)?;
                }
                EventKind::Added | EventKind::Modified => {
                    objects.insert(key, (rev, &value[..])).map_err(StoreError::backend)?;
                }
            }
            let mut events = txn.open_table(EVENTS).map_err(StoreError::backend)?;
            events
                .insert(rev, (kind_code(kind), key, &value[..]))
                .map_err(StoreError::backend)?;
            let compacted = trim_history(&mut events, rev, self.history_limit, counters.compacted)?;
            let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
            meta.insert(META_REVISION, rev).map_err(StoreError::backend)?;
            meta.insert(META_COMPACTED, compacted).map_err(StoreError::backend)?;
            (
                WatchEvent {
                    kind,
                    key: key.to_owned(),
                    value,
                    rev,
                },
                compacted,
            )
        };
        txn.commit().map_err(StoreError::backend)?;
        *counters = Counters { rev, compacted };
        self.hub.publish(event.clone());
        Ok(event)
    }
}

/// Drops events older than the last `limit` before `rev`; returns the new compacted revision.
fn trim_history(
    events: &mut redb::Table<'_, u64, (u8, &str, &[u8])>,
    rev: u64,
    limit: u64,
    mut compacted: u64,
) -> Result<u64, StoreError> {
    loop {
        let oldest = match events.first().map_err(StoreError::backend)? {
            Some((k, _)) => k.value(),
            None => return Ok(compacted),
        };
        if oldest + limit > rev {
            return Ok(compacted);
        }
        events.remove(oldest).map_err(StoreError::backend)?;
        compacted = compacted.max(oldest);
    }
}

fn read_counters(meta: &impl ReadableTable<&'static str, u64>) -> Result<Counters, StoreError> {
    let read = |name| -> Result<u64, StoreError> {
        Ok(meta
            .get(name)
            .map_err(StoreError::backend)?
            .map(|g| g.value())
            .unwrap_or(0))
    };
    Ok(Counters {
        rev: read(META_REVISION)?,
        compacted: read(META_COMPACTED)?,
    })
}

fn kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Added => 1,
        EventKind::Modified => 2,
        EventKind::Deleted => 3,
    }
}

fn kind_from_code(code: u8, rev: u64) -> Result<EventKind, StoreError> {
    match code {
        1 => Ok(EventKind::Added),
        2 => Ok(EventKind::Modified),
        3 => Ok(EventKind::Deleted),
        _ => Err(StoreError::Corrupt {
            key: format!("event at revision {rev}"),
            reason: format!("unknown kind {code}"),
        }),
    }
}

impl Store for RedbStore {
    fn create(&self, key: &str, value: Bytes) -> Result<u64, StoreError> {
        Ok(self.write(key, Write::Create(value))?.rev)
    }

    fn get(&self, key: &str) -> Result<Option<(Bytes, u64)>, StoreError> {
        validate_key(key)?;
        let txn = self.db.begin_read().map_err(StoreError::backend)?;
        let objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
        let found = objects.get(key).map_err(StoreError::backend)?;
        Ok(found.map(|guard| {
            let (rev, value) = guard.value();
            (Bytes::copy_from_slice(value), rev)
        }))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError> {
        validate_prefix(prefix)?;
        // One read transaction: the objects and the revision come from the same snapshot.
        let txn = self.db.begin_read().map_err(StoreError::backend)?;
        let rev = read_counters(&txn.open_table(META).map_err(StoreError::backend)?)?.rev;
        let objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
        let mut items = Vec::new();
        for entry in objects.range::<&str>(prefix..).map_err(StoreError::backend)? {
            let (key, value) = entry.map_err(StoreError::backend)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            let (obj_rev, bytes) = value.value();
            items.push((key.to_owned(), Bytes::copy_from_slice(bytes), obj_rev));
        }
        Ok((items, rev))
    }

    fn update(&self, key: &str, value: Bytes, expected_rev: Option<u64>) -> Result<u64, StoreError> {
        Ok(self.write(key, Write::Update(value, expected_rev))?.rev)
    }

    fn delete(&self, key: &str, expected_rev: Option<u64>) -> Result<(Bytes, u64), StoreError> {
        let event = self.write(key, Write::Delete(expected_rev))?;
        Ok((event.value, event.rev))
    }

    fn watch(&self, prefix: &str, from_rev: u64) -> Result<WatchStream, StoreError> {
        validate_prefix(prefix)?;
        // Under the write lock: no write commits between reading the history and subscribing.
        let counters = self.lock();
        if from_rev < counters.compacted {
            return Err(StoreError::Compacted {
                requested: from_rev,
                oldest: counters.compacted,
            });
        }
        let txn = self.db.begin_read().map_err(StoreError::backend)?;
        let events = txn.open_table(EVENTS).map_err(StoreError::backend)?;
        let mut history = Vec::new();
        for entry in events
            .range(from_rev.saturating_add(1)..)
            .map_err(StoreError::backend)?
        {
            let (rev, value) = entry.map_err(StoreError::backend)?;
            let rev = rev.value();
            let (code, key, bytes) = value.value();
            if !key.starts_with(prefix) {
                continue;
            }
            let kind = kind_from_code(code, rev)?;
            history.push(WatchEvent {
                kind,
                key: key.to_owned(),
                value: Bytes::copy_from_slice(bytes),
                rev,
            });
        }
        Ok(self.hub.subscribe(prefix, from_rev, history))
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().rev)
    }
}
