//! Integration tests of the runtime API: real components, real wasmtime, no mocks.
//! One test binary (linking wasmtime is slow); tests share one `Runtime` (and so
//! one engine and compiled-code cache), each with its own pods.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use capstan_core::k8s_openapi::api::core::v1::{ContainerStateWaiting, Pod};
use capstan_runtime::{PodHandle, Runtime, RuntimeConfig};
use http_body_util::{BodyExt, Full};
use support::{DEADLINE, container, log, runtime, start, start_on, stop, terminated, wait_for, wait_log};

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("capstan-runtime-tests-{}", std::process::id()))
}

/// The shared runtime's configuration (`support::runtime`).
fn runtime_config() -> RuntimeConfig {
    let mut config = RuntimeConfig::new(data_dir());
    config.allow_host_path = true;
    config
}

/// A runtime that refuses hostPath, for the test that checks the refusal.
fn strict_runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::new(data_dir().join("strict"))).expect("runtime"))
        .clone()
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn waiting<'a>(p: &'a Pod, name: &str) -> Option<&'a ContainerStateWaiting> {
    container(p, name)?.state.as_ref()?.waiting.as_ref()
}

fn ready(p: &Pod, name: &str) -> bool {
    container(p, name).is_some_and(|c| c.ready)
}

fn restarts(p: &Pod, name: &str) -> i32 {
    container(p, name).map_or(0, |c| c.restart_count)
}

/// Sends a request to a pod port through its routing table.
async fn get(h: &PodHandle, port: u16, path: &str) -> (u16, String) {
    let server = h
        .network()
        .route(port)
        .unwrap_or_else(|| panic!("nothing serves port {port}"));
    let req = http::Request::get(format!("http://localhost:{port}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = server.handle(req).await;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn busybox(name: &str, policy: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", {script:?}]
"#
    )
}

mod commands {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn exit_codes_become_the_container_state() {
        let ok = start(&busybox("exit-ok", "Never", "echo hello; true"));
        let failed = start(&busybox("exit-fail", "Never", "echo oops; false"));
        let p = wait_for(&ok, "Succeeded", |p| phase(p) == "Succeeded").await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert!(log(&ok, "main").contains("hello"));
        let p = wait_for(&failed, "Failed", |p| phase(p) == "Failed").await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (1, Some("Error")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn command_args_and_working_dir_reach_the_guest() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: argv}
spec:
  restartPolicy: Never
  initContainers:
  - name: prepare
    image: busybox
    command: ["sh", "-c", "echo from-the-working-dir > /work/note.txt"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: ["cat"]
    args: ["note.txt"]
    workingDir: /work
    volumeMounts: [{name: work, mountPath: /work}]
  volumes: [{name: work, emptyDir: {}}]
"#,
        );
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(log(&h, "main").trim(), "from-the-working-dir");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_trap_is_reported_and_the_next_pod_still_runs() {
        let h = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: trap}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: main, image: capstan/trap}\n",
        );
        let p = wait_for(&h, "Failed", |p| phase(p) == "Failed").await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!(t.exit_code, 134);
        assert_eq!(t.reason.as_deref(), Some("Error"));
        assert!(t.message.as_deref().unwrap_or("").contains("unreachable"), "{t:?}");
        let next = start(&busybox("after-trap", "Never", "echo still here"));
        wait_for(&next, "Succeeded", |p| phase(p) == "Succeeded").await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn busybox_applets_work_on_the_private_root() {
        let h = start(&busybox(
            "applets",
            "Never",
            "mkdir -p /tmp/a/b && echo x > /tmp/a/b/f && ls /tmp/a/b && stat /tmp/a/b/f > /tmp/stat && test -s /tmp/stat && cp /tmp/a/b/f /tmp/g && cat /tmp/g && date > /tmp/d && test -s /tmp/d && echo ok",
        ));
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(log(&h, "main"), "f\nx\nok\n");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn busybox_names_an_unsupported_shell_construct() {
        let h = start(&busybox("unsupported", "Never", "echo a | cat"));
        let p = wait_for(&h, "Failed", |p| phase(p) == "Failed").await;
        assert_ne!(terminated(&p, "main").unwrap().exit_code, 0);
        assert!(
            log(&h, "main").contains("unsupported construct: pipe"),
            "{}",
            log(&h, "main")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_missing_image_is_err_image_pull_naming_it() {
        let h = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: no-image}\nspec:\n  containers:\n  - {name: main, image: example.com/nope:9}\n",
        );
        let p = wait_for(&h, "ErrImagePull", |p| {
            waiting(p, "main").is_some_and(|w| w.reason.as_deref() == Some("ErrImagePull"))
        })
        .await;
        assert!(
            waiting(&p, "main")
                .unwrap()
                .message
                .as_deref()
                .unwrap()
                .contains("example.com/nope:9")
        );
        assert_eq!(phase(&p), "Pending");
        stop(&h, Duration::ZERO).await;
    }
}

mod init {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn init_containers_run_in_order_before_the_app() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: init-order}
spec:
  restartPolicy: Never
  initContainers:
  - {name: one, image: busybox, command: ["sh", "-c", "echo one >> /shared/order"], volumeMounts: [{name: s, mountPath: /shared}]}
  - {name: two, image: busybox, command: ["sh", "-c", "echo two >> /shared/order"], volumeMounts: [{name: s, mountPath: /shared}]}
  containers:
  - {name: app, image: busybox, command: ["sh", "-c", "echo app >> /shared/order; cat /shared/order"], volumeMounts: [{name: s, mountPath: /shared}]}
  volumes: [{name: s, emptyDir: {}}]
"#,
        );
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(log(&h, "app"), "one\ntwo\napp\n");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_init_container_keeps_the_app_from_starting() {
        let yaml = |name: &str, policy: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  initContainers:\n  - {{name: check, image: busybox, command: [\"false\"]}}\n  containers:\n  - {{name: app, image: busybox, command: [\"sh\", \"-c\", \"echo app ran\"]}}\n"
            )
        };
        let never = start(&yaml("init-fail-never", "Never"));
        let p = wait_for(&never, "Failed", |p| phase(p) == "Failed").await;
        assert_eq!(
            waiting(&p, "app").and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );
        let always = start(&yaml("init-fail-always", "Always"));
        let p = wait_for(&always, "init restarted", |p| restarts(p, "check") >= 1).await;
        assert_eq!(phase(&p), "Pending");
        assert!(log(&always, "app").is_empty(), "the app container never ran");
        stop(&always, Duration::ZERO).await;
    }
}

mod env {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn env_sources_resolve_like_the_kubelet() {
        let h = start(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {PATTERN: EnvVar Configuration, LEVEL: debug}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {seed: "42"}
---
apiVersion: v1
kind: Pod
metadata:
  name: env-pod
  labels: {app: web}
  annotations: {team: blue}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["env"]
    resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}
    envFrom:
    - configMapRef: {name: cfg}
      prefix: CONFIG_
    env:
    - {name: GREETING, value: hello}
    - {name: MESSAGE, value: "$(GREETING) world $(UNDEFINED) $$(GREETING)"}
    - {name: PATTERN, valueFrom: {configMapKeyRef: {name: cfg, key: PATTERN}}}
    - {name: SEED, valueFrom: {secretKeyRef: {name: sec, key: seed}}}
    - {name: OPTIONAL, valueFrom: {secretKeyRef: {name: sec, key: missing, optional: true}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU_M, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
"#,
        );
        let p = wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        let env = log(&h, "main");
        let pod_ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
        for line in [
            "CONFIG_PATTERN=EnvVar Configuration".to_string(),
            "CONFIG_LEVEL=debug".into(),
            "MESSAGE=hello world $(UNDEFINED) $(GREETING)".into(),
            "PATTERN=EnvVar Configuration".into(),
            "SEED=42".into(),
            "POD_NAME=env-pod".into(),
            "POD_NS=default".into(),
            "APP=web".into(),
            "TEAM=blue".into(),
            format!("POD_IP={pod_ip}"),
            "NODE=capstan".into(),
            "SA=default".into(),
            "MEM_MI=64".into(),
            "CPU_M=250".into(),
        ] {
            assert!(env.lines().any(|l| l == line), "missing {line:?} in:\n{env}");
        }
        assert!(!env.contains("OPTIONAL="), "an optional missing key is left out");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_missing_config_map_key_holds_the_container() {
        let h = start(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: partial}
data: {present: "yes"}
---
apiVersion: v1
kind: Pod
metadata: {name: config-error}
spec:
  containers:
  - name: main
    image: busybox
    command: ["env"]
    env: [{name: X, valueFrom: {configMapKeyRef: {name: partial, key: absent}}}]
"#,
        );
        let p = wait_for(&h, "CreateContainerConfigError", |p| {
            waiting(p, "main").is_some_and(|w| w.reason.as_deref() == Some("CreateContainerConfigError"))
        })
        .await;
        let msg = waiting(&p, "main").unwrap().message.clone().unwrap_or_default();
        assert!(msg.contains("absent") && msg.contains("partial"), "{msg}");
        assert!(log(&h, "main").is_empty());
        stop(&h, Duration::ZERO).await;
    }
}

mod filesystem {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn each_container_has_a_private_root_and_shares_only_volumes() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: private-root}
spec:
  restartPolicy: Never
  initContainers:
  - {name: writer, image: busybox, command: ["sh", "-c", "echo secret > /tmp/mine && echo shared > /data/ours"], volumeMounts: [{name: d, mountPath: /data}]}
  containers:
  - {name: reader, image: busybox, command: ["sh", "-c", "cat /data/ours; test -e /tmp/mine && echo LEAK || echo private"], volumeMounts: [{name: d, mountPath: /data}]}
  volumes: [{name: d, emptyDir: {}}]
"#,
        );
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(log(&h, "reader"), "shared\nprivate\n");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn data_volumes_project_config_secrets_and_pod_metadata() {
        let h = start(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: files}
data: {PATTERN: Configuration Resource, app.properties: "port=7070\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Pod
metadata:
  name: projected
  labels: {app: demo, tier: web}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "cat /config/PATTERN; echo; cat /items/conf/app; cat /secret/password; echo; cat /info/labels; echo; cat /all/PATTERN; echo; cat /all/pw; echo; echo x > /config/new || echo read-only"]
    volumeMounts:
    - {name: cfg, mountPath: /config, readOnly: true}
    - {name: items, mountPath: /items}
    - {name: sec, mountPath: /secret}
    - {name: info, mountPath: /info}
    - {name: all, mountPath: /all}
  - name: sub
    image: busybox
    command: ["sh", "-c", "echo in-sub > /only/file"]
    volumeMounts: [{name: scratch, mountPath: /only, subPath: nested/dir}]
  - name: sub-check
    image: busybox
    command: ["sh", "-c", "while true; do test -s /whole/nested/dir/file && break; sleep 0.05; done; cat /whole/nested/dir/file"]
    volumeMounts: [{name: scratch, mountPath: /whole}]
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: cfg, configMap: {name: files}}
  - {name: items, configMap: {name: files, items: [{key: app.properties, path: conf/app}]}}
  - {name: sec, secret: {secretName: creds}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  - name: all
    projected:
      sources:
      - configMap: {name: files, items: [{key: PATTERN, path: PATTERN}]}
      - secret: {name: creds, items: [{key: password, path: pw}]}
"#,
        );
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        let l = log(&h, "main");
        assert!(
            l.starts_with("Configuration Resource\nport=7070\nhunter2\napp=\"demo\"\ntier=\"web\"\nConfiguration Resource\nhunter2\n"),
            "{l}"
        );
        assert!(l.ends_with("read-only\n"), "a readOnly mount refuses writes: {l}");
        assert_eq!(
            log(&h, "sub-check"),
            "in-sub\n",
            "subPath mounts a directory inside the volume"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_guest_cannot_leave_its_mounts() {
        let outside = data_dir().join("outside");
        let shared = data_dir().join("host-shared");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(outside.join("treasure"), "TREASURE").unwrap();
        let link = shared.join("escape");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let h = start(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: escape}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "cat /../../../../{treasure}; cat /host/../../{treasure}; cat /host/escape/treasure; echo done"]
    volumeMounts: [{{name: host, mountPath: /host}}]
  volumes: [{{name: host, hostPath: {{path: {shared:?}}}}}]
"#,
            treasure = outside.join("treasure").display().to_string().trim_start_matches('/'),
        ));
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        let l = log(&h, "main");
        assert!(l.contains("done"), "{l}");
        assert!(
            !l.contains("TREASURE"),
            "a guest read a host file outside its mounts:\n{l}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn host_path_needs_the_node_to_allow_it() {
        let h = start_on(
            &strict_runtime(),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: hostpath-denied}\nspec:\n  containers:\n  - {name: main, image: busybox, command: [\"true\"], volumeMounts: [{name: h, mountPath: /h}]}\n  volumes: [{name: h, hostPath: {path: /etc}}]\n",
        );
        let p = wait_for(&h, "mount refused", |p| {
            waiting(p, "main").is_some_and(|w| w.message.as_deref().unwrap_or("").contains("hostPath"))
        })
        .await;
        assert!(
            waiting(&p, "main")
                .unwrap()
                .message
                .as_deref()
                .unwrap()
                .contains("spec.volumes[0].hostPath")
        );
        stop(&h, Duration::ZERO).await;
    }
}

mod limits {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn growing_past_the_memory_limit_is_oom_killed() {
        let h = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: oom}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: capstan/alloc\n    args: [\"256\"]\n    resources: {limits: {memory: 32Mi}}\n",
        );
        let p = wait_for(&h, "Failed", |p| phase(p) == "Failed").await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("OOMKilled")));
        assert_eq!(p.status.as_ref().unwrap().qos_class.as_deref(), Some("Burstable"));
        // Under the limit the same guest completes.
        let ok = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: no-oom}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: capstan/alloc\n    args: [\"8\"]\n    resources: {limits: {memory: 64Mi, cpu: 1}, requests: {memory: 64Mi, cpu: 1}}\n",
        );
        let p = wait_for(&ok, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(p.status.as_ref().unwrap().qos_class.as_deref(), Some("Guaranteed"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_spinning_guest_does_not_starve_other_pods_and_is_still_stopped() {
        let spin = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: spin}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: capstan/spin\n    resources: {limits: {cpu: 100m}}\n",
        );
        let spin2 = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: spin-unlimited}\nspec:\n  containers:\n  - {name: main, image: capstan/spin}\n",
        );
        wait_log(&spin, "main", "spinning").await;
        wait_log(&spin2, "main", "spinning").await;
        let web = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\nspec:\n  containers:\n  - {name: web, image: capstan/hello-http}\n",
        );
        wait_for(&web, "ready", |p| ready(p, "web")).await;
        for _ in 0..50 {
            assert_eq!(get(&web, 8080, "/").await, (200, "hello\n".to_string()));
        }
        let p = stop(&spin, Duration::from_secs(1)).await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!(t.exit_code, 137, "interrupted after the grace period");
        stop(&spin2, Duration::ZERO).await;
        let p = stop(&web, Duration::from_secs(5)).await;
        assert_eq!(
            terminated(&p, "web").unwrap().exit_code,
            0,
            "an HTTP container stops cleanly"
        );
    }
}

mod lifecycle {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_crashing_container_backs_off() {
        let h = start(&busybox("crash-loop", "Always", "echo crash; exit 3"));
        let p = wait_for(&h, "CrashLoopBackOff", |p| {
            waiting(p, "main").is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        })
        .await;
        assert!(restarts(&p, "main") >= 2, "restarted once at once, then backed off");
        let last = container(&p, "main")
            .unwrap()
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(
            last.exit_code, 3,
            "the guest's own exit code (busybox uses exit-with-code)"
        );
        assert_eq!(phase(&p), "Running");
        stop(&h, Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn termination_messages_come_from_the_file_or_the_logs() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: termination}
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: busybox
    command: ["sh", "-c", "echo 'all 42 done' > /dev/termination-log"]
  - name: custom
    image: busybox
    terminationMessagePath: /tmp/why
    command: ["sh", "-c", "echo custom-reason > /tmp/why; false"]
  - name: logs
    image: busybox
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "echo line one; echo the last words; false"]
"#,
        );
        let p = wait_for(&h, "Failed", |p| phase(p) == "Failed").await;
        assert_eq!(
            terminated(&p, "file").unwrap().message.as_deref(),
            Some("all 42 done\n")
        );
        assert_eq!(
            terminated(&p, "custom").unwrap().message.as_deref(),
            Some("custom-reason\n")
        );
        assert!(
            terminated(&p, "logs")
                .unwrap()
                .message
                .as_deref()
                .unwrap()
                .ends_with("the last words")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_guest_that_polls_for_termination_stops_within_the_grace_period() {
        // busybox watches /dev/termination-signal between loop iterations and while
        // sleeping, and exits 143 as a shell does on SIGTERM.
        let h = start(&busybox(
            "polls-termination",
            "Always",
            "while true; do sleep 3600; done",
        ));
        wait_for(&h, "Running", |p| phase(p) == "Running").await;
        let p = stop(&h, Duration::from_secs(60)).await;
        let t = terminated(&p, "main").unwrap();
        assert_eq!(
            (t.exit_code, t.reason.as_deref()),
            (143, Some("Error")),
            "ended by itself, not killed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stop_waits_for_a_quick_guest_and_interrupts_a_slow_one() {
        // The spinning guest never looks for the stop request.
        let h = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: slow-stop}\nspec:\n  containers:\n  - {name: main, image: capstan/spin}\n",
        );
        wait_for(&h, "Running", |p| phase(p) == "Running").await;
        let begun = std::time::Instant::now();
        let p = stop(&h, Duration::from_millis(500)).await;
        assert_eq!(terminated(&p, "main").unwrap().exit_code, 137);
        assert!(begun.elapsed() < Duration::from_secs(20));
    }
}

mod random_generator {
    use super::*;

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn serves_the_books_endpoints() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: rg}
spec:
  containers:
  - name: random-generator
    image: k8spatterns/random-generator:1.0
    ports: [{containerPort: 8080}]
    env:
    - {name: PATTERN, value: Predictable Demands}
    - {name: LOG_FILE, value: /logs/random.log}
    volumeMounts: [{name: logs, mountPath: /logs}]
  volumes: [{name: logs, emptyDir: {}}]
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "random-generator")).await;
        let (status, body) = get(&h, 8080, "/").await;
        assert_eq!(status, 200);
        let first = json(&body);
        assert!(first["random"].is_number());
        assert_eq!(first["version"], "1.0");
        assert_eq!(first["pattern"], "Predictable Demands");
        let second = json(&get(&h, 8080, "/").await.1);
        assert_eq!(first["id"], second["id"], "the id lives in the container's filesystem");
        let (_, logs) = get(&h, 8080, "/logs").await;
        assert_eq!(logs.lines().count(), 2, "one LOG_FILE line per number: {logs}");
        assert_eq!(get(&h, 8080, "/info").await.0, 200);
        assert_eq!(get(&h, 8080, "/actuator/health").await.0, 200);
        get(&h, 8080, "/toggle-live").await;
        assert_eq!(get(&h, 8080, "/actuator/health").await.0, 503);
        assert_eq!(json(&get(&h, 8080, "/toggle-ready").await.1)["ready"], false);
        assert_eq!(get(&h, 8080, "/nope").await.0, 404);
        let (status, _) = get(&h, 8080, "/shutdown").await;
        assert_eq!(status, 200);
        let p = wait_for(&h, "restart after /shutdown", |p| {
            restarts(p, "random-generator") == 1 && ready(p, "random-generator")
        })
        .await;
        let last = container(&p, "random-generator")
            .unwrap()
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(last.exit_code, 0);
        assert_eq!(
            get(&h, 8080, "/actuator/health").await.0,
            200,
            "a restart resets the writable layer"
        );
        stop(&h, Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn version_two_seed_and_memory_eater() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: rg2}
spec:
  containers:
  - name: main
    image: k8spatterns/random-generator:2.0
    env: [{name: SEED, value: "7"}]
    resources: {limits: {memory: 48Mi}}
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "main")).await;
        let a = json(&get(&h, 8080, "/").await.1);
        assert_eq!(a["version"], "2.0");
        assert_eq!(get(&h, 8080, "/memory-eater?mb=4").await.0, 200);
        let (status, _) = get(&h, 8080, "/memory-eater?mb=200").await;
        assert_eq!(status, 500);
        let p = wait_for(&h, "OOMKilled", |p| {
            container(p, "main")
                .and_then(|c| c.last_state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
        })
        .await;
        assert_eq!(restarts(&p, "main"), 1);
        wait_for(&h, "ready again", |p| ready(p, "main")).await;
        let b = json(&get(&h, 8080, "/").await.1);
        assert_eq!(
            a["random"], b["random"],
            "SEED makes the sequence repeat after a restart"
        );
        stop(&h, Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn delay_startup_holds_readiness() {
        let h = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: rg-delay}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{name: DELAY_STARTUP, value: \"2\"}]\n",
        );
        let p = wait_for(&h, "Running", |p| phase(p) == "Running").await;
        assert!(!ready(&p, "main"), "not ready during DELAY_STARTUP");
        assert!(h.network().route(8080).is_none(), "port not served yet");
        let begun = std::time::Instant::now();
        wait_for(&h, "ready", |p| ready(p, "main")).await;
        assert!(begun.elapsed() >= Duration::from_millis(1500));
        stop(&h, Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_batch_runner_writes_numbers_and_completes() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: batch}
spec:
  restartPolicy: OnFailure
  initContainers: []
  containers:
  - name: runner
    image: k8spatterns/random-generator:1.0
    command: ["java", "-cp", "/", "RandomRunner", "/numbers/numbers.txt", "1000"]
    volumeMounts: [{name: nums, mountPath: /numbers}]
  - name: check
    image: busybox
    command: ["sh", "-c", "while true; do test -s /numbers/numbers.txt && break; sleep 0.1; done"]
    volumeMounts: [{name: nums, mountPath: /numbers}]
  volumes: [{name: nums, emptyDir: {}}]
"#,
        );
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert!(log(&h, "runner").contains("1000"), "{}", log(&h, "runner"));
    }
}

mod images {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn compiled_code_is_cached_on_disk_and_reused() {
        let dir = data_dir().join("cache-test");
        let rt = Runtime::new(RuntimeConfig::new(&dir)).unwrap();
        let h = start_on(&rt, &busybox("cache-1", "Never", "true"));
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        let compiled: Vec<_> = std::fs::read_dir(dir.join("images/compiled"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(compiled.len(), 1, "one cached compilation");
        let mtime = compiled[0].metadata().unwrap().modified().unwrap();
        // A new runtime (a second start of the node) loads it instead of compiling.
        let rt2 = Runtime::new(RuntimeConfig::new(&dir)).unwrap();
        let h = start_on(&rt2, &busybox("cache-2", "Never", "true"));
        wait_for(&h, "Succeeded", |p| phase(p) == "Succeeded").await;
        assert_eq!(
            compiled[0].metadata().unwrap().modified().unwrap(),
            mtime,
            "not recompiled"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn imported_and_file_images_run() {
        let dir = data_dir().join("import-test");
        let rt = Runtime::new(RuntimeConfig::new(&dir)).unwrap();
        let hello = rt.images().resolve("capstan/hello-http").unwrap();
        let file = dir.join("hello.wasm");
        std::fs::write(&file, &hello.bytes[..]).unwrap();
        let summary = rt
            .images()
            .import(hello.bytes.to_vec(), "example.com/team/hello:1")
            .await
            .unwrap();
        assert_eq!(summary.digest, hello.digest);
        assert!(rt.images().list().iter().any(|i| i.name == "example.com/team/hello:1"));
        let err = rt.images().import(b"not wasm".to_vec(), "bad:1").await.unwrap_err();
        assert!(err.to_string().contains("not a WebAssembly binary"), "{err}");
        for image in [
            "example.com/team/hello:1".to_string(),
            format!("file://{}", file.display()),
        ] {
            let h = start_on(
                &rt,
                &format!(
                    "apiVersion: v1\nkind: Pod\nmetadata: {{name: imported}}\nspec:\n  containers:\n  - {{name: web, image: {image:?}}}\n"
                ),
            );
            wait_for(&h, "ready", |p| ready(p, "web")).await;
            assert_eq!(get(&h, 8080, "/").await.1, "hello\n");
            stop(&h, Duration::from_secs(5)).await;
        }
    }
}

mod eviction {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn an_empty_dir_past_its_size_limit_evicts_the_pod() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: size-limit}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo 0123456789012345678901234567890123456789 > /scratch/a; cp /scratch/a /scratch/b; cp /scratch/a /scratch/c; while true; do sleep 1; done"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {medium: Memory, sizeLimit: "100"}}]
"#,
        );
        let p = wait_for(&h, "Evicted", |p| phase(p) == "Failed").await;
        let st = p.status.unwrap();
        assert_eq!(st.reason.as_deref(), Some("Evicted"));
        assert!(st.message.unwrap().contains("scratch"));
        tokio::time::timeout(DEADLINE, h.wait()).await.unwrap();
    }
}

mod readiness {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pod_is_ready_when_every_container_is() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: ready-pod}
spec:
  containers:
  - {name: web, image: capstan/hello-http}
  - {name: sidecar, image: busybox, command: ["sh", "-c", "while true; do sleep 1; done"]}
"#,
        );
        let p = wait_for(&h, "Ready condition", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .await;
        assert!(ready(&p, "web") && ready(&p, "sidecar"));
        let p = stop(&h, Duration::from_millis(200)).await;
        let ready_now = p
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready_now.status, "False", "a stopped pod is not ready");
    }
}

mod probes {
    use super::*;

    fn pod_dir(h: &PodHandle) -> std::path::PathBuf {
        let pod = h.status().borrow().clone();
        let m = &pod.metadata;
        capstan_runtime::runtime::pod_dir(
            &runtime().config().data_dir,
            m.namespace.as_deref().unwrap_or("default"),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default(),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_liveness_probe_restarts_the_container() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: random-generator
    image: k8spatterns/random-generator:1.0
    ports: [{containerPort: 8080, name: http}]
    livenessProbe:
      httpGet: {path: /actuator/health, port: http}
      initialDelaySeconds: 1
      periodSeconds: 1
      timeoutSeconds: 10
      failureThreshold: 1
"#,
        );
        let p = wait_for(&h, "ready", |p| ready(p, "random-generator")).await;
        let before = restarts(&p, "random-generator");
        assert_eq!(get(&h, 8080, "/toggle-live").await.0, 200);
        wait_for(&h, "restarted", |p| restarts(p, "random-generator") == before + 1).await;
        assert!(
            log(&h, "random-generator").contains("Liveness probe failed: HTTP probe failed with statuscode: 503"),
            "{}",
            log(&h, "random-generator")
        );
        wait_for(&h, "ready again", |p| ready(p, "random-generator")).await;
        assert_eq!(
            get(&h, 8080, "/actuator/health").await.0,
            200,
            "the restart brought it back to life"
        );
        stop(&h, Duration::from_secs(2)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn readiness_follows_the_probe_without_restarts() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: readiness}
spec:
  containers:
  - name: random-generator
    image: k8spatterns/random-generator:1.0
    readinessProbe:
      exec: {command: ["stat", "/tmp/random-generator-ready"]}
      periodSeconds: 1
      timeoutSeconds: 10
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "random-generator")).await;
        assert_eq!(get(&h, 8080, "/toggle-ready").await.0, 200);
        wait_for(&h, "not ready", |p| !ready(p, "random-generator")).await;
        assert_eq!(get(&h, 8080, "/toggle-ready").await.0, 200);
        let p = wait_for(&h, "ready again", |p| ready(p, "random-generator")).await;
        assert_eq!(restarts(&p, "random-generator"), 0, "readiness never restarts");
        stop(&h, Duration::from_secs(2)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_probe_that_hangs_times_out() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: hanging-probe}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "while true; do sleep 1; done"]
    livenessProbe:
      exec: {command: ["sleep", "30"]}
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 1
"#,
        );
        wait_for(&h, "restarted", |p| restarts(p, "main") >= 1).await;
        assert!(log(&h, "main").contains("timed out"), "{}", log(&h, "main"));
        stop(&h, Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_startup_probe_gates_readiness() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: startup-probe}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "sleep 2; touch /tmp/started; while true; do sleep 1; done"]
    startupProbe:
      exec: {command: ["test", "-e", "/tmp/started"]}
      periodSeconds: 1
      timeoutSeconds: 10
      failureThreshold: 30
"#,
        );
        let p = wait_for(&h, "Running", |p| phase(p) == "Running").await;
        assert!(!ready(&p, "main"));
        let begun = std::time::Instant::now();
        wait_for(&h, "ready after startup", |p| ready(p, "main")).await;
        assert!(begun.elapsed() >= Duration::from_millis(500));
        stop(&h, Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn post_start_runs_before_the_container_counts_as_started() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: post-start}
spec:
  containers:
  - name: random-generator
    image: k8spatterns/random-generator:1.0
    env: [{name: WAIT_FOR_POST_START, value: "true"}]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "sleep 1 && echo 'Wake up!' > /tmp/postStart_done"]}
"#,
        );
        let early = wait_for(&h, "pending", |p| phase(p) == "Pending").await;
        assert!(waiting(&early, "random-generator").is_some());
        wait_for(&h, "ready", |p| ready(p, "random-generator")).await;
        stop(&h, Duration::from_secs(2)).await;

        let failing = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: post-start-fails}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\"]\n    lifecycle: {postStart: {exec: {command: [\"false\"]}}}\n",
        );
        let p = wait_for(&failing, "Failed", |p| phase(p) == "Failed").await;
        assert!(
            terminated(&p, "main")
                .unwrap()
                .message
                .as_deref()
                .unwrap()
                .contains("FailedPostStartHook")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pre_stop_runs_before_the_stop_signal() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: pre-stop}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: random-generator
    image: k8spatterns/random-generator:1.0
    lifecycle:
      preStop:
        httpGet: {port: 8080, path: /shutdown}
  - name: recorder
    image: busybox
    command: ["sh", "-c", "while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo stopping > /data/pre-stop"]}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "random-generator")).await;
        let p = stop(&h, Duration::from_secs(10)).await;
        // /shutdown made the guest exit 0 on its own, before any kill.
        assert_eq!(terminated(&p, "random-generator").unwrap().exit_code, 0);
        let recorded = std::fs::read_to_string(pod_dir(&h).join("volumes/data/pre-stop")).unwrap();
        assert_eq!(recorded, "stopping\n");
    }
}

mod outgoing {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_ambassador_gets_one_post_per_request_over_localhost() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: ambassador}
spec:
  containers:
  - name: main
    image: k8spatterns/random-generator:1.0
    env: [{name: LOG_URL, value: "http://localhost:9009"}]
    ports: [{containerPort: 8080}]
  - name: ambassador
    image: k8spatterns/random-generator-log-ambassador
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "main") && ready(p, "ambassador")).await;
        for _ in 0..3 {
            assert_eq!(get(&h, 8080, "/").await.0, 200);
        }
        let l = log(&h, "ambassador");
        assert_eq!(l.lines().filter(|l| l.starts_with("LOG {")).count(), 3, "{l}");
        stop(&h, Duration::from_secs(2)).await;
    }

    /// Records that it was woken, for a thread that waits for that.
    #[derive(Default)]
    struct Woken {
        woken: std::sync::Mutex<bool>,
        cond: std::sync::Condvar,
    }

    impl std::task::Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            *self.woken.lock().unwrap() = true;
            self.cond.notify_all();
        }
    }

    impl Woken {
        /// Blocks the thread until woken (clearing the mark), or says it was not.
        fn wait(&self, limit: Duration) -> bool {
            let woken = self.woken.lock().unwrap();
            let (mut woken, _) = self.cond.wait_timeout_while(woken, limit, |w| !*w).unwrap();
            std::mem::take(&mut *woken)
        }
    }

    /// A request that crosses an in-process hop is answered within the caller's own
    /// task: the test polls it on a single-threaded runtime and, whenever it is
    /// pending, blocks that one thread until it is woken. Threads of their own (the
    /// guest's file reads on the blocking pool, the epoch) can still wake it; a task of
    /// the runtime, such as the one wasi-http's `handle` spawns, never could.
    #[tokio::test(flavor = "current_thread")]
    async fn a_hop_is_answered_within_the_callers_own_task() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: hop-in-one-task}
spec:
  containers:
  - name: main
    image: k8spatterns/random-generator:1.0
    env: [{name: LOG_URL, value: "http://localhost:9009"}]
  - name: ambassador
    image: k8spatterns/random-generator-log-ambassador
"#,
        );
        wait_for(&h, "ready", |p| ready(p, "main") && ready(p, "ambassador")).await;
        let server = h.network().route(8080).expect("port 8080 served");
        let woken = std::sync::Arc::new(Woken::default());
        let waker = std::task::Waker::from(woken.clone());
        for i in 0..20 {
            let req = http::Request::get("http://localhost:8080/")
                .body(Full::new(Bytes::new()))
                .unwrap();
            // Unconstrained: this loop stays inside one poll of the test's task, where
            // tokio's per-poll budget would run out and defer its wakes to the runtime.
            let mut answer = std::pin::pin!(tokio::task::unconstrained(server.handle(req)));
            let response = loop {
                match answer.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
                    std::task::Poll::Ready(response) => break response,
                    std::task::Poll::Pending => assert!(
                        woken.wait(Duration::from_secs(5)),
                        "request {i} waits for another task of the runtime"
                    ),
                }
            };
            assert_eq!(response.status(), 200);
        }
        let l = log(&h, "ambassador");
        assert_eq!(l.lines().filter(|l| l.starts_with("LOG {")).count(), 20, "{l}");
        stop(&h, Duration::from_secs(2)).await;
    }

    /// A one-request HTTP server on the host, answering 200; returns its port and
    /// whether a request arrived.
    fn host_server() -> (u16, std::sync::mpsc::Receiver<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        (port, rx)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn host_network_needs_a_grant() {
        let pod = |name: &str, port: u16, grant: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{capstan.dev/allow-hosts: {grant:?}}}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{{name: LOG_URL, value: \"http://127.0.0.1:{port}/log\"}}]\n"
            )
        };
        // Without a grant, 127.0.0.1 is the pod's own loopback: nothing reaches the host.
        let (port, arrived) = host_server();
        let denied = start(&pod("no-grant", port, ""));
        wait_for(&denied, "ready", |p| ready(p, "main")).await;
        assert_eq!(
            get(&denied, 8080, "/").await.0,
            200,
            "the request itself still succeeds"
        );
        assert!(
            arrived.recv_timeout(Duration::from_millis(500)).is_err(),
            "no host traffic without a grant"
        );
        // The POST fails inside the pod (where it fails, sending or reading, is timing).
        let failed = format!("POST to LOG_URL http://127.0.0.1:{port}/log failed");
        assert!(log(&denied, "main").contains(&failed), "{}", log(&denied, "main"));
        stop(&denied, Duration::from_secs(1)).await;
        // A host that is neither local nor granted is refused outright.
        let other = start(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: other-host}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{name: LOG_URL, value: \"http://example.com/log\"}]\n",
        );
        wait_for(&other, "ready", |p| ready(p, "main")).await;
        get(&other, 8080, "/").await;
        assert!(
            log(&other, "main").contains("POST to LOG_URL http://example.com/log failed"),
            "{}",
            log(&other, "main")
        );
        stop(&other, Duration::from_secs(1)).await;
        // With the grant, the POST reaches the host server.
        let granted = start(&pod("grant", port, &format!("127.0.0.1:{port}")));
        wait_for(&granted, "ready", |p| ready(p, "main")).await;
        get(&granted, 8080, "/").await;
        let request = arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("the granted host got the POST");
        assert!(request.starts_with("POST /log"), "{request}");
        stop(&granted, Duration::from_secs(1)).await;
    }
}

mod socket_routes {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test(flavor = "multi_thread")]
    async fn probes_and_publish_reach_a_socket_listener() {
        let h = start(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: socket-listener}
spec:
  containers:
  - name: echo
    image: capstan/tcp-echo
    args: ["7000"]
    readinessProbe:
      tcpSocket: {port: 7000}
      periodSeconds: 1
      timeoutSeconds: 10
"#,
        );
        wait_for(&h, "ready through the tcpSocket probe", |p| ready(p, "echo")).await;
        let published = capstan_runtime::publish::publish("127.0.0.1:0".parse().unwrap(), h.network(), 7000)
            .await
            .unwrap();
        let addr = published.addr;
        let echoed = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"over the host").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        assert_eq!(echoed, "over the host");
        drop(published);
        stop(&h, Duration::from_millis(200)).await;
    }
}
