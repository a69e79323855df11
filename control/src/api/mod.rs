//! The Kubernetes API server: REST paths, discovery, `Status` errors, watches, patches and
//! Table responses over the [`crate::store::Store`].

pub mod patch;
pub mod selector;
pub mod table;
