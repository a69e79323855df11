//! The EndpointSlice controller's core (`pkg/controller/endpointslice` and its reconciler in
//! `k8s.io/endpointslice`): every Service with a selector gets EndpointSlices listing the pods
//! it selects — labelled [`SERVICE_NAME_LABEL`] and [`MANAGED_BY_LABEL`], owned by the Service
//! (so deleting the Service takes them), at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints each, one
//! group of slices per address type and per distinct set of ports (a named target port can
//! resolve to different numbers on different pods).
//!
//! Which pods count, their ports, hostname and reference are read as the Endpoints core reads
//! them ([`super::endpoints`]). Unlike Endpoints, terminating pods stay listed, with
//! `conditions.terminating` (and `ready: false`), so a proxy can tell draining pods apart.
//!
//! The plan follows kube's reconciler to keep writes few: existing slices keep the endpoints
//! still wanted, slices being written anyway are filled first, then an unchanged slice that
//! the rest fits in, then new slices; a slice left empty is deleted, or reused by name for one
//! that would be created; a Service selecting nothing keeps one empty placeholder slice.
//!
//! Left out: topology (`zone` from the node's labels, hints), the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation, and skipping pods bound to a
//! node that does not exist. Kube orders a slice's ports by a hash of each; here they are
//! ordered by (name, port, protocol, appProtocol), and new endpoints by pod, so a sync is
//! deterministic.

use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
use capstan_core::k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::endpoints::{
    HEADLESS_LABEL, belongs_in_endpoints, find_port, hostname, ip_set, is_ipv6, managed_selector, pod_ips,
    pod_reference, protocol, selects,
};
use super::pods::{being_deleted, controller_ref, is_ready};

/// At most this many endpoints go into one slice (kube-controller-manager's default
/// `--max-endpoints-per-slice`): small enough that one pod's change rewrites little.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The label naming the Service a slice belongs to; clients list a Service's slices by it.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The label naming who manages a slice; this controller touches only slices with its name.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// This controller's name, the value of [`MANAGED_BY_LABEL`] on its slices.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

/// What the EndpointSlice controller sees for one Service.
pub struct Snapshot<'a> {
    pub service: &'a Service,
    /// Pods of the Service's namespace; the core picks those its selector matches.
    pub pods: &'a [Pod],
    /// The slices labelled as this controller's for the Service's name, whoever owns them.
    pub slices: &'a [EndpointSlice],
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Create this slice; the API names it from its `generateName`.
    Create(EndpointSlice),
    /// Replace the `endpoints`, `ports` and `metadata.labels` of the stored slice named (and
    /// with the uid) in this one's metadata; everything else stays as stored.
    Update(EndpointSlice),
    /// Delete this slice (if it still has this uid); NotFound is success.
    Delete { name: String, uid: Option<String> },
}

/// One sync of a Service (kube's `syncService` once the Service is found). A Service without
/// a selector, or of type ExternalName, gets nothing, and the slices it has are left alone.
pub fn reconcile(s: &Snapshot) -> Vec<Effect> {
    let (Some(selector), Some(spec)) = (managed_selector(s.service), s.service.spec.as_ref()) else {
        return Vec::new();
    };
    let namespace = s.service.metadata.namespace.as_deref();
    let pods: Vec<&Pod> = s
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == namespace && selects(selector, p.metadata.labels.as_ref()))
        .collect();
    // Slices already being deleted are no one's to change.
    let live: Vec<&EndpointSlice> = s.slices.iter().filter(|e| !being_deleted(&e.metadata)).collect();
    let types = address_types(spec);
    let mut plan = Plan::default();
    for slice in live.iter().filter(|e| !types.contains(&e.address_type.as_str())) {
        plan.delete.push((*slice).clone());
    }
    for address_type in types {
        let existing: Vec<&EndpointSlice> = live
            .iter()
            .copied()
            .filter(|e| e.address_type == address_type)
            .collect();
        by_address_type(s.service, spec, &pods, &existing, address_type, &mut plan);
    }
    plan.finalize(s.service)
}

fn delete(slice: &EndpointSlice) -> Effect {
    Effect::Delete {
        name: slice.metadata.name.clone().unwrap_or_default(),
        uid: slice.metadata.uid.clone(),
    }
}

/// The slices to create, update and delete, before [`Plan::finalize`] turns them into effects.
#[derive(Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
}

impl Plan {
    /// kube's `finalize`: a slice that would be created takes the name of one that would be
    /// deleted (same address type, owned by this Service), so a changed set of ports or pods
    /// rewrites a slice instead of replacing it; nothing is created for a Service being
    /// deleted. Creates come first, so no moment lists fewer endpoints than before or after.
    fn finalize(mut self, service: &Service) -> Vec<Effect> {
        let mut i = 0;
        while i < self.delete.len() && !self.create.is_empty() {
            let doomed = &self.delete[i];
            let last = self.create.len() - 1;
            if doomed.address_type == self.create[last].address_type && owned_by(doomed, service) {
                let doomed = self.delete.remove(i);
                let mut reused = self.create.remove(last);
                reused.metadata.name = doomed.metadata.name;
                reused.metadata.uid = doomed.metadata.uid;
                reused.metadata.generate_name = None;
                self.update.push(reused);
            } else {
                i += 1;
            }
        }
        if being_deleted(&service.metadata) {
            self.create.clear();
        }
        let creates = self.create.into_iter().map(Effect::Create);
        let updates = self.update.into_iter().map(Effect::Update);
        creates.chain(updates).chain(self.delete.iter().map(delete)).collect()
    }
}

/// kube's `getAddressTypesForService`: the Service's IP families; without them, the family of
/// its cluster IP; a headless Service without families gets both.
fn address_types(spec: &ServiceSpec) -> Vec<&'static str> {
    let mut types: Vec<&'static str> = Vec::new();
    for family in spec.ip_families.iter().flatten() {
        let t = match family.as_str() {
            "IPv4" => "IPv4",
            "IPv6" => "IPv6",
            _ => continue,
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if !types.is_empty() {
        return types;
    }
    if ip_set(spec) {
        return vec![if spec.cluster_ip.as_deref().is_some_and(is_ipv6) {
            "IPv6"
        } else {
            "IPv4"
        }];
    }
    vec!["IPv4", "IPv6"]
}

/// A set of ports, as kube's `PortMapKey` tells sets apart (order does not matter; an unset
/// name is "" and an unset protocol TCP, as the API defaults them).
type PortsKey = Vec<(String, Option<i32>, String, Option<String>)>;

fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut key: PortsKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                protocol(&p.protocol).to_owned(),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

/// What tells endpoints apart (kube's `endpointHashObj`): addresses, hostname and the pod's
/// namespace and name. The other fields are compared by [`same_beyond_key`].
type EndpointKey = (Vec<String>, String, String, String);

fn endpoint_key(e: &Endpoint) -> EndpointKey {
    let mut addresses = e.addresses.clone();
    addresses.sort();
    let reference = e.target_ref.as_ref();
    (
        addresses,
        e.hostname.clone().unwrap_or_default(),
        reference.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        reference.and_then(|r| r.name.clone()).unwrap_or_default(),
    )
}

/// kube's `EndpointsEqualBeyondHash`.
fn same_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    a.node_name == b.node_name
        && a.zone == b.zone
        && a.conditions == b.conditions
        && a.hints == b.hints
        && a.target_ref == b.target_ref
}

/// The endpoints one set of ports should list, and those ports.
struct Group {
    ports: Vec<EndpointPort>,
    endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// kube's `getEndpointPorts`: each Service port the pod offers, with its target port resolved
/// on this pod, ordered as [`PortsKey`] orders them.
fn endpoint_ports(spec: &ServiceSpec, pod: &Pod) -> Vec<EndpointPort> {
    let mut ports: Vec<EndpointPort> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(find_port(pod, sp)?),
                protocol: Some(protocol(&sp.protocol).to_owned()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    ports.sort_by_key(|p| ports_key(std::slice::from_ref(p)));
    ports
}

/// kube's `podToEndpoint`: serving is the pod's readiness; ready also requires it not to be
/// terminating, unless the Service publishes not-ready addresses.
fn endpoint(service: &Service, spec: &ServiceSpec, pod: &Pod, address_type: &str) -> Endpoint {
    let serving = is_ready(pod);
    let terminating = being_deleted(&pod.metadata);
    let ready = spec.publish_not_ready_addresses == Some(true) || (serving && !terminating);
    let want_v6 = address_type == "IPv6";
    Endpoint {
        addresses: pod_ips(pod)
            .into_iter()
            .filter(|ip| is_ipv6(ip) == want_v6)
            .map(str::to_owned)
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: hostname(service, pod),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    }
}

/// The wanted endpoints of one address type, grouped by their ports.
fn desired(service: &Service, spec: &ServiceSpec, pods: &[&Pod], address_type: &str) -> BTreeMap<PortsKey, Group> {
    let mut groups: BTreeMap<PortsKey, Group> = BTreeMap::new();
    for pod in pods.iter().filter(|p| belongs_in_endpoints(p, true)) {
        let ep = endpoint(service, spec, pod, address_type);
        if ep.addresses.is_empty() {
            continue;
        }
        let ports = endpoint_ports(spec, pod);
        let group = groups.entry(ports_key(&ports)).or_insert_with(|| Group {
            ports,
            endpoints: BTreeMap::new(),
        });
        group.endpoints.insert(endpoint_key(&ep), ep);
    }
    groups
}

/// kube's `reconcileByAddressType`: slices not owned by this Service go; each group of
/// wanted endpoints is reconciled against the owned slices of its ports; slices of ports no
/// longer wanted go; and a Service selecting nothing keeps one placeholder.
fn by_address_type(
    service: &Service,
    spec: &ServiceSpec,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    address_type: &'static str,
    plan: &mut Plan,
) {
    let (deleted_before, created_before) = (plan.delete.len(), plan.create.len());
    let mut owned: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, service) {
            let key = ports_key(slice.ports.as_deref().unwrap_or_default());
            owned.entry(key).or_default().push(slice);
        } else {
            plan.delete.push((*slice).clone());
        }
    }
    for (key, group) in desired(service, spec, pods, address_type) {
        let slices = owned.remove(&key).unwrap_or_default();
        by_ports(service, &slices, group, address_type, plan);
    }
    plan.delete.extend(owned.into_values().flatten().cloned());

    let deleted = plan.delete.len() - deleted_before;
    if deleted == existing.len() && plan.create.len() == created_before {
        let placeholder = new_slice(service, Vec::new(), address_type);
        if deleted == 1 && is_placeholder(&plan.delete[deleted_before], &placeholder) {
            plan.delete.truncate(deleted_before);
        } else {
            plan.create.push(placeholder);
        }
    }
}

/// Whether `slice` is the same placeholder as `placeholder` (kube's `placeholderSliceCompare`:
/// namespace, labels, owners, address type, no endpoints and no ports).
fn is_placeholder(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    let empty = |l: &Option<Vec<EndpointPort>>| l.as_ref().is_none_or(Vec::is_empty);
    slice.metadata.namespace == placeholder.metadata.namespace
        && slice.metadata.labels.clone().unwrap_or_default() == placeholder.metadata.labels.clone().unwrap_or_default()
        && slice.metadata.owner_references.clone().unwrap_or_default()
            == placeholder.metadata.owner_references.clone().unwrap_or_default()
        && slice.address_type == placeholder.address_type
        && slice.endpoints.is_empty()
        && empty(&slice.ports)
}

/// kube's `reconcileByPortMapping`, for the owned slices of one set of ports.
fn by_ports(service: &Service, existing: &[&EndpointSlice], group: Group, address_type: &str, plan: &mut Plan) {
    let mut wanted = group.endpoints;
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<EndpointSlice> = Vec::new();

    // 1. Keep what is still wanted (as it is wanted now) in the slice it is in.
    for slice in existing {
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &slice.endpoints {
            if let Some(want) = wanted.remove(&endpoint_key(ep)) {
                changed |= !same_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(slice.metadata.labels.as_ref(), service);
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                plan.delete.push((*slice).clone());
            } else {
                let mut next = (*slice).clone();
                next.endpoints = kept;
                next.metadata.labels = Some(labels);
                to_update.push(next);
            }
        } else if labels_changed {
            let mut next = (*slice).clone();
            next.metadata.labels = Some(labels);
            to_update.push(next);
        } else {
            unchanged.push((*slice).clone());
        }
    }

    // 2. Fill the slices being written anyway, the fullest first.
    to_update.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for slice in &mut to_update {
        fill(slice, &mut wanted);
    }

    // 3. The rest: into the unchanged slice it fills best, else into new slices.
    while !wanted.is_empty() {
        let fit = if wanted.len() < MAX_ENDPOINTS_PER_SLICE {
            slice_to_fill(&unchanged, wanted.len())
        } else {
            None
        };
        match fit {
            Some(i) => {
                let mut slice = unchanged.remove(i);
                fill(&mut slice, &mut wanted);
                to_update.push(slice);
            }
            None => {
                let mut slice = new_slice(service, group.ports.clone(), address_type);
                fill(&mut slice, &mut wanted);
                plan.create.push(slice);
            }
        }
    }
    plan.update.extend(to_update);
}

/// Moves wanted endpoints into `slice` until it is full.
fn fill(slice: &mut EndpointSlice, wanted: &mut BTreeMap<EndpointKey, Endpoint>) {
    while slice.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
        let Some((_, ep)) = wanted.pop_first() else { break };
        slice.endpoints.push(ep);
    }
}

/// kube's `getSliceToFill`: the slice that `count` more endpoints leave closest to full.
fn slice_to_fill(slices: &[EndpointSlice], count: usize) -> Option<usize> {
    slices
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            MAX_ENDPOINTS_PER_SLICE
                .checked_sub(s.endpoints.len() + count)
                .map(|room| (room, i))
        })
        .min()
        .map(|(_, i)| i)
}

/// kube's `ownedBy`: an owner reference to this very Service (by uid).
fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|o| {
        Some(o.uid.as_str()) == service.metadata.uid.as_deref() && o.kind == "Service" && o.api_version == "v1"
    })
}

/// Labels of no Service's choosing on a slice: the controller sets them.
fn reserved(label: &str) -> bool {
    label == SERVICE_NAME_LABEL || label == MANAGED_BY_LABEL || label == HEADLESS_LABEL
}

/// kube's `setEndpointSliceLabels`: the Service's labels (but the reserved ones), the headless
/// mark when the Service has no cluster IP, and the labels tying the slice to the Service and to
/// this controller; and whether the slice's own unreserved labels differ from the Service's.
fn slice_labels(current: Option<&BTreeMap<String, String>>, service: &Service) -> (BTreeMap<String, String>, bool) {
    let unreserved = |labels: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        labels
            .into_iter()
            .flatten()
            .filter(|(k, _)| !reserved(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = unreserved(service.metadata.labels.as_ref());
    let changed = unreserved(current) != labels;
    if !service.spec.as_ref().is_some_and(ip_set) {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    labels.insert(
        SERVICE_NAME_LABEL.to_owned(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned());
    (labels, changed)
}

/// kube's `newEndpointSlice`: named by the API from `<service>-`, owned by the Service.
fn new_slice(service: &Service, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    let (labels, _) = slice_labels(None, service);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", service.metadata.name.as_deref().unwrap_or_default())),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref("v1", "Service", &service.metadata)]),
            ..Default::default()
        },
        address_type: address_type.to_owned(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

#[cfg(test)]
#[path = "endpoint_slices_tests.rs"]
mod tests;
