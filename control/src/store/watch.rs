//! Fan-out of committed events to watchers: a replay of history, then live events.
//!
//! Backends publish each event after its write has committed, while still holding their write
//! lock, and take the replay and subscribe under the same lock; so a watcher sees every
//! revision after `from_rev` exactly once, in order. Live events go through a tokio broadcast
//! channel of [`WATCH_BUFFER`] events per watched prefix: a write wakes only the watchers of
//! prefixes of its key (a process has dozens of watchers, most of them of other resources),
//! writers never wait, and a watcher that falls more than that far behind gets
//! [`WatchError::Lagged`] and then the end of the stream.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::sync::broadcast;

use super::{WATCH_BUFFER, WatchEvent};

/// Why a watch ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The watcher fell more than [`WATCH_BUFFER`] events behind the writers and was cut off;
    /// every change up to `resume_from` was delivered, so a new watch from it loses nothing
    /// (or answers `Compacted` if the history has moved past it).
    #[error("watcher fell behind; resume from revision {resume_from}")]
    Lagged { resume_from: u64 },
}

/// The live side of a store's watches: one channel per watched prefix.
pub(super) struct Hub {
    channels: Mutex<Vec<(String, broadcast::Sender<WatchEvent>)>>,
}

impl Hub {
    pub(super) fn new() -> Self {
        Hub {
            channels: Mutex::new(Vec::new()),
        }
    }

    /// Sends a committed event to the watchers of every prefix of its key. Call under the
    /// backend's write lock.
    pub(super) fn publish(&self, event: WatchEvent) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        // A prefix nobody watches any more is forgotten.
        channels.retain(|(_, tx)| tx.receiver_count() > 0);
        for (prefix, tx) in channels.iter() {
            if event.key.starts_with(prefix.as_str()) {
                // An error only means that the last watcher just went.
                let _ = tx.send(event.clone());
            }
        }
    }

    /// A watch that replays `history` (events after `from_rev`, in revision order) and then
    /// follows live events. Call under the backend's write lock.
    pub(super) fn subscribe(&self, prefix: &str, from_rev: u64, history: Vec<WatchEvent>) -> WatchStream {
        let replay = history
            .into_iter()
            .filter(|e| e.rev > from_rev && e.key.starts_with(prefix))
            .collect();
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let live = match channels.iter().find(|(p, _)| p == prefix) {
            Some((_, tx)) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(WATCH_BUFFER);
                channels.push((prefix.to_owned(), tx));
                rx
            }
        };
        WatchStream {
            replay,
            live,
            seen: from_rev,
            ended: false,
        }
    }
}

/// The events of one watch. Dropping it ends the watch.
pub struct WatchStream {
    replay: VecDeque<WatchEvent>,
    live: broadcast::Receiver<WatchEvent>,
    /// The highest revision this watch has delivered (or, before any, started from).
    seen: u64,
    ended: bool,
}

impl WatchStream {
    /// The next event; `None` once the store is gone or after an error.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, WatchError>> {
        if self.ended {
            return None;
        }
        if let Some(event) = self.replay.pop_front() {
            self.seen = event.rev;
            return Some(Ok(event));
        }
        loop {
            match self.live.recv().await {
                Ok(event) if event.rev <= self.seen => continue,
                Ok(event) => {
                    self.seen = event.rev;
                    return Some(Ok(event));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.ended = true;
                    return Some(Err(WatchError::Lagged { resume_from: self.seen }));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// The highest revision this watch has delivered: resuming from it loses nothing.
    pub fn revision(&self) -> u64 {
        self.seen
    }
}
