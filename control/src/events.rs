//! Recording core/v1 Events, as client-go's event recorder does: one Event per (object,
//! reason, message), its `count` and `lastTimestamp` bumped when the same thing happens
//! again, so a pod retried every few seconds does not flood the store.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Value, json};

use crate::api::registry::{WriteOptions, now, timestamp};
use crate::api::resources::find;
use crate::api::{Api, ApiError};

/// Who reports an event (`source.component`, `reportingComponent`).
pub type Component = &'static str;

/// Records `reason`/`message` about `object` (any stored object with metadata).
pub fn record(api: &Api, object: &Value, kind: &str, type_: &str, reason: &str, message: &str, component: Component) {
    if let Err(e) = try_record(api, object, kind, type_, reason, message, component) {
        tracing::debug!(error = %e, reason, "recording an event failed");
    }
}

fn try_record(
    api: &Api,
    object: &Value,
    kind: &str,
    type_: &str,
    reason: &str,
    message: &str,
    component: Component,
) -> Result<(), ApiError> {
    let events = find("", "v1", "events").expect("events are served");
    let meta = &object["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default");
    let name = meta["name"].as_str().unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    (meta["uid"].as_str(), reason, message).hash(&mut hasher);
    let event_name = format!("{name}.{:016x}", hasher.finish());
    let stamp = timestamp(now());
    if let Ok(mut existing) = api.get(events, Some(ns), &event_name) {
        existing["count"] = json!(existing["count"].as_i64().unwrap_or(1) + 1);
        existing["lastTimestamp"] = stamp;
        api.update(events, Some(ns), &event_name, existing, false, &WriteOptions::default())?;
        return Ok(());
    }
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name, "namespace": ns},
        "involvedObject": {
            "kind": kind,
            "namespace": ns,
            "name": name,
            "uid": meta["uid"],
            "apiVersion": api_version,
            "resourceVersion": meta["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    });
    match api.create(events, Some(ns), event, &WriteOptions::default()) {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
