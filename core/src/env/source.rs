//! Where a pod's ConfigMaps and Secrets come from: the node's view of the API, or an
//! in-memory set of objects from applied manifests.

use std::collections::BTreeSet;

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

/// The ConfigMaps and Secrets a pod names, in its containers' `env` and `envFrom` and in its
/// volumes, and whether it takes the Services' environment variables: what a node fetches to
/// start it. The kubelet, too, reads only the objects a pod references, never every Secret
/// of the namespace; that is less to read, and less a node holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    /// `enableServiceLinks` is not false.
    pub services: bool,
}

impl References {
    pub fn of(pod: &Pod) -> Self {
        let mut refs = References::default();
        let Some(spec) = pod.spec.as_ref() else {
            return refs;
        };
        refs.services = spec.enable_service_links != Some(false);
        let containers = spec.init_containers.iter().flatten().chain(&spec.containers);
        for c in containers {
            for var in c.env.iter().flatten() {
                let Some(from) = var.value_from.as_ref() else { continue };
                if let Some(r) = &from.config_map_key_ref {
                    refs.config_maps.insert(r.name.clone());
                }
                if let Some(r) = &from.secret_key_ref {
                    refs.secrets.insert(r.name.clone());
                }
            }
            for from in c.env_from.iter().flatten() {
                if let Some(r) = &from.config_map_ref {
                    refs.config_maps.insert(r.name.clone());
                }
                if let Some(r) = &from.secret_ref {
                    refs.secrets.insert(r.name.clone());
                }
            }
        }
        for volume in spec.volumes.iter().flatten() {
            if let Some(cm) = &volume.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
                refs.secrets.insert(name);
            }
            let sources = volume.projected.iter().flat_map(|p| p.sources.iter().flatten());
            for source in sources {
                if let Some(cm) = &source.config_map {
                    refs.config_maps.insert(cm.name.clone());
                }
                if let Some(secret) = &source.secret {
                    refs.secrets.insert(secret.name.clone());
                }
            }
        }
        refs
    }

    /// Keeps of `objects` only what the references name (the Services only if wanted), as a
    /// node that fetched just those would have them.
    pub fn select(&self, namespace: &str, objects: &ConfigObjects) -> ConfigObjects {
        let named = |meta: &ObjectMeta, names: &BTreeSet<String>| {
            meta.namespace.as_deref().unwrap_or("default") == namespace
                && meta.name.as_ref().is_some_and(|n| names.contains(n))
        };
        ConfigObjects {
            config_maps: (objects.config_maps.iter())
                .filter(|cm| named(&cm.metadata, &self.config_maps))
                .cloned()
                .collect(),
            secrets: (objects.secrets.iter())
                .filter(|s| named(&s.metadata, &self.secrets))
                .cloned()
                .collect(),
            services: if self.services {
                objects.services.clone()
            } else {
                Vec::new()
            },
        }
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
