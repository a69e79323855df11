//! Service address allocation, as the apiserver's service REST storage does it: a cluster IP
//! from the service range for every Service that is not headless or ExternalName, and a node
//! port for each port of a NodePort or LoadBalancer Service; both refused when taken.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use capstan_core::validate::FieldError;
use serde_json::Value;

use super::error::ApiError;
use super::registry::{Api, ListOptions};
use super::resources::{ResourceInfo, find};

/// The service IP range: 10.96.0.0/16 (Kubernetes' default is 10.96.0.0/12; a /16 holds more
/// Services than one machine runs). `.0` is the network, `.1` is kept for the API itself.
pub const SERVICE_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);
const SERVICE_HOSTS: u32 = 1 << 16;

/// The node port range, Kubernetes' default.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// What is already allocated.
#[derive(Default)]
pub struct Allocated {
    pub ips: HashSet<Ipv4Addr>,
    pub node_ports: HashSet<i64>,
}

impl Allocated {
    fn from_services(services: &[Value]) -> Self {
        let mut a = Allocated::default();
        for svc in services {
            if let Some(ip) = svc["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok()) {
                a.ips.insert(ip);
            }
            for port in svc["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(n) = port["nodePort"].as_i64() {
                    a.node_ports.insert(n);
                }
            }
        }
        a
    }
}

fn in_range(ip: Ipv4Addr) -> bool {
    let (net, ip) = (u32::from(SERVICE_NETWORK), u32::from(ip));
    ip > net + 1 && ip < net + SERVICE_HOSTS - 1
}

/// Fills `spec.clusterIP`/`clusterIPs` and node ports of a Service being created, or names
/// the field that asks for a taken or invalid one. Pure: `taken` is the cluster's state.
pub fn allocate(service: &mut Value, taken: &Allocated) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP").to_owned();
    if kind != "ExternalName" {
        match service["spec"]["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            Some("None") => {
                service["spec"]["clusterIPs"] = Value::from(vec!["None"]);
            }
            Some(requested) => match requested.parse::<Ipv4Addr>() {
                Ok(ip) if !in_range(ip) => errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    requested,
                    &format!("failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {SERVICE_NETWORK}/16"),
                )),
                Ok(ip) if taken.ips.contains(&ip) => errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    requested,
                    &format!("failed to allocate IP {requested}: provided IP is already allocated"),
                )),
                Ok(_) => service["spec"]["clusterIPs"] = Value::from(vec![requested.to_owned()]),
                Err(_) => errs.push(FieldError::invalid("spec.clusterIPs", requested, "must be a valid IP address")),
            },
            None => {
                let base = u32::from(SERVICE_NETWORK);
                match (2..SERVICE_HOSTS - 1).map(|n| Ipv4Addr::from(base + n)).find(|ip| !taken.ips.contains(ip)) {
                    Some(ip) => {
                        service["spec"]["clusterIP"] = Value::from(ip.to_string());
                        service["spec"]["clusterIPs"] = Value::from(vec![ip.to_string()]);
                    }
                    None => errs.push(FieldError::new("spec.clusterIPs", "Internal error: range is full")),
                }
            }
        }
        service["spec"]["ipFamilies"] = Value::from(vec!["IPv4"]);
        service["spec"]["ipFamilyPolicy"] = Value::from("SingleStack");
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        let mut used = taken.node_ports.clone();
        for (i, port) in service["spec"]["ports"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            match port["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(n) if !NODE_PORTS.contains(&n) => errs.push(FieldError::invalid_number(
                    format!("spec.ports[{i}].nodePort"),
                    n,
                    &format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ),
                )),
                Some(n) if !used.insert(n) => errs.push(FieldError::invalid_number(
                    format!("spec.ports[{i}].nodePort"),
                    n,
                    "provided port is already allocated",
                )),
                Some(_) => {}
                None => match NODE_PORTS.clone().find(|n| !used.contains(n)) {
                    Some(n) => {
                        used.insert(n);
                        port["nodePort"] = Value::from(n);
                    }
                    None => errs.push(FieldError::new(
                        format!("spec.ports[{i}].nodePort"),
                        "Internal error: range is full",
                    )),
                },
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

impl Api {
    /// Allocates a new Service's cluster IP and node ports (under the allocation lock, so two
    /// creates never get the same address).
    pub(crate) fn allocate_service(&self, info: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
        let services = find("", "v1", "services").expect("services are served");
        let (all, _) = self.list_items(services, None, &ListOptions::default())?;
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        allocate(object, &Allocated::from_services(&all)).map_err(|causes| ApiError::invalid(info, &name, causes))
    }
}

/// The fields the allocator fills for a Service that needs a cluster IP.
const IP_FIELDS: [&str; 4] = ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"];

/// Every type but ExternalName has a cluster IP (or `None`).
fn needs_cluster_ip(svc: &Value) -> bool {
    svc["spec"]["type"].as_str() != Some("ExternalName")
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(svc["spec"]["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

/// On update, a Service keeps its allocated addresses when the new spec leaves them out (as
/// `kubectl apply` does) and its type still needs them (the apiserver's
/// `patchAllocatedValues`); a type that no longer needs them drops those the client left as
/// they were (`dropTypeDependentFields`), so a Service can become an ExternalName alias.
pub fn keep_addresses(new: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        for field in IP_FIELDS {
            if new["spec"].get(field) == old["spec"].get(field)
                && let Some(spec) = new["spec"].as_object_mut()
            {
                spec.remove(field);
            }
        }
    }
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    if needs_node_ports(old) && !needs_node_ports(new) {
        let node_port = |p: &Value| p.get("nodePort").cloned();
        let new_ports = new["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let same = new_ports.iter().all(|n| {
            let before = old_ports.iter().find(|o| o["port"] == n["port"]);
            node_port(n).is_none_or(|p| before.and_then(node_port) == Some(p))
        });
        for port in new["spec"]["ports"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter(|_| same)
        {
            if let Some(p) = port.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if !needs_cluster_ip(new) {
        return;
    }
    for field in IP_FIELDS {
        if new["spec"].get(field).is_none_or(Value::is_null) && old["spec"].get(field).is_some() {
            new["spec"][field] = old["spec"][field].clone();
        }
    }
    if !needs_node_ports(new) {
        return;
    }
    for port in new["spec"]["ports"].as_array_mut().into_iter().flatten() {
        if port.get("nodePort").is_none_or(Value::is_null)
            && let Some(n) = old_ports
                .iter()
                .find(|p| p["port"] == port["port"])
                .and_then(|p| p.get("nodePort"))
        {
            port["nodePort"] = n.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cluster_ips_and_node_ports_are_allocated_once() {
        let mut taken = Allocated::default();
        let mut a = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]}});
        allocate(&mut a, &taken).unwrap();
        assert_eq!(a["spec"]["clusterIP"], "10.96.0.2");
        assert_eq!(a["spec"]["ports"][0]["nodePort"], 30000);
        taken = Allocated::from_services(&[a]);
        let mut b = json!({"spec": {"ports": [{"port": 80}]}});
        allocate(&mut b, &taken).unwrap();
        assert_eq!(b["spec"]["clusterIP"], "10.96.0.3");
        assert!(b["spec"]["ports"][0].get("nodePort").is_none());

        let mut clash =
            json!({"spec": {"clusterIP": "10.96.0.2", "type": "NodePort", "ports": [{"port": 1, "nodePort": 30001}]}});
        let errs = allocate(&mut clash, &taken).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].to_string().contains("provided IP is already allocated"));
        assert!(errs[1].to_string().contains("spec.ports[0].nodePort"));

        let mut outside = json!({"spec": {"clusterIP": "192.168.0.1"}});
        assert!(
            allocate(&mut outside, &taken).unwrap_err()[0]
                .to_string()
                .contains("not in the valid range")
        );
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        allocate(&mut headless, &taken).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        allocate(&mut external, &taken).unwrap();
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn updates_keep_allocated_addresses() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ports": [{"port": 80, "nodePort": 30100}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        keep_addresses(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30100);
    }

    #[test]
    fn a_type_that_no_longer_needs_addresses_drops_the_allocated_ones() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80, "nodePort": 30100}]}});
        // As `kubectl apply` sends it: the live fields left in place, the type changed.
        let mut alias = old.clone();
        alias["spec"]["type"] = json!("ExternalName");
        alias["spec"]["externalName"] = json!("example.com");
        keep_addresses(&mut alias, &old);
        assert_eq!(
            alias["spec"],
            json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]})
        );
        // A PUT without them gets none back; one of type ClusterIP gets the IP back.
        let mut put = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        keep_addresses(&mut put, &old);
        assert!(put["spec"].get("clusterIP").is_none(), "{put}");
        let mut put = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        keep_addresses(&mut put, &old);
        assert_eq!(put["spec"]["clusterIP"], "10.96.0.9");

        // ClusterIP keeps its IP but not node ports; one the client changed stays (to be refused).
        let mut plain = old.clone();
        plain["spec"]["type"] = json!("ClusterIP");
        keep_addresses(&mut plain, &old);
        assert_eq!(
            (
                plain["spec"]["clusterIP"].as_str(),
                plain["spec"]["ports"][0].get("nodePort")
            ),
            (Some("10.96.0.9"), None)
        );
        let mut changed = plain.clone();
        changed["spec"]["ports"][0]["nodePort"] = json!(30200);
        keep_addresses(&mut changed, &old);
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 30200);
    }
}
