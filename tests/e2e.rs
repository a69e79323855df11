//! End-to-end tests: run the real `capstan` binary as a user would.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{DEADLINE, DataDir, capstan, http_get, lines, repo};

/// A running `capstan play`, killed when dropped.
struct Play {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Play {
    fn start(data: &DataDir, args: &[&str]) -> Self {
        let mut child = capstan()
            .arg("--data-dir")
            .arg(&data.0)
            .arg("play")
            .args(args)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capstan starts");
        Self {
            stdout: lines(child.stdout.take().unwrap()),
            stderr: lines(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Waits for a line on stdout (or stderr) that satisfies `pred`.
    fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line for {what}"),
            }
        }
    }

    /// The host port `--publish 0:PORT` was given.
    fn published_port(&self) -> u16 {
        self.published_ports(1)[0].1
    }

    /// (container port, host port) of the first `n` publishing lines.
    fn published_ports(&self, n: usize) -> Vec<(u16, u16)> {
        (0..n)
            .map(|_| {
                // "publishing 127.0.0.1:PORT -> pod/NAME port CPORT"
                let line = Self::wait_line(&self.stderr, "publishing", |l| l.starts_with("publishing "));
                let words: Vec<&str> = line.split_whitespace().collect();
                let host = words[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("host port");
                let container = words.last().and_then(|p| p.parse().ok()).expect("container port");
                (container, host)
            })
            .collect()
    }

    fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "capstan play did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Play {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn play_serves_the_random_generator_example_and_stops_on_ctrl_c() {
    let data = DataDir::new("serve");
    let mut play = Play::start(
        &data,
        &[
            "examples/predictable-demands/random-generator.yaml",
            "--publish",
            "0:8080",
        ],
    );
    let port = play.published_port();
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        json["random"].is_number() && json["id"].is_string() && json["version"] == "1.0",
        "{json}"
    );
    Play::wait_line(&play.stdout, "Running line", |l| {
        l.contains("pod/random-generator Running ready 1/1")
    });
    play.interrupt();
    let code = play.wait_exit();
    assert_ne!(code, -1, "exited by itself, not by a signal");
}

#[test]
fn invalid_manifests_name_the_field_and_start_nothing() {
    let data = DataDir::new("invalid");
    let file = data.0.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: dup}\nspec:\n  containers:\n  - {name: main, image: busybox}\n  - {name: main, image: busybox}\n",
    )
    .unwrap();
    let out = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .arg("play")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"spec.containers[1].name: duplicate name "main""#),
        "{err}"
    );
    assert!(!data.0.join("pods").exists(), "nothing was started");

    std::fs::write(&file, "apiVersion: v1\nkind: Pod\nmetadata: {name: typed}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    ports: [{containerPort: eighty}]\n").unwrap();
    let out = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .arg("play")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("containerPort"), "{err}");
}

#[test]
fn every_example_is_valid() {
    let data = DataDir::new("examples");
    let mut checked = 0;
    for dir in std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|f| f.path())
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
            // A `capstan up --node-config` file, not a manifest.
            .filter(|f| !f.ends_with("node-config.yaml"))
            .collect();
        // Files without a Pod (a shared ConfigMap) go along with each Pod file of the folder.
        let (pods, shared): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|f| std::fs::read_to_string(f).unwrap().contains("kind: Pod"));
        for pod in pods {
            let out = capstan()
                .arg("--data-dir")
                .arg(&data.0)
                .args(["play", "--dry-run"])
                .arg(&pod)
                .args(&shared)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                pod.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples");
}

#[test]
fn a_batch_pod_runs_to_completion_and_its_logs_stay() {
    let data = DataDir::new("batch");
    let mut play = Play::start(&data, &["-o", "json", "examples/batch-job/random-runner.yaml"]);
    let code = play.wait_exit();
    assert_eq!(code, 0, "all pods succeeded");
    // The child has exited: read its stdout to the end (the reader thread may lag behind).
    let events: Vec<serde_json::Value> = play.stdout.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
    let last = events.last().expect("watch events");
    assert_eq!(last["type"], "MODIFIED");
    assert_eq!(last["object"]["status"]["phase"], "Succeeded");
    assert_eq!(
        last["object"]["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let out = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["logs", "random-generator-batch"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("10000"));
}

#[test]
fn logs_of_a_running_pod_by_container_and_followed() {
    let data = DataDir::new("logs");
    let _play = Play::start(&data, &["examples/init-container/www.yaml"]);
    let logs = |extra: &[&str]| {
        capstan()
            .arg("--data-dir")
            .arg(&data.0)
            .args(["logs", "www"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Wait until the app container has written its first line.
    let deadline = Instant::now() + DEADLINE;
    while !String::from_utf8_lossy(&logs(&["-c", "run"]).stdout).contains("Hello") {
        assert!(Instant::now() < deadline, "the app container never logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    // `-f` prints what is there and keeps following.
    let mut follow = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["logs", "www", "-c", "run", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(follow.stdout.take().unwrap());
    let first = out.recv_timeout(DEADLINE);
    std::thread::sleep(Duration::from_millis(300));
    let still_running = follow.try_wait().unwrap().is_none();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(first.as_deref(), Ok("<h1>Hello from an init container</h1>"));
    assert!(still_running, "-f keeps following");
    // The init container's log is there too; a wrong name lists the choices.
    assert!(logs(&["-c", "download"]).status.success());
    let out = logs(&["-c", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one of: [download run]"));
    let out = logs(&[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a container name must be specified"));
}

#[test]
fn image_import_ls_and_run() {
    let data = DataDir::new("images");
    let ls = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["image", "ls", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        names.contains(&"k8spatterns/random-generator:1.0") && names.contains(&"busybox:*"),
        "{names:?}"
    );

    // Import the built-in hello component under a new name and run a pod of it.
    let wasm = repo().join("target/guests/wasm32-wasip2/release/hello-http.wasm");
    let out = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["image", "import"])
        .arg(&wasm)
        .args(["--tag", "example.com/me/hello:0.1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ls = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["image", "ls"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ls.stdout).contains("example.com/me/hello:0.1"));
    let pod = data.0.join("hello.yaml");
    std::fs::write(&pod, "apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\nspec:\n  containers:\n  - name: web\n    image: example.com/me/hello:0.1\n    ports: [{containerPort: 9000}]\n").unwrap();
    let play = Play::start(&data, &[pod.to_str().unwrap(), "--publish", "0:9000"]);
    let port = play.published_port();
    assert_eq!(http_get(port, "/"), (200, "hello\n".to_string()));

    let bad = data.0.join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let out = capstan()
        .arg("--data-dir")
        .arg(&data.0)
        .args(["image", "import"])
        .arg(&bad)
        .args(["--tag", "bad:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("core module"));
}

#[test]
fn sidecar_keeps_the_served_page_fresh() {
    let data = DataDir::new("sidecar");
    let play = Play::start(&data, &["examples/sidecar/web-app.yaml", "--publish", "0:80"]);
    let port = play.published_port();
    let deadline = Instant::now() + DEADLINE;
    let first = loop {
        let (status, body) = http_get(port, "/");
        if status == 200 && body.contains("updated by the sidecar") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the sidecar never wrote the page: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    loop {
        let (_, body) = http_get(port, "/");
        if body.contains("updated by the sidecar") && body != first {
            break;
        }
        assert!(Instant::now() < deadline, "the page never changed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn adapter_exports_the_numbers_as_prometheus_metrics() {
    let data = DataDir::new("adapter");
    let play = Play::start(&data, &["examples/adapter/pod.yaml", "-p", "0:8080", "-p", "0:9889"]);
    let ports: std::collections::HashMap<u16, u16> = play.published_ports(2).into_iter().collect();
    for _ in 0..3 {
        assert_eq!(http_get(ports[&8080], "/").0, 200);
    }
    let (status, metrics) = http_get(ports[&9889], "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "random_generator_numbers_total 3"),
        "{metrics}"
    );
}

#[test]
fn ambassador_receives_one_post_per_request() {
    let data = DataDir::new("ambassador");
    let play = Play::start(&data, &["examples/ambassador/pod.yaml", "-p", "0:8080"]);
    let port = play.published_port();
    // Both containers serve before the first request, or its POST has nowhere to go.
    Play::wait_line(&play.stdout, "both containers ready", |l| {
        l.contains("pod/random-generator Running ready 2/2")
    });
    for _ in 0..2 {
        assert_eq!(http_get(port, "/").0, 200);
    }
    // The generator POSTs each number as it answers; the ambassador logs it when the POST
    // arrives, which on a loaded machine can trail the answer.
    let logs = support::eventually("the ambassador to log both POSTs", DEADLINE, || {
        let out = capstan()
            .arg("--data-dir")
            .arg(&data.0)
            .args(["logs", "random-generator", "-c", "ambassador"])
            .output()
            .unwrap();
        let logs = String::from_utf8_lossy(&out.stdout).into_owned();
        (logs.lines().filter(|l| l.starts_with("LOG {")).count() >= 2).then_some(logs)
    });
    assert_eq!(logs.lines().filter(|l| l.starts_with("LOG {")).count(), 2, "{logs}");
}

#[test]
fn the_books_readiness_probe_flips_ready_without_a_restart() {
    let data = DataDir::new("readiness");
    let play = Play::start(
        &data,
        &["-o", "json", "examples/health-probe/readiness.yaml", "-p", "0:8080"],
    );
    let port = play.published_port();
    let ready_is = |want: bool| {
        move |l: &str| {
            let ev: serde_json::Value = serde_json::from_str(l).unwrap();
            let c = &ev["object"]["status"]["containerStatuses"][0];
            c["ready"] == want && c["restartCount"] == 0
        }
    };
    Play::wait_line(&play.stdout, "Ready", ready_is(true));
    assert_eq!(http_get(port, "/toggle-ready").0, 200);
    // The exec probe (`stat /var/run/random-generator-ready`, every 10 s) sees the file gone.
    Play::wait_line(&play.stdout, "not Ready, not restarted", ready_is(false));
}
