//! The replica calculator (`replica_calculator.go`): from one metric's per-pod values to a
//! replica count, treating pods as Kubernetes does —
//!
//! - pods being deleted or failed are ignored;
//! - pending pods, and for CPU pods not yet ready (or whose sample predates their readiness),
//!   are "unready": left out, and counted at 0 only when that can not reverse a scale-up;
//! - running pods without a value are "missing": counted at 0 on a scale-up and at the target
//!   (100% of their request for utilization) on a scale-down, so both are damped;
//! - no change when the ratio is within the tolerance, or when counting unready and missing
//!   pods would reverse the direction.
//!
//! Values are integers in milli-units (millicores, milli-bytes, milli-requests per second), as
//! Kubernetes' metrics clients return `MilliValue()`s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};
use capstan_core::quantity;

/// One pod's value of the metric being computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodMetric {
    /// Milli-units.
    pub value: i64,
    /// When the value was measured (the end of its window).
    pub timestamp: Timestamp,
    /// How long a span the value averages over.
    pub window: Duration,
}

/// Values by pod name.
pub type PodMetrics = BTreeMap<String, PodMetric>;

/// Why no replica count could be computed from a metric.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// The target's selector matches no pod.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// Every value belonged to an unready or ignored pod.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoReadyMetrics,
    /// A utilization target needs every container's request.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        resource: String,
        container: String,
        pod: String,
    },
    /// No value belonged to a pod with a request.
    #[error("no metrics returned matched known pods")]
    NoMatchingRequests,
}

/// The ratio band within which no scaling happens: `[1 - down, 1 + up]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    fn within(&self, ratio: f64) -> bool {
        1.0 - self.down <= ratio && ratio <= 1.0 + self.up
    }
}

/// How long after a pod starts its CPU samples are doubted, and how soon after its start a
/// readiness change still counts as the initial one (kube-controller-manager's
/// `--horizontal-pod-autoscaler-cpu-initialization-period` and
/// `--horizontal-pod-autoscaler-initial-readiness-delay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

/// The pods of a calculation, by how they count.
#[derive(Debug, Default, PartialEq, Eq)]
struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `groupPods`.
fn group_pods(pods: &[Pod], metrics: &PodMetrics, cpu: bool, readiness: Readiness, now: Timestamp) -> Groups {
    let mut groups = Groups::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.as_deref().unwrap_or("Pending");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            groups.ignored.insert(name);
            continue;
        }
        if phase == "Pending" {
            groups.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            groups.missing.insert(name);
            continue;
        };
        if cpu {
            let ready = status.conditions.iter().flatten().find(|c| c.type_ == "Ready");
            let unready = match (ready, status.start_time.as_ref()) {
                (Some(ready), Some(start)) => {
                    let changed = ready
                        .last_transition_time
                        .as_ref()
                        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
                    if plus(start.0, readiness.cpu_initialization_period) > now {
                        // Starting up: doubt a sample that does not postdate readiness by a window.
                        ready.status == "False" || metric.timestamp < plus(changed, metric.window)
                    } else {
                        // Only a pod that has never been ready is left out.
                        ready.status == "False" && plus(start.0, readiness.initial_readiness_delay) > changed
                    }
                }
                _ => true,
            };
            if unready {
                groups.unready.insert(name);
                continue;
            }
        }
        groups.ready += 1;
    }
    groups
}

fn ceil_replicas(ratio: f64, pods: usize) -> i32 {
    (ratio * pods as f64).ceil() as i32
}

/// A calculation's result: the proposed replica count and what the metric reads now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    /// The average value per pod, milli-units.
    pub average: i64,
    /// The average utilization (percent of request), for utilization targets.
    pub utilization: Option<i32>,
}

/// The shared tail of both calculations: with the usage ratio known, fold in unready and missing
/// pods and refuse changes that are too small or would reverse direction.
struct Inputs<'a> {
    current: i32,
    groups: Groups,
    metrics: PodMetrics,
    tolerances: Tolerances,
    /// The ratio of the metrics as measured.
    ratio: f64,
    /// What a missing pod counts as on a scale-down.
    missing_down: &'a dyn Fn(&str) -> i64,
    /// Whether missing pods count as 0 at a ratio of exactly 1 (average value targets do,
    /// utilization targets leave them out).
    missing_zero_at_one: bool,
    /// The ratio over a set of values.
    ratio_of: &'a dyn Fn(&PodMetrics) -> Result<f64, CalcError>,
}

fn fold_in(mut i: Inputs<'_>) -> Result<i32, CalcError> {
    let scale_up_with_unready = !i.groups.unready.is_empty() && i.ratio > 1.0;
    if !scale_up_with_unready && i.groups.missing.is_empty() {
        if i.tolerances.within(i.ratio) {
            return Ok(i.current);
        }
        return Ok(ceil_replicas(i.ratio, i.groups.ready));
    }
    let zero = |at| PodMetric {
        value: 0,
        timestamp: at,
        window: Duration::ZERO,
    };
    for name in &i.groups.missing {
        if i.ratio < 1.0 {
            i.metrics.insert(
                name.clone(),
                PodMetric {
                    value: (i.missing_down)(name),
                    ..zero(Timestamp::UNIX_EPOCH)
                },
            );
        } else if i.ratio > 1.0 || i.missing_zero_at_one {
            i.metrics.insert(name.clone(), zero(Timestamp::UNIX_EPOCH));
        }
    }
    if scale_up_with_unready {
        for name in &i.groups.unready {
            i.metrics.insert(name.clone(), zero(Timestamp::UNIX_EPOCH));
        }
    }
    let new_ratio = (i.ratio_of)(&i.metrics)?;
    if i.tolerances.within(new_ratio) || (i.ratio < 1.0 && new_ratio > 1.0) || (i.ratio > 1.0 && new_ratio < 1.0) {
        return Ok(i.current);
    }
    let replicas = ceil_replicas(new_ratio, i.metrics.len());
    if (new_ratio < 1.0 && replicas > i.current) || (new_ratio > 1.0 && replicas < i.current) {
        return Ok(i.current);
    }
    Ok(replicas)
}

/// The settings every calculation shares.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub current: i32,
    pub pods: &'a [Pod],
    pub tolerances: Tolerances,
    pub readiness: Readiness,
    pub now: Timestamp,
}

/// The pods sorted into groups, and the metrics of the ready ones that count: what both
/// calculations start from. Errors when there are no pods, or no metric is left.
fn ready_metrics(cx: &Context<'_>, mut metrics: PodMetrics, resource: &str) -> Result<(Groups, PodMetrics), CalcError> {
    if cx.pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(cx.pods, &metrics, resource == "cpu", cx.readiness, cx.now);
    for name in groups.ignored.iter().chain(&groups.unready) {
        metrics.remove(name);
    }
    if metrics.is_empty() {
        return Err(CalcError::NoReadyMetrics);
    }
    Ok((groups, metrics))
}

/// `GetResourceReplicas`: a utilization target (percent of the pods' requests). `metrics` are
/// the values of the pods that reported one; empty is the caller's error to report.
pub fn utilization_replicas(
    cx: &Context<'_>,
    metrics: PodMetrics,
    resource: &str,
    target_utilization: i32,
) -> Result<Proposal, CalcError> {
    let (groups, metrics) = ready_metrics(cx, metrics, resource)?;
    let requests = pod_requests(cx.pods, resource)?;
    let (ratio, utilization, average) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let fallback = i64::from(target_utilization.max(100));
    let replicas = fold_in(Inputs {
        current: cx.current,
        groups,
        metrics,
        tolerances: cx.tolerances,
        ratio,
        missing_down: &|name| requests.get(name).copied().unwrap_or(0) * fallback / 100,
        missing_zero_at_one: false,
        ratio_of: &|m| utilization_ratio(m, &requests, target_utilization).map(|r| r.0),
    })?;
    Ok(Proposal {
        replicas,
        average,
        utilization: Some(utilization),
    })
}

/// `calcPlainMetricReplicas`: an average value target (Pods metrics, or a resource's raw
/// usage). `resource` is `"cpu"` when CPU readiness rules apply.
pub fn average_value_replicas(
    cx: &Context<'_>,
    metrics: PodMetrics,
    resource: &str,
    target: i64,
) -> Result<Proposal, CalcError> {
    let (groups, metrics) = ready_metrics(cx, metrics, resource)?;
    let (ratio, average) = usage_ratio(&metrics, target);
    let replicas = fold_in(Inputs {
        current: cx.current,
        groups,
        metrics,
        tolerances: cx.tolerances,
        ratio,
        missing_down: &|_| target,
        missing_zero_at_one: true,
        ratio_of: &|m| Ok(usage_ratio(m, target).0),
    })?;
    Ok(Proposal {
        replicas,
        average,
        utilization: None,
    })
}

/// `GetObjectMetricReplicas` with `getUsageRatioReplicaCount`: an object's value against a
/// `Value` target. Within the tolerance, no change; else the ratio times the ready pods (times
/// nothing at zero replicas: the ratio itself).
pub fn object_replicas(cx: &Context<'_>, value: i64, target: i64) -> i32 {
    let ratio = value as f64 / target as f64;
    if cx.current == 0 {
        return ceil_replicas(ratio, 1);
    }
    if cx.tolerances.within(ratio) {
        return cx.current;
    }
    let ready = cx.pods.iter().filter(|p| running_and_ready(p)).count();
    ceil_replicas(ratio, ready)
}

/// `GetObjectMetricPerPodReplicas`: an object's value spread over the replicas against an
/// `AverageValue` target; within the tolerance, no change.
pub fn per_pod_object_replicas(cx: &Context<'_>, value: i64, per_pod: i64) -> i32 {
    let ratio = value as f64 / (per_pod as f64 * f64::from(cx.current.max(1)));
    if cx.current > 0 && cx.tolerances.within(ratio) {
        return cx.current;
    }
    ceil_replicas(value as f64 / per_pod as f64, 1)
}

/// `getReadyPodsCount`'s test: running, with a true `Ready` condition.
fn running_and_ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// `GetMetricUsageRatio`: the average (truncated) over the target, and the average.
fn usage_ratio(metrics: &PodMetrics, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let average = total / (metrics.len().max(1) as i64);
    (average as f64 / target as f64, average)
}

/// `GetResourceUtilizationRatio`: (ratio to target, utilization percent, average value) over
/// the pods that have both a value and a request.
fn utilization_ratio(
    metrics: &PodMetrics,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), CalcError> {
    let (mut used, mut requested, mut entries) = (0i64, 0i64, 0i64);
    for (name, m) in metrics {
        if let Some(r) = requests.get(name) {
            used += m.value;
            requested += r;
            entries += 1;
        }
    }
    if requested == 0 {
        return Err(CalcError::NoMatchingRequests);
    }
    let utilization = (used * 100 / requested) as i32;
    Ok((
        f64::from(utilization) / f64::from(target_utilization),
        utilization,
        used / entries,
    ))
}

/// `calculatePodRequests`: each pod's summed container requests of `resource`, milli-units.
fn pod_requests(pods: &[Pod], resource: &str) -> Result<BTreeMap<String, i64>, CalcError> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut total = 0i64;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| quantity::parse(&q.0).ok());
            let Some(q) = request else {
                return Err(CalcError::MissingRequest {
                    resource: resource.into(),
                    container: c.name.clone(),
                    pod: name,
                });
            };
            total = total.saturating_add(i64::try_from(q.as_millis_ceil()).unwrap_or(i64::MAX));
        }
        out.insert(name, total);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
