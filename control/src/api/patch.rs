//! PATCH bodies applied to stored objects as kube-apiserver applies them: RFC 6902 JSON patch,
//! RFC 7386 merge patch, and strategic merge patch for the built-in kinds, with the status
//! codes kube-apiserver answers when a patch is malformed or does not apply.
//!
//! Strategic merge follows apimachinery's `strategicpatch.StrategicMergeMapPatch` step by step
//! (maps merge, `null` deletes, lists merge by `patchMergeKey` where the Go struct tag says
//! `patchStrategy:"merge"`, and the `$patch`, `$retainKeys`, `$setElementOrder/` and
//! `$deleteFromPrimitiveList/` directives that `kubectl apply` sends). The struct tags that
//! matter are copied into a small table addressed by field path (`KindSchema`); a field not
//! in it merges as a map or is replaced as a list, which is what apimachinery does for a field
//! without tags. Directives never reach the result: apimachinery relies on decoding into Go
//! structs to drop stray ones, Capstan keeps objects as JSON and strips them itself.
//!
//! Server-side apply is not implemented; it answers 415 so that clients fall back to (or are
//! told to use) client-side apply.

use serde_json::{Map, Value};

mod strategic;
use strategic::Merger;

/// The most operations one JSON patch may hold (kube-apiserver's `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

// apimachinery's `mergepatch` error texts for malformed directives.
const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// The four PATCH content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (Kubernetes' own).
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header; parameters such as `; charset=utf-8` are
    /// ignored, as kube-apiserver cuts the header at the first `;`.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        Some(match base {
            "application/json-patch+json" => PatchType::Json,
            "application/merge-patch+json" => PatchType::Merge,
            "application/strategic-merge-patch+json" => PatchType::StrategicMerge,
            "application/apply-patch+yaml" => PatchType::Apply,
            _ => return None,
        })
    }

    /// The content type kube-apiserver lists for this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON, or not the JSON a JSON patch must be (a list of operations).
    #[error("invalid patch body: {0}")]
    InvalidBody(#[source] serde_json::Error),
    /// A merge or strategic merge patch that is valid JSON but not an object.
    #[error("{patch_type} patch must be a JSON object, got {found}")]
    NotAnObject {
        /// `merge` or `strategic merge`.
        patch_type: &'static str,
        /// The JSON type the body has.
        found: &'static str,
    },
    /// A JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    #[error("The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}")]
    TooManyOperations(usize),
    /// A JSON patch operation failed (a `test` that did not match, a path that does not exist).
    #[error(transparent)]
    JsonPatch(#[from] json_patch::PatchError),
    /// A strategic merge patch for a kind without Go struct tags (a custom resource, or a kind
    /// Capstan does not know).
    #[error("strategic merge patch is not supported for {0}")]
    StrategicMergeUnsupported(String),
    /// A server-side apply request.
    #[error(
        "server-side apply is not supported by this API server; use client-side apply (kubectl apply --server-side=false)"
    )]
    ApplyUnsupported,
    /// A directive with an unknown value or the wrong shape: `$patch: foo`, `$retainKeys` not a
    /// list or not naming a patched key, a `$setElementOrder` list out of step with the patch.
    #[error("{0}")]
    InvalidDirective(String),
    /// A strategic merge patch that does not fit the object: a merge-list element without its
    /// merge key, mixed element types, lists of lists, a list where a map is (apimachinery's
    /// messages).
    #[error("{0}")]
    MergeFailed(String),
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with. Where it passes apimachinery's plain error
    /// through as a 500 (unknown `$patch` values, missing merge keys), a client mistake gets
    /// 400 (malformed directive) or 422 (a patch that does not fit the object) instead.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::InvalidBody(_) | PatchError::NotAnObject { .. } | PatchError::InvalidDirective(_) => 400,
            PatchError::TooManyOperations(_) => 413,
            PatchError::JsonPatch(_) | PatchError::MergeFailed(_) => 422,
            PatchError::StrategicMergeUnsupported(_) | PatchError::ApplyUnsupported => 415,
        }
    }
}

/// Applies a PATCH body of `patch_type` to `original` (an object of `kind`) and returns the
/// patched object. The caller validates the result, as kube-apiserver decodes and validates
/// after patching.
pub fn apply_patch(kind: &str, patch_type: PatchType, original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body).map_err(PatchError::InvalidBody)?;
            if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(PatchError::TooManyOperations(ops.0.len()));
            }
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops.0)?;
            Ok(doc)
        }
        PatchType::Merge => {
            let patch = object_body(body, "merge")?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &Value::Object(patch));
            Ok(doc)
        }
        PatchType::StrategicMerge => {
            let schema = KindSchema::of(kind).ok_or_else(|| PatchError::StrategicMergeUnsupported(kind.to_string()))?;
            let patch = object_body(body, "strategic merge")?;
            let original = original.as_object().cloned().unwrap_or_default();
            let lookup = |path: &str| schema.lookup(path);
            Merger { lookup: &lookup }
                .merge_map(original, patch, "")
                .map(Value::Object)
        }
        PatchType::Apply => Err(PatchError::ApplyUnsupported),
    }
}

/// Whether [`apply_patch`] accepts strategic merge patches for `kind` (kube-apiserver lists
/// the content type only for built-in kinds).
pub fn supports_strategic_merge(kind: &str) -> bool {
    KindSchema::of(kind).is_some()
}

fn object_body(body: &[u8], patch_type: &'static str) -> Result<Map<String, Value>, PatchError> {
    match serde_json::from_slice(body).map_err(PatchError::InvalidBody)? {
        Value::Object(m) => Ok(m),
        other => Err(PatchError::NotAnObject {
            patch_type,
            found: json_type(&other),
        }),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// How a field merges, from its Go struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// `patchStrategy:"merge"` on a list: elements merge by this `patchMergeKey`; `""` for a
    /// list of scalars (a union).
    Merge(&'static str),
    /// `patchStrategy:"replace"` on a map: the patch's map replaces the object's.
    Replace,
}

use Strategy::{Merge, Replace};

/// `ObjectMeta`'s tagged lists, for every kind.
const META: &[(&str, Strategy)] = &[
    ("metadata.ownerReferences", Merge("uid")),
    ("metadata.finalizers", Merge("")),
];

/// `PodSpec`'s tagged lists, relative to the pod spec.
const POD_SPEC: &[(&str, Strategy)] = &[
    ("containers", Merge("name")),
    ("initContainers", Merge("name")),
    ("ephemeralContainers", Merge("name")),
    ("volumes", Merge("name")),
    ("imagePullSecrets", Merge("name")),
    ("hostAliases", Merge("ip")),
    ("topologySpreadConstraints", Merge("topologyKey")),
    ("schedulingGates", Merge("name")),
    ("resourceClaims", Merge("name")),
];

/// `Container`'s (and `EphemeralContainerCommon`'s) tagged lists.
const CONTAINER: &[(&str, Strategy)] = &[
    ("ports", Merge("containerPort")),
    ("env", Merge("name")),
    ("volumeMounts", Merge("mountPath")),
    ("volumeDevices", Merge("devicePath")),
];

const CONDITIONS: &[(&str, Strategy)] = &[("status.conditions", Merge("type"))];

const POD: &[(&str, Strategy)] = &[
    ("status.conditions", Merge("type")),
    ("status.podIPs", Merge("ip")),
    ("status.hostIPs", Merge("ip")),
    ("status.resourceClaimStatuses", Merge("name")),
];

const NODE: &[(&str, Strategy)] = &[
    ("spec.podCIDRs", Merge("")),
    ("status.conditions", Merge("type")),
    ("status.addresses", Merge("type")),
];

const SERVICE: &[(&str, Strategy)] = &[("spec.ports", Merge("port")), ("status.conditions", Merge("type"))];

const PDB: &[(&str, Strategy)] = &[("spec.selector", Replace), ("status.conditions", Merge("type"))];

/// The strategic-merge struct tags of one built-in kind, addressed by the path of field names
/// from the object root (a list's elements share the list's path).
struct KindSchema {
    /// Where the kind embeds a pod spec, if it does.
    pod_spec: Option<&'static str>,
    /// The kind's other tagged fields.
    fields: &'static [(&'static str, Strategy)],
}

impl KindSchema {
    /// The schema of a built-in kind; `None` for kinds without struct tags (custom resources).
    /// Taken from k8s.io/api's `types.go`: e.g. Node `spec.taints` has no strategy (replaced),
    /// `status.containerStatuses` neither.
    fn of(kind: &str) -> Option<KindSchema> {
        let (pod_spec, fields) = match kind {
            "Pod" => (Some("spec"), POD),
            "PodTemplate" => (Some("template.spec"), &[][..]),
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "ReplicationController" | "Job" => {
                (Some("spec.template.spec"), CONDITIONS)
            }
            "CronJob" => (Some("spec.jobTemplate.spec.template.spec"), &[][..]),
            "Node" => (None, NODE),
            "Service" => (None, SERVICE),
            "Namespace" | "PersistentVolumeClaim" => (None, CONDITIONS),
            "ServiceAccount" => (None, &[("secrets", Merge("name"))][..]),
            "PodDisruptionBudget" => (None, PDB),
            "Endpoints" | "ConfigMap" | "Secret" | "Event" | "LimitRange" | "ResourceQuota" | "Lease"
            | "PriorityClass" | "Scale" | "EndpointSlice" | "PersistentVolume" => (None, &[][..]),
            _ => return None,
        };
        Some(KindSchema { pod_spec, fields })
    }

    fn lookup(&self, path: &str) -> Option<Strategy> {
        let find = |table: &[(&str, Strategy)], p: &str| table.iter().find(|(f, _)| *f == p).map(|(_, s)| *s);
        if let Some(s) = find(META, path).or_else(|| find(self.fields, path)) {
            return Some(s);
        }
        let rest = path.strip_prefix(self.pod_spec?)?.strip_prefix('.')?;
        if let Some(s) = find(POD_SPEC, rest) {
            return Some(s);
        }
        let (list, field) = rest.split_once('.')?;
        if matches!(list, "containers" | "initContainers" | "ephemeralContainers") {
            return find(CONTAINER, field);
        }
        None
    }
}

#[cfg(test)]
mod tests;
