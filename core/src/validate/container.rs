//! One container's fields: name, image, ports, env, mounts, resources, probes, policies.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, VolumeMount};

use super::{FieldError, check_enum, env, invalid_each, probe, resources};
use crate::names;

/// What a container is checked against.
pub(super) struct Context<'a> {
    /// Names of the pod's valid volumes.
    pub volumes: &'a HashSet<String>,
    /// An init container (regular or sidecar) rather than an app container.
    pub is_init: bool,
    /// The pod's `terminationGracePeriodSeconds`.
    pub grace: Option<i64>,
}

pub(super) fn validate_container(c: &Container, path: &str, ctx: &Context<'_>, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        errs.extend(invalid_each(
            &format!("{path}.name"),
            &c.name,
            names::dns1123_label(&c.name),
        ));
    }
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::required(format!("{path}.image"), "")),
        Some(image) if image.trim() != image => {
            errs.push(FieldError::invalid(
                format!("{path}.image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
        Some(_) => {}
    }
    validate_ports(c, path, errs);
    env::validate_env(c.env.as_deref().unwrap_or(&[]), &format!("{path}.env"), errs);
    env::validate_env_from(c.env_from.as_deref().unwrap_or(&[]), &format!("{path}.envFrom"), errs);
    validate_mounts(
        c.volume_mounts.as_deref().unwrap_or(&[]),
        &format!("{path}.volumeMounts"),
        ctx.volumes,
        errs,
    );
    if let Some(r) = &c.resources {
        resources::validate_resources(r, &format!("{path}.resources"), errs);
    }
    let sidecar = c.restart_policy.as_deref() == Some("Always");
    if ctx.is_init {
        if let Some(policy) = c.restart_policy.as_deref().filter(|p| *p != "Always") {
            errs.push(FieldError::not_supported(
                format!("{path}.restartPolicy"),
                policy,
                &["Always"],
            ));
        }
    } else if c.restart_policy.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.restartPolicy"),
            "may not be set for non-init containers",
        ));
    }
    if ctx.is_init && !sidecar {
        let forbidden = [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ];
        for (field, _) in forbidden.into_iter().filter(|(_, set)| *set) {
            let detail = "may not be set for init containers without restartPolicy=Always";
            errs.push(FieldError::forbidden(format!("{path}.{field}"), detail));
        }
    } else {
        probe::validate_probes(c, path, ctx.grace, errs);
    }
    check_enum(
        &format!("{path}.imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        &["Always", "IfNotPresent", "Never"],
        errs,
    );
    let policies = ["File", "FallbackToLogsOnError"];
    check_enum(
        &format!("{path}.terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        &policies,
        errs,
    );
}

fn validate_ports(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    let mut names_seen = HashSet::new();
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let p = format!("{path}.ports[{j}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            errs.extend(invalid_each(&format!("{p}.name"), name, names::port_name(name)));
            if !names_seen.insert(name) {
                errs.push(FieldError::duplicate(format!("{p}.name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(format!("{p}.containerPort"), ""));
        } else {
            for msg in names::port_number(port.container_port.into()) {
                errs.push(FieldError::invalid_number(
                    format!("{p}.containerPort"),
                    port.container_port.into(),
                    &msg,
                ));
            }
        }
        if let Some(host_port) = port.host_port.filter(|h| *h != 0) {
            for msg in names::port_number(host_port.into()) {
                errs.push(FieldError::invalid_number(
                    format!("{p}.hostPort"),
                    host_port.into(),
                    &msg,
                ));
            }
        }
        check_enum(
            &format!("{p}.protocol"),
            port.protocol.as_deref(),
            &["SCTP", "TCP", "UDP"],
            errs,
        );
    }
}

/// A path inside a volume: relative and without `..` (apiserver's `validateLocalDescendingPath`).
pub(super) fn check_descending_path(path: &str, value: &str, errs: &mut Vec<FieldError>) {
    if value.starts_with('/') {
        errs.push(FieldError::invalid(path, value, "must be a relative path"));
    }
    if value.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, value, "must not contain '..'"));
    }
}

fn validate_mounts(mounts: &[VolumeMount], path: &str, volumes: &HashSet<String>, errs: &mut Vec<FieldError>) {
    let mut mount_points = HashSet::new();
    for (j, m) in mounts.iter().enumerate() {
        let p = format!("{path}[{j}]");
        if m.name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(format!("{p}.name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(format!("{p}.mountPath"), ""));
        } else if !m.mount_path.starts_with('/') {
            errs.push(FieldError::invalid(
                format!("{p}.mountPath"),
                &m.mount_path,
                "must be an absolute path",
            ));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                format!("{p}.mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or("");
        if !sub_path.is_empty() {
            check_descending_path(&format!("{p}.subPath"), sub_path, errs);
        }
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{p}.subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            check_descending_path(&format!("{p}.subPathExpr"), expr, errs);
        }
        check_enum(
            &format!("{p}.mountPropagation"),
            m.mount_propagation.as_deref(),
            &["Bidirectional", "HostToContainer", "None"],
            errs,
        );
    }
}
