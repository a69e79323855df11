//! The object store's figures: writes counted and timed by a wrapper around any [`Store`]
//! (the backends stay unaware of metrics), objects counted per resource as they are created
//! and deleted, and pods by phase read from the store when scraped.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Deserialize;

use super::ControlMetrics;
use crate::store::{Entry, Store, StoreError, WatchStream, collection_prefix};

/// The labels of `capstan_store_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WriteLabels {
    operation: &'static str,
    /// `success`, or what refused the write: `conflict`, `exists`, `not_found`, `error`.
    result: &'static str,
}

/// The labels of `capstan_store_write_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StoreLabels {
    operation: &'static str,
}

/// The labels of `capstan_store_objects`: `pods`, or `deployments.apps` outside the core
/// group, as kube-apiserver's `apiserver_storage_objects` names resources.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ObjectLabels {
    resource: String,
}

/// A [`Store`] whose writes are counted and timed in [`ControlMetrics`]; reads and watches
/// pass straight through.
pub(super) struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<ControlMetrics>,
}

impl MeteredStore {
    /// Wraps `inner`, counting the objects it holds now (one list, once).
    pub(super) fn new(inner: Arc<dyn Store>, metrics: Arc<ControlMetrics>) -> Self {
        metrics.store_objects.clear();
        if let Ok((entries, _)) = inner.list("/") {
            for (key, _, _) in &entries {
                if let Some(labels) = object_labels(key) {
                    metrics.store_objects.get_or_create(&labels).inc();
                }
            }
        }
        MeteredStore { inner, metrics }
    }

    fn record<T>(&self, operation: &'static str, started: Instant, result: &Result<T, StoreError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(StoreError::Conflict { .. }) => "conflict",
            Err(StoreError::AlreadyExists { .. }) => "exists",
            Err(StoreError::NotFound { .. }) => "not_found",
            Err(_) => "error",
        };
        self.metrics
            .store_writes
            .get_or_create(&WriteLabels {
                operation,
                result: outcome,
            })
            .inc();
        self.metrics
            .store_write_duration
            .get_or_create(&StoreLabels { operation })
            .observe(started.elapsed().as_secs_f64());
    }

    fn count_object(&self, key: &str, delta: i64) {
        if let Some(labels) = object_labels(key) {
            self.metrics.store_objects.get_or_create(&labels).inc_by(delta);
        }
    }
}

impl Store for MeteredStore {
    fn create(&self, key: &str, value: Bytes) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.inner.create(key, value);
        self.record("create", started, &result);
        if result.is_ok() {
            self.count_object(key, 1);
        }
        result
    }

    fn get(&self, key: &str) -> Result<Option<(Bytes, u64)>, StoreError> {
        self.inner.get(key)
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Entry>, u64), StoreError> {
        self.inner.list(prefix)
    }

    fn update(&self, key: &str, value: Bytes, expected_rev: Option<u64>) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.inner.update(key, value, expected_rev);
        self.record("update", started, &result);
        result
    }

    fn delete(&self, key: &str, expected_rev: Option<u64>) -> Result<(Bytes, u64), StoreError> {
        let started = Instant::now();
        let result = self.inner.delete(key, expected_rev);
        self.record("delete", started, &result);
        if result.is_ok() {
            self.count_object(key, -1);
        }
        result
    }

    fn watch(&self, prefix: &str, from_rev: u64) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, from_rev)
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision()
    }
}

/// The resource an object key belongs to: `/{group}/{resource}/...`.
fn object_labels(key: &str) -> Option<ObjectLabels> {
    let mut parts = key.strip_prefix('/')?.split('/');
    let (group, resource) = (parts.next()?, parts.next()?);
    let resource = if group == "core" {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    Some(ObjectLabels { resource })
}

/// Pod phases Kubernetes defines; each is reported, at zero if no pod is in it, so a query
/// over a phase never finds its series missing.
const PHASES: &[&str] = &["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// `capstan_pods{phase}`, counted from the stored pods at each scrape: the store is the truth,
/// and a scrape every few seconds costs less than keeping a count on every pod write.
#[derive(Default)]
pub(super) struct PodsByPhase {
    store: RwLock<Option<Arc<dyn Store>>>,
}

impl std::fmt::Debug for PodsByPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodsByPhase").finish_non_exhaustive()
    }
}

/// The part of a stored pod the phase count reads.
#[derive(Deserialize)]
struct PhaseOnly {
    #[serde(default)]
    status: Option<StatusPhase>,
}

#[derive(Deserialize)]
struct StatusPhase {
    #[serde(default)]
    phase: Option<String>,
}

impl PodsByPhase {
    pub(super) fn read_from(&self, store: Arc<dyn Store>) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(store);
    }

    /// Pods by phase, the standard phases first; a pod with no phase yet is `Pending`, as the
    /// API reports it.
    fn count(&self) -> Vec<(String, i64)> {
        let mut counts: Vec<(String, i64)> = PHASES.iter().map(|p| ((*p).to_owned(), 0)).collect();
        let store = self.store.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(store) = store else { return counts };
        let Ok((entries, _)) = store.list(&collection_prefix("", "pods", None)) else {
            return counts;
        };
        for (_, value, _) in entries {
            let phase = serde_json::from_slice::<PhaseOnly>(&value)
                .ok()
                .and_then(|p| p.status?.phase)
                .unwrap_or_else(|| "Pending".to_owned());
            match counts.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, n)) => *n += 1,
                None => counts.push((phase, 1)),
            }
        }
        counts
    }
}

impl Collector for PodsByPhase {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.count();
        let mut family = encoder.encode_descriptor(
            "capstan_pods",
            "Number of pods in the cluster, by phase",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (phase, n) in &counts {
            let labels = [("phase", phase.as_str())];
            ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::sample;
    use super::*;
    use crate::store::{MemStore, object_key};

    fn pod(phase: Option<&str>) -> Bytes {
        let status = phase.map_or(json!({}), |p| json!({"phase": p}));
        Bytes::from(serde_json::to_vec(&json!({"kind": "Pod", "status": status})).unwrap())
    }

    #[test]
    fn writes_are_counted_by_result_and_objects_by_resource() {
        let inner: Arc<dyn Store> = Arc::new(MemStore::new());
        inner
            .create(&object_key("apps", "deployments", Some("a"), "d"), Bytes::from("{}"))
            .unwrap();
        let metrics = ControlMetrics::new();
        let store = metrics.instrument_store(inner);
        let key = object_key("", "pods", Some("a"), "web");
        let rev = store.create(&key, pod(None)).unwrap();
        assert!(store.create(&key, pod(None)).is_err());
        store.update(&key, pod(Some("Running")), Some(rev)).unwrap();
        assert!(store.update(&key, pod(None), Some(rev)).is_err());
        store
            .create(&object_key("", "pods", Some("a"), "other"), pod(Some("Failed")))
            .unwrap();
        let text = metrics.encode();
        let writes = |op: &str, result: &str| {
            sample(
                &text,
                &format!(r#"capstan_store_writes_total{{operation="{op}",result="{result}"}}"#),
            )
        };
        assert_eq!(writes("create", "success"), Some(2.0), "{text}");
        assert_eq!(writes("create", "exists"), Some(1.0));
        assert_eq!(writes("update", "success"), Some(1.0));
        assert_eq!(writes("update", "conflict"), Some(1.0));
        assert_eq!(
            sample(
                &text,
                r#"capstan_store_write_duration_seconds_count{operation="create"}"#
            ),
            Some(3.0)
        );
        assert_eq!(sample(&text, r#"capstan_store_objects{resource="pods"}"#), Some(2.0));
        assert_eq!(
            sample(&text, r#"capstan_store_objects{resource="deployments.apps"}"#),
            Some(1.0),
            "objects stored before the wrapper are counted"
        );
        assert_eq!(sample(&text, r#"capstan_pods{phase="Running"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"capstan_pods{phase="Failed"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"capstan_pods{phase="Pending"}"#), Some(0.0));

        store.delete(&key, None).unwrap();
        let text = metrics.encode();
        assert_eq!(sample(&text, r#"capstan_store_objects{resource="pods"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"capstan_pods{phase="Running"}"#), Some(0.0));
    }

    #[test]
    fn object_keys_name_resources_as_kubernetes_does() {
        let label = |k: &str| object_labels(k).map(|l| l.resource);
        assert_eq!(label("/core/pods/a/web").as_deref(), Some("pods"));
        assert_eq!(label("/core/nodes/n1").as_deref(), Some("nodes"));
        assert_eq!(label("/apps/deployments/a/d").as_deref(), Some("deployments.apps"));
        assert_eq!(label("nope"), None);
    }
}
