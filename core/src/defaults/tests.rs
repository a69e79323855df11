use super::*;
use crate::manifest::{Object, parse_manifests};

fn pod(yaml: &str) -> Pod {
    let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n{yaml}");
    match parse_manifests(&text).unwrap().remove(0) {
        Object::Pod(pod) => *pod,
        other => panic!("not a pod: {other:?}"),
    }
}

#[test]
fn fills_pod_and_container_defaults() {
    let mut p = pod(r#"
spec:
  initContainers:
  - {name: init, image: "busybox"}
  containers:
  - name: main
    image: app:1.0
    ports: [{containerPort: 80}]
    resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 500m}}
    livenessProbe: {httpGet: {port: 80}}
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 5}
    lifecycle: {preStop: {httpGet: {port: 80}}}
    env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
  volumes:
  - {name: a, configMap: {name: c}}
  - {name: b, secret: {secretName: s, defaultMode: 256}}
  - {name: c, downwardAPI: {items: []}}
  - {name: d, projected: {sources: []}}
  - {name: e, emptyDir: {}}
"#);
    default_pod(&mut p);
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    let pod_fields = [
        (spec.restart_policy.as_deref(), "Always"),
        (spec.dns_policy.as_deref(), "ClusterFirst"),
        (spec.scheduler_name.as_deref(), "default-scheduler"),
        (spec.service_account_name.as_deref(), "default"),
    ];
    for (got, want) in pod_fields {
        assert_eq!(got, Some(want));
    }
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    let init = &spec.init_containers.as_ref().unwrap()[0];
    let main = &spec.containers[0];
    assert_eq!(init.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(main.image_pull_policy.as_deref(), Some("IfNotPresent"));
    for c in [init, main] {
        assert_eq!(c.termination_message_path.as_deref(), Some("/dev/termination-log"));
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    }
    assert_eq!(main.ports.as_ref().unwrap()[0].protocol.as_deref(), Some("TCP"));
    let requests = main.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(
        (requests["cpu"].0.as_str(), requests["memory"].0.as_str()),
        ("500m", "1Gi")
    );
    let live = main.liveness_probe.as_ref().unwrap();
    let probe = |p: &Probe| {
        (
            p.period_seconds,
            p.timeout_seconds,
            p.success_threshold,
            p.failure_threshold,
        )
    };
    assert_eq!(probe(live), (Some(10), Some(1), Some(1), Some(3)));
    assert_eq!(probe(main.readiness_probe.as_ref().unwrap()).0, Some(5));
    let http = live.http_get.as_ref().unwrap();
    assert_eq!(
        (http.path.as_deref(), http.scheme.as_deref()),
        (Some("/"), Some("HTTP"))
    );
    let pre_stop = main.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
    assert_eq!(pre_stop.http_get.as_ref().unwrap().path.as_deref(), Some("/"));
    let field_ref = main.env.as_ref().unwrap()[0]
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap();
    assert_eq!(field_ref.api_version.as_deref(), Some("v1"));
    let modes: Vec<Option<i32>> = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| {
            v.config_map
                .as_ref()
                .and_then(|s| s.default_mode)
                .or(v.secret.as_ref().and_then(|s| s.default_mode))
                .or(v.downward_api.as_ref().and_then(|s| s.default_mode))
                .or(v.projected.as_ref().and_then(|s| s.default_mode))
        })
        .collect();
    assert_eq!(modes, [Some(420), Some(256), Some(420), Some(420), None]);
    let again = {
        let mut q = p.clone();
        default_pod(&mut q);
        q
    };
    assert_eq!(again, p, "defaulting is idempotent");
}

#[test]
fn picks_pull_policy_from_tag() {
    let cases = [
        ("nginx", Some("latest")),
        ("nginx:latest", Some("latest")),
        ("nginx:1.25", Some("1.25")),
        ("localhost:5000/app", Some("latest")),
        ("localhost:5000/app:v2", Some("v2")),
        ("app@sha256:abcd", None),
        ("app:v1@sha256:abcd", Some("v1")),
    ];
    for (image, tag) in cases {
        assert_eq!(image_tag(image), tag, "{image}");
    }
}

#[test]
fn classifies_qos() {
    let cases = [
        ("containers: [{name: a, image: i}]", "BestEffort"),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1, memory: 1Gi}}}]",
            "Guaranteed",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1, memory: 1Gi}, requests: {cpu: 1, memory: 1Gi}}}]",
            "Guaranteed",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1, memory: 1Gi}, requests: {cpu: 500m}}}]",
            "Burstable",
        ),
        (
            "containers: [{name: a, image: i, resources: {requests: {memory: 1Gi}}}]",
            "Burstable",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1}}}]",
            "Burstable",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1, memory: 1Gi}}}]\n  initContainers: [{name: b, image: i}]",
            "Burstable",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {cpu: 1, memory: 1Gi}}}]\n  initContainers: [{name: b, image: i, resources: {limits: {cpu: 2, memory: 1Gi}}}]",
            "Guaranteed",
        ),
        (
            "containers: [{name: a, image: i, resources: {requests: {cpu: \"0\"}}}]",
            "BestEffort",
        ),
        (
            "containers: [{name: a, image: i, resources: {limits: {nvidia.com/gpu: 1}}}]",
            "BestEffort",
        ),
    ];
    for (spec, class) in cases {
        let mut p = pod(&format!("spec:\n  {spec}\n"));
        assert_eq!(qos_class(&p), class, "{spec}");
        default_pod(&mut p);
        assert_eq!(qos_class(&p), class, "defaulted: {spec}");
    }
}
