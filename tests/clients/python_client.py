"""The official Python `kubernetes` client against a Capstan cluster: create, list with a
selector, watch from a resourceVersion, patch (merge and JSON patch), optimistic concurrency,
the /scale subresource, and Status errors. Run by tests/cluster.rs with the kubeconfig path;
exits non-zero (with the failed assertion) on any mismatch."""

import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()
NS = "default"

# Create and list with a label selector.
created = core.create_namespaced_config_map(
    NS,
    client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-config", labels={"from": "python"}),
        data={"a": "1"},
    ),
)
assert created.metadata.uid and created.metadata.resource_version, created.metadata
listed = core.list_namespaced_config_map(NS, label_selector="from=python")
assert [c.metadata.name for c in listed.items] == ["py-config"], listed.items
assert core.list_namespaced_config_map(NS, label_selector="from=elsewhere").items == []

# Watch from the list's resourceVersion: nothing written after it can be missed.
events = []


def follow():
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map,
        NS,
        label_selector="from=python",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=30,
    ):
        events.append((event["type"], dict(event["object"].data or {})))
        if event["type"] == "DELETED":
            w.stop()


watcher = threading.Thread(target=follow)
watcher.start()

# Patch: a dict body (merge/strategic) and a list body (JSON patch).
patched = core.patch_namespaced_config_map("py-config", NS, {"data": {"b": "2"}})
assert patched.data == {"a": "1", "b": "2"}, patched.data
patched = core.patch_namespaced_config_map(
    "py-config", NS, [{"op": "replace", "path": "/data/a", "value": "3"}]
)
assert patched.data == {"a": "3", "b": "2"}, patched.data

# A replace with a stale resourceVersion is a 409 Conflict.
created.data = {"stale": "write"}
try:
    core.replace_namespaced_config_map("py-config", NS, created)
    raise AssertionError("a stale replace succeeded")
except ApiException as e:
    assert e.status == 409, e

# A missing object is a 404 with a NotFound Status.
try:
    core.read_namespaced_config_map("no-such-config", NS)
    raise AssertionError("read of a missing object succeeded")
except ApiException as e:
    assert e.status == 404 and '"reason":"NotFound"' in e.body.replace(" ", ""), e.body

core.delete_namespaced_config_map("py-config", NS)
watcher.join(30)
kinds = [k for k, _ in events]
assert kinds == ["MODIFIED", "MODIFIED", "DELETED"], events
assert events[1][1] == {"a": "3", "b": "2"}, events

# A Deployment, read and scaled through /scale.
apps.create_namespaced_deployment(
    NS,
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "py-deploy"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "py"}},
            "template": {
                "metadata": {"labels": {"app": "py"}},
                "spec": {"containers": [{"name": "c", "image": "k8spatterns/random-generator:1.0"}]},
            },
        },
    },
)
scale = apps.read_namespaced_deployment_scale("py-deploy", NS)
assert scale.spec.replicas == 1, scale
apps.patch_namespaced_deployment_scale("py-deploy", NS, {"spec": {"replicas": 2}})
assert apps.read_namespaced_deployment("py-deploy", NS).spec.replicas == 2
apps.delete_namespaced_deployment("py-deploy", NS)
print("python client: ok")
