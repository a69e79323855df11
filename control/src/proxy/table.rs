//! The service routing table (kube-proxy's rules), pure: each port of each Service with the
//! ready endpoints behind it, and which endpoint a connection goes to.

use std::hash::{DefaultHasher, Hash, Hasher};

use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Service};

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
    /// `sessionAffinity: ClientIP`: a client keeps its endpoint.
    pub client_ip_affinity: bool,
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
/// in any of its DNS forms (`web`, `web.ns`, `web.ns.svc`, `web.ns.svc.cluster.local`).
/// `Ok(None)`: a Service of that name without that port; `Err(())`: no such Service.
#[expect(clippy::result_unit_err, reason = "the two outcomes need no more than their names")]
pub fn resolve<'a>(backends: &'a [Backend], host: &str, port: u16, namespace: &str) -> Result<Option<&'a Backend>, ()> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let matches: Vec<&Backend> = if host.parse::<std::net::IpAddr>().is_ok() {
        backends
            .iter()
            .filter(|b| b.cluster_ip.as_deref() == Some(host.as_str()))
            .collect()
    } else {
        let labels: Vec<&str> = host.split('.').collect();
        let (service, ns) = match labels.as_slice() {
            [svc] => (*svc, namespace),
            [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (*svc, *ns),
            _ => return Err(()),
        };
        backends
            .iter()
            .filter(|b| b.service == service && b.namespace == ns)
            .collect()
    };
    if matches.is_empty() {
        return Err(());
    }
    Ok(matches.into_iter().find(|b| b.port == port))
}

/// Every Service port with its ready endpoints (ExternalName services have none).
pub fn backends(services: &[Service], endpoints: &[Endpoints]) -> Vec<Backend> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let eps = endpoints.iter().find(|e| {
            e.metadata.namespace.as_deref() == Some(ns.as_str()) && e.metadata.name.as_deref() == Some(name.as_str())
        });
        for port in spec.ports.iter().flatten() {
            let mut ready = Vec::new();
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
                }
            }
            ready.sort();
            out.push(Backend {
                namespace: ns.clone(),
                service: name.clone(),
                port_name: port.name.clone(),
                cluster_ip: spec.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None"),
                port: port.port as u16,
                node_port: port.node_port.map(|p| p as u16),
                endpoints: ready,
                client_ip_affinity: spec.session_affinity.as_deref() == Some("ClientIP"),
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
            client_ip_affinity: true,
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
    fn external_name_services_route_nowhere() {
        let services = vec![svc(json!({"metadata": {"name": "ext", "namespace": "a"},
            "spec": {"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}}))];
        assert!(backends(&services, &[]).is_empty());
    }
}
