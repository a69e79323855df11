//! LimitRange admission for Pods, as kube-apiserver's LimitRanger plugin does it
//! (`plugin/pkg/admission/limitranger/admission.go`), plus the LimitRange object's own defaulting
//! (`SetDefaults_LimitRangeItem`) and validation (`ValidateLimitRange`).
//!
//! LimitRanger runs in two phases on a pod create: *mutate* fills each container's missing limits
//! from `default` and missing requests from `defaultRequest` of every `type: Container` item (and
//! records what it did in the `kubernetes.io/limit-ranger` annotation); *validate* then checks each
//! container against the `Container` items and the pod's sums against the `Pod` items. The pod is
//! rejected with the violations of the first LimitRange that fails, in LimitRanger's exact words,
//! because users search for them. Pod updates are not subject to LimitRanger (their containers'
//! resources are immutable), so [`admit_pod`] is for creates only.

use std::collections::{BTreeMap, BTreeSet};

use capstan_core::k8s_openapi::api::core::v1::{Container, LimitRange, LimitRangeItem, Pod, PodSpec};
use capstan_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use capstan_core::names;
use capstan_core::quantity::{self, Quantity};
use capstan_core::validate::FieldError;

/// The annotation in which LimitRanger lists the defaults it applied to a pod.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

const TYPE_POD: &str = "Pod";
const TYPE_CONTAINER: &str = "Container";
const TYPE_PVC: &str = "PersistentVolumeClaim";

/// apimachinery's `MaxMilliValue`: above it milli-units overflow an int64, so LimitRanger compares
/// whole units instead. Kept so that rounding matches (e.g. `0.5m` counts as `1m`).
const MAX_MILLI_VALUE: i128 = i64::MAX as i128 / 1000;

/// Resource name → quantity, parsed. Entries that do not parse are left out: pod validation
/// reports them, and LimitRanger never sees them (the apiserver fails to decode such a pod).
pub(crate) type ResourceList = BTreeMap<String, Quantity>;

/// A pod violates the constraints of a LimitRange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", aggregate_message(.violations))]
pub struct LimitRangeError {
    /// The LimitRange whose constraints failed (kube-apiserver reports only the first one).
    pub limit_range: String,
    /// Each violated constraint in LimitRanger's words, e.g.
    /// `maximum cpu usage per Container is 2, but limit is 3`.
    pub violations: Vec<String>,
}

/// Joins messages as apimachinery's `utilerrors.Aggregate` prints them: one message alone,
/// several (duplicates dropped) as `[a, b]`.
pub(crate) fn aggregate_message(messages: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let distinct: Vec<&str> = messages
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .map(String::as_str)
        .collect();
    match distinct.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Applies LimitRanger to a pod being created: defaults first (from every range), then the
/// constraints of each range in order. On success the pod carries the defaulted resources and,
/// when any default was applied, the `kubernetes.io/limit-ranger` annotation.
///
/// The ranges are defaulted here as the apiserver stores them ([`default_limit_range`]), and the
/// pod's requests default to its limits first (core pod defaulting, which kube-apiserver applies
/// at decode time, before admission), so the result does not depend on whether the caller has
/// already run either defaulting.
pub fn admit_pod(pod: &mut Pod, ranges: &[LimitRange]) -> Result<(), LimitRangeError> {
    if ranges.is_empty() {
        return Ok(());
    }
    let ranges: Vec<LimitRange> = ranges
        .iter()
        .map(|lr| {
            let mut lr = lr.clone();
            default_limit_range(&mut lr);
            lr
        })
        .collect();
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        default_requests_to_limits(c);
    }
    for lr in &ranges {
        let notes = merge_defaults(spec, &container_defaults(lr));
        if !notes.is_empty() {
            let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(
                ANNOTATION.to_string(),
                format!("LimitRanger plugin set: {}", notes.join("; ")),
            );
        }
    }
    for lr in &ranges {
        let violations = pod_violations(spec, lr);
        if !violations.is_empty() {
            return Err(LimitRangeError {
                limit_range: lr.metadata.name.clone().unwrap_or_default(),
                violations,
            });
        }
    }
    Ok(())
}

/// Core pod defaulting's rule for resources: a limit without a request makes the request equal.
fn default_requests_to_limits(c: &mut Container) {
    let Some(resources) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.as_ref().filter(|l| !l.is_empty()) else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, limit) in limits {
        requests.entry(name.clone()).or_insert_with(|| limit.clone());
    }
}

/// The apiserver's defaulting of a LimitRange (`SetDefaults_LimitRangeItem`): for `Container`
/// items a missing `default` comes from `max`, a missing `defaultRequest` from `default`, then
/// from `min`. Idempotent.
pub fn default_limit_range(lr: &mut LimitRange) {
    for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
        if item.type_ != TYPE_CONTAINER {
            continue;
        }
        let mut default = item.default.take().unwrap_or_default();
        let mut default_request = item.default_request.take().unwrap_or_default();
        for (k, v) in item.max.iter().flatten() {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &default {
            default_request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in item.min.iter().flatten() {
            default_request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        item.default = (!default.is_empty()).then_some(default);
        item.default_request = (!default_request.is_empty()).then_some(default_request);
    }
}

/// Parses a resource list, dropping entries that are not quantities.
pub(crate) fn parse_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), quantity::parse(&v.0).ok()?)))
        .collect()
}

/// `a + b` with apimachinery's `Quantity.Add` formatting: the sum keeps `a`'s format unless `a`
/// is zero, in which case it takes `b`'s. Saturates rather than overflowing.
pub(crate) fn add(a: &Quantity, b: &Quantity) -> Quantity {
    if a.is_zero() {
        return *b;
    }
    a.checked_add(b)
        .unwrap_or_else(|| Quantity::from_nanos(if b.nanos() > 0 { i128::MAX } else { i128::MIN }))
}

/// Adds every entry of `more` into `list`.
pub(crate) fn add_list(list: &mut ResourceList, more: &ResourceList) {
    for (k, v) in more {
        let sum = list.get(k).map_or(*v, |have| add(have, v));
        list.insert(k.clone(), sum);
    }
}

/// Raises every entry of `list` to at least the one in `other`.
fn max_list(list: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        if list.get(k).is_none_or(|have| v > have) {
            list.insert(k.clone(), *v);
        }
    }
}

/// True for an init container that keeps running beside the app containers (a sidecar).
pub(crate) fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective requests or limits: app containers and sidecars summed, raised to what
/// any init container needs while it runs (itself plus the sidecars started before it), as
/// LimitRanger's `podRequests`/`podLimits` compute them. `pick` selects requests or limits.
pub(crate) fn pod_sum(spec: &PodSpec, pick: fn(&Container) -> ResourceList) -> ResourceList {
    let mut total = ResourceList::new();
    for c in &spec.containers {
        add_list(&mut total, &pick(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let own = pick(c);
        let while_running = if is_sidecar(c) {
            add_list(&mut total, &own);
            add_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut sum = own;
            add_list(&mut sum, &sidecars);
            sum
        };
        max_list(&mut init_peak, &while_running);
    }
    max_list(&mut total, &init_peak);
    total
}

/// A container's parsed requests.
pub(crate) fn requests_of(c: &Container) -> ResourceList {
    parse_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// A container's parsed limits.
pub(crate) fn limits_of(c: &Container) -> ResourceList {
    parse_list(c.resources.as_ref().and_then(|r| r.limits.as_ref()))
}

/// Default limits and requests for containers: every `Container` item's `default` and
/// `defaultRequest`, later items winning.
struct Defaults {
    limits: BTreeMap<String, ApiQuantity>,
    requests: BTreeMap<String, ApiQuantity>,
}

/// A quantity as the apiserver would store it (canonical form), or as written if it does not parse.
fn canonical(q: &ApiQuantity) -> ApiQuantity {
    quantity::parse(&q.0).map_or_else(|_| q.clone(), |p| ApiQuantity(p.to_string()))
}

fn container_defaults(lr: &LimitRange) -> Defaults {
    let mut defaults = Defaults {
        limits: BTreeMap::new(),
        requests: BTreeMap::new(),
    };
    for item in items(lr).filter(|i| i.type_ == TYPE_CONTAINER) {
        for (k, v) in item.default_request.iter().flatten() {
            defaults.requests.insert(k.clone(), canonical(v));
        }
        for (k, v) in item.default.iter().flatten() {
            defaults.limits.insert(k.clone(), canonical(v));
        }
    }
    defaults
}

fn items(lr: &LimitRange) -> impl Iterator<Item = &LimitRangeItem> {
    lr.spec.iter().flat_map(|s| s.limits.iter())
}

/// Fills missing limits and requests of every container, returning the annotation's notes
/// (`cpu, memory request for container app`), app containers first as LimitRanger does.
fn merge_defaults(spec: &mut PodSpec, defaults: &Defaults) -> Vec<String> {
    let mut notes = Vec::new();
    let app = spec.containers.iter_mut().map(|c| ("container", c));
    let init = spec.init_containers.iter_mut().flatten().map(|c| ("init container", c));
    for (what, c) in app.chain(init) {
        let resources = c.resources.get_or_insert_with(Default::default);
        let fill = |list: &mut Option<BTreeMap<String, ApiQuantity>>, from: &BTreeMap<String, ApiQuantity>| {
            let mut set = Vec::new();
            for (k, v) in from {
                let list = list.get_or_insert_with(BTreeMap::new);
                if !list.contains_key(k) {
                    list.insert(k.clone(), v.clone());
                    set.push(k.clone());
                }
            }
            set
        };
        let set_limits = fill(&mut resources.limits, &defaults.limits);
        let set_requests = fill(&mut resources.requests, &defaults.requests);
        if !set_requests.is_empty() {
            notes.push(format!("{} request for {what} {}", set_requests.join(", "), c.name));
        }
        if !set_limits.is_empty() {
            notes.push(format!("{} limit for {what} {}", set_limits.join(", "), c.name));
        }
    }
    notes
}

/// Every constraint of `lr` the pod violates, in LimitRanger's order: per item, `Container`
/// items over app then init containers (min, max, ratio), `Pod` items over the pod's sums.
fn pod_violations(spec: &PodSpec, lr: &LimitRange) -> Vec<String> {
    let mut out = Vec::new();
    for item in items(lr) {
        match item.type_.as_str() {
            TYPE_CONTAINER => {
                for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
                    check_item(item, &requests_of(c), &limits_of(c), &mut out);
                }
            }
            TYPE_POD => {
                let requests = pod_sum(spec, requests_of);
                let limits = pod_sum(spec, limits_of);
                check_item(item, &requests, &limits, &mut out);
            }
            _ => {}
        }
    }
    out
}

fn check_item(item: &LimitRangeItem, requests: &ResourceList, limits: &ResourceList, out: &mut Vec<String>) {
    let kind = item.type_.as_str();
    for (k, v) in parse_list(item.min.as_ref()) {
        out.extend(min_constraint(kind, &k, &v, requests, limits));
    }
    for (k, v) in parse_list(item.max.as_ref()) {
        out.extend(max_constraint(kind, &k, &v, requests, limits));
    }
    for (k, v) in parse_list(item.max_limit_request_ratio.as_ref()) {
        out.extend(ratio_constraint(kind, &k, &v, requests, limits));
    }
}

/// `(request, limit, enforced)` at a common precision: milli-units unless one would overflow.
fn comparable(request: Option<&Quantity>, limit: Option<&Quantity>, enforced: &Quantity) -> (i128, i128, i128) {
    let zero = Quantity::from_nanos(0);
    let (r, l) = (request.unwrap_or(&zero), limit.unwrap_or(&zero));
    let units = [r, l, enforced].map(Quantity::as_bytes_ceil);
    if units.iter().all(|u| *u <= MAX_MILLI_VALUE) {
        (r.as_millis_ceil(), l.as_millis_ceil(), enforced.as_millis_ceil())
    } else {
        (units[0], units[1], units[2])
    }
}

fn min_constraint(kind: &str, name: &str, min: &Quantity, req: &ResourceList, lim: &ResourceList) -> Option<String> {
    let (request, limit) = (req.get(name), lim.get(name));
    let (r, l, e) = comparable(request, limit, min);
    let Some(request) = request else {
        return Some(format!(
            "minimum {name} usage per {kind} is {min}.  No request is specified"
        ));
    };
    if r < e {
        return Some(format!(
            "minimum {name} usage per {kind} is {min}, but request is {request}"
        ));
    }
    match limit {
        Some(limit) if l < e => Some(format!(
            "minimum {name} usage per {kind} is {min}, but limit is {limit}"
        )),
        _ => None,
    }
}

fn max_constraint(kind: &str, name: &str, max: &Quantity, req: &ResourceList, lim: &ResourceList) -> Option<String> {
    let (request, limit) = (req.get(name), lim.get(name));
    let (r, l, e) = comparable(request, limit, max);
    let Some(limit) = limit else {
        return Some(format!(
            "maximum {name} usage per {kind} is {max}.  No limit is specified"
        ));
    };
    if l > e {
        return Some(format!(
            "maximum {name} usage per {kind} is {max}, but limit is {limit}"
        ));
    }
    match request {
        Some(request) if r > e => Some(format!(
            "maximum {name} usage per {kind} is {max}, but request is {request}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    ratio: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (request, limit) = (req.get(name), lim.get(name));
    let (r, l, _) = comparable(request, limit, ratio);
    if request.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {ratio}, but no request is specified or request is 0"
        ));
    }
    if limit.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {ratio}, but no limit is specified or limit is 0"
        ));
    }
    // Floats, as LimitRanger computes them, so borderline ratios are judged the same way.
    let observed = l as f64 / r as f64;
    let (scaled, allowed) = if ratio.as_bytes_ceil() <= MAX_MILLI_VALUE {
        (observed * 1000.0, ratio.as_millis_ceil() as f64)
    } else {
        (observed, ratio.as_bytes_ceil() as f64)
    };
    (scaled > allowed).then(|| {
        format!("{name} max limit to request ratio per {kind} is {ratio}, but provided ratio is {observed:.6}")
    })
}

/// Validates a LimitRange as the apiserver does on create and update (`ValidateLimitRange`), after
/// applying [`default_limit_range`] to a copy as the apiserver would have: `min <= defaultRequest
/// <= default <= max`, `maxLimitRequestRatio >= 1` and `<= max/min`, known or qualified types and
/// resource names, no duplicate types, no defaults on `Pod` items, equal default and request for
/// resources that cannot be overcommitted.
///
/// Invalid quantities are shown as `Invalid value: "2"`; kube-apiserver prints Go's raw struct
/// dump of the quantity there, which is not worth copying.
pub fn validate_limit_range(lr: &LimitRange) -> Vec<FieldError> {
    let mut lr = lr.clone();
    default_limit_range(&mut lr);
    let mut errs = Vec::new();
    match lr.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        None if lr.metadata.generate_name.as_deref().is_none_or(str::is_empty) => {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        None => {}
        Some(name) => {
            for msg in names::dns1123_subdomain(name) {
                errs.push(FieldError::invalid("metadata.name", name, &msg));
            }
        }
    }
    let mut types = BTreeSet::new();
    for (i, item) in items(&lr).enumerate() {
        validate_item(&format!("spec.limits[{i}]"), item, &mut types, &mut errs);
    }
    errs
}

fn validate_item<'a>(path: &str, item: &'a LimitRangeItem, types: &mut BTreeSet<&'a str>, errs: &mut Vec<FieldError>) {
    let kind = item.type_.as_str();
    let type_path = format!("{path}.type");
    let type_errs = names::qualified_name(kind);
    if !type_errs.is_empty() {
        errs.extend(type_errs.iter().map(|m| FieldError::invalid(&type_path, kind, m)));
    } else if !kind.contains('/') && ![TYPE_POD, TYPE_CONTAINER, TYPE_PVC].contains(&kind) {
        errs.push(FieldError::invalid(
            &type_path,
            kind,
            "must be a standard limit type or fully qualified",
        ));
    }
    if !types.insert(kind) {
        errs.push(FieldError::duplicate(&type_path, kind));
    }
    let mut lists: BTreeMap<&str, ResourceList> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    let mut take = |field: &'static str, list: Option<&BTreeMap<String, ApiQuantity>>, errs: &mut Vec<FieldError>| {
        for k in list.into_iter().flatten().map(|(k, _)| k) {
            validate_resource_name(kind, k, &format!("{path}.{field}[{k}]"), errs);
            keys.insert(k.clone());
        }
        lists.insert(field, parse_list(list));
    };
    take("max", item.max.as_ref(), errs);
    take("min", item.min.as_ref(), errs);
    if kind == TYPE_POD {
        for (field, list) in [("default", &item.default), ("defaultRequest", &item.default_request)] {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                errs.push(FieldError::forbidden(
                    format!("{path}.{field}"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
    } else {
        take("default", item.default.as_ref(), errs);
        take("defaultRequest", item.default_request.as_ref(), errs);
    }
    if kind == TYPE_PVC
        && !item
            .min
            .iter()
            .chain(item.max.iter())
            .any(|l| l.contains_key("storage"))
    {
        errs.push(FieldError::required(
            format!("{path}.limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        ));
    }
    take("maxLimitRequestRatio", item.max_limit_request_ratio.as_ref(), errs);
    for k in &keys {
        let get = |field: &str| lists.get(field).and_then(|l| l.get(k));
        check_bounds(
            path,
            k,
            [get("min"), get("max"), get("default"), get("defaultRequest")],
            errs,
        );
        if let Some(ratio) = get("maxLimitRequestRatio") {
            check_ratio(path, k, ratio, get("min"), get("max"), errs);
        }
    }
}

/// `min <= defaultRequest <= default <= max` for one resource.
fn check_bounds(path: &str, k: &str, [min, max, default, request]: [Option<&Quantity>; 4], errs: &mut Vec<FieldError>) {
    let mut bad = |field: &str, value: &Quantity, detail: String| {
        errs.push(FieldError::invalid(
            format!("{path}.{field}[{k}]"),
            &value.to_string(),
            &detail,
        ));
    };
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        bad("min", min, format!("min value {min} is greater than max value {max}"));
    }
    if let (Some(request), Some(min)) = (request, min)
        && min > request
    {
        bad(
            "defaultRequest",
            request,
            format!("min value {min} is greater than default request value {request}"),
        );
    }
    if let (Some(request), Some(max)) = (request, max)
        && request > max
    {
        bad(
            "defaultRequest",
            request,
            format!("default request value {request} is greater than max value {max}"),
        );
    }
    if let (Some(request), Some(default)) = (request, default)
        && request > default
    {
        bad(
            "defaultRequest",
            request,
            format!("default request value {request} is greater than default limit value {default}"),
        );
    }
    if let (Some(default), Some(min)) = (default, min)
        && min > default
    {
        bad(
            "default",
            min,
            format!("min value {min} is greater than default value {default}"),
        );
    }
    if let (Some(default), Some(max)) = (default, max)
        && default > max
    {
        bad(
            "default",
            max,
            format!("default value {default} is greater than max value {max}"),
        );
    }
    if let (Some(default), Some(request)) = (default, request)
        && !is_overcommit_allowed(k)
        && default != request
    {
        bad(
            "defaultRequest",
            request,
            format!("default value {default} must equal to defaultRequest value {request} in {k}"),
        );
    }
}

fn check_ratio(
    path: &str,
    k: &str,
    ratio: &Quantity,
    min: Option<&Quantity>,
    max: Option<&Quantity>,
    errs: &mut Vec<FieldError>,
) {
    let field = format!("{path}.maxLimitRequestRatio[{k}]");
    if *ratio < Quantity::from_units(1) {
        errs.push(FieldError::invalid(
            &field,
            &ratio.to_string(),
            &format!("ratio {ratio} is less than 1"),
        ));
    }
    let (Some(min), Some(max)) = (min, max) else {
        return;
    };
    let units = [ratio, min, max].map(Quantity::as_bytes_ceil);
    let (ratio_value, min_value, max_value) = if units.iter().all(|u| *u < MAX_MILLI_VALUE) {
        (
            ratio.as_millis_ceil() as f64 / 1000.0,
            min.as_millis_ceil(),
            max.as_millis_ceil(),
        )
    } else {
        (units[0] as f64, units[1], units[2])
    };
    let limit = max_value as f64 / min_value as f64;
    if ratio_value > limit {
        errs.push(FieldError::invalid(
            &field,
            &ratio.to_string(),
            &format!("ratio {ratio} is greater than max/min = {limit:.6}"),
        ));
    }
}

/// A resource name's validity for a LimitRange item (`validateLimitRangeResourceName`).
/// Resource names print unquoted in these messages, as Go prints a `ResourceName`.
fn validate_resource_name(kind: &str, name: &str, path: &str, errs: &mut Vec<FieldError>) {
    let mut bad = |detail: &str| errs.push(FieldError::new(path, format!("Invalid value: {name}: {detail}")));
    let qualified = names::qualified_name(name);
    if !qualified.is_empty() {
        qualified.iter().for_each(|m| bad(m));
    } else if !name.contains('/') && !is_standard_resource_name(name) {
        bad("must be a standard resource type or fully qualified");
    }
    if kind != TYPE_POD && kind != TYPE_CONTAINER {
        return;
    }
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            bad("must be a standard resource for containers");
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        bad("doesn't follow extended resource name standard");
    }
}

/// Names the apiserver accepts unprefixed (`IsStandardResourceName`).
fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "configmaps",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name) || is_hugepages(name) || name.starts_with("requests.hugepages-")
}

/// `hugepages-<size>`.
pub(crate) fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// A resource Kubernetes itself defines: unprefixed, or in a `kubernetes.io/` domain.
pub(crate) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// A device-plugin style resource (`example.com/gpu`), by `IsExtendedResourceName`.
pub(crate) fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && names::qualified_name(&format!("requests.{name}")).is_empty()
}

/// Whether a request may be below its limit (`IsOvercommitAllowed`).
fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

#[cfg(test)]
#[path = "limit_range_tests.rs"]
mod tests;
