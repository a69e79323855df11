//! A container's sandbox: its argv, environment, working directory, private
//! writable root filesystem and volume mounts, turned into a WASI context.
//!
//! Deny by default: a guest sees only the directories preopened here (its own root
//! and the pod's volumes at their `mountPath`), no host network, no host env. cap-std
//! resolves every path inside its preopen, so `..` and symlinks cannot leave it.

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::error::RuntimeError;
use crate::logs::ContainerLog;

/// A directory of the pod mounted into a container.
#[derive(Clone, Debug)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Everything needed to create instances of one container (one start of it).
#[derive(Clone)]
pub struct ContainerPlan {
    pub name: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub rootfs: PathBuf,
    pub mounts: Vec<Mount>,
    pub memory_limit: Option<u64>,
    pub cpu_millis: Option<u64>,
    pub log: ContainerLog,
    /// The pod's network, shared by all its containers.
    pub net: crate::net::PodNet,
    /// What the container's outgoing HTTP may reach.
    pub outgoing: crate::outgoing::OutgoingPolicy,
}

/// Directories every root filesystem starts with, so `/tmp` works and
/// `/dev/termination-log` can be written, as in a container image.
const ROOT_DIRS: &[&str] = &["tmp", "dev", "var/run", "etc"];

impl ContainerPlan {
    /// A fresh WASI context for one instance of this container.
    pub fn wasi_ctx(&self) -> Result<WasiCtx, RuntimeError> {
        let mut b = WasiCtxBuilder::new();
        // Filesystem calls run inline rather than on tokio's blocking pool: a guest's
        // files are small and local (its root, emptyDirs), and a thread hand-off per
        // call costs more than the call (it dominated a random-generator request).
        // Must precede the preopens, which capture it.
        b.allow_blocking_current_thread(true);
        b.args(&self.argv)
            .envs(&self.env)
            .stdout(self.log.clone())
            .stderr(self.log.clone());
        b.preopened_dir(&self.rootfs, "/", FsPerms::ReadWrite)
            .map_err(|e| RuntimeError::Volume {
                field: "rootfs".into(),
                reason: format!("{e:#}"),
            })?;
        for m in &self.mounts {
            let perms = if m.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| RuntimeError::Volume {
                    field: format!("volumeMounts[{}]", m.guest),
                    reason: format!("{}: {e:#}", m.host.display()),
                })?;
        }
        if let Some(cwd) = &self.cwd {
            b.initial_cwd(cwd);
        }
        Ok(b.build())
    }
}

/// Lays out a fresh writable root for a container start. A restart gets a new one,
/// as Kubernetes gives a restarted container a new writable layer.
pub fn fresh_rootfs(dir: &Path, mount_points: &[String]) -> Result<(), RuntimeError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(RuntimeError::io(dir))?;
    }
    root_dirs(dir, mount_points)
}

/// Makes the standard directories of a root at `dir` and the mount points in it (each
/// kept if already there).
pub fn root_dirs(dir: &Path, mount_points: &[String]) -> Result<(), RuntimeError> {
    for sub in ROOT_DIRS
        .iter()
        .map(|s| s.to_string())
        .chain(mount_points.iter().map(|m| m.trim_start_matches('/').to_string()))
    {
        let path = dir.join(&sub);
        std::fs::create_dir_all(&path).map_err(RuntimeError::io(path))?;
    }
    Ok(())
}

/// Kubernetes caps a termination message at 4096 bytes.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

/// Reads what the guest wrote to its `terminationMessagePath`, looking through the
/// mounts first (the path may sit on a volume), then the container's root.
pub fn termination_message(plan: &ContainerPlan, path: &str) -> Option<String> {
    let host = host_path(plan, path)?;
    let data = std::fs::read(host).ok()?;
    let data = &data[..data.len().min(MAX_TERMINATION_MESSAGE)];
    let text = String::from_utf8_lossy(data).into_owned();
    (!text.is_empty()).then_some(text)
}

/// Maps a guest path to the host path behind it (longest mount prefix wins, as in
/// wasi-libc's preopen matching). Refuses paths with `..`.
pub fn host_path(plan: &ContainerPlan, guest: &str) -> Option<PathBuf> {
    if !guest.starts_with('/') || guest.split('/').any(|c| c == "..") {
        return None;
    }
    let best = plan
        .mounts
        .iter()
        .filter(|m| guest == m.guest || guest.starts_with(&format!("{}/", m.guest.trim_end_matches('/'))))
        .max_by_key(|m| m.guest.len());
    Some(match best {
        Some(m) => m.host.join(guest[m.guest.len()..].trim_start_matches('/')),
        None => plan.rootfs.join(guest.trim_start_matches('/')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ContainerPlan {
        let dir = std::env::temp_dir().join("capstan-sandbox-test");
        ContainerPlan {
            name: "c".into(),
            argv: vec![],
            env: vec![],
            cwd: None,
            rootfs: PathBuf::from("/pods/p/c/rootfs"),
            mounts: vec![
                Mount {
                    host: "/pods/p/vol/logs".into(),
                    guest: "/logs".into(),
                    read_only: false,
                },
                Mount {
                    host: "/pods/p/vol/deep".into(),
                    guest: "/logs/deep".into(),
                    read_only: true,
                },
            ],
            memory_limit: None,
            cpu_millis: None,
            log: ContainerLog::open(&dir.join("log")).unwrap(),
            net: crate::net::PodNet::default(),
            outgoing: Default::default(),
        }
    }

    #[test]
    fn guest_paths_map_through_the_longest_mount() {
        let p = plan();
        let cases = [
            ("/dev/termination-log", Some("/pods/p/c/rootfs/dev/termination-log")),
            ("/logs/a.txt", Some("/pods/p/vol/logs/a.txt")),
            ("/logs/deep/b", Some("/pods/p/vol/deep/b")),
            ("/logsx/c", Some("/pods/p/c/rootfs/logsx/c")),
            ("/logs/../etc/passwd", None),
            ("relative", None),
        ];
        for (guest, want) in cases {
            assert_eq!(host_path(&p, guest), want.map(PathBuf::from), "{guest}");
        }
    }
}
