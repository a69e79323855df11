//! Errors of the runtime's shell: what went wrong setting up or running a pod, as
//! opposed to what a guest did (a guest's exit or trap is a container state, not an
//! error; see [`crate::container::Exit`]).

use std::path::PathBuf;

/// Why the runtime could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration or the linker setup.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// A file or directory the runtime manages could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No image of that name is in the store, the embedded guests or at the path.
    #[error("image {0:?} not found (try `capstan image ls`, or `capstan image import FILE --tag {0}`)")]
    ImageNotFound(String),
    /// The bytes are not a WebAssembly component this engine can compile.
    #[error("image {image:?} is not a valid WebAssembly component: {reason}")]
    InvalidComponent { image: String, reason: String },
    /// The component exports neither `wasi:cli/run` nor `wasi:http/incoming-handler`.
    #[error("image {0:?} exports neither wasi:cli/run nor wasi:http/incoming-handler")]
    NotRunnable(String),
    /// The component imports something the node does not provide.
    #[error("image {image:?} cannot be linked: {reason}")]
    Link { image: String, reason: String },
    /// A volume or mount of the pod spec cannot be provided on this node.
    #[error("{field}: {reason}")]
    Volume { field: String, reason: String },
    /// Two containers of a pod want to serve the same port.
    #[error("port {port} of container {container:?}: address in use")]
    PortInUse { port: u16, container: String },
}

impl RuntimeError {
    pub(crate) fn engine(e: impl std::fmt::Display) -> Self {
        Self::Engine(format!("{e:#}"))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
