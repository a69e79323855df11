//! Discovery documents (`/api`, `/apis`, resource lists), `/version`, and the OpenAPI v3
//! documents clients read to learn what the server supports.
//!
//! The OpenAPI documents are minimal: each kind has a schema entry carrying its
//! `x-kubernetes-group-version-kind`, and each object path declares its PATCH with the
//! `fieldValidation` query parameter. That is what kubectl looks for to leave validation to
//! the server (`fieldValidation=Strict`), which decodes into the real schema and names any
//! unknown field.

use serde_json::{Value, json};

use super::resources::{self, RESOURCES, ResourceInfo};

/// The Kubernetes version whose API this server implements (the k8s-openapi schema version).
pub const KUBE_MINOR: &str = "34";

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0+capstan-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_body(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

pub fn groups() -> Value {
    let groups: Vec<Value> = resources::groups()
        .iter()
        .map(|(group, versions)| group_body(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Value {
    let versions = resources::groups()
        .into_iter()
        .find(|(g, _)| *g == name)
        .map(|(_, v)| v)
        .unwrap_or_default();
    let mut body = group_body(name, &versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    body
}

fn subresource_entry(r: &ResourceInfo, sub: &str) -> Value {
    let (kind, verbs, group, version): (&str, &[&str], Option<&str>, Option<&str>) = match sub {
        "status" => (r.kind, &["get", "patch", "update"], None, None),
        "scale" => ("Scale", &["get", "patch", "update"], Some("autoscaling"), Some("v1")),
        "log" => ("Pod", &["get"], None, None),
        "binding" => ("Binding", &["create"], None, None),
        _ => (r.kind, &["get"], None, None),
    };
    let mut entry = json!({
        "name": format!("{}/{sub}", r.plural),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if let (Some(g), Some(v)) = (group, version) {
        entry["group"] = json!(g);
        entry["version"] = json!(v);
    }
    entry
}

pub fn resource_list(group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        list.extend(r.subresources.iter().map(|sub| subresource_entry(r, sub)));
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list})
}

/// The document path of a group version: `api/v1` or `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    gvs.dedup();
    for (group, version) in gvs {
        let path = gv_path(group, version);
        let hash = env!("CARGO_PKG_VERSION");
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of one group version; `None` if it is not served.
pub fn openapi_group_version(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in served {
        let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        let schema_name = format!(
            "io.k8s.capstan.{}.{}.{}",
            if r.group.is_empty() { "core" } else { r.group },
            r.version,
            r.kind
        );
        schemas.insert(
            schema_name,
            json!({"type": "object", "x-kubernetes-group-version-kind": gvk}),
        );
        let base = format!("/{}", gv_path(r.group, r.version));
        let object_path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let field_validation =
            json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let operation = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "parameters": [field_validation],
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(
            object_path,
            json!({"put": operation("put"), "patch": operation("patch")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_name_subresources_and_short_names() {
        let core = resource_list("", "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/log") && names.contains(&"pods/status"));
        let apps = resource_list("apps", "v1");
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert_eq!(apps["groupVersion"], "apps/v1");
    }

    #[test]
    fn openapi_declares_field_validation_for_every_kind() {
        let doc = openapi_group_version("apps", "v1").unwrap();
        let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(path["patch"]["parameters"][0]["name"], "fieldValidation");
        assert!(openapi_index()["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        assert!(openapi_group_version("nope", "v1").is_none());
    }
}
