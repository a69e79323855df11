//! Request paths to routes, as apiserver's `RequestInfoFactory` splits them: discovery and
//! OpenAPI documents, and resource paths with their namespace, name and subresource.

use super::error::ApiError;
use super::resources::{self, ResourceInfo};

/// What a request path addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// `/metrics`: the control plane's metrics in the Prometheus text format.
    Metrics,
    /// `/api/v1/nodes/{node}/proxy/{path}`: a request passed to the node (the kubelet's
    /// endpoint in Kubernetes); `path` has no leading slash.
    NodeProxy { node: String, path: String },
    /// `/api/v1/namespaces/{namespace}/{services|pods}/{[scheme:]name[:port]}/proxy/{path}`: a
    /// request passed to the Service or the pod (`service_proxy.rs`); `target` is the segment as
    /// written, `path` what follows `/proxy` (at least `/`).
    Proxy {
        namespace: String,
        kind: ProxyKind,
        target: String,
        path: String,
    },
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/apis/{group}`
    Group(&'static str),
    /// `/api/v1` or `/apis/{group}/{version}`: the resources of a group version.
    ResourceList { group: &'static str, version: &'static str },
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`: the index of group-version documents.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`
    OpenApiV3 { group: String, version: String },
    /// A resource collection, object or subresource.
    Resource(Target),
}

/// What a `proxy` subresource passes requests to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    Service,
    Pod,
}

/// A resource path: `namespace` is set for paths under `/namespaces/{ns}/`; a namespaced
/// resource without it addresses every namespace (list and watch only).
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The deprecated `/api/v1/watch/...` form, which means `?watch=true`.
    pub watch_path: bool,
}

/// Subresources of a namespace that follow `/namespaces/{name}/` in place of a resource.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Splits a request path (no query) into a [`Route`].
pub fn route(path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Ok(Route::Health),
        ["metrics"] => Ok(Route::Metrics),
        ["api", "v1", "nodes", node, "proxy", rest @ ..] => Ok(Route::NodeProxy {
            node: (*node).to_owned(),
            path: rest.join("/"),
        }),
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            resource @ ("services" | "pods"),
            target,
            "proxy",
            ..,
        ] => {
            // What follows `/proxy` as the client wrote it: trailing slashes matter to the
            // server behind it.
            let marker = format!("/{resource}/{target}/proxy");
            let rest = path.find(&marker).map_or("", |at| &path[at + marker.len()..]);
            if !rest.is_empty() && !rest.starts_with('/') {
                return Err(ApiError::NoSuchPath);
            }
            Ok(Route::Proxy {
                namespace: (*namespace).to_owned(),
                kind: if *resource == "pods" {
                    ProxyKind::Pod
                } else {
                    ProxyKind::Service
                },
                target: (*target).to_owned(),
                path: if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest.to_owned()
                },
            })
        }
        ["api"] => Ok(Route::CoreVersions),
        ["apis"] => Ok(Route::Groups),
        ["openapi", "v2"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiV3Index),
        ["openapi", "v3", "api", version] => Ok(Route::OpenApiV3 {
            group: String::new(),
            version: (*version).to_owned(),
        }),
        ["openapi", "v3", "apis", group, version] => Ok(Route::OpenApiV3 {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        }),
        ["apis", group] => resources::groups()
            .into_iter()
            .find(|(g, _)| g == group)
            .map(|(g, _)| Route::Group(g))
            .ok_or(ApiError::NoSuchPath),
        ["api", version, rest @ ..] => group_version_route("", version, rest),
        ["apis", group, version, rest @ ..] => group_version_route(group, version, rest),
        _ => Err(ApiError::NoSuchPath),
    }
}

fn group_version_route(group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let served = resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version)
        .ok_or(ApiError::NoSuchPath)?;
    let (rest, watch_path) = match rest {
        ["watch", rest @ ..] => (rest, true),
        _ => (rest, false),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, sub, ..] if !NAMESPACE_SUBRESOURCES.contains(sub) => (Some((*ns).to_owned()), &rest[2..]),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [] if !watch_path => {
            return Ok(Route::ResourceList {
                group: served.group,
                version: served.version,
            });
        }
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] if !watch_path => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::NoSuchPath),
    };
    let info = resources::find(group, version, plural).ok_or(ApiError::NoSuchPath)?;
    // A namespaced object is addressed only under its namespace; a cluster-scoped one never is.
    if (info.namespaced && namespace.is_none() && name.is_some()) || (!info.namespaced && namespace.is_some()) {
        return Err(ApiError::NoSuchPath);
    }
    if let Some(sub) = subresource
        && !info.has_subresource(sub)
    {
        return Err(ApiError::NoSuchPath);
    }
    Ok(Route::Resource(Target {
        info,
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
        watch_path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match route(path).unwrap() {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths_split_like_the_apiserver() {
        let t = target("/api/v1/namespaces/default/pods/web/log");
        assert_eq!(
            (
                t.info.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web"), Some("log"))
        );
        let t = target("/api/v1/pods");
        assert_eq!((t.info.plural, t.namespace, t.name), ("pods", None, None));
        let t = target("/apis/apps/v1/namespaces/x/deployments/d/scale");
        assert_eq!((t.info.kind, t.subresource.as_deref()), ("Deployment", Some("scale")));
        // A namespace's own subresource is not a resource inside the namespace.
        let t = target("/api/v1/namespaces/team/status");
        assert_eq!(
            (t.info.plural, t.name.as_deref(), t.subresource.as_deref()),
            ("namespaces", Some("team"), Some("status"))
        );
        let t = target("/api/v1/namespaces/team");
        assert_eq!(
            (t.info.plural, t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("team"))
        );
        let t = target("/api/v1/watch/namespaces/a/pods");
        assert!(t.watch_path);
        let t = target("/api/v1/nodes/n1/status");
        assert_eq!((t.info.kind, t.subresource.as_deref()), ("Node", Some("status")));
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(route("/metrics").unwrap(), Route::Metrics);
        assert_eq!(
            route("/api/v1/nodes/n1/proxy/metrics").unwrap(),
            Route::NodeProxy {
                node: "n1".into(),
                path: "metrics".into()
            }
        );
        for (path, rest) in [
            ("/api/v1/namespaces/shop/services/web:80/proxy", "/"),
            ("/api/v1/namespaces/shop/services/web:80/proxy/", "/"),
            ("/api/v1/namespaces/shop/services/web:80/proxy/a/b/", "/a/b/"),
        ] {
            assert_eq!(
                route(path).unwrap(),
                Route::Proxy {
                    namespace: "shop".into(),
                    kind: ProxyKind::Service,
                    target: "web:80".into(),
                    path: rest.into()
                },
                "{path}"
            );
        }
        assert_eq!(
            route("/api/v1/namespaces/shop/pods/web-0:8080/proxy/metrics").unwrap(),
            Route::Proxy {
                namespace: "shop".into(),
                kind: ProxyKind::Pod,
                target: "web-0:8080".into(),
                path: "/metrics".into()
            }
        );
        assert_eq!(route("/api").unwrap(), Route::CoreVersions);
        assert_eq!(route("/apis/").unwrap(), Route::Groups);
        assert_eq!(route("/apis/apps").unwrap(), Route::Group("apps"));
        assert_eq!(
            route("/api/v1").unwrap(),
            Route::ResourceList {
                group: "",
                version: "v1"
            }
        );
        assert_eq!(
            route("/openapi/v3/apis/apps/v1").unwrap(),
            Route::OpenApiV3 {
                group: "apps".into(),
                version: "v1".into()
            }
        );
    }

    #[test]
    fn unknown_and_misscoped_paths_are_not_found() {
        for path in [
            "/apis/nope/v1",
            "/api/v2/pods",
            "/api/v1/widgets",
            "/api/v1/pods/web",
            "/api/v1/namespaces/a/nodes",
            "/api/v1/namespaces/a/pods/web/exec",
            "/api/v1/namespaces/a/pods/web/log/extra",
            "/",
        ] {
            assert!(matches!(route(path), Err(ApiError::NoSuchPath)), "{path}");
        }
    }
}
