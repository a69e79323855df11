//! A node's metrics through the API server (`/api/v1/nodes/{name}/proxy/metrics`, as the
//! kubelet's are reached): a node in the cluster's process answers from its runtime's
//! counters, a node in its own process (`cluster::join`) is asked at its endpoint.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_control::api::registry::WriteOptions;
use capstan_control::api::resources::find;
use capstan_control::client::Client;
use capstan_control::cluster::{self, NodeConfig};
use capstan_control::metrics::sample;
use common::{DEADLINE, free_node_port, start};
use http::Method;
use serde_json::{Value, json};

/// A node's metrics text through the API server, or why not.
async fn node_metrics(api: &Client, node: &str) -> Result<String, String> {
    let path = format!("/api/v1/nodes/{node}/proxy/metrics");
    match api
        .request_raw(Method::GET, &path, "text/plain", "text/plain", Bytes::new())
        .await
    {
        Ok(Value::String(text)) => Ok(text),
        Ok(other) => Err(format!("not text: {other}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_metrics_count_the_requests_its_pods_serve() {
    let cluster = start("node-metrics", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let http_api = Client::new(&format!("http://{}", cluster.addr)).unwrap();
    let (pods, services) = (find("", "v1", "pods").unwrap(), find("", "v1", "services").unwrap());
    api.create(
        pods,
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello", "labels": {"app": "hello"}},
            "spec": {"containers": [{"name": "web", "image": "capstan/hello-http"}]}}),
        &WriteOptions::default(),
    )
    .unwrap();
    let port = free_node_port();
    api.create(
        services,
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
            "spec": {"type": "NodePort", "selector": {"app": "hello"}, "ports": [{"port": 8080, "nodePort": port}]}}),
        &WriteOptions::default(),
    )
    .unwrap();
    let pod_client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let end = Instant::now() + DEADLINE;
    while pod_client.get("/").await.ok() != Some(Value::String("hello\n".into())) {
        assert!(Instant::now() < end, "the pod never answered through its node port");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let series = |name: &str| format!(r#"{name}{{namespace="default",pod="hello"}}"#);
    let before = node_metrics(&http_api, "capstan").await.expect("the node's metrics");
    let served_before = sample(&before, &series("capstan_node_container_requests_total"))
        .unwrap_or_else(|| panic!("the pod has a requests series: {before}"));
    const SENT: u64 = 10;
    for _ in 0..SENT {
        assert_eq!(pod_client.get("/").await.unwrap(), Value::String("hello\n".into()));
    }
    let after = node_metrics(&http_api, "capstan").await.expect("the node's metrics");
    let served_after = sample(&after, &series("capstan_node_container_requests_total")).unwrap();
    assert_eq!(served_after - served_before, SENT as f64, "{after}");
    assert_eq!(
        sample(&after, &series("capstan_node_pod_in_flight")),
        Some(0.0),
        "{after}"
    );
    assert!(
        sample(&after, &series("capstan_node_pod_cpu_seconds_total")).is_some_and(|s| s > 0.0),
        "{after}"
    );
    assert!(
        sample(&after, &series("capstan_node_pod_memory_bytes")).is_some(),
        "{after}"
    );
    assert!(
        sample(&after, r#"capstan_node_pods{phase="Running"}"#).is_some_and(|n| n >= 1.0),
        "{after}"
    );
    // The request for the node's metrics is an API request like any other.
    let control = http_api
        .request_raw(Method::GET, "/metrics", "text/plain", "text/plain", Bytes::new())
        .await
        .unwrap();
    let proxied = r#"apiserver_request_total{verb="get",resource="nodes",subresource="proxy",code="200"}"#;
    assert!(
        sample(control.as_str().unwrap_or_default(), proxied).is_some_and(|n| n >= 2.0),
        "{control}"
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_another_process_is_asked_at_its_endpoint() {
    let cluster = start("node-metrics-remote", vec![]).await;
    let server = format!("http://{}", cluster.addr);
    let http_api = Client::new(&server).unwrap();
    let dir = std::env::temp_dir().join(format!("capstan-node-metrics-remote-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = NodeConfig {
        name: "far".into(),
        ..Default::default()
    };
    let task = cluster::join(
        &server,
        node,
        &dir,
        false,
        cluster::pod_network_for("far"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("the node joins");
    // The node registers itself, with its endpoint, through the API; until then it is unknown.
    let end = Instant::now() + DEADLINE;
    let text = loop {
        match node_metrics(&http_api, "far").await {
            Ok(text) => break text,
            Err(e) => assert!(Instant::now() < end, "the node's metrics never came: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(&text, r#"capstan_node_pods{phase="Running"}"#),
        Some(0.0),
        "{text}"
    );
    assert!(text.contains("# TYPE capstan_node_pod_cpu_seconds counter"), "{text}");
    task.abort();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
