//! From the metrics' recommendation to the replica count to set (`horizontal.go`'s
//! normalization): stabilization over the recent recommendations, then the rate limits of the
//! scaling policies, then `minReplicas`/`maxReplicas`.
//!
//! Two paths, as in Kubernetes: an HPA without `behavior` gets the legacy rules (the highest
//! recommendation of the downscale window; at most double, or 4, pods per sync), one with it
//! gets the scale-up and scale-down rules. The history of recommendations and of this
//! controller's own scale changes is data passed in and returned, kept by the shell per HPA.

use std::time::Duration;

use capstan_core::k8s_openapi::api::autoscaling::v2::HPAScalingRules;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::defaults::{DISABLED_POLICY, MIN_POLICY, PERCENT_POLICY, PODS_POLICY};

/// Without `behavior`, a scale-up may at most multiply the replicas by this...
const SCALE_UP_LIMIT_FACTOR: f64 = 2.0;
/// ...or reach this many, whichever is more.
const SCALE_UP_LIMIT_MINIMUM: f64 = 4.0;

/// One sync's recommendation before stabilization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recommendation {
    pub at: Timestamp,
    pub replicas: i32,
}

/// A change of the target's replicas this controller made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    pub at: Timestamp,
    /// How many replicas were added (scale-up) or removed (scale-down).
    pub change: i32,
}

/// What an HPA's normalization remembers between syncs (kube-controller-manager keeps it in
/// memory too: a restart forgets it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub recommendations: Vec<Recommendation>,
    pub scale_up_events: Vec<ScaleEvent>,
    pub scale_down_events: Vec<ScaleEvent>,
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

fn seconds(s: i32) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

impl History {
    /// `recordInitialRecommendation`: the first sync counts the current replicas as a
    /// recommendation, so a restart does not scale down at once.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                at: now,
                replicas: current,
            });
        }
    }

    /// `storeScaleEvent`: remembers a rescale for the policies' periods (only with `behavior`,
    /// the only path that reads them), forgetting events older than the longest period.
    pub fn record_scale(&mut self, up: &HPAScalingRules, down: &HPAScalingRules, from: i32, to: i32, now: Timestamp) {
        let (events, rules, change) = if to > from {
            (&mut self.scale_up_events, up, to - from)
        } else {
            (&mut self.scale_down_events, down, from - to)
        };
        let longest = rules
            .policies
            .iter()
            .flatten()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0);
        let cutoff = minus(now, seconds(longest));
        events.retain(|e| e.at >= cutoff);
        events.push(ScaleEvent { at: now, change });
    }
}

/// A normalization step's outcome: the count and the condition reason and message that
/// explain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub replicas: i32,
    pub reason: &'static str,
    pub message: &'static str,
}

const READY_FOR_NEW_SCALE: (&str, &str) = ("ReadyForNewScale", "recommended size matches current size");
const SCALE_DOWN_STABILIZED: (&str, &str) = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const SCALE_UP_STABILIZED: (&str, &str) = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
const WITHIN_RANGE: (&str, &str) = ("DesiredWithinRange", "the desired count is within the acceptable range");
const SCALE_UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);

fn step(replicas: i32, (reason, message): (&'static str, &'static str)) -> Step {
    Step {
        replicas,
        reason,
        message,
    }
}

/// The bounds and counts of one normalization.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub current: i32,
    /// The metrics' recommendation.
    pub desired: i32,
    pub min: i32,
    pub max: i32,
}

/// The two steps' results: stabilization (for `AbleToScale`) and limits (for `ScalingLimited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Normalized {
    pub stabilized: Step,
    pub limited: Step,
}

/// `normalizeDesiredReplicas`, for an HPA without `behavior`: the highest recommendation of
/// the last `window`, then at most `max(2 × current, 4)` and within min and max.
pub fn legacy(history: &mut History, b: Bounds, window: Duration, now: Timestamp) -> Normalized {
    let cutoff = minus(now, window);
    let highest = history
        .recommendations
        .iter()
        .filter(|r| r.at >= cutoff)
        .map(|r| r.replicas)
        .fold(b.desired, i32::max);
    history.recommendations.retain(|r| r.at >= cutoff);
    history.recommendations.push(Recommendation {
        at: now,
        replicas: b.desired,
    });
    let stabilized = if highest == b.desired {
        step(highest, READY_FOR_NEW_SCALE)
    } else {
        step(highest, SCALE_DOWN_STABILIZED)
    };
    let scale_up_limit = (SCALE_UP_LIMIT_FACTOR * f64::from(b.current)).max(SCALE_UP_LIMIT_MINIMUM) as i32;
    let (upper, why) = if b.max > scale_up_limit {
        (scale_up_limit, SCALE_UP_LIMIT)
    } else {
        (b.max, TOO_MANY)
    };
    let limited = if highest < b.min {
        step(b.min, TOO_FEW)
    } else if highest > upper {
        step(upper, why)
    } else {
        step(highest, WITHIN_RANGE)
    };
    Normalized { stabilized, limited }
}

/// The scaling rules of both directions, defaults filled in, and the scale-down window the
/// controller uses when the HPA sets none.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub up: &'a HPAScalingRules,
    pub down: &'a HPAScalingRules,
    pub default_down_window: Duration,
}

/// `normalizeDesiredReplicasWithBehaviors`: stabilize within the lowest recommendation of the
/// scale-up window and the highest of the scale-down window, then apply the policies' rates.
pub fn with_behavior(history: &mut History, rules: Rules<'_>, b: Bounds, now: Timestamp) -> Normalized {
    let up_window = rules.up.stabilization_window_seconds.map_or(Duration::ZERO, seconds);
    let down_window = rules
        .down
        .stabilization_window_seconds
        .map_or(rules.default_down_window, seconds);
    let (up_cutoff, down_cutoff) = (minus(now, up_window), minus(now, down_window));
    let (mut up, mut down) = (b.desired, b.desired);
    for r in &history.recommendations {
        if r.at > up_cutoff {
            up = up.min(r.replicas);
        }
        if r.at > down_cutoff {
            down = down.max(r.replicas);
        }
    }
    let recommendation = b.current.max(up).min(down);
    history
        .recommendations
        .retain(|r| r.at >= up_cutoff || r.at >= down_cutoff);
    history.recommendations.push(Recommendation {
        at: now,
        replicas: b.desired,
    });
    let stabilized = if recommendation == b.desired {
        step(recommendation, READY_FOR_NEW_SCALE)
    } else if b.desired >= b.current {
        step(recommendation, SCALE_UP_STABILIZED)
    } else {
        step(recommendation, SCALE_DOWN_STABILIZED)
    };
    let limited = behavior_rate(
        history,
        rules,
        Bounds {
            desired: recommendation,
            ..b
        },
        now,
    );
    Normalized { stabilized, limited }
}

/// `convertDesiredReplicasWithBehaviorRate`.
fn behavior_rate(history: &History, rules: Rules<'_>, b: Bounds, now: Timestamp) -> Step {
    if b.desired > b.current {
        let limit = scale_up_limit(b.current, history, rules.up, now).max(b.current);
        let (upper, why) = if b.max > limit {
            (limit, SCALE_UP_LIMIT)
        } else {
            (b.max, TOO_MANY)
        };
        if b.desired > upper {
            return step(upper, why);
        }
    } else if b.desired < b.current {
        let limit = scale_down_limit(b.current, history, rules.down, now).min(b.current);
        let (lower, why) = if b.min < limit {
            (limit, SCALE_DOWN_LIMIT)
        } else {
            (b.min, TOO_FEW)
        };
        if b.desired < lower {
            return step(lower, why);
        }
    }
    step(b.desired, WITHIN_RANGE)
}

/// `getReplicasChangePerPeriod`: the replicas changed within the last `period_seconds`.
fn changed_within(events: &[ScaleEvent], period_seconds: i32, now: Timestamp) -> i32 {
    let cutoff = minus(now, seconds(period_seconds));
    events.iter().filter(|e| e.at > cutoff).map(|e| e.change).sum()
}

/// The replicas at the start of a policy's period: now's, less what was added within it, plus
/// what was removed.
fn period_start(current: i32, history: &History, period_seconds: i32, now: Timestamp) -> i32 {
    current - changed_within(&history.scale_up_events, period_seconds, now)
        + changed_within(&history.scale_down_events, period_seconds, now)
}

/// `calculateScaleUpLimitWithScalingRules`: the most replicas the policies allow now.
fn scale_up_limit(current: i32, history: &History, rules: &HPAScalingRules, now: Timestamp) -> i32 {
    let select = rules.select_policy.as_deref().unwrap_or_default();
    if select == DISABLED_POLICY {
        return current;
    }
    let proposals = rules.policies.iter().flatten().map(|p| {
        let start = period_start(current, history, p.period_seconds, now);
        match p.type_.as_str() {
            PODS_POLICY => start + p.value,
            PERCENT_POLICY => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
            _ => start,
        }
    });
    if select == MIN_POLICY {
        proposals.min().unwrap_or(i32::MAX)
    } else {
        proposals.max().unwrap_or(i32::MIN)
    }
}

/// `calculateScaleDownLimitWithBehaviors`: the fewest replicas the policies allow now.
fn scale_down_limit(current: i32, history: &History, rules: &HPAScalingRules, now: Timestamp) -> i32 {
    let select = rules.select_policy.as_deref().unwrap_or_default();
    if select == DISABLED_POLICY {
        return current;
    }
    let proposals = rules.policies.iter().flatten().map(|p| {
        let start = period_start(current, history, p.period_seconds, now);
        match p.type_.as_str() {
            PODS_POLICY => start - p.value,
            PERCENT_POLICY => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
            _ => start,
        }
    });
    if select == MIN_POLICY {
        proposals.max().unwrap_or(i32::MIN)
    } else {
        proposals.min().unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
