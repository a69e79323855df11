//! Per-kind behaviour on write, as the apiserver's REST strategies define it: decoding into the
//! kind's schema (which prunes unknown fields and reports them for `fieldValidation`),
//! defaulting, validation, and what a create, an update and a status update may change.
//!
//! Pure: no store, no clock. Lookups that need other objects (namespaces, LimitRanges, quotas,
//! cluster IPs) are the registry's.

use std::collections::BTreeMap;

use capstan_core::defaults::{default_pod, default_pod_spec, qos_class};
use capstan_core::k8s_openapi::ByteString;
use capstan_core::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, Pod, PodSpec, PodStatus, PodTemplateSpec, ResourceQuota,
    Secret, Service,
};
use capstan_core::k8s_openapi::api::discovery::v1::EndpointSlice;
use capstan_core::k8s_openapi::api::networking::v1::Ingress;
use capstan_core::k8s_openapi::api::scheduling::v1::PriorityClass;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use capstan_core::names;
use capstan_core::validate::{FieldError, validate_config_map, validate_object_meta, validate_pod, validate_secret};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::resources::ResourceInfo;
use crate::scheduler::selectors::label_selector_matches;

/// What kind of write is being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write<'a> {
    Create,
    /// An update of the main resource; `old` is the stored object.
    Update {
        old: &'a Value,
    },
    /// An update through `/status`.
    Status {
        old: &'a Value,
    },
}

/// The result of decoding an object into its kind's schema.
pub struct Decoded {
    /// The object as the schema keeps it: unknown fields dropped, defaults applied.
    pub object: Value,
    /// Paths of fields the schema does not know (`spec.containers[0].imagee`).
    pub unknown_fields: Vec<String>,
}

/// Decodes, defaults and validates an object of `info`'s kind for `write`, listing the fields
/// its schema does not know in [`Decoded::unknown_fields`]. The object's metadata bookkeeping
/// (uid, timestamps, resourceVersion, generation) is the registry's.
pub fn admit(info: &ResourceInfo, object: &Value, write: Write<'_>) -> Result<Decoded, ApiError> {
    admit_checking(info, object, write, true)
}

/// [`admit`], looking for unknown fields only if `unknown_fields`. Finding them encodes the
/// decoded object once more and walks both trees, about a third of admitting a Deployment;
/// a write whose caller ignores them (`fieldValidation=Ignore`, as the controllers' writes of
/// an object they read and changed) is spared that.
pub fn admit_checking(
    info: &ResourceInfo,
    object: &Value,
    write: Write<'_>,
    unknown_fields: bool,
) -> Result<Decoded, ApiError> {
    let check = unknown_fields;
    match info.kind {
        "Pod" => admit_as::<Pod>(info, object, write, check, admit_pod),
        "Deployment" => admit_as::<Deployment>(info, object, write, check, admit_deployment),
        "ReplicaSet" => admit_as::<ReplicaSet>(info, object, write, check, admit_replica_set),
        "HorizontalPodAutoscaler" => admit_as::<HorizontalPodAutoscaler>(info, object, write, check, |h, w| {
            crate::controllers::hpa::default_hpa(h);
            // Status is the controller's: a new HPA starts with an empty one.
            if w == Write::Create {
                h.status = Some(Default::default());
            }
            crate::controllers::hpa::validate_hpa(h)
        }),
        "ConfigMap" => admit_as::<ConfigMap>(info, object, write, check, |cm, _| validate_config_map(cm)),
        "Secret" => admit_as::<Secret>(info, object, write, check, admit_secret),
        "Namespace" => admit_as::<Namespace>(info, object, write, check, admit_namespace),
        "Service" => admit_as::<Service>(info, object, write, check, admit_service),
        "Node" => admit_as::<Node>(info, object, write, check, |n, _| validate_object_meta(&n.metadata)),
        "Endpoints" => admit_as::<Endpoints>(info, object, write, check, |e, _| validate_object_meta(&e.metadata)),
        "Event" => admit_as::<Event>(info, object, write, check, |e, _| validate_object_meta(&e.metadata)),
        "LimitRange" => admit_as::<LimitRange>(info, object, write, check, |l, _| {
            crate::admission::limit_range::default_limit_range(l);
            let mut errs = validate_object_meta(&l.metadata);
            errs.extend(crate::admission::limit_range::validate_limit_range(l));
            errs
        }),
        "ResourceQuota" => {
            admit_as::<ResourceQuota>(info, object, write, check, |q, _| validate_object_meta(&q.metadata))
        }
        "Ingress" => admit_as::<Ingress>(info, object, write, check, admit_ingress),
        "EndpointSlice" => admit_as::<EndpointSlice>(info, object, write, check, admit_endpoint_slice),
        "Lease" => admit_as::<Lease>(info, object, write, check, |l, _| validate_object_meta(&l.metadata)),
        "PriorityClass" => admit_as::<PriorityClass>(info, object, write, check, admit_priority_class),
        other => Err(ApiError::Internal(format!("no strategy for kind {other}"))),
    }
}

/// Decodes into `T`, runs the kind's defaulting and validation, and encodes back.
fn admit_as<T>(
    info: &ResourceInfo,
    object: &Value,
    write: Write<'_>,
    check_unknown: bool,
    admit_kind: impl FnOnce(&mut T, Write<'_>) -> Vec<FieldError>,
) -> Result<Decoded, ApiError>
where
    T: DeserializeOwned
        + Serialize
        + capstan_core::k8s_openapi::Metadata<
            Ty = capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        >,
{
    let mut typed: T = decode(info, object)?;
    let mut unknown_fields = Vec::new();
    if check_unknown {
        let as_decoded = serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))?;
        dropped_fields(object, &as_decoded, "", &mut unknown_fields);
    }
    let errs = admit_kind(&mut typed, write);
    if !errs.is_empty() {
        let name = typed.metadata().name.clone().unwrap_or_default();
        return Err(ApiError::invalid(info, &name, errs));
    }
    let mut object = serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))?;
    // k8s-openapi types serialise apiVersion and kind themselves; keep them.
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::from(info.api_version()));
        map.insert("kind".into(), Value::from(info.kind));
    }
    Ok(Decoded { object, unknown_fields })
}

/// Decodes an object into its kind's type; a type mismatch is a 400 naming the field, as
/// the apiserver's `... cannot be handled as a Pod: json: cannot unmarshal ...`.
///
/// The object is decoded without tracking where the decoder is, which costs a good part of a
/// decode; only an object that fails is decoded again, with the path, for the message.
pub fn decode<T: DeserializeOwned>(info: &ResourceInfo, object: &Value) -> Result<T, ApiError> {
    if let Ok(decoded) = T::deserialize(object) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {inner}{at}",
            kind = info.kind,
            version = info.version
        ))
    })
}

/// Collects the paths of keys present in `input` but absent from its decoded form, which are
/// the fields the schema does not know. Null values count as absent on both sides.
fn dropped_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (input, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                if value.is_null() || (path.is_empty() && (key == "apiVersion" || key == "kind")) {
                    continue;
                }
                match b.get(key) {
                    Some(decoded) => dropped_fields(value, decoded, &join(key), out),
                    // Free-form maps (labels, data...) decode key for key, so only schema
                    // fields go missing.
                    None => out.push(join(key)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                dropped_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn admit_pod(pod: &mut Pod, write: Write<'_>) -> Vec<FieldError> {
    default_pod(pod);
    let mut errs = validate_pod(pod);
    match write {
        Write::Create => {
            // A new pod's status is the apiserver's to set: Pending, with its QoS class.
            let qos = qos_class(pod).to_owned();
            pod.status = Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some(qos),
                ..Default::default()
            });
        }
        Write::Update { old } => {
            if let Ok(old) = serde_json::from_value::<Pod>(old.clone()) {
                errs.extend(pod_update_errors(&old, pod));
            }
        }
        Write::Status { .. } => {}
    }
    errs
}

/// Pod spec fields an update may change (`ValidatePodUpdate`): container images, the active
/// deadline, and additional tolerations. Everything else is immutable once created.
fn pod_update_errors(old: &Pod, new: &Pod) -> Vec<FieldError> {
    let (Some(old_spec), Some(new_spec)) = (&old.spec, &new.spec) else {
        return Vec::new();
    };
    let mut masked = new_spec.clone();
    for (m, o) in masked.containers.iter_mut().zip(&old_spec.containers) {
        m.image.clone_from(&o.image);
    }
    for (m, o) in masked
        .init_containers
        .iter_mut()
        .flatten()
        .zip(old_spec.init_containers.iter().flatten())
    {
        m.image.clone_from(&o.image);
    }
    masked.active_deadline_seconds = old_spec.active_deadline_seconds;
    masked.tolerations.clone_from(&old_spec.tolerations);
    // nodeName is set once, by a binding.
    if old_spec.node_name.as_deref().is_none_or(str::is_empty) {
        masked.node_name.clone_from(&old_spec.node_name);
    }
    if masked != *old_spec {
        return vec![FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        )];
    }
    Vec::new()
}

/// Defaults and validates a workload's pod template under `path` (`spec.template`).
fn admit_template(
    template: &mut PodTemplateSpec,
    selector: Option<&LabelSelector>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let spec = template.spec.get_or_insert_with(PodSpec::default);
    default_pod_spec(spec);
    if let Some(policy) = spec.restart_policy.as_deref().filter(|p| *p != "Always") {
        errs.push(FieldError::not_supported(
            format!("{path}.spec.restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    // Validate as a pod of this template, dropping what a template need not have.
    let pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: template.spec.clone(),
        status: None,
    };
    for mut err in validate_pod(&pod) {
        if err.path == "metadata.name" {
            continue;
        }
        err.path = format!("{path}.{}", err.path);
        errs.push(err);
    }
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel)
            if sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && sel.match_expressions.as_ref().is_none_or(Vec::is_empty) =>
        {
            errs.push(FieldError::invalid(
                "spec.selector",
                "{}",
                "empty selector is invalid for deployment",
            ));
        }
        Some(sel) if !label_selector_matches(sel, &labels) => errs.push(FieldError::invalid(
            format!("{path}.metadata.labels"),
            &format!("{labels:?}"),
            "`selector` does not match template `labels`",
        )),
        Some(_) => {}
    }
}

fn replicas_errors(replicas: Option<i32>, errs: &mut Vec<FieldError>) {
    if let Some(r) = replicas.filter(|r| *r < 0) {
        errs.push(FieldError::invalid_number(
            "spec.replicas",
            r.into(),
            "must be greater than or equal to 0",
        ));
    }
}

/// The selector may not change after creation (apps/v1).
fn selector_immutable<T: DeserializeOwned>(
    write: Write<'_>,
    selector: Option<&LabelSelector>,
    old_selector: impl Fn(&T) -> Option<LabelSelector>,
    errs: &mut Vec<FieldError>,
) {
    if let Write::Update { old } = write
        && let Ok(old) = serde_json::from_value::<T>(old.clone())
        && old_selector(&old).as_ref() != selector
    {
        errs.push(FieldError::invalid("spec.selector", "", "field is immutable"));
    }
}

fn admit_deployment(d: &mut Deployment, write: Write<'_>) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&d.metadata);
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into()).clone();
    match kind.as_str() {
        "RollingUpdate" => {
            let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
            let surge = rolling
                .max_surge
                .get_or_insert(IntOrString::String("25%".into()))
                .clone();
            let unavailable = rolling
                .max_unavailable
                .get_or_insert(IntOrString::String("25%".into()))
                .clone();
            let zero =
                |v: &IntOrString| matches!(v, IntOrString::Int(0)) || matches!(v, IntOrString::String(s) if s == "0%");
            if zero(&surge) && zero(&unavailable) {
                errs.push(FieldError::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "0",
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    replicas_errors(spec.replicas, &mut errs);
    admit_template(&mut spec.template, Some(&spec.selector), "spec.template", &mut errs);
    selector_immutable::<Deployment>(
        write,
        Some(&spec.selector),
        |o| o.spec.as_ref().map(|s| s.selector.clone()),
        &mut errs,
    );
    if write == Write::Create {
        d.status = None;
    }
    errs
}

fn admit_replica_set(rs: &mut ReplicaSet, write: Write<'_>) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&rs.metadata);
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    replicas_errors(spec.replicas, &mut errs);
    let template = spec.template.get_or_insert_with(Default::default);
    admit_template(template, Some(&spec.selector), "spec.template", &mut errs);
    selector_immutable::<ReplicaSet>(
        write,
        Some(&spec.selector),
        |o| o.spec.as_ref().map(|s| s.selector.clone()),
        &mut errs,
    );
    if write == Write::Create {
        rs.status = None;
    }
    errs
}

fn admit_secret(secret: &mut Secret, _: Write<'_>) -> Vec<FieldError> {
    // `stringData` is write-only: merged into `data`, winning over it, as the apiserver does.
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    if secret.type_.as_deref().is_none_or(str::is_empty) {
        secret.type_ = Some("Opaque".into());
    }
    validate_secret(secret)
}

fn admit_namespace(ns: &mut Namespace, write: Write<'_>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = ns.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in names::dns1123_label(&name) {
            errs.push(FieldError::invalid("metadata.name", &name, &m));
        }
    }
    if write == Write::Create {
        ns.status = Some(capstan_core::k8s_openapi::api::core::v1::NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        // The namespace strategy's PrepareForCreate: the `kubernetes` finalizer, which the
        // namespace controller holds until the namespace is empty.
        ns.spec = Some(capstan_core::k8s_openapi::api::core::v1::NamespaceSpec {
            finalizers: Some(vec!["kubernetes".into()]),
        });
    }
    // The apiserver labels every namespace with its own name.
    ns.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("kubernetes.io/metadata.name".into(), name);
    errs
}

fn admit_service(svc: &mut Service, _: Write<'_>) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&svc.metadata);
    let spec = svc.spec.get_or_insert_with(Default::default);
    let kind = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    spec.session_affinity.get_or_insert_with(|| "None".into());
    if kind != "ExternalName" {
        spec.internal_traffic_policy.get_or_insert_with(|| "Cluster".into());
    }
    for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
        port.protocol.get_or_insert_with(|| "TCP".into());
        port.target_port.get_or_insert(IntOrString::Int(port.port));
        if !(1..=65535).contains(&port.port) {
            errs.push(FieldError::invalid_number(
                format!("spec.ports[{i}].port"),
                port.port.into(),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    if !matches!(
        kind.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        errs.push(FieldError::not_supported(
            "spec.type",
            &kind,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if kind == "ExternalName" {
        external_name_errors(spec, &mut errs);
    }
    errs
}

/// `ValidateService` for type ExternalName: a name, no cluster IP (nor families: the Service
/// is only a DNS alias), and the name a DNS-1123 subdomain, one trailing dot allowed (a
/// fully qualified CNAME target).
fn external_name_errors(spec: &capstan_core::k8s_openapi::api::core::v1::ServiceSpec, errs: &mut Vec<FieldError>) {
    const NOT_FOR_ALIASES: &str = "may not be set for ExternalName services";
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if set(&spec.cluster_ip) || spec.cluster_ips.as_ref().is_some_and(|ips| !ips.is_empty()) {
        errs.push(FieldError::forbidden("spec.clusterIPs", NOT_FOR_ALIASES));
    }
    if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
        errs.push(FieldError::forbidden("spec.ipFamilies", NOT_FOR_ALIASES));
    }
    if spec.ip_family_policy.is_some() {
        errs.push(FieldError::forbidden("spec.ipFamilyPolicy", NOT_FOR_ALIASES));
    }
    let name = spec.external_name.as_deref().unwrap_or_default();
    let cname = name.strip_suffix('.').unwrap_or(name);
    if cname.is_empty() {
        errs.push(FieldError::required("spec.externalName", ""));
    }
    for m in names::dns1123_subdomain(cname).iter().filter(|_| !cname.is_empty()) {
        errs.push(FieldError::invalid("spec.externalName", cname, m));
    }
}

/// The most endpoints, addresses per endpoint and ports a slice may hold (`ValidateEndpointSlice`).
const SLICE_MAX_ENDPOINTS: usize = 1000;
const SLICE_MAX_ADDRESSES: usize = 100;
const SLICE_MAX_PORTS: usize = 20000;

/// `field.TooMany`.
fn too_many(path: String, count: usize, max: usize) -> FieldError {
    FieldError::new(path, format!("Too many: {count}: must have at most {max} items"))
}

/// EndpointSlice defaulting (a port's name to "", its protocol to TCP) and the parts of
/// `ValidateEndpointSlice` consumers rely on: the address type, each endpoint's addresses (of
/// that type), hostname and node name, and unique port names of known protocols. The address
/// type is immutable.
fn admit_endpoint_slice(slice: &mut EndpointSlice, write: Write<'_>) -> Vec<FieldError> {
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
    let mut errs = validate_object_meta(&slice.metadata);
    let kind = slice.address_type.as_str();
    if kind.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&kind) {
        errs.push(FieldError::not_supported("addressType", kind, TYPES));
    }
    if let Write::Update { old } = write
        && old["addressType"].as_str().is_some_and(|t| t != kind)
    {
        errs.push(FieldError::invalid("addressType", kind, "field is immutable"));
    }
    if slice.endpoints.len() > SLICE_MAX_ENDPOINTS {
        errs.push(too_many("endpoints".into(), slice.endpoints.len(), SLICE_MAX_ENDPOINTS));
    }
    for (i, ep) in slice.endpoints.iter().enumerate().take(SLICE_MAX_ENDPOINTS) {
        let at = format!("endpoints[{i}]");
        match ep.addresses.len() {
            0 => errs.push(FieldError::required(
                format!("{at}.addresses"),
                "must contain at least 1 address",
            )),
            n if n > SLICE_MAX_ADDRESSES => errs.push(too_many(format!("{at}.addresses"), n, SLICE_MAX_ADDRESSES)),
            _ => {}
        }
        for (j, address) in ep.addresses.iter().enumerate() {
            let fits = match kind {
                "IPv4" => address.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => address.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => true,
            };
            if !fits {
                let detail = format!("must be a valid {kind} address");
                errs.push(FieldError::invalid(format!("{at}.addresses[{j}]"), address, &detail));
            }
        }
        for m in ep.hostname.as_deref().map(names::dns1123_label).unwrap_or_default() {
            errs.push(FieldError::invalid(
                format!("{at}.hostname"),
                ep.hostname.as_deref().unwrap_or_default(),
                &m,
            ));
        }
        for m in ep
            .node_name
            .as_deref()
            .map(names::dns1123_subdomain)
            .unwrap_or_default()
        {
            errs.push(FieldError::invalid(
                format!("{at}.nodeName"),
                ep.node_name.as_deref().unwrap_or_default(),
                &m,
            ));
        }
    }
    let ports = slice.ports.as_deref_mut().unwrap_or_default();
    if ports.len() > SLICE_MAX_PORTS {
        errs.push(too_many("ports".into(), ports.len(), SLICE_MAX_PORTS));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, port) in ports.iter_mut().enumerate() {
        let name = port.name.get_or_insert_with(String::new).clone();
        let protocol = port.protocol.get_or_insert_with(|| "TCP".into()).clone();
        for m in names::dns1123_label(&name).into_iter().filter(|_| !name.is_empty()) {
            errs.push(FieldError::invalid(format!("ports[{i}].name"), &name, &m));
        }
        if !seen.insert(name.clone()) {
            errs.push(FieldError::duplicate(format!("ports[{i}].name"), &name));
        }
        if !PROTOCOLS.contains(&protocol.as_str()) {
            errs.push(FieldError::not_supported(
                format!("ports[{i}].protocol"),
                &protocol,
                PROTOCOLS,
            ));
        }
    }
    errs
}

/// Ingress validation of what routing relies on: every path has a `pathType` Kubernetes
/// knows, `Exact` and `Prefix` paths are absolute, every backend names a Service port.
fn admit_ingress(ing: &mut Ingress, _: Write<'_>) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&ing.metadata);
    let Some(spec) = ing.spec.as_ref() else {
        return errs;
    };
    let check_backend = |path: String,
                         b: &capstan_core::k8s_openapi::api::networking::v1::IngressBackend,
                         errs: &mut Vec<FieldError>| {
        match &b.service {
            Some(svc) => {
                let port = svc.port.as_ref();
                if port.is_none_or(|p| p.number.is_none() && p.name.as_deref().is_none_or(str::is_empty)) {
                    errs.push(FieldError::required(
                        format!("{path}.service.port"),
                        "port name or number is required",
                    ));
                }
            }
            None if b.resource.is_none() => errs.push(FieldError::invalid(
                &path,
                "",
                "one backend (`service` or `resource`) must be specified",
            )),
            None => {}
        }
    };
    if let Some(b) = &spec.default_backend {
        check_backend("spec.defaultBackend".into(), b, &mut errs);
    }
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        for (j, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
            let at = format!("spec.rules[{i}].http.paths[{j}]");
            match p.path_type.as_str() {
                "Exact" | "Prefix" => {
                    if !p.path.as_deref().unwrap_or("").starts_with('/') {
                        errs.push(FieldError::invalid(
                            format!("{at}.path"),
                            p.path.as_deref().unwrap_or(""),
                            "must be an absolute path",
                        ));
                    }
                }
                "ImplementationSpecific" => {}
                "" => errs.push(FieldError::required(
                    format!("{at}.pathType"),
                    "pathType must be specified",
                )),
                other => errs.push(FieldError::not_supported(
                    format!("{at}.pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            check_backend(format!("{at}.backend"), &p.backend, &mut errs);
        }
    }
    errs
}

fn admit_priority_class(pc: &mut PriorityClass, _: Write<'_>) -> Vec<FieldError> {
    pc.preemption_policy
        .get_or_insert_with(|| "PreemptLowerPriority".into());
    let mut errs = validate_object_meta(&pc.metadata);
    // Higher values are reserved for the system classes the server creates itself.
    let system = pc.metadata.name.as_deref().is_some_and(|n| n.starts_with("system-"));
    if pc.value > 1_000_000_000 && !system {
        errs.push(FieldError::forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::resources::find;

    fn pods() -> &'static ResourceInfo {
        find("", "v1", "pods").unwrap()
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "imagee": "typo"}], "bogus": 1}});
        let decoded = admit(pods(), &pod, Write::Create).unwrap();
        assert_eq!(decoded.unknown_fields, vec!["spec.bogus", "spec.containers[0].imagee"]);
        assert!(decoded.object["spec"].get("bogus").is_none());
        assert_eq!(decoded.object["status"]["phase"], "Pending");
        assert_eq!(decoded.object["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "x"}]}]}});
        let err = admit(pods(), &pod, Write::Create).err().unwrap();
        assert_eq!(err.code(), 400);
        assert!(
            err.to_string().contains("spec.containers[0].ports[0].containerPort"),
            "{err}"
        );
    }

    #[test]
    fn invalid_pods_report_every_field() {
        let pod = json!({"metadata": {"name": "P"}, "spec": {"containers": []}});
        let err = admit(pods(), &pod, Write::Create).err().unwrap();
        assert_eq!(err.code(), 422);
        let msg = err.to_string();
        assert!(
            msg.contains("metadata.name") && msg.contains("spec.containers"),
            "{msg}"
        );
    }

    #[test]
    fn pod_spec_is_immutable_but_images_may_change() {
        let old = admit(
            pods(),
            &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}}),
            Write::Create,
        )
        .unwrap()
        .object;
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("b");
        assert!(admit(pods(), &new, Write::Update { old: &old }).is_ok());
        new["spec"]["containers"][0]["args"] = json!(["x"]);
        let err = admit(pods(), &new, Write::Update { old: &old }).err().unwrap();
        assert!(err.to_string().contains("pod updates may not change fields"), "{err}");
    }

    #[test]
    fn unknown_fields_are_looked_for_only_when_asked_and_bad_types_name_their_field() {
        let pod = json!({"metadata": {"name": "p"}, "spex": 1,
            "spec": {"containers": [{"name": "c", "image": "a", "imagePolicy": "x"}]}});
        let checked = admit(pods(), &pod, Write::Create).unwrap();
        assert_eq!(checked.unknown_fields, ["spec.containers[0].imagePolicy", "spex"]);
        let unchecked = admit_checking(pods(), &pod, Write::Create, false).unwrap();
        assert!(unchecked.unknown_fields.is_empty());
        assert_eq!(unchecked.object, checked.object, "the admitted object is the same");

        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": 7}]}});
        let err = admit_checking(pods(), &bad, Write::Create, false).err().unwrap();
        assert!(
            err.to_string().contains("cannot be handled as a Pod")
                && err.to_string().contains("spec.containers[0].image"),
            "{err}"
        );
    }

    #[test]
    fn deployments_are_defaulted_and_checked() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let out = admit(deploy, &d, Write::Create).unwrap().object;
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(out["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(out["spec"]["revisionHistoryLimit"], 10);

        let mut bad = d.clone();
        bad["spec"]["template"]["metadata"]["labels"]["app"] = json!("y");
        let err = admit(deploy, &bad, Write::Create).err().unwrap();
        assert!(
            err.to_string().contains("`selector` does not match template `labels`"),
            "{err}"
        );

        let mut moved = out.clone();
        moved["spec"]["selector"]["matchLabels"]["tier"] = json!("web");
        moved["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
        let err = admit(deploy, &moved, Write::Update { old: &out }).err().unwrap();
        assert!(
            err.to_string().contains("spec.selector") && err.to_string().contains("immutable"),
            "{err}"
        );
    }

    #[test]
    fn secrets_merge_string_data() {
        let secrets = find("", "v1", "secrets").unwrap();
        let s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        let out = admit(secrets, &s, Write::Create).unwrap().object;
        assert_eq!(out["data"]["k"], "dg==");
        assert_eq!(out["type"], "Opaque");
        assert!(out.get("stringData").is_none());
    }
}
