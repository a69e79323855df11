//! Validation of `autoscaling/v2` HorizontalPodAutoscalers with kube-apiserver's rules and
//! messages (`pkg/apis/autoscaling/validation`), run after [`super::default_hpa`].
//!
//! One deliberate difference: `minReplicas: 0` is accepted with any metrics. Kubernetes accepts
//! 0 only behind the HPAScaleToZero feature gate and with an Object or External metric; in
//! Capstan 0 opts the workload into scale-to-zero on idle traffic (see the module above), so
//! the lower bound is 0 and no metric type is required for it.

use capstan_core::k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscaler, MetricIdentifier, MetricSpec, MetricTarget,
};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use capstan_core::names;
use capstan_core::quantity;
use capstan_core::validate::{FieldError, validate_object_meta};

use super::defaults::{DISABLED_POLICY, MAX_POLICY, MIN_POLICY, PERCENT_POLICY, PODS_POLICY};

/// The lowest `minReplicas` (Kubernetes' `MinReplicasLowerBound` with HPAScaleToZero).
const MIN_REPLICAS_LOWER_BOUND: i32 = 0;
/// The longest scaling policy period (`MaxPeriodSeconds`): half an hour.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// The longest stabilization window (`MaxStabilizationWindowSeconds`): an hour.
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;

const METRIC_SOURCE_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];
const SELECT_POLICIES: &[&str] = &[DISABLED_POLICY, MAX_POLICY, MIN_POLICY];
const POLICY_TYPES: &[&str] = &[PERCENT_POLICY, PODS_POLICY];

/// Every problem with an HPA's metadata, spec and status, each with its field path.
pub fn validate_hpa(hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&hpa.metadata);
    let spec = hpa.spec.clone().unwrap_or_default();
    if let Some(min) = spec.min_replicas.filter(|m| *m < MIN_REPLICAS_LOWER_BOUND) {
        errs.push(FieldError::invalid_number(
            "spec.minReplicas",
            min.into(),
            &format!("must be greater than or equal to {MIN_REPLICAS_LOWER_BOUND}"),
        ));
    }
    if spec.max_replicas < 1 {
        errs.push(FieldError::invalid_number(
            "spec.maxReplicas",
            spec.max_replicas.into(),
            "must be greater than 0",
        ));
    }
    if spec.min_replicas.is_some_and(|min| spec.max_replicas < min) {
        errs.push(FieldError::invalid_number(
            "spec.maxReplicas",
            spec.max_replicas.into(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = &spec.scale_target_ref;
    path_segment("spec.scaleTargetRef.kind", &target.kind, "", &mut errs);
    path_segment("spec.scaleTargetRef.name", &target.name, "", &mut errs);
    for (i, metric) in spec.metrics.iter().flatten().enumerate() {
        metric_spec(metric, &format!("spec.metrics[{i}]"), &mut errs);
    }
    if let Some(behavior) = &spec.behavior {
        scaling_rules(behavior.scale_up.as_ref(), "spec.behavior.scaleUp", &mut errs);
        scaling_rules(behavior.scale_down.as_ref(), "spec.behavior.scaleDown", &mut errs);
    }
    if let Some(status) = &hpa.status {
        if let Some(n) = status.current_replicas.filter(|n| *n < 0) {
            errs.push(FieldError::invalid_number(
                "status.currentReplicas",
                n.into(),
                "must be greater than or equal to 0",
            ));
        }
        if status.desired_replicas < 0 {
            errs.push(FieldError::invalid_number(
                "status.desiredReplicas",
                status.desired_replicas.into(),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

/// `IsValidPathSegmentName`, with `Required` for an empty value.
fn path_segment(path: &str, value: &str, required_detail: &str, errs: &mut Vec<FieldError>) {
    if value.is_empty() {
        errs.push(FieldError::required(path, required_detail));
        return;
    }
    if value == "." || value == ".." {
        errs.push(FieldError::invalid(path, value, &format!("may not be '{value}'")));
        return;
    }
    for bad in ["/", "%"] {
        if value.contains(bad) {
            errs.push(FieldError::invalid(path, value, &format!("may not contain '{bad}'")));
        }
    }
}

/// `validateMetricSpec`: a known type, its source populated, and no other source.
fn metric_spec(spec: &MetricSpec, path: &str, errs: &mut Vec<FieldError>) {
    if spec.type_.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&spec.type_.as_str()) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            &spec.type_,
            METRIC_SOURCE_TYPES,
        ));
    }
    let present: Vec<&str> = [
        ("object", spec.object.is_some()),
        ("external", spec.external.is_some()),
        ("pods", spec.pods.is_some()),
        ("resource", spec.resource.is_some()),
        ("containerResource", spec.container_resource.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    // Only the first source present is validated, as Kubernetes does.
    match present.first() {
        Some(&"object") => {
            if let Some(o) = &spec.object {
                identifier(&o.metric, &format!("{path}.object.metric"), errs);
                target(&o.target, &format!("{path}.object.target"), errs);
                if o.target.value.is_none() && o.target.average_value.is_none() {
                    errs.push(FieldError::required(
                        format!("{path}.object.target.value"),
                        "must set either a target value or averageValue",
                    ));
                }
            }
        }
        Some(&"external") => {
            if let Some(e) = &spec.external {
                identifier(&e.metric, &format!("{path}.external.metric"), errs);
                target(&e.target, &format!("{path}.external.target"), errs);
                if e.target.value.is_none() && e.target.average_value.is_none() {
                    errs.push(FieldError::required(
                        format!("{path}.external.target.value"),
                        "must set either a target value for metric or a per-pod target",
                    ));
                }
            }
        }
        Some(&"pods") => {
            if let Some(p) = &spec.pods {
                identifier(&p.metric, &format!("{path}.pods.metric"), errs);
                target(&p.target, &format!("{path}.pods.target"), errs);
                if p.target.average_value.is_none() {
                    errs.push(FieldError::required(
                        format!("{path}.pods.target.averageValue"),
                        "must specify a positive target averageValue",
                    ));
                }
            }
        }
        Some(&"resource") => {
            if let Some(r) = &spec.resource {
                resource_source(&r.name, &r.target, &format!("{path}.resource"), errs);
            }
        }
        Some(_) => {
            if let Some(c) = &spec.container_resource {
                let at = format!("{path}.containerResource");
                resource_source(&c.name, &c.target, &at, errs);
                if c.container.is_empty() {
                    errs.push(FieldError::required(
                        format!("{at}.container"),
                        "must specify a container",
                    ));
                }
            }
        }
        None => {}
    }
    let expected = match spec.type_.as_str() {
        "Object" => Some("object"),
        "Pods" => Some("pods"),
        "Resource" => Some("resource"),
        "External" => Some("external"),
        "ContainerResource" => Some("containerResource"),
        _ => None,
    };
    if let Some(field) = expected
        && !present.contains(&field)
    {
        errs.push(FieldError::required(
            format!("{path}.{field}"),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for other in present.iter().filter(|p| Some(**p) != expected) {
            errs.push(FieldError::forbidden(
                format!("{path}.{other}"),
                "must populate the given metric source only",
            ));
        }
    }
}

fn resource_source(name: &str, t: &MetricTarget, path: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "must specify a resource name",
        ));
    } else {
        let at = format!("{path}.name");
        for m in names::qualified_name(name) {
            errs.push(FieldError::invalid(&at, name, &m));
        }
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
        if !name.contains('/') && !standard {
            errs.push(FieldError::invalid(
                &at,
                name,
                "must be a standard resource for containers",
            ));
        }
    }
    target(t, &format!("{path}.target"), errs);
    if t.average_utilization.is_none() && t.average_value.is_none() {
        errs.push(FieldError::required(
            format!("{path}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if t.average_utilization.is_some() && t.average_value.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
}

fn identifier(id: &MetricIdentifier, path: &str, errs: &mut Vec<FieldError>) {
    path_segment(&format!("{path}.name"), &id.name, "must specify a metric name", errs);
}

/// `validateMetricTarget`.
fn target(t: &MetricTarget, path: &str, errs: &mut Vec<FieldError>) {
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(t.type_.as_str(), "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            &t.type_,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    positive(t.value.as_ref(), &format!("{path}.value"), errs);
    positive(t.average_value.as_ref(), &format!("{path}.averageValue"), errs);
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid_number(
            format!("{path}.averageUtilization"),
            u.into(),
            "must be greater than 0",
        ));
    }
}

fn positive(q: Option<&ApiQuantity>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(q) = q else {
        return;
    };
    match quantity::parse(&q.0) {
        Err(e) => errs.push(FieldError::invalid(path, &q.0, &e.to_string())),
        Ok(v) if v.nanos() <= 0 => errs.push(FieldError::new(path, format!("Invalid value: {v}: must be positive"))),
        Ok(_) => {}
    }
}

/// `validateScalingRules`.
fn scaling_rules(rules: Option<&HPAScalingRules>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(rules) = rules else {
        return;
    };
    if let Some(w) = rules.stabilization_window_seconds {
        let at = format!("{path}.stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid_number(
                &at,
                w.into(),
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid_number(
                &at,
                w.into(),
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(p) = rules.select_policy.as_deref().filter(|p| !SELECT_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(
            format!("{path}.selectPolicy"),
            p,
            SELECT_POLICIES,
        ));
    }
    let policies = rules.policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let at = format!("{path}.policies[{i}]");
        if !POLICY_TYPES.contains(&p.type_.as_str()) {
            errs.push(FieldError::not_supported(format!("{at}.type"), &p.type_, POLICY_TYPES));
        }
        if p.value <= 0 {
            errs.push(FieldError::invalid_number(
                format!("{at}.value"),
                p.value.into(),
                "must be greater than zero",
            ));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid_number(
                format!("{at}.periodSeconds"),
                p.period_seconds.into(),
                "must be greater than zero",
            ));
        }
        if p.period_seconds > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid_number(
                format!("{at}.periodSeconds"),
                p.period_seconds.into(),
                &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    if let Some(t) = &rules.tolerance {
        match quantity::parse(&t.0) {
            Err(e) => errs.push(FieldError::invalid(format!("{path}.tolerance"), &t.0, &e.to_string())),
            Ok(v) if v.nanos() < 0 => errs.push(FieldError::new(
                format!("{path}.tolerance"),
                format!("Invalid value: {v}: must be greater than or equal to zero"),
            )),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::default_hpa;
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let mut hpa: HorizontalPodAutoscaler =
            serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).unwrap();
        default_hpa(&mut hpa);
        validate_hpa(&hpa).iter().map(ToString::to_string).collect()
    }

    fn with(extra: Value) -> Value {
        let mut spec =
            json!({"maxReplicas": 5, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}});
        if let (Value::Object(base), Value::Object(extra)) = (&mut spec, extra) {
            base.extend(extra);
        }
        spec
    }

    #[test]
    fn specs_and_their_errors() {
        let cases: &[(Value, &[&str])] = &[
            (with(json!({})), &[]),
            (
                with(json!({"minReplicas": 0})),
                &[], // scale to zero, with any metric
            ),
            (
                with(json!({"minReplicas": -1})),
                &["spec.minReplicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                with(json!({"minReplicas": 6})),
                &["spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"],
            ),
            (
                json!({"scaleTargetRef": {"kind": "", "name": "a/b"}}),
                &[
                    "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                    "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
                    "spec.scaleTargetRef.kind: Required value",
                    "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                ],
            ),
            (
                with(
                    json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}}]}),
                ),
                &[],
            ),
            (
                with(json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": ""},
                    "target": {"type": "Value", "value": "0"}}}]})),
                &[
                    "spec.metrics[0].pods.metric.name: Required value: must specify a metric name",
                    "spec.metrics[0].pods.target.value: Invalid value: 0: must be positive",
                    "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue",
                ],
            ),
            (
                with(json!({"metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 0, "averageValue": "1"}}}]})),
                &[
                    "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
                    "spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization",
                ],
            ),
            (
                with(
                    json!({"metrics": [{"type": "Resource", "pods": {"metric": {"name": "x"},
                    "target": {"type": "AverageValue", "averageValue": "1"}}}]}),
                ),
                &["spec.metrics[0].resource: Required value: must populate information for the given metric source"],
            ),
            (
                with(json!({"metrics": [{"type": "Bogus", "resource": {"name": "gpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}]})),
                &[
                    "spec.metrics[0].type: Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
                    "spec.metrics[0].resource.name: Invalid value: \"gpu\": must be a standard resource for containers",
                ],
            ),
            (
                with(
                    json!({"behavior": {"scaleUp": {"selectPolicy": "Most", "stabilizationWindowSeconds": 3601,
                    "policies": [{"type": "Pod", "value": 0, "periodSeconds": 1801}]}, "scaleDown": {"policies": []}}}),
                ),
                &[
                    "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
                    "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Most\": supported values: \"Disabled\", \"Max\", \"Min\"",
                    "spec.behavior.scaleUp.policies[0].type: Unsupported value: \"Pod\": supported values: \"Percent\", \"Pods\"",
                    "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
                    "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
                    "spec.behavior.scaleDown.policies: Required value: must specify at least one Policy",
                ],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(errors(spec.clone()), *want, "{spec}");
        }
    }
}
