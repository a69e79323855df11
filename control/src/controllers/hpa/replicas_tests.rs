//! The replica calculator as tables: pods (phase, readiness, request), per-pod values and a
//! target → the proposal, or the error. Cases follow `replica_calculator_test.go`.

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000;

fn at(secs_ago: i64) -> Timestamp {
    Timestamp::from_second(NOW - secs_ago).unwrap()
}

/// A pod's state in a case.
#[derive(Clone, Copy)]
enum State {
    /// Running and ready since long ago.
    Ready,
    /// Running, never ready since it started 10 minutes ago.
    NeverReady,
    /// Running, ready for 2 s, started 20 s ago (inside the CPU initialization period).
    JustReady,
    Pending,
    Deleting,
    Failed,
}

fn pod(i: usize, state: State, cpu_request: Option<&str>) -> Pod {
    let (phase, ready, started, changed) = match state {
        State::Ready => ("Running", "True", 3600, 3500),
        State::NeverReady => ("Running", "False", 600, 599),
        State::JustReady => ("Running", "True", 20, 2),
        State::Pending => ("Pending", "False", 5, 5),
        State::Deleting => ("Running", "True", 3600, 3500),
        State::Failed => ("Failed", "False", 3600, 3500),
    };
    let resources = match cpu_request {
        Some(r) => json!({"requests": {"cpu": r}}),
        None => json!({}),
    };
    let mut value = json!({
        "metadata": {"name": format!("p{i}"), "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]},
        "status": {"phase": phase, "startTime": at(started).to_string(),
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": at(changed).to_string()}]},
    });
    if matches!(state, State::Deleting) {
        value["metadata"]["deletionTimestamp"] = json!(at(1).to_string());
    }
    serde_json::from_value(value).unwrap()
}

/// Values for the first pods, in order; `None` leaves a pod without one.
fn metrics(values: &[Option<i64>]) -> PodMetrics {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|value| {
                (
                    format!("p{i}"),
                    PodMetric {
                        value,
                        timestamp: at(0),
                        window: Duration::from_secs(5),
                    },
                )
            })
        })
        .collect()
}

fn context(pods: &[Pod], current: i32) -> Context<'_> {
    Context {
        current,
        pods,
        tolerances: Tolerances { down: 0.1, up: 0.1 },
        readiness: Readiness {
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        },
        now: at(0),
    }
}

struct Case {
    name: &'static str,
    states: &'static [State],
    values: &'static [Option<i64>],
    /// Utilization percent of a 1-core request, or an average value (milli).
    target: Target,
    want: Result<Proposal, CalcError>,
}

enum Target {
    CpuUtilization(i32),
    Average(i64),
}

fn proposal(replicas: i32, average: i64, utilization: Option<i32>) -> Result<Proposal, CalcError> {
    Ok(Proposal {
        replicas,
        average,
        utilization,
    })
}

use State::*;

#[test]
fn replica_counts() {
    let cases = [
        Case {
            name: "scale up: 50% of requests against 30%",
            states: &[Ready, Ready, Ready],
            values: &[Some(300), Some(500), Some(700)],
            target: Target::CpuUtilization(30),
            want: proposal(5, 500, Some(50)),
        },
        Case {
            name: "scale up with an unready pod counted at 0",
            states: &[NeverReady, Ready, Ready],
            values: &[Some(300), Some(500), Some(700)],
            target: Target::CpuUtilization(30),
            want: proposal(4, 600, Some(60)),
        },
        Case {
            name: "a sample from before readiness is doubted during CPU initialization",
            states: &[JustReady, Ready, Ready],
            values: &[Some(300), Some(500), Some(700)],
            target: Target::CpuUtilization(30),
            want: proposal(4, 600, Some(60)),
        },
        Case {
            name: "scale down",
            states: &[Ready, Ready, Ready, Ready, Ready],
            values: &[Some(100), Some(300), Some(500), Some(250), Some(250)],
            target: Target::CpuUtilization(50),
            want: proposal(3, 280, Some(28)),
        },
        Case {
            name: "within tolerance: no change",
            states: &[Ready, Ready, Ready],
            values: &[Some(1050), Some(1000), Some(1000)],
            target: Target::CpuUtilization(100),
            want: proposal(3, 1016, Some(101)),
        },
        Case {
            name: "a missing pod counts as 100% on a scale-down, which holds it",
            states: &[Ready, Ready],
            values: &[Some(400), None],
            target: Target::CpuUtilization(100),
            want: proposal(2, 400, Some(40)),
        },
        Case {
            name: "a missing pod counts as 0 on a scale-up",
            states: &[Ready, Ready, Ready],
            values: &[Some(900), Some(900), None],
            target: Target::CpuUtilization(50),
            // 90% measured (1.8×); with the missing pod at 0: 60% (1.2×) over 3 pods → 4.
            want: proposal(4, 900, Some(90)),
        },
        Case {
            name: "deleting and failed pods are ignored",
            states: &[Ready, Deleting, Failed],
            values: &[Some(1000), Some(5000), Some(5000)],
            target: Target::CpuUtilization(50),
            want: proposal(2, 1000, Some(100)),
        },
        Case {
            name: "only unready pods have values",
            states: &[Pending, NeverReady],
            values: &[Some(100), Some(100)],
            target: Target::CpuUtilization(50),
            want: Err(CalcError::NoReadyMetrics),
        },
        Case {
            name: "no pods",
            states: &[],
            values: &[],
            target: Target::CpuUtilization(50),
            want: Err(CalcError::NoPods),
        },
        Case {
            name: "average value: scale up",
            states: &[Ready, Ready, Ready],
            values: &[Some(20_000), Some(10_000), Some(30_000)],
            target: Target::Average(15_000),
            want: proposal(4, 20_000, None),
        },
        Case {
            name: "average value: within tolerance",
            states: &[Ready, Ready, Ready],
            values: &[Some(20_000), Some(21_000), Some(21_000)],
            target: Target::Average(20_000),
            want: proposal(3, 20_666, None),
        },
        Case {
            name: "average value: readiness does not matter outside CPU",
            states: &[NeverReady, Ready],
            values: &[Some(10_000), Some(10_000)],
            target: Target::Average(5_000),
            want: proposal(4, 10_000, None),
        },
        Case {
            name: "average value: a pending pod counts at 0 on a scale-up",
            states: &[Ready, Ready, Pending],
            values: &[Some(30_000), Some(30_000)],
            target: Target::Average(10_000),
            // 3× measured; with the pending pod at 0: 2× over 3 pods → 6.
            want: proposal(6, 30_000, None),
        },
        Case {
            name: "average value: a missing pod counts at the target on a scale-down",
            states: &[Ready, Ready, Ready, Ready],
            values: &[Some(1_000), Some(1_000), Some(1_000)],
            target: Target::Average(10_000),
            // 0.1× measured; with the missing pod at the target: 13000/4 = 3250 → 0.325 × 4 → 2.
            want: proposal(2, 1_000, None),
        },
        Case {
            name: "average value: idle pods go to the least count",
            states: &[Ready, Ready, Ready],
            values: &[Some(0), Some(0), Some(0)],
            target: Target::Average(10_000),
            want: proposal(0, 0, None),
        },
    ];
    for case in cases {
        let pods: Vec<Pod> = case
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| pod(i, *s, Some("1")))
            .collect();
        let cx = context(&pods, pods.len() as i32);
        let got = match case.target {
            Target::CpuUtilization(t) => utilization_replicas(&cx, metrics(case.values), "cpu", t),
            Target::Average(t) => average_value_replicas(&cx, metrics(case.values), "", t),
        };
        assert_eq!(got, case.want, "{}", case.name);
    }
}

#[test]
fn utilization_needs_every_request() {
    let pods = vec![pod(0, Ready, Some("500m")), pod(1, Ready, None)];
    let got = utilization_replicas(&context(&pods, 2), metrics(&[Some(1), Some(1)]), "cpu", 50);
    assert_eq!(
        got.unwrap_err().to_string(),
        "missing request for cpu in container c of Pod p1"
    );
}
