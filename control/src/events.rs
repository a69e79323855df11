//! Recording core/v1 Events, as client-go's event recorder does: one Event per (object,
//! reason, message), its `count` and `lastTimestamp` bumped when the same thing happens
//! again, so a pod retried every few seconds does not flood the store.
//!
//! In a running cluster the writes happen in the background, as client-go's recorder sends
//! events from a goroutine of its own: `record` queues the event and [`sink`] writes what
//! has queued a moment later, together. An event then never delays the write it reports
//! on, nor the next controller's write in a chain (a scale from zero is four of them, and
//! writing their events in between measured as about a millisecond of its latency). Without
//! a sink running (a bare `Api`), `record` writes at once.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::registry::{WriteOptions, now, timestamp};
use crate::api::resources::find;
use crate::api::{Api, ApiError};

/// Who reports an event (`source.component`, `reportingComponent`).
pub type Component = &'static str;

/// How long the sink lets events gather before writing them.
const GATHER: Duration = Duration::from_millis(20);
/// Events queued beyond this many are dropped (client-go's recorder queues 1000).
const MAX_QUEUED: usize = 1000;

/// Events waiting for the background sink.
#[derive(Default)]
pub struct EventQueue {
    queue: Mutex<Queue>,
    queued: tokio::sync::Notify,
    /// Events queued or being written, not yet in the store.
    unwritten: std::sync::atomic::AtomicUsize,
}

impl EventQueue {
    /// How many recorded events are not yet in the store (queued, or in the batch being
    /// written): 0 means every event recorded so far can be read back.
    pub fn unwritten(&self) -> usize {
        self.unwritten.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Queue {
    events: Vec<Pending>,
    /// A sink runs and takes what is queued.
    sink: bool,
}

struct Pending {
    object: Value,
    kind: String,
    type_: String,
    reason: String,
    message: String,
    component: Component,
}

impl Pending {
    fn write(&self, api: &Api) {
        let Pending {
            object,
            kind,
            type_,
            reason,
            message,
            component,
        } = self;
        if let Err(e) = try_record(api, object, kind, type_, reason, message, component) {
            tracing::debug!(error = %e, reason, "recording an event failed");
        }
    }
}

/// Records `reason`/`message` about `object` (any stored object with metadata): queued for
/// the sink when one runs, written now otherwise.
pub fn record(api: &Api, object: &Value, kind: &str, type_: &str, reason: &str, message: &str, component: Component) {
    // Only what the event names of its object: not a copy of a whole pod per event.
    let meta = &object["metadata"];
    let involved = json!({
        "apiVersion": object["apiVersion"],
        "metadata": {
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        },
    });
    let pending = Pending {
        object: involved,
        kind: kind.to_owned(),
        type_: type_.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        component,
    };
    let events = api.events();
    let mut queue = events.queue.lock().unwrap_or_else(PoisonError::into_inner);
    if !queue.sink {
        drop(queue);
        return pending.write(api);
    }
    if queue.events.len() >= MAX_QUEUED {
        tracing::debug!(reason, "event queue full; event dropped");
        return;
    }
    queue.events.push(pending);
    events.unwritten.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    drop(queue);
    events.queued.notify_one();
}

/// Writes queued events in the background, each batch [`GATHER`] after its first event,
/// until dropped; then `record` writes at once again.
pub async fn sink(api: Arc<Api>) {
    struct Attached<'a>(&'a EventQueue);
    impl Drop for Attached<'_> {
        fn drop(&mut self) {
            self.0.queue.lock().unwrap_or_else(PoisonError::into_inner).sink = false;
        }
    }
    let events = api.events();
    events.queue.lock().unwrap_or_else(PoisonError::into_inner).sink = true;
    let _attached = Attached(events);
    loop {
        events.queued.notified().await;
        tokio::time::sleep(GATHER).await;
        let batch = std::mem::take(&mut events.queue.lock().unwrap_or_else(PoisonError::into_inner).events);
        if batch.is_empty() {
            continue;
        }
        let written = batch.len();
        let _ = api
            .call(move |api| {
                for event in &batch {
                    event.write(api);
                }
                Ok(())
            })
            .await;
        events.unwritten.fetch_sub(written, std::sync::atomic::Ordering::SeqCst);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::ListOptions;
    use crate::store::MemStore;

    fn api() -> Arc<Api> {
        let api = Api::new(Arc::new(MemStore::new()));
        api.bootstrap().expect("bootstrap");
        api
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"}})
    }

    fn recorded(api: &Api) -> Vec<Value> {
        let events = find("", "v1", "events").expect("served");
        api.list_items(events, Some("default"), &ListOptions::default())
            .expect("list")
            .0
    }

    #[test]
    fn without_a_sink_an_event_is_written_at_once_and_counted_when_repeated() {
        let api = api();
        record(&api, &pod(), "Pod", "Normal", "Pulled", "done", "kubelet");
        record(&api, &pod(), "Pod", "Normal", "Pulled", "done", "kubelet");
        let events = recorded(&api);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["count"], 2);
        assert_eq!(events[0]["involvedObject"]["uid"], "u1");
    }

    #[tokio::test]
    async fn with_a_sink_events_are_written_in_the_background() {
        let api = api();
        let sink = tokio::spawn(sink(Arc::clone(&api)));
        tokio::time::timeout(Duration::from_secs(10), async {
            while !api.events().queue.lock().expect("queue").sink {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sink attaches");
        record(&api, &pod(), "Pod", "Normal", "Scheduled", "to node-1", "scheduler");
        record(&api, &pod(), "Pod", "Normal", "Started", "main", "kubelet");
        // Queued, not written: the recording write returned without touching the store.
        assert!(recorded(&api).is_empty());
        assert_eq!(api.events().unwritten(), 2);
        tokio::time::timeout(Duration::from_secs(10), async {
            while api.events().unwritten() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the sink writes both events");
        assert_eq!(recorded(&api).len(), 2);
        sink.abort();
        let _ = sink.await;
        // With the sink gone, recording writes at once again.
        record(&api, &pod(), "Pod", "Warning", "BackOff", "again", "kubelet");
        assert_eq!(recorded(&api).len(), 3);
    }
}
