//! Where a pod's ConfigMaps and Secrets come from: the node's view of the API, or an
//! in-memory set of objects from applied manifests.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::manifest::Object;

/// Where ConfigMaps and Secrets are read from (the API server's cache on a node).
pub trait ConfigSource {
    /// The ConfigMap `namespace/name`, if it exists.
    fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap>;
    /// The Secret `namespace/name`, if it exists.
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret>;
    /// The Services of `namespace`, for the pod's service environment variables (none
    /// without a control plane).
    fn services(&self, _namespace: &str) -> Vec<Service> {
        Vec::new()
    }
}

/// An in-memory [`ConfigSource`], for manifests applied without an API server and for tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigObjects {
    /// The ConfigMaps; one without a namespace is in `default`.
    pub config_maps: Vec<ConfigMap>,
    /// The Secrets; one without a namespace is in `default`.
    pub secrets: Vec<Secret>,
    /// The Services the pod's namespace has when it starts.
    pub services: Vec<Service>,
}

impl ConfigObjects {
    /// Collects the ConfigMaps and Secrets among parsed objects.
    pub fn from_objects(objects: &[Object]) -> Self {
        let mut out = Self::default();
        for object in objects {
            match object {
                Object::ConfigMap(cm) => out.config_maps.push(cm.clone()),
                Object::Secret(secret) => out.secrets.push(secret.clone()),
                Object::Pod(_) | Object::Other { .. } => {}
            }
        }
        out
    }
}

fn is_at(meta: &ObjectMeta, ns: &str, name: &str) -> bool {
    meta.namespace.as_deref().unwrap_or("default") == ns && meta.name.as_deref() == Some(name)
}

impl ConfigSource for ConfigObjects {
    fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        self.config_maps
            .iter()
            .find(|cm| is_at(&cm.metadata, namespace, name))
            .cloned()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        self.secrets
            .iter()
            .find(|s| is_at(&s.metadata, namespace, name))
            .cloned()
    }

    fn services(&self, namespace: &str) -> Vec<Service> {
        self.services
            .iter()
            .filter(|s| s.metadata.namespace.as_deref().unwrap_or("default") == namespace)
            .cloned()
            .collect()
    }
}

/// The pod's namespace, `default` when unset.
pub fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
}
