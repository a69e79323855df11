use serde_json::{Value, json};

use super::*;

/// A usage map from `name=quantity` pairs, for comparisons.
fn list(pairs: &[(&str, &str)]) -> Usage {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), capstan_core::quantity::parse(v).unwrap()))
        .collect()
}

/// A usage map printed as `name=quantity` pairs, so tests also check how quantities print.
fn printed(usage: &Usage) -> Vec<String> {
    usage.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn pod(name: &str, containers: Value, status: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": containers},
        "status": status,
    })
}

fn container(name: &str, requests: Value, limits: Value) -> Value {
    json!({"name": name, "image": "nginx", "resources": {"requests": requests, "limits": limits}})
}

fn running() -> Value {
    json!({"phase": "Running"})
}

fn web_pod() -> Value {
    pod(
        "web",
        json!([container(
            "app",
            json!({"cpu": "500m", "memory": "128Mi"}),
            json!({"cpu": "1", "memory": "256Mi"})
        )]),
        running(),
    )
}

#[test]
fn pod_usage() {
    assert_eq!(
        printed(&usage("", "pods", &web_pod())),
        [
            "count/pods=1",
            "cpu=500m",
            "limits.cpu=1",
            "limits.memory=256Mi",
            "memory=128Mi",
            "pods=1",
            "requests.cpu=500m",
            "requests.memory=128Mi",
        ]
    );
    for phase in ["Succeeded", "Failed"] {
        let mut done = web_pod();
        done["status"]["phase"] = phase.into();
        assert_eq!(printed(&usage("", "pods", &done)), ["count/pods=1"], "{phase}");
    }
    let best_effort = pod("be", json!([{"name": "app"}]), json!({}));
    assert_eq!(printed(&usage("", "pods", &best_effort)), ["count/pods=1", "pods=1"]);
}

#[test]
fn pod_usage_sums_containers_and_takes_init_peaks() {
    let object = json!({
        "metadata": {"name": "p"},
        "spec": {
            "initContainers": [
                container("migrate", json!({"cpu": "2"}), json!({})),
                {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            ],
            "containers": [
                container("a", json!({"cpu": "250m", "example.com/gpu": "1", "hugepages-2Mi": "4Mi"}), json!({"hugepages-2Mi": "4Mi"})),
                container("b", json!({"cpu": "250m"}), json!({})),
            ],
            "overhead": {"cpu": "10m"},
        },
    });
    assert_eq!(
        printed(&usage("", "pods", &object)),
        [
            "count/pods=1",
            "cpu=2010m",
            "hugepages-2Mi=4Mi",
            "memory=64Mi",
            "pods=1",
            "requests.cpu=2010m",
            "requests.example.com/gpu=1",
            "requests.hugepages-2Mi=4Mi",
            "requests.memory=64Mi",
        ]
    );
}

#[test]
fn other_usage() {
    let svc = |spec: Value| json!({"metadata": {"name": "s"}, "spec": spec});
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        (
            "",
            "services",
            svc(json!({"ports": [{"port": 80}]})),
            vec!["count/services=1", "services=1"],
        ),
        (
            "",
            "services",
            svc(json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]})),
            vec!["count/services=1", "services=1", "services.nodeports=2"],
        ),
        (
            "",
            "services",
            svc(
                json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "nodePort": 30080}, {"port": 443}]}),
            ),
            vec![
                "count/services=1",
                "services=1",
                "services.loadbalancers=1",
                "services.nodeports=1",
            ],
        ),
        (
            "",
            "configmaps",
            json!({"metadata": {"name": "c"}}),
            vec!["configmaps=1", "count/configmaps=1"],
        ),
        (
            "",
            "secrets",
            json!({"metadata": {"name": "s"}}),
            vec!["count/secrets=1", "secrets=1"],
        ),
        (
            "",
            "serviceaccounts",
            json!({"metadata": {"name": "sa"}}),
            vec!["count/serviceaccounts=1"],
        ),
        (
            "apps",
            "deployments",
            json!({"metadata": {"name": "d"}}),
            vec!["count/deployments.apps=1"],
        ),
        (
            "apps",
            "replicasets",
            json!({"metadata": {"name": "r"}}),
            vec!["count/replicasets.apps=1"],
        ),
        (
            "",
            "persistentvolumeclaims",
            json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1.5Gi"}}}}),
            vec![
                "count/persistentvolumeclaims=1",
                "fast.storageclass.storage.k8s.io/persistentvolumeclaims=1",
                "fast.storageclass.storage.k8s.io/requests.storage=1536Mi",
                "persistentvolumeclaims=1",
                "requests.storage=1536Mi",
            ],
        ),
    ];
    for (group, resource, object, want) in cases {
        assert_eq!(printed(&usage(group, resource, &object)), want, "{resource}.{group}");
    }
}

fn quota(name: &str, spec: Value, status: Value) -> ResourceQuota {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec, "status": status}))
        .unwrap()
}

#[test]
fn used_sums_what_the_quota_tracks() {
    let rq = quota(
        "q",
        json!({"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5", "configmaps": "3", "services.nodeports": "2"}}),
        json!({}),
    );
    let done = {
        let mut p = web_pod();
        p["status"]["phase"] = "Succeeded".into();
        p
    };
    let second = pod(
        "second",
        json!([container("app", json!({"cpu": "1"}), json!({}))]),
        running(),
    );
    let deployment = json!({"metadata": {"name": "d"}});
    let service = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
    let objects = [
        ("", "pods", &web_pod()),
        ("", "pods", &second),
        ("", "pods", &done),
        ("apps", "deployments", &deployment),
        ("", "services", &service),
    ];
    assert_eq!(
        printed(&used(&rq, objects.iter().map(|(g, r, o)| (*g, *r, *o)))),
        [
            "configmaps=0",
            "count/deployments.apps=1",
            "pods=2",
            "requests.cpu=1500m",
            "services.nodeports=0"
        ]
    );
}

#[test]
fn used_respects_scopes() {
    let best_effort = pod("be", json!([{"name": "app"}]), running());
    let deployment = json!({"metadata": {"name": "d"}});
    let objects = [
        ("", "pods", &web_pod()),
        ("", "pods", &best_effort),
        ("apps", "deployments", &deployment),
    ];
    let scoped = quota(
        "be",
        json!({"hard": {"pods": "5", "count/deployments.apps": "1"}, "scopes": ["BestEffort"]}),
        json!({}),
    );
    assert_eq!(
        printed(&used(&scoped, objects.iter().map(|(g, r, o)| (*g, *r, *o)))),
        ["count/deployments.apps=0", "pods=1"]
    );
    let not = quota(
        "nbe",
        json!({"hard": {"pods": "5"}, "scopes": ["NotBestEffort"]}),
        json!({}),
    );
    assert_eq!(
        printed(&used(&not, objects.iter().map(|(g, r, o)| (*g, *r, *o)))),
        ["pods=1"]
    );
}

/// A quota whose controller has recorded `hard` and `used`.
fn synced(name: &str, hard: Value, used: Value) -> ResourceQuota {
    quota(name, json!({"hard": hard}), json!({"hard": hard, "used": used}))
}

#[test]
fn admit_charges_and_reports_new_usage() {
    let quotas = [
        synced(
            "compute",
            json!({"requests.cpu": "2", "pods": "10"}),
            json!({"requests.cpu": "1", "pods": "2"}),
        ),
        synced("objects", json!({"configmaps": "5"}), json!({"configmaps": "0"})),
    ];
    let changed = admit(&quotas, "", "pods", &web_pod(), None).unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, "compute");
    assert_eq!(printed(&changed[0].1), ["pods=3", "requests.cpu=1500m"]);
}

#[test]
fn admit_errors() {
    let no_limits = pod(
        "web",
        json!([
            container("app", json!({"cpu": "100m"}), json!({})),
            container("log", json!({}), json!({}))
        ]),
        running(),
    );
    let cases: Vec<(&str, Vec<ResourceQuota>, &str, Value, &str)> = vec![
        (
            "exceeded",
            vec![synced(
                "compute",
                json!({"requests.cpu": "1"}),
                json!({"requests.cpu": "1"}),
            )],
            "pods",
            web_pod(),
            "exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=1, limited: requests.cpu=1",
        ),
        (
            "several resources exceeded, only those listed",
            vec![synced(
                "compute",
                json!({"requests.cpu": "1", "requests.memory": "100Mi", "pods": "10"}),
                json!({"requests.cpu": "800m", "requests.memory": "0", "pods": "1"}),
            )],
            "pods",
            web_pod(),
            "exceeded quota: compute, requested: requests.cpu=500m,requests.memory=128Mi, used: requests.cpu=800m,requests.memory=0, limited: requests.cpu=1,requests.memory=100Mi",
        ),
        (
            "missing per-container limits",
            vec![synced(
                "compute",
                json!({"limits.cpu": "2", "requests.memory": "1Gi"}),
                json!({"limits.cpu": "0", "requests.memory": "0"}),
            )],
            "pods",
            no_limits.clone(),
            "failed quota: compute: must specify limits.cpu for: app,log; must specify requests.memory for: app,log",
        ),
        (
            "status not yet known",
            vec![quota(
                "fresh",
                json!({"hard": {"pods": "1"}}),
                json!({"hard": {"pods": "1", "requests.cpu": "1"}}),
            )],
            "pods",
            web_pod(),
            "status unknown for quota: fresh, resources: pods,requests.cpu",
        ),
        (
            "object count",
            vec![synced(
                "objects",
                json!({"count/deployments.apps": "2"}),
                json!({"count/deployments.apps": "2"}),
            )],
            "deployments",
            json!({"metadata": {"name": "d"}}),
            "exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=2, limited: count/deployments.apps=2",
        ),
        (
            "negative request",
            vec![synced(
                "compute",
                json!({"requests.cpu": "1"}),
                json!({"requests.cpu": "0"}),
            )],
            "pods",
            pod(
                "neg",
                json!([container("app", json!({"cpu": "-1"}), json!({}))]),
                running(),
            ),
            "quota usage is negative for resource(s): cpu,requests.cpu",
        ),
    ];
    for (what, quotas, resource, object, want) in cases {
        let group = if resource == "deployments" { "apps" } else { "" };
        let err = admit(&quotas, group, resource, &object, None).unwrap_err();
        assert_eq!(err.to_string(), want, "{what}");
    }
}

#[test]
fn admit_ignores_what_quota_does_not_apply_to() {
    let compute = synced("compute", json!({"requests.cpu": "1"}), json!({"requests.cpu": "1"}));
    // A quota without recorded status imposes nothing yet.
    let unsynced = quota("new", json!({"hard": {"pods": "0"}}), json!({}));
    assert_eq!(admit(&[unsynced], "", "pods", &web_pod(), None), Ok(vec![]));
    // Pod updates never change quota usage.
    let old = web_pod();
    assert_eq!(
        admit(std::slice::from_ref(&compute), "", "pods", &web_pod(), Some(&old)),
        Ok(vec![])
    );
    // A quota on pods does not apply to config maps.
    assert_eq!(
        admit(std::slice::from_ref(&compute), "", "configmaps", &json!({}), None),
        Ok(vec![])
    );
    // A scoped quota matches only pods in its scope.
    let terminating = quota(
        "batch",
        json!({"hard": {"pods": "0"}, "scopes": ["Terminating"]}),
        json!({"hard": {"pods": "0"}, "used": {"pods": "0"}}),
    );
    assert_eq!(
        admit(std::slice::from_ref(&terminating), "", "pods", &web_pod(), None),
        Ok(vec![])
    );
    let mut job_pod = web_pod();
    job_pod["spec"]["activeDeadlineSeconds"] = 60.into();
    assert_eq!(
        admit(std::slice::from_ref(&terminating), "", "pods", &job_pod, None)
            .unwrap_err()
            .to_string(),
        "exceeded quota: batch, requested: pods=1, used: pods=0, limited: pods=0"
    );
    assert_eq!(admit(&[terminating], "", "configmaps", &json!({}), None), Ok(vec![]));
}

#[test]
fn priority_class_scope() {
    let rq = |operator: &str, values: Value| {
        quota(
            "high",
            json!({"hard": {"pods": "5"}, "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": operator, "values": values}]}}),
            json!({"hard": {"pods": "5"}, "used": {"pods": "0"}}),
        )
    };
    let with_class = |class: Option<&str>| {
        let mut p = web_pod();
        if let Some(c) = class {
            p["spec"]["priorityClassName"] = c.into();
        }
        p
    };
    let cases = [
        ("In", json!(["high"]), Some("high"), true),
        ("In", json!(["high"]), Some("low"), false),
        ("In", json!(["high"]), None, false),
        ("NotIn", json!(["high"]), Some("low"), true),
        ("NotIn", json!(["high"]), None, true),
        ("NotIn", json!(["high"]), Some("high"), false),
        ("Exists", json!([]), Some("low"), true),
        ("Exists", json!([]), None, false),
        ("DoesNotExist", json!([]), None, true),
    ];
    for (operator, values, class, charged) in cases {
        let changed = admit(&[rq(operator, values.clone())], "", "pods", &with_class(class), None).unwrap();
        assert_eq!(!changed.is_empty(), charged, "{operator} {values} {class:?}");
    }
}

#[test]
fn service_updates_are_charged_the_difference() {
    let rq = synced(
        "svc",
        json!({"services": "10", "services.nodeports": "2"}),
        json!({"services": "1", "services.nodeports": "1"}),
    );
    let old = json!({"metadata": {"name": "s", "resourceVersion": "5"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
    let mut new = old.clone();
    new["spec"]["type"] = "NodePort".into();
    let changed = admit(std::slice::from_ref(&rq), "", "services", &new, Some(&old)).unwrap();
    assert_eq!(printed(&changed[0].1), ["services=1", "services.nodeports=2"]);
    new["spec"]["ports"] = json!([{"port": 80}, {"port": 443}]);
    assert_eq!(
        admit(std::slice::from_ref(&rq), "", "services", &new, Some(&old))
            .unwrap_err()
            .to_string(),
        "exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=1, limited: services.nodeports=2"
    );
    // Without a resourceVersion the old object is not trusted: the whole object is charged.
    let mut unversioned = old.clone();
    unversioned["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let changed = admit(std::slice::from_ref(&rq), "", "services", &old, Some(&unversioned)).unwrap();
    assert_eq!(printed(&changed[0].1), ["services=2", "services.nodeports=1"]);
}

#[test]
fn new_usage_keeps_quantity_formats() {
    let rq = synced(
        "mem",
        json!({"requests.memory": "1Gi"}),
        json!({"requests.memory": "0"}),
    );
    let changed = admit(&[rq], "", "pods", &web_pod(), None).unwrap();
    assert_eq!(changed[0].1, list(&[("requests.memory", "128Mi")]));
    assert_eq!(printed(&changed[0].1), ["requests.memory=128Mi"]);
}
