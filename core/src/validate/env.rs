//! `env`, `envFrom` and the selectors they (and downward API volumes) use.

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, ObjectFieldSelector, ResourceFieldSelector};

use super::{FieldError, invalid_each};
use crate::downward::{self, RESOURCE_FIELDS};
use crate::names;
use crate::quantity;

pub(super) fn validate_env(vars: &[EnvVar], path: &str, errs: &mut Vec<FieldError>) {
    for (i, var) in vars.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if var.name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            errs.extend(invalid_each(
                &format!("{p}.name"),
                &var.name,
                names::env_var_name(&var.name),
            ));
        }
        let Some(from) = &var.value_from else {
            continue;
        };
        let p = format!("{p}.valueFrom");
        let mut sources = 0;
        if let Some(r) = &from.field_ref {
            sources += 1;
            validate_field_ref(r, downward::ENV_FIELD_PATHS, &format!("{p}.fieldRef"), errs);
        }
        if let Some(r) = &from.resource_field_ref {
            sources += 1;
            validate_resource_field_ref(r, false, &format!("{p}.resourceFieldRef"), errs);
        }
        if let Some(r) = &from.config_map_key_ref {
            sources += 1;
            validate_key_selector(&r.name, &r.key, &format!("{p}.configMapKeyRef"), errs);
        }
        if let Some(r) = &from.secret_key_ref {
            sources += 1;
            validate_key_selector(&r.name, &r.key, &format!("{p}.secretKeyRef"), errs);
        }
        if sources == 0 {
            let detail = "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`";
            errs.push(FieldError::invalid(&p, "", detail));
        } else if !var.value.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::invalid(
                &p,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

pub(super) fn validate_env_from(sources: &[EnvFromSource], path: &str, errs: &mut Vec<FieldError>) {
    for (i, source) in sources.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(prefix) = source.prefix.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(invalid_each(
                &format!("{p}.prefix"),
                prefix,
                names::env_var_name(prefix),
            ));
        }
        let refs = [
            ("configMapRef", source.config_map_ref.as_ref().map(|r| &r.name)),
            ("secretRef", source.secret_ref.as_ref().map(|r| &r.name)),
        ];
        let mut count = 0;
        for (field, name) in refs {
            let Some(name) = name else { continue };
            count += 1;
            check_object_name(&format!("{p}.{field}.name"), name, errs);
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn check_object_name(path: &str, name: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else {
        errs.extend(invalid_each(path, name, names::dns1123_subdomain(name)));
    }
}

/// A `configMapKeyRef` / `secretKeyRef`.
fn validate_key_selector(name: &str, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    check_object_name(&format!("{path}.name"), name, errs);
    if key.is_empty() {
        errs.push(FieldError::required(format!("{path}.key"), ""));
    } else {
        errs.extend(invalid_each(&format!("{path}.key"), key, names::config_key(key)));
    }
}

/// A `fieldRef`, against the paths allowed where it is used.
pub(super) fn validate_field_ref(r: &ObjectFieldSelector, allowed: &[&str], path: &str, errs: &mut Vec<FieldError>) {
    if let Some(version) = r.api_version.as_deref().filter(|v| !v.is_empty() && *v != "v1") {
        let detail = format!("error converting fieldPath: unsupported pod version: {version}");
        errs.push(FieldError::invalid(format!("{path}.fieldPath"), &r.field_path, &detail));
        return;
    }
    if r.field_path.is_empty() {
        errs.push(FieldError::required(format!("{path}.fieldPath"), ""));
        return;
    }
    match downward::split_subscript(&r.field_path) {
        Some(("metadata.labels", key)) => errs.extend(invalid_each(path, key, names::qualified_name(key))),
        Some(("metadata.annotations", key)) => {
            let key = key.to_lowercase();
            errs.extend(invalid_each(path, &key, names::qualified_name(&key)));
        }
        Some((other, _)) => errs.push(FieldError::invalid(path, other, "does not support subscript")),
        None if !allowed.contains(&r.field_path.as_str()) => {
            let mut supported = allowed.to_vec();
            supported.sort_unstable();
            errs.push(FieldError::not_supported(
                format!("{path}.fieldPath"),
                &r.field_path,
                &supported,
            ));
        }
        None => {}
    }
}

/// A `resourceFieldRef`; volumes must name the container, env vars default to their own.
pub(super) fn validate_resource_field_ref(
    r: &ResourceFieldSelector,
    volume: bool,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if volume && r.container_name.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(format!("{path}.containerName"), ""));
    } else if r.resource.is_empty() {
        errs.push(FieldError::required(format!("{path}.resource"), ""));
    } else if !RESOURCE_FIELDS.contains(&r.resource.as_str()) {
        let mut supported = RESOURCE_FIELDS.to_vec();
        supported.sort_unstable();
        errs.push(FieldError::not_supported(
            format!("{path}.resource"),
            &r.resource,
            &supported,
        ));
    }
    let Some(divisor) = &r.divisor else { return };
    let divisor_path = format!("{path}.divisor");
    let canonical = match quantity::parse(&divisor.0) {
        Ok(q) if q.is_zero() => return,
        Ok(q) => q.to_string(),
        Err(e) => {
            errs.push(FieldError::invalid(divisor_path, &divisor.0, &e.to_string()));
            return;
        }
    };
    let (allowed, detail): (&[&str], &str) = match r.resource.as_str() {
        "limits.cpu" | "requests.cpu" => (
            &["1m", "1"],
            "only divisor's values 1m and 1 are supported with the cpu resource",
        ),
        "limits.memory" | "requests.memory" => (
            MEMORY_DIVISORS,
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
        ),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => (
            MEMORY_DIVISORS,
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
        ),
        _ => return,
    };
    if !allowed.contains(&canonical.as_str()) {
        errs.push(FieldError::invalid(divisor_path, &r.resource, detail));
    }
}

const MEMORY_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];
