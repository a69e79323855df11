//! End-to-end tests of a pod's in-memory TCP network with real guests: the
//! `capstan/tcp-echo` server and the `capstan/tcp-client` client (unmodified Rust
//! `std::net` programs). One test binary sharing one `Runtime`, as `pods.rs` does.

use std::sync::OnceLock;
use std::time::Duration;

use capstan_core::env::ConfigObjects;
use capstan_core::k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use capstan_core::manifest::{Object, parse_manifests};
use capstan_core::{defaults, validate};
use capstan_runtime::net::NetError;
use capstan_runtime::{PodHandle, Runtime, RuntimeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for a condition before it fails. The client retries a
/// refused connection for 10 s before it gives up, so this is well above that.
const DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("capstan-net-tests-{}", std::process::id()));
        Runtime::new(RuntimeConfig::new(dir)).expect("runtime")
    })
    .clone()
}

fn start(yaml: &str) -> PodHandle {
    let objects = parse_manifests(yaml).expect("manifest parses");
    let Some(Object::Pod(p)) = objects.first() else {
        panic!("not a pod")
    };
    let mut pod = (**p).clone();
    defaults::default_pod(&mut pod);
    let errors = validate::validate_pod(&pod);
    assert!(errors.is_empty(), "invalid test pod: {errors:?}");
    runtime().start_pod(pod, ConfigObjects::from_objects(&objects))
}

/// A pod (restartPolicy Never) of `(container, image, args)`.
fn pod(name: &str, containers: &[(&str, &str, &[&str])]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n"
    );
    for (c, image, args) in containers {
        yaml.push_str(&format!("  - name: {c}\n    image: {image}\n    args: {args:?}\n"));
    }
    yaml
}

/// A TCP port free on the host right now, so a guest listening on it would show
/// up on the host if the network leaked.
fn free_host_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a host port");
    l.local_addr().unwrap().port()
}

fn assert_no_host_listener(port: u16) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let r = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(
        r.is_err(),
        "something listens on host port {port}: the pod's network leaked"
    );
}

async fn wait_for(h: &PodHandle, what: &str, pred: impl Fn(&Pod) -> bool) -> Pod {
    let mut rx = h.status();
    match tokio::time::timeout(DEADLINE, rx.wait_for(|p| pred(p))).await {
        Ok(Ok(p)) => p.clone(),
        _ => panic!(
            "timed out waiting for {what}; last status: {:#?}",
            h.status().borrow().status
        ),
    }
}

fn terminated(p: &Pod, name: &str) -> Option<ContainerStateTerminated> {
    let s = p.status.as_ref()?;
    let c = s.container_statuses.iter().flatten().find(|c| c.name == name)?;
    c.state.as_ref()?.terminated.clone()
}

async fn wait_exit(h: &PodHandle, name: &str) -> ContainerStateTerminated {
    let p = wait_for(h, &format!("{name} to exit"), |p| terminated(p, name).is_some()).await;
    terminated(&p, name).expect("terminated")
}

fn log(h: &PodHandle, container: &str) -> String {
    let pod = h.status().borrow().clone();
    let m = &pod.metadata;
    let dir = capstan_runtime::runtime::pod_dir(
        &runtime().config().data_dir,
        m.namespace.as_deref().unwrap_or("default"),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default(),
    );
    std::fs::read_to_string(dir.join("containers").join(container).join("current.log")).unwrap_or_default()
}

async fn wait_log(h: &PodHandle, container: &str, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let l = log(h, container);
        if l.contains(text) {
            return l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "log of {container} never contained {text:?}; log:\n{l}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop(h: &PodHandle) {
    h.stop(Some(Duration::from_secs(1)));
    tokio::time::timeout(DEADLINE, h.wait()).await.expect("pod stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_of_a_pod_talk_over_localhost_without_a_host_socket() {
    let port = free_host_port();
    let p = port.to_string();
    let h = start(&pod(
        "net-echo",
        &[
            ("server", "capstan/tcp-echo", &[&p]),
            ("client", "capstan/tcp-client", &["localhost", &p, "hello"]),
        ],
    ));
    wait_log(&h, "server", &format!("listening on {port}")).await;
    assert_no_host_listener(port);
    let t = wait_exit(&h, "client").await;
    assert_eq!(t.exit_code, 0, "client log:\n{}", log(&h, "client"));
    assert!(
        log(&h, "client").contains("echoed: hello"),
        "client log:\n{}",
        log(&h, "client")
    );
    stop(&h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_pod_cannot_reach_the_port() {
    let port = free_host_port();
    let p = port.to_string();
    let server = start(&pod("net-isolated-server", &[("server", "capstan/tcp-echo", &[&p])]));
    wait_log(&server, "server", &format!("listening on {port}")).await;
    assert!(server.net().is_listening(port));
    let client = start(&pod(
        "net-isolated-client",
        &[("client", "capstan/tcp-client", &["127.0.0.1", &p, "hi"])],
    ));
    let t = wait_exit(&client, "client").await;
    assert_ne!(t.exit_code, 0);
    let l = log(&client, "client");
    assert!(l.to_lowercase().contains("refused"), "client log:\n{l}");
    assert!(!l.contains("echoed"), "client log:\n{l}");
    stop(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_bind_of_a_port_fails_with_address_in_use() {
    let p = free_host_port().to_string();
    let h = start(&pod(
        "net-twice",
        &[("one", "capstan/tcp-echo", &[&p]), ("two", "capstan/tcp-echo", &[&p])],
    ));
    let pod = wait_for(&h, "one server to exit", |p| {
        terminated(p, "one").is_some() || terminated(p, "two").is_some()
    })
    .await;
    let (lost, won) = if terminated(&pod, "one").is_some() {
        ("one", "two")
    } else {
        ("two", "one")
    };
    assert_ne!(terminated(&pod, lost).unwrap().exit_code, 0);
    let l = log(&h, lost);
    assert!(l.to_lowercase().contains("in use"), "log of {lost}:\n{l}");
    wait_log(&h, won, &format!("listening on {p}")).await;
    stop(&h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_outside_the_pod_is_denied() {
    // A public address (example.com's old one): Capstan must refuse it before any
    // packet could leave, so the test needs no network and sends nothing.
    let h = start(&pod(
        "net-denied",
        &[("client", "capstan/tcp-client", &["93.184.216.34", "80", "hi"])],
    ));
    let t = wait_exit(&h, "client").await;
    assert_ne!(t.exit_code, 0);
    let l = log(&h, "client");
    assert!(l.to_lowercase().contains("denied"), "client log:\n{l}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_reaches_a_guest_listener_through_pod_net() {
    let port = free_host_port();
    let h = start(&pod(
        "net-host",
        &[("server", "capstan/tcp-echo", &[&port.to_string()])],
    ));
    wait_log(&h, "server", &format!("listening on {port}")).await;
    let net = h.net();
    assert!(net.is_listening(port));
    assert!(!net.is_listening(port.wrapping_add(1)));
    assert!(matches!(
        net.connect(port.wrapping_add(1)).await,
        Err(NetError::ConnectionRefused)
    ));

    let mut conn = net.connect(port).await.expect("connect to the guest");
    let message = vec![b'x'; 200_000]; // more than one pipe's capacity: backpressure both ways
    let (mut rd, mut wr) = tokio::io::split(&mut conn);
    let write = async {
        wr.write_all(&message).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = rd.read_to_end(&mut back);
    let ((), n) = tokio::time::timeout(DEADLINE, async { tokio::join!(write, read) })
        .await
        .expect("echo in time");
    assert_eq!(n.unwrap(), message.len());
    assert!(back == message, "the echo differs from what was sent");
    assert_no_host_listener(port);
    stop(&h).await;
}
