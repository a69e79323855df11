//! The image store: Wasm components named like container images, kept by sha256
//! digest, and their compiled code cached on disk so a second start skips
//! compilation.
//!
//! Sources, in the order a name is looked up: `file://` paths; images imported with
//! `capstan image import` (so a user can replace a built-in); the guests built into
//! the binary (`k8spatterns/random-generator:1.0`, `busybox`, ...).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use wasmtime::component::Component;

use crate::engine::WasmEngine;
use crate::error::RuntimeError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// Built-in images: (repository, tag or `*` for any, guest bin name).
const BUILTIN: &[(&str, &str, &str)] = &[
    ("k8spatterns/random-generator", "1.0", "random-generator-1"),
    ("k8spatterns/random-generator", "2.0", "random-generator-2"),
    ("k8spatterns/random-generator", "latest", "random-generator-2"),
    ("busybox", "*", "busybox"),
    ("capstan/trap", "*", "trap"),
    ("capstan/spin", "*", "spin"),
    ("capstan/alloc", "*", "alloc"),
    ("capstan/hello-http", "*", "hello-http"),
    ("capstan/tcp-echo", "*", "tcp-echo"),
    ("capstan/tcp-client", "*", "tcp-client"),
    ("centos/httpd", "*", "httpd"),
    ("httpd", "*", "httpd"),
    ("nginx", "*", "httpd"),
    (
        "k8spatterns/random-generator-exporter",
        "*",
        "random-generator-exporter",
    ),
    (
        "k8spatterns/random-generator-log-ambassador",
        "*",
        "random-generator-log-ambassador",
    ),
];

/// The port a built-in HTTP component serves when its container declares none: the
/// image's `EXPOSE`, in container terms. The book's ambassador pod declares no port
/// for the ambassador, which listens on 9009.
const EXPOSED_PORTS: &[(&str, u16)] = &[
    ("httpd", 80),
    ("random-generator-exporter", 9889),
    ("random-generator-log-ambassador", 9009),
];

/// A resolved image: its bytes and their digest.
#[derive(Clone)]
pub struct Image {
    /// The name the pod spec used.
    pub reference: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Embedded guests are borrowed from the binary, not copied.
    pub bytes: bytes::Bytes,
    /// The port it serves by default, if the image says.
    pub exposed_port: Option<u16>,
}

/// One row of `capstan image ls`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub source: &'static str,
}

/// Splits `registry/repo:tag` into a normalised repository and tag, as the
/// container tools do: `docker.io/` and `library/` are dropped, the tag defaults
/// to `latest`, and a `@sha256:` suffix is kept with the repository.
pub fn normalize(reference: &str) -> (String, String) {
    let mut rest = reference.trim();
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest = rest.strip_prefix("library/").unwrap_or(rest);
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], &rest[i + 1..]),
        _ => (rest, "latest"),
    };
    (name.to_string(), tag.to_string())
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The digest of an embedded guest, hashed once per process: hashing a few hundred
/// KiB on every pod start would be most of the start's cost.
fn embedded_digest(bin: &str, bytes: &[u8]) -> String {
    static DIGESTS: std::sync::OnceLock<Mutex<HashMap<String, String>>> = std::sync::OnceLock::new();
    let map = DIGESTS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(bin.to_string()).or_insert_with(|| digest_of(bytes)).clone()
}

/// Component binaries start with `\0asm` and the component-layer version.
fn check_component(image: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
    const MAGIC: &[u8] = b"\0asm";
    let invalid = |reason: &str| RuntimeError::InvalidComponent {
        image: image.to_string(),
        reason: reason.to_string(),
    };
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(invalid("not a WebAssembly binary (bad magic number)"));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(invalid(
            "this is a core module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`",
        ));
    }
    Ok(())
}

/// Content-addressed image store under a data directory.
pub struct ImageStore {
    root: PathBuf,
    engine: WasmEngine,
    compiled: Mutex<HashMap<String, Arc<OnceCell<Component>>>>,
}

impl ImageStore {
    pub fn open(root: &Path, engine: WasmEngine) -> Result<Self, RuntimeError> {
        for dir in ["blobs", "compiled"] {
            std::fs::create_dir_all(root.join(dir)).map_err(RuntimeError::io(root.join(dir)))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            engine,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("blobs")
            .join(format!("{}.wasm", digest.trim_start_matches("sha256:")))
    }

    fn tags(&self) -> BTreeMap<String, String> {
        std::fs::read(self.tags_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Resolves an image reference to its bytes.
    pub fn resolve(&self, reference: &str) -> Result<Image, RuntimeError> {
        if let Some(path) = reference.strip_prefix("file://") {
            let bytes = std::fs::read(path).map_err(|_| RuntimeError::ImageNotFound(reference.to_string()))?;
            check_component(reference, &bytes)?;
            return Ok(Image {
                reference: reference.to_string(),
                digest: digest_of(&bytes),
                bytes: bytes.into(),
                exposed_port: None,
            });
        }
        let (name, tag) = normalize(reference);
        if let Some(digest) = self.tags().get(&format!("{name}:{tag}")) {
            let path = self.blob_path(digest);
            let bytes = std::fs::read(&path).map_err(RuntimeError::io(path))?;
            return Ok(Image {
                reference: reference.to_string(),
                digest: digest.clone(),
                bytes: bytes.into(),
                exposed_port: None,
            });
        }
        let bin = BUILTIN
            .iter()
            .find(|(repo, t, _)| *repo == name && (*t == "*" || *t == tag))
            .map(|(_, _, bin)| *bin)
            .ok_or_else(|| RuntimeError::ImageNotFound(reference.to_string()))?;
        let bytes = embedded::GUESTS
            .iter()
            .find(|(n, _)| *n == bin)
            .map(|(_, b)| *b)
            .ok_or_else(|| RuntimeError::ImageNotFound(reference.to_string()))?;
        Ok(Image {
            reference: reference.to_string(),
            digest: embedded_digest(bin, bytes),
            bytes: bytes::Bytes::from_static(bytes),
            exposed_port: EXPOSED_PORTS.iter().find(|(b, _)| *b == bin).map(|(_, p)| *p),
        })
    }

    /// Stores a component under `name:tag` (`capstan image import`) and compiles it,
    /// so a bad file is refused now rather than when a pod starts.
    pub async fn import(&self, bytes: Vec<u8>, tag: &str) -> Result<ImageSummary, RuntimeError> {
        let (name, t) = normalize(tag);
        let full = format!("{name}:{t}");
        check_component(&full, &bytes)?;
        let digest = digest_of(&bytes);
        let image = Image {
            reference: full.clone(),
            digest: digest.clone(),
            bytes: bytes.into(),
            exposed_port: None,
        };
        self.component(&image).await?;
        let blob = self.blob_path(&digest);
        write_atomic(&blob, &image.bytes)?;
        let mut tags = self.tags();
        tags.insert(full.clone(), digest.clone());
        let json = serde_json::to_vec_pretty(&tags).unwrap_or_default();
        write_atomic(&self.tags_path(), &json)?;
        Ok(ImageSummary {
            name: full,
            digest,
            size: image.bytes.len() as u64,
            source: "imported",
        })
    }

    /// Every image this store can serve.
    pub fn list(&self) -> Vec<ImageSummary> {
        let mut out: Vec<ImageSummary> = self
            .tags()
            .into_iter()
            .map(|(name, digest)| {
                let size = std::fs::metadata(self.blob_path(&digest)).map(|m| m.len()).unwrap_or(0);
                ImageSummary {
                    name,
                    digest,
                    size,
                    source: "imported",
                }
            })
            .collect();
        for (repo, tag, bin) in BUILTIN {
            if let Some((_, bytes)) = embedded::GUESTS.iter().find(|(n, _)| n == bin) {
                let name = if *tag == "*" {
                    format!("{repo}:*")
                } else {
                    format!("{repo}:{tag}")
                };
                out.push(ImageSummary {
                    name,
                    digest: embedded_digest(bin, bytes),
                    size: bytes.len() as u64,
                    source: "built-in",
                });
            }
        }
        out
    }

    /// The compiled component: from memory, else from the on-disk cache, else
    /// compiled now (off the async threads) and cached. Concurrent callers for one
    /// digest wait for a single compilation.
    pub async fn component(&self, image: &Image) -> Result<Component, RuntimeError> {
        let cell = {
            let mut map = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(image.digest.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| self.load_or_compile(image)).await.cloned()
    }

    async fn load_or_compile(&self, image: &Image) -> Result<Component, RuntimeError> {
        let engine = self.engine.engine().clone();
        let cached = self.root.join("compiled").join(format!(
            "{}-{}.cwasm",
            image.digest.trim_start_matches("sha256:"),
            engine_hash(&engine)
        ));
        let bytes = image.bytes.clone();
        let name = image.reference.clone();
        tokio::task::spawn_blocking(move || {
            if cached.exists() {
                // SAFETY: the file was written by `Component::serialize` of an engine with
                // the same compatibility hash (part of its name), into a directory only
                // this store writes.
                if let Ok(c) = unsafe { Component::deserialize_file(&engine, &cached) } {
                    return Ok(c);
                }
            }
            let component = Component::new(&engine, &bytes).map_err(|e| RuntimeError::InvalidComponent {
                image: name,
                reason: format!("{e:#}"),
            })?;
            if let Ok(serialized) = component.serialize() {
                let _ = write_atomic(&cached, &serialized);
            }
            Ok(component)
        })
        .await
        .map_err(RuntimeError::engine)?
    }
}

/// A stable hash of the engine settings that compiled code depends on.
fn engine_hash(engine: &wasmtime::Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:x}", h.0.finalize())[..16].to_string()
}

/// Writes a file so a reader never sees half of it: temp file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(RuntimeError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_references_like_the_container_tools() {
        let cases = [
            ("busybox", ("busybox", "latest")),
            ("docker.io/library/busybox:1.36", ("busybox", "1.36")),
            (
                "k8spatterns/random-generator:1.0",
                ("k8spatterns/random-generator", "1.0"),
            ),
            ("localhost:5000/app", ("localhost:5000/app", "latest")),
            ("localhost:5000/app:v2", ("localhost:5000/app", "v2")),
        ];
        for (input, (name, tag)) in cases {
            assert_eq!(normalize(input), (name.to_string(), tag.to_string()), "{input}");
        }
    }

    #[test]
    fn refuses_core_modules_and_junk() {
        assert!(check_component("x", b"hello world").is_err());
        assert!(check_component("x", b"\0asm\x01\0\0\0").is_err());
        assert!(check_component("x", b"\0asm\x0d\0\x01\0").is_ok());
    }
}
