//! ResourceQuota: what objects count against a quota, the usage the quota controller records, and
//! the admission check kube-apiserver runs on creates and updates — after the ResourceQuota
//! admission plugin (`k8s.io/apiserver/pkg/admission/plugin/resourcequota`) and the quota
//! evaluators (`pkg/quota/v1/evaluator/core`, `k8s.io/apiserver/pkg/quota/v1/generic`).
//!
//! An *evaluator* per kind of object decides which quota resource names it can affect, what one
//! object uses, and which quota scopes it falls under: pods (compute resources, `pods`,
//! `count/pods`), services (`services`, `services.nodeports`, `services.loadbalancers`),
//! persistent volume claims (`requests.storage`, per storage class), and an object count for
//! everything else (`count/<resource>.<group>`, plus the legacy `configmaps`, `secrets`,
//! `resourcequotas`, `replicationcontrollers`). Admission reads a quota's `status.hard` and
//! `status.used`, as the plugin does; a quota whose status the controller has not written yet
//! imposes nothing. Messages are kube-apiserver's own.
//!
//! Scopes: `Terminating`, `NotTerminating`, `BestEffort`, `NotBestEffort`, `PriorityClass`
//! (`Exists`, `DoesNotExist`, `In`, `NotIn`) and `CrossNamespacePodAffinity` apply to pods; a
//! scoped quota matches no other kind of object, as in Kubernetes. Not modelled: the
//! `VolumeAttributesClass` scope, the apiserver's `LimitedResources` configuration, and pods stuck
//! terminating past their grace period (which need a clock).

use std::collections::{BTreeMap, BTreeSet};

use capstan_core::defaults::qos_class;
use capstan_core::k8s_openapi::api::core::v1::{
    Affinity, PersistentVolumeClaim, Pod, PodAffinityTerm, PodSpec, ResourceQuota, ScopedResourceSelectorRequirement,
    Service,
};
use capstan_core::quantity::Quantity;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::limit_range::{
    ResourceList, add, add_list, is_extended_resource_name, is_hugepages, limits_of, parse_list, pod_sum, requests_of,
};

/// Why an object may not be admitted under the namespace's quotas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The object would take a quota's usage past its hard limit.
    #[error("exceeded quota: {quota}, requested: {requested}, used: {used}, limited: {limited}")]
    Exceeded {
        quota: String,
        requested: String,
        used: String,
        limited: String,
    },
    /// A quota limits cpu or memory but a container states no request or limit for it.
    #[error("failed quota: {quota}: {message}")]
    Constraints { quota: String, message: String },
    /// The quota controller has not yet recorded usage of a resource the object would consume.
    #[error("status unknown for quota: {quota}, resources: {resources}")]
    StatusUnknown { quota: String, resources: String },
    /// The object asks for a negative amount of a resource.
    #[error("quota usage is negative for resource(s): {resources}")]
    NegativeUsage { resources: String },
}

/// Quota resource name → amount: what an object uses, or a quota's `status.used`.
pub type Usage = BTreeMap<String, Quantity>;

/// The quota resources one pod container's requests and limits map to, without `pods`' lifecycle rule.
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];
/// Quota resources that every container must state when a quota limits them (a compatibility
/// rule from before QoS classes existed).
const EXPLICIT_PER_CONTAINER: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];
const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];
const CLAIM_RESOURCES: &[&str] = &[
    "count/persistentvolumeclaims",
    "persistentvolumeclaims",
    "requests.storage",
];
/// How a per-storage-class quota resource is spelled: `<class>.storageclass.storage.k8s.io/<resource>`.
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// How objects of one group/resource are counted.
enum Evaluator {
    Pods,
    Services,
    Claims,
    /// `count/<resource>[.<group>]`, and for a few core kinds also a legacy unprefixed name.
    Count {
        name: String,
        alias: Option<&'static str>,
    },
}

fn evaluator(group: &str, resource: &str) -> Evaluator {
    match (group, resource) {
        ("", "pods") => Evaluator::Pods,
        ("", "services") => Evaluator::Services,
        ("", "persistentvolumeclaims") => Evaluator::Claims,
        _ => Evaluator::Count {
            name: if group.is_empty() {
                format!("count/{resource}")
            } else {
                format!("count/{resource}.{group}")
            },
            alias: match (group, resource) {
                ("", "configmaps") => Some("configmaps"),
                ("", "secrets") => Some("secrets"),
                ("", "resourcequotas") => Some("resourcequotas"),
                ("", "replicationcontrollers") => Some("replicationcontrollers"),
                _ => None,
            },
        },
    }
}

impl Evaluator {
    /// Whether a create (`update == false`) or an update can change usage. Pods' resources are
    /// immutable and counts change only on create; a service's type and a claim's size can change.
    fn handles(&self, update: bool) -> bool {
        !update || matches!(self, Evaluator::Services | Evaluator::Claims)
    }

    /// Which of the given quota resource names this kind of object can consume.
    fn matching<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
        names.into_iter().filter(|n| self.matches_name(n)).cloned().collect()
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            Evaluator::Pods => {
                POD_RESOURCES.contains(&name)
                    || is_hugepages(name)
                    || name.starts_with("requests.hugepages-")
                    || name.strip_prefix("requests.").is_some_and(is_extended_resource_name)
            }
            Evaluator::Services => SERVICE_RESOURCES.contains(&name),
            Evaluator::Claims => {
                CLAIM_RESOURCES.contains(&name)
                    || name.split_once(STORAGE_CLASS_SUFFIX).is_some_and(|(class, resource)| {
                        !class.is_empty() && ["persistentvolumeclaims", "requests.storage"].contains(&resource)
                    })
            }
            Evaluator::Count { name: count, alias } => name == count || Some(name) == *alias,
        }
    }

    fn usage(&self, object: &Value) -> ResourceList {
        match self {
            Evaluator::Pods => pod_usage(&typed(object)),
            Evaluator::Services => service_usage(&typed(object)),
            Evaluator::Claims => claim_usage(&typed(object)),
            Evaluator::Count { name, alias } => {
                let mut usage = ResourceList::from([(name.clone(), one())]);
                if let Some(alias) = alias {
                    usage.insert(alias.to_string(), one());
                }
                usage
            }
        }
    }

    /// Whether the object falls under every scope of the quota. Only pods have scopes; a
    /// scoped quota matches nothing else.
    fn in_scopes(&self, quota: &ResourceQuota, object: &Value) -> bool {
        let selectors = scope_selectors(quota);
        if selectors.is_empty() {
            return true;
        }
        if !matches!(self, Evaluator::Pods) {
            return false;
        }
        let pod: Pod = typed(object);
        selectors.iter().all(|s| pod_in_scope(&pod, s))
    }

    /// Rejects a pod with a container that does not state a cpu or memory request or limit the
    /// quota needs, in the plugin's words (`must specify limits.cpu for: a,b`).
    fn constraints(&self, restricted: &BTreeSet<String>, object: &Value) -> Result<(), String> {
        let Evaluator::Pods = self else {
            return Ok(());
        };
        let required: Vec<&String> = restricted
            .iter()
            .filter(|r| EXPLICIT_PER_CONTAINER.contains(&r.as_str()))
            .collect();
        if required.is_empty() {
            return Ok(());
        }
        let pod: Pod = typed(object);
        let spec = pod.spec.unwrap_or_default();
        let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            let stated = compute_usage(&requests_of(c), &limits_of(c));
            for r in required.iter().filter(|r| !stated.contains_key(r.as_str())) {
                missing.entry(r.as_str()).or_default().insert(c.name.as_str());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, names)| {
                format!(
                    "must specify {r} for: {}",
                    names.iter().copied().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        Err(parts.join("; "))
    }
}

/// What one object counts against quota, by quota resource name: e.g. a running pod requesting
/// `500m` cpu yields `pods=1, count/pods=1, cpu=500m, requests.cpu=500m`. A terminal pod
/// (Succeeded or Failed) counts only towards `count/pods`, which tracks every pod in storage.
pub fn usage(group: &str, resource: &str, object: &Value) -> Usage {
    evaluator(group, resource).usage(object)
}

/// A quota's usage over the given objects of its namespace (the quota controller's
/// `status.used`): every resource in `spec.hard` that objects can consume, starting at zero,
/// summed over the objects that fall under the quota's scopes.
pub fn used<'a>(quota: &ResourceQuota, objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>) -> Usage {
    let hard = parse_list(quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
    let mut total: ResourceList = hard
        .keys()
        .filter(|name| is_trackable(name))
        .map(|name| (name.clone(), Quantity::from_nanos(0)))
        .collect();
    for (group, resource, object) in objects {
        let evaluator = evaluator(group, resource);
        let matched = evaluator.matching(hard.keys());
        if matched.is_empty() || !evaluator.in_scopes(quota, object) {
            continue;
        }
        let usage: ResourceList = evaluator
            .usage(object)
            .into_iter()
            .filter(|(name, _)| matched.contains(name))
            .collect();
        add_list(&mut total, &usage);
    }
    total
}

/// True when some evaluator can count the resource, so the controller reports it (as zero if
/// nothing uses it).
fn is_trackable(name: &str) -> bool {
    name.starts_with("count/")
        || [Evaluator::Pods, Evaluator::Services, Evaluator::Claims]
            .iter()
            .any(|e| e.matches_name(name))
        || ["configmaps", "secrets", "resourcequotas", "replicationcontrollers"].contains(&name)
}

/// Checks a create (`old == None`) or update of an object against the namespace's quotas, as the
/// ResourceQuota admission plugin does. On success returns the new `status.used` of each quota
/// whose usage the object changes (nothing to persist when the list is empty).
pub fn admit(
    quotas: &[ResourceQuota],
    group: &str,
    resource: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<Vec<(String, Usage)>, QuotaError> {
    let evaluator = evaluator(group, resource);
    if !evaluator.handles(old.is_some()) {
        return Ok(Vec::new());
    }
    // The quotas that apply: they limit something this object uses and it is in their scopes.
    let mut applicable = Vec::new();
    for quota in quotas {
        let status = quota.status.as_ref();
        let hard = parse_list(status.and_then(|s| s.hard.as_ref()));
        let restricted = evaluator.matching(hard.keys());
        if restricted.is_empty() || !evaluator.in_scopes(quota, new) {
            continue;
        }
        let name = quota.metadata.name.clone().unwrap_or_default();
        evaluator
            .constraints(&restricted, new)
            .map_err(|message| QuotaError::Constraints {
                quota: name.clone(),
                message,
            })?;
        let used = parse_list(status.and_then(|s| s.used.as_ref()));
        if restricted.iter().any(|r| !used.contains_key(r)) {
            return Err(QuotaError::StatusUnknown {
                quota: name,
                resources: join_names(restricted.iter()),
            });
        }
        applicable.push((name, hard, used));
    }
    let mut delta = evaluator.usage(new);
    let negative: Vec<&String> = delta.iter().filter(|(_, q)| q.nanos() < 0).map(|(k, _)| k).collect();
    if !negative.is_empty() {
        return Err(QuotaError::NegativeUsage {
            resources: join_names(negative),
        });
    }
    // An update is charged for what it adds; a "create on update" (no resourceVersion) for all.
    if let Some(old) = old.filter(|o| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
    }) {
        delta = subtract_non_negative(&delta, &evaluator.usage(old));
    }
    delta.retain(|_, q| !q.is_zero());
    if delta.is_empty() {
        return Ok(Vec::new());
    }
    let mut changed = Vec::new();
    for (name, hard, used) in applicable {
        let requested = mask(&delta, hard.keys());
        let mut new_used = used.clone();
        add_list(&mut new_used, &requested);
        let exceeded: Vec<&String> = requested
            .keys()
            .filter(|k| hard.get(*k).is_some_and(|limit| new_used[*k] > *limit))
            .collect();
        if !exceeded.is_empty() {
            return Err(QuotaError::Exceeded {
                quota: name,
                requested: pretty(&mask(&requested, exceeded.iter().copied())),
                used: pretty(&mask(&used, exceeded.iter().copied())),
                limited: pretty(&mask(&hard, exceeded.iter().copied())),
            });
        }
        if new_used != used {
            changed.push((name, new_used));
        }
    }
    Ok(changed)
}

/// `a - b` per resource, never below zero; resources only in `b` come out as zero.
fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let zero = Quantity::from_nanos(0);
    let mut out = ResourceList::new();
    for (k, v) in a {
        let diff = match b.get(k) {
            Some(prev) => v.checked_add(&Quantity::from_nanos(-prev.nanos())).unwrap_or(zero),
            None => *v,
        };
        out.insert(k.clone(), if diff > zero { diff } else { zero });
    }
    for k in b.keys() {
        out.entry(k.clone()).or_insert(zero);
    }
    out
}

fn mask<'a>(list: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    names
        .into_iter()
        .filter_map(|n| Some((n.clone(), *list.get(n)?)))
        .collect()
}

/// `requests.cpu=500m,requests.memory=1Gi`, sorted by name (the plugin's `prettyPrint`).
fn pretty(list: &ResourceList) -> String {
    let parts: Vec<String> = list.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let sorted: BTreeSet<&str> = names.into_iter().map(String::as_str).collect();
    sorted.into_iter().collect::<Vec<_>>().join(",")
}

/// An object of a known type, or its default when the JSON does not fit (a stored object always
/// does: it was validated on the way in).
fn typed<T: DeserializeOwned + Default>(object: &Value) -> T {
    serde_json::from_value(object.clone()).unwrap_or_default()
}

fn one() -> Quantity {
    Quantity::from_units(1)
}

/// A pod's usage (`PodUsageFunc`): `count/pods` always; compute resources and `pods` only while
/// the pod is not terminal.
fn pod_usage(pod: &Pod) -> ResourceList {
    let mut usage = ResourceList::from([("count/pods".to_string(), one())]);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return usage;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    add_list(&mut usage, &compute_usage(&pod_requests(&spec), &pod_limits(&spec)));
    usage
}

/// The pod-level resources Kubernetes supports (`spec.resources`), which replace the containers' sums.
const POD_LEVEL_RESOURCES: &[&str] = &["cpu", "memory"];

/// Pod-level `resources` (cpu and memory) replace the containers' sum where set.
fn override_pod_level(
    list: &mut ResourceList,
    pod_level: Option<&BTreeMap<String, capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) {
    for (k, v) in parse_list(pod_level)
        .into_iter()
        .filter(|(k, _)| POD_LEVEL_RESOURCES.contains(&k.as_str()))
    {
        list.insert(k, v);
    }
}

/// `PodRequests`: containers' sum (init containers by their peak), pod-level requests where set,
/// plus the runtime's overhead.
fn pod_requests(spec: &PodSpec) -> ResourceList {
    let mut requests = pod_sum(spec, requests_of);
    override_pod_level(&mut requests, spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
    add_list(&mut requests, &parse_list(spec.overhead.as_ref()));
    requests
}

/// `PodLimits`: as [`pod_requests`], overhead added only to resources that have a limit.
fn pod_limits(spec: &PodSpec) -> ResourceList {
    let mut limits = pod_sum(spec, limits_of);
    override_pod_level(&mut limits, spec.resources.as_ref().and_then(|r| r.limits.as_ref()));
    for (k, overhead) in parse_list(spec.overhead.as_ref()) {
        if let Some(limit) = limits.get_mut(&k) {
            *limit = add(limit, &overhead);
        }
    }
    limits
}

/// Quota resource names for a set of requests and limits (`podComputeUsageHelper`): `pods=1`,
/// `cpu`/`requests.cpu` from the cpu request, `limits.cpu` from its limit, likewise memory and
/// ephemeral storage; hugepages and extended resources by their request.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut usage = ResourceList::from([("pods".to_string(), one())]);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            usage.insert(name.to_string(), *q);
            usage.insert(format!("requests.{name}"), *q);
        }
        if let Some(q) = limits.get(name) {
            usage.insert(format!("limits.{name}"), *q);
        }
    }
    for (name, q) in requests {
        if is_hugepages(name) {
            usage.insert(name.clone(), *q);
            usage.insert(format!("requests.{name}"), *q);
        }
        if is_extended_resource_name(name) {
            usage.insert(format!("requests.{name}"), *q);
        }
    }
    usage
}

/// A service's usage: one service (and `count/services`); node ports for NodePort and
/// LoadBalancer services; one load balancer for a LoadBalancer.
fn service_usage(svc: &Service) -> ResourceList {
    let mut usage = ResourceList::from([("count/services".to_string(), one()), ("services".to_string(), one())]);
    let spec = svc.spec.clone().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let count = |n: usize| Quantity::from_units(n as i64);
    match spec.type_.as_deref() {
        Some("NodePort") => {
            usage.insert("services.nodeports".to_string(), count(ports.len()));
        }
        Some("LoadBalancer") => {
            // With node port allocation switched off only explicitly requested node ports count.
            let node_ports = if spec.allocate_load_balancer_node_ports == Some(false) {
                ports.iter().filter(|p| p.node_port.unwrap_or(0) != 0).count()
            } else {
                ports.len()
            };
            usage.insert("services.nodeports".to_string(), count(node_ports));
            usage.insert("services.loadbalancers".to_string(), one());
        }
        _ => {}
    }
    usage
}

/// A claim's usage: one claim, its storage request (the larger of requested and allocated,
/// rounded up to whole bytes), both also per storage class when it has one.
fn claim_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut usage = ResourceList::from([
        ("count/persistentvolumeclaims".to_string(), one()),
        ("persistentvolumeclaims".to_string(), one()),
    ]);
    let class = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .or(pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_ref()))
        .filter(|c| !c.is_empty());
    if let Some(class) = class {
        usage.insert(format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), one());
    }
    let requested = parse_list(
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    let allocated = parse_list(pvc.status.as_ref().and_then(|s| s.allocated_resources.as_ref()));
    let storage = [requested.get("storage"), allocated.get("storage")]
        .into_iter()
        .flatten()
        .max()
        .map(|q| {
            let whole = q.as_bytes_ceil();
            if q.nanos() == whole * 1_000_000_000 {
                *q
            } else {
                Quantity::from_nanos(whole * 1_000_000_000)
            }
        });
    if let Some(storage) = storage {
        usage.insert("requests.storage".to_string(), storage);
        if let Some(class) = class {
            usage.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), storage);
        }
    }
    usage
}

/// A quota's scopes as selector requirements: each `spec.scopes` entry as `Exists`, then
/// `spec.scopeSelector.matchExpressions`.
fn scope_selectors(quota: &ResourceQuota) -> Vec<ScopedResourceSelectorRequirement> {
    let Some(spec) = quota.spec.as_ref() else {
        return Vec::new();
    };
    let scopes = spec
        .scopes
        .iter()
        .flatten()
        .map(|scope| ScopedResourceSelectorRequirement {
            scope_name: scope.clone(),
            operator: "Exists".to_string(),
            values: None,
        });
    let selector = spec
        .scope_selector
        .iter()
        .flat_map(|s| s.match_expressions.iter().flatten().cloned());
    scopes.chain(selector).collect()
}

/// `podMatchesScopeFunc`.
fn pod_in_scope(pod: &Pod, selector: &ScopedResourceSelectorRequirement) -> bool {
    let spec = pod.spec.as_ref();
    let terminating = spec.and_then(|s| s.active_deadline_seconds).is_some_and(|d| d >= 0);
    let best_effort = qos_class(pod) == "BestEffort";
    match selector.scope_name.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        "PriorityClass" => {
            let class = spec
                .and_then(|s| s.priority_class_name.as_deref())
                .filter(|c| !c.is_empty());
            let values = selector.values.as_deref().unwrap_or(&[]);
            match selector.operator.as_str() {
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
                "In" => class.is_some_and(|c| values.iter().any(|v| v == c)),
                "NotIn" => class.is_none_or(|c| values.iter().all(|v| v != c)),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => spec.and_then(|s| s.affinity.as_ref()).is_some_and(cross_namespace),
        _ => false,
    }
}

/// Whether any pod (anti-)affinity term reaches beyond the pod's namespace.
fn cross_namespace(affinity: &Affinity) -> bool {
    let crosses =
        |t: &PodAffinityTerm| t.namespace_selector.is_some() || t.namespaces.as_ref().is_some_and(|n| !n.is_empty());
    let affinity_terms = affinity.pod_affinity.iter().flat_map(|a| {
        let required = a.required_during_scheduling_ignored_during_execution.iter().flatten();
        let preferred = a
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|w| &w.pod_affinity_term);
        required.chain(preferred)
    });
    let anti_terms = affinity.pod_anti_affinity.iter().flat_map(|a| {
        let required = a.required_during_scheduling_ignored_during_execution.iter().flatten();
        let preferred = a
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|w| &w.pod_affinity_term);
        required.chain(preferred)
    });
    affinity_terms.chain(anti_terms).any(crosses)
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
