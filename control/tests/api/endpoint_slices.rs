//! EndpointSlices (`discovery.k8s.io/v1`): served like any kind — discovery, validation,
//! listing a Service's slices by `kubernetes.io/service-name`, `kubectl get` columns — and
//! kept by the EndpointSlice controller, run here against the server; plus the validation of
//! ExternalName Services, whose aliases get no slices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_control::api::Api;
use capstan_control::store::{MemStore, Store};
use serde_json::{Value, json};

use super::client::*;

const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const BY_SERVICE: &str = "labelSelector=kubernetes.io%2Fservice-name%3Dweb";

/// A server with the EndpointSlice controller running against it, and the garbage collector
/// that takes a deleted Service's slices (their owner reference), as in Kubernetes.
async fn server_with_controller() -> Server {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let api = Api::new(store);
    api.bootstrap().expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(capstan_control::api::server::serve(listener, Arc::clone(&api)));
    tokio::spawn(capstan_control::manager::endpoint_slices::run(Arc::clone(&api)));
    tokio::spawn(capstan_control::manager::gc::run(api));
    Server { addr }
}

fn slice(name: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": [{"port": 8080}]})
}

/// The slices labelled as Service `web`'s.
async fn slices(s: &Server) -> Vec<Value> {
    let list = s.get(&format!("{SLICES}?{BY_SERVICE}")).await.expect(200);
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Polls `check` against the server until it gives a value.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_are_served_defaulted_validated_and_listed_by_service() {
    let s = server().await;
    let group = s.get("/apis/discovery.k8s.io/v1").await.expect(200);
    let entry = group["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "endpointslices")
        .cloned()
        .expect("endpointslices in discovery");
    assert_eq!(
        (entry["kind"].as_str(), entry["namespaced"].as_bool()),
        (Some("EndpointSlice"), Some(true))
    );

    let created = s
        .post(SLICES, &slice("web-a", "web", &["10.88.0.1", "10.88.0.2"]))
        .await
        .expect(201);
    assert_eq!(
        created["ports"],
        json!([{"name": "", "port": 8080, "protocol": "TCP"}]),
        "a port's name and protocol are defaulted"
    );
    s.post(SLICES, &slice("web-b", "web", &["10.88.0.3"])).await.expect(201);
    s.post(SLICES, &slice("db-a", "db", &["10.88.0.9"])).await.expect(201);

    let listed = s.get(&format!("{SLICES}?{BY_SERVICE}")).await.expect(200);
    assert_eq!(listed["kind"], "EndpointSliceList");
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["web-a", "web-b"]);

    // kubectl's columns.
    let table = s
        .request(http::Method::GET, &format!("{SLICES}/web-a"))
        .header("accept", TABLE)
        .send()
        .await
        .expect(200);
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "AddressType", "Ports", "Endpoints", "Age"]);
    assert_eq!(
        table["rows"][0]["cells"].as_array().unwrap()[..4],
        [
            json!("web-a"),
            json!("IPv4"),
            json!("8080"),
            json!("10.88.0.1,10.88.0.2")
        ]
    );

    // What consumers rely on is checked.
    let mut bad = slice("bad", "web", &["not-an-ip"]);
    bad["addressType"] = json!("IPv5");
    bad["endpoints"].as_array_mut().unwrap().push(json!({"addresses": []}));
    bad["ports"] = json!([{"name": "http", "port": 1}, {"name": "http", "port": 2, "protocol": "ICMP"}]);
    let body = s.post(SLICES, &bad).await.expect_status(422, "Invalid");
    let message = body["message"].as_str().unwrap();
    for expected in [
        "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
        "endpoints[1].addresses: Required value: must contain at least 1 address",
        "ports[1].name: Duplicate value: \"http\"",
        "ports[1].protocol: Unsupported value: \"ICMP\"",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    let v4 = slice("v4", "web", &["fd00::1"]);
    let body = s.post(SLICES, &v4).await.expect_status(422, "Invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"),
        "{body}"
    );

    // The address type is immutable.
    let mut changed = created.clone();
    changed["addressType"] = json!("IPv6");
    changed["endpoints"] = json!([]);
    let body = s
        .put(&format!("{SLICES}/web-a"), &changed)
        .await
        .expect_status(422, "Invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("addressType: Invalid value: \"IPv6\": field is immutable"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_keeps_a_services_slices() {
    let s = server_with_controller().await;
    let service = json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let svc = s.post(SERVICES, &service).await.expect(201);
    let uid = svc["metadata"]["uid"].as_str().unwrap().to_owned();

    // No pods yet: one placeholder slice, owned by the Service.
    let placeholder = until("a placeholder slice", async || {
        let items = slices(&s).await;
        (items.len() == 1).then(|| items[0].clone())
    })
    .await;
    assert_eq!(placeholder["endpoints"], json!([]));
    assert_eq!(placeholder["ports"], json!([]));
    assert_eq!(placeholder["addressType"], "IPv4");
    assert_eq!(
        placeholder["metadata"]["labels"],
        json!({"tier": "front", "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    assert_eq!(placeholder["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
    assert!(placeholder["metadata"]["name"].as_str().unwrap().starts_with("web-"));

    // Two pods come up, one ready: the placeholder becomes their slice.
    for (name, ip, ready) in [("a", "10.88.0.1", "True"), ("b", "10.88.0.2", "False")] {
        let mut p = pod(name);
        p["metadata"]["labels"] = json!({"app": "web"});
        let mut created = s.post(PODS, &p).await.expect(201);
        created["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": ready}]});
        s.put(&format!("{PODS}/{name}/status"), &created).await.expect(200);
    }
    let filled = until("the pods in the slice", async || {
        let items = slices(&s).await;
        (items.len() == 1 && items[0]["endpoints"].as_array().map(Vec::len) == Some(2)).then(|| items[0].clone())
    })
    .await;
    assert_eq!(
        filled["metadata"]["name"], placeholder["metadata"]["name"],
        "reused, not replaced"
    );
    assert_eq!(
        filled["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let conditions: Vec<(Value, Value)> = filled["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["addresses"][0].clone(), e["conditions"]["ready"].clone()))
        .collect();
    assert_eq!(
        conditions,
        [(json!("10.88.0.1"), json!(true)), (json!("10.88.0.2"), json!(false))]
    );
    // Its own writes come back to the controller as changes; they do not make it write again.
    settle(&s, "marker-1").await;
    assert_eq!(
        slices(&s).await,
        std::slice::from_ref(&filled),
        "the slice is rewritten by nothing"
    );

    // Deleted by hand, it comes back; the Service deleted, its slices go (collected).
    let name = filled["metadata"]["name"].as_str().unwrap().to_owned();
    s.delete(&format!("{SLICES}/{name}")).await.expect(200);
    until("the slice to be recreated", async || {
        (slices(&s).await.len() == 1).then_some(())
    })
    .await;
    s.delete(&format!("{SERVICES}/web")).await.expect(200);
    until("the slices to go with the Service", async || {
        slices(&s).await.is_empty().then_some(())
    })
    .await;

    // ExternalName aliases get none.
    let alias = json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com",
        "selector": {"app": "web"}}});
    s.post(SERVICES, &alias).await.expect(201);
    settle(&s, "marker-2").await;
    let all = s
        .get(&format!("{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3Dext"))
        .await
        .expect(200);
    assert_eq!(all["items"], json!([]), "{all}");
}

/// Creates a Service `name` and waits for its placeholder slice: the controller has then
/// handled every Service change made before (it takes them in order), so what it has not done
/// by now it does not do.
async fn settle(s: &Server, name: &str) {
    let marker = json!({"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}});
    s.post(SERVICES, &marker).await.expect(201);
    let path = format!("{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3D{name}");
    until("the marker's slice", async || {
        let list = s.get(&path).await.expect(200);
        (list["items"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_name_services_are_checked_as_kubernetes_checks_them() {
    let s = server().await;
    let alias = |name: &str, spec: Value| json!({"metadata": {"name": name}, "spec": spec});
    let created = s
        .post(
            SERVICES,
            &alias(
                "db",
                json!({"type": "ExternalName", "externalName": "my.database.example.com."}),
            ),
        )
        .await
        .expect(201);
    for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        assert!(
            created["spec"].get(field).is_none(),
            "no {field} for an alias: {created}"
        );
    }
    let cases = [
        (json!({"type": "ExternalName"}), "spec.externalName: Required value"),
        (
            json!({"type": "ExternalName", "externalName": "Not_A_Name"}),
            "spec.externalName: Invalid value: \"Not_A_Name\": a lowercase RFC 1123 subdomain",
        ),
        (
            json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": "10.96.0.50"}),
            "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
        ),
        (
            json!({"type": "ExternalName", "externalName": "example.com", "ipFamilies": ["IPv4"]}),
            "spec.ipFamilies: Forbidden: may not be set for ExternalName services",
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let body = s
            .post(SERVICES, &alias(&format!("bad-{i}"), spec))
            .await
            .expect_status(422, "Invalid");
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{expected} in {body}"
        );
    }

    // A ClusterIP Service becomes an alias: its allocated addresses go with the old type.
    let web = s
        .post(SERVICES, &alias("web", json!({"ports": [{"port": 80}]})))
        .await
        .expect(201);
    assert!(web["spec"]["clusterIP"].is_string());
    let mut changed = web.clone();
    changed["spec"]["type"] = json!("ExternalName");
    changed["spec"]["externalName"] = json!("example.com");
    let updated = s.put(&format!("{SERVICES}/web"), &changed).await.expect(200);
    assert!(updated["spec"].get("clusterIP").is_none(), "{updated}");
    assert_eq!(updated["spec"]["externalName"], "example.com");
}
