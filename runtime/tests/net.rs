//! End-to-end tests of a pod's in-memory TCP network with real guests: the
//! `capstan/tcp-echo` server and the `capstan/tcp-client` client (unmodified Rust
//! `std::net` programs). One test binary sharing one `Runtime`, as `pods.rs` does.

mod support;

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::ContainerStateTerminated;
use capstan_runtime::net::NetError;
use capstan_runtime::{PodHandle, RuntimeConfig};
use support::{DEADLINE, log, start, stop, terminated, wait_for, wait_log};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shared runtime's configuration (`support::runtime`).
fn runtime_config() -> RuntimeConfig {
    RuntimeConfig::new(std::env::temp_dir().join(format!("capstan-net-tests-{}", std::process::id())))
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

async fn wait_exit(h: &PodHandle, name: &str) -> ContainerStateTerminated {
    let p = wait_for(h, &format!("{name} to exit"), |p| terminated(p, name).is_some()).await;
    terminated(&p, name).cloned().expect("terminated")
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
    stop(&h, Duration::from_secs(1)).await;
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
    stop(&server, Duration::from_secs(1)).await;
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
    stop(&h, Duration::from_secs(1)).await;
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
    stop(&h, Duration::from_secs(1)).await;
}

/// `localhost` is 127.0.0.1 and ::1, and a client tries them in turn. A listener on
/// 127.0.0.1 must refuse the ::1 attempt (as Linux does); when it took it into a
/// queue no IPv4 socket reads, the client got an empty echo, at random. Many pods
/// at once make the race show.
#[tokio::test(flavor = "multi_thread")]
async fn clients_of_localhost_always_reach_an_ipv4_listener() {
    let pods: Vec<_> = (0..40)
        .map(|i| {
            start(&pod(
                &format!("localhost-{i}"),
                &[
                    ("server", "capstan/tcp-echo", &["7000"]),
                    ("client", "capstan/tcp-client", &["localhost", "7000", "hello"]),
                ],
            ))
        })
        .collect();
    for h in &pods {
        let t = wait_exit(h, "client").await;
        let l = log(h, "client");
        assert!(
            t.exit_code == 0 && l.contains("echoed: hello"),
            "client log:\n{l}\nserver log:\n{}",
            log(h, "server")
        );
    }
    for h in &pods {
        stop(h, Duration::from_millis(100)).await;
    }
}

/// The pod's IP, once its status has one.
async fn pod_ip(h: &PodHandle) -> String {
    let p = wait_for(h, "a pod IP", |p| {
        p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()
    })
    .await;
    p.status.and_then(|s| s.pod_ip).expect("pod IP")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_reaches_another_pods_listener_by_pod_ip() {
    let port = free_host_port();
    let p = port.to_string();
    let server = start(&pod(
        "net-peer-server",
        &[("server", "capstan/tcp-echo", &[&p, "0.0.0.0"])],
    ));
    wait_log(&server, "server", &format!("listening on {port}")).await;
    let server_ip = pod_ip(&server).await;
    let client = start(&pod(
        "net-peer-client",
        &[("client", "capstan/tcp-client", &[&server_ip, &p, "across pods"])],
    ));
    let client_ip = pod_ip(&client).await;
    assert_ne!(client_ip, server_ip);
    let t = wait_exit(&client, "client").await;
    let l = log(&client, "client");
    assert!(
        t.exit_code == 0 && l.contains("echoed: across pods"),
        "client log:\n{l}\nserver log:\n{}",
        log(&server, "server")
    );
    // The server saw the client pod's address, as over a pod network.
    wait_log(&server, "server", &format!("echoed 11 bytes to {client_ip}:")).await;
    assert_no_host_listener(port);
    stop(&server, Duration::from_secs(1)).await;
}

/// Another pod's IP with nothing listening there refuses, as does one whose listener
/// is bound to that pod's loopback only. (tcp-client retries a refusal for 10 s.)
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_ip_without_a_reachable_listener_refuses() {
    let port = free_host_port();
    let p = port.to_string();
    let other = port.wrapping_add(1).max(1).to_string();
    let server = start(&pod("net-peer-loopback", &[("server", "capstan/tcp-echo", &[&p])]));
    wait_log(&server, "server", &format!("listening on {port}")).await;
    let server_ip = pod_ip(&server).await;
    let client = start(&pod(
        "net-peer-refused",
        &[
            ("loopback", "capstan/tcp-client", &[&server_ip, &p, "hi"]),
            ("nothing", "capstan/tcp-client", &[&server_ip, &other, "hi"]),
        ],
    ));
    for name in ["loopback", "nothing"] {
        let t = wait_exit(&client, name).await;
        let l = log(&client, name);
        assert_ne!(t.exit_code, 0, "{name} log:\n{l}");
        assert!(l.to_lowercase().contains("refused"), "{name} log:\n{l}");
        assert!(!l.contains("echoed"), "{name} log:\n{l}");
    }
    assert!(
        !log(&server, "server").contains("echoed"),
        "server log:\n{}",
        log(&server, "server")
    );
    stop(&server, Duration::from_secs(1)).await;
}
