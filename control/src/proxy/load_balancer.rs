//! LoadBalancer Services on this machine, as MetalLB or k3s' ServiceLB give a bare cluster one:
//! besides its node ports, each port of a LoadBalancer Service gets a real host listener on its
//! `port` at the cluster's load-balancer address (where the node ports listen), and once one
//! listens the Service's `status.loadBalancer.ingress[0].ip` names that address, so `kubectl
//! get svc` shows it as EXTERNAL-IP.
//!
//! A port the Service cannot have — another load balancer's (the older Service keeps it), a
//! node port, a protocol the proxy does not carry, or one the host will not bind — is reported
//! on the Service as a `SyncLoadBalancerFailed` warning, with `PortUnavailable` as the port's
//! error in the status, and the proxy tries to bind it again later.
//!
//! [`plan`] and [`changes`] are pure; the proxy's loop binds the ports and calls [`write`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use capstan_core::k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, PortStatus, Service};
use serde_json::json;

use super::table::Backend;
use crate::api::resources::find;
use crate::api::{Api, ApiError};
use crate::events;
use crate::manager::write::modify;

/// Who reports the events (kube's service controller, which provisions load balancers).
const COMPONENT: events::Component = "service-controller";

/// The error a port that does not listen carries in the status (a CamelCase reason, as the
/// API requires of `PortStatus.error`).
pub const PORT_UNAVAILABLE: &str = "PortUnavailable";

/// The ports of one LoadBalancer Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balancer {
    pub namespace: String,
    pub name: String,
    /// Every port it asks for: (port, protocol).
    pub ports: Vec<(u16, String)>,
    /// The ports it cannot have, and why (pure reasons; bind failures come from the loop).
    pub refused: BTreeMap<u16, String>,
}

/// The host ports of every LoadBalancer Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The ports given out: host port → the Service port it serves.
    pub ports: HashMap<u16, Backend>,
    pub balancers: Vec<Balancer>,
}

/// Hands out the ports of the LoadBalancer Services, oldest Service first (so a newer one
/// never takes a port from an older one), around the node ports already in use.
pub fn plan(services: &[Service], backends: &[Backend], node_ports: &HashMap<u16, Backend>) -> Plan {
    let mut wanting: Vec<&Service> = services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .collect();
    wanting.sort_by_key(|s| {
        let m = &s.metadata;
        (
            m.creation_timestamp.clone().map(|t| t.0),
            m.namespace.clone(),
            m.name.clone(),
        )
    });
    let mut plan = Plan::default();
    for svc in wanting {
        let namespace = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let mut balancer = Balancer {
            namespace: namespace.clone(),
            name: name.clone(),
            ports: Vec::new(),
            refused: BTreeMap::new(),
        };
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default();
        for port in ports {
            let (Ok(number), protocol) = (u16::try_from(port.port), port.protocol.as_deref().unwrap_or("TCP")) else {
                continue;
            };
            balancer.ports.push((number, protocol.to_owned()));
            let ours = |b: &Backend| b.namespace == namespace && b.service == name;
            let holder = |held: &HashMap<u16, Backend>| held.get(&number).filter(|b| !ours(b)).map(Backend::describe);
            let refusal = if protocol != "TCP" {
                Some(format!("protocol {protocol} is not supported"))
            } else if let Some(other) = holder(node_ports) {
                Some(format!("port {number} is a node port of {other}"))
            } else {
                holder(&plan.ports).map(|other| format!("port {number} is taken by load balancer {other}"))
            };
            if let Some(reason) = refusal {
                balancer.refused.insert(number, reason);
                continue;
            }
            let backend = backends.iter().find(|b| ours(b) && b.port == number);
            if let Some(backend) = backend.filter(|_| !node_ports.contains_key(&number)) {
                plan.ports.insert(number, backend.clone());
            }
        }
        plan.balancers.push(balancer);
    }
    plan
}

/// The address clients are told to use: the one the listeners bind, or the loopback address
/// when they bind every address (there is no one address to name then).
pub fn external_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// A Service whose `status.loadBalancer` must be rewritten.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub status: LoadBalancerStatus,
}

/// What each Service's `status.loadBalancer` should be, where it is not that now: for a load
/// balancer with a port that listens, one ingress at `address` listing every port (those that
/// do not listen with [`PORT_UNAVAILABLE`]); for any other Service, nothing (a Service that
/// stopped being a load balancer loses its address, as kube's service controller clears it).
pub fn changes(services: &[Service], plan: &Plan, address: IpAddr, listening: &HashSet<u16>) -> Vec<Change> {
    let mut out = Vec::new();
    for svc in services {
        let (namespace, name) = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let balancer = plan
            .balancers
            .iter()
            .find(|b| b.namespace == namespace && b.name == name);
        let ingress: Vec<LoadBalancerIngress> = match balancer {
            Some(b) if b.ports.iter().any(|(p, _)| serves(b, *p, listening)) => {
                let ports = b
                    .ports
                    .iter()
                    .map(|(port, protocol)| PortStatus {
                        error: (!serves(b, *port, listening)).then(|| PORT_UNAVAILABLE.to_owned()),
                        port: i32::from(*port),
                        protocol: protocol.clone(),
                    })
                    .collect();
                vec![LoadBalancerIngress {
                    ip: Some(external_ip(address).to_string()),
                    ip_mode: Some("VIP".to_owned()),
                    ports: Some(ports),
                    ..Default::default()
                }]
            }
            _ => Vec::new(),
        };
        let current = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.clone())
            .unwrap_or_default();
        if current != ingress {
            out.push(Change {
                namespace,
                name,
                uid: svc.metadata.uid.clone(),
                status: LoadBalancerStatus {
                    ingress: (!ingress.is_empty()).then_some(ingress),
                },
            });
        }
    }
    out
}

/// Whether port `port` of `balancer` listens for it.
fn serves(balancer: &Balancer, port: u16, listening: &HashSet<u16>) -> bool {
    !balancer.refused.contains_key(&port) && listening.contains(&port)
}

/// A port of a load balancer that does not listen, to report once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    pub reason: String,
}

impl Problem {
    /// The event message, as kube's service controller words a failed sync.
    pub fn message(&self, address: IpAddr) -> String {
        format!(
            "Error syncing load balancer: failed to ensure load balancer: port {} on {}: {}",
            self.port,
            external_ip(address),
            self.reason
        )
    }
}

/// Every port of every load balancer that does not listen: refused by the plan, or not bound
/// (`failed`: port → the bind error).
pub fn problems(plan: &Plan, failed: &HashMap<u16, String>) -> Vec<Problem> {
    let mut out = Vec::new();
    for b in &plan.balancers {
        for (port, _) in &b.ports {
            let reason = b.refused.get(port).or_else(|| {
                let ours = plan
                    .ports
                    .get(port)
                    .is_some_and(|o| o.namespace == b.namespace && o.service == b.name);
                failed.get(port).filter(|_| ours)
            });
            if let Some(reason) = reason {
                out.push(Problem {
                    namespace: b.namespace.clone(),
                    name: b.name.clone(),
                    port: *port,
                    reason: reason.clone(),
                });
            }
        }
    }
    out
}

/// Writes the status changes and records the problems as events on their Services (and an
/// `EnsuredLoadBalancer` event where a load balancer gets its address). A Service that is
/// gone meanwhile is skipped.
pub fn write(api: &Api, changes: &[Change], problems: &[Problem], address: IpAddr) -> Result<(), ApiError> {
    let info = find("", "v1", "services").expect("services are served");
    for change in changes {
        let status = json!(change.status);
        let written = modify(
            api,
            info,
            Some(&change.namespace),
            &change.name,
            change.uid.as_deref(),
            true,
            |o| o["status"]["loadBalancer"] = status.clone(),
        );
        match written {
            Ok(_) => {}
            Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
        if change.status.ingress.is_some()
            && let Ok(svc) = api.get(info, Some(&change.namespace), &change.name)
        {
            let message = format!("Ensured load balancer at {}", external_ip(address));
            events::record(
                api,
                &svc,
                "Service",
                "Normal",
                "EnsuredLoadBalancer",
                &message,
                COMPONENT,
            );
        }
    }
    for problem in problems {
        let svc = match api.get(info, Some(&problem.namespace), &problem.name) {
            Ok(svc) => svc,
            Err(ApiError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let message = problem.message(address);
        events::record(
            api,
            &svc,
            "Service",
            "Warning",
            "SyncLoadBalancerFailed",
            &message,
            COMPONENT,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proxy::table::backends;

    fn svc(name: &str, created: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}"),
            "creationTimestamp": created}, "spec": spec}),
        )
        .unwrap()
    }

    fn balancer(name: &str, created: &str, ports: &[u16]) -> Service {
        let ports: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"name": format!("p{i}"), "port": p, "nodePort": 31000 + i}))
            .collect();
        svc(
            name,
            created,
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.9", "ports": ports}),
        )
    }

    fn node_ports(b: &[Backend]) -> HashMap<u16, Backend> {
        b.iter().filter_map(|b| b.node_port.map(|p| (p, b.clone()))).collect()
    }

    #[test]
    fn the_older_load_balancer_keeps_a_contested_port() {
        let services = vec![
            balancer("newer", "2025-01-02T00:00:00Z", &[80, 8080]),
            balancer("older", "2025-01-01T00:00:00Z", &[80]),
            svc(
                "plain",
                "2025-01-01T00:00:00Z",
                json!({"type": "NodePort", "ports": [{"port": 9000, "nodePort": 30500}]}),
            ),
            balancer("clash", "2025-01-03T00:00:00Z", &[30500]),
        ];
        let all = backends(&services, &[]);
        let plan = plan(&services, &all, &node_ports(&all));
        let owner = |port: u16| plan.ports.get(&port).map(|b| b.service.as_str());
        assert_eq!(
            (owner(80), owner(8080), owner(30500)),
            (Some("older"), Some("newer"), None)
        );
        let refused: Vec<(&str, u16, &str)> = plan
            .balancers
            .iter()
            .flat_map(|b| b.refused.iter().map(move |(p, r)| (b.name.as_str(), *p, r.as_str())))
            .collect();
        assert_eq!(
            refused,
            [
                ("newer", 80, "port 80 is taken by load balancer a/older:80"),
                ("clash", 30500, "port 30500 is a node port of a/plain:9000"),
            ]
        );
    }

    #[test]
    fn status_names_the_address_once_a_port_listens() {
        let mut services = vec![
            balancer("web", "2025-01-01T00:00:00Z", &[80, 81]),
            svc(
                "was-lb",
                "2025-01-01T00:00:00Z",
                json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
            ),
        ];
        services[1].status =
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})).unwrap();
        let all = backends(&services, &[]);
        let plan = plan(&services, &all, &node_ports(&all));
        let address: IpAddr = "0.0.0.0".parse().unwrap();

        // Nothing listens yet: web stays pending; was-lb loses its address.
        let none = changes(&services, &plan, address, &HashSet::new());
        assert_eq!(none.len(), 1);
        assert_eq!(
            (none[0].name.as_str(), none[0].status.ingress.clone()),
            ("was-lb", None)
        );

        // Port 80 listens, 81 could not be bound.
        let listening = HashSet::from([80]);
        let found = changes(&services, &plan, address, &listening);
        let web = found.iter().find(|c| c.name == "web").unwrap();
        assert_eq!(
            serde_json::to_value(&web.status).unwrap(),
            json!({"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP", "ports": [
                {"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP", "error": PORT_UNAVAILABLE}]}]})
        );
        // Once written, nothing changes.
        services[0].status = Some(capstan_core::k8s_openapi::api::core::v1::ServiceStatus {
            load_balancer: Some(web.status.clone()),
            ..Default::default()
        });
        services[1].status = None;
        assert_eq!(changes(&services, &plan, address, &listening), vec![]);

        let failed = HashMap::from([(81, "Address already in use (os error 98)".to_owned())]);
        let found = problems(&plan, &failed);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message(address),
            "Error syncing load balancer: failed to ensure load balancer: port 81 on 127.0.0.1: Address already in use (os error 98)"
        );
    }

    #[test]
    fn other_protocols_are_refused() {
        let services = vec![svc(
            "dns",
            "2025-01-01T00:00:00Z",
            json!({"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30053}]}),
        )];
        let all = backends(&services, &[]);
        let plan = plan(&services, &all, &node_ports(&all));
        assert!(plan.ports.is_empty());
        assert_eq!(
            problems(&plan, &HashMap::new())[0].reason,
            "protocol UDP is not supported"
        );
    }
}
