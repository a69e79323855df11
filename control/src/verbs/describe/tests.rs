//! Descriptions compared with what kubectl prints for the same objects.

use super::pod::probe;
use super::*;
use crate::verbs::printing::{DESCRIBE_LAYOUT, tabwrite};
use serde_json::json;

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn event(reason: &str, count: i64, first: &str, last: &str) -> Value {
    json!({"type": "Normal", "reason": reason, "count": count, "firstTimestamp": first,
           "lastTimestamp": last, "source": {"component": "deployment-controller"},
           "message": format!("{reason} happened\n")})
}

#[test]
fn events_are_sorted_and_counted() {
    let text = events(
        &[
            event("Later", 3, "2026-01-01T00:00:00Z", "2026-01-01T00:09:00Z"),
            event("ScalingReplicaSet", 1, "2026-01-01T00:08:00Z", "2026-01-01T00:08:00Z"),
        ],
        now(),
    );
    assert_eq!(
        tabwrite(&text, DESCRIBE_LAYOUT, None),
        "Events:\n\
         \x20 Type    Reason             Age                From                   Message\n\
         \x20 ----    ------             ----               ----                   -------\n\
         \x20 Normal  ScalingReplicaSet  2m                 deployment-controller  ScalingReplicaSet happened\n\
         \x20 Normal  Later              60s (x3 over 10m)  deployment-controller  Later happened\n"
    );
    assert_eq!(events(&[], now()), "Events:\t<none>\n");
}

fn deployment_object() -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "d1",
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:2",
                                       "readinessProbe": {"exec": {"command": ["stat", "/ready"]}}}]}}},
        "status": {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3, "unavailableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]},
    })
}

fn rs(name: &str, image: &str, replicas: i64, owner: &str) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": [{"uid": owner, "controller": true, "kind": "Deployment", "name": "web"}]},
           "spec": {"replicas": replicas,
                    "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "h"}},
                                 "spec": {"containers": [{"name": "web", "image": image,
                                          "readinessProbe": {"exec": {"command": ["stat", "/ready"]}}}]}}},
           "status": {"replicas": replicas}})
}

#[test]
fn deployments_show_replicas_strategy_template_and_replica_sets() {
    let related = Related {
        events: vec![],
        replica_sets: vec![
            rs("web-new", "web:2", 1, "d1"),
            rs("web-old", "web:1", 3, "d1"),
            rs("web-gone", "web:0", 0, "d1"),
            rs("other", "web:2", 1, "someone-else"),
        ],
        pods: vec![],
    };
    let text = describe("Deployment", &deployment_object(), &related, now());
    let expected = "\
Name:                   web
Namespace:              default
CreationTimestamp:      Thu, 01 Jan 2026 00:00:00 +0000
Labels:                 <none>
Annotations:            deployment.kubernetes.io/revision: 2
Selector:               app=web
Replicas:               3 desired | 1 updated | 4 total | 3 available | 1 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 1 max surge
Pod Template:
  Labels:  app=web
  Containers:
   web:
    Image:         web:2
    Port:          <none>
    Host Port:     <none>
    Readiness:     exec [stat /ready] delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
OldReplicaSets:  web-old (3/3 replicas created)
NewReplicaSet:   web-new (1/1 replicas created)
Events:          <none>
";
    assert_eq!(text, expected);
}

#[test]
fn pods_show_node_status_containers_and_conditions() {
    let pod = json!({
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web", "pod-template-hash": "h"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-h", "controller": true}]},
        "spec": {"nodeName": "capstan", "priority": 0, "serviceAccountName": "default",
                 "containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "env": [{"name": "A", "value": "1"}],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}],
                 "volumes": [{"name": "data", "emptyDir": {}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "10.88.0.2", "podIPs": [{"ip": "10.88.0.2"}],
                   "startTime": "2026-01-01T00:00:00Z", "qosClass": "BestEffort",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": true, "restartCount": 2, "containerID": "wasm://x", "imageID": "sha256:x",
                                          "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
                                          "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                        "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}}}]},
    });
    let text = describe("Pod", &pod, &Related::default(), now());
    let expected = "\
Name:             web-1
Namespace:        default
Priority:         0
Service Account:  default
Node:             capstan/127.0.0.1
Start Time:       Thu, 01 Jan 2026 00:00:00 +0000
Labels:           app=web
                  pod-template-hash=h
Annotations:      <none>
Status:           Running
IP:               10.88.0.2
IPs:
  IP:           10.88.0.2
Controlled By:  ReplicaSet/web-h
Containers:
  web:
    Container ID:   wasm://x
    Image:          web:1
    Image ID:       sha256:x
    Port:           8080/TCP
    Host Port:      <none>
    State:          Running
      Started:      Thu, 01 Jan 2026 00:00:01 +0000
    Last State:     Terminated
      Reason:       Error
      Exit Code:    1
      Started:      Thu, 01 Jan 2026 00:00:00 +0000
      Finished:     Thu, 01 Jan 2026 00:00:01 +0000
    Ready:          True
    Restart Count:  2
    Environment:
      A:  1
    Mounts:
      /data from data (ro)
Conditions:
  Type    Status
  Ready   True 
Volumes:
  data:
    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:      
    SizeLimit:   <unset>
QoS Class:       BestEffort
Node-Selectors:  <none>
Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
Events:          <none>
";
    assert_eq!(text, expected);
}

#[test]
fn other_kinds_print_their_fields() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
                    "data": {"app.properties": "x=1"}});
    let text = describe("ConfigMap", &cm, &Related::default(), now());
    assert_eq!(
        text,
        "Name:         c\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\nData:\n  app.properties:  x=1\nEvents:            <none>\n"
    );
    assert_eq!(title_case("creationTimestamp"), "Creation Timestamp");
    assert_eq!(title_case("podIP"), "Pod IP");
}

#[test]
fn selectors_and_probes_read_like_kubectl() {
    let sel =
        json!({"matchLabels": {"b": "2"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}]});
    assert_eq!(selector_text(&sel), "a in (x,y),b=2");
    assert_eq!(selector_text(&json!({})), "<none>");
    let p = json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5});
    assert_eq!(
        probe(&p),
        "http-get http://:8080/healthz delay=0s timeout=1s period=5s successThreshold=1 failureThreshold=3"
    );
}
