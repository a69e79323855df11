//! The resource quota controller: keeps every quota's `status.used` equal to what its
//! namespace holds, so deletions give quota back and missed charges are corrected.

use std::sync::Arc;
use std::time::Duration;

use super::write::modify;
use crate::api::registry::ListOptions;
use crate::api::resources::find;
use crate::api::{Api, ApiError};

/// How often usage is recomputed (kube's default resync is 5 minutes; usage that lags for
/// seconds only confuses on a small cluster).
const RESYNC: Duration = Duration::from_secs(2);

pub async fn run(api: Arc<Api>) -> Result<(), ApiError> {
    let mut tick = tokio::time::interval(RESYNC);
    loop {
        tick.tick().await;
        api.call(sync_all).await?;
    }
}

fn sync_all(api: &Api) -> Result<(), ApiError> {
    let quotas = find("", "v1", "resourcequotas").expect("served");
    let (items, _) = api.list_items(quotas, None, &ListOptions::default())?;
    for quota in items {
        let status = api.quota_status(&quota)?;
        if quota["status"] == status {
            continue;
        }
        let ns = quota["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = quota["metadata"]["name"].as_str().unwrap_or_default();
        let uid = quota["metadata"]["uid"].as_str();
        match modify(api, quotas, Some(ns), name, uid, true, |q| q["status"] = status.clone()) {
            Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
