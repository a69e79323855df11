//! A container's `resources`: names, quantities, and requests never above limits.

use k8s_openapi::api::core::v1::ResourceRequirements;

use super::{FieldError, invalid_each};
use crate::names;
use crate::quantity::{self, Quantity};

/// The resources a container may name without a domain.
fn is_standard(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Native resources have no domain or a `kubernetes.io` one.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Overcommit (request below limit) is allowed for native resources except huge pages;
/// extended resources and huge pages must request exactly their limit.
fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

fn check_name(path: &str, name: &str, errs: &mut Vec<FieldError>) {
    errs.extend(invalid_each(path, name, names::qualified_name(name)));
    if !name.contains('/') {
        if !is_standard(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// Parses a quantity, reporting it if malformed or negative.
fn check_quantity(path: &str, name: &str, text: &str, errs: &mut Vec<FieldError>) -> Option<Quantity> {
    match quantity::parse(text) {
        Err(e) => {
            errs.push(FieldError::invalid(path, text, &e.to_string()));
            None
        }
        Ok(q) if q.nanos() < 0 => {
            errs.push(FieldError::invalid(
                path,
                &q.to_string(),
                "must be greater than or equal to 0",
            ));
            None
        }
        Ok(q) => {
            if !is_native(name) && q.nanos() % 1_000_000_000 != 0 {
                errs.push(FieldError::invalid(path, &q.to_string(), "must be an integer"));
            }
            Some(q)
        }
    }
}

pub(super) fn validate_resources(r: &ResourceRequirements, path: &str, errs: &mut Vec<FieldError>) {
    let limits_path = format!("{path}.limits");
    let requests_path = format!("{path}.requests");
    let mut limits = Vec::new();
    for (name, text) in r.limits.iter().flatten() {
        let p = format!("{limits_path}[{name}]");
        check_name(&p, name, errs);
        limits.push((name.as_str(), check_quantity(&p, name, &text.0, errs)));
    }
    for (name, text) in r.requests.iter().flatten() {
        let p = format!("{requests_path}[{name}]");
        check_name(&p, name, errs);
        let request = check_quantity(&p, name, &text.0, errs);
        match limits.iter().find(|(n, _)| *n == name) {
            Some((_, Some(limit))) => {
                let Some(request) = request else { continue };
                if request != *limit && !overcommit_allowed(name) {
                    let detail = format!("must be equal to {name} limit of {limit}");
                    errs.push(FieldError::invalid(&requests_path, &request.to_string(), &detail));
                } else if request > *limit {
                    let detail = format!("must be less than or equal to {name} limit of {limit}");
                    errs.push(FieldError::invalid(&requests_path, &request.to_string(), &detail));
                }
            }
            Some((_, None)) => {}
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &limits_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
}
