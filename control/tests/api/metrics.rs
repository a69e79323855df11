//! `/metrics`: the API server counts and times its requests as kube-apiserver does, and
//! reports the cluster's pods by phase, in the Prometheus text format.

use super::client::*;

/// The value of the sample whose name and labels are exactly `series`; 0 when there is none
/// yet (a counter's series appears with its first increment).
fn sample(text: &str, series: &str) -> f64 {
    capstan_control::metrics::sample(text, series).unwrap_or(0.0)
}

async fn scrape(s: &Server) -> String {
    let resp = s.get("/metrics").await;
    assert_eq!(resp.code(), 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(
        resp.header_all("content-type"),
        ["application/openmetrics-text; version=1.0.0; charset=utf-8"]
    );
    String::from_utf8(resp.body.to_vec()).expect("the metrics are text")
}

const CREATED_PODS: &str = r#"apiserver_request_total{verb="create",resource="pods",subresource="",code="201"}"#;
const CONFLICTING_PODS: &str = r#"apiserver_request_total{verb="create",resource="pods",subresource="",code="409"}"#;
const PENDING: &str = r#"capstan_pods{phase="Pending"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_api_requests_and_pods_by_phase() {
    let s = server().await;
    let before = scrape(&s).await;
    assert!(before.ends_with("# EOF\n"), "{before}");
    assert_eq!(sample(&before, PENDING), 0.0, "{before}");

    s.post(PODS, &pod("web-1")).await.expect(201);
    s.post(PODS, &pod("web-2")).await.expect(201);
    s.post(PODS, &pod("web-1")).await.expect_status(409, "AlreadyExists");
    s.get(&format!("{PODS}/web-1")).await.expect(200);

    let after = scrape(&s).await;
    assert_eq!(
        sample(&after, CREATED_PODS) - sample(&before, CREATED_PODS),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, CONFLICTING_PODS) - sample(&before, CONFLICTING_PODS),
        1.0
    );
    let got = r#"apiserver_request_total{verb="get",resource="pods",subresource="",code="200"}"#;
    assert!(sample(&after, got) >= 1.0, "{after}");
    let timed = r#"apiserver_request_duration_seconds_count{verb="create",resource="pods",subresource=""}"#;
    assert_eq!(sample(&after, timed) - sample(&before, timed), 3.0, "{after}");
    // The earlier scrape is a request too.
    let scraped = r#"apiserver_request_total{verb="get",resource="",subresource="/metrics",code="200"}"#;
    assert!(sample(&after, scraped) >= 1.0, "{after}");
    // New pods are Pending until a node runs them.
    assert_eq!(sample(&after, PENDING), 2.0, "{after}");
    assert_eq!(sample(&after, r#"capstan_pods{phase="Running"}"#), 0.0);
    let stored = r#"capstan_store_writes_total{operation="create",result="success"}"#;
    assert!(sample(&after, stored) - sample(&before, stored) >= 2.0, "{after}");
    assert!(
        sample(&after, r#"capstan_store_objects{resource="pods"}"#) >= 2.0,
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_this_server_does_not_know_is_not_found() {
    let s = server().await;
    s.get("/api/v1/nodes/nowhere/proxy/metrics")
        .await
        .expect_status(404, "NotFound");
    s.get("/api/v1/nodes/nowhere/proxy/configz")
        .await
        .expect_status(404, "NotFound");
}
