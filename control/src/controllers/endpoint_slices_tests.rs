//! Table tests of the EndpointSlice core: (Service, pods, stored slices) → effects.

use serde_json::{Value, json};

use super::*;

const UID: &str = "svc-uid";

fn service(spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": UID, "labels": {"team": "a"}},
        "spec": spec,
    }))
    .unwrap()
}

/// A ClusterIP Service selecting `app=web`, port 80 to the pods' `http` port.
fn web() -> Service {
    service(
        json!({"clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"], "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
    )
}

/// A running pod of `app=web` on node `n1`.
fn pod(name: &str, ip: &str, ready: bool) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "img",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

fn pods(values: Vec<Value>) -> Vec<Pod> {
    values.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect()
}

/// `n` ready pods p0.. with IPs 10.1.x.y.
fn many(n: usize) -> Vec<Pod> {
    pods(
        (0..n)
            .map(|i| pod(&format!("p{i:03}"), &format!("10.1.{}.{}", i / 200, i % 200 + 1), true))
            .collect(),
    )
}

/// The endpoint the controller writes for a ready pod.
fn ep(name: &str, ip: &str) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false},
        "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": format!("uid-{name}")}})
}

fn sync(svc: &Service, pods: &[Pod], slices: &[EndpointSlice]) -> Vec<Effect> {
    reconcile(&Snapshot {
        service: svc,
        pods,
        slices,
    })
}

/// Stores a created slice as the API would: named, with a uid.
fn stored(effect: &Effect, name: &str) -> EndpointSlice {
    let (Effect::Create(slice) | Effect::Update(slice)) = effect else {
        panic!("{effect:?}")
    };
    let mut slice = slice.clone();
    slice.metadata.name = Some(name.to_owned());
    slice.metadata.uid = Some(format!("uid-{name}"));
    slice.metadata.generate_name = None;
    slice
}

/// Effects as short strings: `create 3`, `update web-a 2`, `delete web-b`.
fn summary(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Create(s) => format!("create {}", s.endpoints.len()),
            Effect::Update(s) => format!(
                "update {} {}",
                s.metadata.name.as_deref().unwrap_or("?"),
                s.endpoints.len()
            ),
            Effect::Delete { name, .. } => format!("delete {name}"),
        })
        .collect()
}

#[test]
fn a_new_service_gets_a_slice_of_its_pods_with_their_conditions() {
    let mut terminating = pod("c", "10.0.0.3", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let mut finished = pod("d", "10.0.0.4", true);
    finished["status"]["phase"] = json!("Succeeded");
    let mut other = pod("e", "10.0.0.5", true);
    other["metadata"]["labels"] = json!({"app": "db"});
    let pods = pods(vec![
        pod("a", "10.0.0.1", true),
        pod("b", "10.0.0.2", false),
        terminating,
        finished,
        other,
    ]);
    let effects = sync(&web(), &pods, &[]);
    let [Effect::Create(slice)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let mut not_ready = ep("b", "10.0.0.2");
    not_ready["conditions"] = json!({"ready": false, "serving": false, "terminating": false});
    let mut draining = ep("c", "10.0.0.3");
    draining["conditions"] = json!({"ready": false, "serving": true, "terminating": true});
    assert_eq!(
        serde_json::to_value(slice).unwrap(),
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"generateName": "web-", "namespace": "ns",
                "labels": {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": UID,
                    "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4",
            "endpoints": [ep("a", "10.0.0.1"), not_ready, draining],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        })
    );
}

#[test]
fn publishing_not_ready_addresses_makes_every_endpoint_ready() {
    let mut svc = serde_json::to_value(web()).unwrap();
    svc["spec"]["publishNotReadyAddresses"] = json!(true);
    let svc: Service = serde_json::from_value(svc).unwrap();
    let effects = sync(&svc, &pods(vec![pod("a", "10.0.0.1", false)]), &[]);
    let [Effect::Create(slice)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let conditions = slice.endpoints[0].conditions.clone().unwrap();
    assert_eq!((conditions.ready, conditions.serving), (Some(true), Some(false)));
}

#[test]
fn slices_hold_at_most_a_hundred_endpoints() {
    let effects = sync(&web(), &many(250), &[]);
    assert_eq!(summary(&effects), ["create 100", "create 100", "create 50"]);
    let stored: Vec<EndpointSlice> = effects
        .iter()
        .enumerate()
        .map(|(i, e)| stored(e, &format!("web-{i}")))
        .collect();
    assert_eq!(
        sync(&web(), &many(250), &stored),
        vec![],
        "a second sync changes nothing"
    );

    // Ten more pods fill the slice with room; ten fewer shrink the one they were in.
    assert_eq!(summary(&sync(&web(), &many(260), &stored)), ["update web-2 60"]);
    assert_eq!(summary(&sync(&web(), &many(240), &stored)), ["update web-2 40"]);
}

#[test]
fn leftovers_go_to_the_unchanged_slice_they_fill_best_or_to_a_new_one() {
    let all = many(100);
    let first = stored(&sync(&web(), &all[..60], &[])[0], "web-a");
    let second = stored(&sync(&web(), &all[60..90], &[])[0], "web-b");
    // The ten pods left fit both; web-a (60) ends up fuller than web-b (30).
    let effects = sync(&web(), &all, &[second.clone(), first.clone()]);
    assert_eq!(summary(&effects), ["update web-a 70"]);
    // Fifty fit web-b (30) but not web-a (60); ninety fit neither: a new slice.
    assert_eq!(
        summary(&sync(&web(), &many(140), &[first.clone(), second.clone()])),
        ["update web-b 80"]
    );
    assert_eq!(summary(&sync(&web(), &many(180), &[first, second])), ["create 90"]);
}

#[test]
fn changes_rewrite_only_the_slice_they_are_in() {
    let two = pods(vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)]);
    let slice = stored(&sync(&web(), &two, &[])[0], "web-x");
    assert_eq!(sync(&web(), &two, std::slice::from_ref(&slice)), vec![]);

    let unready = pods(vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false)]);
    let effects = sync(&web(), &unready, std::slice::from_ref(&slice));
    let [Effect::Update(next)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        next.metadata.uid.as_deref(),
        Some("uid-web-x"),
        "the update names its slice"
    );
    assert_eq!(next.endpoints[1].conditions.as_ref().and_then(|c| c.ready), Some(false));

    // Relabelling the Service relabels the slice and leaves the reserved labels.
    let mut relabelled = web();
    relabelled.metadata.labels = Some(BTreeMap::from([("team".to_owned(), "b".to_owned())]));
    let effects = sync(&relabelled, &two, &[slice]);
    let [Effect::Update(next)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let labels = next.metadata.labels.clone().unwrap();
    assert_eq!(
        (labels["team"].as_str(), labels[SERVICE_NAME_LABEL].as_str()),
        ("b", "web")
    );
}

#[test]
fn a_switched_selector_reuses_the_slice_by_name() {
    let blue = pods(vec![pod("blue", "10.0.0.1", true)]);
    let slice = stored(&sync(&web(), &blue, &[])[0], "web-x");
    let mut green = pod("green", "10.0.0.2", true);
    green["metadata"]["labels"] = json!({"app": "web", "version": "2"});
    let mut green_only = serde_json::to_value(web()).unwrap();
    green_only["spec"]["selector"] = json!({"app": "web", "version": "2"});
    let green_only: Service = serde_json::from_value(green_only).unwrap();
    let all = pods(vec![pod("blue", "10.0.0.1", true), green]);
    let effects = sync(&green_only, &all, &[slice]);
    let [Effect::Update(next)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(next.metadata.name.as_deref(), Some("web-x"));
    assert_eq!(
        serde_json::to_value(&next.endpoints).unwrap(),
        json!([ep("green", "10.0.0.2")])
    );
}

#[test]
fn a_service_selecting_nothing_keeps_one_placeholder() {
    let effects = sync(&web(), &[], &[]);
    let [Effect::Create(placeholder)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(placeholder.endpoints.is_empty());
    assert_eq!(placeholder.ports, Some(vec![]));
    let placeholder = stored(&effects[0], "web-p");
    assert_eq!(sync(&web(), &[], std::slice::from_ref(&placeholder)), vec![]);

    // Pods arrive: the placeholder becomes their slice.
    let one = pods(vec![pod("a", "10.0.0.1", true)]);
    assert_eq!(summary(&sync(&web(), &one, &[placeholder])), ["update web-p 1"]);

    // The last pod goes: its slice gives way to a placeholder (reusing the name).
    let slice = stored(&sync(&web(), &one, &[])[0], "web-q");
    let effects = sync(&web(), &[], &[slice]);
    let [Effect::Update(next)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        (next.metadata.name.as_deref(), next.endpoints.len(), next.ports.clone()),
        (Some("web-q"), 0, Some(vec![]))
    );
}

#[test]
fn slices_of_another_owner_or_address_type_go() {
    let one = pods(vec![pod("a", "10.0.0.1", true)]);
    let mut old_owner = stored(&sync(&web(), &one, &[])[0], "web-old");
    old_owner.metadata.owner_references.as_mut().unwrap()[0].uid = "old-svc".into();
    // Not reused: it may be on its way out with the Service that owned it.
    assert_eq!(
        summary(&sync(&web(), &one, &[old_owner])),
        ["create 1", "delete web-old"]
    );

    let mut v6 = stored(&sync(&web(), &one, &[])[0], "web-v6");
    v6.address_type = "IPv6".into();
    let current = stored(&sync(&web(), &one, &[])[0], "web-v4");
    assert_eq!(summary(&sync(&web(), &one, &[current, v6])), ["delete web-v6"]);

    // A slice already being deleted is left to finish.
    let mut going = stored(&sync(&web(), &one, &[])[0], "web-going");
    going.metadata.deletion_timestamp = serde_json::from_value(json!("2025-01-01T00:00:00Z")).unwrap();
    assert_eq!(summary(&sync(&web(), &one, &[going])), ["create 1"]);
}

#[test]
fn ports_resolved_differently_make_separate_slices() {
    let mut b = pod("b", "10.0.0.2", true);
    b["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 9090}]);
    let mut c = pod("c", "10.0.0.3", true);
    c["spec"]["containers"][0]["ports"] = json!([]);
    let effects = sync(&web(), &pods(vec![pod("a", "10.0.0.1", true), b, c]), &[]);
    let ports: Vec<Value> = effects
        .iter()
        .map(|e| match e {
            Effect::Create(s) => json!([s.ports, s.endpoints.len()]),
            other => panic!("{other:?}"),
        })
        .collect();
    // A pod without the named port is still listed, without ports (kube does the same).
    assert_eq!(
        ports,
        [
            json!([[], 1]),
            json!([[{"name": "http", "port": 8080, "protocol": "TCP"}], 1]),
            json!([[{"name": "http", "port": 9090, "protocol": "TCP"}], 1]),
        ]
    );
}

#[test]
fn services_left_alone_and_services_going() {
    let one = pods(vec![pod("a", "10.0.0.1", true)]);
    for spec in [
        json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
        json!({"type": "ExternalName", "externalName": "example.com", "selector": {"app": "web"}}),
    ] {
        assert_eq!(sync(&service(spec.clone()), &one, &[]), vec![], "{spec}");
    }
    let mut deleting = web();
    deleting.metadata.deletion_timestamp = serde_json::from_value(json!("2025-01-01T00:00:00Z")).unwrap();
    assert_eq!(
        sync(&deleting, &one, &[]),
        vec![],
        "no new slices for a Service being deleted"
    );
}

#[test]
fn headless_services_are_marked_and_typed_by_their_families() {
    let headless = service(json!({"clusterIP": "None", "selector": {"app": "web"}}));
    let effects = sync(&headless, &pods(vec![pod("a", "10.0.0.1", true)]), &[]);
    // Without families a headless Service gets both types; this pod has only an IPv4.
    assert_eq!(summary(&effects), ["create 1", "create 0"]);
    let labels = match &effects[0] {
        Effect::Create(s) => s.metadata.labels.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
    let spec = |v: Value| serde_json::from_value::<ServiceSpec>(v).unwrap();
    assert_eq!(address_types(&spec(json!({"clusterIP": "fd00::1"}))), ["IPv6"]);
    assert_eq!(
        address_types(&spec(json!({"ipFamilies": ["IPv6", "IPv4"]}))),
        ["IPv6", "IPv4"]
    );
}
