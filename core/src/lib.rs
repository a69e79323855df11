//! `capstan-core`: the Kubernetes object model Capstan's node and control plane share.
//!
//! **Owns** the pure rules of the Kubernetes API as Capstan needs them:
//! reading manifests into `k8s-openapi` types ([`manifest`]), the apiserver's defaulting and
//! QoS class ([`defaults`]) and validation ([`validate`], with the name rules in [`names`]),
//! resource quantities ([`quantity`]), a container's environment ([`env`](mod@env), with `$(VAR)`
//! [`expansion`]) and the downward API ([`downward`]), the files of ConfigMap, Secret,
//! downward API and projected volumes ([`volume_files`]), and the restart policy, pod phase
//! ([`restart`]) and crash-loop back-off ([`backoff`]) of the kubelet. Messages follow the
//! apiserver's and kubelet's wording, because users search for them.
//!
//! **Must not touch** the outside world: no I/O of any kind, so no tokio, hyper or wasmtime,
//! no filesystem, no network and no clocks (time comes in as arguments). Everything here is
//! a function of its inputs, tested with tables beside each module; the runtime and control
//! crates are the shells that act on what these functions decide.

pub mod backoff;
pub mod defaults;
pub mod downward;
pub mod env;
pub mod expansion;
pub mod manifest;
pub mod names;
pub mod quantity;
pub mod quote;
pub mod restart;
pub mod validate;
pub mod volume_files;

pub use k8s_openapi;
