//! The HorizontalPodAutoscaler end to end, in an in-process cluster (real runtime, real node
//! port, no fake metrics): a Deployment of `capstan/hello-http` under an HPA on
//! `requests_per_second` scales up while requests pour in, and back down once they stop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use capstan_control::api::Api;
use capstan_control::api::registry::WriteOptions;
use capstan_control::api::resources::find;
use capstan_control::api::table::{IncludeObject, table};
use capstan_control::cluster::NodeConfig;
use capstan_core::quantity;
use common::{DEADLINE, free_node_port, start, until};
use serde_json::{Value, json};

/// A one-node cluster whose autoscaler syncs every second (not the default 15 s), and its API.
async fn autoscaling_cluster(name: &str) -> (common::TestCluster, Arc<Api>) {
    let cluster = start(name, NodeConfig::numbered(1)).await;
    cluster.autoscaler.set_sync_period(Duration::from_secs(1));
    let api = Arc::clone(&cluster.api);
    (cluster, api)
}

fn replicas(api: &Api) -> i64 {
    let d = api
        .get(find("apps", "v1", "deployments").unwrap(), Some("default"), "hello")
        .unwrap();
    d["spec"]["replicas"].as_i64().unwrap_or(-1)
}

/// Waits for the HPA to scale `hello` above one replica, and checks it stays within `max`.
async fn scaled_up_within(api: &Api, max: i64) {
    let scaled_to = until("the HPA to scale the Deployment up", || {
        let r = replicas(api);
        (r > 1).then_some(r)
    })
    .await;
    assert!(scaled_to <= max, "maxReplicas holds: {scaled_to}");
}

fn hpa(api: &Api) -> Value {
    api.get(
        find("autoscaling", "v2", "horizontalpodautoscalers").unwrap(),
        Some("default"),
        "hello",
    )
    .unwrap()
}

/// A Deployment `hello` of one `capstan/hello-http` pod, with `annotations`, behind a
/// NodePort Service on `port`.
fn create_hello(api: &Api, annotations: Value, port: u16) {
    let opts = WriteOptions::default();
    api.create(
        find("apps", "v1", "deployments").unwrap(),
        Some("default"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "annotations": annotations},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hello"}},
                "template": {"metadata": {"labels": {"app": "hello"}},
                    "spec": {"containers": [{"name": "web", "image": "capstan/hello-http", "ports": [{"containerPort": 8080}]}]}}}}),
        &opts,
    )
    .unwrap();
    api.create(
        find("", "v1", "services").unwrap(),
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
            "spec": {"type": "NodePort", "selector": {"app": "hello"}, "ports": [{"port": 8080, "nodePort": port}]}}),
        &opts,
    )
    .unwrap();
}

/// A client of the node port `port` once `answers` says what it got is the workload's.
async fn client_once_answering(port: u16, answers: impl Fn(&Value) -> bool) -> capstan_control::client::Client {
    let client = capstan_control::client::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while !client.get("/").await.is_ok_and(|v| answers(&v)) {
        assert!(std::time::Instant::now() < deadline, "the Service never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
}

/// `clients` clients sending requests in a loop until stopped, counting the answers.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &capstan_control::client::Client, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (client, stop, answered) = (client.clone(), Arc::clone(&stop), Arc::clone(&answered));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if client.get("/").await.is_ok() {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load { stop, answered, tasks }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

fn hello(v: &Value) -> bool {
    v.as_str() == Some("hello\n")
}

/// The messages of the HPA's events with `reason`.
fn events(api: &Api, reason: &str) -> Vec<String> {
    common::events(api, reason)
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "HorizontalPodAutoscaler")
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_requests_per_second_scales_up_under_load_and_down_after() {
    let (cluster, api) = autoscaling_cluster("hpa-rps").await;
    let port = free_node_port();
    let opts = WriteOptions::default();
    create_hello(&api, json!({}), port);
    // 5 requests a second per pod; down again 2 s after the load is gone.
    api.create(
        find("autoscaling", "v2", "horizontalpodautoscalers").unwrap(),
        Some("default"),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hello"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
                "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "5"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 2}}}}),
        &opts,
    )
    .unwrap();

    let client = client_once_answering(port, hello).await;

    // Load: a few clients in a loop, until told to stop.
    let load = Load::start(&client, 3);

    scaled_up_within(&api, 3).await;
    let status = until("the HPA to report the metric", || {
        let h = hpa(&api);
        h["status"]["currentMetrics"][0]["pods"]["current"]["averageValue"]
            .as_str()
            .map(|_| h["status"].clone())
    })
    .await;
    let average = quantity::parse(
        status["currentMetrics"][0]["pods"]["current"]["averageValue"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(average.nanos() > 0, "requests were counted: {status}");
    assert_eq!(
        status["currentMetrics"][0]["pods"]["metric"]["name"],
        "requests_per_second"
    );
    until("the rescale up to be recorded", || {
        events(&api, "SuccessfulRescale")
            .iter()
            .any(|m| m.ends_with("reason: pods metric requests_per_second above target"))
            .then_some(())
    })
    .await;
    assert!(load.answered.load(Ordering::Relaxed) > 0);

    // `kubectl get hpa`'s row, as the server renders it.
    let rendered = table("HorizontalPodAutoscaler", &[hpa(&api)], None, IncludeObject::None, 0);
    let columns: Vec<&str> = rendered["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    );
    let cells = &rendered["rows"][0]["cells"];
    assert_eq!(cells[1], "Deployment/hello");
    assert!(cells[2].as_str().unwrap().ends_with("/5"), "{cells}");
    assert_eq!((cells[3].clone(), cells[4].clone()), (json!("1"), json!(3)));

    // No more load: back to one replica.
    load.stop().await;
    until("the HPA to scale the Deployment back down", || {
        (replicas(&api) == 1).then_some(())
    })
    .await;
    // The event follows the rescale's write.
    until("the rescale to 1 to be recorded", || {
        events(&api, "SuccessfulRescale")
            .iter()
            .any(|m| m == "New size: 1; reason: All metrics below target")
            .then_some(())
    })
    .await;
    let conditions = hpa(&api)["status"]["conditions"].clone();
    let active = conditions
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingActive")
        .cloned()
        .unwrap();
    assert_eq!(active["reason"], "ValidMetricFound", "{conditions}");
    drop(cluster);
}

/// The HPA's `ScalingActive` condition: (status, reason).
fn scaling_active(api: &Api) -> Option<(String, String)> {
    let h = hpa(api);
    let c = h["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ScalingActive")?
        .clone();
    Some((c["status"].as_str()?.to_owned(), c["reason"].as_str()?.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_with_min_replicas_zero_leaves_scaling_to_and_from_zero_to_the_activator() {
    let (cluster, api) = autoscaling_cluster("hpa-zero").await;
    let port = free_node_port();
    let opts = WriteOptions::default();
    create_hello(&api, json!({"capstan.dev/scale-to-zero-grace-period": "2s"}), port);
    // minReplicas 0 opts the Deployment into scale to zero.
    api.create(
        find("autoscaling", "v2", "horizontalpodautoscalers").unwrap(),
        Some("default"),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hello"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
                "minReplicas": 0, "maxReplicas": 3,
                "metrics": [{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "5"}}}]}}),
        &opts,
    )
    .unwrap();

    // Idle, the workload goes to zero, and the HPA stands aside rather than bring it back.
    until("the idle workload to go to zero", || {
        (replicas(&api) == 0).then_some(())
    })
    .await;
    until("the HPA to see the target at zero", || {
        (scaling_active(&api) == Some(("False".into(), "ScalingDisabled".into()))
            && hpa(&api)["status"]["currentReplicas"] == 0)
            .then_some(())
    })
    .await;
    assert_eq!(replicas(&api), 0);

    // A request wakes it (the activator's doing) and is answered; the HPA follows the target.
    let client = capstan_control::client::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if matches!(client.get("/").await, Ok(Value::String(s)) if s == "hello\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the woken workload never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Requests keep it awake (its grace period is 2 s) until the HPA has looked at it.
    let keep_awake = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let _ = client.get("/").await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    until("the HPA to see the woken target", || {
        (hpa(&api)["status"]["currentReplicas"] == 1).then_some(())
    })
    .await;
    keep_awake.abort();
    // Idle again: back to zero, and the HPA never scaled anything itself.
    until("the workload to go back to zero", || {
        (replicas(&api) == 0 && scaling_active(&api).is_some_and(|(_, reason)| reason == "ScalingDisabled"))
            .then_some(())
    })
    .await;
    until("recorded events to be written", || {
        (api.events().unwritten() == 0).then_some(())
    })
    .await;
    assert_eq!(events(&api, "SuccessfulRescale"), Vec::<String>::new());
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_cpu_hpa_scales_the_random_generator_under_load() {
    let (cluster, api) = autoscaling_cluster("hpa-cpu").await;
    let opts = WriteOptions::default();
    // The example as it is (the Ingress aside: this cluster has no gateway)...
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("examples/elastic-scale/hpa.yaml")).unwrap();
    let objects: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    for object in objects.into_iter().filter(|o| o["kind"] != "Ingress") {
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), object["apiVersion"].as_str().unwrap().to_owned()),
        };
        let plural = format!("{}s", object["kind"].as_str().unwrap().to_ascii_lowercase());
        let info = find(&group, &version, &plural).unwrap();
        api.create(info, Some("default"), object, &opts).unwrap();
    }
    // ...and a node port to load it through.
    let port = free_node_port();
    api.create(
        find("", "v1", "services").unwrap(),
        Some("default"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "load"},
            "spec": {"type": "NodePort", "selector": {"app": "random-generator"}, "ports": [{"port": 8080, "nodePort": port}]}}),
        &opts,
    )
    .unwrap();
    let client = client_once_answering(port, |v| v["random"].is_number()).await;
    let load = Load::start(&client, 4);
    let hpa = |api: &Api| {
        api.get(
            find("autoscaling", "v2", "horizontalpodautoscalers").unwrap(),
            Some("default"),
            "random-generator",
        )
        .unwrap()
    };
    // A pod serving requests back to back uses far more than 50% of 200m: the HPA adds pods,
    // saying it did so on CPU utilization (the event is written with the rescale).
    let reason = "reason: cpu resource utilization (percentage of request) above target";
    let rescaled = until("the HPA to scale the random generator up on CPU", || {
        events(&api, "SuccessfulRescale")
            .into_iter()
            .find(|m| m.ends_with(reason))
    })
    .await;
    let size: i64 = rescaled
        .strip_prefix("New size: ")
        .and_then(|m| m.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{rescaled}"));
    assert!(size > 1 && size <= 5, "{rescaled}");
    until("the Deployment to want the new size", || {
        let d = api
            .get(
                find("apps", "v1", "deployments").unwrap(),
                Some("default"),
                "random-generator",
            )
            .unwrap();
        (d["spec"]["replicas"].as_i64() > Some(1)).then_some(())
    })
    .await;
    until("the HPA to report the pods' CPU utilization", || {
        hpa(&api)["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"].as_i64()
    })
    .await;
    load.stop().await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_a_services_requests_per_second_object_metric_scales_up_under_load() {
    let (cluster, api) = autoscaling_cluster("hpa-object").await;
    let port = free_node_port();
    create_hello(&api, json!({}), port);
    // The Service's requests per second in all, 5 a second per replica.
    api.create(
        find("autoscaling", "v2", "horizontalpodautoscalers").unwrap(),
        Some("default"),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hello"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
                "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Object", "object": {
                    "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "hello"},
                    "metric": {"name": "requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "5"}}}]}}),
        &WriteOptions::default(),
    )
    .unwrap();
    let client = client_once_answering(port, hello).await;
    let load = Load::start(&client, 3);
    scaled_up_within(&api, 3).await;
    let status = until("the HPA to report the object metric", || {
        let h = hpa(&api);
        let object = &h["status"]["currentMetrics"][0]["object"];
        object["current"]["averageValue"].as_str().map(|_| h["status"].clone())
    })
    .await;
    let object = &status["currentMetrics"][0]["object"];
    assert_eq!(object["describedObject"]["name"], "hello", "{status}");
    let average = quantity::parse(object["current"]["averageValue"].as_str().unwrap()).unwrap();
    assert!(average.nanos() > 0, "requests were counted: {status}");
    until("the rescale up to be recorded", || {
        events(&api, "SuccessfulRescale")
            .iter()
            .any(|m| m.ends_with("reason: requests_per_second metric on Service hello above target"))
            .then_some(())
    })
    .await;
    load.stop().await;
    drop(cluster);
}
