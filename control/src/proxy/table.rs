//! The service routing table (kube-proxy's rules), pure: each port of each Service with the
//! ready endpoints behind it, and which endpoint a connection goes to.
//!
//! An ExternalName Service is an alias (cluster DNS answers its name with a CNAME): its entry
//! carries the `externalName`, and names are followed through aliases — to a Service of the
//! cluster when the external name is one (`web.shop`, `web.shop.svc.cluster.local`), else to
//! an outside host, which clients reach only as they reach any outside host.

use std::hash::{DefaultHasher, Hash, Hasher};

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Service};
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One port of one Service and where its traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port_name: Option<String>,
    pub cluster_ip: Option<String>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Ready endpoints: (pod IP, target port).
    pub endpoints: Vec<(String, u16)>,
    /// The ready endpoints that have a hostname (a pod naming this Service as its subdomain):
    /// (hostname, pod IP), the names DNS gives them under a headless Service.
    pub hostnames: Vec<(String, String)>,
    /// `sessionAffinity: ClientIP`: a client keeps its endpoint.
    pub client_ip_affinity: bool,
    /// The Service's selector (empty without one) and the port's `targetPort`: how to find a
    /// ready pod before the Endpoints list it.
    pub selector: std::collections::BTreeMap<String, String>,
    pub target_port: Option<IntOrString>,
    /// For an ExternalName Service, the name it aliases (lower case, no trailing dot); its
    /// one entry has port 0 and no endpoints, since an alias has no ports of its own.
    pub external_name: Option<String>,
}

impl Backend {
    /// `namespace/service:port` for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.service, self.port)
    }

    /// The endpoint for the `attempt`-th try of a connection: round robin from `turn`, or by
    /// the client's address under ClientIP affinity; each retry moves to the next endpoint.
    pub fn pick(&self, turn: usize, client: Option<&str>, attempt: usize) -> Option<&(String, u16)> {
        if self.endpoints.is_empty() {
            return None;
        }
        let first = match (self.client_ip_affinity, client) {
            (true, Some(ip)) => {
                let mut h = DefaultHasher::new();
                ip.hash(&mut h);
                h.finish() as usize
            }
            _ => turn,
        };
        self.endpoints.get((first + attempt) % self.endpoints.len())
    }
}

/// The backend a client in `namespace` means by `host:port`: a cluster IP, or a Service name
/// in any of its DNS forms (`web`, `web.ns`, `web.ns.svc`, `web.ns.svc.cluster.local`),
/// followed through ExternalName aliases to the Service they name.
/// `Ok(None)`: a Service of that name without that port; `Err(())`: no such Service (nor an
/// alias of one: an alias of an outside host is [`external_name`]'s).
#[expect(clippy::result_unit_err, reason = "the two outcomes need no more than their names")]
pub fn resolve<'a>(backends: &'a [Backend], host: &str, port: u16, namespace: &str) -> Result<Option<&'a Backend>, ()> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let matches: Vec<&Backend> = if host.parse::<std::net::IpAddr>().is_ok() {
        backends
            .iter()
            .filter(|b| b.cluster_ip.as_deref() == Some(host.as_str()))
            .collect()
    } else {
        let (service, ns) = service_name(&host, namespace).ok_or(())?;
        let Named::Service(service, ns) = follow(backends, service, ns) else {
            return Err(());
        };
        named(backends, service, ns).collect()
    };
    if matches.is_empty() {
        return Err(());
    }
    Ok(matches.into_iter().find(|b| b.port == port))
}

/// The outside host a client in `namespace` reaches by `host`: the external name of the
/// ExternalName Service `host` names (through further aliases) when that is no Service of the
/// cluster. `None` for anything else.
pub fn external_name<'a>(backends: &'a [Backend], host: &str, namespace: &str) -> Option<&'a str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let (service, ns) = service_name(&host, namespace)?;
    match follow(backends, service, ns) {
        Named::Outside(name) => Some(name),
        _ => None,
    }
}

/// The Service a name means, as (service, namespace): `web` in the client's namespace, or
/// `web.ns`, `web.ns.svc`, `web.ns.svc.cluster.local`. `None` for other names.
fn service_name<'a>(host: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [svc] => Some((*svc, namespace)),
        [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => Some((*svc, *ns)),
        _ => None,
    }
}

/// The entries of Service `service` of `ns` (its ports, or its alias entry).
fn named<'a>(backends: &'a [Backend], service: &'a str, ns: &'a str) -> impl Iterator<Item = &'a Backend> + 'a {
    backends
        .iter()
        .filter(move |b| b.service == service && b.namespace == ns)
}

/// How many aliases a name is followed through, as DNS resolvers bound CNAME chains: a loop
/// of ExternalName Services ends as an unknown name.
const MAX_ALIAS_HOPS: usize = 8;

/// Where a Service name leads once aliases are followed.
#[derive(Debug, PartialEq, Eq)]
enum Named<'a> {
    /// A Service of the cluster: (service, namespace).
    Service(&'a str, &'a str),
    /// An outside host.
    Outside(&'a str),
    /// Nothing: no such Service, an alias of a cluster name that names none, or a loop.
    Unknown,
}

/// Follows `service` of `ns` through ExternalName aliases. An external name is a Service of
/// the cluster when it is written as one (a CNAME target is absolute, so a single label is an
/// outside host) and that Service exists; a `*.svc` or `*.svc.cluster.local` name of no
/// Service leads nowhere; anything else is outside.
fn follow<'a>(backends: &'a [Backend], service: &str, ns: &str) -> Named<'a> {
    let Some(mut entry) = backends.iter().find(|b| b.service == service && b.namespace == ns) else {
        return Named::Unknown;
    };
    for _ in 0..=MAX_ALIAS_HOPS {
        let Some(target) = entry.external_name.as_deref() else {
            return Named::Service(&entry.service, &entry.namespace);
        };
        let cluster = target.contains('.').then(|| service_name(target, "")).flatten();
        let next = cluster.and_then(|(svc, ns)| backends.iter().find(|b| b.service == svc && b.namespace == ns));
        entry = match (next, cluster) {
            (Some(next), _) => next,
            (None, Some(_)) if target.ends_with(".svc") || target.ends_with(".svc.cluster.local") => {
                return Named::Unknown;
            }
            (None, _) => return Named::Outside(target),
        };
    }
    Named::Unknown
}

/// What cluster DNS answers for `name` as a client in `namespace` writes it (`web`, `web.ns`,
/// `web.ns.svc`, `web.ns.svc.cluster.local`): the Service's cluster IP, or for a headless
/// Service (no cluster IP: the API server gives every other Service one) the pod IPs of its
/// ready endpoints on any port, sorted, each once, as CoreDNS's A records. `None`: no Service
/// of that name (and IP literals, which need no lookup).
pub fn addresses(backends: &[Backend], name: &str, namespace: &str) -> Option<Vec<std::net::IpAddr>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let (service, ns) = match labels.as_slice() {
        [svc] => (*svc, namespace),
        [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (*svc, *ns),
        _ => return None,
    };
    // An ExternalName alias answers as the Service it names; an alias of an outside host, as
    // no Service.
    let Named::Service(service, ns) = follow(backends, service, ns) else {
        return None;
    };
    let ports: Vec<&Backend> = backends
        .iter()
        .filter(|b| b.service == service && b.namespace == ns)
        .collect();
    let first = ports.first()?;
    let mut ips: Vec<std::net::IpAddr> = match &first.cluster_ip {
        Some(ip) => ip.parse().ok().into_iter().collect(),
        None => ports
            .iter()
            .flat_map(|b| &b.endpoints)
            .filter_map(|(ip, _)| ip.parse().ok())
            .collect(),
    };
    ips.sort();
    ips.dedup();
    Some(ips)
}

/// Every Service port with its ready endpoints, and an alias entry for each ExternalName
/// Service.
pub fn backends(services: &[Service], endpoints: &[Endpoints]) -> Vec<Backend> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else { continue };
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec.external_name.as_deref().unwrap_or_default();
            out.push(Backend {
                namespace: ns,
                service: name,
                port_name: None,
                cluster_ip: None,
                port: 0,
                node_port: None,
                endpoints: Vec::new(),
                hostnames: Vec::new(),
                client_ip_affinity: false,
                external_name: Some(target.trim_end_matches('.').to_ascii_lowercase()),
                selector: Default::default(),
                target_port: None,
            });
            continue;
        }
        let eps = endpoints.iter().find(|e| {
            e.metadata.namespace.as_deref() == Some(ns.as_str()) && e.metadata.name.as_deref() == Some(name.as_str())
        });
        for port in spec.ports.iter().flatten() {
            let mut ready = Vec::new();
            let mut hostnames = Vec::new();
            for subset in eps.and_then(|e| e.subsets.as_ref()).into_iter().flatten() {
                // The subset's port of the same name (unnamed matches unnamed).
                let Some(target) = subset
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref().unwrap_or("") == port.name.as_deref().unwrap_or(""))
                else {
                    continue;
                };
                for address in subset.addresses.iter().flatten() {
                    ready.push((address.ip.clone(), target.port as u16));
                    if let Some(host) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
                        hostnames.push((host.to_ascii_lowercase(), address.ip.clone()));
                    }
                }
            }
            ready.sort();
            hostnames.sort();
            hostnames.dedup();
            out.push(Backend {
                namespace: ns.clone(),
                service: name.clone(),
                port_name: port.name.clone(),
                cluster_ip: spec.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None"),
                port: port.port as u16,
                node_port: port.node_port.map(|p| p as u16),
                endpoints: ready,
                hostnames,
                client_ip_affinity: spec.session_affinity.as_deref() == Some("ClientIP"),
                external_name: None,
                selector: spec.selector.clone().unwrap_or_default(),
                target_port: port.target_port.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ports_map_to_the_ready_endpoints_of_the_same_port_name() {
        let services = vec![svc(json!({"metadata": {"name": "web", "namespace": "a"},
            "spec": {"clusterIP": "10.96.0.5", "type": "NodePort", "ports": [
                {"name": "http", "port": 80, "nodePort": 30080}, {"name": "metrics", "port": 9000}]}}))];
        let endpoints: Vec<Endpoints> = vec![serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "a"},
            "subsets": [{"addresses": [{"ip": "10.88.0.3"}, {"ip": "10.88.0.2"}], "notReadyAddresses": [{"ip": "10.88.0.9"}],
                "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9889}]}]})).unwrap()];
        let b = backends(&services, &endpoints);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0].endpoints,
            vec![("10.88.0.2".into(), 8080), ("10.88.0.3".into(), 8080)]
        );
        assert_eq!(
            (b[0].node_port, b[0].cluster_ip.as_deref()),
            (Some(30080), Some("10.96.0.5"))
        );
        assert_eq!(b[1].endpoints[0].1, 9889);
        // Round robin, and a retry moves on.
        assert_eq!(b[0].pick(0, None, 0).unwrap().0, "10.88.0.2");
        assert_eq!(b[0].pick(1, None, 0).unwrap().0, "10.88.0.3");
        assert_eq!(b[0].pick(0, None, 1).unwrap().0, "10.88.0.3");
    }

    #[test]
    fn client_ip_affinity_keeps_a_client_on_one_endpoint() {
        let mut b = Backend {
            namespace: "a".into(),
            service: "s".into(),
            port_name: None,
            cluster_ip: None,
            port: 80,
            node_port: None,
            endpoints: vec![("1".into(), 1), ("2".into(), 1), ("3".into(), 1)],
            hostnames: Vec::new(),
            client_ip_affinity: true,
            external_name: None,
            selector: Default::default(),
            target_port: None,
        };
        let first = b.pick(0, Some("192.0.2.7"), 0).cloned();
        assert!((0..10).all(|turn| b.pick(turn, Some("192.0.2.7"), 0).cloned() == first));
        b.endpoints.clear();
        assert_eq!(b.pick(0, None, 0), None);
    }

    #[test]
    fn names_resolve_in_every_dns_form_and_by_cluster_ip() {
        let services = vec![svc(json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}}))];
        let b = backends(&services, &[]);
        for (host, ns) in [
            ("web", "shop"),
            ("web.shop", "other"),
            ("web.shop.svc", "other"),
            ("web.shop.svc.cluster.local.", "other"),
            ("10.96.0.7", "other"),
        ] {
            let found = resolve(&b, host, 80, ns).unwrap().unwrap();
            assert_eq!(found.service, "web", "{host}");
        }
        assert_eq!(resolve(&b, "web", 81, "shop"), Ok(None), "known service, unknown port");
        assert_eq!(
            resolve(&b, "web", 80, "other"),
            Err(()),
            "a bare name is looked up in the caller's namespace"
        );
        assert_eq!(resolve(&b, "example.com", 80, "shop"), Err(()));
    }

    #[test]
    fn external_names_alias_a_cluster_service_or_an_outside_host() {
        let alias = |name: &str, target: &str| {
            svc(json!({"metadata": {"name": name, "namespace": "a"},
                "spec": {"type": "ExternalName", "externalName": target}}))
        };
        let services = vec![
            svc(json!({"metadata": {"name": "web", "namespace": "shop"},
                "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}})),
            alias("full", "web.shop.svc.cluster.local."),
            alias("short", "Web.Shop"),
            alias("chained", "full.a"),
            alias("outside", "api.example.com"),
            alias("two-labels", "example.com"),
            alias("single", "web"),
            alias("missing", "gone.shop.svc.cluster.local"),
            alias("loop-a", "loop-b.a"),
            alias("loop-b", "loop-a.a"),
        ];
        let endpoints: Vec<Endpoints> = vec![
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.88.0.2"}], "ports": [{"port": 8080}]}]}))
            .unwrap(),
        ];
        let b = backends(&services, &endpoints);
        assert!(b.iter().all(|b| b.node_port.is_none()), "aliases open no node port");
        for host in ["full", "short", "chained.a", "chained.a.svc.cluster.local"] {
            let found = resolve(&b, host, 80, "a").unwrap().unwrap();
            assert_eq!((found.service.as_str(), found.endpoints.len()), ("web", 1), "{host}");
            assert_eq!(external_name(&b, host, "a"), None, "{host}");
            assert_eq!(resolve(&b, host, 81, "a"), Ok(None), "{host}: the target's ports count");
        }
        let cases = [
            ("outside", Some("api.example.com")),
            ("two-labels", Some("example.com")),
            ("single", Some("web")),
            ("missing", None),
            ("loop-a", None),
            ("nothing", None),
        ];
        for (host, outside) in cases {
            assert_eq!(resolve(&b, host, 80, "a"), Err(()), "{host}");
            assert_eq!(external_name(&b, host, "a"), outside, "{host}");
        }
        assert_eq!(external_name(&b, "web.shop", "a"), None, "a Service is no alias");
    }

    #[test]
    fn dns_answers_the_cluster_ip_or_a_headless_services_ready_pod_ips() {
        let services = vec![
            svc(json!({"metadata": {"name": "web", "namespace": "shop"},
                "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}})),
            svc(json!({"metadata": {"name": "db", "namespace": "shop"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}, {"name": "m", "port": 9187}]}})),
            svc(json!({"metadata": {"name": "idle", "namespace": "shop"},
                "spec": {"clusterIP": "None", "ports": [{"port": 7}]}})),
        ];
        let endpoints: Vec<Endpoints> = vec![serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.88.0.4"}, {"ip": "10.88.0.3"}], "notReadyAddresses": [{"ip": "10.88.0.9"}],
                "ports": [{"name": "pg", "port": 5432}, {"name": "m", "port": 9187}]}]})).unwrap()];
        let b = backends(&services, &endpoints);
        let ips = |list: &[&str]| {
            list.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<std::net::IpAddr>>()
        };
        let cases: &[(&str, &str, Option<Vec<std::net::IpAddr>>)] = &[
            ("web", "shop", Some(ips(&["10.96.0.7"]))),
            ("WEB.shop", "other", Some(ips(&["10.96.0.7"]))),
            ("web.shop.svc", "other", Some(ips(&["10.96.0.7"]))),
            ("web.shop.svc.cluster.local.", "other", Some(ips(&["10.96.0.7"]))),
            ("db", "shop", Some(ips(&["10.88.0.3", "10.88.0.4"]))),
            ("db.shop.svc.cluster.local", "x", Some(ips(&["10.88.0.3", "10.88.0.4"]))),
            ("idle", "shop", Some(vec![])),
            ("web", "other", None),
            ("web.shop.pod.cluster.local", "shop", None),
            ("example.com", "shop", None),
            ("10.96.0.7", "shop", None),
        ];
        for (name, ns, want) in cases {
            assert_eq!(&addresses(&b, name, ns), want, "{name} from {ns}");
        }
    }
}
