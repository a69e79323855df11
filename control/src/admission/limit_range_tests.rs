use serde_json::{Value, json};

use super::*;

fn limit_range(name: &str, limits: Value) -> LimitRange {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"limits": limits}}))
        .unwrap()
}

fn pod(containers: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"containers": containers}})).unwrap()
}

fn container(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": "nginx", "resources": resources})
}

/// A container's resources as JSON, for comparison.
fn resources(pod: &Pod, i: usize) -> Value {
    serde_json::to_value(&pod.spec.as_ref().unwrap().containers[i].resources).unwrap()
}

fn annotation(pod: &Pod) -> Option<&str> {
    pod.metadata.annotations.as_ref()?.get(ANNOTATION).map(String::as_str)
}

fn defaults_range() -> LimitRange {
    limit_range(
        "defaults",
        json!([{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "0.1"}}]),
    )
}

#[test]
fn defaults_fill_missing_limits_and_requests() {
    let cases = [
        (
            "nothing set: default limits, default requests (memory's from its default)",
            json!({}),
            json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}),
            Some("LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"),
        ),
        (
            "a limit alone makes the request equal to it, not the default request",
            json!({"limits": {"cpu": "1"}}),
            json!({"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "256Mi"}}),
            Some("LimitRanger plugin set: memory request for container app; memory limit for container app"),
        ),
        (
            "a request alone keeps its value and gets the default limit",
            json!({"requests": {"cpu": "200m"}}),
            json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "200m", "memory": "256Mi"}}),
            Some("LimitRanger plugin set: memory request for container app; cpu, memory limit for container app"),
        ),
        (
            "everything set: untouched, no annotation",
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}),
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}),
            None,
        ),
    ];
    for (what, given, want, note) in cases {
        let mut p = pod(json!([container("app", given)]));
        admit_pod(&mut p, &[defaults_range()]).unwrap();
        assert_eq!(resources(&p, 0), want, "{what}");
        assert_eq!(annotation(&p), note, "{what}");
    }
}

#[test]
fn init_containers_are_defaulted_and_named_as_such() {
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [container("app", json!({"limits": {"cpu": "1", "memory": "1Gi"}}))],
        },
    }))
    .unwrap();
    admit_pod(&mut p, &[defaults_range()]).unwrap();
    assert_eq!(
        annotation(&p),
        Some(
            "LimitRanger plugin set: cpu, memory request for init container setup; cpu, memory limit for init container setup"
        )
    );
    let init = &p.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
    assert_eq!(
        serde_json::to_value(&init.resources).unwrap(),
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}})
    );
}

#[test]
fn max_alone_becomes_the_default_limit_and_request() {
    let lr = limit_range(
        "max",
        json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "10Mi"}}]),
    );
    let mut p = pod(json!([container("app", json!({}))]));
    admit_pod(&mut p, &[lr]).unwrap();
    assert_eq!(
        resources(&p, 0),
        json!({"limits": {"cpu": "2"}, "requests": {"cpu": "2", "memory": "10Mi"}})
    );
}

#[test]
fn no_ranges_no_change() {
    let mut p = pod(json!([container("app", json!({"limits": {"cpu": "1"}}))]));
    let before = p.clone();
    admit_pod(&mut p, &[]).unwrap();
    assert_eq!(p, before);
}

/// The error message for a single container with `resources` under `limits`.
fn violation(limits: Value, resources: Value) -> Option<String> {
    let mut p = pod(json!([container("app", resources)]));
    admit_pod(&mut p, &[limit_range("lr", limits)])
        .err()
        .map(|e| e.to_string())
}

#[test]
fn container_constraints() {
    let cases = [
        (
            json!([{"type": "Container", "max": {"cpu": "2"}}]),
            json!({"limits": {"cpu": "3"}}),
            Some("maximum cpu usage per Container is 2, but limit is 3"),
        ),
        (
            json!([{"type": "Container", "max": {"cpu": "2"}}]),
            json!({"limits": {"cpu": "2"}, "requests": {"cpu": "1500m"}}),
            None,
        ),
        (
            json!([{"type": "Container", "min": {"memory": "10Mi"}}]),
            json!({"requests": {"memory": "5Mi"}}),
            Some("minimum memory usage per Container is 10Mi, but request is 5Mi"),
        ),
        (
            json!([{"type": "Container", "min": {"memory": "10Mi"}}]),
            json!({"requests": {"memory": "20Mi"}, "limits": {"memory": "30Mi"}}),
            None,
        ),
        (
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
            json!({"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}}),
            Some("cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000"),
        ),
        (
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
            json!({"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}),
            None,
        ),
        (
            json!([{"type": "Container", "maxLimitRequestRatio": {"memory": "1500m"}}]),
            json!({"requests": {"memory": "1Gi"}}),
            Some("memory max limit to request ratio per Container is 1500m, but no limit is specified or limit is 0"),
        ),
        (
            json!([{"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}}]),
            json!({"limits": {"cpu": "3", "memory": "2Gi"}}),
            Some(
                "[maximum cpu usage per Container is 2, but limit is 3, maximum memory usage per Container is 1Gi, but limit is 2Gi]",
            ),
        ),
    ];
    for (limits, resources, want) in cases {
        assert_eq!(
            violation(limits.clone(), resources.clone()).as_deref(),
            want,
            "{limits} {resources}"
        );
    }
}

#[test]
fn pod_constraints_use_the_sums() {
    let lr = limit_range(
        "pod",
        json!([{"type": "Pod", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]),
    );
    let mut p = pod(json!([
        container("a", json!({"limits": {"cpu": "600m", "memory": "32Mi"}})),
        container("b", json!({"limits": {"cpu": "600m", "memory": "32Mi"}})),
    ]));
    let err = admit_pod(&mut p, std::slice::from_ref(&lr)).unwrap_err();
    let want = "maximum cpu usage per Pod is 1, but limit is 1200m";
    assert_eq!(
        err,
        LimitRangeError {
            limit_range: "pod".into(),
            violations: vec![want.into()]
        }
    );
    assert_eq!(err.to_string(), want);

    let mut unlimited = pod(json!([container("a", json!({"requests": {"memory": "64Mi"}}))]));
    let err = admit_pod(&mut unlimited, &[lr]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "maximum cpu usage per Pod is 1.  No limit is specified"
    );
}

#[test]
fn init_containers_count_by_their_peak() {
    let lr = limit_range("pod", json!([{"type": "Pod", "max": {"cpu": "1"}}]));
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "initContainers": [{"name": "setup", "resources": {"limits": {"cpu": "1"}}}],
            "containers": [container("app", json!({"limits": {"cpu": "800m"}}))],
        },
    }))
    .unwrap();
    assert_eq!(admit_pod(&mut p.clone(), std::slice::from_ref(&lr)), Ok(()));
    // A sidecar runs beside the app: its limit adds up.
    p.spec.as_mut().unwrap().init_containers.as_mut().unwrap()[0].restart_policy = Some("Always".into());
    assert_eq!(
        admit_pod(&mut p, &[lr]).unwrap_err().to_string(),
        "maximum cpu usage per Pod is 1, but limit is 1800m"
    );
}

#[test]
fn the_first_failing_range_is_reported() {
    let ranges = [
        limit_range("a-ok", json!([{"type": "Container", "max": {"cpu": "4"}}])),
        limit_range("b-strict", json!([{"type": "Container", "max": {"cpu": "1"}}])),
        limit_range("c-stricter", json!([{"type": "Container", "max": {"cpu": "500m"}}])),
    ];
    let mut p = pod(json!([container("app", json!({"limits": {"cpu": "2"}}))]));
    let err = admit_pod(&mut p, &ranges).unwrap_err();
    assert_eq!(err.limit_range, "b-strict");
    assert_eq!(err.to_string(), "maximum cpu usage per Container is 1, but limit is 2");
}

#[test]
fn aggregate_messages() {
    let s = |v: &[&str]| aggregate_message(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(s(&["a"]), "a");
    assert_eq!(s(&["a", "b"]), "[a, b]");
    assert_eq!(s(&["a", "a"]), "a");
    assert_eq!(s(&["a", "b", "a"]), "[a, b]");
}

fn errors(limits: Value) -> Vec<String> {
    validate_limit_range(&limit_range("lr", limits))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn validation() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([
                {"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "2"}, "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "200m"}, "maxLimitRequestRatio": {"cpu": "4"}},
                {"type": "Pod", "max": {"memory": "1Gi"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}},
            ]),
            vec![],
        ),
        (
            json!([{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]),
            vec![
                r#"spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1"#,
                r#"spec.limits[0].defaultRequest[cpu]: Invalid value: "1": min value 2 is greater than default request value 1"#,
                r#"spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 1"#,
            ],
        ),
        (
            json!([{"type": "Container", "default": {"memory": "1Gi"}, "defaultRequest": {"memory": "2Gi"}}]),
            vec![
                r#"spec.limits[0].defaultRequest[memory]: Invalid value: "2Gi": default request value 2Gi is greater than default limit value 1Gi"#,
            ],
        ),
        (
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}]),
            vec![r#"spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1"#],
        ),
        (
            json!([{"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}}]),
            vec![
                r#"spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000"#,
            ],
        ),
        (
            json!([{"type": "Pod", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}}]),
            vec![
                "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[0].defaultRequest: Forbidden: may not be specified when `type` is 'Pod'",
            ],
        ),
        (
            json!([{"type": "Container", "max": {"cpu": "1"}}, {"type": "Container", "max": {"cpu": "2"}}, {"type": "Foo"}]),
            vec![
                r#"spec.limits[1].type: Duplicate value: "Container""#,
                r#"spec.limits[2].type: Invalid value: "Foo": must be a standard limit type or fully qualified"#,
            ],
        ),
        (
            json!([{"type": "Container", "max": {"gpu": "1", "example.com/fpga": "1"}}]),
            vec![
                "spec.limits[0].max[gpu]: Invalid value: gpu: must be a standard resource type or fully qualified",
                "spec.limits[0].max[gpu]: Invalid value: gpu: must be a standard resource for containers",
                "spec.limits[0].default[gpu]: Invalid value: gpu: must be a standard resource type or fully qualified",
                "spec.limits[0].default[gpu]: Invalid value: gpu: must be a standard resource for containers",
                "spec.limits[0].defaultRequest[gpu]: Invalid value: gpu: must be a standard resource type or fully qualified",
                "spec.limits[0].defaultRequest[gpu]: Invalid value: gpu: must be a standard resource for containers",
            ],
        ),
        (
            json!([{"type": "Container", "default": {"example.com/fpga": "2"}, "defaultRequest": {"example.com/fpga": "1"}}]),
            vec![
                r#"spec.limits[0].defaultRequest[example.com/fpga]: Invalid value: "1": default value 2 must equal to defaultRequest value 1 in example.com/fpga"#,
            ],
        ),
        (
            json!([{"type": "PersistentVolumeClaim", "max": {"cpu": "1"}}]),
            vec![
                "spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
            ],
        ),
    ];
    for (limits, want) in cases {
        assert_eq!(errors(limits.clone()), want, "{limits}");
    }
}

#[test]
fn validation_checks_the_name() {
    let mut lr = limit_range("Bad_Name", json!([]));
    let errs = validate_limit_range(&lr);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .to_string()
            .starts_with(r#"metadata.name: Invalid value: "Bad_Name": "#),
        "{}",
        errs[0]
    );
    lr.metadata.name = None;
    assert_eq!(
        validate_limit_range(&lr)[0].to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
}

#[test]
fn defaulting_a_limit_range() {
    let mut lr = limit_range(
        "lr",
        json!([
            {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "default": {"memory": "512Mi"}, "min": {"ephemeral-storage": "1Gi"}},
            {"type": "Pod", "max": {"cpu": "4"}},
        ]),
    );
    default_limit_range(&mut lr);
    let once = lr.clone();
    default_limit_range(&mut lr);
    assert_eq!(lr, once, "idempotent");
    let items = serde_json::to_value(&lr.spec.as_ref().unwrap().limits).unwrap();
    assert_eq!(items[0]["default"], json!({"cpu": "2", "memory": "512Mi"}));
    assert_eq!(
        items[0]["defaultRequest"],
        json!({"cpu": "2", "memory": "512Mi", "ephemeral-storage": "1Gi"})
    );
    assert!(items[1].get("default").is_none());
}
