//! API errors and the `Status` bodies Kubernetes answers them with: the reason, code, message
//! and details clients branch on (`kubectl` prints the message; client libraries match the
//! reason and code).

use capstan_core::validate::FieldError;
use serde_json::{Value, json};

use super::resources::ResourceInfo;
use crate::store::StoreError;

/// Everything an API request can fail with, one variant per `metav1.StatusReason` used.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The named object does not exist (404 NotFound).
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    /// The path names no resource this server serves (404 NotFound).
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// Create found an object of that name (409 AlreadyExists).
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// The write's resourceVersion or precondition is stale (409 Conflict).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: String,
        name: String,
        detail: String,
    },
    /// The object failed validation (422 Invalid); one cause per field.
    #[error("{}", invalid_message(kind, name, causes))]
    Invalid {
        /// The kind qualified by its group, as apimachinery's `GroupKind.String()`:
        /// `Pod`, `Deployment.apps`, `Scale.autoscaling`.
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// The request is malformed: body, query or path (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// Admission refused the request (403 Forbidden), e.g. a LimitRange or ResourceQuota.
    #[error("{resource} \"{name}\" is forbidden: {detail}")]
    Forbidden {
        resource: String,
        name: String,
        detail: String,
    },
    /// The verb is not served on this path (405 MethodNotAllowed).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// A watch asked for history that was compacted (410 Expired).
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// The body's media type is not one this endpoint takes (415 UnsupportedMediaType).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request option is understood but refused (422 Invalid without causes), e.g.
    /// `sendInitialEvents` without `resourceVersionMatch=NotOlderThan`.
    #[error("{0}")]
    Unprocessable(String),
    /// The server could not serve the request (500 InternalError).
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// A server-side wait ran out (504 Timeout).
    #[error("{0}")]
    Timeout(String),
    /// What the request is for cannot take it now, e.g. a proxied Service without a ready
    /// endpoint (503 ServiceUnavailable).
    #[error("{0}")]
    ServiceUnavailable(String),
}

fn invalid_message(kind: &str, name: &str, causes: &[FieldError]) -> String {
    let list: Vec<String> = causes.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] => format!("{kind} \"{name}\" is invalid: {one}"),
        _ => format!("{kind} \"{name}\" is invalid: [{}]", list.join(", ")),
    }
}

impl ApiError {
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        ApiError::NotFound {
            resource: info.qualified(),
            name: name.to_owned(),
        }
    }

    pub fn invalid(info: &ResourceInfo, name: &str, causes: Vec<FieldError>) -> Self {
        let kind = if info.group.is_empty() {
            info.kind.to_owned()
        } else {
            format!("{}.{}", info.kind, info.group)
        };
        ApiError::Invalid {
            kind,
            name: name.to_owned(),
            causes,
        }
    }

    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        ApiError::Conflict {
            resource: info.qualified(),
            name: name.to_owned(),
            detail: "the object has been modified; please apply your changes to the latest version and try again"
                .to_owned(),
        }
    }

    /// Maps a store failure on the object `name` of `info`.
    pub fn from_store(info: &ResourceInfo, name: &str, err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::not_found(info, name),
            StoreError::AlreadyExists { .. } => ApiError::AlreadyExists {
                resource: info.qualified(),
                name: name.to_owned(),
            },
            StoreError::Conflict { .. } => Self::conflict(info, name),
            StoreError::Compacted { requested, oldest } => ApiError::Gone { requested, oldest },
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden { .. } => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::Gone { .. } => 410,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Internal(_) => 500,
            ApiError::Timeout(_) => 504,
            ApiError::ServiceUnavailable(_) => 503,
        }
    }

    /// The `metav1.StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Gone { .. } => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Internal(_) => "InternalError",
            ApiError::Timeout(_) => "Timeout",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. }
            | ApiError::Forbidden { resource, name, .. } => Some(details(resource, name)),
            ApiError::Invalid { kind, name, causes } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": cause_reason(&c.reason), "message": c.reason, "field": c.path}))
                    .collect();
                let mut details = details(kind, name);
                details["causes"] = Value::from(causes);
                Some(details)
            }
            // NewGenericServerResponse's: empty, but present.
            ApiError::NoSuchPath | ApiError::MethodNotAllowed => Some(json!({})),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// `details` of a Status: `kind` is the resource (or, for Invalid, the kind), qualified by
/// group (`deployments.apps` → group `apps`, kind `deployments`), as apimachinery fills it.
fn details(resource: &str, name: &str) -> Value {
    match resource.split_once('.') {
        Some((plural, group)) => json!({"name": name, "group": group, "kind": plural}),
        None => json!({"name": name, "kind": resource}),
    }
}

/// The `metav1.CauseType` of a field error, from how its reason starts.
fn cause_reason(reason: &str) -> &'static str {
    const TYPES: &[(&str, &str)] = &[
        ("Required value", "FieldValueRequired"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Not found", "FieldValueNotFound"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
    ];
    TYPES
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, t)| t)
}

/// A successful deletion's `Status`, as the apiserver answers a DELETE of kinds that do not
/// return the deleted object.
pub fn success_status(info: &ResourceInfo, name: &str, uid: Option<&str>) -> Value {
    let mut details = details(&info.qualified(), name);
    if let Some(uid) = uid {
        details["uid"] = Value::from(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::find;

    #[test]
    fn status_bodies_match_the_apiserver() {
        let pods = find("", "v1", "pods").unwrap();
        let s = ApiError::not_found(pods, "web").status();
        assert_eq!(s["message"], "pods \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));

        let deploy = find("apps", "v1", "deployments").unwrap();
        let s = ApiError::conflict(deploy, "d").status();
        assert_eq!(s["code"], 409);
        assert_eq!(s["details"]["group"], "apps");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("Operation cannot be fulfilled on deployments.apps \"d\"")
        );

        let s = ApiError::invalid(pods, "p", vec![FieldError::required("spec.containers", "")]).status();
        assert_eq!(s["message"], "Pod \"p\" is invalid: spec.containers: Required value");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.containers");
        let two = vec![FieldError::required("a", ""), FieldError::invalid("b", "x", "bad")];
        let s = ApiError::invalid(pods, "p", two).status();
        assert_eq!(
            s["message"],
            "Pod \"p\" is invalid: [a: Required value, b: Invalid value: \"x\": bad]"
        );

        let s = ApiError::invalid(deploy, "d", vec![FieldError::required("spec.selector", "")]).status();
        assert_eq!(
            s["message"],
            "Deployment.apps \"d\" is invalid: spec.selector: Required value"
        );
        assert_eq!(
            (s["details"]["kind"].as_str(), s["details"]["group"].as_str()),
            (Some("Deployment"), Some("apps"))
        );

        let s = ApiError::Gone {
            requested: 3,
            oldest: 9,
        }
        .status();
        assert_eq!((s["code"].as_u64(), s["reason"].as_str()), (Some(410), Some("Expired")));
    }
}
