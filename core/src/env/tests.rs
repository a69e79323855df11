use super::*;
use crate::manifest::{Object, parse_manifests};

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  PATTERN: Configuration Resource
  SEED: "432576345"
  application.properties: "server.port=7070"
  bad=key: skipped
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: s3cret, user: admin}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other-ns, namespace: prod}
data: {X: "1"}
"#;

fn source() -> ConfigObjects {
    ConfigObjects::from_objects(&parse_manifests(OBJECTS).unwrap())
}

/// A pod whose single container has the given `env`/`envFrom`/`command`/`args` YAML.
fn pod(container_fields: &str) -> Pod {
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, uid: u-1}}\nspec:\n  containers:\n  - name: main\n    image: app\n    resources: {{limits: {{memory: 64Mi}}}}\n{}",
        container_fields
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    match parse_manifests(&text).unwrap().remove(0) {
        Object::Pod(p) => *p,
        _ => unreachable!(),
    }
}

fn facts() -> PodFacts {
    PodFacts {
        pod_ip: "10.1.0.4".into(),
        node_name: "n1".into(),
        ..PodFacts::default()
    }
}

fn resolve(container_fields: &str) -> Result<Vec<(String, String)>, String> {
    let pod = pod(container_fields);
    let container = &pod.spec.as_ref().unwrap().containers[0];
    resolve_env(&pod, container, &facts(), &source()).map_err(|e| e.to_string())
}

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn resolves_in_kubelet_order() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (
            "literal and expansion",
            "env:\n- {name: A, value: one}\n- {name: B, value: \"$(A)-two\"}\n- {name: C, value: \"$$(A) $(UNDEFINED) $(LATER)\"}\n- {name: LATER, value: x}",
            &[
                ("A", "one"),
                ("B", "one-two"),
                ("C", "$(A) $(UNDEFINED) $(LATER)"),
                ("LATER", "x"),
            ],
        ),
        (
            "envFrom with prefix skips invalid keys",
            "envFrom:\n- {configMapRef: {name: app-config}, prefix: CONFIG_}",
            &[
                ("CONFIG_PATTERN", "Configuration Resource"),
                ("CONFIG_SEED", "432576345"),
                ("CONFIG_application.properties", "server.port=7070"),
            ],
        ),
        (
            "env overrides envFrom in place and sees it",
            "envFrom:\n- secretRef: {name: db}\nenv:\n- {name: user, value: \"$(user)-x\"}\n- {name: password, value: \"\"}",
            &[("password", ""), ("user", "admin-x")],
        ),
        (
            "key refs",
            "env:\n- name: PATTERN\n  valueFrom: {configMapKeyRef: {name: app-config, key: PATTERN}}\n- name: PW\n  valueFrom: {secretKeyRef: {name: db, key: password}}",
            &[("PATTERN", "Configuration Resource"), ("PW", "s3cret")],
        ),
        (
            "optional refs leave the variable unset",
            "env:\n- name: A\n  valueFrom: {configMapKeyRef: {name: nope, key: k, optional: true}}\n- name: B\n  valueFrom: {secretKeyRef: {name: db, key: nope, optional: true}}\nenvFrom:\n- configMapRef: {name: nope, optional: true}",
            &[],
        ),
        (
            "downward fields and resources",
            "env:\n- name: POD_NAME\n  valueFrom: {fieldRef: {fieldPath: metadata.name}}\n- name: POD_IP\n  valueFrom: {fieldRef: {fieldPath: status.podIP}}\n- name: MEM_MB\n  valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}\n- name: NS\n  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}",
            &[
                ("POD_NAME", "web"),
                ("POD_IP", "10.1.0.4"),
                ("MEM_MB", "64"),
                ("NS", "default"),
            ],
        ),
    ];
    for (what, fields, want) in cases {
        assert_eq!(resolve(fields), Ok(vars(want)), "{what}");
    }
}

#[test]
fn reports_missing_config_like_the_kubelet() {
    let cases = [
        (
            "env:\n- name: P\n  valueFrom: {configMapKeyRef: {name: app-config, key: MISSING}}",
            "couldn't find key MISSING in ConfigMap default/app-config",
        ),
        (
            "env:\n- name: P\n  valueFrom: {configMapKeyRef: {name: gone, key: k}}",
            "configmap \"gone\" not found",
        ),
        (
            "env:\n- name: P\n  valueFrom: {secretKeyRef: {name: db, key: pw}}",
            "couldn't find key pw in Secret default/db",
        ),
        ("envFrom:\n- secretRef: {name: gone}", "secret \"gone\" not found"),
        (
            "envFrom:\n- configMapRef: {name: other-ns}",
            "configmap \"other-ns\" not found",
        ),
        (
            "env:\n- name: P\n  valueFrom: {fieldRef: {fieldPath: spec.bogus}}",
            "unsupported fieldPath: spec.bogus",
        ),
        (
            "env:\n- name: P\n  valueFrom: {resourceFieldRef: {resource: limits.cpu, containerName: ghost}}",
            "container ghost not found",
        ),
    ];
    for (fields, message) in cases {
        assert_eq!(resolve(fields), Err(message.to_string()), "{fields}");
    }
}

#[test]
fn expands_command_and_args() {
    let pod = pod("command: [\"/bin/$(TOOL)\", \"$$(TOOL)\"]\nargs: [\"--seed=$(SEED)\", \"$(NOPE)\"]");
    let env = vars(&[("TOOL", "gen"), ("SEED", "1"), ("SEED", "2")]);
    let (command, args) = expand_command(&pod.spec.as_ref().unwrap().containers[0], &env);
    assert_eq!(command, ["/bin/gen", "$(TOOL)"]);
    assert_eq!(args, ["--seed=2", "$(NOPE)"]);
}

#[test]
fn references_name_every_object_env_and_volumes_read() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  enableServiceLinks: false
  initContainers:
  - name: init
    image: app
    env:
    - name: A
      valueFrom: {configMapKeyRef: {name: app-config, key: SEED}}
  containers:
  - name: main
    image: app
    env:
    - name: P
      valueFrom: {secretKeyRef: {name: db, key: password}}
    envFrom:
    - configMapRef: {name: from-env}
    - secretRef: {name: secret-env}
  volumes:
  - name: c
    configMap: {name: vol-cm}
  - name: s
    secret: {secretName: vol-secret}
  - name: p
    projected:
      sources:
      - configMap: {name: proj-cm}
      - secret: {name: proj-secret}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
  - name: scratch
    emptyDir: {}
"#;
    let Object::Pod(pod) = parse_manifests(text).unwrap().remove(0) else {
        unreachable!()
    };
    let refs = References::of(&pod);
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| n.to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(refs.config_maps, set(&["app-config", "from-env", "vol-cm", "proj-cm"]));
    assert_eq!(refs.secrets, set(&["db", "secret-env", "vol-secret", "proj-secret"]));
    assert!(!refs.services, "enableServiceLinks: false");
    assert!(
        References::of(&self::pod("")).services,
        "service links are on by default"
    );
}

#[test]
fn the_referenced_objects_resolve_as_all_of_them_do() {
    let all = source();
    for fields in [
        "env:\n- name: S\n  valueFrom: {configMapKeyRef: {name: app-config, key: SEED}}",
        "envFrom:\n- configMapRef: {name: app-config}\n- secretRef: {name: db, optional: true}",
        "env:\n- name: P\n  valueFrom: {secretKeyRef: {name: db, key: password}}",
        "envFrom:\n- configMapRef: {name: other-ns}",
    ] {
        let pod = pod(fields);
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let selected = References::of(&pod).select("default", &all);
        assert!(selected.config_maps.len() + selected.secrets.len() < all.config_maps.len() + all.secrets.len());
        assert_eq!(
            resolve_env(&pod, container, &facts(), &selected).map_err(|e| e.to_string()),
            resolve_env(&pod, container, &facts(), &all).map_err(|e| e.to_string()),
            "{fields}"
        );
    }
}
