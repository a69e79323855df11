//! Scale to zero on request traffic, in an in-process cluster (real runtime, real node port):
//! an opted-in Deployment goes to zero when idle, a burst of requests at zero wakes it once
//! and every request is answered once, and a workload that cannot become ready answers 504.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_control::api::Api;
use capstan_control::api::logs::LogOptions;
use capstan_control::api::registry::{ListOptions, WriteOptions};
use capstan_control::api::resources::find;
use capstan_control::api::selector::LabelSelector;
use capstan_control::api::watch::WatchOptions;
use capstan_control::cluster::NodeConfig;
use common::{DEADLINE, free_node_port, start, until};
use serde_json::{Value, json};

/// A Deployment of the log ambassador (it prints `LOG <body>` for every POST) behind a
/// NodePort Service on `port`.
fn create_logger(api: &Api, name: &str, annotations: Value, replicas: i32, port: u16, ready_path: Option<&str>) {
    let mut container = json!({"name": "log", "image": "k8spatterns/random-generator-log-ambassador",
        "ports": [{"containerPort": 9009}]});
    if let Some(path) = ready_path {
        container["readinessProbe"] = json!({"httpGet": {"path": path, "port": 9009}, "periodSeconds": 1});
    }
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 9009, "nodePort": port}]}});
    let opts = WriteOptions::default();
    api.create(
        find("apps", "v1", "deployments").unwrap(),
        Some("default"),
        deployment,
        &opts,
    )
    .unwrap();
    api.create(find("", "v1", "services").unwrap(), Some("default"), service, &opts)
        .unwrap();
}

fn replicas(api: &Api, name: &str) -> i64 {
    let d = api
        .get(find("apps", "v1", "deployments").unwrap(), Some("default"), name)
        .unwrap();
    d["spec"]["replicas"].as_i64().unwrap_or(-1)
}

fn pods_of(api: &Api, name: &str) -> Vec<Value> {
    let opts = ListOptions {
        labels: Some(LabelSelector::parse(&format!("app={name}")).unwrap()),
        fields: None,
    };
    let list = api
        .list(find("", "v1", "pods").unwrap(), Some("default"), &opts)
        .unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The events recorded about `name` with `reason`.
fn events(api: &Api, name: &str, reason: &str) -> Vec<Value> {
    common::events(api, reason)
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_at_zero_wakes_the_workload_once_and_every_request_is_answered_once() {
    let cluster = start("scale-to-zero", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let port = free_node_port();
    let annotations = json!({"capstan.dev/scale-to-zero": "true", "capstan.dev/scale-to-zero-grace-period": "1s"});
    create_logger(&api, "logger", annotations, 1, port, None);

    // Idle, it goes to zero: no replica wanted and no pod left.
    until("the idle workload to scale to zero", || {
        (replicas(&api, "logger") == 0 && pods_of(&api, "logger").is_empty()).then_some(())
    })
    .await;
    until("recorded events to be written", || {
        (api.events().unwritten() == 0).then_some(())
    })
    .await;
    assert_eq!(events(&api, "logger", "ScaledToZero").len(), 1);

    // Every change of spec.replicas from here on.
    let deployments = find("apps", "v1", "deployments").unwrap();
    let rv = api.get(deployments, Some("default"), "logger").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = api
        .watch(
            deployments,
            Some("default"),
            WatchOptions {
                resource_version: Some(rv),
                ..Default::default()
            },
        )
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(vec![0]));
    let record = Arc::clone(&seen);
    let watcher = tokio::spawn(async move {
        while let Some(event) = watch.next().await {
            let r = event.object["spec"]["replicas"].as_i64().unwrap_or(-1);
            let mut values = record.lock().unwrap();
            if values.last() != Some(&r) {
                values.push(r);
            }
        }
    });

    // 50 requests at once, each with its own body, on their own connections.
    let started = Instant::now();
    let requests = (0..50).map(|i| tokio::spawn(post(port, format!("wake-{i:03}"))));
    let answers = futures_join(requests.collect()).await;
    let woke_in = started.elapsed();
    for (i, answer) in answers.iter().enumerate() {
        let (status, body) = answer.as_ref().expect("an answer");
        assert_eq!(
            (*status, body.as_str()),
            (202, r#"{"status":"logged"}"#),
            "request {i} after {woke_in:?}"
        );
    }

    // One wake: replicas went from 0 to 1 and nowhere else, in one write.
    assert_eq!(replicas(&api, "logger"), 1);
    // Its event is written once the wake is over.
    let woken = until("the ScaledFromZero event", || {
        Some(events(&api, "logger", "ScaledFromZero")).filter(|e| !e.is_empty())
    })
    .await;
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert!(
        woken[0]["message"].as_str().unwrap().contains("a pod was ready after"),
        "{woken:?}"
    );
    assert_eq!(woken[0]["count"], 1, "{woken:?}");

    // The wake's cold start was recorded once, and every request was held.
    let metrics = api.metrics().encode();
    assert_eq!(
        capstan_control::metrics::sample(&metrics, "capstan_activator_cold_start_seconds_count"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        capstan_control::metrics::sample(&metrics, "capstan_activator_requests_held_total"),
        Some(50.0),
        "{metrics}"
    );

    // Every request reached the one pod exactly once.
    let pods = pods_of(&api, "logger");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let end = Instant::now() + DEADLINE;
    loop {
        let mut log = api.logs(&pods[0], LogOptions::default()).unwrap().expect("a log");
        let mut text = Vec::new();
        while let Some(chunk) = log.recv().await {
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&text);
        let counts: Vec<usize> = (0..50).map(|i| text.matches(&format!("wake-{i:03}")).count()).collect();
        if counts.iter().all(|c| *c == 1) {
            break;
        }
        assert!(
            counts.iter().all(|c| *c <= 1),
            "a request was delivered twice: {counts:?}\n{text}"
        );
        assert!(Instant::now() < end, "not every request was logged: {counts:?}\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Idle again, it goes back to zero; the watch saw 0 → 1 → 0 and nothing else.
    until("the workload to go back to zero", || {
        (seen.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    watcher.abort();
    assert_eq!(*seen.lock().unwrap(), [0, 1, 0]);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_zero_times_out_with_504_when_no_pod_becomes_ready() {
    let cluster = start("scale-to-zero-timeout", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let port = free_node_port();
    // Its readiness probe asks for a path the ambassador does not serve: never Ready.
    let annotations = json!({"capstan.dev/scale-to-zero": "true", "capstan.dev/scale-from-zero-timeout": "2s"});
    create_logger(&api, "stuck", annotations, 0, port, Some("/never"));
    // The node port opens once the proxy has seen the Service.
    let end = Instant::now() + DEADLINE;
    let (status, text) = loop {
        match post(port, "hello".into()).await {
            Ok(answer) => break answer,
            Err(e) => assert!(Instant::now() < end, "the node port never opened: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 504, "{text}");
    assert!(
        text.contains("no pod of deployment default/stuck became ready within 2s"),
        "{text}"
    );
    // It was woken (a pod exists, not ready) and nothing was logged.
    assert_eq!(replicas(&api, "stuck"), 1);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guests_request_to_a_service_at_zero_wakes_it_and_is_delivered() {
    let cluster = start("scale-to-zero-guest", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let annotations = json!({"capstan.dev/scale-to-zero": "true", "capstan.dev/scale-to-zero-grace-period": "1h"});
    create_logger(&api, "sink", annotations, 0, free_node_port(), None);
    // The generator POSTs each number it serves to the sink Service, by name, in memory.
    let port = free_node_port();
    let opts = WriteOptions::default();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "generator", "labels": {"app": "gen"}},
        "spec": {"containers": [{"name": "g", "image": "k8spatterns/random-generator:1.0",
            "env": [{"name": "LOG_URL", "value": "http://sink:9009"}]}]}});
    api.create(find("", "v1", "pods").unwrap(), Some("default"), pod, &opts)
        .unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gen"},
        "spec": {"type": "NodePort", "selector": {"app": "gen"}, "ports": [{"port": 8080, "nodePort": port}]}});
    api.create(find("", "v1", "services").unwrap(), Some("default"), service, &opts)
        .unwrap();
    assert_eq!(replicas(&api, "sink"), 0);
    let client = capstan_control::client::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let end = Instant::now() + DEADLINE;
    let served = loop {
        if let Ok(v) = client.get("/").await
            && v["random"].is_number()
        {
            break v["random"].to_string();
        }
        assert!(Instant::now() < end, "the generator never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The POST woke the sink, waited for it, and was delivered.
    assert_eq!(replicas(&api, "sink"), 1);
    let pods = pods_of(&api, "sink");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let mut log = api.logs(&pods[0], LogOptions::default()).unwrap().expect("a log");
    let mut text = Vec::new();
    while let Some(chunk) = log.recv().await {
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains(&served), "the sink did not log {served}: {text}");
    drop(cluster);
}

/// POSTs `body` to the node port on a connection of its own: the status and body.
async fn post(port: u16, body: String) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Awaits every task, in order.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("the request task"));
    }
    out
}
