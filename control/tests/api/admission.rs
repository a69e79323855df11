//! Admission over HTTP: LimitRange defaults and bounds, ResourceQuota charges, and the
//! Priority plugin, with kube-apiserver's 403 messages.

use serde_json::json;

use super::client::*;

const LIMIT_RANGES: &str = "/api/v1/namespaces/default/limitranges";
const QUOTAS: &str = "/api/v1/namespaces/default/resourcequotas";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_default_and_bound_containers() {
    let s = server().await;
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
        "spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m"},
            "max": {"cpu": "1"}}]}});
    s.post(LIMIT_RANGES, &lr).await.expect(201);

    let defaulted = s.post(PODS, &pod("small")).await.expect(201);
    let resources = &defaulted["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"], json!({"cpu": "500m", "memory": "128Mi"}));
    assert_eq!(resources["requests"], json!({"cpu": "100m", "memory": "128Mi"}));
    assert_eq!(
        defaulted["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );
    assert_eq!(defaulted["status"]["qosClass"], "Burstable");

    let mut big = pod("big");
    big["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "2"}});
    let body = s.post(PODS, &big).await.expect_status(403, "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    assert_eq!(body["details"], json!({"name": "big", "kind": "pods"}));
    s.get(&format!("{PODS}/big")).await.expect_status(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_quotas_count_and_refuse() {
    let s = server().await;
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "1"}}});
    let created = s.post(QUOTAS, &quota).await.expect(201);
    assert_eq!(created["status"]["hard"], json!({"pods": "1"}));
    assert_eq!(created["status"]["used"], json!({"pods": "0"}));

    s.post(PODS, &pod("p1")).await.expect(201);
    let q = s.get(&format!("{QUOTAS}/q")).await.expect(200);
    assert_eq!(q["status"]["used"], json!({"pods": "1"}));

    let body = s.post(PODS, &pod("p2")).await.expect_status(403, "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"p2\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
    );
    assert_eq!(body["details"], json!({"name": "p2", "kind": "pods"}));
    s.get(&format!("{PODS}/p2")).await.expect_status(404, "NotFound");
    assert_eq!(
        s.get(&format!("{QUOTAS}/q")).await.expect(200)["status"]["used"],
        json!({"pods": "1"})
    );

    // A dry run is admitted against the quota but charges nothing.
    s.delete(&format!("{PODS}/p1")).await.expect(200);
    let mut dry = s.get(&format!("{QUOTAS}/q")).await.expect(200);
    dry["status"]["used"] = json!({"pods": "0"});
    s.put(&format!("{QUOTAS}/q/status"), &dry).await.expect(200);
    s.request(http::Method::POST, &format!("{PODS}?dryRun=All"))
        .json(&pod("p3"))
        .send()
        .await
        .expect(201);
    assert_eq!(
        s.get(&format!("{QUOTAS}/q")).await.expect(200)["status"]["used"],
        json!({"pods": "0"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_classes_resolve_to_priorities() {
    let s = server().await;
    let mut unknown = pod("u");
    unknown["spec"]["priorityClassName"] = json!("nope");
    let body = s.post(PODS, &unknown).await.expect_status(403, "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"u\" is forbidden: no PriorityClass with name nope was found"
    );

    let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
        "value": 1000});
    let created = s
        .post("/apis/scheduling.k8s.io/v1/priorityclasses", &class)
        .await
        .expect(201);
    assert_eq!(created["preemptionPolicy"], "PreemptLowerPriority");

    let mut high = pod("h");
    high["spec"]["priorityClassName"] = json!("high");
    let h = s.post(PODS, &high).await.expect(201);
    assert_eq!(h["spec"]["priority"], 1000);
    assert_eq!(h["spec"]["preemptionPolicy"], "PreemptLowerPriority");

    // A global default applies to pods that name no class.
    let default = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "everyone"},
        "value": 7, "globalDefault": true, "preemptionPolicy": "Never"});
    s.post("/apis/scheduling.k8s.io/v1/priorityclasses", &default)
        .await
        .expect(201);
    let plain = s.post(PODS, &pod("plain")).await.expect(201);
    assert_eq!(
        (
            plain["spec"]["priorityClassName"].as_str(),
            plain["spec"]["priority"].as_i64()
        ),
        (Some("everyone"), Some(7))
    );
    assert_eq!(plain["spec"]["preemptionPolicy"], "Never");
}
