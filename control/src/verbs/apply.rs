//! `capstan apply -f FILE|DIR|-`: kubectl's client-side apply. An absent object is created
//! with the applied manifest recorded in the `last-applied-configuration` annotation; a
//! present one gets a three-way JSON merge patch computed from that record (what to delete),
//! the new manifest (what to set) and the live object (what already matches).
//!
//! The server's defaults make a live object differ from its manifest (a container's
//! `imagePullPolicy`, say), so a patch is rarely empty even when nothing changed. Whether it
//! changes anything is the server's to say: the patch goes first as a dry run, and the object
//! it would produce is compared with the live one (`unchanged` when they match).

use std::path::PathBuf;
use std::process::ExitCode;

use capstan_control::api::resources::{self, ResourceInfo};
use capstan_control::client::{Client, ClientError};
use http::Method;
use serde_json::{Map, Value};

use super::Failure;
use super::manifests::{self, Manifest};
use super::target::{self, Conn, ConnectArgs};

/// Where kubectl keeps the manifest last applied to an object.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Writes take the strict field validation kubectl asks for, so a misspelt field is an error
/// naming it instead of being dropped.
const WRITE_QUERY: &str = "fieldManager=kubectl-client-side-apply&fieldValidation=Strict";

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// A manifest file, a folder of them, or `-` for standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// `none` (default), `client` (print what would happen) or `server` (the server admits the
    /// objects and stores nothing).
    #[arg(long, default_value = "none", value_parser = ["none", "client", "server"])]
    pub dry_run: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What applying one object did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let (objects, errors) = manifests::read(&args.files);
    let mut failed = !errors.is_empty();
    for e in errors {
        eprintln!("error: {e}");
    }
    if objects.is_empty() {
        if !failed {
            eprintln!("error: no objects passed to apply");
        }
        return Ok(ExitCode::FAILURE);
    }
    let conn = args.connect.connect()?;
    let suffix = match args.dry_run.as_str() {
        "client" => " (dry run)",
        "server" => " (server dry run)",
        _ => "",
    };
    for manifest in objects {
        match apply_one(&conn, manifest, &args.dry_run).await {
            Ok((name, outcome)) => println!("{name} {}{suffix}", outcome.word()),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Applies one object; `kind.group/name` and what happened.
async fn apply_one(conn: &Conn, manifest: Manifest, dry_run: &str) -> Result<(String, Outcome), Failure> {
    let Manifest { source, mut object } = manifest;
    if let Some(missing) = manifests::missing_identity(&object) {
        return Err(Failure::User(format!(
            "error validating {source:?}: error validating data: [{missing}]"
        )));
    }
    let info = resource_of(&object, &source)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(Failure::User(format!(
            "error when retrieving current configuration of {} from {source:?}: resource name may not be empty",
            info.kind
        )));
    }
    let namespace = if info.namespaced {
        let ns = namespace_for(
            object["metadata"]["namespace"].as_str(),
            &conn.namespace,
            conn.explicit_namespace,
        )
        .map_err(Failure::User)?;
        object["metadata"]["namespace"] = Value::String(ns.clone());
        Some(ns)
    } else {
        None
    };
    let display = format!("{}/{name}", target::kind_group(info));
    let applied = last_applied(&object);
    let modified = annotated(&object, &applied);
    let object_path = target::path(info, namespace.as_deref(), Some(&name));
    let client = &conn.client;
    let mut attempt = 0;
    loop {
        let current = match client.get(&object_path).await {
            Ok(current) => current,
            Err(e) if e.is_not_found() => {
                if dry_run != "client" {
                    let dry = if dry_run == "server" { "&dryRun=All" } else { "" };
                    let path = format!("{}?{WRITE_QUERY}{dry}", target::path(info, namespace.as_deref(), None));
                    client
                        .request(Method::POST, &path, "application/json", Some(&modified))
                        .await
                        .map_err(|e| Failure::about(e, &format!("error when creating {source:?}")))?;
                }
                return Ok((display, Outcome::Created));
            }
            Err(e) => {
                return Err(Failure::about(
                    e,
                    &format!("error when retrieving current configuration of {display} from {source:?}"),
                ));
            }
        };
        match update(client, &object_path, &modified, &current, dry_run, attempt == 0).await {
            // Someone wrote in between (a controller's status update): read again, as kubectl does.
            Err(e) if e.code() == Some(409) && attempt < PATCH_RETRIES => attempt += 1,
            Err(e) => return Err(Failure::about(e, &format!("error when patching {source:?}"))),
            Ok(outcome) => return Ok((display, outcome)),
        }
    }
}

/// How many times a patch is recomputed when the object changed under it (kubectl's
/// `maxPatchRetry`).
const PATCH_RETRIES: usize = 5;

/// Patches a live object towards `modified`; `warn` prints kubectl's warning for an object
/// that was not created by apply.
async fn update(
    client: &Client,
    object_path: &str,
    modified: &Value,
    current: &Value,
    dry_run: &str,
    warn: bool,
) -> Result<Outcome, ClientError> {
    let original = match current["metadata"]["annotations"][LAST_APPLIED].as_str() {
        Some(text) => serde_json::from_str::<Value>(text).ok(),
        None => {
            if warn {
                let mut segments = object_path.rsplit('/');
                let (name, plural) = (segments.next().unwrap_or_default(), segments.next().unwrap_or_default());
                eprintln!(
                    "Warning: resource {plural}/{name} is missing the {LAST_APPLIED} annotation which is required \
                     by capstan apply. capstan apply should only be used on resources created declaratively by \
                     capstan apply or kubectl apply. The missing annotation will be patched automatically."
                );
            }
            None
        }
    };
    let patch = three_way_merge_patch(original.as_ref(), modified, current);
    if patch.as_object().is_some_and(Map::is_empty) {
        return Ok(Outcome::Unchanged);
    }
    let send = |path: String, patch: Value| async move {
        client
            .request(Method::PATCH, &path, "application/merge-patch+json", Some(&patch))
            .await
    };
    // The dry run is pinned to the version read, so what it returns differs from `current`
    // only by the patch; a write in between is a conflict, and the caller reads again.
    let mut pinned = patch.clone();
    pinned["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    let would_be = send(format!("{object_path}?{WRITE_QUERY}&dryRun=All"), pinned).await?;
    if same_object(&would_be, current) {
        return Ok(Outcome::Unchanged);
    }
    if dry_run == "none" {
        let written = send(format!("{object_path}?{WRITE_QUERY}"), patch).await?;
        if written["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"] {
            return Ok(Outcome::Unchanged);
        }
    }
    Ok(Outcome::Configured)
}

/// The served resource of an object's `apiVersion` and `kind`, or kubectl's mapping error.
fn resource_of(object: &Value, source: &str) -> Result<&'static ResourceInfo, Failure> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    resources::find_kind(api_version, kind).ok_or_else(|| {
        Failure::User(format!(
            "resource mapping not found for name: {:?} namespace: {:?} from {source:?}: no matches for kind \
             {kind:?} in version {api_version:?}",
            object["metadata"]["name"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
        ))
    })
}

/// The namespace an object goes to: its own, else the default; an object naming another
/// namespace than an explicit `-n` is refused, as kubectl refuses it.
pub fn namespace_for(own: Option<&str>, default: &str, explicit: bool) -> Result<String, String> {
    match own.filter(|ns| !ns.is_empty()) {
        None => Ok(default.to_owned()),
        Some(ns) if !explicit || ns == default => Ok(ns.to_owned()),
        Some(ns) => Err(format!(
            "the namespace from the provided object {ns:?} does not match the namespace {default:?}. You must \
             pass '--namespace={ns}' to perform this operation."
        )),
    }
}

/// The annotation's value: the manifest as compact JSON (keys sorted, an empty `annotations`
/// map when it has none besides this one, a final newline), byte for byte what kubectl writes,
/// so objects applied by either tool compare equal.
pub fn last_applied(object: &Value) -> String {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = annotations.as_object_mut() {
            map.remove(LAST_APPLIED);
        } else {
            *annotations = Value::Object(Map::new());
        }
    }
    let mut text = serde_json::to_string(&copy).unwrap_or_default();
    text.push('\n');
    text
}

/// The manifest carrying its `last-applied-configuration` annotation.
pub fn annotated(object: &Value, last_applied: &str) -> Value {
    let mut out = object.clone();
    if !out["metadata"].is_object() {
        out["metadata"] = Value::Object(Map::new());
    }
    if !out["metadata"]["annotations"].is_object() {
        out["metadata"]["annotations"] = Value::Object(Map::new());
    }
    out["metadata"]["annotations"][LAST_APPLIED] = Value::String(last_applied.to_owned());
    out
}

/// apimachinery's `CreateThreeWayJSONMergePatch`: what differs between `current` and
/// `modified` (maps compared key by key, everything else as a whole), plus `null` for every
/// key `original` (the last applied manifest) had and `modified` dropped, recursively through
/// maps. Keys only the server set are left alone. An empty map: nothing to send.
pub fn three_way_merge_patch(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let mut patch = changes(current, modified);
    if let Some(original) = original {
        merge_into(&mut patch, deletions(original, modified));
    }
    Value::Object(patch)
}

/// The keys of `modified` whose values `current` lacks or holds differently.
fn changes(current: &Value, modified: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(modified) = modified.as_object() else {
        return out;
    };
    for (key, want) in modified {
        match (current.get(key), want) {
            (Some(have @ Value::Object(_)), Value::Object(_)) => {
                let nested = changes(have, want);
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            (Some(have), want) if have == want => {}
            // A null in the manifest means "absent"; nothing to do if it is already.
            (None, Value::Null) => {}
            (_, want) => {
                out.insert(key.clone(), want.clone());
            }
        }
    }
    out
}

/// `null` for each key of `original` missing from `modified`, recursively through maps.
fn deletions(original: &Value, modified: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(original) = original.as_object() else {
        return out;
    };
    for (key, was) in original {
        match (modified.get(key), was) {
            (None, _) => {
                out.insert(key.clone(), Value::Null);
            }
            (Some(now @ Value::Object(_)), Value::Object(_)) => {
                let nested = deletions(was, now);
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            _ => {}
        }
    }
    out
}

fn merge_into(patch: &mut Map<String, Value>, more: Map<String, Value>) {
    for (key, value) in more {
        match (patch.get_mut(&key), value) {
            (Some(Value::Object(have)), Value::Object(add)) => merge_into(have, add),
            (Some(_), _) => {}
            (None, value) => {
                patch.insert(key, value);
            }
        }
    }
}

/// Whether two versions of an object are the same but for what every write bumps.
pub fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for volatile in ["resourceVersion", "generation", "managedFields"] {
                meta.remove(volatile);
            }
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_annotation_is_what_kubectl_writes() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}});
        let text = last_applied(&manifest);
        assert_eq!(
            text,
            "{\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\",\
             \"metadata\":{\"annotations\":{},\"name\":\"a\",\"namespace\":\"default\"}}\n"
        );
        let with = annotated(&manifest, &text);
        assert_eq!(with["metadata"]["annotations"][LAST_APPLIED], text.as_str());
        // Re-applying an object read back gives the same annotation: the old one is left out.
        assert_eq!(last_applied(&with), text);
    }

    #[test]
    fn three_way_merge_patches() {
        let current = json!({
            "metadata": {"name": "d", "labels": {"app": "x", "team": "a"}, "uid": "u"},
            "spec": {"replicas": 3, "paused": false, "template": {"containers": [{"name": "c", "image": "1.0", "imagePullPolicy": "IfNotPresent"}]}},
            "status": {"replicas": 3},
        });
        let original = json!({"metadata": {"name": "d", "labels": {"app": "x", "team": "a"}},
            "spec": {"replicas": 3, "template": {"containers": [{"name": "c", "image": "1.0"}]}}});
        // table: (what was applied last, what is applied now) → the patch
        let cases = [
            // Only the list the server defaulted differs: sent whole, the server decides.
            (
                Some(original.clone()),
                original.clone(),
                json!({"spec": {"template": {"containers": [{"name": "c", "image": "1.0"}]}}}),
            ),
            // A dropped label becomes null; a changed field is set; the server's keys stay.
            (
                Some(original.clone()),
                json!({"metadata": {"name": "d", "labels": {"app": "x"}},
                       "spec": {"replicas": 5, "template": {"containers": [{"name": "c", "image": "1.0", "imagePullPolicy": "IfNotPresent"}]}}}),
                json!({"metadata": {"labels": {"team": null}}, "spec": {"replicas": 5}}),
            ),
            // A dropped map is nulled whole, however deep.
            (
                Some(json!({"spec": {"strategy": {"type": "Recreate"}}})),
                json!({"spec": {}}),
                json!({"spec": {"strategy": null}}),
            ),
            // No record of the last apply: nothing is deleted.
            (
                None,
                json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}}),
                json!({}),
            ),
            // A value that became a map replaces the scalar.
            (
                None,
                json!({"spec": {"paused": {"x": 1}}}),
                json!({"spec": {"paused": {"x": 1}}}),
            ),
        ];
        for (original, modified, want) in cases {
            assert_eq!(
                three_way_merge_patch(original.as_ref(), &modified, &current),
                want,
                "{modified}"
            );
        }
    }

    #[test]
    fn namespaces_follow_kubectl() {
        assert_eq!(namespace_for(None, "default", false), Ok("default".into()));
        assert_eq!(namespace_for(Some("team"), "default", false), Ok("team".into()));
        assert_eq!(namespace_for(Some("team"), "team", true), Ok("team".into()));
        assert!(
            namespace_for(Some("team"), "other", true)
                .unwrap_err()
                .contains("--namespace=team")
        );
    }

    #[test]
    fn objects_compare_without_write_counters() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "5", "generation": 2}, "spec": {"x": 1}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "7", "generation": 3}, "spec": {"x": 1}});
        assert!(same_object(&a, &b));
        assert!(!same_object(&a, &json!({"metadata": {"name": "a"}, "spec": {"x": 2}})));
    }
}
