//! Cluster DNS: the names CoreDNS's `kubernetes` plugin answers, as a pod's resolver reaches
//! them through its search path (`<namespace>.svc.cluster.local`, `svc.cluster.local`,
//! `cluster.local`, then the name as written, for names of fewer than five dots):
//!
//! - a Service, `<service>.<namespace>.svc.cluster.local`: its cluster IP, or for a headless
//!   Service the pod IPs of its ready endpoints ([`table::addresses`]);
//! - an endpoint of a headless Service, `<hostname>.<service>.<namespace>.svc.cluster.local`
//!   for a pod whose `hostname` and `subdomain` name it there (a StatefulSet's pods), else
//!   `<a-b-c-d>.<service>.<namespace>.svc.cluster.local` by its address;
//! - a pod, `<a-b-c-d>.<namespace>.pod.cluster.local`: the address the name spells, as CoreDNS
//!   answers in `pods insecure` mode (kubeadm's default).
//!
//! A pure function of the service table: no I/O.

use std::net::IpAddr;

use super::table::{self, Backend};

/// The cluster's domain.
const DOMAIN: &str = "cluster.local";

/// What cluster DNS answers for `name` as a client in `namespace` looks it up; `None` when no
/// name of the cluster matches (and for IP literals, which need no lookup).
pub fn answer(backends: &[Backend], name: &str, namespace: &str) -> Option<Vec<IpAddr>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let searched = [
        format!("{name}.{namespace}.svc.{DOMAIN}"),
        format!("{name}.svc.{DOMAIN}"),
        format!("{name}.{DOMAIN}"),
    ];
    // ndots:5 — a name with fewer dots goes through the search path first.
    let tried: Vec<&str> = if name.matches('.').count() < 5 {
        searched.iter().map(String::as_str).chain([name.as_str()]).collect()
    } else {
        [name.as_str()]
            .into_iter()
            .chain(searched.iter().map(String::as_str))
            .collect()
    };
    tried.into_iter().find_map(|fqdn| absolute(backends, fqdn))
}

/// The answer for a fully qualified name of the cluster's domain.
fn absolute(backends: &[Backend], fqdn: &str) -> Option<Vec<IpAddr>> {
    let labels: Vec<&str> = fqdn.strip_suffix(DOMAIN)?.strip_suffix('.')?.split('.').collect();
    match labels.as_slice() {
        [service, namespace, "svc"] => table::addresses(backends, &format!("{service}.{namespace}.svc"), namespace),
        [endpoint, service, namespace, "svc"] => endpoint_address(backends, endpoint, service, namespace),
        [address, _namespace, "pod"] => dashed(address).map(|ip| vec![ip]),
        _ => None,
    }
}

/// The ready endpoint of headless Service `service` named `endpoint`: by its hostname, or by
/// its address written with dashes.
fn endpoint_address(backends: &[Backend], endpoint: &str, service: &str, namespace: &str) -> Option<Vec<IpAddr>> {
    let ports: Vec<&Backend> = backends
        .iter()
        .filter(|b| b.service == service && b.namespace == namespace && b.external_name.is_none())
        .collect();
    if ports.first()?.cluster_ip.is_some() {
        return None;
    }
    let by_hostname = ports
        .iter()
        .flat_map(|b| &b.hostnames)
        .find(|(host, _)| host == endpoint)
        .and_then(|(_, ip)| ip.parse().ok());
    let by_address = || {
        let ip = dashed(endpoint)?;
        ports
            .iter()
            .flat_map(|b| &b.endpoints)
            .any(|(listed, _)| listed.parse() == Ok(ip))
            .then_some(ip)
    };
    by_hostname.or_else(by_address).map(|ip| vec![ip])
}

/// An address written with dashes for its dots (IPv4) or colons (IPv6), as DNS labels write
/// them: `10-88-0-3`, `fd00--3`.
fn dashed(label: &str) -> Option<IpAddr> {
    if label.matches('-').count() == 3
        && let Ok(ip) = label.replace('-', ".").parse::<std::net::Ipv4Addr>()
    {
        return Some(IpAddr::V4(ip));
    }
    label
        .replace('-', ":")
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use capstan_core::k8s_openapi::api::core::v1::{Endpoints, Service};
    use serde_json::json;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `web` (cluster IP) and headless `db` in `shop`, whose endpoints are `db-0` (by hostname)
    /// and an unnamed one; `web` in `other`.
    fn cluster() -> Vec<Backend> {
        let service = |name: &str, ns: &str, cluster_ip: &str| -> Service {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": cluster_ip, "ports": [{"port": 5432}]},
            }))
            .unwrap()
        };
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "subsets": [{
                "addresses": [{"ip": "10.88.0.4", "hostname": "db-0"}, {"ip": "10.88.0.5"}],
                "notReadyAddresses": [{"ip": "10.88.0.9", "hostname": "db-9"}],
                "ports": [{"port": 5432}],
            }],
        }))
        .unwrap();
        table::backends(
            &[
                service("web", "shop", "10.96.0.7"),
                service("db", "shop", "None"),
                service("web", "other", "10.96.0.8"),
            ],
            &[endpoints],
        )
    }

    #[test]
    fn names_resolve_as_a_pods_resolver_finds_them_through_its_search_path() {
        let b = cluster();
        let cases: &[(&str, &str, Option<Vec<IpAddr>>)] = &[
            // Services, as before.
            ("web", "shop", Some(vec![ip("10.96.0.7")])),
            ("web.other", "shop", Some(vec![ip("10.96.0.8")])),
            ("web.other.svc.cluster.local.", "shop", Some(vec![ip("10.96.0.8")])),
            ("db", "shop", Some(vec![ip("10.88.0.4"), ip("10.88.0.5")])),
            // An endpoint by hostname, in every form the search path completes.
            ("db-0.db", "shop", Some(vec![ip("10.88.0.4")])),
            ("db-0.db.shop", "other", Some(vec![ip("10.88.0.4")])),
            ("DB-0.db.shop.svc", "other", Some(vec![ip("10.88.0.4")])),
            ("db-0.db.shop.svc.cluster.local", "other", Some(vec![ip("10.88.0.4")])),
            // By address, when listed; a not-ready endpoint has no name.
            ("10-88-0-5.db.shop.svc.cluster.local", "x", Some(vec![ip("10.88.0.5")])),
            ("10-88-0-6.db", "shop", None),
            ("db-9.db", "shop", None),
            // A Service with a cluster IP names no endpoints.
            ("10-96-0-7.web", "shop", None),
            // Pods by address.
            ("10-88-0-3.shop.pod", "shop", Some(vec![ip("10.88.0.3")])),
            ("10-88-0-3.shop.pod.cluster.local", "other", Some(vec![ip("10.88.0.3")])),
            ("fd00--3.shop.pod.cluster.local", "other", Some(vec![ip("fd00::3")])),
            ("10-88-0.shop.pod", "shop", None),
            ("nope", "shop", None),
            ("10.88.0.3", "shop", None),
        ];
        for (name, ns, want) in cases {
            assert_eq!(&answer(&b, name, ns), want, "{name} from {ns}");
        }
    }
}
