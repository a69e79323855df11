//! Tier-2 tests of the Kubernetes API server: an in-process server over an in-memory store,
//! driven over HTTP as a client would, asserting what kube-apiserver answers — status codes,
//! `Status` bodies (reason, code, message, details), headers and watch streams.
//!
//! This file: discovery, CRUD, create-time checks, `generation` and selectors. Watches,
//! patches and subresources, object lifecycle (pods, finalizers, namespaces) and admission
//! are in `api/`.

#[path = "api/admission.rs"]
mod admission;
#[path = "api/client.rs"]
mod client;
#[path = "api/endpoint_slices.rs"]
mod endpoint_slices;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/patch.rs"]
mod patch;
#[path = "api/watch.rs"]
mod watch;

use client::*;
use serde_json::{Value, json};

/// The names of the items of a list, in order.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn resource_names(list: &Value) -> Vec<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents() {
    let s = server().await;

    let api = s.get("/api").await.expect(200);
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    assert_eq!(
        api["serverAddressByClientCIDRs"][0]["serverAddress"],
        s.addr.to_string()
    );

    let apis = s.get("/apis").await.expect(200);
    assert_eq!(
        (apis["kind"].as_str(), apis["apiVersion"].as_str()),
        (Some("APIGroupList"), Some("v1"))
    );
    let apps = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps group listed");
    assert_eq!(
        apps["preferredVersion"],
        json!({"groupVersion": "apps/v1", "version": "v1"})
    );

    let group = s.get("/apis/apps").await.expect(200);
    assert_eq!(
        (group["kind"].as_str(), group["name"].as_str()),
        (Some("APIGroup"), Some("apps"))
    );

    let core = s.get("/api/v1").await.expect(200);
    assert_eq!(
        (core["kind"].as_str(), core["groupVersion"].as_str()),
        (Some("APIResourceList"), Some("v1"))
    );
    let names = resource_names(&core);
    for expected in [
        "pods",
        "pods/status",
        "pods/log",
        "pods/binding",
        "configmaps",
        "namespaces",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    let pods = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(
        (
            pods["kind"].as_str(),
            pods["namespaced"].as_bool(),
            pods["singularName"].as_str()
        ),
        (Some("Pod"), Some(true), Some("pod"))
    );
    assert_eq!(pods["shortNames"], json!(["po"]));
    for verb in ["create", "delete", "get", "list", "patch", "update", "watch"] {
        assert!(
            pods["verbs"].as_array().unwrap().contains(&json!(verb)),
            "pods verb {verb}"
        );
    }

    let apps_v1 = s.get("/apis/apps/v1").await.expect(200);
    assert_eq!(apps_v1["groupVersion"], "apps/v1");
    let names = resource_names(&apps_v1);
    for expected in ["deployments", "deployments/status", "deployments/scale"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    let scale = apps_v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );

    let version = s.get("/version").await.expect(200);
    assert_eq!(version["major"], "1");
    assert!(version["gitVersion"].as_str().unwrap().starts_with("v1."), "{version}");

    let index = s.get("/openapi/v3").await.expect(200);
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 in the OpenAPI index")
        .to_owned();
    assert!(index["paths"]["api/v1"]["serverRelativeURL"].is_string(), "{index}");
    let doc = s.get(&url).await.expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].is_object(),
        "deployment path in the apps/v1 document"
    );

    for path in [
        "/apis/nope/v1",
        "/api/v1/widgets",
        "/nothing/here",
        "/openapi/v3/apis/nope/v1",
    ] {
        let body = s.get(path).await.expect(404);
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound",
                "details": {}, "code": 404}),
            "{path}"
        );
    }
    let body = s
        .request(http::Method::PUT, CM)
        .json(&json!({}))
        .send()
        .await
        .expect_status(405, "MethodNotAllowed");
    assert_eq!(
        body["message"],
        "the server does not allow this method on the requested resource"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_crud() {
    let s = server().await;
    let x = format!("{CM}/x");

    let created = s
        .post(CM, &config_map("x", json!({"app": "web"}), json!({"k": "v1"})))
        .await
        .expect(201);
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(created["metadata"]["namespace"], "default");
    let uid = created["metadata"]["uid"].as_str().expect("uid").to_owned();
    assert_eq!(uid.len(), 36, "a UUID: {uid}");
    let ts = created["metadata"]["creationTimestamp"]
        .as_str()
        .expect("creationTimestamp");
    assert!(ts.ends_with('Z') && ts.len() == 20, "RFC 3339 to the second: {ts}");
    assert!(
        created["metadata"].get("generation").is_none(),
        "configmaps have no generation"
    );
    let rv1 = rv(&created);
    assert!(rv1.parse::<u64>().is_ok(), "{rv1}");

    let got = s.get(&x).await.expect(200);
    assert_eq!(got, created);

    let list = s.get(CM).await.expect(200);
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("ConfigMapList"), Some("v1"))
    );
    assert_eq!(names(&list), ["x"]);
    let list_rv: u64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(list_rv >= rv1.parse::<u64>().unwrap());

    let mut update = got.clone();
    update["data"]["k"] = json!("v2");
    let updated = s.put(&x, &update).await.expect(200);
    assert_eq!(updated["data"]["k"], "v2");
    assert_eq!(updated["metadata"]["uid"], uid.as_str());
    assert_eq!(updated["metadata"]["creationTimestamp"], ts);
    assert!(updated["metadata"].get("generation").is_none());
    assert_ne!(rv(&updated), rv1);

    // The same body again carries the old resourceVersion.
    let body = s.put(&x, &update).await.expect_status(409, "Conflict");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(body["details"], json!({"name": "x", "kind": "configmaps"}));

    let body = s
        .post(CM, &config_map("x", json!({}), json!({})))
        .await
        .expect_status(409, "AlreadyExists");
    assert_eq!(body["message"], "configmaps \"x\" already exists");
    assert_eq!(body["details"], json!({"name": "x", "kind": "configmaps"}));

    // PUT names its object; it does not create one (AllowCreateOnUpdate is false).
    let body = s
        .put(&format!("{CM}/y"), &update)
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "the name of the object (x) does not match the name on the URL (y)"
    );
    let mut ghost = config_map("ghost", json!({}), json!({}));
    ghost["metadata"]["namespace"] = json!("default");
    s.put(&format!("{CM}/ghost"), &ghost)
        .await
        .expect_status(404, "NotFound");

    // DELETE preconditions.
    let wrong_uid = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}});
    let body = s
        .request(http::Method::DELETE, &x)
        .json(&wrong_uid)
        .send()
        .await
        .expect_status(409, "Conflict");
    assert_eq!(
        body["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"x\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )
    );
    let stale_rv = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": rv1}});
    s.request(http::Method::DELETE, &x)
        .json(&stale_rv)
        .send()
        .await
        .expect_status(409, "Conflict");

    let deleted = s.delete(&x).await.expect(200);
    assert_eq!(
        deleted,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "x", "kind": "configmaps", "uid": uid}})
    );

    let body = s.get(&x).await.expect_status(404, "NotFound");
    assert_eq!(body["message"], "configmaps \"x\" not found");
    assert_eq!(body["details"], json!({"name": "x", "kind": "configmaps"}));
    s.delete(&x).await.expect_status(404, "NotFound");
    assert_eq!(names(&s.get(CM).await.expect(200)), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_names_types_and_validation() {
    let s = server().await;

    // generateName: the prefix and five characters of apimachinery's alphabet.
    let body = json!({"metadata": {"generateName": "web-"}, "data": {}});
    let a = s.post(CM, &body).await.expect(201);
    let b = s.post(CM, &body).await.expect(201);
    for o in [&a, &b] {
        let name = o["metadata"]["name"].as_str().unwrap();
        let suffix = name.strip_prefix("web-").expect("the prefix is kept");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix.bytes().all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)),
            "{name}"
        );
        assert_eq!(o["metadata"]["generateName"], "web-");
    }
    assert_ne!(a["metadata"]["name"], b["metadata"]["name"]);

    // The body's namespace must be the path's.
    let mut other_ns = config_map("n", json!({}), json!({}));
    other_ns["metadata"]["namespace"] = json!("kube-system");
    let body = s.post(CM, &other_ns).await.expect_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    // apiVersion and kind must be the resource's.
    let mut wrong_version = config_map("n", json!({}), json!({}));
    wrong_version["apiVersion"] = json!("apps/v1");
    let body = s.post(CM, &wrong_version).await.expect_status(400, "BadRequest");
    assert!(body["message"].as_str().unwrap().contains("apps/v1"), "{body}");
    let mut wrong_kind = config_map("n", json!({}), json!({}));
    wrong_kind["kind"] = json!("Secret");
    let body = s.post(CM, &wrong_kind).await.expect_status(400, "BadRequest");
    assert!(body["message"].as_str().unwrap().contains("Secret"), "{body}");

    // An invalid pod: every field error, as causes.
    let invalid = json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": []}});
    let body = s.post(PODS, &invalid).await.expect_status(422, "Invalid");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("Pod \"Bad_Name\" is invalid: ["), "{message}");
    assert_eq!(
        (body["details"]["name"].as_str(), body["details"]["kind"].as_str()),
        (Some("Bad_Name"), Some("Pod"))
    );
    let causes = body["details"]["causes"].as_array().unwrap();
    let fields: Vec<&str> = causes.iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(
        fields.contains(&"metadata.name") && fields.contains(&"spec.containers"),
        "{fields:?}"
    );
    let containers = causes.iter().find(|c| c["field"] == "spec.containers").unwrap();
    assert_eq!(
        (containers["reason"].as_str(), containers["message"].as_str()),
        (Some("FieldValueRequired"), Some("Required value"))
    );
    let name = causes.iter().find(|c| c["field"] == "metadata.name").unwrap();
    assert_eq!(name["reason"], "FieldValueInvalid");
    assert!(
        name["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid value: \"Bad_Name\": "),
        "{name}"
    );

    // Unknown fields: refused under Strict, warned about by default.
    let mut typo = pod("typo");
    typo["spec"]["bogus"] = json!(1);
    let body = s
        .request(http::Method::POST, &format!("{PODS}?fieldValidation=Strict"))
        .json(&typo)
        .send()
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(body["message"], "strict decoding error: unknown field \"spec.bogus\"");
    let resp = s.post(PODS, &typo).await;
    let created = resp.expect(201);
    assert_eq!(
        resp.header_all("warning"),
        ["299 - \"unknown field \\\"spec.bogus\\\"\""]
    );
    assert!(created["spec"].get("bogus").is_none(), "unknown fields are dropped");
    let resp = s
        .request(http::Method::POST, &format!("{CM}?fieldValidation=Ignore"))
        .json(&json!({"metadata": {"name": "quiet"}, "bogus": true}))
        .send()
        .await;
    resp.expect(201);
    assert!(resp.header_all("warning").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_generation_and_status() {
    let s = server().await;
    let d = format!("{DEPLOYS}/web");

    let created = s.post(DEPLOYS, &deployment("web", 1)).await.expect(201);
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created
            .get("status")
            .is_none_or(|st| st.as_object().is_none_or(|m| m.is_empty())),
        "{created}"
    );

    // A spec change bumps generation.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    let scaled = s.put(&d, &scaled).await.expect(200);
    assert_eq!(scaled["metadata"]["generation"], 2);

    // A label change does not.
    let mut labelled = scaled.clone();
    labelled["metadata"]["labels"] = json!({"tier": "front"});
    let labelled = s.put(&d, &labelled).await.expect(200);
    assert_eq!(labelled["metadata"]["generation"], 2);
    assert_eq!(labelled["metadata"]["labels"]["tier"], "front");

    // /status changes only status: not spec, not generation.
    let mut status = labelled.clone();
    status["status"] = json!({"replicas": 3, "observedGeneration": 2});
    status["spec"]["replicas"] = json!(7);
    let after_status = s.put(&format!("{d}/status"), &status).await.expect(200);
    assert_eq!(after_status["status"]["replicas"], 3);
    assert_eq!(after_status["status"]["observedGeneration"], 2);
    assert_eq!(after_status["spec"]["replicas"], 3, "/status leaves spec alone");
    assert_eq!(after_status["metadata"]["generation"], 2);

    // A PUT of the main resource keeps the stored status.
    let mut main = after_status.clone();
    main["status"] = json!({"replicas": 99});
    main["metadata"]["annotations"] = json!({"note": "x"});
    let after_main = s.put(&d, &main).await.expect(200);
    assert_eq!(after_main["status"], after_status["status"]);
    assert_eq!(after_main["metadata"]["annotations"]["note"], "x");
    assert_eq!(after_main["metadata"]["generation"], 2);
    assert_eq!(s.get(&d).await.expect(200)["status"], after_status["status"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors() {
    let s = server().await;
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "cache")] {
        s.post(CM, &config_map(name, json!({"app": app}), json!({})))
            .await
            .expect(201);
    }
    s.post(CM, &config_map("d", json!({}), json!({}))).await.expect(201);

    let list = |q: &'static str| {
        let s = &s;
        async move { names(&s.get(&format!("{CM}?{q}")).await.expect(200)) }
    };
    assert_eq!(list("labelSelector=app%3Dweb").await, ["a"]);
    assert_eq!(list("labelSelector=app%21%3Dweb").await, ["b", "c", "d"]);
    assert_eq!(list("labelSelector=app+in+%28web%2Cdb%29").await, ["a", "b"]);
    assert_eq!(list("labelSelector=app+notin+%28web%29").await, ["b", "c", "d"]);
    assert_eq!(list("labelSelector=app").await, ["a", "b", "c"]);
    assert_eq!(list("labelSelector=%21app").await, ["d"]);
    assert_eq!(list("fieldSelector=metadata.name%3Dc").await, ["c"]);
    assert_eq!(
        list("fieldSelector=metadata.name%21%3Dc&labelSelector=app").await,
        ["a", "b"]
    );

    let body = s
        .get(&format!("{CM}?labelSelector=app+in+web"))
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "unable to parse requirement: found 'web' expected: '('"
    );

    // Unscheduled pods: spec.nodeName is empty.
    for name in ["p1", "p2"] {
        s.post(PODS, &pod(name)).await.expect(201);
    }
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p2"}, "target": {"kind": "Node", "name": "n1"}});
    s.post(&format!("{PODS}/p2/binding"), &binding).await.expect(201);
    let pods = |q: &'static str| {
        let s = &s;
        async move { names(&s.get(&format!("{PODS}?{q}")).await.expect(200)) }
    };
    assert_eq!(pods("fieldSelector=spec.nodeName%3D").await, ["p1"]);
    assert_eq!(pods("fieldSelector=spec.nodeName%3Dn1").await, ["p2"]);
    assert_eq!(
        pods("fieldSelector=status.phase%3DPending,metadata.name%3Dp1").await,
        ["p1"]
    );
    // All namespaces.
    assert_eq!(
        names(
            &s.get("/api/v1/pods?fieldSelector=spec.nodeName%21%3D")
                .await
                .expect(200)
        ),
        ["p2"]
    );

    let body = s
        .get(&format!("{PODS}?fieldSelector=spec.image%3Dx"))
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(body["message"], "field label not supported: spec.image");
    let body = s
        .get(&format!("{CM}?fieldSelector=data.k%3Dx"))
        .await
        .expect_status(400, "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("\"data.k\" is not a known field selector"),
        "{body}"
    );
}
