//! The Endpoints controller's core (`pkg/controller/endpoint/endpoints_controller.go`): every
//! Service with a selector gets an Endpoints object of the same name listing the IPs and target
//! ports of the pods it selects, ready ones in `addresses` and the others in
//! `notReadyAddresses`, packed into subsets the way kube's `RepackSubsets` does.
//!
//! Left to the shell: deleting the Endpoints when its Service is gone ([`Effect::Delete`]; kube
//! deletes the Endpoints of the same name whoever wrote it), and the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation (it needs the time pods and
//! services changed, which no snapshot holds; the annotation is optional).

use std::collections::BTreeMap;
use std::net::IpAddr;

use capstan_core::k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort, ServiceSpec,
};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pods::{being_deleted, is_ready, phase};

/// At most this many addresses (ready and not) go into one Endpoints object (kube's
/// `maxCapacity`); beyond it the object is truncated and annotated with
/// [`OVER_CAPACITY_ANNOTATION`], since EndpointSlices are the API that scales.
pub const MAX_CAPACITY: usize = 1000;

/// Set to `truncated` on an Endpoints object holding fewer addresses than its Service selects.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The label kube puts on the Endpoints of a headless Service (clusterIP `None`), value "".
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// What the Endpoints controller sees for one Service.
pub struct Snapshot<'a> {
    pub service: &'a Service,
    /// All pods in the Service's namespace; the core picks those its selector matches.
    pub pods: &'a [Pod],
    /// The stored Endpoints of the Service's name, if any.
    pub current: Option<&'a Endpoints>,
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Create this Endpoints object (if it exists by now, update it as [`Effect::Update`]).
    Create(Endpoints),
    /// Replace the stored object's `subsets`, `metadata.labels` and the
    /// [`OVER_CAPACITY_ANNOTATION`] (present or absent) with this object's; everything else
    /// stays as stored.
    Update(Endpoints),
    /// Delete the Endpoints of this name (its Service is gone); NotFound is success.
    Delete { name: String },
}

/// One sync of a Service (kube's `syncService` once the Service is found): create the Endpoints
/// if absent, update it if its subsets, labels or capacity annotation differ from what the pods
/// say, otherwise nothing.
pub fn reconcile(s: &Snapshot) -> Vec<Effect> {
    let Some(desired) = desired(s.service, s.pods) else {
        return Vec::new();
    };
    match s.current {
        None => vec![Effect::Create(desired)],
        Some(current) if up_to_date(current, &desired) => Vec::new(),
        Some(_) => vec![Effect::Update(desired)],
    }
}

/// The selector whose pods this controller publishes for `service`; `None` when it leaves the
/// Service alone: no selector (its Endpoints are written by hand; an empty selector is stored
/// as none), or type ExternalName (kubernetes#105986).
pub fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// A Service selector (a plain map) matches when every pair is among the labels.
pub fn selects(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The Endpoints object `service` should have, or `None` if the controller leaves it alone.
pub fn desired(service: &Service, pods: &[Pod]) -> Option<Endpoints> {
    let selector = managed_selector(service)?;
    let spec = service.spec.as_ref()?;
    let namespace = service.metadata.namespace.as_deref();
    let selected = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == namespace && selects(selector, p.metadata.labels.as_ref()));
    let mut subsets = repack(entries(service, spec, selected));
    let truncated = truncate(&mut subsets);

    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if ip_set(spec) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    let annotations =
        truncated.then(|| BTreeMap::from([(OVER_CAPACITY_ANNOTATION.to_owned(), "truncated".to_owned())]));
    Some(Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations,
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

/// `helper.IsServiceIPSet`: a cluster IP that is neither empty nor `None`.
pub(super) fn ip_set(spec: &ServiceSpec) -> bool {
    spec.cluster_ip
        .as_deref()
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// One address offering one port (or, for a headless Service without ports, no port), as
/// kube's `addEndpointSubset` appends them before repacking.
struct Entry {
    address: EndpointAddress,
    ready: bool,
    port: Option<EndpointPort>,
}

/// The per-pod, per-port entries of the selected pods.
fn entries<'a>(service: &Service, spec: &ServiceSpec, pods: impl Iterator<Item = &'a Pod>) -> Vec<Entry> {
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut out = Vec::new();
    for pod in pods.filter(|p| belongs_in_endpoints(p, publish_not_ready)) {
        let Some(address) = address(service, spec, pod) else {
            continue;
        };
        let ready = publish_not_ready || is_ready(pod);
        if ports.is_empty() {
            // Only a headless Service may do without ports: its addresses are DNS records.
            if headless {
                out.push(Entry {
                    address,
                    ready,
                    port: None,
                });
            }
            continue;
        }
        for service_port in ports {
            if let Some(number) = find_port(pod, service_port) {
                out.push(Entry {
                    address: address.clone(),
                    ready,
                    port: Some(endpoint_port(service_port, number)),
                });
            }
        }
    }
    out
}

/// endpointslice's `ShouldPodBeInEndpoints`: not terminal (Succeeded/Failed), has an IP, and not
/// terminating unless the Service publishes not-ready addresses (then a terminating pod stays,
/// in `addresses`).
pub(super) fn belongs_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let has_ip = pod.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty()) || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    !matches!(phase(pod), "Succeeded" | "Failed") && has_ip && (include_terminating || !being_deleted(&pod.metadata))
}

/// kube's `podToEndpointAddressForService`: the pod's IP of the Service's (first) IP family.
/// The family is `ipFamilies[0]`, else that of the cluster IP, else (headless) that of the pod's
/// primary IP. A pod with no IP of that family is left out (a dual-stack upgrade in progress).
fn address(service: &Service, spec: &ServiceSpec, pod: &Pod) -> Option<EndpointAddress> {
    let status = pod.status.as_ref()?;
    let want_v6 = match spec.ip_families.as_ref().and_then(|f| f.first()) {
        Some(family) => family == "IPv6",
        None if ip_set(spec) => spec.cluster_ip.as_deref().is_some_and(is_ipv6),
        None => status.pod_ip.as_deref().is_some_and(is_ipv6),
    };
    let ip = pod_ips(pod).into_iter().find(|ip| is_ipv6(ip) == want_v6)?;
    Some(EndpointAddress {
        ip: ip.to_owned(),
        hostname: hostname(service, pod),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(pod_reference(pod)),
    })
}

/// The pod's IPs: `podIPs` is authoritative; `podIP` (its first entry) stands in when a writer
/// set only it.
pub(super) fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = status.pod_ips.iter().flatten().map(|p| p.ip.as_str()).collect();
    if listed.is_empty() {
        status.pod_ip.as_deref().into_iter().collect()
    } else {
        listed
    }
}

/// The reference to a pod an address (or slice endpoint) carries in `targetRef`.
pub(super) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's hostname when `ShouldSetHostname` holds: the pod has a hostname and names this
/// Service (of its namespace) as its subdomain.
pub(super) fn hostname(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let names_service = spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace;
    spec.hostname.clone().filter(|h| !h.is_empty() && names_service)
}

/// Go's `utilnet.IsIPv6String`: an IP that is not IPv4 (nor IPv4-mapped IPv6).
pub(super) fn is_ipv6(ip: &str) -> bool {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_none(),
        _ => false,
    }
}

/// `podutil.FindPort`: a numeric target port as is (none: the Service port, as the API
/// defaults it); a named one looked up among the pod's container ports, then its sidecars'
/// (init containers with restartPolicy Always), of the Service port's protocol.
pub(super) fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    let name = match &service_port.target_port {
        None => return Some(service_port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(name)) => name,
    };
    let wanted = protocol(&service_port.protocol);
    let spec = pod.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_ref() == Some(name) && protocol(&p.protocol) == wanted)
        .map(|p| p.container_port)
}

/// A port's protocol, `TCP` when unset (the API's default).
pub(super) fn protocol(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("TCP")
}

/// `endpointPortFromServicePort`: the Service port's name, protocol and appProtocol with the
/// resolved target port.
fn endpoint_port(service_port: &ServicePort, number: i32) -> EndpointPort {
    EndpointPort {
        name: service_port.name.clone().filter(|n| !n.is_empty()),
        port: number,
        protocol: Some(protocol(&service_port.protocol).to_owned()),
        app_protocol: service_port.app_protocol.clone(),
    }
}

/// Addresses are told apart by IP and target uid (two pods may share an IP, e.g. host network).
type AddressKey = (String, String);

fn address_key(a: &EndpointAddress) -> AddressKey {
    let uid = a.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default();
    (a.ip.clone(), uid)
}

/// A port's identity, ordered; `None` stands for "no port" (a headless Service without ports).
type PortKey = Option<(Option<String>, i32, Option<String>, Option<String>)>;

fn port_key(p: &Option<EndpointPort>) -> PortKey {
    p.as_ref()
        .map(|p| (p.name.clone(), p.port, p.protocol.clone(), p.app_protocol.clone()))
}

/// kube's `RepackSubsets`: map each port to the set of addresses offering it (an address not
/// ready for a port on any entry is not ready for it), then put the ports whose address sets
/// are identical into one subset. Kube orders ports and subsets by hashes of Go values; here
/// addresses are ordered by IP (bytewise, as `LessEndpointAddress`) then uid, ports by
/// (name, port, protocol, appProtocol), subsets by their ports: deterministic, so an unchanged
/// state compares equal.
fn repack(entries: Vec<Entry>) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, (Option<EndpointPort>, BTreeMap<AddressKey, bool>)> = BTreeMap::new();
    for entry in entries {
        let key = address_key(&entry.address);
        addresses.entry(key.clone()).or_insert(entry.address);
        let (_, set) = by_port
            .entry(port_key(&entry.port))
            .or_insert_with(|| (entry.port, BTreeMap::new()));
        let slot = set.entry(key).or_insert(entry.ready);
        *slot &= entry.ready;
    }

    let mut by_addresses: BTreeMap<Vec<(AddressKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (port, set) in by_port.into_values() {
        let ports = by_addresses.entry(set.into_iter().collect()).or_default();
        ports.extend(port);
    }

    let mut subsets: Vec<(Vec<PortKey>, EndpointSubset)> = by_addresses
        .into_iter()
        .map(|(set, ports)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = set.into_iter().partition(|(_, ready)| *ready);
            let pick = |list: Vec<(AddressKey, bool)>| {
                let list: Vec<EndpointAddress> = list
                    .into_iter()
                    .filter_map(|(k, _)| addresses.get(&k).cloned())
                    .collect();
                (!list.is_empty()).then_some(list)
            };
            let order = ports.iter().map(|p| port_key(&Some(p.clone()))).collect();
            let subset = EndpointSubset {
                addresses: pick(ready),
                not_ready_addresses: pick(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            };
            (order, subset)
        })
        .collect();
    subsets.sort_by(|a, b| a.0.cmp(&b.0));
    subsets.into_iter().map(|(_, s)| s).collect()
}

/// kube's `truncateEndpoints`: over [`MAX_CAPACITY`] addresses, keep each subset's share of the
/// capacity (rounded up, the last subsets getting what is left), ready addresses first: if the
/// ready ones alone exceed it, they are cut and every not-ready one dropped; otherwise only
/// not-ready ones are cut. Whether anything was cut.
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |l: &Option<Vec<EndpointAddress>>| l.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if cut_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut left = max;
    for subset in subsets.iter_mut() {
        let list = if cut_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        // Kube computes the share in float64 and rounds up; the same arithmetic gives the same
        // counts.
        let share = ((count(list) as f64 / total as f64) * max as f64).ceil() as usize;
        let keep = share.min(left);
        if let Some(l) = list.as_mut() {
            l.truncate(keep);
            left -= l.len();
        }
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
    }
    true
}

/// Kube's no-op test: the stored subsets equal the wanted ones (ignoring the pods'
/// resourceVersions in target references, and empty lists versus absent ones), the labels
/// are equal, and the over-capacity annotation is present exactly when wanted. Unlike kube,
/// the truncated subsets are compared, so an over-capacity Endpoints is not rewritten on
/// every sync.
fn up_to_date(current: &Endpoints, desired: &Endpoints) -> bool {
    let over = |e: &Endpoints| {
        e.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY_ANNOTATION))
    };
    normalized(current.subsets.clone()) == desired.subsets
        && current.metadata.labels.clone().unwrap_or_default() == desired.metadata.labels.clone().unwrap_or_default()
        && over(current) == over(desired)
}

/// Subsets as this core writes them: no empty lists, no target resourceVersions.
fn normalized(subsets: Option<Vec<EndpointSubset>>) -> Option<Vec<EndpointSubset>> {
    fn non_empty<T>(v: Option<Vec<T>>) -> Option<Vec<T>> {
        v.filter(|v| !v.is_empty())
    }
    let strip = |list: Option<Vec<EndpointAddress>>| {
        non_empty(list).map(|l| {
            l.into_iter()
                .map(|mut a| {
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                    a
                })
                .collect()
        })
    };
    non_empty(subsets).map(|subsets| {
        subsets
            .into_iter()
            .map(|s| EndpointSubset {
                addresses: strip(s.addresses),
                not_ready_addresses: strip(s.not_ready_addresses),
                ports: non_empty(s.ports),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"team": "a"}},
            "spec": spec,
        }))
        .unwrap()
    }

    /// A ClusterIP Service selecting `app=web` with one port targeting `target`.
    fn web(target: Value) -> Service {
        service(json!({
            "clusterIP": "10.96.0.10",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": target}],
        }))
    }

    /// A running pod of `app=web` on node `n1`; `ip` "" means none yet.
    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "img",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if !ip.is_empty() {
            p["status"]["podIP"] = json!(ip);
            p["status"]["podIPs"] = json!([{"ip": ip}]);
        }
        p
    }

    fn pods(values: Vec<Value>) -> Vec<Pod> {
        values.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect()
    }

    /// The address of pod `name` as the controller writes it.
    fn addr(name: &str, ip: &str) -> Value {
        json!({"ip": ip, "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": format!("uid-{name}")}})
    }

    fn http(port: i32) -> Value {
        json!({"name": "http", "port": port, "protocol": "TCP"})
    }

    /// The subsets of the Endpoints a fresh sync creates (`null`: none; `"no effect"`: no
    /// Endpoints at all).
    fn created_subsets(svc: &Service, pods: &[Pod]) -> Value {
        match reconcile(&Snapshot {
            service: svc,
            pods,
            current: None,
        })
        .as_slice()
        {
            [Effect::Create(e)] => serde_json::to_value(&e.subsets).unwrap(),
            [] => json!("no effect"),
            other => panic!("unexpected effects {other:?}"),
        }
    }

    #[test]
    fn subsets_by_case() {
        let terminating = |mut p: Value| {
            p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
            p
        };
        let phase = |mut p: Value, phase: &str| {
            p["status"]["phase"] = json!(phase);
            p
        };
        let with_ports = |mut p: Value, ports: Value| {
            p["spec"]["containers"][0]["ports"] = ports;
            p
        };
        let publishing = {
            let mut s = serde_json::to_value(web(json!("http"))).unwrap();
            s["spec"]["publishNotReadyAddresses"] = json!(true);
            serde_json::from_value::<Service>(s).unwrap()
        };
        let named = web(json!("http"));
        let cases: Vec<(&str, Service, Vec<Value>, Value)> = vec![
            (
                "ready and not-ready pods share a subset",
                named.clone(),
                vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false)],
                json!([{"addresses": [addr("a", "10.0.0.1")], "notReadyAddresses": [addr("b", "10.0.0.2")], "ports": [http(8080)]}]),
            ),
            (
                "terminating and terminal pods are left out",
                named.clone(),
                vec![
                    pod("a", "10.0.0.1", true),
                    terminating(pod("b", "10.0.0.2", true)),
                    phase(pod("c", "10.0.0.3", true), "Succeeded"),
                    phase(pod("d", "10.0.0.4", false), "Failed"),
                ],
                json!([{"addresses": [addr("a", "10.0.0.1")], "ports": [http(8080)]}]),
            ),
            (
                "publishNotReadyAddresses keeps not-ready and terminating pods ready, not terminal ones",
                publishing,
                vec![
                    pod("a", "10.0.0.1", false),
                    terminating(pod("b", "10.0.0.2", true)),
                    phase(pod("c", "10.0.0.3", true), "Failed"),
                ],
                json!([{"addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")], "ports": [http(8080)]}]),
            ),
            (
                "pods without an IP are skipped",
                named.clone(),
                vec![pod("a", "", true), pod("b", "10.0.0.2", true)],
                json!([{"addresses": [addr("b", "10.0.0.2")], "ports": [http(8080)]}]),
            ),
            (
                "a named target port resolves per pod; a pod without it, or with another protocol, is left out",
                named.clone(),
                vec![
                    pod("a", "10.0.0.1", true),
                    with_ports(
                        pod("b", "10.0.0.2", true),
                        json!([{"name": "http", "containerPort": 9090}]),
                    ),
                    with_ports(
                        pod("c", "10.0.0.3", true),
                        json!([{"name": "metrics", "containerPort": 8080}]),
                    ),
                    with_ports(
                        pod("d", "10.0.0.4", true),
                        json!([{"name": "http", "containerPort": 8080, "protocol": "UDP"}]),
                    ),
                ],
                json!([
                    {"addresses": [addr("a", "10.0.0.1")], "ports": [http(8080)]},
                    {"addresses": [addr("b", "10.0.0.2")], "ports": [http(9090)]},
                ]),
            ),
            (
                "a numeric target port needs no container port; addresses sort by IP bytewise",
                web(json!(7000)),
                vec![
                    with_ports(pod("a", "10.0.0.9", true), json!([])),
                    pod("b", "10.0.0.10", true),
                ],
                json!([{"addresses": [addr("b", "10.0.0.10"), addr("a", "10.0.0.9")], "ports": [http(7000)]}]),
            ),
            (
                "pods of other labels or namespaces are not selected",
                named.clone(),
                vec![
                    {
                        let mut p = pod("a", "10.0.0.1", true);
                        p["metadata"]["labels"] = json!({"app": "db"});
                        p
                    },
                    {
                        let mut p = pod("b", "10.0.0.2", true);
                        p["metadata"]["namespace"] = json!("other");
                        p
                    },
                ],
                Value::Null,
            ),
            (
                "no pods: an Endpoints without subsets",
                named.clone(),
                vec![],
                Value::Null,
            ),
        ];
        for (name, svc, pod_values, want) in cases {
            let pods = pods(pod_values);
            assert_eq!(created_subsets(&svc, &pods), want, "{name}");
        }
    }

    #[test]
    fn ports_offered_by_different_pods_are_packed_as_kube_does() {
        // a offers http and admin, b only http: kube groups ports by the addresses offering
        // them, so http lists both and admin only a.
        let svc = service(json!({
            "clusterIP": "10.96.0.10",
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "admin", "port": 81, "targetPort": "admin"},
            ],
        }));
        let mut a = pod("a", "10.0.0.1", true);
        a["spec"]["containers"][0]["ports"] =
            json!([{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9000}]);
        let pods = pods(vec![a, pod("b", "10.0.0.2", false)]);
        assert_eq!(
            created_subsets(&svc, &pods),
            json!([
                {"addresses": [addr("a", "10.0.0.1")], "ports": [{"name": "admin", "port": 9000, "protocol": "TCP"}]},
                {"addresses": [addr("a", "10.0.0.1")], "notReadyAddresses": [addr("b", "10.0.0.2")], "ports": [http(8080)]},
            ])
        );
    }

    #[test]
    fn services_left_alone() {
        let pods = pods(vec![pod("a", "10.0.0.1", true)]);
        for (name, spec) in [
            (
                "no selector",
                json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
            ),
            (
                "empty selector",
                json!({"clusterIP": "10.96.0.10", "selector": {}, "ports": [{"port": 80}]}),
            ),
            (
                "ExternalName",
                json!({"type": "ExternalName", "externalName": "example.com", "selector": {"app": "web"}}),
            ),
        ] {
            let svc = service(spec);
            assert!(
                reconcile(&Snapshot {
                    service: &svc,
                    pods: &pods,
                    current: None
                })
                .is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn created_object_and_headless_services() {
        let one = pods(vec![pod("a", "10.0.0.1", true)]);
        let effects = reconcile(&Snapshot {
            service: &web(json!("http")),
            pods: &one,
            current: None,
        });
        let [Effect::Create(e)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(
            serde_json::to_value(&e.metadata).unwrap(),
            json!({"name": "web", "namespace": "ns", "labels": {"team": "a"}})
        );

        // Headless: labelled as such; without ports it still lists its pods (for DNS), with the
        // hostname of pods naming it as their subdomain.
        let headless = service(json!({"clusterIP": "None", "selector": {"app": "web"}}));
        let mut a = pod("a", "10.0.0.1", true);
        a["spec"]["hostname"] = json!("a-host");
        a["spec"]["subdomain"] = json!("web");
        let mut b = pod("b", "10.0.0.2", true);
        b["spec"]["hostname"] = json!("b-host");
        b["spec"]["subdomain"] = json!("other");
        let two = pods(vec![a, b]);
        let effects = reconcile(&Snapshot {
            service: &headless,
            pods: &two,
            current: None,
        });
        let [Effect::Create(e)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(
            e.metadata.labels,
            Some(BTreeMap::from([
                ("team".to_owned(), "a".to_owned()),
                (HEADLESS_LABEL.to_owned(), String::new())
            ]))
        );
        let mut a_addr = addr("a", "10.0.0.1");
        a_addr["hostname"] = json!("a-host");
        assert_eq!(
            serde_json::to_value(&e.subsets).unwrap(),
            json!([{"addresses": [a_addr, addr("b", "10.0.0.2")]}])
        );

        // A ClusterIP Service without ports publishes nothing.
        let portless = service(json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}}));
        assert_eq!(created_subsets(&portless, &one), Value::Null);
    }

    #[test]
    fn the_ip_of_the_service_family_is_used() {
        let mut p = pod("a", "10.0.0.1", true);
        p["status"]["podIPs"] = json!([{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]);
        let pods = pods(vec![p]);
        let mut v6 = serde_json::to_value(web(json!(8080))).unwrap();
        v6["spec"]["ipFamilies"] = json!(["IPv6"]);
        let v6: Service = serde_json::from_value(v6).unwrap();
        assert_eq!(created_subsets(&v6, &pods)[0]["addresses"][0]["ip"], "fd00::1");
        assert_eq!(
            created_subsets(&web(json!(8080)), &pods)[0]["addresses"][0]["ip"],
            "10.0.0.1"
        );
        assert!(!is_ipv6("::ffff:10.0.0.1"), "IPv4-mapped counts as IPv4, as in Go");
    }

    #[test]
    fn update_only_on_a_difference() {
        let svc = web(json!("http"));
        let pods = pods(vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false)]);
        let Some(wanted) = desired(&svc, &pods) else {
            panic!("a selector Service has Endpoints")
        };
        let sync = |current: &Endpoints| {
            reconcile(&Snapshot {
                service: &svc,
                pods: &pods,
                current: Some(current),
            })
        };
        assert_eq!(sync(&wanted), vec![]);

        // As stored: with a uid, annotations, and pod resourceVersions written by someone else.
        let mut stored = serde_json::to_value(&wanted).unwrap();
        stored["metadata"]["uid"] = json!("ep-uid");
        stored["metadata"]["annotations"] = json!({"endpoints.kubernetes.io/last-change-trigger-time": "x"});
        stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = json!("42");
        stored["subsets"][0]["ports"][0]["appProtocol"] = Value::Null;
        let stored: Endpoints = serde_json::from_value(stored).unwrap();
        assert_eq!(
            sync(&stored),
            vec![],
            "resourceVersions and other annotations do not count"
        );

        let mut relabelled = wanted.clone();
        relabelled.metadata.labels = None;
        assert_eq!(sync(&relabelled), vec![Effect::Update(wanted.clone())]);

        let mut stale = wanted.clone();
        stale.subsets = None;
        assert_eq!(sync(&stale), vec![Effect::Update(wanted.clone())]);

        let mut marked = wanted.clone();
        marked.metadata.annotations = Some(BTreeMap::from([(
            OVER_CAPACITY_ANNOTATION.to_owned(),
            "truncated".to_owned(),
        )]));
        assert_eq!(
            sync(&marked),
            vec![Effect::Update(wanted)],
            "a stale over-capacity mark goes"
        );
    }

    #[test]
    fn over_capacity_truncates_and_marks() {
        let svc = web(json!(8080));
        // 990 ready and 20 not ready: only not-ready addresses are cut, to the 10 that fit.
        let values = (0..1010)
            .map(|i| pod(&format!("p{i}"), &format!("10.1.{}.{}", i / 250, i % 250), i < 990))
            .collect();
        let pods = pods(values);
        let Some(e) = desired(&svc, &pods) else { panic!() };
        let subsets = e.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(990));
        assert_eq!(subsets[0].not_ready_addresses.as_ref().map(Vec::len), Some(10));
        assert_eq!(
            e.metadata
                .annotations
                .unwrap()
                .get(OVER_CAPACITY_ANNOTATION)
                .map(String::as_str),
            Some("truncated")
        );

        // More ready addresses than fit: they are cut, and every not-ready one dropped.
        let mut too_many = vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress::default(); 1500]),
            not_ready_addresses: Some(vec![EndpointAddress::default(); 5]),
            ports: None,
        }];
        assert!(truncate(&mut too_many));
        assert_eq!(too_many[0].addresses.as_ref().map(Vec::len), Some(MAX_CAPACITY));
        assert_eq!(too_many[0].not_ready_addresses, None);
    }
}
