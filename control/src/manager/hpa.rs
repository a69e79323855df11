//! The HorizontalPodAutoscaler controller's shell: follows HPAs and pods, and every sync period
//! (kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`, 15 s) syncs each HPA —
//! reads its target's `/scale`, the target's pods and their metric values, runs the pure core
//! (`controllers::hpa`), then writes the new replica count through `/scale`, the status through
//! `/status`, and records the events.
//!
//! Like Kubernetes, a changed HPA waits for its next sync (a new one is synced at once); the
//! recommendations and scale events each HPA's stabilization and policies read are kept here,
//! in memory, across restarts of the watches.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use capstan_core::k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::informer::{Informer, sleep_until};
use super::pod_metrics::{PodMetricsSource, wall_clock};
use super::write::modify;
use crate::api::resources::{ResourceInfo, find, find_kind, split_api_version};
use crate::api::selector::LabelSelector;
use crate::api::{Api, ApiError};
use crate::controllers::EventNote;
use crate::controllers::hpa::{self, Config, History, Plan, Scale, Snapshot};
use crate::events;

/// How often each HPA is synced by default (`--horizontal-pod-autoscaler-sync-period`).
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);
/// The component events are reported by, as kube-controller-manager names it.
const COMPONENT: &str = "horizontal-pod-autoscaler";

/// The controller's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HpaOptions {
    pub sync_period: Duration,
    pub config: Config,
}

impl Default for HpaOptions {
    fn default() -> Self {
        HpaOptions {
            sync_period: DEFAULT_SYNC_PERIOD,
            config: Config::default(),
        }
    }
}

/// Changes a running controller's settings; the next syncs use them.
#[derive(Clone)]
pub struct HpaHandle {
    options: Arc<watch::Sender<HpaOptions>>,
}

impl HpaHandle {
    pub fn options(&self) -> HpaOptions {
        *self.options.borrow()
    }

    pub fn set_options(&self, options: HpaOptions) {
        self.options.send_replace(options);
    }

    /// A shorter period brings every HPA's next sync forward.
    pub fn set_sync_period(&self, period: Duration) {
        self.options.send_modify(|o| o.sync_period = period);
    }
}

/// Starts the controller, restarting its watches whenever they end.
pub fn spawn(api: &Arc<Api>, metrics: Arc<dyn PodMetricsSource>, options: HpaOptions) -> (HpaHandle, JoinHandle<()>) {
    let (tx, rx) = watch::channel(options);
    let histories: Arc<Mutex<HashMap<String, History>>> = Arc::default();
    let task = tokio::spawn(super::workloads::forever(
        "horizontal-pod-autoscaler",
        Arc::clone(api),
        move |api| run(api, Arc::clone(&metrics), rx.clone(), Arc::clone(&histories)),
    ));
    (HpaHandle { options: Arc::new(tx) }, task)
}

fn served(group: &str, version: &str, plural: &str) -> &'static ResourceInfo {
    find(group, version, plural).expect("served resource")
}

fn key_of(hpa: &HorizontalPodAutoscaler) -> String {
    format!(
        "{}/{}",
        hpa.metadata.namespace.as_deref().unwrap_or_default(),
        hpa.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Follows HPAs and pods and syncs each HPA every sync period.
pub async fn run(
    api: Arc<Api>,
    metrics: Arc<dyn PodMetricsSource>,
    mut options: watch::Receiver<HpaOptions>,
    histories: Arc<Mutex<HashMap<String, History>>>,
) -> Result<(), ApiError> {
    let mut hpas =
        Informer::<HorizontalPodAutoscaler>::start(&api, served("autoscaling", "v2", "horizontalpodautoscalers"))
            .await?;
    let mut pods = Informer::<Pod>::start(&api, served("", "v1", "pods")).await?;
    // When each HPA is synced next.
    let mut due: BTreeMap<String, Instant> = BTreeMap::new();
    let mut settable = true;
    loop {
        let period = options.borrow().sync_period;
        tokio::select! {
            change = hpas.next() => {
                let Some(change) = change else { return Ok(()) };
                let key = key_of(&change.object);
                match change.kind {
                    "ADDED" => { due.insert(key, Instant::now()); }
                    "DELETED" => {
                        due.remove(&key);
                        histories.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
                    }
                    _ => { due.entry(key).or_insert_with(|| Instant::now() + period); }
                }
            }
            change = pods.next() => {
                if change.is_none() { return Ok(()) }
            }
            changed = options.changed(), if settable => {
                // Without a handle left the settings are final.
                settable = changed.is_ok();
                let soonest = Instant::now() + options.borrow().sync_period;
                for at in due.values_mut() {
                    *at = (*at).min(soonest);
                }
            }
            () = sleep_until(due.values().min().copied()) => {}
        }
        if !(hpas.synced() && pods.synced()) {
            continue;
        }
        let now_instant = Instant::now();
        let ready: Vec<String> = due
            .iter()
            .filter(|(_, at)| **at <= now_instant)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            due.insert(key.clone(), Instant::now() + period);
            let Some(hpa) = hpas.items.get(&key).cloned() else {
                due.remove(&key);
                continue;
            };
            let config = options.borrow().config;
            let history = histories
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned()
                .unwrap_or_default();
            let next = sync(&api, &hpa, &pods, metrics.as_ref(), &history, &config).await;
            histories
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, next);
        }
    }
}

/// The target's resource: one this server serves with a `/scale`.
fn target_resource(hpa: &HorizontalPodAutoscaler) -> Result<&'static ResourceInfo, String> {
    let target = hpa
        .spec
        .as_ref()
        .map(|s| &s.scale_target_ref)
        .cloned()
        .unwrap_or_default();
    let api_version = target.api_version.unwrap_or_default();
    match find_kind(&api_version, &target.kind) {
        Some(info) if info.has_subresource("scale") => Ok(info),
        Some(_) => Err(ApiError::NoSuchPath.to_string()),
        None => Err(format!(
            "no matches for kind {:?} in group {:?}",
            target.kind,
            split_api_version(&api_version).0
        )),
    }
}

/// Reads the target's scale and the pods its selector matches.
async fn read_target(
    api: &Arc<Api>,
    hpa: &HorizontalPodAutoscaler,
    pods: &Informer<Pod>,
) -> Result<(Scale, Vec<Pod>), String> {
    let info = target_resource(hpa)?;
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let name = hpa
        .spec
        .as_ref()
        .map(|s| s.scale_target_ref.name.clone())
        .unwrap_or_default();
    let ns2 = ns.clone();
    let scale = api
        .call(move |a| a.get_scale(info, &ns2, &name))
        .await
        .map_err(|e| e.to_string())?;
    let scale = Scale {
        replicas: scale["spec"]["replicas"]
            .as_i64()
            .and_then(|r| i32::try_from(r).ok())
            .unwrap_or(0),
        selector: scale["status"]["selector"].as_str().unwrap_or_default().to_owned(),
    };
    if scale.selector.is_empty() {
        return Ok((scale, Vec::new()));
    }
    let selector = LabelSelector::parse(&scale.selector)
        .map_err(|e| format!("couldn't convert selector into a corresponding internal selector object: {e}"))?;
    let matching = pods
        .in_namespace(&ns)
        .filter(|p| selector.matches(&p.metadata.labels.clone().unwrap_or_default()))
        .map(|p| (**p).clone())
        .collect();
    Ok((scale, matching))
}

/// The values of `hpa`'s `Object` metrics: each described object's pods — a Service's by its
/// selector, a pod itself, a workload's by its `/scale` selector — and their values summed.
async fn object_values(
    api: &Arc<Api>,
    hpa: &HorizontalPodAutoscaler,
    pods: &Informer<Pod>,
    metrics: &dyn PodMetricsSource,
) -> hpa::ObjectValues {
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let specs = hpa.spec.as_ref().and_then(|s| s.metrics.clone()).unwrap_or_default();
    let mut values = hpa::ObjectValues::new();
    for source in specs.iter().filter_map(|m| m.object.as_ref()) {
        let key = hpa::ObjectKey::of(source);
        if values.contains_key(&key) {
            continue;
        }
        let object = &source.described_object;
        let described = format!("{} {:?}", object.kind, object.name);
        let value = match object_pods(api, &ns, object, pods).await {
            Ok(selected) => {
                let read: Vec<hpa::PodMetricValues> = selected
                    .iter()
                    .filter_map(|p| metrics.pod(&ns, p.metadata.name.as_deref().unwrap_or_default()))
                    .collect();
                hpa::object_value(&key.metric, &read).map_err(|e| format!("{described}: {e}"))
            }
            Err(e) => Err(format!("{described}: {e}")),
        };
        values.insert(key, value);
    }
    values
}

/// The pods an `Object` metric's described object stands for.
async fn object_pods(
    api: &Arc<Api>,
    ns: &str,
    object: &capstan_core::k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
    pods: &Informer<Pod>,
) -> Result<Vec<Pod>, String> {
    let selector = match (object.api_version.as_deref().unwrap_or("v1"), object.kind.as_str()) {
        ("v1", "Pod") => {
            let pod = pods.items.get(&format!("{ns}/{}", object.name));
            return pod.map(|p| vec![(**p).clone()]).ok_or_else(|| "not found".to_owned());
        }
        ("v1", "Service") => {
            let (ns, name) = (ns.to_owned(), object.name.clone());
            let service = api
                .call(move |a| a.get(served("", "v1", "services"), Some(&ns), &name))
                .await
                .map_err(|e| e.to_string())?;
            let selector = service["spec"]["selector"].as_object().cloned().unwrap_or_default();
            if selector.is_empty() {
                return Err("has no selector: it stands for no pods".into());
            }
            selector
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        }
        (api_version, kind) => {
            let (group, version) = split_api_version(api_version);
            let info = find_kind(api_version, kind)
                .filter(|i| i.has_subresource("scale"))
                .ok_or_else(|| {
                    format!(
                        "object metrics are read for Services, Pods and kinds with a /scale, not {kind}.{group}/{version}"
                    )
                })?;
            let (ns, name) = (ns.to_owned(), object.name.clone());
            let scale = api
                .call(move |a| a.get_scale(info, &ns, &name))
                .await
                .map_err(|e| e.to_string())?;
            scale["status"]["selector"].as_str().unwrap_or_default().to_owned()
        }
    };
    let selector = LabelSelector::parse(&selector).map_err(|e| format!("its selector: {e}"))?;
    Ok(pods
        .in_namespace(ns)
        .filter(|p| selector.matches(&p.metadata.labels.clone().unwrap_or_default()))
        .map(|p| (**p).clone())
        .collect())
}

/// One sync of one HPA; returns the history to keep.
async fn sync(
    api: &Arc<Api>,
    hpa: &HorizontalPodAutoscaler,
    pods: &Informer<Pod>,
    metrics: &dyn PodMetricsSource,
    history: &History,
    config: &Config,
) -> History {
    let (scale, target_pods) = match read_target(api, hpa, pods).await {
        Ok((scale, pods)) => (Ok(scale), pods),
        Err(e) => (Err(e), Vec::new()),
    };
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let values: BTreeMap<String, hpa::PodMetricValues> = target_pods
        .iter()
        .filter_map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            metrics.pod(&ns, &name).map(|v| (name, v))
        })
        .collect();
    let objects = object_values(api, hpa, pods, metrics).await;
    let plan = hpa::reconcile(&Snapshot {
        hpa,
        scale,
        pods: &target_pods,
        metrics: &values,
        objects: &objects,
        history,
        now: wall_clock(),
        config,
    });
    let hpa = hpa.clone();
    let fallback = history.clone();
    match api.call(move |a| Ok(apply(a, &hpa, plan))).await {
        Ok(kept) => kept,
        Err(e) => {
            tracing::debug!(error = %e, "hpa sync failed");
            fallback
        }
    }
}

fn record(api: &Api, hpa: &Value, note: &EventNote) {
    events::record(
        api,
        hpa,
        "HorizontalPodAutoscaler",
        note.type_,
        note.reason,
        &note.message,
        COMPONENT,
    );
}

/// Carries a plan out: events, the rescale, then the status. Returns the history to keep.
fn apply(api: &Api, hpa: &HorizontalPodAutoscaler, plan: Plan) -> History {
    let object = serde_json::to_value(hpa).unwrap_or(Value::Null);
    for note in &plan.events {
        record(api, &object, note);
    }
    let ns = hpa.metadata.namespace.as_deref().unwrap_or_default();
    let (status, history) = match &plan.rescale {
        None => (plan.status, plan.history),
        Some(rescale) => {
            let target = hpa
                .spec
                .as_ref()
                .map(|s| s.scale_target_ref.name.as_str())
                .unwrap_or_default();
            let written = target_resource(hpa)
                .map_err(ApiError::BadRequest)
                .and_then(|info| api.set_scale(info, ns, target, i64::from(rescale.replicas), None));
            match written {
                Ok(_) => {
                    record(api, &object, &rescale.succeeded());
                    tracing::info!(hpa = %key_of(hpa), from = rescale.from, to = rescale.replicas, reason = %rescale.reason, "rescaled");
                    (plan.status, plan.history)
                }
                Err(e) => {
                    let (status, history, note) = rescale.failed(&e.to_string(), wall_clock());
                    record(api, &object, &note);
                    (status, history)
                }
            }
        }
    };
    let status = serde_json::to_value(&status).unwrap_or(Value::Null);
    let name = hpa.metadata.name.as_deref().unwrap_or_default();
    let info = served("autoscaling", "v2", "horizontalpodautoscalers");
    if let Err(e) = modify(api, info, Some(ns), name, hpa.metadata.uid.as_deref(), true, |o| {
        o["status"] = status.clone();
    }) {
        tracing::debug!(hpa = %key_of(hpa), error = %e, "writing the HPA's status failed");
    }
    history
}
