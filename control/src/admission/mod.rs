//! Admission: what the API server does to an object between decoding and storing it that
//! needs other objects — LimitRange defaults and bounds, ResourceQuota charges. (Defaulting
//! and validation of the object alone are the per-kind strategies' in `api/strategy.rs`.)
//!
//! The plugins (`limit_range`, `quota`) are pure; [`Admission`] reads what they need from the
//! store and writes quota usage.

pub mod limit_range;
pub mod quota;

use capstan_core::k8s_openapi::api::core::v1::{LimitRange, Pod, ResourceQuota};
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::registry::{Api, ListOptions, WriteOptions, name_of};
use crate::api::resources::{RESOURCES, ResourceInfo, find};

/// How many times a quota charge is retried when the quota changed in between.
const QUOTA_RETRIES: usize = 5;

fn forbidden(info: &ResourceInfo, name: &str, detail: String) -> ApiError {
    ApiError::Forbidden {
        resource: info.qualified(),
        name: name.to_owned(),
        detail,
    }
}

fn typed<T: serde::de::DeserializeOwned>(items: Vec<Value>) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

impl Api {
    /// The Priority plugin: a pod's `priorityClassName` (or the global default class) becomes
    /// its `priority` and `preemptionPolicy`; an unknown class is refused.
    pub(crate) fn admit_priority(&self, info: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
        if info.kind != "Pod" {
            return Ok(());
        }
        let classes = find("scheduling.k8s.io", "v1", "priorityclasses").expect("served");
        let name = object["spec"]["priorityClassName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let class = match &name {
            Some(name) => match self.get(classes, None, name) {
                Ok(class) => Some(class),
                Err(ApiError::NotFound { .. }) => {
                    return Err(forbidden(
                        info,
                        name_of(object),
                        format!("no PriorityClass with name {name} was found"),
                    ));
                }
                Err(e) => return Err(e),
            },
            None => {
                let (all, _) = self.list_items(classes, None, &ListOptions::default())?;
                all.into_iter().find(|c| c["globalDefault"] == Value::Bool(true))
            }
        };
        let spec = &mut object["spec"];
        match class {
            Some(class) => {
                spec["priorityClassName"] = class["metadata"]["name"].clone();
                spec["priority"] = class["value"].clone();
                spec["preemptionPolicy"] = class
                    .get("preemptionPolicy")
                    .cloned()
                    .unwrap_or_else(|| json!("PreemptLowerPriority"));
            }
            None => {
                if spec.get("priority").is_none_or(Value::is_null) {
                    spec["priority"] = json!(0);
                }
            }
        }
        Ok(())
    }

    /// LimitRange defaults and bounds for a pod being created in `ns`.
    pub(crate) fn admit_limit_ranges(&self, info: &ResourceInfo, ns: &str, object: &mut Value) -> Result<(), ApiError> {
        if info.kind != "Pod" {
            return Ok(());
        }
        let ranges_info = find("", "v1", "limitranges").expect("served");
        let (ranges, _) = self.list_items(ranges_info, Some(ns), &ListOptions::default())?;
        if ranges.is_empty() {
            return Ok(());
        }
        let ranges: Vec<LimitRange> = typed(ranges);
        let mut pod: Pod = serde_json::from_value(object.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
        limit_range::admit_pod(&mut pod, &ranges).map_err(|e| forbidden(info, name_of(object), e.to_string()))?;
        // kube-apiserver computes the QoS class in the pod strategy's PrepareForCreate, which
        // runs after mutating admission: the class is that of the defaulted resources.
        let qos = capstan_core::defaults::qos_class(&pod).to_owned();
        if let Some(status) = pod.status.as_mut() {
            status.qos_class = Some(qos);
        }
        *object = serde_json::to_value(&pod).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(())
    }

    /// Charges a create (`old` None) or update against the namespace's quotas, writing their
    /// new usage; refuses it if a quota would be exceeded.
    pub(crate) fn charge_quotas(
        &self,
        info: &ResourceInfo,
        ns: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let quotas_info = find("", "v1", "resourcequotas").expect("served");
        for _ in 0..QUOTA_RETRIES {
            let (items, _) = self.list_items(quotas_info, Some(ns), &ListOptions::default())?;
            if items.is_empty() {
                return Ok(());
            }
            let quotas: Vec<ResourceQuota> = typed(items.clone());
            let charges = quota::admit(&quotas, info.group, info.plural, object, old)
                .map_err(|e| forbidden(info, name_of(object), e.to_string()))?;
            let mut conflict = false;
            for (name, usage) in charges {
                let Some(mut current) = items.iter().find(|q| name_of(q) == name).cloned() else {
                    continue;
                };
                current["status"]["used"] = json!(
                    usage
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect::<std::collections::BTreeMap<_, _>>()
                );
                match self.update(quotas_info, Some(ns), &name, current, true, &WriteOptions::default()) {
                    Ok(_) => {}
                    Err(ApiError::Conflict { .. }) => {
                        conflict = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !conflict {
                return Ok(());
            }
        }
        Err(ApiError::Conflict {
            resource: "resourcequotas".into(),
            name: String::new(),
            detail: "the quota changed while this request was charged; please retry".into(),
        })
    }

    /// A quota's status from scratch: `hard` from its spec, `used` summed over the namespace.
    pub fn quota_status(&self, quota_value: &Value) -> Result<Value, ApiError> {
        let quota: ResourceQuota =
            serde_json::from_value(quota_value.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
        let ns = quota.metadata.namespace.clone().unwrap_or_default();
        let mut objects: Vec<(&'static ResourceInfo, Value)> = Vec::new();
        for info in RESOURCES.iter().filter(|r| r.namespaced) {
            let (items, _) = self.list_items(info, Some(&ns), &ListOptions::default())?;
            objects.extend(items.into_iter().map(|v| (info, v)));
        }
        let used = quota::used(&quota, objects.iter().map(|(i, v)| (i.group, i.plural, v)));
        let used: std::collections::BTreeMap<String, String> =
            used.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        Ok(json!({"hard": quota_value["spec"]["hard"], "used": used}))
    }
}
