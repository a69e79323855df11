//! Reading manifests: a YAML stream of Kubernetes objects into typed values.
//!
//! Each document goes YAML → JSON value → k8s-openapi type, the same two steps kubectl and the
//! apiserver take (`sigs.k8s.io/yaml` converts to JSON first). That keeps YAML-only features
//! from leaking into objects and lets a type error name its JSON path
//! (`spec.containers[0].ports[0].containerPort`). Integers with a leading zero are read as
//! octal, as Kubernetes' YAML 1.1 parser does, so `defaultMode: 0644` means 420.

use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One object from a manifest, typed where Capstan's node needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A `v1` Pod.
    Pod(Box<Pod>),
    /// A `v1` ConfigMap.
    ConfigMap(ConfigMap),
    /// A `v1` Secret, with `stringData` already merged into `data`.
    Secret(Secret),
    /// Any other kind, kept by identity only (the control plane may know it).
    Other {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
        /// The object's `metadata.name` (empty when absent).
        name: String,
    },
}

/// Which document (and `List` item) an error is about, and what it claimed to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// 1-based position among the non-empty documents of the stream.
    pub document: usize,
    /// 1-based position inside a `kind: List`, if the object came from one.
    pub item: Option<usize>,
    /// The `kind` and `metadata.name`, when they could be read.
    pub kind: Option<String>,
    /// The object's name, when it could be read.
    pub name: Option<String>,
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.document)?;
        if let Some(item) = self.item {
            write!(f, " item {item}")?;
        }
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => write!(f, " ({kind} {name:?})"),
            (Some(kind), None) => write!(f, " ({kind})"),
            _ => Ok(()),
        }
    }
}

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not valid YAML; the parser's message carries the line and column.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A document is not a mapping (for example a bare string or a list).
    #[error("{at}: expected an object, got {got}")]
    NotAnObject {
        /// The offending document.
        at: DocumentRef,
        /// What was found instead.
        got: &'static str,
    },
    /// A document lacks `apiVersion` or `kind`, or has a non-string one.
    #[error("{at}: {field}: Required value")]
    MissingField {
        /// The offending document.
        at: DocumentRef,
        /// `apiVersion` or `kind`.
        field: &'static str,
    },
    /// A document does not fit its Kubernetes type; `path` is the JSON path of the field.
    #[error("{at}: {}{reason}", path_prefix(.path))]
    Decode {
        /// The offending document.
        at: DocumentRef,
        /// Dotted path to the field, empty for the object itself.
        path: String,
        /// The deserializer's reason.
        reason: String,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Parses a YAML stream (documents separated by `---`, `kind: List` expanded) into objects.
/// Empty documents are skipped and do not count towards document numbers.
pub fn parse_manifests(text: &str) -> Result<Vec<Object>, ManifestError> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let documents: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| ManifestError::Yaml(e.to_string()))?;
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let at = DocumentRef {
            document: index + 1,
            item: None,
            kind: None,
            name: None,
        };
        if document.is_null() {
            continue;
        }
        let (api_version, kind) = identity(&document, &at)?;
        if kind == "List" {
            let items = match document.get("items") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => {
                    let reason = "invalid type: expected a sequence".to_string();
                    let path = "items".to_string();
                    return Err(ManifestError::Decode {
                        at: named(at, &document, kind),
                        path,
                        reason,
                    });
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let at = DocumentRef {
                    item: Some(i + 1),
                    ..at.clone()
                };
                let (api_version, kind) = identity(&item, &at)?;
                objects.push(decode(item, api_version, kind, at)?);
            }
        } else {
            objects.push(decode(document, api_version, kind, at)?);
        }
    }
    Ok(objects)
}

/// The object's `metadata.name`, or `""` when it has none.
pub fn object_name(object: &Object) -> &str {
    match object {
        Object::Pod(pod) => pod.metadata.name.as_deref().unwrap_or(""),
        Object::ConfigMap(cm) => cm.metadata.name.as_deref().unwrap_or(""),
        Object::Secret(secret) => secret.metadata.name.as_deref().unwrap_or(""),
        Object::Other { name, .. } => name,
    }
}

/// Reads `apiVersion` and `kind`, which decide the type to decode into.
fn identity(document: &Value, at: &DocumentRef) -> Result<(String, String), ManifestError> {
    let Value::Object(map) = document else {
        return Err(ManifestError::NotAnObject {
            at: at.clone(),
            got: json_type(document),
        });
    };
    let field = |name: &'static str| match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ManifestError::MissingField {
            at: at.clone(),
            field: name,
        }),
    };
    Ok((field("apiVersion")?, field("kind")?))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Adds the kind and name (when readable) to a document reference for error messages.
fn named(at: DocumentRef, document: &Value, kind: String) -> DocumentRef {
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    DocumentRef {
        kind: Some(kind),
        name,
        ..at
    }
}

fn decode(document: Value, api_version: String, kind: String, at: DocumentRef) -> Result<Object, ManifestError> {
    let at = named(at, &document, kind.clone());
    Ok(match (api_version.as_str(), kind.as_str()) {
        ("v1", "Pod") => Object::Pod(Box::new(typed(document, &at)?)),
        ("v1", "ConfigMap") => Object::ConfigMap(typed(document, &at)?),
        ("v1", "Secret") => {
            let mut secret: Secret = typed(document, &at)?;
            merge_string_data(&mut secret);
            Object::Secret(secret)
        }
        _ => Object::Other {
            api_version,
            kind,
            name: at.name.clone().unwrap_or_default(),
        },
    })
}

fn typed<T: DeserializeOwned>(document: Value, at: &DocumentRef) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ManifestError::Decode {
            at: at.clone(),
            path,
            reason: e.into_inner().to_string(),
        }
    })
}

/// `stringData` is write-only in the API: the apiserver folds it into `data` (its keys win)
/// and never stores it, so a Secret read from a manifest looks as one read from a cluster.
fn merge_string_data(secret: &mut Secret) {
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (key, value) in string_data {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: main
    image: app:1.0
    ports:
    - containerPort: 8080
  volumes:
  - name: cfg
    configMap:
      name: app-config
      defaultMode: 0644
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  PATTERN: Configuration Resource
---
---
apiVersion: v1
kind: Secret
metadata:
  name: db
data:
  password: c2VjcmV0
  user: YWRtaW4=
stringData:
  user: root
"#;

    #[test]
    fn reads_a_three_kind_stream() {
        let objects = parse_manifests(STREAM).unwrap();
        let names: Vec<&str> = objects.iter().map(object_name).collect();
        assert_eq!(names, ["web", "app-config", "db"]);
        let Object::Pod(pod) = &objects[0] else {
            panic!("not a pod: {:?}", objects[0])
        };
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].ports.as_ref().unwrap()[0].container_port, 8080);
        let volume = &spec.volumes.as_ref().unwrap()[0];
        assert_eq!(volume.config_map.as_ref().unwrap().default_mode, Some(0o644));
        let Object::Secret(secret) = &objects[2] else {
            panic!("not a secret")
        };
        let data = secret.data.as_ref().unwrap();
        assert_eq!(data["password"].0, b"secret");
        assert_eq!(data["user"].0, b"root", "stringData wins over data");
        assert_eq!(secret.string_data, None);
    }

    #[test]
    fn expands_lists_and_keeps_other_kinds() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
"#;
        let objects = parse_manifests(text).unwrap();
        assert!(matches!(&objects[0], Object::ConfigMap(_)));
        let other = Object::Other {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "d".into(),
        };
        assert_eq!(objects[1], other);
        assert_eq!(parse_manifests("").unwrap(), []);
        assert_eq!(parse_manifests("---\n---\n").unwrap(), []);
    }

    #[test]
    fn errors_name_the_document_and_path() {
        let bad_port = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: ok}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: main
    image: app
    ports:
    - containerPort: x
"#;
        let cases = [
            (
                bad_port,
                r#"document 2 (Pod "web"): spec.containers[0].ports[0].containerPort: invalid type: string "x", expected i32"#,
            ),
            (
                "kind: Pod\nmetadata: {name: a}\n",
                "document 1: apiVersion: Required value",
            ),
            (
                "apiVersion: v1\nmetadata: {name: a}\n",
                "document 1: kind: Required value",
            ),
            ("just a string\n", "document 1: expected an object, got a string"),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '%%%'}\n",
                r#"document 1 (Secret "s"): data.k: "#,
            ),
            (
                "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n",
                "document 1 item 1: apiVersion: Required value",
            ),
        ];
        for (text, message) in cases {
            let err = parse_manifests(text).unwrap_err().to_string();
            assert!(err.starts_with(message), "got {err:?}, want {message:?}");
        }
        assert!(matches!(parse_manifests("a: [1, 2"), Err(ManifestError::Yaml(_))));
    }
}
