//! The pod's Kubernetes status, computed from the lifecycle: phase, conditions,
//! container statuses with their states, restarts and last terminations. Pure.

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodIP, PodStatus,
};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::lifecycle::{PodLifecycle, Stage, State, Track};

/// Facts about a running pod that its status reports.
#[derive(Clone, Debug)]
pub struct PodRunInfo {
    pub pod_ip: String,
    pub host_ip: String,
    pub started: Timestamp,
    pub qos_class: String,
}

/// The wall clock as a Kubernetes timestamp (k8s-openapi's jiff has no clock).
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn at(start: Timestamp, offset: Duration) -> Time {
    Time(
        start
            .checked_add(SignedDuration::try_from(offset).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(start),
    )
}

fn state(s: &State, start: Timestamp) -> ContainerState {
    match s {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: (!message.is_empty()).then(|| message.clone()),
            }),
            ..Default::default()
        },
        State::Running { since } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(at(start, *since)),
            }),
            ..Default::default()
        },
        State::Terminated {
            exit,
            started,
            finished,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: exit.code,
                reason: Some(exit.reason.clone()),
                message: (!exit.message.is_empty()).then(|| exit.message.clone()),
                started_at: Some(at(start, *started)),
                finished_at: Some(at(start, *finished)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn container_status(t: &Track, pod: &Pod, info: &PodRunInfo, init: bool) -> ContainerStatus {
    let spec = pod.spec.as_ref();
    let list = if init {
        spec.and_then(|s| s.init_containers.as_ref())
    } else {
        spec.map(|s| &s.containers)
    };
    let spec_c = list.and_then(|l| l.iter().find(|c| c.name == t.name));
    let image = spec_c.and_then(|c| c.image.clone()).unwrap_or_default();
    let resources = spec_c.and_then(|c| c.resources.as_ref());
    let image_id = t.image_id.clone();
    let running = matches!(t.state, State::Running { .. });
    ContainerStatus {
        name: t.name.clone(),
        image,
        container_id: (!image_id.is_empty()).then(|| format!("wasm://{}", image_id.trim_start_matches("sha256:"))),
        image_id,
        ready: t.ready,
        started: Some(running),
        restart_count: t.restarts as i32,
        allocated_resources: resources.and_then(|r| r.requests.clone()),
        resources: resources.cloned(),
        state: Some(state(&t.state, info.started)),
        last_state: t.last.as_ref().map(|l| state(l, info.started)),
        ..Default::default()
    }
}

fn condition(kind: &str, ok: bool, reason: Option<&str>) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: (!ok)
            .then(|| reason.unwrap_or_default().to_string())
            .filter(|r| !r.is_empty()),
        ..Default::default()
    }
}

/// The status the pod reports now.
pub fn pod_status(lc: &PodLifecycle, pod: &Pod, info: &PodRunInfo) -> PodStatus {
    let initialized = !matches!(lc.stage, Stage::Initializing { .. });
    let ready = initialized
        && lc.apps.iter().all(|t| t.ready)
        && !matches!(lc.stage, Stage::Terminating { .. } | Stage::Finished);
    let not_ready = if initialized {
        "ContainersNotReady"
    } else {
        "ContainersNotInitialized"
    };
    PodStatus {
        phase: Some(lc.phase().to_string()),
        conditions: Some(vec![
            condition("PodScheduled", true, None),
            condition("Initialized", initialized, Some("ContainersNotInitialized")),
            condition("ContainersReady", ready, Some(not_ready)),
            condition("Ready", ready, Some(not_ready)),
        ]),
        host_ip: Some(info.host_ip.clone()),
        pod_ip: Some(info.pod_ip.clone()),
        pod_ips: Some(vec![PodIP {
            ip: info.pod_ip.clone(),
        }]),
        start_time: Some(Time(info.started)),
        qos_class: Some(info.qos_class.clone()),
        reason: lc.evicted.as_ref().map(|_| "Evicted".to_string()),
        message: lc.evicted.clone(),
        init_container_statuses: (!lc.init.is_empty())
            .then(|| lc.init.iter().map(|t| container_status(t, pod, info, true)).collect()),
        container_statuses: Some(lc.apps.iter().map(|t| container_status(t, pod, info, false)).collect()),
        ..Default::default()
    }
}
