//! The downward API (pattern 13, Self Awareness): pod fields and container resources as the
//! values of env vars and of `downwardAPI` volume files, without any API call from the app.
//!
//! Env vars and volumes offer different fields (the apiserver's two allow-lists): env vars
//! see node and IP facts fixed at start; volumes see only metadata, including the whole
//! label and annotation maps, because the kubelet rewrites those files when metadata changes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::env::{ConfigError, PodFacts};
use crate::names;
use crate::quantity::{self, Quantity};
use crate::quote::go_quote;

/// Where a field value is going, which decides the paths allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldUsage {
    /// `env[].valueFrom.fieldRef`: identity, node and IP fields; single labels/annotations.
    Env,
    /// `downwardAPI` volume items: metadata only, including whole label/annotation maps.
    Volume,
}

/// Fields an env var may read (the apiserver's `validEnvDownwardAPIFieldPathExpressions`).
pub const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Fields a volume file may hold (`validVolumeDownwardAPIFieldPathExpressions`).
pub const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
];

/// Resources `resourceFieldRef` may read.
pub const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

/// Splits `metadata.labels['key']` into `("metadata.labels", "key")`
/// (fieldpath's `SplitMaybeSubscriptedPath`).
pub fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, key) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, key))
}

/// The value of a pod field for an env var or a volume file.
pub fn field_value(pod: &Pod, facts: &PodFacts, field_path: &str, usage: FieldUsage) -> Result<String, ConfigError> {
    let unsupported = || ConfigError::UnsupportedFieldPath {
        field_path: field_path.to_string(),
    };
    let meta = &pod.metadata;
    if let Some((path, key)) = split_subscript(field_path) {
        let (map, checked_key) = match path {
            "metadata.labels" => (&meta.labels, key.to_string()),
            "metadata.annotations" => (&meta.annotations, key.to_lowercase()),
            _ => return Err(unsupported()),
        };
        let errs = names::qualified_name(&checked_key);
        if !errs.is_empty() {
            let reason = errs.join(";");
            return Err(ConfigError::InvalidSubscript {
                field_path: field_path.to_string(),
                reason,
            });
        }
        return Ok(map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    let allowed = match usage {
        FieldUsage::Env => ENV_FIELD_PATHS,
        FieldUsage::Volume => VOLUME_FIELD_PATHS,
    };
    if !allowed.contains(&field_path) {
        return Err(unsupported());
    }
    let spec = pod.spec.as_ref();
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    Ok(match field_path {
        "metadata.name" => text(&meta.name),
        "metadata.namespace" => crate::env::pod_namespace(pod).to_string(),
        "metadata.uid" => text(&meta.uid),
        "metadata.labels" => format_map(meta.labels.as_ref().unwrap_or(&BTreeMap::new())),
        "metadata.annotations" => format_map(meta.annotations.as_ref().unwrap_or(&BTreeMap::new())),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| facts.node_name.clone()),
        "spec.serviceAccountName" => spec.map(|s| text(&s.service_account_name)).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        _ => return Err(unsupported()),
    })
}

/// [`field_value`] for a `fieldRef`, whose `apiVersion` (defaulted to `v1`) must be `v1`.
pub fn field_ref_value(
    pod: &Pod,
    facts: &PodFacts,
    api_version: Option<&str>,
    field_path: &str,
    usage: FieldUsage,
) -> Result<String, ConfigError> {
    match api_version.unwrap_or("") {
        "" | "v1" => field_value(pod, facts, field_path, usage),
        other => Err(ConfigError::UnsupportedApiVersion {
            api_version: other.to_string(),
        }),
    }
}

/// A label or annotation map as the kubelet writes it to a file: `key="value"` lines sorted
/// by key, values quoted with Go's `%q`, joined by newlines with no trailing newline.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The container named `name`, among app containers first, then init containers.
pub fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, ConfigError> {
    let spec = pod.spec.as_ref();
    let app = spec.into_iter().flat_map(|s| s.containers.iter());
    let init = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten());
    app.chain(init)
        .find(|c| c.name == name)
        .ok_or_else(|| ConfigError::ContainerNotFound { name: name.to_string() })
}

/// The value of `resource` (`limits.memory`...) of the pod's container `container_name`,
/// in whole units of `divisor` (default 1), rounded up.
pub fn resource_value(
    pod: &Pod,
    container_name: &str,
    resource: &str,
    divisor: Option<&ApiQuantity>,
    facts: &PodFacts,
) -> Result<String, ConfigError> {
    container_resource_value(find_container(pod, container_name)?, resource, divisor, facts)
}

/// [`resource_value`] for a container already at hand. As the kubelet does, an unset (or
/// zero) limit reads as the node's allocatable amount, when known; an unset request reads
/// as 0. CPU is rounded to millicores before dividing, memory and storage to whole bytes.
pub fn container_resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&ApiQuantity>,
    facts: &PodFacts,
) -> Result<String, ConfigError> {
    let (kind, name) = resource
        .split_once('.')
        .filter(|_| RESOURCE_FIELDS.contains(&resource))
        .ok_or_else(|| ConfigError::UnsupportedResource {
            resource: resource.to_string(),
        })?;
    let parse = |field: &str, text: &str| {
        quantity::parse(text).map_err(|source| ConfigError::InvalidQuantity {
            field: field.to_string(),
            value: text.to_string(),
            source,
        })
    };
    let divisor = match divisor {
        Some(d) => parse("divisor", &d.0)?,
        None => Quantity::from_units(0),
    };
    let divisor = if divisor.is_zero() {
        Quantity::from_units(1)
    } else {
        divisor
    };
    let resources = container.resources.as_ref();
    let list = if kind == "limits" {
        resources.and_then(|r| r.limits.as_ref())
    } else {
        resources.and_then(|r| r.requests.as_ref())
    };
    let mut value = match list.and_then(|l| l.get(name)) {
        Some(q) => parse(resource, &q.0)?,
        None => Quantity::from_units(0),
    };
    if kind == "limits" && value.is_zero() {
        value = match name {
            "cpu" => Quantity::from_millis(facts.node_allocatable_cpu_millis),
            "memory" => Quantity::from_units(facts.node_allocatable_memory_bytes),
            _ => Quantity::from_units(facts.node_allocatable_ephemeral_storage_bytes),
        };
    }
    let (numerator, denominator) = if name == "cpu" {
        (value.as_millis_ceil(), divisor.as_millis_ceil())
    } else {
        (value.as_bytes_ceil(), divisor.as_bytes_ceil())
    };
    Quantity::from_nanos(numerator)
        .divide_ceil(&Quantity::from_nanos(denominator))
        .map(|n| n.to_string())
        .map_err(|source| ConfigError::InvalidQuantity {
            field: "divisor".into(),
            value: divisor.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Object, parse_manifests};

    fn pod() -> Pod {
        let text = r#"
apiVersion: v1
kind: Pod
metadata:
  name: random-generator
  namespace: prod
  uid: 1234-abcd
  labels: {app: random, tier: "back end"}
  annotations: {build: "42", note: "say \"hi\"\nbye"}
spec:
  serviceAccountName: runner
  containers:
  - name: main
    image: app
    resources:
      limits: {memory: 512Mi, cpu: 250m}
      requests: {memory: 256Mi, cpu: 125m}
  - name: nolimits
    image: app
"#;
        match parse_manifests(text).unwrap().remove(0) {
            Object::Pod(p) => *p,
            _ => unreachable!(),
        }
    }

    fn facts() -> PodFacts {
        PodFacts {
            pod_ip: "10.0.0.7".into(),
            host_ip: "192.168.1.2".into(),
            node_name: "node-a".into(),
            node_allocatable_cpu_millis: 4000,
            node_allocatable_memory_bytes: 8 << 30,
            node_allocatable_ephemeral_storage_bytes: 0,
        }
    }

    #[test]
    fn reads_fields_per_usage() {
        use FieldUsage::{Env, Volume};
        let cases: &[(&str, FieldUsage, Result<&str, &str>)] = &[
            ("metadata.name", Env, Ok("random-generator")),
            ("metadata.namespace", Volume, Ok("prod")),
            ("metadata.uid", Env, Ok("1234-abcd")),
            ("metadata.labels['app']", Env, Ok("random")),
            ("metadata.labels['missing']", Env, Ok("")),
            ("metadata.annotations['build']", Volume, Ok("42")),
            ("spec.nodeName", Env, Ok("node-a")),
            ("spec.serviceAccountName", Env, Ok("runner")),
            ("status.podIP", Env, Ok("10.0.0.7")),
            ("status.podIPs", Env, Ok("10.0.0.7")),
            ("status.hostIP", Env, Ok("192.168.1.2")),
            ("metadata.labels", Volume, Ok("app=\"random\"\ntier=\"back end\"")),
            ("metadata.labels", Env, Err("unsupported fieldPath: metadata.labels")),
            ("status.podIP", Volume, Err("unsupported fieldPath: status.podIP")),
            (
                "spec.restartPolicy",
                Env,
                Err("unsupported fieldPath: spec.restartPolicy"),
            ),
            (
                "spec.containers['x']",
                Env,
                Err("unsupported fieldPath: spec.containers['x']"),
            ),
            (
                "metadata.labels['a b']",
                Env,
                Err("invalid key subscript in metadata.labels['a b']: name part must consist"),
            ),
        ];
        for (path, usage, want) in cases {
            let got = field_value(&pod(), &facts(), path, *usage).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{path}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{path}: {got}"),
                (got, _) => panic!("{path}: unexpected {got:?}"),
            }
        }
        let v2 = field_ref_value(&pod(), &facts(), Some("v2"), "metadata.name", Env);
        assert_eq!(v2.unwrap_err().to_string(), "unsupported pod version: v2");
    }

    #[test]
    fn formats_maps_like_the_kubelet() {
        let annotations = pod().metadata.annotations.unwrap();
        assert_eq!(format_map(&annotations), "build=\"42\"\nnote=\"say \\\"hi\\\"\\nbye\"");
        assert_eq!(format_map(&BTreeMap::new()), "");
    }

    #[test]
    fn reads_resources_with_divisors() {
        let q = |s: &str| ApiQuantity(s.to_string());
        type Case<'a> = (&'a str, &'a str, Option<&'a str>, Result<&'a str, &'a str>);
        let cases: &[Case] = &[
            ("main", "limits.memory", None, Ok("536870912")),
            ("main", "limits.memory", Some("1Mi"), Ok("512")),
            ("main", "requests.memory", Some("1Gi"), Ok("1")),
            ("main", "limits.cpu", None, Ok("1")),
            ("main", "limits.cpu", Some("1m"), Ok("250")),
            ("main", "requests.cpu", Some("1m"), Ok("125")),
            ("main", "limits.cpu", Some("0"), Ok("1")),
            ("nolimits", "limits.cpu", Some("1m"), Ok("4000")),
            ("nolimits", "limits.memory", Some("1Gi"), Ok("8")),
            ("nolimits", "requests.memory", None, Ok("0")),
            ("nolimits", "limits.ephemeral-storage", None, Ok("0")),
            (
                "main",
                "limits.gpu",
                None,
                Err("unsupported container resource : limits.gpu"),
            ),
            ("ghost", "limits.cpu", None, Err("container ghost not found")),
            (
                "main",
                "limits.memory",
                Some("x"),
                Err("invalid quantity \"x\" for divisor"),
            ),
        ];
        for (container, resource, divisor, want) in cases {
            let divisor = divisor.map(q);
            let got =
                resource_value(&pod(), container, resource, divisor.as_ref(), &facts()).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{container} {resource}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{resource}: {got}"),
                (got, _) => panic!("{container} {resource}: unexpected {got:?}"),
            }
        }
    }
}
