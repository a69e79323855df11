//! Services as pods see them, in an in-process cluster (real runtime): the service
//! environment variables a pod gets for the Services that exist when it starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_control::api::logs::LogOptions;
use capstan_control::api::registry::WriteOptions;
use capstan_control::api::resources::find;
use capstan_control::cluster::{self, ClusterConfig, NodeConfig};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_gets_service_variables_for_the_services_of_its_namespace() {
    let dir = std::env::temp_dir().join(format!("capstan-services-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = cluster::up(ClusterConfig {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        nodes: NodeConfig::numbered(1),
        allow_host_path: false,
    })
    .await
    .expect("cluster starts");
    let api = Arc::clone(&cluster.api);
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "log-ambassador"},
        "spec": {"selector": {"app": "log"}, "ports": [{"name": "http", "port": 9009}]}});
    let created = api
        .create(
            find("", "v1", "services").unwrap(),
            Some("default"),
            service,
            &WriteOptions::default(),
        )
        .unwrap();
    let ip = created.object["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10.96."), "{ip}");

    let pods = find("", "v1", "pods").unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "show-env"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "command": ["sh", "-c", "echo host=$LOG_AMBASSADOR_SERVICE_HOST port=$LOG_AMBASSADOR_SERVICE_PORT_HTTP link=$LOG_AMBASSADOR_PORT"]}]}});
    api.create(pods, Some("default"), pod, &WriteOptions::default())
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let pod = loop {
        let pod = api.get(pods, Some("default"), "show-env").unwrap();
        if pod["status"]["phase"] == "Succeeded" {
            break pod;
        }
        assert!(Instant::now() < end, "the pod did not finish: {pod}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut log = api.logs(&pod, LogOptions::default()).unwrap().expect("a log");
    let mut text = Vec::new();
    while let Some(chunk) = log.recv().await {
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(&format!("host={ip} port=9009 link=tcp://{ip}:9009")),
        "{text}"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
