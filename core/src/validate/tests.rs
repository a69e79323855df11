use super::*;
use crate::defaults::default_pod;
use crate::manifest::{Object, parse_manifests};

fn object(text: &str) -> Object {
    parse_manifests(text).unwrap().remove(0)
}

/// A defaulted pod named `web` with this `spec` (indented YAML under `spec:`).
fn pod(spec: &str) -> Pod {
    let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n{spec}");
    let Object::Pod(mut pod) = object(&text) else {
        unreachable!()
    };
    default_pod(&mut pod);
    *pod
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

const VALID: &str = r#"
  initContainers:
  - name: setup
    image: busybox
  - name: proxy
    image: envoy
    restartPolicy: Always
    readinessProbe: {tcpSocket: {port: 9901}}
  containers:
  - name: main
    image: app:1.0
    ports: [{name: http, containerPort: 8080}]
    env:
    - {name: A, value: x}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: LABEL
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: MEM
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: PATTERN
      valueFrom: {configMapKeyRef: {name: app-config, key: PATTERN}}
    envFrom: [{configMapRef: {name: app-config}, prefix: CONFIG_}]
    volumeMounts:
    - {name: config, mountPath: /config}
    - {name: info, mountPath: /info, subPath: labels}
    resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 500m}}
    livenessProbe: {httpGet: {port: http, path: /healthz}}
    lifecycle: {preStop: {sleep: {seconds: 5}}}
  volumes:
  - {name: config, configMap: {name: app-config, items: [{key: PATTERN, path: pattern, mode: 0600}]}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: mem, resourceFieldRef: {containerName: main, resource: limits.memory}}
  - {name: scratch, emptyDir: {sizeLimit: 1Gi}}
"#;

#[test]
fn accepts_a_valid_pod() {
    assert_eq!(messages(&validate_pod(&pod(VALID))), Vec::<String>::new());
}

#[test]
fn reports_apiserver_messages() {
    let c = |fields: &str| format!("  containers:\n  - name: main\n    image: app\n{fields}");
    let cases: Vec<(String, &str)> = vec![
        ("  containers: []\n".into(), "spec.containers: Required value"),
        (
            "  containers:\n  - {name: main, image: a}\n  - {name: main, image: b}\n".into(),
            r#"spec.containers[1].name: duplicate name "main""#,
        ),
        (
            "  initContainers: [{name: main, image: a}]\n  containers: [{name: main, image: b}]\n".into(),
            r#"spec.containers[0].name: duplicate name "main""#,
        ),
        (
            "  containers: [{name: Main_1, image: a}]\n".into(),
            r#"spec.containers[0].name: Invalid value: "Main_1": a lowercase RFC 1123 label must consist of"#,
        ),
        ("  containers: [{name: main}]\n".into(), "spec.containers[0].image: Required value"),
        (
            c("    ports: [{containerPort: 70000}]\n"),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            c("    ports: [{name: http, containerPort: 80}, {name: http, containerPort: 81}]\n"),
            r#"spec.containers[0].ports[1].name: Duplicate value: "http""#,
        ),
        (
            c("    ports: [{name: HTTP, containerPort: 80}]\n"),
            r#"spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
        ),
        (
            c("    env: [{name: A=B, value: x}]\n"),
            r#"spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
        ),
        (
            c("    env:\n    - name: A\n      value: x\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"),
            r#"spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#,
        ),
        (
            c("    env:\n    - name: A\n      valueFrom: {}\n"),
            "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ),
        (
            c("    env:\n    - name: A\n      valueFrom:\n        fieldRef: {fieldPath: metadata.name}\n        secretKeyRef: {name: s, key: k}\n"),
            r#"spec.containers[0].env[0].valueFrom: Invalid value: "": may not have more than one field specified at a time"#,
        ),
        (
            c("    env:\n    - name: A\n      valueFrom: {fieldRef: {fieldPath: metadata.labels}}\n"),
            r#"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "metadata.labels": supported values: "metadata.name", "metadata.namespace""#,
        ),
        (
            c("    env:\n    - name: A\n      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}\n"),
            r#"spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: "limits.cpu": only divisor's values 1m and 1 are supported with the cpu resource"#,
        ),
        (
            c("    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: cfg, key: \"a b\"}}\n"),
            r#"spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "a b": a valid config key"#,
        ),
        (
            c("    envFrom: [{prefix: P_}]\n"),
            r#"spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`"#,
        ),
        (
            c("    volumeMounts: [{name: data, mountPath: /data}]\n"),
            r#"spec.containers[0].volumeMounts[0].name: Not found: "data""#,
        ),
        (
            format!("{}  volumes: [{{name: data, emptyDir: {{}}}}]\n", c("    volumeMounts: [{name: data, mountPath: data}]\n")),
            r#"spec.containers[0].volumeMounts[0].mountPath: Invalid value: "data": must be an absolute path"#,
        ),
        (
            format!(
                "{}  volumes: [{{name: data, emptyDir: {{}}}}]\n",
                c("    volumeMounts: [{name: data, mountPath: /d}, {name: data, mountPath: /d}]\n")
            ),
            r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique"#,
        ),
        (
            format!("{}  volumes: [{{name: data, emptyDir: {{}}}}]\n", c("    volumeMounts: [{name: data, mountPath: /d, subPath: a/../../b}]\n")),
            r#"spec.containers[0].volumeMounts[0].subPath: Invalid value: "a/../../b": must not contain '..'"#,
        ),
        (
            format!("{}  volumes: [{{name: data, emptyDir: {{}}}}, {{name: data, emptyDir: {{}}}}]\n", c("")),
            r#"spec.volumes[1].name: Duplicate value: "data""#,
        ),
        (format!("{}  volumes: [{{name: data}}]\n", c("")), "spec.volumes[0]: Required value: must specify a volume type"),
        (
            format!("{}  volumes: [{{name: data, emptyDir: {{}}, configMap: {{name: x}}}}]\n", c("")),
            "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
        ),
        (
            format!("{}  volumes: [{{name: d, configMap: {{name: x, items: [{{key: k, path: ../x}}]}}}}]\n", c("")),
            r#"spec.volumes[0].configMap.items[0].path: Invalid value: "../x": must not contain '..'"#,
        ),
        (
            format!("{}  volumes: [{{name: d, secret: {{secretName: s, defaultMode: 01000}}}}]\n", c("")),
            "spec.volumes[0].secret.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
        ),
        (
            format!("{}  volumes: [{{name: d, downwardAPI: {{items: [{{path: p, fieldRef: {{fieldPath: status.podIP}}}}]}}}}]\n", c("")),
            r#"spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "status.podIP""#,
        ),
        (
            c("    resources: {limits: {memory: 1Gi}, requests: {memory: 2Gi}}\n"),
            r#"spec.containers[0].resources.requests: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi"#,
        ),
        (
            c("    resources: {limits: {cpu: lots}}\n"),
            r#"spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match the regular expression"#,
        ),
        (
            c("    resources: {requests: {gpu: 1}}\n"),
            r#"spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers"#,
        ),
        (
            c("    resources: {requests: {example.com/dongle: 1}}\n"),
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
        ),
        (
            "  restartPolicy: Sometimes\n  containers: [{name: a, image: b}]\n".into(),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
        ),
        (
            "  terminationGracePeriodSeconds: -1\n  containers: [{name: a, image: b}]\n".into(),
            "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ),
        (c("    livenessProbe: {periodSeconds: 5}\n"), "spec.containers[0].livenessProbe: Required value: must specify a handler type"),
        (
            c("    readinessProbe: {exec: {command: [x]}, tcpSocket: {port: 80}}\n"),
            "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        ),
        (
            c("    livenessProbe: {tcpSocket: {port: 80}, periodSeconds: -5}\n"),
            "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -5: must be greater than or equal to 0",
        ),
        (
            c("    livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}\n"),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ),
        (c("    lifecycle: {postStart: {}}\n"), "spec.containers[0].lifecycle.postStart: Required value: must specify a handler type"),
        (
            c("    lifecycle: {preStop: {sleep: {seconds: 40}}}\n"),
            "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 40: must be non-negative and less than terminationGracePeriodSeconds (30)",
        ),
        (
            "  initContainers: [{name: init, image: a, livenessProbe: {exec: {command: [x]}}}]\n  containers: [{name: a, image: b}]\n".into(),
            "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        ),
        (
            "  initContainers:\n  - name: init\n    image: a\n    env: [{name: A, valueFrom: {secretKeyRef: {name: s}}}]\n  containers: [{name: a, image: b}]\n".into(),
            "spec.initContainers[0].env[0].valueFrom.secretKeyRef.key: Required value",
        ),
        (
            "  initContainers: [{name: init, image: a, restartPolicy: Never}]\n  containers: [{name: a, image: b}]\n".into(),
            r#"spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: "Always""#,
        ),
        (c("    restartPolicy: Always\n"), "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"),
    ];
    for (spec, want) in cases {
        let got = messages(&validate_pod(&pod(&spec)));
        assert!(
            got.iter().any(|m| m.starts_with(want)),
            "spec:\n{spec}\nwant: {want}\ngot: {got:#?}"
        );
    }
}

#[test]
fn checks_metadata() {
    let cases = [
        (
            "metadata: {}",
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            "metadata: {name: Web}",
            r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain"#,
        ),
        (
            "metadata: {name: web, namespace: My_NS}",
            r#"metadata.namespace: Invalid value: "My_NS""#,
        ),
        (
            "metadata: {name: web, labels: {app: \"-x\"}}",
            r#"metadata.labels: Invalid value: "-x": a valid label must be"#,
        ),
        (
            "metadata: {name: web, labels: {\"a/b/c\": x}}",
            r#"metadata.labels: Invalid value: "a/b/c": a qualified name"#,
        ),
    ];
    for (meta, want) in cases {
        let text = format!("apiVersion: v1\nkind: Pod\n{meta}\nspec: {{containers: [{{name: a, image: b}}]}}\n");
        let Object::Pod(p) = object(&text) else { unreachable!() };
        let got = messages(&validate_pod(&p));
        assert!(got.iter().any(|m| m.starts_with(want)), "{meta}: {got:#?}");
    }
}

#[test]
fn checks_config_maps_and_secrets() {
    let cases = [
        ("kind: ConfigMap\nmetadata: {name: ok}\ndata: {A: x, b.txt: z}", vec![]),
        (
            "kind: ConfigMap\nmetadata: {name: ok}\ndata: {\"a b\": x}",
            vec![
                r#"data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
            ],
        ),
        (
            "kind: ConfigMap\nmetadata: {name: ok}\ndata: {k: x}\nbinaryData: {k: eA==}",
            vec![
                r#"data[k]: Invalid value: "k": duplicate of key present in binaryData"#,
                r#"binaryData[k]: Invalid value: "k": duplicate of key present in data"#,
            ],
        ),
        (
            "kind: ConfigMap\nmetadata: {name: ok}\ndata: {..secret: x}",
            vec![r#"data[..secret]: Invalid value: "..secret": must not start with '..'"#],
        ),
        ("kind: Secret\nmetadata: {name: s}\nstringData: {password: x}", vec![]),
        (
            "kind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}",
            vec!["data[tls.key]: Required value"],
        ),
        (
            "kind: Secret\nmetadata: {name: S}",
            vec![r#"metadata.name: Invalid value: "S": a lowercase RFC 1123 subdomain"#],
        ),
    ];
    for (text, want) in cases {
        let got = match object(&format!("apiVersion: v1\n{text}\n")) {
            Object::ConfigMap(cm) => messages(&validate_config_map(&cm)),
            Object::Secret(s) => messages(&validate_secret(&s)),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got.len(), want.len(), "{text}: {got:#?}");
        for (got, want) in got.iter().zip(want) {
            assert!(got.starts_with(want), "{text}: {got}");
        }
    }
    let big = format!(
        "kind: ConfigMap\nmetadata: {{name: big}}\ndata: {{a: \"{}\"}}",
        "x".repeat(MAX_CONFIG_SIZE + 1)
    );
    let Object::ConfigMap(cm) = object(&format!("apiVersion: v1\n{big}\n")) else {
        unreachable!()
    };
    assert_eq!(
        messages(&validate_config_map(&cm)),
        [": Too long: may not be more than 1048576 bytes"]
    );
}
