//! [`RedbStore`]: the default store, one embedded redb database file and its write-ahead log.
//!
//! A write is durable before the call returns, so an acknowledged write survives `kill -9` or
//! power loss: its event is appended to the log (`<file>-wal`, see [`wal`](super::wal)) and
//! synced, then committed to redb without an fsync. After [`CHECKPOINT_RECORDS`] writes redb
//! commits durably and the log starts over (a checkpoint); opening the file after a crash
//! applies the log's records that redb's last durable commit does not hold.
//!
//! A checkpoint holds the write lock for redb's fsyncs, so every write behind it waits: on
//! a slow disk (an edge node's flash) that is tens of milliseconds. It therefore runs on a
//! thread of its own once the writes pause for [`CHECKPOINT_IDLE`], not inside the write
//! that crossed the mark, which is usually one link of a chain (a scale-up from zero makes
//! a handful of writes in a row). A store that never pauses checkpoints in its own writes
//! once the log holds [`FORCE_FACTOR`] times the interval, or [`CHECKPOINT_BYTES`].
//! Tables:
//!
//! - `objects`: key → (revision, value bytes)
//! - `meta`: `revision` (the latest write's revision) and `compacted` (the newest revision whose
//!   event has been dropped from the history; watches must start at or after it)
//! - `events`: revision → (kind, key, value) for the last `history_limit` writes
//!
//! Opening the file recovers the revision and the history, so watches resume across restarts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::wal::{CHECKPOINT_BYTES, CHECKPOINT_RECORDS, Wal, kind_code, kind_from_code};
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

/// A [`Store`] in one redb database file and its write-ahead log.
pub struct RedbStore {
    db: Arc<Database>,
    /// Held across each write (redb transaction, log append, commit) and the publication of
    /// its event, so events are published in revision order and a new watch sees no gap
    /// between replay and live events.
    state: Arc<Mutex<State>>,
    hub: Hub,
    history_limit: u64,
    checkpoint_every: u64,
    /// Tells the checkpointer that a checkpoint is due and that writes go on; dropped (with
    /// the store), it stops the thread.
    due: Option<mpsc::Sender<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

/// How long the writes must pause before a due checkpoint runs.
pub(super) const CHECKPOINT_IDLE: Duration = Duration::from_millis(20);

/// A log this many checkpoint intervals long is checkpointed by the write that finds it so,
/// pause or not.
pub(super) const FORCE_FACTOR: u64 = 4;

/// What the write lock guards.
struct State {
    counters: Counters,
    wal: Wal,
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
        Self::open_with(path.as_ref(), limit, CHECKPOINT_RECORDS)
    }

    /// Opens the database, applies what its log holds beyond redb's last durable commit, and
    /// makes that durable.
    pub(super) fn open_with(path: &Path, limit: usize, checkpoint_every: u64) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(StoreError::backend)?;
        let (mut wal, logged) = Wal::open(&log_path(path))?;
        let history_limit = limit.max(1) as u64;
        // Create the tables so reads never meet a missing one, read the counters back, and
        // replay the log in one durable transaction.
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let counters = {
            txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            txn.open_table(EVENTS).map_err(StoreError::backend)?;
            let mut counters = read_counters(&txn.open_table(META).map_err(StoreError::backend)?)?;
            // Records at or below redb's revision were checkpointed before the log was emptied.
            for event in &logged {
                if event.rev <= counters.rev {
                    continue;
                }
                if event.rev != counters.rev + 1 {
                    return Err(StoreError::Corrupt {
                        key: format!("log record at revision {}", event.rev),
                        reason: format!("the store is at revision {}: a record is missing", counters.rev),
                    });
                }
                counters = apply(&txn, event, history_limit, counters)?;
            }
            counters
        };
        txn.commit().map_err(StoreError::backend)?;
        if wal.records() > 0 {
            wal.reset()?;
        }
        let db = Arc::new(db);
        let state = Arc::new(Mutex::new(State { counters, wal }));
        let checkpoint_every = checkpoint_every.max(1);
        let (due, pending) = mpsc::channel();
        let checkpointer = {
            let (db, state) = (db.clone(), state.clone());
            std::thread::Builder::new()
                .name("capstan-checkpoint".into())
                .spawn(move || checkpoint_when_idle(&db, &state, checkpoint_every, &pending))
                .map_err(|e| StoreError::backend(redb::Error::Io(e)))?
        };
        Ok(RedbStore {
            db,
            state,
            hub: Hub::new(),
            history_limit,
            checkpoint_every,
            due: Some(due),
            checkpointer: Some(checkpointer),
        })
    }

    /// Records in the log since the last checkpoint.
    #[cfg(test)]
    pub(super) fn logged_records(&self) -> u64 {
        self.lock().wal.records()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn write(&self, key: &str, write: Write) -> Result<WatchEvent, StoreError> {
        validate_key(key)?;
        let mut state = self.lock();
        let mut txn = self.db.begin_write().map_err(StoreError::backend)?;
        // The log makes the write durable; redb is made durable at checkpoints.
        txn.set_durability(Durability::None).map_err(StoreError::backend)?;
        let current = {
            let objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            objects.get(key).map_err(StoreError::backend)?.map(|guard| {
                let (rev, value) = guard.value();
                (rev, Bytes::copy_from_slice(value))
            })
        };
        let (kind, value) = plan(key, write, current)?;
        let event = WatchEvent::new(kind, key.to_owned(), value, state.counters.rev + 1);
        let counters = apply(&txn, &event, self.history_limit, state.counters)?;
        // Durable from here: the commit only makes it visible.
        state.wal.append(&event)?;
        if let Err(e) = txn.commit() {
            let failed = StoreError::backend(e);
            // A log that cannot be cut back refuses the next writes itself.
            let _ = state.wal.undo(&event, &failed);
            return Err(failed);
        }
        state.counters = counters;
        let records = state.wal.records();
        if records >= self.checkpoint_every * FORCE_FACTOR || state.wal.len() >= CHECKPOINT_BYTES {
            // No pause came: this write checkpoints (see the module's comment).
            checkpoint_or_warn(&self.db, &mut state.wal);
        }
        self.hub.publish(event.clone());
        drop(state);
        if records >= self.checkpoint_every
            && let Some(due) = &self.due
        {
            // Gone only if the thread ended; the writes then checkpoint at the forced mark.
            let _ = due.send(());
        }
        // Publishing woke the watchers' tasks, and the next step of a chain of controllers
        // is among them. Measured on 2 cores: a task woken from a thread that then keeps
        // its CPU (this write's caller going on to its next write) often waited until that
        // thread stopped, up to half a millisecond, and yielding the CPU here let it start
        // within tens of microseconds. A write already costs a log sync; a yield is a
        // syscall.
        std::thread::yield_now();
        Ok(event)
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // The thread holds the database: it must be gone before the file can be opened again.
        drop(self.due.take());
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state changes only after a write succeeds, so it is valid even if a holder
    // panicked.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The checkpoint thread: once told a checkpoint is due, waits until no write has come
/// for [`CHECKPOINT_IDLE`], then checkpoints if the log still needs it. Ends when the store
/// is dropped.
fn checkpoint_when_idle(db: &Database, state: &Mutex<State>, every: u64, due: &mpsc::Receiver<()>) {
    while due.recv().is_ok() {
        loop {
            match due.recv_timeout(CHECKPOINT_IDLE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let mut state = lock(state);
        if state.wal.records() >= every {
            checkpoint_or_warn(db, &mut state.wal);
        }
    }
}

/// Checkpoints; a failure is logged and retried later. Every write is durable in the log
/// whatever happens here.
fn checkpoint_or_warn(db: &Database, wal: &mut Wal) {
    if let Err(e) = checkpoint(db, wal) {
        tracing::warn!(error = %e, "store checkpoint failed; the log keeps growing until one succeeds");
    }
}

/// Makes every commit so far durable in redb, then empties the log.
fn checkpoint(db: &Database, wal: &mut Wal) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::backend)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::backend)?;
    txn.commit().map_err(StoreError::backend)?;
    wal.reset()
}

/// The log beside the database file: `store.redb` logs to `store.redb-wal`.
fn log_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push("-wal");
    PathBuf::from(name)
}

/// Writes `event` into the tables: the object, the history (trimmed to `limit`) and the
/// counters. Returns the counters after it.
fn apply(txn: &WriteTransaction, event: &WatchEvent, limit: u64, counters: Counters) -> Result<Counters, StoreError> {
    let mut objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
    match event.kind {
        EventKind::Deleted => {
            objects.remove(event.key.as_str()).map_err(StoreError::backend)?;
        }
        EventKind::Added | EventKind::Modified => {
            objects
                .insert(event.key.as_str(), (event.rev, &event.value[..]))
                .map_err(StoreError::backend)?;
        }
    }
    let mut events = txn.open_table(EVENTS).map_err(StoreError::backend)?;
    events
        .insert(event.rev, (kind_code(event.kind), event.key.as_str(), &event.value[..]))
        .map_err(StoreError::backend)?;
    let compacted = trim_history(&mut events, event.rev, limit, counters.compacted)?;
    let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
    meta.insert(META_REVISION, event.rev).map_err(StoreError::backend)?;
    meta.insert(META_COMPACTED, compacted).map_err(StoreError::backend)?;
    Ok(Counters {
        rev: event.rev,
        compacted,
    })
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

/// The kind stored with the event at `rev`, or why it is not one.
fn event_kind(code: u8, rev: u64) -> Result<EventKind, StoreError> {
    kind_from_code(code).ok_or_else(|| StoreError::Corrupt {
        key: format!("event at revision {rev}"),
        reason: format!("unknown kind {code}"),
    })
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
        let state = self.lock();
        if from_rev < state.counters.compacted {
            return Err(StoreError::Compacted {
                requested: from_rev,
                oldest: state.counters.compacted,
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
            let kind = event_kind(code, rev)?;
            history.push(WatchEvent::new(
                kind,
                key.to_owned(),
                Bytes::copy_from_slice(bytes),
                rev,
            ));
        }
        Ok(self.hub.subscribe(prefix, from_rev, history))
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().counters.rev)
    }
}
