//! The runtime's front door: one per node. Owns the node's settings and starts pods; the
//! engine, the image store and the compiled-program cache are shared by every node of the
//! process ([`Runtime::sibling`]), so `capstan up --nodes N` compiles each image once.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use capstan_core::env::{ConfigObjects, PodFacts};
use capstan_core::k8s_openapi::api::core::v1::Pod;
use tokio::sync::OnceCell;

use crate::container::Program;
use crate::directory::PodDirectory;
use crate::engine::WasmEngine;
use crate::error::RuntimeError;
use crate::images::ImageStore;
use crate::pod::{PodHandle, Worker};
use crate::services::{ServiceLink, ServiceResolver};
use crate::usage::{NodePods, PodUsage, PodUsageCounters, RunningPod};
use crate::volumes::VolumePolicy;

/// Settings of a node's runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where images, compiled code, pods (logs, volumes, root filesystems) live.
    pub data_dir: PathBuf,
    pub node_name: String,
    pub host_ip: String,
    /// Lets pods mount node directories with `hostPath`.
    pub allow_host_path: bool,
    /// The first address of the node's pod block (a /16); pods get consecutive addresses
    /// from it. Nodes of one cluster need distinct blocks.
    pub pod_network: Ipv4Addr,
    /// The node's capacity as reported to the scheduler, when not this machine's own:
    /// (CPU millicores, memory bytes). Lets one machine simulate nodes of other sizes.
    pub capacity: Option<(i64, i64)>,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            node_name: "capstan".into(),
            host_ip: "127.0.0.1".into(),
            allow_host_path: false,
            pod_network: POD_NETWORK,
            capacity: None,
        }
    }
}

/// The default pod block: pods get consecutive addresses of 10.88.0.0/16 (the range podman
/// uses), reachable only inside Capstan.
pub const POD_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 0);

/// Linked programs by image digest, each initialised once however many pods start it at once.
type Programs = Mutex<HashMap<String, Arc<OnceCell<Arc<Program>>>>>;

pub(crate) struct RuntimeInner {
    pub(crate) engine: WasmEngine,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) volume_policy: VolumePolicy,
    config: RuntimeConfig,
    programs: Arc<Programs>,
    pub(crate) directory: Arc<PodDirectory>,
    pub(crate) services: Arc<ServiceLink>,
    /// Container directories made ahead of the starts that need them.
    pub(crate) spares: Arc<crate::spares::Spares>,
    next_ip: AtomicU32,
    /// The pods this node runs now, with their usage counters: this node's own, never a
    /// sibling's.
    pods: Arc<NodePods>,
    /// The node's allocatable CPU (millicores), memory and disk (bytes), read once:
    /// what `resourceFieldRef` reports for an unset limit.
    allocatable: (i64, i64, i64),
}

/// A node's runtime. Cloning shares it.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Opens the data directory and builds the engine (needs a tokio runtime).
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = WasmEngine::new()?;
        let images = Arc::new(ImageStore::open(&config.data_dir.join("images"), engine.clone())?);
        Ok(Self::build(
            engine,
            images,
            Arc::default(),
            Arc::default(),
            Arc::default(),
            config,
        ))
    }

    fn build(
        engine: WasmEngine,
        images: Arc<ImageStore>,
        programs: Arc<Programs>,
        directory: Arc<PodDirectory>,
        services: Arc<ServiceLink>,
        config: RuntimeConfig,
    ) -> Self {
        let volume_policy = VolumePolicy {
            allow_host_path: config.allow_host_path,
            claims_dir: config.data_dir.join("claims"),
        };
        let (cpu, memory) = config.capacity.unwrap_or_else(|| {
            let cpu = std::thread::available_parallelism()
                .map(|n| n.get() as i64 * 1000)
                .unwrap_or(1000);
            (cpu, node_memory_bytes())
        });
        let allocatable = (cpu, memory, node_disk_bytes(&config.data_dir));
        let spares = crate::spares::Spares::new(config.data_dir.join("spares"));
        spares.refill(false);
        Self {
            inner: Arc::new(RuntimeInner {
                engine,
                images,
                volume_policy,
                config,
                programs,
                directory,
                services,
                spares,
                next_ip: AtomicU32::new(2),
                pods: Arc::default(),
                allocatable,
            }),
        }
    }

    /// Another node's runtime in this process: its own settings, data directory and pod
    /// addresses, sharing this one's engine, images and compiled programs.
    pub fn sibling(&self, config: RuntimeConfig) -> Self {
        Self::build(
            self.inner.engine.clone(),
            Arc::clone(&self.inner.images),
            Arc::clone(&self.inner.programs),
            Arc::clone(&self.inner.directory),
            Arc::clone(&self.inner.services),
            config,
        )
    }

    /// Where guests' requests to Services go: set once by the control plane for every node
    /// of the process.
    pub fn set_service_resolver(&self, resolver: Arc<dyn ServiceResolver>) {
        self.inner.services.set(resolver);
    }

    /// The pods running in this process (this runtime and its siblings), by IP.
    pub fn directory(&self) -> Arc<PodDirectory> {
        Arc::clone(&self.inner.directory)
    }

    /// The node's allocatable CPU (millicores), memory and ephemeral storage (bytes).
    pub fn allocatable(&self) -> (i64, i64, i64) {
        self.inner.allocatable
    }

    pub fn images(&self) -> &ImageStore {
        &self.inner.images
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The usage of each pod this node runs now (started and not yet done), by namespace and
    /// name. A sibling's pods are not listed: each node reports its own.
    pub fn pod_usage(&self) -> Vec<PodUsage> {
        self.inner.pods.usage()
    }

    /// How many of the pods this node runs now are in each phase.
    pub fn pods_by_phase(&self) -> BTreeMap<String, u64> {
        self.inner.pods.phases()
    }

    /// Starts a pod that has been defaulted and validated. `config` holds the
    /// ConfigMaps and Secrets its env and volumes may refer to.
    pub fn start_pod(&self, pod: Pod, config: ConfigObjects) -> PodHandle {
        let n = self.inner.next_ip.fetch_add(1, Ordering::Relaxed);
        let pod_ip = Ipv4Addr::from(u32::from(self.inner.config.pod_network) + n).to_string();
        let facts = PodFacts {
            pod_ip,
            host_ip: self.inner.config.host_ip.clone(),
            node_name: self.inner.config.node_name.clone(),
            node_allocatable_cpu_millis: self.inner.allocatable.0,
            node_allocatable_memory_bytes: self.inner.allocatable.1,
            node_allocatable_ephemeral_storage_bytes: self.inner.allocatable.2,
        };
        let mut pod = pod;
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name
                .get_or_insert_with(|| self.inner.config.node_name.clone());
        }
        let meta = &mut pod.metadata;
        let uid = meta.uid.get_or_insert_with(new_uid).clone();
        let dir = pod_dir(
            &self.inner.config.data_dir,
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or("pod"),
            &uid,
        );
        let pod_ip = facts.pod_ip.clone();
        let (namespace, name) = (
            meta.namespace.clone().unwrap_or_else(|| "default".into()),
            meta.name.clone().unwrap_or_default(),
        );
        let usage = Arc::new(PodUsageCounters::default());
        let handle = Worker::spawn(
            self.inner.clone(),
            pod,
            Arc::new(config),
            facts,
            dir,
            Arc::clone(&usage),
        );
        // Listed while it runs: pod IPs are never reused, so removing by IP is exact; the
        // address index `n` is as unique among this node's pods.
        self.inner
            .directory
            .insert(pod_ip.clone(), handle.network(), handle.status());
        let key = u64::from(n);
        self.inner.pods.insert(
            key,
            RunningPod {
                namespace,
                name,
                uid,
                counters: usage,
                status: handle.status(),
            },
        );
        let (directory, pods, done) = (
            Arc::clone(&self.inner.directory),
            Arc::clone(&self.inner.pods),
            handle.done(),
        );
        tokio::spawn(async move {
            done.await;
            directory.remove(&pod_ip);
            pods.remove(key);
        });
        handle
    }
}

impl RuntimeInner {
    /// The linked program for an image: resolved, compiled (or loaded from the
    /// cache) and pre-instantiated once per digest.
    pub(crate) async fn program(&self, image: &str) -> Result<Resolved, RuntimeError> {
        let resolved = self.images.resolve(image)?;
        let cell = {
            let mut map = self.programs.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(resolved.digest.clone()).or_default().clone()
        };
        let program = cell
            .get_or_try_init(|| async {
                let component = self.images.component(&resolved).await?;
                Program::new(&self.engine, &component, image).map(Arc::new)
            })
            .await?
            .clone();
        Ok(Resolved {
            digest: resolved.digest,
            program,
            exposed_port: resolved.exposed_port,
        })
    }
}

/// An image ready to run.
pub(crate) struct Resolved {
    pub(crate) digest: String,
    pub(crate) program: Arc<Program>,
    pub(crate) exposed_port: Option<u16>,
}

/// Where a pod's files live: `pods/<namespace>_<name>_<uid>`.
pub fn pod_dir(data_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    data_dir.join("pods").join(format!("{namespace}_{name}_{uid}"))
}

fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What `limits.ephemeral-storage` reports when unset: the size of the filesystem
/// that holds the node's data (where containers' writable roots live).
fn node_disk_bytes(data_dir: &Path) -> i64 {
    let probe = data_dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    rustix::fs::statvfs(probe)
        .map(|s| (s.f_blocks.saturating_mul(s.f_frsize)) as i64)
        .unwrap_or(0)
}

fn node_memory_bytes() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(1 << 30)
}
