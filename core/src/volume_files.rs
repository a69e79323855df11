//! The files of data volumes (`configMap`, `secret`, `downwardAPI`, `projected`): what the
//! runtime writes, decided here so the writing itself stays a thin, dumb shell.
//!
//! The rules are the kubelet's volume plug-ins and its atomic writer: without `items` every
//! key becomes a file; with `items` only those keys, under their paths, and a listed key that
//! is missing fails the mount unless the source is optional; a missing optional object
//! yields an empty volume. Paths are checked before anything is written, so a file can never
//! land outside its volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod, Volume};

use crate::defaults::DEFAULT_FILE_MODE;
use crate::downward::{self, FieldUsage};
use crate::env::{ConfigError, ConfigSource, PodFacts, pod_namespace};

/// Longest path the kubelet's atomic writer accepts.
pub const MAX_PATH_LENGTH: usize = 4096;
/// Longest single file name it accepts.
pub const MAX_FILE_NAME_LENGTH: usize = 255;

/// One file of a data volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedFile {
    /// Path relative to the volume root, validated and cleaned (`a/./b` → `a/b`).
    pub path: String,
    /// The file's content.
    pub data: Vec<u8>,
    /// Permission bits (`0o644` unless the pod says otherwise).
    pub mode: u32,
}

/// The files of `volume`, sorted by path; `None` for volume kinds that hold no projected
/// data (`emptyDir`, `hostPath`, `persistentVolumeClaim`...), which the runtime provides
/// itself. `serviceAccountToken` projections are skipped: Capstan issues no tokens.
pub fn volume_files(
    pod: &Pod,
    volume: &Volume,
    facts: &PodFacts,
    src: &dyn ConfigSource,
) -> Result<Option<Vec<ProjectedFile>>, ConfigError> {
    let mut files = Files::default();
    if let Some(cm) = &volume.config_map {
        let mode = cm.default_mode.unwrap_or(DEFAULT_FILE_MODE);
        config_map(pod, src, &cm.name, cm.items.as_deref(), cm.optional, mode, &mut files)?;
    } else if let Some(secret) = &volume.secret {
        let mode = secret.default_mode.unwrap_or(DEFAULT_FILE_MODE);
        let name = secret.secret_name.as_deref().unwrap_or("");
        self::secret(
            pod,
            src,
            name,
            secret.items.as_deref(),
            secret.optional,
            mode,
            &mut files,
        )?;
    } else if let Some(d) = &volume.downward_api {
        let mode = d.default_mode.unwrap_or(DEFAULT_FILE_MODE);
        downward_api(pod, facts, d.items.as_deref().unwrap_or(&[]), mode, &mut files)?;
    } else if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.unwrap_or(DEFAULT_FILE_MODE);
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                config_map(pod, src, &cm.name, cm.items.as_deref(), cm.optional, mode, &mut files)?;
            } else if let Some(secret) = &source.secret {
                self::secret(
                    pod,
                    src,
                    &secret.name,
                    secret.items.as_deref(),
                    secret.optional,
                    mode,
                    &mut files,
                )?;
            } else if let Some(d) = &source.downward_api {
                downward_api(pod, facts, d.items.as_deref().unwrap_or(&[]), mode, &mut files)?;
            }
        }
    } else {
        return Ok(None);
    }
    Ok(Some(files.0.into_values().collect()))
}

/// Files by cleaned path; a later source overwrites an earlier one, as the kubelet's map does.
#[derive(Default)]
struct Files(BTreeMap<String, ProjectedFile>);

impl Files {
    fn add(&mut self, path: &str, data: Vec<u8>, mode: i32) -> Result<(), ConfigError> {
        let path = checked_path(path)?;
        let mode = u32::try_from(mode)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| ConfigError::InvalidFileMode {
                path: path.clone(),
                mode,
            })?;
        self.0.insert(path.clone(), ProjectedFile { path, data, mode });
        Ok(())
    }
}

/// Validates a volume file path as the atomic writer's `validatePath`, then cleans it.
pub fn checked_path(path: &str) -> Result<String, ConfigError> {
    let fail = |reason| {
        Err(ConfigError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return fail("must not be empty");
    }
    if path.starts_with('/') {
        return fail("must be relative path");
    }
    if path.len() > MAX_PATH_LENGTH {
        return fail("must be less than or equal to 4096 characters");
    }
    let items: Vec<&str> = path.split('/').collect();
    if items.contains(&"..") {
        return fail("must not contain '..'");
    }
    if items.iter().any(|item| item.len() > MAX_FILE_NAME_LENGTH) {
        return fail("filenames must be less than or equal to 255 characters");
    }
    if items[0].starts_with("..") {
        return fail("must not start with '..'");
    }
    let cleaned: Vec<&str> = items
        .into_iter()
        .filter(|item| !item.is_empty() && *item != ".")
        .collect();
    if cleaned.is_empty() {
        return fail("must name a file");
    }
    Ok(cleaned.join("/"))
}

/// Adds the files of a key/value source (`MakePayload`). `missing` builds the error for a
/// listed key that is absent.
fn add_payload(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    default_mode: i32,
    missing: impl Fn(&str) -> ConfigError,
    files: &mut Files,
) -> Result<(), ConfigError> {
    match items.filter(|items| !items.is_empty()) {
        None => data
            .iter()
            .try_for_each(|(key, value)| files.add(key, value.clone(), default_mode)),
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(value) => files.add(&item.path, value.clone(), item.mode.unwrap_or(default_mode))?,
                    None if optional => {}
                    None => return Err(missing(&item.key)),
                }
            }
            Ok(())
        }
    }
}

fn config_map(
    pod: &Pod,
    src: &dyn ConfigSource,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: i32,
    files: &mut Files,
) -> Result<(), ConfigError> {
    let optional = optional == Some(true);
    let namespace = pod_namespace(pod);
    let Some(cm) = src.config_map(namespace, name) else {
        if optional {
            return Ok(());
        }
        return Err(ConfigError::ConfigMapNotFound {
            namespace: namespace.into(),
            name: name.into(),
        });
    };
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.data.into_iter().flatten() {
        data.insert(k, v.into_bytes());
    }
    for (k, v) in cm.binary_data.into_iter().flatten() {
        data.entry(k).or_insert(v.0);
    }
    let missing = |key: &str| ConfigError::ConfigMapItemNotFound {
        name: name.into(),
        key: key.into(),
    };
    add_payload(&data, items, optional, mode, missing, files)
}

fn secret(
    pod: &Pod,
    src: &dyn ConfigSource,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: i32,
    files: &mut Files,
) -> Result<(), ConfigError> {
    let optional = optional == Some(true);
    let namespace = pod_namespace(pod);
    let Some(secret) = src.secret(namespace, name) else {
        if optional {
            return Ok(());
        }
        return Err(ConfigError::SecretNotFound {
            namespace: namespace.into(),
            name: name.into(),
        });
    };
    let data: BTreeMap<String, Vec<u8>> = secret.data.into_iter().flatten().map(|(k, v)| (k, v.0)).collect();
    let missing = |key: &str| ConfigError::SecretItemNotFound {
        name: name.into(),
        key: key.into(),
    };
    add_payload(&data, items, optional, mode, missing, files)
}

fn downward_api(
    pod: &Pod,
    facts: &PodFacts,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    files: &mut Files,
) -> Result<(), ConfigError> {
    for item in items {
        let value = if let Some(r) = &item.field_ref {
            downward::field_ref_value(pod, facts, r.api_version.as_deref(), &r.field_path, FieldUsage::Volume)?
        } else if let Some(r) = &item.resource_field_ref {
            let container = r.container_name.as_deref().unwrap_or("");
            downward::resource_value(pod, container, &r.resource, r.divisor.as_ref(), facts)?
        } else {
            String::new()
        };
        files.add(&item.path, value.into_bytes(), item.mode.unwrap_or(default_mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
