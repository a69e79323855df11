//! How the API server's request metrics label a request: the Kubernetes verb, the resource and
//! subresource, and whether it is long-running (kept out of the latency histogram).
//!
//! Pure: a method, a routed path and a query in, a [`RequestKind`] out. Every label is a
//! `&'static str` from a closed set (the served resources, the verbs, a few non-resource
//! paths), so recording a request allocates nothing and a client cannot make new series by
//! inventing paths.

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;

use crate::api::ApiError;
use crate::api::path::{ProxyKind, Route};

/// What a request was, as `apiserver_request_*` label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestKind {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// `other` for a method the API does not serve.
    pub verb: &'static str,
    /// The resource's plural (`pods`, `deployments`); empty for a non-resource path.
    pub resource: &'static str,
    /// The subresource (`status`, `log`, `proxy`); for a non-resource path, the path
    /// (`/healthz`, `/metrics`), as kube-apiserver labels those; else empty.
    pub subresource: &'static str,
    /// A watch, a log, a node proxy: their duration says how long the client stayed, not how
    /// fast the server was, so kube-apiserver keeps them out of the latency histogram
    /// (`BasicLongRunningRequestCheck`: verbs watch and proxy; subresources log, proxy,
    /// exec, attach, portforward). Capstan does the same.
    pub long_running: bool,
}

/// The labels of `apiserver_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub code: u16,
}

/// The labels of `apiserver_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DurationLabels {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
}

/// Subresources whose requests are long-running (see [`RequestKind::long_running`]).
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["log", "proxy", "exec", "attach", "portforward"];

impl RequestKind {
    /// Labels a request from its method, its routed path and its query string.
    pub fn of(method: &Method, route: &Result<Route, ApiError>, query: Option<&str>) -> Self {
        let plain = |subresource: &'static str| RequestKind {
            verb: if matches!(*method, Method::GET | Method::HEAD) {
                "get"
            } else {
                "other"
            },
            resource: "",
            subresource,
            long_running: false,
        };
        let route = match route {
            Ok(r) => r,
            Err(_) => return plain(""),
        };
        let target = match route {
            Route::Version => return plain("/version"),
            Route::Health => return plain("/healthz"),
            Route::Metrics => return plain("/metrics"),
            Route::CoreVersions => return plain("/api"),
            Route::ResourceList { group: "", .. } => return plain("/api"),
            Route::Groups | Route::Group(_) | Route::ResourceList { .. } => return plain("/apis"),
            Route::OpenApiV2 => return plain("/openapi/v2"),
            Route::OpenApiV3Index | Route::OpenApiV3 { .. } => return plain("/openapi/v3"),
            Route::NodeProxy { .. } => {
                return RequestKind {
                    verb: verb_of(method),
                    resource: "nodes",
                    subresource: "proxy",
                    long_running: true,
                };
            }
            Route::Proxy { kind, .. } => {
                return RequestKind {
                    verb: verb_of(method),
                    resource: match kind {
                        ProxyKind::Service => "services",
                        ProxyKind::Pod => "pods",
                    },
                    subresource: "proxy",
                    long_running: true,
                };
            }
            Route::Resource(t) => t,
        };
        let subresource = target
            .subresource
            .as_deref()
            .and_then(|s| target.info.subresources.iter().find(|known| **known == s))
            .copied()
            .unwrap_or("");
        let verb = match (method, target.name.is_some()) {
            (&Method::GET, false) if target.watch_path || watch_asked(query) => "watch",
            (&Method::GET, false) => "list",
            (&Method::GET, true) => "get",
            (&Method::DELETE, false) => "deletecollection",
            (m, _) => verb_of(m),
        };
        RequestKind {
            verb,
            resource: target.info.plural,
            subresource,
            long_running: verb == "watch" || LONG_RUNNING_SUBRESOURCES.contains(&subresource),
        }
    }

    pub(super) fn labels(&self, code: u16) -> RequestLabels {
        RequestLabels {
            verb: self.verb,
            resource: self.resource,
            subresource: self.subresource,
            code,
        }
    }

    pub(super) fn duration_labels(&self) -> DurationLabels {
        DurationLabels {
            verb: self.verb,
            resource: self.resource,
            subresource: self.subresource,
        }
    }
}

/// The verb of a method on one object (GET and DELETE on a collection are decided above).
fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// `?watch=true` (or `1`), as the server reads it.
fn watch_asked(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "watch" && matches!(v.as_ref(), "true" | "1"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::path::route;

    fn kind(method: Method, uri: &str) -> (&'static str, &'static str, &'static str, bool) {
        let (path, query) = uri.split_once('?').map_or((uri, None), |(p, q)| (p, Some(q)));
        let k = RequestKind::of(&method, &route(path), query);
        (k.verb, k.resource, k.subresource, k.long_running)
    }

    #[test]
    fn requests_are_labelled_as_kube_apiserver_verbs() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/a/pods", ("list", "pods", "", false)),
            (Method::GET, "/api/v1/pods?watch=true", ("watch", "pods", "", true)),
            (
                Method::GET,
                "/api/v1/pods?watch=1&labelSelector=x",
                ("watch", "pods", "", true),
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/a/pods",
                ("watch", "pods", "", true),
            ),
            (Method::GET, "/api/v1/namespaces/a/pods/web", ("get", "pods", "", false)),
            (Method::POST, "/api/v1/namespaces/a/pods", ("create", "pods", "", false)),
            (
                Method::PUT,
                "/api/v1/namespaces/a/pods/web/status",
                ("update", "pods", "status", false),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/d",
                ("patch", "deployments", "", false),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                ("patch", "deployments", "scale", false),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods/web",
                ("delete", "pods", "", false),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                ("deletecollection", "pods", "", false),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods/web/binding",
                ("create", "pods", "binding", false),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/log?follow=true",
                ("get", "pods", "log", true),
            ),
            (
                Method::GET,
                "/api/v1/nodes/n1/proxy/metrics",
                ("get", "nodes", "proxy", true),
            ),
            (
                Method::OPTIONS,
                "/api/v1/namespaces/a/pods/web",
                ("other", "pods", "", false),
            ),
        ];
        for (method, uri, want) in cases {
            assert_eq!(kind(method.clone(), uri), want, "{method} {uri}");
        }
    }

    #[test]
    fn non_resource_paths_are_labelled_by_a_fixed_path() {
        let cases = [
            ("/metrics", "/metrics"),
            ("/healthz", "/healthz"),
            ("/version", "/version"),
            ("/api", "/api"),
            ("/api/v1", "/api"),
            ("/apis/apps/v1", "/apis"),
            ("/openapi/v3/apis/apps/v1", "/openapi/v3"),
            // Unknown paths share one series, whatever a client makes up.
            ("/no/such/thing", ""),
            ("/api/v1/widgets", ""),
        ];
        for (uri, sub) in cases {
            assert_eq!(kind(Method::GET, uri), ("get", "", sub, false), "{uri}");
        }
    }
}
