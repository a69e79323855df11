//! The TARGETS cell of `kubectl get hpa` (`formatHPAMetrics` in kube-apiserver's printers):
//! each metric's current value over its target, the first two shown and the rest counted.

use capstan_core::k8s_openapi::api::autoscaling::v2::{MetricSpec, MetricStatus};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use capstan_core::quantity;

/// How many metrics the cell shows before `+ N more...`.
const SHOWN: usize = 2;
const UNKNOWN: &str = "<unknown>";

/// A quantity in its canonical form (`0.5` → `500m`), as `Quantity.String()` prints it.
fn canonical(q: Option<&ApiQuantity>) -> String {
    match q {
        None => "0".into(),
        Some(q) => quantity::parse(&q.0).map_or_else(|_| q.0.clone(), |v| v.to_string()),
    }
}

/// `cpu: 50%/80%`, `12500m/10`, `<unknown>/10 (avg)`...; `<none>` without metrics.
pub fn format_targets(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let cells: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| cell(spec, statuses.get(i)))
        .collect();
    let shown = cells[..cells.len().min(SHOWN)].join(", ");
    if cells.len() > SHOWN {
        format!("{shown} + {} more...", cells.len() - SHOWN)
    } else {
        shown
    }
}

fn cell(spec: &MetricSpec, status: Option<&MetricStatus>) -> String {
    match spec.type_.as_str() {
        "External" | "Object" => {
            let (target, current) = match spec.type_.as_str() {
                "External" => (
                    spec.external.as_ref().map(|e| &e.target),
                    status.and_then(|s| s.external.as_ref()).map(|e| &e.current),
                ),
                _ => (
                    spec.object.as_ref().map(|o| &o.target),
                    status.and_then(|s| s.object.as_ref()).map(|o| &o.current),
                ),
            };
            let Some(target) = target else {
                return "<unknown type>".into();
            };
            match &target.average_value {
                Some(avg) => {
                    let now = current
                        .and_then(|c| c.average_value.as_ref())
                        .map_or_else(|| UNKNOWN.into(), |q| canonical(Some(q)));
                    format!("{now}/{} (avg)", canonical(Some(avg)))
                }
                None => {
                    let now = current.map_or_else(|| UNKNOWN.into(), |c| canonical(c.value.as_ref()));
                    format!("{now}/{}", canonical(target.value.as_ref()))
                }
            }
        }
        "Pods" => {
            let Some(pods) = &spec.pods else {
                return "<unknown type>".into();
            };
            let now = status
                .and_then(|s| s.pods.as_ref())
                .map_or_else(|| UNKNOWN.into(), |p| canonical(p.current.average_value.as_ref()));
            format!("{now}/{}", canonical(pods.target.average_value.as_ref()))
        }
        "Resource" | "ContainerResource" => {
            let (name, target, current) = match spec.type_.as_str() {
                "Resource" => match &spec.resource {
                    Some(r) => (
                        &r.name,
                        &r.target,
                        status.and_then(|s| s.resource.as_ref()).map(|r| &r.current),
                    ),
                    None => return "<unknown type>".into(),
                },
                _ => match &spec.container_resource {
                    Some(r) => (
                        &r.name,
                        &r.target,
                        status.and_then(|s| s.container_resource.as_ref()).map(|r| &r.current),
                    ),
                    None => return "<unknown type>".into(),
                },
            };
            match &target.average_value {
                Some(avg) => {
                    let now = current.map_or_else(|| UNKNOWN.into(), |c| canonical(c.average_value.as_ref()));
                    format!("{name}: {now}/{}", canonical(Some(avg)))
                }
                None => {
                    let now = current
                        .and_then(|c| c.average_utilization)
                        .map_or_else(|| UNKNOWN.into(), |u| format!("{u}%"));
                    let goal = target
                        .average_utilization
                        .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
                    format!("{name}: {now}/{goal}")
                }
            }
        }
        _ => "<unknown type>".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn targets(specs: Value, statuses: Value) -> String {
        let specs: Vec<MetricSpec> = serde_json::from_value(specs).unwrap();
        let statuses: Vec<MetricStatus> = serde_json::from_value(statuses).unwrap();
        format_targets(&specs, &statuses)
    }

    #[test]
    fn cells_read_as_kubectl_prints_them() {
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}});
        let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "0.5Gi"}}});
        let rps = json!({"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "10"}}});
        assert_eq!(targets(json!([]), json!([])), "<none>");
        assert_eq!(targets(json!([cpu]), json!([])), "cpu: <unknown>/80%");
        assert_eq!(
            targets(
                json!([cpu, rps]),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "420m"}}},
                       {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "current": {"averageValue": "12500m"}}}])
            ),
            "cpu: 42%/80%, 12500m/10"
        );
        assert_eq!(
            targets(json!([mem, cpu, rps]), json!([])),
            "memory: <unknown>/512Mi, cpu: <unknown>/80% + 1 more..."
        );
    }
}
