//! `reconcile` as tables: an HPA, its target's scale, pods and metric values, and history →
//! the rescale, the conditions, the events and the status.

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::normalize::Recommendation;
use super::*;

const NOW: i64 = 1_700_000_000;

fn ago(secs: i64) -> Timestamp {
    Timestamp::from_second(NOW - secs).unwrap()
}

fn hpa(spec: Value) -> HorizontalPodAutoscaler {
    let mut base =
        json!({"maxReplicas": 10, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}});
    if let (Value::Object(b), Value::Object(extra)) = (&mut base, spec) {
        b.extend(extra);
    }
    let mut h: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u"},
        "spec": base,
    }))
    .unwrap();
    default_hpa(&mut h);
    h
}

fn rps(target: &str) -> Value {
    json!([{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": target}}}])
}

/// `n` running, ready pods requesting half a core each.
fn pods(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("web-{i}"), "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "capstan/hello-http", "resources": {"requests": {"cpu": "500m"}}}]},
                "status": {"phase": "Running", "startTime": ago(3600).to_string(),
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(3500).to_string()}]},
            }))
            .unwrap()
        })
        .collect()
}

/// Every pod with `rps` requests per second and `cpu` millicores.
fn metrics(pods: &[Pod], rps_milli: i64, cpu: i64) -> BTreeMap<String, PodMetricValues> {
    pods.iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                PodMetricValues {
                    cpu_millicores: cpu,
                    memory_bytes: 1 << 20,
                    requests_per_second_milli: rps_milli,
                    concurrency_milli: 0,
                    timestamp: ago(1),
                    window: Duration::from_secs(10),
                },
            )
        })
        .collect()
}

struct Case {
    name: &'static str,
    hpa: HorizontalPodAutoscaler,
    /// The target's replicas; `None`: its scale could not be read.
    replicas: Option<i32>,
    pods: usize,
    /// Per pod: milli-requests per second and millicores; `None`: no values at all.
    values: Option<(i64, i64)>,
    history: History,
    want_rescale: Option<(i32, &'static str)>,
    want_conditions: &'static [(&'static str, &'static str, &'static str)],
    want_events: &'static [&'static str],
}

fn run(case: &Case) -> Plan {
    let pods = pods(case.pods);
    let values = case.values.map_or_else(BTreeMap::new, |(r, c)| metrics(&pods, r, c));
    let scale = match case.replicas {
        Some(replicas) => Ok(Scale {
            replicas,
            selector: "app=web".into(),
        }),
        None => Err("deployments.apps \"web\" not found".into()),
    };
    reconcile(&Snapshot {
        hpa: &case.hpa,
        scale,
        pods: &pods,
        metrics: &values,
        objects: &ObjectValues::new(),
        history: &case.history,
        now: ago(0),
        config: &Config::default(),
    })
}

fn conditions(status: &HorizontalPodAutoscalerStatus) -> Vec<(String, String, String)> {
    status
        .conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone().unwrap_or_default()))
        .collect()
}

fn recent(replicas: i32, secs_ago: i64) -> History {
    History {
        recommendations: vec![Recommendation {
            at: ago(secs_ago),
            replicas,
        }],
        ..Default::default()
    }
}

#[test]
fn syncs() {
    let quick_down = json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
    let cases = [
        Case {
            name: "the target can not be read",
            hpa: hpa(json!({"metrics": rps("10")})),
            replicas: None,
            pods: 0,
            values: None,
            history: History::default(),
            want_rescale: None,
            want_conditions: &[("AbleToScale", "False", "FailedGetScale")],
            want_events: &["FailedGetScale"],
        },
        Case {
            name: "three times the target: up, at most to 4 without behavior",
            hpa: hpa(json!({"metrics": rps("10")})),
            replicas: Some(2),
            pods: 2,
            values: Some((30_000, 100)),
            history: History::default(),
            want_rescale: Some((4, "pods metric requests_per_second above target")),
            want_conditions: &[
                ("AbleToScale", "True", "SucceededRescale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "True", "ScaleUpLimit"),
            ],
            want_events: &[],
        },
        Case {
            name: "the default metric: 80% of the CPU request",
            hpa: hpa(json!({})),
            replicas: Some(2),
            pods: 2,
            values: Some((0, 600)),
            history: History::default(),
            // 120% of 500m against 80%: ceil(1.5 × 2).
            want_rescale: Some((3, "cpu resource utilization (percentage of request) above target")),
            want_conditions: &[
                ("AbleToScale", "True", "SucceededRescale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "False", "DesiredWithinRange"),
            ],
            want_events: &[],
        },
        Case {
            name: "within tolerance: nothing to do",
            hpa: hpa(json!({"metrics": rps("10")})),
            replicas: Some(3),
            pods: 3,
            values: Some((10_500, 100)),
            history: History::default(),
            want_rescale: None,
            want_conditions: &[
                ("AbleToScale", "True", "ReadyForNewScale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "False", "DesiredWithinRange"),
            ],
            want_events: &[],
        },
        Case {
            name: "idle with a 0 s scale-down window: down to minReplicas",
            hpa: hpa(json!({"metrics": rps("10"), "minReplicas": 2, "behavior": quick_down.clone()})),
            replicas: Some(5),
            pods: 5,
            values: Some((0, 0)),
            history: History::default(),
            want_rescale: Some((2, "All metrics below target")),
            want_conditions: &[
                ("AbleToScale", "True", "SucceededRescale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "True", "TooFewReplicas"),
            ],
            want_events: &[],
        },
        Case {
            name: "minReplicas 0: never fewer than 1 while the target runs",
            hpa: hpa(json!({"metrics": rps("10"), "minReplicas": 0, "behavior": quick_down.clone()})),
            replicas: Some(3),
            pods: 3,
            values: Some((0, 0)),
            history: History::default(),
            want_rescale: Some((1, "All metrics below target")),
            want_conditions: &[
                ("AbleToScale", "True", "SucceededRescale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "True", "TooFewReplicas"),
            ],
            want_events: &[],
        },
        Case {
            name: "a target at zero is the idle controller's: left alone",
            hpa: hpa(json!({"metrics": rps("10"), "minReplicas": 0})),
            replicas: Some(0),
            pods: 0,
            values: None,
            history: recent(5, 10),
            want_rescale: None,
            want_conditions: &[
                ("AbleToScale", "True", "SucceededGetScale"),
                ("ScalingActive", "False", "ScalingDisabled"),
            ],
            want_events: &[],
        },
        Case {
            name: "above maxReplicas: down to it whatever the metrics",
            hpa: hpa(json!({"metrics": rps("10"), "maxReplicas": 4})),
            replicas: Some(6),
            pods: 6,
            values: None,
            history: History::default(),
            want_rescale: Some((4, "Current number of replicas above Spec.MaxReplicas")),
            want_conditions: &[("AbleToScale", "True", "SucceededRescale")],
            want_events: &[],
        },
        Case {
            name: "no pod has a value yet",
            hpa: hpa(json!({"metrics": rps("10")})),
            replicas: Some(2),
            pods: 2,
            values: None,
            history: History::default(),
            want_rescale: None,
            want_conditions: &[
                ("AbleToScale", "True", "SucceededGetScale"),
                ("ScalingActive", "False", "FailedGetPodsMetric"),
            ],
            want_events: &["FailedGetPodsMetric", "FailedComputeMetricsReplicas"],
        },
        Case {
            name: "a metric with no source does not stop a scale-up from another",
            hpa: hpa(json!({"metrics": [
                {"type": "Object", "object": {"metric": {"name": "queue"}, "describedObject": {"kind": "Service", "name": "q"},
                    "target": {"type": "Value", "value": "5"}}},
                rps("10")[0].clone()]})),
            replicas: Some(2),
            pods: 2,
            values: Some((20_000, 0)),
            history: History::default(),
            want_rescale: Some((4, "pods metric requests_per_second above target")),
            want_conditions: &[
                ("AbleToScale", "True", "SucceededRescale"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "False", "DesiredWithinRange"),
            ],
            want_events: &["FailedGetObjectMetric"],
        },
        Case {
            name: "...but does stop a scale-down",
            hpa: hpa(json!({"metrics": [
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "5"}}},
                rps("10")[0].clone()]})),
            replicas: Some(4),
            pods: 4,
            values: Some((0, 0)),
            history: History::default(),
            want_rescale: None,
            want_conditions: &[
                ("AbleToScale", "True", "SucceededGetScale"),
                ("ScalingActive", "False", "FailedGetExternalMetric"),
            ],
            want_events: &["FailedGetExternalMetric", "FailedComputeMetricsReplicas"],
        },
        Case {
            name: "without behavior, five minutes of recommendations hold a scale-down",
            hpa: hpa(json!({"metrics": rps("10")})),
            replicas: Some(4),
            pods: 4,
            values: Some((1_000, 0)),
            history: recent(4, 120),
            want_rescale: None,
            want_conditions: &[
                ("AbleToScale", "True", "ScaleDownStabilized"),
                ("ScalingActive", "True", "ValidMetricFound"),
                ("ScalingLimited", "False", "DesiredWithinRange"),
            ],
            want_events: &[],
        },
    ];
    for case in &cases {
        let plan = run(case);
        let rescale = plan.rescale.as_ref().map(|r| (r.replicas, r.reason.as_str()));
        assert_eq!(rescale, case.want_rescale, "{}", case.name);
        let want: Vec<(String, String, String)> = case
            .want_conditions
            .iter()
            .map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string()))
            .collect();
        assert_eq!(conditions(&plan.status), want, "{}", case.name);
        let events: Vec<&str> = plan.events.iter().map(|e| e.reason).collect();
        assert_eq!(events, case.want_events, "{}", case.name);
    }
}

#[test]
fn a_rescale_reports_its_metrics_and_time() {
    let case = Case {
        name: "up",
        hpa: hpa(json!({"metrics": rps("10"), "behavior": {}})),
        replicas: Some(1),
        pods: 1,
        values: Some((25_500, 0)),
        history: History::default(),
        want_rescale: None,
        want_conditions: &[],
        want_events: &[],
    };
    let plan = run(&case);
    let status = serde_json::to_value(&plan.status).unwrap();
    assert_eq!(status["currentReplicas"], 1);
    assert_eq!(status["desiredReplicas"], 3);
    assert_eq!(status["lastScaleTime"], ago(0).to_string());
    assert_eq!(
        status["currentMetrics"],
        json!([{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "current": {"averageValue": "25500m"}}}])
    );
    let rescale = plan.rescale.unwrap();
    assert_eq!(
        rescale.succeeded().message,
        "New size: 3; reason: pods metric requests_per_second above target"
    );
    // With behavior, the rescale is remembered for the policies' periods.
    assert_eq!(plan.history.scale_up_events.len(), 1);
    assert_eq!(plan.history.scale_up_events[0].change, 2);

    let (failed, history, event) = rescale.failed("the server is on fire", ago(0));
    let failed = serde_json::to_value(&failed).unwrap();
    assert_eq!(failed["desiredReplicas"], 0, "the desired count stays as it was");
    assert!(failed.get("lastScaleTime").is_none());
    assert_eq!(failed["conditions"][0]["reason"], "FailedUpdateScale");
    assert_eq!(
        failed["conditions"][0]["message"],
        "the HPA controller was unable to update the target scale: the server is on fire"
    );
    assert!(
        history.scale_up_events.is_empty(),
        "a failed rescale is not a scale event"
    );
    assert_eq!(event.reason, "FailedRescale");
}

#[test]
fn unchanged_conditions_keep_their_transition_time_and_idling_forgets_history() {
    let mut h = hpa(json!({"metrics": rps("10"), "minReplicas": 0}));
    h.status = Some(HorizontalPodAutoscalerStatus {
        conditions: Some(vec![HorizontalPodAutoscalerCondition {
            type_: "ScalingActive".into(),
            status: "False".into(),
            reason: Some("ScalingDisabled".into()),
            message: None,
            last_transition_time: Some(Time(ago(600))),
        }]),
        ..Default::default()
    });
    let case = Case {
        name: "idle",
        hpa: h,
        replicas: Some(0),
        pods: 0,
        values: None,
        history: recent(7, 10),
        want_rescale: None,
        want_conditions: &[],
        want_events: &[],
    };
    let plan = run(&case);
    let conditions = plan.status.conditions.unwrap();
    let active = conditions.iter().find(|c| c.type_ == "ScalingActive").unwrap();
    assert_eq!(active.last_transition_time, Some(Time(ago(600))));
    assert_eq!(
        active.message.as_deref(),
        Some("scaling is disabled since the replica count of the target is zero")
    );
    let able = conditions.iter().find(|c| c.type_ == "AbleToScale").unwrap();
    assert_eq!(able.last_transition_time, Some(Time(ago(0))));
    assert_eq!(plan.history, History::default());
}

#[test]
fn failed_metrics_explain_themselves() {
    let case = Case {
        name: "no values",
        hpa: hpa(json!({})),
        replicas: Some(2),
        pods: 2,
        values: None,
        history: History::default(),
        want_rescale: None,
        want_conditions: &[],
        want_events: &[],
    };
    let plan = run(&case);
    let messages: Vec<&str> = plan.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
        ]
    );
    let active = plan
        .status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "ScalingActive")
        .unwrap();
    assert_eq!(
        active.message.unwrap(),
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
    assert_eq!(plan.status.current_replicas, Some(2));
}

/// An HPA on an Object metric of Service `front`: requests per second against `target`.
fn object_hpa(target: Value) -> HorizontalPodAutoscaler {
    hpa(json!({"minReplicas": 1, "metrics": [{"type": "Object", "object": {
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "front"},
        "metric": {"name": "requests_per_second"},
        "target": target}}]}))
}

fn run_object(hpa: &HorizontalPodAutoscaler, replicas: i32, read: Result<i64, &str>) -> Plan {
    let pods = pods(replicas as usize);
    let key = ObjectKey {
        kind: "Service".into(),
        name: "front".into(),
        metric: "requests_per_second".into(),
    };
    let value = read
        .map(|value| ObjectValue {
            value,
            timestamp: ago(1),
        })
        .map_err(str::to_owned);
    let objects = ObjectValues::from([(key, value)]);
    reconcile(&Snapshot {
        hpa,
        scale: Ok(Scale {
            replicas,
            selector: "app=web".into(),
        }),
        pods: &pods,
        metrics: &BTreeMap::new(),
        objects: &objects,
        history: &History::default(),
        now: ago(0),
        config: &Config::default(),
    })
}

#[test]
fn object_metrics_scale_on_one_objects_value() {
    // Value: 300 rps against 100 with 2 ready pods → ratio 3 × 2 pods = 6 recommended, of
    // which the default scale-up policy allows 4 now (double, or 4 more, per 15 s).
    let value = object_hpa(json!({"type": "Value", "value": "100"}));
    let plan = run_object(&value, 2, Ok(300_000));
    let recommended = plan.history.recommendations.last().map(|r| r.replicas);
    assert_eq!(recommended, Some(6), "{plan:?}");
    assert_eq!(plan.rescale.as_ref().map(|r| r.replicas), Some(4), "{plan:?}");
    let current = &plan.status.current_metrics.as_ref().unwrap()[0];
    assert_eq!(current.type_, "Object");
    let object = current.object.as_ref().unwrap();
    assert_eq!(object.described_object.name, "front");
    assert_eq!(object.current.value.as_ref().unwrap().0, "300");
    // Within the 10% tolerance: no change.
    assert_eq!(run_object(&value, 2, Ok(105_000)).rescale, None);

    // AverageValue: 300 rps over 50 per pod → 6, whatever the pods; the status shows the value
    // per current replica.
    let average = object_hpa(json!({"type": "AverageValue", "averageValue": "50"}));
    let plan = run_object(&average, 3, Ok(300_000));
    assert_eq!(plan.rescale.as_ref().map(|r| r.replicas), Some(6), "{plan:?}");
    let object = plan.status.current_metrics.as_ref().unwrap()[0].object.clone().unwrap();
    assert_eq!(object.current.average_value.unwrap().0, "100");

    // A value that could not be read fails the metric as Kubernetes reports it.
    let plan = run_object(&value, 2, Err("service \"front\" selects no pod with a value"));
    assert_eq!(plan.rescale, None);
    let active = conditions(&plan.status)
        .into_iter()
        .find(|(t, _, _)| t == "ScalingActive")
        .unwrap();
    assert_eq!(
        (active.1.as_str(), active.2.as_str()),
        ("False", "FailedGetObjectMetric")
    );
    assert!(
        plan.events
            .iter()
            .any(|e| e.message.contains("selects no pod with a value")),
        "{:?}",
        plan.events
    );
}

#[test]
fn an_objects_value_is_the_sum_over_its_pods_latest_reading() {
    let pods = pods(2);
    let mut read: Vec<PodMetricValues> = metrics(&pods, 2_500, 100).into_values().collect();
    read[1].timestamp = ago(0);
    let rps = object_value("requests_per_second", &read).unwrap();
    assert_eq!((rps.value, rps.timestamp), (5_000, ago(0)));
    assert_eq!(object_value("cpu", &read).unwrap().value, 200);
    assert_eq!(object_value("memory", &read).unwrap().value, 2 * (1 << 20) * 1000);
    assert!(
        object_value("queue_length", &read)
            .unwrap_err()
            .contains("queue_length")
    );
    assert!(object_value("concurrency", &[]).unwrap_err().contains("no"));
}
