//! Per-pod usage (`Runtime::pod_usage`) with real components: requests counted exactly, CPU
//! time of a busy guest, memory of live instances, and each node listing only its own pods.

mod support;

use std::time::Duration;

use bytes::Bytes;
use capstan_runtime::usage::{PodUsage, UsageSample};
use capstan_runtime::{PodHandle, Runtime, RuntimeConfig};
use http_body_util::{BodyExt, Full};
use support::{DEADLINE, runtime, start, start_on, stop, terminated, wait_for, wait_log};

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("capstan-usage-tests-{}", std::process::id()))
}

/// The shared runtime's configuration (`support::runtime`).
fn runtime_config() -> RuntimeConfig {
    RuntimeConfig::new(data_dir())
}

fn uid(h: &PodHandle) -> String {
    h.status()
        .borrow()
        .metadata
        .uid
        .clone()
        .expect("the runtime gives every pod a uid")
}

/// The pod's entry in `rt`'s listing, if listed.
fn listed(rt: &Runtime, h: &PodHandle) -> Option<PodUsage> {
    let uid = uid(h);
    rt.pod_usage().into_iter().find(|p| p.uid == uid)
}

fn sample(rt: &Runtime, h: &PodHandle) -> UsageSample {
    listed(rt, h).expect("the pod is listed while it runs").sample
}

/// Polls the pod's usage until `pred` holds, or fails with the last sample.
async fn wait_usage(rt: &Runtime, h: &PodHandle, what: &str, pred: impl Fn(&UsageSample) -> bool) -> UsageSample {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let s = sample(rt, h);
        if pred(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}; last: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `rt` no longer lists the pod (it is removed just after it is done).
async fn wait_unlisted(rt: &Runtime, h: &PodHandle) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while let Some(p) = listed(rt, h) {
        assert!(
            tokio::time::Instant::now() < end,
            "still listed after it stopped: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(h: &PodHandle, port: u16) -> u16 {
    let server = h.network().route(port).expect("the port is served");
    let req = http::Request::get(format!("http://localhost:{port}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = server.handle(req).await;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn ready(p: &capstan_core::k8s_openapi::api::core::v1::Pod) -> bool {
    support::container(p, "web").is_some_and(|c| c.ready)
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_counted_exactly_and_leave_nothing_in_flight() {
    let rt = runtime();
    let web = start(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: usage-web, namespace: team}\nspec:\n  containers:\n  - {name: web, image: capstan/hello-http}\n",
    );
    wait_for(&web, "ready", ready).await;
    let entry = listed(&rt, &web).expect("listed");
    assert_eq!((entry.namespace.as_str(), entry.name.as_str()), ("team", "usage-web"));
    let before = entry.sample;
    const SENT: u64 = 25;
    for _ in 0..SENT {
        assert_eq!(get(&web, 8080).await, 200);
    }
    let after = sample(&rt, &web);
    assert_eq!(after.requests, before.requests + SENT, "{before:?} -> {after:?}");
    assert_eq!(after.in_flight, 0);
    assert!(
        after.cpu_nanos > before.cpu_nanos,
        "the instances ran: {before:?} -> {after:?}"
    );
    // Each request's instance is gone once its task ends, and its memory with it.
    wait_usage(&rt, &web, "the instances' memory to be given back", |s| {
        s.memory_bytes == 0
    })
    .await;
    stop(&web, Duration::from_secs(5)).await;
    wait_unlisted(&rt, &web).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spinning_guest_uses_cpu_and_holds_memory_on_its_own_node_only() {
    let rt = runtime();
    let spin = start(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: usage-spin}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n    image: capstan/spin\n    resources: {limits: {cpu: 200m}}\n",
    );
    wait_log(&spin, "main", "spinning").await;
    let first = sample(&rt, &spin);
    assert!(first.memory_bytes > 0, "a running instance holds memory: {first:?}");
    let grown = wait_usage(&rt, &spin, "CPU time to grow by 50 ms", |s| {
        s.cpu_nanos >= first.cpu_nanos + 50_000_000
    })
    .await;
    assert_eq!(
        (grown.requests, grown.in_flight),
        (0, 0),
        "a command serves no requests"
    );

    // Another node of the process shares the engine but not the pods, either way round.
    let mut config = RuntimeConfig::new(data_dir().join("sibling"));
    config.node_name = "sibling".into();
    config.pod_network = std::net::Ipv4Addr::new(10, 99, 0, 0);
    let sibling = rt.sibling(config);
    assert!(listed(&sibling, &spin).is_none(), "{:?}", sibling.pod_usage());
    let own = start_on(
        &sibling,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: usage-sibling}\nspec:\n  containers:\n  - {name: web, image: capstan/hello-http}\n",
    );
    wait_for(&own, "ready", ready).await;
    assert!(listed(&sibling, &own).is_some());
    assert!(listed(&rt, &own).is_none(), "{:?}", rt.pod_usage());

    let p = stop(&spin, Duration::ZERO).await;
    assert!(terminated(&p, "main").is_some(), "{:?}", p.status);
    stop(&own, Duration::from_secs(5)).await;
    wait_unlisted(&rt, &spin).await;
    wait_unlisted(&sibling, &own).await;
}
