//! Helpers shared by the integration-test binaries (`net.rs`, `pods.rs`): start a pod from
//! YAML on the binary's shared `Runtime`, wait for its status, read a container's log, stop it.
//!
//! Each test binary compiles its own copy of this module, so each has its own shared runtime
//! (one engine and compiled-code cache per binary); the binary says how to configure it by
//! defining `fn runtime_config() -> RuntimeConfig` at its root.

use std::sync::OnceLock;
use std::time::Duration;

use capstan_core::env::ConfigObjects;
use capstan_core::k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use capstan_core::manifest::{Object, parse_manifests};
use capstan_core::{defaults, validate};
use capstan_runtime::{PodHandle, Runtime};

/// How long a test waits for a condition before it fails. A `capstan/tcp-client` retries a
/// refused connection for 10 s before it gives up, so this is well above that.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The test binary's shared runtime, made from its `runtime_config()` on first use.
pub fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(crate::runtime_config()).expect("runtime"))
        .clone()
}

/// Parses, defaults and validates manifests; returns the pods and the config objects.
pub fn load(yaml: &str) -> (Vec<Pod>, ConfigObjects) {
    let objects = parse_manifests(yaml).expect("manifest parses");
    let mut pods = vec![];
    for o in &objects {
        if let Object::Pod(p) = o {
            let mut p = (**p).clone();
            defaults::default_pod(&mut p);
            let errors = validate::validate_pod(&p);
            assert!(errors.is_empty(), "invalid test pod: {errors:?}");
            pods.push(p);
        }
    }
    (pods, ConfigObjects::from_objects(&objects))
}

/// Starts the first pod of `yaml` on the shared runtime.
pub fn start(yaml: &str) -> PodHandle {
    start_on(&runtime(), yaml)
}

/// Starts the first pod of `yaml` on `rt`.
pub fn start_on(rt: &Runtime, yaml: &str) -> PodHandle {
    let (mut pods, config) = load(yaml);
    rt.start_pod(pods.remove(0), config)
}

/// Waits until `pred` holds for the pod's status, or fails with the last status.
pub async fn wait_for(h: &PodHandle, what: &str, pred: impl Fn(&Pod) -> bool) -> Pod {
    let mut rx = h.status();
    let result = tokio::time::timeout(DEADLINE, rx.wait_for(|p| pred(p))).await;
    match result {
        Ok(Ok(p)) => p.clone(),
        _ => panic!(
            "timed out waiting for {what}; last status: {:#?}",
            h.status().borrow().status
        ),
    }
}

/// The status of container `name` (app or init container).
pub fn container<'a>(p: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let s = p.status.as_ref()?;
    s.container_statuses
        .iter()
        .flatten()
        .chain(s.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

/// Container `name`'s terminated state, once it has one.
pub fn terminated<'a>(p: &'a Pod, name: &str) -> Option<&'a ContainerStateTerminated> {
    container(p, name)?.state.as_ref()?.terminated.as_ref()
}

/// The container's log so far.
pub fn log(h: &PodHandle, container: &str) -> String {
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

/// Waits until the container's log contains `text`.
pub async fn wait_log(h: &PodHandle, container: &str, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let l = log(h, container);
        if l.contains(text) {
            return l;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "log of {container} never contained {text:?}; log:\n{l}\nstatus: {:#?}",
                h.status().borrow().status
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks the pod to stop with `grace`, waits until it has, and returns its final status.
pub async fn stop(h: &PodHandle, grace: Duration) -> Pod {
    h.stop(Some(grace));
    tokio::time::timeout(DEADLINE, h.wait()).await.expect("pod stops")
}
