//! The Kubernetes API server: REST paths, discovery, `Status` errors, watches, patches and
//! Table responses over the [`crate::store::Store`].
//!
//! Layers, inner to outer: `resources` (what is served) → `strategy` (per-kind decoding,
//! defaults, validation) → `registry` and `watch` (the verbs over the store) → `server` (HTTP).
//! In-process components (controllers, the scheduler, a local node) call [`Api`] directly;
//! everything else comes through HTTP. Both take the same path through admission.

pub mod discovery;
pub mod error;
pub mod logs;
pub mod node_proxy;
pub mod patch;
pub mod path;
pub mod registry;
pub mod resources;
pub mod selector;
pub mod server;
pub mod service_proxy;
pub mod services;
pub mod strategy;
pub mod table;
pub mod watch;

pub use error::ApiError;
pub use registry::Api;
