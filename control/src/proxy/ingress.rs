//! Ingress routing, pure: which Service port a request (host, path) goes to, as the Ingress
//! spec defines matching — a rule's host exactly or by a leading `*.` wildcard (one label);
//! `Exact` paths equal, `Prefix` paths by whole path elements (`/foo` matches `/foo` and
//! `/foo/bar`, not `/foobar`); the longest match wins, `Exact` over `Prefix` at equal length;
//! the default backend when nothing matches.

use capstan_core::k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// The Service port a route sends to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub service: String,
    /// The Service port's number or name.
    pub port: PortRef,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathMatch {
    Exact(String),
    /// `ImplementationSpecific` is treated as `Prefix`.
    Prefix(String),
}

/// One path of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    host: Option<String>,
    path: PathMatch,
    target: Target,
}

/// Every Ingress's rules, ready to match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressTable {
    routes: Vec<Route>,
    defaults: Vec<Target>,
}

fn target(namespace: &str, backend: &IngressBackend) -> Option<Target> {
    let svc = backend.service.as_ref()?;
    let port = svc.port.as_ref()?;
    let port = match (port.number, port.name.as_deref()) {
        (Some(n), _) => PortRef::Number(u16::try_from(n).ok()?),
        (None, Some(name)) if !name.is_empty() => PortRef::Name(name.to_owned()),
        _ => return None,
    };
    Some(Target {
        namespace: namespace.to_owned(),
        service: svc.name.clone(),
        port,
    })
}

impl IngressTable {
    pub fn new(ingresses: &[Ingress]) -> IngressTable {
        let mut table = IngressTable::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = ing.spec.as_ref() else { continue };
            if let Some(t) = spec.default_backend.as_ref().and_then(|b| target(ns, b)) {
                table.defaults.push(t);
            }
            for rule in spec.rules.iter().flatten() {
                let host = rule
                    .host
                    .clone()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.to_ascii_lowercase());
                for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
                    let Some(t) = target(ns, &p.backend) else { continue };
                    let path = p.path.clone().unwrap_or_else(|| "/".into());
                    let path = match p.path_type.as_str() {
                        "Exact" => PathMatch::Exact(path),
                        _ => PathMatch::Prefix(path),
                    };
                    table.routes.push(Route {
                        host: host.clone(),
                        path,
                        target: t,
                    });
                }
            }
        }
        table
    }

    /// Where a request for `host` (its `Host` header, port dropped) and `path` goes.
    pub fn route(&self, host: &str, path: &str) -> Option<&Target> {
        let host = host.rsplit_once(':').map_or(
            host,
            |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host },
        );
        let host = host.to_ascii_lowercase();
        let path = path.split('?').next().unwrap_or("/");
        self.routes
            .iter()
            .filter(|r| r.host.as_deref().is_none_or(|h| host_matches(h, &host)))
            .filter_map(|r| path_score(&r.path, path).map(|score| (score, r)))
            // More specific host first, then the longest path, Exact before Prefix.
            .max_by_key(|(score, r)| {
                (
                    r.host.as_deref().is_some_and(|h| !h.starts_with("*.")),
                    r.host.is_some(),
                    *score,
                )
            })
            .map(|(_, r)| &r.target)
            .or_else(|| self.defaults.first())
    }
}

fn host_matches(rule: &str, host: &str) -> bool {
    match rule.strip_prefix("*.") {
        // A wildcard covers exactly one more label.
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => rule == host,
    }
}

/// How well `path` matches: (matched length, exactness), or `None`.
fn path_score(rule: &PathMatch, path: &str) -> Option<(usize, bool)> {
    match rule {
        PathMatch::Exact(p) => (p == path).then_some((p.len(), true)),
        PathMatch::Prefix(p) => {
            let prefix = p.trim_end_matches('/');
            let matches = prefix.is_empty()
                || path == prefix
                || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
            matches.then_some((prefix.len(), false))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table() -> IngressTable {
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "rules": [
                    {"host": "a.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "a", "port": {"number": 8080}}}},
                        {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "a-api", "port": {"name": "http"}}}},
                        {"path": "/api/exact", "pathType": "Exact", "backend": {"service": {"name": "a-exact", "port": {"number": 1}}}}
                    ]}},
                    {"host": "*.b.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "b", "port": {"number": 8080}}}}
                    ]}}
                ]
            }
        }))
        .unwrap();
        IngressTable::new(&[ing])
    }

    fn to(table: &IngressTable, host: &str, path: &str) -> Option<String> {
        table.route(host, path).map(|t| t.service.clone())
    }

    #[test]
    fn hosts_and_paths_route_as_the_ingress_spec_says() {
        let t = table();
        let cases = [
            ("a.example.com", "/", Some("a")),
            ("a.example.com:8080", "/index.html", Some("a")),
            ("A.Example.com", "/api", Some("a-api")),
            ("a.example.com", "/api/users?x=1", Some("a-api")),
            ("a.example.com", "/apix", Some("a")),
            ("a.example.com", "/api/exact", Some("a-exact")),
            ("a.example.com", "/api/exact/more", Some("a-api")),
            ("x.b.example.com", "/", Some("b")),
            ("b.example.com", "/", Some("fallback")),
            ("y.x.b.example.com", "/", Some("fallback")),
            ("other", "/", Some("fallback")),
        ];
        for (host, path, want) in cases {
            assert_eq!(to(&t, host, path).as_deref(), want, "{host}{path}");
        }
        assert_eq!(
            t.route("a.example.com", "/api").unwrap().port,
            PortRef::Name("http".into())
        );
    }

    #[test]
    fn without_a_default_backend_nothing_matches() {
        assert_eq!(IngressTable::new(&[]).route("any", "/"), None);
    }
}
