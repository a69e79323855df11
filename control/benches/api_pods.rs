//! Create → Running through the API (issue 4): an all-in-one cluster in this process (redb
//! store, API server over HTTP, scheduler, one node); each of 500 pods is POSTed over HTTP and
//! timed until a watch reports it `Running`, one after another, with the component compiled
//! and cached. Prints p50/p99.
//!
//! Baseline in the same run: the same pod started straight on the node's runtime (no API,
//! store, scheduler or node agent), timed until the runtime reports it Running. The ratio is
//! what the control plane's path costs on top of the node.
//!
//! Run: `cargo bench -p capstan-control --bench api_pods`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan_control::client::Client;
use capstan_control::cluster::{self, ClusterConfig, NodeConfig};
use capstan_core::env::ConfigObjects;
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_runtime::{Runtime, RuntimeConfig};
use http::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const PODS: usize = 500;
const WARMUP: usize = 10;

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "api"}},
        "spec": {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": "k8spatterns/random-generator:1.0"}]}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!(
        "{what:<28} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} pods)",
        ms(p50),
        ms(p99),
        samples.len()
    );
    (p50, p99)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

async fn through_the_api(dir: &std::path::Path) -> Vec<Duration> {
    let cluster = cluster::up(ClusterConfig {
        data_dir: dir.join("cluster"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ingress_listen: None,
        nodes: NodeConfig::numbered(1),
        allow_host_path: false,
    })
    .await
    .expect("cluster starts");
    let client = Client::new(&format!("http://{}", cluster.addr)).unwrap();
    // One watch reports every pod that reaches Running to whoever waits for it.
    let waiters: Waiters = Arc::default();
    let mut events = client
        .watch("/api/v1/namespaces/default/pods?watch=true&labelSelector=bench%3Dapi")
        .await
        .expect("watch starts");
    let w = Arc::clone(&waiters);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if event["object"]["status"]["phase"] == "Running"
                && let Some(name) = event["object"]["metadata"]["name"].as_str()
                && let Some(tx) = w.lock().unwrap().remove(name)
            {
                let _ = tx.send(());
            }
        }
    });
    let mut samples = Vec::with_capacity(PODS);
    for i in 0..WARMUP + PODS {
        let name = format!("bench-{i}");
        let (tx, rx) = oneshot::channel();
        waiters.lock().unwrap().insert(name.clone(), tx);
        let start = Instant::now();
        client
            .request(
                Method::POST,
                "/api/v1/namespaces/default/pods",
                "application/json",
                Some(&pod(&name)),
            )
            .await
            .expect("pod created");
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("pod running in time")
            .unwrap();
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    samples
}

async fn straight_on_the_runtime(dir: &std::path::Path) -> Vec<Duration> {
    let mut config = RuntimeConfig::new(dir.join("runtime"));
    config.node_name = "baseline".into();
    let runtime = Runtime::new(config).expect("runtime");
    let mut samples = Vec::with_capacity(PODS);
    let mut handles = Vec::new();
    for i in 0..WARMUP + PODS {
        let mut p: Pod = serde_json::from_value(pod(&format!("direct-{i}"))).unwrap();
        capstan_core::defaults::default_pod(&mut p);
        let start = Instant::now();
        let handle = runtime.start_pod(p, ConfigObjects::default());
        let mut status = handle.status();
        status
            .wait_for(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .await
            .expect("pod runs");
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
        handles.push(handle);
    }
    samples
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("capstan-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(async {
        println!("create → Running, {PODS} pods one after another (cached component):");
        let (base50, base99) = report("runtime only (baseline)", straight_on_the_runtime(&dir).await);
        let (api50, api99) = report("through the API", through_the_api(&dir).await);
        println!(
            "ratio API/baseline: p50 {:.1}x, p99 {:.1}x",
            ms(api50) / ms(base50),
            ms(api99) / ms(base99)
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
