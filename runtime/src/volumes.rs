//! Pod volumes on the node's disk, and each container's mounts of them.
//!
//! Data volumes (`configMap`, `secret`, `downwardAPI`, `projected`) are written
//! the way the kubelet's atomic writer does: files go to a fresh timestamped
//! directory, a `..data` symlink is swapped to it with one rename, and each
//! top-level name is a symlink through `..data`; a reader never sees half an update.
//! The symlinks are relative and stay inside the volume, so cap-std follows them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use capstan_core::env::{ConfigSource, PodFacts};
use capstan_core::k8s_openapi::api::core::v1::{Container, Pod, Volume};
use capstan_core::volume_files::{ProjectedFile, volume_files};

use crate::error::RuntimeError;
use crate::sandbox::Mount;

/// Node-level settings that decide which volume kinds a pod may use.
#[derive(Clone, Debug, Default)]
pub struct VolumePolicy {
    /// `hostPath` volumes expose the node's files; off unless the user allows them.
    pub allow_host_path: bool,
    /// Where `persistentVolumeClaim` volumes live (one directory per claim).
    pub claims_dir: PathBuf,
}

/// The host directory behind each of a pod's volumes.
#[derive(Clone, Debug, Default)]
pub struct PodVolumes {
    dirs: HashMap<String, PathBuf>,
    /// Volumes whose content comes from the API (rewritten on update).
    projected: Vec<String>,
}

impl PodVolumes {
    /// Creates every volume of the pod under `dir`.
    pub fn prepare(
        pod: &Pod,
        dir: &Path,
        facts: &PodFacts,
        src: &dyn ConfigSource,
        policy: &VolumePolicy,
    ) -> Result<Self, RuntimeError> {
        let mut out = Self::default();
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
        for (i, v) in volumes.iter().enumerate() {
            let field = format!("spec.volumes[{i}]");
            let path = volume_dir(v, dir, policy, &field)?;
            if let Some(files) = volume_files(pod, v, facts, src).map_err(|e| RuntimeError::Volume {
                field: field.clone(),
                reason: e.to_string(),
            })? {
                write_projected(&path, &files)?;
                out.projected.push(v.name.clone());
            }
            out.dirs.insert(v.name.clone(), path);
        }
        Ok(out)
    }

    /// Rewrites the data volumes from current objects (live ConfigMap/Secret and
    /// downward API updates).
    pub fn refresh(&self, pod: &Pod, facts: &PodFacts, src: &dyn ConfigSource) -> Result<(), RuntimeError> {
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
        for v in volumes.iter().filter(|v| self.projected.contains(&v.name)) {
            if let (Some(path), Ok(Some(files))) = (self.dirs.get(&v.name), volume_files(pod, v, facts, src)) {
                write_projected(path, &files)?;
            }
        }
        Ok(())
    }

    /// The emptyDir volumes with a `sizeLimit`: (name, directory, limit in bytes).
    pub fn size_limited(&self, pod: &Pod) -> Vec<(String, PathBuf, u64)> {
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
        volumes
            .iter()
            .filter_map(|v| {
                let limit = v.empty_dir.as_ref()?.size_limit.as_ref()?;
                let bytes = capstan_core::quantity::parse(&limit.0).ok()?.as_bytes_ceil();
                Some((
                    v.name.clone(),
                    self.dirs.get(&v.name)?.clone(),
                    u64::try_from(bytes).ok()?,
                ))
            })
            .collect()
    }

    /// A container's mounts, in the order declared.
    pub fn mounts(&self, c: &Container, field: &str) -> Result<Vec<Mount>, RuntimeError> {
        let mut out = vec![];
        for (i, m) in c.volume_mounts.as_deref().unwrap_or_default().iter().enumerate() {
            let f = format!("{field}.volumeMounts[{i}]");
            let base = self.dirs.get(&m.name).ok_or_else(|| RuntimeError::Volume {
                field: format!("{f}.name"),
                reason: format!("volume {:?} not found", m.name),
            })?;
            let mut host = base.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.starts_with('/') || sub.split('/').any(|c| c == "..") {
                    return Err(RuntimeError::Volume {
                        field: format!("{f}.subPath"),
                        reason: "must be a relative path without '..'".into(),
                    });
                }
                host = base.join(sub);
                if !host.exists() {
                    std::fs::create_dir_all(&host).map_err(RuntimeError::io(&host))?;
                }
                if !host.is_dir() {
                    return Err(RuntimeError::Volume {
                        field: format!("{f}.subPath"),
                        reason: format!("{sub:?} is a file; only directories can be mounted into a Wasm guest"),
                    });
                }
            }
            out.push(Mount {
                host,
                guest: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            });
        }
        Ok(out)
    }
}

/// Bytes used by the files under `dir` (links are not followed).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn volume_dir(v: &Volume, pod_dir: &Path, policy: &VolumePolicy, field: &str) -> Result<PathBuf, RuntimeError> {
    if let Some(hp) = &v.host_path {
        if !policy.allow_host_path {
            return Err(RuntimeError::Volume {
                field: format!("{field}.hostPath"),
                reason: "hostPath volumes are disabled on this node (start it with --allow-host-path to allow them)"
                    .into(),
            });
        }
        let path = PathBuf::from(&hp.path);
        match hp.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => std::fs::create_dir_all(&path).map_err(RuntimeError::io(&path))?,
            "" | "Directory" if path.is_dir() => {}
            "" | "Directory" => {
                return Err(RuntimeError::Volume {
                    field: format!("{field}.hostPath.path"),
                    reason: format!("{} is not a directory", hp.path),
                });
            }
            other => {
                return Err(RuntimeError::Volume {
                    field: format!("{field}.hostPath.type"),
                    reason: format!(
                        "{other:?} is not supported; a Wasm guest can mount directories (Directory, DirectoryOrCreate)"
                    ),
                });
            }
        }
        return Ok(path);
    }
    let path = if let Some(pvc) = &v.persistent_volume_claim {
        if pvc.claim_name.is_empty() || pvc.claim_name.contains('/') || pvc.claim_name.contains("..") {
            return Err(RuntimeError::Volume {
                field: format!("{field}.persistentVolumeClaim.claimName"),
                reason: "invalid claim name".into(),
            });
        }
        policy.claims_dir.join(&pvc.claim_name)
    } else if v.empty_dir.is_some()
        || v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
    {
        pod_dir.join("volumes").join(&v.name)
    } else {
        return Err(RuntimeError::Volume {
            field: field.to_string(),
            reason: format!("volume {:?} has a type this node does not support", v.name),
        });
    };
    std::fs::create_dir_all(&path).map_err(RuntimeError::io(&path))?;
    Ok(path)
}

/// The kubelet's atomic writer: new files in a fresh directory, then one rename of
/// the `..data` link; user-visible names are links through `..data`.
pub fn write_projected(dir: &Path, files: &[ProjectedFile]) -> Result<(), RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh).map_err(RuntimeError::io(&fresh))?;
    for f in files {
        let path = fresh.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(RuntimeError::io(parent))?;
        }
        std::fs::write(&path, &f.data).map_err(RuntimeError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode)).map_err(RuntimeError::io(&path))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&stamp, &tmp_link).map_err(RuntimeError::io(&tmp_link))?;
    let data = dir.join("..data");
    let old = std::fs::read_link(&data).ok();
    std::fs::rename(&tmp_link, &data).map_err(RuntimeError::io(&data))?;
    let mut top: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.split('/').next().map(str::to_string))
        .collect();
    top.sort();
    top.dedup();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).map_err(RuntimeError::io(&link))?;
        }
    }
    // Names that are gone from the new data lose their links; the old data goes.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !top.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != stamp.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_swaps_data_and_drops_removed_keys() {
        let dir = std::env::temp_dir().join(format!("capstan-vol-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = |p: &str, d: &str| ProjectedFile {
            path: p.into(),
            data: d.as_bytes().to_vec(),
            mode: 0o644,
        };
        write_projected(&dir, &[f("PATTERN", "one"), f("sub/x", "x")]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("PATTERN")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(dir.join("sub/x")).unwrap(), "x");
        write_projected(&dir, &[f("PATTERN", "two")]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("PATTERN")).unwrap(), "two");
        assert!(
            std::fs::symlink_metadata(dir.join("sub")).is_err(),
            "removed key's link is gone"
        );
        let stamps = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..1"))
            .count();
        assert_eq!(stamps, 1, "old data directory removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
