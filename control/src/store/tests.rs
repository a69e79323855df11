//! The store's behaviour, run against both backends where it is shared, plus RedbStore's
//! durability: reopen, and a crash test that SIGKILLs a writer mid-burst.

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::*;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("capstan-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn db(&self) -> PathBuf {
        self.0.join("store.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Both backends, each keeping `history` events. The directory outlives the store it holds.
fn backends(history: usize) -> Vec<(&'static str, Box<dyn Store>, Option<TempDir>)> {
    let dir = TempDir::new("backend");
    let redb = RedbStore::open_with_history_limit(dir.db(), history).expect("open redb");
    vec![
        ("mem", Box::new(MemStore::with_history_limit(history)), None),
        ("redb", Box::new(redb), Some(dir)),
    ]
}

fn obj(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn ev(kind: EventKind, key: &str, value: &str, rev: u64) -> WatchEvent {
    WatchEvent::new(kind, key.to_owned(), obj(value), rev)
}

#[test]
fn plan_decides_kind_and_errors() {
    let cur = Some((7, obj("old")));
    type Case = (
        Write,
        Option<(u64, Bytes)>,
        Result<(EventKind, &'static str), &'static str>,
    );
    let cases: Vec<Case> = vec![
        (Write::Create(obj("new")), None, Ok((EventKind::Added, "new"))),
        (Write::Create(obj("new")), cur.clone(), Err("AlreadyExists")),
        (
            Write::Update(obj("new"), None),
            cur.clone(),
            Ok((EventKind::Modified, "new")),
        ),
        (
            Write::Update(obj("new"), Some(7)),
            cur.clone(),
            Ok((EventKind::Modified, "new")),
        ),
        (Write::Update(obj("new"), Some(6)), cur.clone(), Err("Conflict")),
        (Write::Update(obj("new"), None), None, Err("NotFound")),
        (Write::Delete(None), cur.clone(), Ok((EventKind::Deleted, "old"))),
        (Write::Delete(Some(7)), cur.clone(), Ok((EventKind::Deleted, "old"))),
        (Write::Delete(Some(8)), cur.clone(), Err("Conflict")),
        (Write::Delete(None), None, Err("NotFound")),
    ];
    for (write, current, want) in cases {
        let case = format!("{write:?} on {current:?}");
        let got = plan("/core/pods/ns/a", write, current);
        match (got, want) {
            (Ok((kind, value)), Ok((want_kind, want_value))) => {
                assert_eq!((kind, value), (want_kind, obj(want_value)), "{case}");
            }
            (Err(e), Err(want)) => assert!(format!("{e:?}").starts_with(want), "{case}: {e:?}"),
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn keys_and_prefixes() {
    assert_eq!(object_key("", "pods", Some("default"), "web"), "/core/pods/default/web");
    assert_eq!(
        object_key("apps", "deployments", Some("ns"), "d"),
        "/apps/deployments/ns/d"
    );
    assert_eq!(object_key("", "nodes", None, "n1"), "/core/nodes/n1");
    assert_eq!(collection_prefix("", "pods", Some("a")), "/core/pods/a/");
    assert_eq!(collection_prefix("", "pods", None), "/core/pods/");
    for bad in ["", "core/pods/a", "/core/pods/", "/core//a", "/core/pods/a\0b"] {
        assert!(validate_key(bad).is_err(), "{bad:?} accepted");
    }
    assert!(validate_key("/core/pods/ns/a").is_ok());
}

#[test]
fn bad_keys_are_errors_on_both_backends() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        let err = store.create("no-slash", obj("{}")).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidKey { ref key, .. } if key == "no-slash"),
            "{name}: {err:?}"
        );
        assert!(
            matches!(store.get("/a//b"), Err(StoreError::InvalidKey { .. })),
            "{name}"
        );
        assert!(
            matches!(store.list("pods"), Err(StoreError::InvalidKey { .. })),
            "{name}"
        );
        assert!(
            matches!(store.watch("pods", 0), Err(StoreError::InvalidKey { .. })),
            "{name}"
        );
        assert_eq!(
            store.revision().unwrap(),
            0,
            "{name}: a rejected write bumped the revision"
        );
    }
}

#[test]
fn crud_conflict_and_not_found_on_both_backends() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        let key = "/core/configmaps/default/cm";
        let r1 = store.create(key, obj("v1")).unwrap();
        assert_eq!(store.get(key).unwrap(), Some((obj("v1"), r1)), "{name}");
        assert!(
            matches!(store.create(key, obj("x")), Err(StoreError::AlreadyExists { .. })),
            "{name}"
        );

        let r2 = store.update(key, obj("v2"), Some(r1)).unwrap();
        assert!(r2 > r1, "{name}");
        match store.update(key, obj("stale"), Some(r1)) {
            Err(StoreError::Conflict { expected, current, .. }) => assert_eq!((expected, current), (r1, r2), "{name}"),
            other => panic!("{name}: stale update gave {other:?}"),
        }
        let r3 = store.update(key, obj("v3"), None).unwrap();
        assert_eq!(store.get(key).unwrap(), Some((obj("v3"), r3)), "{name}");

        assert!(
            matches!(store.delete(key, Some(r2)), Err(StoreError::Conflict { current, .. }) if current == r3),
            "{name}"
        );
        let (last, r4) = store.delete(key, Some(r3)).unwrap();
        assert_eq!(last, obj("v3"), "{name}");
        assert!(r4 > r3, "{name}");
        assert_eq!(store.get(key).unwrap(), None, "{name}");

        assert!(
            matches!(store.update(key, obj("x"), None), Err(StoreError::NotFound { .. })),
            "{name}"
        );
        assert!(
            matches!(store.delete(key, None), Err(StoreError::NotFound { .. })),
            "{name}"
        );
        // Create after delete works and gets a fresh revision.
        assert!(store.create(key, obj("again")).unwrap() > r4, "{name}");
    }
}

#[test]
fn every_write_bumps_the_revision_and_failures_do_not() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        let mut last = store.revision().unwrap();
        let mut step = |rev: u64| {
            assert_eq!(rev, last + 1, "{name}: revisions must increase by one per write");
            last = rev;
        };
        step(store.create("/core/pods/ns/a", obj("a")).unwrap());
        step(store.create("/core/pods/ns/b", obj("b")).unwrap());
        step(store.update("/core/pods/ns/a", obj("a2"), None).unwrap());
        assert!(store.create("/core/pods/ns/a", obj("dup")).is_err());
        assert!(store.update("/core/pods/ns/zz", obj("x"), None).is_err());
        step(store.delete("/core/pods/ns/b", None).unwrap().1);
        assert_eq!(store.revision().unwrap(), last, "{name}");
    }
}

#[test]
fn list_returns_prefix_matches_in_key_order_and_the_list_revision() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        store.create("/core/pods/ab/x", obj("ab-x")).unwrap();
        let b = store.create("/core/pods/a/b", obj("a-b")).unwrap();
        let a = store.create("/core/pods/a/a", obj("a-a")).unwrap();
        store.create("/core/services/a/a", obj("svc")).unwrap();
        let (items, list_rev) = store.list("/core/pods/a/").unwrap();
        assert_eq!(
            items,
            vec![
                ("/core/pods/a/a".to_owned(), obj("a-a"), a),
                ("/core/pods/a/b".to_owned(), obj("a-b"), b)
            ],
            "{name}"
        );
        assert_eq!(
            list_rev, 4,
            "{name}: the list revision is the store's, not the newest item's"
        );
        assert_eq!(store.list("/core/pods/").unwrap().0.len(), 3, "{name}");
        assert_eq!(store.list("/apps/").unwrap(), (vec![], 4), "{name}");
    }
}

#[tokio::test]
async fn watch_replays_history_then_streams_live_on_both_backends() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        let pods = "/core/pods/ns/";
        let r1 = store.create("/core/pods/ns/a", obj("a1")).unwrap();
        store.create("/core/services/ns/s", obj("svc")).unwrap();
        let r3 = store.update("/core/pods/ns/a", obj("a2"), None).unwrap();

        // From r1: the update is replayed, the create at r1 and the service are not.
        let mut w = store.watch(pods, r1).unwrap();
        assert_eq!(
            next_event(&mut w).await,
            ev(EventKind::Modified, "/core/pods/ns/a", "a2", r3),
            "{name}"
        );

        // Live: a create and a delete under the prefix, with an unrelated write between.
        let r4 = store.create("/core/pods/ns/b", obj("b1")).unwrap();
        store.update("/core/services/ns/s", obj("svc2"), None).unwrap();
        let (_, r6) = store.delete("/core/pods/ns/a", None).unwrap();
        assert_eq!(
            next_event(&mut w).await,
            ev(EventKind::Added, "/core/pods/ns/b", "b1", r4),
            "{name}"
        );
        assert_eq!(
            next_event(&mut w).await,
            ev(EventKind::Deleted, "/core/pods/ns/a", "a2", r6),
            "{name}"
        );
        assert_eq!(w.revision(), r6, "{name}");

        // From 0 on the whole store: every event, in revision order.
        let mut all = store.watch("/", 0).unwrap();
        for rev in 1..=r6 {
            assert_eq!(next_event(&mut all).await.rev, rev, "{name}");
        }
    }
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_refused() {
    for (name, store, _dir) in backends(3) {
        for i in 0..5 {
            store.create(&format!("/core/pods/ns/p{i}"), obj("x")).unwrap();
        }
        // History holds revisions 3, 4, 5: watching after 2 works, after 1 does not.
        match store.watch("/", 1) {
            Err(StoreError::Compacted { requested, oldest }) => assert_eq!((requested, oldest), (1, 2), "{name}"),
            Err(e) => panic!("{name}: {e:?}"),
            Ok(_) => panic!("{name}: a compacted watch was accepted"),
        }
        let mut w = store.watch("/", 2).unwrap();
        assert_eq!(next_event(&mut w).await.rev, 3, "{name}");
        // Watching from the current revision (or later) waits for new writes.
        let mut live = store.watch("/", 5).unwrap();
        let r6 = store.create("/core/pods/ns/p5", obj("x")).unwrap();
        assert_eq!(next_event(&mut live).await.rev, r6, "{name}");
    }
}

#[tokio::test]
async fn a_lagging_watcher_is_cut_off_and_writers_never_wait() {
    let store = MemStore::new();
    let mut w = store.watch("/", 0).unwrap();
    let writes = WATCH_BUFFER as u64 + 10;
    for i in 0..writes {
        store.create(&format!("/core/pods/ns/p{i}"), obj("x")).unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch answers");
    assert_eq!(got, Some(Err(WatchError::Lagged { resume_from: 0 })));
    assert_eq!(w.next().await, None, "a lagged watch ends");
    // The history still covers the gap, so resuming loses nothing.
    let mut resumed = store.watch("/", 0).unwrap();
    assert_eq!(next_event(&mut resumed).await.rev, 1);
}

#[tokio::test]
async fn redb_reopen_keeps_objects_revision_and_history() {
    let dir = TempDir::new("reopen");
    let (r2, r3) = {
        let store = RedbStore::open(dir.db()).unwrap();
        store.create("/core/pods/ns/a", obj("a1")).unwrap();
        let r2 = store.create("/core/pods/ns/b", obj("b1")).unwrap();
        let r3 = store.update("/core/pods/ns/a", obj("a2"), Some(1)).unwrap();
        (r2, r3)
    };
    let store = RedbStore::open(dir.db()).unwrap();
    assert_eq!(store.revision().unwrap(), r3);
    assert_eq!(store.get("/core/pods/ns/a").unwrap(), Some((obj("a2"), r3)));
    assert_eq!(store.list("/core/pods/").unwrap().1, r3);

    // A watcher that had seen r2 before the restart resumes from it: replay, then live.
    let mut w = store.watch("/core/pods/", r2).unwrap();
    assert_eq!(
        next_event(&mut w).await,
        ev(EventKind::Modified, "/core/pods/ns/a", "a2", r3)
    );
    let r4 = store.create("/core/pods/ns/c", obj("c1")).unwrap();
    assert_eq!(r4, r3 + 1, "the revision continues after reopen");
    assert_eq!(
        next_event(&mut w).await,
        ev(EventKind::Added, "/core/pods/ns/c", "c1", r4)
    );
}

#[test]
fn redb_reopen_keeps_the_compaction_point() {
    let dir = TempDir::new("compacted");
    {
        let store = RedbStore::open_with_history_limit(dir.db(), 2).unwrap();
        for i in 0..4 {
            store.create(&format!("/core/pods/ns/p{i}"), obj("x")).unwrap();
        }
    }
    let store = RedbStore::open_with_history_limit(dir.db(), 2).unwrap();
    assert!(matches!(
        store.watch("/", 1),
        Err(StoreError::Compacted {
            requested: 1,
            oldest: 2
        })
    ));
    assert!(store.watch("/", 2).is_ok());
}

#[test]
fn redb_corrupt_event_is_an_error_naming_it() {
    let dir = TempDir::new("corrupt");
    RedbStore::open(dir.db())
        .unwrap()
        .create("/core/pods/ns/a", obj("x"))
        .unwrap();
    {
        let db = redb::Database::create(dir.db()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb_store::EVENTS)
            .unwrap()
            .insert(1, (99u8, "/core/pods/ns/a", &b"x"[..]))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = RedbStore::open(dir.db()).unwrap();
    match store.watch("/", 0) {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "event at revision 1"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a corrupt event was replayed"),
    }
}

/// The log beside a database created at `db`, holding `events` as a crash would leave them.
fn write_log(db: &std::path::Path, events: &[WatchEvent]) {
    let bytes: Vec<u8> = events.iter().flat_map(super::wal::encode).collect();
    let mut log = db.as_os_str().to_owned();
    log.push("-wal");
    std::fs::write(PathBuf::from(log), bytes).unwrap();
}

#[tokio::test]
async fn redb_open_applies_the_log_beyond_the_last_checkpoint() {
    let dir = TempDir::new("replay");
    {
        let store = RedbStore::open(dir.db()).unwrap();
        store.create("/core/configmaps/ns/a", obj("a1")).unwrap();
    }
    // redb holds revision 1; the log also holds 1 (already checkpointed) and 2..=4.
    write_log(
        &dir.db(),
        &[
            ev(EventKind::Added, "/core/configmaps/ns/a", "a1", 1),
            ev(EventKind::Added, "/core/configmaps/ns/b", "b1", 2),
            ev(EventKind::Modified, "/core/configmaps/ns/a", "a2", 3),
            ev(EventKind::Deleted, "/core/configmaps/ns/b", "b1", 4),
        ],
    );
    let store = RedbStore::open(dir.db()).unwrap();
    assert_eq!(store.revision().unwrap(), 4);
    assert_eq!(store.get("/core/configmaps/ns/a").unwrap(), Some((obj("a2"), 3)));
    assert_eq!(store.get("/core/configmaps/ns/b").unwrap(), None);
    let mut w = store.watch("/core/configmaps/", 1).unwrap();
    assert_eq!(
        next_event(&mut w).await,
        ev(EventKind::Added, "/core/configmaps/ns/b", "b1", 2)
    );
    assert_eq!(
        next_event(&mut w).await,
        ev(EventKind::Modified, "/core/configmaps/ns/a", "a2", 3)
    );
    assert_eq!(
        next_event(&mut w).await,
        ev(EventKind::Deleted, "/core/configmaps/ns/b", "b1", 4)
    );
    // The next write follows the replayed ones, and survives another reopen.
    assert_eq!(store.create("/core/configmaps/ns/c", obj("c1")).unwrap(), 5);
    drop(store);
    let store = RedbStore::open(dir.db()).unwrap();
    assert_eq!(store.revision().unwrap(), 5);
    assert_eq!(store.get("/core/configmaps/ns/c").unwrap(), Some((obj("c1"), 5)));
}

#[test]
fn redb_open_refuses_a_log_with_a_missing_record() {
    let dir = TempDir::new("gap");
    drop(RedbStore::open(dir.db()).unwrap());
    write_log(
        &dir.db(),
        &[
            ev(EventKind::Added, "/core/configmaps/ns/a", "a", 1),
            ev(EventKind::Added, "/core/configmaps/ns/b", "b", 3),
        ],
    );
    let err = RedbStore::open(dir.db()).err().expect("a gap is an error");
    assert!(
        err.to_string().contains("log record at revision 3") && err.to_string().contains("revision 1"),
        "{err}"
    );
}

/// Creates ConfigMaps `c0`..`c{n-1}` in namespace `ns`.
fn create_config_maps(store: &RedbStore, n: u64) {
    for i in 0..n {
        store.create(&format!("/core/configmaps/ns/c{i}"), obj("x")).unwrap();
    }
}

#[test]
fn redb_checkpoints_keep_every_write_across_reopens() {
    let dir = TempDir::new("checkpoint");
    create_config_maps(&RedbStore::open_with(&dir.db(), HISTORY_LIMIT, 3).unwrap(), 10);
    let store = RedbStore::open_with(&dir.db(), HISTORY_LIMIT, 3).unwrap();
    let (items, rev) = store.list("/core/configmaps/ns/").unwrap();
    assert_eq!((items.len(), rev), (10, 10));
}

/// A due checkpoint waits for the writes to pause: the write that crosses the mark returns
/// with its record still in the log, and the log is emptied once the writes stop.
#[test]
fn redb_checkpoints_once_the_writes_pause() {
    let dir = TempDir::new("idle-checkpoint");
    let store = RedbStore::open_with(&dir.db(), HISTORY_LIMIT, 3).unwrap();
    create_config_maps(&store, 6);
    // A checkpoint inside the writes would have emptied the log at the sixth.
    assert!(store.logged_records() > 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.logged_records() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after the writes stopped"
        );
        std::thread::sleep(super::redb_store::CHECKPOINT_IDLE / 4);
    }
    drop(store);
    let store = RedbStore::open_with(&dir.db(), HISTORY_LIMIT, 3).unwrap();
    assert_eq!(store.list("/core/configmaps/ns/").unwrap().0.len(), 6);
}

/// Writes that never pause still bound the log: the write that finds it
/// `FORCE_FACTOR` intervals long checkpoints itself.
#[test]
fn redb_writes_that_never_pause_checkpoint_themselves() {
    let dir = TempDir::new("forced-checkpoint");
    let store = RedbStore::open_with(&dir.db(), HISTORY_LIMIT, 3).unwrap();
    let bound = 3 * super::redb_store::FORCE_FACTOR;
    for i in 0..bound * 3 {
        store.create(&format!("/core/configmaps/ns/c{i}"), obj("x")).unwrap();
        assert!(store.logged_records() < bound, "after write {i}");
    }
}

/// Set to a database path, makes `crash_child_writes_until_killed` write; unset, it does nothing.
const CRASH_DB_ENV: &str = "CAPSTAN_STORE_CRASH_DB";

/// The child half of the crash test: writes objects as fast as it can and prints `ACK key`
/// after each write returns, until the parent kills it.
#[test]
fn crash_child_writes_until_killed() {
    let Some(path) = std::env::var_os(CRASH_DB_ENV) else {
        return;
    };
    // Checkpoint often, so the kill lands with writes both in redb and only in the log.
    let store = RedbStore::open_with(&PathBuf::from(path), HISTORY_LIMIT, 16).expect("child opens the store");
    let mut out = std::io::stdout().lock();
    for i in 0..1_000_000 {
        let key = format!("/core/configmaps/crash/cm-{i}");
        store.create(&key, obj(&format!("{{\"n\":{i}}}"))).expect("child write");
        writeln!(out, "ACK {key}")
            .and_then(|()| out.flush())
            .expect("child stdout");
    }
}

#[test]
fn sigkill_mid_burst_loses_no_acknowledged_write() {
    use std::os::unix::process::ExitStatusExt;

    const KILL_AFTER: usize = 50;
    let dir = TempDir::new("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests::crash_child_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DB_ENV, dir.db())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < KILL_AFTER {
        match lines.next() {
            Some(Ok(line)) => acked.extend(line.strip_prefix("ACK ").map(str::to_owned)),
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    // Acknowledgements already in the pipe were written after their commit: they count too.
    // Stdout is line-buffered, so each line reached the pipe whole, in one write(2).
    acked.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("ACK ").map(str::to_owned)),
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was killed mid-burst, not finished: {status:?}"
    );
    assert!(
        acked.len() >= KILL_AFTER,
        "the child acknowledged only {} writes",
        acked.len()
    );

    let store = RedbStore::open(dir.db()).unwrap();
    for key in &acked {
        assert!(store.get(key).unwrap().is_some(), "acknowledged {key} was lost");
    }
    let (items, rev) = store.list("/core/configmaps/crash/").unwrap();
    assert!(
        items.len() >= acked.len() && rev as usize == items.len(),
        "{} items at revision {rev}",
        items.len()
    );
}

#[tokio::test]
async fn watchers_of_one_event_share_what_one_of_them_decoded() {
    let store = MemStore::new();
    let mut a = store.watch("/core/pods/", 0).unwrap();
    let mut b = store.watch("/core/pods/ns/", 0).unwrap();
    store.create("/core/pods/ns/p", obj("7")).unwrap();
    let (ea, eb) = (next_event(&mut a).await, next_event(&mut b).await);
    let decodes = AtomicUsize::new(0);
    let decode = |e: &WatchEvent| {
        e.decoded.get_or_decode(|| {
            decodes.fetch_add(1, Ordering::SeqCst);
            std::str::from_utf8(&e.value).ok()?.parse::<u32>().ok()
        })
    };
    let (da, db) = (decode(&ea).unwrap(), decode(&eb).unwrap());
    assert!(
        std::sync::Arc::ptr_eq(&da, &db),
        "both watchers hold one decoded object"
    );
    assert_eq!((*da, decodes.load(Ordering::SeqCst)), (7, 1));
    // Once no watcher holds it, the cache keeps nothing: a later watcher decodes again.
    drop((da, db));
    assert_eq!(*decode(&ea).unwrap(), 7);
    assert_eq!(decodes.load(Ordering::SeqCst), 2);
    // Another type is decoded on its own; a failed decode is not cached.
    assert_eq!(ea.decoded.get_or_decode(|| None::<String>), None);
    assert_eq!(
        ea.decoded
            .get_or_decode(|| Some("x".to_owned()))
            .as_deref()
            .map(String::as_str),
        Some("x")
    );
}

#[tokio::test]
async fn writes_to_other_prefixes_never_make_a_watcher_lag() {
    for (name, store, _dir) in backends(HISTORY_LIMIT) {
        let mut pods = store.watch("/core/pods/", store.revision().unwrap()).unwrap();
        // More unrelated writes than a watcher may fall behind by.
        for i in 0..WATCH_BUFFER + 10 {
            store.create(&format!("/core/configmaps/ns/c{i}"), obj("x")).unwrap();
        }
        let rev = store.create("/core/pods/ns/p", obj("p")).unwrap();
        assert_eq!(
            next_event(&mut pods).await,
            ev(EventKind::Added, "/core/pods/ns/p", "p", rev),
            "{name}"
        );
    }
}
