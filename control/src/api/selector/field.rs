//! Field selectors (`fieldSelector=`): apimachinery's `fields.ParseSelector` syntax, then the
//! kind's field label conversion (which fields kube-apiserver lets a kind be selected by), then
//! matching against the values the kind's `ToSelectableFields` would compute.

use std::fmt;

use capstan_core::quote::go_quote;
use serde_json::Value;

use super::SelectorError;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector for one kind: terms ANDed; a missing field reads as `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    kind: String,
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value for `kind` (apimachinery's `fields.ParseSelector`
    /// followed by the kind's field label conversion): `a=b`, `a==b`, `a!=b`, comma-separated;
    /// `\`, `,` and `=` in values are escaped with `\`. No whitespace is trimmed.
    pub fn parse(kind: &str, s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, equal, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                value: unescape(rhs)?,
                equal,
            });
        }
        for term in &mut terms {
            term.field = convert_field_label(kind, &term.field)?.to_string();
        }
        Ok(FieldSelector {
            kind: kind.to_string(),
            terms,
        })
    }

    /// Whether every term holds for the object (a field it lacks compares as `""`).
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(&self.kind, &t.field, object) == t.value) == t.equal)
    }

    /// Whether the selector has no terms (selects everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// apimachinery's `RequiresExactMatch`: the value an `=` term demands for `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// `field=value` terms joined by `,`, values escaped (apimachinery's `String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equal { "=" } else { "!=" };
            let escaped = t.value.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=");
            write!(f, "{}{op}{escaped}", t.field)?;
        }
        Ok(())
    }
}

/// Splits on commas not preceded by a backslash escape.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut in_slash) = (0, false);
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first `!=`, `==` or `=` splits a term: (field, is-equality, raw value).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, equal) in [("!=", false), ("==", true), ("=", true)] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], equal, rhs));
            }
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Escape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
        } else {
            match c {
                '\\' => in_slash = true,
                ',' | '=' => return Err(SelectorError::Unescaped(c)),
                c => out.push(c),
            }
        }
    }
    if in_slash {
        return Err(SelectorError::Escape("\\".to_string()));
    }
    Ok(out)
}

/// How a kind's field label conversion function words a rejection.
enum Reject {
    /// `field label not supported: <field>` (core/v1 kinds).
    NotSupported,
    /// `field label "<field>" not supported for "<kind>"` (batch/v1).
    NotSupportedFor,
}

/// kube-apiserver's field label conversion functions: the fields a kind may be selected by.
/// Kinds without one accept only `metadata.name` and `metadata.namespace`. (Cluster-scoped
/// Node and Namespace reject `metadata.namespace`; apps/v1 ReplicaSet registers no function,
/// so `status.replicas` is rejected there in 1.34 even though the docs list it.)
fn selectable_fields(kind: &str) -> Option<(&'static [&'static str], Reject)> {
    const POD: &[&str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];
    const EVENT: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.namespace",
        "metadata.name",
    ];
    Some(match kind {
        "Pod" => (POD, Reject::NotSupported),
        "Event" => (EVENT, Reject::NotSupported),
        "Node" => (&["metadata.name", "spec.unschedulable"], Reject::NotSupported),
        "Namespace" => (&["status.phase", "metadata.name"], Reject::NotSupported),
        "Secret" => (&["type", "metadata.namespace", "metadata.name"], Reject::NotSupported),
        "Service" => (
            &["metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"],
            Reject::NotSupported,
        ),
        "ReplicationController" => (
            &["metadata.name", "metadata.namespace", "status.replicas"],
            Reject::NotSupported,
        ),
        "Job" | "CronJob" => (
            &["metadata.name", "metadata.namespace", "status.successful"],
            Reject::NotSupportedFor,
        ),
        _ => return None,
    })
}

/// The field name after the kind's conversion (`spec.host` is the old name of a Pod's
/// `spec.nodeName`), or kube-apiserver's rejection.
fn convert_field_label<'a>(kind: &str, field: &'a str) -> Result<&'a str, SelectorError> {
    let unsupported = |message: String| SelectorError::UnsupportedField {
        field: field.to_string(),
        message,
    };
    if kind == "Pod" && field == "spec.host" {
        return Ok("spec.nodeName");
    }
    match selectable_fields(kind) {
        Some((fields, _)) if fields.contains(&field) => Ok(field),
        Some((_, Reject::NotSupported)) => Err(unsupported(format!("field label not supported: {field}"))),
        Some((_, Reject::NotSupportedFor)) => Err(unsupported(format!(
            "field label {} not supported for {}",
            go_quote(field),
            go_quote(kind)
        ))),
        None if matches!(field, "metadata.name" | "metadata.namespace") => Ok(field),
        None => Err(unsupported(format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            go_quote(field)
        ))),
    }
}

/// The string a selectable field has on an object, as the kind's `ToSelectableFields`
/// renders it: booleans as `true`/`false` (absent is `false`), counts as integers (absent is
/// `0`), anything absent as `""`.
fn field_value(kind: &str, field: &str, obj: &Value) -> String {
    let at = |path: &str| path.split('.').try_fold(obj, |v, k| v.get(k));
    let string_at = |path: &str| at(path).and_then(Value::as_str).unwrap_or_default().to_string();
    let bool_at = |path: &str| at(path).and_then(Value::as_bool).unwrap_or(false).to_string();
    let int_at = |path: &str| at(path).and_then(Value::as_i64).unwrap_or(0).to_string();
    match (kind, field) {
        ("Pod", "spec.hostNetwork") | ("Node", "spec.unschedulable") => bool_at(field),
        // The first of status.podIPs (the v1 podIP is its copy); status.podIPs itself is
        // accepted by the conversion but not in the selectable set, so it always reads "".
        ("Pod", "status.podIP") => at("status.podIPs")
            .and_then(|ips| ips.get(0))
            .and_then(|ip| ip.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| string_at("status.podIP")),
        ("Pod", "status.podIPs") => String::new(),
        ("Event", "source") => {
            let component = string_at("source.component");
            if component.is_empty() {
                string_at("reportingComponent")
            } else {
                component
            }
        }
        ("ReplicationController", "status.replicas") => int_at(field),
        ("Job", "status.successful") => int_at("status.succeeded"),
        ("CronJob", "status.successful") => String::new(),
        _ => string_at(field),
    }
}
