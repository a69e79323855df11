//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. The server, not kubectl, decides the
//! columns and renders each cell, so the columns, cells and status strings here are those of
//! kube-apiserver's printers (`pkg/printers/internalversion/printers.go`, Kubernetes 1.34): a pod
//! reads `Init:0/1`, `CrashLoopBackOff` or `Terminating` exactly as on a real cluster. Kinds
//! without a printer get the generic table convertor's `Name` and `Created At`.
//!
//! As kube-apiserver does, every row carries the wide (`-o wide`, priority 1) cells too; kubectl
//! hides those columns unless asked. Ages are apimachinery's `HumanDuration` of the time elapsed
//! until `now_unix_seconds`, which callers pass in: this module reads no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use capstan_core::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use capstan_core::k8s_openapi::api::coordination::v1::Lease;
use capstan_core::k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Event, Namespace, Node, Pod, PodSpec, ResourceQuota, Secret, Service,
    ServiceAccount,
};
use capstan_core::k8s_openapi::api::scheduling::v1::PriorityClass;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use capstan_core::k8s_openapi::jiff::Timestamp;
use capstan_core::quantity;
use capstan_core::quote::go_quote;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (the default; kubectl uses it for
    /// `--show-labels`, namespaces and sorting).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; absent or empty means `Metadata`. The error is
    /// the apiserver's Bad Request message.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(format!("unrecognized includeObject value: {}", go_quote(other))),
        }
    }
}

/// The Table for objects of `kind` (`Pod`, `Deployment`...): one row per object, in order. A GET
/// of one object is a one-row table. `list_resource_version` becomes the table's
/// `metadata.resourceVersion` (for a single object, pass the object's).
pub fn table(
    kind: &str,
    objects: &[Value],
    list_resource_version: Option<&str>,
    include: IncludeObject,
    now_unix_seconds: i64,
) -> Value {
    let (columns, print) = printer(kind);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let row = print(object, now_unix_seconds);
            let mut out = json!({ "cells": row.cells });
            if let Some(conditions) = row.conditions {
                out["conditions"] = conditions;
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    out["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                IncludeObject::Object => out["object"] = object.clone(),
            }
            out
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = list_resource_version {
        metadata["resourceVersion"] = rv.into();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// apimachinery's `duration.HumanDuration`: about two significant figures (`5s`, `3m2s`, `15m`,
/// `5h3m`, `2d3h`, `300d`, `2y10d`, `9y`). Up to a second in the future reads `0s` (clock skew);
/// further is `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        };
    }
    format!("{}y", days / 365)
}

/// One column of a table.
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    priority: i32,
}

impl Column {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        priority: 1,
        ..col(name, kind, description)
    }
}

const NAME: Column = Column {
    format: "name",
    ..col("Name", "string", doc::NAME)
};
const AGE: Column = col("Age", "string", doc::CREATION_TIMESTAMP);
const CONTAINERS: Column = wide("Containers", "string", "Names of each container in the template.");
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// A row's cells, and the row conditions a pod that has finished carries.
struct Row {
    cells: Vec<Value>,
    conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: None,
        }
    }
}

type Print = fn(&Value, i64) -> Row;

fn printer(kind: &str) -> (&'static [Column], Print) {
    match kind {
        "Pod" => (POD_COLUMNS, pod_row),
        "Deployment" => (DEPLOYMENT_COLUMNS, deployment_row),
        "ReplicaSet" => (REPLICA_SET_COLUMNS, replica_set_row),
        "HorizontalPodAutoscaler" => (HPA_COLUMNS, hpa_row),
        "Service" => (SERVICE_COLUMNS, service_row),
        "Endpoints" => (ENDPOINTS_COLUMNS, endpoints_row),
        "EndpointSlice" => (ENDPOINT_SLICE_COLUMNS, endpoint_slice_row),
        "Node" => (NODE_COLUMNS, node_row),
        "Namespace" => (NAMESPACE_COLUMNS, namespace_row),
        "ConfigMap" => (CONFIG_MAP_COLUMNS, config_map_row),
        "Secret" => (SECRET_COLUMNS, secret_row),
        "ServiceAccount" => (SERVICE_ACCOUNT_COLUMNS, service_account_row),
        "Event" => (EVENT_COLUMNS, event_row),
        "Lease" => (LEASE_COLUMNS, lease_row),
        "PriorityClass" => (PRIORITY_CLASS_COLUMNS, priority_class_row),
        "ResourceQuota" => (RESOURCE_QUOTA_COLUMNS, resource_quota_row),
        _ => (DEFAULT_COLUMNS, default_row),
    }
}

/// An object of a known type. Stored objects always fit; one that does not is shown from an
/// empty object rather than failing the whole list.
fn typed<T: DeserializeOwned + Default>(object: &Value) -> T {
    serde_json::from_value(object.clone()).unwrap_or_default()
}

fn name(meta: &ObjectMeta) -> Value {
    meta.name.clone().unwrap_or_default().into()
}

/// Whole seconds from `t` to `now`, truncated as Go's `int(d.Seconds())`.
fn elapsed(t: &Timestamp, now: i64) -> i64 {
    ((i128::from(now) * 1_000_000_000 - t.as_nanosecond()) / 1_000_000_000) as i64
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
fn since(t: Option<&Timestamp>, now: i64) -> String {
    t.map_or_else(|| "<unknown>".into(), |t| human_duration(elapsed(t, now)))
}

fn age(meta: &ObjectMeta, now: i64) -> Value {
    since(meta.creation_timestamp.as_ref().map(|t| &t.0), now).into()
}

fn or_none(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("<none>").to_string()
}

/// `layoutContainerCells`: names and images, comma-separated.
fn container_cells(spec: Option<&PodSpec>) -> [Value; 2] {
    let containers: &[Container] = spec.map_or(&[], |s| &s.containers);
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers.iter().map(|c| c.image.as_deref().unwrap_or("")).collect();
    [names.join(",").into(), images.join(",").into()]
}

/// `labels.FormatLabels`: `a=b,c=d` sorted, `<none>` when empty.
fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let parts: Vec<String> = labels.into_iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// `LabelSelectorAsSelector(...).String()`: requirements sorted by key, `k=v`, `k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`; empty for no selector. `Err` for an invalid operator or values.
fn selector_string(selector: &LabelSelector) -> Result<String, ()> {
    let mut requirements: Vec<(&str, String)> = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        requirements.push((k, format!("{k}={v}")));
    }
    for e in selector.match_expressions.iter().flatten() {
        let k = e.key.as_str();
        let values: BTreeSet<&str> = e.values.iter().flatten().map(String::as_str).collect();
        let set = values.into_iter().collect::<Vec<_>>().join(",");
        let rendered = match e.operator.as_str() {
            "In" if !set.is_empty() => format!("{k} in ({set})"),
            "NotIn" if !set.is_empty() => format!("{k} notin ({set})"),
            "Exists" if set.is_empty() => k.to_string(),
            "DoesNotExist" if set.is_empty() => format!("!{k}"),
            _ => return Err(()),
        };
        requirements.push((k, rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    Ok(requirements.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", doc::POD_IP),
    wide("Node", "string", doc::NODE_NAME),
    wide("Nominated Node", "string", doc::NOMINATED_NODE_NAME),
    wide("Readiness Gates", "string", doc::READINESS_GATES),
];

/// `printPod`, including its status logic: `SchedulingGated`, `Init:N/M`, `Init:<reason>`,
/// `Init:ExitCode:N`, the first waiting or terminated reason of the app containers (`Completed`,
/// `CrashLoopBackOff`, `ExitCode:N`), `NotReady`, `Terminating`, and `Unknown` for a pod being
/// deleted from a lost node. Restarts read `N (Xm ago)` when the last termination time is known.
fn pod_row(object: &Value, now: i64) -> Row {
    let pod: Pod = typed(object);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let conditions = status.conditions.as_deref().unwrap_or(&[]);
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.clone());
    if conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".into();
    }
    let row_conditions = match phase.as_str() {
        "Succeeded" => Some(completed_condition("Succeeded", "The pod has completed successfully.")),
        "Failed" => Some(completed_condition("Failed", "The pod failed.")),
        _ => None,
    };
    let init_specs = spec.init_containers.as_deref().unwrap_or(&[]);
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .find(|c| c.name == name)
            .is_some_and(crate::admission::limit_range::is_sidecar)
    };
    let total = spec.containers.len() + init_specs.iter().filter(|c| sidecar(&c.name)).count();
    let mut ready = 0;
    let (mut restarts, mut sidecar_restarts) = (0i64, 0i64);
    let (mut last_restart, mut last_sidecar_restart): (Option<Timestamp>, Option<Timestamp>) = (None, None);
    let finished_at = |cs: &capstan_core::k8s_openapi::api::core::v1::ContainerStatus| {
        cs.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
            .map(|t| t.0)
    };
    let mut initializing = false;
    for (i, cs) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += i64::from(cs.restart_count);
        last_restart = last_restart.max(finished_at(cs));
        let is_sidecar = sidecar(&cs.name);
        if is_sidecar {
            sidecar_restarts += i64::from(cs.restart_count);
            last_sidecar_restart = last_sidecar_restart.max(finished_at(cs));
        }
        let state = cs.state.clone().unwrap_or_default();
        if state.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if is_sidecar && cs.started == Some(true) {
            ready += usize::from(cs.ready);
            continue;
        }
        let waiting = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing");
        reason = match (&state.terminated, waiting) {
            (Some(t), _) => match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => format!("Init:Signal:{}", t.signal.unwrap_or(0)),
                None => format!("Init:ExitCode:{}", t.exit_code),
            },
            (None, Some(w)) => format!("Init:{w}"),
            (None, None) => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }
    let initialized = conditions
        .iter()
        .find(|c| c.type_ == "Initialized")
        .is_some_and(|c| c.status == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in status.container_statuses.iter().flatten().rev() {
            restarts += i64::from(cs.restart_count);
            last_restart = last_restart.max(finished_at(cs));
            let state = cs.state.clone().unwrap_or_default();
            let waiting = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty());
            if let Some(w) = waiting {
                reason = w;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.clone().filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A "Completed" container next to one still running: the pod as a whole is running.
        if reason == "Completed" && has_running {
            let pod_ready = conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some("NodeLost") {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(&t), now)),
        _ => restarts.to_string(),
    };
    let ip = status
        .pod_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(|ip| ip.ip.clone())
        .or(status.pod_ip.clone());
    let gates = spec.readiness_gates.as_deref().unwrap_or(&[]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passing = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| c.type_ == g.condition_type)
                    .is_some_and(|c| c.status == "True")
            })
            .count();
        format!("{passing}/{}", gates.len())
    };
    Row {
        cells: vec![
            name(&pod.metadata),
            format!("{ready}/{total}").into(),
            reason.into(),
            restarts_cell.into(),
            age(&pod.metadata, now),
            or_none(ip.as_deref()).into(),
            or_none(spec.node_name.as_deref()).into(),
            or_none(status.nominated_node_name.as_deref()).into(),
            gates_cell.into(),
        ],
        conditions: row_conditions,
    }
}

fn completed_condition(reason: &str, message: &str) -> Value {
    json!([{ "type": "Completed", "status": "True", "reason": reason, "message": message }])
}

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", doc::DEPLOYMENT_UPDATED),
    col("Available", "string", doc::DEPLOYMENT_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::DEPLOYMENT_SELECTOR),
];

fn deployment_row(object: &Value, now: i64) -> Row {
    let d: Deployment = typed(object);
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    let [containers, images] = container_cells(spec.template.spec.as_ref());
    let selector = selector_string(&spec.selector).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name(&d.metadata),
        format!("{}/{}", status.ready_replicas.unwrap_or(0), spec.replicas.unwrap_or(1)).into(),
        status.updated_replicas.unwrap_or(0).into(),
        status.available_replicas.unwrap_or(0).into(),
        age(&d.metadata, now),
        containers,
        images,
        selector.into(),
    ]
    .into()
}

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", doc::REPLICA_SET_REPLICAS),
    col("Current", "integer", doc::REPLICA_SET_STATUS_REPLICAS),
    col("Ready", "integer", doc::REPLICA_SET_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::REPLICA_SET_SELECTOR),
];

fn replica_set_row(object: &Value, now: i64) -> Row {
    let rs: ReplicaSet = typed(object);
    let spec = rs.spec.unwrap_or_default();
    let status = rs.status.unwrap_or_default();
    let [containers, images] = container_cells(spec.template.as_ref().and_then(|t| t.spec.as_ref()));
    // `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
    let selector = match selector_string(&spec.selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    };
    vec![
        name(&rs.metadata),
        spec.replicas.unwrap_or(1).into(),
        status.replicas.into(),
        status.ready_replicas.unwrap_or(0).into(),
        age(&rs.metadata, now),
        containers,
        images,
        selector.into(),
    ]
    .into()
}

const HPA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization.",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

/// `printHorizontalPodAutoscaler`: `Kind/name`, the metrics' current values over their targets,
/// `minReplicas` (`<unset>`), `maxReplicas` and the replicas last seen.
fn hpa_row(object: &Value, now: i64) -> Row {
    let hpa: capstan_core::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler = typed(object);
    let spec = hpa.spec.unwrap_or_default();
    let status = hpa.status.unwrap_or_default();
    let targets = crate::controllers::hpa::format_targets(
        spec.metrics.as_deref().unwrap_or_default(),
        status.current_metrics.as_deref().unwrap_or_default(),
    );
    vec![
        name(&hpa.metadata),
        format!("{}/{}", spec.scale_target_ref.kind, spec.scale_target_ref.name).into(),
        targets.into(),
        spec.min_replicas
            .map_or_else(|| "<unset>".to_string(), |m| m.to_string())
            .into(),
        spec.max_replicas.into(),
        status.current_replicas.unwrap_or(0).into(),
        age(&hpa.metadata, now),
    ]
    .into()
}

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", doc::SERVICE_TYPE),
    col("Cluster-IP", "string", doc::SERVICE_CLUSTER_IP),
    col("External-IP", "string", doc::SERVICE_EXTERNAL_IPS),
    col("Port(s)", "string", doc::SERVICE_PORTS),
    AGE,
    wide("Selector", "string", doc::SERVICE_SELECTOR),
];

fn service_row(object: &Value, now: i64) -> Row {
    let svc: Service = typed(object);
    let spec = svc.spec.clone().unwrap_or_default();
    let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let cluster_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first().cloned())
        .or(spec.cluster_ip.clone());
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    let external = match kind.as_str() {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref());
            let lb: BTreeSet<String> = ingress
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.ip.clone()
                        .filter(|s| !s.is_empty())
                        .or(i.hostname.clone())
                        .filter(|s| !s.is_empty())
                })
                .collect();
            let all: Vec<String> = lb.into_iter().chain(external_ips).collect();
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port.filter(|n| *n > 0) {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                None => format!("{}/{protocol}", p.port),
            }
        })
        .collect();
    vec![
        name(&svc.metadata),
        kind.into(),
        or_none(cluster_ip.as_deref()).into(),
        external.into(),
        if ports.is_empty() {
            "<none>".into()
        } else {
            ports.join(",")
        }
        .into(),
        age(&svc.metadata, now),
        format_labels(spec.selector.as_ref()).into(),
    ]
    .into()
}

const ENDPOINTS_COLUMNS: &[Column] = &[NAME, col("Endpoints", "string", doc::ENDPOINTS_SUBSETS), AGE];

/// `formatEndpoints`: up to three `ip:port` (or bare IPs for port-less subsets), then `+ N more...`.
fn endpoints_row(object: &Value, now: i64) -> Row {
    const MAX: usize = 3;
    let ep: Endpoints = typed(object);
    let subsets = ep.subsets.as_deref().unwrap_or(&[]);
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut list: Vec<String> = Vec::new();
        let (mut count, mut more) = (0, false);
        for ss in subsets {
            let addresses = ss.addresses.as_deref().unwrap_or(&[]);
            let ports = ss.ports.as_deref().unwrap_or(&[]);
            let port_numbers: Vec<Option<i32>> = if ports.is_empty() {
                vec![None]
            } else {
                ports.iter().map(|p| Some(p.port)).collect()
            };
            for port in port_numbers {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(match port {
                        None => a.ip.clone(),
                        Some(port) if a.ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) => {
                            format!("[{}]:{port}", a.ip)
                        }
                        Some(port) => format!("{}:{port}", a.ip),
                    });
                }
            }
        }
        let joined = list.join(",");
        if more {
            format!("{joined} + {} more...", count - MAX)
        } else {
            joined
        }
    };
    vec![name(&ep.metadata), cell.into(), age(&ep.metadata, now)].into()
}

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col("AddressType", "string", doc::ENDPOINT_SLICE_ADDRESS_TYPE),
    col("Ports", "string", doc::ENDPOINT_SLICE_PORTS),
    col("Endpoints", "string", doc::ENDPOINT_SLICE_ENDPOINTS),
    AGE,
];

/// `printEndpointSlice`: up to three ports (a port's number, else its name, else `*`) and up
/// to three addresses, each list followed by `+ N more...` or `<unset>` when empty.
fn endpoint_slice_row(object: &Value, now: i64) -> Row {
    const MAX: usize = 3;
    let slice: capstan_core::k8s_openapi::api::discovery::v1::EndpointSlice = typed(object);
    let list = |items: Vec<String>| {
        let shown = items.iter().take(MAX).cloned().collect::<Vec<_>>().join(",");
        match items.len() {
            0 => "<unset>".to_string(),
            n if n > MAX => format!("{shown} + {} more...", n - MAX),
            _ => shown,
        }
    };
    let ports = slice
        .ports
        .iter()
        .flatten()
        .map(|p| match (p.port, &p.name) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    vec![
        name(&slice.metadata),
        slice.address_type.clone().into(),
        list(ports).into(),
        list(addresses).into(),
        age(&slice.metadata, now),
    ]
    .into()
}

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", doc::NODE_KUBELET_VERSION),
    wide("Internal-IP", "string", doc::NODE_ADDRESSES),
    wide("External-IP", "string", doc::NODE_ADDRESSES),
    wide("OS-Image", "string", doc::NODE_OS_IMAGE),
    wide("Kernel-Version", "string", doc::NODE_KERNEL_VERSION),
    wide("Container-Runtime", "string", doc::NODE_CONTAINER_RUNTIME),
];

fn node_row(object: &Value, now: i64) -> Row {
    let node: Node = typed(object);
    let status = node.status.clone().unwrap_or_default();
    let mut states: Vec<&str> = match status.conditions.iter().flatten().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        states.push("SchedulingDisabled");
    }
    // `node-role.kubernetes.io/<role>` labels and the older `kubernetes.io/role=<role>`.
    let roles: BTreeSet<&str> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None => (k == "kubernetes.io/role" && !v.is_empty()).then_some(v.as_str()),
        })
        .collect();
    let address = |kind: &str| {
        let found = status.addresses.iter().flatten().find(|a| a.type_ == kind);
        found.map_or_else(|| "<none>".to_string(), |a| a.address.clone())
    };
    let info = status.node_info.clone().unwrap_or_default();
    let unknown = |s: String| if s.is_empty() { "<unknown>".to_string() } else { s };
    vec![
        name(&node.metadata),
        states.join(",").into(),
        or_none(Some(&roles.into_iter().collect::<Vec<_>>().join(","))).into(),
        age(&node.metadata, now),
        info.kubelet_version.into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown(info.os_image).into(),
        unknown(info.kernel_version).into(),
        unknown(info.container_runtime_version).into(),
    ]
    .into()
}

const NAMESPACE_COLUMNS: &[Column] = &[NAME, col("Status", "string", "The status of the namespace"), AGE];

fn namespace_row(object: &Value, now: i64) -> Row {
    let ns: Namespace = typed(object);
    // The apiserver defaults a namespace's phase to Active.
    let phase = ns.status.and_then(|s| s.phase).unwrap_or_else(|| "Active".into());
    vec![name(&ns.metadata), phase.into(), age(&ns.metadata, now)].into()
}

const CONFIG_MAP_COLUMNS: &[Column] = &[NAME, col("Data", "string", doc::CONFIG_MAP_DATA), AGE];

fn config_map_row(object: &Value, now: i64) -> Row {
    let cm: ConfigMap = typed(object);
    let entries = cm.data.map_or(0, |d| d.len()) + cm.binary_data.map_or(0, |d| d.len());
    vec![name(&cm.metadata), entries.into(), age(&cm.metadata, now)].into()
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", doc::SECRET_TYPE),
    col("Data", "string", doc::SECRET_DATA),
    AGE,
];

fn secret_row(object: &Value, now: i64) -> Row {
    let secret: Secret = typed(object);
    let kind = secret
        .type_
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Opaque".into());
    let entries = secret.data.map_or(0, |d| d.len());
    vec![
        name(&secret.metadata),
        kind.into(),
        entries.into(),
        age(&secret.metadata, now),
    ]
    .into()
}

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[NAME, col("Secrets", "string", doc::SERVICE_ACCOUNT_SECRETS), AGE];

fn service_account_row(object: &Value, now: i64) -> Row {
    let sa: ServiceAccount = typed(object);
    let secrets = sa.secrets.map_or(0, |s| s.len());
    vec![name(&sa.metadata), secrets.into(), age(&sa.metadata, now)].into()
}

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", doc::EVENT_LAST_TIMESTAMP),
    col("Type", "string", doc::EVENT_TYPE),
    col("Reason", "string", doc::EVENT_REASON),
    col("Object", "string", doc::EVENT_INVOLVED_OBJECT),
    wide("Subobject", "string", doc::EVENT_FIELD_PATH),
    wide("Source", "string", doc::EVENT_SOURCE),
    col("Message", "string", doc::EVENT_MESSAGE),
    wide("First Seen", "string", doc::EVENT_FIRST_TIMESTAMP),
    wide("Count", "string", doc::EVENT_COUNT),
    Column { priority: 1, ..NAME },
];

fn event_row(object: &Value, now: i64) -> Row {
    let ev: Event = typed(object);
    let first = match &ev.first_timestamp {
        Some(t) => since(Some(&t.0), now),
        None => since(ev.event_time.as_ref().map(|t| &t.0), now),
    };
    let mut last = match &ev.last_timestamp {
        Some(t) => since(Some(&t.0), now),
        None => first.clone(),
    };
    let mut count = ev.count.unwrap_or(0);
    if let Some(series) = &ev.series {
        last = since(series.last_observed_time.as_ref().map(|t| &t.0), now);
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        // Events of the events.k8s.io API leave the count of a single occurrence unset.
        count = 1;
    }
    let kind = ev.involved_object.kind.as_deref().unwrap_or("").to_lowercase();
    let target = match ev.involved_object.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    let source = ev.source.clone().unwrap_or_default();
    let component = source
        .component
        .filter(|c| !c.is_empty())
        .or(ev.reporting_component.clone())
        .unwrap_or_default();
    let instance = source
        .host
        .filter(|h| !h.is_empty())
        .or(ev.reporting_instance.clone())
        .unwrap_or_default();
    let source_cell = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        ev.type_.unwrap_or_default().into(),
        ev.reason.unwrap_or_default().into(),
        target.into(),
        ev.involved_object.field_path.unwrap_or_default().into(),
        source_cell.into(),
        ev.message.unwrap_or_default().trim().into(),
        first.into(),
        count.into(),
        name(&ev.metadata),
    ]
    .into()
}

const LEASE_COLUMNS: &[Column] = &[NAME, col("Holder", "string", doc::LEASE_HOLDER), AGE];

fn lease_row(object: &Value, now: i64) -> Row {
    let lease: Lease = typed(object);
    let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    vec![name(&lease.metadata), holder.into(), age(&lease.metadata, now)].into()
}

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Value", "integer", doc::PRIORITY_CLASS_VALUE),
    col("Global-Default", "boolean", doc::PRIORITY_CLASS_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", doc::PRIORITY_CLASS_PREEMPTION_POLICY),
];

fn priority_class_row(object: &Value, now: i64) -> Row {
    let pc: PriorityClass = typed(object);
    // The apiserver defaults the policy; an object stored without it would read the same.
    let policy = pc.preemption_policy.unwrap_or_else(|| "PreemptLowerPriority".into());
    vec![
        name(&pc.metadata),
        pc.value.into(),
        pc.global_default.unwrap_or(false).into(),
        age(&pc.metadata, now),
        policy.into(),
    ]
    .into()
}

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// `printResourceQuota`: `name: used/hard` for each resource of `status.hard`, `limits.*` in
/// the Limit column and everything else in Request.
fn resource_quota_row(object: &Value, now: i64) -> Row {
    let rq: ResourceQuota = typed(object);
    let status = rq.status.unwrap_or_default();
    let canonical = |q: Option<&String>| match q {
        None => "0".to_string(),
        Some(s) => quantity::parse(s).map_or_else(|_| s.clone(), |q| q.to_string()),
    };
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (resource, hard) in status.hard.iter().flatten() {
        let used = status.used.as_ref().and_then(|u| u.get(resource)).map(|q| &q.0);
        let entry = format!("{resource}: {}/{}", canonical(used), canonical(Some(&hard.0)));
        if resource.split_once('.').is_some_and(|(prefix, _)| prefix == "limits") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(&rq.metadata),
        requests.join(", ").into(),
        limits.join(", ").into(),
        age(&rq.metadata, now),
    ]
    .into()
}

/// The generic table convertor's columns, for kinds without a printer (e.g. LimitRange).
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", doc::CREATION_TIMESTAMP)];

fn default_row(object: &Value, _now: i64) -> Row {
    let meta: ObjectMeta = object.get("metadata").map(typed).unwrap_or_default();
    // RFC 3339 in UTC; Go prints the zero time for an object without a timestamp.
    let created = meta.creation_timestamp.as_ref().map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    vec![name(&meta), created.into()].into()
}

/// Column descriptions: the API's field documentation, as the printers take it from `SwaggerDoc()`.
mod doc {
    pub const NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const POD_IP: &str =
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const NOMINATED_NODE_NAME: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub const REPLICA_SET_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const REPLICA_SET_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const REPLICA_SET_READY: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub const REPLICA_SET_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const DEPLOYMENT_UPDATED: &str =
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
    pub const DEPLOYMENT_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOYMENT_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
    pub const SERVICE_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SERVICE_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SERVICE_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub const ENDPOINT_SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported:\n* IPv4: Represents an IPv4 Address.\n* IPv6: Represents an IPv6 Address.\n* FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
    pub const ENDPOINT_SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
    pub const ENDPOINT_SLICE_ENDPOINTS: &str =
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
    pub const NODE_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_KERNEL_VERSION: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_CONTAINER_RUNTIME: &str =
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
    pub const EVENT_LAST_TIMESTAMP: &str = "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str = "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED_OBJECT: &str = "The object that this event is about.";
    pub const EVENT_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TIMESTAMP: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const CONFIG_MAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub const SERVICE_ACCOUNT_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
    pub const PRIORITY_CLASS_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
    pub const PRIORITY_CLASS_GLOBAL_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
    pub const PRIORITY_CLASS_PREEMPTION_POLICY: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
