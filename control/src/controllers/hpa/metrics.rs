//! `computeReplicasForMetrics`: each metric of the spec to a replica proposal and a
//! `currentMetrics` entry, the highest proposal winning; the metrics that can not be computed
//! reported as Kubernetes reports them (a Warning event each, and the first one's reason on
//! `ScalingActive` when no valid metric is left or the valid ones would scale down).
//!
//! Capstan serves `Resource` metrics (`cpu`, `memory`), two `Pods` metrics, [`REQUESTS_PER_SECOND`]
//! and [`CONCURRENCY`], and `Object` metrics of those four names on the objects the shell reads
//! them for ([`ObjectValues`]); `External` and `ContainerResource` metrics have no source.

use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::autoscaling::v2::{
    MetricSpec, MetricStatus, MetricTarget, MetricValueStatus, ObjectMetricSource, ObjectMetricStatus,
    PodsMetricStatus, ResourceMetricStatus,
};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use capstan_core::k8s_openapi::jiff::Timestamp;
use capstan_core::quantity::{self, Quantity};

use super::replicas::{self, CalcError, Context, PodMetric, PodMetrics};
use super::{CONCURRENCY, PodMetricValues, REQUESTS_PER_SECOND};
use crate::controllers::EventNote;

/// Which object's metric an `Object` metric names: (kind, name, metric), in the HPA's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: String,
    pub name: String,
    pub metric: String,
}

impl ObjectKey {
    pub fn of(source: &ObjectMetricSource) -> ObjectKey {
        ObjectKey {
            kind: source.described_object.kind.clone(),
            name: source.described_object.name.clone(),
            metric: source.metric.name.clone(),
        }
    }
}

/// One object's value of a metric: what the custom metrics API's `GetObjectMetric` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectValue {
    /// Milli-units.
    pub value: i64,
    pub timestamp: Timestamp,
}

/// The values of the `Object` metrics of an HPA, as the shell read them, or why it could not.
pub type ObjectValues = BTreeMap<ObjectKey, Result<ObjectValue, String>>;

/// An object's value of `metric` from the values of the pods it stands for (a Service's, a
/// workload's, or one pod's): the sum, measured when the latest of them was.
pub fn object_value(metric: &str, pods: &[PodMetricValues]) -> Result<ObjectValue, String> {
    let pick: fn(&PodMetricValues) -> i64 = match metric {
        REQUESTS_PER_SECOND => |v| v.requests_per_second_milli,
        CONCURRENCY => |v| v.concurrency_milli,
        "cpu" => |v| v.cpu_millicores,
        "memory" => |v| v.memory_bytes.saturating_mul(1000),
        other => {
            return Err(format!(
                "no object metric {other:?}: Capstan serves {REQUESTS_PER_SECOND}, {CONCURRENCY}, cpu and memory"
            ));
        }
    };
    let timestamp = pods
        .iter()
        .map(|v| v.timestamp)
        .max()
        .ok_or_else(|| "none of its pods has a value yet".to_owned())?;
    let value = pods.iter().map(pick).fold(0i64, i64::saturating_add);
    Ok(ObjectValue { value, timestamp })
}

/// What the spec's metrics gave.
#[derive(Debug, Default)]
pub struct Computed {
    /// The highest proposal and the name of its metric (`pods metric requests_per_second`).
    pub best: Option<(i32, String)>,
    /// One entry per metric of the spec; an empty one (type `""`) where it failed, as Kubernetes
    /// leaves it.
    pub statuses: Vec<MetricStatus>,
    /// Set when scaling can not go ahead: the condition to set and the aggregate error.
    pub invalid: Option<Invalid>,
    /// A Warning per metric that failed.
    pub events: Vec<EventNote>,
}

/// Why the metrics do not allow scaling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The first failed metric's `ScalingActive` reason (`FailedGetResourceMetric`...).
    pub reason: &'static str,
    /// `the HPA was unable to compute the replica count: ...`.
    pub message: String,
    /// `invalid metrics (1 invalid out of 1), first error is: ...`.
    pub error: String,
}

/// One metric's failure.
struct Failure {
    reason: &'static str,
    /// The event's message (and the condition's, after its prefix).
    detail: String,
    /// The error `computeReplicasForMetric` returns.
    error: String,
}

/// One metric's success.
struct Success {
    replicas: i32,
    name: String,
    status: MetricStatus,
}

fn milli(q: &Quantity) -> i64 {
    i64::try_from(q.as_millis_ceil()).unwrap_or(i64::MAX)
}

fn milli_quantity(v: i64) -> ApiQuantity {
    ApiQuantity(Quantity::from_millis(v).to_string())
}

/// The target's average value in milli-units.
fn average_target(t: &MetricTarget) -> Option<i64> {
    t.average_value
        .as_ref()
        .and_then(|q| quantity::parse(&q.0).ok())
        .map(|q| milli(&q))
}

/// The pods' values of one metric, as a metrics API would list them (no entry: no value).
fn values(source: &BTreeMap<String, PodMetricValues>, pick: impl Fn(&PodMetricValues) -> i64) -> PodMetrics {
    source
        .iter()
        .map(|(name, v)| {
            (
                name.clone(),
                PodMetric {
                    value: pick(v),
                    timestamp: v.timestamp,
                    window: v.window,
                },
            )
        })
        .collect()
}

/// `computeReplicasForMetrics`. `current` is the target's `spec.replicas`.
pub fn compute(
    specs: &[MetricSpec],
    cx: &Context<'_>,
    source: &BTreeMap<String, PodMetricValues>,
    objects: &ObjectValues,
) -> Computed {
    let mut out = Computed {
        statuses: vec![MetricStatus::default(); specs.len()],
        ..Default::default()
    };
    let mut first_failure: Option<Failure> = None;
    let mut failures = 0;
    for (i, spec) in specs.iter().enumerate() {
        match one(spec, cx, source, objects) {
            Ok(s) => {
                out.statuses[i] = s.status;
                if out.best.as_ref().is_none_or(|(r, _)| s.replicas > *r) {
                    out.best = Some((s.replicas, s.name));
                }
            }
            Err(f) => {
                out.events.push(EventNote::warning(f.reason, f.detail.clone()));
                failures += 1;
                first_failure.get_or_insert(f);
            }
        }
    }
    let best = out.best.as_ref().map_or(0, |(r, _)| *r);
    if let Some(f) = first_failure
        && (failures >= specs.len() || best < cx.current)
    {
        out.invalid = Some(Invalid {
            reason: f.reason,
            message: format!("the HPA was unable to compute the replica count: {}", f.detail),
            error: format!(
                "invalid metrics ({failures} invalid out of {}), first error is: {}",
                specs.len(),
                f.error
            ),
        });
    }
    out
}

/// `computeReplicasForMetric`.
fn one(
    spec: &MetricSpec,
    cx: &Context<'_>,
    source: &BTreeMap<String, PodMetricValues>,
    objects: &ObjectValues,
) -> Result<Success, Failure> {
    match (spec.type_.as_str(), &spec.resource, &spec.pods) {
        ("Resource", Some(r), _) => resource(&r.name, &r.target, cx, source),
        ("Pods", _, Some(p)) => pods(&p.metric.name, spec, &p.target, cx, source),
        ("Object", ..) => match &spec.object {
            Some(o) => object(o, cx, objects),
            None => Err(unsupported("FailedGetObjectMetric", "object", "")),
        },
        ("External", ..) => Err(unsupported(
            "FailedGetExternalMetric",
            "external",
            spec.external.as_ref().map_or("", |e| &e.metric.name),
        )),
        ("ContainerResource", ..) => Err(unsupported(
            "FailedGetContainerResourceMetric",
            "container resource",
            spec.container_resource.as_ref().map_or("", |c| &c.name),
        )),
        (other, ..) => {
            let error = format!("unknown metric source type {other:?}");
            Err(Failure {
                reason: "InvalidMetricSourceType",
                detail: error.clone(),
                error,
            })
        }
    }
}

fn unsupported(reason: &'static str, kind: &str, name: &str) -> Failure {
    let detail = format!(
        "unable to get {kind} metric {name}: Capstan serves Resource metrics (cpu, memory), and the Pods and \
         Object metrics {REQUESTS_PER_SECOND}, {CONCURRENCY}, cpu and memory only"
    );
    Failure {
        reason,
        error: format!("failed to get {kind} metric value: {detail}"),
        detail,
    }
}

/// `computeStatusForResourceMetric`: utilization of requests, or average usage.
fn resource(
    name: &str,
    target: &MetricTarget,
    cx: &Context<'_>,
    source: &BTreeMap<String, PodMetricValues>,
) -> Result<Success, Failure> {
    let fail = |detail: String| Failure {
        reason: "FailedGetResourceMetric",
        error: format!("failed to get {name} resource metric value: {detail}"),
        detail,
    };
    let metrics = match name {
        "cpu" => values(source, |v| v.cpu_millicores),
        "memory" => values(source, |v| v.memory_bytes.saturating_mul(1000)),
        _ => PodMetrics::new(),
    };
    let fetch_error =
        || format!("unable to get metrics for resource {name}: no metrics returned from resource metrics API");
    if let Some(average) = average_target(target) {
        if metrics.is_empty() {
            return Err(fail(format!("failed to get {name} usage: {}", fetch_error())));
        }
        let p = replicas::average_value_replicas(cx, metrics, name, average)
            .map_err(|e: CalcError| fail(format!("failed to get {name} usage: {e}")))?;
        return Ok(Success {
            replicas: p.replicas,
            name: format!("{name} resource"),
            status: resource_status(
                name,
                MetricValueStatus {
                    average_value: Some(milli_quantity(p.average)),
                    ..Default::default()
                },
            ),
        });
    }
    let Some(utilization) = target.average_utilization else {
        let detail = "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_string();
        return Err(Failure {
            reason: "FailedGetResourceMetric",
            error: detail.clone(),
            detail,
        });
    };
    if metrics.is_empty() {
        return Err(fail(format!("failed to get {name} utilization: {}", fetch_error())));
    }
    let p = replicas::utilization_replicas(cx, metrics, name, utilization)
        .map_err(|e| fail(format!("failed to get {name} utilization: {e}")))?;
    Ok(Success {
        replicas: p.replicas,
        name: format!("{name} resource utilization (percentage of request)"),
        status: resource_status(
            name,
            MetricValueStatus {
                average_utilization: p.utilization,
                average_value: Some(milli_quantity(p.average)),
                ..Default::default()
            },
        ),
    })
}

fn resource_status(name: &str, current: MetricValueStatus) -> MetricStatus {
    MetricStatus {
        type_: "Resource".into(),
        resource: Some(ResourceMetricStatus {
            name: name.into(),
            current,
        }),
        ..Default::default()
    }
}

/// `computeStatusForObjectMetric`: one object's value against a `Value` target (the ratio
/// times the ready pods, `GetObjectMetricReplicas`) or an `AverageValue` target (the value
/// spread over the replicas, `GetObjectMetricPerPodReplicas`).
fn object(source: &ObjectMetricSource, cx: &Context<'_>, objects: &ObjectValues) -> Result<Success, Failure> {
    let name = &source.metric.name;
    let fail = |detail: String| Failure {
        reason: "FailedGetObjectMetric",
        error: format!("failed to get object metric value: {detail}"),
        detail,
    };
    let found = objects
        .get(&ObjectKey::of(source))
        .cloned()
        .unwrap_or_else(|| Err("no value was read".into()));
    let read = found.map_err(|e| fail(format!("unable to get metric {name}: {e}")))?;
    let target = &source.target;
    let status = |current: MetricValueStatus| MetricStatus {
        type_: "Object".into(),
        object: Some(ObjectMetricStatus {
            described_object: source.described_object.clone(),
            metric: source.metric.clone(),
            current,
        }),
        ..Default::default()
    };
    if let Some(per_pod) = average_target(target).filter(|t| *t > 0) {
        let replicas = replicas::per_pod_object_replicas(cx, read.value, per_pod);
        let average = read.value / i64::from(cx.current.max(1));
        return Ok(Success {
            replicas,
            name: format!(
                "{name} metric on {} {}",
                source.described_object.kind, source.described_object.name
            ),
            status: status(MetricValueStatus {
                average_value: Some(milli_quantity(average)),
                ..Default::default()
            }),
        });
    }
    let Some(value_target) = target
        .value
        .as_ref()
        .and_then(|q| quantity::parse(&q.0).ok())
        .map(|q| milli(&q))
    else {
        return Err(fail(format!(
            "unable to get metric {name}: the target has neither a value nor an averageValue"
        )));
    };
    if value_target <= 0 {
        return Err(fail(format!(
            "unable to get metric {name}: the target value must be above zero"
        )));
    }
    let replicas = replicas::object_replicas(cx, read.value, value_target);
    Ok(Success {
        replicas,
        name: format!(
            "{name} metric on {} {}",
            source.described_object.kind, source.described_object.name
        ),
        status: status(MetricValueStatus {
            value: Some(milli_quantity(read.value)),
            ..Default::default()
        }),
    })
}

/// `computeStatusForPodsMetric`: an average value per pod of one of Capstan's pods metrics.
fn pods(
    name: &str,
    spec: &MetricSpec,
    target: &MetricTarget,
    cx: &Context<'_>,
    source: &BTreeMap<String, PodMetricValues>,
) -> Result<Success, Failure> {
    let fail = |detail: String| Failure {
        reason: "FailedGetPodsMetric",
        error: format!("failed to get pods metric value: {detail}"),
        detail,
    };
    let metrics = match name {
        REQUESTS_PER_SECOND => values(source, |v| v.requests_per_second_milli),
        CONCURRENCY => values(source, |v| v.concurrency_milli),
        _ => PodMetrics::new(),
    };
    if metrics.is_empty() {
        return Err(fail(format!(
            "unable to get metric {name}: no metrics returned from custom metrics API"
        )));
    }
    let Some(average) = average_target(target) else {
        return Err(fail(format!(
            "unable to get metric {name}: the target has no averageValue"
        )));
    };
    let p = replicas::average_value_replicas(cx, metrics, "", average).map_err(|e| fail(e.to_string()))?;
    Ok(Success {
        replicas: p.replicas,
        name: format!("pods metric {name}"),
        status: MetricStatus {
            type_: "Pods".into(),
            pods: Some(PodsMetricStatus {
                metric: spec.pods.as_ref().map(|p| p.metric.clone()).unwrap_or_default(),
                current: MetricValueStatus {
                    average_value: Some(milli_quantity(p.average)),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    })
}
