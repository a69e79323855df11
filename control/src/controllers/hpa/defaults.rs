//! The defaults of `autoscaling/v2` HorizontalPodAutoscalers (`pkg/apis/autoscaling/v2/defaults.go`):
//! what the API server fills in on write, and the scaling rules the controller falls back to.
//! Both the registry's strategy and the controller read them, so they live with the controller.

use capstan_core::k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, MetricSpec, MetricTarget, ResourceMetricSource,
};

/// The CPU utilization target of an HPA that names no metric (`autoscaling.DefaultCPUUtilization`).
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// Scaling up may add this many pods per period by default...
const SCALE_UP_LIMIT_PODS: i32 = 4;
/// ...or this percentage of the pods, whichever is more.
const SCALE_UP_LIMIT_PERCENT: i32 = 100;
/// The period both default scale-up policies count over.
const SCALE_UP_PERIOD_SECONDS: i32 = 15;
/// Scaling down may remove every pod per period by default (stabilization is what slows it).
const SCALE_DOWN_LIMIT_PERCENT: i32 = 100;
const SCALE_DOWN_PERIOD_SECONDS: i32 = 15;

/// `selectPolicy` values.
pub const MAX_POLICY: &str = "Max";
pub const MIN_POLICY: &str = "Min";
pub const DISABLED_POLICY: &str = "Disabled";

/// `HPAScalingPolicy.type` values.
pub const PODS_POLICY: &str = "Pods";
pub const PERCENT_POLICY: &str = "Percent";

fn policy(type_: &str, value: i32, period_seconds: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    }
}

/// `GenerateHPAScaleUpRules`: the user's scale-up rules over the defaults (no stabilization;
/// 4 pods or 100% per 15 s, whichever is more).
pub fn scale_up_rules(user: Option<&HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some(MAX_POLICY.into()),
        policies: Some(vec![
            policy(PODS_POLICY, SCALE_UP_LIMIT_PODS, SCALE_UP_PERIOD_SECONDS),
            policy(PERCENT_POLICY, SCALE_UP_LIMIT_PERCENT, SCALE_UP_PERIOD_SECONDS),
        ]),
        tolerance: None,
    };
    overlay(user, defaults)
}

/// `GenerateHPAScaleDownRules`: the user's scale-down rules over the defaults (100% per 15 s).
/// The stabilization window stays unset, as Kubernetes leaves it: the controller supplies its
/// own (`--horizontal-pod-autoscaler-downscale-stabilization`, 300 s).
pub fn scale_down_rules(user: Option<&HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some(MAX_POLICY.into()),
        policies: Some(vec![policy(
            PERCENT_POLICY,
            SCALE_DOWN_LIMIT_PERCENT,
            SCALE_DOWN_PERIOD_SECONDS,
        )]),
        tolerance: None,
    };
    overlay(user, defaults)
}

/// `copyHPAScalingRules`: every field the user set wins over the default.
fn overlay(user: Option<&HPAScalingRules>, mut rules: HPAScalingRules) -> HPAScalingRules {
    let Some(user) = user else {
        return rules;
    };
    if user.select_policy.is_some() {
        rules.select_policy.clone_from(&user.select_policy);
    }
    if user.stabilization_window_seconds.is_some() {
        rules.stabilization_window_seconds = user.stabilization_window_seconds;
    }
    if user.policies.is_some() {
        rules.policies.clone_from(&user.policies);
    }
    if user.tolerance.is_some() {
        rules.tolerance.clone_from(&user.tolerance);
    }
    rules
}

/// `SetDefaults_HorizontalPodAutoscaler`: `minReplicas` 1, 80% CPU when no metric is named, and
/// a `behavior` that is given completed with the default rules (one that is not stays unset).
pub fn default_hpa(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(behavior) = spec.behavior.as_mut() {
        behavior.scale_up = Some(scale_up_rules(behavior.scale_up.as_ref()));
        behavior.scale_down = Some(scale_down_rules(behavior.scale_down.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hpa(spec: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({"metadata": {"name": "h"}, "spec": spec})).unwrap()
    }

    #[test]
    fn an_hpa_without_metrics_targets_80_percent_cpu_and_keeps_behavior_unset() {
        let mut h = hpa(json!({"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}));
        default_hpa(&mut h);
        let out = serde_json::to_value(&h).unwrap();
        assert_eq!(out["spec"]["minReplicas"], 1);
        assert_eq!(
            out["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert!(out["spec"].get("behavior").is_none());
    }

    #[test]
    fn a_partial_behavior_is_completed_with_the_defaults() {
        let mut h = hpa(
            json!({"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}),
        );
        default_hpa(&mut h);
        let out = serde_json::to_value(&h).unwrap();
        assert_eq!(
            out["spec"]["behavior"],
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 5, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            })
        );
    }
}
