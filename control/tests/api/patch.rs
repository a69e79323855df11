//! PATCH in its three content types, subresources (`scale`, `log`), Table responses and
//! dry runs.

use http::Method;
use serde_json::json;

use super::client::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_and_json_patches() {
    let s = server().await;
    let x = format!("{CM}/x");
    let created = s
        .post(CM, &config_map("x", json!({"app": "web"}), json!({"a": "1", "b": "2"})))
        .await
        .expect(201);

    // RFC 7386: maps merge, null deletes.
    let merged = s
        .patch(&x, MERGE, &json!({"data": {"a": "10", "b": null, "c": "3"}}))
        .await
        .expect(200);
    assert_eq!(merged["data"], json!({"a": "10", "c": "3"}));
    assert_eq!(merged["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(merged["metadata"]["uid"], created["metadata"]["uid"]);
    assert_ne!(rv(&merged), rv(&created));

    // RFC 6902, with a passing test.
    let ops = json!([{"op": "test", "path": "/data/a", "value": "10"}, {"op": "replace", "path": "/data/a", "value": "11"},
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"}]);
    let patched = s.patch(&x, JSON_PATCH, &ops).await.expect(200);
    assert_eq!(patched["data"]["a"], "11");
    assert_eq!(patched["metadata"]["labels"]["tier"], "front");

    // A failing test: 422, nothing written.
    let ops = json!([{"op": "test", "path": "/data/a", "value": "nope"}, {"op": "replace", "path": "/data/a", "value": "12"}]);
    s.patch(&x, JSON_PATCH, &ops).await.expect_status(422, "Invalid");
    assert_eq!(s.get(&x).await.expect(200), patched);

    // A resourceVersion in the patch is a precondition.
    let stale = json!({"metadata": {"resourceVersion": rv(&created)}, "data": {"a": "stale"}});
    let body = s.patch(&x, MERGE, &stale).await.expect_status(409, "Conflict");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let current = json!({"metadata": {"resourceVersion": rv(&patched)}, "data": {"a": "fresh"}});
    assert_eq!(s.patch(&x, MERGE, &current).await.expect(200)["data"]["a"], "fresh");

    // Content types that are not patches.
    for ct in ["text/plain", JSON] {
        let body = s
            .patch(&x, ct, &json!({"data": {}}))
            .await
            .expect_status(415, "UnsupportedMediaType");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/merge-patch+json"),
            "the accepted types are listed: {body}"
        );
    }
    s.patch(&format!("{CM}/missing"), MERGE, &json!({"data": {}}))
        .await
        .expect_status(404, "NotFound");
    s.request(Method::PATCH, &x)
        .header("content-type", MERGE)
        .body("{not json")
        .send()
        .await
        .expect_status(400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patch_merges_containers_by_name() {
    let s = server().await;
    let mut two = pod("web");
    two["spec"]["containers"] = json!([
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "side:1"},
    ]);
    s.post(PODS, &two).await.expect(201);

    let patch = json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}});
    let patched = s.patch(&format!("{PODS}/web"), STRATEGIC, &patch).await.expect(200);
    let containers = patched["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "the sidecar is kept: {containers:?}");
    assert_eq!(containers[0]["name"], "app");
    assert_eq!(containers[0]["image"], "app:2");
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(containers[1]["image"], "side:1");

    // The same body as a merge patch replaces the list, which a pod update may not do.
    let body = s
        .patch(&format!("{PODS}/web"), MERGE, &patch)
        .await
        .expect_status(422, "Invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("pod updates may not change fields"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_scale_subresource() {
    let s = server().await;
    s.post(DEPLOYS, &deployment("web", 2)).await.expect(201);
    let scale_path = format!("{DEPLOYS}/web/scale");

    let scale = s.get(&scale_path).await.expect(200);
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(scale["metadata"]["name"], "web");
    assert_eq!(scale["metadata"]["namespace"], "default");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");

    let mut put = scale.clone();
    put["spec"]["replicas"] = json!(3);
    let after = s.put(&scale_path, &put).await.expect(200);
    assert_eq!(after["spec"]["replicas"], 3);
    let d = s.get(&format!("{DEPLOYS}/web")).await.expect(200);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(rv(&after), rv(&d));

    // The old Scale's resourceVersion is stale now.
    let body = s.put(&scale_path, &put).await.expect_status(409, "Conflict");
    assert!(
        body["message"].as_str().unwrap().contains("deployments.apps \"web\""),
        "{body}"
    );

    let patched = s
        .patch(&scale_path, MERGE, &json!({"spec": {"replicas": 5}}))
        .await
        .expect(200);
    assert_eq!(patched["spec"]["replicas"], 5);
    assert_eq!(
        s.get(&format!("{DEPLOYS}/web")).await.expect(200)["spec"]["replicas"],
        5
    );

    let mut negative = s.get(&scale_path).await.expect(200);
    negative["spec"]["replicas"] = json!(-1);
    let body = s.put(&scale_path, &negative).await.expect_status(422, "Invalid");
    assert_eq!(
        body["message"],
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(body["details"]["causes"][0]["field"], "spec.replicas");
    s.get(&format!("{DEPLOYS}/nope/scale"))
        .await
        .expect_status(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_pod_without_a_node() {
    let s = server().await;
    s.post(PODS, &pod("p")).await.expect(201);
    // Nothing runs the pod, so there is nothing to stream: kube-apiserver's LogLocation has
    // no location and the answer is 204 No Content.
    let resp = s.get(&format!("{PODS}/p/log")).await;
    assert_eq!(resp.code(), 204, "{}", String::from_utf8_lossy(&resp.body));
    assert!(resp.body.is_empty());
    // The container is checked first.
    let body = s
        .get(&format!("{PODS}/p/log?container=nope"))
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(body["message"], "container nope is not valid for pod p");
    s.get(&format!("{PODS}/missing/log"))
        .await
        .expect_status(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_as_tables() {
    let s = server().await;
    s.post(CM, &config_map("a", json!({}), json!({"k": "v", "l": "w"})))
        .await
        .expect(201);
    s.post(CM, &config_map("b", json!({}), json!({}))).await.expect(201);

    let resp = s.request(Method::GET, CM).header("accept", TABLE).send().await;
    let table = resp.expect(200);
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert!(table["metadata"]["resourceVersion"].is_string());
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cells"][0], "a");
    assert_eq!(rows[0]["cells"][1], 2);
    assert_eq!(rows[1]["cells"][1], 0);
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(rows[0]["object"]["metadata"]["name"], "a");

    let table = s
        .request(Method::GET, &format!("{CM}?includeObject=None"))
        .header("accept", TABLE)
        .send()
        .await
        .expect(200);
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.get("object").is_none()), "{rows:?}");

    // Pods get kubectl's columns; one object is a one-row table.
    s.post(PODS, &pod("p")).await.expect(201);
    let table = s
        .request(Method::GET, &format!("{PODS}/p"))
        .header("accept", TABLE)
        .send()
        .await
        .expect(200);
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&columns[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "p");
    assert_eq!(table["rows"][0]["cells"][1], "0/1");
    assert_eq!(table["rows"][0]["cells"][2], "Pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_stores_nothing() {
    let s = server().await;
    let resp = s
        .request(Method::POST, &format!("{CM}?dryRun=All"))
        .json(&config_map("dry", json!({}), json!({"k": "v"})))
        .send()
        .await;
    let object = resp.expect(201);
    assert_eq!(object["metadata"]["name"], "dry");
    assert_eq!(object["data"]["k"], "v");
    assert!(
        object["metadata"]["uid"].is_string(),
        "a dry run answers what would be stored"
    );
    s.get(&format!("{CM}/dry")).await.expect_status(404, "NotFound");
    assert_eq!(s.get(CM).await.expect(200)["items"], json!([]));

    // Nor does a dry-run delete remove anything.
    s.post(CM, &config_map("real", json!({}), json!({}))).await.expect(201);
    s.request(Method::DELETE, &format!("{CM}/real?dryRun=All"))
        .send()
        .await
        .expect(200);
    s.get(&format!("{CM}/real")).await.expect(200);
}
