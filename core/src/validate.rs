//! Validation of Pods, ConfigMaps and Secrets with the apiserver's main rules and messages
//! (`pkg/apis/core/validation`), so a manifest Capstan rejects is one a cluster rejects,
//! for the same reason, in the same words.
//!
//! Run [`crate::defaults::default_pod`] first, as the apiserver does. Fields that defaulting
//! fills (`restartPolicy`, a port's `protocol`, a probe's `periodSeconds`...) are only checked
//! when set, so validating an undefaulted pod reports real mistakes rather than omissions.
//! Every problem is reported, not just the first, each with the path of its field.

mod container;
mod env;
mod probe;
mod resources;
mod volume;

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::names;
use crate::quote::go_quote;

/// The largest ConfigMap or Secret payload (1 MiB).
pub const MAX_CONFIG_SIZE: usize = 1024 * 1024;
/// The largest total size of an object's annotations (256 KiB).
pub const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

/// One problem with one field, rendered `{path}: {reason}` like the apiserver's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `spec.initContainers[0].env[2].valueFrom`.
    pub path: String,
    /// What is wrong, e.g. `Required value` or `Invalid value: "x": must be ...`.
    pub reason: String,
}

fn with_detail(kind: &str, detail: &str) -> String {
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

impl FieldError {
    /// An error with a free-form reason.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// `Required value[: detail]`.
    pub fn required(path: impl Into<String>, detail: &str) -> Self {
        Self::new(path, with_detail("Required value", detail))
    }

    /// `Invalid value: "value": detail`.
    pub fn invalid(path: impl Into<String>, value: &str, detail: &str) -> Self {
        Self::new(
            path,
            with_detail(&format!("Invalid value: {}", go_quote(value)), detail),
        )
    }

    /// `Invalid value: 42: detail`, for numbers.
    pub fn invalid_number(path: impl Into<String>, value: i64, detail: &str) -> Self {
        Self::new(path, with_detail(&format!("Invalid value: {value}"), detail))
    }

    /// `Duplicate value: "value"`.
    pub fn duplicate(path: impl Into<String>, value: &str) -> Self {
        Self::new(path, format!("Duplicate value: {}", go_quote(value)))
    }

    /// `Not found: "value"`.
    pub fn not_found(path: impl Into<String>, value: &str) -> Self {
        Self::new(path, format!("Not found: {}", go_quote(value)))
    }

    /// `Unsupported value: "value": supported values: "a", "b"`.
    pub fn not_supported(path: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        Self::new(
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(value),
                list.join(", ")
            ),
        )
    }

    /// `Forbidden: detail`.
    pub fn forbidden(path: impl Into<String>, detail: &str) -> Self {
        Self::new(path, with_detail("Forbidden", detail))
    }

    /// `Too long: may not be more than N bytes`.
    pub fn too_long(path: impl Into<String>, max: usize) -> Self {
        Self::new(path, format!("Too long: may not be more than {max} bytes"))
    }
}

/// One `Invalid value` error per message of a name check.
pub(crate) fn invalid_each(path: &str, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages.iter().map(|m| FieldError::invalid(path, value, m)).collect()
}

/// An enum-like field that defaulting fills: checked only when set.
pub(crate) fn check_enum(path: &str, value: Option<&str>, supported: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(v) = value.filter(|v| !v.is_empty())
        && !supported.contains(&v)
    {
        errs.push(FieldError::not_supported(path, v, supported));
    }
}

/// A mode for projected files.
pub(crate) fn check_mode(path: &str, mode: Option<i32>, errs: &mut Vec<FieldError>) {
    if let Some(m) = mode.filter(|m| !(0..=0o777).contains(m)) {
        errs.push(FieldError::invalid_number(
            path,
            m.into(),
            "must be a number between 0 and 0777 (octal), both inclusive",
        ));
    }
}

/// Validates the metadata every object shares: name (a DNS subdomain), namespace, labels and
/// annotations.
pub fn validate_object_meta(meta: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(meta, &mut errs);
    errs
}

fn validate_meta(meta: &ObjectMeta, errs: &mut Vec<FieldError>) {
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None if meta.generate_name.as_deref().is_none_or(str::is_empty) => {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        None => {}
        Some(name) => errs.extend(invalid_each("metadata.name", name, names::dns1123_subdomain(name))),
    }
    if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(invalid_each("metadata.namespace", ns, names::dns1123_label(ns)));
    }
    for (key, value) in meta.labels.iter().flatten() {
        errs.extend(invalid_each("metadata.labels", key, names::qualified_name(key)));
        errs.extend(invalid_each("metadata.labels", value, names::label_value(value)));
    }
    let mut size = 0;
    for (key, value) in meta.annotations.iter().flatten() {
        errs.extend(invalid_each(
            "metadata.annotations",
            key,
            names::qualified_name(&key.to_lowercase()),
        ));
        size += key.len() + value.len();
    }
    if size > MAX_ANNOTATIONS_SIZE {
        errs.push(FieldError::too_long("metadata.annotations", MAX_ANNOTATIONS_SIZE));
    }
}

/// Validates a pod as the apiserver does on create.
pub fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(&pod.metadata, &mut errs);
    match &pod.spec {
        None => errs.push(FieldError::required("spec", "")),
        Some(spec) => validate_spec(spec, &mut errs),
    }
    errs
}

fn validate_spec(spec: &PodSpec, errs: &mut Vec<FieldError>) {
    let volumes = volume::validate_volumes(spec.volumes.as_deref().unwrap_or(&[]), "spec.volumes", errs);
    let grace = spec.termination_grace_period_seconds;
    if spec.containers.is_empty() {
        errs.push(FieldError::required("spec.containers", ""));
    }
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("spec.initContainers[{i}]"), c, true));
    let app = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.containers[{i}]"), c, false));
    let mut seen = HashSet::new();
    let mut host_ports = HashSet::new();
    for (path, c, is_init) in init.chain(app) {
        if !c.name.is_empty() && !seen.insert(c.name.as_str()) {
            errs.push(FieldError::new(
                format!("{path}.name"),
                format!("duplicate name {}", go_quote(&c.name)),
            ));
        }
        container::validate_container(
            c,
            &path,
            &container::Context {
                volumes: &volumes,
                is_init,
                grace,
            },
            errs,
        );
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
                continue;
            };
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let key = format!("{}/{host_port}/{protocol}", port.host_ip.as_deref().unwrap_or(""));
            if !host_ports.insert(key) {
                errs.push(FieldError::duplicate(
                    format!("{path}.ports[{j}].hostPort"),
                    &format!("{host_port}/{protocol}"),
                ));
            }
        }
    }
    check_enum(
        "spec.restartPolicy",
        spec.restart_policy.as_deref(),
        &["Always", "OnFailure", "Never"],
        errs,
    );
    let dns = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    check_enum("spec.dnsPolicy", spec.dns_policy.as_deref(), &dns, errs);
    if let Some(g) = grace.filter(|g| *g < 0) {
        errs.push(FieldError::invalid_number(
            "spec.terminationGracePeriodSeconds",
            g,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(d) = spec
        .active_deadline_seconds
        .filter(|d| *d <= 0 || *d > i64::from(i32::MAX))
    {
        errs.push(FieldError::invalid_number(
            "spec.activeDeadlineSeconds",
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    let subdomains = [
        ("spec.serviceAccountName", &spec.service_account_name),
        ("spec.nodeName", &spec.node_name),
    ];
    for (path, value) in subdomains {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(invalid_each(path, v, names::dns1123_subdomain(v)));
        }
    }
    for (path, value) in [("spec.hostname", &spec.hostname), ("spec.subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(invalid_each(path, v, names::dns1123_label(v)));
        }
    }
}

/// Checks the keys of one data map and returns its size in bytes. A key also present in
/// `other_keys` (the ConfigMap's other map, named `other_field`) is a duplicate.
fn validate_keys<'a>(
    field: &str,
    entries: impl Iterator<Item = (&'a String, usize)>,
    other_field: &str,
    other_keys: &HashSet<&String>,
    errs: &mut Vec<FieldError>,
) -> usize {
    let mut size = 0;
    for (key, len) in entries {
        let path = format!("{field}[{key}]");
        errs.extend(invalid_each(&path, key, names::config_key(key)));
        if other_keys.contains(key) {
            errs.push(FieldError::invalid(
                &path,
                key,
                &format!("duplicate of key present in {other_field}"),
            ));
        }
        size += len;
    }
    size
}

/// Validates a ConfigMap: name, keys (`[-._a-zA-Z0-9]+`, at most 253, none in both `data`
/// and `binaryData`) and the 1 MiB size limit.
pub fn validate_config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(&cm.metadata, &mut errs);
    let empty_text = BTreeMap::new();
    let empty_bytes = BTreeMap::new();
    let data = cm.data.as_ref().unwrap_or(&empty_text);
    let binary = cm.binary_data.as_ref().unwrap_or(&empty_bytes);
    let (data_keys, binary_keys) = (data.keys().collect(), binary.keys().collect());
    let mut size = validate_keys(
        "data",
        data.iter().map(|(k, v)| (k, v.len())),
        "binaryData",
        &binary_keys,
        &mut errs,
    );
    size += validate_keys(
        "binaryData",
        binary.iter().map(|(k, v)| (k, v.0.len())),
        "data",
        &data_keys,
        &mut errs,
    );
    if size > MAX_CONFIG_SIZE {
        errs.push(FieldError::too_long("", MAX_CONFIG_SIZE));
    }
    errs
}

/// Validates a Secret (after `stringData` was merged): name, keys, the 1 MiB size limit,
/// and the keys its `type` requires.
pub fn validate_secret(secret: &Secret) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(&secret.metadata, &mut errs);
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let size = validate_keys(
        "data",
        data.iter().map(|(k, v)| (k, v.0.len())),
        "",
        &HashSet::new(),
        &mut errs,
    );
    if size > MAX_CONFIG_SIZE {
        errs.push(FieldError::too_long("data", MAX_CONFIG_SIZE));
    }
    let required: &[&str] = match secret.type_.as_deref().unwrap_or("") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
            &["username", "password"]
        }
        _ => &[],
    };
    for key in required.iter().filter(|k| !data.contains_key(**k)) {
        errs.push(FieldError::required(format!("data[{key}]"), ""));
    }
    errs
}

#[cfg(test)]
mod tests;
