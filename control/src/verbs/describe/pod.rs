//! Pods as `kubectl describe pod` shows them, and the pod templates of workloads: containers
//! (image, ports, state, probes, environment, mounts), volumes and tolerations.

use capstan_core::k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{Out, annotations, header, labels, s, scalar, since, time};
use crate::verbs::printing::{DESCRIBE_LAYOUT, tabwrite};

pub(super) fn pod(w: &mut Out, pod: &Value, now: Timestamp) {
    let (meta, spec, status) = (&pod["metadata"], &pod["spec"], &pod["status"]);
    header(w, meta);
    if let Some(p) = spec["priority"].as_i64() {
        w.w(0, &format!("Priority:\t{p}\n"));
    }
    if let Some(p) = spec["priorityClassName"].as_str().filter(|p| !p.is_empty()) {
        w.w(0, &format!("Priority Class Name:\t{p}\n"));
    }
    if let Some(sa) = spec["serviceAccountName"].as_str().filter(|p| !p.is_empty()) {
        w.w(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec["nodeName"].as_str().filter(|n| !n.is_empty()) {
        None => w.w(0, "Node:\t<none>\n"),
        Some(node) => w.w(0, &format!("Node:\t{node}/{}\n", s(&status["hostIP"]))),
    }
    if !status["startTime"].is_null() {
        w.w(0, &format!("Start Time:\t{}\n", time(&status["startTime"])));
    }
    labels(w, "", "Labels", &meta["labels"]);
    annotations(w, "", "Annotations", &meta["annotations"]);
    if meta["deletionTimestamp"].is_null() {
        w.w(0, &format!("Status:\t{}\n", s(&status["phase"])));
    } else {
        w.w(
            0,
            &format!(
                "Status:\tTerminating (lasts {})\n",
                since(&meta["deletionTimestamp"], now)
            ),
        );
        if let Some(g) = meta["deletionGracePeriodSeconds"].as_i64() {
            w.w(0, &format!("Termination Grace Period:\t{g}s\n"));
        }
    }
    for (field, title) in [("reason", "Reason"), ("message", "Message")] {
        if let Some(v) = status[field].as_str().filter(|v| !v.is_empty()) {
            w.w(0, &format!("{title}:\t{v}\n"));
        }
    }
    w.w(0, &format!("IP:\t{}\n", s(&status["podIP"])));
    match status["podIPs"].as_array().filter(|a| !a.is_empty()) {
        None => w.w(0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.w(0, "IPs:\n");
            for ip in ips {
                w.w(1, &format!("IP:\t{}\n", s(&ip["ip"])));
            }
        }
    }
    if let Some(owner) = controller(meta) {
        w.w(0, &format!("Controlled By:\t{owner}\n"));
    }
    if let Some(n) = status["nominatedNodeName"].as_str().filter(|n| !n.is_empty()) {
        w.w(0, &format!("NominatedNodeName:\t{n}\n"));
    }
    if spec["initContainers"].as_array().is_some_and(|a| !a.is_empty()) {
        containers(
            w,
            "Init Containers",
            &spec["initContainers"],
            Some(&status["initContainerStatuses"]),
            "",
        );
    }
    containers(
        w,
        "Containers",
        &spec["containers"],
        Some(&status["containerStatuses"]),
        "",
    );
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.w(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.w(1, &format!("{} \t{} \n", s(&c["type"]), s(&c["status"])));
        }
    }
    volumes(w, &spec["volumes"], "");
    if let Some(q) = status["qosClass"].as_str() {
        w.w(0, &format!("QoS Class:\t{q}\n"));
    }
    labels(w, "", "Node-Selectors", &spec["nodeSelector"]);
    tolerations(w, "", &spec["tolerations"]);
}

/// `Kind/name` of the controlling owner.
pub(super) fn controller(meta: &Value) -> Option<String> {
    meta["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
        .map(|o| format!("{}/{}", s(&o["kind"]), s(&o["name"])))
}

/// `describeContainers`: each container's image, ports, state (with a status), probes,
/// environment and mounts.
fn containers(w: &mut Out, label: &str, list: &Value, statuses: Option<&Value>, space: &str) {
    w.w(0, &format!("{space}{label}:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in list.as_array().into_iter().flatten() {
        let name = s(&c["name"]);
        let status = statuses.and_then(|st| st.as_array()?.iter().find(|x| x["name"] == name));
        w.w(1, &format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            w.w(2, &format!("Container ID:\t{}\n", s(&st["containerID"])));
        }
        w.w(2, &format!("Image:\t{}\n", s(&c["image"])));
        if let Some(st) = status {
            w.w(2, &format!("Image ID:\t{}\n", s(&st["imageID"])));
        }
        let ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
        let port_text = |field: &str| -> String {
            ports
                .iter()
                .filter(|p| field == "containerPort" || p[field].as_i64().is_some_and(|n| n != 0))
                .map(|p| {
                    format!(
                        "{}/{}",
                        p[field].as_i64().unwrap_or(0),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (field, one, many) in [
            ("containerPort", "Port", "Ports"),
            ("hostPort", "Host Port", "Host Ports"),
        ] {
            let text = port_text(field);
            if text.contains(',') {
                w.w(2, &format!("{many}:\t{text}\n"));
            } else {
                w.w(
                    2,
                    &format!("{one}:\t{}\n", if text.is_empty() { "<none>" } else { &text }),
                );
            }
        }
        for (field, title) in [("command", "Command"), ("args", "Args")] {
            if let Some(parts) = c[field].as_array().filter(|a| !a.is_empty()) {
                w.w(2, &format!("{title}:\n"));
                for part in parts {
                    for line in s(part).split('\n') {
                        w.w(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            state(w, "State", &st["state"]);
            if !st["lastState"]["terminated"].is_null() {
                state(w, "Last State", &st["lastState"]);
            }
            w.w(
                2,
                &format!("Ready:\t{}\n", if st["ready"] == true { "True" } else { "False" }),
            );
            w.w(
                2,
                &format!("Restart Count:\t{}\n", st["restartCount"].as_i64().unwrap_or(0)),
            );
        }
        for (field, title) in [("limits", "Limits"), ("requests", "Requests")] {
            if let Some(map) = c["resources"][field].as_object().filter(|m| !m.is_empty()) {
                w.w(2, &format!("{title}:\n"));
                for (k, v) in map {
                    w.w(3, &format!("{k}:\t{}\n", scalar(v)));
                }
            }
        }
        for (field, title) in [
            ("livenessProbe", "Liveness"),
            ("readinessProbe", "Readiness"),
            ("startupProbe", "Startup"),
        ] {
            if c[field].is_object() {
                w.w(2, &format!("{title}:\t{}\n", probe(&c[field])));
            }
        }
        env(w, c);
        match c["volumeMounts"].as_array().filter(|a| !a.is_empty()) {
            None => w.w(2, "Mounts:\t<none>\n"),
            Some(mounts) => {
                w.w(2, "Mounts:\n");
                for m in mounts {
                    let mode = if m["readOnly"] == true { "ro" } else { "rw" };
                    let sub = match m["subPath"].as_str().filter(|p| !p.is_empty()) {
                        Some(p) => format!(",path=\"{p}\""),
                        None => String::new(),
                    };
                    w.w(
                        3,
                        &format!("{} from {} ({mode}{sub})\n", s(&m["mountPath"]), s(&m["name"])),
                    );
                }
            }
        }
    }
}

/// `describeStatus`.
fn state(w: &mut Out, title: &str, state: &Value) {
    if state["running"].is_object() {
        w.w(2, &format!("{title}:\tRunning\n"));
        w.w(3, &format!("Started:\t{}\n", time(&state["running"]["startedAt"])));
    } else if state["waiting"].is_object() {
        w.w(2, &format!("{title}:\tWaiting\n"));
        if let Some(r) = state["waiting"]["reason"].as_str().filter(|r| !r.is_empty()) {
            w.w(3, &format!("Reason:\t{r}\n"));
        }
    } else if state["terminated"].is_object() {
        let t = &state["terminated"];
        w.w(2, &format!("{title}:\tTerminated\n"));
        for (field, name) in [("reason", "Reason"), ("message", "Message")] {
            if let Some(v) = t[field].as_str().filter(|v| !v.is_empty()) {
                w.w(3, &format!("{name}:\t{v}\n"));
            }
        }
        w.w(3, &format!("Exit Code:\t{}\n", t["exitCode"].as_i64().unwrap_or(0)));
        if let Some(sig) = t["signal"].as_i64().filter(|n| *n > 0) {
            w.w(3, &format!("Signal:\t{sig}\n"));
        }
        w.w(3, &format!("Started:\t{}\n", time(&t["startedAt"])));
        w.w(3, &format!("Finished:\t{}\n", time(&t["finishedAt"])));
    } else {
        w.w(2, &format!("{title}:\tWaiting\n"));
    }
}

/// `DescribeProbe`: the action, then its timing.
pub fn probe(p: &Value) -> String {
    let n = |field: &str, default: i64| p[field].as_i64().unwrap_or(default);
    let attrs = format!(
        "delay={}s timeout={}s period={}s successThreshold={} failureThreshold={}",
        n("initialDelaySeconds", 0),
        n("timeoutSeconds", 1),
        n("periodSeconds", 10),
        n("successThreshold", 1),
        n("failureThreshold", 3)
    );
    if p["exec"].is_object() {
        let cmd: Vec<&str> = p["exec"]["command"].as_array().into_iter().flatten().map(s).collect();
        format!("exec [{}] {attrs}", cmd.join(" "))
    } else if p["httpGet"].is_object() {
        let h = &p["httpGet"];
        let scheme = h["scheme"].as_str().unwrap_or("HTTP").to_ascii_lowercase();
        format!(
            "http-get {scheme}://{}:{}{} {attrs}",
            s(&h["host"]),
            scalar(&h["port"]),
            s(&h["path"])
        )
    } else if p["tcpSocket"].is_object() {
        format!(
            "tcp-socket {}:{} {attrs}",
            s(&p["tcpSocket"]["host"]),
            scalar(&p["tcpSocket"]["port"])
        )
    } else if p["grpc"].is_object() {
        format!(
            "grpc <pod>:{} {} {attrs}",
            scalar(&p["grpc"]["port"]),
            s(&p["grpc"]["service"])
        )
    } else {
        format!("unknown {attrs}")
    }
}

fn env(w: &mut Out, c: &Value) {
    if let Some(from) = c["envFrom"].as_array().filter(|a| !a.is_empty()) {
        w.w(2, "Environment Variables from:\n");
        for f in from {
            let (kind, source) = if f["configMapRef"].is_object() {
                ("ConfigMap", &f["configMapRef"])
            } else {
                ("Secret", &f["secretRef"])
            };
            let prefix = match f["prefix"].as_str().filter(|p| !p.is_empty()) {
                Some(p) => format!(" with prefix '{p}'"),
                None => String::new(),
            };
            w.w(
                3,
                &format!(
                    "{}\t{kind}{prefix}\tOptional: {}\n",
                    s(&source["name"]),
                    source["optional"] == true
                ),
            );
        }
    }
    let Some(vars) = c["env"].as_array().filter(|a| !a.is_empty()) else {
        w.w(2, "Environment:\t<none>\n");
        return;
    };
    w.w(2, "Environment:\n");
    for e in vars {
        let name = s(&e["name"]);
        let from = &e["valueFrom"];
        if from.is_null() {
            w.w(3, &format!("{name}:\t{}\n", s(&e["value"])));
        } else if from["fieldRef"].is_object() {
            let f = &from["fieldRef"];
            w.w(
                3,
                &format!(
                    "{name}:\t ({}:{})\n",
                    f["apiVersion"].as_str().unwrap_or("v1"),
                    s(&f["fieldPath"])
                ),
            );
        } else if from["resourceFieldRef"].is_object() {
            w.w(3, &format!("{name}:\t{}\n", s(&from["resourceFieldRef"]["resource"])));
        } else if from["secretKeyRef"].is_object() {
            let r = &from["secretKeyRef"];
            w.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"] == true
                ),
            );
        } else if from["configMapKeyRef"].is_object() {
            let r = &from["configMapKeyRef"];
            w.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"] == true
                ),
            );
        }
    }
}

/// `describeVolumes`, for the volume types Capstan runs; others by their type name.
fn volumes(w: &mut Out, volumes: &Value, space: &str) {
    let Some(list) = volumes.as_array().filter(|v| !v.is_empty()) else {
        w.w(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    };
    w.w(0, &format!("{space}Volumes:\n"));
    for v in list {
        w.w(0, &format!("{space}  {}:\n", s(&v["name"])));
        let line = |w: &mut Out, text: String| w.w(0, &format!("{space}    {text}\n"));
        if let Some(e) = v.get("emptyDir") {
            line(
                w,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)".into(),
            );
            line(w, format!("Medium:\t{}", s(&e["medium"])));
            line(
                w,
                format!("SizeLimit:\t{}", e["sizeLimit"].as_str().unwrap_or("<unset>")),
            );
        } else if let Some(c) = v.get("configMap") {
            line(w, "Type:\tConfigMap (a volume populated by a ConfigMap)".into());
            line(w, format!("Name:\t{}", s(&c["name"])));
            line(w, format!("Optional:\t{}", c["optional"] == true));
        } else if let Some(c) = v.get("secret") {
            line(w, "Type:\tSecret (a volume populated by a Secret)".into());
            line(w, format!("SecretName:\t{}", s(&c["secretName"])));
            line(w, format!("Optional:\t{}", c["optional"] == true));
        } else if let Some(h) = v.get("hostPath") {
            line(w, "Type:\tHostPath (bare host directory volume)".into());
            line(w, format!("Path:\t{}", s(&h["path"])));
            line(w, format!("HostPathType:\t{}", s(&h["type"])));
        } else if v.get("downwardAPI").is_some() {
            line(
                w,
                "Type:\tDownwardAPI (a volume populated by information about the pod)".into(),
            );
        } else if v.get("projected").is_some() {
            line(
                w,
                "Type:\tProjected (a volume that contains injected data from multiple sources)".into(),
            );
        } else {
            let kind = v
                .as_object()
                .and_then(|m| m.keys().find(|k| *k != "name").cloned())
                .unwrap_or_default();
            line(w, format!("Type:\t{kind}"));
        }
    }
}

/// `printTolerationsMultilineWithIndent`.
fn tolerations(w: &mut Out, indent: &str, list: &Value) {
    w.w(0, &format!("{indent}Tolerations:\t"));
    let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
        w.w(0, "<none>\n");
        return;
    };
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            w.w(0, &format!("{indent}\t"));
        }
        let (key, value, effect) = (s(&t["key"]), s(&t["value"]), s(&t["effect"]));
        let mut text = key.to_owned();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        if t["operator"] == "Exists" && value.is_empty() {
            text.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(secs) = t["tolerationSeconds"].as_i64() {
            text.push_str(&format!(" for {secs}s"));
        }
        w.w(0, &format!("{text}\n"));
    }
}

/// `DescribePodTemplate`.
pub(super) fn pod_template(w: &mut Out, template: &Value) {
    w.w(0, "Pod Template:\n");
    labels(w, "  ", "Labels", &template["metadata"]["labels"]);
    if template["metadata"]["annotations"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        annotations(w, "  ", "Annotations", &template["metadata"]["annotations"]);
    }
    let spec = &template["spec"];
    if let Some(sa) = spec["serviceAccountName"].as_str().filter(|p| !p.is_empty()) {
        w.w(1, &format!("Service Account:\t{sa}\n"));
    }
    if spec["initContainers"].as_array().is_some_and(|a| !a.is_empty()) {
        containers(w, "Init Containers", &spec["initContainers"], None, "  ");
    }
    containers(w, "Containers", &spec["containers"], None, "  ");
    volumes(w, &spec["volumes"], "  ");
    if let Some(p) = spec["priorityClassName"].as_str().filter(|p| !p.is_empty()) {
        w.w(1, &format!("Priority Class Name:\t{p}\n"));
    }
    labels(w, "  ", "Node-Selectors", &spec["nodeSelector"]);
    tolerations(w, "  ", &spec["tolerations"]);
}

/// A pod template as `rollout history --revision` prints it.
pub fn template_text(template: &Value) -> String {
    let mut w = Out::default();
    pod_template(&mut w, template);
    tabwrite(&w.0, DESCRIBE_LAYOUT, None)
}
