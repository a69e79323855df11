//! Scale to zero on request traffic (Knative's idea, on plain Deployments), pure: which
//! workloads are opted in, which Services lead to them, and which of them have been idle
//! long enough to go to zero. The activator (`proxy::activator`) is the shell: it counts
//! the traffic, holds requests that arrive at zero replicas and scales the workload back up.
//!
//! A Deployment opts in with the annotation `capstan.dev/scale-to-zero: "true"`, or by being
//! the target of a HorizontalPodAutoscaler with `minReplicas: 0` (what Kubernetes' alpha
//! `HPAScaleToZero` gate allows). `capstan.dev/scale-to-zero-grace-period` sets how long it
//! may be idle before it goes to zero (30 s by default), and
//! `capstan.dev/scale-from-zero-timeout` how long a request waits for it to wake (30 s).

use std::collections::BTreeMap;
use std::time::Duration;

use capstan_core::k8s_openapi::api::apps::v1::Deployment;
use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use capstan_core::k8s_openapi::api::core::v1::Service;

/// The opt-in annotation; its value must be `"true"` or `"false"`.
pub const ANNOTATION: &str = "capstan.dev/scale-to-zero";
/// How long an opted-in workload may see no request before it goes to zero.
pub const GRACE_ANNOTATION: &str = "capstan.dev/scale-to-zero-grace-period";
/// How long a request held at zero replicas waits for a ready pod.
pub const TIMEOUT_ANNOTATION: &str = "capstan.dev/scale-from-zero-timeout";

pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A Deployment, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
}

/// A Service, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

/// How an opted-in workload scales to and from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub grace: Duration,
    pub timeout: Duration,
}

/// Whether `deployment` is opted in, and how. An annotation that does not parse is an error
/// naming it (the workload is then left alone).
pub fn policy(deployment: &Deployment, hpas: &[HorizontalPodAutoscaler]) -> Result<Option<Policy>, String> {
    let annotations = deployment.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    let by_annotation = match get(ANNOTATION) {
        None => false,
        Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(format!("{ANNOTATION}: {other:?} is neither \"true\" nor \"false\"")),
    };
    let namespace = deployment.metadata.namespace.as_deref().unwrap_or("default");
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let by_hpa = hpas.iter().any(|hpa| {
        hpa.metadata.namespace.as_deref().unwrap_or("default") == namespace
            && hpa.spec.as_ref().is_some_and(|s| {
                s.min_replicas == Some(0) && s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == name
            })
    });
    if !(by_annotation || by_hpa) {
        return Ok(None);
    }
    let duration = |key: &str, default: Duration| match get(key) {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|e| format!("{key}: {e}")),
    };
    Ok(Some(Policy {
        grace: duration(GRACE_ANNOTATION, DEFAULT_GRACE)?,
        timeout: duration(TIMEOUT_ANNOTATION, DEFAULT_TIMEOUT)?,
    }))
}

/// A duration as Go writes the simple ones (`500ms`, `30s`, `5m`, `1h`, `1m30s`), or a bare
/// number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (such as 30s, 5m or 1m30s)");
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// The opted-in workloads and the Services that lead to them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routes {
    /// Each Service whose selector picks an opted-in workload's pods.
    pub by_service: BTreeMap<ServiceKey, Vec<Workload>>,
    /// Each opted-in workload's policy and current `spec.replicas`.
    pub workloads: BTreeMap<Workload, (Policy, i32)>,
    /// Workloads whose annotations do not parse, with why.
    pub invalid: BTreeMap<Workload, String>,
}

impl Routes {
    /// Works out the routes from the cluster's objects.
    pub fn new(services: &[Service], deployments: &[Deployment], hpas: &[HorizontalPodAutoscaler]) -> Routes {
        let mut routes = Routes::default();
        let mut labelled = Vec::new();
        for d in deployments {
            let workload = Workload {
                namespace: d.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
                name: d.metadata.name.clone().unwrap_or_default(),
            };
            match policy(d, hpas) {
                Ok(Some(policy)) => {
                    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let labels = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    routes.workloads.insert(workload.clone(), (policy, replicas));
                    labelled.push((workload, labels));
                }
                Ok(None) => {}
                Err(why) => {
                    routes.invalid.insert(workload, why);
                }
            }
        }
        for svc in services {
            let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            if selector.is_empty() {
                continue;
            }
            let namespace = svc.metadata.namespace.clone().unwrap_or_else(|| "default".into());
            let behind: Vec<Workload> = labelled
                .iter()
                .filter(|(w, labels)| {
                    w.namespace == namespace && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .map(|(w, _)| w.clone())
                .collect();
            if !behind.is_empty() {
                let key = ServiceKey {
                    namespace,
                    name: svc.metadata.name.clone().unwrap_or_default(),
                };
                routes.by_service.insert(key, behind);
            }
        }
        routes
    }

    /// The policy that applies to a request held for `service`: the shortest timeout of the
    /// workloads behind it. `None` when the Service leads to no opted-in workload.
    pub fn hold_policy(&self, service: &ServiceKey) -> Option<(Vec<Workload>, Duration)> {
        let workloads = self.by_service.get(service)?;
        let timeout = workloads
            .iter()
            .filter_map(|w| self.workloads.get(w).map(|(p, _)| p.timeout))
            .min()?;
        Some((workloads.clone(), timeout))
    }
}

/// The traffic one Service has seen, on the activator's clock (time since it started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// When its last request arrived (or, for one with none yet, when counting began).
    pub last: Duration,
    /// Requests in flight now, held ones included.
    pub in_flight: u64,
}

/// The workloads to scale to zero at `now`: running, opted in, and with no request in flight
/// and none for their grace period on any Service that leads to them. A workload no Service
/// leads to is left alone: nothing could wake it.
pub fn idle(routes: &Routes, traffic: impl Fn(&ServiceKey) -> Traffic, now: Duration) -> Vec<Workload> {
    let mut seen: BTreeMap<&Workload, Traffic> = BTreeMap::new();
    for (service, workloads) in &routes.by_service {
        let t = traffic(service);
        for w in workloads {
            let entry = seen.entry(w).or_default();
            entry.last = entry.last.max(t.last);
            entry.in_flight += t.in_flight;
        }
    }
    seen.into_iter()
        .filter(|(w, t)| {
            routes.workloads.get(*w).is_some_and(|(policy, replicas)| {
                *replicas > 0 && t.in_flight == 0 && now.saturating_sub(t.last) >= policy.grace
            })
        })
        .map(|(w, _)| w.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, annotations: serde_json::Value, replicas: i32, app: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app, "tier": "web"}}, "spec": {"containers": []}}}
        }))
        .unwrap()
    }

    fn service(name: &str, selector: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector, "ports": [{"port": 80}]}}))
        .unwrap()
    }

    fn hpa(target: &str, min: i32) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({"metadata": {"name": "h", "namespace": "default"},
            "spec": {"minReplicas": min, "maxReplicas": 5,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}}}))
        .unwrap()
    }

    fn w(name: &str) -> Workload {
        Workload {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn s(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn durations_parse_as_go_writes_them() {
        let cases = [
            ("30", Some(30_000)),
            ("30s", Some(30_000)),
            ("500ms", Some(500)),
            ("5m", Some(300_000)),
            ("1m30s", Some(90_000)),
            ("1h", Some(3_600_000)),
            ("", None),
            ("soon", None),
            ("5 m", None),
            ("3d", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn opt_in_by_annotation_or_hpa_with_min_zero() {
        let plain = deployment("a", json!({}), 1, "a");
        assert_eq!(policy(&plain, &[]), Ok(None));
        assert_eq!(policy(&plain, &[hpa("a", 1)]), Ok(None));
        let by_hpa = policy(&plain, &[hpa("a", 0)]).unwrap().unwrap();
        assert_eq!(by_hpa.grace, DEFAULT_GRACE);
        let annotated = deployment(
            "b",
            json!({ANNOTATION: "true", GRACE_ANNOTATION: "2s", TIMEOUT_ANNOTATION: "500ms"}),
            1,
            "b",
        );
        assert_eq!(
            policy(&annotated, &[]),
            Ok(Some(Policy {
                grace: Duration::from_secs(2),
                timeout: Duration::from_millis(500)
            }))
        );
        let off = deployment("c", json!({ANNOTATION: "false"}), 1, "c");
        assert_eq!(policy(&off, &[]), Ok(None));
        let bad = deployment("d", json!({ANNOTATION: "yes"}), 1, "d");
        assert!(policy(&bad, &[]).unwrap_err().contains(ANNOTATION));
        let bad_grace = deployment("e", json!({ANNOTATION: "true", GRACE_ANNOTATION: "soon"}), 1, "e");
        assert!(policy(&bad_grace, &[]).unwrap_err().contains(GRACE_ANNOTATION));
    }

    #[test]
    fn services_lead_to_the_opted_in_workloads_their_selector_picks() {
        let on = json!({ANNOTATION: "true"});
        let deployments = [
            deployment("fn", on.clone(), 1, "fn"),
            deployment("other", on.clone(), 1, "other"),
            deployment("plain", json!({}), 1, "plain"),
            deployment("broken", json!({ANNOTATION: "maybe"}), 1, "broken"),
        ];
        let services = [
            service("fn", json!({"app": "fn"})),
            service("tier", json!({"tier": "web"})),
            service("plain", json!({"app": "plain"})),
            service("mismatch", json!({"app": "fn", "tier": "db"})),
        ];
        let routes = Routes::new(&services, &deployments, &[]);
        assert_eq!(routes.by_service[&s("fn")], [w("fn")]);
        assert_eq!(routes.by_service[&s("tier")], [w("fn"), w("other")]);
        assert!(!routes.by_service.contains_key(&s("plain")));
        assert!(!routes.by_service.contains_key(&s("mismatch")));
        assert!(routes.invalid[&w("broken")].contains("maybe"));
        assert_eq!(routes.hold_policy(&s("fn")).unwrap().1, DEFAULT_TIMEOUT);
        assert_eq!(routes.hold_policy(&s("plain")), None);
    }

    #[test]
    fn idle_workloads_go_to_zero_after_their_grace_period() {
        let on = json!({ANNOTATION: "true", GRACE_ANNOTATION: "10s"});
        let deployments = [
            deployment("fn", on.clone(), 2, "fn"),
            deployment("zero", on.clone(), 0, "zero"),
            deployment("busy", on.clone(), 1, "busy"),
            deployment("alone", on.clone(), 1, "alone"),
        ];
        let services = [
            service("fn", json!({"app": "fn"})),
            service("zero", json!({"app": "zero"})),
            service("busy", json!({"app": "busy"})),
        ];
        let routes = Routes::new(&services, &deployments, &[]);
        let secs = Duration::from_secs;
        let traffic = |last: u64, in_flight: u64| {
            move |_: &ServiceKey| Traffic {
                last: secs(last),
                in_flight,
            }
        };
        // 9 s idle: not yet; 10 s: fn goes (zero is at zero, alone has no Service).
        assert!(idle(&routes, traffic(0, 0), secs(9)).is_empty());
        assert_eq!(idle(&routes, traffic(0, 0), secs(10)), [w("busy"), w("fn")]);
        // A request in flight (a slow one, or one held while it wakes) keeps it up.
        assert!(idle(&routes, traffic(0, 1), secs(60)).is_empty());
        // Recent traffic on one of two Services keeps the workload behind both.
        let both = Routes::new(
            &[
                service("fn", json!({"app": "fn"})),
                service("web", json!({"tier": "web"})),
            ],
            &[deployment("fn", on, 1, "fn")],
            &[],
        );
        let mixed = |s: &ServiceKey| Traffic {
            last: if s.name == "web" { secs(55) } else { secs(0) },
            in_flight: 0,
        };
        assert!(idle(&both, mixed, secs(60)).is_empty());
        assert_eq!(idle(&both, mixed, secs(65)), [w("fn")]);
    }
}
