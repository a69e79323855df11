//! How controller shells write: read-modify-write with the object's resourceVersion as the
//! precondition (retried on conflict) and, where an effect names one, its uid — so a
//! controller never changes an object that was deleted and recreated under the same name.

use serde_json::Value;

use crate::api::resources::ResourceInfo;
use crate::api::{Api, ApiError};

/// How many times a conflicting write is retried with a fresh read.
const CONFLICT_RETRIES: usize = 5;

/// Applies `change` to the stored object and writes it (through `/status` when
/// `status_only`); returns the written revision, or `None` when `change` left it as it was.
pub fn modify(
    api: &Api,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    uid: Option<&str>,
    status_only: bool,
    mut change: impl FnMut(&mut Value),
) -> Result<Option<u64>, ApiError> {
    let mut attempt = 0;
    loop {
        let mut replaced = false;
        let written = api.modify(info, ns, name, status_only, |current| {
            if let Some(uid) = uid
                && current["metadata"]["uid"].as_str() != Some(uid)
            {
                replaced = true;
                return Err(ApiError::Conflict {
                    resource: info.qualified(),
                    name: name.to_owned(),
                    detail: format!("the object's uid is not {uid}: it was replaced"),
                });
            }
            let mut next = current.clone();
            change(&mut next);
            Ok((next != *current).then_some(next))
        });
        match written {
            Ok(written) => return Ok(written.map(|w| revision(&w.object))),
            Err(ApiError::Conflict { .. }) if !replaced && attempt < CONFLICT_RETRIES => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// An object's resourceVersion as a number.
pub fn revision(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
