//! Normalization as tables: history, rules and counts → the count set and the reasons. The
//! behavior cases are the Kubernetes documentation's examples.

use std::time::Duration;

use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use capstan_core::k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::super::defaults::{scale_down_rules, scale_up_rules};
use super::*;

const NOW: i64 = 1_700_000_000;

fn ago(secs: i64) -> Timestamp {
    Timestamp::from_second(NOW - secs).unwrap()
}

/// (seconds ago, replicas) pairs.
fn recommendations(list: &[(i64, i32)]) -> Vec<Recommendation> {
    list.iter()
        .map(|(s, r)| Recommendation {
            at: ago(*s),
            replicas: *r,
        })
        .collect()
}

/// (seconds ago, change) pairs.
fn events(list: &[(i64, i32)]) -> Vec<ScaleEvent> {
    list.iter()
        .map(|(s, c)| ScaleEvent {
            at: ago(*s),
            change: *c,
        })
        .collect()
}

struct Case {
    name: &'static str,
    /// `None`: no `behavior` (the legacy rules).
    behavior: Option<Value>,
    recommendations: &'static [(i64, i32)],
    ups: &'static [(i64, i32)],
    downs: &'static [(i64, i32)],
    /// (current, desired, min, max)
    bounds: (i32, i32, i32, i32),
    want: (i32, &'static str, &'static str),
}

fn run(case: &Case) -> Normalized {
    let (current, desired, min, max) = case.bounds;
    let bounds = Bounds {
        current,
        desired,
        min,
        max,
    };
    let mut history = History {
        recommendations: recommendations(case.recommendations),
        scale_up_events: events(case.ups),
        scale_down_events: events(case.downs),
    };
    let window = Duration::from_secs(300);
    match &case.behavior {
        None => legacy(&mut history, bounds, window, ago(0)),
        Some(b) => {
            let b: HorizontalPodAutoscalerBehavior = serde_json::from_value(b.clone()).unwrap();
            let (up, down) = (
                scale_up_rules(b.scale_up.as_ref()),
                scale_down_rules(b.scale_down.as_ref()),
            );
            let rules = Rules {
                up: &up,
                down: &down,
                default_down_window: window,
            };
            with_behavior(&mut history, rules, bounds, ago(0))
        }
    }
}

#[test]
fn normalization() {
    let docs_down = json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 60}, {"type": "Percent", "value": 10, "periodSeconds": 60}]}});
    let cases = [
        Case {
            name: "legacy: at most double, or 4",
            behavior: None,
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (2, 10, 1, 20),
            want: (4, "ReadyForNewScale", "ScaleUpLimit"),
        },
        Case {
            name: "legacy: maxReplicas below the rate limit",
            behavior: None,
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (5, 12, 1, 8),
            want: (8, "ReadyForNewScale", "TooManyReplicas"),
        },
        Case {
            name: "legacy: the highest recommendation of five minutes holds a scale-down",
            behavior: None,
            recommendations: &[(400, 9), (200, 6), (100, 4)],
            ups: &[],
            downs: &[],
            bounds: (6, 2, 1, 10),
            want: (6, "ScaleDownStabilized", "DesiredWithinRange"),
        },
        Case {
            name: "legacy: below minReplicas",
            behavior: None,
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (3, 0, 2, 10),
            want: (2, "ReadyForNewScale", "TooFewReplicas"),
        },
        Case {
            name: "default behavior: 4 pods or double per 15 s, from 1",
            behavior: Some(json!({})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (1, 20, 1, 30),
            want: (5, "ReadyForNewScale", "ScaleUpLimit"),
        },
        Case {
            name: "default behavior: 4 pods or double per 15 s, from 10",
            behavior: Some(json!({})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (10, 50, 1, 30),
            want: (20, "ReadyForNewScale", "ScaleUpLimit"),
        },
        Case {
            name: "default behavior: a scale-up 10 s ago counts against the period",
            behavior: Some(json!({})),
            recommendations: &[],
            ups: &[(10, 4)],
            downs: &[],
            bounds: (5, 20, 1, 30),
            // The period started at 1: max(1 + 4, 2 × 1) = 5, no more now.
            want: (5, "ReadyForNewScale", "ScaleUpLimit"),
        },
        Case {
            name: "default behavior: 300 s scale-down stabilization",
            behavior: Some(json!({})),
            recommendations: &[(250, 8), (100, 5)],
            ups: &[],
            downs: &[],
            bounds: (8, 2, 1, 10),
            want: (8, "ScaleDownStabilized", "DesiredWithinRange"),
        },
        Case {
            name: "docs: 80 replicas down to 10, 4 pods or 10% a minute: 8 first",
            behavior: Some(docs_down.clone()),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (80, 10, 1, 100),
            want: (72, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: then nothing more within the minute",
            behavior: Some(docs_down.clone()),
            recommendations: &[],
            ups: &[],
            downs: &[(15, 8)],
            bounds: (72, 10, 1, 100),
            want: (72, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: a minute later 10% of 72 is 7.2, rounded up to 8",
            behavior: Some(docs_down.clone()),
            recommendations: &[],
            ups: &[],
            downs: &[(61, 8)],
            bounds: (72, 10, 1, 100),
            want: (64, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: below 40 replicas the Pods policy removes more",
            behavior: Some(docs_down.clone()),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (30, 10, 1, 100),
            want: (26, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: at most 10% or 5 pods a minute, whichever is less (selectPolicy Min)",
            behavior: Some(
                json!({"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Min", "policies": [
                {"type": "Percent", "value": 10, "periodSeconds": 60}, {"type": "Pods", "value": 5, "periodSeconds": 60}]}}),
            ),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (80, 10, 1, 100),
            want: (75, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: scale-down disabled",
            behavior: Some(json!({"scaleDown": {"selectPolicy": "Disabled"}})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (10, 1, 1, 100),
            want: (10, "ReadyForNewScale", "ScaleDownLimit"),
        },
        Case {
            name: "docs: scale up by 900% in one step",
            behavior: Some(json!({"scaleUp": {"policies": [{"type": "Percent", "value": 900, "periodSeconds": 15}]}})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (1, 50, 1, 100),
            want: (10, "ReadyForNewScale", "ScaleUpLimit"),
        },
        Case {
            name: "a scale-up window keeps the lowest recent recommendation",
            behavior: Some(json!({"scaleUp": {"stabilizationWindowSeconds": 60}})),
            recommendations: &[(30, 3), (90, 1)],
            ups: &[],
            downs: &[],
            bounds: (2, 5, 1, 10),
            want: (3, "ScaleUpStabilized", "DesiredWithinRange"),
        },
        Case {
            name: "maxReplicas under the policies' limit",
            behavior: Some(json!({})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (4, 20, 1, 6),
            want: (6, "ReadyForNewScale", "TooManyReplicas"),
        },
        Case {
            name: "minReplicas above the policies' limit",
            behavior: Some(json!({"scaleDown": {"stabilizationWindowSeconds": 0}})),
            recommendations: &[],
            ups: &[],
            downs: &[],
            bounds: (5, 1, 2, 10),
            want: (2, "ReadyForNewScale", "TooFewReplicas"),
        },
    ];
    for case in &cases {
        let n = run(case);
        assert_eq!(
            (n.limited.replicas, n.stabilized.reason, n.limited.reason),
            case.want,
            "{}",
            case.name
        );
    }
}

#[test]
fn recommendations_are_recorded_and_old_ones_forgotten() {
    let mut history = History {
        recommendations: recommendations(&[(400, 9), (100, 4)]),
        ..Default::default()
    };
    let b = Bounds {
        current: 4,
        desired: 3,
        min: 1,
        max: 10,
    };
    legacy(&mut history, b, Duration::from_secs(300), ago(0));
    assert_eq!(history.recommendations, recommendations(&[(100, 4), (0, 3)]));

    let mut fresh = History::default();
    fresh.record_initial(7, ago(0));
    fresh.record_initial(9, ago(0));
    assert_eq!(fresh.recommendations, recommendations(&[(0, 7)]));
}

#[test]
fn scale_events_are_kept_for_the_longest_period() {
    let (up, down) = (scale_up_rules(None), scale_down_rules(None));
    let mut history = History {
        scale_up_events: events(&[(20, 2), (10, 1)]),
        ..Default::default()
    };
    history.record_scale(&up, &down, 3, 5, ago(0));
    assert_eq!(history.scale_up_events, events(&[(10, 1), (0, 2)]));
    history.record_scale(&up, &down, 5, 1, ago(0));
    assert_eq!(history.scale_down_events, events(&[(0, 4)]));
}
