use serde_json::{Value, json};

use super::*;

/// 2024-01-01T00:10:00Z: ten minutes after every object's creation below.
const NOW: i64 = 1_704_067_800;
const CREATED: &str = "2024-01-01T00:00:00Z";

fn one_row(kind: &str, object: Value) -> Value {
    let t = table(kind, &[object], None, IncludeObject::None, NOW);
    t["rows"][0].clone()
}

fn cells(kind: &str, object: Value) -> Vec<Value> {
    one_row(kind, object)["cells"].as_array().cloned().unwrap()
}

fn column_names(kind: &str) -> Vec<(String, i64)> {
    let t = table(kind, &[], None, IncludeObject::None, NOW);
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["priority"].as_i64().unwrap()))
        .collect()
}

#[test]
fn columns_per_kind() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "Pod",
            &["Name", "Ready", "Status", "Restarts", "Age"],
            &["IP", "Node", "Nominated Node", "Readiness Gates"],
        ),
        (
            "Deployment",
            &["Name", "Ready", "Up-to-date", "Available", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "ReplicaSet",
            &["Name", "Desired", "Current", "Ready", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "Service",
            &["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
            &["Selector"],
        ),
        ("Endpoints", &["Name", "Endpoints", "Age"], &[]),
        (
            "Node",
            &["Name", "Status", "Roles", "Age", "Version"],
            &[
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            ],
        ),
        ("Namespace", &["Name", "Status", "Age"], &[]),
        ("ConfigMap", &["Name", "Data", "Age"], &[]),
        ("Secret", &["Name", "Type", "Data", "Age"], &[]),
        ("ServiceAccount", &["Name", "Secrets", "Age"], &[]),
        (
            "Event",
            &["Last Seen", "Type", "Reason", "Object", "Message"],
            &["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        ("Lease", &["Name", "Holder", "Age"], &[]),
        (
            "PriorityClass",
            &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
            &[],
        ),
        ("ResourceQuota", &["Name", "Request", "Limit", "Age"], &[]),
        ("LimitRange", &["Name", "Created At"], &[]),
        ("Widget", &["Name", "Created At"], &[]),
    ];
    for (kind, normal, wide) in cases {
        let columns = column_names(kind);
        let got_normal: Vec<&str> = columns.iter().filter(|c| c.1 == 0).map(|c| c.0.as_str()).collect();
        let got_wide: Vec<&str> = columns.iter().filter(|c| c.1 == 1).map(|c| c.0.as_str()).collect();
        assert_eq!(&got_normal, normal, "{kind}");
        assert_eq!(&got_wide, wide, "{kind}");
    }
}

#[test]
fn column_definition_fields() {
    let t = table("Pod", &[], Some("42"), IncludeObject::Metadata, NOW);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(t["rows"], json!([]));
    let name = &t["columnDefinitions"][0];
    assert_eq!(name["type"], "string");
    assert_eq!(name["format"], "name");
    assert!(name["description"].as_str().unwrap().starts_with("Name must be unique"));
    assert_eq!(t["columnDefinitions"][3]["format"], "");
    let default = table("LimitRange", &[], None, IncludeObject::None, NOW);
    assert_eq!(default["metadata"], json!({}));
    assert_eq!(default["columnDefinitions"][1]["type"], "date");
}

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": spec,
        "status": status,
    })
}

fn running(name: &str, ready: bool, restarts: i32) -> Value {
    json!({
        "name": name, "image": "nginx", "imageID": "", "ready": ready, "restartCount": restarts,
        "state": {"running": {"startedAt": CREATED}},
    })
}

fn waiting(name: &str, reason: &str, restarts: i32) -> Value {
    json!({
        "name": name, "image": "nginx", "imageID": "", "ready": false, "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
    })
}

fn terminated(name: &str, reason: Option<&str>, exit_code: i32) -> Value {
    let mut t = json!({"exitCode": exit_code, "finishedAt": CREATED});
    if let Some(r) = reason {
        t["reason"] = r.into();
    }
    json!({
        "name": name, "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": t},
    })
}

fn one_container() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"})
}

fn with_init() -> Value {
    json!({
        "initContainers": [{"name": "setup", "image": "busybox"}],
        "containers": [{"name": "app", "image": "nginx"}],
    })
}

/// (ready, status, restarts) of a pod.
fn pod_summary(object: Value) -> (String, String, String) {
    let c = cells("Pod", object);
    let s = |i: usize| c[i].as_str().unwrap().to_string();
    (s(1), s(2), s(3))
}

#[test]
fn pod_status_strings() {
    let ready = json!({"type": "Ready", "status": "True"});
    let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
        (
            "running and ready",
            pod(
                one_container(),
                json!({"phase": "Running", "conditions": [ready], "containerStatuses": [running("app", true, 0)]}),
            ),
            ("1/1", "Running", "0"),
        ),
        (
            "pending, no status yet",
            pod(one_container(), json!({"phase": "Pending"})),
            ("0/1", "Pending", "0"),
        ),
        (
            "init container still initializing",
            pod(
                with_init(),
                json!({
                    "phase": "Pending",
                    "initContainerStatuses": [waiting("setup", "PodInitializing", 0)],
                    "containerStatuses": [waiting("app", "PodInitializing", 0)],
                }),
            ),
            ("0/1", "Init:0/1", "0"),
        ),
        (
            "init container waiting with a reason",
            pod(
                with_init(),
                json!({"phase": "Pending", "initContainerStatuses": [waiting("setup", "ImagePullBackOff", 0)]}),
            ),
            ("0/1", "Init:ImagePullBackOff", "0"),
        ),
        (
            "init container failed without a reason",
            pod(
                with_init(),
                json!({"phase": "Pending", "initContainerStatuses": [terminated("setup", None, 3)]}),
            ),
            ("0/1", "Init:ExitCode:3", "0"),
        ),
        (
            "init container failed with a reason",
            pod(
                with_init(),
                json!({"phase": "Pending", "initContainerStatuses": [terminated("setup", Some("Error"), 1)]}),
            ),
            ("0/1", "Init:Error", "0"),
        ),
        (
            "init done, app crash looping",
            pod(
                with_init(),
                json!({
                    "phase": "Running",
                    "initContainerStatuses": [terminated("setup", Some("Completed"), 0)],
                    "containerStatuses": [waiting("app", "CrashLoopBackOff", 4)],
                }),
            ),
            ("0/1", "CrashLoopBackOff", "4"),
        ),
        (
            "completed",
            pod(
                one_container(),
                json!({"phase": "Succeeded", "containerStatuses": [terminated("app", Some("Completed"), 0)]}),
            ),
            ("0/1", "Completed", "0"),
        ),
        (
            "app exited without a reason",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [terminated("app", None, 137)]}),
            ),
            ("0/1", "ExitCode:137", "0"),
        ),
        (
            "one completed, one running and ready",
            pod(
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({
                    "phase": "Running",
                    "conditions": [ready],
                    "containerStatuses": [terminated("a", Some("Completed"), 0), running("b", true, 0)],
                }),
            ),
            ("1/2", "Running", "0"),
        ),
        (
            "one completed, one running, pod not ready",
            pod(
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({
                    "phase": "Running",
                    "containerStatuses": [terminated("a", Some("Completed"), 0), running("b", true, 0)],
                }),
            ),
            ("1/2", "NotReady", "0"),
        ),
        (
            "scheduling gated",
            pod(
                one_container(),
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            ("0/1", "SchedulingGated", "0"),
        ),
        (
            "evicted",
            pod(one_container(), json!({"phase": "Failed", "reason": "Evicted"})),
            ("0/1", "Evicted", "0"),
        ),
    ];
    for (what, object, (ready, status, restarts)) in cases {
        assert_eq!(
            pod_summary(object),
            (ready.into(), status.into(), restarts.into()),
            "{what}"
        );
    }
}

#[test]
fn pod_restarts_show_when_the_last_one_was() {
    let mut app = waiting("app", "CrashLoopBackOff", 5);
    app["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:08:00Z"}});
    let object = pod(one_container(), json!({"phase": "Running", "containerStatuses": [app]}));
    assert_eq!(pod_summary(object).2, "5 (2m ago)");
}

#[test]
fn pod_deletion() {
    let mut object = pod(
        one_container(),
        json!({"phase": "Running", "containerStatuses": [running("app", true, 0)]}),
    );
    object["metadata"]["deletionTimestamp"] = "2024-01-01T00:09:00Z".into();
    assert_eq!(pod_summary(object.clone()).1, "Terminating");
    object["status"]["reason"] = "NodeLost".into();
    assert_eq!(pod_summary(object.clone()).1, "Unknown");
    // Not being deleted, a pod on a lost node shows the reason.
    object["metadata"].as_object_mut().unwrap().remove("deletionTimestamp");
    object["status"]["containerStatuses"] = json!([]);
    assert_eq!(pod_summary(object.clone()).1, "NodeLost");
    // A finished pod being deleted keeps its final status.
    let mut done = pod(
        one_container(),
        json!({"phase": "Succeeded", "containerStatuses": [terminated("app", Some("Completed"), 0)]}),
    );
    done["metadata"]["deletionTimestamp"] = CREATED.into();
    assert_eq!(pod_summary(done).1, "Completed");
}

#[test]
fn pod_sidecars_count_as_containers() {
    let spec = json!({
        "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "nginx"}],
    });
    let mut proxy = running("proxy", true, 2);
    proxy["started"] = true.into();
    let status = json!({
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [proxy],
        "containerStatuses": [running("app", true, 1)],
    });
    assert_eq!(
        pod_summary(pod(spec, status)),
        ("2/2".into(), "Running".into(), "3".into())
    );
}

#[test]
fn pod_wide_cells_and_conditions() {
    let object = pod(
        json!({"containers": [{"name": "app"}], "nodeName": "node-1", "readinessGates": [{"conditionType": "example.com/lb"}]}),
        json!({
            "phase": "Running",
            "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}],
            "conditions": [{"type": "example.com/lb", "status": "True"}],
            "containerStatuses": [running("app", true, 0)],
        }),
    );
    let c = cells("Pod", object);
    assert_eq!(c[0], "web");
    assert_eq!(c[4], "10m");
    assert_eq!(
        &c[5..],
        &[json!("10.0.0.5"), json!("node-1"), json!("<none>"), json!("1/1")]
    );
    let bare = cells("Pod", pod(json!({"containers": [{"name": "app"}]}), json!({})));
    assert_eq!(
        &bare[5..],
        &[json!("<none>"), json!("<none>"), json!("<none>"), json!("<none>")]
    );
    let succeeded = one_row("Pod", pod(one_container(), json!({"phase": "Succeeded"})));
    assert_eq!(
        succeeded["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    assert!(
        one_row("Pod", pod(one_container(), json!({"phase": "Running"})))
            .get("conditions")
            .is_none()
    );
}

#[test]
fn human_duration_table() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 3 * 60, "5h3m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (300 * 86400, "300d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (4 * 365 * 86400, "4y"),
        (9 * 365 * 86400, "9y"),
    ];
    for (seconds, want) in cases {
        assert_eq!(human_duration(seconds), want, "{seconds}s");
    }
}

#[test]
fn include_object_variants() {
    assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("Metadata")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
    assert_eq!(IncludeObject::parse(Some("Object")), Ok(IncludeObject::Object));
    assert_eq!(
        IncludeObject::parse(Some("all")),
        Err(r#"unrecognized includeObject value: "all""#.to_string())
    );

    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}, "creationTimestamp": CREATED},
        "data": {"a": "1"},
    });
    let objects = [cm.clone()];
    let none = table("ConfigMap", &objects, Some("7"), IncludeObject::None, NOW);
    assert!(none["rows"][0].get("object").is_none());
    let meta = table("ConfigMap", &objects, Some("7"), IncludeObject::Metadata, NOW);
    assert_eq!(
        meta["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
    );
    let full = table("ConfigMap", &objects, Some("7"), IncludeObject::Object, NOW);
    assert_eq!(full["rows"][0]["object"], cm);
    assert_eq!(full["rows"][0]["cells"], json!(["cfg", 1, "10m"]));
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": CREATED})
}

#[test]
fn workload_cells() {
    let template =
        json!({"spec": {"containers": [{"name": "app", "image": "nginx:1"}, {"name": "log", "image": "fluentd"}]}});
    let deployment = json!({
        "metadata": meta("web"),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}, {"key": "canary", "operator": "DoesNotExist"}],
            },
            "template": template,
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    assert_eq!(
        cells("Deployment", deployment),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1,fluentd"),
            json!("app=web,!canary,tier in (a,b)"),
        ]
    );
    let fresh = json!({"metadata": meta("new"), "spec": {"selector": {}, "template": {}}});
    assert_eq!(cells("Deployment", fresh)[1..4], [json!("0/1"), json!(0), json!(0)]);

    let rs = json!({
        "metadata": meta("web-abc"),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}}, "template": template},
        "status": {"replicas": 2, "readyReplicas": 1},
    });
    assert_eq!(
        cells("ReplicaSet", rs),
        vec![
            json!("web-abc"),
            json!(2),
            json!(2),
            json!(1),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1,fluentd"),
            json!("app=web,pod-template-hash=abc"),
        ]
    );
    let empty_selector = json!({"metadata": meta("x"), "spec": {"selector": {}}, "status": {"replicas": 0}});
    assert_eq!(cells("ReplicaSet", empty_selector)[7], "<none>");
}

#[test]
fn service_cells() {
    let svc = |spec: Value, status: Value| json!({"metadata": meta("svc"), "spec": spec, "status": status});
    let cases = vec![
        (
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}], "selector": {"k8s-app": "dns"}}),
                json!({}),
            ),
            json!([
                "svc",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "53/UDP,53/TCP",
                "10m",
                "k8s-app=dns"
            ]),
        ),
        (
            svc(
                json!({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                json!({}),
            ),
            json!([
                "svc",
                "NodePort",
                "10.96.0.11",
                "<none>",
                "80:30080/TCP",
                "10m",
                "<none>"
            ]),
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": [{"port": 443, "nodePort": 31443}]}),
                json!({}),
            ),
            json!([
                "svc",
                "LoadBalancer",
                "10.96.0.12",
                "<pending>",
                "443:31443/TCP",
                "10m",
                "<none>"
            ]),
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "externalIPs": ["1.2.3.4"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}}),
            ),
            json!([
                "svc",
                "LoadBalancer",
                "10.96.0.12",
                "5.6.7.8,lb.example.com,1.2.3.4",
                "<none>",
                "10m",
                "<none>"
            ]),
        ),
        (
            svc(
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
            ),
            json!([
                "svc",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "10m",
                "<none>"
            ]),
        ),
        (
            svc(json!({"clusterIP": "None", "clusterIPs": ["None"]}), json!({})),
            json!(["svc", "ClusterIP", "None", "<none>", "<none>", "10m", "<none>"]),
        ),
    ];
    for (object, want) in cases {
        assert_eq!(one_row("Service", object)["cells"], want);
    }
}

#[test]
fn endpoints_cells() {
    let ep = |subsets: Value| json!({"metadata": meta("web"), "subsets": subsets});
    assert_eq!(cells("Endpoints", ep(json!([])))[1], "<none>");
    let two = ep(json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}]}]));
    assert_eq!(cells("Endpoints", two)[1], "10.0.0.1:80,[fd00::1]:80");
    let many =
        ep(json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]));
    assert_eq!(
        cells("Endpoints", many)[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    );
    let headless = ep(json!([{"addresses": [{"ip": "10.0.0.1"}]}]));
    assert_eq!(cells("Endpoints", headless)[1], "10.0.0.1");
}

#[test]
fn node_cells() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": CREATED, "labels": {
            "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.34.0", "osImage": "Capstan", "kernelVersion": "", "containerRuntimeVersion": "capstan://0.1.0",
                "architecture": "amd64", "bootID": "", "machineID": "", "systemUUID": "", "kubeProxyVersion": "", "operatingSystem": "linux"},
        },
    });
    assert_eq!(
        one_row("Node", node)["cells"],
        json!([
            "n1",
            "Ready,SchedulingDisabled",
            "control-plane,edge,worker",
            "10m",
            "v1.34.0",
            "192.168.1.10",
            "<none>",
            "Capstan",
            "<unknown>",
            "capstan://0.1.0"
        ])
    );
    let unknown =
        json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(
        cells("Node", unknown)[1..4],
        [json!("NotReady"), json!("<none>"), json!("<unknown>")]
    );
    assert_eq!(cells("Node", json!({"metadata": {"name": "n3"}}))[1], "Unknown");
}

#[test]
fn small_kinds() {
    assert_eq!(
        cells(
            "Namespace",
            json!({"metadata": meta("dev"), "status": {"phase": "Terminating"}})
        ),
        vec![json!("dev"), json!("Terminating"), json!("10m")]
    );
    assert_eq!(cells("Namespace", json!({"metadata": meta("dev")}))[1], "Active");
    assert_eq!(
        cells(
            "ConfigMap",
            json!({"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
        )[1],
        3
    );
    assert_eq!(
        cells(
            "Secret",
            json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
        ),
        vec![json!("s"), json!("kubernetes.io/tls"), json!(2), json!("10m")]
    );
    assert_eq!(
        cells("Secret", json!({"metadata": meta("s")}))[1..3],
        [json!("Opaque"), json!(0)]
    );
    assert_eq!(
        cells("ServiceAccount", json!({"metadata": meta("default")})),
        vec![json!("default"), json!(0), json!("10m")]
    );
    assert_eq!(
        cells(
            "Lease",
            json!({"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "capstan_1"}})
        ),
        vec![json!("kube-scheduler"), json!("capstan_1"), json!("10m")]
    );
    assert_eq!(
        cells(
            "PriorityClass",
            json!({"metadata": meta("high"), "value": 1000, "globalDefault": true})
        ),
        vec![
            json!("high"),
            json!(1000),
            json!(true),
            json!("10m"),
            json!("PreemptLowerPriority")
        ]
    );
    assert_eq!(
        cells(
            "LimitRange",
            json!({"metadata": meta("limits"), "spec": {"limits": []}})
        ),
        vec![json!("limits"), json!("2024-01-01T00:00:00Z")]
    );
    assert_eq!(
        cells("Widget", json!({"metadata": {"name": "w"}}))[1],
        "0001-01-01T00:00:00Z"
    );
}

#[test]
fn resource_quota_cells() {
    let rq = json!({
        "metadata": meta("compute"),
        "spec": {"hard": {"requests.cpu": "1", "limits.cpu": "2", "pods": "10", "requests.memory": "1Gi", "limits.memory": "2Gi"}},
        "status": {
            "hard": {"requests.cpu": "1", "limits.cpu": "2", "pods": "10", "requests.memory": "1Gi", "limits.memory": "2Gi"},
            "used": {"requests.cpu": "500m", "limits.cpu": "1", "pods": "1", "requests.memory": "0.5Gi"},
        },
    });
    assert_eq!(
        cells("ResourceQuota", rq),
        vec![
            json!("compute"),
            json!("pods: 1/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi"),
            json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
            json!("10m"),
        ]
    );
    assert_eq!(
        cells("ResourceQuota", json!({"metadata": meta("empty")}))[1..3],
        [json!(""), json!("")]
    );
}

#[test]
fn event_cells() {
    let event = json!({
        "metadata": meta("web.17a"),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-01-01T00:01:00Z",
        "lastTimestamp": "2024-01-01T00:09:30Z",
        "count": 7,
    });
    assert_eq!(
        one_row("Event", event)["cells"],
        json!([
            "30s",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "9m",
            7,
            "web.17a"
        ])
    );
    // events.k8s.io style: eventTime only, no count, reporting controller as source.
    let modern = json!({
        "metadata": meta("x"),
        "involvedObject": {"kind": "Node"},
        "eventTime": "2024-01-01T00:09:58.500000Z",
        "reportingComponent": "capstan-scheduler",
        "reason": "Scheduled",
    });
    let c = cells("Event", modern);
    assert_eq!(c[0], "1s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "capstan-scheduler");
    assert_eq!(c[7], "1s");
    assert_eq!(c[8], 1);
    let unknown = cells("Event", json!({"metadata": meta("y"), "involvedObject": {}}));
    assert_eq!(unknown[0], "<unknown>");
}

#[test]
fn rows_keep_object_order() {
    let objects: Vec<Value> = ["b", "a", "c"]
        .iter()
        .map(|n| json!({"metadata": {"name": n, "creationTimestamp": CREATED}}))
        .collect();
    let t = table("ConfigMap", &objects, None, IncludeObject::None, NOW);
    let names: Vec<&str> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a", "c"]);
}
