//! Services as pods see them, in an in-process cluster (real runtime): the service
//! environment variables a pod gets for the Services that exist when it starts.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_control::api::logs::LogOptions;
use capstan_control::api::registry::WriteOptions;
use capstan_control::api::resources::find;
use capstan_control::cluster::NodeConfig;
use common::{DEADLINE, free_node_port, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_gets_service_variables_for_the_services_of_its_namespace() {
    let cluster = start("services-test", NodeConfig::numbered(1)).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_selector_routes_to_its_manual_endpoints() {
    let cluster = start("manual-endpoints", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let (pods, services, endpoints) = (
        find("", "v1", "pods").unwrap(),
        find("", "v1", "services").unwrap(),
        find("", "v1", "endpoints").unwrap(),
    );
    let create = |info, object| {
        api.create(info, Some("default"), object, &WriteOptions::default())
            .unwrap()
    };
    // An ambassador pod nothing selects, and a Service whose endpoints are written by hand.
    create(
        pods,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ambassador"},
            "spec": {"containers": [{"name": "a", "image": "k8spatterns/random-generator-log-ambassador"}]}}),
    );
    let end = Instant::now() + DEADLINE;
    let ambassador_ip = loop {
        let pod = api.get(pods, Some("default"), "ambassador").unwrap();
        if pod["status"]["phase"] == "Running" {
            break pod["status"]["podIP"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < end, "the ambassador did not start: {pod}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    create(
        services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external-log"},
            "spec": {"ports": [{"port": 9009}]}}),
    );
    create(
        endpoints,
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external-log"},
            "subsets": [{"addresses": [{"ip": ambassador_ip}], "ports": [{"port": 9009}]}]}),
    );
    // The generator logs to the Service by name; it is reached through a node port.
    let port = free_node_port();
    create(
        pods,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "generator", "labels": {"app": "gen"}},
            "spec": {"containers": [{"name": "g", "image": "k8spatterns/random-generator:1.0",
                "env": [{"name": "LOG_URL", "value": "http://external-log:9009"}]}]}}),
    );
    create(
        services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "generator"},
            "spec": {"type": "NodePort", "selector": {"app": "gen"}, "ports": [{"port": 8080, "nodePort": port}]}}),
    );
    let client = capstan_control::client::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let served = loop {
        match client.get("/").await {
            Ok(v) if v["random"].is_number() => break v["random"].to_string(),
            _ => {}
        }
        assert!(Instant::now() < end, "the generator never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ambassador = api.get(pods, Some("default"), "ambassador").unwrap();
    let logged = loop {
        let mut log = api.logs(&ambassador, LogOptions::default()).unwrap().expect("a log");
        let mut text = Vec::new();
        while let Some(chunk) = log.recv().await {
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if text.contains(&served) {
            break text;
        }
        assert!(Instant::now() < end, "the ambassador never logged {served}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(logged.contains(&served));
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_log_streams_what_the_container_writes_later() {
    let cluster = start("follow-logs", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let pods = find("", "v1", "pods").unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ticker"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "command": ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]}]}});
    api.create(pods, Some("default"), pod, &WriteOptions::default())
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let pod = loop {
        let pod = api.get(pods, Some("default"), "ticker").unwrap();
        if pod["status"]["phase"] == "Running" {
            break pod;
        }
        assert!(Instant::now() < end, "the pod did not start: {pod}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    let mut log = api.logs(&pod, opts).unwrap().expect("a log");
    // Lines keep arriving on the one open stream: more than were written when it opened.
    let mut first = String::new();
    while first.is_empty() {
        let chunk = tokio::time::timeout(DEADLINE, log.recv())
            .await
            .expect("the log answers")
            .expect("open");
        first.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut text = first.clone();
    while text.matches("tick\n").count() < first.matches("tick\n").count() + 5 {
        let chunk = tokio::time::timeout(DEADLINE, log.recv())
            .await
            .expect("the followed log keeps streaming")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.lines().all(|l| l == "tick"), "{text}");
}

/// The ready addresses of Endpoints `name` in `default`, sorted.
fn ready_ips(api: &capstan_control::api::Api, name: &str) -> Vec<String> {
    let Ok(eps) = api.get(find("", "v1", "endpoints").unwrap(), Some("default"), name) else {
        return Vec::new();
    };
    let mut ips: Vec<String> = eps["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
        .filter_map(|a| a["ip"].as_str().map(str::to_owned))
        .collect();
    ips.sort();
    ips
}

/// Guests' `wasi:sockets` reach a Service over TCP by its DNS name: a ClusterIP Service's
/// name resolves (ip-name-lookup) to its cluster IP, whose port 7 leads to an echo pod's port
/// 7007; a headless Service's name resolves to the pods' own IPs, which the client dials
/// directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_reach_services_over_tcp_by_dns_name_and_headless_names_give_pod_ips() {
    use capstan_control::api::registry::ListOptions;
    use capstan_control::proxy::table;
    use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Service};

    let cluster = start("tcp-services", NodeConfig::numbered(1)).await;
    let api = Arc::clone(&cluster.api);
    let (pods, services, endpoints) = (
        find("", "v1", "pods").unwrap(),
        find("", "v1", "services").unwrap(),
        find("", "v1", "endpoints").unwrap(),
    );
    let create = |info, object| {
        api.create(info, Some("default"), object, &WriteOptions::default())
            .unwrap()
    };
    create(
        find("apps", "v1", "deployments").unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "echo"}},
                "template": {"metadata": {"labels": {"app": "echo"}},
                    "spec": {"containers": [{"name": "echo", "image": "capstan/tcp-echo",
                        "args": ["7007", "0.0.0.0"], "ports": [{"containerPort": 7007}]}]}}}}),
    );
    let created = create(
        services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 7, "targetPort": 7007}]}}),
    );
    let cluster_ip: std::net::IpAddr = created.object["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    create(
        services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo-headless"},
            "spec": {"clusterIP": "None", "selector": {"app": "echo"}, "ports": [{"port": 7007}]}}),
    );
    let pod_ips = common::until("both echo pods ready behind both Services", || {
        let (a, b) = (ready_ips(&api, "echo"), ready_ips(&api, "echo-headless"));
        (a.len() == 2 && a == b).then_some(a)
    })
    .await;

    // What cluster DNS answers, from the objects as the API serves them.
    let typed = |info| -> Vec<serde_json::Value> {
        api.list_items(info, Some("default"), &ListOptions::default())
            .unwrap()
            .0
    };
    let svcs: Vec<Service> = typed(services)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let eps: Vec<Endpoints> = typed(endpoints)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let backends = table::backends(&svcs, &eps);
    assert_eq!(table::addresses(&backends, "echo", "default"), Some(vec![cluster_ip]));
    let pod_addrs: Vec<std::net::IpAddr> = pod_ips.iter().map(|ip| ip.parse().unwrap()).collect();
    assert_eq!(
        table::addresses(&backends, "echo-headless.default.svc.cluster.local", "elsewhere"),
        Some(pod_addrs)
    );

    // Clients by name: HOST=echo (expanded into the args as Kubernetes does), the full
    // name, and the headless name on the pods' own port.
    let clients = [
        ("by-name", "$(HOST)", "7"),
        ("by-fqdn", "echo.default.svc.cluster.local", "7"),
        ("headless", "echo-headless", "7007"),
    ];
    for (name, host, port) in clients {
        // OnFailure: a client started before the proxy's table caught up with the
        // Endpoints would find no name; its restart finds it.
        create(
            pods,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "capstan/tcp-client",
                    "env": [{"name": "HOST", "value": "echo"}],
                    "args": [host, port, format!("hello {name}")]}]}}),
        );
    }
    for (name, _, _) in clients {
        let end = Instant::now() + DEADLINE;
        let pod = loop {
            let pod = api.get(pods, Some("default"), name).unwrap();
            if pod["status"]["phase"] == "Succeeded" {
                break pod;
            }
            assert!(Instant::now() < end, "client {name} did not finish: {pod}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut log = api.logs(&pod, LogOptions::default()).unwrap().expect("a log");
        let mut text = Vec::new();
        while let Some(chunk) = log.recv().await {
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains(&format!("echoed: hello {name}")), "client {name}: {text}");
    }
    drop(cluster);
}

/// Polls `check` until it gives a value or the deadline passes.
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_service_takes_its_endpoint_slices_and_dependents_unless_orphaning() {
    use capstan_control::api::registry::{DeleteOptions, ListOptions};
    let cluster = start("services-gc", NodeConfig::numbered(0)).await;
    let api = Arc::clone(&cluster.api);
    let (services, slices, config_maps) = (
        find("", "v1", "services").unwrap(),
        find("discovery.k8s.io", "v1", "endpointslices").unwrap(),
        find("", "v1", "configmaps").unwrap(),
    );
    let slices_of = |name: &str| -> Vec<serde_json::Value> {
        let all = api.list(slices, Some("default"), &ListOptions::default()).unwrap();
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name)
            .cloned()
            .collect()
    };
    let mut uids = std::collections::HashMap::new();
    for name in ["web", "kept"] {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}});
        let created = api
            .create(services, Some("default"), service, &WriteOptions::default())
            .unwrap();
        uids.insert(name, created.object["metadata"]["uid"].as_str().unwrap().to_owned());
        until(&format!("a slice of {name}"), || {
            (!slices_of(name).is_empty()).then_some(())
        })
        .await;
    }
    // A ConfigMap owned by `web`, and one whose owner is of a kind Capstan does not serve (a
    // Job): the collector cannot look that one up, so it stays.
    let owned = |name: &str, api_version: &str, kind: &str, owner: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
            "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": owner, "uid": uid}]}})
    };
    for cm in [
        owned("web-config", "v1", "Service", "web", &uids["web"]),
        owned("kept-config", "v1", "Service", "kept", &uids["kept"]),
        owned(
            "job-config",
            "batch/v1",
            "Job",
            "nightly",
            "4f1c0d9e-0000-4000-8000-000000000001",
        ),
    ] {
        api.create(config_maps, Some("default"), cm, &WriteOptions::default())
            .unwrap();
    }

    api.delete(services, Some("default"), "web", &DeleteOptions::default())
        .unwrap();
    until("web's slices and config to go", || {
        let config = api.get(config_maps, Some("default"), "web-config");
        (slices_of("web").is_empty() && config.is_err()).then_some(())
    })
    .await;
    assert!(api.get(config_maps, Some("default"), "job-config").is_ok());

    let orphaning = DeleteOptions {
        propagation_policy: Some("Orphan".into()),
        ..Default::default()
    };
    api.delete(services, Some("default"), "kept", &orphaning).unwrap();
    // Its dependents stay, without the reference (the controller's own slices it replaces as
    // it sees fit, as kube's does).
    until("kept's Service to go", || {
        api.get(services, Some("default"), "kept").is_err().then_some(())
    })
    .await;
    let config = api
        .get(config_maps, Some("default"), "kept-config")
        .expect("orphaned, not deleted");
    assert!(
        config["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty()),
        "{config}"
    );
    assert!(
        api.get(services, Some("default"), "kept").is_err(),
        "the Service is gone"
    );
    drop(cluster);
}
