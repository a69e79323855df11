//! The matching rules the plugins share, as apimachinery and component-helpers define them:
//! node selector requirements (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`) and
//! `matchFields`, label selectors, and whether a toleration tolerates a taint.

use std::collections::BTreeMap;

use capstan_core::k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration,
};
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of a node or pod.
pub type Labels = BTreeMap<String, String>;

/// The set-based operators shared by node selector requirements and label selectors;
/// `None` for any other operator.
fn set_operator(op: &str, value: Option<&String>, values: &[String]) -> Option<bool> {
    Some(match op {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => return None,
    })
}

/// Whether one `matchExpressions` requirement holds for a node's labels. `Gt` and `Lt` compare
/// integers and fail when the label is absent or not an integer, or when `values` is not one
/// integer (component-helpers' `nodeSelectorRequirementsAsSelector`).
pub fn requirement_matches(req: &NodeSelectorRequirement, labels: &Labels) -> bool {
    let value = labels.get(&req.key);
    let values = req.values.as_deref().unwrap_or_default();
    if let Some(holds) = set_operator(&req.operator, value, values) {
        return holds;
    }
    match req.operator.as_str() {
        op @ ("Gt" | "Lt") => {
            let (Some(value), [bound]) = (value, values) else {
                return false;
            };
            let (Ok(value), Ok(bound)) = (value.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if op == "Gt" { value > bound } else { value < bound }
        }
        _ => false,
    }
}

/// Whether one `matchFields` requirement holds: only `metadata.name` with `In` or `NotIn`
/// exists, as the apiserver's validation allows.
pub fn field_requirement_matches(req: &NodeSelectorRequirement, node_name: &str) -> bool {
    if req.key != "metadata.name" {
        return false;
    }
    let values = req.values.as_deref().unwrap_or_default();
    let listed = values.iter().any(|v| v == node_name);
    match req.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        _ => false,
    }
}

/// A node selector term: every expression and field must hold. A term with neither matches no
/// node (as Kubernetes has it).
pub fn term_matches(term: &NodeSelectorTerm, labels: &Labels, node_name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, labels))
        && fields.iter().all(|r| field_requirement_matches(r, node_name))
}

/// A node selector: its terms are ORed.
pub fn node_selector_matches(selector: &NodeSelector, labels: &Labels, node_name: &str) -> bool {
    selector
        .node_selector_terms
        .iter()
        .any(|t| term_matches(t, labels, node_name))
}

/// apimachinery's `LabelSelectorAsSelector(...).Matches`: `matchLabels` and `matchExpressions`
/// are ANDed; the empty selector matches everything. (A *missing* selector in an affinity term
/// matches nothing; callers handle that.)
pub fn label_selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    if let Some(match_labels) = &selector.match_labels
        && match_labels.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    selector.match_expressions.iter().flatten().all(|req| {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        set_operator(&req.operator, value, values).unwrap_or(false)
    })
}

/// component-helpers' `ToleratesTaint`: an empty effect matches every effect, an empty key
/// (only valid with `Exists`) every key; `Equal` (the default) compares values.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of the tolerations tolerates the taint.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        serde_json::from_value(json!({"key": key, "operator": op, "values": values})).unwrap()
    }

    #[test]
    fn node_selector_operators() {
        let node = labels(&[("disktype", "ssd"), ("cores", "8"), ("zone", "a")]);
        let cases: &[(&str, &str, &[&str], bool)] = &[
            ("disktype", "In", &["ssd", "nvme"], true),
            ("disktype", "In", &["hdd"], false),
            ("missing", "In", &["x"], false),
            ("disktype", "NotIn", &["hdd"], true),
            ("disktype", "NotIn", &["ssd"], false),
            ("missing", "NotIn", &["x"], true),
            ("zone", "Exists", &[], true),
            ("missing", "Exists", &[], false),
            ("missing", "DoesNotExist", &[], true),
            ("zone", "DoesNotExist", &[], false),
            ("cores", "Gt", &["4"], true),
            ("cores", "Gt", &["8"], false),
            ("cores", "Lt", &["16"], true),
            ("cores", "Lt", &["8"], false),
            ("zone", "Gt", &["1"], false),
            ("missing", "Lt", &["1"], false),
            ("cores", "Gt", &["1", "2"], false),
            ("cores", "Bogus", &["1"], false),
        ];
        for (key, op, values, want) in cases {
            assert_eq!(
                requirement_matches(&req(key, op, values), &node),
                *want,
                "{key} {op} {values:?}"
            );
        }
    }

    #[test]
    fn match_fields_and_terms() {
        assert!(field_requirement_matches(&req("metadata.name", "In", &["n1"]), "n1"));
        assert!(!field_requirement_matches(&req("metadata.name", "In", &["n1"]), "n2"));
        assert!(field_requirement_matches(&req("metadata.name", "NotIn", &["n1"]), "n2"));
        assert!(!field_requirement_matches(&req("metadata.uid", "In", &["n1"]), "n1"));
        let node = labels(&[("a", "1")]);
        let empty: NodeSelectorTerm = serde_json::from_value(json!({})).unwrap();
        assert!(!term_matches(&empty, &node, "n1"), "an empty term matches nothing");
        let both: NodeSelectorTerm = serde_json::from_value(json!({
            "matchExpressions": [{"key": "a", "operator": "Exists"}],
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
        }))
        .unwrap();
        assert!(term_matches(&both, &node, "n1"));
        assert!(!term_matches(&both, &node, "n2"), "expressions and fields are ANDed");
        let selector: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}]},
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},
        ]}))
        .unwrap();
        assert!(node_selector_matches(&selector, &node, "n1"), "terms are ORed");
    }

    #[test]
    fn label_selectors() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"app": "web"}}), true),
            (json!({"matchLabels": {"app": "db"}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]}),
                false,
            ),
        ];
        for (selector, want) in cases {
            let parsed: LabelSelector = serde_json::from_value(selector.clone()).unwrap();
            assert_eq!(label_selector_matches(&parsed, &pod), want, "{selector}");
        }
    }

    #[test]
    fn tolerations() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})).unwrap();
        let cases = [
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "dedicated", "value": "gpu"}), true),
            (json!({"key": "dedicated", "value": "cpu"}), false),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
            (json!({"key": "other", "operator": "Exists"}), false),
            (json!({"operator": "Exists"}), true),
        ];
        for (toleration, want) in cases {
            let parsed: Toleration = serde_json::from_value(toleration.clone()).unwrap();
            assert_eq!(tolerates(&parsed, &taint), want, "{toleration}");
        }
    }
}
