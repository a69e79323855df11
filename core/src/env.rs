//! A container's environment, resolved as the kubelet's `makeEnvironmentVariables` does.
//!
//! Order of precedence: every `envFrom` source in order (later sources override earlier
//! ones), then every `env` entry in order (overriding `envFrom`). A literal `value` is
//! `$(VAR)`-expanded against what is defined so far; `valueFrom` reads a ConfigMap or Secret
//! key, a pod field or a container resource. A missing non-optional object or key fails the
//! whole resolution, which is what keeps a container from starting with
//! `CreateContainerConfigError` (pattern 2, Predictable Demands).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

use crate::downward::{self, FieldUsage};
use crate::names;
use crate::quantity::QuantityError;

pub use crate::expansion::expand;
pub use source::{ConfigObjects, ConfigSource, References, pod_namespace};

mod services;
mod source;

pub use services::service_env;

/// Why a container's configuration (env or data volume) could not be produced.
/// Messages follow the kubelet's, which users meet in pod events.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A ConfigMap referenced without `optional: true` does not exist.
    #[error("configmap \"{name}\" not found")]
    ConfigMapNotFound {
        /// The pod's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
    },
    /// A Secret referenced without `optional: true` does not exist.
    #[error("secret \"{name}\" not found")]
    SecretNotFound {
        /// The pod's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// An env var's `configMapKeyRef` names a key the ConfigMap lacks.
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        /// The pod's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// An env var's `secretKeyRef` names a key the Secret lacks.
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        /// The pod's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A configMap volume's `items` name a key the ConfigMap lacks.
    #[error("configmap references non-existent config key: {key}")]
    ConfigMapItemNotFound {
        /// The ConfigMap's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A secret volume's `items` name a key the Secret lacks.
    #[error("references non-existent secret key: {key}")]
    SecretItemNotFound {
        /// The Secret's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A `fieldRef.fieldPath` the downward API does not offer (in this place).
    #[error("unsupported fieldPath: {field_path}")]
    UnsupportedFieldPath {
        /// The requested path.
        field_path: String,
    },
    /// A `fieldRef.apiVersion` other than `v1`.
    #[error("unsupported pod version: {api_version}")]
    UnsupportedApiVersion {
        /// The requested version.
        api_version: String,
    },
    /// A `metadata.labels['key']` subscript that is not a valid key.
    #[error("invalid key subscript in {field_path}: {reason}")]
    InvalidSubscript {
        /// The requested path.
        field_path: String,
        /// Why the key is invalid.
        reason: String,
    },
    /// A `resourceFieldRef.resource` the downward API does not offer.
    #[error("unsupported container resource : {resource}")]
    UnsupportedResource {
        /// The requested resource.
        resource: String,
    },
    /// A `resourceFieldRef.containerName` that names no container of the pod.
    #[error("container {name} not found")]
    ContainerNotFound {
        /// The requested container.
        name: String,
    },
    /// A resource value or divisor that is not a usable quantity.
    #[error("invalid quantity {value:?} for {field}: {source}")]
    InvalidQuantity {
        /// Which quantity: `limits.memory`, `divisor`...
        field: String,
        /// The text as written.
        value: String,
        /// Why it was rejected.
        source: QuantityError,
    },
    /// A volume file path that would escape the volume or is otherwise unusable.
    #[error("invalid path: {reason}: {path}")]
    InvalidPath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file mode outside `0..=0777`.
    #[error("invalid mode {mode} for {path}: must be a number between 0 and 0777 (octal), both inclusive")]
    InvalidFileMode {
        /// The file the mode is for.
        path: String,
        /// The mode as written (decimal).
        mode: i32,
    },
}

/// What the node knows about a pod that its spec does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// The pod's IP (`status.podIP`, `status.podIPs`).
    pub pod_ip: String,
    /// The node's IP (`status.hostIP`, `status.hostIPs`).
    pub host_ip: String,
    /// The node's name, used when `spec.nodeName` is not set yet.
    pub node_name: String,
    /// Node allocatable CPU in millicores: the `limits.cpu` reported for a container with
    /// no CPU limit. Zero when unknown.
    pub node_allocatable_cpu_millis: i64,
    /// Node allocatable memory in bytes: the `limits.memory` reported for a container with
    /// no memory limit. Zero when unknown.
    pub node_allocatable_memory_bytes: i64,
    /// Node allocatable ephemeral storage in bytes, likewise. Zero when unknown.
    pub node_allocatable_ephemeral_storage_bytes: i64,
}

/// Variables in first-definition order; redefining one replaces its value in place.
#[derive(Default)]
struct EnvList {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.index.get(name).map(|&i| self.vars[i].1.clone())
    }
}

/// Objects fetched once per resolution, so every reference sees the same version.
struct Fetched<'a> {
    src: &'a dyn ConfigSource,
    namespace: &'a str,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Fetched<'_> {
    fn config_map(&mut self, name: &str) -> Option<&ConfigMap> {
        let (src, ns) = (self.src, self.namespace);
        self.config_maps
            .entry(name.to_string())
            .or_insert_with(|| src.config_map(ns, name))
            .as_ref()
    }

    fn secret(&mut self, name: &str) -> Option<&Secret> {
        let (src, ns) = (self.src, self.namespace);
        self.secrets
            .entry(name.to_string())
            .or_insert_with(|| src.secret(ns, name))
            .as_ref()
    }
}

/// Resolves `container`'s environment. Keys of `envFrom` sources that are not valid
/// variable names (after the prefix) are skipped; with validated objects that cannot happen,
/// but an unvalidated one must not smuggle `=` into the environment block.
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    facts: &PodFacts,
    src: &dyn ConfigSource,
) -> Result<Vec<(String, String)>, ConfigError> {
    let namespace = pod_namespace(pod);
    let mut fetched = Fetched {
        src,
        namespace,
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env = EnvList::default();
    // Service links first, so the container's own env can use and override them.
    if pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false) {
        for (name, value) in service_env(&src.services(namespace)) {
            env.set(name, value);
        }
    }
    let not_found_cm = |name: &str| ConfigError::ConfigMapNotFound {
        namespace: namespace.into(),
        name: name.into(),
    };
    let not_found_secret = |name: &str| ConfigError::SecretNotFound {
        namespace: namespace.into(),
        name: name.into(),
    };

    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let mut add = |key: &str, value: String| {
            let name = format!("{prefix}{key}");
            if names::env_var_name(&name).is_empty() {
                env.set(name, value);
            }
        };
        if let Some(r) = &source.config_map_ref {
            match fetched.config_map(&r.name) {
                Some(cm) => cm.data.iter().flatten().for_each(|(k, v)| add(k, v.clone())),
                None if r.optional == Some(true) => {}
                None => return Err(not_found_cm(&r.name)),
            }
        } else if let Some(r) = &source.secret_ref {
            match fetched.secret(&r.name) {
                Some(s) => s.data.iter().flatten().for_each(|(k, v)| add(k, lossy(&v.0))),
                None if r.optional == Some(true) => {}
                None => return Err(not_found_secret(&r.name)),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            expand(literal, |name| env.get(name))
        } else if let Some(from) = &var.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match fetched.config_map(&r.name) {
                    None if optional => continue,
                    None => return Err(not_found_cm(&r.name)),
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            let (namespace, name, key) = (namespace.into(), r.name.clone(), r.key.clone());
                            return Err(ConfigError::ConfigMapKeyNotFound { namespace, name, key });
                        }
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match fetched.secret(&r.name) {
                    None if optional => continue,
                    None => return Err(not_found_secret(&r.name)),
                    Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => lossy(&v.0),
                        None if optional => continue,
                        None => {
                            let (namespace, name, key) = (namespace.into(), r.name.clone(), r.key.clone());
                            return Err(ConfigError::SecretKeyNotFound { namespace, name, key });
                        }
                    },
                }
            } else if let Some(r) = &from.field_ref {
                downward::field_ref_value(pod, facts, r.api_version.as_deref(), &r.field_path, FieldUsage::Env)?
            } else if let Some(r) = &from.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    None => container,
                    Some(name) => downward::find_container(pod, name)?,
                };
                downward::container_resource_value(target, &r.resource, r.divisor.as_ref(), facts)?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }
    Ok(env.vars)
}

/// Secret values are bytes; the environment takes text.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The container's `command` and `args` with `$(VAR)` references expanded against its
/// resolved environment (the kubelet's `ExpandContainerCommandAndArgs`).
pub fn expand_command(container: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |name: &str| vars.get(name).map(|v| v.to_string());
    let expand_all =
        |list: &Option<Vec<String>>| -> Vec<String> { list.iter().flatten().map(|s| expand(s, lookup)).collect() };
    (expand_all(&container.command), expand_all(&container.args))
}

#[cfg(test)]
mod tests;
