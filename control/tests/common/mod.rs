//! What the in-process cluster tests share: a cluster on its own data directory (removed when
//! dropped) and waiting on a condition with a deadline.

#![allow(dead_code, reason = "each test target uses its own subset")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capstan_control::cluster::{self, Cluster, ClusterConfig, NodeConfig};

pub const DEADLINE: Duration = Duration::from_secs(90);

/// A running in-process cluster and its data directory.
pub struct TestCluster {
    pub cluster: Option<Cluster>,
    dir: PathBuf,
}

impl std::ops::Deref for TestCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        self.cluster.as_ref().expect("running")
    }
}

impl std::ops::DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("running")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Stop everything before the files go.
        drop(self.cluster.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a cluster with `nodes` on a data directory named after `name`.
pub async fn start(name: &str, nodes: Vec<NodeConfig>) -> TestCluster {
    let dir = std::env::temp_dir().join(format!("capstan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = cluster::up(ClusterConfig {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ingress_listen: None,
        nodes,
        allow_host_path: false,
    })
    .await
    .expect("cluster starts");
    TestCluster {
        cluster: Some(cluster),
        dir,
    }
}

/// Polls `check` until it gives a value or [`DEADLINE`] passes.
pub async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node port (30000-32767) nobody listens on now, and no other test of this process picked.
pub fn free_node_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 30000 + (std::process::id() % 2000) as u16;
    (0..700)
        .map(|_| base + NEXT.fetch_add(1, Ordering::Relaxed))
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free node port")
}

/// The events in namespace `default` with `reason`, oldest first as the store lists them.
pub fn events(api: &capstan_control::api::Api, reason: &str) -> Vec<serde_json::Value> {
    let info = capstan_control::api::resources::find("", "v1", "events").expect("served");
    let list = api
        .list(info, Some("default"), &Default::default())
        .expect("events list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == reason)
        .cloned()
        .collect()
}
