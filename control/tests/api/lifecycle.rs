//! Object lifecycles: pod status and binding, graceful pod deletion, finalizers, propagation
//! policies and namespace termination.

use http::Method;
use serde_json::{Value, json};

use super::client::*;

async fn bind(s: &Server, name: &str, node: &str) -> Resp {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    s.post(&format!("{PODS}/{name}/binding"), &binding).await
}

fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Seconds between two RFC 3339 timestamps.
fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<capstan_core::k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_second()
    };
    parse(to) - parse(from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_created_pending_and_bound_once() {
    let s = server().await;
    let created = s.post(PODS, &pod("p")).await.expect(201);
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["status"]["qosClass"], "BestEffort");
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["spec"]["priority"], 0);

    let mut guaranteed = pod("g");
    guaranteed["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "64Mi"}});
    let g = s.post(PODS, &guaranteed).await.expect(201);
    assert_eq!(g["status"]["qosClass"], "Guaranteed");
    assert_eq!(
        g["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "64Mi"})
    );

    // The client cannot set status on create.
    let mut running = pod("r");
    running["status"] = json!({"phase": "Running"});
    assert_eq!(s.post(PODS, &running).await.expect(201)["status"]["phase"], "Pending");

    let status = bind(&s, "p", "n1").await.expect(201);
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    );
    let bound = s.get(&format!("{PODS}/p")).await.expect(200);
    assert_eq!(bound["spec"]["nodeName"], "n1");
    let scheduled = condition(&bound, "PodScheduled").expect("PodScheduled condition");
    assert_eq!(scheduled["status"], "True");

    let body = bind(&s, "p", "n2").await.expect_status(409, "Conflict");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n1\""
    );
    assert_eq!(body["details"], json!({"name": "p", "kind": "pods/binding"}));
    bind(&s, "missing", "n1").await.expect_status(404, "NotFound");
    assert_eq!(s.get(&format!("{PODS}/p")).await.expect(200)["spec"]["nodeName"], "n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_spec_updates_are_limited_to_images() {
    let s = server().await;
    let created = s.post(PODS, &pod("p")).await.expect(201);

    let mut image = created.clone();
    image["spec"]["containers"][0]["image"] = json!("registry.example/app:2");
    let updated = s.put(&format!("{PODS}/p"), &image).await.expect(200);
    assert_eq!(updated["spec"]["containers"][0]["image"], "registry.example/app:2");

    let mut args = updated.clone();
    args["spec"]["containers"][0]["args"] = json!(["--verbose"]);
    let body = s.put(&format!("{PODS}/p"), &args).await.expect_status(422, "Invalid");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{message}"
    );
    assert_eq!(body["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(body["details"]["causes"][0]["field"], "spec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_pods_are_deleted_gracefully() {
    let s = server().await;
    let mut p = pod("p");
    p["spec"]["terminationGracePeriodSeconds"] = json!(45);
    s.post(PODS, &p).await.expect(201);
    bind(&s, "p", "n1").await.expect(201);

    // Kubernetes answers 200 (202 only for orphanDependents=false) with the pod as marked.
    let marked = s.delete(&format!("{PODS}/p")).await.expect(200);
    assert_eq!(marked["kind"], "Pod");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 45);
    assert_eq!(
        marked["metadata"]["generation"], 2,
        "marking the deletion bumps generation"
    );
    assert!(marked["metadata"].get("finalizers").is_none(), "{marked}");
    let since = seconds_between(
        &marked["metadata"]["creationTimestamp"],
        &marked["metadata"]["deletionTimestamp"],
    );
    assert!((44..=50).contains(&since), "deletionTimestamp is now + grace: {since}s");
    let still = s.get(&format!("{PODS}/p")).await.expect(200);
    assert_eq!(
        still["metadata"]["deletionTimestamp"],
        marked["metadata"]["deletionTimestamp"]
    );

    // A shorter grace period shortens the deletion; a longer one does not lengthen it.
    // Another DELETE without a shorter grace period changes nothing.
    let again = s.delete(&format!("{PODS}/p")).await.expect(200);
    assert_eq!(again, still);

    // A shorter grace period shortens the deletion, counted from the first request; a longer
    // one does not lengthen it.
    let shorter = s.delete(&format!("{PODS}/p?gracePeriodSeconds=10")).await.expect(200);
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    assert_eq!(
        seconds_between(
            &marked["metadata"]["deletionTimestamp"],
            &shorter["metadata"]["deletionTimestamp"]
        ),
        -35
    );
    assert_eq!(shorter["metadata"]["generation"], 2);
    let longer = s.delete(&format!("{PODS}/p?gracePeriodSeconds=100")).await.expect(200);
    assert_eq!(longer, shorter);

    // Grace period 0 removes it: the node's last step, or `--force`.
    let gone = s.delete(&format!("{PODS}/p?gracePeriodSeconds=0")).await.expect(200);
    assert_eq!(gone["kind"], "Pod", "pods answer the deleted object");
    s.get(&format!("{PODS}/p")).await.expect_status(404, "NotFound");

    // The grace period may come in a DeleteOptions body, and defaults to 30 seconds.
    for name in ["q", "r"] {
        s.post(PODS, &pod(name)).await.expect(201);
        bind(&s, name, "n1").await.expect(201);
    }
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5});
    let q = s
        .request(Method::DELETE, &format!("{PODS}/q"))
        .json(&body)
        .send()
        .await
        .expect(200);
    assert_eq!(q["metadata"]["deletionGracePeriodSeconds"], 5);
    let r = s.delete(&format!("{PODS}/r")).await.expect(200);
    assert_eq!(r["metadata"]["deletionGracePeriodSeconds"], 30);

    // orphanDependents=false on a deletion that is not finished: 202.
    s.post(PODS, &pod("t")).await.expect(201);
    bind(&s, "t", "n1").await.expect(201);
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": false});
    let resp = s.request(Method::DELETE, &format!("{PODS}/t")).json(&body).send().await;
    resp.expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_pods_are_deleted_at_once() {
    let s = server().await;
    s.post(PODS, &pod("p")).await.expect(201);
    let gone = s.delete(&format!("{PODS}/p")).await.expect(200);
    assert_eq!(gone["metadata"]["name"], "p");
    s.get(&format!("{PODS}/p")).await.expect_status(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_a_deletion_until_removed() {
    let s = server().await;
    let mut cm = config_map("f", json!({}), json!({}));
    cm["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    s.post(CM, &cm).await.expect(201);

    let marked = s.delete(&format!("{CM}/f")).await.expect(200);
    assert_eq!(marked["kind"], "ConfigMap", "a pending deletion answers the object");
    assert!(marked["metadata"]["deletionTimestamp"].is_string(), "{marked}");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    let still = s.get(&format!("{CM}/f")).await.expect(200);
    assert_eq!(still["metadata"]["finalizers"], json!(["example.com/cleanup"]));

    // A second DELETE changes nothing.
    let again = s.delete(&format!("{CM}/f")).await.expect(200);
    assert_eq!(again, still);

    // Removing the last finalizer completes the deletion.
    let mut cleared = s.get(&format!("{CM}/f")).await.expect(200);
    cleared["metadata"]["finalizers"] = json!([]);
    s.put(&format!("{CM}/f"), &cleared).await.expect(200);
    s.get(&format!("{CM}/f")).await.expect_status(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_policies_add_finalizers() {
    let s = server().await;
    s.post(DEPLOYS, &deployment("fg", 1)).await.expect(201);
    let marked = s
        .delete(&format!("{DEPLOYS}/fg?propagationPolicy=Foreground"))
        .await
        .expect(200);
    assert_eq!(marked["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        marked["metadata"]["generation"], 2,
        "marking the deletion bumps generation"
    );
    s.get(&format!("{DEPLOYS}/fg")).await.expect(200);

    s.post(DEPLOYS, &deployment("orphan", 1)).await.expect(201);
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"});
    let marked = s
        .request(Method::DELETE, &format!("{DEPLOYS}/orphan"))
        .json(&body)
        .send()
        .await
        .expect(200);
    assert_eq!(marked["metadata"]["finalizers"], json!(["orphan"]));

    s.post(DEPLOYS, &deployment("bg", 1)).await.expect(201);
    let done = s
        .delete(&format!("{DEPLOYS}/bg?propagationPolicy=Background"))
        .await
        .expect(200);
    assert_eq!(done["kind"], "Status");
    s.get(&format!("{DEPLOYS}/bg")).await.expect_status(404, "NotFound");

    s.post(DEPLOYS, &deployment("bad", 1)).await.expect(201);
    s.delete(&format!("{DEPLOYS}/bad?propagationPolicy=Sideways"))
        .await
        .expect_status(400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_namespaces_take_no_new_content() {
    let s = server().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    let created = s.post("/api/v1/namespaces", &ns).await.expect(201);
    assert_eq!(created["status"]["phase"], "Active");
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(created["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    let team_cm = "/api/v1/namespaces/team/configmaps";
    s.post(team_cm, &config_map("before", json!({}), json!({})))
        .await
        .expect(201);

    let marked = s.delete("/api/v1/namespaces/team").await.expect(200);
    assert_eq!(marked["kind"], "Namespace");
    assert_eq!(marked["status"]["phase"], "Terminating");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let still = s.get("/api/v1/namespaces/team").await.expect(200);
    assert_eq!(still["status"]["phase"], "Terminating");

    let body = s
        .post(team_cm, &config_map("after", json!({}), json!({})))
        .await
        .expect_status(403, "Forbidden");
    assert_eq!(
        body["message"],
        "configmaps \"after\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    assert_eq!(body["details"], json!({"name": "after", "kind": "configmaps"}));
    // What is there can still be read and deleted.
    s.get(&format!("{team_cm}/before")).await.expect(200);
    s.delete(&format!("{team_cm}/before")).await.expect(200);

    let body = s
        .post(
            "/api/v1/namespaces/nowhere/configmaps",
            &config_map("x", json!({}), json!({})),
        )
        .await
        .expect_status(404, "NotFound");
    assert_eq!(body["message"], "namespaces \"nowhere\" not found");
    assert_eq!(body["details"], json!({"name": "nowhere", "kind": "namespaces"}));
}
