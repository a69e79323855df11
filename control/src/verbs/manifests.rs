//! Manifests for `apply -f` and `delete -f`: files, folders (their `.yaml`, `.yml` and `.json`
//! files, sorted) and standard input (`-`); YAML streams of documents, lists expanded. Objects
//! stay JSON values: the server decodes and validates them, so an unknown field is named by it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file it came from, as kubectl names it in messages.
    pub source: String,
    pub object: Value,
}

/// Reads every `-f` argument. Unreadable files and unparsable documents are reported and
/// skipped, so the other objects still get their turn (as in kubectl).
pub fn read(files: &[PathBuf]) -> (Vec<Manifest>, Vec<String>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for (source, text) in sources(files, &mut errors) {
        match parse(&text) {
            Ok(found) => objects.extend(found.into_iter().map(|object| Manifest {
                source: source.clone(),
                object,
            })),
            Err(e) => errors.push(format!("error parsing {source}: {e}")),
        }
    }
    (objects, errors)
}

fn sources(files: &[PathBuf], errors: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in files {
        if file.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => out.push(("STDIN".into(), text)),
                Err(e) => errors.push(format!("reading standard input: {e}")),
            }
        } else if file.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(file)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
                .collect();
            entries.sort();
            if entries.is_empty() {
                errors.push(format!(
                    "no objects passed to the command: {} has no .yaml, .yml or .json file",
                    file.display()
                ));
            }
            for path in entries {
                read_file(&path, &mut out, errors);
            }
        } else if !file.exists() {
            errors.push(format!("the path {:?} does not exist", file.display().to_string()));
        } else {
            read_file(file, &mut out, errors);
        }
    }
    out
}

fn read_file(path: &Path, out: &mut Vec<(String, String)>, errors: &mut Vec<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => out.push((path.display().to_string(), text)),
        Err(e) => errors.push(format!("the path {:?} cannot be read: {e}", path.display().to_string())),
    }
}

/// The objects of a YAML (or JSON) stream: empty documents skipped, `kind: List` (and any
/// `...List` with `items`) expanded. Integers with a leading zero are octal, as in Kubernetes'
/// YAML 1.1 reader.
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, document) in documents.into_iter().enumerate() {
        match document {
            Value::Null => {}
            Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && map.get("items").is_some_and(Value::is_array) =>
            {
                let items = map["items"].as_array().cloned().unwrap_or_default();
                for (j, item) in items.into_iter().enumerate() {
                    if !item.is_object() {
                        return Err(format!("document {} item {}: expected an object", i + 1, j + 1));
                    }
                    out.push(item);
                }
            }
            Value::Object(_) => out.push(document),
            _ => return Err(format!("document {}: expected an object", i + 1)),
        }
    }
    Ok(out)
}

/// What kubectl checks before sending an object: `apiVersion` and `kind` set.
pub fn missing_identity(object: &Value) -> Option<String> {
    let missing: Vec<&str> = ["apiVersion", "kind"]
        .into_iter()
        .filter(|f| object[*f].as_str().is_none_or(str::is_empty))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(
            missing
                .iter()
                .map(|f| format!("{f} not set"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streams_lists_and_empty_documents() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n\
                    - {apiVersion: v1, kind: Secret, metadata: {name: c}, data: {mode: 0644}}\n";
        let objects = parse(text).unwrap();
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(objects[2]["data"]["mode"], 420);
        assert_eq!(parse("{\"kind\": \"Pod\"}").unwrap(), vec![json!({"kind": "Pod"})]);
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(parse("- a\n- b\n").unwrap_err().contains("document 1"));
        assert!(parse("a: [\n").is_err());
    }

    #[test]
    fn identity_is_required() {
        assert_eq!(
            missing_identity(&json!({"kind": "Pod"})),
            Some("apiVersion not set".into())
        );
        assert_eq!(
            missing_identity(&json!({})),
            Some("apiVersion not set, kind not set".into())
        );
        assert_eq!(missing_identity(&json!({"apiVersion": "v1", "kind": "Pod"})), None);
    }
}
