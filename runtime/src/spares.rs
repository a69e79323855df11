//! Container directories made ahead of need, as FaaS platforms keep sandboxes warm: a
//! container's first start moves a ready one into place (one rename) instead of making its
//! log and root filesystem then (nine directory and file creations).
//!
//! Why: those creations sit on the path from a pod's bind to its first answer, and on a
//! busy node (the store syncing its log on the same disk, other threads on the CPUs) they
//! took 0.8–1.5 ms of a scale-from-zero wake. A spare is made later, off that path, and a
//! start that finds none makes its directory itself, as before.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sandbox::root_dirs;

/// How many spares a node keeps ready.
const KEEP: usize = 2;

/// How long after a spare is taken the pool is refilled: the creations then stay out of the
/// way of the start that took it (its first request is likely under way).
const REFILL_AFTER: Duration = Duration::from_millis(50);

/// The log file in a container directory.
pub const LOG_FILE: &str = "current.log";
/// The root filesystem in a container directory.
pub const ROOTFS: &str = "rootfs";

/// One node's spare container directories, under a directory of their own on the same
/// filesystem as the pods (a rename cannot cross filesystems).
pub struct Spares {
    dir: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
    next: AtomicU64,
    filling: AtomicBool,
}

impl Spares {
    /// The spares under `dir`, which is emptied of any a previous run left.
    pub fn new(dir: PathBuf) -> Arc<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        Arc::new(Spares {
            dir,
            ready: Mutex::default(),
            next: AtomicU64::new(0),
            filling: AtomicBool::new(false),
        })
    }

    /// Moves a spare to `target`, a container directory that does not exist yet (its
    /// parent is made if missing). `false` when there was none or it could not be moved:
    /// then nothing is at `target` and the caller makes the directory itself.
    pub fn place(&self, target: &Path) -> bool {
        let spare = self.ready.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some(spare) = spare else {
            return false;
        };
        let parent_ready = target.parent().is_none_or(|p| std::fs::create_dir_all(p).is_ok());
        if parent_ready && std::fs::rename(&spare, target).is_ok() {
            return true;
        }
        let _ = std::fs::remove_dir_all(&spare);
        false
    }

    /// Makes spares until [`KEEP`] are ready, after [`REFILL_AFTER`], on tokio's blocking
    /// pool; one refill at a time. Does nothing when the pool is full or outside a tokio
    /// runtime. Called at every first start, taken spare or not, so a pool that a failed
    /// refill left empty fills again.
    pub fn refill(self: &Arc<Self>, after: bool) {
        if self.ready() >= KEEP {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let spares = Arc::clone(self);
        handle.spawn(async move {
            if after {
                tokio::time::sleep(REFILL_AFTER).await;
            }
            let filler = Arc::clone(&spares);
            let _ = tokio::task::spawn_blocking(move || filler.fill()).await;
            spares.filling.store(false, Ordering::Release);
        });
    }

    fn fill(&self) {
        while self.ready.lock().unwrap_or_else(|e| e.into_inner()).len() < KEEP {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let dir = self.dir.join(n.to_string());
            if let Err(e) = make(&dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "making a spare container directory failed");
                let _ = std::fs::remove_dir_all(&dir);
                return;
            }
            self.ready.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
        }
    }

    /// How many spares are ready.
    pub fn ready(&self) -> usize {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Makes `dir` a fresh container directory: an empty log and a root with the standard
/// directories.
pub fn make(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::File::create(dir.join(LOG_FILE))?;
    root_dirs(&dir.join(ROOTFS), &[]).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of this test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("capstan-spares-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn a_spare_is_moved_into_place_and_the_pool_refills() {
        let tmp = Scratch::new("place");
        let spares = Spares::new(tmp.path().join("spares"));
        let target = tmp.path().join("pods/p/containers/main");
        assert!(!spares.place(&target), "none is made until asked");
        assert!(!target.exists());

        spares.refill(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while spares.ready() < KEEP {
            assert!(std::time::Instant::now() < deadline, "spares were not made");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(spares.place(&target));
        assert!(target.join(LOG_FILE).is_file());
        for sub in ["tmp", "dev", "var/run", "etc"] {
            assert!(target.join(ROOTFS).join(sub).is_dir(), "{sub}");
        }
        assert_eq!(spares.ready(), KEEP - 1);
    }

    #[test]
    fn leftovers_of_an_earlier_run_are_cleared() {
        let tmp = Scratch::new("leftovers");
        make(&tmp.path().join("spares/7")).unwrap();
        let spares = Spares::new(tmp.path().join("spares"));
        assert!(!tmp.path().join("spares/7").exists());
        assert_eq!(spares.ready(), 0);
    }
}
