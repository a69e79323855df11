//! Pod start latency: manifest parsed → all app containers running, with cached
//! components, for a pod of 1 init container + 2 app containers (an HTTP
//! component and a command component). Prints p50/p99 over 200 pods.
//!
//! Baseline, measured in the same run: the same shape as plain host processes
//! (`true` to completion, then two `sleep` processes spawned), i.e. what a
//! process-per-container runtime pays before namespaces, cgroups and images.
//! Target (DESIGN.md): p99 ≤ 10 ms; Kubernetes' SLO is p99 ≤ 5 s.
//!
//! Run: `cargo bench -p capstan-runtime --bench pod_start`

use std::time::{Duration, Instant};

use capstan_core::env::ConfigObjects;
use capstan_core::manifest::{Object, parse_manifests};
use capstan_core::{defaults, validate};
use capstan_runtime::{Runtime, RuntimeConfig};

const PODS: usize = 200;

const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: bench}
spec:
  terminationGracePeriodSeconds: 0
  initContainers:
  - {name: init, image: busybox, command: ["true"]}
  containers:
  - {name: web, image: capstan/hello-http}
  - {name: worker, image: busybox, command: ["sleep", "3600"]}
"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn running(pod: &capstan_core::k8s_openapi::api::core::v1::Pod) -> bool {
    let Some(s) = pod.status.as_ref() else { return false };
    let cs = s.container_statuses.as_deref().unwrap_or_default();
    cs.len() == 2
        && cs
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
}

async fn capstan(rt: &Runtime) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(PODS);
    for i in 0..PODS + 10 {
        let begun = Instant::now();
        let objects = parse_manifests(MANIFEST).expect("manifest");
        let Object::Pod(pod) = &objects[0] else { unreachable!() };
        let mut pod = (**pod).clone();
        pod.metadata.name = Some(format!("bench-{i}"));
        defaults::default_pod(&mut pod);
        assert!(validate::validate_pod(&pod).is_empty());
        let h = rt.start_pod(pod, ConfigObjects::from_objects(&objects));
        let mut status = h.status();
        status.wait_for(running).await.expect("pod runs");
        let took = begun.elapsed();
        h.stop(Some(Duration::ZERO));
        h.wait().await;
        // The first pods warm the caches (compilation, pre-instantiation).
        if i >= 10 {
            samples.push(took);
        }
    }
    samples
}

fn processes() -> Vec<Duration> {
    let mut samples = Vec::with_capacity(PODS);
    for _ in 0..PODS {
        let begun = Instant::now();
        std::process::Command::new("true").status().expect("true runs");
        let mut a = std::process::Command::new("sleep").arg("3600").spawn().expect("sleep");
        let mut b = std::process::Command::new("sleep").arg("3600").spawn().expect("sleep");
        samples.push(begun.elapsed());
        let _ = a.kill();
        let _ = b.kill();
        let _ = a.wait();
        let _ = b.wait();
    }
    samples
}

fn main() {
    let dir = std::env::temp_dir().join(format!("capstan-bench-{}", std::process::id()));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut ours = tokio.block_on(async {
        let rt = Runtime::new(RuntimeConfig::new(&dir)).expect("runtime");
        capstan(&rt).await
    });
    let mut base = processes();
    ours.sort();
    base.sort();
    let (p50, p99) = (percentile(&ours, 0.50), percentile(&ours, 0.99));
    let (b50, b99) = (percentile(&base, 0.50), percentile(&base, 0.99));
    println!("pod start, 1 init + 2 containers, {PODS} pods (manifest parsed -> all containers running)");
    println!(
        "  capstan             p50 {:>9.3} ms   p99 {:>9.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "  host processes      p50 {:>9.3} ms   p99 {:>9.3} ms",
        b50.as_secs_f64() * 1e3,
        b99.as_secs_f64() * 1e3
    );
    println!(
        "  ratio capstan/processes  p50 {:.2}   p99 {:.2}",
        p50.as_secs_f64() / b50.as_secs_f64(),
        p99.as_secs_f64() / b99.as_secs_f64()
    );
    println!(
        "  target p99 <= 10 ms: {}",
        if p99 <= Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
