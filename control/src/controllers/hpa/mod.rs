//! The HorizontalPodAutoscaler's pure core, after kube-controller-manager's `podautoscaler`
//! (`horizontal.go`, `replica_calculator.go`): from an HPA, its target's `/scale`, the target's
//! pods and their metric values, the HPA's history and `now`, to a [`Plan`] — the replica count
//! to set (if any), the status to write and the events to record.
//!
//! Per metric, `desired = ceil(current × value / target)`, no change within a tolerance of 10%,
//! the highest over the metrics; then stabilization over recent recommendations, the scaling
//! policies' rates, and `minReplicas`/`maxReplicas` (see [`normalize`]). The status carries
//! `currentMetrics`, `currentReplicas`, `desiredReplicas`, `lastScaleTime` and the conditions
//! `AbleToScale`, `ScalingActive` and `ScalingLimited` with Kubernetes' reasons and messages.
//!
//! # Metrics
//!
//! - `Resource` metrics `cpu` (millicores used, from the pod's CPU time) and `memory` (bytes in
//!   use), as a utilization of the pods' requests or as an average value.
//! - `Pods` metrics, targets of `type: AverageValue` per pod:
//!   - [`REQUESTS_PER_SECOND`] (`requests_per_second`): finished requests per second over the
//!     sampling window;
//!   - [`CONCURRENCY`] (`concurrency`): requests in flight, averaged over the window.
//!
//! - `Object` metrics, of those four names, on one object: the sum over the pods it stands for
//!   (a Service's by its selector, a workload's by its `/scale` selector, or one pod), against a
//!   `Value` target (`desired = ceil(value / target × ready pods)`) or an `AverageValue` one
//!   (`desired = ceil(value / target)`); the shell reads them ([`ObjectValues`]).
//!
//! The values come from the nodes (see `manager::pod_metrics`); `External` and
//! `ContainerResource` metrics have no source here (as in a cluster without an external or
//! custom metrics adapter) and are reported as failed metrics.
//!
//! # Scale to zero
//!
//! `minReplicas: 0` opts the target into scale-to-zero, which is not this controller's doing:
//! the activator scales a workload at 0 up on its first request, an idle controller scales it to
//! 0 when no traffic comes. This core cooperates with them: a target at 0 replicas is left alone
//! (`ScalingActive` False, `ScalingDisabled`, as Kubernetes does for a target scaled to zero)
//! and its history forgotten (the load before idling says nothing of the load after), and a
//! target with replicas is never recommended fewer than 1.

mod defaults;
mod metrics;
pub mod normalize;
pub use metrics::{ObjectKey, ObjectValue, ObjectValues, object_value};
mod replicas;
mod targets;
mod validation;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
};
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use capstan_core::k8s_openapi::jiff::Timestamp;
use capstan_core::quantity;

pub use defaults::{DEFAULT_CPU_UTILIZATION, default_hpa, scale_down_rules, scale_up_rules};
pub use normalize::History;
pub use targets::format_targets;
pub use validation::validate_hpa;

use super::EventNote;
use normalize::{Bounds, Normalized, Rules};
use replicas::{Context, Readiness, Tolerances};

/// The `Pods` metric of finished requests per second, per pod.
pub const REQUESTS_PER_SECOND: &str = "requests_per_second";
/// The `Pods` metric of requests in flight, per pod.
pub const CONCURRENCY: &str = "concurrency";

const ABLE_TO_SCALE: &str = "AbleToScale";
const SCALING_ACTIVE: &str = "ScalingActive";
const SCALING_LIMITED: &str = "ScalingLimited";

/// One pod's metric values over the latest sampling window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PodMetricValues {
    /// CPU in use, millicores (CPU time over wall time).
    pub cpu_millicores: i64,
    /// Memory in use at the end of the window, bytes.
    pub memory_bytes: i64,
    /// Finished requests per second, in thousandths.
    pub requests_per_second_milli: i64,
    /// Requests in flight, averaged over the window, in thousandths.
    pub concurrency_milli: i64,
    /// When the window ended.
    pub timestamp: Timestamp,
    /// How long the window was.
    pub window: Duration,
}

/// The target's `/scale`, as the HPA reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.selector`; the pods passed in are those it selects. Empty: the target has none.
    pub selector: String,
}

/// The controller's settings (kube-controller-manager's `--horizontal-pod-autoscaler-*` flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// No change while the usage ratio is within `1 ± tolerance`.
    pub tolerance: f64,
    /// The scale-down stabilization window of an HPA that sets none.
    pub downscale_stabilization: Duration,
    /// How long after a pod starts its CPU samples are doubted.
    pub cpu_initialization_period: Duration,
    /// How soon after its start a pod's readiness change still counts as its first.
    pub initial_readiness_delay: Duration,
}

impl Default for Config {
    /// Kubernetes' defaults: 10%, 5 minutes, 5 minutes, 30 seconds.
    fn default() -> Self {
        Config {
            tolerance: 0.1,
            downscale_stabilization: Duration::from_secs(300),
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// Everything one sync of one HPA looks at.
pub struct Snapshot<'a> {
    pub hpa: &'a HorizontalPodAutoscaler,
    /// The target's scale, or why it could not be read (`deployments.apps "web" not found`).
    pub scale: Result<Scale, String>,
    /// The pods the target's selector matches.
    pub pods: &'a [Pod],
    /// Their metric values by pod name; a pod without an entry has no value yet.
    pub metrics: &'a BTreeMap<String, PodMetricValues>,
    /// The values of the HPA's `Object` metrics (see [`object_metric`]).
    pub objects: &'a ObjectValues,
    pub history: &'a History,
    pub now: Timestamp,
    pub config: &'a Config,
}

/// What one sync decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The replica count to write through the target's `/scale`.
    pub rescale: Option<Rescale>,
    /// The status to write (through `/status`) once the rescale, if any, succeeded.
    pub status: HorizontalPodAutoscalerStatus,
    /// Events to record whatever happens to the rescale (failed metrics...).
    pub events: Vec<EventNote>,
    /// The history to keep for the next sync once the rescale, if any, succeeded.
    pub history: History,
}

/// A change of the target's replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct Rescale {
    pub from: i32,
    pub replicas: i32,
    /// Why: `cpu resource utilization (percentage of request) above target`,
    /// `All metrics below target`...
    pub reason: String,
    failed_status: HorizontalPodAutoscalerStatus,
    failed_history: History,
}

impl Rescale {
    /// The event of a rescale that was written.
    pub fn succeeded(&self) -> EventNote {
        EventNote::normal(
            "SuccessfulRescale",
            format!("New size: {}; reason: {}", self.replicas, self.reason),
        )
    }

    /// What to write, keep and record when the `/scale` write failed with `error`.
    pub fn failed(&self, error: &str, now: Timestamp) -> (HorizontalPodAutoscalerStatus, History, EventNote) {
        let mut status = self.failed_status.clone();
        let mut conditions = status.conditions.take().unwrap_or_default();
        set_condition(
            &mut conditions,
            ABLE_TO_SCALE,
            false,
            "FailedUpdateScale",
            format!("the HPA controller was unable to update the target scale: {error}"),
            now,
        );
        status.conditions = Some(conditions);
        let event = EventNote::warning(
            "FailedRescale",
            format!("New size: {}; reason: {}; error: {error}", self.replicas, self.reason),
        );
        (status, self.failed_history.clone(), event)
    }
}

/// `setCondition`: sets a condition's status, reason and message, moving its transition time
/// only when the status changes. New conditions go last.
fn set_condition(
    conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" };
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            conditions.push(HorizontalPodAutoscalerCondition {
                type_: type_.into(),
                ..Default::default()
            });
            conditions.len() - 1
        }
    };
    let c = &mut conditions[index];
    if c.status != status {
        c.last_transition_time = Some(Time(whole_seconds(now)));
    }
    c.status = status.into();
    c.reason = Some(reason.into());
    c.message = Some(message);
}

/// Timestamps in status are kept to the second, as the API stores them.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// A tolerance quantity (`0.05`) as a fraction.
fn tolerance(q: Option<&capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity>, default: f64) -> f64 {
    q.and_then(|q| quantity::parse(&q.0).ok())
        .map_or(default, |q| q.nanos() as f64 / 1e9)
}

/// One sync of one HPA (`reconcileAutoscaler`).
pub fn reconcile(s: &Snapshot<'_>) -> Plan {
    let mut history = s.history.clone();
    let mut events = Vec::new();
    let old = s.hpa.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let spec = s.hpa.spec.clone().unwrap_or_default();
    let finish = |conditions: Vec<HorizontalPodAutoscalerCondition>, status: HorizontalPodAutoscalerStatus| {
        HorizontalPodAutoscalerStatus {
            conditions: Some(conditions),
            ..status
        }
    };
    let scale = match &s.scale {
        Ok(scale) => scale,
        Err(e) => {
            events.push(EventNote::warning("FailedGetScale", e.clone()));
            set_condition(
                &mut conditions,
                ABLE_TO_SCALE,
                false,
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
                s.now,
            );
            return Plan {
                rescale: None,
                status: finish(conditions, old),
                events,
                history,
            };
        }
    };
    set_condition(
        &mut conditions,
        ABLE_TO_SCALE,
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
        s.now,
    );
    let current = scale.replicas;
    // Scale to zero is the idle controller's; with replicas, at least one stays.
    let floor = spec.min_replicas.unwrap_or(1).max(1);
    let max = spec.max_replicas;
    // The status on an early return: the replicas seen, the rest as it was.
    let seen = |metrics| HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        current_metrics: metrics,
        ..old.clone()
    };
    let mut current_metrics = None;
    let (desired, reason) = if current == 0 {
        history = History::default();
        set_condition(
            &mut conditions,
            SCALING_ACTIVE,
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
            s.now,
        );
        (0, String::new())
    } else if current > max {
        history.record_initial(current, s.now);
        (max, "Current number of replicas above Spec.MaxReplicas".into())
    } else if current < floor {
        history.record_initial(current, s.now);
        (floor, "Current number of replicas below Spec.MinReplicas".into())
    } else {
        history.record_initial(current, s.now);
        if scale.selector.is_empty() {
            events.push(EventNote::warning("SelectorRequired", "selector is required".into()));
            set_condition(
                &mut conditions,
                SCALING_ACTIVE,
                false,
                "InvalidSelector",
                "the HPA target's scale is missing a selector".into(),
                s.now,
            );
            events.push(EventNote::warning(
                "FailedComputeMetricsReplicas",
                "selector is required".into(),
            ));
            return Plan {
                rescale: None,
                status: finish(conditions, seen(None)),
                events,
                history,
            };
        }
        let behavior = spec.behavior.as_ref();
        let up = scale_up_rules(behavior.and_then(|b| b.scale_up.as_ref()));
        let down = scale_down_rules(behavior.and_then(|b| b.scale_down.as_ref()));
        let cx = Context {
            current,
            pods: s.pods,
            tolerances: Tolerances {
                down: tolerance(down.tolerance.as_ref(), s.config.tolerance),
                up: tolerance(up.tolerance.as_ref(), s.config.tolerance),
            },
            readiness: Readiness {
                cpu_initialization_period: s.config.cpu_initialization_period,
                initial_readiness_delay: s.config.initial_readiness_delay,
            },
            now: s.now,
        };
        let computed = metrics::compute(spec.metrics.as_deref().unwrap_or_default(), &cx, s.metrics, s.objects);
        events.extend(computed.events);
        if let Some(invalid) = computed.invalid {
            set_condition(
                &mut conditions,
                SCALING_ACTIVE,
                false,
                invalid.reason,
                invalid.message,
                s.now,
            );
            events.push(EventNote::warning("FailedComputeMetricsReplicas", invalid.error));
            return Plan {
                rescale: None,
                status: finish(conditions, seen(Some(computed.statuses))),
                events,
                history,
            };
        }
        let (proposal, metric) = computed.best.unwrap_or_default();
        set_condition(
            &mut conditions,
            SCALING_ACTIVE,
            true,
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {metric}"),
            s.now,
        );
        let reason = if proposal > current {
            format!("{metric} above target")
        } else if proposal < current {
            "All metrics below target".into()
        } else {
            String::new()
        };
        let bounds = Bounds {
            current,
            desired: proposal,
            min: floor,
            max,
        };
        let Normalized { stabilized, limited } = match behavior {
            None => normalize::legacy(&mut history, bounds, s.config.downscale_stabilization, s.now),
            Some(_) => {
                let rules = Rules {
                    up: &up,
                    down: &down,
                    default_down_window: s.config.downscale_stabilization,
                };
                normalize::with_behavior(&mut history, rules, bounds, s.now)
            }
        };
        set_condition(
            &mut conditions,
            ABLE_TO_SCALE,
            true,
            stabilized.reason,
            stabilized.message.into(),
            s.now,
        );
        set_condition(
            &mut conditions,
            SCALING_LIMITED,
            limited.replicas != stabilized.replicas,
            limited.reason,
            limited.message.into(),
            s.now,
        );
        current_metrics = Some(computed.statuses);
        (limited.replicas, reason)
    };
    let rescale = (current != 0 && desired != current).then(|| {
        let failed_status = HorizontalPodAutoscalerStatus {
            conditions: Some(conditions.clone()),
            ..seen(current_metrics.clone())
        };
        let failed_history = history.clone();
        set_condition(
            &mut conditions,
            ABLE_TO_SCALE,
            true,
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
            s.now,
        );
        if let Some(b) = spec.behavior.as_ref() {
            let up = scale_up_rules(b.scale_up.as_ref());
            let down = scale_down_rules(b.scale_down.as_ref());
            history.record_scale(&up, &down, current, desired, s.now);
        }
        Rescale {
            from: current,
            replicas: desired,
            reason,
            failed_status,
            failed_history,
        }
    });
    let status = HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        desired_replicas: if rescale.is_some() { desired } else { current },
        last_scale_time: if rescale.is_some() {
            Some(Time(whole_seconds(s.now)))
        } else {
            old.last_scale_time.clone()
        },
        current_metrics,
        conditions: Some(conditions),
        observed_generation: old.observed_generation,
    };
    Plan {
        rescale,
        status,
        events,
        history,
    }
}
