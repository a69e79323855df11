//! [`MemStore`]: the store in memory, for tests and pure-logic callers. Same semantics as
//! [`super::RedbStore`], nothing survives the process.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::watch::Hub;
use super::{
    Entry, EventKind, HISTORY_LIMIT, Store, StoreError, WatchEvent, WatchStream, Write, plan, validate_key,
    validate_prefix,
};

/// An in-memory [`Store`].
pub struct MemStore {
    state: Mutex<State>,
    hub: Hub,
}

struct State {
    /// key → (revision, value)
    objects: BTreeMap<String, (u64, Bytes)>,
    rev: u64,
    /// The last `history_limit` events; revisions are contiguous, ending at `rev`.
    history: VecDeque<WatchEvent>,
    history_limit: usize,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::with_history_limit(HISTORY_LIMIT)
    }

    /// A store that keeps only the last `limit` events (at least one) for watches.
    pub fn with_history_limit(limit: usize) -> Self {
        let state = State {
            objects: BTreeMap::new(),
            rev: 0,
            history: VecDeque::new(),
            history_limit: limit.max(1),
        };
        MemStore {
            state: Mutex::new(state),
            hub: Hub::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if some did, the state is still consistent
        // because each write changes it only after every check has passed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, key: &str, write: Write) -> Result<WatchEvent, StoreError> {
        validate_key(key)?;
        let mut st = self.lock();
        let (kind, value) = plan(key, write, st.objects.get(key).cloned())?;
        st.rev += 1;
        let rev = st.rev;
        match kind {
            EventKind::Deleted => st.objects.remove(key),
            _ => st.objects.insert(key.to_owned(), (rev, value.clone())),
        };
        let event = WatchEvent::new(kind, key.to_owned(), value, rev);
        st.history.push_back(event.clone());
        while st.history.len() > st.history_limit {
            st.history.pop_front();
        }
        self.hub.publish(event.clone());
        Ok(event)
    }
}

impl Store for MemStore {
    fn create(&self, key: &str, value: Bytes) -> Result<u64, StoreError> {
        Ok(self.write(key, Write::Create(value))?.rev)
    }

    fn get(&self, key: &str) -> Result<Option<(Bytes, u64)>, StoreError> {
        validate_key(key)?;
        Ok(self.lock().objects.get(key).map(|(rev, value)| (value.clone(), *rev)))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError> {
        validate_prefix(prefix)?;
        let st = self.lock();
        let items = st
            .objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (rev, value))| (k.clone(), value.clone(), *rev))
            .collect();
        Ok((items, st.rev))
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
        let st = self.lock();
        // The history holds revisions (oldest, rev].
        let oldest = st.rev - st.history.len() as u64;
        if from_rev < oldest {
            return Err(StoreError::Compacted {
                requested: from_rev,
                oldest,
            });
        }
        let history = st.history.iter().filter(|e| e.rev > from_rev).cloned().collect();
        Ok(self.hub.subscribe(prefix, from_rev, history))
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().rev)
    }
}
