use super::*;
use crate::env::ConfigObjects;
use crate::manifest::{Object, parse_manifests};

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: random-generator-config}
data:
  PATTERN: Configuration Resource
  application.properties: "server.port=7070\n"
binaryData:
  logo.png: iVBORw==
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {token: AAEC}
"#;

/// A pod (name `web`, one container `main` with a 1Gi memory limit) with these volumes.
fn pod(volumes: &str) -> Pod {
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, labels: {{app: web, tier: front}}}}\nspec:\n  containers:\n  - {{name: main, image: app, resources: {{limits: {{memory: 1Gi}}}}}}\n  volumes:\n{}",
        volumes.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    match parse_manifests(&text).unwrap().remove(0) {
        Object::Pod(p) => *p,
        _ => unreachable!(),
    }
}

/// `(path, content, mode)` of each file, or the error message.
type Planned = Result<Option<Vec<(String, String, u32)>>, String>;

fn files_of(volume_yaml: &str) -> Planned {
    let src = ConfigObjects::from_objects(&parse_manifests(OBJECTS).unwrap());
    let pod = pod(volume_yaml);
    let volume = &pod.spec.as_ref().unwrap().volumes.as_ref().unwrap()[0];
    let files = volume_files(&pod, volume, &PodFacts::default(), &src).map_err(|e| e.to_string())?;
    Ok(files.map(|files| {
        files
            .into_iter()
            .map(|f| (f.path, String::from_utf8_lossy(&f.data).into_owned(), f.mode))
            .collect()
    }))
}

fn expect(files: &[(&str, &str, u32)]) -> Planned {
    Ok(Some(
        files
            .iter()
            .map(|(p, d, m)| (p.to_string(), d.to_string(), *m))
            .collect(),
    ))
}

#[test]
fn plans_data_volume_files() {
    let png = String::from_utf8_lossy(&[0x89, b'P', b'N', b'G']).into_owned();
    let cases = [
        (
            "whole configMap, binaryData included",
            "- {name: v, configMap: {name: random-generator-config}}",
            expect(&[
                ("PATTERN", "Configuration Resource", 0o644),
                ("application.properties", "server.port=7070\n", 0o644),
                ("logo.png", &png, 0o644),
            ]),
        ),
        (
            "configMap items with per-item mode and defaultMode",
            "- name: v\n  configMap:\n    name: random-generator-config\n    defaultMode: 0440\n    items:\n    - {key: PATTERN, path: conf/pattern.txt, mode: 0600}\n    - {key: application.properties, path: app.properties}",
            expect(&[
                ("app.properties", "server.port=7070\n", 0o440),
                ("conf/pattern.txt", "Configuration Resource", 0o600),
            ]),
        ),
        (
            "missing optional configMap gives an empty volume",
            "- {name: v, configMap: {name: nope, optional: true}}",
            expect(&[]),
        ),
        (
            "optional source skips a missing listed key",
            "- {name: v, configMap: {name: random-generator-config, optional: true, items: [{key: NOPE, path: x}]}}",
            expect(&[]),
        ),
        (
            "secret data stays bytes",
            "- {name: v, secret: {secretName: creds, defaultMode: 0400}}",
            expect(&[("token", "\u{0}\u{1}\u{2}", 0o400)]),
        ),
        (
            "downwardAPI labels file and resource",
            "- name: v\n  downwardAPI:\n    items:\n    - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n    - {path: ./mem, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}",
            expect(&[("labels", "app=\"web\"\ntier=\"front\"", 0o644), ("mem", "1024", 0o644)]),
        ),
        (
            "projected sources share the volume's defaultMode; tokens are skipped",
            "- name: v\n  projected:\n    defaultMode: 0444\n    sources:\n    - configMap: {name: random-generator-config, items: [{key: PATTERN, path: pattern}]}\n    - secret: {name: creds}\n    - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}\n    - serviceAccountToken: {path: token}",
            expect(&[
                ("name", "web", 0o444),
                ("pattern", "Configuration Resource", 0o444),
                ("token", "\u{0}\u{1}\u{2}", 0o444),
            ]),
        ),
        ("emptyDir is not projected data", "- {name: v, emptyDir: {}}", Ok(None)),
    ];
    for (what, yaml, want) in cases {
        assert_eq!(files_of(yaml), want, "{what}");
    }
}

#[test]
fn rejects_missing_data_and_bad_paths() {
    let cases = [
        (
            "- {name: v, configMap: {name: random-generator-config, items: [{key: NOPE, path: x}]}}",
            "configmap references non-existent config key: NOPE",
        ),
        ("- {name: v, configMap: {name: nope}}", "configmap \"nope\" not found"),
        (
            "- {name: v, secret: {secretName: creds, items: [{key: pw, path: pw}]}}",
            "references non-existent secret key: pw",
        ),
        ("- {name: v, secret: {secretName: gone}}", "secret \"gone\" not found"),
        (
            "- {name: v, configMap: {name: random-generator-config, items: [{key: PATTERN, path: ../escape}]}}",
            "invalid path: must not contain '..': ../escape",
        ),
        (
            "- {name: v, configMap: {name: random-generator-config, items: [{key: PATTERN, path: /etc/passwd}]}}",
            "invalid path: must be relative path: /etc/passwd",
        ),
        (
            "- {name: v, configMap: {name: random-generator-config, items: [{key: PATTERN, path: p, mode: 4096}]}}",
            "invalid mode 4096 for p: must be a number between 0 and 0777 (octal), both inclusive",
        ),
        (
            "- {name: v, downwardAPI: {items: [{path: ip, fieldRef: {fieldPath: status.podIP}}]}}",
            "unsupported fieldPath: status.podIP",
        ),
    ];
    for (yaml, message) in cases {
        assert_eq!(files_of(yaml), Err(message.to_string()), "{yaml}");
    }
}

#[test]
fn checks_paths_like_the_atomic_writer() {
    let cases = [
        ("a", Ok("a")),
        ("a/./b", Ok("a/b")),
        ("a//b/", Ok("a/b")),
        ("..data", Err("invalid path: must not start with '..': ..data")),
        ("a/../b", Err("invalid path: must not contain '..': a/../b")),
        ("", Err("invalid path: must not be empty: ")),
        (".", Err("invalid path: must name a file: .")),
    ];
    for (path, want) in cases {
        let got = checked_path(path).map_err(|e| e.to_string());
        assert_eq!(got, want.map(str::to_string).map_err(str::to_string), "{path}");
    }
}
