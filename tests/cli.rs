//! End-to-end tests of `capstan`'s kubectl-like verbs against `capstan up`: the book's rolling
//! update driven by `capstan apply`, `rollout`, `get`, `describe`, `scale`, `logs` and `delete`
//! alone, with kubectl's messages, and the errors users see.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::{DEADLINE, DataDir, Up, deleting, eventually, image, lines, lines_until};

const FILE: &str = "examples/declarative-deployment/rolling-update.yaml";

/// The live (not terminating) pods of the example, read with `capstan get -o json`.
fn live_pods(up: &Up) -> Vec<Value> {
    let out = up.capstan_ok(&["get", "pods", "-l", "app=random-generator", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("get -o json prints JSON");
    assert_eq!(list["kind"], "List", "{list}");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !deleting(p))
        .collect()
}

/// Runs a verb that must fail: exit code 1, and its stderr.
fn fails(up: &Up, args: &[&str]) -> String {
    let out = up.capstan(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "capstan {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn capstan_verbs_roll_a_deployment_forward_scale_it_roll_it_back_and_delete_it() {
    let data = DataDir::new("cli-rollout");
    let up = Up::start(&data, &[]);

    // apply: created, then unchanged, then configured by an edited copy.
    assert!(
        up.capstan_ok(&["apply", "-f", FILE])
            .contains("deployment.apps/random-generator created")
    );
    assert!(
        up.capstan_ok(&["apply", "-f", FILE])
            .contains("deployment.apps/random-generator unchanged")
    );
    up.capstan_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    let edited = data.0.join("rolling-update-2.0.yaml");
    let text = std::fs::read_to_string(support::repo().join(FILE)).unwrap();
    std::fs::write(&edited, text.replace("random-generator:1.0", "random-generator:2.0")).unwrap();
    let edited = edited.to_str().unwrap();

    // Follow the pods with `get -w` while the image changes.
    let mut watch = up
        .capstan_command(&["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watched = lines(watch.stdout.take().unwrap());
    assert!(
        up.capstan_ok(&["apply", "-f", edited])
            .contains("deployment.apps/random-generator configured")
    );
    let status = up.capstan_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    assert!(
        status.ends_with("deployment \"random-generator\" successfully rolled out\n"),
        "{status}"
    );
    let watch_lines = lines_until(&watched, |l| l.len() > 6 && l.iter().any(|l| l.contains("Running")));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(watch_lines[0].starts_with("NAME "), "get -w printed {watch_lines:?}");
    assert!(
        watch_lines.iter().any(|l| l.contains("Running")),
        "get -w printed {watch_lines:?}"
    );
    assert!(watch_lines.len() > 6, "get -w printed the changes: {watch_lines:?}");

    // get: the server's columns in kubectl's layout.
    let deployments = up.capstan_ok(&["get", "deploy"]);
    let mut rows = deployments.lines();
    assert!(
        rows.next()
            .unwrap()
            .starts_with("NAME               READY   UP-TO-DATE   AVAILABLE   AGE"),
        "{deployments}"
    );
    assert!(
        rows.next()
            .unwrap()
            .starts_with("random-generator   3/3     3            3  "),
        "{deployments}"
    );
    let wide = up.capstan_ok(&["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert!(header.contains(&"IP") && header.contains(&"NODE"), "{wide}");
    assert!(
        wide.lines()
            .skip(1)
            .all(|l| l.contains(" 10.") && l.contains(" capstan ")),
        "{wide}"
    );
    let object: Value =
        serde_json::from_str(&up.capstan_ok(&["get", "deploy", "random-generator", "-o", "json"])).unwrap();
    assert_eq!(object["kind"], "Deployment");
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["image"],
        "k8spatterns/random-generator:2.0"
    );
    assert_eq!(
        up.capstan_ok(&["get", "deploy/random-generator", "-o", "name"]),
        "deployment.apps/random-generator\n"
    );

    // describe: the summary and the events.
    let described = up.capstan_ok(&["describe", "deploy", "random-generator"]);
    for wanted in [
        "Name:                   random-generator",
        "Replicas:               3 desired | 3 updated",
        "StrategyType:           RollingUpdate",
        "NewReplicaSet:",
        "Events:",
        "ScalingReplicaSet",
    ] {
        assert!(described.contains(wanted), "no {wanted:?} in {described}");
    }

    // scale through the /scale subresource.
    assert_eq!(
        up.capstan_ok(&["scale", "deploy/random-generator", "--replicas=2"]),
        "deployment.apps/random-generator scaled\n"
    );
    eventually("2 pods", DEADLINE, || (live_pods(&up).len() == 2).then_some(()));

    // history, then undo to revision 1.
    let history = up.capstan_ok(&["rollout", "history", "deployment/random-generator"]);
    assert_eq!(
        history,
        "deployment.apps/random-generator \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
    );
    assert_eq!(
        up.capstan_ok(&["rollout", "undo", "deployment/random-generator"]),
        "deployment.apps/random-generator rolled back\n"
    );
    up.capstan_ok(&["rollout", "status", "deployment/random-generator", "--timeout=90s"]);
    eventually("every pod back on 1.0", DEADLINE, || {
        let pods = live_pods(&up);
        (pods.len() == 2 && pods.iter().all(|p| image(p) == "k8spatterns/random-generator:1.0")).then_some(())
    });
    let history = up.capstan_ok(&["rollout", "history", "deployment/random-generator"]);
    assert!(
        history.contains("\n2 ") && history.contains("\n3 ") && !history.contains("\n1 "),
        "{history}"
    );

    // logs through the API server.
    let pod = live_pods(&up)[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let logs = up.capstan_ok(&["logs", &pod]);
    assert!(logs.contains("random-generator"), "{logs}");
    assert_eq!(up.capstan_ok(&["logs", &pod, "--tail=1"]).lines().count(), 1);

    // delete -f: the deployment goes, and the garbage collector takes its pods.
    assert_eq!(
        up.capstan_ok(&["delete", "-f", FILE]),
        "deployment.apps \"random-generator\" deleted from default namespace\n"
    );
    eventually("the pods to be collected", DEADLINE, || {
        live_pods(&up).is_empty().then_some(())
    });
    let stderr = eventually("no pods at all", DEADLINE, || {
        let out = up.capstan(&["get", "pods"]);
        (out.status.success() && out.stdout.is_empty()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    assert_eq!(stderr, "No resources found in default namespace.\n");
}

#[test]
fn capstan_verbs_name_what_is_wrong() {
    let data = DataDir::new("cli-errors");
    let up = Up::start(&data, &[]);

    assert!(
        fails(&up, &["get", "widgets"]).contains("error: the server doesn't have a resource type \"widgets\""),
        "unknown type"
    );
    let stderr = fails(&up, &["get", "deploy", "nope"]);
    assert_eq!(
        stderr,
        "Error from server (NotFound): deployments.apps \"nope\" not found\n"
    );
    let stderr = fails(&up, &["get", "pods", "-o", "xml"]);
    assert!(stderr.contains("\"xml\""), "{stderr}");
    let stderr = fails(&up, &["scale", "deploy/x", "--replicas=-1"]);
    assert!(stderr.contains("--replicas=COUNT"), "{stderr}");
    let stderr = fails(&up, &["delete", "pods"]);
    assert!(stderr.contains("no name was specified"), "{stderr}");
    let stderr = fails(&up, &["get", "pods", "--server", "http://127.0.0.1:1"]);
    assert!(
        stderr.contains("cannot reach the API server at http://127.0.0.1:1"),
        "{stderr}"
    );

    // A misspelt field is refused by the server's strict decoding, which names it; the other
    // objects of the file are still applied.
    let manifest = data.0.join("invalid.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  a: b\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  replicaz: 3\n  selector:\n    \
         matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n    spec:\n      \
         containers:\n      - name: c\n        image: k8spatterns/random-generator:1.0\n",
    )
    .unwrap();
    let out = up.capstan(&["apply", "-f", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field \"spec.replicaz\""), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/fine created"));
    up.capstan_ok(&["get", "configmap", "fine"]);
}
