//! The kubeconfig `capstan up` writes so kubectl and client libraries reach the cluster at
//! once: a `capstan` cluster, user and context merged into the file (others kept), and made
//! the current context, as `kind` and `minikube` do.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The name of the cluster, user and context entries.
pub const CONTEXT: &str = "capstan";

/// Why the kubeconfig could not be written.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// The kubeconfig to use: `$KUBECONFIG` (its first path), else `~/.kube/config`.
pub fn default_path() -> PathBuf {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty())
    {
        return first;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".kube").join("config")
}

/// Sets the named entry of a kubeconfig list (`clusters`, `users`, `contexts`).
fn upsert(config: &mut Value, list: &str, entry: Value) {
    let name = entry["name"].clone();
    let items = config[list].as_array_mut();
    match items {
        Some(items) => {
            items.retain(|e| e["name"] != name);
            items.push(entry);
        }
        None => config[list] = json!([entry]),
    }
}

/// Merges the cluster at `server` into the kubeconfig at `path` and makes it current.
pub fn write(path: &Path, server: &str) -> Result<(), KubeconfigError> {
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_saphyr::from_str::<Value>(&text).map_err(|e| KubeconfigError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
        }
        Ok(_) => Value::Null,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
        Err(e) => {
            return Err(KubeconfigError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    if !config.is_object() {
        config = json!({"apiVersion": "v1", "kind": "Config", "preferences": {}});
    }
    upsert(
        &mut config,
        "clusters",
        json!({"name": CONTEXT, "cluster": {"server": server}}),
    );
    upsert(&mut config, "users", json!({"name": CONTEXT, "user": {}}));
    upsert(
        &mut config,
        "contexts",
        json!({"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}),
    );
    config["current-context"] = json!(CONTEXT);
    let fail = |reason: String| KubeconfigError::Write {
        path: path.to_owned(),
        reason,
    };
    let text = serde_saphyr::to_string(&config).map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    // Write beside and rename, so a crash never leaves a half-written kubeconfig.
    let tmp = path.with_extension("capstan-tmp");
    std::fs::write(&tmp, text).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_keeps_other_contexts() {
        let dir = std::env::temp_dir().join(format!("capstan-kubeconfig-{}", std::process::id()));
        let path = dir.join("config");
        write(&path, "http://127.0.0.1:1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["current-context"], "capstan");
        // Someone else's context survives a second `up` on another port.
        v["contexts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "other", "context": {"cluster": "x"}}));
        std::fs::write(&path, serde_saphyr::to_string(&v).unwrap()).unwrap();
        write(&path, "http://127.0.0.1:2").unwrap();
        let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
        assert_eq!(v["clusters"][0]["cluster"]["server"], "http://127.0.0.1:2");
        assert_eq!(v["contexts"].as_array().unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
