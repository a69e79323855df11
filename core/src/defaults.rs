//! Pod defaulting as the apiserver applies it on create (`pkg/apis/core/v1/defaults.go`,
//! plus the namespace from the request and the ServiceAccount admission plug-in's
//! `serviceAccountName`), and the pod's QoS class.
//!
//! Defaulting runs before validation and before the node sees the pod, so the rest of Capstan
//! can read `restartPolicy`, probe periods or volume modes without re-deciding their defaults.
//! Every function only fills fields that are unset; running it twice changes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, Pod, PodSpec, Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::quantity::{self, Quantity};

/// Mode of projected files when no `defaultMode` is given: 0644.
pub const DEFAULT_FILE_MODE: i32 = 0o644;
/// Seconds a pod gets between SIGTERM and SIGKILL when it does not say.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Token lifetime for `serviceAccountToken` projections.
pub const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Applies the apiserver's defaults to a pod in place.
pub fn default_pod(pod: &mut Pod) {
    pod.metadata.namespace.get_or_insert_with(|| "default".to_string());
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    default_pod_spec(spec);
}

fn set<T>(field: &mut Option<T>, value: impl FnOnce() -> T) {
    field.get_or_insert_with(value);
}

fn set_str(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Applies the apiserver's defaults to a pod spec, as for a pod template of a workload.
pub fn default_pod_spec(spec: &mut PodSpec) {
    set_str(&mut spec.restart_policy, "Always");
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.scheduler_name, "default-scheduler");
    set(&mut spec.termination_grace_period_seconds, || {
        DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    });
    set(&mut spec.security_context, Default::default);
    set(&mut spec.enable_service_links, || true);
    // The ServiceAccount admission plug-in, and the deprecated alias kept in step with it.
    if spec.service_account_name.as_deref().is_none_or(str::is_empty) {
        let from_alias = spec.service_account.clone().filter(|s| !s.is_empty());
        spec.service_account_name = Some(from_alias.unwrap_or_else(|| "default".to_string()));
    }
    set(&mut spec.service_account, || {
        spec.service_account_name.clone().unwrap_or_default()
    });
    let host_network = spec.host_network == Some(true);
    let init = spec.init_containers.iter_mut().flatten();
    for container in init.chain(spec.containers.iter_mut()) {
        default_container(container, host_network);
    }
    for volume in spec.volumes.iter_mut().flatten() {
        default_volume(volume);
    }
}

fn default_container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let always = image_tag(c.image.as_deref().unwrap_or("")) == Some("latest");
        c.image_pull_policy = Some(if always { "Always" } else { "IfNotPresent" }.to_string());
    }
    set_str(&mut c.termination_message_path, "/dev/termination-log");
    set_str(&mut c.termination_message_policy, "File");
    for port in c.ports.iter_mut().flatten() {
        set_str(&mut port.protocol, "TCP");
        // On the host network the container port is the host port.
        if host_network && port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
    // `resources` is a plain struct in the Go types: always present, `{}` when empty. Setting
    // it here makes a template sent with `resources: {}` equal to one sent without.
    let resources = c.resources.get_or_insert_with(Default::default);
    // Requests default to limits, per resource, so a pod that only sets limits is Guaranteed.
    if let Some(limits) = resources.limits.as_ref() {
        let requests = resources.requests.get_or_insert_with(BTreeMap::new);
        for (name, limit) in limits {
            requests.entry(name.clone()).or_insert_with(|| limit.clone());
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe] {
        if let Some(probe) = probe.as_mut() {
            default_probe(probe);
        }
    }
    if let Some(Lifecycle {
        post_start, pre_stop, ..
    }) = c.lifecycle.as_mut()
    {
        for handler in [post_start, pre_stop].into_iter().flatten() {
            let LifecycleHandler { http_get, .. } = handler;
            http_get.as_mut().map(default_http_get);
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_field_ref(field_ref);
        }
    }
}

/// The tag of an image reference, `latest` when there is neither tag nor digest
/// (the rule of `parsers.ParseImageName` that picks the pull policy).
pub fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest.is_none() => Some("latest"),
        None => None,
    }
}

fn default_probe(p: &mut Probe) {
    let positive = |v: &mut Option<i32>, d: i32| {
        if v.unwrap_or(0) == 0 {
            *v = Some(d);
        }
    };
    positive(&mut p.timeout_seconds, 1);
    positive(&mut p.period_seconds, 10);
    positive(&mut p.success_threshold, 1);
    positive(&mut p.failure_threshold, 3);
    p.http_get.as_mut().map(default_http_get);
}

fn default_http_get(h: &mut HTTPGetAction) {
    set_str(&mut h.path, "/");
    set_str(&mut h.scheme, "HTTP");
}

fn default_field_ref(f: &mut ObjectFieldSelector) {
    set_str(&mut f.api_version, "v1");
}

fn default_volume(v: &mut Volume) {
    if let Some(cm) = v.config_map.as_mut() {
        set(&mut cm.default_mode, || DEFAULT_FILE_MODE);
    }
    if let Some(secret) = v.secret.as_mut() {
        set(&mut secret.default_mode, || DEFAULT_FILE_MODE);
    }
    if let Some(downward) = v.downward_api.as_mut() {
        set(&mut downward.default_mode, || DEFAULT_FILE_MODE);
        for item in downward.items.iter_mut().flatten() {
            item.field_ref.as_mut().map(default_field_ref);
        }
    }
    if let Some(projected) = v.projected.as_mut() {
        set(&mut projected.default_mode, || DEFAULT_FILE_MODE);
        for source in projected.sources.iter_mut().flatten() {
            if let Some(token) = source.service_account_token.as_mut() {
                set(&mut token.expiration_seconds, || DEFAULT_TOKEN_EXPIRATION_SECONDS);
            }
            let items = source.downward_api.as_mut().and_then(|d| d.items.as_mut());
            for item in items.into_iter().flatten() {
                item.field_ref.as_mut().map(default_field_ref);
            }
        }
    }
}

/// The pod's QoS class, by `ComputePodQOS`: `BestEffort` when no container (init included)
/// requests or limits cpu or memory; `Guaranteed` when every container limits both and the
/// summed requests equal the summed limits; `Burstable` otherwise. Requests missing for a
/// limited resource count as equal to the limit, as defaulting would make them, so the answer
/// is the same before and after [`default_pod`]. Unparseable quantities are ignored
/// (validation reports them).
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let add = |sums: &mut BTreeMap<&'static str, Quantity>, name: &'static str, q: Quantity| {
        let sum = sums.get(name).and_then(|s| s.checked_add(&q)).unwrap_or(q);
        sums.insert(name, sum);
    };
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let resources = c.resources.as_ref();
        let positive = |list: Option<&BTreeMap<String, ApiQuantity>>, name: &str| {
            let q = quantity::parse(&list?.get(name)?.0).ok()?;
            (q.nanos() > 0).then_some(q)
        };
        let mut limited = 0;
        for name in ["cpu", "memory"] {
            let limit = positive(resources.and_then(|r| r.limits.as_ref()), name);
            let request = positive(resources.and_then(|r| r.requests.as_ref()), name);
            let request_given = resources
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key(name));
            if let Some(q) = request.or(if request_given { None } else { limit }) {
                add(&mut requests, name, q);
            }
            if let Some(q) = limit {
                add(&mut limits, name, q);
                limited += 1;
            }
        }
        guaranteed &= limited == 2;
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests == limits {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests;
