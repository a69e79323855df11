use super::*;
use serde_json::json;

fn smp(kind: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    apply_patch(kind, PatchType::StrategicMerge, original, patch.to_string().as_bytes())
}

/// Whether a directive key (`$patch`, `$retainKeys`, ...) is anywhere in a value.
fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

#[test]
fn content_types() {
    let cases = [
        ("application/json-patch+json", Some(PatchType::Json)),
        ("application/merge-patch+json; charset=utf-8", Some(PatchType::Merge)),
        (
            "application/strategic-merge-patch+json",
            Some(PatchType::StrategicMerge),
        ),
        ("application/apply-patch+yaml", Some(PatchType::Apply)),
        ("application/json", None),
        ("", None),
    ];
    for (ct, want) in cases {
        assert_eq!(PatchType::from_content_type(ct), want, "{ct}");
        if let Some(t) = want {
            assert!(ct.starts_with(t.content_type()));
        }
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"],
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs"}]},
        "spec": {
            "containers": [
                {"name": "a", "image": "a:1", "args": ["--x", "--y"],
                 "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "b", "image": "b:1"},
            ],
            "tolerations": [{"key": "t1", "operator": "Exists"}],
        },
    })
}

/// `pod()` with `f` applied, for expectations that differ from it in one place.
fn pod_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut p = pod();
    f(&mut p);
    p
}

#[test]
fn strategic_merge_on_pods() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "containers merge by name, the others kept",
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            pod_with(|p| p["spec"]["containers"][1]["image"] = json!("b:2")),
        ),
        (
            "a new container goes first when no $setElementOrder says otherwise (apimachinery's order)",
            json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}}),
            pod_with(|p| {
                let list = p["spec"]["containers"].as_array_mut().unwrap();
                list.insert(0, json!({"name": "c", "image": "c:1"}));
            }),
        ),
        (
            "env merges by name",
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]}]}}),
            pod_with(|p| {
                p["spec"]["containers"][0]["env"] =
                    json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]);
            }),
        ),
        (
            "$patch: delete removes a container",
            json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}),
            pod_with(|p| {
                p["spec"]["containers"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "$setElementOrder orders a merge list",
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
            pod_with(|p| p["spec"]["containers"].as_array_mut().unwrap().reverse()),
        ),
        (
            "a list without a merge strategy (args) is replaced wholesale",
            json!({"spec": {"containers": [{"name": "a", "args": ["--z"]}]}}),
            pod_with(|p| p["spec"]["containers"][0]["args"] = json!(["--z"])),
        ),
        (
            "an untagged list of maps (tolerations) is replaced too",
            json!({"spec": {"tolerations": [{"key": "t2", "operator": "Exists"}]}}),
            pod_with(|p| p["spec"]["tolerations"] = json!([{"key": "t2", "operator": "Exists"}])),
        ),
        (
            "null deletes a label",
            json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
            pod_with(|p| p["metadata"]["labels"] = json!({"b": "2", "c": "3"})),
        ),
        (
            "finalizers are a union, patch order first",
            json!({"metadata": {"finalizers": ["z", "x"]}}),
            pod_with(|p| p["metadata"]["finalizers"] = json!(["z", "x", "y"])),
        ),
        (
            "$deleteFromPrimitiveList removes finalizers",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
            pod_with(|p| p["metadata"]["finalizers"] = json!(["y"])),
        ),
        (
            "ownerReferences merge by uid",
            json!({"metadata": {"ownerReferences": [{"uid": "u1", "controller": true}]}}),
            pod_with(|p| p["metadata"]["ownerReferences"][0]["controller"] = json!(true)),
        ),
        (
            "$patch: replace replaces a map",
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            pod_with(|p| p["metadata"]["labels"] = json!({"c": "3"})),
        ),
        (
            "$patch: delete empties a map",
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            pod_with(|p| p["metadata"]["labels"] = json!({})),
        ),
        (
            "{$patch: replace} in a merge list replaces the list",
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z:1"}]}}),
            pod_with(|p| p["spec"]["containers"] = json!([{"name": "z", "image": "z:1"}])),
        ),
        (
            "values with nowhere to merge keep no nulls and no directives",
            json!({"spec": {"containers": [{"name": "c", "securityContext": null,
                "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E", "value": null}]}]}}),
            pod_with(|p| {
                let list = p["spec"]["containers"].as_array_mut().unwrap();
                list.insert(0, json!({"name": "c", "env": [{"name": "E"}]}));
            }),
        ),
    ];
    for (what, patch, want) in cases {
        let got = smp("Pod", &pod(), &patch).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, want, "{what}");
        assert!(!has_directive(&got), "{what}: a directive survived");
    }
}

#[test]
fn strategic_merge_on_other_kinds() {
    let node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}, {"type": "Hostname", "address": "n1"}],
                   "conditions": [{"type": "Ready", "status": "False"}]}});
    let service = json!({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}});
    let deployment = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    let cases = [
        (
            "Node taints have no merge strategy: replaced",
            "Node",
            &node,
            json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
            json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "podCIDRs": ["10.0.0.0/24"]},
                "status": node["status"].clone()}),
        ),
        (
            "Node addresses and conditions merge by type",
            "Node",
            &node,
            json!({"status": {"addresses": [{"type": "Hostname", "address": "n2"}],
                              "conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"spec": node["spec"].clone(), "status": {
                "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}, {"type": "Hostname", "address": "n2"}],
                "conditions": [{"type": "Ready", "status": "True"}]}}),
        ),
        (
            "Service ports merge by port",
            "Service",
            &service,
            json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            json!({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443, "targetPort": 8443}]}}),
        ),
        (
            "$retainKeys drops the keys it does not list",
            "Deployment",
            &deployment,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            json!({"spec": {"strategy": {"type": "Recreate"}, "template": deployment["spec"]["template"].clone()}}),
        ),
        (
            "a Deployment's pod template containers merge by name",
            "Deployment",
            &deployment,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}),
            json!({"spec": {"strategy": deployment["spec"]["strategy"].clone(),
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}),
        ),
    ];
    for (what, kind, original, patch, want) in cases {
        let got = smp(kind, original, &patch).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, want, "{what}");
    }
}

/// The patch `kubectl apply` computes (CreateThreeWayMergePatch) after the manifest's image
/// changed and an env var was added: `$setElementOrder` lists for both merge lists.
#[test]
fn kubectl_apply_patch_on_a_deployment() {
    let original = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{old}"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]},
            ]}},
        },
    });
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{new}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                "env": [{"name": "B", "value": "2"}],
                "image": "nginx:1.26",
                "name": "web",
            }],
        }}},
    });
    let mut want = original.clone();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{new}");
    let web = &mut want["spec"]["template"]["spec"]["containers"][0];
    web["image"] = json!("nginx:1.26");
    web["env"] = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    let got = smp("Deployment", &original, &patch).unwrap();
    assert_eq!(got, want);
    assert!(!has_directive(&got));
}

/// apimachinery's `MergeItem` test struct, whose nested types share field names and tags.
fn merge_item(path: &str) -> Option<Strategy> {
    match path.rsplit('.').next().unwrap_or(path) {
        "mergingList" | "retainKeysMergingList" | "mergeItemPtr" => Some(Merge("name")),
        "mergingIntList" => Some(Merge("")),
        "replacingItem" => Some(Replace),
        _ => None,
    }
}

/// Cases from apimachinery's `patch_test.go` (the patch applied to `current`, expecting
/// `result`), run with its test struct's tags. All 255 applications there were checked
/// against this module while writing it; these keep the subtle ones.
#[test]
fn apimachinery_cases() {
    let cases = [
        (
            "add an item in a list and preserve order",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 1}, {"name": 2}],
                   "mergingList": [{"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "other": "a"},
                                   {"name": 2, "value": 2, "other": "b"}]}),
        ),
        (
            "set elements order in a list with server-only items 3",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 7}, {"name": 9},
                                   {"name": 8}, {"name": 3, "value": 3}, {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
            json!({"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 7}, {"name": 9},
                                   {"name": 8}, {"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
        ),
        (
            "add map and delete map from merging list (Go slice aliasing decides the order)",
            json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]}),
        ),
        (
            "add map and delete map from merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]}),
        ),
        (
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "$deleteFromPrimitiveList works on a list without merge strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
        (
            "nested patch merge with empty list",
            json!({"name": "hi"}),
            json!({"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}]}),
        ),
        (
            "retainKeys map adds a field and clears a field",
            json!({"retainKeysMap": {"name": "foo", "other": "x"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
        ),
        (
            "a merging list with duplicates, ordered by $setElementOrder",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3},
                                   {"name": 2, "value": "dup2"}, {"name": 4}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]}),
            json!({"mergingList": [{"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"}, {"name": 1},
                                   {"name": 4}, {"name": 3}]}),
        ),
        (
            "a replace-strategy map is replaced",
            json!({"replacingItem": {"a": 1, "b": 2}}),
            json!({"replacingItem": {"c": 3}}),
            json!({"replacingItem": {"c": 3}}),
        ),
    ];
    for (what, current, patch, want) in cases {
        let (Value::Object(current), Value::Object(patch)) = (current, patch) else {
            unreachable!()
        };
        let got = Merger { lookup: &merge_item }.merge_map(current, patch, "");
        assert_eq!(
            got.map(Value::Object).unwrap_or_else(|e| panic!("{what}: {e}")),
            want,
            "{what}"
        );
    }
}

#[test]
fn strategic_merge_errors() {
    let cases = [
        (
            json!({"metadata": {"labels": {"$patch": "foo"}}}),
            400,
            "unknown patch type: foo in map: ",
        ),
        (
            json!({"spec": {"containers": [{"image": "x"}]}}),
            422,
            "does not contain declared merge key: name",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
            400,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            json!({"metadata": {"$retainKeys": ["name"], "labels": {"c": "3"}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"metadata": {"$retainKeys": "name"}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b", "image": "b:2"}]}}),
            400,
            "doesn't match $setElementOrder list",
        ),
        (
            json!({"spec": {"$setElementOrder": []}}),
            400,
            "invalid patch format of setElementOrder list",
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}),
            400,
            "invalid patch format of primitive list",
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}, "b"]}}),
            422,
            "list element types are not identical",
        ),
    ];
    for (patch, status, message) in cases {
        let err = smp("Pod", &pod(), &patch).expect_err(&patch.to_string());
        assert_eq!(err.status_code(), status, "{patch}: {err}");
        assert!(err.to_string().contains(message), "{patch}: {err}");
    }
    let no_finalizers = pod_with(|p| p["metadata"]["finalizers"] = json!([]));
    let err = smp("Pod", &no_finalizers, &json!({"metadata": {"finalizers": [["a"]]}})).unwrap_err();
    assert_eq!(
        (err.status_code(), err.to_string().as_str()),
        (422, "lists of lists are not supported")
    );
}

#[test]
fn unsupported_patches() {
    let original = json!({"metadata": {"name": "w"}});
    let cases = [
        (
            "Widget",
            PatchType::StrategicMerge,
            "{}",
            415,
            "strategic merge patch is not supported for Widget",
        ),
        ("Pod", PatchType::Apply, "{}", 415, "server-side apply is not supported"),
        (
            "Pod",
            PatchType::StrategicMerge,
            "{",
            400,
            "invalid patch body: EOF while parsing",
        ),
        (
            "Pod",
            PatchType::StrategicMerge,
            "[]",
            400,
            "strategic merge patch must be a JSON object, got a list",
        ),
        (
            "Pod",
            PatchType::Merge,
            "null",
            400,
            "merge patch must be a JSON object, got null",
        ),
        (
            "Pod",
            PatchType::Json,
            "{}",
            400,
            "invalid patch body: invalid type: map",
        ),
    ];
    for (kind, patch_type, body, status, message) in cases {
        let err = apply_patch(kind, patch_type, &original, body.as_bytes()).expect_err(body);
        assert_eq!(err.status_code(), status, "{kind} {body}: {err}");
        assert!(err.to_string().contains(message), "{kind} {body}: {err}");
    }
    assert!(supports_strategic_merge("Deployment") && !supports_strategic_merge("Widget"));
}

#[test]
fn json_patches() {
    let ok = json!([
        {"op": "test", "path": "/metadata/name", "value": "p"},
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "remove", "path": "/spec/containers/1"},
    ]);
    let got = apply_patch("Pod", PatchType::Json, &pod(), ok.to_string().as_bytes()).unwrap();
    assert_eq!(got["metadata"]["labels"], json!({"a": "1", "b": "2", "c": "3"}));
    assert_eq!(got["spec"]["containers"].as_array().unwrap().len(), 1);

    let failing = json!([
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "test", "path": "/metadata/name", "value": "other"},
    ]);
    let err = apply_patch("Pod", PatchType::Json, &pod(), failing.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.status_code(), 422);
    assert_eq!(
        err.to_string(),
        "operation '/1' failed at path '/metadata/name': value did not match"
    );

    let too_many = Value::Array(vec![json!({"op": "test", "path": "/kind", "value": "Pod"}); 10_001]);
    let err = apply_patch("Pod", PatchType::Json, &pod(), too_many.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.status_code(), 413);
    assert_eq!(
        err.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn merge_patches() {
    let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"containers": [{"name": "z"}]}});
    let got = apply_patch("Pod", PatchType::Merge, &pod(), patch.to_string().as_bytes()).unwrap();
    assert_eq!(got["metadata"]["labels"], json!({"b": "2"}));
    assert_eq!(got["spec"]["containers"], json!([{"name": "z"}]), "lists are replaced");
    // Merge patches need no kind-specific tags.
    assert!(apply_patch("Widget", PatchType::Merge, &pod(), b"{}").is_ok());
}
